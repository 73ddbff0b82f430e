//! The urunc contract, without urunc (it is not installable here): an image written by
//! `cargo xtask oci` is unpacked by `umoci` as containerd would, read the way urunc reads
//! a bundle (`/urunc.json` with base64 values, the config's `Cmd`), and booted with the
//! QEMU command line urunc builds for a Unikraft >= 0.16.1 image. The one deviation:
//! `-cpu host -enable-kvm` becomes `-cpu max -accel tcg` where KVM cannot run the guest.
//!
//! Checked: the http example answers curl at the address given by `netdev.ip=` (not its
//! default), serving on the port its `Cmd` names; hello gets its `Cmd` as arguments and
//! QEMU exits by itself when the app ends; skopeo reads the layout; two builds of the
//! layout are byte-identical. Needs root (a network namespace, a TAP) and the pinned
//! sources; SKIP lines otherwise.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::{is_root, show, skip, skip_unprovisioned, start_until, Ns, XTASK};

/// Where the layouts and bundles go (under the workspace's target dir, reused).
fn work_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/oci-contract");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn ready(test: &str, needs_root: bool) -> bool {
    if common::unikraft::sources_or_skip(test).is_none() {
        return false;
    }
    for tool in ["umoci", "skopeo", "qemu-system-x86_64", "curl"] {
        if which::which(tool).is_err() {
            skip(&format!("{test}: {tool} is not installed (Debian: umoci skopeo qemu-system-x86 curl)"));
            return false;
        }
    }
    if needs_root && !is_root() {
        skip(&format!("{test}: not root (needs a network namespace and a TAP)"));
        return false;
    }
    true
}

/// `cargo xtask oci --example <example> --output <dir> -- <cmd>`.
fn write_layout(example: &str, output: &Path, cmd: &[&str]) {
    write_layout_for(example, "qemu/x86_64", output, cmd)
}

/// [`write_layout`] for `target`.
fn write_layout_for(example: &str, target: &str, output: &Path, cmd: &[&str]) {
    let out = Command::new(XTASK)
        .args(["oci", "--example", example, "--plat", target, "--output"])
        .arg(output)
        .arg("--")
        .args(cmd)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
}

/// What urunc reads from an unpacked bundle.
struct UruncView {
    annotations: HashMap<String, String>,
    kernel: PathBuf,
    cmd: Vec<String>,
}

