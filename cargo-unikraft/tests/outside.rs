//! `cargo unikraft` on crates outside this workspace, as a user would have them: a plain
//! `cargo new --bin` crate with no dependency on this project, a crate on `unikernel` by
//! path with a net device, and a library with passing and failing tests. Real Unikraft
//! builds, real QEMU boots (TCG where KVM cannot run the guest).
//!
//! The crates live in one directory under the system temp dir, reused between runs so a
//! second run only relinks. They need the pinned sources; without them each test prints a
//! `SKIP:` line (a failure with `UNIKERNEL_REQUIRE_SOURCES=1`, as CI sets).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

const TOOL: &str = env!("CARGO_BIN_EXE_cargo-unikraft");

/// The crates share the tool's cache and QEMU; one at a time keeps the 2-core machines sane.
static SERIAL: Mutex<()> = Mutex::new(());

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn outside_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("cargo-unikraft-outside-tests");
    fs::create_dir_all(&dir).unwrap();
    assert!(!dir.starts_with(workspace_root()), "the test crates must be outside the workspace");
    dir
}

fn show(out: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Whether the Unikraft sources are there; otherwise a SKIP line (or, with
/// `UNIKERNEL_REQUIRE_SOURCES=1`, a failure). Sources that are there but broken (a
/// corrupted tarball, an incomplete tree) always fail: a broken cache is not a skip.
fn provisioned(test: &str) -> bool {
    e2e::sources::sources_or_skip(test).is_some()
}

/// Writes `files` under `dir` (only when they differ, so a rerun does not rebuild).
fn write_crate(dir: &Path, files: &[(&str, &str)]) {
    for (path, body) in files {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        if fs::read_to_string(&path).ok().as_deref() != Some(body) {
            fs::write(&path, body).unwrap();
        }
    }
}

fn tool(dir: &Path, args: &[&str]) -> Output {
    Command::new(TOOL).arg("unikraft").args(args).current_dir(dir).output().unwrap()
}

const PLAIN_MAIN: &str = r#"fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!("plain args: {}", args.join(" "));
    let worker = std::thread::spawn(|| 6 * 7);
    println!("a thread says {}", worker.join().unwrap());
    std::panic::set_hook(Box::new(|_| {}));
    println!("a panic unwinds: {}", std::panic::catch_unwind(|| panic!("on purpose")).is_err());
    if let Some(secs) = args.iter().find_map(|a| a.strip_prefix("--sleep=")) {
        std::thread::sleep(std::time::Duration::from_secs(secs.parse().unwrap()));
    }
    if args.iter().any(|a| a == "--panic") {
        let _ = std::panic::take_hook();
        panic!("asked to panic");
    }
    match args.iter().find_map(|a| a.strip_prefix("--exit=")) {
        Some(code) => std::process::exit(code.parse().unwrap()),
        None => println!("returning from main"),
    }
}
"#;

#[test]
fn a_plain_cargo_new_bin_boots_on_unikraft() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !provisioned("a_plain_cargo_new_bin_boots_on_unikraft") {
        return;
    }
    let dir = plain_crate();
    let manifest = fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(!manifest.contains("unikernel"), "the plain crate must not depend on this project");

    let out = tool(&dir, &["run", "--", "a b", "c", "--exit=7"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("plain args: a b c --exit=7"), "{}", show(&out));
    assert!(stdout.contains("a thread says 42"), "{}", show(&out));
    assert!(stdout.contains("a panic unwinds: true"), "{}", show(&out));
    assert_eq!(out.status.code(), Some(7), "{}", show(&out));
}

/// The plain crate of the test above, created the same way.
fn plain_crate() -> PathBuf {
    let dir = outside_dir().join("plain");
    if !dir.join("Cargo.toml").is_file() {
        let out = Command::new("cargo").args(["new", "--bin", "--vcs", "none", "-q"]).arg(&dir).output().unwrap();
        assert!(out.status.success(), "{}", show(&out));
    }
    write_crate(&dir, &[("src/main.rs", PLAIN_MAIN)]);
    dir
}

#[test]
fn the_same_plain_bin_runs_on_hosted_musl() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if which::which("musl-gcc").is_err() {
        eprintln!("SKIP: the_same_plain_bin_runs_on_hosted_musl: musl-gcc is not installed (Debian: musl-tools)");
        return;
    }
    let dir = plain_crate();
    let out = tool(&dir, &["run", "--plat", "hosted-musl", "--", "a b", "c", "--exit=5"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("plain args: a b c --exit=5"), "{}", show(&out));
    assert!(stdout.contains("a thread says 42"), "{}", show(&out));
    assert!(stdout.contains("a panic unwinds: true"), "{}", show(&out));
    assert_eq!(out.status.code(), Some(5), "{}", show(&out));
}

#[test]
fn a_crate_on_unikernel_by_path_with_a_net_device_boots_from_its_own_directory() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !provisioned("a_crate_on_unikernel_by_path_boots_from_its_own_directory") {
        return;
    }
    let dir = outside_dir().join("netapp");
    let unikernel = workspace_root().join("unikernel");
    let cargo_toml = format!(
        r#"[package]
name = "netapp"
version = "0.1.0"
edition = "2021"

[lib]
path = "src/lib.rs"
test = false

[[bin]]
name = "netapp"
path = "src/main.rs"
test = false

[features]
default = ["unix"]
unix = ["unikernel/unix"]
unikraft = ["unikernel/unikraft"]

[dependencies]
unikernel = {{ path = "{}", default-features = false }}

[package.metadata.unikraft]
devices = ["net"]

[profile.dev]
panic = "abort"

[profile.release]
panic = "abort"
"#,
        unikernel.display()
    );
    let lib = r#"#![no_std]
extern crate alloc;
use unikernel::{println, services};

unikernel::main!(run);

fn run() -> i32 {
    let args = services::boot_args();
    println!("netapp args: {}", args.join(" "));
    match services::open_net("") {
        Ok(_) => println!("netapp: a net device is there"),
        Err(e) => println!("netapp: no net device ({e})"),
    }
    args.iter().find_map(|a| a.strip_prefix("--exit=")).and_then(|c| c.parse().ok()).unwrap_or(0)
}
"#;
    let main = "#![no_std]\n#![no_main]\nextern crate netapp;\n";
    write_crate(&dir, &[("Cargo.toml", &cargo_toml), ("src/lib.rs", lib), ("src/main.rs", main)]);

    let out = tool(&dir, &["run", "--", "hello", "--exit=9"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("netapp args: hello --exit=9"), "{}", show(&out));
    assert!(stdout.contains("netapp: "), "{}", show(&out));
    assert_eq!(out.status.code(), Some(9), "{}", show(&out));
    // Generated files are under the app's own target directory and name no path of
    // this checkout but the dependency's glue.
    let makefile = fs::read_to_string(dir.join("target/unikraft/netapp/app/Makefile.uk")).unwrap();
    assert!(makefile.contains(&dir.join("target").display().to_string()), "{makefile}");
    assert!(!makefile.contains(&workspace_root().join("target").display().to_string()), "{makefile}");
}

/// A test whose allocation fails: Rust prints `memory allocation of N bytes failed` and
/// aborts (on Linux: SIGABRT, status 134).
const ABORTS: &str = r#"#[test]
fn runs_out_of_memory() {
    let huge: Vec<u8> = Vec::with_capacity(1 << 40);
    std::hint::black_box(&huge);
}
"#;

/// A library with passing and failing tests, as `cargo unikraft test` meets them.
fn tested_crate() -> PathBuf {
    let dir = outside_dir().join("tested");
    let lib = r#"pub fn add(a: u32, b: u32) -> u32 {
    a + b
}

#[cfg(test)]
mod tests {
    #[test]
    fn adds() {
        assert_eq!(super::add(2, 3), 5);
    }

    #[test]
    fn spawns_a_thread() {
        assert_eq!(std::thread::spawn(|| 7).join().unwrap(), 7);
    }

    #[test]
    #[should_panic(expected = "unwinds")]
    fn a_panic_unwinds() {
        panic!("unwinds");
    }
}
"#;
    let failing = r#"#[test]
fn passes_outside() {
    assert_eq!(tested::add(1, 1), 2);
}

#[test]
fn fails_on_purpose() {
    assert_eq!(tested::add(1, 1), 3, "deliberately failing test");
}
"#;
    let cargo_toml = "[package]\nname = \"tested\"\nversion = \"0.1.0\"\nedition = \"2021\"\n";
    write_crate(&dir, &[("Cargo.toml", cargo_toml), ("src/lib.rs", lib), ("tests/outside.rs", failing)]);
    dir
}

