//! The platform `shared-core`'s own unit tests link against: a fake monotonic clock that
//! `wait_until` advances to the deadline, so timer tests are exact and instant.

extern crate std;

use crate::block::BlockDevice;
use crate::net::NetDevice;
use crate::services::{OpenError, Platform};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use std::cell::Cell;

static CLOCK_NS: AtomicU64 = AtomicU64::new(1_000_000_000);
static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

std::thread_local! {
    /// How often `wait_until` was called on this thread.
    pub static WAITS: Cell<u64> = const { Cell::new(0) };
}

/// Serialises tests that use the global executor and clock.
pub fn lock() -> std::sync::MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct TestPlatform;

impl Platform for TestPlatform {
    fn backend_name() -> &'static str {
        "test"
    }

    fn monotonic_ns() -> u64 {
        CLOCK_NS.load(Ordering::SeqCst)
    }
    fn wall_clock_ns() -> u64 {
        1_700_000_000_000_000_000 + Self::monotonic_ns()
    }
    fn fill_random(buf: &mut [u8]) {
        buf.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
    }
    fn console_write(bytes: &[u8]) {
        use std::io::Write;
        let _ = std::io::stdout().write_all(bytes);
    }
    fn exit(code: i32) -> ! {
        std::process::exit(code)
    }
    fn boot_args() -> Vec<String> {
        Vec::new()
    }
    fn wait_until(deadline_ns: Option<u64>) {
        WAITS.with(|w| w.set(w.get() + 1));
        if let Some(deadline) = deadline_ns {
            CLOCK_NS.fetch_max(deadline, Ordering::SeqCst);
        }
    }
    fn open_net(name: &str) -> Result<Box<dyn NetDevice>, OpenError> {
        Err(OpenError::NotFound(name.into()))
    }
    fn open_block(name: &str) -> Result<Box<dyn BlockDevice>, OpenError> {
        Err(OpenError::NotFound(name.into()))
    }
    fn thread_id() -> usize {
        std::thread_local!(static ID: u8 = const { 0 });
        // The address of a thread-local is unique among the threads alive now.
        ID.with(|id| id as *const u8 as usize)
    }
}

crate::provide_platform!(TestPlatform);
