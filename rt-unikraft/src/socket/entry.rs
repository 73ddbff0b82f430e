//! The socket driver's C edge: the `rtuk_sock_*` functions glue/socket.c calls for
//! posix-socket. Each turns C pointers and lengths into Rust values (refusing what Linux
//! refuses: more than `IOV_MAX` buffers, lengths past `isize::MAX`), runs the op on the
//! table through [`with_net`], and turns the result back into a `-errno`. Nothing below
//! this module sees a raw pointer.

use crate::socket::Errno;
use core::ffi::{c_int, c_void};

use shared_core::services;
use smoltcp::wire::IpEndpoint;

use super::addr::{self, SockAddr};
use super::table::{lock, Kind, Options, Sock, Tcp, Udp};
use super::{options, tcp, thread, timed, udp, with_net, Bufs, BufsMut};
use crate::glue::RtukIovec;

/// `IOV_MAX`.
const IOV_MAX: c_int = 1024;

/// The app's bytes at `ptr` (none when null).
///
/// # Safety
/// `ptr` is null or valid for `len` bytes for `'a`.
unsafe fn bytes<'a>(ptr: *const c_void, len: u32) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: the caller's promise.
    unsafe { std::slice::from_raw_parts(ptr.cast(), len as usize) }
}

/// The iovec array as (start, length) pairs, empty buffers left out. As Linux: more
/// than `IOV_MAX` buffers, or more than `isize::MAX` bytes in all, is `EINVAL` (a slice
/// may not be larger, and the total must not wrap).
///
/// # Safety
/// `iov` holds `count` iovecs.
unsafe fn iovecs(iov: *const RtukIovec, count: c_int) -> Result<std::vec::Vec<(*mut u8, usize)>, Errno> {
    if !(0..=IOV_MAX).contains(&count) {
        return Err(Errno::EINVAL);
    }
    if count == 0 || iov.is_null() {
        return Ok(std::vec::Vec::new());
    }
    // SAFETY: the caller's promise.
    let iov = unsafe { std::slice::from_raw_parts(iov, count as usize) };
    let mut total: usize = 0;
    for v in iov {
        total = total.checked_add(v.len).filter(|&t| t <= isize::MAX as usize).ok_or(Errno::EINVAL)?;
    }
    Ok(iov.iter().filter(|v| !v.base.is_null() && v.len > 0).map(|v| (v.base.cast::<u8>(), v.len)).collect())
}

/// Whether two of the buffers overlap (C allows it for a receive; the result is
/// unspecified there, but two `&mut [u8]` over the same bytes are undefined in Rust).
fn overlapping(raw: &[(*mut u8, usize)]) -> bool {
    let mut spans: std::vec::Vec<(usize, usize)> = raw.iter().map(|&(p, n)| (p as usize, n)).collect();
    spans.sort_unstable();
    spans.windows(2).any(|w| w[0].0.saturating_add(w[0].1) > w[1].0)
}

/// Writes an address for the app (`addr`/`len` as `accept` or `getsockname` get them).
///
/// # Safety
/// Both null, or `len` valid and `addr` valid for `*len` bytes.
unsafe fn write_addr(addr: *mut c_void, len: *mut u32, endpoint: IpEndpoint) {
    if addr.is_null() || len.is_null() {
        return;
    }
    let encoded = addr::encode_endpoint(endpoint);
    // SAFETY: the caller's promise.
    unsafe {
        let out = std::slice::from_raw_parts_mut(addr.cast::<u8>(), *len as usize);
        *len = addr::write_to(&encoded, out) as u32;
    }
}

fn status(result: Result<(), Errno>) -> c_int {
    result.err().map_or(0, Errno::negated)
}

