//! The conformance suite's `std.net` section: `std::net` against the host peer, one
//! report line per case of [`conformance_protocol::STD_NET_CASES`], in the report's grammar
//! ([`conformance_protocol::report::Line`]).
//!
//! A guest of its own, booted by `cargo xtask conformance` after the main run: on Unikraft
//! std's sockets (`sockets = true`) are rt-unikraft's socket driver, which needs the net
//! device that the main conformance guest gives shared-core's `Stack`, and one image
//! cannot do both. On unix the same code runs on the host's sockets inside the runner's
//! network namespace. The host peer (`xtask peer std-net`, [`conformance_protocol::std_net`])
//! serves a TCP and a UDP echo, a connection it resets, a closed port and a DNS answer.
//!
//! The guest prints only case lines and `#` chatter, no BEGIN/END: the runner merges the
//! cases into the main report, whose END line counts them. Boot arguments:
//! `--host=IP` (the host peer, default 10.0.0.1), `--backend=LABEL` (chatter only).
//! Exit status 0 only if no case failed.
#![forbid(unsafe_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use conformance_protocol::report::{Counts, Line, Status};
use conformance_protocol::{net, std_net, STD_NET_CASES};

unikernel::main!(run);

/// How long one blocking call may wait for the host peer.
const TIMEOUT: Duration = Duration::from_secs(20);
/// The TCP echo goes in chunks of this size: each is read back before the next is sent,
/// so neither side's buffers can fill up both ways at once.
const CHUNK: usize = 16 * 1024;

type Outcome = Result<String, String>;

fn run() -> i32 {
    let mut host = Ipv4Addr::new(10, 0, 0, 1);
    let mut label = String::from(unikernel::services::backend_name());
    for arg in std::env::args().skip(1) {
        match arg.split_once('=') {
            Some(("--host", ip)) => match ip.parse() {
                Ok(ip) => host = ip,
                Err(_) => {
                    println!("# std.net: --host={ip} is not an IPv4 address");
                    return 2;
                }
            },
            Some(("--backend", name)) => label = name.to_string(),
            _ => {
                println!("# std.net: unknown argument {arg}; known: --host=IP, --backend=LABEL");
                return 2;
            }
        }
    }
    println!("# std.net section (backend={label}, host peer {host})");
    let cases: [fn(Ipv4Addr) -> Outcome; 6] =
        [tcp_echo, udp_echo, connect_refused, reset_wakes_reader, nonblocking_accept, dns];
    let mut counts = Counts::default();
    for (case, check) in STD_NET_CASES.iter().zip(cases) {
        let (status, detail) = match check(host) {
            Ok(detail) => (Status::Pass, detail),
            Err(detail) => (Status::Fail, detail),
        };
        counts.add(status);
        println!("{}", Line::Case { status, case, detail: &detail });
    }
    println!("# std.net section done: {counts}");
    i32::from(counts.fail != 0)
}

fn err(what: &str) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{what}: {:?} ({e})", e.kind())
}

/// [`conformance_protocol::case::STD_NET_TCP_ECHO`]: 256 KiB of the pattern through the host's echo, in chunks,
/// then our FIN, and the host's.
fn tcp_echo(host: Ipv4Addr) -> Outcome {
    let addr = SocketAddr::from((host, std_net::TCP_ECHO_PORT));
    let start = Instant::now();
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(err(&format!("connect {addr}")))?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(err("SO_RCVTIMEO"))?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(err("SO_SNDTIMEO"))?;
    stream.set_nodelay(true).map_err(err("TCP_NODELAY"))?;
    let data: Vec<u8> = (0..net::TCP_BYTES).map(net::tcp_byte).collect();
    let mut back = vec![0u8; CHUNK];
    for (k, chunk) in data.chunks(CHUNK).enumerate() {
        let at = k * CHUNK;
        stream.write_all(chunk).map_err(err(&format!("write at byte {at}")))?;
        let back = &mut back[..chunk.len()];
        stream.read_exact(back).map_err(err(&format!("read the echo of byte {at}..")))?;
        if let Some(i) = back.iter().zip(chunk).position(|(a, b)| a != b) {
            return Err(format!("echoed byte {} differs", at + i));
        }
    }
    stream.shutdown(Shutdown::Write).map_err(err("shutdown(Write)"))?;
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).map_err(err("read to the host's FIN"))?;
    if !rest.is_empty() {
        return Err(format!("{} bytes more than were sent came back", rest.len()));
    }
    Ok(format!(
        "{} bytes to {addr} and back intact in {} ms, then FIN both ways",
        net::TCP_BYTES,
        start.elapsed().as_millis()
    ))
}

