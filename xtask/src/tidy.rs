//! The repository's conventions, checked by `cargo test` (rust-analyzer's `xtask/src/tidy.rs`
//! is the model): each rule reads the tracked sources and fails with every offender and
//! what to do about it.
//!
//! - A source file over [`MAX_LINES`] lines has its reason in [`LONG_FILES`], and an entry
//!   there names a file that is still long.
//! - Every `unsafe` block and `unsafe impl` has a `SAFETY:` comment (clippy's
//!   `undocumented_unsafe_blocks` checks the Rust of crates that opt into the workspace
//!   lints; this also covers crates that would not, and says which file).
//! - Every crate takes the workspace lints and has module docs at its root.
//! - A crate root with no unsafe code in its crate says `#![forbid(unsafe_code)]` (or
//!   `deny`), and the public crates ([`MISSING_DOCS_CRATES`]) warn on missing docs.
//! - User-facing strings (code, not comments, of every crate a user of `cargo unikraft` or
//!   of the runtime crates builds or runs; cargo-unikraft's `--help` text) never name
//!   `cargo xtask`, which exists only in this repository.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Lines a source file may have without a recorded reason.
const MAX_LINES: usize = 500;

/// Source files allowed over [`MAX_LINES`], each with why it is one file.
const LONG_FILES: &[(&str, &str)] = &[
    (
        "cargo-unikraft/tests/outside.rs",
        "the installed tool against crates outside this repository (build, run, test, locks): the \
         tests share one set of scratch crates and their cached builds",
    ),
    (
        "rt-unikraft/glue/netdev.c",
        "one C translation unit that Unikraft's build compiles: the receive path's workarounds \
         (docs/unikraft.md, five numbered traps) share its static state",
    ),
    (
        "rt-unikraft/tests/c/netdev_test.c",
        "the scripted virtio-net device and the scenarios of glue/netdev.c's receive path: one C \
         program, compiled and run by tests/glue_c.rs",
    ),
    (
        "rt-unikraft/src/block/tests.rs",
        "the scripted ukblkdev queue and every scenario against it (cancel, retry, drop, flush): \
         the scenarios share the script's helpers",
    ),
    (
        "rt-unikraft/src/net.rs",
        "the uknetdev device (open, start, receive, transmit, drop order): one NetDevice \
         implementation and the glue calls it owns",
    ),
    (
        "conformance-protocol/src/lib.rs",
        "the whole wire protocol of the conformance suite (case names, ports, patterns, the \
         report grammar) and its round-trip tests: guest and host read one file",
    ),
];

/// Crates whose public API is documented, checked by `missing_docs`.
const MISSING_DOCS_CRATES: &[&str] = &[
    "shared-core",
    "unikernel",
    "kraftfile-gen",
    "console-protocol",
    "conformance-protocol",
    "rt-unikraft-glue",
    "e2e",
];

/// Where the user-facing code is: every crate but this one and the end-to-end tests, and
/// outside tests.
fn user_facing(path: &str) -> bool {
    let tests = path.contains("/tests/") || path.ends_with("/tests.rs") || path.contains("/tests_");
    !(path.starts_with("xtask/") || path.starts_with("e2e/") || tests)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask is in the workspace").to_path_buf()
}

