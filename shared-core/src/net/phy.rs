//! `smoltcp::phy::Device` over any [`NetDevice`], lending pool slots to smoltcp's tokens.

use alloc::boxed::Box;
use alloc::vec;
use core::cell::RefCell;

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use super::quiet_ports::QuietPorts;
use super::{Frame, FrameRing, NetCounters, NetDevice, NetInfo, PacketPool, RingContext};

/// Sizes for a [`RingPhy`]. The defaults suit a small server: 256 buffers of 2 KiB
/// (512 KiB in all) and rings of 64 frames.
#[derive(Debug, Clone, Copy)]
pub struct RingConfig {
    /// Buffers in the pool.
    pub slots: usize,
    /// Bytes per buffer; at least the device's `max_frame`.
    pub slot_size: usize,
    /// Frames the receive ring holds (one device `receive` call fills at most this many).
    pub rx_ring: usize,
    /// Frames queued for transmit before the ring is flushed to the device.
    pub tx_ring: usize,
}

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig { slots: 256, slot_size: 2048, rx_ring: 64, tx_ring: 64 }
    }
}

/// Fields drop in declaration order: the device first, so a device that stops its
/// hardware (or keeps the pool's memory, [`PacketPool::keep_memory_for_device`]) does so
/// while the pool it lent buffers from still exists.
struct Shared<D: ?Sized> {
    device: Box<D>,
    pool: PacketPool,
    rx: FrameRing,
    tx: FrameRing,
    counters: NetCounters,
    /// Where a frame goes when no slot is free: smoltcp's token must still be consumed.
    /// Allocated once, so dropping a frame never allocates either.
    scratch: Box<[u8]>,
    /// Whether the receive ring was refilled since the last flush. smoltcp's `poll`
    /// keeps taking frames while the device yields them; under a flood that would never
    /// end, so each poll round gets one refill (one batch), like a NAPI budget.
    refilled: bool,
    /// Ports whose refused SYNs are dropped on the way out (see [`QuietPorts`]).
    quiet: QuietPorts,
}

impl<D: NetDevice + ?Sized> Shared<D> {
    fn flush(&mut self) {
        let Shared { pool, tx, counters, device, .. } = self;
        if !tx.is_empty() {
            device.transmit(RingContext { pool, ring: tx, counters });
        }
    }

    fn refill(&mut self) {
        let Shared { pool, rx, counters, device, .. } = self;
        device.receive(RingContext { pool, ring: rx, counters });
    }
}

/// The smoltcp adapter. Call [`RingPhy::flush`] after each `Interface::poll` so queued
/// frames reach the device; the transmit ring is also flushed whenever it fills. Each
/// poll round (between flushes) takes at most one batch from the device, so a flood
/// cannot keep `poll` from returning.
pub struct RingPhy<D: NetDevice + ?Sized = dyn NetDevice> {
    shared: RefCell<Shared<D>>,
    info: NetInfo,
}

impl<D: NetDevice + ?Sized> RingPhy<D> {
    /// Wraps `device`, allocating the pool and rings now (the only allocation).
    pub fn new(device: Box<D>, config: RingConfig) -> Self {
        let info = device.info();
        assert!(
            config.slot_size >= info.max_frame,
            "slot size {} is smaller than the device's largest frame {}",
            config.slot_size,
            info.max_frame
        );
        RingPhy {
            shared: RefCell::new(Shared {
                pool: PacketPool::with_headroom(config.slots, config.slot_size, info.headroom),
                rx: FrameRing::new(config.rx_ring),
                tx: FrameRing::new(config.tx_ring),
                counters: NetCounters::default(),
                scratch: vec![0u8; config.slot_size].into_boxed_slice(),
                device,
                refilled: false,
                quiet: QuietPorts::default(),
            }),
            info,
        }
    }

    /// The device's address and frame size.
    pub fn info(&self) -> NetInfo {
        self.info
    }

    /// Marks `port` quiet or not: while it is, smoltcp's reset reply to a SYN that found
    /// no listening socket on it is dropped (see [`QuietPorts`]).
    pub fn set_port_quiet(&mut self, port: u16, quiet: bool) {
        self.shared.get_mut().quiet.set(port, quiet);
    }

    /// SYN refusals dropped so far on quiet ports.
    pub fn quiet_drops(&self) -> u64 {
        self.shared.borrow().quiet.dropped()
    }

    /// The device's Ethernet address as smoltcp wants it.
    pub fn hardware_address(&self) -> smoltcp::wire::HardwareAddress {
        smoltcp::wire::HardwareAddress::Ethernet(smoltcp::wire::EthernetAddress(self.info.mac))
    }

