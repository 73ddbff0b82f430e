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
use cargo_metadata::{Message, TargetKind};
use kraftfile_gen::LinkedBin;

use super::{AppArgs, CargoFailure};
use crate::app::{cargo, path_str, App};
use crate::linker::LINKER_ENV;
use crate::pipeline::{self, Devices};
use crate::runner::console_log::ConsoleLog;
use crate::runner::{console, Accel, GuestExit};
use crate::target::Target;

/// Why doctests are not run: the reason printed for each library that has them.
pub const DOCTESTS_SKIPPED: &str = "rustdoc compiles each doctest into a program of its own and runs it on the host, \
     which cannot run inside a unikernel harness; `cargo test --doc` runs them on the host";

#[derive(clap::Args, Debug, Clone)]
pub struct TestArgs {
    /// The crate (`--bin NAME` and `--example NAME` choose those targets' test harnesses).
    #[command(flatten)]
    pub app: AppArgs,
    /// Run only the tests whose names contain this (given to every harness, as cargo test does).
    #[arg(value_name = "TESTNAME")]
    pub filter: Option<String>,
    /// Test only the library's unit tests.
    #[arg(long)]
    pub lib: bool,
    /// Test only this integration test (tests/NAME.rs); repeatable.
    #[arg(long = "test", value_name = "NAME")]
    pub tests: Vec<String>,
    /// Test only the binaries' unit tests.
    #[arg(long)]
    pub bins: bool,
    /// Doctests cannot run inside a unikernel (refused, saying why).
    #[arg(long)]
    pub doc: bool,
    /// Build the test images and print their paths, without booting them.
    #[arg(long)]
    pub no_run: bool,
    /// Guest memory in MiB for every test image, instead of the metadata's `memory`.
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u32).range(
        i64::from(*kraftfile_gen::MEMORY_MIB_RANGE.start())..=i64::from(*kraftfile_gen::MEMORY_MIB_RANGE.end())))]
    pub memory_mib: Option<u32>,
    /// Kill a test image after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub timeout: u64,
    /// Arguments for every test harness (libtest's: `--nocapture`, `--ignored`, `--exact`...).
    #[arg(last = true)]
    pub args: Vec<String>,
}

/// One libtest harness cargo built.
struct Harness {
    /// `lib`, the integration test's name, `bin NAME` or `example NAME`.
    target: String,
    archive: PathBuf,
}

/// libtest's counts, summed over harnesses from their `test result:` lines.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
    pub filtered_out: u64,
    /// Harnesses that printed a `test result:` line.
    pub results: u64,
}

impl Tally {
    /// Adds the counts of a `test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured;
    /// 0 filtered out; finished in 0.01s` line; other lines change nothing.
    pub fn on_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else { return };
        let Some((_, counts)) = rest.split_once(". ") else { return };
        self.results += 1;
        for part in counts.split(';') {
            let mut words = part.split_whitespace();
            let (Some(n), Some(what)) = (words.next().and_then(|n| n.parse::<u64>().ok()), words.next()) else {
                continue;
            };
            match (what, words.next()) {
                ("passed", _) => self.passed += n,
                ("failed", _) => self.failed += n,
                ("ignored", _) => self.ignored += n,
                ("filtered", Some("out")) => self.filtered_out += n,
                _ => {}
            }
        }
    }

    /// The summary line printed after the last harness.
    pub fn summary(&self, harnesses: usize) -> String {
        format!(
            "test summary: {} passed; {} failed; {} ignored; {} filtered out ({harnesses} harness{} inside unikernels)",
            self.passed,
            self.failed,
            self.ignored,
            self.filtered_out,
            if harnesses == 1 { "" } else { "es" }
        )
    }
}

impl TestArgs {
    /// Whether a target-selection flag narrows the harnesses (then cargo runs no doctests).
    fn narrowed(&self) -> bool {
        self.lib || self.bins || !self.tests.is_empty() || self.app.bin.is_some() || self.app.example.is_some()
    }

    /// The arguments for every harness: the filter, then those after `--`.
    fn harness_args(&self) -> Vec<String> {
        self.filter.iter().chain(&self.args).cloned().collect()
    }