/// The tracked files (git's view, so build output and scratch files never count).
fn tracked_files() -> Vec<String> {
    let out = Command::new("git")
        .args(["ls-files", "--cached", "--others", "--exclude-standard"])
        .current_dir(workspace_root())
        .output()
        .expect("run git ls-files");
    assert!(out.status.success(), "git ls-files failed: {}", String::from_utf8_lossy(&out.stderr));
    let root = workspace_root();
    String::from_utf8(out.stdout)
        .expect("UTF-8 paths")
        .lines()
        .filter(|path| root.join(path).is_file())
        .map(str::to_string)
        .collect()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(workspace_root().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn is_source(path: &str) -> bool {
    [".rs", ".c", ".h", ".inc"].iter().any(|ext| path.ends_with(ext))
}

/// Fails with `problems`, one per line, unless there are none.
fn report(rule: &str, problems: Vec<String>) {
    assert!(problems.is_empty(), "tidy: {rule}:\n  {}", problems.join("\n  "));
}

#[test]
fn long_files_have_a_recorded_reason() {
    let files = tracked_files();
    let mut problems = Vec::new();
    for path in files.iter().filter(|p| is_source(p)) {
        let lines = read(path).lines().count();
        let listed = LONG_FILES.iter().any(|(long, _)| long == path);
        if lines > MAX_LINES && !listed {
            problems.push(format!(
                "{path} has {lines} lines (over {MAX_LINES}): split it, or add it with its reason to \
                 LONG_FILES in xtask/src/tidy.rs"
            ));
        }
    }
    for (long, _) in LONG_FILES {
        match files.iter().find(|p| p == long) {
            None => problems.push(format!("LONG_FILES names {long}, which does not exist: remove it")),
            Some(path) if read(path).lines().count() <= MAX_LINES => {
                problems.push(format!("{long} is {MAX_LINES} lines or fewer now: remove it from LONG_FILES"))
            }
            Some(_) => {}
        }
    }
    report("long files", problems);
}

/// The `unsafe` blocks and impls of a Rust source without a `SAFETY:` comment on their
/// line or in the comment lines and statement lines just above (a statement split over
/// lines, `let x =` then `unsafe { ... }`, counts as one).
fn undocumented_unsafe(text: &str) -> Vec<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut missing = Vec::new();
    for (at, line) in lines.iter().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let opens_block = code.contains("unsafe {") || code.trim_end().ends_with("unsafe");
        let is_impl = code.trim_start().starts_with("unsafe impl");
        if !(opens_block || is_impl) || line.contains("SAFETY:") {
            continue;
        }
        // Walk up through comments and the lines of the same statement.
        let mut documented = false;
        for above in lines[..at].iter().rev().take(12) {
            let trimmed = above.trim();
            if trimmed.contains("SAFETY:") {
                documented = true;
                break;
            }
            let comment = trimmed.starts_with("//") || trimmed.starts_with("#[");
            let ends_statement = trimmed.ends_with(';') || trimmed.ends_with('}') || trimmed.is_empty();
            if !comment && ends_statement {
                break;
            }
        }
        if !documented {
            missing.push(at + 1);
        }
    }
    missing
}

#[test]
fn unsafe_code_says_why_it_is_sound() {
    let mut problems = Vec::new();
    for path in tracked_files().iter().filter(|p| p.ends_with(".rs") && !p.ends_with("xtask/src/tidy.rs")) {
        for line in undocumented_unsafe(&read(path)) {
            problems.push(format!("{path}:{line}: an unsafe block or impl without a `// SAFETY:` comment above it"));
        }
    }
    report("unsafe without SAFETY", problems);
}

#[test]
fn the_unsafe_rule_sees_what_it_should() {
    let documented = "// SAFETY: fine.\nlet x = unsafe { f() };\n// SAFETY: split.\nlet y =\n    unsafe { g() };\n";
    assert_eq!(undocumented_unsafe(documented), Vec::<usize>::new());
    let bare = "let a = 1;\nlet x = unsafe { f() };\n";
    assert_eq!(undocumented_unsafe(bare), vec![2]);
    assert_eq!(undocumented_unsafe("unsafe impl Sync for X {}\n"), vec![1]);
    assert_eq!(undocumented_unsafe("// an unsafe { in a comment\n"), Vec::<usize>::new());
}

/// The crates of the workspace: their directory and their root source files.
fn crates() -> Vec<(String, Vec<String>)> {
    let files = tracked_files();
    let mut crates = Vec::new();
    for manifest in files.iter().filter(|p| p.ends_with("Cargo.toml") && p.as_str() != "Cargo.toml") {
        let dir = manifest.trim_end_matches("Cargo.toml").trim_end_matches('/').to_string();
        let text = read(manifest);
        let mut roots: Vec<String> = Vec::new();
        // `[lib] path = "..."` (rt-unikraft-glue), else src/lib.rs; and src/main.rs.
        if let Some(path) = text.split("[lib]").nth(1).and_then(|lib| {
            lib.lines().take_while(|l| !l.starts_with('[')).find_map(|l| l.trim().strip_prefix("path = \""))
        }) {
            roots.push(format!("{dir}/{}", path.trim_end_matches('"')));
        }
        for default in ["src/lib.rs", "src/main.rs"] {
            let root = format!("{dir}/{default}");
            if files.contains(&root) && !roots.contains(&root) {
                roots.push(root);
            }
        }
        crates.push((dir, roots));
    }
    crates
}

fn package_name(dir: &str) -> String {
    let manifest = read(&format!("{dir}/Cargo.toml"));
    manifest
        .lines()
        .find_map(|l| l.strip_prefix("name = \""))
        .map(|n| n.trim_end_matches('"').to_string())
        .unwrap_or_else(|| panic!("{dir}/Cargo.toml has no name"))
}

