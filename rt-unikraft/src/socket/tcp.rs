//! TCP: bind, listen with a backlog, accept, connect, send, receive, shutdown, close.
//!
//! smoltcp has one socket per connection and answers a SYN that finds no socket in
//! `LISTEN` with a reset. A listener is therefore a set of smoltcp sockets listening on
//! its port (its backlog, at most [`LISTEN_BACKLOG_MAX`]): `accept` hands out one whose
//! handshake is done and puts a fresh listening socket in its place.
//!
//! Every function is an op on the socket table and never blocks: `Err(-EAGAIN)` (or
//! `-EINPROGRESS` for `connect`) tells posix-socket to wait for the socket's events.

use crate::socket::Errno;
use smoltcp::socket::tcp;
use smoltcp::wire::{IpEndpoint, Ipv4Address};

use super::readiness::acceptable;
use super::table::{Kind, Listener, Net, Options, Sock, Stream, Tcp, CONNECT_TIMEOUT, LISTEN_BACKLOG_MAX};
use super::thread::listen_endpoint;
use super::{deadline_after, Bufs, BufsMut};

fn tcp_of(sock: &mut Sock) -> Result<&mut Tcp, Errno> {
    match &mut sock.kind {
        Kind::Tcp(tcp) => Ok(tcp),
        Kind::Udp(_) => Err(Errno::EOPNOTSUPP),
    }
}

/// `bind`: records the local address; port 0 picks an ephemeral port now, as Linux does.
pub fn bind(net: &mut Net, id: u64, addr: Ipv4Address, port: u16) -> Result<(), Errno> {
    let address = net.address;
    if !addr.is_unspecified() && addr != address && addr != super::loopback::LOOPBACK {
        return Err(Errno::EADDRNOTAVAIL);
    }
    let sock = net.sock(id)?;
    if !matches!(sock.kind, Kind::Tcp(Tcp::Fresh)) || sock.local.is_some() {
        return Err(Errno::EINVAL);
    }
    let port = if port == 0 {
        net.ephemeral_port(true)?
    } else if net.port_in_use(true, port, id) {
        return Err(Errno::EADDRINUSE);
    } else {
        port
    };
    net.sock(id)?.local = Some((addr, port));
    Ok(())
}

/// `listen`: the backlog becomes `backlog` sockets listening on the bound port (at least
/// one, at most [`LISTEN_BACKLOG_MAX`]). An unbound socket gets an ephemeral port.
pub fn listen(net: &mut Net, id: u64, backlog: i32) -> Result<(), Errno> {
    let sock = net.sock(id)?;
    match tcp_of(sock)? {
        Tcp::Listening(_) => return Ok(()),
        Tcp::Stream(_) => return Err(Errno::EINVAL),
        Tcp::Fresh => {}
    }
    if sock.local.is_none() {
        let port = net.ephemeral_port(true)?;
        net.sock(id)?.local = Some((Ipv4Address::UNSPECIFIED, port));
    }
    let sock = net.sock(id)?;
    let (local, opts) = (sock.local, sock.opts);
    let count = usize::try_from(backlog).unwrap_or(1).clamp(1, LISTEN_BACKLOG_MAX);
    let mut handles = std::vec::Vec::with_capacity(count);
    for _ in 0..count {
        let handle = net.new_tcp(&opts);
        if net.stack.sockets.get_mut::<tcp::Socket>(handle).listen(listen_endpoint(local)).is_err() {
            for handle in handles {
                net.stack.sockets.remove(handle);
            }
            net.stack.sockets.remove(handle);
            return Err(Errno::EINVAL);
        }
        handles.push(handle);
    }
    net.sock(id)?.kind = Kind::Tcp(Tcp::Listening(Listener::new(handles, count)));
    if let Some((_, port)) = local {
        // A SYN that finds every socket busy is dropped, not refused (see `backlog`).
        net.stack.phy.set_port_quiet(port, true);
    }
    Ok(())
}