/// A library whose one integration test harness aborts (a failed allocation). A crate of
/// its own, so the other test's counts of `tested`'s harnesses stay its own.
fn aborting_crate() -> PathBuf {
    let dir = outside_dir().join("aborting");
    let cargo_toml = "[package]\nname = \"aborting\"\nversion = \"0.1.0\"\nedition = \"2021\"\n";
    write_crate(
        &dir,
        &[("Cargo.toml", cargo_toml), ("src/lib.rs", "pub fn nothing() {}\n"), ("tests/aborts.rs", ABORTS)],
    );
    dir
}

#[test]
fn cargo_unikraft_test_reports_passing_and_failing_tests_like_cargo_test() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !provisioned("cargo_unikraft_test_reports_passing_and_failing_tests") {
        return;
    }
    let dir = tested_crate();

    let out = tool(&dir, &["test"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("test tests::adds ... ok"), "{}", show(&out));
    assert!(stdout.contains("test tests::spawns_a_thread ... ok"), "{}", show(&out));
    assert!(stdout.contains("test tests::a_panic_unwinds - should panic ... ok"), "{}", show(&out));
    assert!(stdout.contains("test passes_outside ... ok"), "{}", show(&out));
    assert!(stdout.contains("test fails_on_purpose ... FAILED"), "{}", show(&out));
    assert!(stdout.contains("deliberately failing test"), "{}", show(&out));
    assert_eq!(out.status.code(), Some(101), "{}", show(&out));
    // Each harness's console is kept; the failing one's file is named, and holds it.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let console = stderr
        .lines()
        .find_map(|l| l.strip_prefix("cargo-unikraft: the console of this run is in "))
        .unwrap_or_else(|| panic!("no console file named: {}", show(&out)));
    assert!(console.contains("-outside-"), "the failing harness is `outside`: {console}");
    assert!(fs::read_to_string(console).unwrap().contains("deliberately failing test"), "{console}");
    let logs = fs::read_dir(dir.join("target/unikraft/tested_test/logs")).unwrap();
    let names: Vec<String> = logs.map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(names.iter().any(|n| n.contains("-lib-")), "no console of the lib harness: {names:?}");

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("test summary: 4 passed; 1 failed; 0 ignored; 0 filtered out (2 harnesses inside unikernels)"),
        "{}",
        show(&out)
    );
    assert!(stderr.contains("doctests of `tested` skipped: rustdoc compiles each doctest"), "{}", show(&out));

    // A filter that leaves only passing tests passes.
    let out = tool(&dir, &["test", "--", "passes_outside"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("test passes_outside ... ok"), "{}", show(&out));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));

    // cargo test's positional filter: only the matching test runs, in every harness.
    let out = tool(&dir, &["test", "adds"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("test tests::adds ... ok"), "{}", show(&out));
    assert!(!stdout.contains("spawns_a_thread") && !stdout.contains("fails_on_purpose"), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("test summary: 1 passed; 0 failed; 0 ignored; 4 filtered out (2 harnesses inside unikernels)"),
        "{}",
        show(&out)
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));

    // --test NAME: that harness only (and no doctests, as with cargo test).
    let out = tool(&dir, &["test", "--test", "outside", "--memory-mib", "128"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("tests::adds"), "{}", show(&out));
    assert!(stderr.contains("1 passed; 1 failed; 0 ignored; 0 filtered out (1 harness inside"), "{}", show(&out));
    assert!(!stderr.contains("doctests"), "{}", show(&out));
    assert_eq!(out.status.code(), Some(101), "{}", show(&out));

    // --no-run: one image per harness, kept apart, none booted.
    let out = tool(&dir, &["test", "--lib", "--no-run"]);
    let images: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(images.len(), 1, "{}", show(&out));
    assert!(images[0].ends_with("tested_test/images/lib") && Path::new(images[0]).is_file(), "{}", show(&out));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}

