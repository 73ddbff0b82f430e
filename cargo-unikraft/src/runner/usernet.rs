//! Published ports (`cargo unikraft run -p [HOSTIP:]HOST:GUEST[/udp]`): the guest's net
//! device on QEMU's user-mode networking (libslirp), with a host forward per port. No
//! root, no TAP: QEMU itself listens on the host port and relays each connection (or
//! datagram) to the guest.
//!
//! slirp's network is fixed here (and said explicitly on QEMU's command line, so a QEMU
//! with other defaults cannot make the two disagree): the guest is [`GUEST_ADDRESS`] in
//! 10.0.2.0/24, the gateway (which is also the host, as seen from the guest) 10.0.2.2, the
//! DNS relay 10.0.2.3. The guest is told through Unikraft's `netdev.ip=` kernel parameter,
//! as urunc tells it, which both rt-unikraft's socket driver and `unikernel::net::Stack`
//! prefer over the app's own address.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::str::FromStr;

use anyhow::{bail, Result};

/// The guest's address on slirp's network.
pub const GUEST_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
/// slirp's network, the host's address on it (the gateway) and its DNS relay.
const NETWORK: &str = "10.0.2.0/24";
const GATEWAY: &str = "10.0.2.2";
const DNS: &str = "10.0.2.3";

/// The kernel parameter that gives the guest its address, gateway and DNS server.
pub fn netdev_ip_param() -> String {
    format!("netdev.ip={GUEST_ADDRESS}/24:{GATEWAY}:{DNS}")
}

/// A port's transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// One `-p` spec: the host's address and port forwarded to the guest's port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishedPort {
    /// Where QEMU listens on the host: 127.0.0.1 unless the spec names an address (so an
    /// app is not exposed to the whole network by accident).
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub guest_port: u16,
    pub protocol: Protocol,
}

/// What `-p` accepts, for errors.
pub const PUBLISH_FORMAT: &str = "[HOSTIP:]HOSTPORT:GUESTPORT[/tcp|/udp], like 8080:80 or 127.0.0.1:5353:53/udp";

impl FromStr for PublishedPort {
    type Err = String;

    /// `[HOSTIP:]HOST:GUEST[/tcp|/udp]`; clap puts the flag's name before the message.
    fn from_str(spec: &str) -> Result<Self, String> {
        let wrong = |why: &str| format!("{why}; expected {PUBLISH_FORMAT}");
        let (ports, protocol) = match spec.rsplit_once('/') {
            Some((ports, "tcp")) => (ports, Protocol::Tcp),
            Some((ports, "udp")) => (ports, Protocol::Udp),
            Some((_, other)) => return Err(wrong(&format!("`{other}` is not a protocol (tcp or udp)"))),
            None => (spec, Protocol::Tcp),
        };
        let fields: Vec<&str> = ports.split(':').collect();
        let (host_ip, host_port, guest_port) = match fields.as_slice() {
            [host, guest] => (Ipv4Addr::LOCALHOST, *host, *guest),
            [ip, host, guest] => {
                let ip = ip
                    .parse::<Ipv4Addr>()
                    .map_err(|_| wrong(&format!("`{ip}` is not an IPv4 address of this host")))?;
                (ip, *host, *guest)
            }
            [_] => return Err(wrong("a host port and a guest port are needed")),
            _ => return Err(wrong("too many `:` (IPv6 host addresses are not supported)")),
        };
        let port = |what: &str, text: &str| match text.parse::<u16>() {
            Ok(0) => Err(wrong(&format!("the {what} port must be 1..=65535, not 0"))),
            Ok(port) if text.bytes().all(|b| b.is_ascii_digit()) => Ok(port),
            _ => Err(wrong(&format!("the {what} port `{text}` is not a number in 1..=65535"))),
        };
        Ok(PublishedPort {
            host_ip,
            host_port: port("host", host_port)?,
            guest_port: port("guest", guest_port)?,
            protocol,
        })
    }
}

impl fmt::Display for PublishedPort {
    /// The spec as `-p` takes it, always in full.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}/{}", self.host_ip, self.host_port, self.guest_port, self.protocol.name())
    }
}

