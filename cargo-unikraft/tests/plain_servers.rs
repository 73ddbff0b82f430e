//! Unmodified servers from the crate registry as unikernels: plain `fn main()` crates
//! outside this workspace, with no dependency on this project and no change but
//! `[package.metadata.unikraft] devices = ["net"], sockets = true`, run with
//! `cargo unikraft run -p HOST:GUEST` (QEMU's user-mode networking: no root, no TAP), each
//! on a different stack: `tiny_http` (std::net and threads), `axum` (tokio and hyper) and
//! `smol` (async-io over epoll). Each answers a request, takes `wrk -c64` for 10 s with
//! no socket error, and answers again; then, as root, the same again with the guest on a
//! TAP device (`--tap`) in a network namespace the test creates (without root that half
//! prints a `SKIP:` line). A plain program also talks to itself over
//! 127.0.0.1 and `localhost` (TCP and UDP) in an image with no net device at all.
//!
//! They need the pinned sources and the crates from the registry; without the sources each
//! test prints a `SKIP:` line (a failure with `UNIKERNEL_REQUIRE_SOURCES=1`), without `wrk`
//! the load part is skipped with a line saying so.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

mod common;

use common::{free_port, provisioned, show, skip, Running};

const TOOL: &str = env!("CARGO_BIN_EXE_cargo-unikraft");

static SERIAL: Mutex<()> = Mutex::new(());

/// A crate under the system temp dir (reused between runs, so a rerun only relinks).
fn write_crate(name: &str, dependencies: &str, main: &str) -> PathBuf {
    write_crate_with(name, dependencies, "", main)
}

/// [`write_crate`] with more `[package.metadata.unikraft]` lines.
fn write_crate_with(name: &str, dependencies: &str, metadata: &str, main: &str) -> PathBuf {
    let dir = std::env::temp_dir().join("cargo-unikraft-plain-servers").join(name);
    let manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n{dependencies}\n\
         [package.metadata.unikraft]\ndevices = [\"net\"]\nsockets = true\n{metadata}\n[workspace]\n"
    );
    for (path, body) in [("Cargo.toml", manifest.as_str()), ("src/main.rs", main)] {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        if fs::read_to_string(&path).ok().as_deref() != Some(body) {
            fs::write(&path, body).unwrap();
        }
    }
    assert!(!manifest.contains("unikernel"), "the crate must not depend on this project");
    dir
}

fn tool(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(TOOL);
    cmd.arg("unikraft").args(args).current_dir(dir);
    cmd
}

/// `wrk -c64` for 10 s on `url`, run by `wrap` (the host, or a namespace); asserts no
/// socket error and no non-2xx answer. Skips with a line when wrk is missing.
fn load(test: &str, wrap: impl Fn(&str) -> Command, url: &str) {
    match which::which("wrk") {
        Err(_) => skip(&format!("{test}: wrk is not installed; the load part did not run")),
        Ok(wrk) => {
            let out =
                wrap(wrk.to_str().unwrap()).args(["-t2", "-c64", "-d10s", "--timeout", "10s", url]).output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            println!("{test}: {url}: {}", text.lines().find(|l| l.contains("requests in")).unwrap_or("no count"));
            assert!(out.status.success(), "{test}: wrk failed\n{}", show(&out));
            assert!(!text.contains("Socket errors") && !text.contains("Non-2xx"), "{test}: errors under load:\n{text}");
        }
    }
}

fn http_get(port: u16) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the published port");
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

/// Builds the server crate `dir` (before any timer), runs it with `-p PORT:8080`, and
/// checks a request, `wrk -c64` for 10 s with no socket error, and a request after.
fn serve_and_load(test: &str, dir: &Path, ready: &str, answer: &str) {
    let build = tool(dir, &["run", "--no-boot"]).output().unwrap();
    assert!(build.status.success(), "{test}: build failed\n{}", show(&build));
    let port = free_port();
    let mut run = Running::start(tool(dir, &["run", "-p", &format!("{port}:8080")]));
    run.wait_for(ready, Duration::from_secs(120));
    assert!(http_get(port).contains(answer), "{test}: no answer before the load");
    load(test, |program| Command::new(program), &format!("http://127.0.0.1:{port}/"));
    assert!(http_get(port).contains(answer), "{test}: no answer after the load");
    drop(run);
    serve_and_load_on_a_tap(test, dir, ready, answer);
}

