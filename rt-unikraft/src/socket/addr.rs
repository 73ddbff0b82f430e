//! `struct sockaddr_in` to and from smoltcp's endpoints, over plain bytes.
//!
//! The glue passes an address as its bytes and their length (what the app gave), so
//! nothing here reads past what the caller owns. Linux's (and musl's) layout: a 16-byte
//! `sockaddr_in` of family (native-endian `u16`), port and address (network order), and
//! eight bytes of zero.

use crate::socket::Errno;
use smoltcp::wire::{IpAddress, IpEndpoint, Ipv4Address};

/// `sizeof(struct sockaddr_in)`.
pub const SOCKADDR_IN_LEN: usize = 16;

/// What the app's address bytes say, or the errno for why they are unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SockAddr {
    /// An IPv4 address and port (`0.0.0.0` and port 0 included).
    Inet(Ipv4Address, u16),
    /// `AF_UNSPEC`: on a datagram socket's `connect`, "forget the peer".
    Unspec,
}

/// Reads an address the app passed. `-EINVAL` when it is shorter than a `sockaddr_in`,
/// `-EAFNOSUPPORT` for another family (IPv6 is not supported).
pub fn parse(bytes: &[u8]) -> Result<SockAddr, Errno> {
    if bytes.len() < 2 {
        return Err(Errno::EINVAL);
    }
    let family = i32::from(u16::from_ne_bytes([bytes[0], bytes[1]]));
    if family == libc::AF_UNSPEC {
        return Ok(SockAddr::Unspec);
    }
    if family != libc::AF_INET {
        return Err(Errno::EAFNOSUPPORT);
    }
    if bytes.len() < SOCKADDR_IN_LEN {
        return Err(Errno::EINVAL);
    }
    let port = u16::from_be_bytes([bytes[2], bytes[3]]);
    Ok(SockAddr::Inet(Ipv4Address::new(bytes[4], bytes[5], bytes[6], bytes[7]), port))
}

/// The `sockaddr_in` bytes for an address and port.
pub fn encode(addr: Ipv4Address, port: u16) -> [u8; SOCKADDR_IN_LEN] {
    let mut out = [0u8; SOCKADDR_IN_LEN];
    out[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
    out[2..4].copy_from_slice(&port.to_be_bytes());
    out[4..8].copy_from_slice(&addr.octets());
    out
}

/// The `sockaddr_in` bytes for a smoltcp endpoint (only IPv4 is configured).
pub fn encode_endpoint(endpoint: IpEndpoint) -> [u8; SOCKADDR_IN_LEN] {
    let IpAddress::Ipv4(addr) = endpoint.addr;
    encode(addr, endpoint.port)
}

/// Copies an encoded address into the app's buffer as `getsockname` does: at most
/// `capacity` bytes (truncating silently), and returns the full length to report.
pub fn write_to(encoded: &[u8; SOCKADDR_IN_LEN], out: &mut [u8]) -> usize {
    let n = out.len().min(SOCKADDR_IN_LEN);
    out[..n].copy_from_slice(&encoded[..n]);
    SOCKADDR_IN_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_round_trips_through_its_bytes() {
        let bytes = encode(Ipv4Address::new(10, 0, 0, 1), 7);
        assert_eq!(&bytes[2..8], &[0, 7, 10, 0, 0, 1]);
        assert_eq!(parse(&bytes), Ok(SockAddr::Inet(Ipv4Address::new(10, 0, 0, 1), 7)));
        // Longer buffers (a sockaddr_storage) are fine.
        let mut storage = [0u8; 128];
        storage[..16].copy_from_slice(&bytes);
        assert_eq!(parse(&storage), Ok(SockAddr::Inet(Ipv4Address::new(10, 0, 0, 1), 7)));
    }

    #[test]
    fn short_or_foreign_addresses_are_refused_with_their_errno() {
        assert_eq!(parse(&[]), Err(Errno::EINVAL));
        assert_eq!(parse(&encode(Ipv4Address::new(1, 2, 3, 4), 1)[..15]), Err(Errno::EINVAL));
        let mut v6 = [0u8; 28];
        v6[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        assert_eq!(parse(&v6), Err(Errno::EAFNOSUPPORT));
        let unspec = (libc::AF_UNSPEC as u16).to_ne_bytes();
        assert_eq!(parse(&unspec), Ok(SockAddr::Unspec));
    }

    #[test]
    fn writing_truncates_to_the_callers_buffer_and_reports_the_full_length() {
        let bytes = encode(Ipv4Address::new(192, 168, 1, 2), 8080);
        let mut small = [0u8; 4];
        assert_eq!(write_to(&bytes, &mut small), SOCKADDR_IN_LEN);
        assert_eq!(small, bytes[..4]);
        let mut big = [0xffu8; 20];
        assert_eq!(write_to(&bytes, &mut big), SOCKADDR_IN_LEN);
        assert_eq!(&big[..16], &bytes);
        assert_eq!(big[16], 0xff);
    }
}
