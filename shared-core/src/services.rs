//! Link-time selected services.
//!
//! This is the Rust counterpart of MirageOS's dune *virtual libraries*: `shared-core`
//! declares the services as `extern "Rust"` symbols, and exactly one backend crate defines
//! them. Apps call plain functions ([`monotonic_ns`], [`console_write`], ...) with no
//! generics and no backend type in sight.
//!
//! A backend implements the [`Platform`] trait (so the compiler checks it is complete) and
//! the backend-selecting facade crate `unikernel` turns that implementation into the
//! symbols with [`provide_platform!`](crate::provide_platform). Only the facade invokes the
//! macro, and it does so under exactly one of its backend features; with zero or two
//! features enabled the facade stops the build with a `compile_error!` that says which
//! feature to enable or remove. The linker therefore never sees zero or two providers.
//!
//! The symbol names are private (`__shared_core_platform_*`) and may change between
//! versions; backends only ever see the trait.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicPtr, Ordering};

use crate::block::BlockDevice;
use crate::net::NetDevice;

/// Why a device could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// The backend has no device of that kind or name.
    NotFound(String),
    /// The device exists but could not be set up; the text says why.
    Failed(String),
}

impl core::fmt::Display for OpenError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            OpenError::NotFound(what) => write!(f, "no such device: {what}"),
            OpenError::Failed(why) => write!(f, "device setup failed: {why}"),
        }
    }
}

impl core::error::Error for OpenError {}

/// What a backend provides. Implemented once per backend on a unit type; never called
/// through generics by apps.
pub trait Platform {
    /// A short backend name for reports (`"unix"`, `"unikraft"`, `"solo5"`).
    fn backend_name() -> &'static str;
    /// Nanoseconds on a clock that never goes backwards (origin unspecified).
    fn monotonic_ns() -> u64;
    /// Nanoseconds since the Unix epoch, as well as the platform knows it.
    fn wall_clock_ns() -> u64;
    /// Fills `buf` with random bytes suitable for seeding (TCP sequence numbers, hash seeds).
    fn fill_random(buf: &mut [u8]);
    /// Writes bytes to the console, unbuffered.
    fn console_write(bytes: &[u8]);
    /// Ends the program with `code` as its exit status.
    fn exit(code: i32) -> !;
    /// The application's boot arguments, without the program name.
    fn boot_args() -> Vec<String>;
    /// Blocks until a device has an event or `deadline_ns` (monotonic) passes; `None` means
    /// no deadline. May return early; callers re-check their conditions.
    fn wait_until(deadline_ns: Option<u64>);
    /// Opens the network device called `name` (`""` = the first/default one).
    fn open_net(name: &str) -> Result<Box<dyn NetDevice>, OpenError>;
    /// Opens the block device called `name` (`""` = the first/default one).
    fn open_block(name: &str) -> Result<Box<dyn BlockDevice>, OpenError>;
    /// A nonzero number that identifies the calling thread among the threads alive now
    /// (a backend without threads returns 1). The executor uses it to refuse being
    /// driven from two threads.
    fn thread_id() -> usize;
}

/// Defines the link-time service symbols from a [`Platform`] implementation.
///
/// Invoked only by the `unikernel` facade crate, under exactly one backend feature. Invoking
/// it twice in one program is a duplicate-symbol error, which is why apps and backends never
/// call it themselves.
#[macro_export]
macro_rules! provide_platform {
    ($platform:ty) => {
        const _: () = {
            use $crate::services::Platform as __P;
            #[unsafe(no_mangle)]
            fn __shared_core_platform_backend_name() -> &'static str {
                <$platform as __P>::backend_name()
            }
            #[unsafe(no_mangle)]
            fn __shared_core_platform_monotonic_ns() -> u64 {
                <$platform as __P>::monotonic_ns()
            }
            #[unsafe(no_mangle)]
            fn __shared_core_platform_wall_clock_ns() -> u64 {
                <$platform as __P>::wall_clock_ns()
            }
            #[unsafe(no_mangle)]
            fn __shared_core_platform_fill_random(buf: &mut [u8]) {
                <$platform as __P>::fill_random(buf)
            }
            #[unsafe(no_mangle)]
            fn __shared_core_platform_console_write(bytes: &[u8]) {
                <$platform as __P>::console_write(bytes)
            }
            #[unsafe(no_mangle)]
            fn __shared_core_platform_exit(code: i32) -> ! {
                <$platform as __P>::exit(code)
            }
            #[unsafe(no_mangle)]
            fn __shared_core_platform_boot_args() -> $crate::__alloc::vec::Vec<$crate::__alloc::string::String> {
                <$platform as __P>::boot_args()
            }
            #[unsafe(no_mangle)]
            fn __shared_core_platform_wait_until(deadline_ns: Option<u64>) {
                <$platform as __P>::wait_until(deadline_ns)
            }
            #[unsafe(no_mangle)]
            fn __shared_core_platform_open_net(
                name: &str,
            ) -> Result<$crate::__alloc::boxed::Box<dyn $crate::net::NetDevice>, $crate::services::OpenError> {
                <$platform as __P>::open_net(name)
            }
            #[unsafe(no_mangle)]
            fn __shared_core_platform_open_block(
                name: &str,
            ) -> Result<$crate::__alloc::boxed::Box<dyn $crate::block::BlockDevice>, $crate::services::OpenError> {
                <$platform as __P>::open_block(name)
            }
            #[unsafe(no_mangle)]
            fn __shared_core_platform_thread_id() -> usize {
                <$platform as __P>::thread_id()
            }
        };
    };
}

