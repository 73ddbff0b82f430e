//! Boot arguments are refused at the door the same way on every backend: an argument that
//! is not UTF-8 and an address that cannot be a host's end the app with status 2 and a
//! message naming the argument (never a panic, never a silently altered value), and on
//! solo5, whose tender joins the arguments into one line, an argument holding a space
//! reaches the app whole.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{show, skip, skip_unprovisioned, XTASK};

const NOT_UTF8: &[u8] = b"--name=caf\xe9";

/// The workspace's target directory (`CARGO_TARGET_DIR` when set).
fn target_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace.join("target"), |dir| workspace.join(dir))
}

fn unix_bin(example: &str) -> PathBuf {
    let build = Command::new(env!("CARGO")).args(["build", "--quiet", "-p", example]).status().unwrap();
    assert!(build.success());
    target_dir().join("debug").join(example)
}

fn assert_refused_non_utf8(out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{}", show(out));
    assert!(
        stdout.contains("error: boot argument 2 (`--name=caf\u{fffd}`") && stdout.contains("is not valid UTF-8"),
        "{}",
        show(out)
    );
    assert!(!stdout.contains("Hello from a unikernel"), "the app ran: {}", show(out));
}

#[test]
fn unix_refuses_a_non_utf8_argument_by_name() {
    let out = Command::new(unix_bin("hello")).arg("ok").arg(OsStr::from_bytes(NOT_UTF8)).output().unwrap();
    assert_refused_non_utf8(&out);
}

#[test]
fn unix_refuses_addresses_that_cannot_be_a_host() {
    let bin = unix_bin("udp-echo");
    for (arg, why) in [
        ("--ipv4=255.255.255.255/32", "is the limited broadcast address"),
        ("--ipv4=224.0.0.1/24", "is a multicast address"),
        ("--ipv4=10.0.0.255/24", "is the broadcast address of 10.0.0.0/24"),
        ("--ipv4=10.0.0.0/24", "is the network address of 10.0.0.0/24"),
    ] {
        // Refused before the device is opened, so no TAP (or root) is needed.
        let out = Command::new(&bin).arg(arg).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(2), "{arg}: {}", show(&out));
        assert!(stdout.contains(&format!("error: boot argument {arg} cannot be used: ")), "{}", show(&out));
        assert!(stdout.contains(why), "{arg}: {}", show(&out));
    }
}

/// The Unikraft entry (`rt-unikraft`'s `unikernel_main`), in the hosted-musl harness: the
/// same archive a Unikraft image links, run as a process so any bytes can be passed.
#[test]
fn unikraft_entry_refuses_a_non_utf8_argument_by_name() {
    if Command::new("musl-gcc").arg("--version").output().is_err() {
        skip("unikraft_entry_refuses_a_non_utf8_argument_by_name: no musl-gcc (apt-get install musl-tools)");
        return;
    }
    let out = Command::new(XTASK).args(["run", "--backend", "hosted-musl", "--example", "hello"]).output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let bin = target_dir().join("hosted-musl/hello/hello");
    let out = Command::new(bin).arg("ok").arg(OsStr::from_bytes(NOT_UTF8)).output().unwrap();
    assert_refused_non_utf8(&out);
}

/// The Solo5 tree (from `cargo xtask doctor`) and hello's image, or `None` (a SKIP) when
/// Solo5 is not provisioned.
fn solo5_tree_and_image(test: &str) -> Option<(PathBuf, PathBuf)> {
    let out = Command::new(XTASK).args(["solo5-run", "--example", "hello", "--no-run"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && err.contains("is not provisioned") {
        skip_unprovisioned(test, "Solo5 is not provisioned (cargo xtask fetch --solo5, or --solo5-src DIR)");
        return None;
    }
    assert!(out.status.success(), "{}", show(&out));
    let doctor = Command::new(XTASK).arg("doctor").output().unwrap();
    let stdout = String::from_utf8_lossy(&doctor.stdout);
    let line = stdout.lines().find(|l| l.contains("solo5 tree")).unwrap_or_else(|| panic!("{stdout}"));
    let image = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().trim().to_string();
    Some((PathBuf::from(line.split_whitespace().last().unwrap()), PathBuf::from(image)))
}

#[test]
fn solo5_keeps_an_argument_with_spaces_whole_and_refuses_non_utf8() {
    let Some((tree, image)) = solo5_tree_and_image("solo5_keeps_an_argument_with_spaces_whole_and_refuses_non_utf8")
    else {
        return;
    };
    // Split at the space, hello would see `--exit=4` and exit 4; whole, `4 2` is not a number.
    let out = Command::new(XTASK)
        .args(["solo5-run", "--plat", "spt", "--example", "hello", "--", "--exit=4 2", "it's \"quoted\""])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("boot args: --exit=4 2 it's \"quoted\""), "{}", show(&out));
    assert!(stdout.contains("error: --exit=4 2 is not an integer exit code"), "{}", show(&out));
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));

    // The tender itself, as any caller may use it: bytes that are not UTF-8, and a line
    // that does not split.
    let tender = tree.join("tenders/spt/solo5-spt");
    let tender_run = |args: &[&OsStr]| Command::new(&tender).arg("--mem=32").arg(&image).args(args).output().unwrap();
    assert_refused_non_utf8(&tender_run(&[OsStr::new("ok"), OsStr::from_bytes(NOT_UTF8)]));
    let out = tender_run(&[OsStr::new("'open")]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("error: cannot split the boot command line: unterminated single quote"),
        "{}",
        show(&out)
    );
}
