//! End-to-end tests: the real examples on the unix backend, driven through `cargo xtask`.
//! Network tests need root (a network namespace and a TAP); without it they print a
//! SKIP line and return.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{is_root, skip, start_until, Guest, Ns, XTASK};

fn xtask(args: &[&str]) -> std::process::Output {
    Command::new(XTASK).args(args).output().expect("run xtask")
}

#[test]
fn run_defaults_to_hello_on_unix_and_passes_boot_args() {
    let out = xtask(&["run", "--", "a", "b"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Hello from a unikernel! (backend: unix)"), "{stdout}");
    assert!(stdout.contains("boot args: a b"), "{stdout}");
}

#[test]
fn run_propagates_the_exit_code() {
    let out = xtask(&["run", "--example", "hello", "--", "--exit=3"]);
    assert_eq!(out.status.code(), Some(3));
}

/// Exit statuses agree on every backend: a code outside 0..=255, returned from `run` or
/// passed to `services::exit`, ends with 255, never 0 (a process keeps only the low byte,
/// so 256 would read as success). solo5.rs and unikraft.rs check the same table.
#[test]
fn out_of_range_exit_codes_are_255_never_0() {
    for (arg, want) in [
        ("--exit=255", 255),
        ("--exit=256", 255),
        ("--exit=512", 255),
        ("--exit=-1", 255),
        ("--exit=-256", 255),
        ("--services-exit=7", 7),
        ("--services-exit=-1", 255),
        ("--services-exit=256", 255),
    ] {
        let out = xtask(&["run", "--example", "hello", "--", arg]);
        assert_eq!(out.status.code(), Some(want), "{arg}:\n{}", String::from_utf8_lossy(&out.stdout));
    }
}

#[test]
fn bad_example_or_backend_is_a_clear_error() {
    let out = xtask(&["run", "--example", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown example `nope`; examples: hello"));
    let out = xtask(&["run", "--backend", "solo5", "--example", "hello-std"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    // hello-std needs std, which Solo5 cannot have: a clear error either way (or, with
    // no Solo5 provisioned, the message saying how to provision it).
    assert!(err.contains("no_std") || err.contains("not provisioned"), "{err}");
}

#[test]
fn doctor_lists_every_backend() {
    let out = xtask(&["doctor"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for needle in ["unix:", "unikraft:", "solo5:", "qemu-system-x86_64", "=> unix:"] {
        assert!(stdout.contains(needle), "missing {needle}: {stdout}");
    }
}

/// Starts `example` inside `ns` and waits for its "listening" line.
fn start_in(ns: &Ns, example: &str) -> Guest {
    let build = Command::new(env!("CARGO")).args(["build", "--quiet", "-p", example]).status().unwrap();
    assert!(build.success());
    let bin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug").join(example);
    let mut cmd = ns.command("env");
    cmd.arg("RT_UNIX_TAP=tap0").arg(bin);
    start_until(cmd, "listening on 10.0.0.2", Duration::from_secs(30))
}

#[test]
fn udp_echo_answers_a_datagram_from_the_host() {
    if !is_root() {
        skip("udp_echo_answers_a_datagram_from_the_host: not root (needs a network namespace and TAP)");
        return;
    }
    let ns = Ns::new("uktest-udp");
    let guest = start_in(&ns, "udp-echo");
    let out = ns.command(XTASK).args(["peer", "udp", "--message", "ping-from-host"]).output().unwrap();
    drop(guest);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("reply from 10.0.0.2:7: ping-from-host"), "{stdout}");
}

#[test]
fn tcp_echo_returns_a_megabyte_intact_twice() {
    if !is_root() {
        skip("tcp_echo_returns_a_megabyte_intact_twice: not root (needs a network namespace and TAP)");
        return;
    }
    let ns = Ns::new("uktest-tcpecho");
    let guest = start_in(&ns, "tcp-echo");
    // Twice: the second connection shows the socket listens again after the first closed.
    for round in 1..=2 {
        let out = ns.command(XTASK).args(["peer", "tcp-echo", "--port", "7", "--bytes", "1048576"]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "round {round}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("tcp echo: 1048576 bytes from 10.0.0.2:7 echoed intact"), "round {round}: {stdout}");
    }
    drop(guest);
}

#[test]
fn http_serves_its_page_to_the_host() {
    if !is_root() {
        skip("http_serves_its_page_to_the_host: not root (needs a network namespace and TAP)");
        return;
    }
    let ns = Ns::new("uktest-http");
    let guest = start_in(&ns, "http");
    let out = ns.command(XTASK).args(["peer", "http"]).output().unwrap();
    drop(guest);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("HTTP/1.0 200 OK"), "{stdout}");
    assert!(stdout.contains("Hello from a unikernel"), "{stdout}");
}

#[test]
fn conformance_passes_on_unix() {
    let out = xtask(&["conformance", "--backend", "unix"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("CONFORMANCE END pass="), "{stdout}");
    assert!(!stdout.contains("\nFAIL "), "{stdout}");
    // The block device is a file: the block cases run without root.
    for case in ["block.encrypted", "host.block-encrypted-image"] {
        assert!(stdout.contains(&format!("PASS {case} ")), "{case} did not pass:\n{stdout}");
    }
    // The std.net section (its own guest on the host's sockets, in the namespace) is
    // merged into the report: the runner's END line counts it, the main guest's is a comment.
    assert!(stdout.contains("# the main guest's CONFORMANCE END pass="), "{stdout}");
    if is_root() {
        for case in conformance_protocol::STD_NET_CASES {
            assert!(stdout.contains(&format!("\nPASS {case} ")), "{case} did not pass:\n{stdout}");
        }
        assert!(stdout.contains("CONFORMANCE END pass=33 fail=0 skip=0"), "{stdout}");
    } else {
        for case in conformance_protocol::STD_NET_CASES {
            assert!(stdout.contains(&format!("\nSKIP {case} not root")), "{case} was not skipped:\n{stdout}");
        }
        skip("conformance net cases: not root");
    }
}
