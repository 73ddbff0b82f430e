//! The fixed packet buffer pool and the frame rings that index into it.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::ptr::NonNull;

/// Names one buffer of a [`PacketPool`]. Not `Copy`: whoever holds it owns the buffer
/// until it gives the id back with [`PacketPool::free`].
///
/// It also names the pool that handed it out: that pool's methods panic on an id from
/// any other pool (in release builds too), which could lie past the end of the pool or
/// name a slot someone else holds.
#[derive(Debug, PartialEq, Eq)]
pub struct SlotId {
    index: u16,
    pool: PoolId,
}

impl SlotId {
    /// The slot's index in the pool (for devices that need a stable number, e.g. a
    /// descriptor cookie).
    pub fn index(&self) -> usize {
        self.index as usize
    }
}

/// A pool's identity: unique among the pools of a run (a counter; 2^32 pools would have
/// to be made before one repeats, and the bounds check stays behind it regardless).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PoolId(u32);

impl PoolId {
    fn next() -> Self {
        static NEXT: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(1);
        PoolId(NEXT.fetch_add(1, core::sync::atomic::Ordering::Relaxed))
    }
}

/// A received or to-be-sent frame: a slot and how many bytes of it are the frame.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    /// The buffer.
    pub slot: SlotId,
    /// Frame length in bytes, from the start of the slot.
    pub len: usize,
}

/// `slots` buffers of `slot_size` bytes in one allocation, with a free list.
///
/// All memory is allocated by [`PacketPool::new`]; nothing here allocates afterwards.
///
/// A device that hands buffers straight to hardware may need room *before* the frame
/// (virtio-net puts its 12-byte header there). [`PacketPool::with_headroom`] reserves it:
/// each slot is then `headroom` bytes the device may use, followed by the `slot_size`
/// bytes [`buf`](Self::buf) shows, and slots start on 64-byte boundaries.
pub struct PacketPool {
    /// The slots' bytes, owned (allocated with `layout`). Kept as a raw pointer so that
    /// one slot can be read (an RX token) while another is written (a TX token smoltcp
    /// consumes inside the RX token's closure) without a reference to the whole buffer.
    memory: NonNull<u8>,
    layout: core::alloc::Layout,
    slot_size: usize,
    headroom: usize,
    /// Distance between slot starts: headroom + slot size, rounded up to 64.
    stride: usize,
    free: Vec<u16>,
    in_use: Box<[bool]>,
    exhausted: u64,
    /// Stamped on every [`SlotId`] this pool hands out.
    id: PoolId,
    /// Set by [`keep_memory_for_device`](Self::keep_memory_for_device): the memory is
    /// never freed, because a device may still write into it.
    kept_for_device: bool,
}

impl PacketPool {
    /// Allocates the pool. `slots` must be 1..=65535 and `slot_size` at least 64.
    pub fn new(slots: usize, slot_size: usize) -> Self {
        Self::with_headroom(slots, slot_size, 0)
    }

    /// Like [`new`](Self::new), with `headroom` device-only bytes before each buffer.
    pub fn with_headroom(slots: usize, slot_size: usize, headroom: usize) -> Self {
        assert!((1..=u16::MAX as usize).contains(&slots), "pool slots must be 1..=65535");
        assert!(slot_size >= 64, "pool slot size must be at least 64 bytes");
        let stride = (headroom + slot_size).next_multiple_of(64);
        let layout = core::alloc::Layout::from_size_align(slots * stride, 64).expect("pool size overflows");
        // SAFETY: the layout has a non-zero size (slots >= 1, stride >= 64).
        let raw = unsafe { alloc::alloc::alloc_zeroed(layout) };
        let Some(memory) = NonNull::new(raw) else { alloc::alloc::handle_alloc_error(layout) };
        PacketPool {
            memory,
            layout,
            slot_size,
            headroom,
            stride,
            // Pop from the end: low slot numbers are handed out first.
            free: (0..slots as u16).rev().collect(),
            in_use: vec![false; slots].into_boxed_slice(),
            exhausted: 0,
            id: PoolId::next(),
            kept_for_device: false,
        }
    }

    /// Takes a free slot, or `None` if all are in use (counted in [`Self::exhausted`]).
    pub fn alloc(&mut self) -> Option<SlotId> {
        match self.free.pop() {
            Some(i) => {
                self.in_use[i as usize] = true;
                Some(SlotId { index: i, pool: self.id })
            }
            None => {
                self.exhausted += 1;
                None
            }
        }
    }

