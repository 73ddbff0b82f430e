//! `rt-unix`: the hosted backend. Runs a unikernel app as an ordinary Linux process.
//!
//! * clocks: `clock_gettime(CLOCK_MONOTONIC / CLOCK_REALTIME)`
//! * random: `getrandom(2)`
//! * console: unbuffered `write(2)` to stdout, so nothing is lost on exit
//! * boot arguments: the process arguments after the program name; one that is not UTF-8
//!   ends the process with status 2 before the app starts, naming it (as on every backend)
//! * net: a Linux TAP device ([`tap::TapDevice`]), one frame per `read`/`write`
//! * block: a regular file ([`file_block::FileDisk`])
//! * idle wait: `ppoll(2)` over every opened device fd, with the next timer as timeout
//!
//! Configuration comes from the environment, since boot arguments belong to the app:
//! `RT_UNIX_TAP` names the TAP interface (default `tap0`), `RT_UNIX_BLOCK` the disk image.

pub mod file_block;
pub mod tap;

use std::boxed::Box;
use std::io::Write;
use std::os::fd::RawFd;
use std::sync::Mutex;

use shared_core::block::BlockDevice;
use shared_core::net::NetDevice;
use shared_core::services::{OpenError, Platform};

/// Every allocation is counted, so `shared_core::heap::stats()` can report what the app
/// holds (see the `heap` module of shared-core).
#[global_allocator]
static HEAP: shared_core::heap::CountingAlloc<std::alloc::System> =
    shared_core::heap::CountingAlloc::new(std::alloc::System);

/// File descriptors the idle wait watches for input (opened net devices).
static WATCHED_FDS: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

pub(crate) fn watch_fd(fd: RawFd) {
    WATCHED_FDS.lock().unwrap_or_else(|e| e.into_inner()).push(fd);
}

pub(crate) fn unwatch_fd(fd: RawFd) {
    WATCHED_FDS.lock().unwrap_or_else(|e| e.into_inner()).retain(|&f| f != fd);
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer; both clocks always exist on Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The unix [`Platform`].
pub struct Unix;

impl Platform for Unix {
    fn backend_name() -> &'static str {
        "unix"
    }

    fn monotonic_ns() -> u64 {
        clock_ns(libc::CLOCK_MONOTONIC)
    }

    fn wall_clock_ns() -> u64 {
        clock_ns(libc::CLOCK_REALTIME)
    }

    fn fill_random(buf: &mut [u8]) {
        let mut filled = 0;
        while filled < buf.len() {
            let rest = &mut buf[filled..];
            // SAFETY: writes at most `rest.len()` bytes into `rest`.
            let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
            if n > 0 {
                filled += n as usize;
            } else if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                panic!("getrandom failed: {}", std::io::Error::last_os_error());
            }
        }
    }

    fn console_write(bytes: &[u8]) {
        // Unbuffered on purpose: `exit` must not lose output sitting in a buffer.
        let _ = std::io::stdout().lock().write_all(bytes);
        let _ = std::io::stdout().flush();
    }

    fn exit(code: i32) -> ! {
        let _ = std::io::stdout().flush();
        std::process::exit(code)
    }

    fn boot_args() -> Vec<String> {
        // [`start`] refused non-UTF-8 arguments, so nothing is altered here (and
        // `std::env::args`, which panics on them, is not used).
        std::env::args_os().skip(1).map(|a| a.to_string_lossy().into_owned()).collect()
    }

    fn wait_until(deadline_ns: Option<u64>) {
        let fds: Vec<libc::pollfd> = WATCHED_FDS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 })
            .collect();
        let mut fds = fds;
        let timeout = deadline_ns.map(|deadline| {
            let left = deadline.saturating_sub(Self::monotonic_ns());
            libc::timespec { tv_sec: (left / 1_000_000_000) as _, tv_nsec: (left % 1_000_000_000) as _ }
        });
        let timeout_ptr = timeout.as_ref().map_or(std::ptr::null(), |t| t as *const _);
        // SAFETY: `fds` and `timeout` outlive the call; a null sigmask keeps the current one.
        unsafe { libc::ppoll(fds.as_mut_ptr(), fds.len() as _, timeout_ptr, std::ptr::null()) };
    }

    fn open_net(name: &str) -> Result<Box<dyn NetDevice>, OpenError> {
        let ifname = if name.is_empty() {
            std::env::var("RT_UNIX_TAP").unwrap_or_else(|_| "tap0".to_string())
        } else {
            name.to_string()
        };
        Ok(Box::new(tap::TapDevice::open(&ifname)?))
    }

    fn open_block(name: &str) -> Result<Box<dyn BlockDevice>, OpenError> {
        let path = if name.is_empty() {
            std::env::var("RT_UNIX_BLOCK")
                .map_err(|_| OpenError::NotFound("no block device: set RT_UNIX_BLOCK to a disk image file".into()))?
        } else {
            name.to_string()
        };
        Ok(Box::new(file_block::FileDisk::open(std::path::Path::new(&path))?))
    }

    fn thread_id() -> usize {
        std::thread_local!(static ID: u8 = const { 0 });
        // The address of a thread-local is unique among the threads alive now.
        ID.with(|id| id as *const u8 as usize)
    }
}

/// Refuses arguments that are not UTF-8 (message, status 2), before the app sees them.
fn check_boot_args() {
    use std::os::unix::ffi::OsStrExt;
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let raw = args.iter().map(|a| a.as_bytes());
    shared_core::bootargs::BootArgs::or_exit(shared_core::bootargs::args_from_bytes(raw));
}

/// Runs the app's entry function as the process's `main` and returns its exit status.
/// Called by `unikernel::main!`.
pub fn start(_argc: i32, _argv: *const *const u8, entry: impl FnOnce() -> i32) -> i32 {
    // Arguments come from std (glibc hands them to std's .init_array hook), so argc/argv
    // are not needed here.
    // A panic prints its message and exits with 101, as on every backend (apps are built
    // with panic = "abort", which would otherwise end in SIGABRT).
    std::panic::set_hook(Box::new(|info| {
        let _ = std::io::stdout().flush();
        eprintln!("\napp panicked: {info}");
        std::process::exit(101)
    }));
    check_boot_args();
    let code = entry();
    let _ = std::io::stdout().flush();
    code
}
