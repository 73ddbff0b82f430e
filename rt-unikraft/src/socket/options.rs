//! `getsockopt` and `setsockopt`.
//!
//! What Linux apps and Rust's std, mio and tokio set is accepted: `SO_REUSEADDR`,
//! `SO_REUSEPORT`, `SO_KEEPALIVE`, `SO_BROADCAST`, `SO_LINGER` (no linger: close never
//! blocks), `SO_RCVBUF`/`SO_SNDBUF` (the buffers of smoltcp sockets created from then on:
//! `listen`'s and `connect`'s), `SO_RCVTIMEO`/`SO_SNDTIMEO` (a blocked read or write then
//! fails with `ETIMEDOUT`), `TCP_NODELAY`, the `TCP_KEEP*` tunings and `IP_TTL`/`IP_TOS`.
//! `SO_ERROR` reports (and clears) a pending error as a positive errno, as Linux does.
//! Anything else is `-ENOPROTOOPT`, which Linux apps handle.

use crate::socket::Errno;
use std::time::Duration;

use smoltcp::socket::tcp;

use super::table::{apply_tcp_options, Kind, Net, Tcp, BUFFER_RANGE};

/// Reads an `int` option value.
fn int_of(val: &[u8]) -> Result<i32, Errno> {
    let bytes: [u8; 4] = val.get(..4).and_then(|b| b.try_into().ok()).ok_or(Errno::EINVAL)?;
    Ok(i32::from_ne_bytes(bytes))
}

/// Reads a `struct timeval` (`SO_RCVTIMEO`); zero means "no timeout".
fn timeout_of(val: &[u8]) -> Result<Option<Duration>, Errno> {
    if val.len() < 16 {
        return Err(Errno::EINVAL);
    }
    let sec = i64::from_ne_bytes(val[..8].try_into().expect("8 bytes"));
    let usec = i64::from_ne_bytes(val[8..16].try_into().expect("8 bytes"));
    if sec < 0 || !(0..1_000_000).contains(&usec) {
        return Err(Errno::EDOM);
    }
    let d = Duration::from_secs(sec as u64) + Duration::from_micros(usec as u64);
    Ok((!d.is_zero()).then_some(d))
}

fn timeval(d: Option<Duration>) -> std::vec::Vec<u8> {
    let d = d.unwrap_or_default();
    let mut out = (d.as_secs() as i64).to_ne_bytes().to_vec();
    out.extend_from_slice(&i64::from(d.subsec_micros()).to_ne_bytes());
    out
}

/// `setsockopt(level, name, val)`.
pub fn set(net: &mut Net, id: u64, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
    let sock = net.sock(id)?;
    let is_tcp = matches!(sock.kind, Kind::Tcp(_));
    match (level, name) {
        (libc::SOL_SOCKET, libc::SO_REUSEADDR) => sock.opts.reuse_addr = int_of(val)? != 0,
        (libc::SOL_SOCKET, libc::SO_REUSEPORT) => sock.opts.reuse_port = int_of(val)? != 0,
        (libc::SOL_SOCKET, libc::SO_KEEPALIVE) => sock.opts.keep_alive = int_of(val)? != 0,
        (libc::SOL_SOCKET, libc::SO_BROADCAST) => sock.opts.broadcast = int_of(val)? != 0,
        (libc::SOL_SOCKET, libc::SO_RCVBUF) => {
            sock.opts.rcv_buf = (int_of(val)?.max(0) as usize).clamp(BUFFER_RANGE.0, BUFFER_RANGE.1)
        }
        (libc::SOL_SOCKET, libc::SO_SNDBUF) => {
            sock.opts.snd_buf = (int_of(val)?.max(0) as usize).clamp(BUFFER_RANGE.0, BUFFER_RANGE.1)
        }
        (libc::SOL_SOCKET, libc::SO_RCVTIMEO) => {
            sock.opts.rcv_timeout = timeout_of(val)?;
            sock.recv_deadline = None;
        }
        (libc::SOL_SOCKET, libc::SO_SNDTIMEO) => {
            sock.opts.snd_timeout = timeout_of(val)?;
            sock.send_deadline = None;
        }
        // No lingering close: accepted, as apps set it routinely.
        (libc::SOL_SOCKET, libc::SO_LINGER) if val.len() >= 8 => {}
        (libc::IPPROTO_TCP, libc::TCP_NODELAY) if is_tcp => sock.opts.no_delay = int_of(val)? != 0,
        (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE | libc::TCP_KEEPINTVL | libc::TCP_KEEPCNT) if is_tcp => {
            int_of(val)?;
        }
        (libc::IPPROTO_IP, libc::IP_TTL) => {
            let ttl = int_of(val)?;
            sock.opts.ttl = u8::try_from(ttl).ok().filter(|t| *t > 0).ok_or(Errno::EINVAL)?;
        }
        (libc::IPPROTO_IP, libc::IP_TOS) => {
            int_of(val)?;
        }
        _ => return Err(Errno::ENOPROTOOPT),
    }
    // TCP settings apply to the connection (or the listener's sockets) at once.
    let sock = net.sock(id)?;
    let opts = sock.opts;
    let handles: std::vec::Vec<_> = match &sock.kind {
        Kind::Tcp(Tcp::Stream(stream)) => std::vec![stream.handle],
        Kind::Tcp(Tcp::Listening(listener)) => listener.sockets.clone(),
        _ => std::vec::Vec::new(),
    };
    for handle in handles {
        apply_tcp_options(net.stack.sockets.get_mut::<tcp::Socket>(handle), &opts);
    }
    Ok(())
}