    /// Gives a slot back.
    pub fn free(&mut self, slot: SlotId) {
        let i = self.checked_index(&slot);
        // A SlotId can only come from `alloc` and is consumed here, and it is this
        // pool's (checked above), so this cannot fail; kept as a last line.
        assert!(self.in_use[i], "slot {i} freed twice");
        self.in_use[i] = false;
        // Never reallocates: capacity was reserved for every slot in `new`.
        self.free.push(slot.index);
    }

    /// The slot's index, after checking that this pool handed the id out. A plain
    /// `assert!`: `buf`/`buf_mut` are safe, so a foreign id must never reach memory,
    /// release builds included.
    fn checked_index(&self, slot: &SlotId) -> usize {
        assert!(
            slot.pool == self.id,
            "slot {} is from another pool (pool {:?}, not {:?})",
            slot.index,
            slot.pool,
            self.id
        );
        let i = slot.index as usize;
        assert!(i < self.in_use.len(), "slot {i} is past the pool's {} slots", self.in_use.len());
        i
    }

    /// The whole buffer of a slot (after its headroom).
    pub fn buf(&self, slot: &SlotId) -> &[u8] {
        // SAFETY: the slot lies inside the allocation (slot_ptr checks the id is this
        // pool's and below its capacity), and only the holder of the id (borrowed here)
        // touches these bytes.
        unsafe { core::slice::from_raw_parts(self.slot_ptr(slot), self.slot_size) }
    }

    /// Where a slot's buffer starts (after its headroom). Panics on an id from another
    /// pool.
    fn slot_ptr(&self, slot: &SlotId) -> *mut u8 {
        let start = self.checked_index(slot) * self.stride + self.headroom;
        // `index < slots` and `headroom + slot_size <= stride`, so the buffer lies inside
        // `slots * stride`, the allocation's size.
        debug_assert!(start + self.slot_size <= self.layout.size());
        // SAFETY: in bounds, as above (checked_index holds in release builds too).
        unsafe { self.memory.as_ptr().add(start) }
    }

    /// The raw memory for a device that lends slots to hardware: the first slot's start
    /// (headroom included), the distance between slots, and the headroom. Slot `i`'s
    /// headroom begins at `base + i * stride` and its buffer `headroom` bytes later.
    ///
    /// The device may only touch the slots whose [`SlotId`]s it holds.
    pub fn raw_layout(&self) -> (*mut u8, usize, usize) {
        (self.memory.as_ptr(), self.stride, self.headroom)
    }

    /// Keeps the slots' memory allocated for as long as the program runs, also after the
    /// pool is dropped (a deliberate leak of [`raw_layout`](Self::raw_layout)'s bytes).
    ///
    /// For a device that lends slots to hardware it cannot stop: Unikraft 0.16.3 has no
    /// way to stop a network device, so its receive descriptors keep pointing into the
    /// slots lent to it, and the device writes there by DMA whenever a frame arrives,
    /// after the stack that owned the pool is gone too. Freed, that memory would be handed
    /// to the next allocation and overwritten under it. The device calls this before it
    /// lends the first slot; the bookkeeping (free list, flags) is still freed.
    pub fn keep_memory_for_device(&mut self) {
        self.kept_for_device = true;
    }

    /// Whether [`keep_memory_for_device`](Self::keep_memory_for_device) was called.
    pub fn memory_kept_for_device(&self) -> bool {
        self.kept_for_device
    }

    /// Device-only bytes before each buffer.
    pub fn headroom(&self) -> usize {
        self.headroom
    }

    /// The whole buffer of a slot, writable.
    pub fn buf_mut(&mut self, slot: &SlotId) -> &mut [u8] {
        // SAFETY: as in `buf`; `&mut self` rules out other borrows through the pool, and
        // distinct ids never overlap.
        unsafe { core::slice::from_raw_parts_mut(self.slot_ptr(slot), self.slot_size) }
    }

    /// Bytes per slot.
    pub fn slot_size(&self) -> usize {
        self.slot_size
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.in_use.len()
    }

    /// Slots currently free.
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// How many times `alloc` found the pool empty.
    pub fn exhausted(&self) -> u64 {
        self.exhausted
    }
}

impl Drop for PacketPool {
    fn drop(&mut self) {
        if self.kept_for_device {
            // A device may still write here (see `keep_memory_for_device`): leaked.
            return;
        }
        // SAFETY: `memory` was allocated in `with_headroom` with exactly this layout.
        unsafe { alloc::alloc::dealloc(self.memory.as_ptr(), self.layout) };
    }
}

