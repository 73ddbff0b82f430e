//! examples/kv end to end: keys stored over UDP survive a reboot of the guest, a wrong key
//! is refused, and the disk image holds none of the stored values, on unix, Unikraft and
//! solo5 (spt). Network tests need root; Unikraft and solo5 also the provisioned sources.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::unikraft::sources_or_skip;
use common::{build_first, is_root, show, skip, start_until, Guest, Ns, XTASK};

const KEY: &str = "8f1e2d3c4b5a69788796a5b4c3d2e1f000112233445566778899aabbccddeeff";
const WRONG_KEY: &str = "0000000000000000000000000000000000000000000000000000000000000001";
const ENTRIES: [(&str, &str); 3] =
    [("alpha", "first secret value"), ("beta", "zweiter geheimer Wert, with spaces"), ("gamma", "to be deleted")];

/// One request to the guest's store; its reply.
fn ask(ns: &Ns, request: &str) -> String {
    let out = ns.command(XTASK).args(["peer", "udp", "--port", "7070", "--message", request]).output().unwrap();
    assert!(out.status.success(), "{request}: {}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let reply = stdout.trim_end().split_once("reply from 10.0.0.2:7070: ").map(|(_, r)| r.to_string());
    reply.unwrap_or_else(|| panic!("{request}: no reply line in {stdout}"))
}

fn blank_disk(dir: &Path) -> std::path::PathBuf {
    let disk = dir.join("kv.img");
    std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
    disk
}

/// Stores, reboots (a new guest on the same disk), reads back; then the image is checked.
fn store_reboot_and_read_back(ns: &Ns, disk: &Path, boot: impl Fn(&Ns, &Path) -> Guest) {
    let guest = boot(ns, disk);
    for (key, value) in ENTRIES {
        assert_eq!(ask(ns, &format!("PUT {key} {value}")), "OK");
    }
    assert_eq!(ask(ns, "GET alpha"), "VALUE first secret value");
    assert_eq!(ask(ns, "DEL gamma"), "OK");
    assert_eq!(ask(ns, "PUT delta a value with spaces"), "OK");
    assert_eq!(ask(ns, "GET delta"), "VALUE a value with spaces");
    assert_eq!(ask(ns, "DEL delta"), "OK");
    drop(guest); // killed: every acknowledged change is already flushed

    let guest = boot(ns, disk);
    assert_eq!(ask(ns, "GET alpha"), "VALUE first secret value");
    assert_eq!(ask(ns, "GET beta"), "VALUE zweiter geheimer Wert, with spaces");
    assert_eq!(ask(ns, "GET gamma"), "NOTFOUND");
    assert_eq!(ask(ns, "KEYS"), "KEYS 2 alpha beta");
    assert!(ask(ns, "PUT").starts_with("ERR"));
    drop(guest);

    let image = std::fs::read(disk).unwrap();
    for (key, value) in ENTRIES {
        for plain in [key, value] {
            assert!(!image.windows(plain.len()).any(|w| w == plain.as_bytes()), "`{plain}` is in the disk image");
        }
    }
}

fn refused(out: &Output) {
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("wrong key for this encrypted device"), "{}", show(out));
    assert_eq!(out.status.code(), Some(1), "{}", show(out));
}

#[test]
fn kv_keeps_its_keys_across_a_reboot_on_unix() {
    if !is_root() {
        skip("kv_keeps_its_keys_across_a_reboot_on_unix: not root (needs a network namespace and TAP)");
        return;
    }
    assert!(Command::new(env!("CARGO")).args(["build", "--quiet", "-p", "kv"]).status().unwrap().success());
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/kv");
    let dir = tempfile::tempdir().unwrap();
    let disk = blank_disk(dir.path());
    let ns = Ns::new("uktest-kv");
    store_reboot_and_read_back(&ns, &disk, |ns, disk| {
        let mut cmd = ns.command("env");
        cmd.arg("RT_UNIX_TAP=tap0").arg(format!("RT_UNIX_BLOCK={}", disk.display()));
        cmd.arg(&bin).arg(format!("--key={KEY}"));
        start_until(cmd, "listening on 10.0.0.2", Duration::from_secs(30))
    });
    // The store is opened before the network: no namespace needed to be refused.
    let out = Command::new(&bin).env("RT_UNIX_BLOCK", &disk).arg(format!("--key={WRONG_KEY}")).output().unwrap();
    refused(&out);
}

#[test]
fn kv_keeps_its_keys_across_a_reboot_on_unikraft() {
    let test = "kv_keeps_its_keys_across_a_reboot_on_unikraft";
    if sources_or_skip(test).is_none() {
        return;
    }
    if !is_root() {
        skip(&format!("{test}: not root (needs a network namespace and TAP)"));
        return;
    }
    let build = build_first(test, &["kraft-run", "--example", "kv", "--no-boot"]);
    assert!(build.status.success(), "{}", show(&build));
    let dir = tempfile::tempdir().unwrap();
    let disk = blank_disk(dir.path());
    let ns = Ns::new("ukuk-kv");
    store_reboot_and_read_back(&ns, &disk, |ns, disk| {
        let mut cmd = ns.command(XTASK);
        cmd.args(["kraft-run", "--example", "kv", "--no-build", "--tap", "tap0", "--disk"]).arg(disk);
        cmd.args(["--", &format!("--key={KEY}")]);
        start_until(cmd, "listening on 10.0.0.2", Duration::from_secs(120))
    });
    let out = Command::new(XTASK)
        .args(["kraft-run", "--example", "kv", "--no-build", "--disk"])
        .arg(&disk)
        .args(["--", &format!("--key={WRONG_KEY}")])
        .output()
        .unwrap();
    refused(&out);
}

#[test]
fn kv_keeps_its_keys_across_a_reboot_on_spt() {
    let test = "kv_keeps_its_keys_across_a_reboot_on_spt";
    if !is_root() {
        skip(&format!("{test}: not root (needs a network namespace and TAP)"));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let disk = blank_disk(dir.path());
    let solo5 = |extra: &[&str]| {
        let mut args = vec!["solo5-run", "--example", "kv", "--tap", "tap0", "--disk", disk.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let build_args = solo5(&["--no-run"]);
    let build = build_first(test, &build_args.iter().map(String::as_str).collect::<Vec<_>>());
    if !build.status.success() && String::from_utf8_lossy(&build.stderr).contains("not provisioned") {
        common::skip_unprovisioned(test, "Solo5 is not provisioned");
        return;
    }
    assert!(build.status.success(), "{}", show(&build));
    let ns = Ns::new("ukspt-kv");
    let key_arg = format!("--key={KEY}");
    store_reboot_and_read_back(&ns, &disk, |ns, _| {
        let mut cmd = ns.command(XTASK);
        cmd.args(solo5(&["--no-build", "--", &key_arg]));
        start_until(cmd, "listening on 10.0.0.2", Duration::from_secs(60))
    });
    let out = ns.command(XTASK).args(solo5(&["--no-build", "--", &format!("--key={WRONG_KEY}")])).output().unwrap();
    refused(&out);
}
