//! examples/tunnel-echo end to end: the guest's UDP echo runs on a stack over a
//! `TunnelDevice`, whose frames travel in VXLAN datagrams of the guest's outer stack on
//! tap0. The host's end of the tunnel is the Linux kernel's own VXLAN device (`vx0`,
//! 10.1.0.1/24) in the namespace the test creates, so the host reaches 10.1.0.2 only
//! through the tunnel, on unix, Unikraft and solo5 (spt). Needs root; the Unikraft and
//! solo5 tests also the provisioned sources.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::unikraft::sources_or_skip;
use common::{build_first, is_root, show, skip, start_until, Guest, Ns, XTASK};

/// The guest's address inside the tunnel.
const INNER_GUEST: &str = "10.1.0.2";

/// `ns` with the host's end of the tunnel: `vx0`, VNI 42, to the guest's outer address;
/// `None` after a SKIP line when the host's kernel has no VXLAN support.
fn tunnel_ns(test: &str, tag: &str) -> Option<Ns> {
    let ns = Ns::new(tag);
    let ip = |args: &[&str]| ns.command("ip").args(args).output().unwrap();
    let add = ip(&[
        "link", "add", "vx0", "type", "vxlan", "id", "42", "remote", "10.0.0.2", "local", "10.0.0.1", "dstport",
        "4789", "dev", "tap0",
    ]);
    if !add.status.success() {
        let err = String::from_utf8_lossy(&add.stderr);
        if err.contains("Unknown device type") || err.contains("not supported") {
            skip(&format!("{test}: the kernel has no VXLAN devices (modprobe vxlan): {}", err.trim()));
            return None;
        }
        panic!("ip link add vx0 type vxlan: {}", show(&add));
    }
    for args in [&["addr", "add", "10.1.0.1/24", "dev", "vx0"][..], &["link", "set", "vx0", "up"]] {
        let out = ip(args);
        assert!(out.status.success(), "ip {args:?}: {}", show(&out));
    }
    Some(ns)
}

/// The host's checks through the tunnel: a datagram echoed, one that the kernel and the
/// guest must fragment (inner MTU 1450), and pings of the inner address.
fn echoes_through_the_tunnel(ns: &Ns, guest: Guest) {
    // Larger than one inner packet (1422 bytes of UDP payload), within `peer udp`'s buffer.
    let big = "x".repeat(2000);
    for message in ["ping-through-the-tunnel", big.as_str()] {
        let out =
            ns.command(XTASK).args(["peer", "udp", "--guest", INNER_GUEST, "--message", message]).output().unwrap();
        assert!(out.status.success(), "{}", show(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(&format!("reply from {INNER_GUEST}:7: {message}\n")), "{}", show(&out));
    }
    let ping = ns.command("ping").args(["-c", "3", "-W", "2", INNER_GUEST]).output().unwrap();
    assert!(ping.status.success(), "{}", show(&ping));
    // Everything above crossed vx0: the kernel counts the tunnel's packets there.
    let stats = ns.command("ip").args(["-s", "link", "show", "vx0"]).output().unwrap();
    drop(guest);
    let stats = String::from_utf8_lossy(&stats.stdout).into_owned();
    let rx_packets: u64 = stats
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("RX:"))
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no RX counters in {stats}"));
    assert!(rx_packets >= 7, "vx0 received {rx_packets} packets:\n{stats}");
}

#[test]
fn udp_echo_answers_through_a_vxlan_tunnel_on_unix() {
    let test = "udp_echo_answers_through_a_vxlan_tunnel_on_unix";
    if !is_root() {
        skip(&format!("{test}: not root (needs a network namespace, a TAP and a VXLAN device)"));
        return;
    }
    let build = Command::new(env!("CARGO")).args(["build", "--quiet", "-p", "tunnel-echo"]).status().unwrap();
    assert!(build.success());
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/tunnel-echo");
    let Some(ns) = tunnel_ns(test, "uktest-tun") else { return };
    let mut cmd = ns.command("env");
    cmd.arg("RT_UNIX_TAP=tap0").arg(bin);
    let guest = start_until(cmd, "listening on 10.1.0.2:7 inside VXLAN 42", Duration::from_secs(30));
    echoes_through_the_tunnel(&ns, guest);
}

#[test]
fn udp_echo_answers_through_a_vxlan_tunnel_on_unikraft() {
    let test = "udp_echo_answers_through_a_vxlan_tunnel_on_unikraft";
    if sources_or_skip(test).is_none() {
        return;
    }
    if !is_root() {
        skip(&format!("{test}: not root (needs a network namespace, a TAP and a VXLAN device)"));
        return;
    }
    let build = build_first(test, &["kraft-run", "--example", "tunnel-echo", "--no-boot"]);
    assert!(build.status.success(), "{}", show(&build));
    let Some(ns) = tunnel_ns(test, "ukuk-tun") else { return };
    let mut cmd = ns.command(XTASK);
    cmd.args(["kraft-run", "--example", "tunnel-echo", "--no-build", "--tap", "tap0"]);
    let guest = start_until(cmd, "listening on 10.1.0.2:7 inside VXLAN 42", Duration::from_secs(120));
    echoes_through_the_tunnel(&ns, guest);
}

#[test]
fn udp_echo_answers_through_a_vxlan_tunnel_on_spt() {
    let test = "udp_echo_answers_through_a_vxlan_tunnel_on_spt";
    if !is_root() {
        skip(&format!("{test}: not root (needs a network namespace, a TAP and a VXLAN device)"));
        return;
    }
    let solo5 = ["solo5-run", "--example", "tunnel-echo", "--tap", "tap0"];
    let build = build_first(test, &[&solo5[..], &["--no-run"]].concat());
    if !build.status.success() && String::from_utf8_lossy(&build.stderr).contains("not provisioned") {
        common::skip_unprovisioned(test, "Solo5 is not provisioned");
        return;
    }
    assert!(build.status.success(), "{}", show(&build));
    let Some(ns) = tunnel_ns(test, "ukspt-tun") else { return };
    let mut cmd = ns.command(XTASK);
    cmd.args(solo5).arg("--no-build");
    let guest = start_until(cmd, "listening on 10.1.0.2:7 inside VXLAN 42", Duration::from_secs(60));
    echoes_through_the_tunnel(&ns, guest);
}