/// `accept4`: a connection whose handshake is done, as a new socket (its id), and its
/// peer. `-EAGAIN` while there is none.
pub fn accept(net: &mut Net, id: u64) -> Result<(u64, IpEndpoint), Errno> {
    let sock = net.sock(id)?;
    let (local, opts) = (sock.local, sock.opts);
    let Kind::Tcp(Tcp::Listening(listener)) = &sock.kind else { return Err(Errno::EINVAL) };
    if listener.shut {
        return Err(Errno::EINVAL);
    }
    let (sockets, backlog) = (listener.sockets.clone(), listener.backlog);
    let ready = sockets
        .iter()
        .position(|&h| acceptable(net.stack.sockets.get::<tcp::Socket>(h).state()))
        .ok_or(Errno::EAGAIN)?;
    let handle = sockets[ready];
    // A fresh socket listens in its place, unless the network thread added spares
    // beyond the backlog meanwhile (a burst), which this connection now gives back.
    let fresh = if sockets.len() <= backlog {
        let fresh = net.new_tcp(&opts);
        match net.stack.sockets.get_mut::<tcp::Socket>(fresh).listen(listen_endpoint(local)) {
            Ok(()) => Some(fresh),
            Err(_) => {
                net.stack.sockets.remove(fresh);
                None
            }
        }
    } else {
        None
    };
    if let Kind::Tcp(Tcp::Listening(listener)) = &mut net.sock(id)?.kind {
        match fresh {
            Some(fresh) => listener.sockets[ready] = fresh,
            None => {
                listener.sockets.swap_remove(ready);
            }
        }
    }
    let socket = net.stack.sockets.get::<tcp::Socket>(handle);
    let peer = socket.remote_endpoint().unwrap_or(IpEndpoint::new(Ipv4Address::UNSPECIFIED.into(), 0));
    let stream =
        Stream { handle, connecting: None, last_state: socket.state(), rd_shut: false, wr_shut: false, broken: false };
    // Options set on the listener carry over (SO_RCVTIMEO and SO_SNDTIMEO do not, as on Linux).
    let opts = Options { rcv_timeout: None, snd_timeout: None, ..opts };
    let new = net.insert(Sock::new(Kind::Tcp(Tcp::Stream(stream)), opts));
    Ok((new, peer))
}

/// `connect`: starts the handshake and says `-EINPROGRESS`; the network thread sees it
/// end (EPOLLOUT, with `SO_ERROR` set when it failed).
pub fn connect(net: &mut Net, id: u64, addr: Ipv4Address, port: u16, now: u64) -> Result<(), Errno> {
    let routable = net.routable(addr);
    let sock = net.sock(id)?;
    match tcp_of(sock)? {
        Tcp::Fresh => {}
        Tcp::Listening(_) => return Err(Errno::EINVAL),
        Tcp::Stream(stream) if stream.connecting.is_some() => return Err(Errno::EALREADY),
        Tcp::Stream(_) => return Err(Errno::EISCONN),
    }
    if port == 0 || addr.is_unspecified() {
        return Err(Errno::ECONNREFUSED);
    }
    if addr.is_broadcast() || addr.is_multicast() || !routable {
        return Err(Errno::ENETUNREACH);
    }
    let local = match sock.local {
        Some((a, p)) => (a, p),
        None => (Ipv4Address::UNSPECIFIED, net.ephemeral_port(true)?),
    };
    let opts = net.sock(id)?.opts;
    let handle = net.new_tcp(&opts);
    let endpoint = listen_endpoint(Some(local));
    let remote = IpEndpoint::new(addr.into(), port);
    let cx = net.stack.iface.context();
    if let Err(e) = net.stack.sockets.get_mut::<tcp::Socket>(handle).connect(cx, remote, endpoint) {
        net.stack.sockets.remove(handle);
        return Err(match e {
            tcp::ConnectError::InvalidState => Errno::EISCONN,
            // No route (no gateway for an off-link address, or 127.0.0.1: there is no loopback).
            tcp::ConnectError::Unaddressable => Errno::ENETUNREACH,
        });
    }
    let state = net.stack.sockets.get::<tcp::Socket>(handle).state();
    let sock = net.sock(id)?;
    sock.local = Some(local);
    sock.error = None;
    sock.kind = Kind::Tcp(Tcp::Stream(Stream {
        handle,
        connecting: Some(deadline_after(now, CONNECT_TIMEOUT)),
        last_state: state,
        rd_shut: false,
        wr_shut: false,
        broken: false,
    }));
    Err(Errno::EINPROGRESS)
}

fn stream_of(sock: &mut Sock) -> Result<&mut Stream, Errno> {
    match tcp_of(sock)? {
        Tcp::Stream(stream) => Ok(stream),
        _ => Err(Errno::ENOTCONN),
    }
}

/// `recv`: what the connection has (`MSG_PEEK` leaves it there); 0 at the end of the
/// stream; the pending error once after a reset; `-EAGAIN` while nothing has arrived.
pub fn recv(net: &mut Net, id: u64, bufs: &mut BufsMut<'_>, peek: bool) -> Result<usize, Errno> {
    let sockets = &mut net.stack.sockets;
    let sock = net.socks.get_mut(&id).ok_or(Errno::EBADF)?;
    let stream = stream_of(sock)?;
    if stream.connecting.is_some() {
        return Err(Errno::EAGAIN);
    }
    if stream.rd_shut {
        return Ok(0);
    }
    let socket = sockets.get_mut::<tcp::Socket>(stream.handle);
    if socket.can_recv() {
        let mut total = 0;
        if peek {
            let want = bufs.total();
            if let Ok(data) = socket.peek(want) {
                total = bufs.fill_from(data);
            }
        } else {
            for buf in bufs.iter_mut() {
                let n = socket.recv_slice(buf).unwrap_or(0);
                total += n;
                if n < buf.len() {
                    break;
                }
            }
        }
        return Ok(total);
    }
    if stream.broken {
        return match sock.error.take() {
            Some(e) => Err(e),
            None => Ok(0),
        };
    }
    if super::readiness::fin_received(socket.state()) {
        return Ok(0);
    }
    Err(Errno::EAGAIN)
}

