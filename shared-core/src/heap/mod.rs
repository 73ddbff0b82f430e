//! Heap statistics: how much memory the app holds now, and at most.
//!
//! A unikernel that runs for months has no `ps` and no `/proc`; a leak shows up only as
//! the VM dying. So every std backend installs [`CountingAlloc`] as the global allocator
//! around its real one, and anything in the app (a health endpoint, a log line, the
//! conformance soak case) can read [`stats`].
//!
//! The cost is three relaxed atomic operations per allocation and a compare-exchange loop
//! only when a new peak is reached. [`sampler`] turns the counters into a time series
//! (`--heap-sample-ms=N`); when it is off, its cost is one more relaxed load every
//! [`sampler::EVERY_N_ALLOCATIONS`] allocations. The counters are process-wide statics in this crate,
//! so there is nothing to pass around and nothing to initialise.
//!
//! ```ignore
//! #[global_allocator]
//! static HEAP: shared_core::heap::CountingAlloc<std::alloc::System> =
//!     shared_core::heap::CountingAlloc::new(std::alloc::System);
//! ```

pub mod sampler;

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static LIVE_BLOCKS: AtomicUsize = AtomicUsize::new(0);
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// A snapshot of the heap counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeapStats {
    /// Bytes currently allocated (as requested by the app, not counting allocator overhead).
    pub in_use: usize,
    /// The largest `in_use` ever seen.
    pub peak: usize,
    /// Allocations made since start (reallocations count once each).
    pub allocations: usize,
    /// Blocks currently allocated.
    pub live_blocks: usize,
}

/// The counters, or `None` when the backend does not count (no [`CountingAlloc`] is the
/// global allocator, e.g. a `no_std` backend with its own heap).
pub fn stats() -> Option<HeapStats> {
    INSTALLED.load(Ordering::Relaxed).then(|| HeapStats {
        in_use: IN_USE.load(Ordering::Relaxed),
        peak: PEAK.load(Ordering::Relaxed),
        allocations: ALLOCATIONS.load(Ordering::Relaxed),
        live_blocks: LIVE_BLOCKS.load(Ordering::Relaxed),
    })
}

/// A global allocator that forwards to `A` and keeps [`stats`] up to date.
pub struct CountingAlloc<A> {
    inner: A,
}

impl<A> CountingAlloc<A> {
    /// Wraps `inner` (usually `std::alloc::System`).
    pub const fn new(inner: A) -> Self {
        CountingAlloc { inner }
    }

    /// The wrapped allocator (e.g. to hand a `no_std` heap its memory at start-up).
    pub fn inner(&self) -> &A {
        &self.inner
    }
}

fn grew(bytes: usize) {
    let now = IN_USE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    let mut peak = PEAK.load(Ordering::Relaxed);
    while now > peak {
        match PEAK.compare_exchange_weak(peak, now, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break,
            Err(seen) => peak = seen,
        }
    }
}

/// Counts a new block (if the allocation succeeded) and passes the pointer on.
fn allocated(ptr: *mut u8, layout: Layout) -> *mut u8 {
    if !ptr.is_null() {
        INSTALLED.store(true, Ordering::Relaxed);
        let n = ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed);
        grew(layout.size());
        if n.is_multiple_of(sampler::EVERY_N_ALLOCATIONS) {
            sampler::on_allocations();
        }
    }
    ptr
}

fn shrank(bytes: usize) {
    IN_USE.fetch_sub(bytes, Ordering::Relaxed);
}

// SAFETY: every method forwards to `inner` with the caller's arguments unchanged; the
// counters are only bookkeeping next to it.
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAlloc<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded from the caller's contract.
        allocated(unsafe { self.inner.alloc(layout) }, layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded from the caller's contract.
        allocated(unsafe { self.inner.alloc_zeroed(layout) }, layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller's contract.
        unsafe { self.inner.dealloc(ptr, layout) };
        LIVE_BLOCKS.fetch_sub(1, Ordering::Relaxed);
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded from the caller's contract.
        let new = unsafe { self.inner.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                shrank(layout.size() - new_size);
            }
        }
        new
    }
}