/// [`conformance_protocol::case::STD_NET_UDP_ECHO`]: distinct datagrams, each echoed verbatim by the host (a lost
/// one is sent again, up to 10 times).
fn udp_echo(host: Ipv4Addr) -> Outcome {
    let peer = SocketAddr::from((host, std_net::UDP_ECHO_PORT));
    let udp = UdpSocket::bind(("0.0.0.0", 0)).map_err(err("bind"))?;
    udp.set_read_timeout(Some(Duration::from_millis(500))).map_err(err("SO_RCVTIMEO"))?;
    let mut buf = [0u8; 2048];
    let mut resent = 0;
    for i in 0..std_net::UDP_DATAGRAMS {
        let msg = format!("std.net datagram {i}: {}", "x".repeat(i * 100));
        let mut echoed = false;
        for _ in 0..10 {
            udp.send_to(msg.as_bytes(), peer).map_err(err(&format!("send_to {peer}")))?;
            match udp.recv_from(&mut buf) {
                Ok((n, from)) if from == peer && &buf[..n] == msg.as_bytes() => {
                    echoed = true;
                    break;
                }
                // A late echo of an earlier datagram, or a timeout: send again.
                Ok(_) => resent += 1,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => resent += 1,
                Err(e) => return Err(err("recv_from")(e)),
            }
        }
        if !echoed {
            return Err(format!("no echo of datagram {i} from {peer} after 10 tries"));
        }
    }
    Ok(format!("{} datagrams echoed verbatim by {peer} ({resent} resent)", std_net::UDP_DATAGRAMS))
}

/// [`conformance_protocol::case::STD_NET_CONNECT_REFUSED`]: both of std's connects (blocking, and non-blocking
/// with poll) to the host's closed port.
fn connect_refused(host: Ipv4Addr) -> Outcome {
    let addr = SocketAddr::from((host, std_net::CLOSED_PORT));
    let kind = |r: std::io::Result<TcpStream>| match r {
        Ok(_) => Err(format!("a connect to {addr} succeeded")),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => Ok(()),
        Err(e) => Err(format!("{:?} ({e}), expected ConnectionRefused", e.kind())),
    };
    kind(TcpStream::connect(addr)).map_err(|e| format!("connect: {e}"))?;
    kind(TcpStream::connect_timeout(&addr, TIMEOUT)).map_err(|e| format!("connect_timeout: {e}"))?;
    Ok(format!("connect and connect_timeout to {addr}: ConnectionRefused"))
}

/// [`conformance_protocol::case::STD_NET_RESET_WAKES_READER`]: a read blocked on a connection the host resets
/// ends with `ConnectionReset`, long before its timeout.
fn reset_wakes_reader(host: Ipv4Addr) -> Outcome {
    let addr = SocketAddr::from((host, std_net::RESET_PORT));
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(err(&format!("connect {addr}")))?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(err("SO_RCVTIMEO"))?;
    // The host closes without reading this byte: its kernel answers with a reset.
    stream.write_all(b"!").map_err(err("write"))?;
    let start = Instant::now();
    let mut buf = [0u8; 16];
    let result = stream.read(&mut buf);
    let waited = start.elapsed().as_millis();
    match result {
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {
            Ok(format!("a read blocked on {addr} woke after {waited} ms: ConnectionReset"))
        }
        Err(e) => Err(format!("the blocked read ended after {waited} ms with {:?} ({e})", e.kind())),
        Ok(n) => Err(format!("the blocked read returned Ok({n}) after {waited} ms")),
    }
}

/// [`conformance_protocol::case::STD_NET_NONBLOCKING_ACCEPT`]: nobody connects to a fresh listener.
fn nonblocking_accept(_host: Ipv4Addr) -> Outcome {
    let listener = TcpListener::bind(("0.0.0.0", 0)).map_err(err("bind"))?;
    listener.set_nonblocking(true).map_err(err("set_nonblocking"))?;
    let port = listener.local_addr().map_err(err("local_addr"))?.port();
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(format!("accept on port {port}: WouldBlock")),
        Err(e) => Err(format!("accept: {:?} ({e}), expected WouldBlock", e.kind())),
        Ok((_, from)) => Err(format!("accept returned a connection from {from}")),
    }
}

/// [`conformance_protocol::case::STD_NET_DNS`]: std's `ToSocketAddrs` (the libc resolver, a DNS query over UDP)
/// finds the host peer's answer.
fn dns(_host: Ipv4Addr) -> Outcome {
    let name = std_net::DNS_NAME;
    let want = IpAddr::V4(Ipv4Addr::from(std_net::DNS_ANSWER));
    let start = Instant::now();
    let found: Vec<IpAddr> =
        (name, 80).to_socket_addrs().map_err(|e| format!("resolve {name}: {e}"))?.map(|a| a.ip()).collect();
    if found.contains(&want) {
        Ok(format!("{name} resolved to {want} (the host peer's answer) in {} ms", start.elapsed().as_millis()))
    } else {
        Err(format!("{name} resolved to {found:?}, expected {want}"))
    }
}