/// A test harness that aborts is reported as an abort, with the status Linux gives
/// (SIGABRT: 134) and the last line it printed, not as a guest that "stopped without
/// reporting an exit code" (lib-musl's abort halted the VM as a crash, QEMU exited 0).
#[test]
fn an_aborting_test_harness_is_reported_as_an_abort_with_its_last_line() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !provisioned("an_aborting_test_harness_is_reported_as_an_abort_with_its_last_line") {
        return;
    }
    let dir = aborting_crate();
    let message = "memory allocation of 1099511627776 bytes failed";
    // Linux first: the same harness dies of SIGABRT after the message.
    let linux = Command::new("cargo").args(["test", "-q", "--test", "aborts"]).current_dir(&dir).output().unwrap();
    let linux_stderr = String::from_utf8_lossy(&linux.stderr);
    assert!(linux_stderr.contains(message) && linux_stderr.contains("SIGABRT"), "{}", show(&linux));

    let out = tool(&dir, &["test", "--", "runs_out_of_memory"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let reported = stderr
        .lines()
        .find(|l| l.starts_with("error: test failed in"))
        .unwrap_or_else(|| panic!("no failure line: {}", show(&out)));
    assert!(reported.contains("`aborts` (aborted: status 134, SIGABRT on Linux"), "{}", show(&out));
    assert!(reported.contains(message), "the last line is missing: {}", show(&out));
    assert!(!stderr.contains("without reporting an exit code"), "{}", show(&out));
    // The other harnesses (no test matches the filter in them) passed.
    assert!(!reported.contains("`lib`") && !reported.contains("`outside`"), "{}", show(&out));
    assert_eq!(out.status.code(), Some(101), "{}", show(&out));
}

/// Two builds of one app at once used to rewrite each other's files; now the second waits
/// for the first's lock on `target/unikraft/<name>/`, and says so. The test holds the lock
/// itself and watches a real `cargo unikraft build` wait for it.
#[test]
fn a_second_build_of_one_app_waits_for_the_first() {
    const TEST: &str = "a_second_build_of_one_app_waits_for_the_first";
    if !provisioned(TEST) {
        return;
    }
    let dir = outside_dir().join("locked");
    if !dir.join("Cargo.toml").is_file() {
        let out = Command::new("cargo").args(["new", "--bin", "--vcs", "none", "-q"]).arg(&dir).output().unwrap();
        assert!(out.status.success(), "{}", show(&out));
    }
    let build_dir = dir.join("target/unikraft/locked");
    let held = cargo_unikraft::appdir::BuildLock::acquire(&build_dir).unwrap();
    let mut child = Command::new(TOOL)
        .args(["unikraft", "build"])
        .current_dir(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines, heard) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut seen = Vec::new();
    let waiting = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match heard.recv_timeout(left) {
            Ok(line) if line.contains("waiting for lock on") => break Some(line),
            Ok(line) => seen.push(line),
            Err(_) => break None,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    drop(held);
    let waiting = waiting.unwrap_or_else(|| panic!("the second build did not wait for the lock:\n{}", seen.join("\n")));
    assert!(waiting.contains(build_dir.to_str().unwrap()), "{waiting}");
}

/// Each platform's build of an app has its own directory and lock: a hosted-musl build
/// does not wait while a Unikraft build of the same app holds `target/unikraft/<name>/`
/// (it once did, and a test's boot timer ran out behind a cold Unikraft build), and its
/// executable is not under that directory.
#[test]
fn a_hosted_musl_build_does_not_wait_for_a_unikraft_build_of_the_same_app() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const TEST: &str = "a_hosted_musl_build_does_not_wait_for_a_unikraft_build_of_the_same_app";
    if which::which("musl-gcc").is_err() {
        eprintln!("SKIP: {TEST}: musl-gcc is not installed (Debian: musl-tools)");
        return;
    }
    let dir = plain_crate();
    let unikraft_build = cargo_unikraft::appdir::BuildLock::acquire(&dir.join("target/unikraft/plain")).unwrap();
    let mut child = Command::new(TOOL)
        .args(["unikraft", "build", "--plat", "hosted-musl"])
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Long enough for a cold cargo build of the archive on a busy machine.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    drop(unikraft_build);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("waiting for lock"),
        "the hosted-musl build waited for the Unikraft lock:\n{}",
        show(&out)
    );
    assert!(
        out.status.success(),
        "the hosted-musl build did not finish while the Unikraft lock was held:\n{}",
        show(&out)
    );
    let exe = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(Path::new(&exe), dir.join("target/hosted-musl/plain/plain"), "{}", show(&out));
}

