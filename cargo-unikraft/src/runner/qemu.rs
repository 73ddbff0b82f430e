//! QEMU: the command line for an image and its devices, and how QEMU's exit status maps
//! to the app's exit code.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use anyhow::{Context, Result};

use super::cmdline::kernel_command_line;
use super::kvm::kvm_problem;
use super::{Accel, Guest, GuestExit};

/// Quotes one argument for Unikraft's command-line splitter.
/// The port of the `isa-debug-exit` device (rt-unikraft/glue/main.c's
/// `RT_UNIKRAFT_EXIT_PORT`).
pub const EXIT_PORT: u16 = 0xf4;
/// Statuses below this travel exactly through the port; the others are also printed on
/// the console (glue/main.c's `RT_UNIKRAFT_EXIT_EXACT_MAX`).
pub const EXIT_EXACT_MAX: u8 = 126;
/// The console line that carries a status of [`EXIT_EXACT_MAX`] or more.
const EXIT_STATUS_LINE: &str = "rt-unikraft: exit status ";

/// The app's exit from QEMU's exit status and the console. The glue writes
/// `min(status, EXIT_EXACT_MAX) + 1` to `isa-debug-exit`, and QEMU exits with
/// `(value << 1) | 1`; anything else is QEMU's own status (1: QEMU failed, for instance
/// to open a disk image; 0: the guest halted or rebooted without the app reporting).
pub fn decode_qemu_status(status: i32, console: &str) -> GuestExit {
    let value = (status - 1) / 2;
    if status & 1 == 0 || value < 1 {
        return GuestExit::NotReported(match status {
            1 => "QEMU failed before the app reported an exit status (exit status 1; see QEMU's message above)"
                .to_string(),
            _ => format!(
                "the unikernel stopped without reporting an exit code (QEMU exit status {status}): \
                 it crashed or halted outside the app; see the console above"
            ),
        });
    }
    let exact = value - 1;
    if exact < i32::from(EXIT_EXACT_MAX) {
        return GuestExit::App(exact as u8);
    }
    match console.lines().rev().find_map(|l| l.trim().strip_prefix(EXIT_STATUS_LINE)).map(|n| n.trim().parse::<u8>()) {
        Some(Ok(code)) if code >= EXIT_EXACT_MAX => GuestExit::App(code),
        _ => GuestExit::NotReported(format!(
            "the app exited with a status of {EXIT_EXACT_MAX} or more, but the console line \
             `{EXIT_STATUS_LINE}N` that carries it is missing or malformed"
        )),
    }
}

/// Devices a QEMU boot gets besides the console and the exit port.
#[derive(Debug, Clone, Default)]
pub struct QemuDevices {
    /// A virtio-net device on this TAP interface.
    pub tap: Option<String>,
    /// A virtio-blk device backed by this raw image.
    pub disk: Option<PathBuf>,
    /// Give the net device QEMU's defaults (VIRTIO_F_EVENT_IDX and the offloads on), as
    /// urunc and kraftkit start it, instead of the tuned settings below.
    pub net_defaults: bool,
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
            args.push(if self.net_defaults {
                "virtio-net-pci,netdev=n0".to_string()
            } else {
                "virtio-net-pci,netdev=n0,gso=off,guest_tso4=off,guest_tso6=off,guest_ecn=off,guest_ufo=off,\
                 event_idx=off"
                    .to_string()
            });
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
        .arg(kernel_command_line(None, &[], args))
        .args(["-device", &format!("isa-debug-exit,iobase={EXIT_PORT:#x},iosize=0x04")])
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

    fn exit(&self, status: ExitStatus, console: &str) -> GuestExit {
        match status.code() {
            Some(code) => decode_qemu_status(code, console),
            None => GuestExit::NotReported(format!("QEMU was killed ({status})")),
        }
    }

    fn prints_at_boot(&self) -> bool {
        true
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
        assert_eq!(decode_qemu_status(3, ""), GuestExit::App(0));
        assert_eq!(decode_qemu_status(9, ""), GuestExit::App(3));
        assert_eq!(decode_qemu_status((126 << 1) | 1, ""), GuestExit::App(125));
        // 126 and more come from the console line.
        assert_eq!(decode_qemu_status(255, "x\nrt-unikraft: exit status 200\n"), GuestExit::App(200));
        assert_eq!(decode_qemu_status(255, "rt-unikraft: exit status 126"), GuestExit::App(126));
        assert!(matches!(decode_qemu_status(255, "no line"), GuestExit::NotReported(_)));
        assert!(matches!(decode_qemu_status(255, "rt-unikraft: exit status 7"), GuestExit::NotReported(_)));
        // QEMU's own failure (status 1) is never "the app exited 0".
        assert!(matches!(decode_qemu_status(1, ""), GuestExit::NotReported(_)));
        assert!(matches!(decode_qemu_status(0, ""), GuestExit::NotReported(_)));
    }

    /// The glue and this decoder agree on the port and the encoding's limit.
    #[test]
    fn the_glue_uses_the_same_exit_constants() {
        let glue = include_str!("../../../rt-unikraft/glue/main.c");
        let define = |name: &str| {
            glue.lines()
                .find_map(|l| l.strip_prefix("#define ")?.strip_prefix(name)?.split_whitespace().next())
                .unwrap_or_else(|| panic!("{name} is not defined in glue/main.c"))
                .to_string()
        };
        assert_eq!(define("RT_UNIKRAFT_EXIT_PORT "), format!("{EXIT_PORT:#x}"));
        assert_eq!(define("RT_UNIKRAFT_EXIT_EXACT_MAX "), EXIT_EXACT_MAX.to_string());
        assert!(glue.contains(&format!("printf(\"{EXIT_STATUS_LINE}%u\\n\"")), "the console line differs");
    }
}
