//! 127.0.0.1 and the guest's own address inside the guest, with a NIC and without one
//! (issue "Unmodified Rust servers", item 2): a server and a client in one program.

use crate::socket::Errno;
use shared_core::net::{Stack, StackConfig};
use shared_core::services;
use shared_core::testing::RingWireEnd;
use smoltcp::wire::{IpAddress, IpCidr, Ipv4Address};

use super::super::loopback::{Loopback, LOOPBACK};
use super::super::readiness::OUT;
use super::super::table::Net;
use super::super::thread::maintain;
use super::super::{tcp, udp, Bufs, BufsMut};
use super::{recv, send, Lab, GUEST};

/// Runs the guest alone until its loopback is quiet (what the network thread does).
fn run(net: &mut Net) {
    for _ in 0..100 {
        net.stack.poll();
        maintain(net, services::monotonic_ns());
        net.stack.send();
        if net.stack.phy.device_deadline_ns().is_none() {
            net.stack.poll();
            maintain(net, services::monotonic_ns());
            if net.stack.phy.device_deadline_ns().is_none() {
                return;
            }
        }
    }
    panic!("the loopback never went quiet");
}

/// A TCP exchange from a client to a server in the same guest, through `to`.
fn tcp_exchange(net: &mut Net, mut pump: impl FnMut(&mut Net), to: Ipv4Address) {
    let listener = net.insert(super::super::table::Sock::new(
        super::super::table::Kind::Tcp(super::super::table::Tcp::Fresh),
        Default::default(),
    ));
    tcp::bind(net, listener, Ipv4Address::UNSPECIFIED, 8080).unwrap();
    tcp::listen(net, listener, 4).unwrap();
    let client = net.insert(super::super::table::Sock::new(
        super::super::table::Kind::Tcp(super::super::table::Tcp::Fresh),
        Default::default(),
    ));
    assert_eq!(tcp::connect(net, client, to, 8080, services::monotonic_ns()), Err(Errno::EINPROGRESS));
    pump(net);
    let events = super::super::readiness::events_of(&net.stack.sockets, &net.socks[&client]);
    assert_eq!(events & OUT, OUT, "the connect to {to} completed: {events:#x}");
    let (server, from) = tcp::accept(net, listener).unwrap();
    assert_eq!(from.addr, IpAddress::Ipv4(to));
    assert_eq!(send(net, client, b"ping").unwrap(), 4);
    pump(net);
    assert_eq!(recv(net, server, 16).unwrap(), b"ping");
    assert_eq!(send(net, server, b"pong").unwrap(), 4);
    pump(net);
    assert_eq!(recv(net, client, 16).unwrap(), b"pong");
}

/// A UDP datagram from one socket to another in the same guest, through `to`.
fn udp_exchange(net: &mut Net, pump: impl FnMut(&mut Net), to: Ipv4Address) {
    let socket = |net: &mut Net| {
        let handle = net.new_udp();
        net.insert(super::super::table::Sock::new(
            super::super::table::Kind::Udp(super::super::table::Udp::new(handle)),
            Default::default(),
        ))
    };
    let (a, b) = (socket(net), socket(net));
    udp::bind(net, b, Ipv4Address::UNSPECIFIED, 5353).unwrap();
    assert_eq!(udp::send(net, a, &Bufs(vec![b"query"]), Some((to, 5353))).unwrap(), 5);
    let mut pump = pump;
    pump(net);
    let mut buf = [0u8; 16];
    let got = udp::recv(net, b, &mut BufsMut(vec![&mut buf[..]]), false, false).unwrap();
    assert_eq!(&buf[..got.len], b"query");
    assert_eq!(got.from.addr, IpAddress::Ipv4(to));
}

#[test]
fn tcp_and_udp_over_127_0_0_1_and_the_own_address_with_a_nic() {
    for to in [LOOPBACK, GUEST] {
        let mut lab = Lab::new();
        tcp_exchange(&mut lab.net, run, to);
        let mut lab = Lab::new();
        udp_exchange(&mut lab.net, run, to);
        // Nothing of it went out on the wire.
        assert!(lab.peer_dev.is_idle());
    }
}

#[test]
fn tcp_and_udp_over_127_0_0_1_without_a_nic() {
    let stack = || {
        let device = Loopback::<RingWireEnd>::new(None);
        Stack::new(Box::new(device), StackConfig::new(IpCidr::new(IpAddress::Ipv4(LOOPBACK), 8)))
    };
    let mut net = Net::new(stack());
    tcp_exchange(&mut net, run, LOOPBACK);
    let mut net = Net::new(stack());
    udp_exchange(&mut net, run, LOOPBACK);
    // Elsewhere there is no route: a clear error at once, never a hang.
    let id = net.insert(super::super::table::Sock::new(
        super::super::table::Kind::Tcp(super::super::table::Tcp::Fresh),
        Default::default(),
    ));
    assert_eq!(tcp::connect(&mut net, id, Ipv4Address::new(10, 0, 0, 1), 80, 0), Err(Errno::ENETUNREACH));
}
