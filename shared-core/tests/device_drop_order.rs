//! What a device that lends pool memory to hardware can count on when its `RingPhy` (or
//! the `Stack` around it) is dropped: the device is dropped first, while the pool's
//! memory is still allocated (so a device can stop its hardware there), and a pool whose
//! memory the device asked to keep (`PacketPool::keep_memory_for_device`, what
//! rt-unikraft's virtio-net does, since Unikraft cannot stop the device) is never freed.
//!
//! A global allocator watches the pool's address: it notes when that block is freed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use shared_core::net::{NetDevice, NetInfo, RingConfig, RingContext, RingPhy};

struct WatchingAlloc;

thread_local! {
    // Per thread, so the harness's other threads do not disturb a test. Const-initialised
    // Cells need no allocation, so the allocator may use them.
    static WATCHED: Cell<usize> = const { Cell::new(0) };
    static WATCHED_FREED: Cell<bool> = const { Cell::new(false) };
    static FREED_WHEN_DEVICE_DROPPED: Cell<Option<bool>> = const { Cell::new(None) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the bookkeeping on
// the side allocates nothing.
unsafe impl GlobalAlloc for WatchingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on as it is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = WATCHED.try_with(|w| {
            if w.get() == ptr as usize {
                let _ = WATCHED_FREED.try_with(|f| f.set(true));
            }
        });
        // SAFETY: `ptr` came from `System.alloc` with this `layout` (above).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: WatchingAlloc = WatchingAlloc;

/// A device that, like a DMA device, learns the pool's memory on its first call; it may
/// ask the pool to keep that memory, and notes at its drop whether the pool was freed.
struct DmaLikeDevice {
    keep_memory: bool,
}

impl NetDevice for DmaLikeDevice {
    fn info(&self) -> NetInfo {
        NetInfo { mac: [2, 0, 0, 0, 0, 2], max_frame: 1514, headroom: 12 }
    }
    fn receive(&mut self, ctx: RingContext<'_>) {
        let (base, _, _) = ctx.pool.raw_layout();
        WATCHED.with(|w| w.set(base as usize));
        WATCHED_FREED.with(|f| f.set(false));
        if self.keep_memory {
            ctx.pool.keep_memory_for_device();
        }
    }
    fn transmit(&mut self, _ctx: RingContext<'_>) {}
}

impl Drop for DmaLikeDevice {
    fn drop(&mut self) {
        FREED_WHEN_DEVICE_DROPPED.with(|d| d.set(Some(WATCHED_FREED.with(Cell::get))));
    }
}

/// A RingPhy over the device, polled once (so the device saw the pool), then dropped.
/// Returns (pool freed when the device was dropped, pool freed at the end).
fn poll_once_and_drop(keep_memory: bool) -> (bool, bool) {
    FREED_WHEN_DEVICE_DROPPED.with(|d| d.set(None));
    let mut phy: RingPhy = RingPhy::new(Box::new(DmaLikeDevice { keep_memory }), RingConfig::default());
    let _ = smoltcp::phy::Device::receive(&mut phy, smoltcp::time::Instant::ZERO);
    assert_ne!(WATCHED.with(Cell::get), 0, "the device saw the pool");
    drop(phy);
    let at_device_drop = FREED_WHEN_DEVICE_DROPPED.with(Cell::get).expect("the device was dropped");
    (at_device_drop, WATCHED_FREED.with(Cell::get))
}

#[test]
fn the_device_is_dropped_before_the_pool_it_lends_buffers_from() {
    let (freed_at_device_drop, freed_at_end) = poll_once_and_drop(false);
    assert!(!freed_at_device_drop, "the pool was freed before the device was dropped (it could still be writing)");
    assert!(freed_at_end, "an ordinary pool is freed with its RingPhy");
}

#[test]
fn a_pool_kept_for_the_device_is_never_freed() {
    let (freed_at_device_drop, freed_at_end) = poll_once_and_drop(true);
    assert!(!freed_at_device_drop);
    assert!(!freed_at_end, "the pool's memory was freed although the device asked to keep it");
    // The kept memory is still ours to write, as the device would.
    let base = WATCHED.with(Cell::get) as *mut u8;
    // SAFETY: the pool's memory was never freed (checked above) and nothing else uses it.
    unsafe { base.write_bytes(0xAA, 4096) };
}