    pub fn run(&self) -> Result<u8> {
        if self.doc {
            bail!("--doc: doctests are not run inside unikernels: {DOCTESTS_SKIPPED}");
        }
        // cargo test's own default profile (`test`) unless --release/--profile says otherwise.
        let mut selection = self.app.selection("test");
        selection.bin = None;
        selection.example = None;
        selection.tests = true;
        let app = CargoFailure::mark(crate::resolve::resolve(&selection))?;
        if app.build.linked_bin.is_none() {
            bail!(
                "cargo unikraft test runs the tests of plain crates (no `unikraft` feature); this app is built \
                 on rt-unikraft, whose tests run on the unix backend with `cargo test`"
            );
        }
        let harnesses = CargoFailure::mark(build_harnesses(&app, &self.target_args()))?;
        if harnesses.is_empty() {
            bail!("cargo built no test harness for {}", app.build.manifest_path);
        }
        let mut failed = Vec::new();
        let mut tally = Tally::default();
        for harness in &harnesses {
            eprintln!("cargo-unikraft: test harness `{}` as a unikernel", harness.target);
            let test_app = harness_app(&app, harness)?;
            let image = pipeline::build(&test_app, Target::UnikraftQemu, &Devices::default())?;
            if self.no_run {
                println!("{}", keep_image(&test_app, harness, &image)?.display());
                continue;
            }
            // `--memory-mib`, or the app's memory but at least what real test suites need.
            let memory_mib = self.memory_mib.unwrap_or(test_app.spec.memory_mib.max(TEST_MEMORY_MIB));
            let guest =
                pipeline::guest(&test_app, Target::UnikraftQemu, &image, memory_mib, Accel::Auto, &harness_devices())?;
            let limits = console::Limits::total(Duration::from_secs(self.timeout));
            // Each harness's console is kept (target/unikraft/<crate>_test/logs/).
            let mut log = ConsoleLog::create(&test_app.unikraft_dir(), &harness.target);
            let finished = console::run(&*guest, guest.command(&self.harness_args()), limits, |line| {
                println!("{line}");
                tally.on_line(line);
                log.line(line);
            })?;
            log.report_failure(&finished.exit);
            match finished.exit {
                GuestExit::App(0) => {}
                GuestExit::App(_) if finished.aborted.is_some() => {
                    failed.push(format!("`{}` ({})", harness.target, finished.aborted.unwrap_or_default()))
                }
                GuestExit::App(code) => failed.push(format!("`{}` (exit status {code})", harness.target)),
                GuestExit::NotReported(why) => failed.push(format!("`{}` ({why})", harness.target)),
            }
        }
        if !self.narrowed() {
            for lib in app.package.targets.iter().filter(|t| t.is_lib() && t.doctest) {
                eprintln!("cargo-unikraft: doctests of `{}` skipped: {DOCTESTS_SKIPPED}", lib.name);
            }
        }
        if self.no_run {
            return Ok(0);
        }
        eprintln!("cargo-unikraft: {}", tally.summary(harnesses.len()));
        if failed.is_empty() {
            Ok(0)
        } else {
            eprintln!("error: test failed in {}", failed.join(", "));
            Ok(101)
        }
    }