/// `socket(AF_INET, type, protocol)`: starts the socket layer on first use.
#[unsafe(no_mangle)]
pub extern "C" fn rtuk_sock_create(ty: c_int, protocol: c_int) -> i64 {
    let tcp = match (ty & 0xf, protocol) {
        (libc::SOCK_STREAM, 0 | libc::IPPROTO_TCP) => true,
        (libc::SOCK_DGRAM, 0 | libc::IPPROTO_UDP) => false,
        (libc::SOCK_STREAM | libc::SOCK_DGRAM | libc::SOCK_RAW, _) => return Errno::EPROTONOSUPPORT.negated().into(),
        _ => return Errno::EINVAL.negated().into(),
    };
    let mut guard = lock();
    let net = match thread::start(&mut guard) {
        Ok(net) => net,
        Err(e) => return e.negated().into(),
    };
    let kind = if tcp { Kind::Tcp(Tcp::Fresh) } else { Kind::Udp(Udp::new(net.new_udp())) };
    net.insert(Sock::new(kind, Options::default())) as i64
}

/// `ops->poll`: once per new socket file; from now on its events go there.
///
/// # Safety
/// `file` is the socket's file, alive until `rtuk_sock_close`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rtuk_sock_poll(id: u64, file: *const c_void) {
    let _ = with_net(id, false, |net| {
        let sock = net.sock(id)?;
        sock.file = Some(super::table::File(file));
        sock.events = 0;
        Ok(())
    });
}

/// `bind`.
///
/// # Safety
/// `addr` is valid for `addr_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rtuk_sock_bind(id: u64, addr: *const c_void, addr_len: u32) -> c_int {
    // SAFETY: the caller's promise.
    let addr = unsafe { bytes(addr, addr_len) };
    status(with_net(id, false, |net| {
        let SockAddr::Inet(ip, port) = addr::parse(addr)? else { return Err(Errno::EAFNOSUPPORT) };
        match net.sock(id)?.kind {
            Kind::Tcp(_) => tcp::bind(net, id, ip, port),
            Kind::Udp(_) => udp::bind(net, id, ip, port),
        }
    }))
}

/// `listen`.
#[unsafe(no_mangle)]
pub extern "C" fn rtuk_sock_listen(id: u64, backlog: c_int) -> c_int {
    status(with_net(id, false, |net| tcp::listen(net, id, backlog)))
}

/// `accept4`: the new socket's id, or `-errno`. The flags (`SOCK_NONBLOCK`,
/// `SOCK_CLOEXEC`) are posix-socket's business: they belong to the new file.
///
/// # Safety
/// `addr`/`addr_len` as for `write_addr`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rtuk_sock_accept(id: u64, addr: *mut c_void, addr_len: *mut u32, _flags: c_int) -> i64 {
    match with_net(id, true, |net| tcp::accept(net, id)) {
        Ok((new, peer)) => {
            // SAFETY: the caller's promise.
            unsafe { write_addr(addr, addr_len, peer) };
            new as i64
        }
        Err(e) => e.negated().into(),
    }
}

/// `connect`: TCP says `-EINPROGRESS` (see glue/socket.c for how a blocking connect
/// ends); UDP sets the default peer.
///
/// # Safety
/// `addr` is valid for `addr_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rtuk_sock_connect(id: u64, addr: *const c_void, addr_len: u32) -> c_int {
    // SAFETY: the caller's promise.
    let addr = unsafe { bytes(addr, addr_len) };
    status(with_net(id, true, |net| {
        let parsed = addr::parse(addr)?;
        match (&net.sock(id)?.kind, parsed) {
            (Kind::Udp(_), parsed) => udp::connect(net, id, parsed),
            (Kind::Tcp(_), SockAddr::Inet(ip, port)) => tcp::connect(net, id, ip, port, services::monotonic_ns()),
            (Kind::Tcp(_), SockAddr::Unspec) => Err(Errno::EAFNOSUPPORT),
        }
    }))
}

