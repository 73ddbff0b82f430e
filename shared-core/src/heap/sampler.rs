//! Heap over time: with the boot argument `--heap-sample-ms=N` the runtime prints the heap
//! counters every N ms on the console, one line per sample:
//!
//! ```text
//! heap-sample t_ms=1500 live=20480 peak=1069056 blocks=37
//! ```
//!
//! `t_ms` is milliseconds since the app started, `live` the bytes in use
//! ([`HeapStats::in_use`](super::HeapStats)), `peak` the most ever in use, `blocks` the blocks
//! in use. The host tool draws these lines (`--heap-plot FILE`, docs/runtime.md); the
//! grammar is `console_protocol::heap_sample`, which both sides use.
//!
//! A sample is *taken* when it is due and either the app waits (every idle wait goes through
//! [`services::wait_until`](crate::services::wait_until), whose deadline [`start`] pulls in
//! to the next due sample with a [`WaitHook`](crate::services::WaitHook)) or the allocator runs (checked every [`EVERY_N_ALLOCATIONS`]
//! allocations, so a busy loop that allocates is sampled too, even on a cooperative
//! scheduler). It is *printed* at the next wait, at the app's end, or by [`tick`]: never
//! from inside the allocator (a line must not cut into one being written). Taken samples
//! wait in a ring of [`RING`]; when it is full, new samples are counted as dropped and the
//! count is printed (`heap-sample-dropped count=N`) with the next line.
//!
//! Nothing allocates here: lines are formatted on the stack.

use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use super::stats;
use crate::services;

use console_protocol::heap_sample::{format_into, Dropped};
pub use console_protocol::heap_sample::{Sample, BOOT_ARG, PREFIX};

/// Help text of [`BOOT_ARG`] in the list of known arguments.
pub const BOOT_ARG_HELP: &str = "runtime: print a `heap-sample` line every N ms (off by default)";
/// The allocator checks whether a sample is due once per this many allocations.
pub const EVERY_N_ALLOCATIONS: usize = 64;
/// Samples taken but not yet printed, at most.
pub const RING: usize = 128;

/// Nanoseconds between samples; 0 while sampling is off.
static INTERVAL_NS: AtomicU64 = AtomicU64::new(0);
static START_NS: AtomicU64 = AtomicU64::new(0);
static NEXT_DUE_NS: AtomicU64 = AtomicU64::new(u64::MAX);
/// `services::monotonic_ns` once sampling is on (null before): the allocator reaches the
/// clock through it, so a program without a platform (shared-core's own tests) can use
/// `CountingAlloc` without linking one.
static CLOCK: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

struct Slot {
    /// `claim + 1` once the slot holds sample number `claim`.
    seq: AtomicU64,
    t_ns: AtomicU64,
    live: AtomicUsize,
    peak: AtomicUsize,
    blocks: AtomicUsize,
}

static SLOTS: [Slot; RING] = [const {
    Slot {
        seq: AtomicU64::new(0),
        t_ns: AtomicU64::new(0),
        live: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
        blocks: AtomicUsize::new(0),
    }
}; RING];
/// Samples claimed (written or being written) and printed so far.
static WRITTEN: AtomicU64 = AtomicU64::new(0);
static PRINTED: AtomicU64 = AtomicU64::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);
static PRINTING: AtomicBool = AtomicBool::new(false);

/// Turns sampling on if the boot arguments hold `--heap-sample-ms=N` (N > 0) and prints
/// the first sample. Called by the `unikernel::main!` entry before the app runs. A
/// malformed value is reported like any boot argument error (status 2).
pub fn start_from_boot_args() {
    let args = services::boot_args();
    let key = alloc::format!("--{BOOT_ARG}=");
    let Some(value) = args.iter().find_map(|a| a.strip_prefix(key.as_str())) else { return };
    match value.parse::<u64>() {
        Ok(0) => {}
        Ok(ms) => start(ms),
        Err(_) => {
            crate::println!(
                "error: boot argument --{BOOT_ARG}={value} is malformed: expected milliseconds, a non-negative integer"
            );
            services::exit(2)
        }
    }
}

/// Turns sampling on: one sample now, then every `interval_ms`.
pub fn start(interval_ms: u64) {
    let now = services::monotonic_ns();
    START_NS.store(now, Ordering::Relaxed);
    let clock: fn() -> u64 = services::monotonic_ns;
    CLOCK.store(clock as *mut (), Ordering::Release);
    NEXT_DUE_NS.store(now, Ordering::Relaxed);
    INTERVAL_NS.store(interval_ms.saturating_mul(1_000_000).max(1), Ordering::Release);
    services::set_wait_hook(before_wait);
    tick();
}

