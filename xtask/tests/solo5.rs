//! The solo5 backend: apps built on stable Rust as Solo5 unikernels and run on the spt
//! tender. Needs a provisioned Solo5 tree (`cargo xtask fetch --solo5-src DIR`, or
//! SOLO5_SRC); prints SKIP lines otherwise. (hvt is not tested: the hello guest stops
//! with a KVM emulation error after its first lines here; see docs/backends.md.)

use std::process::{Command, Output};

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

/// Prints a skip line straight to stderr, so libtest's output capture does not hide it.
fn skip(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIP: {why}");
}

fn show(out: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn solo5_run(target: &str, args: &[&str]) -> Output {
    Command::new(XTASK)
        .args(["solo5-run", "--target", target, "--example", "hello", "--"])
        .args(args)
        .output()
        .expect("run xtask solo5-run")
}

fn provisioned(test: &str) -> bool {
    let out = Command::new(XTASK).args(["solo5-run", "--example", "hello", "--no-run"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && err.contains("is not provisioned") {
        skip(&format!("{test}: Solo5 is not provisioned (cargo xtask fetch --solo5-src DIR)"));
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
}
