//! The inner loop on a real Unikraft build: after an app-only change the image is relinked
//! without make (and boots with the change), the relinked image is the one make links,
//! byte for byte, and what make must see still goes to make: a kconfig change in
//! `[package.metadata.unikraft]` reconfigures, an edited C glue source is recompiled.
//!
//! The crate is the plain `cargo new --bin` crate of `tests/outside.rs`, in the same
//! directory under the system temp dir, so the two share one Unikraft build (cargo runs
//! test binaries one after the other). This test leaves its `Cargo.toml` as `cargo new`
//! wrote it; each side writes the `main.rs` it needs. Without the pinned sources it prints
//! a `SKIP:` line (a failure with `UNIKERNEL_REQUIRE_SOURCES=1`, as CI sets).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

use common::{provisioned, show};

const TOOL: &str = env!("CARGO_BIN_EXE_cargo-unikraft");

fn tool(dir: &Path, args: &[&str]) -> Output {
    Command::new(TOOL).arg("unikraft").args(args).current_dir(dir).output().unwrap()
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The directory of `tests/outside.rs`'s crates. When the temp dir is inside this
/// workspace (`cargo new` there would make the crate a member), one under `/tmp` named
/// after the workspace instead, so checkouts side by side do not share it.
fn outside_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("cargo-unikraft-outside-tests");
    if !dir.starts_with(workspace_root()) {
        return dir;
    }
    let root = workspace_root().display().to_string();
    let tag: String = root.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    PathBuf::from("/tmp").join(format!("cargo-unikraft-outside-tests{tag}"))
}

/// The crate of `tests/outside.rs` (`cargo new --bin --vcs none plain`), with `main`.
fn plain_crate(main: &str) -> PathBuf {
    let dir = outside_dir().join("plain");
    if !dir.join("Cargo.toml").is_file() {
        fs::create_dir_all(dir.parent().unwrap()).unwrap();
        let out = Command::new("cargo").args(["new", "--bin", "--vcs", "none", "-q"]).arg(&dir).output().unwrap();
        assert!(out.status.success(), "{}", show(&out));
    }
    write_if_changed(&dir.join("src/main.rs"), main);
    dir
}

fn write_if_changed(path: &Path, body: &str) {
    if fs::read_to_string(path).ok().as_deref() != Some(body) {
        fs::write(path, body).unwrap();
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `cargo unikraft build`: the image's path.
fn build(dir: &Path) -> (PathBuf, String) {
    let out = tool(dir, &["build"]);
    assert!(out.status.success(), "{}", show(&out));
    let image = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().trim().to_string();
    (PathBuf::from(image), stderr(&out))
}

const RELINKED: &str = "without make";
const MADE: &str = "building the Unikraft image";

fn main_printing(text: &str) -> String {
    format!("fn main() {{\n    println!(\"{text}\");\n}}\n")
}

#[test]
fn an_app_only_change_relinks_without_make_and_what_make_must_see_goes_to_make() {
    if !provisioned("an_app_only_change_relinks_without_make_and_what_make_must_see_goes_to_make") {
        return;
    }
    let dir = plain_crate(&main_printing("relink test: first"));
    let manifest_path = dir.join("Cargo.toml");
    let manifest = fs::read_to_string(&manifest_path).unwrap();
    let (image, _) = build(&dir);
    let build_dir = image.parent().unwrap().to_path_buf();

    // Unchanged: nothing to do.
    let (_, said) = build(&dir);
    assert!(said.contains("is up to date"), "{said}");

    // An app-only change: relinked without make, and the image boots with the change.
    plain_crate(&main_printing("relink test: second"));
    let out = tool(&dir, &["run"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(stderr(&out).contains(RELINKED) && !stderr(&out).contains(MADE), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("relink test: second"), "{}", show(&out));

    // The same archive linked by make gives the same image, byte for byte.
    let relinked = fs::read(&image).unwrap();
    fs::remove_file(build_dir.join(".relink-record")).unwrap();
    let (_, said) = build(&dir);
    assert!(said.contains(MADE) && !said.contains(RELINKED), "{said}");
    assert!(fs::read(&image).unwrap() == relinked, "make linked a different image than the relink");

    // A kconfig change reconfigures and goes to make, which builds with it; so does
    // taking it back.
    let option = "CONFIG_LIBUKDEBUG_ANSI_COLOR";
    write_if_changed(
        &manifest_path,
        &format!("{manifest}\n[package.metadata.unikraft]\nkconfig = {{ {option} = \"y\" }}\n"),
    );
    let config = build_dir.join(".config");
    let result = std::panic::catch_unwind(|| {
        plain_crate(&main_printing("relink test: third"));
        let (_, said) = build(&dir);
        assert!(said.contains("configuring Unikraft") && said.contains(MADE), "{said}");
        assert!(fs::read_to_string(&config).unwrap().contains(&format!("{option}=y")));
    });
    fs::write(&manifest_path, &manifest).unwrap();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    let (_, said) = build(&dir);
    assert!(said.contains("configuring Unikraft") && said.contains(MADE), "{said}");
    assert!(!fs::read_to_string(&config).unwrap().contains(&format!("{option}=y")));

    // An edited C glue source is compiled again: make.
    let glue = build_dir.parent().unwrap().join("glue/main.c");
    let file = fs::File::options().write(true).open(&glue).unwrap();
    file.set_modified(std::time::SystemTime::now()).unwrap();
    let log_before = fs::read_to_string(build_dir.join("make.log")).unwrap().len();
    let (_, said) = build(&dir);
    assert!(said.contains(MADE), "{said}");
    let log = fs::read_to_string(build_dir.join("make.log")).unwrap();
    assert!(log[log_before..].contains("main.o"), "the glue was not compiled again:\n{}", &log[log_before..]);

    // And back to an app-only change: relinked again.
    plain_crate(&main_printing("relink test: fourth"));
    let (_, said) = build(&dir);
    assert!(said.contains(RELINKED), "{said}");
}
