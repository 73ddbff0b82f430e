//! The entry point and the libc shims, in one module on purpose.
//!
//! The linker takes members out of the Rust archive only to resolve undefined symbols.
//! `glue/main.c` refers to [`unikernel_main`], so the object holding it is always linked;
//! keeping the shims in the same module keeps them in that object (rustc partitions code
//! by module), which matters for `clock_nanosleep`: lib-musl already defines it (weakly),
//! so nothing would ever pull a separate object holding our strong override.
//!
//! The shims answer the symbols the precompiled `x86_64-unknown-linux-gnu` std refers to
//! that glibc has and musl does not. None of them can do anything useful in a unikernel;
//! they exist so the link succeeds and std's callers get a clean error.

use core::ffi::{c_char, c_int, c_void};

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
    set_default_thread_stack();
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

/// The stack size std gives a spawned thread unless the app asks for another one
/// (`thread::Builder::stack_size`) or the environment sets `RUST_MIN_STACK`.
///
/// std's own default is 2 MiB, sized for hosted processes where untouched stack pages
/// cost nothing. Unikraft backs the whole stack with memory up front, so a single thread
/// would need a guest of about 10 MB. 256 KiB is ample for ordinary code (the main
/// thread runs on Unikraft's much smaller default) and lets a Rust hello that spawns a
/// thread boot in 4 MB (`cargo xtask bench-runtime` measures it).
pub const DEFAULT_THREAD_STACK: usize = 256 * 1024;

/// Sets `RUST_MIN_STACK` to [`DEFAULT_THREAD_STACK`] unless it is already set (through
/// Unikraft's compiled-in environment, `CONFIG_LIBPOSIX_ENVIRON_ENVP<n>`).
fn set_default_thread_stack() {
    if std::env::var_os("RUST_MIN_STACK").is_none() {
        // SAFETY: called before the app runs, while this is the only thread.
        unsafe { std::env::set_var("RUST_MIN_STACK", std::format!("{DEFAULT_THREAD_STACK}")) };
    }
}

/// Records the boot arguments from the C `argv` (skipping the image name in `argv[0]`).
///
/// # Safety
/// `argv` must point to `argc` valid NUL-terminated strings (as Unikraft's boot passes).
unsafe fn record_boot_args(argc: c_int, argv: *const *const c_char) {
    let args: std::vec::Vec<std::string::String> = (1..argc.max(0) as usize)
        .map(|i| {
            // SAFETY: the caller guarantees `argc` valid entries.
            let arg = unsafe { std::ffi::CStr::from_ptr(*argv.add(i)) };
            arg.to_string_lossy().into_owned()
        })
        .collect();
    // `--rt-unikraft-*` arguments are the runtime's, not the app's.
    let (runtime, app): (std::vec::Vec<_>, std::vec::Vec<_>) =
        args.into_iter().partition(|a| a.starts_with("--rt-unikraft-"));
    for arg in runtime {
        if let Some(n) = arg.strip_prefix("--rt-unikraft-rx-batch=").and_then(|n| n.parse().ok()) {
            crate::net::set_rx_batch(n);
        } else {
            let message = std::format!("rt-unikraft: ignoring unknown runtime argument {arg}\n");
            Unikraft::console_write(message.as_bytes());
        }
    }
    let _ = crate::BOOT_ARGS.set(app);
}

/// std asks for the glibc version to pick workarounds; claim a recent glibc.
#[unsafe(no_mangle)]
pub extern "C" fn gnu_get_libc_version() -> *const c_char {
    c"2.36".as_ptr()
}

/// std re-reads resolv.conf with this after a failed lookup; there is nothing to re-read.
#[unsafe(no_mangle)]
pub extern "C" fn __res_init() -> c_int {
    0
}

/// No processes in a unikernel: `std::process::Command::spawn` gets `ENOSYS`.
#[unsafe(no_mangle)]
pub extern "C" fn posix_spawnp(
    _pid: *mut c_int,
    _file: *const c_char,
    _file_actions: *const c_void,
    _attr: *const c_void,
    _argv: *const *mut c_char,
    _envp: *const *mut c_char,
) -> c_int {
    libc::ENOSYS
}

