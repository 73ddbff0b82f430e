//! The socket layer's ops on the host: a [`Net`] over an in-memory wire to a plain smoltcp
//! peer (10.0.0.1), driven the way the network thread drives it (poll, `maintain`,
//! send), with each socket's poll events checked after every step, since they are what
//! posix-socket blocks on.

use crate::socket::Errno;
use shared_core::net::{Stack, StackConfig};
use shared_core::services;
use shared_core::testing::{wire, WireEnd};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::{tcp as stcp, udp as sudp};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint, Ipv4Address};

use super::readiness::{events_of, ERR, HUP, IN, OUT, RDHUP};
use super::table::{Kind, Net, Options, Sock, Tcp, Udp, EPHEMERAL};
use super::thread::maintain;
use super::{options, tcp, timed, udp, Bufs, BufsMut};

/// The glue's event helper, which `readiness::push` calls for sockets with a file (none
/// here): defined so the test binary links.
#[unsafe(no_mangle)]
extern "C" fn rtuk_sock_event_assign(_file: *const core::ffi::c_void, _events: u32) {}

/// The glue's wake-up of the network thread (there is none here).
#[unsafe(no_mangle)]
extern "C" fn rtuk_kick() {}

const FRAME: usize = 1514;
pub(super) const PEER: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
pub(super) const GUEST: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);

/// The guest's socket layer and a peer on one wire.
pub(super) struct Lab {
    pub(super) net: Net,
    pub(super) peer: Interface,
    pub(super) peer_dev: WireEnd,
    pub(super) peer_sockets: SocketSet<'static>,
}

fn now() -> smoltcp::time::Instant {
    shared_core::net::stack::now()
}

impl Lab {
    pub(super) fn new() -> Lab {
        let (guest_end, mut peer_dev) = wire(FRAME);
        // As the socket layer builds it (thread::build): loopback in front of the NIC.
        let mut guest_dev = super::loopback::Loopback::new(Some(guest_end.into_net_device([2, 0, 0, 0, 0, 2])));
        guest_dev.set_own_address(GUEST);
        let mut stack = Stack::new(Box::new(guest_dev), StackConfig::new(IpCidr::new(IpAddress::Ipv4(GUEST), 24)));
        stack.iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(IpAddress::Ipv4(super::loopback::LOOPBACK), 8));
        });
        let config = Config::new(HardwareAddress::Ethernet(EthernetAddress([2, 0, 0, 0, 0, 1])));
        let mut peer = Interface::new(config, &mut peer_dev, now());
        peer.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(IpAddress::Ipv4(PEER), 24));
        });
        Lab { net: Net::new(stack), peer, peer_dev, peer_sockets: SocketSet::new(vec![]) }
    }

    /// Moves frames both ways until nothing moves, advancing the clock 20 ms per round
    /// (past smoltcp's ACK delay), as the network thread would.
    pub(super) fn pump(&mut self) {
        for _ in 0..200 {
            self.net.stack.poll();
            maintain(&mut self.net, services::monotonic_ns());
            self.net.stack.send();
            self.peer.poll(now(), &mut self.peer_dev, &mut self.peer_sockets);
            let idle = self.peer_dev.is_idle() && self.net.stack.phy.device_deadline_ns().is_none();
            services::wait_until(Some(services::monotonic_ns() + 20_000_000));
            if idle {
                self.net.stack.poll();
                maintain(&mut self.net, services::monotonic_ns());
                if self.peer_dev.is_idle() && self.net.stack.phy.device_deadline_ns().is_none() {
                    return;
                }
            }
        }
    }

    pub(super) fn events(&self, id: u64) -> u32 {
        events_of(&self.net.stack.sockets, &self.net.socks[&id])
    }

    pub(super) fn tcp_socket(&mut self) -> u64 {
        self.net.insert(Sock::new(Kind::Tcp(Tcp::Fresh), Options::default()))
    }

    pub(super) fn udp_socket(&mut self) -> u64 {
        let handle = self.net.new_udp();
        self.net.insert(Sock::new(Kind::Udp(Udp::new(handle)), Options::default()))
    }

    pub(super) fn peer_connect(&mut self, port: u16, local_port: u16) -> SocketHandle {
        let mut socket =
            stcp::Socket::new(stcp::SocketBuffer::new(vec![0; 65536]), stcp::SocketBuffer::new(vec![0; 65536]));
        socket.connect(self.peer.context(), (IpAddress::Ipv4(GUEST), port), local_port).unwrap();
        self.peer_sockets.add(socket)
    }

    pub(super) fn peer_tcp(&mut self, h: SocketHandle) -> &mut stcp::Socket<'static> {
        self.peer_sockets.get_mut::<stcp::Socket>(h)
    }
}