/// Boots `image` the way an orchestrator's QEMU does (no `isa-debug-exit` device) and
/// returns QEMU's status and console, or `None` when QEMU did not end within `limit`.
fn boot_without_exit_device(image: &Path, append: &str, limit: std::time::Duration) -> Option<(i32, String)> {
    use std::process::Stdio;
    let console = outside_dir().join("poweroff-console.txt");
    let mut child = Command::new("qemu-system-x86_64")
        .args(["-nodefaults", "-no-user-config", "-display", "none", "-vga", "none", "-monitor", "null"])
        .args(["-serial", &format!("file:{}", console.display()), "-m", "64", "-cpu", "max", "-kernel"])
        .arg(image)
        .args(["-append", append])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some((status.code().unwrap_or(-1), fs::read_to_string(&console).unwrap_or_default()));
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn every_exit_path_powers_qemu_off_without_the_exit_device() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !provisioned("every_exit_path_powers_qemu_off_without_the_exit_device") {
        return;
    }
    let dir = plain_crate();
    let out = tool(&dir, &["build"]);
    assert!(out.status.success(), "{}", show(&out));
    let image = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    // TCG boots in about a second; a VM that is still up after this never powers off.
    let limit = std::time::Duration::from_secs(60);
    for (append, expect) in
        [("plain", "returning from main"), ("plain --exit=3", "a thread says 42"), ("plain --panic", "asked to panic")]
    {
        let ended = boot_without_exit_device(&image, append, limit);
        let (status, console) = ended.unwrap_or_else(|| panic!("`{append}`: QEMU still running after {limit:?}"));
        assert!(console.contains(expect), "`{append}`: console:\n{console}");
        assert_eq!(status, 0, "`{append}`: QEMU should power off cleanly; console:\n{console}");
    }
}

