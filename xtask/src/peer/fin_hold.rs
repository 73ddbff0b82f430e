//! Peers that never acknowledge (`xtask peer fin-hold`): connections that send a request
//! and its end, then let the server's answer and FIN go unacknowledged, so the server is
//! left with closing connections it cannot finish. A firewall rule in the peer's own
//! namespace eats their acknowledgements; it knows them by their source ports.

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// The source ports [`fin_hold`] connects from: a test's firewall rule recognises this
/// client's packets by them (see [`FIN_HOLD_DROP_RULE`]).
pub const FIN_HOLD_PORTS: std::ops::Range<u16> = 40000..45000;

/// The `iptables` rule (in the OUTPUT chain of the namespace the peer runs in) that makes
/// [`fin_hold`]'s connections never acknowledge anything the server sends: it drops every
/// packet of theirs with neither SYN nor FIN and no payload (bare ACKs, resets). Their
/// requests carry more than 100 bytes and their FINs have the flag, so the server gets
/// the whole request and its end, answers, closes, and waits for acknowledgements that
/// never come.
const FIN_HOLD_DROP_RULE: &[&str] = &[
    "OUTPUT",
    "-p",
    "tcp",
    "--sport",
    "40000:44999",
    "--tcp-flags",
    "FIN,SYN",
    "NONE",
    "-m",
    "length",
    "--length",
    "0:100",
    "-j",
    "DROP",
];

/// [`FIN_HOLD_DROP_RULE`] while it lives: added on creation, deleted on drop.
struct DropRule;

impl DropRule {
    fn add() -> Result<DropRule> {
        let status = std::process::Command::new("iptables")
            .arg("-A")
            .args(FIN_HOLD_DROP_RULE)
            .status()
            .context("run iptables (apt-get install iptables)")?;
        if !status.success() {
            bail!("iptables could not add the drop rule ({status}); run inside a network namespace, as root");
        }
        Ok(DropRule)
    }
}

impl DropRule {
    /// How many packets the rule has dropped so far (iptables' counter).
    fn dropped(&self) -> Result<u64> {
        let out = std::process::Command::new("iptables").args(["-L", "OUTPUT", "-v", "-x", "-n"]).output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().find(|l| l.contains("DROP") && l.contains("40000:44999"));
        line.and_then(|l| l.split_whitespace().next()?.parse().ok())
            .with_context(|| format!("no drop rule among the OUTPUT rules:\n{text}"))
    }
}

impl Drop for DropRule {
    fn drop(&mut self) {
        let _ = std::process::Command::new("iptables").arg("-D").args(FIN_HOLD_DROP_RULE).status();
    }
}

/// Connections that send a request and then never acknowledge the server's answer or
/// its FIN (with [`FIN_HOLD_DROP_RULE`] in place), `per_second` of them for `seconds`,
/// each from its own port of [`FIN_HOLD_PORTS`]: every one leaves the server a closing
/// connection that its peer never lets finish. Returns how many connected, and how many
/// of their packets (acknowledgements, resets) the rule dropped.
pub fn fin_hold(guest: &str, port: u16, seconds: u64, per_second: u64) -> Result<(u64, u64)> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let rule = DropRule::add()?;
    let target: std::net::SocketAddr = format!("{guest}:{port}").parse()?;
    // Longer than the drop rule's 100 bytes, so the request itself gets through.
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {guest}\r\nUser-Agent: fin-hold{}\r\nConnection: close\r\n\r\n",
        " ".repeat(64)
    );
    let interval = Duration::from_micros(1_000_000 / per_second.max(1));
    let end = std::time::Instant::now() + Duration::from_secs(seconds);
    let mut held = Vec::new();
    let mut connected = 0u64;
    for source_port in FIN_HOLD_PORTS {
        if std::time::Instant::now() >= end {
            break;
        }
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        // A port still held by an earlier run's connection is skipped.
        if socket.bind(&SockAddr::from(std::net::SocketAddr::from(([0, 0, 0, 0], source_port)))).is_err() {
            continue;
        }
        if socket.connect_timeout(&SockAddr::from(target), Duration::from_secs(2)).is_ok() {
            connected += 1;
            let mut stream = TcpStream::from(socket);
            let _ = stream.write_all(request.as_bytes());
            // The request and its end reach the server; its answer and FIN are never acknowledged.
            let _ = stream.shutdown(Shutdown::Write);
            held.push(stream);
        }
        std::thread::sleep(interval);
    }
    // The server's retransmissions keep arriving unacknowledged while the rule stands.
    std::thread::sleep(Duration::from_secs(1));
    drop(held);
    Ok((connected, rule.dropped()?))
}