#[test]
fn every_crate_has_docs_lints_and_its_unsafe_stance() {
    let files = tracked_files();
    let mut problems = Vec::new();
    let crates = crates();
    assert!(crates.len() > 10, "found only {} crates", crates.len());
    for (dir, roots) in &crates {
        let manifest = read(&format!("{dir}/Cargo.toml"));
        if !manifest.contains("[lints]\nworkspace = true") {
            problems.push(format!("{dir}/Cargo.toml: add `[lints]\\nworkspace = true` (the unsafe discipline)"));
        }
        if roots.is_empty() {
            problems.push(format!("{dir}: no crate root found"));
        }
        let prefix = format!("{dir}/");
        let nested: Vec<&String> =
            crates.iter().map(|(d, _)| d).filter(|d| *d != dir && d.starts_with(&prefix)).collect();
        let has_unsafe = files.iter().filter(|p| p.starts_with(&prefix) && p.ends_with(".rs")).any(|p| {
            !nested.iter().any(|n| p.starts_with(&format!("{n}/")))
                && read(p).lines().any(|l| {
                    let code = l.split("//").next().unwrap_or("");
                    code.contains("unsafe {")
                        || code.contains("unsafe fn")
                        || code.contains("unsafe impl")
                        || code.contains("unsafe extern")
                        || code.contains("unsafe(")
                })
        });
        for root in roots {
            let text = read(root);
            if !text.trim_start().starts_with("//!") {
                problems.push(format!("{root}: the crate root starts without module docs (`//! ...`)"));
            }
            let stance = text.contains("#![forbid(unsafe_code)]") || text.contains("#![deny(unsafe_code)]");
            if !has_unsafe && !stance {
                problems.push(format!("{root}: the crate has no unsafe code: say `#![forbid(unsafe_code)]`"));
            }
        }
        if MISSING_DOCS_CRATES.contains(&package_name(dir).as_str()) {
            for root in roots.iter().filter(|r| !r.ends_with("main.rs")) {
                let text = read(root);
                if !(text.contains("#![warn(missing_docs)]") || text.contains("#![deny(missing_docs)]")) {
                    problems.push(format!("{root}: a public crate: say `#![warn(missing_docs)]`"));
                }
            }
        }
    }
    report("crate roots", problems);
}

/// Whether a line of Rust or C is code (a string a user may see), not a comment. Doc
/// comments of cargo-unikraft's command-line arguments are code here: clap prints them as
/// `--help`.
fn user_visible(path: &str, line: &str) -> bool {
    let trimmed = line.trim_start();
    if trimmed.starts_with("///") {
        return path.starts_with("cargo-unikraft/src/cli/");
    }
    !(trimmed.starts_with("//") || trimmed.starts_with("/*") || trimmed.starts_with('*'))
}

#[test]
fn user_facing_strings_name_cargo_unikraft_not_cargo_xtask() {
    let mut problems = Vec::new();
    for path in tracked_files().iter().filter(|p| is_source(p) && user_facing(p)) {
        let text = read(path);
        let mut in_tests = false;
        for (at, line) in text.lines().enumerate() {
            // Unit tests at the bottom of a file are not what a user sees.
            if line.starts_with("#[cfg(test)]") {
                in_tests = true;
            }
            if in_tests {
                continue;
            }
            let code = line.split(" // ").next().unwrap_or(line);
            if user_visible(path, line) && code.contains("cargo xtask") {
                problems.push(format!(
                    "{path}:{}: names `cargo xtask`, which users do not have: name the `cargo unikraft` \
                     command (or say what to do without a command)",
                    at + 1
                ));
            }
        }
    }
    report("`cargo xtask` in user-facing strings", problems);
}

#[test]
fn the_string_rule_sees_code_and_help_text_only() {
    assert!(user_visible("cargo-unikraft/src/run.rs", r#"    bail!("run cargo unikraft fetch")"#));
    assert!(!user_visible("cargo-unikraft/src/run.rs", "    // run `cargo xtask fetch`"));
    assert!(!user_visible("rt-unikraft/glue/main.c", " * (cargo xtask bench-runtime)"));
    assert!(user_visible("cargo-unikraft/src/cli/run.rs", "    /// Boots the image"));
    assert!(!user_visible("cargo-unikraft/src/app.rs", "/// Reads the manifest"));
    assert!(user_facing("cargo-unikraft/src/run.rs") && !user_facing("cargo-unikraft/tests/run.rs"));
    assert!(!user_facing("xtask/src/main.rs") && !user_facing("shared-core/src/block/encrypted/tests_faults.rs"));
}
