//! Unikraft's make, run with a progress count and a log; upstream compiler diagnostics go
//! to the log only.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::app::cargo;

/// One Unikraft build directory and how to run make in it.
pub struct UkMake {
    pub unikraft: PathBuf,
    pub app_dir: PathBuf,
    pub libs: Vec<PathBuf>,
    pub build_dir: PathBuf,
    /// The image name (`N=`). Without it, `make defconfig` (which has no `.config` to read
    /// `CONFIG_UK_NAME` from yet) names the app after its directory, so `UK_DEFNAME` in the
    /// `.config` changes on the first build and the second one recompiles everything.
    pub name: String,
}

impl UkMake {
    /// Kept in the build directory, so several targets of one app directory do not share it.
    pub fn config(&self) -> PathBuf {
        self.build_dir.join(".config")
    }

    pub fn log(&self) -> PathBuf {
        self.build_dir.join("make.log")
    }

    /// Runs `make` in the Unikraft tree with this app, showing progress and logging output.
    pub fn run(&self, extra: &[&str], what: &str) -> Result<()> {
        if which::which("make").is_err() {
            bail!("`make` is not installed; run `cargo unikraft doctor` for the packages Unikraft needs");
        }
        // Unikraft's make takes these on its command line and does not escape them.
        for path in [&self.unikraft, &self.app_dir, &self.build_dir].into_iter().chain(&self.libs) {
            crate::app::path_str(path)?;
        }
        fs::create_dir_all(&self.build_dir)?;
        let libs: Vec<String> = self.libs.iter().map(|l| l.display().to_string()).collect();
        let mut cmd = Command::new("make");
        cmd.arg("--no-print-directory")
            .arg("-C")
            .arg(&self.unikraft)
            .arg(format!("A={}", self.app_dir.display()))
            .arg(format!("L={}", libs.join(":")))
            .arg(format!("O={}", self.build_dir.display()))
            .arg(format!("C={}", self.config().display()))
            .arg(format!("N={}", self.name))
            .args(extra)
            .env("CARGO", cargo())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        run_logged(cmd, &self.log(), what, &self.upstream_roots())
    }

    /// The directories whose compiler diagnostics go to the log only ([`UpstreamDiagnostics`]).
    pub fn upstream_roots(&self) -> Vec<PathBuf> {
        let mut upstream = vec![self.unikraft.clone(), self.build_dir.clone()];
        upstream.extend(self.libs.iter().cloned());
        upstream
    }
}

/// Runs `cmd` (a step of Unikraft's build) as [`UkMake::run`] runs make: its output appended
/// to `log`, routine lines counted, diagnostics about files under `upstream` to the log only.
pub(crate) fn run_logged(mut cmd: Command, log: &Path, what: &str, upstream: &[PathBuf]) -> Result<()> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    run_with_progress(cmd, log, what, UpstreamDiagnostics::new(upstream))
}

/// Recognises compiler diagnostics about upstream sources (Unikraft, its libraries, musl
/// as unpacked in the build directory): hundreds of warnings on a first build that the
/// user can do nothing about. They go to the log only, and are counted; diagnostics about
/// anything else (this project's glue, the app) are shown.
///
/// gcc writes a diagnostic as a header line naming the file (`path:12:3: warning: ...`,
/// `In file included from path...`, `                 from path...`, `path: In function`)
/// followed by source excerpt lines (` 12 | code`, `    | ^~~`); the excerpts belong to
/// the header before them.
#[derive(Clone)]
struct UpstreamDiagnostics {
    roots: Vec<String>,
    /// Whether the last header line was about an upstream file (per stream).
    in_upstream: bool,
}

impl UpstreamDiagnostics {
    fn new(roots: &[PathBuf]) -> Self {
        UpstreamDiagnostics { roots: roots.iter().map(|r| r.display().to_string()).collect(), in_upstream: false }
    }

    /// Whether `line` is (part of) a diagnostic about an upstream source.
    fn hides(&mut self, line: &str) -> bool {
        let trimmed = line.trim_start();
        let path =
            trimmed.strip_prefix("In file included from ").or_else(|| trimmed.strip_prefix("from ")).unwrap_or(trimmed);
        if self.roots.iter().any(|root| path.starts_with(root.as_str())) {
            self.in_upstream = true;
            return true;
        }
        let excerpt =
            trimmed.split_once('|').is_some_and(|(gutter, _)| gutter.trim().chars().all(|c| c.is_ascii_digit()));
        if excerpt {
            return self.in_upstream;
        }
        self.in_upstream = false;
        false
    }
}

