//! A [`NetDevice`] whose Ethernet frames travel inside UDP datagrams of another [`Stack`]:
//! the shape of a VPN device. An app runs its own smoltcp stack over a [`TunnelDevice`],
//! while the tunnel's *outer* stack, on the real device, carries the datagrams.
//!
//! ```text
//!  app sockets ── inner Stack (10.1.0.2) ── RingPhy ── TunnelDevice
//!                                                         │ frame ⇄ VXLAN datagram
//!                              outer Stack (10.0.0.2) ── UDP socket :4789 ⇄ peer 10.0.0.1:4789
//!                                         │
//!                                real device (TAP, uknetdev, solo5)
//! ```
//!
//! The framing is VXLAN (RFC 7348): an 8-byte header (flags with the I bit, a 24-bit VNI)
//! before the frame, to UDP port 4789. Being a standard, the far end can be any VXLAN
//! endpoint; on a Linux host it is the kernel itself
//! (`ip link add vx0 type vxlan id 42 remote 10.0.0.2 local 10.0.0.1 dstport 4789`), which
//! is what the end-to-end tests use. No encryption: the frames cross the outer network in
//! the clear (an AEAD layer would be another device stacked the same way).
//!
//! **Sizes.** A frame loses [`VXLAN_OVERHEAD`] bytes to the outer headers (Ethernet 14,
//! IPv4 20, UDP 8, VXLAN 8): over a 1514-byte outer frame (IP MTU 1500) the inner frame is
//! at most 1464 bytes ([`NetInfo::max_frame`]), an inner IP MTU of 1450, the same as a
//! Linux VXLAN device's. So no outer datagram is ever fragmented; the inner stack
//! fragments larger inner packets itself.
//!
//! **Who polls the outer stack.** The tunnel owns it and polls it from inside its own
//! device calls: `receive` runs a full outer poll (ARP, ICMP, datagrams in) and then moves
//! the datagrams waiting in the socket onto the inner receive ring; `transmit` queues each
//! frame as a datagram and sends them (outer egress). The app drives only the inner stack,
//! exactly as over a real device. The outer stack's own timers (an ARP retry) and
//! datagrams left in the socket when the inner ring was full are reported through
//! [`NetDevice::poll_deadline_ns`], so the inner [`Stack::wait`] never sleeps past them;
//! wake-ups from the real device reach the inner loop through the backend's wait as usual.
//!
//! **What is dropped, and where it is counted.** A datagram from another address than the
//! peer's, one too short or without the I bit, and one with another VNI are discarded
//! ([`TunnelCounters`]). A frame larger than `max_frame`, or one that arrives when the pool
//! has no free slot, is a dropped frame: the inner stack's
//! [`NetCounters::rx_dropped`](super::NetCounters::rx_dropped) and, for the size,
//! [`TunnelCounters::oversize`]. Datagrams stay in the socket while the receive ring is
//! full (the socket is this device's queue), and a datagram larger than the socket's
//! whole buffer never reaches the tunnel (the outer stack drops it).
//!
//! ```ignore
//! let outer = Stack::new(open_net("")?, StackConfig::new(outer_cidr));
//! let tunnel = TunnelDevice::new(outer, TunnelConfig::new(peer, 42))?;
//! let mut inner = Stack::new(Box::new(tunnel), StackConfig::new(inner_cidr));
//! // ... sockets on `inner`, and the usual poll / send / wait loop.
//! ```

use alloc::vec;
use core::fmt;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;
use smoltcp::wire::{IpAddress, IpEndpoint, Ipv4Address};

use super::{Frame, NetDevice, NetInfo, RingContext, Stack};
use crate::services;

/// VXLAN's UDP port (IANA), the tunnel's default on both ends.
pub const VXLAN_PORT: u16 = 4789;

/// The VXLAN header: flags (I bit), 3 reserved bytes, the 24-bit VNI, 1 reserved byte.
const HEADER: usize = 8;

/// The I flag: the VNI field is valid.
const FLAG_VNI: u8 = 0x08;

/// Bytes an inner frame costs on top of itself in an outer frame: Ethernet 14, IPv4 20,
/// UDP 8 and the VXLAN header 8.
pub const VXLAN_OVERHEAD: usize = 14 + 20 + 8 + HEADER;

/// The smallest inner frame the tunnel accepts to carry: an Ethernet header and IPv4's
/// minimum MTU (68).
const MIN_INNER_FRAME: usize = 14 + 68;

/// Where a [`TunnelDevice`] sends its frames, and as what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelConfig {
    /// The far end's address on the outer network; frames from any other address are
    /// discarded.
    pub peer: Ipv4Address,
    /// The UDP port the tunnel binds on the outer stack and sends to on the peer.
    /// Datagrams from any source port of the peer are accepted (VXLAN senders pick the
    /// source port per flow).
    pub port: u16,
    /// The VXLAN network identifier, 0..2^24; datagrams with another one are discarded.
    pub vni: u32,
    /// The inner Ethernet address.
    pub mac: [u8; 6],
    /// Datagrams the outer socket buffers each way (each up to a whole outer frame).
    pub datagrams: usize,
}

