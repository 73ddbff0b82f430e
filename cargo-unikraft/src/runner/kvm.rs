//! Whether QEMU can use KVM on this host, found by booting a probe guest.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Why KVM cannot be used, or `None` when it can.
///
/// Opening /dev/kvm is not enough: on some hosts (a nested, paravirtualized KVM) vCPUs
/// start but the guest's first SSE access to memory ends in a KVM emulation failure, and
/// QEMU stops the VM without exiting. So this boots a tiny probe guest
/// (`kvm_probe.S`: long mode, SSE on, MXCSR loaded from memory) under KVM and trusts KVM
/// only if it reports success.
pub fn kvm_problem(qemu: &Path) -> Option<String> {
    let dev = Path::new("/dev/kvm");
    if !dev.exists() {
        return Some("/dev/kvm does not exist".into());
    }
    if fs::OpenOptions::new().read(true).write(true).open(dev).is_err() {
        return Some("/dev/kvm is not readable and writable by this user".into());
    }
    let probe = match kvm_probe_guest() {
        Ok(probe) => probe,
        Err(e) => return Some(format!("the KVM probe guest could not be built ({e:#})")),
    };
    match run_probe_guest(qemu, &probe, "kvm") {
        Ok(()) => None,
        Err(e) => Some(format!("{e:#}")),
    }
}

/// The probe guest's source; assembled on first use with the C toolchain Unikraft's
/// build needs anyway.
const KVM_PROBE_SOURCE: &str = include_str!("kvm_probe.S");

/// What the probe guest writes to isa-debug-exit; QEMU exits with `(value << 1) | 1`.
const KVM_PROBE_EXIT: i32 = (0x2a << 1) | 1;

/// Assembles the probe guest into `target/kvm-probe/probe.bin` (once per source change).
pub fn kvm_probe_guest() -> Result<PathBuf> {
    let dir = crate::sources::cache_dir()?.join("kvm-probe");
    let bin = dir.join("probe.bin");
    let stamp = dir.join("probe.S");
    if bin.is_file() && fs::read_to_string(&stamp).ok().as_deref() == Some(KVM_PROBE_SOURCE) {
        return Ok(bin);
    }
    fs::create_dir_all(&dir)?;
    // Unique names, then renames: parallel tests may probe at the same time.
    let tag = std::process::id();
    let (src, obj, out) =
        (dir.join(format!("probe-{tag}.S")), dir.join(format!("probe-{tag}.o")), dir.join(format!("probe-{tag}.bin")));
    fs::write(&src, KVM_PROBE_SOURCE)?;
    let steps: [(&str, Vec<&std::ffi::OsStr>); 2] = [
        ("cc", vec!["-c".as_ref(), src.as_os_str(), "-o".as_ref(), obj.as_os_str()]),
        (
            "ld",
            vec![
                "-m".as_ref(),
                "elf_x86_64".as_ref(),
                "-Ttext=0x100000".as_ref(),
                "--oformat=binary".as_ref(),
                "-o".as_ref(),
                out.as_os_str(),
                obj.as_os_str(),
            ],
        ),
    ];
    for (tool, args) in steps {
        let result = Command::new(tool).args(args).output().with_context(|| format!("run `{tool}`"))?;
        if !result.status.success() {
            bail!("`{tool}` failed: {}", String::from_utf8_lossy(&result.stderr).trim());
        }
    }
    fs::rename(&out, &bin)?;
    fs::rename(&src, &stamp)?;
    let _ = fs::remove_file(&obj);
    Ok(bin)
}

/// Boots the probe guest with `accel` (`kvm`; `tcg` in tests): `Ok` when it reports
/// success, else why not. A host whose KVM cannot run it stops the VM (QEMU stays up),
/// so this gives up after 10 s, or at once when QEMU reports a KVM error.
pub fn run_probe_guest(qemu: &Path, probe: &Path, accel: &str) -> Result<()> {
    let mut child = Command::new(qemu)
        .args(["-accel", accel, "-cpu", "max", "-nodefaults", "-no-user-config", "-display", "none"])
        .args(["-m", "16", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-kernel"])
        .arg(probe)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("QEMU could not be started for the KVM probe")?;
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().expect("piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut first_error: Option<String> = None;
    let verdict = loop {
        while let Ok(line) = lines.try_recv() {
            if first_error.is_none() && !line.trim().is_empty() {
                first_error = Some(line.trim().to_string());
            }
        }
        if let Some(status) = child.try_wait()? {
            break if status.code() == Some(KVM_PROBE_EXIT) {
                Ok(())
            } else {
                Err(anyhow::anyhow!(
                    "the KVM probe guest failed (QEMU {status}): {}",
                    first_error.as_deref().unwrap_or("no message")
                ))
            };
        }
        if first_error.as_deref().is_some_and(|l| l.contains("KVM internal error")) || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break Err(anyhow::anyhow!(
                "QEMU ({accel}) cannot run a guest that uses SSE: {}",
                first_error.as_deref().unwrap_or("the probe guest did not finish within 10 s")
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kvm_probe_guest_succeeds_under_tcg() {
        let Ok(qemu) = which::which("qemu-system-x86_64") else {
            eprintln!("SKIP: the_kvm_probe_guest_succeeds_under_tcg: qemu-system-x86_64 is not installed");
            return;
        };
        let probe = kvm_probe_guest().expect("assemble the probe guest");
        run_probe_guest(&qemu, &probe, "tcg").expect("the probe guest runs under TCG");
        match kvm_problem(&qemu) {
            None => eprintln!("note: KVM runs the probe guest on this host"),
            Some(why) => eprintln!("note: KVM is not usable here: {why}"),
        }
    }
}