#[test]
fn unikraft_parameters_precede_the_stop_sequence_and_the_app_gets_the_rest() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !provisioned("unikraft_parameters_precede_the_stop_sequence_and_the_app_gets_the_rest") {
        return;
    }
    let dir = plain_crate();
    // Through the runner: the app's own `--` and `help` are the app's, not Unikraft's.
    let out = tool(&dir, &["run", "--", "--", "help", "x.y=z"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("plain args: -- help x.y=z"), "{}", show(&out));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));

    // As urunc boots it: Unikraft's parameters first, the app's arguments after `--`.
    let out = tool(&dir, &["build"]);
    assert!(out.status.success(), "{}", show(&out));
    let image = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let append = "env.vars=[FOO=bar] netdev.ip=10.0.0.2/24:10.0.0.1:8.8.8.8 vfs.fstab=[] -- --exit=4 a";
    let (status, console) = boot_without_exit_device(&image, append, std::time::Duration::from_secs(60))
        .expect("QEMU still running after 60 s");
    assert!(console.lines().any(|l| l.trim_end() == "plain args: --exit=4 a"), "{console}");
    assert_eq!(status, 0, "{console}");
}

/// The processes whose executable is `exe`.
fn processes_running(exe: &Path) -> Vec<u32> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p == exe))
        .collect()
}

/// SIGKILL of the tool (no chance to clean up) still takes its guest down: the guest is
/// started with PR_SET_PDEATHSIG. Shown with the hosted-musl guest, a plain process.
#[test]
fn a_guest_dies_with_the_tool_that_started_it_even_on_sigkill() {
    use std::io::BufRead;
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if which::which("musl-gcc").is_err() {
        eprintln!("SKIP: a_guest_dies_with_the_tool_that_started_it_even_on_sigkill: musl-gcc is not installed (Debian: musl-tools)");
        return;
    }
    let dir = plain_crate();
    let out = tool(&dir, &["build", "--plat", "hosted-musl"]);
    assert!(out.status.success(), "{}", show(&out));
    let exe = fs::canonicalize(String::from_utf8_lossy(&out.stdout).trim()).unwrap();

    let mut run = Command::new(TOOL)
        .args(["unikraft", "run", "--plat", "hosted-musl", "--", "--sleep=120"])
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = run.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let started = std::time::Instant::now();
    while !rx.recv_timeout(std::time::Duration::from_secs(60)).expect("the guest never started").contains("plain args")
    {
        assert!(started.elapsed().as_secs() < 60, "the guest never printed its arguments");
    }
    assert!(!processes_running(&exe).is_empty(), "the guest process is not running");

    run.kill().unwrap(); // SIGKILL
    run.wait().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !processes_running(&exe).is_empty() {
        assert!(std::time::Instant::now() < deadline, "the guest outlived the tool by 10 s");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
