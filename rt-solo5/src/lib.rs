//! `rt-solo5`: the solo5 backend, `no_std` + `alloc`, over the Solo5 ABI (`solo5.h`).
//!
//! Solo5 gives a guest no libc, one heap region and a handful of calls. This crate builds
//! the shared-core services on them:
//!
//! * entry: `solo5_app_main(start_info)`: sets up the heap, records the command line as
//!   boot arguments (split by [`shared_core::bootargs::split_cmdline`]'s quoting rule, since
//!   the tender joins its arguments with spaces; a line that does not split, or an argument
//!   that is not UTF-8, ends the guest with status 2 before the app runs), runs the app (`unikernel::main!` defines `unikernel_app_run`), and
//!   returns its status, which the tender exits with;
//! * heap: a linked-list allocator over `[heap_start, heap_start + heap_size - STACK)`;
//!   Solo5 starts the stack at the top of that same region, so the top [`STACK_BYTES`]
//!   are left to it;
//! * clocks: `solo5_clock_monotonic` / `solo5_clock_wall`; console: `solo5_console_write`;
//! * wait: `solo5_yield(deadline)`, which returns early when a device has an event;
//! * random: the CPU's RDRAND (Solo5 has no entropy call), checked with CPUID at first use;
//! * exit: `solo5_exit`; a panic prints its message and exits with 101, as elsewhere;
//! * [`mem`]: the C functions `core` and `alloc` call (`memcpy`, `strlen`...), which no
//!   libc provides here, and stubs for the unwinder symbols they name.
//!
//! Devices: [`net`] (`solo5_net_*`) and [`block`] (`solo5_block_*`).
#![no_std]
// Under `cfg(test)` (clippy --all-targets) the entry, panic handler and C functions are left
// out, since a host test binary has its own; what only they use is then unused.
#![cfg_attr(test, allow(dead_code))]

extern crate alloc;

pub mod block;
#[cfg(not(test))]
pub mod mem;
pub mod net;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::ffi::c_int;

use shared_core::block::BlockDevice;
#[cfg(not(test))]
use shared_core::bootargs::BootArgs;
use shared_core::net::NetDevice;
use shared_core::services::{OpenError, Platform};

/// Bytes at the top of the heap region left to the stack Solo5 starts there.
pub const STACK_BYTES: usize = 512 * 1024;

#[cfg(not(test))]
use solo5_sys::solo5_start_info;
use solo5_sys::{solo5_abort, solo5_clock_monotonic, solo5_clock_wall, solo5_console_write, solo5_exit, solo5_yield};

unsafe extern "C" {
    /// The app's entry, defined by `unikernel::main!`.
    fn unikernel_app_run() -> c_int;
}

/// Counted like every backend's heap (`shared_core::heap::stats()`).
#[cfg(not(test))]
#[global_allocator]
static HEAP: shared_core::heap::CountingAlloc<linked_list_allocator::LockedHeap> =
    shared_core::heap::CountingAlloc::new(linked_list_allocator::LockedHeap::empty());

/// The boot arguments, set once at entry. A lock rather than a `static mut`: Solo5 has one
/// vCPU and no threads, so it is never contended, and it keeps the access safe.
static BOOT_ARGS: spinning_top::Spinlock<Option<Vec<String>>> = spinning_top::const_spinlock(None);

/// Solo5's entry point.
///
/// # Safety
/// Called once by the Solo5 bindings with a valid start info.
#[cfg(not(test))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn solo5_app_main(info: *const solo5_start_info) -> c_int {
    // SAFETY: the bindings pass a valid, read-only start info.
    let info = unsafe { &*info };
    let usable = info.heap_size.saturating_sub(STACK_BYTES);
    // SAFETY: the region is ours (Solo5's contract) and the stack keeps to the top part.
    unsafe { HEAP.inner().lock().init(info.heap_start as *mut u8, usable) };
    let cmdline: &[u8] = if info.cmdline.is_null() {
        &[]
    } else {
        // SAFETY: a NUL-terminated string from the tender, alive for the whole run.
        unsafe { core::ffi::CStr::from_ptr(info.cmdline) }.to_bytes()
    };
    // A bad line or argument ends the guest here with status 2, naming the argument.
    let args = BootArgs::or_exit(boot_args_from_cmdline(cmdline));
    *BOOT_ARGS.lock() = Some(args);
    // The bindings pass this to solo5_exit, whose status keeps only the low byte: the
    // status byte every backend uses (run_app maps it already; this keeps it so).
    // SAFETY: the app's entry takes no arguments and returns a status.
    shared_core::services::exit_status(unsafe { unikernel_app_run() })
}

