//! UDP datagrams larger than the link MTU arrive as IP fragments: the guest's stack
//! reassembles them (smoltcp's `proto-ipv4-fragmentation`, set up in the workspace
//! Cargo.toml) and fragments its answer, up to 8 KiB of IP packet. udp-echo on unix, in a
//! network namespace; needs root, prints a SKIP line otherwise.

mod common;

use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

use common::{is_root, skip, start_until, Ns};
use e2e::netns::enter_netns;

/// Sends each payload to the guest's echo port from inside namespace `ns` and returns
/// what came back for each (`None`: no answer within a second, over a few tries).
fn echo_from_host(ns: &str, payloads: Vec<Vec<u8>>) -> Vec<Option<Vec<u8>>> {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        enter_netns(&ns);
        let udp = UdpSocket::bind(("10.0.0.1", 0)).unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(250))).unwrap();
        let mut buf = vec![0u8; 65536];
        payloads
            .iter()
            .map(|payload| {
                for _ in 0..4 {
                    udp.send_to(payload, ("10.0.0.2", 7)).unwrap();
                    if let Ok((n, _)) = udp.recv_from(&mut buf) {
                        return Some(buf[..n].to_vec());
                    }
                }
                None
            })
            .collect()
    })
    .join()
    .unwrap()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 13 + i / 251) as u8).collect()
}

#[test]
fn udp_echo_reassembles_and_fragments_datagrams_larger_than_the_mtu() {
    if !is_root() {
        skip("udp_echo_reassembles_and_fragments_datagrams_larger_than_the_mtu: not root (needs a namespace)");
        return;
    }
    let build = Command::new(env!("CARGO")).args(["build", "--quiet", "-p", "udp-echo"]).status().unwrap();
    assert!(build.success());
    let tag = "uktest-frag";
    let ns = Ns::new(tag);
    let bin = target_dir().join("debug/udp-echo");
    let mut cmd = ns.command("env");
    cmd.arg("RT_UNIX_TAP=tap0").arg(bin);
    let guest = start_until(cmd, "listening on 10.0.0.2", Duration::from_secs(30));

    // 3000 bytes: three fragments at a 1500-byte MTU. 8164 bytes: the largest echo, an
    // 8192-byte IP packet out. 20000 bytes: reassembled, but its echo is larger than
    // what the guest sends fragmented, so no answer; the datagrams after it still echo.
    let sizes = [64, 3000, 8164, 20000, 64, 3000];
    let replies = echo_from_host(&format!("{tag}-{}", std::process::id()), sizes.iter().map(|&n| pattern(n)).collect());
    drop(guest);
    for (size, reply) in sizes.iter().zip(&replies) {
        let expected = (*size <= 8164).then(|| pattern(*size));
        assert!(
            reply == &expected,
            "{size}-byte datagram: expected {}, got {}",
            expected.as_ref().map_or("no echo".into(), |e| format!("{} bytes echoed", e.len())),
            reply.as_ref().map_or("no echo".into(), |r| format!("{} bytes", r.len()))
        );
    }
}

/// The workspace's target directory (`CARGO_TARGET_DIR` when set).
fn target_dir() -> std::path::PathBuf {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace.join("target"), |dir| workspace.join(dir))
}
