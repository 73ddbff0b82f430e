//! TCP and UDP echo written against `std::net` only, the way any Rust program would: a
//! `TcpListener` with one thread per connection (read and write timeouts, at most
//! `--max-connections` at once; one more is closed at once), and a `UdpSocket` answering
//! every datagram to its sender.
//!
//! On unix, std's sockets are the host's. On Unikraft (`sockets = true` in Cargo.toml)
//! they are rt-unikraft's socket driver over the smoltcp stack on the virtio-net device,
//! with the address from `netdev.ip=`, `RT_UNIKRAFT_IPV4`, or 10.0.0.2/24.
//!
//! Boot arguments:
//!
//! * `--port=N` (default 7) for both TCP and UDP;
//! * `--max-connections=N` (default 16), `--timeout-ms=N` (default 30000: a connection
//!   idle for that long, reading or writing, is closed);
//! * `--connect-refused=IP:PORT`: first connect to a port nobody listens on and print
//!   `std-echo: connect IP:PORT: <error>`, which must be `ConnectionRefused`;
//! * `--reset-check=IP:PORT`: connect to a host that resets the connection once it has
//!   our byte, block in a read, and print `std-echo: blocked read woke: <kind>` (which
//!   must be `ConnectionReset`); also prints `std-echo: non-blocking accept: <kind>`
//!   (`WouldBlock`, nobody is connecting);
//! * `--resolve=NAME`: look NAME up (std's `ToSocketAddrs`, musl's resolver, a DNS query
//!   over UDP) and print `std-echo: resolve NAME: <addresses or error>`;
//! * `--open-net-too`: once serving, also open the net device through shared-core's API
//!   (`services::open_net`) and print `std-echo: open_net: <result>`; on Unikraft the
//!   socket layer holds the device, so this must be a clear error;
//! * `--exit-after-ms=N`: stop serving after N ms (status 0), for runs with an end.
#![forbid(unsafe_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

unikernel::main!(run);

struct Args {
    port: u16,
    max_connections: usize,
    timeout: Duration,
    connect_refused: Option<SocketAddr>,
    reset_check: Option<SocketAddr>,
    resolve: Option<String>,
    open_net_too: bool,
    exit_after: Option<Duration>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: 7,
        max_connections: 16,
        timeout: Duration::from_secs(30),
        connect_refused: None,
        reset_check: None,
        resolve: None,
        open_net_too: false,
        exit_after: None,
    };
    for arg in std::env::args().skip(1) {
        if arg == "--open-net-too" {
            args.open_net_too = true;
            continue;
        }
        let (key, value) = arg.split_once('=').ok_or_else(|| format!("{arg}: expected --key=value"))?;
        let bad = |what: &str| format!("{key}: `{value}` is not {what}");
        match key {
            "--port" => args.port = value.parse().map_err(|_| bad("a port"))?,
            "--max-connections" => args.max_connections = value.parse().map_err(|_| bad("a number"))?,
            "--timeout-ms" => args.timeout = Duration::from_millis(value.parse().map_err(|_| bad("a number"))?),
            "--connect-refused" => args.connect_refused = Some(value.parse().map_err(|_| bad("IP:PORT"))?),
            "--reset-check" => args.reset_check = Some(value.parse().map_err(|_| bad("IP:PORT"))?),
            "--resolve" => args.resolve = Some(value.to_string()),
            "--exit-after-ms" => {
                args.exit_after = Some(Duration::from_millis(value.parse().map_err(|_| bad("a number"))?))
            }
            // The runtime's own key (heap sampling): it reads it from the boot arguments,
            // and std's argv holds them all.
            "--heap-sample-ms" => {}
            _ => {
                return Err(format!(
                    "unknown argument {key}; known: --port, --max-connections, --timeout-ms, --connect-refused, \
                     --reset-check, --resolve, --open-net-too, --exit-after-ms"
                ))
            }
        }
    }
    Ok(args)
}

