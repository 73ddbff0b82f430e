//! `rt-unikraft`: the Unikraft backend.
//!
//! # How a stable, stock std runs on Unikraft
//!
//! There is no Unikraft target in rustup and this project does not use nightly or
//! `build-std`. Instead the app is compiled for the ordinary `x86_64-unknown-linux-gnu`
//! target as a `staticlib`, and Unikraft's build links that archive against Unikraft's
//! lib-musl. This works because both are x86_64 System V code and, for the parts std
//! uses, musl and glibc share the Linux ABI (struct layouts, errno values, calling
//! convention). What is left is small and lives here:
//!
//! * [`entry`]: the `unikernel_main` entry the C glue (`glue/main.c`) calls, and the
//!   `_Unwind_*` stubs (or, with the `backtrace` feature, the backtrace printer).
//! * `glue/std_shims.inc` (C, #included by `glue/main.c` and `glue/hosted.c`): the few
//!   glibc-only symbols the gnu std refers to (`gnu_get_libc_version`, `__res_init`,
//!   `posix_spawnp`), a `clock_nanosleep` that really sleeps (Unikraft stubs the monotonic
//!   case, which is what `std::thread::sleep` calls) and the default thread stack size.
//!   Being C, they serve plain `fn main()` binaries too, which do not link this crate.
//! * [`Unikraft`]: the shared-core [`Platform`], written against libc calls Unikraft's
//!   POSIX layer implements (`clock_gettime`, `getrandom`, `write`, `nanosleep`).
//! * `glue/main.c` (compiled by Unikraft's build): the C `main`, and the exit path that
//!   carries the app's exit code out of the VM (QEMU's `isa-debug-exit` device);
//!   `glue/hosted.c` is its counterpart for the hosted-musl harness.
//!
//! Devices: [`net`] (uknetdev) and [`block`] (ukblkdev) drive Unikraft's drivers through
//! the C glue (`glue/netdev.c`, `glue/blkdev.c`). Each is compiled in with its feature
//! (`net`, `block`), which cargo-unikraft turns on for the `devices` the app lists: an image
//! without a device carries no driver for it. Everything that crosses between this
//! crate and the glue is declared once in C, `glue/rt_glue.h`, and once in Rust, the
//! private `glue` module, whose test checks the two against each other with the host's C
//! compiler. What the glue reports about a received frame is interpreted by [`frame`],
//! pure Rust with unit and property tests.
//!
//! std's sockets: with `sockets = true`, [`socket`] is an AF_INET driver for Unikraft's
//! posix-socket (`glue/socket.c` registers it) over shared-core's smoltcp stack on the
//! [`net`] device, so `std::net`, mio and tokio work unchanged.

#[cfg(any(feature = "block", test))]
pub mod block;
#[cfg(not(test))]
pub mod entry;
pub mod frame;
mod glue;
#[cfg(any(feature = "net", test))]
pub mod net;
#[cfg(any(feature = "sockets", test))]
pub mod socket;

// The driver linked beside a plain binary has no facade to provide the platform.
#[cfg(all(feature = "standalone-sockets", not(test)))]
shared_core::provide_platform!(Unikraft);

use std::boxed::Box;
use std::string::String;
use std::sync::OnceLock;
use std::vec::Vec;

use shared_core::block::BlockDevice;
use shared_core::net::NetDevice;
use shared_core::services::{OpenError, Platform};

/// Every allocation is counted, so `shared_core::heap::stats()` can report what the app
/// holds (see the `heap` module of shared-core).
#[global_allocator]
static HEAP: shared_core::heap::CountingAlloc<std::alloc::System> =
    shared_core::heap::CountingAlloc::new(std::alloc::System);

/// The app's boot arguments (everything after the image name), recorded by the entry.
pub(crate) static BOOT_ARGS: OnceLock<Vec<String>> = OnceLock::new();

/// Longest single idle sleep when nothing is scheduled: the executor re-checks after it.
const IDLE_SLEEP_NS: u64 = 1_000_000_000;

/// The Unikraft [`Platform`].
pub struct Unikraft;

