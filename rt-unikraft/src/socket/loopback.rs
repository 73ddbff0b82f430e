//! Loopback for the socket layer: `127.0.0.1` (and the guest's own address) inside the
//! guest, with or without a net device.
//!
//! The stack is one smoltcp interface on Ethernet. The socket layer gives it a second
//! address, `127.0.0.1/8`, and its device is wrapped in a [`Loopback`]: a frame the stack
//! sends to a loopback address or to one of its own (and the ARP requests that resolve
//! them: smoltcp answers itself) never reaches the NIC but comes back in as received, in
//! the same pool slot (no copy). Without a NIC the wrapper is the whole device, so a
//! program that only talks to itself (a test suite that starts a server and connects to
//! it) works in an image with no network at all.

use std::collections::VecDeque;

use shared_core::net::{Frame, FrameRing, Ipv4Assignment, NetDevice, NetInfo, PacketPool, RingContext};
use smoltcp::wire::{ArpPacket, EthernetFrame, EthernetProtocol, Ipv4Address, Ipv4Packet};

/// The loopback network: `127.0.0.0/8`.
pub const LOOPBACK: Ipv4Address = Ipv4Address::new(127, 0, 0, 1);

/// Whether `addr` is in `127.0.0.0/8`.
pub fn is_loopback(addr: Ipv4Address) -> bool {
    addr.octets()[0] == 127
}

/// A device with loopback in front of an optional NIC (see the module docs).
pub struct Loopback<D> {
    nic: Option<D>,
    info: NetInfo,
    /// The stack's own non-loopback address (frames to it loop back too).
    own: Option<Ipv4Address>,
    /// Frames sent to ourselves, waiting to be received.
    looped: VecDeque<Frame>,
    /// Where frames for the NIC wait while it sends.
    outbound: FrameRing,
}

/// The Ethernet address of a guest with no NIC (locally administered).
const NO_NIC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];

impl<D: NetDevice> Loopback<D> {
    /// Loopback in front of `nic` (or alone), for frames up to the NIC's size.
    pub fn new(nic: Option<D>) -> Self {
        let info = nic.as_ref().map_or(NetInfo { mac: NO_NIC_MAC, max_frame: 1514, headroom: 0 }, |n| n.info());
        Loopback { nic, info, own: None, looped: VecDeque::new(), outbound: FrameRing::new(256) }
    }

    /// Frames to `own` loop back too (the guest's own address on the NIC).
    pub fn set_own_address(&mut self, own: Ipv4Address) {
        self.own = Some(own);
    }

    /// Whether the guest has a NIC behind the loopback.
    pub fn has_nic(&self) -> bool {
        self.nic.is_some()
    }

    fn is_local(&self, addr: Ipv4Address) -> bool {
        is_loopback(addr) || self.own == Some(addr)
    }

    /// Whether `frame` goes back to the stack: IPv4 to a local address, or ARP asking for one.
    fn loops_back(&self, frame: &[u8]) -> bool {
        let Ok(ethernet) = EthernetFrame::new_checked(frame) else { return false };
        match ethernet.ethertype() {
            EthernetProtocol::Ipv4 => {
                Ipv4Packet::new_checked(ethernet.payload()).is_ok_and(|ip| self.is_local(ip.dst_addr()))
            }
            EthernetProtocol::Arp => ArpPacket::new_checked(ethernet.payload()).is_ok_and(|arp| {
                let target = arp.target_protocol_addr();
                target.len() == 4
                    && self.is_local(Ipv4Address::from_octets([target[0], target[1], target[2], target[3]]))
            }),
            _ => false,
        }
    }
}

impl<D: NetDevice> NetDevice for Loopback<D> {
    fn info(&self) -> NetInfo {
        self.info
    }

    fn receive(&mut self, ctx: RingContext<'_>) {
        let RingContext { pool, ring, counters } = ctx;
        while !ring.is_full() {
            let Some(frame) = self.looped.pop_front() else { break };
            counters.rx_packets += 1;
            counters.rx_bytes += frame.len as u64;
            // Cannot fail: checked not full.
            let _ = ring.push(frame);
        }
        if let Some(nic) = &mut self.nic {
            nic.receive(RingContext { pool, ring, counters });
        }
    }

    fn transmit(&mut self, ctx: RingContext<'_>) {
        let RingContext { pool, ring, counters } = ctx;
        while let Some(frame) = ring.pop() {
            if self.loops_back(&pool.buf(&frame.slot)[..frame.len]) {
                counters.tx_packets += 1;
                counters.tx_bytes += frame.len as u64;
                self.looped.push_back(frame);
            } else if let Err(frame) = self.outbound.push(frame) {
                // More for the NIC than it queues: keep it for the next round.
                let _ = ring.push_front(frame);
                break;
            }
        }
        match &mut self.nic {
            Some(nic) => {
                nic.transmit(RingContext { pool, ring: &mut self.outbound, counters });
                // What the NIC could not take stays queued, ahead of what came after it.
                while let Some(frame) = self.outbound.pop() {
                    if let Err(frame) = ring.push(frame) {
                        free_dropped(pool, frame, counters);
                    }
                }
            }
            None => {
                while let Some(frame) = self.outbound.pop() {
                    free_dropped(pool, frame, counters);
                }
            }
        }
    }

    fn assigned_ipv4(&self) -> Option<Ipv4Assignment> {
        self.nic.as_ref().and_then(|n| n.assigned_ipv4())
    }

    fn poll_deadline_ns(&mut self) -> Option<u64> {
        if !self.looped.is_empty() {
            // Frames to ourselves are waiting: poll again at once.
            return Some(0);
        }
        self.nic.as_mut().and_then(|n| n.poll_deadline_ns())
    }
}

fn free_dropped(pool: &mut PacketPool, frame: Frame, counters: &mut shared_core::net::NetCounters) {
    counters.tx_dropped += 1;
    pool.free(frame.slot);
}
