//! The http example under load and abuse, on each backend, inside a network namespace:
//! `ab` and `wrk` (Debian's apache2-utils and wrk) at 64 concurrent connections must get
//! no failed request; 200 idle connections and 20 slow clients must neither stop it
//! serving nor stay open past its request deadline; malformed and oversized requests get
//! an answer and a close, never a stuck socket (docs/runtime.md, "TCP servers").
//!
//! Needs root (a namespace with a TAP); without it each test prints a SKIP line. `ab` and
//! `wrk` missing is a failure, not a skip (CI installs them). The Unikraft and solo5 tests
//! also need the provisioned sources, as in unikraft.rs and solo5.rs. Every client is
//! bounded in number and time, and all traffic stays in the test's namespace.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use common::{build_first, is_root, show, skip, skip_unprovisioned, start_until, Ns, XTASK};
use e2e::netns::in_netns;

/// One load test at a time: they measure a guest, and two would share the two cores.
static SERIAL: Mutex<()> = Mutex::new(());

const GUEST: &str = "10.0.0.2:80";
const URL: &str = "http://10.0.0.2/";
/// The example's default `--request-timeout-ms`.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What each backend is asked to do (Unikraft runs under TCG, far slower than the host).
struct Load {
    /// Requests per `ab` run.
    ab_requests: u32,
    /// `wrk`'s run time.
    wrk_seconds: u32,
    /// The slowest mean time per request `ab -c 1` may report, if checked.
    sequential_limit: Option<Duration>,
}

#[test]
fn http_on_unix_survives_load_idle_and_slow_clients() {
    let test = "http_on_unix_survives_load_idle_and_slow_clients";
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !root_and_tools(test) {
        return;
    }
    let ns = Ns::new("ukload-unix");
    let build = Command::new(env!("CARGO")).args(["build", "--quiet", "-p", "http"]).status().unwrap();
    assert!(build.success());
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/http");
    let mut cmd = ns.command("env");
    cmd.arg("RT_UNIX_TAP=tap0").arg(bin);
    let guest = start_until(cmd, "listening on 10.0.0.2", Duration::from_secs(30));
    let load = Load { ab_requests: 4000, wrk_seconds: 3, sequential_limit: Some(Duration::from_millis(20)) };
    exercise(test, "ukload-unix", &ns, &load);
    drop(guest);
}

#[test]
fn http_on_unikraft_survives_load_idle_and_slow_clients() {
    let test = "http_on_unikraft_survives_load_idle_and_slow_clients";
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !unikraft_provisioned(test) || !root_and_tools(test) {
        return;
    }
    let build = build_first(test, &["kraft-run", "--example", "http", "--no-boot"]);
    assert!(build.status.success(), "{}", show(&build));
    let ns = Ns::new("ukload-uk");
    let mut cmd = ns.command(XTASK);
    cmd.args(["kraft-run", "--example", "http", "--no-build", "--tap", "tap0"]);
    let guest = start_until(cmd, "listening on 10.0.0.2", Duration::from_secs(120));
    let load = Load { ab_requests: 2000, wrk_seconds: 5, sequential_limit: None };
    exercise(test, "ukload-uk", &ns, &load);
    drop(guest);
}

#[test]
fn http_on_solo5_spt_survives_load_idle_and_slow_clients() {
    let test = "http_on_solo5_spt_survives_load_idle_and_slow_clients";
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !solo5_provisioned(test) || !root_and_tools(test) {
        return;
    }
    let build = build_first(test, &["solo5-run", "--example", "http", "--tap", "tap0", "--no-run"]);
    assert!(build.status.success(), "{}", show(&build));
    let ns = Ns::new("ukload-s5");
    let mut cmd = ns.command(XTASK);
    cmd.args(["solo5-run", "--example", "http", "--tap", "tap0", "--no-build"]);
    let guest = start_until(cmd, "listening on 10.0.0.2", Duration::from_secs(60));
    let load = Load { ab_requests: 4000, wrk_seconds: 3, sequential_limit: None };
    exercise(test, "ukload-s5", &ns, &load);
    drop(guest);
}

