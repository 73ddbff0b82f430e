//! cargo's conventions on `cargo unikraft`: a workspace outside this repository with two
//! packages (one with two binaries and an example, one with a feature), selected with
//! `--manifest-path`, `-p`, `--bin`, `--example`, `--features`, `--profile` and cargo's
//! pass-through flags; each refusal names its flag. Selection is checked on the resolved
//! app (no image is built) and through the binary's exit statuses (101 as cargo's for a
//! crate that cannot be built, 2 for a bad command line); one run on the hosted-musl
//! harness and one boot on Unikraft under QEMU show the chosen binary really runs.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use cargo_unikraft::app::{App, Selection};
use cargo_unikraft::resolve::resolve;
use common::show;

const TOOL: &str = env!("CARGO_BIN_EXE_cargo-unikraft");

/// One build of the workspace at a time (they share its target directory and lock).
static SERIAL: Mutex<()> = Mutex::new(());

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A directory outside this repository (cargo would take a crate inside it for a member of
/// this workspace): the temp dir, unless that is inside the repository (a worktree's
/// `target/tmp`), then one in /tmp named after the checkout.
fn outside(name: &str) -> PathBuf {
    let temp = std::env::temp_dir();
    let base = if temp.starts_with(repo_root()) {
        let checkout: String =
            repo_root().to_string_lossy().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
        PathBuf::from("/tmp").join(format!("cargo-unikraft-conventions{checkout}"))
    } else {
        temp.join("cargo-unikraft-conventions")
    };
    let dir = base.join(name);
    assert!(!dir.starts_with(repo_root()), "the test crates must be outside this repository");
    dir
}

/// Writes `files` under `dir` (only when they differ, so a rerun does not rebuild).
fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (path, body) in files {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        if fs::read_to_string(&path).ok().as_deref() != Some(*body) {
            fs::write(&path, body).unwrap();
        }
    }
}

fn main_printing(what: &str) -> String {
    format!(
        "fn main() {{\n    let args: Vec<String> = std::env::args().skip(1).collect();\n    \
         println!(\"this is {what}, args: {{}}\", args.join(\" \"));\n    \
         if cfg!(feature = \"loud\") {{ println!(\"LOUD\"); }}\n}}\n"
    )
}

/// The workspace: `alpha` (binaries `one` and `two`, example `demo`) and `beta` (one
/// binary, feature `loud`), under a virtual manifest, outside this repository.
fn workspace() -> PathBuf {
    let dir = outside("ws");
    let package = |name: &str, extra: &str| {
        format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n{extra}")
    };
    write_files(
        &dir,
        &[
            ("Cargo.toml", "[workspace]\nmembers = [\"alpha\", \"beta\"]\nresolver = \"2\"\n"),
            ("alpha/Cargo.toml", &package("alpha", "")),
            ("alpha/src/bin/one.rs", &main_printing("alpha one")),
            ("alpha/src/bin/two.rs", &main_printing("alpha two")),
            ("alpha/examples/demo.rs", &main_printing("the alpha demo")),
            ("beta/Cargo.toml", &package("beta", "\n[features]\nloud = []\n")),
            ("beta/src/main.rs", &main_printing("beta")),
        ],
    );
    dir
}

fn select(edit: impl FnOnce(&mut Selection)) -> anyhow::Result<App> {
    let mut selection = Selection::manifest(&workspace().join("Cargo.toml"));
    edit(&mut selection);
    resolve(&selection)
}

fn cargo_args(app: &App) -> Vec<String> {
    app.build.linked_bin.as_ref().unwrap().cargo.as_ref().unwrap().1.clone()
}

fn archive(app: &App) -> String {
    app.build.linked_bin.as_ref().unwrap().archive.clone()
}

fn has_pair(args: &[String], a: &str, b: &str) -> bool {
    args.windows(2).any(|w| w[0] == a && w[1] == b)
}

#[test]
fn a_workspace_root_needs_a_package_and_names_its_members() {
    let err = format!("{:#}", select(|_| {}).unwrap_err());
    assert!(err.contains("choose one with -p/--package") && err.contains("alpha, beta"), "{err}");
    let err = format!("{:#}", select(|s| s.package = Some("gamma".into())).unwrap_err());
    assert!(err.starts_with("-p/--package gamma: no such package") && err.contains("alpha, beta"), "{err}");
}

#[test]
fn a_package_with_two_binaries_needs_bin_and_each_gets_its_own_image() {
    let err = format!("{:#}", select(|s| s.package = Some("alpha".into())).unwrap_err());
    assert!(err.contains("several binaries (one, two); choose one with --bin NAME"), "{err}");

    let two = select(|s| {
        s.package = Some("alpha".into());
        s.bin = Some("two".into());
    })
    .unwrap();
    assert_eq!(two.spec.name, "alpha_two");
    assert!(archive(&two).ends_with("/release/two"), "{}", archive(&two));
    assert!(has_pair(&cargo_args(&two), "--bin", "two"), "{:?}", cargo_args(&two));
    let one = select(|s| {
        s.package = Some("alpha@0.1.0".into());
        s.bin = Some("one".into());
    })
    .unwrap();
    assert_ne!(one.unikraft_dir(), two.unikraft_dir(), "two binaries, two build directories");

    let err = format!(
        "{:#}",
        select(|s| {
            s.package = Some("alpha".into());
            s.bin = Some("three".into());
        })
        .unwrap_err()
    );
    assert_eq!(err, "--bin three: `alpha` has no such target; its binaries: one, two");
}

