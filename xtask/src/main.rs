//! `cargo xtask`: build orchestration in Rust (matklad's xtask pattern).
//!
//! * `cargo xtask run [--backend unix] [--example hello] [-- boot args]`
//! * `cargo xtask doctor`
//! * `cargo xtask conformance --backend unix`
//! * `cargo xtask kraft-run [--example hello | --manifest-path P] [--target qemu/x86_64] [-- args]`
//! * `cargo xtask kraft-gen [--example hello | --manifest-path P] [--out DIR]`
//! * `cargo xtask fetch [--unikraft-src DIR --musl-src DIR --musl-tarball FILE]`
//! * `cargo xtask bench-unikraft`

mod bench;
mod doctor;
mod firecracker;
mod hosted_musl;
mod kraft;
pub mod netns;
mod peer;
mod report;
mod solo5;
mod sources;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use xshell::{cmd, Shell};

use netns::NetNs;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build, run and test unikernel apps")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Backend {
    Unix,
    /// The Unikraft app's Rust archive and shims, linked against the host's musl and run
    /// as a process (no Unikraft, no QEMU): see `hosted_musl`.
    HostedMusl,
    Unikraft,
    Solo5,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build an example and run it on a backend; exits with the app's exit status.
    Run {
        #[arg(long, value_enum, default_value = "unix")]
        backend: Backend,
        #[arg(long, default_value = "hello")]
        example: String,
        #[arg(long)]
        release: bool,
        /// Boot arguments for the app.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Build an app as a Unikraft image (Cargo drives Unikraft's make), boot it and exit
    /// with the app's exit code.
    KraftRun(kraft::KraftRunArgs),
    /// Build an app as a Solo5 unikernel and run it on the spt (or hvt) tender; exits
    /// with the app's exit code.
    Solo5Run(solo5::Solo5RunArgs),
    /// Write an app's Unikraft directory (Kraftfile, Makefile.uk, Config.uk, defconfigs)
    /// from its Cargo.toml, for `kraft build` (Unikraft's tooling drives cargo).
    KraftGen(kraft::KraftGenArgs),
    /// Provision the pinned Unikraft, lib-musl and musl tarball into the per-user cache
    /// (from upstream, or offline from local copies); verifies the tarball's SHA256.
    Fetch(sources::FetchArgs),
    /// Benchmarks of the Unikraft build path: image size against a C hello, and rebuild
    /// time after an app-only change against the cargo build alone (prints ratios).
    BenchUnikraft,
    /// Benchmark of the Unikraft runtime: the least guest memory in which `hello-std`
    /// (std, one spawned thread) boots and finishes.
    BenchRuntime,
    /// Benchmark of the Unikraft net path: UDP echo round trips per second through the
    /// guest, draining the driver per wake-up versus one packet per wake-up (needs root).
    BenchNet,
    /// List the tools each backend needs, found or missing, and how to install them.
    Doctor,
    /// Run the conformance app on a backend and check its report.
    Conformance {
        #[arg(long, value_enum, default_value = "unix")]
        backend: Backend,
        /// With `--backend solo5`: the tender.
        #[arg(long, default_value = "spt", value_parser = ["spt", "hvt"])]
        solo5_target: String,
    },
    /// Print where the provisioned Unikraft sources are, or fail (internal, for tests).
    #[command(hide = true)]
    Sources,
    /// The host side of network tests, run inside a namespace (internal).
    #[command(hide = true)]
    Peer {
        #[command(subcommand)]
        action: PeerAction,
    },
}

