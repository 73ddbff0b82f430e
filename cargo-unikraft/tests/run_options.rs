//! `cargo unikraft run -p` and `-e` on real guests, and `--disk` names with commas:
//!
//! * the workspace's `http` example served to the host through `-p HOST:80` on QEMU's
//!   user-mode networking: no root, no network namespace, no TAP; `std-echo` (std::net
//!   over the socket driver) echoing TCP and UDP through two published ports;
//! * a host port already in use: refused naming the spec before anything is built or
//!   started, and QEMU's own failure to forward (should the port be taken after the check)
//!   named the same way;
//! * `-e` reaching `std::env` of a plain `fn main()` binary (on Unikraft and hosted-musl),
//!   and `cargo unikraft oci -e` reaching it through the image's `Env` as urunc passes it;
//! * a disk image named `a,b.img` (and `x.img,readonly=on`) attached as named (finding
//!   A19: QEMU's option parser needs `,,`).
//!
//! Guests need the pinned Unikraft sources and QEMU; without them each test prints a
//! `SKIP:` line (a failure with `UNIKERNEL_REQUIRE_SOURCES=1`, as CI sets). The `http`
//! image is the one the end-to-end tests (e2e/) build (same target directory), the plain crate lives
//! under the system temp dir and is reused between runs.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

mod common;

use common::{free_port, provisioned, show, skip, Running};

const TOOL: &str = env!("CARGO_BIN_EXE_cargo-unikraft");

/// The guests share build directories and the 2-core machines: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn http_manifest() -> String {
    workspace_root().join("examples/http/Cargo.toml").display().to_string()
}

fn tool(args: &[&str]) -> Command {
    let mut cmd = Command::new(TOOL);
    cmd.arg("unikraft").args(args);
    cmd
}

/// The QEMU processes whose command line forwards `port`.
fn qemus_forwarding(port: u16) -> Vec<u32> {
    let needle = format!(":{port}-");
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let c = String::from_utf8_lossy(&c);
                c.starts_with("qemu-system") && c.contains("hostfwd") && c.contains(&needle)
            })
        })
        .collect()
}

/// `GET /` over TCP to 127.0.0.1:`port`: the whole answer.
fn http_get(port: u16) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

/// The http example, unchanged, answers the host through `-p` without root or a TAP: the
/// tool prints where it is reached, and the guest took its address from `netdev.ip`.
#[test]
fn http_answers_on_a_published_port_without_a_tap() {
    let _serial = serial();
    let test = "http_answers_on_a_published_port_without_a_tap";
    if !provisioned(test) {
        return;
    }
    let build = tool(&["run", "--manifest-path", &http_manifest(), "--no-boot"]).output().unwrap();
    assert!(build.status.success(), "{}", show(&build));

    let port = free_port();
    let spec = format!("{port}:80");
    let mut run = Running::start(tool(&["run", "--manifest-path", &http_manifest(), "-p", &spec]));
    let reach = run.wait_for("reach the app at", Duration::from_secs(60));
    assert!(reach.ends_with(&format!("reach the app at 127.0.0.1:{port} (tcp) -> guest 10.0.2.15:80")), "{reach}");
    run.wait_for("from the platform (netdev.ip)", Duration::from_secs(120));
    // The example reports the address it serves on, which netdev.ip gave it.
    run.wait_for("http: listening on 10.0.2.15:80", Duration::from_secs(60));
    // Several requests, each on its own connection through QEMU's forward.
    for i in 0..5 {
        let answer = http_get(port).unwrap_or_else(|e| panic!("request {i}: {e}; output:\n{}", run.seen.join("\n")));
        assert!(answer.starts_with("HTTP/1.") && answer.contains("Hello from a unikernel"), "request {i}: {answer}");
    }
    drop(run);
    assert!(qemus_forwarding(port).is_empty(), "QEMU still runs after the tool was killed");
}

