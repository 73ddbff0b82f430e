//! The solo5 backend: apps built on stable Rust as Solo5 unikernels and run on the spt
//! tender, and on hvt where the host's KVM can run FPU code in guests. Needs a
//! provisioned Solo5 tree (`cargo xtask fetch --solo5`, `--solo5-src DIR`, or SOLO5_SRC);
//! prints SKIP lines otherwise.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::{build_first, is_root, show, skip, skip_unprovisioned, start_until, Guest, Ns, XTASK};

fn solo5_run(target: &str, args: &[&str]) -> Output {
    Command::new(XTASK)
        .args(["solo5-run", "--plat", target, "--example", "hello", "--"])
        .args(args)
        .output()
        .expect("run xtask solo5-run")
}

fn provisioned(test: &str) -> bool {
    let out = build_first(test, &["solo5-run", "--example", "hello", "--no-run"]);
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && err.contains("is not provisioned") {
        skip_unprovisioned(test, "Solo5 is not provisioned (cargo xtask fetch --solo5, or --solo5-src DIR)");
        return false;
    }
    assert!(out.status.success(), "{}", show(&out));
    true
}

#[test]
fn hello_runs_on_spt_with_its_args_and_exit_code() {
    if !provisioned("hello_runs_on_spt_with_its_args_and_exit_code") {
        return;
    }
    let out = solo5_run("spt", &["a", "b", "--exit=3"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Hello from a unikernel! (backend: solo5)"), "{}", show(&out));
    assert!(stdout.contains("boot args: a b --exit=3"), "{}", show(&out));
    assert!(stdout.contains("slept 100 ms"), "{}", show(&out));
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert_eq!(solo5_run("spt", &[]).status.code(), Some(0));
}

/// Exit statuses agree on every backend: a code outside 0..=255 ends with 255, never 0
/// (Solo5's bindings hand `solo5_app_main`'s result to `solo5_exit`, and the spt tender's
/// exit_group keeps only the low byte). examples.rs and unikraft.rs check the same table.
#[test]
fn out_of_range_exit_codes_are_255_on_spt() {
    if !provisioned("out_of_range_exit_codes_are_255_on_spt") {
        return;
    }
    for (arg, want) in [
        ("--exit=254", 254),
        ("--exit=255", 255),
        ("--exit=256", 255),
        ("--exit=-1", 255),
        ("--services-exit=-1", 255),
        ("--services-exit=256", 255),
    ] {
        let out = solo5_run("spt", &[arg]);
        assert_eq!(out.status.code(), Some(want), "{arg}:\n{}", show(&out));
    }
}

#[test]
fn conformance_passes_on_spt() {
    if !provisioned("conformance_passes_on_spt") {
        return;
    }
    let out = Command::new(XTASK).args(["conformance", "--backend", "solo5"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", show(&out));
    assert!(stdout.contains("CONFORMANCE BEGIN backend=solo5-spt"), "{}", show(&out));
    for case in ["time.sleep", "random.bytes", "heap.soak", "args.parse", "std.panic-exit", "std.process-exit"] {
        assert!(stdout.contains(&format!("PASS {case} ")), "{case} did not pass:\n{}", show(&out));
    }
    assert!(stdout.contains("conformance (solo5-spt): all cases passed"), "{}", show(&out));
    for case in conformance_protocol::STD_NET_CASES {
        assert!(stdout.contains(&format!("\nSKIP {case} Solo5 has no std")), "{case} was not skipped:\n{}", show(&out));
    }
    if is_root() {
        for case in [
            "net.arp",
            "net.icmp",
            "net.udp-echo",
            "net.tcp",
            "host.tcp",
            "block.write-read",
            "host.block-image",
            "block.encrypted",
            "host.block-encrypted-image",
        ] {
            assert!(stdout.contains(&format!("PASS {case} ")), "{case} did not pass:\n{}", show(&out));
        }
    } else {
        skip("conformance_passes_on_spt: net and block sections not run (not root: no network namespace and TAP)");
    }
}

fn start_in(ns: &Ns, example: &str) -> Guest {
    let build = build_first(example, &["solo5-run", "--example", example, "--tap", "tap0", "--no-run"]);
    assert!(build.status.success(), "{}", show(&build));
    let mut cmd = ns.command(XTASK);
    cmd.args(["solo5-run", "--example", example, "--tap", "tap0", "--no-build"]);
    start_until(cmd, "listening on 10.0.0.2", Duration::from_secs(60))
}

#[test]
fn udp_echo_and_http_answer_the_host_from_spt() {
    if !provisioned("udp_echo_and_http_answer_the_host_from_spt") {
        return;
    }
    if !is_root() {
        skip("udp_echo_and_http_answer_the_host_from_spt: not root (needs a network namespace and TAP)");
        return;
    }
    let ns = Ns::new("uks5-udp");
    let guest = start_in(&ns, "udp-echo");
    let out = ns.command(XTASK).args(["peer", "udp", "--message", "ping-from-host"]).output().unwrap();
    drop(guest);
    assert!(String::from_utf8_lossy(&out.stdout).contains("reply from 10.0.0.2:7: ping-from-host"), "{}", show(&out));
    drop(ns);

    let ns = Ns::new("uks5-http");
    let guest = start_in(&ns, "http");
    let out = ns.command(XTASK).args(["peer", "http"]).output().unwrap();
    drop(guest);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Hello from a unikernel"), "{}", show(&out));
}

/// Whether this host can run SSE code in an hvt guest: Solo5's own `test_fpu` decides.
/// (Under some nested or PVM-based KVMs the FPU is not usable by hvt guests; every Rust
/// guest uses SSE, since the x86_64 baseline includes it.)
fn hvt_can_run_fpu_code(test: &str) -> bool {
    let tree =
        std::env::var_os("SOLO5_SRC").filter(|v| !v.is_empty()).map(std::path::PathBuf::from).unwrap_or_else(|| {
            let cache = std::env::var_os("UNIKERNEL_CACHE").map(std::path::PathBuf::from).unwrap_or_else(|| {
                std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/unikernel-rs")
            });
            cache.join("solo5/v0.12.1")
        });
    if !std::path::Path::new("/dev/kvm").exists() {
        skip(&format!("{test}: no /dev/kvm"));
        return false;
    }
    let out = Command::new(tree.join("tenders/hvt/solo5-hvt")).arg(tree.join("tests/test_fpu/test_fpu.hvt")).output();
    match out {
        Ok(out) if out.status.success() && String::from_utf8_lossy(&out.stdout).contains("SUCCESS") => true,
        Ok(out) => {
            let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
            skip(&format!(
                "{test}: this host's KVM cannot run FPU/SSE code in hvt guests (Solo5's own test_fpu fails: {why})"
            ));
            false
        }
        Err(e) => {
            skip(&format!("{test}: cannot run solo5-hvt ({e})"));
            false
        }
    }
}

#[test]
fn hello_runs_on_hvt_where_kvm_can() {
    if !provisioned("hello_runs_on_hvt_where_kvm_can") || !hvt_can_run_fpu_code("hello_runs_on_hvt_where_kvm_can") {
        return;
    }
    let out = solo5_run("hvt", &["a", "--exit=4"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("boot args: a --exit=4"), "{}", show(&out));
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
}

#[test]
fn conformance_passes_on_hvt_where_kvm_can() {
    if !provisioned("conformance_passes_on_hvt_where_kvm_can")
        || !hvt_can_run_fpu_code("conformance_passes_on_hvt_where_kvm_can")
    {
        return;
    }
    let out =
        Command::new(XTASK).args(["conformance", "--backend", "solo5", "--solo5-target", "hvt"]).output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("conformance (solo5-hvt): all cases passed"),
        "{}",
        show(&out)
    );
}
