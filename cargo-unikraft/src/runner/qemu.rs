//! QEMU: the command line for an image and its devices, and how QEMU's exit status maps
//! to the app's exit code.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use anyhow::{Context, Result};

use super::kvm::kvm_problem;
use super::{Accel, Guest, GuestExit};

/// Quotes one argument for Unikraft's command-line splitter.
fn quote_arg(arg: &str) -> String {
    if !arg.is_empty() && !arg.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '\\') {
        return arg.to_string();
    }
    format!("\"{}\"", arg.replace('\\', "\\\\").replace('"', "\\\""))
}

/// QEMU exits with `(value << 1) | 1` for a value written to `isa-debug-exit`; any other
/// status is QEMU's own (an error, a guest that halted or crashed).
pub fn decode_qemu_status(status: i32) -> GuestExit {
    if status & 1 == 1 {
        GuestExit::App(((status - 1) / 2) as u8)
    } else {
        GuestExit::NotReported(format!(
            "the unikernel stopped without reporting an exit code (QEMU exit status {status}): \
             it crashed or halted outside the app; see the console above"
        ))
    }
}

/// Devices a QEMU boot gets besides the console and the exit port.
#[derive(Debug, Clone, Default)]
pub struct QemuDevices {
    /// A virtio-net device on this TAP interface.
    pub tap: Option<String>,
    /// A virtio-blk device backed by this raw image.
    pub disk: Option<PathBuf>,
}

impl QemuDevices {
    fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(disk) = &self.disk {
            args.push("-drive".to_string());
            args.push(format!("file={},if=virtio,format=raw", disk.display()));
        }
        if let Some(tap) = &self.tap {
            args.push("-netdev".to_string());
            args.push(format!("tap,id=n0,ifname={tap},script=no,downscript=no"));
            args.push("-device".to_string());
            // No segmentation offloads towards the guest: Unikraft 0.16's virtio-net
            // negotiates legacy GSO but posts MTU-sized receive buffers (no mergeable
            // buffers), so a 64 KiB TSO segment from the host could not be delivered and
            // TCP would crawl on retransmissions. Checksum offload stays (rt-unikraft
            // completes partial checksums).
            //
            // event_idx=off: Unikraft 0.16.3's virtio ring gets VIRTIO_F_EVENT_IDX wrong
            // under load (its notify check assumes one buffer per kick, and a flood of
            // datagrams left the guest waiting for a receive interrupt that never came);
            // the plain NO_NOTIFY / NO_INTERRUPT flags it falls back to are exact.
            args.push(
                "virtio-net-pci,netdev=n0,gso=off,guest_tso4=off,guest_tso6=off,guest_ecn=off,guest_ufo=off,\
                 event_idx=off"
                    .to_string(),
            );
        }
        args
    }
}

pub fn qemu_command(qemu: &Path, image: &Path, memory_mib: u32, kvm: bool, args: &[String]) -> Command {
    qemu_command_with(qemu, image, memory_mib, kvm, &QemuDevices::default(), args)
}

pub fn qemu_command_with(
    qemu: &Path,
    image: &Path,
    memory_mib: u32,
    kvm: bool,
    devices: &QemuDevices,
    args: &[String],
) -> Command {
    let mut cmd = Command::new(qemu);
    cmd.args(["-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot"])
        .args(["-accel", if kvm { "kvm" } else { "tcg" }, "-cpu", "max"])
        .arg("-m")
        .arg(format!("{memory_mib}M"))
        .arg("-kernel")
        .arg(image)
        // QEMU passes the kernel's path as the first word, which Unikraft makes argv[0].
        .arg("-append")
        .arg(args.iter().map(|a| quote_arg(a)).collect::<Vec<_>>().join(" "))
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .args(devices.args())
        .stdin(Stdio::null());
    cmd
}

/// A Unikraft image under QEMU.
#[derive(Debug, Clone)]
pub struct Qemu {
    pub qemu: PathBuf,
    pub image: PathBuf,
    pub memory_mib: u32,
    pub kvm: bool,
    pub devices: QemuDevices,
}

impl Qemu {
    /// Finds QEMU and picks the accelerator (`Auto`: KVM when a probe guest runs under
    /// it, else TCG, saying why).
    pub fn new(image: &Path, memory_mib: u32, accel: Accel, devices: QemuDevices) -> Result<Qemu> {
        let qemu = which::which("qemu-system-x86_64")
            .context("qemu-system-x86_64 is not installed (Debian: apt-get install qemu-system-x86)")?;
        let kvm = match accel {
            Accel::Tcg => false,
            Accel::Kvm => true,
            Accel::Auto => match kvm_problem(&qemu) {
                None => true,
                Some(why) => {
                    eprintln!("cargo-unikraft: using TCG (software emulation): {why}");
                    false
                }
            },
        };
        Ok(Qemu { qemu, image: image.to_path_buf(), memory_mib, kvm, devices })
    }
}

impl Guest for Qemu {
    fn command(&self, args: &[String]) -> Command {
        qemu_command_with(&self.qemu, &self.image, self.memory_mib, self.kvm, &self.devices, args)
    }

    fn exit(&self, status: ExitStatus) -> GuestExit {
        match status.code() {
            Some(code) => decode_qemu_status(code),
            None => GuestExit::NotReported(format!("QEMU was killed ({status})")),
        }
    }

    fn describe(&self) -> String {
        format!("QEMU ({})", if self.kvm { "KVM" } else { "TCG" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_decode() {
        assert_eq!(decode_qemu_status(1), GuestExit::App(0));
        assert_eq!(decode_qemu_status(7), GuestExit::App(3));
        assert_eq!(decode_qemu_status(255), GuestExit::App(127));
        assert!(matches!(decode_qemu_status(0), GuestExit::NotReported(_)));
    }

    #[test]
    fn arguments_with_spaces_are_quoted() {
        assert_eq!(quote_arg("a"), "a");
        assert_eq!(quote_arg("a b"), "\"a b\"");
        assert_eq!(quote_arg(""), "\"\"");
        assert_eq!(quote_arg("say \"hi\""), "\"say \\\"hi\\\"\"");
    }
}