/// A std::net server (the std-echo example, `sockets = true`) over rt-unikraft's socket
/// driver: TCP and UDP through two published ports at once, the driver's address from
/// `netdev.ip`.
#[test]
fn std_echo_answers_tcp_and_udp_on_published_ports() {
    let _serial = serial();
    if !provisioned("std_echo_answers_tcp_and_udp_on_published_ports") {
        return;
    }
    let manifest = workspace_root().join("examples/std-echo/Cargo.toml").display().to_string();
    let build = tool(&["run", "--manifest-path", &manifest, "--no-boot"]).output().unwrap();
    assert!(build.status.success(), "{}", show(&build));

    let (tcp_port, udp_port) = (free_port(), free_udp_port());
    let (tcp_spec, udp_spec) = (format!("{tcp_port}:7"), format!("{udp_port}:7/udp"));
    let mut run = Running::start(tool(&["run", "--manifest-path", &manifest, "-p", &tcp_spec, "-p", &udp_spec]));
    let reach = run.wait_for(&format!("reach the app at 127.0.0.1:{udp_port} (udp)"), Duration::from_secs(60));
    assert!(reach.ends_with("-> guest 10.0.2.15:7"), "{reach}");
    let address = run.wait_for("rt-unikraft sockets: IPv4", Duration::from_secs(120));
    assert!(
        address.contains("IPv4 10.0.2.15/24, gateway 10.0.2.2, DNS 10.0.2.3") && address.ends_with("(from netdev.ip)"),
        "{address}"
    );
    run.wait_for("std-echo: listening", Duration::from_secs(60));

    let mut stream = TcpStream::connect(("127.0.0.1", tcp_port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let message = b"through a published port";
    stream.write_all(message).unwrap();
    let mut echo = vec![0u8; message.len()];
    stream.read_exact(&mut echo).unwrap_or_else(|e| panic!("TCP echo: {e}; output:\n{}", run.seen.join("\n")));
    assert_eq!(echo, message);

    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 64];
    // Datagrams can be lost; a few tries.
    let answered = (0..5).any(|_| {
        udp.send_to(b"udp ping", ("127.0.0.1", udp_port)).unwrap();
        matches!(udp.recv_from(&mut buf), Ok((n, _)) if &buf[..n] == b"udp ping")
    });
    assert!(answered, "no UDP echo; output:\n{}", run.seen.join("\n"));
}

/// A UDP port nobody has bound right now.
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `-p` for an image without a net device is refused, naming the flag and the fix, and
/// nothing boots.
#[test]
fn publish_for_an_image_without_a_net_device_is_refused() {
    let _serial = serial();
    if !provisioned("publish_for_an_image_without_a_net_device_is_refused") {
        return;
    }
    let dir = env_crate();
    let port = free_port();
    let out = tool(&["run", "-p", &format!("{port}:80")]).current_dir(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("-p/--publish: print_env's image has no net device"),
        "{}",
        show(&out)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("env UNSET"), "the guest ran: {}", show(&out));
}

/// A host port in use is refused, naming the `-p` spec, before anything is built or
/// started (no sources needed: it is checked first).
#[test]
fn a_host_port_in_use_is_refused_and_nothing_starts() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let started = Instant::now();
    let out = tool(&["run", "--manifest-path", &http_manifest(), "-p", &format!("{port}:80")]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("-p 127.0.0.1:{port}:80/tcp: the host port 127.0.0.1:{port} (tcp) is already in use")),
        "{}",
        show(&out)
    );
    assert!(!stderr.contains("building"), "something was built: {}", show(&out));
    assert!(started.elapsed() < Duration::from_secs(30), "refused only after {:?}", started.elapsed());
    assert!(qemus_forwarding(port).is_empty());
    // The listener was not disturbed.
    let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert!(busy.accept().is_ok());
    drop(client);
}

