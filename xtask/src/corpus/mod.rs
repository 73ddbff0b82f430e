//! `cargo xtask corpus [CRATE...]`: widely used crates from crates.io, unpacked untouched
//! under `target/corpus/crates/`, each running its own test suite on Linux (`cargo test`)
//! and inside unikernels (`cargo unikraft test`, this workspace's build), then one table:
//! passed/failed/ignored on each side and the first failure. The bar is equal counts
//! (doctests aside: `cargo unikraft test` runs none). Long (each crate's first Unikraft
//! test image is a full Unikraft build), so it is a command of its own, not part of
//! `cargo test`; crates run one after another.
//!
//! Each crate's output is kept in `target/corpus/logs/<crate>-{linux,unikraft}.log`, the
//! table in `target/corpus/table.md`. All crates share one cargo target directory
//! (`target/corpus/target`), so common dependencies build once; each crate's Unikraft
//! build directory (about 1.5 GB) is handed on to the next crate (`--cold-builds`: deleted
//! instead; `--keep-builds`: kept).

mod crates;
mod fetch;
mod libtest;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use cargo_unikraft::app::cargo;
use crates::CorpusCrate;
use libtest::{Counts, Tool};

#[derive(clap::Args, Debug)]
pub struct CorpusArgs {
    /// The crates to run (default: the whole corpus, in its order).
    pub crates: Vec<String>,
    /// Per crate and side: stop `cargo test` / `cargo unikraft test` after this many
    /// seconds, builds included.
    #[arg(long, value_name = "SECS", default_value_t = 2400)]
    pub timeout: u64,
    /// Keep each crate's Unikraft build directory (about 1.5 GB) after its run.
    #[arg(long)]
    pub keep_builds: bool,
    /// Build Unikraft from scratch for every crate, instead of handing the previous
    /// crate's build directory on (see [`hand_on_unikraft_build`]).
    #[arg(long, conflicts_with = "keep_builds")]
    pub cold_builds: bool,
    /// Run nothing: count the logs an earlier run left in `target/corpus/logs` again and
    /// print their table (times are not in the logs: shown as 0 s).
    #[arg(long)]
    pub from_logs: bool,
}

/// One crate's results.
struct Row {
    krate: &'static CorpusCrate,
    version: String,
    linux: Side,
    unikraft: Side,
}

/// One side's results: the counts, or why there are none.
struct Side {
    counts: Counts,
    /// Why the run ended badly when that is not a failed test: a timeout, a build error.
    problem: Option<String>,
    took: Duration,
}

impl Row {
    /// Whether the crate meets the bar: the same counts on both sides, every harness finished.
    fn equal(&self) -> bool {
        let (l, u) = (&self.linux.counts, &self.unikraft.counts);
        self.linux.problem.is_none()
            && self.unikraft.problem.is_none()
            && u.unfinished == 0
            && (l.passed, l.failed, l.ignored) == (u.passed, u.failed, u.ignored)
    }
}

pub fn corpus(args: &CorpusArgs) -> Result<u8> {
    let selected = crates::select(&args.crates)?;
    let target_dir = workspace_target_dir()?;
    let corpus_dir = target_dir.join("corpus");
    let logs = corpus_dir.join("logs");
    fs::create_dir_all(&logs)?;
    if args.from_logs {
        return print_from_logs(&corpus_dir, &selected);
    }
    let tool = install_cargo_unikraft(&corpus_dir)?;
    let unpacked = fetch::unpack(&corpus_dir, &selected)?;
    let shared_target = corpus_dir.join("target");
    let mut rows = Vec::new();
    for (krate, (version, dir)) in selected.iter().zip(unpacked) {
        let manifest = dir.join("Cargo.toml");
        eprintln!("corpus: {} {version}: cargo test (Linux)", krate.name);
        let linux = run_side(
            Command::new(cargo()).args(["test", "--no-fail-fast", "--manifest-path"]).arg(&manifest),
            &shared_target,
            args.timeout,
            &logs.join(format!("{}-linux.log", krate.name)),
            &Tool::Cargo,
        )?;
        eprintln!("corpus: {} {version}: cargo unikraft test", krate.name);
        let test_dir = shared_target.join("unikraft").join(test_dir_name(krate.name));
        if !args.keep_builds && !args.cold_builds {
            take_handed_on_build(&corpus_dir, &test_dir)?;
        }
        let unikraft = run_side(
            Command::new(&tool)
                .args(["unikraft", "test", "--timeout"])
                .arg(args.timeout.to_string())
                .arg("--manifest-path")
                .arg(&manifest),
            &shared_target,
            args.timeout,
            &logs.join(format!("{}-unikraft.log", krate.name)),
            &Tool::CargoUnikraft,
        )?;
        if !args.keep_builds {
            if !args.cold_builds {
                hand_on_unikraft_build(&corpus_dir, &test_dir)?;
            }
            remove_unikraft_builds(&shared_target)?;
        }
        let row = Row { krate, version, linux, unikraft };
        eprintln!("{}", table_line(&row));
        rows.push(row);
    }
    let table = table(&rows);
    fs::write(corpus_dir.join("table.md"), &table)?;
    println!("{table}");
    let equal = rows.iter().filter(|r| r.equal()).count();
    println!("{equal} of {} crates: the same counts inside unikernels as on Linux", rows.len());
    println!("logs: {}", logs.display());
    Ok(if equal == rows.len() { 0 } else { 1 })
}