/// `std::thread::sleep` uses `clock_nanosleep(CLOCK_MONOTONIC, 0, ...)`, which Unikraft
/// stubs (it returns at once). Relative sleeps on either clock become `nanosleep`;
/// absolute ones sleep until the deadline.
///
/// # Safety
/// `request` must be valid; `remain` may be null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clock_nanosleep(
    clock: libc::clockid_t,
    flags: c_int,
    request: *const libc::timespec,
    _remain: *mut libc::timespec,
) -> c_int {
    if clock != libc::CLOCK_MONOTONIC && clock != libc::CLOCK_REALTIME {
        return libc::EINVAL;
    }
    // SAFETY: the caller passes a valid request.
    let request = unsafe { &*request };
    if request.tv_nsec < 0 || request.tv_nsec >= 1_000_000_000 || request.tv_sec < 0 {
        return libc::EINVAL;
    }
    let requested = request.tv_sec as u64 * 1_000_000_000 + request.tv_nsec as u64;
    let ns = if flags & libc::TIMER_ABSTIME != 0 { requested.saturating_sub(clock_ns(clock)) } else { requested };
    sleep_ns(ns);
    0
}

#[cfg(not(feature = "backtrace"))]
pub use unwind_stubs::*;
#[cfg(feature = "backtrace")]
pub use unwinder::*;

/// The `_Unwind_*` family as stubs (the default). Apps are built with `panic = "abort"`,
/// so nothing ever unwinds; std still contains landing pads and a backtrace walker that
/// name these. A backtrace comes out empty; anything that would really unwind aborts.
/// These are in their own module: unlike `clock_nanosleep` nothing else defines them, so
/// the linker pulls whichever object holds them.
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
/// table through `_dl_find_object`, which glibc provides and musl does not; here it
/// answers with the image's own `.eh_frame_hdr`, whose bounds Unikraft's linker script
/// exports. The panic hook then prints the return addresses on one line
/// (`rt-unikraft backtrace: 0x...`) for `cargo xtask kraft-run` to symbolize from the
/// debug image: the image itself carries no symbol names to do it here.
#[cfg(feature = "backtrace")]
mod unwinder {
    use core::ffi::{c_int, c_void};

    unsafe extern "C" {
        static __eh_frame_hdr_start: u8;
        static _text: u8;
        static _etext: u8;
        fn _Unwind_Backtrace(trace: extern "C" fn(*mut c_void, *mut c_void) -> c_int, arg: *mut c_void) -> c_int;
        fn _Unwind_GetIP(context: *mut c_void) -> usize;
    }

    /// glibc's `struct dl_find_object` on x86_64 (no `dlfo_eh_dbase`/`dlfo_eh_count`).
    #[repr(C)]
    pub struct DlFindObject {
        flags: u64,
        map_start: *mut c_void,
        map_end: *mut c_void,
        link_map: *mut c_void,
        eh_frame: *mut c_void,
        reserved: [u64; 7],
    }

    /// The one "object" of a unikernel: the image's text, and its `.eh_frame_hdr`.
    ///
    /// # Safety
    /// `result` must be valid for a write.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn _dl_find_object(pc: *mut c_void, result: *mut DlFindObject) -> c_int {
        // Only the addresses of the linker-script symbols are taken, never their contents.
        let (start, end) = (&raw const _text as usize, &raw const _etext as usize);
        let hdr = &raw const __eh_frame_hdr_start as *mut c_void;
        if !(start..end).contains(&(pc as usize)) {
            return -1;
        }
        // SAFETY: the caller passes a valid out-pointer.
        unsafe {
            result.write(DlFindObject {
                flags: 0,
                map_start: start as *mut c_void,
                map_end: end as *mut c_void,
                link_map: core::ptr::null_mut(),
                eh_frame: hdr,
                reserved: [0; 7],
            })
        };
        0
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
        let mut line = std::string::String::from("rt-unikraft backtrace:");
        for ip in &frames.ips[..frames.len] {
            line.push_str(&std::format!(" {ip:#x}"));
        }
        line
    }
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer; Unikraft's posix-time implements both clocks.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Sleeps `ns` nanoseconds with `nanosleep`, which Unikraft implements for real.
fn sleep_ns(ns: u64) {
    let mut request = libc::timespec { tv_sec: (ns / 1_000_000_000) as _, tv_nsec: (ns % 1_000_000_000) as _ };
    let mut remaining = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: both pointers are valid for the call.
    while unsafe { libc::nanosleep(&request, &mut remaining) } != 0 {
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
        request = remaining;
    }
}
