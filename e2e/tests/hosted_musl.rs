//! The hosted-musl harness: the Unikraft build of an app's Rust archive, with the same
//! rt-unikraft shims, linked against the host's musl and run as a process. Needs only
//! `musl-gcc` (Debian `musl-tools`, which `.ci/run` installs), so it runs everywhere.

mod common;

use std::process::Command;

use common::{show, skip, XTASK};

fn have_musl_gcc(test: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("musl-gcc").is_file()));
    if !found {
        skip(&format!("{test}: musl-gcc is not installed (apt-get install musl-tools)"));
    }
    found
}

#[test]
fn conformance_passes_on_hosted_musl() {
    if !have_musl_gcc("conformance_passes_on_hosted_musl") {
        return;
    }
    let out = Command::new(XTASK).args(["conformance", "--backend", "hosted-musl"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", show(&out));
    assert!(stdout.contains("CONFORMANCE BEGIN backend=hosted-musl"), "{}", show(&out));
    for case in ["std.args", "std.sleep", "std.fs", "std.command", "heap.soak", "std.panic-exit", "std.process-exit"] {
        assert!(stdout.contains(&format!("PASS {case} ")), "{case} did not pass:\n{}", show(&out));
    }
    assert!(stdout.contains("conformance (hosted-musl): all cases passed"), "{}", show(&out));
    for case in conformance_protocol::STD_NET_CASES {
        let skipped = format!("\nSKIP {case} the hosted-musl harness has no devices");
        assert!(stdout.contains(&skipped), "{case} was not skipped:\n{}", show(&out));
    }
}

#[test]
fn the_three_endings_give_their_exit_statuses_on_hosted_musl() {
    if !have_musl_gcc("the_three_endings_give_their_exit_statuses_on_hosted_musl") {
        return;
    }
    let run = |args: &[&str]| {
        Command::new(XTASK)
            .args(["run", "--backend", "hosted-musl", "--example", "hello-std", "--"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["a", "b", "--exit=4"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("args: a b --exit=4"), "{}", show(&out));
    assert!(stdout.contains("thread stack: RUST_MIN_STACK=262144"), "{}", show(&out));
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert_eq!(run(&["--process-exit=3"]).status.code(), Some(3));
    let out = run(&["--panic"]);
    assert_eq!(out.status.code(), Some(101), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("deliberate panic (--panic)"), "{}", show(&out));
}