#[test]
fn an_example_is_built_from_examples_dir() {
    let demo = select(|s| {
        s.package = Some("alpha".into());
        s.example = Some("demo".into());
    })
    .unwrap();
    assert!(archive(&demo).ends_with("/release/examples/demo"), "{}", archive(&demo));
    assert!(has_pair(&cargo_args(&demo), "--example", "demo"));
    let err = format!(
        "{:#}",
        select(|s| {
            s.package = Some("beta".into());
            s.example = Some("demo".into());
        })
        .unwrap_err()
    );
    assert_eq!(err, "--example demo: `beta` has no such target; its examples: none");
}

#[test]
fn a_members_manifest_selects_it_without_p() {
    let beta = resolve(&Selection::manifest(&workspace().join("beta/Cargo.toml"))).unwrap();
    assert_eq!(beta.spec.name, "beta");
    assert_eq!(beta.target_dir, workspace().join("target"), "the workspace's target directory");
}

#[test]
fn features_profile_and_cargo_flags_reach_cargo() {
    let beta = select(|s| {
        s.package = Some("beta".into());
        s.cargo.features = vec!["loud".into()];
        s.cargo.no_default_features = true;
        s.cargo.profile = "dev".into();
        s.cargo.flags = vec!["--locked".into(), "-v".into()];
    })
    .unwrap();
    let args = cargo_args(&beta);
    assert!(has_pair(&args, "--features", "loud") && args.contains(&"--no-default-features".to_string()), "{args:?}");
    assert!(has_pair(&args, "--profile", "dev") && !args.contains(&"--release".to_string()), "{args:?}");
    assert!(!args.iter().any(|a| a.contains("lto")), "the dev profile is built as written: {args:?}");
    let separator = args.iter().position(|a| a == "--").unwrap();
    let locked = args.iter().position(|a| a == "--locked").unwrap();
    assert!(locked < separator && args.contains(&"-v".to_string()), "cargo's flags go to cargo: {args:?}");
    assert!(archive(&beta).ends_with("/debug/beta"), "dev builds into debug/: {}", archive(&beta));

    let release = select(|s| s.package = Some("beta".into())).unwrap();
    let args = cargo_args(&release);
    assert!(args.contains(&"--release".to_string()) && has_pair(&args, "--config", "profile.release.lto=true"));

    let err = format!(
        "{:#}",
        select(|s| {
            s.package = Some("beta".into());
            s.cargo.features = vec!["quiet".into()];
        })
        .unwrap_err()
    );
    assert_eq!(err, "--features quiet: `beta` has no such feature (its features: loud)");
}

/// An app on the device core: refusals that name the flag or the profile key.
#[test]
fn a_device_core_app_refuses_what_breaks_its_image() {
    let dir = outside("core-app");
    let unikernel = repo_root().join("unikernel");
    let manifest = format!(
        "[package]\nname = \"core-app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\ntest = false\ndoctest = false\n\n\
         [dependencies]\nunikernel = {{ path = \"{}\" }}\n\n[features]\ndefault = [\"unix\"]\nunix = [\"unikernel/unix\"]\n\
         unikraft = [\"unikernel/unikraft\"]\n\n[profile.release]\npanic = \"unwind\"\n\n[profile.small]\ninherits = \"dev\"\n",
        unikernel.display()
    );
    write_files(&dir, &[("Cargo.toml", &manifest), ("src/lib.rs", "")]);
    let core = |edit: &dyn Fn(&mut Selection)| {
        let mut selection = Selection::manifest(&dir.join("Cargo.toml"));
        edit(&mut selection);
        resolve(&selection).map_err(|e| format!("{e:#}"))
    };
    let err = core(&|_| {}).unwrap_err();
    assert!(err.starts_with("profile.release.panic = \"unwind\""), "{err}");
    assert!(err.contains("panic = \"abort\""), "{err}");
    let err = core(&|s| s.cargo.all_features = true).unwrap_err();
    assert!(err.starts_with("--all-features:"), "{err}");
    let err = core(&|s| {
        s.cargo.profile = "small".into();
        s.bin = Some("core-app".into());
    })
    .unwrap_err();
    assert!(err.starts_with("--bin core-app: `core-app` is an app on this project's device core"), "{err}");
    let small = core(&|s| s.cargo.profile = "small".into()).unwrap();
    let args = kraftfile_gen::cargo_staticlib_args(&small.spec, &small.build);
    assert!(has_pair(&args, "--profile", "small") && has_pair(&args, "--config", "profile.small.panic='abort'"));
}

fn tool(dir: &Path, args: &[&str]) -> Output {
    Command::new(TOOL).arg("unikraft").args(args).current_dir(dir).output().unwrap()
}

