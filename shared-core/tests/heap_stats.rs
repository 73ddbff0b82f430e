//! The counting allocator, installed as this test binary's global allocator.

use shared_core::heap::{self, CountingAlloc};

#[global_allocator]
static HEAP: CountingAlloc<std::alloc::System> = CountingAlloc::new(std::alloc::System);

// One test function: the counters are process-wide, and libtest's threads would blur
// concurrent tests.
#[test]
fn counts_allocations_frees_reallocations_and_the_peak() {
    let warm = vec![1u8; 16];
    drop(warm);
    let before = heap::stats().expect("installed, and something allocated");

    let block = vec![7u8; 1 << 20];
    let during = heap::stats().unwrap();
    assert!(during.in_use >= before.in_use + (1 << 20), "{before:?} -> {during:?}");
    assert!(during.peak >= during.in_use);
    assert!(during.allocations > before.allocations);
    assert!(during.live_blocks > before.live_blocks);

    let mut grown = Vec::<u8>::with_capacity(1024);
    grown.resize(64 * 1024, 0); // a reallocation to a larger block
    let after_grow = heap::stats().unwrap();
    assert!(after_grow.in_use >= during.in_use + 64 * 1024, "{during:?} -> {after_grow:?}");
    drop(grown);
    drop(block);

    let after = heap::stats().unwrap();
    assert!(after.peak >= before.in_use + (1 << 20) + 64 * 1024, "{after:?}");
    // Other libtest threads may allocate meanwhile; what this test freed must be gone.
    assert!(after.in_use < during.in_use, "{during:?} -> {after:?}");
}
