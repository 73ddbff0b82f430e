//! The ring-shaped network device interface.
//!
//! Packets live in one [`PacketPool`]: a single allocation of `slots × slot_size` bytes
//! made at start-up. A packet is named by a [`SlotId`]; moving a packet between the
//! device, the receive ring and the transmit ring moves a two-byte index, never bytes.
//!
//! ```text
//!              receive(ctx)                 RingPhy::receive
//!   device ───────────────▶ rx FrameRing ───────────────────▶ smoltcp RxToken (borrows slot)
//!     ▲                                                          │ slot freed after consume
//!     │       transmit(ctx)                 RingPhy::transmit     ▼
//!     └──────────────────── tx FrameRing ◀─────────────────── smoltcp TxToken (fills slot)
//! ```
//!
//! A backend implements [`NetDevice`]. Devices with a native ring (Unikraft's uknetdev,
//! AF_PACKET) move many frames per call; devices with one packet per call (solo5, a TAP
//! fd) loop inside `receive`/`transmit`. Either way the contract is the same:
//!
//! * `receive` takes free slots from the pool, fills them, and pushes [`Frame`]s onto the
//!   receive ring until the device is empty or the ring is full. A frame that arrives
//!   when no slot is free is **dropped and counted** ([`NetCounters::rx_dropped`]); the pool
//!   never grows.
//! * `transmit` pops frames from the transmit ring, sends them, and returns their slots to
//!   the pool once the device no longer needs the bytes.
//!
//! [`RingPhy`] implements `smoltcp::phy::Device` over any `NetDevice`, handing smoltcp the
//! pool's slots directly (zero copy between device and stack).

mod assigned;
mod listener;
mod phy;
mod pool;
mod quiet_ports;
pub mod stack;
mod tunnel;

pub use assigned::Ipv4Assignment;
pub use listener::{renew_listening, Connection, ListenerConfig, ListenerCounters, ListenerPool};
pub use phy::{RingConfig, RingPhy};
pub use pool::{Frame, FrameRing, PacketPool, SlotId};
pub use quiet_ports::QuietPorts;
pub use stack::{Stack, StackConfig};
pub use tunnel::{TunnelConfig, TunnelCounters, TunnelDevice, TunnelError, VXLAN_OVERHEAD, VXLAN_PORT};

/// Packet and byte counters, kept by [`RingPhy`] and the device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetCounters {
    /// Frames received and handed to the stack.
    pub rx_packets: u64,
    /// Bytes in those frames.
    pub rx_bytes: u64,
    /// Frames the device had to drop: no free slot, or a full receive ring.
    pub rx_dropped: u64,
    /// Frames sent.
    pub tx_packets: u64,
    /// Bytes in those frames.
    pub tx_bytes: u64,
    /// Frames the stack wanted to send but could not: no free slot, or the device refused.
    pub tx_dropped: u64,
}

/// Static facts about a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetInfo {
    /// The device's Ethernet address.
    pub mac: [u8; 6],
    /// The largest frame the device carries, Ethernet header included (1514 for a
    /// standard 1500-byte MTU).
    pub max_frame: usize,
    /// Bytes the device needs before each frame in its buffer (virtio-net's header);
    /// the pool reserves them ([`PacketPool::with_headroom`]). 0 for devices that copy.
    pub headroom: usize,
}

/// What a device may touch during one `receive` or `transmit` call.
pub struct RingContext<'a> {
    /// The shared buffer pool.
    pub pool: &'a mut PacketPool,
    /// For `receive`: where received frames go. For `transmit`: the frames to send.
    pub ring: &'a mut FrameRing,
    /// Counters the device updates (drops, packets, bytes).
    pub counters: &'a mut NetCounters,
}

