//! `cargo xtask bench-sockets`: what std's sockets cost on Unikraft.
//!
//! From one run, with a real client (`wrk`, 64 connections, [`HTTP_SECONDS`] s):
//!
//! * (a) `examples/tokio-http` on unix (the host's sockets and epoll), keep-alive;
//! * (b) the same server on Unikraft, through posix-socket and rt-unikraft's socket driver,
//!   keep-alive, and (b') with a connection per request (`Connection: close`);
//! * (c) `examples/http` on Unikraft, on shared-core's own smoltcp API (no sockets), which
//!   closes every connection after its answer;
//! * (d), (e) an unmodified plain axum server (no dependency on this project) run with
//!   `cargo unikraft run`, through `-p` (user-mode networking) and through `--tap`,
//!   keep-alive ([`crate::bench_sockets_plain`]).
//!
//! The ratio compares (b') with (c): the same protocol behaviour on both sides.
//!
//! For each: requests per second and CPU time per request (the guest's QEMU, or the unix
//! process, from /proc). The target: the socket path costs at most 1.25x the native API's
//! CPU per request on Unikraft. The two Unikraft servers are not the same code (hyper
//! against the example's hand-written HTTP), so the ratio bounds what the socket layer
//! adds plus hyper's own cost. A bounded TCP bulk transfer ([`BULK_BYTES`] echoed back)
//! gives MB/s through `examples/std-echo` on unix and on Unikraft (socket driver), and
//! through `examples/tcp-echo` on Unikraft (native API, same 64 KiB buffers): the target
//! there is at least [`BULK_TARGET`]x the native API's throughput. Under TCG only
//! the ratios mean anything. Load stays in a network namespace the benchmark creates;
//! every guest and process is stopped at the end of its run.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::netns::{self, NetNs};
use anyhow::{bail, Context, Result};
use cargo_unikraft::runner::qemu::{Qemu, QemuDevices};
use cargo_unikraft::runner::{Accel, Guest, Process};
use cargo_unikraft::sources;
use cargo_unikraft::unikraft::build_image;

use crate::examples;

/// Seconds of HTTP load per server.
const HTTP_SECONDS: u64 = 10;
/// Connections `wrk` keeps open.
const CONNECTIONS: u32 = 64;
/// Bytes sent through the TCP echo (and received back).
const BULK_BYTES: usize = 16 << 20;
/// The most the socket path may cost per request, against the native API.
const TARGET: f64 = 1.25;
/// The least TCP bulk throughput the socket path may have, against the native API.
const BULK_TARGET: f64 = 0.8;

/// One server's figures.
pub(crate) struct Http {
    requests: u64,
    per_second: f64,
    cpu_per_request: Duration,
    /// Requests wrk gave up on after its 5 s timeout (printed with the row; any other
    /// socket error or non-2xx answer fails the benchmark).
    timeouts: u64,
}

/// CPU time (user + system) of process `pid` so far, from /proc.
fn cpu_time(pid: u32) -> Result<Duration> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("read /proc/{pid}/stat"))?;
    let (_, rest) = stat.rsplit_once(')').context("malformed /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // USER_HZ is 100 on Linux.
    Ok(Duration::from_millis(ticks * 10))
}

/// Waits until the child prints a line containing `ready` (or ends).
pub(crate) fn wait_for(child: &mut Child, ready: &str) -> Result<()> {
    let stdout = child.stdout.take().context("piped stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    if !lines.by_ref().map_while(Result::ok).any(|l| l.contains(ready)) {
        bail!("the server never printed `{ready}`");
    }
    // Keep draining, so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    Ok(())
}

/// wrk's "Socket errors: connect 0, read 0, write 0, timeout 2" as (connect + read +
/// write errors, timeouts); (0, 0) when the line is absent (wrk prints it only for errors).
fn socket_errors(wrk_report: &str) -> (u64, u64) {
    let counts: Vec<u64> = wrk_report
        .lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors:"))
        .map(|l| l.split(',').filter_map(|part| part.split_whitespace().last()?.parse().ok()).collect())
        .unwrap_or_default();
    (counts.iter().take(3).sum(), counts.get(3).copied().unwrap_or(0))
}

