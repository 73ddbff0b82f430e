//! Tunnels over outer stacks joined by an in-memory wire: inner UDP across two tunnels,
//! and one tunnel's device calls against a plain stack that sends it hand-made datagrams.

extern crate std;

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;
use smoltcp::wire::{IpAddress, IpEndpoint, Ipv4Address, Ipv4Cidr};

use super::*;
use crate::net::{FrameRing, NetCounters, PacketPool, RingConfig, StackConfig};
use crate::test_platform;

type Queue = Rc<RefCell<VecDeque<Vec<u8>>>>;

/// One end of the wire: frames sent here arrive at the other end.
struct WireEnd {
    rx: Queue,
    tx: Queue,
    mac: [u8; 6],
    max_frame: usize,
}

impl NetDevice for WireEnd {
    fn info(&self) -> NetInfo {
        NetInfo { mac: self.mac, max_frame: self.max_frame, headroom: 0 }
    }
    fn receive(&mut self, ctx: RingContext<'_>) {
        while !ctx.ring.is_full() {
            let Some(bytes) = self.rx.borrow_mut().pop_front() else { break };
            let Some(slot) = ctx.pool.alloc() else {
                ctx.counters.rx_dropped += 1;
                continue;
            };
            ctx.pool.buf_mut(&slot)[..bytes.len()].copy_from_slice(&bytes);
            let _ = ctx.ring.push(Frame { slot, len: bytes.len() });
        }
    }
    fn transmit(&mut self, ctx: RingContext<'_>) {
        while let Some(frame) = ctx.ring.pop() {
            self.tx.borrow_mut().push_back(ctx.pool.buf(&frame.slot)[..frame.len].to_vec());
            ctx.pool.free(frame.slot);
        }
    }
}

/// Two ends of one wire, with 1514-byte frames (an IP MTU of 1500).
fn wire() -> (WireEnd, WireEnd) {
    let (a, b): (Queue, Queue) = Default::default();
    (
        WireEnd { rx: a.clone(), tx: b.clone(), mac: [2, 0, 0, 0, 0, 1], max_frame: 1514 },
        WireEnd { rx: b, tx: a, mac: [2, 0, 0, 0, 0, 2], max_frame: 1514 },
    )
}

fn cidr(ip: Ipv4Address) -> Ipv4Cidr {
    Ipv4Cidr::new(ip, 24)
}

fn stack(device: Box<dyn NetDevice>, ip: Ipv4Address) -> Stack {
    let mut config = StackConfig::new(cidr(ip));
    config.ring = RingConfig { slots: 32, slot_size: 2048, rx_ring: 16, tx_ring: 16 };
    Stack::new(device, config)
}

fn udp_socket(stack: &mut Stack, port: u16) -> SocketHandle {
    let buffer = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 16], vec![0; 32 * 1024]);
    let mut socket = udp::Socket::new(buffer(), buffer());
    socket.bind(port).unwrap();
    stack.sockets.add(socket)
}

const OUTER_A: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
const OUTER_B: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
const INNER_A: Ipv4Address = Ipv4Address::new(10, 1, 0, 1);
const INNER_B: Ipv4Address = Ipv4Address::new(10, 1, 0, 2);
const VNI: u32 = 42;

fn tunnel_config(peer: Ipv4Address, mac: u8) -> TunnelConfig {
    TunnelConfig { mac: [2, 0, 0, 0, 1, mac], ..TunnelConfig::new(peer, VNI) }
}