impl TunnelConfig {
    /// A tunnel to `peer` on [`VXLAN_PORT`] with network identifier `vni`, a random
    /// locally administered MAC, and 32 datagrams of buffer each way.
    pub fn new(peer: Ipv4Address, vni: u32) -> Self {
        let mut mac = [0u8; 6];
        services::fill_random(&mut mac);
        mac[0] = (mac[0] & !0x01) | 0x02; // unicast, locally administered
        TunnelConfig { peer, port: VXLAN_PORT, vni, mac, datagrams: 32 }
    }
}

/// Datagrams a [`TunnelDevice`] discarded, by reason (frames it dropped are also in the
/// inner stack's [`NetCounters::rx_dropped`](super::NetCounters::rx_dropped)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TunnelCounters {
    /// From an address other than the peer's.
    pub not_from_peer: u64,
    /// Shorter than the VXLAN header and an Ethernet header, or without the I flag.
    pub malformed: u64,
    /// With another VNI.
    pub wrong_vni: u64,
    /// Carrying a frame larger than the device's `max_frame`.
    pub oversize: u64,
}

/// Why a [`TunnelDevice`] cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelError {
    /// The VNI does not fit VXLAN's 24 bits.
    VniTooLarge(u32),
    /// The outer device's frames leave no room for a useful inner frame.
    OuterFrameTooSmall {
        /// The outer device's `max_frame`.
        outer_max_frame: usize,
    },
    /// The outer stack cannot bind the tunnel's UDP port (port 0).
    Bind {
        /// The port asked for.
        port: u16,
    },
    /// No datagram buffers (`datagrams` is 0).
    NoBuffers,
    /// The peer is not a unicast address.
    BadPeer(Ipv4Address),
}

impl fmt::Display for TunnelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TunnelError::VniTooLarge(vni) => write!(f, "tunnel: VNI {vni} does not fit in 24 bits (0..=16777215)"),
            TunnelError::OuterFrameTooSmall { outer_max_frame } => write!(
                f,
                "tunnel: the outer device's {outer_max_frame}-byte frames leave no room for an inner frame \
                 ({VXLAN_OVERHEAD} bytes of headers + at least {MIN_INNER_FRAME})"
            ),
            TunnelError::Bind { port } => write!(f, "tunnel: cannot bind UDP port {port} on the outer stack"),
            TunnelError::NoBuffers => write!(f, "tunnel: `datagrams` must be at least 1"),
            TunnelError::BadPeer(peer) => write!(f, "tunnel: the peer {peer} is not a unicast address"),
        }
    }
}

impl core::error::Error for TunnelError {}

/// An Ethernet device over VXLAN datagrams of an outer [`Stack`], which it owns and polls.
/// See the module docs.
pub struct TunnelDevice {
    outer: Stack,
    socket: SocketHandle,
    config: TunnelConfig,
    info: NetInfo,
    counters: TunnelCounters,
    /// `transmit` left frames on the ring (the socket's buffer was full).
    backlog: bool,
}

impl TunnelDevice {
    /// Takes over `outer` and binds the tunnel's UDP socket on it (its buffers are
    /// allocated here, once).
    pub fn new(mut outer: Stack, config: TunnelConfig) -> Result<Self, TunnelError> {
        if config.vni >= 1 << 24 {
            return Err(TunnelError::VniTooLarge(config.vni));
        }
        if config.datagrams == 0 {
            return Err(TunnelError::NoBuffers);
        }
        if !IpAddress::Ipv4(config.peer).is_unicast() {
            return Err(TunnelError::BadPeer(config.peer));
        }
        let outer_max_frame = outer.phy.info().max_frame;
        let max_frame = outer_max_frame.saturating_sub(VXLAN_OVERHEAD);
        if max_frame < MIN_INNER_FRAME {
            return Err(TunnelError::OuterFrameTooSmall { outer_max_frame });
        }
        // Room for `datagrams` of the largest size either way; larger ones (only a broken
        // or hostile sender makes them) still fit the receive side, to be counted.
        let bytes = config.datagrams * outer_max_frame;
        let buffer = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; config.datagrams], vec![0; bytes]);
        let mut socket = udp::Socket::new(buffer(), buffer());
        socket.bind(config.port).map_err(|_| TunnelError::Bind { port: config.port })?;
        let socket = outer.sockets.add(socket);
        Ok(TunnelDevice {
            outer,
            socket,
            config,
            info: NetInfo { mac: config.mac, max_frame, headroom: 0 },
            counters: TunnelCounters::default(),
            backlog: false,
        })
    }

    /// The outer stack (its counters, or sockets of its own beside the tunnel's).
    pub fn outer_mut(&mut self) -> &mut Stack {
        &mut self.outer
    }

    /// The configuration the tunnel runs with.
    pub fn config(&self) -> TunnelConfig {
        self.config
    }

    /// Datagrams discarded so far, by reason.
    pub fn counters(&self) -> TunnelCounters {
        self.counters
    }

    fn peer(&self) -> IpEndpoint {
        IpEndpoint::new(IpAddress::Ipv4(self.config.peer), self.config.port)
    }
}

