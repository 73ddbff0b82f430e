//! rt-unikraft's C glue under faults, on real Unikraft images in QEMU (see
//! rt-unikraft/glue/rt_glue.h and docs/unikraft.md). Host-only checks of the same glue
//! are in rt-unikraft's own tests (`cargo test -p rt-unikraft`).
//!
//! Like e2e/tests/unikraft.rs, these need the pinned sources and QEMU (otherwise they
//! print `SKIP:`), and the network ones need root for a namespace with a TAP.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

mod common;

use common::{build_first, is_root, show, skip, start_until, Guest, Ns, XTASK};

static SERIAL: Mutex<()> = Mutex::new(());

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Takes the lock and checks sources, QEMU and root; `None` after printing why not.
fn ready_or_skip(test: &str) -> Option<std::sync::MutexGuard<'static, ()>> {
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    common::unikraft::sources_or_skip(test)?;
    if !is_root() {
        skip(&format!("{test}: not root (needs a network namespace and TAP)"));
        return None;
    }
    Some(serial)
}

/// Sends one UDP datagram of each of `payloads` bytes to the guest's port 7 from inside
/// `ns`, without waiting for answers.
fn send_datagrams(ns: &Ns, payloads: &[usize]) -> std::process::Output {
    let script: String =
        payloads.iter().map(|n| format!("head -c {n} /dev/zero | socat -u - UDP-SENDTO:10.0.0.2:7\n")).collect();
    ns.command("sh").args(["-c", &script]).output().unwrap()
}

/// Unikraft 0.16.3's virtio-net driver rejects a frame longer than 1514 bytes after
/// taking it off the ring, and keeps the buffer. The glue used to offer buffers of about
/// 2 KiB, so each frame of 1515-2096 bytes (easy with a jumbo MTU on the host's TAP) cost
/// one receive buffer: after about a hundred the guest was deaf for good. Now the
/// buffers are exactly what the driver accepts; such a frame does not fit, and QEMU
/// drops it before the guest sees it.
#[test]
fn frames_longer_than_the_driver_accepts_do_not_deafen_the_guest() {
    let test = "frames_longer_than_the_driver_accepts_do_not_deafen_the_guest";
    let Some(_serial) = ready_or_skip(test) else { return };
    if !on_path("socat") {
        skip(&format!("{test}: socat is not installed (Debian: socat)"));
        return;
    }
    let build = build_first(test, &["kraft-run", "--example", "udp-echo", "--no-boot"]);
    assert!(build.status.success(), "{}", show(&build));
    let ns = Ns::new("ukg-jumbo");
    // The host's side may now send frames of up to 9014 bytes, unfragmented.
    assert!(ns.command("ip").args(["link", "set", "tap0", "mtu", "9000"]).status().unwrap().success());
    let mut cmd = ns.command(XTASK);
    cmd.args(["kraft-run", "--example", "udp-echo", "--no-build", "--tap", "tap0"]);
    let guest: Guest = start_until(cmd, "listening on 10.0.0.2", Duration::from_secs(120));
    let first = ns.command(XTASK).args(["peer", "udp", "--message", "before-jumbo"]).output().unwrap();

    // 600 frames of 1515 to 2082 bytes (more than the 112 receive buffers the guest
    // posts), and a few real jumbo frames, in rounds the guest can take.
    let mut sent = Vec::new();
    for round in 0..6 {
        let mut payloads: Vec<usize> = (0..100).map(|i| 1473 + (round * 100 + i) * 7 % 568).collect();
        payloads.extend([8000, 8972]);
        sent.push(send_datagrams(&ns, &payloads));
        std::thread::sleep(Duration::from_millis(300));
    }
    let after = ns.command(XTASK).args(["peer", "udp", "--message", "after-jumbo"]).output().unwrap();
    drop(guest);
    drop(ns);
    assert!(first.status.success(), "the guest did not answer before the jumbo frames: {}", show(&first));
    for out in &sent {
        assert!(out.status.success(), "sending: {}", show(out));
    }
    assert!(after.status.success(), "deaf after frames longer than the driver accepts: {}", show(&after));
    assert!(String::from_utf8_lossy(&after.stdout).contains("after-jumbo"), "{}", show(&after));
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// What the app gets when the net device cannot be opened or started, and a std sleep
/// too long for 64-bit nanoseconds (rt-unikraft's clock_nanosleep used to wrap it).
const FAULTS_APP: &str = r#"
use unikernel::bootargs::Ipv4Cidr;
use unikernel::net::{Stack, StackConfig};
use unikernel::net::NetDevice;
use unikernel::services::{open_net, OpenError};
use unikernel::smoltcp::wire::Ipv4Address;

unikernel::main!(run);

fn run() -> i32 {
    // 18446744074 s: its nanoseconds do not fit in 64 bits (wrapped: 0.29 s).
    let sleeper = std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_secs(18_446_744_074)));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    println!("huge sleep still asleep: {}", !sleeper.is_finished());

    let say = |what: &str, r: &Result<Box<dyn NetDevice>, OpenError>| match r {
        Ok(_) => println!("{what}: ok"),
        Err(e) => println!("{what}: {e}"),
    };
    let missing = open_net("1");
    say("open 1", &missing);
    let device = open_net("0");
    say("open 0", &device);
    let again = open_net("0");
    say("open 0 again", &again);
    let Ok(device) = device else { return 1 };

    // More buffers than the glue can lend: the device cannot start.
    let mut config = StackConfig::new(Ipv4Cidr { address: Ipv4Address::new(10, 0, 0, 2), prefix_len: 24 });
    config.ring.slots = 5000;
    let mut stack = Stack::new(device, config);
    for _ in 0..3 {
        stack.poll();
    }
    println!("polled a device that never started");
    0
}
"#;

