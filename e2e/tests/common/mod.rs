//! Helpers shared by the end-to-end tests (each test file includes this module;
//! not every file uses every helper).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod unikraft;

/// The xtask binary under test, as a program name for `Command::new(XTASK)` and
/// `Ns::command(XTASK)`. These tests are not xtask's own, so Cargo gives them no
/// `CARGO_BIN_EXE_xtask`: the first use runs `cargo build -p xtask` into the target
/// directory and profile these tests were built for (a no-op when it is up to date).
pub const XTASK: XtaskBin = XtaskBin;

/// See [`XTASK`].
#[derive(Clone, Copy)]
pub struct XtaskBin;

impl AsRef<std::ffi::OsStr> for XtaskBin {
    fn as_ref(&self) -> &std::ffi::OsStr {
        static PATH: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
        PATH.get_or_init(build_xtask).as_os_str()
    }
}

/// Builds the xtask binary beside this test binary (`<target>/<profile>/deps/<test>`) and
/// returns its path.
fn build_xtask() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir =
        exe.parent().and_then(|deps| deps.parent()).expect("the test binary is in <target>/<profile>/deps");
    let target_dir = profile_dir.parent().expect("the profile directory is in the target directory");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", "xtask", "--profile", profile, "--target-dir"])
        .arg(target_dir)
        .status()
        .expect("run cargo build -p xtask");
    assert!(status.success(), "cargo build -p xtask failed ({status})");
    profile_dir.join("xtask")
}

#[allow(unused_imports)] // each test binary uses a different subset
pub use e2e::skip::{skip, skip_unprovisioned, sources_required};

/// Both output streams of a finished command, for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// Not every test binary uses both.
#[allow(unused_imports)]
pub use e2e::netns::{is_root, Ns};

/// A running guest (process, or runner with its VM/tender in the same process group),
/// killed and reaped on drop, also when an assertion fails.
pub struct Guest(Child, std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Guest {
    /// The stdout lines the guest printed after its ready line, so far (kept by
    /// [`start_until`]'s reader; empty for [`Guest::from_child`]).
    pub fn lines_since_ready(&self) -> Vec<String> {
        self.1.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A guest already spawned in its own process group (`process_group(0)`).
    pub fn from_child(child: Child) -> Guest {
        Guest(child, Default::default())
    }

    /// CPU time (user + system) used so far by this guest's processes whose command name
    /// starts with `comm` (e.g. the QEMU that a runner started), from /proc; `None` when
    /// there is no such process.
    pub fn cpu_time_of(&self, comm: &str) -> Option<Duration> {
        let group = self.0.id().to_string();
        let ticks_per_second = 100; // USER_HZ, which /proc reports in on Linux
        let mut ticks = 0u64;
        let mut found = false;
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            // pid (comm) state ppid pgrp ... utime stime: fields after the ')' of comm.
            let Some((head, rest)) = stat.rsplit_once(')') else { continue };
            let name = head.split_once('(').map_or("", |(_, n)| n);
            let fields: Vec<&str> = rest.split_whitespace().collect();
            if name.starts_with(comm) && fields.get(2) == Some(&group.as_str()) {
                found = true;
                ticks += fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
            }
        }
        found.then(|| Duration::from_millis(ticks * 1000 / ticks_per_second))
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["--", &format!("-{}", self.0.id())]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How long a test waits for the build of what it boots. A cold Unikraft image takes 2-5
/// minutes on a busy 2-core machine, and a parallel test's build may come first: one of the
/// same app for the same platform holds the app's build lock, and one of any app for the
/// same platform holds cargo's lock on the shared archive target directory.
pub const BUILD_BOUND: Duration = Duration::from_secs(30 * 60);

/// Builds what a test boots, before its boot timer starts: `xtask <args>` (a build only:
/// `kraft-run ... --no-boot`, `solo5-run ... --no-run`), bounded by [`BUILD_BOUND`], not by
/// the boot's timeout. When the build waits for another one (`waiting for lock on ...`, or
/// cargo's `Blocking waiting for file lock ...`), the test says so on stderr as it happens.
/// Boot afterwards with `--no-build`, which builds nothing and waits for no lock, so the
/// boot timer measures the guest alone. Returns the build's output, for its status and
/// SKIP checks.
pub fn build_first(test: &str, args: &[&str]) -> Output {
    let started = Instant::now();
    let mut child = Command::new(XTASK)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the xtask build");
    let mut stdout = child.stdout.take().expect("piped");
    let stdout = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    let stderr = child.stderr.take().expect("piped");
    let test_name = test.to_string();
    let stderr = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("waiting for lock") || line.contains("Blocking waiting for file lock") {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "{test_name}: its build waits for another build (bounded by {} s, not by the boot timeout): {}",
                    BUILD_BOUND.as_secs(),
                    line.trim()
                );
            }
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
        }
        bytes
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the xtask build") {
            break status;
        }
        if started.elapsed() > BUILD_BOUND {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned();
            panic!("{test}: `xtask {}` did not finish within {} s:\n{stderr}", args.join(" "), BUILD_BOUND.as_secs());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Output { status, stdout: stdout.join().unwrap_or_default(), stderr: stderr.join().unwrap_or_default() }
}

/// Spawns `cmd` in its own process group and waits until a stdout line contains
/// `ready`, at most `timeout` in all. `cmd` should build nothing (`--no-build` after a
/// [`build_first`]): the timeout is for the guest's start alone.
pub fn start_until(mut cmd: Command, ready: &str, timeout: Duration) -> Guest {
    use std::sync::mpsc::RecvTimeoutError;
    let mut child = cmd.stdout(Stdio::piped()).process_group(0).spawn().expect("start the guest");
    let stdout = child.stdout.take().expect("piped");
    let ready_owned = ready.to_string();
    let guest = Guest(child, Default::default());
    let (tx, rx) = std::sync::mpsc::channel();
    let after_ready = guest.1.clone();
    std::thread::spawn(move || {
        let mut ready_seen = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if ready_seen {
                after_ready.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            } else {
                ready_seen = line.contains(&ready_owned);
                let _ = tx.send(line);
            }
        }
    });
    let deadline = Instant::now() + timeout;
    let mut seen: Vec<String> = Vec::new();
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.contains(ready) => return guest,
            Ok(line) => seen.push(line),
            Err(RecvTimeoutError::Timeout) => panic!(
                "the guest never printed `{ready}` within {} s of its start; it printed:\n{}",
                timeout.as_secs(),
                seen.join("\n")
            ),
            Err(RecvTimeoutError::Disconnected) => {
                panic!("the guest ended before it printed `{ready}`; it printed:\n{}", seen.join("\n"))
            }
        }
    }
}