/// Runs `wrk` (through `wrap`, to enter the namespace) against `url`, measuring `pid`'s CPU;
/// with `close`, every request on a connection of its own (`Connection: close`), which is
/// what the `http` example does whatever the client asks.
pub(crate) fn load(wrap: impl Fn(&str) -> Command, url: &str, pid: u32, close: bool) -> Result<Http> {
    let before = cpu_time(pid)?;
    let mut wrk = wrap("wrk");
    wrk.args(["-t2", &format!("-c{CONNECTIONS}"), &format!("-d{HTTP_SECONDS}s"), "--timeout", "5s"]);
    if close {
        wrk.args(["-H", "Connection: close"]);
    }
    let out = wrk.arg(url).output().context("run wrk")?;
    let used = cpu_time(pid)? - before;
    let text = String::from_utf8_lossy(&out.stdout);
    // Timeouts are counted and shown (a busy host's TCG guest may miss wrk's 5 s for a
    // few); any other socket error is a failure.
    let (other_errors, timeouts) = socket_errors(&text);
    if !out.status.success() || other_errors > 0 || text.contains("Non-2xx") {
        bail!("wrk against {url} saw errors:\n{text}{}", String::from_utf8_lossy(&out.stderr));
    }
    let requests: u64 = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no request count in wrk's report:\n{text}"))?;
    let per_second: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|n| n.trim().parse().ok())
        .with_context(|| format!("no rate in wrk's report:\n{text}"))?;
    Ok(Http { requests, per_second, cpu_per_request: used / requests.max(1) as u32, timeouts })
}

/// This xtask's executable (for `xtask peer` inside the namespace). A rebuild while the
/// benchmark runs replaces the file: Linux then names the running one "... (deleted)",
/// and the new file at the same path does the same job.
fn self_exe() -> Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    let text = exe.to_str().context("exe path")?;
    Ok(text.strip_suffix(" (deleted)").unwrap_or(text).into())
}