/// A device that cannot start stops the app with a message (it used to stay silently
/// deaf); open errors say what is wrong; a std sleep of 18446744074 s stays asleep.
#[test]
fn net_open_and_start_failures_are_reported_and_huge_sleeps_do_not_wrap() {
    let test = "net_open_and_start_failures_are_reported_and_huge_sleeps_do_not_wrap";
    let Some(_serial) = ready_or_skip(test) else { return };
    // Under target/ (git-ignored) rather than a temp dir, so a re-run only relinks.
    let dir = workspace_root().join("target/test-apps/glue-faults");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"glue-faults\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [lib]\npath = \"src/lib.rs\"\ntest = false\n\n\
             [features]\ndefault = [\"unix\"]\nunix = [\"unikernel/unix\"]\nunikraft = [\"unikernel/unikraft\"]\n\n\
             [dependencies]\nunikernel = {{ path = \"{}\" }}\n\n\
             [package.metadata.unikraft]\ndevices = [\"net\"]\nmemory = \"64M\"\n\n[workspace]\n",
            workspace_root().join("unikernel").display()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("src/lib.rs"), FAULTS_APP).unwrap();
    std::fs::copy(workspace_root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let manifest = dir.join("Cargo.toml");
    let build =
        Command::new(XTASK).args(["kraft-run", "--no-boot", "--manifest-path"]).arg(&manifest).output().unwrap();
    assert!(build.status.success(), "{}", show(&build));

    let ns = Ns::new("ukg-faults");
    let out =
        ns.command(XTASK).args(["kraft-run", "--tap", "tap0", "--manifest-path"]).arg(&manifest).output().unwrap();
    drop(ns);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("huge sleep still asleep: true"), "{}", show(&out));
    assert!(
        stdout.contains("open 1: no such device: Unikraft has 1 network device(s); there is no device 1"),
        "{}",
        show(&out)
    );
    assert!(stdout.contains("open 0: ok"), "{}", show(&out));
    assert!(stdout.contains("open 0 again: device setup failed: network device 0 cannot be opened: rt-unikraft drives one network device at a time"), "{}", show(&out));
    assert!(
        stdout.contains(
            "rt-unikraft: network device 0 could not start: its packet pool has 5000 buffers, more than the 4096"
        ),
        "{}",
        show(&out)
    );
    assert!(!stdout.contains("polled a device that never started"), "{}", show(&out));
    assert_eq!(out.status.code(), Some(101), "{}", show(&out));
}