/// `getsockopt(level, name)`: the value's bytes (the glue copies what fits).
pub fn get(net: &mut Net, id: u64, level: i32, name: i32) -> Result<std::vec::Vec<u8>, Errno> {
    let sock = net.sock(id)?;
    let is_tcp = matches!(sock.kind, Kind::Tcp(_));
    let int = |v: i32| Ok(v.to_ne_bytes().to_vec());
    match (level, name) {
        (libc::SOL_SOCKET, libc::SO_ERROR) => int(sock.error.take().map_or(0, Errno::raw)),
        (libc::SOL_SOCKET, libc::SO_TYPE) => int(if is_tcp { libc::SOCK_STREAM } else { libc::SOCK_DGRAM }),
        (libc::SOL_SOCKET, libc::SO_DOMAIN) => int(libc::AF_INET),
        (libc::SOL_SOCKET, libc::SO_PROTOCOL) => int(if is_tcp { libc::IPPROTO_TCP } else { libc::IPPROTO_UDP }),
        (libc::SOL_SOCKET, libc::SO_ACCEPTCONN) => int(matches!(sock.kind, Kind::Tcp(Tcp::Listening(_))) as i32),
        (libc::SOL_SOCKET, libc::SO_REUSEADDR) => int(sock.opts.reuse_addr as i32),
        (libc::SOL_SOCKET, libc::SO_REUSEPORT) => int(sock.opts.reuse_port as i32),
        (libc::SOL_SOCKET, libc::SO_KEEPALIVE) => int(sock.opts.keep_alive as i32),
        (libc::SOL_SOCKET, libc::SO_BROADCAST) => int(sock.opts.broadcast as i32),
        (libc::SOL_SOCKET, libc::SO_RCVBUF) => int(sock.opts.rcv_buf as i32),
        (libc::SOL_SOCKET, libc::SO_SNDBUF) => int(sock.opts.snd_buf as i32),
        (libc::SOL_SOCKET, libc::SO_RCVTIMEO) => Ok(timeval(sock.opts.rcv_timeout)),
        (libc::SOL_SOCKET, libc::SO_SNDTIMEO) => Ok(timeval(sock.opts.snd_timeout)),
        (libc::SOL_SOCKET, libc::SO_LINGER) => Ok([0u8; 8].to_vec()),
        (libc::IPPROTO_TCP, libc::TCP_NODELAY) if is_tcp => int(sock.opts.no_delay as i32),
        (libc::IPPROTO_TCP, libc::TCP_MAXSEG) if is_tcp => int(1460),
        (libc::IPPROTO_IP, libc::IP_TTL) => int(i32::from(sock.opts.ttl)),
        (libc::IPPROTO_IP, libc::IP_TOS) => int(0),
        _ => Err(Errno::ENOPROTOOPT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_as_struct_timeval_and_zero_means_none() {
        let tv = |s: i64, us: i64| [s.to_ne_bytes(), us.to_ne_bytes()].concat();
        assert_eq!(timeout_of(&tv(1, 500_000)), Ok(Some(Duration::from_millis(1500))));
        assert_eq!(timeout_of(&tv(0, 0)), Ok(None));
        assert_eq!(timeout_of(&tv(0, 1_000_000)), Err(Errno::EDOM));
        assert_eq!(timeout_of(&tv(0, 0)[..8]), Err(Errno::EINVAL));
        assert_eq!(timeval(Some(Duration::from_millis(2500))), tv(2, 500_000));
    }

    #[test]
    fn int_values_need_four_bytes() {
        assert_eq!(int_of(&1i32.to_ne_bytes()), Ok(1));
        assert_eq!(int_of(&[1, 0]), Err(Errno::EINVAL));
    }
}
