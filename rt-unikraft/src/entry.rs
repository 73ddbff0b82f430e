//! The entry point the C glue calls, and the `_Unwind_*` stubs.
//!
//! The libc shims the precompiled `x86_64-unknown-linux-gnu` std needs on musl
//! (`gnu_get_libc_version`, `__res_init`, `posix_spawnp`, a `clock_nanosleep` that really
//! sleeps), the unwinder's `_dl_find_object`, and the default thread stack size are C, in
//! `glue/std_shims.inc` and `glue/dl_find_object.inc`, #included by the always-linked glue
//! (`glue/main.c`, `glue/hosted.c`). One copy serves both kinds of app: those built on
//! rt-unikraft as a staticlib, and plain `fn main()` binaries, which do not link this crate.
//!
//! What stays here depends on this crate's `backtrace` feature, which C cannot see: the
//! `_Unwind_*` stubs (without it) or the panic hook's backtrace line (with it).

use core::ffi::{c_char, c_int};

use shared_core::services::Platform;

use crate::Unikraft;

unsafe extern "C" {
    /// The app's entry, defined by `unikernel::main!`.
    fn unikernel_app_run() -> c_int;
}

/// Called by the C `main` in `glue/main.c` with Unikraft's `argc`/`argv`.
///
/// # Safety
/// `argv` must hold `argc` valid C strings (Unikraft's boot guarantees it).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn unikernel_main(argc: c_int, argv: *const *const c_char) -> c_int {
    // SAFETY: forwarded from the caller's contract.
    unsafe { record_boot_args(argc, argv) };
    // The default thread stack (RUST_MIN_STACK) is set by the C glue before this runs.
    // A panic prints its message and then, instead of an abort that looks like a crash,
    // leaves with status 101 (what a panicking Rust process exits with by default).
    std::panic::set_hook(std::boxed::Box::new(|info| {
        let message = std::format!("\napp panicked: {info}\n");
        Unikraft::console_write(message.as_bytes());
        #[cfg(feature = "backtrace")]
        Unikraft::console_write(std::format!("{}\n", backtrace_line()).as_bytes());
        Unikraft::exit(101)
    }));
    // SAFETY: the app's entry takes no arguments and returns a status.
    let code = unsafe { unikernel_app_run() };
    Unikraft::exit(code)
}

/// Records the boot arguments from the C `argv` (skipping the image name in `argv[0]`).
///
/// # Safety
/// `argv` must point to `argc` valid NUL-terminated strings (as Unikraft's boot passes).
unsafe fn record_boot_args(argc: c_int, argv: *const *const c_char) {
    let raw = (1..argc.max(0) as usize).map(|i| {
        // SAFETY: the caller guarantees `argc` valid entries.
        unsafe { std::ffi::CStr::from_ptr(*argv.add(i)) }.to_bytes()
    });
    // An argument that is not UTF-8 is refused here (message, status 2), not altered.
    let args = shared_core::bootargs::BootArgs::or_exit(shared_core::bootargs::args_from_bytes(raw));
    // `--rt-unikraft-*` arguments are the runtime's, not the app's.
    let (runtime, app): (std::vec::Vec<_>, std::vec::Vec<_>) =
        args.into_iter().partition(|a| a.starts_with("--rt-unikraft-"));
    for arg in runtime {
        if let Some(n) = arg.strip_prefix("--rt-unikraft-rx-batch=").and_then(|n| n.parse::<usize>().ok()) {
            // Only the net driver reads it; an image without one has nothing to batch.
            #[cfg(feature = "net")]
            crate::net::set_rx_batch(n);
            #[cfg(not(feature = "net"))]
            let _ = n;
        } else {
            let message = std::format!("rt-unikraft: ignoring unknown runtime argument {arg}\n");
            Unikraft::console_write(message.as_bytes());
        }
    }
    let _ = crate::BOOT_ARGS.set(app);
}

#[cfg(not(feature = "backtrace"))]
pub use unwind_stubs::*;
#[cfg(feature = "backtrace")]
pub use unwinder::*;

/// The `_Unwind_*` family as stubs (the default). Apps are built with `panic = "abort"`,
/// so nothing ever unwinds; std still contains landing pads and a backtrace walker that
/// name these. A backtrace comes out empty; anything that would really unwind aborts.
/// These are in their own module: nothing else defines them, so the linker pulls whichever
/// object holds them.
#[cfg(not(feature = "backtrace"))]
mod unwind_stubs {
    use core::ffi::{c_int, c_void};