#[derive(Subcommand)]
enum PeerAction {
    Conformance,
    Udp {
        #[arg(long, default_value = netns::GUEST_IP)]
        guest: String,
        #[arg(long, default_value_t = 7)]
        port: u16,
        #[arg(long, default_value = "hello, unikernel")]
        message: String,
    },
    Http {
        #[arg(long, default_value = netns::GUEST_IP)]
        guest: String,
        #[arg(long, default_value_t = 80)]
        port: u16,
    },
    /// Keep a window of datagrams in flight to a UDP echo; print round trips completed.
    UdpFlood {
        #[arg(long, default_value = netns::GUEST_IP)]
        guest: String,
        #[arg(long, default_value_t = 7)]
        port: u16,
        #[arg(long, default_value_t = 32)]
        window: usize,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
}

/// Examples and whether they need a network device.
const EXAMPLES: &[(&str, bool)] =
    &[("hello", false), ("hello-std", false), ("udp-echo", true), ("http", true), ("conformance", true)];

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

/// `run` on a VM backend: the example through `cargo xtask <subcommand>` (kraft-run or
/// solo5-run). An example with a net device is built first, then run as root inside a
/// fresh network namespace whose TAP the guest is given.
fn run_vm(subcommand: &str, example: &str, needs_net: bool, args: &[String]) -> Result<u8> {
    let exe = std::env::current_exe()?;
    let exe = exe.to_str().context("exe path")?;
    if !needs_net {
        let status = Command::new(exe).args([subcommand, "--example", example, "--"]).args(args).status()?;
        return Ok(exit_code(status));
    }
    if !netns::is_root() {
        bail!(
            "`{example}` needs a network device: run as root (xtask then creates a network namespace with a \
             TAP for the guest), or use `cargo xtask {subcommand} --tap IFNAME` with a TAP you own"
        );
    }
    // Build outside the namespace (the build needs nothing from it), then run inside.
    let build =
        Command::new(exe).args([subcommand, "--example", example, "--tap", netns::TAP, "--no-boot"]).status()?;
    if !build.success() {
        return Ok(exit_code(build));
    }
    let ns = NetNs::create("ukrun")?;
    eprintln!(
        "xtask: {example} runs in network namespace {ns} on {tap} (host side {host}/24, guest {guest})",
        ns = ns.name,
        tap = netns::TAP,
        host = netns::HOST_IP,
        guest = netns::GUEST_IP
    );
    let status = ns
        .command(exe)
        .args([subcommand, "--example", example, "--tap", netns::TAP, "--"])
        .args(args)
        .status()
        .with_context(|| format!("start {subcommand} in the namespace"))?;
    drop(ns);
    Ok(exit_code(status))
}

fn require_unix(backend: Backend) -> Result<()> {
    match backend {
        Backend::Unix => Ok(()),
        Backend::Unikraft | Backend::HostedMusl | Backend::Solo5 => unreachable!("handled before"),
    }
}

/// Builds `package` for the unix backend and returns the binary's path.
fn build_unix(package: &str, release: bool) -> Result<PathBuf> {
    let sh = Shell::new()?;
    sh.change_dir(workspace_root());
    let profile_flag = release.then_some("--release");
    eprintln!("xtask: building {package} for unix");
    cmd!(sh, "cargo build --quiet -p {package} {profile_flag...}").run()?;
    let bin = workspace_root().join("target").join(if release { "release" } else { "debug" }).join(package);
    if !bin.exists() {
        bail!("build succeeded but {} is missing", bin.display());
    }
    Ok(bin)
}

fn real_main() -> Result<u8> {
    match Cli::parse().command {
        Cmd::Run { backend, example, release, args } => run(backend, &example, release, &args),
        Cmd::KraftRun(args) => kraft::kraft_run(&args),
        Cmd::KraftGen(args) => kraft::kraft_gen(&args),
        Cmd::Fetch(args) => sources::fetch(&args),
        Cmd::Solo5Run(args) => solo5::solo5_run(&args),
        Cmd::BenchUnikraft => bench::bench_unikraft(),
        Cmd::BenchRuntime => bench::bench_runtime(),
        Cmd::BenchNet => bench::bench_net(),
        Cmd::Sources => {
            let found = sources::provisioned()?;
            println!("unikraft={}", found.unikraft.display());
            println!("lib_musl={}", found.lib_musl.display());
            println!("musl_tarball={}", found.musl_tarball.display());
            Ok(0)
        }
        Cmd::Doctor => {
            doctor::report();
            Ok(0)
        }
        Cmd::Conformance { backend, solo5_target } => conformance(backend, &solo5_target),
        Cmd::Peer { action } => {
            match action {
                PeerAction::Conformance => peer::conformance(netns::HOST_IP, netns::GUEST_IP)?,
                PeerAction::Udp { guest, port, message } => peer::udp_probe(&guest, port, &message)?,
                PeerAction::Http { guest, port } => peer::http_get(&guest, port)?,
                PeerAction::UdpFlood { guest, port, window, seconds } => {
                    println!("round trips: {}", peer::udp_flood(&guest, port, window, seconds)?)
                }
            }
            Ok(0)
        }
    }
}

fn exit_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(sig)) => 128 + sig as u8,
        _ => 1,
    }
}

