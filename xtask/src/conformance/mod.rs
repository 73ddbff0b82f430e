//! `cargo xtask conformance --backend B`: the conformance app on one backend, its report
//! checked, plus the host's own checks (the peer's net cases, the disk image, the exit
//! statuses of a panic and of `process::exit`), and the `std.net` section, which a second
//! guest (`conformance/std-net`) reports against the host peer and the runner merges into
//! the report. Every backend runs through cargo-unikraft's [`Guest`] seam.

use std::path::Path;
use std::time::Duration;

mod host_checks;
mod std_net;

use host_checks::{check_disk, check_encrypted_partition, heap_plot_cases};
use std_net::std_net_section;

use crate::netns::{self, NetNs};
use anyhow::{Context, Result};
use cargo_unikraft::heap_plot;
use cargo_unikraft::pipeline::{self, Devices};
use cargo_unikraft::runner::{console, Accel, Guest, Process};
use cargo_unikraft::target::{Target, Tender};

use conformance_protocol::report::{Line, Status};

use crate::{examples, report};
use cargo_unikraft::target::Platform;

/// How long one run of a process backend may take before it is killed.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(120);
/// Under TCG a boot is much slower than a process.
const VM_TIMEOUT: Duration = Duration::from_secs(300);

/// The guests of a conformance run: the main one (with the devices this host can give),
/// the one for the exit-status runs (no devices), and the `std.net` section's.
struct Guests {
    label: String,
    main: Box<dyn Guest>,
    exits: Box<dyn Guest>,
    std_net: StdNet,
    timeout: Duration,
    /// Whether the main run gets a net device (root: a namespace with a TAP).
    net: bool,
    /// Whether the main run gets a block device.
    block: bool,
}