/// `umoci unpack` (as containerd unpacks an image), then urunc's reading of it.
fn unpack(layout: &Path, bundle: &Path) -> UruncView {
    let _ = std::fs::remove_dir_all(bundle);
    let out = Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:latest", layout.display()))
        .arg(bundle)
        .output()
        .unwrap();
    assert!(out.status.success(), "umoci unpack: {}", show(&out));
    let rootfs = bundle.join("rootfs");
    let encoded: HashMap<String, String> =
        serde_json::from_slice(&std::fs::read(rootfs.join("urunc.json")).expect("/urunc.json in the rootfs")).unwrap();
    let annotations: HashMap<String, String> = encoded
        .into_iter()
        .map(|(k, v)| {
            let value = base64::engine::general_purpose::STANDARD.decode(&v).expect("urunc.json values are base64");
            (k, String::from_utf8(value).unwrap())
        })
        .collect();
    let binary = annotations["com.urunc.unikernel.binary"].trim_start_matches('/').to_string();
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    let cmd = config["process"]["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
    UruncView { annotations, kernel: rootfs.join(binary), cmd }
}

/// Where urunc takes the app's command line from.
#[derive(Clone, Copy)]
enum AppCmd {
    /// The config's `Cmd`, joined with spaces (newer urunc).
    Cmd,
    /// The `com.urunc.unikernel.cmdline` annotation, pasted unchanged (older urunc).
    Annotation,
}

/// urunc's QEMU command line for a Unikraft >= 0.16.1 image, with `netdev.ip`.
fn urunc_qemu(view: &UruncView, tap: &str, netdev_ip: &str) -> Vec<String> {
    urunc_qemu_with(view, tap, netdev_ip, AppCmd::Cmd)
}

/// [`urunc_qemu`], with the app's command line taken from `app_cmd`.
fn urunc_qemu_with(view: &UruncView, tap: &str, netdev_ip: &str, app_cmd: AppCmd) -> Vec<String> {
    assert_eq!(view.annotations["com.urunc.unikernel.unikernelType"], "unikraft");
    assert_eq!(view.annotations["com.urunc.unikernel.hypervisor"], "qemu");
    let kernel = view.kernel.display().to_string();
    let kvm = cargo_unikraft::runner::kvm::kvm_problem(Path::new("qemu-system-x86_64")).is_none();
    let mut argv: Vec<String> = ["-m", "64M"].map(String::from).to_vec();
    let accel: &[&str] = if kvm { &["-cpu", "host", "-enable-kvm"] } else { &["-cpu", "max", "-accel", "tcg"] };
    argv.extend(accel.iter().map(|a| a.to_string()));
    argv.extend(["-display", "none", "-vga", "none", "-monitor", "null", "-serial", "stdio"].map(String::from));
    argv.extend(["-kernel".to_string(), kernel.clone()]);
    argv.extend([
        "-netdev".to_string(),
        format!("tap,id=net0,script=no,downscript=no,ifname={tap}"),
        "-device".to_string(),
        "virtio-net-pci,netdev=net0,host_mtu=1500,mac=02:00:0a:00:00:4d".to_string(),
    ]);
    let app = match app_cmd {
        AppCmd::Cmd => view.cmd.join(" "),
        AppCmd::Annotation => view.annotations.get("com.urunc.unikernel.cmdline").cloned().unwrap_or_default(),
    };
    let append = format!("{kernel} env.vars=[URUNC=1] netdev.ip={netdev_ip} vfs.fstab=[] -- {app}");
    argv.extend(["-append".to_string(), append]);
    argv
}

#[test]
fn http_runs_as_urunc_boots_it_with_the_address_from_netdev_ip() {
    if !ready("http_runs_as_urunc_boots_it_with_the_address_from_netdev_ip", true) {
        return;
    }
    let layout = work_dir().join("http-layout");
    write_layout("http", &layout, &["--port=8080"]);
    let view = unpack(&layout, &work_dir().join("http-bundle"));
    assert_eq!(view.cmd, ["--port=8080"]);
    assert_eq!(view.annotations["com.urunc.unikernel.unikernelVersion"], "0.16.3");

    let ns = Ns::new("oci-http");
    let mut qemu = ns.command("qemu-system-x86_64");
    qemu.args(urunc_qemu(&view, "tap0", "10.0.0.77/24:10.0.0.1:10.0.0.1"));
    // The app's default address is 10.0.0.2: answering at .77 proves netdev.ip reached it.
    let _guest = start_until(qemu, "http: listening", Duration::from_secs(120));
    let out = ns.command("curl").args(["-sS", "-m", "20", "http://10.0.0.77:8080/"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("Hello from a unikernel"), "curl: {}", show(&out));
}

#[test]
fn hello_gets_its_cmd_and_qemu_exits_by_itself() {
    if !ready("hello_gets_its_cmd_and_qemu_exits_by_itself", true) {
        return;
    }
    let ns = Ns::new("oci-hello");
    let console = boot_until_exit(&ns, &["from-cmd", "--exit=3"]);
    assert!(console.contains("boot args: from-cmd --exit=3"), "{console}");
    assert!(console.contains("goodbye (exit 3)"), "{console}");
    // A panic (rt-unikraft's handler, then exit) ends the VM the same way.
    let console = boot_until_exit(&ns, &["--panic"]);
    assert!(console.contains("hello panics, as asked"), "{console}");
}

/// Older urunc pastes `com.urunc.unikernel.cmdline` into the kernel command line: an
/// argument with a space reaches the app whole (hello cannot parse `--exit=7 x` and says
/// so; split in two it would exit with 7).
#[test]
fn an_argument_with_a_space_reaches_the_app_whole_through_the_cmdline_annotation() {
    if !ready("an_argument_with_a_space_reaches_the_app_whole_through_the_cmdline_annotation", true) {
        return;
    }
    let ns = Ns::new("oci-cmdline");
    let console = boot_until_exit_with(&ns, &["--exit=7 x", r#"q"uo\te"#], AppCmd::Annotation);
    assert!(console.contains("error: --exit=7 x is not an integer exit code"), "{console}");
    assert!(console.contains(r#"boot args: --exit=7 x q"uo\te"#), "{console}");
}

/// Boots hello's image with `cmd` as urunc would, and returns the console once QEMU has
/// exited by itself with status 0 (it fails the test after 90 s).
fn boot_until_exit(ns: &Ns, cmd: &[&str]) -> String {
    boot_until_exit_with(ns, cmd, AppCmd::Cmd)
}

/// [`boot_until_exit`], with the app's command line taken from `app_cmd`.
fn boot_until_exit_with(ns: &Ns, cmd: &[&str], app_cmd: AppCmd) -> String {
    let layout = work_dir().join("hello-layout");
    write_layout("hello", &layout, cmd);
    let view = unpack(&layout, &work_dir().join("hello-bundle"));
    let mut qemu = ns.command("qemu-system-x86_64");
    qemu.args(urunc_qemu_with(&view, "tap0", "10.0.0.78/24:10.0.0.1:10.0.0.1", app_cmd))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = qemu.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("QEMU did not exit by itself within 90 s:\n{}", show(&out));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = child.wait_with_output().unwrap();
    let console = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(status.success(), "QEMU powers off cleanly (no exit device): {status}\n{console}");
    console
}

#[test]
fn the_layout_is_reproducible_and_skopeo_reads_it() {
    if !ready("the_layout_is_reproducible_and_skopeo_reads_it", false) {
        return;
    }
    let (a, b) = (work_dir().join("repro-a"), work_dir().join("repro-b"));
    write_layout("hello", &a, &["x"]);
    write_layout("hello", &b, &["x"]);
    let index = |dir: &Path| std::fs::read(dir.join("index.json")).unwrap();
    assert_eq!(index(&a), index(&b));
    let mut blobs: Vec<_> =
        std::fs::read_dir(a.join("blobs/sha256")).unwrap().map(|e| e.unwrap().file_name()).collect();
    blobs.sort();
    for blob in &blobs {
        let path = |dir: &Path| dir.join("blobs/sha256").join(blob);
        assert_eq!(std::fs::read(path(&a)).unwrap(), std::fs::read(path(&b)).unwrap(), "{blob:?} differs");
    }
    let out = Command::new("skopeo").arg("inspect").arg(format!("oci:{}:latest", a.display())).output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let inspected: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inspected["Os"], "linux");
    assert_eq!(inspected["Labels"]["com.urunc.unikernel.binary"], "/unikraft/bin/kernel");
}

/// urunc's `mirage` type: a Solo5 unikernel whose tender gets `--net:service=<tap>` and
/// whose app gets `--ipv4=<ip>/<len> --ipv4-gateway=<gw>` before the image's `Cmd`.
#[test]
fn udp_echo_runs_as_urunc_boots_a_mirage_image_on_spt() {
    let test = "udp_echo_runs_as_urunc_boots_a_mirage_image_on_spt";
    if !ready(test, true) {
        return;
    }
    let Ok(solo5) = cargo_unikraft::solo5::solo5_tree() else {
        skip_unprovisioned(test, "Solo5 is not provisioned (cargo xtask fetch --solo5-src DIR)");
        return;
    };
    let layout = work_dir().join("udp-echo-spt-layout");
    write_layout_for("udp-echo", "solo5/spt", &layout, &["--port=7"]);
    let view = unpack(&layout, &work_dir().join("udp-echo-spt-bundle"));
    assert_eq!(view.annotations["com.urunc.unikernel.unikernelType"], "mirage");
    assert_eq!(view.annotations["com.urunc.unikernel.hypervisor"], "spt");

    let ns = Ns::new("oci-spt");
    let mut tender = ns.command(solo5.join("tenders/spt/solo5-spt").to_str().unwrap());
    tender
        .args(["--net:service=tap0", "--net-mac:service=02:00:0a:00:00:4f"])
        .arg(&view.kernel)
        .args(["--ipv4=10.0.0.79/24", "--ipv4-gateway=10.0.0.1"])
        .args(&view.cmd);
    let _guest = start_until(tender, "udp-echo: listening on 10.0.0.79", Duration::from_secs(60));
    let out = ns
        .command(XTASK)
        .args(["peer", "udp", "--guest", "10.0.0.79", "--message", "mirage-contract"])
        .output()
        .unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("mirage-contract"), "{}", show(&out));
}