#[test]
fn inner_udp_crosses_two_tunnels_and_is_echoed() {
    let _lock = test_platform::lock();
    let (wire_a, wire_b) = wire();
    let tunnel_a = TunnelDevice::new(stack(Box::new(wire_a), OUTER_A), tunnel_config(OUTER_B, 1)).unwrap();
    let tunnel_b = TunnelDevice::new(stack(Box::new(wire_b), OUTER_B), tunnel_config(OUTER_A, 2)).unwrap();
    // 1514 - 14 (Ethernet) - 20 (IPv4) - 8 (UDP) - 8 (VXLAN): an inner IP MTU of 1450.
    assert_eq!(tunnel_a.info().max_frame, 1464);
    let mut a = stack(Box::new(tunnel_a), INNER_A);
    let mut b = stack(Box::new(tunnel_b), INNER_B);
    let client = udp_socket(&mut a, 5000);
    let echo = udp_socket(&mut b, 7);

    // Small, as large as one inner frame holds (1450 - 20 - 8), and in fragments.
    let messages: [Vec<u8>; 3] =
        [b"hello through the tunnel".to_vec(), (0..1422).map(|i| i as u8).collect(), vec![0x5a; 3000]];
    for message in &messages {
        a.sockets.get_mut::<udp::Socket>(client).send_slice(message, IpEndpoint::new(INNER_B.into(), 7)).unwrap();
        let mut reply = None;
        for _ in 0..20 {
            a.poll();
            b.poll();
            let socket = b.sockets.get_mut::<udp::Socket>(echo);
            while let Ok((data, meta)) = socket.recv() {
                let data = data.to_vec();
                socket.send_slice(&data, meta).unwrap();
            }
            b.send();
            a.poll();
            if let Ok((data, meta)) = a.sockets.get_mut::<udp::Socket>(client).recv() {
                assert_eq!(meta.endpoint, IpEndpoint::new(INNER_B.into(), 7));
                reply = Some(data.to_vec());
                break;
            }
        }
        assert_eq!(reply.as_ref(), Some(message), "no echo of a {}-byte datagram", message.len());
    }
    for side in [&a, &b] {
        let counters = side.phy.counters();
        assert!(counters.rx_packets >= 3 && counters.tx_packets >= 3, "{counters:?}");
        assert_eq!((counters.rx_dropped, counters.tx_dropped), (0, 0), "{counters:?}");
    }
}

/// A plain outer stack (`sender`, with a socket on the VXLAN port) and a tunnel on the
/// other end of the wire, driven by hand through its device calls.
struct Bench {
    sender: Stack,
    socket: SocketHandle,
    tunnel: TunnelDevice,
    pool: PacketPool,
    counters: NetCounters,
}

impl Bench {
    fn new(peer: Ipv4Address, slots: usize) -> Bench {
        let (wire_a, wire_b) = wire();
        let mut sender = stack(Box::new(wire_a), OUTER_A);
        let socket = udp_socket(&mut sender, VXLAN_PORT);
        let tunnel = TunnelDevice::new(stack(Box::new(wire_b), OUTER_B), tunnel_config(peer, 2)).unwrap();
        Bench { sender, socket, tunnel, pool: PacketPool::new(slots, 2048), counters: NetCounters::default() }
    }

    /// Queues one datagram to the tunnel's port.
    fn send(&mut self, datagram: &[u8]) {
        let to = IpEndpoint::new(OUTER_B.into(), VXLAN_PORT);
        self.sender.sockets.get_mut::<udp::Socket>(self.socket).send_slice(datagram, to).unwrap();
    }

    /// Runs both sides (ARP included) and returns the frames the tunnel received into
    /// `ring`, leaving their slots taken.
    fn receive(&mut self, ring: &mut FrameRing) {
        for _ in 0..5 {
            self.sender.poll();
            let ctx = RingContext { pool: &mut self.pool, ring, counters: &mut self.counters };
            self.tunnel.receive(ctx);
        }
    }
}

/// A datagram: the VXLAN header for `vni` (with `flags`), then a frame of `len` bytes
/// whose bytes count up from `seed`.
fn datagram(flags: u8, vni: u32, len: usize, seed: u8) -> Vec<u8> {
    let vni = vni.to_be_bytes();
    let mut d = vec![flags, 0, 0, 0, vni[1], vni[2], vni[3], 0];
    d.extend((0..len).map(|i| seed.wrapping_add(i as u8)));
    d
}