/// `send`: queues what fits; `-EAGAIN` when nothing does; `-EPIPE` after our FIN (no
/// signal: there are none, so `MSG_NOSIGNAL` changes nothing).
pub fn send(net: &mut Net, id: u64, bufs: &Bufs<'_>) -> Result<usize, Errno> {
    let sockets = &mut net.stack.sockets;
    let sock = net.socks.get_mut(&id).ok_or(Errno::EBADF)?;
    let stream = stream_of(sock)?;
    if stream.connecting.is_some() {
        return Err(Errno::EAGAIN);
    }
    if stream.broken {
        return Err(sock.error.take().unwrap_or(Errno::EPIPE));
    }
    let socket = sockets.get_mut::<tcp::Socket>(stream.handle);
    if stream.wr_shut || !socket.may_send() {
        return Err(Errno::EPIPE);
    }
    if bufs.total() == 0 {
        return Ok(0);
    }
    let mut total = 0;
    for buf in bufs.iter() {
        let n = socket.send_slice(buf).unwrap_or(0);
        total += n;
        if n < buf.len() {
            break;
        }
    }
    if total == 0 {
        return Err(Errno::EAGAIN);
    }
    Ok(total)
}

/// `shutdown`: `SHUT_WR` sends our FIN; `SHUT_RD` ends reads here. On a listener, any
/// `how` ends `accept`s, as Linux does: a blocked one wakes and fails with `EINVAL`.
pub fn shutdown(net: &mut Net, id: u64, how: i32) -> Result<(), Errno> {
    let sockets = &mut net.stack.sockets;
    let sock = net.socks.get_mut(&id).ok_or(Errno::EBADF)?;
    if !matches!(how, libc::SHUT_RD | libc::SHUT_WR | libc::SHUT_RDWR) {
        return Err(Errno::EINVAL);
    }
    if let Kind::Tcp(Tcp::Listening(listener)) = &mut sock.kind {
        listener.shut = true;
        return Ok(());
    }
    let stream = stream_of(sock)?;
    if stream.connecting.is_some() {
        return Err(Errno::ENOTCONN);
    }
    if how == libc::SHUT_RD || how == libc::SHUT_RDWR {
        stream.rd_shut = true;
    }
    if how == libc::SHUT_WR || how == libc::SHUT_RDWR {
        stream.wr_shut = true;
        sockets.get_mut::<tcp::Socket>(stream.handle).close();
    }
    Ok(())
}

/// `close` of a TCP socket (already taken out of the table): a connection finishes its
/// close in the background (reset instead when unread data is left, as on Linux); a
/// listener resets its backlog's connections.
pub fn close(net: &mut Net, tcp: Tcp, now: u64) {
    match tcp {
        Tcp::Fresh => {}
        Tcp::Listening(listener) => {
            for handle in listener.sockets {
                let listening = net.stack.sockets.get::<tcp::Socket>(handle).state() == tcp::State::Listen;
                if listening {
                    net.stack.sockets.remove(handle);
                } else {
                    net.orphan(handle, false, now);
                }
            }
        }
        Tcp::Stream(stream) => {
            let socket = net.stack.sockets.get::<tcp::Socket>(stream.handle);
            if socket.state() == tcp::State::Closed {
                net.stack.sockets.remove(stream.handle);
            } else {
                let graceful = socket.recv_queue() == 0 && stream.connecting.is_none();
                net.orphan(stream.handle, graceful, now);
            }
        }
    }
}

/// The local and remote endpoints of a TCP socket, for `getsockname`/`getpeername`.
pub fn endpoints(net: &Net, sock: &Sock) -> (Option<IpEndpoint>, Option<IpEndpoint>) {
    match &sock.kind {
        Kind::Tcp(Tcp::Stream(stream)) => {
            let socket = net.stack.sockets.get::<tcp::Socket>(stream.handle);
            let local = socket.local_endpoint().or(sock.local.map(|(a, p)| IpEndpoint::new(a.into(), p)));
            let remote = if stream.connecting.is_some() { None } else { socket.remote_endpoint() };
            (local, remote)
        }
        _ => (sock.local.map(|(a, p)| IpEndpoint::new(a.into(), p)), None),
    }
}

/// Bytes waiting to be read (`FIONREAD`).
pub fn readable_bytes(net: &Net, sock: &Sock) -> usize {
    match &sock.kind {
        Kind::Tcp(Tcp::Stream(stream)) => net.stack.sockets.get::<tcp::Socket>(stream.handle).recv_queue(),
        _ => 0,
    }
}