fn run(backend: Backend, example: &str, release: bool, args: &[String]) -> Result<u8> {
    let Some(&(_, needs_net)) = EXAMPLES.iter().find(|(name, _)| *name == example) else {
        let names: Vec<_> = EXAMPLES.iter().map(|(n, _)| *n).collect();
        bail!("unknown example `{example}`; examples: {}", names.join(", "));
    };
    match backend {
        Backend::Unikraft => return run_vm("kraft-run", example, needs_net, args),
        Backend::Solo5 => return run_vm("solo5-run", example, needs_net, args),
        _ => {}
    }
    if backend == Backend::HostedMusl {
        if needs_net {
            bail!("{example} needs a network device, which the hosted-musl harness does not have");
        }
        let app = kraft::resolve_app(&kraft::AppSelect { example: Some(example.to_string()), manifest_path: None })?;
        let exe = hosted_musl::build(&app)?;
        let status = Command::new(&exe).args(args).status().context("start the hosted-musl executable")?;
        return Ok(exit_code(status));
    }
    require_unix(backend)?;
    let bin = build_unix(example, release)?;
    let status = if needs_net && std::env::var_os("RT_UNIX_TAP").is_none() {
        if !netns::is_root() {
            bail!(
                "`{example}` needs a network device: run as root (xtask then creates a network \
                 namespace with a TAP for it), or create a persistent TAP you own \
                 (`sudo ip tuntap add dev tap0 mode tap user $USER`) and set RT_UNIX_TAP=tap0"
            );
        }
        let ns = NetNs::create("ukrun")?;
        eprintln!(
            "xtask: {example} runs in network namespace {ns} on {tap} (host side {host}/24, guest {guest});\n\
             xtask: reach it with e.g. `sudo ip netns exec {ns} nc -u {guest} 7` or `sudo ip netns exec {ns} curl http://{guest}/`",
            ns = ns.name,
            tap = netns::TAP,
            host = netns::HOST_IP,
            guest = netns::GUEST_IP
        );
        let status = ns
            .command("env")
            .arg(format!("RT_UNIX_TAP={}", netns::TAP))
            .arg(&bin)
            .args(args)
            .status()
            .context("start the app")?;
        drop(ns);
        status
    } else {
        Command::new(&bin).args(args).status().context("start the app")?
    };
    Ok(exit_code(status))
}