    /// `_URC_END_OF_STACK`: "no (more) frames".
    const URC_END_OF_STACK: c_int = 5;

    #[unsafe(no_mangle)]
    pub extern "C" fn _Unwind_Backtrace(_trace: *mut c_void, _arg: *mut c_void) -> c_int {
        URC_END_OF_STACK
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn _Unwind_RaiseException(_exception: *mut c_void) -> c_int {
        URC_END_OF_STACK
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn _Unwind_Resume(_exception: *mut c_void) -> ! {
        std::process::abort()
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn _Unwind_DeleteException(_exception: *mut c_void) {}

    #[unsafe(no_mangle)]
    pub extern "C" fn _Unwind_GetIP(_context: *mut c_void) -> usize {
        0
    }

    /// # Safety
    /// `ip_before_insn` is null or valid for a write.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn _Unwind_GetIPInfo(_context: *mut c_void, ip_before_insn: *mut c_int) -> usize {
        if !ip_before_insn.is_null() {
            // SAFETY: the caller passes a valid out-pointer when it is non-null.
            unsafe { *ip_before_insn = 0 };
        }
        0
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn _Unwind_GetCFA(_context: *mut c_void) -> usize {
        0
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn _Unwind_GetLanguageSpecificData(_context: *mut c_void) -> *mut c_void {
        core::ptr::null_mut()
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn _Unwind_GetRegionStart(_context: *mut c_void) -> usize {
        0
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn _Unwind_GetTextRelBase(_context: *mut c_void) -> usize {
        0
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn _Unwind_GetDataRelBase(_context: *mut c_void) -> usize {
        0
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn _Unwind_SetGR(_context: *mut c_void, _index: c_int, _value: usize) {}

    #[unsafe(no_mangle)]
    pub extern "C" fn _Unwind_SetIP(_context: *mut c_void, _value: usize) {}

    #[unsafe(no_mangle)]
    pub extern "C" fn _Unwind_FindEnclosingFunction(_pc: *mut c_void) -> *mut c_void {
        core::ptr::null_mut()
    }
}

/// With the `backtrace` feature (`backtrace = true` in `[package.metadata.unikraft]`),
/// gcc's `libgcc_eh` provides the real `_Unwind_*` family. It finds a function's unwind
/// table through `_dl_find_object`, which glibc provides and musl does not; the C glue
/// (`glue/dl_find_object.inc`) answers with the image's own `.eh_frame_hdr`, whose bounds
/// Unikraft's linker script exports. The panic hook then prints the return addresses on
/// one line (`rt-unikraft backtrace: 0x...`, `console_protocol::backtrace`) for
/// `cargo unikraft run` to symbolize
/// from the debug image: the image itself carries no symbol names to do it here.
#[cfg(feature = "backtrace")]
mod unwinder {
    use core::ffi::{c_int, c_void};

    unsafe extern "C" {
        fn _Unwind_Backtrace(trace: extern "C" fn(*mut c_void, *mut c_void) -> c_int, arg: *mut c_void) -> c_int;
        fn _Unwind_GetIP(context: *mut c_void) -> usize;
    }

    /// At most this many frames are printed.
    const MAX_FRAMES: usize = 64;

    struct Frames {
        ips: [usize; MAX_FRAMES],
        len: usize,
    }

    extern "C" fn record_frame(context: *mut c_void, arg: *mut c_void) -> c_int {
        // SAFETY: `arg` is the `Frames` passed to `_Unwind_Backtrace` below.
        let frames = unsafe { &mut *arg.cast::<Frames>() };
        // SAFETY: `context` comes from the unwinder for this callback.
        let ip = unsafe { _Unwind_GetIP(context) };
        if ip == 0 || frames.len == MAX_FRAMES {
            return 5; // _URC_END_OF_STACK: stop here
        }
        frames.ips[frames.len] = ip;
        frames.len += 1;
        0 // _URC_NO_REASON: keep going
    }

    /// The return addresses of the calling thread's stack, as one console line.
    pub fn backtrace_line() -> std::string::String {
        let mut frames = Frames { ips: [0; MAX_FRAMES], len: 0 };
        // SAFETY: the callback only writes into `frames`, which outlives the call.
        unsafe { _Unwind_Backtrace(record_frame, (&raw mut frames).cast()) };
        use std::string::ToString;
        console_protocol::backtrace::Backtrace { addresses: &frames.ips[..frames.len] }.to_string()
    }
}