/// `shutdown`.
#[unsafe(no_mangle)]
pub extern "C" fn rtuk_sock_shutdown(id: u64, how: c_int) -> c_int {
    status(with_net(id, true, |net| match &mut net.sock(id)?.kind {
        Kind::Tcp(_) => tcp::shutdown(net, id, how),
        Kind::Udp(udp) if udp.peer.is_some() => Ok(()),
        Kind::Udp(_) => Err(Errno::ENOTCONN),
    }))
}

/// `getsockname` (`peer` 0) or `getpeername` (`peer` 1).
///
/// # Safety
/// `addr`/`addr_len` as for `write_addr`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rtuk_sock_getname(id: u64, peer: c_int, addr: *mut c_void, addr_len: *mut u32) -> c_int {
    let endpoint = with_net(id, false, |net| {
        let address = net.address;
        let sock = net.socks.get(&id).ok_or(Errno::EBADF)?;
        let (local, remote) = match &sock.kind {
            Kind::Tcp(_) => tcp::endpoints(net, sock),
            Kind::Udp(udp) => {
                let local = sock.local.map(|(a, p)| {
                    // Connected: the address it sends from, as Linux reports it.
                    let a = match udp.peer {
                        Some(peer) if a.is_unspecified() => match peer.addr {
                            smoltcp::wire::IpAddress::Ipv4(p) if super::loopback::is_loopback(p) => {
                                super::loopback::LOOPBACK
                            }
                            _ => address,
                        },
                        _ => a,
                    };
                    IpEndpoint::new(a.into(), p)
                });
                (local, udp.peer)
            }
        };
        let any = IpEndpoint::new(smoltcp::wire::Ipv4Address::UNSPECIFIED.into(), 0);
        if peer != 0 {
            remote.ok_or(Errno::ENOTCONN)
        } else {
            Ok(local.unwrap_or(any))
        }
    });
    match endpoint {
        Ok(endpoint) => {
            // SAFETY: the caller's promise.
            unsafe { write_addr(addr, addr_len, endpoint) };
            0
        }
        Err(e) => e.negated(),
    }
}

/// `getsockopt`: copies what fits of the value, and its length.
///
/// # Safety
/// `val` is valid for `*len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rtuk_sock_getsockopt(
    id: u64,
    level: c_int,
    name: c_int,
    val: *mut c_void,
    len: *mut u32,
) -> c_int {
    if val.is_null() || len.is_null() {
        return Errno::EFAULT.negated();
    }
    match with_net(id, false, |net| options::get(net, id, level, name)) {
        Ok(value) => {
            // SAFETY: the caller's promise.
            unsafe {
                let n = (*len as usize).min(value.len());
                std::ptr::copy_nonoverlapping(value.as_ptr(), val.cast::<u8>(), n);
                *len = n as u32;
            }
            0
        }
        Err(e) => e.negated(),
    }
}

/// `setsockopt`.
///
/// # Safety
/// `val` is valid for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rtuk_sock_setsockopt(
    id: u64,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: u32,
) -> c_int {
    // SAFETY: the caller's promise.
    let val = unsafe { bytes(val, len) };
    status(with_net(id, true, |net| options::set(net, id, level, name, val)))
}

