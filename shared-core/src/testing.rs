//! Test doubles for other crates' unit tests (feature `test-utils`; always in shared-core's
//! own tests), as rust-vmm's `virtio-queue` exports its mock driver side.
//!
//! [`wire`] joins two ends by an in-memory wire: a frame sent at one end arrives at the
//! other. An end is a plain smoltcp [`phy::Device`] (for a peer interface), or, through
//! [`WireEnd::into_net_device`], a [`NetDevice`] that goes through the production ring path
//! ([`RingPhy`](crate::net::RingPhy), the pool) as a backend's device does.
//!
//! [`FaultDisk`] is a block device with a volatile write cache that a test stops at any
//! request, crashes with any subset of the cached writes landed, and tears.

mod fault_disk;
pub use fault_disk::{CachedWrite, FaultDisk, FaultOp, Stop, Tear};

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use crate::net::{Frame, NetDevice, NetInfo, RingContext};

/// Frames in flight in one direction.
pub type Queue = Rc<RefCell<VecDeque<Vec<u8>>>>;

/// One end of an in-memory wire.
pub struct WireEnd {
    rx: Queue,
    tx: Queue,
    max_frame: usize,
}

/// Two ends joined by a wire; frames up to `max_frame` bytes (Ethernet header included).
pub fn wire(max_frame: usize) -> (WireEnd, WireEnd) {
    let (a, b): (Queue, Queue) = Default::default();
    (WireEnd { rx: a.clone(), tx: b.clone(), max_frame }, WireEnd { rx: b, tx: a, max_frame })
}

impl WireEnd {
    /// Whether no frame is in flight either way.
    pub fn is_idle(&self) -> bool {
        self.rx.borrow().is_empty() && self.tx.borrow().is_empty()
    }

    /// This end as a backend's device with Ethernet address `mac`.
    pub fn into_net_device(self, mac: [u8; 6]) -> RingWireEnd {
        RingWireEnd { info: NetInfo { mac, max_frame: self.max_frame, headroom: 0 }, end: self }
    }
}

/// A received frame.
pub struct Rx(Vec<u8>);
/// Where a sent frame goes.
pub struct Tx(Queue);

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for Tx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0u8; len];
        let result = f(&mut frame);
        self.0.borrow_mut().push_back(frame);
        result
    }
}

impl phy::Device for WireEnd {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx;

    fn receive(&mut self, _: Instant) -> Option<(Rx, Tx)> {
        let frame = self.rx.borrow_mut().pop_front()?;
        Some((Rx(frame), Tx(self.tx.clone())))
    }

    fn transmit(&mut self, _: Instant) -> Option<Tx> {
        Some(Tx(self.tx.clone()))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.max_frame;
        caps
    }
}

/// A [`WireEnd`] as a [`NetDevice`]: frames are copied into pool slots on receive (as
/// many as the ring and the pool take; the rest wait on the wire) and out of them on
/// transmit.
pub struct RingWireEnd {
    end: WireEnd,
    info: NetInfo,
}

impl NetDevice for RingWireEnd {
    fn info(&self) -> NetInfo {
        self.info
    }

    fn receive(&mut self, ctx: RingContext<'_>) {
        while !ctx.ring.is_full() {
            let Some(slot) = ctx.pool.alloc() else { break };
            let Some(frame) = self.end.rx.borrow_mut().pop_front() else {
                ctx.pool.free(slot);
                break;
            };
            ctx.pool.buf_mut(&slot)[..frame.len()].copy_from_slice(&frame);
            let _ = ctx.ring.push(Frame { slot, len: frame.len() });
        }
    }

    fn transmit(&mut self, ctx: RingContext<'_>) {
        while let Some(frame) = ctx.ring.pop() {
            self.end.tx.borrow_mut().push_back(ctx.pool.buf(&frame.slot)[..frame.len].to_vec());
            ctx.pool.free(frame.slot);
        }
    }
}

impl WireEnd {
    /// Puts `frame` on the wire as if this end had sent it (a forged frame, say).
    pub fn inject(&mut self, frame: Vec<u8>) {
        self.tx.borrow_mut().push_back(frame);
    }
}

/// An Ethernet frame carrying a TCP SYN from `src` to `dst` (sent to `dst_mac`, from a
/// made-up Ethernet address), as a spoofed-source SYN flood sends them.
pub fn tcp_syn_frame(
    dst_mac: [u8; 6],
    src: (smoltcp::wire::Ipv4Address, u16),
    dst: (smoltcp::wire::Ipv4Address, u16),
    seq: i32,
) -> Vec<u8> {
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr,
        TcpControl, TcpPacket, TcpRepr, TcpSeqNumber,
    };
    let tcp = TcpRepr {
        src_port: src.1,
        dst_port: dst.1,
        control: TcpControl::Syn,
        seq_number: TcpSeqNumber(seq),
        ack_number: None,
        window_len: 64240,
        window_scale: None,
        max_seg_size: Some(1460),
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: &[],
    };
    let ip = Ipv4Repr {
        src_addr: src.0,
        dst_addr: dst.0,
        next_header: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        hop_limit: 64,
    };
    let eth = EthernetRepr {
        src_addr: EthernetAddress([2, 0xee, 0, 0, 0, 1]),
        dst_addr: EthernetAddress(dst_mac),
        ethertype: EthernetProtocol::Ipv4,
    };
    let mut buf = vec![0u8; eth.buffer_len() + ip.buffer_len() + tcp.buffer_len()];
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut frame);
    let mut packet = Ipv4Packet::new_unchecked(frame.payload_mut());
    ip.emit(&mut packet, &ChecksumCapabilities::default());
    let mut segment = TcpPacket::new_unchecked(packet.payload_mut());
    tcp.emit(&mut segment, &IpAddress::Ipv4(src.0), &IpAddress::Ipv4(dst.0), &ChecksumCapabilities::default());
    buf
}
