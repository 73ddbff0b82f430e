//! `std::net` on Unikraft: examples/std-echo (a std app using only `TcpListener`,
//! `TcpStream` and `UdpSocket`) boots with `sockets = true`, serves the host's TCP and UDP
//! echoes through rt-unikraft's socket driver over smoltcp, and sees a refused
//! connection as `ConnectionRefused`; examples/tokio-http (tokio + hyper from crates.io,
//! unmodified) serves `curl`, and `wrk` and `ab` load without errors. The same examples
//! run on unix (the host's sockets).
//!
//! The Unikraft tests need root (a network namespace with a TAP) and the Unikraft
//! sources; without them they print a SKIP line.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{build_first, is_root, show, skip, Guest, Ns, XTASK};

/// Spawns `cmd` (in its own process group) and collects its stdout lines until one
/// contains `ready`, returning the guest and the lines seen.
fn start_collecting(mut cmd: Command, ready: &str, timeout: Duration) -> (Guest, Vec<String>) {
    let mut child = cmd.stdout(Stdio::piped()).process_group(0).spawn().expect("start the guest");
    let stdout = child.stdout.take().expect("piped");
    let guest = Guest::from_child(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    loop {
        let line = rx
            .recv_timeout(timeout)
            .unwrap_or_else(|_| panic!("the guest never printed `{ready}`; it printed:\n{}", lines.join("\n")));
        let done = line.contains(ready);
        lines.push(line);
        if done {
            return (guest, lines);
        }
    }
}

#[test]
fn std_echo_serves_tcp_and_udp_and_sees_refusals_on_unikraft() {
    let test = "std_echo_serves_tcp_and_udp_and_sees_refusals_on_unikraft";
    if common::unikraft::sources_or_skip(test).is_none() {
        return;
    }
    if !is_root() {
        skip(&format!("{test}: not root (needs a network namespace and TAP)"));
        return;
    }
    let build = build_first(test, &["kraft-run", "--example", "std-echo", "--no-boot"]);
    assert!(build.status.success(), "{}", show(&build));
    let ns = Ns::new("ukstd");
    // The host resets the guest's connection to port 9101 once the guest's byte arrived.
    let resetter = ns
        .command(XTASK)
        .args(["peer", "reset-once", "--port", "9101"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A DNS server on the host (the guest's gateway, so its default DNS server).
    let dns = ns
        .command(XTASK)
        .args(["peer", "dns", "--answer", "10.0.0.1", "--seconds", "240"])
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let dns = Guest::from_child(dns);
    std::thread::sleep(Duration::from_millis(300));
    let mut cmd = ns.command(XTASK);
    // Nothing listens on the host's port 9: its kernel answers the SYN with a reset.
    cmd.args([
        "kraft-run",
        "--example",
        "std-echo",
        "--no-build",
        "--tap",
        "tap0",
        "--",
        "--connect-refused=10.0.0.1:9",
        "--reset-check=10.0.0.1:9101",
        "--resolve=echo.test",
        "--open-net-too",
    ]);
    let (guest, lines) = start_collecting(cmd, "std-echo: listening on TCP and UDP port 7", Duration::from_secs(180));
    let seen = lines.join("\n");
    for how in ["connect", "connect_timeout"] {
        assert!(
            seen.contains(&format!("std-echo: {how} 10.0.0.1:9: ConnectionRefused")),
            "{how} to a closed port must fail with ConnectionRefused:\n{seen}"
        );
    }
    assert!(seen.contains("rt-unikraft sockets: IPv4 10.0.0.2/24, gateway 10.0.0.1"), "{seen}");
    assert!(
        seen.contains("std-echo: blocked read woke: ConnectionReset"),
        "a peer's reset must wake a blocked read:\n{seen}"
    );
    assert!(seen.contains("std-echo: non-blocking accept: WouldBlock"), "{seen}");
    assert!(seen.contains("DNS 10.0.0.1 (the gateway, in /etc/resolv.conf)"), "{seen}");
    assert!(
        seen.contains("std-echo: open_net: device setup failed: network device 0 cannot be opened")
            && seen.contains("std's sockets (`sockets = true`) already drive it"),
        "sockets and shared-core's Stack in one image must be a clear error:\n{seen}"
    );
    assert!(seen.contains("std-echo: resolve echo.test: 10.0.0.1"), "musl's resolver over the driver:\n{seen}");
    drop(dns);
    let resetter = resetter.wait_with_output().unwrap();
    assert!(resetter.status.success(), "{}", show(&resetter));

    let udp = ns.command(XTASK).args(["peer", "udp", "--message", "ping-over-std-net"]).output().unwrap();
    assert!(udp.status.success(), "{}", show(&udp));
    assert!(
        String::from_utf8_lossy(&udp.stdout).contains("reply from 10.0.0.2:7: ping-over-std-net"),
        "{}",
        show(&udp)
    );

    // 256 KiB through a thread per connection, twice in a row, then three at once.
    for _ in 0..2 {
        let tcp = ns.command(XTASK).args(["peer", "tcp-echo", "--bytes", "262144"]).output().unwrap();
        assert!(tcp.status.success(), "{}", show(&tcp));
        assert!(String::from_utf8_lossy(&tcp.stdout).contains("tcp echo: 262144 bytes"), "{}", show(&tcp));
    }
    let clients: Vec<_> = (0..3)
        .map(|_| {
            ns.command(XTASK)
                .args(["peer", "tcp-echo", "--bytes", "65536"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for client in clients {
        let out = client.wait_with_output().unwrap();
        assert!(out.status.success(), "concurrent client: {}", show(&out));
    }
    // Still answering afterwards.
    let udp = ns.command(XTASK).args(["peer", "udp", "--message", "still-there"]).output().unwrap();
    drop(guest);
    assert!(String::from_utf8_lossy(&udp.stdout).contains("reply from 10.0.0.2:7: still-there"), "{}", show(&udp));
}

fn which(program: &str) -> Option<String> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| format!("{dir}/{program}"))
        .find(|path| std::path::Path::new(path).is_file())
}

#[test]
fn tokio_http_serves_curl_wrk_and_ab_on_unikraft() {
    let test = "tokio_http_serves_curl_wrk_and_ab_on_unikraft";
    if common::unikraft::sources_or_skip(test).is_none() {
        return;
    }
    if !is_root() {
        skip(&format!("{test}: not root (needs a network namespace and TAP)"));
        return;
    }
    let (Some(curl), Some(wrk), Some(ab)) = (which("curl"), which("wrk"), which("ab")) else {
        skip(&format!("{test}: needs curl, wrk and ab (apache2-utils)"));
        return;
    };
    let build = build_first(test, &["kraft-run", "--example", "tokio-http", "--no-boot"]);
    assert!(build.status.success(), "{}", show(&build));
    let ns = Ns::new("uktokio");
    let mut cmd = ns.command(XTASK);
    cmd.args(["kraft-run", "--example", "tokio-http", "--no-build", "--tap", "tap0"]);
    let (guest, _) = start_collecting(cmd, "tokio-http: listening on 0.0.0.0:80", Duration::from_secs(180));
    let page = || ns.command(&curl).args(["-sS", "-m", "20", "http://10.0.0.2/"]).output().unwrap();
    let out = page();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Hello from tokio and hyper on a unikernel!"),
        "{}",
        show(&out)
    );

    // 10 s at 64 keep-alive connections: every request answered, no socket errors.
    let out = ns.command(&wrk).args(["-t2", "-c64", "-d10s", "--timeout", "5s", "http://10.0.0.2/"]).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    eprintln!("{test}: wrk:\n{report}");
    assert!(out.status.success(), "{}", show(&out));
    assert!(report.contains("requests in"), "{report}");
    assert!(!report.contains("Socket errors") && !report.contains("Non-2xx"), "wrk saw errors:\n{report}");

    // A connection per request (accept churn, closes finishing in the background).
    let out = ns.command(&ab).args(["-q", "-n", "5000", "-c", "32", "http://10.0.0.2/"]).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    eprintln!("{test}: ab:\n{report}");
    assert!(out.status.success(), "{}", show(&out));
    assert!(report.contains("Complete requests:      5000"), "{report}");
    assert!(report.contains("Failed requests:        0"), "{report}");

    // Still answering afterwards.
    let out = page();
    assert!(String::from_utf8_lossy(&out.stdout).contains("Hello from tokio and hyper"), "{}", show(&out));

    // And idle again: the network thread and tokio's epoll wait sleep, nothing spins.
    std::thread::sleep(Duration::from_secs(2));
    let cpu = || guest.cpu_time_of("qemu-system").expect("the guest's QEMU is in its process group");
    let before = cpu();
    let window = Duration::from_secs(4);
    std::thread::sleep(window);
    let share = (cpu() - before).as_secs_f64() / window.as_secs_f64();
    drop(guest);
    eprintln!("{test}: idle after the load: {:.1} % of a core", share * 100.0);
    assert!(share < 0.15, "an idle tokio-http guest used {:.1} % of a core", share * 100.0);
}

#[test]
fn std_echo_serves_tcp_and_udp_on_unix() {
    let build = Command::new("cargo")
        .args(["build", "-q", "-p", "std-echo"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(build.success());
    let exe = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/std-echo");
    let port = 17000 + (std::process::id() % 1000) as u16;
    let reset_port = (port + 1000).to_string();
    let resetter = Command::new(XTASK)
        .args(["peer", "reset-once", "--host", "127.0.0.1", "--port", &reset_port, "--seconds", "30"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut cmd = Command::new(&exe);
    cmd.args([
        format!("--port={port}"),
        "--connect-refused=127.0.0.1:9".into(),
        format!("--reset-check=127.0.0.1:{reset_port}"),
        "--exit-after-ms=30000".into(),
    ]);
    let (guest, lines) = start_collecting(cmd, "std-echo: listening", Duration::from_secs(30));
    let seen = lines.join("\n");
    assert!(seen.contains("std-echo: connect 127.0.0.1:9: ConnectionRefused"), "{seen}");
    assert!(seen.contains("std-echo: blocked read woke: ConnectionReset"), "{seen}");
    assert!(seen.contains("std-echo: non-blocking accept: WouldBlock"), "{seen}");
    assert!(resetter.wait_with_output().unwrap().status.success());
    let out = Command::new(XTASK)
        .args(["peer", "tcp-echo", "--guest", "127.0.0.1", "--port", &port.to_string(), "--bytes", "262144"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let out = Command::new(XTASK)
        .args(["peer", "udp", "--guest", "127.0.0.1", "--port", &port.to_string(), "--message", "hi"])
        .output()
        .unwrap();
    drop(guest);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("reply from 127.0.0.1:{port}: hi")),
        "{}",
        show(&out)
    );
}

#[test]
fn tokio_http_serves_on_unix() {
    let Some(curl) = which("curl") else {
        skip("tokio_http_serves_on_unix: curl is not installed");
        return;
    };
    let build = Command::new("cargo")
        .args(["build", "-q", "-p", "tokio-http"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(build.success());
    let exe = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/tokio-http");
    let port = 18000 + (std::process::id() % 1000) as u16;
    let mut cmd = Command::new(&exe);
    cmd.args([format!("--port={port}"), "--exit-after-ms=30000".into()]);
    let (guest, _) = start_collecting(cmd, "tokio-http: listening", Duration::from_secs(30));
    let out = Command::new(curl).args(["-sS", "-m", "20", &format!("http://127.0.0.1:{port}/")]).output().unwrap();
    drop(guest);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Hello from tokio and hyper on a unikernel!"),
        "{}",
        show(&out)
    );
}
