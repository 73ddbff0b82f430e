//! `cargo xtask run` of a net example runs it in a fresh network namespace; the namespace
//! must go when the run is interrupted: Ctrl-C (SIGINT to the whole foreground process
//! group, as a terminal sends it) and `kill` (SIGTERM to xtask alone, whose app keeps
//! running unless xtask stops it). Root only (network namespaces); a SKIP line otherwise.
//!
//! A terminal's foreground job has SIGINT at its default action, but these tests are often
//! run from a script's background job (`cargo test ... &`), which a shell starts with
//! SIGINT ignored, and xtask and its app inherit that. So the Ctrl-C run is started the way
//! a terminal would start it, SIGINT at its default; the `kill` run is started the way a
//! background job is, and SIGINT must not end it (an ignored signal stays ignored).

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;

use common::{is_root, skip, XTASK};

/// How a run's SIGINT is set when it starts.
#[derive(Clone, Copy)]
enum Sigint {
    /// At its default action, as in a terminal's foreground job.
    Default,
    /// Ignored, as in a script's background job (`cmd &`).
    Ignored,
}

/// `xtask run --example udp-echo` in its own process group, with SIGINT set as `sigint`
/// says (whatever this test process inherited); returns it, the namespace it made, and the
/// pids of the processes inside (the app) once it runs.
fn start_run(sigint: Sigint) -> (Child, String, Vec<u32>) {
    let action = match sigint {
        Sigint::Default => libc::SIG_DFL,
        Sigint::Ignored => libc::SIG_IGN,
    };
    let mut cmd = Command::new(XTASK);
    cmd.args(["run", "--example", "udp-echo"]).process_group(0).stdout(Stdio::null()).stderr(Stdio::piped());
    // SAFETY: signal(2) is async-signal-safe, as code between fork and exec must be; it
    // sets the child's own disposition, which exec keeps for SIG_DFL and SIG_IGN.
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGINT, action);
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("start xtask run");
    let (lines, heard) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    // The first run builds the example.
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut seen = Vec::new();
    let name = loop {
        match heard.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                if let Some(rest) = line.split_once("runs in network namespace ").map(|(_, r)| r) {
                    break rest.split_whitespace().next().unwrap().to_string();
                }
                seen.push(line);
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("xtask run never said which namespace it made:\n{}", seen.join("\n"));
            }
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pids = pids_in(&name);
        if !pids.is_empty() {
            return (child, name, pids);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the app never started in {name}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn pids_in(name: &str) -> Vec<u32> {
    let out = Command::new("ip").args(["netns", "pids", name]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|p| p.parse().ok()).collect()
}

fn signal(target: &str, sig: &str) {
    assert!(Command::new("kill").args(["-s", sig, "--", target]).status().unwrap().success());
}

/// Waits (bounded) for `child` to end, then checks the namespace and the app are gone.
fn assert_cleaned_up(mut child: Child, name: &str, app: &[u32], how: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            // SIGTERM first: its cleanup keeps a failing test from leaving the namespace.
            signal(&child.id().to_string(), "TERM");
            std::thread::sleep(Duration::from_secs(5));
            let _ = child.kill();
            let _ = child.wait();
            panic!("{how}: xtask run did not end within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!Path::new("/run/netns").join(name).exists(), "{how}: namespace {name} leaked");
    // The app may take a moment to be reaped once its parent is gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.iter().any(|pid| Path::new(&format!("/proc/{pid}")).exists()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for pid in app {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(state.is_empty() || state.contains(") Z "), "{how}: the app (pid {pid}) still runs: {state}");
    }
}

#[test]
fn an_interrupted_net_run_leaves_no_namespace() {
    if !is_root() {
        skip("an_interrupted_net_run_leaves_no_namespace: not root (network namespaces need it)");
        return;
    }
    // Ctrl-C: SIGINT to the whole process group of a terminal's foreground job.
    let (child, name, app) = start_run(Sigint::Default);
    signal(&format!("-{}", child.id()), "INT");
    assert_cleaned_up(child, &name, &app, "SIGINT to the process group");

    // A background job: SIGINT is ignored by xtask and the app alike, and stays so.
    let (mut child, name, app) = start_run(Sigint::Ignored);
    signal(&format!("-{}", child.id()), "INT");
    std::thread::sleep(Duration::from_secs(1));
    assert!(child.try_wait().unwrap().is_none(), "an ignored SIGINT ended xtask run");
    assert!(Path::new("/run/netns").join(&name).exists(), "an ignored SIGINT removed the namespace");
    // `kill PID`: SIGTERM to xtask alone; it must stop the app it left in the namespace.
    signal(&child.id().to_string(), "TERM");
    assert_cleaned_up(child, &name, &app, "SIGTERM to xtask");
}