// Declared with the Rust ABI: caller and callee are built by the same compiler in one
// program, so Rust types (slices, `Box<dyn _>`, `Result`) cross the boundary unchanged.
unsafe extern "Rust" {
    fn __shared_core_platform_backend_name() -> &'static str;
    fn __shared_core_platform_monotonic_ns() -> u64;
    fn __shared_core_platform_wall_clock_ns() -> u64;
    fn __shared_core_platform_fill_random(buf: &mut [u8]);
    fn __shared_core_platform_console_write(bytes: &[u8]);
    fn __shared_core_platform_exit(code: i32) -> !;
    fn __shared_core_platform_boot_args() -> Vec<String>;
    fn __shared_core_platform_wait_until(deadline_ns: Option<u64>);
    fn __shared_core_platform_open_net(name: &str) -> Result<Box<dyn NetDevice>, OpenError>;
    fn __shared_core_platform_open_block(name: &str) -> Result<Box<dyn BlockDevice>, OpenError>;
    fn __shared_core_platform_thread_id() -> usize;
}

/// The backend's short name (`"unix"`, `"unikraft"`, `"solo5"`).
pub fn backend_name() -> &'static str {
    // SAFETY: defined by exactly one backend through `provide_platform!`.
    unsafe { __shared_core_platform_backend_name() }
}

/// Nanoseconds on the monotonic clock.
pub fn monotonic_ns() -> u64 {
    // SAFETY: defined by exactly one backend through `provide_platform!`.
    unsafe { __shared_core_platform_monotonic_ns() }
}

/// Nanoseconds since the Unix epoch.
pub fn wall_clock_ns() -> u64 {
    // SAFETY: as above.
    unsafe { __shared_core_platform_wall_clock_ns() }
}

/// Fills `buf` with random bytes.
pub fn fill_random(buf: &mut [u8]) {
    // SAFETY: as above.
    unsafe { __shared_core_platform_fill_random(buf) }
}

/// A random `u64`.
pub fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    fill_random(&mut bytes);
    u64::from_le_bytes(bytes)
}

/// Writes raw bytes to the console. Prefer [`println!`](crate::println).
pub fn console_write(bytes: &[u8]) {
    // SAFETY: as above.
    unsafe { __shared_core_platform_console_write(bytes) }
}

/// Ends the program with `code` as its exit status, [`exit_status`]`(code)` on every
/// backend: a code outside 0..=255 ends the program with 255, never with 0.
pub fn exit(code: i32) -> ! {
    // SAFETY: as above.
    unsafe { __shared_core_platform_exit(exit_status(code)) }
}

/// The status byte an app's exit code becomes, the same on every backend: 0..=255 as
/// they are, anything else (negative, or above 255) 255. A process's status would keep
/// only the low byte, so `256` would read as success; Solo5's tender does the same, and
/// clamping negative codes to 0 would too.
pub const fn exit_status(code: i32) -> i32 {
    if matches!(code, 0..=255) {
        code
    } else {
        255
    }
}

/// The boot arguments (kernel command line after `--`, or the process arguments).
pub fn boot_args() -> Vec<String> {
    // SAFETY: as above.
    unsafe { __shared_core_platform_boot_args() }
}

/// Blocks until a device event or the monotonic `deadline_ns`; used by the executor.
/// A [`WaitHook`], when one is set, runs first and may pull the deadline in (the wait then
/// ends early: a spurious wake-up for the caller).
pub fn wait_until(deadline_ns: Option<u64>) {
    let deadline_ns = before_idle_wait(deadline_ns);
    // SAFETY: as above.
    unsafe { __shared_core_platform_wait_until(deadline_ns) }
}

/// A function that runs before every idle wait ([`wait_until`]) with the wait's deadline
/// and returns the deadline to wait for, which it may pull in. This is how a diagnostic
/// that must get a turn whenever the app waits (the heap sampler prints its samples then)
/// reaches the wait without being part of the platform's contract.
pub type WaitHook = fn(Option<u64>) -> Option<u64>;

/// The [`WaitHook`] (null: none).
static WAIT_HOOK: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

/// Sets the [`WaitHook`], replacing any earlier one (there is one: whoever turns a
/// diagnostic on at start-up, before the app runs).
pub fn set_wait_hook(hook: WaitHook) {
    WAIT_HOOK.store(hook as *mut (), Ordering::Release);
}

/// Runs the [`WaitHook`], if one is set, for an idle wait until `deadline_ns`; returns the
/// deadline to wait for. [`wait_until`] calls it; so does any other place a program idles
/// without going through `wait_until` (rt-unikraft's network thread, where a std program
/// with sockets idles).
pub fn before_idle_wait(deadline_ns: Option<u64>) -> Option<u64> {
    match wait_hook() {
        Some(hook) => hook(deadline_ns),
        None => deadline_ns,
    }
}

fn wait_hook() -> Option<WaitHook> {
    let hook = WAIT_HOOK.load(Ordering::Acquire);
    if hook.is_null() {
        return None;
    }
    // SAFETY: `WAIT_HOOK` only ever holds null or a `WaitHook` stored by `set_wait_hook`.
    Some(unsafe { core::mem::transmute::<*mut (), WaitHook>(hook) })
}

/// Opens a network device (`""` for the default one).
pub fn open_net(name: &str) -> Result<Box<dyn NetDevice>, OpenError> {
    // SAFETY: as above.
    unsafe { __shared_core_platform_open_net(name) }
}

/// Opens a block device (`""` for the default one).
pub fn open_block(name: &str) -> Result<Box<dyn BlockDevice>, OpenError> {
    // SAFETY: as above.
    unsafe { __shared_core_platform_open_block(name) }
}

/// Identifies the calling thread (nonzero; unique among live threads).
pub fn thread_id() -> usize {
    // SAFETY: as above.
    unsafe { __shared_core_platform_thread_id() }
}