/// The `std.net` section's guest (`conformance/std-net`, std sockets), or why the section
/// is skipped.
enum StdNet {
    Run(Box<dyn Guest>),
    Skip(&'static str),
}

/// The `std.net` section's package.
const STD_NET_APP: &str = "conformance-std-net";
const NOT_ROOT: &str = "not root: the section runs in a network namespace the runner creates, with the host peer";

fn guests(backend: Platform, solo5_target: &str, disk: &Path, root: bool) -> Result<Guests> {
    let tap = root.then(|| netns::TAP.to_string());
    Ok(match backend {
        Platform::Unix => {
            let bin = crate::run::build_unix("conformance", false)?;
            // std's sockets are the host's: the guest runs inside the namespace, no TAP.
            let std_net = if root {
                StdNet::Run(Box::new(Process::new(crate::run::build_unix(STD_NET_APP, false)?)))
            } else {
                StdNet::Skip(NOT_ROOT)
            };
            let mut main = Process::new(&bin);
            if let Some(tap) = &tap {
                main.env.push(("RT_UNIX_TAP".into(), tap.clone()));
            }
            main.env.push(("RT_UNIX_BLOCK".into(), disk.display().to_string()));
            Guests {
                label: "unix".into(),
                main: Box::new(main),
                exits: Box::new(Process::new(&bin)),
                std_net,
                timeout: PROCESS_TIMEOUT,
                net: root,
                block: true,
            }
        }
        Platform::HostedMusl => {
            let app = examples::app("conformance")?;
            let exe = pipeline::build(&app, Target::HostedMusl, &Devices::default())?;
            // No devices in this harness: the app reports the net and block cases as SKIP.
            Guests {
                label: "hosted-musl".into(),
                main: Box::new(Process::new(&exe)),
                exits: Box::new(Process::new(&exe)),
                std_net: StdNet::Skip(
                    "the hosted-musl harness has no devices: no net device for rt-unikraft's socket driver",
                ),
                timeout: PROCESS_TIMEOUT,
                net: false,
                block: false,
            }
        }
        Platform::Unikraft => {
            let app = examples::app("conformance")?;
            let target = Target::UnikraftQemu;
            let image = pipeline::build(&app, target, &Devices::default())?;
            let memory = app.spec.memory_mib;
            let devices = Devices { tap: tap.clone(), disk: Some(disk.to_path_buf()), ..Devices::default() };
            // A second image with `sockets = true`: rt-unikraft drives one net device at a
            // time, and the main image gives it to shared-core's Stack.
            let std_net = if root {
                let app = examples::app(STD_NET_APP)?;
                let image = pipeline::build(&app, target, &Devices::default())?;
                let devices = Devices { tap, ..Devices::default() };
                StdNet::Run(pipeline::guest(&app, target, &image, app.spec.memory_mib, Accel::Auto, &devices)?)
            } else {
                StdNet::Skip(NOT_ROOT)
            };
            Guests {
                label: "unikraft-qemu".into(),
                main: pipeline::guest(&app, target, &image, memory, Accel::Auto, &devices)?,
                exits: pipeline::guest(&app, target, &image, memory, Accel::Auto, &Devices::default())?,
                std_net,
                timeout: VM_TIMEOUT,
                net: root,
                block: true,
            }
        }
        Platform::Solo5 => {
            let tender = if solo5_target == "hvt" { Tender::Hvt } else { Tender::Spt };
            let target = Target::Solo5(tender);
            let app = examples::app("conformance")?;
            let memory = app.spec.memory_mib;
            // A Solo5 tender refuses an image whose manifest declares a device it was not
            // given, so the devices come only with root (which gives the TAP).
            let devices = if root {
                Devices { tap, disk: Some(disk.to_path_buf()), ..Devices::default() }
            } else {
                Devices::default()
            };
            let main_image = pipeline::build(&app, target, &devices)?;
            let exit_image = pipeline::build(&app, target, &Devices::default())?;
            Guests {
                label: format!("solo5-{}", tender.name()),
                main: pipeline::guest(&app, target, &main_image, memory, Accel::Auto, &devices)?,
                exits: pipeline::guest(&app, target, &exit_image, memory, Accel::Auto, &Devices::default())?,
                std_net: StdNet::Skip("Solo5 has no std (the app is a no_std staticlib): no std::net"),
                timeout: PROCESS_TIMEOUT,
                net: root,
                block: root,
            }
        }
    })
}

/// With `--heap-plot`: milliseconds between the main run's heap samples.
const HEAP_SAMPLE_MS: u64 = 25;

pub fn conformance(backend: Platform, solo5_target: &str, heap_plot: Option<&Path>) -> Result<u8> {
    let (_scratch, disk) = scratch_disk()?;
    let root = netns::is_root();
    let guests = guests(backend, solo5_target, &disk, root)?;
    let label = guests.label.as_str();

    let sample_ms = heap_plot.map(|_| HEAP_SAMPLE_MS);
    let (transcript, mut host_lines, status) = main_run(&guests, &disk, backend == Platform::HostedMusl, sample_ms)?;
    let report = report::parse(&transcript);
    // The std.net section, merged into the report: its case lines, then the END line
    // counting the main guest's cases and these.
    let section = std_net_section(&guests, &mut host_lines)?;
    match &report {
        Ok(r) => {
            let mut counts = r.counts();
            section.iter().for_each(|c| counts.add(c.status));
            println!("{}", Line::End(counts));
        }
        Err(_) => println!("# no END line: the main guest's report is malformed (below)"),
    }
    if let Some(path) = heap_plot {
        host_lines.extend(heap_plot_cases(&transcript, path, label));
    }
    host_lines.extend(exit_status_cases(&*guests.exits, guests.timeout)?);

    for line in &host_lines {
        println!("{line}");
    }
    let mut failures: Vec<String> = Vec::new();
    match &report {
        Ok(r) => failures.extend(r.failed().map(|c| format!("FAIL {} {}", c.case, c.detail))),
        Err(e) => failures.push(format!("malformed report: {e:#}")),
    }
    let section_failed = section.iter().filter(|c| c.status == Status::Fail);
    failures.extend(section_failed.map(|c| format!("FAIL {} {}", c.case, c.detail)));
    failures.extend(host_lines.iter().filter(|l| l.starts_with("FAIL")).cloned());
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

/// The main run: with root, in a network namespace with the host peer (started when the
/// app says `READY net`); with a block device, the disk image is checked afterwards.
fn main_run(
    guests: &Guests,
    disk: &Path,
    no_devices: bool,
    heap_sample_ms: Option<u64>,
) -> Result<(String, Vec<String>, Option<u8>)> {
    let ns = if guests.net { Some(NetNs::create("ukconf")?) } else { None };
    let label = &guests.label;
    let mut app_args = vec![
        format!("--ipv4={}/24", netns::GUEST_IP),
        format!("--host={}", netns::HOST_IP),
        format!("--backend={label}"),
        format!("--net={}", guests.net),
        format!("--block={}", guests.block),
    ];
    if let Some(ms) = heap_sample_ms {
        app_args.push(format!("{}={ms}", heap_plot::SAMPLE_ARG));
    }
    let command = guests.main.command(&app_args);
    let command = match &ns {
        Some(ns) => ns.wrap(&command),
        None => command,
    };
    let mut peer: Option<std::thread::JoinHandle<Result<std::process::Output>>> = None;
    let mut peer_error = None;
    let finished = console::run(&*guests.main, command, console::Limits::total(guests.timeout), |line| {
        match Line::parse(line) {
            // The runner's END line, after the std.net section, counts both.
            Ok(Some(Line::End(_))) => println!("# the main guest's {line} (the std.net section follows)"),
            _ => println!("{line}"),
        }
        let net_ready = console_protocol::ready::Ready::parse(line)
            .is_some_and(|r| r.what == conformance_protocol::net::READY_WHAT);
        if net_ready && peer.is_none() {
            if let Some(ns) = &ns {
                match std::env::current_exe().context("the xtask executable") {
                    Ok(exe) => {
                        let mut cmd = ns.command(&exe.to_string_lossy());
                        cmd.args(["peer", "conformance"]);
                        peer = Some(std::thread::spawn(move || Ok(cmd.output()?)));
                    }
                    Err(e) => peer_error = Some(e),
                }
            }
        }
    })?;
    if let Some(e) = peer_error {
        return Err(e);
    }
    let mut host_lines = Vec::new();
    if finished.timed_out {
        host_lines.push(format!(
            "FAIL host.timeout the app did not finish within {} s and was killed",
            guests.timeout.as_secs()
        ));
    }
    if let Some(peer) = peer {
        let out = peer.join().expect("peer thread")?;
        host_lines.extend(String::from_utf8_lossy(&out.stdout).lines().map(String::from));
        if !out.status.success() {
            host_lines
                .push(format!("FAIL host.peer {}", String::from_utf8_lossy(&out.stderr).trim().replace('\n', " ")));
        }
    }
    if !no_devices && ns.is_none() {
        host_lines.push("SKIP host.net not root: the runner needs root to create a network namespace and TAP".into());
    }
    if guests.block {
        host_lines.push(check_disk(disk)?);
        host_lines.push(check_encrypted_partition(disk)?);
    }
    Ok((finished.transcript, host_lines, finished.exit.code()))
}

/// The two ways of ending that end the app: each run again on its own, status checked.
fn exit_status_cases(guest: &dyn Guest, timeout: Duration) -> Result<Vec<String>> {
    let run = |args: &[&str]| -> Result<(String, Option<u8>)> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let finished =
            console::run(guest, guest.command(&args), console::Limits::total(timeout), |line| println!("{line}"))?;
        Ok((finished.transcript, finished.exit.code()))
    };
    let mut lines = Vec::new();
    let (out, status) = run(&["--std-exit=panic"])?;
    let printed = out.contains("deliberate panic (--std-exit=panic)");
    lines.push(match (status, printed) {
        (Some(101), true) => "PASS std.panic-exit a panic printed its message and exited with 101".to_string(),
        (status, printed) => {
            format!("FAIL std.panic-exit exit status {status:?} (want 101), message printed: {printed}")
        }
    });
    let (_, status) = run(&["--std-exit=3"])?;
    lines.push(match status {
        Some(3) => "PASS std.process-exit std::process::exit(3) exited with 3".to_string(),
        status => format!("FAIL std.process-exit exit status {status:?} (want 3)"),
    });
    Ok(lines)
}

/// The guest's 4 MiB disk image, in a fresh private directory (mode 0700, a random name
/// created exclusively) that is removed when the returned value drops. The runner runs as
/// root, so a predictable path in /tmp would let another user plant a symlink it writes
/// through.
fn scratch_disk() -> Result<(tempfile::TempDir, std::path::PathBuf)> {
    let dir = tempfile::Builder::new()
        .prefix("xtask-conformance-")
        .tempdir()
        .context("create a private scratch directory for the disk image")?;
    let disk = dir.path().join("disk.img");
    std::fs::File::create_new(&disk)
        .and_then(|f| f.set_len(4 << 20))
        .with_context(|| format!("create {}", disk.display()))?;
    Ok((dir, disk))
}

#[cfg(test)]
mod tests {
    use super::scratch_disk;