/// The [`WaitHook`](services::WaitHook) while sampling: a due sample is taken and printed,
/// and the wait ends by the next one.
fn before_wait(deadline_ns: Option<u64>) -> Option<u64> {
    tick();
    clamp_deadline(deadline_ns)
}

/// Whether sampling is on.
pub fn enabled() -> bool {
    INTERVAL_NS.load(Ordering::Relaxed) != 0
}

/// `deadline_ns` pulled in to the next due sample (the idle wait's deadline).
pub fn clamp_deadline(deadline_ns: Option<u64>) -> Option<u64> {
    if !enabled() {
        return deadline_ns;
    }
    let due = NEXT_DUE_NS.load(Ordering::Relaxed);
    Some(deadline_ns.map_or(due, |d| d.min(due)))
}

/// Takes a sample if one is due and prints the samples taken. Backends' idle waits call
/// this; an app with its own busy loop that never waits may call it too.
pub fn tick() {
    if enabled() {
        take_if_due(services::monotonic_ns());
        print_taken();
    }
}

/// The app ended: a last sample, and everything taken is printed.
pub fn finish() {
    if enabled() {
        take(services::monotonic_ns());
        print_taken();
    }
}

/// From the allocator: a sample if one is due (not printed here).
pub(super) fn on_allocations() {
    let clock = CLOCK.load(Ordering::Acquire);
    if clock.is_null() {
        return;
    }
    // SAFETY: `CLOCK` only ever holds null or the `fn() -> u64` stored by `start`.
    let clock = unsafe { core::mem::transmute::<*mut (), fn() -> u64>(clock) };
    take_if_due(clock());
}

fn take_if_due(now: u64) {
    let due = NEXT_DUE_NS.load(Ordering::Relaxed);
    let interval = INTERVAL_NS.load(Ordering::Relaxed);
    if now < due || interval == 0 {
        return;
    }
    // After a long stall the next sample is an interval from now, not a burst.
    let next = due.saturating_add(interval).max(now.saturating_add(interval / 2));
    if NEXT_DUE_NS.compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
        take(now);
    }
}

fn take(now: u64) {
    let Some(s) = stats() else { return };
    let mut claim = WRITTEN.load(Ordering::Relaxed);
    loop {
        if claim.saturating_sub(PRINTED.load(Ordering::Acquire)) >= RING as u64 {
            DROPPED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match WRITTEN.compare_exchange_weak(claim, claim + 1, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break,
            Err(seen) => claim = seen,
        }
    }
    let slot = &SLOTS[claim as usize % RING];
    slot.t_ns.store(now, Ordering::Relaxed);
    slot.live.store(s.in_use, Ordering::Relaxed);
    slot.peak.store(s.peak, Ordering::Relaxed);
    slot.blocks.store(s.live_blocks, Ordering::Relaxed);
    slot.seq.store(claim + 1, Ordering::Release);
}

/// Prints the samples taken, in order, by one caller at a time.
fn print_taken() {
    if PRINTING.swap(true, Ordering::Acquire) {
        return;
    }
    let start = START_NS.load(Ordering::Relaxed);
    let dropped = DROPPED.swap(0, Ordering::Relaxed);
    if dropped > 0 {
        print_line(&Dropped { count: dropped });
    }
    let mut next = PRINTED.load(Ordering::Relaxed);
    while next < WRITTEN.load(Ordering::Relaxed) {
        let slot = &SLOTS[next as usize % RING];
        if slot.seq.load(Ordering::Acquire) != next + 1 {
            break; // still being written
        }
        let sample = Sample {
            t_ms: slot.t_ns.load(Ordering::Relaxed).saturating_sub(start) / 1_000_000,
            live: slot.live.load(Ordering::Relaxed) as u64,
            peak: slot.peak.load(Ordering::Relaxed) as u64,
            blocks: slot.blocks.load(Ordering::Relaxed) as u64,
        };
        next += 1;
        PRINTED.store(next, Ordering::Release);
        print_line(&sample);
    }
    PRINTING.store(false, Ordering::Release);
}

/// Prints one line, formatted on the stack.
fn print_line(line: &dyn core::fmt::Display) {
    let mut buf = [0u8; Sample::MAX_LINE];
    if let Some(text) = format_into(&mut buf, line) {
        services::console_write(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_is_pulled_in_only_while_sampling() {
        // Sampling is process-wide and these tests share the process: only the off state.
        if !enabled() {
            assert_eq!(clamp_deadline(Some(5)), Some(5));
            assert_eq!(clamp_deadline(None), None);
        }
    }
}