/// A routine line of Unikraft's build (`  CC      libfoo: bar.o`): counted, not printed.
fn is_routine(line: &str) -> bool {
    // GNU ld 2.39+ warns about every Unikraft object without a `.note.GNU-stack` section;
    // Unikraft 0.16.3 builds that way by design (the unikernel has no NX stack policy), so
    // these go to the log only.
    if line.starts_with("/usr/bin/ld: warning: ")
        && (line.ends_with("missing .note.GNU-stack section implies executable stack")
            || line.ends_with("requires executable stack (because the .note.GNU-stack section is executable)"))
        || line
            == "/usr/bin/ld: NOTE: This behaviour is deprecated and will be removed in a future version of the linker"
    {
        return true;
    }
    let Some(rest) = line.strip_prefix("  ") else { return false };
    let tag: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
    !tag.is_empty()
        && tag.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-')
        && rest[tag.len()..].starts_with(' ')
}

/// Runs `cmd`, appending everything to `log`, printing unusual lines as they come and a
/// progress line every few seconds. On failure, shows the end of the log.
fn run_with_progress(mut cmd: Command, log: &Path, what: &str, upstream: UpstreamDiagnostics) -> Result<()> {
    let mut child = cmd.spawn().with_context(|| format!("start Unikraft's build ({what})"))?;
    let log_file = Arc::new(Mutex::new(
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("open {}", log.display()))?,
    ));
    let routine = Arc::new(Mutex::new((0usize, Instant::now(), Instant::now())));
    let hidden = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    let streams: Vec<Box<dyn std::io::Read + Send>> =
        vec![Box::new(child.stdout.take().expect("piped")), Box::new(child.stderr.take().expect("piped"))];
    for stream in streams {
        let log_file = Arc::clone(&log_file);
        let routine = Arc::clone(&routine);
        let hidden = Arc::clone(&hidden);
        let mut upstream = upstream.clone();
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = writeln!(log_file.lock().expect("log lock"), "{line}");
                if upstream.hides(&line) {
                    if line.contains(": warning: ") {
                        hidden.fetch_add(1, Ordering::Relaxed);
                    }
                } else if is_routine(&line) {
                    let mut r = routine.lock().expect("progress lock");
                    r.0 += 1;
                    if line.trim_start().starts_with("LD ") || r.2.elapsed() >= Duration::from_secs(10) {
                        eprintln!(
                            "unikraft: {} steps done ({:.0} s), now: {}",
                            r.0,
                            r.1.elapsed().as_secs_f64(),
                            line.trim()
                        );
                        r.2 = Instant::now();
                    }
                } else {
                    eprintln!("{line}");
                }
            }
        }));
    }
    for reader in readers {
        let _ = reader.join();
    }
    let status = child.wait()?;
    let hidden = hidden.load(Ordering::Relaxed);
    if hidden > 0 {
        eprintln!("unikraft: {hidden} compiler warnings about Unikraft and musl sources are in {}", log.display());
    }
    if !status.success() {
        let text = fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(25).collect();
        eprintln!("--- last lines of {} ---", log.display());
        for line in tail.iter().rev() {
            eprintln!("{line}");
        }
        bail!("Unikraft's build ({what}) failed with {status}; full log: {}", log.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_diagnostics_are_hidden_and_the_projects_are_shown() {
        let mut filter = UpstreamDiagnostics::new(&[PathBuf::from("/cache/unikraft"), PathBuf::from("/w/build")]);
        let hidden = [
            "In file included from /cache/unikraft/include/uk/plat/bootstrap.h:38,",
            "                 from /w/build/libmusl/origin/musl-1.2.3//src/internal/syscall.h:8,",
            "/cache/unikraft/include/uk/essentials.h:61: note: this is the location of the previous definition",
            "   61 | #define MIN(a, b)                                                              \\",
            "      | ",
            "/w/build/libmusl/origin/musl-1.2.3//src/stdlib/qsort.c:55:15: warning: storing the address",
            "      |         ~~~~~~^~~~~",
        ];
        for line in hidden {
            assert!(filter.hides(line), "should be hidden: {line}");
        }
        let shown = [
            "/w/rt-unikraft/glue/netdev.c:10:5: warning: unused variable 'x'",
            "   10 |     int x;",
            "  CC      libmusl: putwchar.o",
            "make: *** [Makefile:1] Error 1",
        ];
        for line in shown {
            assert!(!filter.hides(line), "should be shown: {line}");
        }
    }

    /// The probe guest must itself be right, or every host would be judged unable to run
    /// KVM: under TCG (software, always available with QEMU) it reports success.

    #[test]
    fn routine_make_lines_are_recognised() {
        assert!(is_routine("  CC      libkvmplat: io.o"));
        assert!(is_routine("  LD      hello_qemu-x86_64.dbg"));
        assert!(is_routine("  UKBI    hello_qemu-x86_64.bootinfo"));
        assert!(!is_routine("/usr/bin/ld: warning: something"));
        assert!(is_routine(
            "/usr/bin/ld: warning: build/libmusl/libinfo.libuklibid.o: missing .note.GNU-stack section implies executable stack"
        ));
        assert!(is_routine(
            "/usr/bin/ld: NOTE: This behaviour is deprecated and will be removed in a future version of the linker"
        ));
        assert!(!is_routine("   Compiling hello v0.1.0"));
        assert!(!is_routine("error: oops"));
    }
}
