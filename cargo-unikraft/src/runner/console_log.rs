//! Each run's console kept on disk, as kraftkit keeps it for `kraft logs`: one file per run
//! under the app's build directory (`target/unikraft/<name>/logs/<time>-<label>.log`) and a
//! stable `last-run.log` link beside them to the newest one. The lines are written as they
//! arrive, so the file holds what the guest printed even when the tool is killed, and the
//! path is printed when a run fails ([`ConsoleLog::report_failure`]). A log that cannot be
//! written (a read-only or full disk) is reported once and never fails the run.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};

use super::GuestExit;

/// The stable name of the newest run's console, beside the `logs/` directory.
pub const LAST_RUN: &str = "last-run.log";

/// How many consoles an app keeps; older ones are removed when a run starts (a test run
/// writes one per harness).
pub const KEPT: usize = 50;

/// One run's console file, being written (`None` when it could not be created).
#[derive(Debug)]
pub struct ConsoleLog {
    file: Option<(PathBuf, BufWriter<File>)>,
}

impl ConsoleLog {
    /// Starts `<dir>/logs/<time>-<label>.log` and points `<dir>/last-run.log` at it; when
    /// that fails, says so and keeps nothing (the run goes on).
    pub fn create(dir: &Path, label: &str) -> ConsoleLog {
        match Self::open(dir, label) {
            Ok(file) => ConsoleLog { file: Some(file) },
            Err(e) => {
                eprintln!("cargo-unikraft: warning: this run's console is not kept: {e:#}");
                ConsoleLog { file: None }
            }
        }
    }

    fn open(dir: &Path, label: &str) -> Result<(PathBuf, BufWriter<File>)> {
        let logs = dir.join("logs");
        fs::create_dir_all(&logs).with_context(|| format!("create {}", logs.display()))?;
        prune(&logs, KEPT.saturating_sub(1));
        // `2026-12-07T21-10-00.123Z`: sorts by time, no `:` (awkward in shells and URLs).
        let stamp = humantime::format_rfc3339_millis(SystemTime::now()).to_string().replace(':', "-");
        let label: String =
            label.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
        let path = logs.join(format!("{stamp}-{label}-{}.log", std::process::id()));
        let file = File::create(&path).with_context(|| format!("create {}", path.display()))?;
        // The link is replaced atomically (a new link renamed over the old one), so a
        // reader never finds it missing.
        let link = dir.join(LAST_RUN);
        let staged = dir.join(format!(".{LAST_RUN}.{}", std::process::id()));
        let _ = fs::remove_file(&staged);
        let target = Path::new("logs").join(path.file_name().expect("a file name"));
        std::os::unix::fs::symlink(&target, &staged)
            .and_then(|()| fs::rename(&staged, &link))
            .with_context(|| format!("point {} at {}", link.display(), target.display()))?;
        Ok((path, BufWriter::new(file)))
    }

    /// Where this run's console is, if it is kept.
    pub fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(|(path, _)| path.as_path())
    }

    /// Appends one console line (flushed, so a killed run still leaves its output). A
    /// write error (a full disk) loses the log, never the run.
    pub fn line(&mut self, line: &str) {
        if let Some((_, file)) = &mut self.file {
            let _ = writeln!(file, "{line}").and_then(|()| file.flush());
        }
    }

    /// Ends the log with how the run ended and, when it failed (an exit status other
    /// than 0, a crash, a timeout), prints where the console is.
    pub fn report_failure(mut self, exit: &GuestExit) {
        let end = match exit {
            GuestExit::App(code) => format!("exit status {code}"),
            GuestExit::NotReported(why) => why.clone(),
        };
        self.line(&format!("[cargo-unikraft: {end}]"));
        if let (Some(path), false) = (self.path(), exit.code() == Some(0)) {
            eprintln!("cargo-unikraft: the console of this run is in {}", path.display());
        }
    }
}

/// Removes the oldest `*.log` files of `logs` beyond the newest `keep` (names sort by time).
fn prune(logs: &Path, keep: usize) {
    let Ok(entries) = fs::read_dir(logs) else { return };
    let mut files: Vec<PathBuf> =
        entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "log")).collect();
    files.sort();
    let excess = files.len().saturating_sub(keep);
    for old in &files[..excess] {
        let _ = fs::remove_file(old);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_run_gets_a_file_and_last_run_points_at_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = ConsoleLog::create(dir.path(), "hello");
        first.line("Powered by Unikraft");
        first.report_failure(&GuestExit::App(0));
        let mut second = ConsoleLog::create(dir.path(), "a harness/x");
        second.line("boom");
        let second_path = second.path().unwrap().to_path_buf();
        assert!(second_path.file_name().unwrap().to_str().unwrap().contains("-a_harness_x-"), "{second_path:?}");
        second.report_failure(&GuestExit::NotReported("killed after 3 s (timeout)".into()));
        let last = fs::read_to_string(dir.path().join(LAST_RUN)).unwrap();
        assert_eq!(last, "boom\n[cargo-unikraft: killed after 3 s (timeout)]\n");
        assert_eq!(fs::read_dir(dir.path().join("logs")).unwrap().count(), 2);
    }

    #[test]
    fn only_the_newest_consoles_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        fs::create_dir_all(&logs).unwrap();
        for i in 0..KEPT + 5 {
            fs::write(logs.join(format!("2026-01-01T00-00-{i:02}.000Z-x-1.log")), "").unwrap();
        }
        let log = ConsoleLog::create(dir.path(), "x");
        let mut names: Vec<String> =
            fs::read_dir(&logs).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names.len(), KEPT);
        assert!(!names.iter().any(|n| n.starts_with("2026-01-01T00-00-05.")), "the oldest were not removed");
        assert!(log.path().unwrap().exists());
    }

    /// A directory that cannot hold the logs (here: a file in its place) costs the log,
    /// not the run.
    #[test]
    fn a_log_that_cannot_be_created_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let blocked = dir.path().join("app");
        fs::write(&blocked, "a file where the directory would be").unwrap();
        let mut log = ConsoleLog::create(&blocked, "x");
        assert!(log.path().is_none());
        log.line("still fine");
        log.report_failure(&GuestExit::App(1));
    }
}