/// The tender's command line as boot arguments: split with quoting, each checked to be
/// UTF-8.
pub fn boot_args_from_cmdline(cmdline: &[u8]) -> Result<Vec<String>, shared_core::bootargs::ArgError> {
    shared_core::bootargs::args_from_bytes(shared_core::bootargs::split_cmdline(cmdline)?)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    use core::fmt::Write;
    let mut console = Console;
    let _ = write!(console, "\napp panicked: {info}\n");
    Solo5::exit(101)
}

/// `solo5_abort`, for the unwinder stubs in [`mem`].
pub(crate) struct Solo5Abort;

impl Solo5Abort {
    pub(crate) fn abort() -> ! {
        // SAFETY: plain Solo5 call.
        unsafe { solo5_abort() }
    }
}

struct Console;

impl core::fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        Solo5::console_write(s.as_bytes());
        Ok(())
    }
}

/// Whether the CPU has RDRAND (CPUID leaf 1, ECX bit 30).
fn has_rdrand() -> bool {
    // CPUID exists on every x86_64 CPU.
    let leaf = core::arch::x86_64::__cpuid(1);
    leaf.ecx & (1 << 30) != 0
}

#[target_feature(enable = "rdrand")]
unsafe fn rdrand64() -> Option<u64> {
    let mut value = 0u64;
    for _ in 0..10 {
        // SAFETY: the caller checked that RDRAND exists.
        if core::arch::x86_64::_rdrand64_step(&mut value) == 1 {
            return Some(value);
        }
    }
    None
}

/// The solo5 [`Platform`].
pub struct Solo5;

impl Platform for Solo5 {
    fn backend_name() -> &'static str {
        "solo5"
    }

    fn monotonic_ns() -> u64 {
        // SAFETY: plain Solo5 call.
        unsafe { solo5_clock_monotonic() }
    }

    fn wall_clock_ns() -> u64 {
        // SAFETY: plain Solo5 call.
        unsafe { solo5_clock_wall() }
    }

    fn fill_random(buf: &mut [u8]) {
        assert!(has_rdrand(), "rt-solo5 needs RDRAND for random numbers and this CPU has none");
        for chunk in buf.chunks_mut(8) {
            // SAFETY: RDRAND was checked above.
            let value = unsafe { rdrand64() }.expect("RDRAND kept failing");
            chunk.copy_from_slice(&value.to_le_bytes()[..chunk.len()]);
        }
    }

    fn console_write(bytes: &[u8]) {
        // SAFETY: `bytes` is valid for its length.
        unsafe { solo5_console_write(bytes.as_ptr().cast(), bytes.len()) }
    }

    fn exit(code: i32) -> ! {
        // The same status as on every backend (never 0 for a failure); 255 is also
        // Solo5's SOLO5_EXIT_ABORT, a failure either way. solo5_exit ends in the tender's
        // exit, which keeps only the low byte.
        // SAFETY: plain Solo5 call.
        unsafe { solo5_exit(shared_core::services::exit_status(code)) }
    }

    fn boot_args() -> Vec<String> {
        BOOT_ARGS.lock().clone().unwrap_or_default()
    }

    fn wait_until(deadline_ns: Option<u64>) {
        let deadline = deadline_ns.unwrap_or_else(|| Self::monotonic_ns() + 1_000_000_000);
        let mut ready = 0u64;
        // SAFETY: `ready` is a valid out-pointer.
        unsafe { solo5_yield(deadline, &mut ready) };
    }

    fn open_net(name: &str) -> Result<Box<dyn NetDevice>, OpenError> {
        Ok(Box::new(net::Solo5Net::open(name)?))
    }

    fn open_block(name: &str) -> Result<Box<dyn BlockDevice>, OpenError> {
        Ok(Box::new(block::Solo5Block::open(name)?))
    }

    fn thread_id() -> usize {
        // Solo5 has one thread.
        1
    }
}