    /// cargo test's target-selection flags.
    fn target_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if self.lib {
            args.push("--lib".to_string());
        }
        if self.bins {
            args.push("--bins".to_string());
        }
        for test in &self.tests {
            args.extend(["--test".to_string(), test.clone()]);
        }
        if let Some(bin) = &self.app.bin {
            args.extend(["--bin".to_string(), bin.clone()]);
        }
        if let Some(example) = &self.app.example {
            args.extend(["--example".to_string(), example.clone()]);
        }
        args
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
fn build_harnesses(app: &App, target_args: &[String]) -> Result<Vec<Harness>> {
    let linker = std::env::current_exe().context("the path of this tool")?;
    let target_dir = Path::new(&app.build.cargo_target_dir).join("test");
    let options = &app.build.cargo;
    eprintln!("cargo-unikraft: building the test harnesses ({})", app.build.manifest_path);
    let mut command = Command::new(cargo());
    command
        .args(["test", "--no-run", "--message-format=json-render-diagnostics", "--manifest-path"])
        .arg(&app.build.manifest_path)
        .args(target_args);
    if options.profile != "test" {
        command.args(options.profile_args());
    }
    let output = command
        .args(options.feature_args())
        .args(&options.flags)
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
    for message in Message::parse_stream(&output.stdout[..]) {
        let Message::CompilerArtifact(artifact) = message.context("read cargo's messages")? else { continue };
        let Some(executable) = artifact.executable.filter(|_| artifact.profile.test) else { continue };
        let name = &artifact.target.name;
        let target = match artifact.target.kind.first() {
            Some(TargetKind::Lib) => "lib".to_string(),
            Some(TargetKind::Bin) => format!("bin {name}"),
            Some(TargetKind::Example) => format!("example {name}"),
            _ => name.clone(),
        };
        harnesses.push(Harness { target, archive: executable.into_std_path_buf() });
    }
    Ok(harnesses)
}

/// A copy of the harness's image that the next harness's relink does not overwrite
/// (`--no-run`): `target/unikraft/<crate>_test/images/<harness>`.
fn keep_image(test_app: &App, harness: &Harness, image: &Path) -> Result<PathBuf> {
    let dir = test_app.unikraft_dir().join("images");
    fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let kept = dir.join(harness.target.replace(' ', "-"));
    fs::copy(image, &kept).with_context(|| format!("copy {} to {}", image.display(), kept.display()))?;
    Ok(kept)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};

    fn test_args(args: &[&str]) -> Result<TestArgs, String> {
        let argv = ["cargo-unikraft", "test"].iter().chain(args);
        match Cli::try_parse_args(argv).map_err(|e| e.to_string())?.command {
            Command::Test(test) => Ok(test),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn libtest_result_lines_are_summed() {
        let mut tally = Tally::default();
        tally.on_line("test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 2 filtered out; finished in 0.01s");
        tally.on_line("running 2 tests");
        tally.on_line(
            "test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.20s\r",
        );
        assert_eq!(tally, Tally { passed: 4, failed: 1, ignored: 1, filtered_out: 2, results: 2 });
        assert_eq!(
            tally.summary(2),
            "test summary: 4 passed; 1 failed; 1 ignored; 2 filtered out (2 harnesses inside unikernels)"
        );
    }

    #[test]
    fn the_filter_goes_before_the_arguments_after_the_separator() {
        let test = test_args(&["adds", "--", "--nocapture"]).unwrap();
        assert_eq!(test.harness_args(), ["adds", "--nocapture"]);
        assert!(!test.narrowed());
        assert_eq!(test_args(&["--", "--exact", "x"]).unwrap().harness_args(), ["--exact", "x"]);
    }

    #[test]
    fn target_flags_become_cargo_tests_and_narrow_the_harnesses() {
        let test = test_args(&["--lib", "--test", "a", "--test", "b", "--bins", "-p", "member", "--no-run"]).unwrap();
        assert_eq!(test.target_args(), ["--lib", "--bins", "--test", "a", "--test", "b"]);
        assert!(test.narrowed() && test.no_run);
        assert_eq!(test.app.package.as_deref(), Some("member"));
        let test = test_args(&["--bin", "tool"]).unwrap();
        assert_eq!(test.target_args(), ["--bin", "tool"]);
    }

    #[test]
    fn test_memory_outside_the_range_is_refused_naming_the_flag() {
        let err = test_args(&["--memory-mib", "1"]).unwrap_err();
        assert!(err.contains("--memory-mib") && err.contains("4..=65536"), "{err}");
        assert_eq!(test_args(&["--memory-mib", "512"]).unwrap().memory_mib, Some(512));
    }

    #[test]
    fn doctests_are_refused_saying_why() {
        let err = test_args(&["--doc"]).unwrap().run().unwrap_err().to_string();
        assert!(err.starts_with("--doc: doctests are not run inside unikernels"), "{err}");
    }

    #[test]
    fn the_test_profile_is_cargo_tests_unless_one_is_chosen() {
        assert_eq!(test_args(&[]).unwrap().app.selection("test").cargo.profile, "test");
        assert_eq!(test_args(&["--release"]).unwrap().app.selection("test").cargo.profile, "release");
    }
}