impl PublishedPort {
    /// QEMU's `hostfwd=` value for this port.
    fn hostfwd(&self) -> String {
        format!(
            "hostfwd={}:{}:{}-{GUEST_ADDRESS}:{}",
            self.protocol.name(),
            self.host_ip,
            self.host_port,
            self.guest_port
        )
    }

    /// Where the app is reached, for the line `cargo unikraft run` prints.
    pub fn reach_line(&self) -> String {
        format!(
            "reach the app at {}:{} ({}) -> guest {GUEST_ADDRESS}:{}",
            self.host_ip,
            self.host_port,
            self.protocol.name(),
            self.guest_port
        )
    }

    /// Binds the host port (and lets it go) to learn whether QEMU will be able to.
    fn check_free(&self) -> Result<()> {
        let addr = SocketAddrV4::new(self.host_ip, self.host_port);
        let bound = match self.protocol {
            Protocol::Tcp => TcpListener::bind(addr).map(drop),
            Protocol::Udp => UdpSocket::bind(addr).map(drop),
        };
        match bound {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => bail!(
                "-p {self}: the host port {addr} ({}) is already in use; choose another host port",
                self.protocol.name()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => bail!(
                "-p {self}: binding the host port {addr} is not allowed for this user ({e}); ports below \
                 1024 need root (or a lower net.ipv4.ip_unprivileged_port_start): choose a host port of 1024 or more"
            ),
            Err(e) => bail!("-p {self}: cannot bind the host port {addr} ({}): {e}", self.protocol.name()),
        }
    }
}

/// Refuses a list with the same host port twice (QEMU would fail on the second forward).
pub fn check_distinct(ports: &[PublishedPort]) -> Result<()> {
    for (i, a) in ports.iter().enumerate() {
        if let Some(b) = ports[..i].iter().find(|b| b.host_port == a.host_port && b.protocol == a.protocol) {
            bail!("-p {b} and -p {a}: the same host port is published twice");
        }
    }
    Ok(())
}

/// Checks before QEMU starts that every host port can be bound, so a port in use is a
/// clear error and nothing is started. (QEMU's own failure, should another process take
/// the port in between, is recognised by [`hostfwd_failure`].)
pub fn check_host_ports_free(ports: &[PublishedPort]) -> Result<()> {
    check_distinct(ports)?;
    ports.iter().try_for_each(PublishedPort::check_free)
}

/// QEMU's `-netdev` value: user-mode networking with a forward per published port.
pub fn netdev_arg(ports: &[PublishedPort]) -> String {
    let mut arg = format!("user,id=n0,net={NETWORK},host={GATEWAY},dns={DNS}");
    for port in ports {
        arg.push(',');
        arg.push_str(&port.hostfwd());
    }
    arg
}

/// The error for a QEMU that failed to set up a forward (its console says so), naming the
/// `-p` spec; `None` when the console shows no such failure.
pub fn hostfwd_failure(ports: &[PublishedPort], console: &str) -> Option<String> {
    // QEMU 7.2: "Could not set up host forwarding rule 'tcp:127.0.0.1:8080-10.0.2.15:80'".
    let line = console.lines().find(|l| l.contains("Could not set up host forwarding rule"))?;
    let culprit = ports.iter().find(|p| line.contains(&format!(":{}:{}-", p.host_ip, p.host_port)));
    let spec = culprit.map_or_else(|| "-p".to_string(), |p| format!("-p {p}"));
    Some(format!(
        "{spec}: QEMU could not listen on the host port (in use by another process?), so the guest was not \
         started; QEMU said: {}",
        line.trim()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(spec: &str) -> PublishedPort {
        spec.parse().unwrap_or_else(|e| panic!("{spec}: {e}"))
    }

    #[test]
    fn specs_parse_with_localhost_and_tcp_as_defaults() {
        let p = parse("8080:80");
        assert_eq!((p.host_ip, p.host_port, p.guest_port, p.protocol), (Ipv4Addr::LOCALHOST, 8080, 80, Protocol::Tcp));
        assert_eq!(parse("8080:80/tcp"), p);
        let p = parse("0.0.0.0:5353:53/udp");
        assert_eq!(
            (p.host_ip, p.host_port, p.guest_port, p.protocol),
            (Ipv4Addr::UNSPECIFIED, 5353, 53, Protocol::Udp)
        );
        assert_eq!(p.to_string(), "0.0.0.0:5353:53/udp");
    }

    #[test]
    fn bad_specs_are_refused_with_the_reason() {
        for (spec, why) in [
            ("8080", "a host port and a guest port are needed"),
            ("", "a host port and a guest port are needed"),
            ("8080:", "the guest port `` is not a number"),
            (":80", "the host port `` is not a number"),
            ("0:80", "the host port must be 1..=65535, not 0"),
            ("8080:0", "the guest port must be 1..=65535, not 0"),
            ("65536:80", "the host port `65536` is not a number in 1..=65535"),
            ("+8080:80", "the host port `+8080` is not a number"),
            ("http:80", "the host port `http` is not a number"),
            ("8080:80/sctp", "`sctp` is not a protocol"),
            ("8080:80/", "`` is not a protocol"),
            ("localhost:8080:80", "`localhost` is not an IPv4 address"),
            ("::1:8080:80", "too many `:`"),
            ("1.2.3.4:1:2:3", "too many `:`"),
        ] {
            let err = spec.parse::<PublishedPort>().expect_err(spec);
            assert!(err.contains(why) && err.contains(PUBLISH_FORMAT), "{spec}: {err}");
        }
    }

    #[test]
    fn the_netdev_forwards_each_port_to_the_guest_address() {
        let ports = [parse("8080:80"), parse("0.0.0.0:5353:53/udp")];
        assert_eq!(
            netdev_arg(&ports),
            "user,id=n0,net=10.0.2.0/24,host=10.0.2.2,dns=10.0.2.3,\
             hostfwd=tcp:127.0.0.1:8080-10.0.2.15:80,hostfwd=udp:0.0.0.0:5353-10.0.2.15:53"
        );
        assert_eq!(netdev_ip_param(), "netdev.ip=10.0.2.15/24:10.0.2.2:10.0.2.3");
        assert_eq!(ports[0].reach_line(), "reach the app at 127.0.0.1:8080 (tcp) -> guest 10.0.2.15:80");
    }

    #[test]
    fn a_host_port_published_twice_is_refused() {
        let err = check_distinct(&[parse("8080:80"), parse("8080:81")]).unwrap_err().to_string();
        assert!(err.contains("-p 127.0.0.1:8080:80/tcp and -p 127.0.0.1:8080:81/tcp"), "{err}");
        // The same number over TCP and UDP is two ports.
        check_distinct(&[parse("8080:80"), parse("8080:80/udp")]).unwrap();
    }

    /// A real listener on the port: the check refuses it naming the spec, for TCP and UDP.
    #[test]
    fn a_host_port_in_use_is_refused_naming_the_spec() {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        let err = check_host_ports_free(&[parse(&format!("{port}:80"))]).unwrap_err().to_string();
        assert!(err.contains(&format!("-p 127.0.0.1:{port}:80/tcp")) && err.contains("already in use"), "{err}");
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        let err = check_host_ports_free(&[parse(&format!("{port}:53/udp"))]).unwrap_err().to_string();
        assert!(err.contains("already in use"), "{err}");
        drop((tcp, udp));
    }

    #[test]
    fn qemus_forwarding_failure_names_the_spec() {
        let ports = [parse("8080:80"), parse("9090:90")];
        let console = "qemu-system-x86_64: -netdev user,...: Could not set up host forwarding rule \
                       'tcp:127.0.0.1:9090-10.0.2.15:90'\n";
        let err = hostfwd_failure(&ports, console).unwrap();
        assert!(err.starts_with("-p 127.0.0.1:9090:90/tcp: QEMU could not listen"), "{err}");
        assert!(hostfwd_failure(&ports, "SeaBIOS\n").is_none());
    }
}
