//! The socket layer against hostile peers and hostile inputs: spoofed SYN floods, peers
//! that never acknowledge a close, senders that outpace the link, and C callers with
//! lengths Linux refuses. Each test failed before the defect it names was fixed
//! (../shared/FINDINGS-2026-12.md: A1, A2, A3, A9, A12, A17).

use crate::socket::Errno;
use proptest::prelude::*;
use shared_core::services;
use shared_core::testing::tcp_syn_frame;
use smoltcp::socket::tcp as stcp;
use smoltcp::wire::Ipv4Address;

use super::super::readiness::{IN, OUT};
use super::super::table::{Kind, Tcp, EPHEMERAL, ORPHANS_MAX, RESET_SENT, UDP_MAX_DATAGRAM};
use super::super::thread::maintain;
use super::super::{tcp, udp, Bufs};
use super::{Lab, GUEST, PEER};

/// Forged SYNs to `port` from sources that will never complete the handshake: on the
/// link with no host behind them (ARP never answered) and off the link with no route.
fn spoof_syns(lab: &mut Lab, port: u16, count: u16, first: u16) {
    for i in first..first + count {
        let source = if i % 2 == 0 {
            Ipv4Address::new(10, 0, 0, 100 + (i % 100) as u8)
        } else {
            Ipv4Address::new(198, 51, 100, (i % 250) as u8 + 1)
        };
        lab.peer_dev.inject(tcp_syn_frame([2, 0, 0, 0, 0, 2], (source, 1024 + i), (GUEST, port), 7));
    }
}

fn listener_sockets(lab: &Lab, id: u64) -> (usize, usize) {
    let Kind::Tcp(Tcp::Listening(l)) = &lab.net.socks[&id].kind else { unreachable!() };
    let listening =
        l.sockets.iter().filter(|&&h| lab.net.stack.sockets.get::<stcp::Socket>(h).state() == stcp::State::Listen);
    (listening.count(), l.sockets.len())
}

#[test]
fn a_spoofed_syn_flood_cannot_deafen_a_listener_and_it_recovers() {
    let mut lab = Lab::new();
    let listener = lab.tcp_socket();
    tcp::bind(&mut lab.net, listener, Ipv4Address::UNSPECIFIED, 7).unwrap();
    tcp::listen(&mut lab.net, listener, 16).unwrap();
    // The guest knows its peer (as it knows its gateway): smoltcp asks ARP for one unknown
    // neighbour a second, and a flood from on-link forged sources takes those turns.
    let warm = lab.peer_connect(7, 40099);
    lab.pump();
    assert_eq!(lab.peer_tcp(warm).state(), stcp::State::Established);
    tcp::accept(&mut lab.net, listener).unwrap();
    // 1000 forged SYNs, 50 per poll: before, each left a socket half-open for good, and
    // once the listener's 128 were taken every later SYN was refused, for ever.
    for round in 0..20 {
        spoof_syns(&mut lab, 7, 50, round * 50);
        lab.pump();
        let (listening, total) = listener_sockets(&lab, listener);
        assert!(listening >= 8, "round {round}: {listening} of {total} sockets listening");
        assert!(total <= 128, "a listener's sockets stay bounded: {total}");
    }
    // A real client during the flood gets through (retrying as TCP does).
    let client = lab.peer_connect(7, 40100);
    for round in 0..40u16 {
        spoof_syns(&mut lab, 7, 20, 2000 + round * 20);
        lab.pump();
        if lab.peer_tcp(client).state() == stcp::State::Established {
            break;
        }
    }
    assert_eq!(lab.peer_tcp(client).state(), stcp::State::Established, "a real client is served during the flood");
    assert!(tcp::accept(&mut lab.net, listener).is_ok());
    // After the flood, every half-open connection is gone within the SYN-RECEIVED timeout.
    services::wait_until(Some(services::monotonic_ns() + 3_200_000_000));
    lab.pump();
    let Kind::Tcp(Tcp::Listening(l)) = &lab.net.socks[&listener].kind else { unreachable!() };
    assert!(l.half_open.is_empty(), "{} half-open connections left", l.half_open.len());
    let (listening, total) = listener_sockets(&lab, listener);
    assert_eq!(listening, total, "every socket listens again");
    assert!(total <= 16, "the listener is back to its backlog: {total}");
}