/// Everything asked of one booted guest, in order; the guest must still serve at the end.
fn exercise(test: &str, ns_tag: &str, ns: &Ns, load: &Load) {
    let name = format!("{ns_tag}-{}", std::process::id());
    let started = Instant::now();
    bad_requests_get_an_answer_and_a_close(&name);
    if let Some(limit) = load.sequential_limit {
        sequential_requests_are_answered_at_once(ns, limit);
    }
    let ab = ab_gets_no_failed_request(ns, load.ab_requests);
    let wrk = wrk_gets_no_error(ns, load.wrk_seconds);
    let held = idle_and_slow_clients_neither_stop_it_nor_stay_open(ns, &name, load.ab_requests / 4);
    let kept = clients_that_never_close_do_not_fill_it(ns, &name, load.ab_requests / 4);
    let page = in_netns(&name, || exchange(b"GET / HTTP/1.0\r\n\r\n", Duration::from_secs(30)));
    assert!(page.starts_with("HTTP/1.0 200 OK"), "the guest stopped serving after the load: {page:?}");
    eprintln!("{test}: {ab}; {wrk}; {held}; {kept} ({:.0?} in all)", started.elapsed());
}

/// The four kinds of connection that used to take the server down for good: each gets
/// its answer and is closed. Then a normal request still works.
fn bad_requests_get_an_answer_and_a_close(ns_name: &str) {
    let t = Duration::from_secs(30);
    let lf_only = in_netns(ns_name, move || exchange(b"GET / HTTP/1.0\nHost: guest\n\n", t));
    assert!(lf_only.starts_with("HTTP/1.0 200 OK") && lf_only.contains("Hello from a unikernel"), "{lf_only:?}");

    let mut big = b"GET / HTTP/1.0\r\nX-Filler: ".to_vec();
    big.resize(9 * 1024, b'a');
    let too_large = in_netns(ns_name, move || exchange(&big, t));
    assert!(too_large.starts_with("HTTP/1.0 431 "), "{too_large:?}");

    // A request cut short by the client's FIN: an answer, not a socket in CLOSE-WAIT.
    let cut = in_netns(ns_name, move || exchange_then(b"GET / HTTP/1.0\r\nHost: gu", t, true));
    assert!(cut.starts_with("HTTP/1.0 400 "), "{cut:?}");

    let post = in_netns(ns_name, move || exchange(b"POST / HTTP/1.0\r\nContent-Length: 0\r\n\r\n", t));
    assert!(post.starts_with("HTTP/1.0 405 ") && post.contains("Allow: GET, HEAD"), "{post:?}");

    let head = in_netns(ns_name, move || exchange(b"HEAD / HTTP/1.0\r\n\r\n", t));
    assert!(head.starts_with("HTTP/1.0 200 OK") && head.ends_with("\r\n\r\n"), "{head:?}");

    // A request split into many segments still arrives whole.
    let split = in_netns(ns_name, move || {
        let mut s = connect();
        for part in [&b"GET / HT"[..], b"TP/1.0\r", b"\nHost: g\r\n", b"\r\n"] {
            s.write_all(part).unwrap();
            thread::sleep(Duration::from_millis(50));
        }
        read_to_end(s, t)
    });
    assert!(split.starts_with("HTTP/1.0 200 OK"), "{split:?}");
}