/// `--from-logs`: the table of the selected crates that have both logs.
fn print_from_logs(corpus_dir: &Path, selected: &[&'static CorpusCrate]) -> Result<u8> {
    let logs = corpus_dir.join("logs");
    let mut rows = Vec::new();
    for krate in selected {
        let read = |side: &str| fs::read_to_string(logs.join(format!("{}-{side}.log", krate.name))).ok();
        let (Some(linux), Some(unikraft)) = (read("linux"), read("unikraft")) else { continue };
        // The version from the unpacked directory's name.
        let version = fs::read_dir(corpus_dir.join("crates"))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .find_map(|n| n.strip_prefix(&format!("{}-", krate.name)).map(str::to_string))
            .unwrap_or_default();
        let side = |output: &str, tool: &Tool| {
            let counts = libtest::count(tool, output);
            // A run that counted nothing ended before its tests (a build error, a timeout).
            let nothing = counts.passed + counts.failed + counts.ignored == 0 && counts.unfinished == 0;
            let problem = nothing.then(|| last_error(output)).flatten();
            Side { counts, problem, took: Duration::ZERO }
        };
        rows.push(Row {
            krate,
            version,
            linux: side(&linux, &Tool::Cargo),
            unikraft: side(&unikraft, &Tool::CargoUnikraft),
        });
    }
    println!("{}", table(&rows));
    Ok(0)
}

/// This workspace's cargo target directory.
fn workspace_target_dir() -> Result<PathBuf> {
    let output = Command::new(cargo())
        .args(["metadata", "--format-version", "1", "--no-deps", "--manifest-path"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"))
        .stderr(Stdio::inherit())
        .output()
        .context("run cargo metadata")?;
    let meta: serde_json::Value = serde_json::from_slice(&output.stdout).context("parse cargo metadata")?;
    Ok(PathBuf::from(meta["target_directory"].as_str().context("no target_directory")?))
}

/// Builds this workspace's cargo-unikraft and copies it to `target/corpus/bin`, so a
/// rebuild of the workspace during a long run does not change the tool under it.
fn install_cargo_unikraft(corpus_dir: &Path) -> Result<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = Command::new(cargo())
        .args(["build", "-p", "cargo-unikraft", "--bin", "cargo-unikraft", "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .status()
        .context("build cargo-unikraft")?;
    anyhow::ensure!(status.success(), "building cargo-unikraft failed ({status})");
    let built = workspace_target_dir()?.join("debug/cargo-unikraft");
    let bin = corpus_dir.join("bin");
    fs::create_dir_all(&bin)?;
    let tool = bin.join("cargo-unikraft");
    // Copy to a new name and rename: a running copy's file is never overwritten.
    let fresh = bin.join("cargo-unikraft.new");
    fs::copy(&built, &fresh).with_context(|| format!("copy {}", built.display()))?;
    fs::rename(&fresh, &tool)?;
    Ok(tool)
}

/// Runs one side under coreutils' `timeout` (which kills the whole process group: cargo,
/// the harnesses, QEMU), stdout and stderr interleaved into `log`, and counts its tests.
fn run_side(cmd: &mut Command, shared_target: &Path, timeout: u64, log: &Path, tool: &Tool) -> Result<Side> {
    let file = fs::File::create(log).with_context(|| format!("create {}", log.display()))?;
    let mut wrapped = Command::new("timeout");
    wrapped
        .args(["--kill-after=10", &timeout.to_string()])
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .env("CARGO_TARGET_DIR", shared_target)
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file);
    let started = Instant::now();
    let status = wrapped.status().context("run timeout(1)")?;
    let took = started.elapsed();
    let output = String::from_utf8_lossy(&fs::read(log)?).into_owned();
    let counts = libtest::count(tool, &output);
    let problem = match status.code() {
        Some(0) => None,
        Some(124) | Some(137) => Some(format!("timed out after {timeout} s")),
        _ if counts.failed > 0 || counts.unfinished > 0 => None,
        _ => Some(last_error(&output).unwrap_or_else(|| format!("ended with {status}"))),
    };
    Ok(Side { counts, problem, took })
}

/// The last `error...` line (a build error, a harness that ended without its summary).
fn last_error(output: &str) -> Option<String> {
    output.lines().rev().map(str::trim).find(|l| l.starts_with("error")).map(str::to_string)
}

/// `target/unikraft/<name>_test`: where `cargo unikraft test` builds a crate's test
/// images (the crate's name as a Unikraft name, see kraftfile-gen's metadata).
fn test_dir_name(krate: &str) -> String {
    let mut name = format!("{}_test", krate.replace('-', "_"));
    name.truncate(64);
    name
}

/// The Unikraft build directory of one platform inside a test directory.
const BUILD_SUBDIR: &str = "build-qemu-x86_64";

/// Every crate's test images have the same Unikraft configuration but for the image's
/// name, so the next crate takes the previous crate's build directory instead of starting
/// from an empty one: Unikraft's make reconfigures the name (its dependencies are per
/// kconfig symbol, through fixdep) and rebuilds what is stale. Measured: lib-musl is still
/// rebuilt under the new path, so this saves about a third (335 s instead of 486-760 s
/// here). Moved aside here, taken by the next crate.
fn hand_on_unikraft_build(corpus_dir: &Path, test_dir: &Path) -> Result<()> {
    let built = test_dir.join(BUILD_SUBDIR);
    let handed = corpus_dir.join("unikraft-build");
    if built.join(".config").is_file() {
        if handed.exists() {
            fs::remove_dir_all(&handed)?;
        }
        fs::rename(&built, &handed).with_context(|| format!("move {}", built.display()))?;
    }
    Ok(())
}

fn take_handed_on_build(corpus_dir: &Path, test_dir: &Path) -> Result<()> {
    let handed = corpus_dir.join("unikraft-build");
    let target = test_dir.join(BUILD_SUBDIR);
    if handed.is_dir() && !target.exists() {
        fs::create_dir_all(test_dir)?;
        fs::rename(&handed, &target).with_context(|| format!("move {}", handed.display()))?;
    }
    Ok(())
}

/// Deletes the crates' Unikraft build directories (`target/unikraft/<crate>_test`),
/// keeping the harnesses' cargo build (`target/unikraft/cargo`), which later crates reuse.
fn remove_unikraft_builds(shared_target: &Path) -> Result<()> {
    let dir = shared_target.join("unikraft");
    let Ok(entries) = fs::read_dir(&dir) else { return Ok(()) };
    for entry in entries {
        let path = entry?.path();
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with("_test")) {
            fs::remove_dir_all(&path).with_context(|| format!("remove {}", path.display()))?;
        }
    }
    Ok(())
}

fn counts_cell(side: &Side) -> String {
    let c = &side.counts;
    let mut cell = format!("{}/{}/{}", c.passed, c.failed, c.ignored);
    if c.unfinished > 0 {
        cell.push_str(&format!(" ({} harness(es) ended early)", c.unfinished));
    }
    if let Some(problem) = &side.problem {
        cell.push_str(&format!(" ({problem})"));
    }
    cell
}

/// The first failure, Unikraft's before Linux's, `|` escaped for the table.
fn failure_cell(row: &Row) -> String {
    let unikraft = row.unikraft.counts.first_failure.as_ref().map(|f| format!("Unikraft: {f}"));
    let linux = row.linux.counts.first_failure.as_ref().map(|f| format!("Linux: {f}"));
    let mut cell = unikraft.or(linux).unwrap_or_default();
    if cell.len() > 160 {
        let mut end = 157;
        while !cell.is_char_boundary(end) {
            end -= 1;
        }
        cell.truncate(end);
        cell.push_str("...");
    }
    cell.replace('|', "\\|")
}

fn table_line(row: &Row) -> String {
    format!(
        "| {} | {} | {} | {} | {} | {} | {:.0} s / {:.0} s | {} |",
        row.krate.name,
        row.version,
        row.krate.exercises,
        counts_cell(&row.linux),
        counts_cell(&row.unikraft),
        if row.equal() { "yes" } else { "**no**" },
        row.linux.took.as_secs_f64(),
        row.unikraft.took.as_secs_f64(),
        failure_cell(row),
    )
}

fn table(rows: &[Row]) -> String {
    let mut table = String::from(
        "| crate | version | exercises | Linux passed/failed/ignored | Unikraft passed/failed/ignored | equal | \
         time Linux / Unikraft | first failure |\n|---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        table.push_str(&table_line(row));
        table.push('\n');
    }
    table
}