#[test]
fn refused_syns_on_a_listening_port_are_dropped_not_reset() {
    // 300 SYNs in one poll against a backlog of 4: those that find no socket are dropped
    // (the client retries, as against Linux), where smoltcp alone would reset them.
    let mut lab = Lab::new();
    let listener = lab.tcp_socket();
    tcp::bind(&mut lab.net, listener, Ipv4Address::UNSPECIFIED, 9).unwrap();
    tcp::listen(&mut lab.net, listener, 4).unwrap();
    // The guest knows the peer's Ethernet address (its resets can go out at once).
    let warm = lab.peer_connect(11, 40199);
    lab.pump();
    assert_eq!(lab.peer_tcp(warm).state(), stcp::State::Closed);
    // Real SYNs from the peer's address, 300 in one go.
    for i in 0..300u16 {
        lab.peer_dev.inject(tcp_syn_frame([2, 0, 0, 0, 0, 2], (PEER, 20000 + i), (GUEST, 9), 7));
    }
    lab.pump();
    assert!(lab.net.stack.phy.quiet_drops() > 0, "no refusal was dropped");
    // A closed port still refuses at once.
    let peer = lab.peer_connect(11, 40200);
    lab.pump();
    assert_eq!(lab.peer_tcp(peer).state(), stcp::State::Closed, "a port nobody listens on refuses");
}

#[test]
fn closing_connections_whose_peer_never_acknowledges_stay_bounded() {
    let mut lab = Lab::new();
    let listener = lab.tcp_socket();
    tcp::bind(&mut lab.net, listener, Ipv4Address::UNSPECIFIED, 80).unwrap();
    tcp::listen(&mut lab.net, listener, 64).unwrap();
    let count = ORPHANS_MAX + 36;
    let mut conns = Vec::new();
    for i in 0..count {
        lab.peer_connect(80, 41000 + i as u16);
        lab.pump();
        while let Ok((conn, _)) = tcp::accept(&mut lab.net, listener) {
            conns.push(conn);
        }
    }
    assert_eq!(conns.len(), count);
    // Close them all with the peer silent (it never ACKs our FIN): only the guest runs.
    for conn in conns {
        let sock = lab.net.socks.remove(&conn).unwrap();
        let Kind::Tcp(t) = sock.kind else { unreachable!() };
        tcp::close(&mut lab.net, t, services::monotonic_ns());
        lab.net.stack.poll();
        maintain(&mut lab.net, services::monotonic_ns());
        lab.net.stack.send();
        let closing = lab.net.orphans.iter().filter(|o| o.deadline != RESET_SENT).count();
        assert!(closing <= ORPHANS_MAX, "{closing} closing connections");
    }
    assert!(lab.net.orphans.len() <= ORPHANS_MAX + 1, "reset ones are dropped: {}", lab.net.orphans.len());
}

#[test]
fn ephemeral_ports_start_where_the_random_number_says() {
    // Before, ports were handed out in order from 32768 (the next was always the last + 1).
    let mut lab = Lab::new();
    let span = u64::from(EPHEMERAL.end() - EPHEMERAL.start()) + 1;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut ports = Vec::new();
    for _ in 0..8 {
        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let port = lab.net.ephemeral_port_from(false, rng).unwrap();
        assert_eq!(u64::from(port - EPHEMERAL.start()), rng % span);
        ports.push(port);
    }
    let sequential = ports.windows(2).filter(|w| w[1] == w[0] + 1).count();
    assert!(sequential < 2, "ports handed out in order: {ports:?}");
    // A port in use is skipped: the search goes on from the random start.
    let id = lab.udp_socket();
    udp::bind(&mut lab.net, id, Ipv4Address::UNSPECIFIED, *EPHEMERAL.start()).unwrap();
    assert_eq!(lab.net.ephemeral_port_from(false, 0).unwrap(), EPHEMERAL.start() + 1);
}