/// As root: the same server on a TAP device in a namespace of its own (`--tap`), reached
/// at the guest's default address; a request, the load, a request. A SKIP line otherwise.
fn serve_and_load_on_a_tap(test: &str, dir: &Path, ready: &str, answer: &str) {
    if !e2e::netns::is_root() {
        skip(&format!("{test}: not root; the --tap half did not run (needs a network namespace and TAP)"));
        return;
    }
    let ns = e2e::netns::Ns::new("plainsrv");
    let mut run_in_ns = ns.command(TOOL);
    run_in_ns.args(["unikraft", "run", "--no-build", "--tap", "tap0"]).current_dir(dir);
    let mut run = Running::start(run_in_ns);
    run.wait_for(ready, Duration::from_secs(120));
    let url = "http://10.0.0.2:8080/";
    let get = || {
        let out = ns.command("curl").args(["-sS", "--max-time", "20", url]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(get().contains(answer), "{test}: no answer on the TAP before the load");
    load(test, |program| ns.command(program), url);
    assert!(get().contains(answer), "{test}: no answer on the TAP after the load");
    drop(run);
}

#[test]
fn a_plain_program_talks_to_itself_over_loopback_with_no_net_device() {
    let test = "a_plain_program_talks_to_itself_over_loopback_with_no_net_device";
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !provisioned(test) {
        return;
    }
    let dir = write_crate("plain-loopback", "", include_str!("plain_servers/loopback.rs"));
    // No -p and no --tap: the image has its virtio-net driver but no device.
    let out = tool(&dir, &["run"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("tcp over 127.0.0.1:"), "{}", show(&out));
    assert!(stdout.contains(": hello"), "{}", show(&out));
    assert!(stdout.contains("udp from 127.0.0.1:"), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback only") || stdout.contains("loopback only"));
    assert_eq!(out.status.code(), Some(7), "{}", show(&out));
}

#[test]
fn std_and_tokio_udp_senders_that_outpace_the_link_finish() {
    let test = "std_and_tokio_udp_senders_that_outpace_the_link_finish";
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !provisioned(test) {
        return;
    }
    let deps = "tokio = { version = \"1\", features = [\"rt\", \"net\"] }\n";
    let dir = write_crate("plain-udp-senders", deps, include_str!("plain_servers/udp_senders.rs"));
    let build = tool(&dir, &["run", "--no-boot"]).output().unwrap();
    assert!(build.status.success(), "{test}: build failed\n{}", show(&build));
    // The host end: QEMU's user-mode networking delivers the guest's datagrams for
    // 10.0.2.2 to the host's loopback.
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sink.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let sink_port = sink.local_addr().unwrap().port();
    let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = received.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !stopped.load(std::sync::atomic::Ordering::SeqCst) {
            if let Ok(1472) = sink.recv(&mut buf) {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    });
    let publish = format!("{}:9/udp", free_port());
    let env = format!("UDP_SINK=10.0.2.2:{sink_port}");
    let mut run = Running::start(tool(&dir, &["run", "--no-build", "-p", &publish, "-e", &env]));
    run.wait_for("std: sent 500", Duration::from_secs(120));
    run.wait_for("tokio: sent 500", Duration::from_secs(60));
    let status = run.child.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    reader.join().unwrap();
    let got = received.load(std::sync::atomic::Ordering::SeqCst);
    println!("{test}: the host received {got} of 1000 datagrams");
    assert_eq!(status.code(), Some(0), "{test}: the program did not exit 0: {:?}", run.seen);
    assert!(got > 0, "{test}: no datagram reached the host");
}

#[test]
fn tiny_http_on_std_net_serves_through_a_published_port() {
    let test = "tiny_http_on_std_net_serves_through_a_published_port";
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !provisioned(test) {
        return;
    }
    // tiny_http runs a thread per connection: under wrk's 64 connections about 70 threads,
    // past Unikraft's default of 31 (`LIBPOSIX_PROCESS_MAX_PID`: a spawn then fails with
    // EAGAIN and tiny_http's pool panics), with their 256 KiB stacks beside 64 sockets'
    // 128 KiB of buffers (docs/unikraft.md#sockets).
    let dir = write_crate_with(
        "srv-tiny-http",
        "tiny_http = \"0.12\"\n",
        "memory = \"256M\"\nkconfig = { CONFIG_LIBPOSIX_PROCESS_MAX_PID = \"1024\" }\n",
        include_str!("plain_servers/tiny_http.rs"),
    );
    serve_and_load(test, &dir, "tiny_http: listening", "hello from tiny_http");
}

#[test]
fn axum_on_tokio_serves_through_a_published_port() {
    let test = "axum_on_tokio_serves_through_a_published_port";
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !provisioned(test) {
        return;
    }
    let deps = "axum = \"0.8\"\ntokio = { version = \"1\", features = [\"rt-multi-thread\", \"macros\", \"net\"] }\n";
    let dir = write_crate("srv-axum", deps, include_str!("plain_servers/axum.rs"));
    serve_and_load(test, &dir, "axum: listening", "hello from axum");
}

#[test]
fn smol_on_async_io_serves_through_a_published_port() {
    let test = "smol_on_async_io_serves_through_a_published_port";
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !provisioned(test) {
        return;
    }
    let dir = write_crate("srv-smol", "smol = \"2\"\n", include_str!("plain_servers/smol.rs"));
    serve_and_load(test, &dir, "smol: listening", "hello from smol");
}

#[test]
fn cargo_unikraft_test_runs_tests_that_connect_to_themselves() {
    let test = "cargo_unikraft_test_runs_tests_that_connect_to_themselves";
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !provisioned(test) {
        return;
    }
    let dir = write_crate("lib-loopback-tests", "", "fn main() {}\n");
    let tests = r#"#[test]
fn a_server_and_a_client_in_one_test() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4];
        conn.read_exact(&mut buf).unwrap();
        conn.write_all(&buf).unwrap();
    });
    let mut client = std::net::TcpStream::connect(("localhost", addr.port())).unwrap();
    client.write_all(b"ping").unwrap();
    let mut back = [0u8; 4];
    client.read_exact(&mut back).unwrap();
    server.join().unwrap();
    assert_eq!(&back, b"ping");
}
"#;
    let path = dir.join("tests/loopback.rs");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    if fs::read_to_string(&path).ok().as_deref() != Some(tests) {
        fs::write(&path, tests).unwrap();
    }
    let out = tool(&dir, &["test"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // (The socket layer's console line may come between libtest's name and its verdict.)
    assert!(stdout.contains("test a_server_and_a_client_in_one_test ..."), "{}", show(&out));
    assert!(stdout.contains("test result: ok. 1 passed; 0 failed"), "{}", show(&out));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}
