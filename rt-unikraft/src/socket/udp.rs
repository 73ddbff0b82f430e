//! UDP: bind (port 0: an ephemeral one), connect for a default peer, send to and receive
//! from, with datagram boundaries kept (`MSG_TRUNC` when a datagram does not fit).
//!
//! Sending: smoltcp's transmit buffer counts datagrams and bytes, and whether the next
//! datagram fits depends on its size and on where the ring wraps, which smoltcp does not
//! tell. So "writable" cannot be read off it exactly, and a writable event that is not
//! true makes a blocked sender spin (posix-socket retries at once while EPOLLOUT is set).
//! Instead, a datagram smoltcp cannot take now waits in the socket's own queue
//! (`pending`, at most [`UDP_PENDING_MAX`] bytes) and moves to smoltcp as it drains
//! ([`drain_pending`], after each poll). A send fails with `EAGAIN` only when the queue
//! has no room for it, and EPOLLOUT is set exactly while the queue has room for the
//! largest datagram: an event reported is always true, and after `EAGAIN` the event is
//! clear until the queue drains.

use crate::socket::Errno;
use smoltcp::socket::udp;
use smoltcp::wire::{IpEndpoint, IpListenEndpoint, Ipv4Address};

use super::addr::SockAddr;
use super::table::{Kind, Net, Sock, Udp, UDP_MAX_DATAGRAM, UDP_PENDING_MAX};
use super::{Bufs, BufsMut};

fn udp_of(sock: &mut Sock) -> Result<&mut Udp, Errno> {
    match &mut sock.kind {
        Kind::Udp(udp) => Ok(udp),
        Kind::Tcp(_) => Err(Errno::EOPNOTSUPP),
    }
}

/// `bind`: to `addr` (ours, or any) and `port` (0: an ephemeral one).
pub fn bind(net: &mut Net, id: u64, addr: Ipv4Address, port: u16) -> Result<(), Errno> {
    if !addr.is_unspecified() && addr != net.address && addr != super::loopback::LOOPBACK {
        return Err(Errno::EADDRNOTAVAIL);
    }
    if net.sock(id)?.local.is_some() {
        return Err(Errno::EINVAL);
    }
    let port = if port == 0 {
        net.ephemeral_port(false)?
    } else if net.port_in_use(false, port, id) {
        return Err(Errno::EADDRINUSE);
    } else {
        port
    };
    let handle = udp_of(net.sock(id)?)?.handle;
    let endpoint = IpListenEndpoint { addr: (!addr.is_unspecified()).then_some(addr.into()), port };
    net.stack.sockets.get_mut::<udp::Socket>(handle).bind(endpoint).map_err(|_| Errno::EINVAL)?;
    net.sock(id)?.local = Some((addr, port));
    Ok(())
}

/// Binds to any address and an ephemeral port if the socket is not bound yet (before a
/// send or a connect, as Linux does).
fn autobind(net: &mut Net, id: u64) -> Result<(), Errno> {
    if net.sock(id)?.local.is_none() {
        bind(net, id, Ipv4Address::UNSPECIFIED, 0)?;
    }
    Ok(())
}

/// `connect`: the default peer for `send` and the only source `recv` accepts;
/// `AF_UNSPEC` forgets it.
pub fn connect(net: &mut Net, id: u64, addr: SockAddr) -> Result<(), Errno> {
    match addr {
        SockAddr::Unspec => {
            udp_of(net.sock(id)?)?.peer = None;
            Ok(())
        }
        SockAddr::Inet(addr, port) => {
            if port == 0 || addr.is_unspecified() {
                return Err(Errno::EINVAL);
            }
            autobind(net, id)?;
            udp_of(net.sock(id)?)?.peer = Some(IpEndpoint::new(addr.into(), port));
            Ok(())
        }
    }
}