/// A fixed-capacity FIFO of frames (the receive or transmit ring).
pub struct FrameRing {
    entries: Box<[Option<Frame>]>,
    head: usize,
    len: usize,
}

impl FrameRing {
    /// A ring holding at most `capacity` frames; allocates once.
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "ring capacity must be positive");
        FrameRing { entries: (0..capacity).map(|_| None).collect(), head: 0, len: 0 }
    }

    /// Appends a frame, or gives it back if the ring is full.
    pub fn push(&mut self, frame: Frame) -> Result<(), Frame> {
        if self.is_full() {
            return Err(frame);
        }
        let tail = (self.head + self.len) % self.entries.len();
        self.entries[tail] = Some(frame);
        self.len += 1;
        Ok(())
    }

    /// Removes the oldest frame.
    pub fn pop(&mut self) -> Option<Frame> {
        if self.len == 0 {
            return None;
        }
        let frame = self.entries[self.head].take();
        self.head = (self.head + 1) % self.entries.len();
        self.len -= 1;
        frame
    }

    /// Puts a frame back at the front (a device that could not send it yet).
    pub fn push_front(&mut self, frame: Frame) -> Result<(), Frame> {
        if self.is_full() {
            return Err(frame);
        }
        self.head = (self.head + self.entries.len() - 1) % self.entries.len();
        self.entries[self.head] = Some(frame);
        self.len += 1;
        Ok(())
    }

    /// Frames queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no frame is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether another push would fail.
    pub fn is_full(&self) -> bool {
        self.len == self.entries.len()
    }

    /// Maximum frames.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headroom_sits_before_each_buffer_and_slots_are_aligned() {
        let mut pool = PacketPool::with_headroom(4, 1514, 12);
        let (base, stride, headroom) = pool.raw_layout();
        assert_eq!(headroom, 12);
        assert_eq!(stride % 64, 0);
        assert!(stride >= 12 + 1514);
        assert_eq!(base as usize % 64, 0);
        let slots: Vec<SlotId> = (0..4).map(|_| pool.alloc().unwrap()).collect();
        for slot in &slots {
            let buf = pool.buf_mut(slot);
            assert_eq!(buf.len(), 1514);
            let expected = base as usize + slot.index() * stride + headroom;
            assert_eq!(buf.as_ptr() as usize, expected);
            buf.fill(slot.index() as u8 + 1);
        }
        // Buffers never overlap each other's headroom.
        for slot in &slots {
            assert!(pool.buf(slot).iter().all(|&b| b == slot.index() as u8 + 1));
        }
        for slot in slots {
            pool.free(slot);
        }
    }

    #[test]
    fn pool_hands_out_each_slot_once_and_counts_exhaustion() {
        let mut pool = PacketPool::new(3, 64);
        let a = pool.alloc().unwrap();
        let b = pool.alloc().unwrap();
        let c = pool.alloc().unwrap();
        assert_ne!(a.index(), b.index());
        assert_ne!(b.index(), c.index());
        assert!(pool.alloc().is_none());
        assert_eq!(pool.exhausted(), 1);
        pool.buf_mut(&b)[0] = 7;
        assert_eq!(pool.buf(&b)[0], 7);
        pool.free(b);
        assert_eq!(pool.available(), 1);
        let again = pool.alloc().unwrap();
        assert_eq!(pool.buf(&again)[0], 7);
        for s in [a, c, again] {
            pool.free(s);
        }
        assert_eq!(pool.available(), 3);
    }

    #[test]
    fn ring_is_fifo_and_bounded() {
        let mut pool = PacketPool::new(4, 64);
        let mut ring = FrameRing::new(2);
        ring.push(Frame { slot: pool.alloc().unwrap(), len: 1 }).unwrap();
        ring.push(Frame { slot: pool.alloc().unwrap(), len: 2 }).unwrap();
        let overflow = ring.push(Frame { slot: pool.alloc().unwrap(), len: 3 }).unwrap_err();
        assert_eq!(overflow.len, 3);
        let first = ring.pop().unwrap();
        assert_eq!(first.len, 1);
        ring.push_front(first).unwrap();
        assert_eq!(ring.pop().unwrap().len, 1);
        assert_eq!(ring.pop().unwrap().len, 2);
        assert!(ring.pop().is_none());
        pool.free(overflow.slot);
    }
}