/// Why a datagram from the peer carries no frame for this tunnel.
enum Discard {
    Malformed,
    WrongVni,
}

/// The frame inside a datagram from the peer.
fn decapsulate(datagram: &[u8], vni: u32) -> Result<&[u8], Discard> {
    if datagram.len() < HEADER + 14 || datagram[0] & FLAG_VNI == 0 {
        return Err(Discard::Malformed);
    }
    if u32::from_be_bytes([0, datagram[4], datagram[5], datagram[6]]) != vni {
        return Err(Discard::WrongVni);
    }
    Ok(&datagram[HEADER..])
}

/// Writes the VXLAN header for `vni` into the first [`HEADER`] bytes of `buf`.
fn encapsulate_header(buf: &mut [u8], vni: u32) {
    let vni = vni.to_be_bytes();
    buf[..HEADER].copy_from_slice(&[FLAG_VNI, 0, 0, 0, vni[1], vni[2], vni[3], 0]);
}

impl NetDevice for TunnelDevice {
    fn info(&self) -> NetInfo {
        self.info
    }

    fn receive(&mut self, ctx: RingContext<'_>) {
        self.outer.poll();
        let RingContext { pool, ring, counters } = ctx;
        let peer = IpAddress::Ipv4(self.config.peer);
        let socket = self.outer.sockets.get_mut::<udp::Socket>(self.socket);
        while !ring.is_full() {
            let Ok((datagram, meta)) = socket.recv() else { break };
            if meta.endpoint.addr != peer {
                self.counters.not_from_peer += 1;
                continue;
            }
            let frame = match decapsulate(datagram, self.config.vni) {
                Ok(frame) => frame,
                Err(Discard::Malformed) => {
                    self.counters.malformed += 1;
                    continue;
                }
                Err(Discard::WrongVni) => {
                    self.counters.wrong_vni += 1;
                    continue;
                }
            };
            if frame.len() > self.info.max_frame {
                self.counters.oversize += 1;
                counters.rx_dropped += 1;
                continue;
            }
            let Some(slot) = pool.alloc() else {
                counters.rx_dropped += 1;
                continue;
            };
            pool.buf_mut(&slot)[..frame.len()].copy_from_slice(frame);
            counters.rx_packets += 1;
            counters.rx_bytes += frame.len() as u64;
            // Cannot fail: the loop checks the ring has room.
            let _ = ring.push(Frame { slot, len: frame.len() });
        }
    }

    fn transmit(&mut self, ctx: RingContext<'_>) {
        let RingContext { pool, ring, counters } = ctx;
        let peer = self.peer();
        let mut sent_outer = false;
        self.backlog = false;
        while let Some(frame) = ring.pop() {
            if frame.len > self.info.max_frame {
                // smoltcp keeps to the MTU (`max_frame`), so only a broken caller gets here.
                counters.tx_dropped += 1;
                pool.free(frame.slot);
                continue;
            }
            let socket = self.outer.sockets.get_mut::<udp::Socket>(self.socket);
            match socket.send(HEADER + frame.len, peer) {
                Ok(buf) => {
                    encapsulate_header(buf, self.config.vni);
                    buf[HEADER..].copy_from_slice(&pool.buf(&frame.slot)[..frame.len]);
                    counters.tx_packets += 1;
                    counters.tx_bytes += frame.len as u64;
                    pool.free(frame.slot);
                }
                Err(udp::SendError::BufferFull) if !sent_outer => {
                    // The socket's buffer is full: send what it holds, then try again.
                    self.outer.send();
                    sent_outer = true;
                    let _ = ring.push_front(frame);
                }
                Err(udp::SendError::Unaddressable) => {
                    // Not with a bound port and a checked peer; never retried forever.
                    counters.tx_dropped += 1;
                    pool.free(frame.slot);
                }
                Err(udp::SendError::BufferFull) => {
                    // Still full: the frame waits on the ring for the next flush.
                    let _ = ring.push_front(frame);
                    self.backlog = true;
                    break;
                }
            }
        }
        self.outer.send();
    }

    fn poll_deadline_ns(&mut self) -> Option<u64> {
        let now = services::monotonic_ns();
        if self.outer.sockets.get::<udp::Socket>(self.socket).can_recv() {
            // Datagrams left when the receive ring was full: no device event will come.
            return Some(now);
        }
        let outer = self.outer.poll_deadline_ns();
        // Frames left on the transmit ring: retry soon, without spinning.
        let backlog = self.backlog.then(|| now + 1_000_000);
        match (outer, backlog) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests;
