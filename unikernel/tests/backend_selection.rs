//! Compile-fail tests: an app with zero or two backends must not build, and the error
//! must say how to fix it. Each case is a real crate built by a real `cargo check`, so
//! the message checked is exactly what a user sees.
//!
//! (trybuild compiles every case with the features of the crate under test, which here
//! are exactly what varies, so these cases drive cargo directly.)

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Writes a one-file app selecting `features` of `unikernel`, runs `cargo check` on it,
/// and returns (success, stderr).
fn check_app(case: &str, features: &[&str]) -> (bool, String) {
    let root = workspace_root();
    let dir = root.join("target").join("backend-selection").join(case);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let features = features.iter().map(|f| format!("\"{f}\"")).collect::<Vec<_>>().join(", ");
    let manifest = format!(
        "[package]\nname = \"app-{case}\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
         [dependencies]\nunikernel = {{ path = {:?}, features = [{features}] }}\n\n\
         [workspace]\n",
        root.join("unikernel")
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(dir.join("src/main.rs"), "#![no_std]\n#![no_main]\nunikernel::main!(run);\nfn run() -> i32 { 0 }\n")
        .unwrap();
    // Same dependency versions as the workspace, and no network needed.
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let output = Command::new(env!("CARGO"))
        .args(["check", "--offline", "--quiet"])
        .current_dir(&dir)
        // One target dir for all cases so dependencies are checked once.
        .env("CARGO_TARGET_DIR", root.join("target").join("backend-selection").join("target"))
        .output()
        .expect("run cargo");
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn exactly_one_backend_builds() {
    let (ok, stderr) = check_app("one", &["unix"]);
    assert!(ok, "an app with one backend must build:\n{stderr}");
}

#[test]
fn unikraft_alone_builds() {
    let (ok, stderr) = check_app("unikraft", &["unikraft"]);
    assert!(ok, "an app with only the unikraft backend must build:\n{stderr}");
}

#[test]
fn unix_and_unikraft_is_a_compile_error() {
    let (ok, stderr) = check_app("unix-unikraft", &["unix", "unikraft"]);
    assert!(!ok, "an app with two backends must not build");
    assert!(stderr.contains("error: two unikernel backends selected"), "{stderr}");
    assert!(!stderr.contains("multiple definition"), "must fail before linking: {stderr}");
}

#[test]
fn zero_backends_is_a_compile_error_naming_the_fix() {
    let (ok, stderr) = check_app("zero", &[]);
    assert!(!ok, "an app with no backend must not build");
    println!("--- the message a user sees ---\n{stderr}");
    assert!(stderr.contains("error: no unikernel backend selected"), "{stderr}");
    assert!(stderr.contains("enable exactly one feature"), "{stderr}");
    assert!(stderr.contains("unikernel/unix"), "the fix must be named: {stderr}");
    assert!(!stderr.contains("undefined reference"), "must fail before linking: {stderr}");
}

#[test]
fn two_backends_is_a_compile_error_naming_the_fix() {
    let (ok, stderr) = check_app("two", &["unix", "solo5"]);
    assert!(!ok, "an app with two backends must not build");
    println!("--- the message a user sees ---\n{stderr}");
    assert!(stderr.contains("error: two unikernel backends selected"), "{stderr}");
    assert!(stderr.contains("--no-default-features"), "the fix must be named: {stderr}");
    assert!(!stderr.contains("multiple definition"), "must fail before linking: {stderr}");
}
