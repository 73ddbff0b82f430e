//! The host side of the network cases, run inside the namespace (`xtask peer ...`).

use crate::netns;
use anyhow::{bail, Context, Result};
use conformance_protocol::net::{self, TCP_BYTES};
use conformance_protocol::report::{Line, Status};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::time::Duration;

mod fin_hold;

const TIMEOUT: Duration = Duration::from_secs(20);

/// Prints a host case line, in the report's grammar.
fn pass(case: &str, detail: &str) {
    println!("{}", Line::Case { status: Status::Pass, case, detail });
}

/// The conformance exchange (see docs/architecture.md and `conformance_protocol::net`):
/// probe reply, UDP echo, TCP transfer.
pub fn conformance(host: &str, guest: &str) -> Result<()> {
    let probe = UdpSocket::bind((host, net::PROBE_PORT)).context("bind the probe port")?;
    probe.set_read_timeout(Some(TIMEOUT))?;
    let mut buf = [0u8; 2048];
    let (n, from) = probe.recv_from(&mut buf).context("no probe from the guest")?;
    if &buf[..n] != net::PROBE {
        bail!("unexpected probe payload {:?}", &buf[..n]);
    }
    probe.send_to(net::PROBE_ACK, from)?;
    pass("host.probe", &format!("answered the guest's probe from {from}"));

    let udp = UdpSocket::bind((host, 0))?;
    udp.set_read_timeout(Some(Duration::from_millis(500)))?;
    for i in 0..net::UDP_ECHO_DATAGRAMS {
        let msg = format!("echo-{i}");
        let mut ok = false;
        // The guest may still be on the ICMP case: retry until it echoes.
        for _ in 0..40 {
            udp.send_to(msg.as_bytes(), (guest, net::UDP_ECHO_PORT))?;
            if let Ok((n, _)) = udp.recv_from(&mut buf) {
                if &buf[..n] == msg.as_bytes() {
                    ok = true;
                    break;
                }
            }
        }
        if !ok {
            bail!("no echo for datagram {i}");
        }
    }
    pass("host.udp-echo", &format!("{} datagrams echoed verbatim", net::UDP_ECHO_DATAGRAMS));

    // The guest answers pings whenever it polls, which it does through every case.
    let ping = std::process::Command::new("ping").args(["-c", "3", "-W", "2", guest]).output();
    match ping {
        Ok(o) if o.status.success() => pass("host.icmp", "the guest answered 3 pings"),
        Ok(o) => bail!("ping {guest} failed: {}", String::from_utf8_lossy(&o.stdout).lines().last().unwrap_or("")),
        Err(e) => bail!("cannot run ping ({e}); install iputils-ping"),
    }

    let data: Vec<u8> = (0..TCP_BYTES).map(net::tcp_byte).collect();
    let echoed = tcp_roundtrip(guest, net::TCP_ECHO_PORT, &data)?;
    if echoed != data {
        bail!("TCP echo differs: got {} bytes back", echoed.len());
    }
    pass("host.tcp", &format!("{TCP_BYTES} bytes sent and echoed back intact"));
    Ok(())
}

fn connect(guest: &str, port: u16) -> Result<TcpStream> {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        match TcpStream::connect_timeout(&format!("{guest}:{port}").parse()?, Duration::from_secs(2)) {
            Ok(s) => return Ok(s),
            Err(e) if std::time::Instant::now() > deadline => bail!("connect {guest}:{port}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Sends `data`, half-closes, and returns everything the guest sent back.
pub fn tcp_roundtrip(guest: &str, port: u16, data: &[u8]) -> Result<Vec<u8>> {
    let stream = connect(guest, port)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    let mut reader = stream.try_clone()?;
    let collect = std::thread::spawn(move || {
        let mut out = Vec::new();
        reader.read_to_end(&mut out).map(|_| out)
    });
    let mut writer = stream;
    writer.write_all(data)?;
    writer.shutdown(Shutdown::Write)?;
    Ok(collect.join().expect("reader thread")?)
}

/// See [`PeerAction::Dns`]. Prints each question it answered.
fn dns_server(host: &str, answer: std::net::Ipv4Addr, serve: Duration) -> Result<()> {
    let udp = UdpSocket::bind((host, 53)).with_context(|| format!("bind {host}:53"))?;
    println!("dns: serving on {host}:53");
    dns_serve(&udp, answer, serve)
}

/// Answers the DNS queries that come to `udp` for `serve`.
fn dns_serve(udp: &UdpSocket, answer: std::net::Ipv4Addr, serve: Duration) -> Result<()> {
    let deadline = std::time::Instant::now() + serve;
    let mut buf = [0u8; 512];
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        udp.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
        let Ok((n, from)) = udp.recv_from(&mut buf) else { continue };
        let Some((reply, name, qtype)) = dns_reply(&buf[..n], answer) else { continue };
        udp.send_to(&reply, from)?;
        println!("dns: answered {name} type {qtype} for {from}");
    }
    Ok(())
}

/// The reply to one DNS query: `answer` for an A question, no record for others.
fn dns_reply(query: &[u8], answer: std::net::Ipv4Addr) -> Option<(Vec<u8>, String, u16)> {
    if query.len() < 12 || u16::from_be_bytes([query[4], query[5]]) != 1 {
        return None;
    }
    // The question: labels up to a zero byte, then type and class.
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).into_owned());
        at += len;
    }
    let qtype = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    let question = query.get(12..at + 4)?;
    let is_a = qtype == 1;
    let mut reply = Vec::with_capacity(64);
    reply.extend_from_slice(&query[..2]); // id
    reply.extend_from_slice(&[0x81, 0x80]); // response, recursion desired and available
    reply.extend_from_slice(&[0, 1, 0, u8::from(is_a), 0, 0, 0, 0]);
    reply.extend_from_slice(question);
    if is_a {
        // Name (a pointer to the question's), type A, class IN, TTL 60, 4 bytes.
        reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        reply.extend_from_slice(&answer.octets());
    }
    Some((reply, labels.join("."), qtype))
}