/// Should the port be taken between the check and QEMU's start, QEMU fails to set up the
/// forward (before it even reads the kernel); that is reported naming the spec, not as
/// "the app exited". A real QEMU, no image needed.
#[test]
fn qemus_own_forwarding_failure_names_the_spec() {
    use cargo_unikraft::runner::qemu::{Qemu, QemuDevices};
    use cargo_unikraft::runner::{console, usernet, Accel, Guest, GuestExit};
    if which::which("qemu-system-x86_64").is_err() {
        skip("qemus_own_forwarding_failure_names_the_spec: qemu-system-x86_64 is not installed");
        return;
    }
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let published = vec![format!("{port}:80").parse::<usernet::PublishedPort>().unwrap()];
    let devices = QemuDevices { published: published.clone(), ..QemuDevices::default() };
    let qemu = Qemu::new(Path::new("/nonexistent-kernel"), 64, Accel::Tcg, devices).unwrap();
    let finished =
        console::run(&qemu, qemu.command(&[]), console::Limits::total(Duration::from_secs(60)), |_| {}).unwrap();
    assert!(matches!(finished.exit, GuestExit::NotReported(_)), "{:?}", finished.exit);
    let err = usernet::hostfwd_failure(&published, &finished.transcript)
        .unwrap_or_else(|| panic!("not recognised: {}", finished.transcript));
    assert!(err.starts_with(&format!("-p 127.0.0.1:{port}:80/tcp: QEMU could not listen")), "{err}");
}

const ENV_MAIN: &str = r#"fn main() {
    for key in ["GREETING", "SPACED", "BRACKETS", "QUOTED", "EQUALS", "EMPTY", "UNSET"] {
        match std::env::var(key) {
            Ok(value) => println!("env {key}=[{value}]"),
            Err(_) => println!("env {key} unset"),
        }
    }
}
"#;

/// A plain `cargo new --bin` crate (no dependency on this project) that prints variables.
fn env_crate() -> PathBuf {
    let dir = std::env::temp_dir().join("cargo-unikraft-run-options-tests").join("print-env");
    if !dir.join("Cargo.toml").is_file() {
        fs::create_dir_all(dir.parent().unwrap()).unwrap();
        let out = Command::new("cargo").args(["new", "--bin", "--vcs", "none", "-q"]).arg(&dir).output().unwrap();
        assert!(out.status.success(), "{}", show(&out));
    }
    let main = dir.join("src/main.rs");
    if fs::read_to_string(&main).ok().as_deref() != Some(ENV_MAIN) {
        fs::write(&main, ENV_MAIN).unwrap();
    }
    dir
}