/// `ab -c 1`: each request answered as soon as it arrives (no wait for a timer or the
/// next frame: a request read in the wrong poll once waited for the next packet).
fn sequential_requests_are_answered_at_once(ns: &Ns, limit: Duration) {
    let out = ns.command("ab").args(["-r", "-q", "-s", "30", "-n", "200", "-c", "1", URL]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(field(&text, "Failed requests:"), Some(0), "{text}");
    let mean_ms: f64 = text
        .lines()
        .find(|l| l.starts_with("Time per request:") && l.contains("(mean)"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no mean time per request in ab's output:\n{text}"));
    assert!(mean_ms < limit.as_secs_f64() * 1000.0, "ab -c 1: {mean_ms} ms per request (limit {limit:?})\n{text}");
}

/// `ab -r -n N -c 64`: every request completes, none fails or gets another status.
fn ab_gets_no_failed_request(ns: &Ns, requests: u32) -> String {
    let n = requests.to_string();
    let out = ns.command("ab").args(["-r", "-q", "-s", "30", "-n", &n, "-c", "64", URL]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(field(&text, "Complete requests:"), Some(requests as u64), "{text}");
    assert_eq!(field(&text, "Failed requests:"), Some(0), "{text}");
    assert!(!text.contains("Non-2xx responses"), "{text}");
    let rate = text.lines().find(|l| l.starts_with("Requests per second:")).unwrap_or("").trim().to_string();
    format!("ab -c 64: {requests} requests, 0 failed ({})", rate.split_whitespace().nth(3).unwrap_or("?"))
}

/// `wrk -c 64`: no connect, read, write or timeout error and no other status than 200.
fn wrk_gets_no_error(ns: &Ns, seconds: u32) -> String {
    let d = format!("{seconds}s");
    let out = ns.command("wrk").args(["-t", "2", "-c", "64", "-d", &d, "--timeout", "10s", URL]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}", show(&out));
    assert!(!text.contains("Socket errors"), "wrk saw socket errors:\n{text}");
    assert!(!text.contains("Non-2xx"), "{text}");
    let done = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no request count in wrk's output:\n{text}"));
    assert!(done > 0, "{text}");
    format!("wrk -c 64: {done} requests in {seconds} s, 0 errors")
}

/// Opens 200 idle connections and 20 clients sending a request one byte every 500 ms;
/// while they are open the guest answers `ab` at 64 connections with no failure. Then
/// every one of them is closed by the guest by its request deadline (plus slack).
fn idle_and_slow_clients_neither_stop_it_nor_stay_open(ns: &Ns, ns_name: &str, requests: u32) -> String {
    const IDLE: usize = 200;
    const SLOW: usize = 20;
    let opened = Instant::now();
    let (idle, slow) = in_netns(ns_name, || {
        let idle: Vec<TcpStream> = (0..IDLE).map(|_| connect()).collect();
        let slow: Vec<thread::JoinHandle<Option<Duration>>> = (0..SLOW)
            .map(|_| {
                let mut s = connect();
                thread::spawn(move || {
                    let start = Instant::now();
                    let _ = s.write_all(b"GET / HTTP/1.0\r\nX-Slow: ");
                    // Bounded: the deadline is 10 s; after 40 s the client gives up.
                    while start.elapsed() < Duration::from_secs(40) {
                        thread::sleep(Duration::from_millis(500));
                        if s.write_all(b"z").is_err() {
                            return Some(start.elapsed());
                        }
                    }
                    None
                })
            })
            .collect();
        (idle, slow)
    });
    // They are open: held, not just arriving. (Arriving within the same 50 ms as a burst
    // of 64 more, they would be more connections at once than the guest has sockets, and
    // the newest would be refused: see docs/runtime.md.)
    thread::sleep(Duration::from_millis(500));
    let ab = ab_gets_no_failed_request(ns, requests);
    let page = in_netns(ns_name, || exchange(b"GET / HTTP/1.0\r\n\r\n", Duration::from_secs(30)));
    assert!(page.starts_with("HTTP/1.0 200 OK"), "no page while idle and slow clients were open: {page:?}");
    let served_after = opened.elapsed();

    // Every idle connection ends (EOF or reset) by the deadline plus slack.
    let limit = REQUEST_TIMEOUT + Duration::from_secs(15);
    let mut open: Vec<TcpStream> = idle;
    for s in &open {
        s.set_nonblocking(true).unwrap();
    }
    while !open.is_empty() && opened.elapsed() < limit {
        open.retain(|s| {
            let mut buf = [0u8; 64];
            matches!((&*s).read(&mut buf), Err(e) if e.kind() == ErrorKind::WouldBlock)
        });
        thread::sleep(Duration::from_millis(200));
    }
    assert!(open.is_empty(), "{} of {IDLE} idle connections still open after {:?}", open.len(), opened.elapsed());
    let idle_closed_after = opened.elapsed();
    let slow_ends: Vec<Option<Duration>> = slow.into_iter().map(|h| h.join().unwrap()).collect();
    let still_open = slow_ends.iter().filter(|e| e.is_none()).count();
    assert_eq!(still_open, 0, "{still_open} of {SLOW} slow clients were never cut off: {slow_ends:?}");
    format!(
        "{IDLE} idle + {SLOW} slow clients: served while open ({ab}, page after {served_after:.1?}), all closed by the guest within {idle_closed_after:.1?}"
    )
}

/// 300 clients (more than the guest's 256 sockets) each take their page and keep their
/// side open; every one is answered, and so is `ab` at 64 connections after them.
fn clients_that_never_close_do_not_fill_it(ns: &Ns, ns_name: &str, requests: u32) -> String {
    const CLIENTS: usize = 300;
    let kept = in_netns(ns_name, || {
        (0..CLIENTS)
            .map(|i| {
                let mut s = connect();
                s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                let mut page = Vec::new();
                (&s).read_to_end(&mut page).unwrap_or_else(|e| panic!("client {i}: {e}"));
                assert!(page.starts_with(b"HTTP/1.0 200 OK"), "client {i}: {:?}", String::from_utf8_lossy(&page));
                s // kept open: the guest waits for its FIN
            })
            .collect::<Vec<_>>()
    });
    let ab = ab_gets_no_failed_request(ns, requests);
    drop(kept);
    format!("{CLIENTS} clients kept their side open after the page; then {ab}")
}

/// Connects to the guest (from a thread in the namespace).
fn connect() -> TcpStream {
    let addr = GUEST.parse().unwrap();
    TcpStream::connect_timeout(&addr, Duration::from_secs(30)).unwrap_or_else(|e| panic!("connect {GUEST}: {e}"))
}

/// Sends `request` and reads the answer until the guest closes (or `timeout`).
fn exchange(request: &[u8], timeout: Duration) -> String {
    exchange_then(request, timeout, false)
}

/// [`exchange`], closing the sending side after the request when `half_close`.
fn exchange_then(request: &[u8], timeout: Duration, half_close: bool) -> String {
    let mut s = connect();
    s.write_all(request).unwrap();
    if half_close {
        s.shutdown(Shutdown::Write).unwrap();
    }
    read_to_end(s, timeout)
}

fn read_to_end(mut s: TcpStream, timeout: Duration) -> String {
    s.set_read_timeout(Some(timeout)).unwrap();
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => String::from_utf8_lossy(&out).into_owned(),
        Err(e) => panic!("no complete answer within {timeout:?} ({e}); got {:?}", String::from_utf8_lossy(&out)),
    }
}

/// The number after `label` on its line of a tool's report.
fn field(text: &str, label: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(label)).and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Root (for the namespace) or a SKIP line; `ab` and `wrk` present or a failure.
fn root_and_tools(test: &str) -> bool {
    if !is_root() {
        skip(&format!("{test}: not root (needs a network namespace and TAP)"));
        return false;
    }
    for (tool, package) in [("ab", "apache2-utils"), ("wrk", "wrk")] {
        let found = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().unwrap().status.success();
        assert!(found, "{test}: `{tool}` is not installed (apt-get install {package}; .ci/run installs it)");
    }
    true
}

fn unikraft_provisioned(test: &str) -> bool {
    common::unikraft::sources_or_skip(test).is_some()
}

fn solo5_provisioned(test: &str) -> bool {
    let out = build_first(test, &["solo5-run", "--example", "hello", "--no-run"]);
    if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("is not provisioned") {
        skip_unprovisioned(test, "Solo5 is not provisioned (cargo xtask fetch --solo5, or --solo5-src DIR)");
        return false;
    }
    assert!(out.status.success(), "{}", show(&out));
    true
}
