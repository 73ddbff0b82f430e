//! The values boot arguments parse into ([`FromArg`]), and the check that an address is
//! usable as a host's ([`Ipv4Cidr`]).

use alloc::string::{String, ToString};
use core::str::FromStr;

/// A type a boot argument value can be parsed into.
pub trait FromArg: Sized {
    /// Describes the expected form, for error messages (`"a number 0..=65535"`).
    fn expected() -> String;
    /// Parses the value, or `None` if malformed.
    fn from_arg(value: &str) -> Option<Self>;
    /// Why a well-formed value still cannot be used, if it cannot (checked by
    /// [`BootArgs`] after [`from_arg`](Self::from_arg) succeeded). The default accepts
    /// every value.
    fn unusable(&self) -> Option<String> {
        None
    }
}

macro_rules! from_arg_via_fromstr {
    ($($ty:ty => $what:expr),* $(,)?) => {$(
        impl FromArg for $ty {
            fn expected() -> String { $what.to_string() }
            fn from_arg(value: &str) -> Option<Self> { <$ty>::from_str(value).ok() }
        }
    )*};
}

from_arg_via_fromstr! {
    u8 => "an integer 0..=255",
    u16 => "an integer 0..=65535",
    u32 => "an integer 0..=4294967295",
    u64 => "a non-negative integer",
    usize => "a non-negative integer",
    i32 => "an integer",
    String => "a string",
}

impl FromArg for bool {
    fn expected() -> String {
        "true or false".to_string()
    }
    fn from_arg(value: &str) -> Option<Self> {
        match value {
            "true" | "yes" | "1" => Some(true),
            "false" | "no" | "0" => Some(false),
            _ => None,
        }
    }
}

impl FromArg for smoltcp::wire::Ipv4Address {
    fn expected() -> String {
        "an IPv4 address like 10.0.0.2".to_string()
    }
    fn from_arg(value: &str) -> Option<Self> {
        parse_ipv4(value)
    }
}

/// An IPv4 address with a prefix length, as in `10.0.0.2/24`: an interface's address.
///
/// As a boot argument it must be usable as a host's address, so [`BootArgs`] refuses
/// (with [`ArgError::Unusable`]) `0.0.0.0`, `255.255.255.255`, multicast addresses
/// (`224.0.0.0/4`), and, for prefixes up to /30, the subnet's network and broadcast
/// addresses (`10.0.0.0/24`, `10.0.0.255/24`). /31 and /32 have no such addresses
/// (RFC 3021). [`Ipv4Cidr::host_problem`] is the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Cidr {
    /// The address.
    pub address: smoltcp::wire::Ipv4Address,
    /// The prefix length, 0..=32.
    pub prefix_len: u8,
}

impl FromArg for Ipv4Cidr {
    fn expected() -> String {
        "an IPv4 address with prefix like 10.0.0.2/24".to_string()
    }
    fn from_arg(value: &str) -> Option<Self> {
        let (addr, len) = value.split_once('/')?;
        let prefix_len: u8 = len.parse().ok()?;
        if prefix_len > 32 {
            return None;
        }
        Some(Ipv4Cidr { address: parse_ipv4(addr)?, prefix_len })
    }
    fn unusable(&self) -> Option<String> {
        self.host_problem()
    }
}

impl Ipv4Cidr {
    /// Why this cannot be a host's address, or `None` if it can (see the type's docs).
    pub fn host_problem(&self) -> Option<String> {
        let a = self.address;
        let bits = u32::from_be_bytes(a.octets());
        let generic = if a.is_unspecified() {
            Some("the unspecified address")
        } else if a.is_broadcast() {
            Some("the limited broadcast address")
        } else if a.is_multicast() {
            Some("a multicast address")
        } else {
            None
        };
        if let Some(what) = generic {
            return Some(alloc::format!("{a} is {what}, not a host address (like 10.0.0.2/24)"));
        }
        if self.prefix_len <= 30 {
            let host_mask = u32::MAX.checked_shr(u32::from(self.prefix_len)).unwrap_or(0);
            let network = smoltcp::wire::Ipv4Address::from_bits(bits & !host_mask);
            let which = match bits & host_mask {
                0 => Some("network"),
                h if h == host_mask => Some("broadcast"),
                _ => None,
            };
            if let Some(which) = which {
                return Some(alloc::format!(
                    "{a} is the {which} address of {network}/{}, not a host address in it",
                    self.prefix_len
                ));
            }
        }
        None
    }
}

impl From<Ipv4Cidr> for smoltcp::wire::IpCidr {
    fn from(c: Ipv4Cidr) -> Self {
        smoltcp::wire::IpCidr::new(smoltcp::wire::IpAddress::Ipv4(c.address), c.prefix_len)
    }
}

fn parse_ipv4(s: &str) -> Option<smoltcp::wire::Ipv4Address> {
    let mut octets = [0u8; 4];
    let mut parts = s.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *octet = part.parse().ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(smoltcp::wire::Ipv4Address::from_octets(octets))
}