/// See [`PeerAction::ResetOnce`].
fn reset_once(host: &str, port: u16, wait: Duration) -> Result<()> {
    let listener = std::net::TcpListener::bind((host, port)).with_context(|| format!("bind {host}:{port}"))?;
    println!("reset-once: listening on {host}:{port}");
    reset_one(&listener, wait)
}

/// Resets the first connection to `listener` once its first byte arrived (see
/// [`PeerAction::ResetOnce`]).
fn reset_one(listener: &std::net::TcpListener, wait: Duration) -> Result<()> {
    let at = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let deadline = std::time::Instant::now() + wait;
    let (stream, from) = loop {
        match listener.accept() {
            Ok(accepted) => break accepted,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => bail!("no connection on {at}: {e}"),
        }
    };
    stream.set_nonblocking(false)?;
    let mut byte = [0u8; 1];
    // Peek: the byte stays unread, so closing resets the connection.
    let n = stream.peek(&mut byte)?;
    drop(stream);
    println!("reset-once: reset the connection from {from} after {n} unread byte(s)");
    Ok(())
}

/// The host side of the `std.net` section (`conformance_protocol::std_net`): a TCP echo,
/// a UDP echo, a connection reset once its first byte arrived, and DNS answers, all on
/// `host` at once. Prints [`std_net::PEER_READY`] once everything is bound, and serves
/// until its stdin closes (the runner's guest is done) or `serve` passes.
pub fn std_net(host: &str, serve: Duration) -> Result<()> {
    use conformance_protocol::std_net;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    use std::sync::Arc;
    let tcp = std::net::TcpListener::bind((host, std_net::TCP_ECHO_PORT))
        .with_context(|| format!("bind TCP {host}:{}", std_net::TCP_ECHO_PORT))?;
    let udp = UdpSocket::bind((host, std_net::UDP_ECHO_PORT))
        .with_context(|| format!("bind UDP {host}:{}", std_net::UDP_ECHO_PORT))?;
    let reset = std::net::TcpListener::bind((host, std_net::RESET_PORT))
        .with_context(|| format!("bind TCP {host}:{}", std_net::RESET_PORT))?;
    let dns = UdpSocket::bind((host, 53)).with_context(|| format!("bind {host}:53"))?;
    println!("{}", std_net::PEER_READY);
    let tcp_bytes = Arc::new(AtomicU64::new(0));
    let datagrams = Arc::new(AtomicU64::new(0));
    {
        let tcp_bytes = tcp_bytes.clone();
        std::thread::spawn(move || {
            for mut stream in tcp.incoming().map_while(Result::ok) {
                let tcp_bytes = tcp_bytes.clone();
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(TIMEOUT));
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n @ 1..) = stream.read(&mut buf) {
                        if stream.write_all(&buf[..n]).is_err() {
                            return;
                        }
                        tcp_bytes.fetch_add(n as u64, Relaxed);
                    }
                    let _ = stream.shutdown(Shutdown::Write);
                });
            }
        });
    }
    {
        let datagrams = datagrams.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = udp.recv_from(&mut buf) {
                if udp.send_to(&buf[..n], from).is_ok() {
                    datagrams.fetch_add(1, Relaxed);
                }
            }
        });
    }
    std::thread::spawn(move || {
        if let Err(e) = reset_one(&reset, serve) {
            println!("reset: {e:#}");
        }
    });
    let answer = std::net::Ipv4Addr::from(std_net::DNS_ANSWER);
    std::thread::spawn(move || dns_serve(&dns, answer, serve));
    // Until the runner closes our stdin (or the time is up).
    let (done, wait) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let _ = done.send(());
    });
    let _ = wait.recv_timeout(serve);
    println!("echoed {} TCP bytes and {} datagrams", tcp_bytes.load(Relaxed), datagrams.load(Relaxed));
    Ok(())
}