#[test]
fn shutdown_of_a_listener_wakes_and_fails_accept() {
    let mut lab = Lab::new();
    let listener = lab.tcp_socket();
    tcp::bind(&mut lab.net, listener, Ipv4Address::UNSPECIFIED, 80).unwrap();
    tcp::listen(&mut lab.net, listener, 4).unwrap();
    assert_eq!(tcp::accept(&mut lab.net, listener).unwrap_err(), Errno::EAGAIN);
    assert_eq!(lab.events(listener) & IN, 0);
    tcp::shutdown(&mut lab.net, listener, libc::SHUT_RDWR).unwrap();
    assert_ne!(lab.events(listener) & IN, 0, "a blocked accept must wake");
    assert_eq!(tcp::accept(&mut lab.net, listener).unwrap_err(), Errno::EINVAL, "as Linux");
}

#[test]
fn a_blocking_udp_sender_that_outpaces_the_link_finishes() {
    // posix-socket's blocking send: the op; on EAGAIN, wait for EPOLLOUT, then retry.
    // Before, EPOLLOUT stayed set while the op said EAGAIN (smoltcp's metadata slots
    // free, its payload ring full) and the sender spun for ever after about 44 sends.
    let mut lab = Lab::new();
    let id = lab.udp_socket();
    let datagram = [7u8; 1472];
    let mut sent = 0;
    let mut waits = 0;
    while sent < 100 {
        match udp::send(&mut lab.net, id, &Bufs(vec![&datagram]), Some((PEER, 9))) {
            Ok(n) => {
                assert_eq!(n, 1472);
                sent += 1;
            }
            Err(e) => {
                assert_eq!(e, Errno::EAGAIN);
                assert_eq!(lab.events(id) & OUT, 0, "EAGAIN with EPOLLOUT set: a blocked sender spins");
                waits += 1;
                // The network thread runs: the queue drains, EPOLLOUT comes back.
                lab.pump();
                assert_ne!(lab.events(id) & OUT, 0, "drained, yet not writable: the sender sleeps for ever");
            }
        }
    }
    assert!(waits > 0, "the sender never had to wait: the test did not fill the buffer");
}

#[derive(Debug, Clone)]
enum UdpOp {
    Send(usize),
    Poll,
}

fn udp_op() -> impl Strategy<Value = UdpOp> {
    prop_oneof![
        4 => (0..=UDP_MAX_DATAGRAM).prop_map(UdpOp::Send),
        4 => prop_oneof![Just(1472usize), Just(UDP_MAX_DATAGRAM), Just(0)].prop_map(UdpOp::Send),
        1 => Just(UdpOp::Poll),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Every EPOLLOUT reported is true: a send while it is set succeeds, and a send that
    /// says EAGAIN leaves it clear.
    #[test]
    fn udp_writable_never_lies(ops in proptest::collection::vec(udp_op(), 1..120)) {
        let mut lab = Lab::new();
        let id = lab.udp_socket();
        for op in ops {
            match op {
                UdpOp::Send(len) => {
                    let data = vec![1u8; len];
                    let writable = lab.events(id) & OUT != 0;
                    let result = udp::send(&mut lab.net, id, &Bufs(vec![&data]), Some((PEER, 9)));
                    if writable {
                        prop_assert_eq!(result, Ok(len), "EPOLLOUT was set");
                    }
                    if result == Err(Errno::EAGAIN) {
                        prop_assert_eq!(lab.events(id) & OUT, 0, "EAGAIN, yet EPOLLOUT set");
                    }
                }
                UdpOp::Poll => {
                    lab.net.stack.poll();
                    maintain(&mut lab.net, services::monotonic_ns());
                    lab.net.stack.send();
                }
            }
        }
    }
}
