//! examples/kv end to end: keys stored over UDP survive a reboot of the guest, a wrong key
//! is refused, and the disk image holds none of the stored values, on unix, Unikraft and
//! solo5 (spt); on unix also that a tampered, erased or (given `--min-generation`) rolled
//! back store is refused, and erased only with `--format`. Network tests need root;
//! Unikraft and solo5 also the provisioned sources.

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

/// Byte offset in kv's 1 MiB image of logical sector `lba` of its encrypted partition:
/// the partition starts at sector 64; inside it the encrypted layer keeps a header, then
/// groups of two metadata sectors and 7 data sectors (512-byte sectors; see
/// shared-core's `block/encrypted/layout.rs`).
fn encrypted_sector_offset(lba: usize) -> usize {
    let (group, index) = (lba / 7, lba % 7);
    (64 + 1 + group * 9 + 2 + index) * 512
}

/// kv booted on `image` without a network (the store is opened first; a TAP name longer
/// than Linux allows makes the network fail to open once the store is loaded): its output
/// and exit status.
fn boot_offline(bin: &Path, image: &Path, args: &[&str]) -> (String, Option<i32>) {
    let mut cmd = Command::new(bin);
    cmd.env("RT_UNIX_BLOCK", image).env("RT_UNIX_TAP", "no-network-in-this-test");
    let out = cmd.arg(format!("--key={KEY}")).args(args).output().unwrap();
    (format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)), out.status.code())
}

/// A6 and rollback: a bit flipped in the newest store header is refused (before: kv
/// passed over it and served the previous generation); an erased encrypted header is
/// refused (before: kv formatted the partition again, losing the data); a store put back
/// to an older copy loads unless `--min-generation` says which generation was reached,
/// then it is refused; `--format` erases on purpose.
#[test]
fn kv_refuses_a_tampered_erased_or_rolled_back_store_on_unix() {
    if !is_root() {
        skip("kv_refuses_a_tampered_erased_or_rolled_back_store_on_unix: not root (needs a network namespace and TAP)");
        return;
    }
    assert!(Command::new(env!("CARGO")).args(["build", "--quiet", "-p", "kv"]).status().unwrap().success());
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/kv");
    let dir = tempfile::tempdir().unwrap();
    let disk = blank_disk(dir.path());
    let ns = Ns::new("uktest-kvtamper");
    let boot = |ns: &Ns| {
        let mut cmd = ns.command("env");
        cmd.arg("RT_UNIX_TAP=tap0").arg(format!("RT_UNIX_BLOCK={}", disk.display()));
        cmd.arg(&bin).arg(format!("--key={KEY}"));
        start_until(cmd, "listening on 10.0.0.2", Duration::from_secs(30))
    };
    let guest = boot(&ns);
    assert_eq!(ask(&ns, "PUT a 1"), "OK");
    assert_eq!(ask(&ns, "GEN"), "GEN 1");
    drop(guest);
    let generation_1 = std::fs::read(&disk).unwrap();
    let guest = boot(&ns);
    assert_eq!(ask(&ns, "PUT a 2"), "OK");
    assert_eq!(ask(&ns, "GEN"), "GEN 2");
    drop(guest);
    let good = std::fs::read(&disk).unwrap();
    let image = dir.path().join("variant.img");

    // Generation 2's header is the store's sector 0.
    let mut tampered = good.clone();
    tampered[encrypted_sector_offset(0) + 17] ^= 0x04;
    std::fs::write(&image, &tampered).unwrap();
    let (text, status) = boot_offline(&bin, &image, &[]);
    assert!(text.contains("cannot load the store: sector 0 failed authentication"), "{text}");
    assert_eq!(status, Some(1), "{text}");

    // The encrypted partition's header erased.
    let mut erased = good.clone();
    erased[64 * 512..65 * 512].fill(0);
    std::fs::write(&image, &erased).unwrap();
    let (text, status) = boot_offline(&bin, &image, &[]);
    assert!(text.contains("holds data but no encrypted-device header"), "{text}");
    assert!(text.contains("--format"), "{text}");
    assert_eq!(status, Some(1), "{text}");
    assert!(std::fs::read(&image).unwrap() == erased, "a refused start changed the disk");

    // Rolled back to generation 1: authentic, so only the operator's generation tells.
    std::fs::write(&image, &generation_1).unwrap();
    let (text, status) = boot_offline(&bin, &image, &["--min-generation=2"]);
    assert!(text.contains("the store is at generation 1, older than --min-generation=2"), "{text}");
    assert_eq!(status, Some(1), "{text}");
    let (text, _) = boot_offline(&bin, &image, &[]);
    assert!(text.contains("1 keys loaded (generation 1)"), "without --min-generation a rollback loads: {text}");
    let (text, _) = boot_offline(&bin, &disk, &["--min-generation=2"]);
    assert!(text.contains("1 keys loaded (generation 2)"), "{text}");

    // --format erases on purpose.
    std::fs::write(&image, &tampered).unwrap();
    let (text, _) = boot_offline(&bin, &image, &["--format"]);
    assert!(text.contains("--format: formatting the encrypted partition"), "{text}");
    assert!(text.contains("0 keys loaded (generation 0)"), "{text}");
}