    /// Sends every queued frame the device will take now.
    pub fn flush(&mut self) {
        let shared = self.shared.get_mut();
        shared.flush();
        shared.refilled = false;
    }

    /// The device, e.g. to reconfigure it.
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.shared.get_mut().device
    }

    /// The checksum settings smoltcp should use when building packets by hand (ICMP).
    pub fn capabilities_checksum(&self) -> smoltcp::phy::ChecksumCapabilities {
        phy::Device::capabilities(self).checksum
    }

    /// When the device wants its next call without an event
    /// ([`NetDevice::poll_deadline_ns`]).
    pub fn device_deadline_ns(&mut self) -> Option<u64> {
        self.shared.get_mut().device.poll_deadline_ns()
    }

    /// Counters so far.
    pub fn counters(&self) -> NetCounters {
        self.shared.borrow().counters
    }

    /// Free pool slots (for tests and monitoring).
    pub fn pool_available(&self) -> usize {
        self.shared.borrow().pool.available()
    }

    /// Pool size in slots.
    pub fn pool_capacity(&self) -> usize {
        self.shared.borrow().pool.capacity()
    }
}

/// Lends one received slot to smoltcp; the slot returns to the pool after `consume`.
pub struct RxToken<'a, D: NetDevice + ?Sized> {
    shared: &'a RefCell<Shared<D>>,
    frame: Frame,
}

/// Lends a free slot to smoltcp to build a frame in; the frame joins the transmit ring.
pub struct TxToken<'a, D: NetDevice + ?Sized> {
    shared: &'a RefCell<Shared<D>>,
}

impl<D: NetDevice + ?Sized> phy::RxToken for RxToken<'_, D> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        // smoltcp consumes a TX token inside `f` (an ARP or ICMP reply), so the pool must
        // not stay borrowed while `f` runs. The token owns this slot: nothing else reads or
        // writes it until it is freed below, and the pool's memory never moves.
        let bytes: *const [u8] = &self.shared.borrow().pool.buf(&self.frame.slot)[..self.frame.len];
        // SAFETY: see above; the allocation lives as long as `shared`, which outlives 'a.
        let result = f(unsafe { &*bytes });
        self.shared.borrow_mut().pool.free(self.frame.slot);
        result
    }
}

impl<D: NetDevice + ?Sized> phy::TxToken for TxToken<'_, D> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut guard = self.shared.borrow_mut();
        let shared = &mut *guard;
        if shared.tx.is_full() {
            shared.flush();
        }
        let slot = if shared.tx.is_full() || len > shared.pool.slot_size() { None } else { shared.pool.alloc() };
        match slot {
            Some(slot) => {
                let result = f(&mut shared.pool.buf_mut(&slot)[..len]);
                if shared.quiet.drops(&shared.pool.buf(&slot)[..len]) {
                    shared.pool.free(slot);
                } else {
                    // Cannot fail: checked not full above, and nothing pushed since.
                    let _ = shared.tx.push(Frame { slot, len });
                }
                result
            }
            None => {
                shared.counters.tx_dropped += 1;
                let n = len.min(shared.scratch.len());
                f(&mut shared.scratch[..n])
            }
        }
    }
}

impl<D: NetDevice + ?Sized> phy::Device for RingPhy<D> {
    type RxToken<'a>
        = RxToken<'a, D>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, D>
    where
        Self: 'a;

    fn receive(&mut self, _timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let shared = self.shared.get_mut();
        if shared.rx.is_empty() && !shared.refilled {
            // One device call refills the whole ring: this is where batching happens.
            shared.refill();
            shared.refilled = true;
        }
        let frame = shared.rx.pop()?;
        Some((RxToken { shared: &self.shared, frame }, TxToken { shared: &self.shared }))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Self::TxToken<'_>> {
        Some(TxToken { shared: &self.shared })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.info.max_frame;
        caps.max_burst_size = Some(self.shared.borrow().tx.capacity());
        caps
    }
}

impl<T: NetDevice + ?Sized> NetDevice for Box<T> {
    fn info(&self) -> NetInfo {
        (**self).info()
    }
    fn receive(&mut self, ctx: RingContext<'_>) {
        (**self).receive(ctx)
    }
    fn transmit(&mut self, ctx: RingContext<'_>) {
        (**self).transmit(ctx)
    }
    fn assigned_ipv4(&self) -> Option<super::Ipv4Assignment> {
        (**self).assigned_ipv4()
    }
    fn poll_deadline_ns(&mut self) -> Option<u64> {
        (**self).poll_deadline_ns()
    }
}
