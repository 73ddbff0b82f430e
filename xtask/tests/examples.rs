//! End-to-end tests: the real examples on the unix backend, driven through `cargo xtask`.
//! Network tests need root (a network namespace and a TAP); without it they print a
//! SKIP line and return.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Prints a skip line straight to stderr, so libtest's output capture does not hide it.
fn skip(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIP: {why}");
}

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

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

#[test]
fn bad_example_or_backend_is_a_clear_error() {
    let out = xtask(&["run", "--example", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown example `nope`; examples: hello"));
    let out = xtask(&["run", "--backend", "solo5"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("use `cargo xtask solo5-run --example NAME`"));
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

/// A namespace with tap0 = 10.0.0.1/24, deleted on drop.
struct Ns(String);
impl Ns {
    fn new(tag: &str) -> Ns {
        let name = format!("uktest-{tag}-{}", std::process::id());
        let ip = |args: &[&str]| assert!(Command::new("ip").args(args).status().unwrap().success(), "ip {args:?}");
        ip(&["netns", "add", &name]);
        let ns = Ns(name.clone());
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        ip(&["-n", &name, "tuntap", "add", "dev", "tap0", "mode", "tap"]);
        ip(&["-n", &name, "addr", "add", "10.0.0.1/24", "dev", "tap0"]);
        ip(&["-n", &name, "link", "set", "tap0", "up"]);
        ns
    }
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0, program]);
        c
    }
}
impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// A guest process, killed and reaped on drop (also when an assertion fails).
struct Guest(std::process::Child);
impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `example` inside `ns` and waits for its "listening" line.
fn start_in(ns: &Ns, example: &str) -> Guest {
    let build = Command::new(env!("CARGO")).args(["build", "--quiet", "-p", example]).status().unwrap();
    assert!(build.success());
    let bin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug").join(example);
    let mut child = ns.command("env").arg("RT_UNIX_TAP=tap0").arg(bin).stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let guest = Guest(child);
    let first = lines.next().expect("a line").unwrap();
    assert!(first.contains("listening on 10.0.0.2"), "{first}");
    guest
}

#[test]
fn udp_echo_answers_a_datagram_from_the_host() {
    if !is_root() {
        skip("udp_echo_answers_a_datagram_from_the_host: not root (needs a network namespace and TAP)");
        return;
    }
    let ns = Ns::new("udp");
    let guest = start_in(&ns, "udp-echo");
    let out = ns.command(XTASK).args(["peer", "udp", "--message", "ping-from-host"]).output().unwrap();
    drop(guest);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("reply from 10.0.0.2:7: ping-from-host"), "{stdout}");
}

#[test]
fn http_serves_its_page_to_the_host() {
    if !is_root() {
        skip("http_serves_its_page_to_the_host: not root (needs a network namespace and TAP)");
        return;
    }
    let ns = Ns::new("http");
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
    if is_root() {
        assert!(stdout.contains("CONFORMANCE END pass=26 fail=0 skip=0"), "{stdout}");
    } else {
        skip("conformance net cases: not root");
    }
}