/// `recvfrom`/`recvmsg` into `iovcnt` buffers: bytes received, 0 at the end of a stream,
/// or `-errno`. `MSG_PEEK` and `MSG_TRUNC` are honoured; `MSG_WAITALL` and
/// `MSG_DONTWAIT` are not (posix-socket decides whether to wait, from the file's mode).
///
/// # Safety
/// `iov` as for `iovecs`; `from`/`from_len` as for `write_addr`; `msg_flags` null or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rtuk_sock_recv(
    id: u64,
    iov: *const RtukIovec,
    iovcnt: c_int,
    flags: c_int,
    from: *mut c_void,
    from_len: *mut u32,
    msg_flags: *mut c_int,
) -> i64 {
    if flags & libc::MSG_OOB != 0 {
        return Errno::EOPNOTSUPP.negated().into();
    }
    // SAFETY: the caller's promise.
    let raw = match unsafe { iovecs(iov, iovcnt) } {
        Ok(raw) => raw,
        Err(e) => return e.negated().into(),
    };
    // Overlapping buffers receive into one scratch buffer, scattered by raw copies after.
    let mut scratch = std::vec::Vec::new();
    let aliased = overlapping(&raw);
    let mut bufs = if aliased {
        scratch.resize(raw.iter().map(|&(_, n)| n).sum(), 0u8);
        BufsMut(std::vec![&mut scratch[..]])
    } else {
        // SAFETY: each buffer is valid for its length, and they do not overlap (checked).
        BufsMut(raw.iter().map(|&(p, n)| unsafe { std::slice::from_raw_parts_mut(p, n) }).collect())
    };
    let peek = flags & libc::MSG_PEEK != 0;
    let result = with_net(id, true, |net| {
        let result = match net.sock(id)?.kind {
            Kind::Tcp(_) => tcp::recv(net, id, &mut bufs, peek).map(|n| (n, None, false)),
            Kind::Udp(_) => udp::recv(net, id, &mut bufs, peek, flags & libc::MSG_TRUNC != 0)
                .map(|r| (r.len, Some(r.from), r.truncated)),
        };
        timed(net, id, true, result)
    });
    drop(bufs);
    if let (true, Ok((n, _, _))) = (aliased, &result) {
        let mut left = &scratch[..(*n).min(scratch.len())];
        for &(p, len) in &raw {
            let k = len.min(left.len());
            // SAFETY: `p` is valid for `len` bytes (the caller's promise); a raw copy may
            // overlap other buffers' bytes, as C's would.
            unsafe { std::ptr::copy(left.as_ptr(), p, k) };
            left = &left[k..];
        }
    }
    match result {
        Ok((n, sender, truncated)) => {
            match sender {
                // SAFETY: the caller's promise.
                Some(endpoint) => unsafe { write_addr(from, from_len, endpoint) },
                None if !from_len.is_null() => {
                    // SAFETY: the caller's promise. A stream has no sender address.
                    unsafe { *from_len = 0 }
                }
                None => {}
            }
            if truncated && !msg_flags.is_null() {
                // SAFETY: the caller's promise.
                unsafe { *msg_flags |= libc::MSG_TRUNC };
            }
            n as i64
        }
        Err(e) => e.negated().into(),
    }
}

/// `sendto`/`sendmsg` of `iovcnt` buffers, to `to` (a datagram socket's destination;
/// ignored by a connected stream). `MSG_NOSIGNAL` and the like change nothing (there
/// are no signals).
///
/// # Safety
/// `iov` as for `iovecs`; `to` valid for `to_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rtuk_sock_send(
    id: u64,
    iov: *const RtukIovec,
    iovcnt: c_int,
    flags: c_int,
    to: *const c_void,
    to_len: u32,
) -> i64 {
    if flags & libc::MSG_OOB != 0 {
        return Errno::EOPNOTSUPP.negated().into();
    }
    // SAFETY: the caller's promise.
    let raw = match unsafe { iovecs(iov, iovcnt) } {
        Ok(raw) => raw,
        Err(e) => return e.negated().into(),
    };
    // SAFETY: each buffer is valid for its length for this call.
    let bufs = Bufs(raw.into_iter().map(|(p, n)| unsafe { std::slice::from_raw_parts(p.cast_const(), n) }).collect());
    // SAFETY: the caller's promise.
    let to = unsafe { bytes(to, to_len) };
    let result = with_net(id, true, |net| {
        let result = match net.sock(id)?.kind {
            Kind::Tcp(_) => tcp::send(net, id, &bufs),
            Kind::Udp(_) => {
                let dest = if to.is_empty() {
                    None
                } else {
                    match addr::parse(to)? {
                        SockAddr::Inet(ip, port) => Some((ip, port)),
                        SockAddr::Unspec => None,
                    }
                };
                udp::send(net, id, &bufs, dest)
            }
        };
        timed(net, id, false, result)
    });
    match result {
        Ok(n) => n as i64,
        Err(e) => e.negated().into(),
    }
}