    /// The runner runs as root: a directory or symlink another user planted at a
    /// predictable path (the old `/tmp/xtask-conformance-<pid>/disk.img`) must not be
    /// followed, and must be left as it was.
    #[test]
    fn the_disk_image_is_not_written_through_a_planted_path() {
        let planted = std::env::temp_dir().join(format!("xtask-conformance-{}", std::process::id()));
        let victim_dir = tempfile::tempdir().unwrap();
        let victim = victim_dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::fs::create_dir_all(&planted).unwrap();
        let link = planted.join("disk.img");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&victim, &link).unwrap();

        let result = scratch_disk();
        let victim_after = std::fs::read(&victim).unwrap();
        let link_after = std::fs::read_link(&link);
        let _ = std::fs::remove_dir_all(&planted);

        let (scratch, disk) = result.unwrap();
        assert!(
            victim_after == b"precious",
            "the disk image was written through the planted symlink ({} bytes now)",
            victim_after.len()
        );
        assert_eq!(link_after.ok().as_deref(), Some(victim.as_path()), "the planted symlink was touched");
        assert!(!disk.starts_with(&planted), "{} is under the predictable path", disk.display());
        assert_eq!(std::fs::metadata(&disk).unwrap().len(), 4 << 20);
        drop(scratch);
        assert!(!disk.exists(), "the scratch directory is removed on drop");
    }
}
