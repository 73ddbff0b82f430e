//! The device edge on real Unikraft images in QEMU: what a virtio device writes by DMA
//! never lands in memory the app got back, and each waiter gets its own wake-up.
//!
//! One guest (`apps/device_edge.rs`, devices net and block, `sockets = true`) is booted
//! once per scenario: dropping a polled `Stack` while the host sends frames; dropping a
//! `UkBlock` with a read in flight; block reads beside the socket layer's network thread.
//! They need the pinned sources, QEMU and root (a namespace with a TAP), else `SKIP:`.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

mod common;

use common::unikraft::{sources_or_skip, workspace_root};
use common::{is_root, show, skip, Guest, Ns, XTASK};

static SERIAL: Mutex<()> = Mutex::new(());

const APP: &str = include_str!("apps/device_edge.rs");

/// Sources, QEMU and root, and the guest built; `None` after printing why not.
fn ready_or_skip(test: &str) -> Option<(std::sync::MutexGuard<'static, ()>, PathBuf)> {
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    sources_or_skip(test)?;
    if !is_root() {
        skip(&format!("{test}: not root (needs a network namespace and TAP)"));
        return None;
    }
    // Under target/ (git-ignored), so a re-run only relinks.
    let dir = workspace_root().join("target/test-apps/device-edge");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"device-edge\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [lib]\npath = \"src/lib.rs\"\ntest = false\n\n\
             [features]\ndefault = [\"unix\"]\nunix = [\"unikernel/unix\"]\nunikraft = [\"unikernel/unikraft\"]\n\n\
             [dependencies]\nunikernel = {{ path = \"{}\" }}\n\n\
             [package.metadata.unikraft]\ndevices = [\"net\", \"block\"]\nsockets = true\nmemory = \"256M\"\n\n\
             [workspace]\n",
            workspace_root().join("unikernel").display()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("src/lib.rs"), APP).unwrap();
    std::fs::copy(workspace_root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let manifest = dir.join("Cargo.toml");
    let build =
        Command::new(XTASK).args(["kraft-run", "--no-boot", "--manifest-path"]).arg(&manifest).output().unwrap();
    assert!(build.status.success(), "{}", show(&build));
    Some((serial, manifest))
}

/// A disk image of 16 MiB of 0x55 bytes.
fn disk_of_0x55(dir: &Path) -> PathBuf {
    let disk = dir.join("disk.img");
    std::fs::write(&disk, vec![0x55u8; 16 << 20]).unwrap();
    disk
}

/// Boots `scenario`; calls `on_line` for each console line until the guest ends (or
/// `limit`); returns all lines.
fn boot(
    ns: &Ns,
    manifest: &Path,
    disk: &Path,
    scenario: &str,
    limit: Duration,
    mut on_line: impl FnMut(&str),
) -> Vec<String> {
    let mut cmd = ns.command(XTASK);
    cmd.args(["kraft-run", "--tap", "tap0", "--disk"]).arg(disk).arg("--manifest-path").arg(manifest);
    cmd.args(["--", scenario]);
    let mut child = cmd.stdout(Stdio::piped()).process_group(0).spawn().expect("start the guest");
    let stdout = child.stdout.take().unwrap();
    let _guest = Guest::from_child(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let end = Instant::now() + limit;
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
        on_line(&line);
        lines.push(line);
    }
    lines
}

/// Sends 1400-byte UDP broadcasts on the namespace's link for `secs` seconds: frames the
/// guest's NIC takes into its receive buffers whatever its stack does.
fn broadcast_frames(ns: &Ns, secs: f64) -> std::process::Output {
    let script = format!(
        "import socket, time\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)\n\
         end = time.time() + {secs}\n\
         n = 0\n\
         while time.time() < end:\n\
         \x20   s.sendto(bytes([n % 251]) * 1400, ('10.0.0.255', 9)); n += 1; time.sleep(0.0005)\n\
         print(n)\n"
    );
    ns.command("python3").args(["-c", &script]).output().unwrap()
}

fn line_with<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    lines.iter().find(|l| l.starts_with(prefix)).map_or("", String::as_str)
}

