//! An IPv4 configuration the platform hands a net device, which the app did not choose:
//! Unikraft's `netdev.ip=<cidr>:<gw>:<dns>` kernel parameter, as orchestrators such as
//! urunc pass it (the pod's address, statically). A backend reads it
//! ([`NetDevice::assigned_ipv4`](super::NetDevice::assigned_ipv4)); [`Stack::new`](super::Stack::new)
//! prefers it over the address in the app's [`StackConfig`](super::StackConfig), which is
//! usually a boot-argument default.

use alloc::format;
use alloc::string::String;

use smoltcp::wire::Ipv4Address;

use crate::bootargs::{FromArg, Ipv4Cidr};

/// The platform's IPv4 configuration for one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Assignment {
    /// The interface's address and prefix.
    pub cidr: Ipv4Cidr,
    /// The default gateway, if given.
    pub gateway: Option<Ipv4Address>,
    /// The primary DNS server, if given.
    pub dns: Option<Ipv4Address>,
}

impl Ipv4Assignment {
    /// Parses the platform's strings (`10.0.0.2/24`, `10.0.0.1`, `8.8.8.8`). An address
    /// that cannot be a host's, or a malformed field, is an error naming the field: the
    /// backend reports it instead of running with an address nobody asked for.
    pub fn parse(cidr: &str, gateway: Option<&str>, dns: Option<&str>) -> Result<Self, String> {
        let parsed =
            Ipv4Cidr::from_arg(cidr).ok_or_else(|| format!("netdev.ip: `{cidr}` is not {}", Ipv4Cidr::expected()))?;
        if let Some(problem) = parsed.host_problem() {
            return Err(format!("netdev.ip: {problem}"));
        }
        let address = |what: &str, value: Option<&str>| -> Result<Option<Ipv4Address>, String> {
            value
                .map(|v| {
                    Ipv4Address::from_arg(v)
                        .ok_or_else(|| format!("netdev.ip: the {what} `{v}` is not an IPv4 address"))
                })
                .transpose()
        };
        Ok(Ipv4Assignment { cidr: parsed, gateway: address("gateway", gateway)?, dns: address("DNS server", dns)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_assignment_parses() {
        let a = Ipv4Assignment::parse("10.0.0.77/24", Some("10.0.0.1"), Some("8.8.8.8")).unwrap();
        assert_eq!(a.cidr, Ipv4Cidr { address: Ipv4Address::new(10, 0, 0, 77), prefix_len: 24 });
        assert_eq!(a.gateway, Some(Ipv4Address::new(10, 0, 0, 1)));
        assert_eq!(a.dns, Some(Ipv4Address::new(8, 8, 8, 8)));
        assert_eq!(Ipv4Assignment::parse("10.0.0.77/24", None, None).unwrap().gateway, None);
    }

    /// A device with nothing to send or receive, and a platform-assigned address.
    struct AssignedDevice(Option<Ipv4Assignment>);

    impl crate::net::NetDevice for AssignedDevice {
        fn info(&self) -> crate::net::NetInfo {
            crate::net::NetInfo { mac: [2, 0, 0, 0, 0, 9], max_frame: 1514, headroom: 0 }
        }
        fn receive(&mut self, _ctx: crate::net::RingContext<'_>) {}
        fn transmit(&mut self, _ctx: crate::net::RingContext<'_>) {}
        fn assigned_ipv4(&self) -> Option<Ipv4Assignment> {
            self.0
        }
    }

    #[test]
    fn the_stack_prefers_the_platforms_address_over_the_apps() {
        use crate::net::{Stack, StackConfig};
        use smoltcp::wire::IpCidr;
        let _lock = crate::test_platform::lock();
        let app = Ipv4Cidr { address: Ipv4Address::new(10, 0, 0, 2), prefix_len: 24 };
        let assigned = Ipv4Assignment::parse("10.9.0.77/16", Some("10.9.0.1"), None).unwrap();

        let mut stack = Stack::new(alloc::boxed::Box::new(AssignedDevice(Some(assigned))), StackConfig::new(app));
        assert_eq!(stack.iface.ip_addrs(), &[IpCidr::from(assigned.cidr)]);
        assert_eq!(stack.iface.ipv4_addr(), Some(Ipv4Address::new(10, 9, 0, 77)));
        let mut routes = 0;
        stack.iface.routes_mut().update(|table| routes = table.len());
        assert_eq!(routes, 1, "the platform's gateway is the default route");

        let stack = Stack::new(alloc::boxed::Box::new(AssignedDevice(None)), StackConfig::new(app));
        assert_eq!(stack.iface.ip_addrs(), &[IpCidr::from(app)]);
    }

    #[test]
    fn bad_fields_are_named() {
        for (cidr, gw, dns, needle) in [
            ("10.0.0.77", None, None, "`10.0.0.77` is not"),
            ("10.0.0.255/24", None, None, "not a host address"),
            ("10.0.0.77/24", Some("10.0.0"), None, "gateway `10.0.0`"),
            ("10.0.0.77/24", None, Some("dns.example"), "DNS server `dns.example`"),
        ] {
            let err = Ipv4Assignment::parse(cidr, gw, dns).unwrap_err();
            assert!(err.contains(needle) && err.starts_with("netdev.ip: "), "{err}");
        }
    }
}