fn run() -> i32 {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("std-echo: {e}");
            return 2;
        }
    };
    if let Some(addr) = args.connect_refused {
        // Both of std's ways: a blocking connect, and a non-blocking one with poll.
        let report = |how: &str, result: std::io::Result<TcpStream>| match result {
            Ok(_) => println!("std-echo: {how} {addr}: connected (expected a refusal)"),
            Err(e) => println!("std-echo: {how} {addr}: {:?} ({e})", e.kind()),
        };
        report("connect", TcpStream::connect(addr));
        report("connect_timeout", TcpStream::connect_timeout(&addr, Duration::from_secs(5)));
    }
    if let Some(addr) = args.reset_check {
        reset_check(addr);
    }
    if let Some(name) = &args.resolve {
        use std::net::ToSocketAddrs;
        match (name.as_str(), 7).to_socket_addrs() {
            Ok(addrs) => {
                let addrs: Vec<String> = addrs.map(|a| a.ip().to_string()).collect();
                println!("std-echo: resolve {name}: {}", addrs.join(" "));
            }
            Err(e) => println!("std-echo: resolve {name}: failed: {e}"),
        }
    }
    let listener = match TcpListener::bind(("0.0.0.0", args.port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("std-echo: TCP port {}: {e}", args.port);
            return 1;
        }
    };
    let udp = match UdpSocket::bind(("0.0.0.0", args.port)) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("std-echo: UDP port {}: {e}", args.port);
            return 1;
        }
    };
    if args.open_net_too {
        match unikernel::services::open_net("") {
            Ok(_) => println!("std-echo: open_net: opened"),
            Err(e) => println!("std-echo: open_net: {e}"),
        }
    }
    println!(
        "std-echo: listening on TCP and UDP port {} ({}, at most {} connections)",
        args.port,
        listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        args.max_connections
    );
    thread::Builder::new().name("udp-echo".into()).spawn(move || udp_echo(udp)).expect("spawn the UDP thread");
    if let Some(after) = args.exit_after {
        thread::spawn(move || {
            thread::sleep(after);
            println!("std-echo: done");
            std::process::exit(0);
        });
    }
    let active = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                eprintln!("std-echo: accept: {e}");
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if active.fetch_add(1, Ordering::SeqCst) >= args.max_connections {
            // Bounded: the extra client is closed at once (and its slot given back).
            active.fetch_sub(1, Ordering::SeqCst);
            drop(stream);
            continue;
        }
        let active = active.clone();
        let timeout = args.timeout;
        let spawned = thread::Builder::new().name("tcp-echo".into()).spawn(move || {
            if let Err(e) = tcp_echo(stream, timeout) {
                if !matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock | ErrorKind::ConnectionReset) {
                    eprintln!("std-echo: connection: {e}");
                }
            }
            active.fetch_sub(1, Ordering::SeqCst);
        });
        if let Err(e) = spawned {
            eprintln!("std-echo: no thread for a connection: {e}");
        }
    }
    0
}

/// A peer's reset must wake a thread blocked reading (posix-socket waits only for
/// EPOLLIN there), and a non-blocking accept with nobody connecting says WouldBlock.
fn reset_check(addr: SocketAddr) {
    let kind = |r: std::io::Result<usize>| match r {
        Ok(n) => format!("Ok({n})"),
        Err(e) => format!("{:?} ({e})", e.kind()),
    };
    match TcpStream::connect(addr) {
        Ok(mut stream) => {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
            // The host closes without reading this byte: its kernel answers with a reset.
            let _ = stream.write_all(b"!");
            let mut buf = [0u8; 16];
            println!("std-echo: blocked read woke: {}", kind(stream.read(&mut buf)));
        }
        Err(e) => println!("std-echo: reset check: connect {addr}: {e}"),
    }
    let listener = TcpListener::bind(("0.0.0.0", 0)).and_then(|l| l.set_nonblocking(true).map(|()| l));
    match listener {
        Ok(listener) => println!("std-echo: non-blocking accept: {}", kind(listener.accept().map(|_| 0))),
        Err(e) => println!("std-echo: non-blocking accept: no listener: {e}"),
    }
}

/// Echoes one connection until the client closes its side (then closes ours), or an
/// error or timeout ends it.
fn tcp_echo(mut stream: TcpStream, timeout: Duration) -> std::io::Result<()> {
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return stream.shutdown(std::net::Shutdown::Write);
        }
        stream.write_all(&buf[..n])?;
    }
}

fn udp_echo(socket: UdpSocket) {
    let mut buf = vec![0u8; 65536];
    loop {
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                if let Err(e) = socket.send_to(&buf[..n], from) {
                    eprintln!("std-echo: UDP reply to {from}: {e}");
                }
            }
            Err(e) => {
                eprintln!("std-echo: UDP: {e}");
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}