/// Finding A4: `Stack::new(open_net("")?, cfg)`, polled, dropped; the heap filled with
/// 0xAA; frames from the host. The virtio-net device still holds the pool's receive
/// buffers (Unikraft cannot stop it), so the pool's memory must never be handed out again.
#[test]
fn a_dropped_stack_leaves_no_device_writes_in_memory_the_app_got_back() {
    let test = "a_dropped_stack_leaves_no_device_writes_in_memory_the_app_got_back";
    let Some((_serial, manifest)) = ready_or_skip(test) else { return };
    let dir = tempfile::tempdir().unwrap();
    let disk = disk_of_0x55(dir.path());
    let ns = Ns::new("ukde-net");
    let mut sent = None;
    let lines = boot(&ns, &manifest, &disk, "net-drop", Duration::from_secs(120), |line| {
        if line.contains("net-drop: filled") {
            sent = Some(broadcast_frames(&ns, 1.5));
        }
    });
    let all = lines.join("\n");
    let sent = sent.unwrap_or_else(|| panic!("the guest never filled its buffers:\n{all}"));
    assert!(sent.status.success(), "sending frames: {}", show(&sent));
    let frames: u64 = String::from_utf8_lossy(&sent.stdout).trim().parse().unwrap_or(0);
    assert!(frames > 100, "only {frames} frames sent");
    assert_eq!(line_with(&lines, "net-drop: 0 bytes changed"), "net-drop: 0 bytes changed", "{all}");
    assert!(
        line_with(&lines, "net-drop: open again:").contains("cannot be opened again: it was opened and dropped before"),
        "{all}"
    );
}

/// Finding A4, block: an 8 MiB read polled once (Pending, with 64 KiB chunks in the
/// device), its future dropped, the device dropped, the heap filled with 0xAA in the bounce buffers'
/// layout. No byte may change; the device can be opened again and reads.
#[test]
fn a_dropped_block_device_leaves_no_device_writes_in_memory_the_app_got_back() {
    let test = "a_dropped_block_device_leaves_no_device_writes_in_memory_the_app_got_back";
    let Some((_serial, manifest)) = ready_or_skip(test) else { return };
    let dir = tempfile::tempdir().unwrap();
    let disk = disk_of_0x55(dir.path());
    let ns = Ns::new("ukde-blk");
    let lines = boot(&ns, &manifest, &disk, "block-drop", Duration::from_secs(120), |_| {});
    let all = lines.join("\n");
    assert!(all.contains("block-drop: first poll pending: true"), "{all}");
    assert!(all.contains("block-drop: 0 bytes changed"), "{all}");
    assert!(all.contains("block-drop: open again: Ok(()), sector 0 is 0x55: true"), "{all}");
}

/// Finding A8: with sockets the network thread sleeps beside the executor. A block
/// completion's wake-up used to be taken by whichever woke first, and a read then waited
/// for the executor's idle timeout (1 s). Reads for 4 s while the host sends datagrams
/// to the guest's UDP echo: none may take 200 ms.
#[test]
fn block_reads_beside_the_socket_thread_keep_their_wake_ups() {
    let test = "block_reads_beside_the_socket_thread_keep_their_wake_ups";
    let Some((_serial, manifest)) = ready_or_skip(test) else { return };
    let dir = tempfile::tempdir().unwrap();
    let disk = disk_of_0x55(dir.path());
    let ns = Ns::new("ukde-lat");
    let mut sender = None;
    let lines = boot(&ns, &manifest, &disk, "block-latency", Duration::from_secs(120), |line| {
        if line.contains("block-latency: echo ready") {
            let script = "import socket, time\n\
                 s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
                 end = time.time() + 3.5\n\
                 while time.time() < end:\n\
                 \x20   s.sendto(b'ping', ('10.0.0.2', 7)); time.sleep(0.002)\n";
            sender = Some(ns.command("python3").args(["-c", script]).stdout(Stdio::null()).spawn().unwrap());
        }
    });
    if let Some(mut sender) = sender {
        let _ = sender.wait();
    }
    let all = lines.join("\n");
    let verdict = line_with(&lines, "block-latency: ");
    let verdict = lines.iter().rev().find(|l| l.contains(" reads, ")).map_or(verdict, String::as_str);
    eprintln!("{verdict}");
    assert!(verdict.contains(" 0 over 200 ms"), "reads were held up:\n{all}");
}