pub(super) fn recv(net: &mut Net, id: u64, n: usize) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; n];
    let got = tcp::recv(net, id, &mut BufsMut(vec![&mut buf[..]]), false)?;
    buf.truncate(got);
    Ok(buf)
}

pub(super) fn send(net: &mut Net, id: u64, data: &[u8]) -> Result<usize, Errno> {
    tcp::send(net, id, &Bufs(vec![data]))
}

#[test]
fn a_listener_accepts_echoes_and_sees_the_peers_fin_with_exact_events() {
    let mut lab = Lab::new();
    let listener = lab.tcp_socket();
    tcp::bind(&mut lab.net, listener, Ipv4Address::UNSPECIFIED, 80).unwrap();
    tcp::listen(&mut lab.net, listener, 128).unwrap();
    assert_eq!(lab.events(listener) & IN, 0, "nothing to accept yet");
    assert_eq!(tcp::accept(&mut lab.net, listener).unwrap_err(), Errno::EAGAIN);

    let client = lab.peer_connect(80, 40000);
    lab.pump();
    assert_ne!(lab.events(listener) & IN, 0, "a handshake done raises EPOLLIN on the listener");
    let (conn, from) = tcp::accept(&mut lab.net, listener).unwrap();
    assert_eq!(from, IpEndpoint::new(IpAddress::Ipv4(PEER), 40000));
    assert_eq!(lab.events(listener) & IN, 0, "accepted: no more EPOLLIN");
    assert_eq!(lab.events(conn), OUT, "connected, nothing to read");
    assert_eq!(recv(&mut lab.net, conn, 16), Err(Errno::EAGAIN));

    lab.peer_tcp(client).send_slice(b"hello").unwrap();
    lab.pump();
    assert_ne!(lab.events(conn) & IN, 0);
    assert_eq!(recv(&mut lab.net, conn, 3).unwrap(), b"hel");
    assert_eq!(recv(&mut lab.net, conn, 16).unwrap(), b"lo");
    assert_eq!(lab.events(conn) & IN, 0, "drained: EPOLLIN must go, or a blocked reader spins");
    assert_eq!(send(&mut lab.net, conn, b"world").unwrap(), 5);
    lab.pump();
    let mut buf = [0u8; 16];
    assert_eq!(lab.peer_tcp(client).recv_slice(&mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"world");

    // The peer's FIN wakes a reader (EPOLLIN) and reads end with 0.
    lab.peer_tcp(client).close();
    lab.pump();
    assert_eq!(lab.events(conn) & (IN | RDHUP), IN | RDHUP);
    assert_eq!(recv(&mut lab.net, conn, 16).unwrap(), b"");
    // Our side closes in the background; the socket leaves the table at once.
    let sock = lab.net.socks.remove(&conn).unwrap();
    let Kind::Tcp(t) = sock.kind else { unreachable!() };
    tcp::close(&mut lab.net, t, services::monotonic_ns());
    assert_eq!(lab.net.orphans.len(), 1);
    lab.pump();
    assert!(lab.net.orphans.is_empty(), "the closed connection finished and was dropped");
    assert_eq!(lab.peer_tcp(client).state(), stcp::State::TimeWait);
}

#[test]
fn a_reset_wakes_a_reader_with_econnreset_once() {
    let mut lab = Lab::new();
    let listener = lab.tcp_socket();
    tcp::bind(&mut lab.net, listener, GUEST, 7).unwrap();
    tcp::listen(&mut lab.net, listener, 1).unwrap();
    let client = lab.peer_connect(7, 40001);
    lab.pump();
    let (conn, _) = tcp::accept(&mut lab.net, listener).unwrap();
    assert_eq!(recv(&mut lab.net, conn, 16), Err(Errno::EAGAIN));
    lab.peer_tcp(client).abort();
    lab.pump();
    let events = lab.events(conn);
    assert_eq!(events & (IN | ERR | HUP), IN | ERR | HUP, "{events:#x}");
    assert_eq!(recv(&mut lab.net, conn, 16), Err(Errno::ECONNRESET));
    assert_eq!(recv(&mut lab.net, conn, 16).unwrap(), b"", "reported once, then end of stream");
    assert_eq!(send(&mut lab.net, conn, b"x"), Err(Errno::EPIPE));
}

#[test]
fn connect_to_a_closed_port_fails_with_econnrefused_through_so_error() {
    let mut lab = Lab::new();
    let id = lab.tcp_socket();
    let now = services::monotonic_ns();
    assert_eq!(tcp::connect(&mut lab.net, id, PEER, 9, now), Err(Errno::EINPROGRESS));
    assert_eq!(lab.events(id), 0, "connecting: no EPOLLOUT yet (a blocking connect waits for it)");
    assert_eq!(tcp::connect(&mut lab.net, id, PEER, 9, now), Err(Errno::EALREADY));
    lab.pump();
    let events = lab.events(id);
    assert_eq!(events & (OUT | ERR | HUP), OUT | ERR | HUP, "{events:#x}");
    let so_error = |lab: &mut Lab| {
        let value = options::get(&mut lab.net, id, libc::SOL_SOCKET, libc::SO_ERROR).unwrap();
        i32::from_ne_bytes(value[..4].try_into().unwrap())
    };
    assert_eq!(so_error(&mut lab), libc::ECONNREFUSED, "SO_ERROR is a positive errno, as on Linux");
    assert_eq!(so_error(&mut lab), 0, "and reading it clears it");
}

#[test]
fn connect_to_a_listening_peer_becomes_writable_with_both_names() {
    let mut lab = Lab::new();
    let mut server = stcp::Socket::new(stcp::SocketBuffer::new(vec![0; 4096]), stcp::SocketBuffer::new(vec![0; 4096]));
    server.listen(8080).unwrap();
    let server = lab.peer_sockets.add(server);
    let id = lab.tcp_socket();
    assert_eq!(tcp::connect(&mut lab.net, id, PEER, 8080, services::monotonic_ns()), Err(Errno::EINPROGRESS));
    lab.pump();
    assert_eq!(lab.events(id), OUT);
    assert_eq!(lab.peer_tcp(server).state(), stcp::State::Established);
    let (local, remote) = tcp::endpoints(&lab.net, &lab.net.socks[&id]);
    assert_eq!(remote, Some(IpEndpoint::new(IpAddress::Ipv4(PEER), 8080)));
    let local = local.unwrap();
    assert_eq!(local.addr, IpAddress::Ipv4(GUEST));
    assert!(EPHEMERAL.contains(&local.port), "{local}");
    assert_eq!(tcp::connect(&mut lab.net, id, PEER, 8080, 0), Err(Errno::EISCONN));
}

#[test]
fn a_burst_beyond_the_backlog_gets_spare_listeners_which_go_back_afterwards() {
    let mut lab = Lab::new();
    let listener = lab.tcp_socket();
    tcp::bind(&mut lab.net, listener, Ipv4Address::UNSPECIFIED, 80).unwrap();
    tcp::listen(&mut lab.net, listener, 2).unwrap();
    let sockets = |lab: &Lab| match &lab.net.socks[&listener].kind {
        Kind::Tcp(Tcp::Listening(l)) => l.sockets.len(),
        _ => unreachable!(),
    };
    assert_eq!(sockets(&lab), 2);
    // Four clients, one after the other, none accepted yet: spares keep coming.
    let clients: Vec<_> = (0..4u16)
        .map(|i| {
            let c = lab.peer_connect(80, 41000 + i);
            lab.pump();
            c
        })
        .collect();
    for &c in &clients {
        assert_eq!(lab.peer_tcp(c).state(), stcp::State::Established, "no client was refused");
    }
    assert!(sockets(&lab) > 4, "spares were added: {}", sockets(&lab));
    for _ in 0..4 {
        tcp::accept(&mut lab.net, listener).unwrap();
    }
    assert_eq!(tcp::accept(&mut lab.net, listener).unwrap_err(), Errno::EAGAIN);
    lab.pump();
    assert_eq!(sockets(&lab), 2, "back to the backlog once the burst is accepted");
}

#[test]
fn udp_binds_ephemeral_ports_keeps_datagrams_and_filters_by_peer() {
    let mut lab = Lab::new();
    let id = lab.udp_socket();
    udp::bind(&mut lab.net, id, Ipv4Address::UNSPECIFIED, 0).unwrap();
    let (_, port) = lab.net.socks[&id].local.unwrap();
    assert!(EPHEMERAL.contains(&port));
    let other = lab.udp_socket();
    assert_eq!(udp::bind(&mut lab.net, other, Ipv4Address::UNSPECIFIED, port), Err(Errno::EADDRINUSE));
    assert_eq!(udp::bind(&mut lab.net, other, Ipv4Address::new(10, 9, 9, 9), 5000), Err(Errno::EADDRNOTAVAIL));

    let buffer = || sudp::PacketBuffer::new(vec![sudp::PacketMetadata::EMPTY; 8], vec![0u8; 4096]);
    let mut peer = sudp::Socket::new(buffer(), buffer());
    peer.bind(5353).unwrap();
    let peer = lab.peer_sockets.add(peer);
    let to_guest = IpEndpoint::new(IpAddress::Ipv4(GUEST), port);
    lab.peer_sockets.get_mut::<sudp::Socket>(peer).send_slice(b"0123456789", to_guest).unwrap();
    lab.pump();
    assert_ne!(lab.events(id) & IN, 0);
    // A 4-byte buffer: the datagram is cut (MSG_TRUNC), and gone.
    let mut small = [0u8; 4];
    let got = udp::recv(&mut lab.net, id, &mut BufsMut(vec![&mut small[..]]), false, false).unwrap();
    assert!(got.truncated && got.len == 4 && &small == b"0123");
    assert_eq!(got.from, IpEndpoint::new(IpAddress::Ipv4(PEER), 5353));
    assert_eq!(lab.events(id) & IN, 0);

    // Connected to another port: datagrams from 5353 are dropped.
    udp::connect(&mut lab.net, id, super::addr::SockAddr::Inet(PEER, 9999)).unwrap();
    lab.peer_sockets.get_mut::<sudp::Socket>(peer).send_slice(b"ignored", to_guest).unwrap();
    lab.pump();
    let mut buf = [0u8; 64];
    assert_eq!(udp::recv(&mut lab.net, id, &mut BufsMut(vec![&mut buf[..]]), false, false).err(), Some(Errno::EAGAIN));
    // Sending goes to the peer set by connect; too large is EMSGSIZE.
    udp::connect(&mut lab.net, id, super::addr::SockAddr::Inet(PEER, 5353)).unwrap();
    assert_eq!(udp::send(&mut lab.net, id, &Bufs(vec![b"pong"]), None).unwrap(), 4);
    let big = vec![0u8; super::table::UDP_MAX_DATAGRAM + 1];
    assert_eq!(udp::send(&mut lab.net, id, &Bufs(vec![&big]), None).err(), Some(Errno::EMSGSIZE));
    lab.pump();
    let (n, meta) = lab.peer_sockets.get_mut::<sudp::Socket>(peer).recv_slice(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"pong");
    assert_eq!(meta.endpoint, IpEndpoint::new(IpAddress::Ipv4(GUEST), port));
}

#[test]
fn options_round_trip_and_unknown_ones_are_enoprotoopt() {
    let mut lab = Lab::new();
    let id = lab.tcp_socket();
    let one = 1i32.to_ne_bytes();
    options::set(&mut lab.net, id, libc::SOL_SOCKET, libc::SO_REUSEADDR, &one).unwrap();
    options::set(&mut lab.net, id, libc::IPPROTO_TCP, libc::TCP_NODELAY, &one).unwrap();
    options::set(&mut lab.net, id, libc::SOL_SOCKET, libc::SO_RCVBUF, &(1i32 << 30).to_ne_bytes()).unwrap();
    let get = |lab: &mut Lab, level, name| {
        let v = options::get(&mut lab.net, id, level, name).unwrap();
        i32::from_ne_bytes(v[..4].try_into().unwrap())
    };
    assert_eq!(get(&mut lab, libc::SOL_SOCKET, libc::SO_REUSEADDR), 1);
    assert_eq!(get(&mut lab, libc::IPPROTO_TCP, libc::TCP_NODELAY), 1);
    assert_eq!(get(&mut lab, libc::SOL_SOCKET, libc::SO_RCVBUF), 1 << 20, "clamped to 1 MiB");
    assert_eq!(get(&mut lab, libc::SOL_SOCKET, libc::SO_TYPE), libc::SOCK_STREAM);
    assert_eq!(options::get(&mut lab.net, id, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY), Err(Errno::ENOPROTOOPT));
    assert_eq!(options::set(&mut lab.net, id, libc::SOL_SOCKET, 9999, &one), Err(Errno::ENOPROTOOPT));
}

#[test]
fn a_read_timeout_wakes_the_blocked_reader_and_ends_its_read_with_etimedout() {
    let mut lab = Lab::new();
    let listener = lab.tcp_socket();
    tcp::bind(&mut lab.net, listener, Ipv4Address::UNSPECIFIED, 80).unwrap();
    tcp::listen(&mut lab.net, listener, 1).unwrap();
    lab.peer_connect(80, 40002);
    lab.pump();
    let (conn, _) = tcp::accept(&mut lab.net, listener).unwrap();
    let tv = [1i64.to_ne_bytes(), 0i64.to_ne_bytes()].concat();
    options::set(&mut lab.net, conn, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv).unwrap();
    // As the recv op does: an EAGAIN arms the deadline; the reader then waits for EPOLLIN.
    let read = |lab: &mut Lab| {
        let r = recv(&mut lab.net, conn, 8);
        timed(&mut lab.net, conn, true, r)
    };
    assert_eq!(read(&mut lab), Err(Errno::EAGAIN));
    assert_eq!(lab.events(conn) & IN, 0);
    services::wait_until(Some(services::monotonic_ns() + 500_000_000));
    maintain(&mut lab.net, services::monotonic_ns());
    assert_eq!(lab.events(conn) & IN, 0, "not yet");
    services::wait_until(Some(services::monotonic_ns() + 600_000_000));
    maintain(&mut lab.net, services::monotonic_ns());
    assert_ne!(lab.events(conn) & IN, 0, "the deadline passed: the blocked reader must wake");
    assert_eq!(read(&mut lab), Err(Errno::ETIMEDOUT));
    assert_eq!(lab.events(conn) & IN, 0, "reported: the next read waits again");
    assert_eq!(read(&mut lab), Err(Errno::EAGAIN), "and arms a new deadline");
}
mod hostile;
mod loopback;