/// MB/s of a [`BULK_BYTES`] echo through `peer tcp-echo` (bytes each way over the time).
fn bulk(wrap: impl Fn(&str) -> Command, guest: &str, port: u16) -> Result<f64> {
    let exe = self_exe()?;
    let start = Instant::now();
    let out = wrap(exe.to_str().context("exe path")?)
        .args(["peer", "tcp-echo", "--guest", guest, "--port", &port.to_string(), "--bytes", &BULK_BYTES.to_string()])
        .output()
        .context("run the TCP echo peer")?;
    let took = start.elapsed();
    if !out.status.success() {
        bail!("TCP echo failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(BULK_BYTES as f64 / took.as_secs_f64() / 1e6)
}

/// Boots `example`'s image in a fresh namespace and runs `f` against it.
fn on_unikraft<T>(example: &str, ready: &str, f: impl FnOnce(&NetNs, u32) -> Result<T>) -> Result<T> {
    let sources = sources::provisioned()?;
    let app = examples::app(example)?;
    let image = build_image(&app, "qemu/x86_64", &sources)?;
    let ns = NetNs::create("ukbenchsock")?;
    let devices = QemuDevices { tap: Some(netns::TAP.to_string()), ..QemuDevices::default() };
    let guest = Qemu::new(&image, app.spec.memory_mib, Accel::Tcg, devices)?;
    let qemu_cmd = guest.command(&[]);
    // `ip netns exec` execs QEMU: the child's pid is QEMU's.
    let mut child = ns.wrap(&qemu_cmd).stdout(Stdio::piped()).spawn().context("start QEMU")?;
    let result = wait_for(&mut child, ready).and_then(|()| f(&ns, child.id()));
    let _ = child.kill();
    let _ = child.wait();
    drop(ns);
    result
}

/// Runs `example`'s unix binary (release) with `args` and runs `f` against it.
fn on_unix<T>(example: &str, args: &[String], ready: &str, f: impl FnOnce(u32) -> Result<T>) -> Result<T> {
    let root = examples::workspace_root();
    let status = Command::new("cargo")
        .args(["build", "--release", "-q", "-p", example])
        .current_dir(&root)
        .status()
        .context("cargo build")?;
    if !status.success() {
        bail!("building {example} for unix failed");
    }
    let server = Process::new(root.join("target/release").join(example));
    let mut child = server.command(args).stdout(Stdio::piped()).spawn().context("start the server")?;
    let result = wait_for(&mut child, ready).and_then(|()| f(child.id()));
    let _ = child.kill();
    let _ = child.wait();
    result
}

fn show(label: &str, h: &Http) {
    println!(
        "  {label:<44} {:>9.0} requests/s  {:>8.1} us CPU/request  ({} requests, {} timed out)",
        h.per_second,
        h.cpu_per_request.as_secs_f64() * 1e6,
        h.requests,
        h.timeouts
    );
}

/// `cargo xtask bench-sockets`.
pub fn bench_sockets() -> Result<u8> {
    if !netns::is_root() {
        bail!("bench-sockets needs root (it boots the guests in a network namespace with a TAP)");
    }
    which::which("wrk").context("wrk is not installed (Debian: apt-get install wrk)")?;
    let host = |program: &str| Command::new(program);
    let port = 18080 + (std::process::id() % 1000) as u16;

    eprintln!("bench: (a) tokio-http on unix");
    let unix_url = format!("http://127.0.0.1:{port}/");
    let unix =
        on_unix("tokio-http", &[format!("--port={port}")], "listening", |pid| load(host, &unix_url, pid, false))?;
    eprintln!("bench: (b) tokio-http on Unikraft (std sockets), keep-alive, then a connection per request");
    let url = format!("http://{}/", netns::GUEST_IP);
    let (sockets, sockets_close) = on_unikraft("tokio-http", "tokio-http: listening", |ns, pid| {
        Ok((load(|p| ns.command(p), &url, pid, false)?, load(|p| ns.command(p), &url, pid, true)?))
    })?;
    eprintln!("bench: (c) http on Unikraft (shared-core's smoltcp API), a connection per request");
    let native = on_unikraft("http", "listening on", |ns, pid| load(|p| ns.command(p), &url, pid, true))?;

    let plain = crate::bench_sockets_plain::measure(port + 2000)?;

    eprintln!("bench: TCP bulk through std-echo, unix and Unikraft");
    let echo_port = port + 1000;
    let unix_bulk =
        on_unix("std-echo", &[format!("--port={echo_port}")], "listening", |_| bulk(host, "127.0.0.1", echo_port))?;
    let uk_bulk = on_unikraft("std-echo", "std-echo: listening", |ns, _| bulk(|p| ns.command(p), netns::GUEST_IP, 7))?;
    eprintln!("bench: TCP bulk through tcp-echo (native API) on Unikraft");
    let native_bulk =
        on_unikraft("tcp-echo", "tcp-echo: listening", |ns, _| bulk(|p| ns.command(p), netns::GUEST_IP, 7))?;

    println!("sockets benchmark (wrk -c{CONNECTIONS}, {HTTP_SECONDS} s per server; Unikraft under QEMU TCG)");
    show("(a) tokio-http, unix", &unix);
    show("(b) tokio-http, Unikraft socket driver, keep-alive", &sockets);
    show("(b') tokio-http, Unikraft socket driver, a connection per request", &sockets_close);
    show("(c) http example, Unikraft native smoltcp API, a connection per request", &native);
    show("(d) plain axum server, `cargo unikraft run -p` (user-mode net)", &plain.published);
    show("(e) plain axum server, `cargo unikraft run --tap`", &plain.tap);
    // The same protocol behaviour on both sides: a connection per request.
    let ratio = sockets_close.cpu_per_request.as_secs_f64() / native.cpu_per_request.as_secs_f64();
    println!(
        "  CPU per request, socket path / native API on Unikraft, both a connection per request: {ratio:.2}x \
         (target at most {TARGET}x); requests/s: {:.2}x",
        sockets_close.per_second / native.per_second
    );
    println!(
        "  CPU per request, Unikraft socket path / unix: {:.2}x",
        sockets.cpu_per_request.as_secs_f64() / unix.cpu_per_request.as_secs_f64()
    );
    println!(
        "  TCP bulk echo of {} MiB: unix {unix_bulk:.1} MB/s, Unikraft socket driver {uk_bulk:.1} MB/s ({:.2}x), \
         Unikraft native API {native_bulk:.1} MB/s",
        BULK_BYTES >> 20,
        uk_bulk / unix_bulk
    );
    let bulk_ratio = uk_bulk / native_bulk;
    println!("  TCP bulk, socket path / native API on Unikraft: {bulk_ratio:.2}x (target at least {BULK_TARGET}x)");
    Ok(if ratio <= TARGET && bulk_ratio >= BULK_TARGET { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    #[test]
    fn wrk_socket_errors_split_timeouts_from_the_rest() {
        assert_eq!(super::socket_errors("  Socket errors: connect 0, read 0, write 0, timeout 2\n"), (0, 2));
        assert_eq!(super::socket_errors("Socket errors: connect 1, read 2, write 3, timeout 0"), (6, 0));
        assert_eq!(super::socket_errors("Requests/sec: 100"), (0, 0));
    }

    #[test]
    fn own_cpu_time_is_readable() {
        let t = super::cpu_time(std::process::id()).unwrap();
        assert!(t < std::time::Duration::from_secs(3600));
    }
}