#[test]
fn received_datagrams_become_frames_and_the_rest_is_counted() {
    let _lock = test_platform::lock();
    let mut bench = Bench::new(OUTER_A, 3);
    let max = bench.tunnel.info().max_frame;
    bench.send(&datagram(0x08, VNI, 60, 1)); // a frame
    bench.send(&datagram(0x08, VNI, max + 1, 2)); // one byte too large: dropped, counted
    bench.send(&datagram(0x08, VNI, max, 3)); // exactly the largest: a frame
    bench.send(&datagram(0x08, VNI + 1, 60, 4)); // another network
    bench.send(&datagram(0x00, VNI, 60, 5)); // no I flag
    bench.send(&datagram(0x08, VNI, 10, 6)); // shorter than an Ethernet header
    bench.send(&datagram(0x08, VNI, 70, 7)); // a frame: the pool's last slot
    bench.send(&datagram(0x08, VNI, 80, 8)); // no free slot: dropped, counted
    let mut ring = FrameRing::new(16);
    bench.receive(&mut ring);

    let mut got = Vec::new();
    while let Some(frame) = ring.pop() {
        got.push(bench.pool.buf(&frame.slot)[..frame.len].to_vec());
        bench.pool.free(frame.slot);
    }
    assert_eq!(got, [datagram(8, 0, 60, 1), datagram(8, 0, max, 3), datagram(8, 0, 70, 7)].map(|d| d[8..].to_vec()));
    assert_eq!(bench.tunnel.counters(), TunnelCounters { not_from_peer: 0, malformed: 2, wrong_vni: 1, oversize: 1 });
    let counters = bench.counters;
    assert_eq!((counters.rx_packets, counters.rx_dropped), (3, 2), "{counters:?}");
    assert_eq!(counters.rx_bytes, (60 + max + 70) as u64);
    assert_eq!(bench.pool.available(), 3);
}

#[test]
fn datagrams_from_anyone_but_the_peer_are_discarded() {
    let _lock = test_platform::lock();
    let mut bench = Bench::new(Ipv4Address::new(10, 0, 0, 7), 4);
    bench.send(&datagram(0x08, VNI, 60, 1));
    let mut ring = FrameRing::new(4);
    bench.receive(&mut ring);
    assert!(ring.is_empty());
    assert_eq!(bench.tunnel.counters().not_from_peer, 1);
    assert_eq!(bench.counters.rx_dropped, 0);
}

#[test]
fn a_full_ring_leaves_datagrams_queued_and_asks_for_a_poll_now() {
    let _lock = test_platform::lock();
    let mut bench = Bench::new(OUTER_A, 4);
    bench.send(&datagram(0x08, VNI, 60, 1));
    bench.send(&datagram(0x08, VNI, 60, 2));
    let mut ring = FrameRing::new(1);
    bench.receive(&mut ring);
    assert_eq!(ring.len(), 1);
    // The second one waits in the socket; nothing on the device will announce it.
    assert!(bench.tunnel.poll_deadline_ns().is_some_and(|at| at <= services::monotonic_ns()));
    let first = ring.pop().unwrap();
    assert_eq!(bench.pool.buf(&first.slot)[0], 1);
    bench.pool.free(first.slot);
    bench.receive(&mut ring);
    let second = ring.pop().unwrap();
    assert_eq!(bench.pool.buf(&second.slot)[0], 2);
    bench.pool.free(second.slot);
    assert_eq!(bench.counters.rx_dropped, 0);
}

