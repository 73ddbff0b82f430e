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
    /// Different bytes on every call (a SplitMix64 stream seeded by a call counter), so
    /// tests see what random ids and sessions give: distinct values, reproducibly.
    fn fill_random(buf: &mut [u8]) {
        static CALLS: AtomicU64 = AtomicU64::new(0);
        let call = CALLS.fetch_add(1, Ordering::Relaxed);
        for (k, chunk) in buf.chunks_mut(8).enumerate() {
            // Call n's k-th word: never another call's (n below 2^32, k below 2^32).
            let mut z = (call << 32 | k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
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
