//! UDP: bind (port 0: an ephemeral one), connect for a default peer, send to and receive
//! from, with datagram boundaries kept (`MSG_TRUNC` when a datagram does not fit).

use smoltcp::socket::udp;
use smoltcp::wire::{IpEndpoint, IpListenEndpoint, Ipv4Address};

use super::addr::SockAddr;
use super::table::{Kind, Net, Sock, Udp, UDP_MAX_DATAGRAM};
use super::{Bufs, BufsMut};

fn udp_of(sock: &mut Sock) -> Result<&mut Udp, i32> {
    match &mut sock.kind {
        Kind::Udp(udp) => Ok(udp),
        Kind::Tcp(_) => Err(-libc::EOPNOTSUPP),
    }
}

/// `bind`: to `addr` (ours, or any) and `port` (0: an ephemeral one).
pub fn bind(net: &mut Net, id: u64, addr: Ipv4Address, port: u16) -> Result<(), i32> {
    if !addr.is_unspecified() && addr != net.address {
        return Err(-libc::EADDRNOTAVAIL);
    }
    if net.sock(id)?.local.is_some() {
        return Err(-libc::EINVAL);
    }
    let port = if port == 0 {
        net.ephemeral_port(false)?
    } else if net.port_in_use(false, port, id) {
        return Err(-libc::EADDRINUSE);
    } else {
        port
    };
    let handle = udp_of(net.sock(id)?)?.handle;
    let endpoint = IpListenEndpoint { addr: (!addr.is_unspecified()).then_some(addr.into()), port };
    net.stack.sockets.get_mut::<udp::Socket>(handle).bind(endpoint).map_err(|_| -libc::EINVAL)?;
    net.sock(id)?.local = Some((addr, port));
    Ok(())
}

/// Binds to any address and an ephemeral port if the socket is not bound yet (before a
/// send or a connect, as Linux does).
fn autobind(net: &mut Net, id: u64) -> Result<(), i32> {
    if net.sock(id)?.local.is_none() {
        bind(net, id, Ipv4Address::UNSPECIFIED, 0)?;
    }
    Ok(())
}

/// `connect`: the default peer for `send` and the only source `recv` accepts;
/// `AF_UNSPEC` forgets it.
pub fn connect(net: &mut Net, id: u64, addr: SockAddr) -> Result<(), i32> {
    match addr {
        SockAddr::Unspec => {
            udp_of(net.sock(id)?)?.peer = None;
            Ok(())
        }
        SockAddr::Inet(addr, port) => {
            if port == 0 || addr.is_unspecified() {
                return Err(-libc::EINVAL);
            }
            autobind(net, id)?;
            udp_of(net.sock(id)?)?.peer = Some(IpEndpoint::new(addr.into(), port));
            Ok(())
        }
    }
}

/// `sendto`/`sendmsg`: one datagram of all the buffers, to `to` or the peer.
pub fn send(net: &mut Net, id: u64, bufs: &Bufs<'_>, to: Option<(Ipv4Address, u16)>) -> Result<usize, i32> {
    let peer = udp_of(net.sock(id)?)?.peer;
    let dest = match to {
        Some((addr, port)) => IpEndpoint::new(addr.into(), port),
        None => peer.ok_or(-libc::EDESTADDRREQ)?,
    };
    if dest.port == 0 {
        return Err(-libc::EINVAL);
    }
    let len = bufs.total();
    if len > UDP_MAX_DATAGRAM {
        return Err(-libc::EMSGSIZE);
    }
    autobind(net, id)?;
    let handle = udp_of(net.sock(id)?)?.handle;
    let socket = net.stack.sockets.get_mut::<udp::Socket>(handle);
    match socket.send(len, dest) {
        Ok(payload) => {
            let mut at = 0;
            for buf in bufs.iter() {
                payload[at..at + buf.len()].copy_from_slice(buf);
                at += buf.len();
            }
            Ok(len)
        }
        Err(udp::SendError::BufferFull) => Err(-libc::EAGAIN),
        Err(udp::SendError::Unaddressable) => Err(-libc::ENETUNREACH),
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
pub fn recv(net: &mut Net, id: u64, bufs: &mut BufsMut<'_>, peek: bool, report_full: bool) -> Result<Received, i32> {
    let peer = udp_of(net.sock(id)?)?.peer;
    let handle = udp_of(net.sock(id)?)?.handle;
    let socket = net.stack.sockets.get_mut::<udp::Socket>(handle);
    loop {
        let (data, from) = if peek {
            match socket.peek() {
                Ok((data, meta)) => (data, meta.endpoint),
                Err(_) => return Err(-libc::EAGAIN),
            }
        } else {
            match socket.recv() {
                Ok((data, meta)) => (data, meta.endpoint),
                Err(_) => return Err(-libc::EAGAIN),
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