impl Platform for Unikraft {
    fn backend_name() -> &'static str {
        "unikraft"
    }

    fn monotonic_ns() -> u64 {
        // SAFETY: plain call into Unikraft's platform layer.
        unsafe { unikraft_sys::ukplat_monotonic_clock() }
    }

    fn wall_clock_ns() -> u64 {
        // SAFETY: plain call into Unikraft's platform layer.
        unsafe { unikraft_sys::ukplat_wall_clock() }
    }

    fn fill_random(buf: &mut [u8]) {
        let mut filled = 0;
        while filled < buf.len() {
            let rest = &mut buf[filled..];
            // SAFETY: writes at most `rest.len()` bytes into `rest`.
            let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
            if n > 0 {
                filled += n as usize;
            } else if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                panic!("getrandom failed: {}", std::io::Error::last_os_error());
            }
        }
    }

    fn console_write(bytes: &[u8]) {
        // Straight to fd 1 (Unikraft's console), unbuffered, so `exit` loses nothing.
        let mut rest = bytes;
        while !rest.is_empty() {
            // SAFETY: `rest` is valid for `rest.len()` bytes.
            let n = unsafe { libc::write(1, rest.as_ptr().cast(), rest.len()) };
            if n <= 0 {
                if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return;
            }
            rest = &rest[n as usize..];
        }
    }

    fn exit(code: i32) -> ! {
        // On Unikraft the glue's `__wrap_exit` records the code and reports it to the VMM
        // after the exit handlers ran (glue/main.c); hosted, this is a process exit.
        // SAFETY: plain process exit; nothing is borrowed across it.
        unsafe { libc::exit(code) }
    }

    fn boot_args() -> Vec<String> {
        BOOT_ARGS.get().cloned().unwrap_or_default()
    }

    fn wait_until(deadline_ns: Option<u64>) {
        // Blocks in the scheduler until a device interrupt (uknetdev receive, ukblkdev
        // completion), a kick, or the deadline: an idle guest halts its vCPU.
        let left = match deadline_ns {
            Some(deadline) => deadline.saturating_sub(Self::monotonic_ns()),
            None => IDLE_SLEEP_NS,
        };
        if left > 0 {
            // SAFETY: plain call. The executor's own wake-up: the socket layer's network
            // thread, if any, sleeps on another one (glue/netdev.c).
            unsafe { glue::rtuk_wait_executor(left) };
        }
    }

    fn open_net(name: &str) -> Result<Box<dyn NetDevice>, OpenError> {
        let index = device_index("net", name)?;
        #[cfg(feature = "net")]
        return Ok(Box::new(net::UkNet::open(index)?));
        #[cfg(not(feature = "net"))]
        Err(not_built_in(index, "network", "net"))
    }

    fn open_block(name: &str) -> Result<Box<dyn BlockDevice>, OpenError> {
        let index = device_index("block", name)?;
        #[cfg(feature = "block")]
        return Ok(Box::new(block::UkBlock::open(index)?));
        #[cfg(not(feature = "block"))]
        Err(not_built_in(index, "block", "block"))
    }

    fn thread_id() -> usize {
        std::thread_local!(static ID: u8 = const { 0 });
        // The address of a thread-local is unique among the threads alive now.
        ID.with(|id| id as *const u8 as usize)
    }
}

/// The index a device name stands for: `""` is the first (0), others are numbers.
fn device_index(kind: &str, name: &str) -> Result<u32, OpenError> {
    if name.is_empty() {
        return Ok(0);
    }
    name.parse().map_err(|_| {
        OpenError::NotFound(std::format!(
            "{kind} device `{name}`: Unikraft devices are named by number (\"0\", \"1\", ...)"
        ))
    })
}

/// Why an image built without a device's driver cannot open it.
#[cfg(not(all(feature = "net", feature = "block")))]
fn not_built_in(index: u32, kind: &str, device: &str) -> OpenError {
    OpenError::NotFound(std::format!(
        "{kind} device {index}: this image has no {kind} driver (the app needs `devices = [\"{device}\"]` in \
         [package.metadata.unikraft])"
    ))
}
