//! Arbitrary frames through `RingPhy` and a real smoltcp interface, on a scripted device:
//! random bytes, and Ethernet/ARP/IPv4/UDP/TCP/ICMP frames with random fields (bad and
//! good checksums, fragments, oversized and truncated lengths), in random batch sizes,
//! through small pools and rings, with a device that sometimes refuses or drops what it is
//! asked to send, and clocks that jump. For every case:
//!
//! * nothing panics;
//! * every frame the device offered is either handed to the stack or counted as dropped
//!   (`rx_packets + rx_dropped`), and every frame it was asked to send is sent or counted;
//! * the heap stays bounded (what the run holds beyond the set-up is at most smoltcp's
//!   reassembly buffers), measured with shared-core's counting allocator;
//! * once the device is quiet, every pool slot comes back.
//!
//! One test in this binary: the allocator's counters are process-wide.

use std::collections::VecDeque;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use shared_core::heap::{self, CountingAlloc};
use shared_core::net::{Frame, NetDevice, NetInfo, RingConfig, RingContext, RingPhy};
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketSet};
use smoltcp::phy::Device;
use smoltcp::socket::{tcp, udp};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};

#[global_allocator]
static HEAP: CountingAlloc<std::alloc::System> = CountingAlloc::new(std::alloc::System);

const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];
const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const IP: [u8; 4] = [10, 0, 0, 2];
const PEER_IP: [u8; 4] = [10, 0, 0, 1];
const MAX_FRAME: usize = 1514;
/// What the run may hold beyond its set-up: smoltcp's 4 reassembly buffers, each grown to
/// at most a 64 KiB datagram plus a fragment, and slack for its small tables.
const HEAP_BOUND: usize = 4 * (65_536 + 2048) + 64 * 1024;

/// A device that plays a script: frames to deliver, a batch size, and a transmit side
/// that now and then keeps a frame for later (queue full) or drops it.
struct Script {
    incoming: VecDeque<Vec<u8>>,
    batch: usize,
    offered: u64,
    transmit_calls: u64,
    /// Frames taken from the transmit ring, and those of them dropped here.
    popped: u64,
    dropped_here: u64,
    busy_every: u64,
    drop_every: u64,
}

impl NetDevice for Script {
    fn info(&self) -> NetInfo {
        NetInfo { mac: MAC, max_frame: MAX_FRAME, headroom: 0 }
    }

    fn receive(&mut self, ctx: RingContext<'_>) {
        for _ in 0..self.batch {
            if ctx.ring.is_full() {
                return; // the rest waits for the next call
            }
            let Some(bytes) = self.incoming.pop_front() else { return };
            self.offered += 1;
            if bytes.len() > MAX_FRAME {
                ctx.counters.rx_dropped += 1; // larger than the link carries
                continue;
            }
            let Some(slot) = ctx.pool.alloc() else {
                ctx.counters.rx_dropped += 1;
                continue;
            };
            ctx.pool.buf_mut(&slot)[..bytes.len()].copy_from_slice(&bytes);
            ctx.counters.rx_packets += 1;
            ctx.counters.rx_bytes += bytes.len() as u64;
            let pushed = ctx.ring.push(Frame { slot, len: bytes.len() });
            assert!(pushed.is_ok(), "checked not full");
        }
    }

    fn transmit(&mut self, ctx: RingContext<'_>) {
        self.transmit_calls += 1;
        let mut first = true;
        while let Some(frame) = ctx.ring.pop() {
            if first && self.busy_every > 0 && self.transmit_calls.is_multiple_of(self.busy_every) {
                let _ = ctx.ring.push_front(frame); // queue full: try again at the next flush
                return;
            }
            first = false;
            self.popped += 1;
            if self.drop_every > 0 && self.popped.is_multiple_of(self.drop_every) {
                self.dropped_here += 1;
                ctx.counters.tx_dropped += 1;
            } else {
                ctx.counters.tx_packets += 1;
                ctx.counters.tx_bytes += frame.len as u64;
            }
            ctx.pool.free(frame.slot);
        }
    }
}