/// A network device, seen as a pair of rings over a shared pool. See the module docs for
/// the contract.
///
/// A complete device: a loopback that hands every transmitted frame back as received,
/// without copying (the frame's slot moves from the transmit ring to the receive ring).
/// A backend's device has the same shape, with its hardware queue in place of `pending`;
/// [`RingPhy`] and [`Stack`] drive it, here the calls are made by hand.
///
/// ```
/// use std::collections::VecDeque;
///
/// use shared_core::net::{Frame, FrameRing, NetCounters, NetDevice, NetInfo, PacketPool, RingContext};
///
/// struct Loopback {
///     /// Frames sent and not yet received back; their slots stay taken meanwhile.
///     pending: VecDeque<Frame>,
/// }
///
/// impl NetDevice for Loopback {
///     fn info(&self) -> NetInfo {
///         // max_frame counts the Ethernet header: 1514 for a 1500-byte MTU.
///         NetInfo { mac: [0x02, 0, 0, 0, 0, 1], max_frame: 1514, headroom: 0 }
///     }
///
///     fn receive(&mut self, ctx: RingContext<'_>) {
///         // Never blocks: move what is there until the ring is full.
///         while let Some(frame) = self.pending.pop_front() {
///             let len = frame.len as u64;
///             if let Err(frame) = ctx.ring.push(frame) {
///                 self.pending.push_front(frame); // the ring is full: next time
///                 break;
///             }
///             ctx.counters.rx_packets += 1;
///             ctx.counters.rx_bytes += len;
///         }
///     }
///
///     fn transmit(&mut self, ctx: RingContext<'_>) {
///         // A device that copied the bytes out would `ctx.pool.free(frame.slot)` here.
///         while let Some(frame) = ctx.ring.pop() {
///             ctx.counters.tx_packets += 1;
///             ctx.counters.tx_bytes += frame.len as u64;
///             self.pending.push_back(frame);
///         }
///     }
/// }
///
/// let mut device = Loopback { pending: VecDeque::new() };
/// let mut pool = PacketPool::new(8, device.info().max_frame);
/// let (mut rx, mut tx) = (FrameRing::new(4), FrameRing::new(4));
/// let mut counters = NetCounters::default();
///
/// // The stack's side of a send: a slot from the pool, the frame's bytes, the tx ring.
/// let slot = pool.alloc().expect("a free slot");
/// pool.buf_mut(&slot)[..6].copy_from_slice(&[0xff; 6]);
/// tx.push(Frame { slot, len: 60 }).unwrap();
///
/// device.transmit(RingContext { pool: &mut pool, ring: &mut tx, counters: &mut counters });
/// device.receive(RingContext { pool: &mut pool, ring: &mut rx, counters: &mut counters });
///
/// let frame = rx.pop().expect("the frame came back");
/// assert_eq!((frame.len, &pool.buf(&frame.slot)[..6]), (60, &[0xff; 6][..]));
/// assert_eq!((counters.tx_packets, counters.rx_packets), (1, 1));
/// pool.free(frame.slot); // the stack's side of a receive: the slot goes back
/// assert_eq!(pool.available(), 8);
/// ```
pub trait NetDevice {
    /// The device's address and frame size.
    fn info(&self) -> NetInfo;
    /// Moves received frames onto `ctx.ring`, taking slots from `ctx.pool`. Must not
    /// block. Counts `rx_packets`/`rx_bytes` for queued frames and `rx_dropped` for frames
    /// it had to discard.
    fn receive(&mut self, ctx: RingContext<'_>);
    /// Sends frames popped from `ctx.ring`, returning their slots to `ctx.pool` when the
    /// device is done with them. Must not block; frames it cannot send now stay queued.
    /// Counts `tx_packets`/`tx_bytes`, and `tx_dropped` for frames it discards.
    fn transmit(&mut self, ctx: RingContext<'_>);
    /// The IPv4 configuration the platform assigned to this device (Unikraft's
    /// `netdev.ip=` kernel parameter), which [`Stack::new`] prefers over the app's. Most
    /// devices have none.
    fn assigned_ipv4(&self) -> Option<Ipv4Assignment> {
        None
    }
    /// When this device needs its next `receive` or `transmit` call even if no device
    /// event comes, in [`services::monotonic_ns`](crate::services::monotonic_ns) time;
    /// `None` (the default) when only device events matter. A device with timers or
    /// queues of its own says so here (a [`TunnelDevice`] runs a whole stack: its ARP
    /// retries, datagrams still waiting in its socket), and [`Stack`]'s waits never
    /// sleep past it.
    fn poll_deadline_ns(&mut self) -> Option<u64> {
        None
    }
}