fn conformance(backend: Backend, solo5_target: &str) -> Result<u8> {
    let mut vm_guest = None;
    let (label, runner): (&str, Box<AppRunner>) = match backend {
        Backend::Unix => {
            let bin = build_unix("conformance", false)?;
            ("unix", Box::new(move |args: &[&str]| run_captured(Command::new(&bin).args(args), CONFORMANCE_TIMEOUT)))
        }
        Backend::HostedMusl => {
            let app = conformance_app()?;
            let exe = hosted_musl::build(&app)?;
            (
                "hosted-musl",
                Box::new(move |args: &[&str]| run_captured(Command::new(&exe).args(args), CONFORMANCE_TIMEOUT)),
            )
        }
        Backend::Unikraft => {
            let app = conformance_app()?;
            let sources = sources::provisioned()?;
            let image = kraft::build_image(&app, "qemu/x86_64", &sources)?;
            let qemu = which::which("qemu-system-x86_64")
                .context("qemu-system-x86_64 is not installed (Debian: apt-get install qemu-system-x86)")?;
            let kvm = match kraft::kvm_problem(&qemu) {
                None => true,
                Some(why) => {
                    eprintln!("xtask: using TCG (software emulation): {why}");
                    false
                }
            };
            let memory = app.spec.memory_mib;
            vm_guest =
                Some(ConformanceGuest::Unikraft { qemu: qemu.clone(), image: image.clone(), memory_mib: memory, kvm });
            let runner = move |args: &[&str]| {
                let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
                let (transcript, status) = run_captured(
                    &mut kraft::qemu_command(&qemu, &image, memory, kvm, &args),
                    UNIKRAFT_CONFORMANCE_TIMEOUT,
                )?;
                // QEMU's status is the guest's code * 2 + 1 (see kraft::decode_qemu_status).
                let code = status.and_then(|s| match kraft::decode_qemu_status(s) {
                    kraft::GuestExit::App(code) => Some(i32::from(code)),
                    kraft::GuestExit::NotReported => None,
                });
                Ok((transcript, code))
            };
            ("unikraft-qemu", Box::new(runner))
        }
        Backend::Solo5 => {
            // As root, net on a TAP in the namespace and block on the disk image.
            let tree = solo5::solo5_tree()?;
            let app = conformance_app()?;
            let tender = tree.join(format!("tenders/{solo5_target}/solo5-{solo5_target}"));
            let memory = app.spec.memory_mib;
            // The main run gets the net device when a namespace can give it a TAP; the
            // exit runs never need one.
            let root = netns::is_root();
            let main_image = solo5::build(&app, solo5_target, &tree, root)?;
            let image = if root { solo5::build(&app, solo5_target, &tree, false)? } else { main_image.clone() };
            vm_guest = Some(ConformanceGuest::Solo5 { tender: tender.clone(), image: main_image, memory_mib: memory });
            let runner = move |args: &[&str]| {
                let mut cmd = Command::new(&tender);
                cmd.arg(format!("--mem={memory}")).arg(&image).args(args);
                run_captured(&mut cmd, CONFORMANCE_TIMEOUT)
            };
            (if solo5_target == "hvt" { "solo5-hvt" } else { "solo5-spt" }, Box::new(runner))
        }
    };

    let main_guest = match backend {
        Backend::Unix => Some(ConformanceGuest::Unix(build_unix("conformance", false)?)),
        Backend::Unikraft | Backend::Solo5 => vm_guest.take(),
        _ => None,
    };
    let (transcript, mut host_lines, status) = if let Some(guest) = &main_guest {
        conformance_main(guest, label)?
    } else {
        // Devices are not wired on these backends yet: the app reports the net and block
        // cases as SKIP.
        let backend_arg = format!("--backend={label}");
        let (transcript, status) = runner(&["--net=false", "--block=false", &backend_arg])?;
        (transcript, Vec::new(), status)
    };
    host_lines.extend(exit_status_cases(&*runner)?);

    for line in &host_lines {
        println!("{line}");
    }
    let report = report::parse(&transcript);
    let mut failures: Vec<String> = host_lines.iter().filter(|l| l.starts_with("FAIL")).cloned().collect();
    match &report {
        Ok(r) => failures.extend(r.failed().map(|c| format!("FAIL {} {}", c.case, c.detail))),
        Err(e) => failures.push(format!("malformed report: {e:#}")),
    }
    if let Ok(r) = &report {
        if r.backend != label {
            failures.push(format!("the report is labelled backend={}, expected {label}", r.backend));
        }
    }
    if status != Some(0) && report.as_ref().is_ok_and(|r| r.failed().count() == 0) {
        failures.push(format!("the app exited with {status:?} although no case failed"));
    }
    if failures.is_empty() {
        println!("conformance ({label}): all cases passed");
        Ok(0)
    } else {
        println!("conformance ({label}): {} problem(s):", failures.len());
        for f in &failures {
            println!("  {f}");
        }
        Ok(1)
    }
}

/// Runs the conformance app once with these boot arguments: its console transcript and
/// exit code (`None`: killed, or no code reported).
type AppRunner = dyn Fn(&[&str]) -> Result<(String, Option<i32>)>;