/// Sends one datagram and prints the reply (used by tests and by people).
pub fn udp_probe(guest: &str, port: u16, message: &str) -> Result<()> {
    let udp = UdpSocket::bind(("0.0.0.0", 0))?;
    udp.set_read_timeout(Some(Duration::from_millis(500)))?;
    let mut buf = [0u8; 2048];
    for _ in 0..20 {
        udp.send_to(message.as_bytes(), (guest, port))?;
        if let Ok((n, from)) = udp.recv_from(&mut buf) {
            println!("reply from {from}: {}", String::from_utf8_lossy(&buf[..n]));
            return Ok(());
        }
    }
    bail!("no reply from {guest}:{port}")
}

/// `GET /` over HTTP/1.0, printing the response.
pub fn http_get(guest: &str, port: u16) -> Result<()> {
    let response = tcp_roundtrip(guest, port, b"GET / HTTP/1.0\r\nHost: guest\r\n\r\n")?;
    print!("{}", String::from_utf8_lossy(&response));
    Ok(())
}

/// Keeps `window` datagrams in flight to the guest's UDP echo for `seconds` and returns
/// how many round trips completed. A lost datagram is replaced after 200 ms, so a drop
/// costs time, not the run.
pub fn udp_flood(guest: &str, port: u16, window: usize, seconds: u64) -> Result<u64> {
    let udp = UdpSocket::bind(("0.0.0.0", 0))?;
    udp.connect((guest, port))?;
    udp.set_read_timeout(Some(Duration::from_millis(200)))?;
    let payload = [0x5au8; 64];
    // Wait until the guest answers at all.
    let mut buf = [0u8; 2048];
    let mut alive = false;
    for _ in 0..50 {
        udp.send(&payload)?;
        if udp.recv(&mut buf).is_ok() {
            alive = true;
            break;
        }
    }
    if !alive {
        bail!("no echo from {guest}:{port}");
    }
    while udp.recv(&mut buf).is_ok() {} // drain stragglers
    let end = std::time::Instant::now() + Duration::from_secs(seconds);
    for _ in 0..window {
        udp.send(&payload)?;
    }
    let mut round_trips = 0u64;
    while std::time::Instant::now() < end {
        match udp.recv(&mut buf) {
            Ok(_) => {
                round_trips += 1;
                udp.send(&payload)?;
            }
            // A timeout: refill the window.
            Err(_) => {
                for _ in 0..window {
                    udp.send(&payload)?;
                }
            }
        }
    }
    Ok(round_trips)
}

/// One probe of [`PeerAction::TcpProbe`]: connect, send a request line, read bytes back.
fn probe_once(guest: &str, port: u16, timeout: Duration) -> Result<()> {
    let started = std::time::Instant::now();
    let mut stream = TcpStream::connect_timeout(&format!("{guest}:{port}").parse()?, timeout).context("connect")?;
    let left = timeout.saturating_sub(started.elapsed()).max(Duration::from_millis(1));
    stream.set_read_timeout(Some(left))?;
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").context("send")?;
    let mut buf = [0u8; 64];
    match stream.read(&mut buf).context("read")? {
        0 => bail!("closed with no answer"),
        _ => Ok(()),
    }
}