fn checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    for chunk in chunks {
        for pair in chunk.chunks(2) {
            sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
        }
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The knobs of one structured frame.
#[derive(Debug, Clone)]
struct Shape {
    to_us: u8,
    ethertype: u16,
    ip_byte0: u8,
    len_delta: i16,
    ident: u16,
    flags_offset: u16,
    ttl: u8,
    protocol: u8,
    good_ip_checksum: bool,
    src_is_peer: bool,
    dst: u8,
    src_port: u16,
    dst_port: u16,
    tcp_seq: u32,
    tcp_flags: u8,
    good_l4_checksum: bool,
    payload: Vec<u8>,
}

fn shape() -> impl Strategy<Value = Shape> {
    let head = (
        0u8..3,
        prop_oneof![4 => Just(0x0800u16), 1 => Just(0x0806u16), 1 => Just(0x86ddu16), 1 => any::<u16>()],
        prop_oneof![6 => Just(0x45u8), 1 => any::<u8>()],
        prop_oneof![6 => Just(0i16), 1 => -40i16..40],
        any::<u16>(),
        prop_oneof![4 => Just(0u16), 1 => Just(0x4000u16), 2 => any::<u16>()],
        any::<u8>(),
        prop_oneof![Just(17u8), Just(6u8), Just(1u8), any::<u8>()],
    );
    let tail = (
        prop::bool::weighted(0.85),
        prop::bool::weighted(0.8),
        0u8..3,
        any::<u16>(),
        prop_oneof![Just(7u16), Just(80u16), any::<u16>()],
        any::<u32>(),
        any::<u8>(),
        prop::bool::weighted(0.8),
        prop::collection::vec(any::<u8>(), 0..1480),
    );
    (head, tail).prop_map(
        |(
            (to_us, ethertype, ip_byte0, len_delta, ident, flags_offset, ttl, protocol),
            (good_ip_checksum, src_is_peer, dst, src_port, dst_port, tcp_seq, tcp_flags, good_l4_checksum, payload),
        )| Shape {
            to_us,
            ethertype,
            ip_byte0,
            len_delta,
            ident,
            flags_offset,
            ttl,
            protocol,
            good_ip_checksum,
            src_is_peer,
            dst,
            src_port,
            dst_port,
            tcp_seq,
            tcp_flags,
            good_l4_checksum,
            payload,
        },
    )
}

/// The bytes of a structured frame.
fn build(s: &Shape) -> Vec<u8> {
    let mut f = Vec::with_capacity(1600);
    f.extend_from_slice(&match s.to_us {
        0 => MAC,
        1 => [0xff; 6],
        _ => [0x02, 9, 9, 9, 9, 9],
    });
    f.extend_from_slice(&PEER_MAC);
    f.extend_from_slice(&s.ethertype.to_be_bytes());
    if s.ethertype == 0x0806 {
        // ARP: request or reply for our address, or garbage after the fixed part.
        f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1 + (s.ttl & 1)]);
        f.extend_from_slice(&PEER_MAC);
        f.extend_from_slice(&PEER_IP);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&IP);
        f.extend_from_slice(&s.payload[..s.payload.len().min(20)]);
        return f;
    }
    if s.ethertype != 0x0800 {
        f.extend_from_slice(&s.payload);
        return f;
    }
    let src = if s.src_is_peer { PEER_IP } else { s.tcp_seq.to_be_bytes() };
    let dst = match s.dst {
        0 => IP,
        1 => [255; 4],
        _ => s.tcp_seq.to_le_bytes(),
    };
    // The transport part.
    let mut l4 = Vec::new();
    match s.protocol {
        17 => {
            l4.extend_from_slice(&s.src_port.to_be_bytes());
            l4.extend_from_slice(&s.dst_port.to_be_bytes());
            l4.extend_from_slice(&((8 + s.payload.len()) as u16).to_be_bytes());
            l4.extend_from_slice(&[0, 0]);
            l4.extend_from_slice(&s.payload);
        }
        6 => {
            l4.extend_from_slice(&s.src_port.to_be_bytes());
            l4.extend_from_slice(&s.dst_port.to_be_bytes());
            l4.extend_from_slice(&s.tcp_seq.to_be_bytes());
            l4.extend_from_slice(&s.tcp_seq.rotate_left(7).to_be_bytes());
            l4.extend_from_slice(&[0x50, s.tcp_flags, 0x10, 0x00, 0, 0, 0, 0]);
            l4.extend_from_slice(&s.payload);
        }
        1 => {
            l4.extend_from_slice(&[8, 0, 0, 0]);
            l4.extend_from_slice(&s.ident.to_be_bytes());
            l4.extend_from_slice(&[0, 1]);
            l4.extend_from_slice(&s.payload);
        }
        _ => l4.extend_from_slice(&s.payload),
    }
    if s.good_l4_checksum {
        let len = (l4.len() as u16).to_be_bytes();
        let pseudo = [&src[..], &dst[..], &[0, s.protocol], &len[..]].concat();
        match s.protocol {
            17 => {
                let c = checksum(&[&pseudo, &l4]);
                l4[6..8].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
            }
            6 => {
                let c = checksum(&[&pseudo, &l4]);
                l4[16..18].copy_from_slice(&c.to_be_bytes());
            }
            1 => {
                let c = checksum(&[&l4]);
                l4[2..4].copy_from_slice(&c.to_be_bytes());
            }
            _ => {}
        }
    }
    let total = (20 + l4.len()) as i32 + i32::from(s.len_delta);
    let mut ip = [0u8; 20];
    ip[0] = s.ip_byte0;
    ip[2..4].copy_from_slice(&(total.clamp(0, 65535) as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&s.ident.to_be_bytes());
    ip[6..8].copy_from_slice(&s.flags_offset.to_be_bytes());
    ip[8] = s.ttl;
    ip[9] = s.protocol;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    let c = if s.good_ip_checksum { checksum(&[&ip]) } else { s.ident ^ 0x5a5a };
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&l4);
    f
}

