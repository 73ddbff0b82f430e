//! `cargo unikraft test`: the crate's own unit and integration tests (libtest harness
//! binaries), each run inside a unikernel, with results and exit status as `cargo test`
//! gives them.
//!
//! Cargo builds the harnesses as for `cargo test --no-run`, with this tool as the linker
//! (so each harness becomes an archive; build scripts and proc macros are still linked as
//! host programs, see [`crate::linker`]). All harnesses of the crate share one generated
//! app directory and one Unikraft build directory: the first image costs a full Unikraft
//! build, every further one only a relink with the next archive in place. Each image is
//! then booted with the libtest arguments after `--`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use kraftfile_gen::LinkedBin;

use super::AppArgs;
use crate::app::{cargo, path_str, App};
use crate::linker::LINKER_ENV;
use crate::pipeline::{self, Devices};
use crate::runner::{console, Accel, GuestExit};
use crate::target::Target;

#[derive(clap::Args, Debug, Clone)]
pub struct TestArgs {
    #[command(flatten)]
    pub app: AppArgs,
    /// Kill a test image after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub timeout: u64,
    /// Arguments for every test harness (libtest's: a name filter, `--nocapture`...).
    #[arg(last = true)]
    pub args: Vec<String>,
}

/// One libtest harness cargo built.
struct Harness {
    /// `lib`, or the integration test's name.
    target: String,
    archive: PathBuf,
}

impl TestArgs {
    pub fn run(&self) -> Result<u8> {
        let app = self.app.resolve()?;
        if app.build.linked_bin.is_none() {
            bail!(
                "cargo unikraft test runs the tests of plain crates (no `unikraft` feature); this app is built \
                 on rt-unikraft, whose tests run on the unix backend with `cargo test`"
            );
        }
        let harnesses = build_harnesses(&app)?;
        if harnesses.is_empty() {
            bail!("cargo built no test harness for {}", app.build.manifest_path);
        }
        let mut failed = Vec::new();
        for harness in &harnesses {
            eprintln!("cargo-unikraft: test harness `{}` as a unikernel", harness.target);
            let test_app = harness_app(&app, harness)?;
            let image = pipeline::build(&test_app, Target::UnikraftQemu, &Devices::default())?;
            let guest = pipeline::guest(
                &test_app,
                Target::UnikraftQemu,
                &image,
                test_app.spec.memory_mib.max(TEST_MEMORY_MIB),
                Accel::Auto,
                &harness_devices(),
            )?;
            let limits = console::Limits::total(Duration::from_secs(self.timeout));
            let finished = console::run(&*guest, guest.command(&self.args), limits, |line| println!("{line}"))?;
            match finished.exit {
                GuestExit::App(0) => {}
                GuestExit::App(_) if finished.aborted.is_some() => {
                    failed.push(format!("`{}` ({})", harness.target, finished.aborted.unwrap_or_default()))
                }
                GuestExit::App(code) => failed.push(format!("`{}` (exit status {code})", harness.target)),
                GuestExit::NotReported(why) => failed.push(format!("`{}` ({why})", harness.target)),
            }
        }
        if failed.is_empty() {
            eprintln!("cargo-unikraft: {} test harness(es) passed inside unikernels", harnesses.len());
            Ok(0)
        } else {
            eprintln!("error: test failed in {}", failed.join(", "));
            Ok(101)
        }
    }
}

/// The least memory a test image gets (the app's `memory` when larger). Real suites
/// allocate far more than an app: one saw `memory allocation of 17825792 bytes failed` in
/// the default 64 MiB. QEMU only backs pages the guest touches, and a 2 GiB guest boots as
/// fast as a 64 MiB one (0.3 s under TCG; QEMU's resident size grows by ~40 MB).
pub const TEST_MEMORY_MIB: u32 = 1024;

/// The stack of each libtest thread, as on Linux (std's 2 MiB default). The glue's default
/// for apps is 256 KiB (Unikraft backs a whole stack up front), too little for suites that
/// recurse deeply, and a Unikraft stack has no guard page to stop an overflow.
const TEST_THREAD_STACK: &str = "RUST_MIN_STACK=2097152";

/// What every harness's guest gets: no devices; the environment.
fn harness_devices() -> Devices {
    Devices { env: vec![TEST_THREAD_STACK.parse().expect("a valid KEY=VALUE")], ..Devices::default() }
}

/// `cargo test --no-run` with this tool as the linker: the harness archives.
fn build_harnesses(app: &App) -> Result<Vec<Harness>> {
    let linker = std::env::current_exe().context("the path of this tool")?;
    let target_dir = Path::new(&app.build.cargo_target_dir).join("test");
    eprintln!("cargo-unikraft: building the test harnesses ({})", app.build.manifest_path);
    let output = Command::new(cargo())
        .args(["test", "--no-run", "--message-format=json-render-diagnostics", "--manifest-path"])
        .arg(&app.build.manifest_path)
        .arg("--target-dir")
        .arg(&target_dir)
        .arg("--config")
        .arg(format!("target.x86_64-unknown-linux-gnu.linker=\"{}\"", path_str(&linker)?))
        .arg("--config")
        .arg(crate::plain_bin::RUSTIX_USE_LIBC)
        .env(LINKER_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .context("run cargo test --no-run")?;
    if !output.status.success() {
        bail!("cargo failed to build the test harnesses ({})", output.status);
    }
    let mut harnesses = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if message["reason"] != "compiler-artifact" || message["profile"]["test"] != true {
            continue;
        }
        let Some(executable) = message["executable"].as_str() else { continue };
        let kind = message["target"]["kind"][0].as_str().unwrap_or_default();
        let name = message["target"]["name"].as_str().unwrap_or_default();
        let target = if kind == "test" { name.to_string() } else { kind.to_string() };
        harnesses.push(Harness { target, archive: PathBuf::from(executable) });
    }
    Ok(harnesses)
}

/// The app for one harness: the crate's metadata, one shared app and build directory
/// (`target/unikraft/<crate>_test`, from the name), and the harness's archive copied into
/// place (a new timestamp, so make relinks).
fn harness_app(app: &App, harness: &Harness) -> Result<App> {
    let mut test_app = app.clone();
    test_app.spec.name = test_name(&app.spec.name);
    crate::plain_sockets::add_to(&mut test_app)?;
    let dir = test_app.unikraft_dir();
    let archive = dir.join("harness.a");
    fs::create_dir_all(&dir)?;
    fs::copy(&harness.archive, &archive)
        .with_context(|| format!("copy {} to {}", harness.archive.display(), archive.display()))?;
    // The crate's socket driver (sockets = true) goes into every harness's image too.
    let extra_archives = test_app.build.linked_bin.as_ref().map(|b| b.extra_archives.clone()).unwrap_or_default();
    test_app.build.linked_bin = Some(LinkedBin { archive: path_str(&archive)?, cargo: None, extra_archives });
    Ok(test_app)
}

/// The image name for a crate's tests (Unikraft names: at most 64 characters).
fn test_name(app: &str) -> String {
    let mut name = format!("{app}_test");
    name.truncate(64);
    name
}