#[test]
fn transmitted_frames_leave_as_vxlan_datagrams_to_the_peer() {
    let _lock = test_platform::lock();
    let mut bench = Bench::new(OUTER_A, 4);
    let mut ring = FrameRing::new(4);
    for (len, seed) in [(60, 1u8), (1464, 2)] {
        let slot = bench.pool.alloc().unwrap();
        bench.pool.buf_mut(&slot)[..len].copy_from_slice(&datagram(0, 0, len, seed)[8..]);
        ring.push(Frame { slot, len }).unwrap();
    }
    let ctx = RingContext { pool: &mut bench.pool, ring: &mut ring, counters: &mut bench.counters };
    bench.tunnel.transmit(ctx);
    assert!(ring.is_empty());
    assert_eq!(bench.pool.available(), 4, "slots are free once the frames are in the socket");
    assert_eq!((bench.counters.tx_packets, bench.counters.tx_bytes), (2, 60 + 1464));
    // The peer's MAC is not known yet: the outer stack's ARP retry is a deadline.
    assert!(bench.tunnel.poll_deadline_ns().is_some());

    let mut got = Vec::new();
    for _ in 0..5 {
        bench.sender.poll();
        let mut empty = FrameRing::new(1);
        bench.tunnel.receive(RingContext { pool: &mut bench.pool, ring: &mut empty, counters: &mut bench.counters });
        bench.tunnel.transmit(RingContext { pool: &mut bench.pool, ring: &mut empty, counters: &mut bench.counters });
        while let Ok((data, meta)) = bench.sender.sockets.get_mut::<udp::Socket>(bench.socket).recv() {
            assert_eq!(meta.endpoint.addr, IpAddress::Ipv4(OUTER_B));
            got.push(data.to_vec());
        }
    }
    assert_eq!(got, [datagram(0x08, VNI, 60, 1), datagram(0x08, VNI, 1464, 2)]);
}

#[test]
fn bad_configurations_are_refused_with_a_reason() {
    let _lock = test_platform::lock();
    let refused = |config: TunnelConfig, max_frame: usize| {
        let (mut end, _) = wire();
        end.max_frame = max_frame;
        TunnelDevice::new(stack(Box::new(end), OUTER_B), config).err().unwrap()
    };
    let good = tunnel_config(OUTER_A, 1);
    assert_eq!(refused(TunnelConfig { vni: 1 << 24, ..good }, 1514), TunnelError::VniTooLarge(1 << 24));
    assert_eq!(refused(TunnelConfig { datagrams: 0, ..good }, 1514), TunnelError::NoBuffers);
    let broadcast = Ipv4Address::BROADCAST;
    assert_eq!(refused(TunnelConfig { peer: broadcast, ..good }, 1514), TunnelError::BadPeer(broadcast));
    assert_eq!(refused(TunnelConfig { port: 0, ..good }, 1514), TunnelError::Bind { port: 0 });
    let small = refused(good, 120);
    assert_eq!(small, TunnelError::OuterFrameTooSmall { outer_max_frame: 120 });
    assert!(alloc::format!("{small}").contains("50 bytes of headers"), "{small}");
    // A random MAC is unicast and locally administered.
    assert_eq!(TunnelConfig::new(OUTER_A, 1).mac[0] & 0x03, 0x02);
}

#[test]
fn the_inner_stack_never_sleeps_past_the_outer_stacks_timers() {
    let _lock = test_platform::lock();
    // Nobody answers on the wire: the outer stack's ARP for the peer stays unanswered.
    let (wire_a, _silent) = wire();
    let tunnel = TunnelDevice::new(stack(Box::new(wire_a), OUTER_A), tunnel_config(OUTER_B, 1)).unwrap();
    let mut inner = stack(Box::new(tunnel), INNER_A);
    let client = udp_socket(&mut inner, 5000);
    assert_eq!(inner.poll_deadline_ns(), None, "idle: only a device event brings work");
    let to = IpEndpoint::new(INNER_B.into(), 7);
    inner.sockets.get_mut::<udp::Socket>(client).send_slice(b"hello", to).unwrap();
    inner.poll();
    // The inner stack sent its ARP request for 10.1.0.2 into the tunnel, where the datagram
    // waits for the outer stack's ARP for the peer. Without the socket (its datagram still
    // waiting for that answer) smoltcp alone has nothing to wake for; the outer stack's
    // ARP retry, within its 1 s, is the deadline.
    inner.sockets.remove(client);
    let now = services::monotonic_ns();
    let deadline = inner.poll_deadline_ns().expect("the outer stack's ARP retry");
    assert!(deadline <= now + 1_000_000_000, "{} ns ahead", deadline - now);
}