/// How long one conformance run may take before it is killed.
const CONFORMANCE_TIMEOUT: Duration = Duration::from_secs(120);
/// Under TCG a boot is much slower than a process.
const UNIKRAFT_CONFORMANCE_TIMEOUT: Duration = Duration::from_secs(300);

fn conformance_app() -> Result<kraft::App> {
    kraft::resolve_app(&kraft::AppSelect { example: Some("conformance".into()), manifest_path: None })
}

/// The two ways of ending that end the app: each run again on its own, status checked.
fn exit_status_cases(runner: &AppRunner) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    let (out, status) = runner(&["--std-exit=panic"])?;
    let printed = out.contains("deliberate panic (--std-exit=panic)");
    lines.push(match (status, printed) {
        (Some(101), true) => "PASS std.panic-exit a panic printed its message and exited with 101".to_string(),
        (status, printed) => {
            format!("FAIL std.panic-exit exit status {status:?} (want 101), message printed: {printed}")
        }
    });
    let (_, status) = runner(&["--std-exit=3"])?;
    lines.push(match status {
        Some(3) => "PASS std.process-exit std::process::exit(3) exited with 3".to_string(),
        status => format!("FAIL std.process-exit exit status {status:?} (want 3)"),
    });
    Ok(lines)
}

/// Runs `cmd`, echoing and collecting its stdout; kills it after `timeout`. Returns the
/// transcript and the exit code (`None` if killed by a signal or the timeout).
fn run_captured(cmd: &mut Command, timeout: Duration) -> Result<(String, Option<i32>)> {
    let mut child =
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().with_context(|| format!("start {cmd:?}"))?;
    // Both streams, interleaved by arrival: a hosted app prints its panic on stderr.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    fn forward(stream: impl std::io::Read + Send + 'static, tx: std::sync::mpsc::Sender<String>) {
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    forward(child.stdout.take().expect("piped"), tx.clone());
    forward(child.stderr.take().expect("piped"), tx);
    let deadline = Instant::now() + timeout;
    let mut transcript = String::new();
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                println!("{line}");
                transcript.push_str(&line);
                transcript.push('\n');
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                transcript.push_str(&format!("FAIL host.timeout killed after {} s\n", timeout.as_secs()));
                return Ok((transcript, None));
            }
        }
    }
    Ok((transcript, child.wait()?.code()))
}

/// How the conformance app is started for its main run.
enum ConformanceGuest {
    /// The unix binary (net on `RT_UNIX_TAP`, block on `RT_UNIX_BLOCK`).
    Unix(PathBuf),
    /// A Unikraft image under QEMU (net on a virtio-net TAP, block on a virtio-blk image).
    Unikraft { qemu: PathBuf, image: PathBuf, memory_mib: u32, kvm: bool },
    /// A Solo5 unikernel on the spt tender (as root: net on a TAP and block on the image,
    /// which its manifest declares; otherwise neither).
    Solo5 { tender: PathBuf, image: PathBuf, memory_mib: u32 },
}