const ENV_SPECS: &[&str] =
    &["-e", "GREETING=hi", "-e", "SPACED=a  b", "-e", "BRACKETS=[x]", "-e", r#"QUOTED=say "hi"\"#, "-e", "EQUALS=a=b"];

fn assert_env_seen(out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in [
        "env GREETING=[hi]",
        "env SPACED=[a  b]",
        "env BRACKETS=[[x]]",
        r#"env QUOTED=[say "hi"\]"#,
        "env EQUALS=[a=b]",
        "env EMPTY=[]",
        "env UNSET unset",
    ] {
        assert!(stdout.lines().any(|l| l.trim_end() == line), "missing `{line}`: {}", show(out));
    }
    assert_eq!(out.status.code(), Some(0), "{}", show(out));
}

#[test]
fn env_reaches_std_env_of_a_plain_binary_on_unikraft() {
    let _serial = serial();
    let test = "env_reaches_std_env_of_a_plain_binary_on_unikraft";
    if !provisioned(test) {
        return;
    }
    let dir = env_crate();
    let out = tool(&["run"]).args(ENV_SPECS).args(["-e", "EMPTY="]).current_dir(&dir).output().unwrap();
    assert_env_seen(&out);
}

#[test]
fn env_reaches_std_env_of_a_plain_binary_on_hosted_musl() {
    let _serial = serial();
    if which::which("musl-gcc").is_err() {
        skip("env_reaches_std_env_of_a_plain_binary_on_hosted_musl: musl-gcc is not installed (Debian: musl-tools)");
        return;
    }
    let dir = env_crate();
    let out = tool(&["run", "--plat", "hosted-musl"])
        .args(ENV_SPECS)
        .args(["-e", "EMPTY"])
        .env("EMPTY", "")
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_env_seen(&out);
}

/// More variables than a Unikraft image's command line holds are refused (posix-environ
/// would drop the rest silently).
#[test]
fn more_variables_than_the_image_holds_are_refused() {
    let _serial = serial();
    if !provisioned("more_variables_than_the_image_holds_are_refused") {
        return;
    }
    let dir = env_crate();
    let specs: Vec<String> = (0..9).flat_map(|i| ["-e".to_string(), format!("V{i}={i}")]).collect();
    let out = tool(&["run"]).args(&specs).current_dir(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("-e/--env: this image takes at most 8 variables"),
        "{}",
        show(&out)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("env GREETING"), "the guest ran: {}", show(&out));
}

/// A19: disk images whose names hold commas are attached as named. Before the fix QEMU
/// read `a,b.img` as `a` plus an unknown option `b.img` (and failed), and
/// `x.img,readonly=on` as a read-only `x.img`; the guest (the plain crate, which ignores
/// the disk) must boot and exit 0 with each.
#[test]
fn disks_named_with_commas_attach_as_named() {
    let _serial = serial();
    if !provisioned("disks_named_with_commas_attach_as_named") {
        return;
    }
    let dir = env_crate();
    let disks = tempfile::tempdir().unwrap();
    for name in ["a,b.img", "x.img,readonly=on"] {
        let disk = disks.path().join(name);
        fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
        let out = tool(&["run", "--disk"]).arg(&disk).current_dir(&dir).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{name}: {}", show(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("env UNSET unset"), "{name}: {}", show(&out));
    }
    // `x.img` itself does not exist: had the option been split, QEMU would have failed.
    assert!(!disks.path().join("x.img").exists());
}

/// `cargo unikraft oci -e` writes the config's `Env`, and the variables reach `std::env`
/// when passed as urunc passes them (`env.vars=[ K=V ... ]` before `--`, no exit device:
/// the guest powers off when the app ends).
#[test]
fn oci_env_reaches_the_app_as_urunc_passes_it() {
    let _serial = serial();
    if !provisioned("oci_env_reaches_the_app_as_urunc_passes_it") {
        return;
    }
    let dir = env_crate();
    let layout = tempfile::tempdir().unwrap();
    let out = tool(&["oci", "--output"])
        .arg(layout.path().join("img"))
        .args(["-e", "GREETING=hi", "-e", "EQUALS=a=b"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let read = |digest: &str| -> serde_json::Value {
        let path = layout.path().join("img/blobs/sha256").join(digest.trim_start_matches("sha256:"));
        serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
    };
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.path().join("img/index.json")).unwrap()).unwrap();
    let manifest = read(index["manifests"][0]["digest"].as_str().unwrap());
    let config = read(manifest["config"]["digest"].as_str().unwrap());
    let env: Vec<String> = serde_json::from_value(config["config"]["Env"].clone()).unwrap();
    assert_eq!(env, ["GREETING=hi", "EQUALS=a=b"]);

    let out = tool(&["build"]).current_dir(&dir).output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let kernel = String::from_utf8_lossy(&out.stdout).trim().to_string();
    // urunc also passes PATH (from the container's environment).
    let append = format!("{kernel} env.vars=[ PATH=/bin {} ] netdev.ip=10.0.0.2/24:10.0.0.1:8.8.8.8 --", env.join(" "));
    let out = Command::new("timeout")
        .args(["120", "qemu-system-x86_64", "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio"])
        .args(["-no-reboot", "-accel", "tcg", "-cpu", "max", "-m", "128M", "-kernel", &kernel, "-append", &append])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in ["env GREETING=[hi]", "env EQUALS=[a=b]", "env UNSET unset"] {
        assert!(stdout.lines().any(|l| l.trim_end() == line), "missing `{line}`: {}", show(&out));
    }
    assert_eq!(out.status.code(), Some(0), "QEMU should power off by itself: {}", show(&out));
}