/// Exit statuses as cargo's: 101 for a crate that cannot be built as asked, 2 for a
/// command line clap refuses; every message names the flag.
#[test]
fn refusals_exit_as_cargo_does_and_name_the_flag() {
    let ws = workspace();
    for (args, status, says) in [
        (&["build"][..], 101, "choose one with -p/--package"),
        (&["build", "-p", "alpha"], 101, "choose one with --bin NAME"),
        (&["build", "-p", "alpha", "--bin", "nine"], 101, "--bin nine: `alpha` has no such target"),
        (&["build", "-p", "beta", "-F", "nope"], 101, "--features nope"),
        (&["run", "--package", "alpha"], 101, "choose one with --bin NAME"),
        (&["test", "-p", "gamma"], 101, "-p/--package gamma"),
        (&["build", "--target", "qemu/x86_64"], 2, "the platform is now given with --plat qemu/x86_64"),
        (&["run", "--target", "solo5/spt"], 2, "--plat solo5/spt"),
        (&["build", "--target", "aarch64-unknown-linux-gnu"], 2, "x86_64-unknown-linux-gnu only"),
        (&["build", "--plat", "qemu/arm64"], 2, "unknown platform `qemu/arm64`"),
        (&["build", "--release", "--profile", "dev"], 2, "'--release' cannot be used with '--profile <PROFILE-NAME>'"),
        (&["build", "-v", "-q"], 2, "'--verbose...' cannot be used with '--quiet'"),
        (&["build", "--bin", "a", "--example", "b"], 2, "'--bin <NAME>' cannot be used with '--example <NAME>'"),
        (&["build", "--message-format", "xml"], 2, "invalid value 'xml' for '--message-format <FMT>'"),
        (&["run", "--message-format", "json"], 2, "unexpected argument '--message-format'"),
    ] {
        let out = tool(&ws, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(status), "{args:?}\n{}", show(&out));
        assert!(stderr.contains(says), "{args:?} should say {says:?}\n{}", show(&out));
    }
}

/// The chosen binary (and feature) really runs: `run --plat hosted-musl` needs no
/// Unikraft tree, only musl-gcc.
#[test]
fn the_chosen_binary_runs_on_hosted_musl() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if which::which("musl-gcc").is_err() {
        common::skip("the_chosen_binary_runs_on_hosted_musl: musl-gcc is not installed (musl-tools)");
        return;
    }
    let ws = workspace();
    let out = tool(&ws, &["run", "--plat", "hosted-musl", "--package", "alpha", "--bin", "two", "--", "x"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("this is alpha two, args: x"), "{}", show(&out));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let out = tool(&ws.join("beta"), &["run", "--plat", "hosted-musl", "--features", "loud"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("this is beta") && stdout.contains("LOUD"), "{}", show(&out));
}

/// `build --message-format json`: cargo's messages, then the image, then one
/// `build-finished`; stdout holds JSON only.
#[test]
fn build_message_format_json_ends_with_the_image() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if which::which("musl-gcc").is_err() {
        common::skip("build_message_format_json_ends_with_the_image: musl-gcc is not installed (musl-tools)");
        return;
    }
    let out = tool(&workspace(), &["build", "-p", "beta", "--plat", "hosted-musl", "--message-format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let messages: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let reasons: Vec<&str> = messages.iter().map(|m| m["reason"].as_str().unwrap()).collect();
    assert!(reasons.contains(&"compiler-artifact"), "{reasons:?}");
    assert_eq!(reasons.iter().filter(|r| **r == "build-finished").count(), 1, "{reasons:?}");
    let image = &messages[messages.len() - 2];
    assert_eq!(image["reason"], "unikraft-image");
    assert_eq!(image["plat"], "hosted-musl");
    assert!(Path::new(image["image"].as_str().unwrap()).is_file(), "{image}");
    assert_eq!(messages.last().unwrap()["success"], true);
}

/// The real thing: from the workspace root, `--package alpha --bin two` boots on Unikraft
/// under QEMU and only `two` runs.
#[test]
fn a_workspace_member_binary_chosen_by_package_and_bin_boots_on_unikraft() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !common::provisioned("a_workspace_member_binary_chosen_by_package_and_bin_boots_on_unikraft") {
        return;
    }
    let out = tool(&workspace(), &["run", "--package", "alpha", "--bin", "two", "--", "booted"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("this is alpha two, args: booted"), "{}", show(&out));
    assert!(!stdout.contains("alpha one"), "{}", show(&out));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}

/// A crate that does not compile exits 101, as `cargo build` does, with cargo's error.
#[test]
fn a_failed_build_exits_101() {
    let dir = outside("broken");
    write_files(
        &dir,
        &[
            ("Cargo.toml", "[package]\nname = \"broken\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[workspace]\n"),
            ("src/main.rs", "fn main() { let x: u32 = \"not a number\"; }\n"),
        ],
    );
    let out = tool(&dir, &["build", "--plat", "hosted-musl"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("mismatched types"), "{}", show(&out));
    assert!(stderr.contains("error: cargo failed to build the Rust archive"), "{}", show(&out));
    assert_eq!(out.status.code(), Some(101), "{}", show(&out));
}