/// The main run: with root, in a network namespace with the host peer; on unix also with
/// a disk image whose contents are checked afterwards.
fn conformance_main(guest: &ConformanceGuest, label: &str) -> Result<(String, Vec<String>, Option<i32>)> {
    let dir = std::env::temp_dir().join(format!("xtask-conformance-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let _cleanup = RemoveDir(dir.clone());
    let disk = dir.join("disk.img");
    std::fs::write(&disk, vec![0u8; 4 << 20])?;

    let root = netns::is_root();
    let ns = if root { Some(NetNs::create("ukconf")?) } else { None };
    let has_block = match guest {
        ConformanceGuest::Solo5 { .. } => root,
        _ => true,
    };
    let app_args = vec![
        format!("--ipv4={}/24", netns::GUEST_IP),
        format!("--host={}", netns::HOST_IP),
        format!("--backend={label}"),
        format!("--net={root}"),
        format!("--block={has_block}"),
    ];
    let mut app = match guest {
        ConformanceGuest::Unix(bin) => {
            let mut c = match &ns {
                Some(ns) => {
                    let mut c = ns.command("env");
                    c.arg(format!("RT_UNIX_TAP={}", netns::TAP));
                    c
                }
                None => Command::new("env"),
            };
            c.arg(format!("RT_UNIX_BLOCK={}", disk.display())).arg(bin).args(&app_args);
            c
        }
        ConformanceGuest::Solo5 { tender, image, memory_mib } => {
            let mut c = Command::new(tender);
            c.arg(format!("--mem={memory_mib}"));
            if ns.is_some() {
                // The device image declares both devices; both must be attached.
                c.arg(format!("--net:service0={}", netns::TAP));
                c.arg(format!("--block:storage0={}", disk.display()));
            }
            c.arg(image).args(&app_args);
            match &ns {
                Some(ns) => ns.wrap(&c),
                None => c,
            }
        }
        ConformanceGuest::Unikraft { qemu, image, memory_mib, kvm } => {
            let devices =
                kraft::QemuDevices { tap: ns.as_ref().map(|_| netns::TAP.to_string()), disk: Some(disk.clone()) };
            let qemu = kraft::qemu_command_with(qemu, image, *memory_mib, *kvm, &devices, &app_args);
            match &ns {
                Some(ns) => ns.wrap(&qemu),
                None => qemu,
            }
        }
    };
    app.stdout(Stdio::piped());
    let mut child = app.spawn().context("start the conformance app")?;
    let stdout = child.stdout.take().expect("piped");

    // Read the console on a thread so the deadline below can kill a stuck app.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut transcript = String::new();
    let mut host_lines: Vec<String> = Vec::new();
    let mut peer: Option<std::thread::JoinHandle<Result<std::process::Output>>> = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                println!("{line}");
                if line.starts_with("READY net") {
                    if let Some(ns) = &ns {
                        let mut cmd = ns.command(std::env::current_exe()?.to_str().context("exe path")?);
                        cmd.args(["peer", "conformance"]);
                        peer = Some(std::thread::spawn(move || Ok(cmd.output()?)));
                    }
                }
                transcript.push_str(&line);
                transcript.push('\n');
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                host_lines.push("FAIL host.timeout the app did not finish within 120 s and was killed".into());
                break;
            }
        }
    }
    let status = child.wait()?;

    if let Some(peer) = peer {
        let out = peer.join().expect("peer thread")?;
        host_lines.extend(String::from_utf8_lossy(&out.stdout).lines().map(String::from));
        if !out.status.success() {
            host_lines
                .push(format!("FAIL host.peer {}", String::from_utf8_lossy(&out.stderr).trim().replace('\n', " ")));
        }
    }
    if ns.is_none() {
        host_lines.push("SKIP host.net not root: the runner needs root to create a network namespace and TAP".into());
    }
    if has_block {
        host_lines.push(check_disk(&disk)?);
    }
    drop(ns);

    let code = match guest {
        ConformanceGuest::Unix(_) | ConformanceGuest::Solo5 { .. } => status.code(),
        // QEMU's status is the guest's code * 2 + 1 (see kraft::decode_qemu_status).
        ConformanceGuest::Unikraft { .. } => status.code().and_then(|s| match kraft::decode_qemu_status(s) {
            kraft::GuestExit::App(code) => Some(i32::from(code)),
            kraft::GuestExit::NotReported => None,
        }),
    };
    Ok((transcript, host_lines, code))
}

/// The guest wrote sectors 1..=8 with a known pattern; the image must hold it.
fn check_disk(disk: &Path) -> Result<String> {
    let image = std::fs::read(disk)?;
    let bad = (1..=8usize)
        .flat_map(|k| (0..512).map(move |i| (k, i)))
        .find(|&(k, i)| image[512 * k + i] != (k as u8).wrapping_mul(31).wrapping_add(i as u8));
    Ok(match bad {
        None => "PASS host.block-image sectors 1..=8 of the disk image hold what the guest wrote".into(),
        Some((k, i)) => format!("FAIL host.block-image byte {i} of sector {k} differs from what the guest wrote"),
    })
}

struct RemoveDir(PathBuf);
impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
