//! The socket layer's IPv4 address.
//!
//! A std app's boot arguments belong to the app, not to this driver, so the address comes
//! from elsewhere, in this order:
//!
//! 1. Unikraft's `netdev.ip=<cidr>:<gw>:<dns>` kernel parameter (what urunc passes), which
//!    the device reports ([`NetDevice::assigned_ipv4`](shared_core::net::NetDevice::assigned_ipv4));
//!    `Stack::new` applies it and says so on the console;
//! 2. the environment variables [`ENV_IPV4`] (`10.0.0.2/24`) and [`ENV_GATEWAY`]
//!    (`10.0.0.1`), which Unikraft's `env.vars=[...]` kernel parameter sets at boot;
//! 3. the default, [`DEFAULT_CIDR`] with gateway [`DEFAULT_GATEWAY`]: what `cargo xtask run`
//!    and the tests give a guest (host side 10.0.0.1 on the TAP).
//!
//! The DNS server musl's resolver asks (std's `ToSocketAddrs`, `getaddrinfo`) is
//! `netdev.ip`'s third field, else [`ENV_DNS`], else the gateway ([`choose_dns`]). It is
//! written to `/etc/resolv.conf` at start, unless the app's filesystem already has one.

use shared_core::bootargs::Ipv4Cidr;
use shared_core::net::Ipv4Assignment;
use smoltcp::wire::Ipv4Address;

/// The variable naming the address and prefix, like `10.0.0.2/24`.
pub const ENV_IPV4: &str = "RT_UNIKRAFT_IPV4";
/// The variable naming the default gateway, like `10.0.0.1`.
pub const ENV_GATEWAY: &str = "RT_UNIKRAFT_GATEWAY";

/// The variable naming the DNS server, like `10.0.0.1`.
pub const ENV_DNS: &str = "RT_UNIKRAFT_DNS";

/// The address used when nothing else gives one.
pub const DEFAULT_CIDR: Ipv4Cidr = Ipv4Cidr { address: Ipv4Address::new(10, 0, 0, 2), prefix_len: 24 };
/// The gateway used with [`DEFAULT_CIDR`].
pub const DEFAULT_GATEWAY: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);

/// Where the address came from, for the console line at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// [`ENV_IPV4`].
    Environment,
    /// The built-in default.
    Default,
}

/// The address from the two variables' values (`None` when unset), else the default.
/// A malformed value is an error that names the variable: an address nobody asked for is
/// worse than no network. (`netdev.ip` is applied later, by `Stack::new`, and wins.)
pub fn choose(ipv4: Option<&str>, gateway: Option<&str>) -> Result<(Ipv4Assignment, Source), String> {
    match ipv4 {
        None if gateway.is_some() => Err(format!("{ENV_GATEWAY} is set but {ENV_IPV4} is not: set both, or neither")),
        None => Ok((Ipv4Assignment { cidr: DEFAULT_CIDR, gateway: Some(DEFAULT_GATEWAY), dns: None }, Source::Default)),
        Some(cidr) => Ipv4Assignment::parse(cidr, gateway, None)
            .map(|a| (a, Source::Environment))
            .map_err(|e| format!("{ENV_IPV4}={cidr} {ENV_GATEWAY}={}: {e}", gateway.unwrap_or(""))),
    }
}

/// The DNS server: the platform's (`netdev.ip`), else [`ENV_DNS`]'s value, else the
/// gateway; with where it came from. A malformed [`ENV_DNS`] is an error naming it.
pub fn choose_dns(
    platform: Option<Ipv4Address>,
    env: Option<&str>,
    gateway: Option<Ipv4Address>,
) -> Result<Option<(Ipv4Address, &'static str)>, String> {
    if let Some(dns) = platform {
        return Ok(Some((dns, "netdev.ip")));
    }
    if let Some(text) = env {
        let dns: Ipv4Address = text.parse().map_err(|_| format!("{ENV_DNS}={text}: not an IPv4 address"))?;
        return Ok(Some((dns, ENV_DNS)));
    }
    Ok(gateway.map(|g| (g, "the gateway")))
}

/// `/etc/resolv.conf` naming `dns`.
pub fn resolv_conf(dns: Ipv4Address) -> String {
    format!("# written by rt-unikraft's socket layer at start\nnameserver {dns}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_what_the_tools_give_a_guest() {
        let (a, source) = choose(None, None).unwrap();
        assert_eq!(source, Source::Default);
        assert_eq!(a.cidr.address, Ipv4Address::new(10, 0, 0, 2));
        assert_eq!(a.cidr.prefix_len, 24);
        assert_eq!(a.gateway, Some(Ipv4Address::new(10, 0, 0, 1)));
    }

    #[test]
    fn the_environment_overrides_the_default_and_is_checked() {
        let (a, source) = choose(Some("192.168.7.9/16"), Some("192.168.0.1")).unwrap();
        assert_eq!(source, Source::Environment);
        assert_eq!(a.cidr.address, Ipv4Address::new(192, 168, 7, 9));
        assert_eq!(a.gateway, Some(Ipv4Address::new(192, 168, 0, 1)));
        assert_eq!(choose(Some("192.168.7.9/16"), None).unwrap().0.gateway, None);
        let e = choose(Some("10.0.0.0/24"), None).unwrap_err();
        assert!(e.starts_with("RT_UNIKRAFT_IPV4=10.0.0.0/24"), "{e}");
        assert!(choose(Some("nonsense"), None).is_err());
        assert!(choose(None, Some("10.0.0.1")).unwrap_err().contains("set both"));
    }

    #[test]
    fn the_dns_server_is_the_platforms_else_the_environments_else_the_gateway() {
        let gw = Some(DEFAULT_GATEWAY);
        let dns = Ipv4Address::new(8, 8, 8, 8);
        assert_eq!(choose_dns(Some(dns), Some("1.1.1.1"), gw), Ok(Some((dns, "netdev.ip"))));
        assert_eq!(choose_dns(None, Some("1.1.1.1"), gw), Ok(Some((Ipv4Address::new(1, 1, 1, 1), ENV_DNS))));
        assert_eq!(choose_dns(None, None, gw), Ok(Some((DEFAULT_GATEWAY, "the gateway"))));
        assert_eq!(choose_dns(None, None, None), Ok(None));
        assert!(choose_dns(None, Some("dns.example"), gw).unwrap_err().starts_with("RT_UNIKRAFT_DNS=dns.example"));
        assert!(resolv_conf(dns).contains("\nnameserver 8.8.8.8\n"));
    }
}