/// `sendto`/`sendmsg`: one datagram of all the buffers, to `to` or the peer.
pub fn send(net: &mut Net, id: u64, bufs: &Bufs<'_>, to: Option<(Ipv4Address, u16)>) -> Result<usize, Errno> {
    let peer = udp_of(net.sock(id)?)?.peer;
    let dest = match to {
        Some((addr, port)) => IpEndpoint::new(addr.into(), port),
        None => peer.ok_or(Errno::EDESTADDRREQ)?,
    };
    if dest.port == 0 {
        return Err(Errno::EINVAL);
    }
    let smoltcp::wire::IpAddress::Ipv4(dest_addr) = dest.addr;
    if !dest_addr.is_broadcast() && !net.routable(dest_addr) {
        return Err(Errno::ENETUNREACH);
    }
    let len = bufs.total();
    if len > UDP_MAX_DATAGRAM {
        return Err(Errno::EMSGSIZE);
    }
    autobind(net, id)?;
    let sockets = &mut net.stack.sockets;
    let udp = udp_of(net.socks.get_mut(&id).ok_or(Errno::EBADF)?)?;
    if udp.pending.is_empty() {
        match sockets.get_mut::<udp::Socket>(udp.handle).send(len, dest) {
            Ok(payload) => {
                let mut at = 0;
                for buf in bufs.iter() {
                    payload[at..at + buf.len()].copy_from_slice(buf);
                    at += buf.len();
                }
                return Ok(len);
            }
            Err(udp::SendError::BufferFull) => {}
            Err(udp::SendError::Unaddressable) => return Err(Errno::ENETUNREACH),
        }
    }
    if udp.pending_bytes + len > UDP_PENDING_MAX {
        return Err(Errno::EAGAIN);
    }
    let mut datagram = std::vec::Vec::with_capacity(len);
    for buf in bufs.iter() {
        datagram.extend_from_slice(buf);
    }
    udp.pending.push_back((dest, datagram));
    udp.pending_bytes += len;
    Ok(len)
}

/// Whether a send of the largest datagram would be accepted now: EPOLLOUT.
pub fn writable(udp: &Udp) -> bool {
    udp.pending_bytes + UDP_MAX_DATAGRAM <= UDP_PENDING_MAX
}

/// Moves `udp`'s queued datagrams into smoltcp's buffer, oldest first, while they fit.
/// One with no route now is dropped, as a datagram is.
pub fn drain_pending(sockets: &mut smoltcp::iface::SocketSet<'_>, udp: &mut Udp) {
    let socket = sockets.get_mut::<udp::Socket>(udp.handle);
    while let Some((dest, datagram)) = udp.pending.front() {
        match socket.send_slice(datagram, *dest) {
            Err(udp::SendError::BufferFull) => break,
            Ok(()) | Err(udp::SendError::Unaddressable) => {}
        }
        udp.pending_bytes -= datagram.len();
        udp.pending.pop_front();
    }
}

/// What a received datagram gave the caller.
pub struct Received {
    /// Bytes copied (or, with `MSG_TRUNC` in the flags, the datagram's length).
    pub len: usize,
    /// Its sender.
    pub from: IpEndpoint,
    /// It did not fit the buffers.
    pub truncated: bool,
}

/// `recvfrom`/`recvmsg`: the next datagram (from the peer only, once connected);
/// `-EAGAIN` while there is none.
pub fn recv(net: &mut Net, id: u64, bufs: &mut BufsMut<'_>, peek: bool, report_full: bool) -> Result<Received, Errno> {
    let peer = udp_of(net.sock(id)?)?.peer;
    let handle = udp_of(net.sock(id)?)?.handle;
    let socket = net.stack.sockets.get_mut::<udp::Socket>(handle);
    loop {
        let (data, from) = if peek {
            match socket.peek() {
                Ok((data, meta)) => (data, meta.endpoint),
                Err(_) => return Err(Errno::EAGAIN),
            }
        } else {
            match socket.recv() {
                Ok((data, meta)) => (data, meta.endpoint),
                Err(_) => return Err(Errno::EAGAIN),
            }
        };
        if peer.is_some_and(|p| p != from) {
            if peek {
                // Drop it for real (a peek must not find it again), then look again.
                let _ = socket.recv();
            }
            continue;
        }
        let copied = bufs.fill_from(data);
        let truncated = copied < data.len();
        return Ok(Received { len: if report_full { data.len() } else { copied }, from, truncated });
    }
}

/// The next datagram's length (`FIONREAD`), 0 with none.
pub fn next_len(net: &mut Net, sock_handle: smoltcp::iface::SocketHandle) -> usize {
    net.stack.sockets.get_mut::<udp::Socket>(sock_handle).peek().map_or(0, |(d, _)| d.len())
}