/// `ioctl`: `FIONREAD`; `FIONBIO` never comes here (posix-fdio keeps it in the file).
///
/// # Safety
/// `arg` is valid for the request's argument.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rtuk_sock_ioctl(id: u64, request: c_int, arg: *mut c_void) -> c_int {
    if request as libc::Ioctl != libc::FIONREAD {
        return Errno::ENOTTY.negated();
    }
    if arg.is_null() {
        return Errno::EFAULT.negated();
    }
    match with_net(id, false, |net| {
        let sock = net.socks.get(&id).ok_or(Errno::EBADF)?;
        Ok(match &sock.kind {
            Kind::Tcp(_) => tcp::readable_bytes(net, sock),
            Kind::Udp(udp) => {
                let handle = udp.handle;
                udp::next_len(net, handle)
            }
        })
    }) {
        Ok(n) => {
            // SAFETY: the caller's promise (FIONREAD takes an int *).
            unsafe { *arg.cast::<c_int>() = c_int::try_from(n).unwrap_or(c_int::MAX) };
            0
        }
        Err(e) => e.negated(),
    }
}

/// `close` (the file's last reference): the socket leaves the table at once; a TCP
/// connection finishes its close in the background.
#[unsafe(no_mangle)]
pub extern "C" fn rtuk_sock_close(id: u64) -> c_int {
    let mut guard = lock();
    let Some(net) = guard.as_mut() else { return Errno::EBADF.negated() };
    let Some(sock) = net.socks.remove(&id) else { return Errno::EBADF.negated() };
    if let (Kind::Tcp(Tcp::Listening(_)), Some((_, port))) = (&sock.kind, sock.local) {
        // Nobody listens there now: SYNs are refused again.
        net.stack.phy.set_port_quiet(port, false);
    }
    match sock.kind {
        Kind::Tcp(t) => tcp::close(net, t, services::monotonic_ns()),
        Kind::Udp(u) => {
            net.stack.sockets.remove(u.handle);
        }
    }
    drop(guard);
    thread::kick();
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_linux_refuses_are_einval() {
        let mut buf = [0u8; 16];
        let huge = [RtukIovec { base: buf.as_mut_ptr().cast(), len: usize::MAX }];
        // SAFETY: the lengths are refused before any is used.
        assert_eq!(unsafe { iovecs(huge.as_ptr(), 1) }.err(), Some(Errno::EINVAL));
        let half = (isize::MAX as usize) / 2 + 1;
        let wraps = [
            RtukIovec { base: buf.as_mut_ptr().cast(), len: half },
            RtukIovec { base: buf.as_mut_ptr().cast(), len: half },
        ];
        // SAFETY: as above.
        assert_eq!(unsafe { iovecs(wraps.as_ptr(), 2) }.err(), Some(Errno::EINVAL));
        // SAFETY: as above (the count is refused first).
        assert_eq!(unsafe { iovecs(wraps.as_ptr(), IOV_MAX + 1) }.err(), Some(Errno::EINVAL));
        let fine = [RtukIovec { base: buf.as_mut_ptr().cast(), len: 16 }];
        // SAFETY: one valid buffer.
        assert_eq!(unsafe { iovecs(fine.as_ptr(), 1) }.unwrap().len(), 1);
    }

    #[test]
    fn overlapping_buffers_are_seen() {
        let mut buf = [0u8; 32];
        let p = buf.as_mut_ptr();
        assert!(!overlapping(&[(p, 16), (p.wrapping_add(16), 16)]), "adjacent is fine");
        assert!(overlapping(&[(p.wrapping_add(8), 16), (p, 16)]));
        assert!(overlapping(&[(p, 16), (p, 16)]), "the same buffer twice");
    }
}