/// `cargo xtask peer ...`.
#[derive(clap::Subcommand)]
pub enum PeerAction {
    Conformance,
    /// The host side of conformance's `std.net` section (see [`std_net`]).
    StdNet {
        #[arg(long, default_value = netns::HOST_IP)]
        host: String,
        #[arg(long, default_value_t = 300)]
        seconds: u64,
    },
    Udp {
        #[arg(long, default_value = netns::GUEST_IP)]
        guest: String,
        #[arg(long, default_value_t = 7)]
        port: u16,
        #[arg(long, default_value = "hello, unikernel")]
        message: String,
    },
    Http {
        #[arg(long, default_value = netns::GUEST_IP)]
        guest: String,
        #[arg(long, default_value_t = 80)]
        port: u16,
    },
    /// Send `bytes` of the conformance pattern to a TCP echo, half-close, and check that
    /// exactly the same bytes come back.
    TcpEcho {
        #[arg(long, default_value = netns::GUEST_IP)]
        guest: String,
        #[arg(long, default_value_t = 7)]
        port: u16,
        #[arg(long, default_value_t = TCP_BYTES)]
        bytes: usize,
    },
    /// Accept one TCP connection on `port`, wait for its first byte, and close without
    /// reading it: the kernel resets the connection (unread data), which must wake the
    /// peer's blocked read.
    ResetOnce {
        #[arg(long, default_value = netns::HOST_IP)]
        host: String,
        #[arg(long)]
        port: u16,
        #[arg(long, default_value_t = 180)]
        seconds: u64,
    },
    /// A DNS server for tests: answers every A query with `answer` (and AAAA queries with
    /// no record) on `host`:53 for `seconds`.
    Dns {
        #[arg(long, default_value = netns::HOST_IP)]
        host: String,
        #[arg(long)]
        answer: std::net::Ipv4Addr,
        #[arg(long, default_value_t = 120)]
        seconds: u64,
    },
    /// Every `interval_ms` for `seconds`, a fresh TCP connection to `guest:port` that must
    /// connect and get bytes back for a request line within `timeout_ms` (an echo or an
    /// HTTP server both answer it); prints `tcp probe: N of M succeeded`. What a real
    /// client sees while the server is under attack.
    TcpProbe {
        #[arg(long, default_value = netns::GUEST_IP)]
        guest: String,
        #[arg(long)]
        port: u16,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 250)]
        interval_ms: u64,
        #[arg(long, default_value_t = 5000)]
        timeout_ms: u64,
    },
    /// Open connections that send a request and never acknowledge the answer or the FIN
    /// (the peer adds a firewall rule in its namespace for that, and removes it at the end: see `fin_hold`); print how many connected.
    FinHold {
        #[arg(long, default_value = netns::GUEST_IP)]
        guest: String,
        #[arg(long)]
        port: u16,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 50)]
        per_second: u64,
    },
    /// Keep a window of datagrams in flight to a UDP echo; print round trips completed.
    UdpFlood {
        #[arg(long, default_value = netns::GUEST_IP)]
        guest: String,
        #[arg(long, default_value_t = 7)]
        port: u16,
        #[arg(long, default_value_t = 32)]
        window: usize,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
}

pub fn run(action: PeerAction) -> Result<u8> {
    match action {
        PeerAction::Conformance => conformance(netns::HOST_IP, netns::GUEST_IP)?,
        PeerAction::StdNet { host, seconds } => {
            std_net(&host, Duration::from_secs(seconds))?;
            // The serving threads may be blocked in accept or recv: end the process.
            std::io::stdout().flush()?;
            std::process::exit(0);
        }
        PeerAction::Udp { guest, port, message } => udp_probe(&guest, port, &message)?,
        PeerAction::Http { guest, port } => http_get(&guest, port)?,
        PeerAction::Dns { host, answer, seconds } => dns_server(&host, answer, Duration::from_secs(seconds))?,
        PeerAction::ResetOnce { host, port, seconds } => reset_once(&host, port, Duration::from_secs(seconds))?,
        PeerAction::TcpEcho { guest, port, bytes } => {
            let data: Vec<u8> = (0..bytes).map(net::tcp_byte).collect();
            let echoed = tcp_roundtrip(&guest, port, &data)?;
            if echoed != data {
                let first = echoed.iter().zip(&data).position(|(a, b)| a != b).unwrap_or(echoed.len().min(bytes));
                bail!("TCP echo from {guest}:{port} differs: {} bytes back, first difference at {first}", echoed.len());
            }
            println!("tcp echo: {bytes} bytes from {guest}:{port} echoed intact");
        }
        PeerAction::TcpProbe { guest, port, seconds, interval_ms, timeout_ms } => {
            let timeout = Duration::from_millis(timeout_ms);
            let end = std::time::Instant::now() + Duration::from_secs(seconds);
            let (mut ok, mut tried) = (0u32, 0u32);
            while tried == 0 || std::time::Instant::now() < end {
                tried += 1;
                match probe_once(&guest, port, timeout) {
                    Ok(()) => ok += 1,
                    Err(e) => println!("tcp probe {tried}: {e:#}"),
                }
                std::thread::sleep(Duration::from_millis(interval_ms));
            }
            println!("tcp probe: {ok} of {tried} succeeded");
        }
        PeerAction::FinHold { guest, port, seconds, per_second } => {
            let (connected, dropped) = fin_hold::fin_hold(&guest, port, seconds, per_second)?;
            println!("fin hold: {connected} connections never acknowledged; {dropped} of their packets dropped");
        }
        PeerAction::UdpFlood { guest, port, window, seconds } => {
            println!("round trips: {}", udp_flood(&guest, port, window, seconds)?)
        }
    }
    Ok(0)
}