fn frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..1600),
        4 => shape().prop_map(|s| build(&s)),
    ]
}

/// One scripted run; the properties are checked inside.
#[derive(Debug, Clone)]
struct Run {
    frames: Vec<Vec<u8>>,
    batch: usize,
    slots: usize,
    rx_ring: usize,
    tx_ring: usize,
    busy_every: u64,
    drop_every: u64,
    /// Milliseconds to advance each round (a large step fires TCP and reassembly timers).
    steps: Vec<u32>,
}

fn run_strategy() -> impl Strategy<Value = Run> {
    (
        prop::collection::vec(frame(), 0..200),
        1usize..48,
        4usize..48,
        1usize..32,
        1usize..16,
        0u64..5,
        0u64..7,
        prop::collection::vec(prop_oneof![8 => 0u32..20, 1 => Just(70_000u32)], 1..16),
    )
        .prop_map(|(frames, batch, slots, rx_ring, tx_ring, busy_every, drop_every, steps)| Run {
            frames,
            batch,
            slots,
            rx_ring,
            tx_ring,
            busy_every,
            drop_every,
            steps,
        })
}

fn play(run: Run) -> Result<(), TestCaseError> {
    let offered_total = run.frames.len() as u64;
    let device = Script {
        incoming: run.frames.into(),
        batch: run.batch,
        offered: 0,
        transmit_calls: 0,
        popped: 0,
        dropped_here: 0,
        busy_every: run.busy_every,
        drop_every: run.drop_every,
    };
    let config = RingConfig { slots: run.slots, slot_size: 2048, rx_ring: run.rx_ring, tx_ring: run.tx_ring };
    let mut phy: RingPhy<Script> = RingPhy::new(Box::new(device), config);
    let mut iface =
        Interface::new(IfaceConfig::new(HardwareAddress::Ethernet(EthernetAddress(MAC))), &mut phy, Instant::ZERO);
    iface.update_ip_addrs(|a| a.push(IpCidr::new(IpAddress::v4(IP[0], IP[1], IP[2], IP[3]), 24)).unwrap());
    let mut sockets = SocketSet::new(Vec::with_capacity(4));
    let udp_socket = udp::Socket::new(
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 8], vec![0; 16 * 1024]),
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 8], vec![0; 16 * 1024]),
    );
    let udp = sockets.add(udp_socket);
    sockets.get_mut::<udp::Socket>(udp).bind(7).unwrap();
    let tcp_socket = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 4096]), tcp::SocketBuffer::new(vec![0; 4096]));
    let tcp = sockets.add(tcp_socket);
    sockets.get_mut::<tcp::Socket>(tcp).listen(80).unwrap();
    let mut datagram = vec![0u8; 16 * 1024];
    let mut stream = vec![0u8; 1024];

    let set_up = heap::stats().expect("the counting allocator is installed").in_use;
    let mut now_ms = 0i64;
    let mut round = 0usize;
    // Until the script is played, then some quiet rounds for the timers and queues.
    while !phy.device_mut().incoming.is_empty() || round < run.steps.len() + 64 {
        now_ms += i64::from(run.steps[round % run.steps.len()]);
        round += 1;
        iface.poll(Instant::from_millis(now_ms), &mut phy, &mut sockets);
        let socket = sockets.get_mut::<udp::Socket>(udp);
        while let Ok((n, meta)) = socket.recv_slice(&mut datagram) {
            let _ = socket.send_slice(&datagram[..n], meta);
        }
        let socket = sockets.get_mut::<tcp::Socket>(tcp);
        if let Ok(n) = socket.recv_slice(&mut stream) {
            let _ = socket.send_slice(&stream[..n]);
        }
        if !socket.is_open() {
            let _ = socket.listen(80);
        }
        iface.poll(Instant::from_millis(now_ms), &mut phy, &mut sockets);
        phy.flush();
        let in_use = heap::stats().unwrap().in_use;
        prop_assert!(
            in_use <= set_up + HEAP_BOUND,
            "round {round}: the heap grew by {} bytes",
            in_use.saturating_sub(set_up)
        );
        prop_assert!(round < 100_000, "the script never finished");
    }

    // Quiet: the device takes everything now; send what is queued, take what is left in
    // the receive ring, and every slot is back.
    phy.device_mut().busy_every = 0;
    let mut tries = 0;
    while phy.pool_available() < phy.pool_capacity() && tries < 100 {
        phy.flush();
        while let Some((rx, _tx)) = phy.receive(Instant::from_millis(now_ms)) {
            smoltcp::phy::RxToken::consume(rx, |_| ());
        }
        tries += 1;
    }
    prop_assert_eq!(phy.pool_available(), phy.pool_capacity(), "pool slots leaked");

    let c = phy.counters();
    let device = phy.device_mut();
    prop_assert_eq!(device.offered, offered_total, "the script was not played out");
    prop_assert_eq!(c.rx_packets + c.rx_dropped, device.offered, "a received frame went uncounted: {:?}", c);
    // Everything the device took to send was sent or counted; RingPhy counts its own
    // drops (no free slot) on top.
    prop_assert_eq!(c.tx_packets + device.dropped_here, device.popped, "{:?}", c);
    prop_assert!(c.tx_dropped >= device.dropped_here, "{:?}", c);
    Ok(())
}

#[test]
fn arbitrary_frames_never_panic_leak_or_go_uncounted() {
    let config =
        Config { cases: 96, failure_persistence: None, rng_seed: RngSeed::Fixed(0x00f7_a3e5), ..Config::default() };
    proptest!(config, |(run in run_strategy())| { play(run)?; });
}
