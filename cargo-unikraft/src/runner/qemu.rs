//! QEMU: the command line for an image and its devices, and how QEMU's exit status maps
//! to the app's exit code.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use anyhow::{Context, Result};

use super::cmdline::kernel_command_line;
use super::guest_env::{self, EnvVar};
use super::kvm::kvm_problem;
use super::usernet::{self, PublishedPort};
use super::volume::{self, Volume};
use super::{abort, Accel, Guest, GuestExit};

/// The port of the `isa-debug-exit` device (rt-unikraft/glue/main.c's
/// `RT_UNIKRAFT_EXIT_PORT`).
pub const EXIT_PORT: u16 = 0xf4;
/// Statuses below this travel exactly through the port; the others are also printed on
/// the console (glue/main.c's `RT_UNIKRAFT_EXIT_EXACT_MAX`).
pub const EXIT_EXACT_MAX: u8 = console_protocol::exit_status::EXACT_MAX;
/// The console line that carries a status of [`EXIT_EXACT_MAX`] or more.
const EXIT_STATUS_LINE: &str = console_protocol::exit_status::PREFIX;

/// The app's exit from QEMU's exit status and the console. The glue writes
/// `min(status, EXIT_EXACT_MAX) + 1` to `isa-debug-exit`, and QEMU exits with
/// `(value << 1) | 1`; anything else is QEMU's own status (1: QEMU failed, for instance
/// to open a disk image; 0: the guest halted or rebooted without the app reporting).
///
/// An abort inside lib-musl halts the VM as a crash (status 0) with Unikraft's
/// `[libmusl] abort called`: that is an abort, 134 as on Linux ([`abort`]).
pub fn decode_qemu_status(status: i32, console: &str) -> GuestExit {
    let value = (status - 1) / 2;
    if status == 0 && abort::aborted(console) {
        return GuestExit::App(abort::ABORT_STATUS);
    }
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
    match console_protocol::exit_status::ExitStatus::last_in(console) {
        Some(Ok(console_protocol::exit_status::ExitStatus(code))) if code >= EXIT_EXACT_MAX => GuestExit::App(code),
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
    /// Or a virtio-net device on QEMU's user-mode networking, with these host ports
    /// forwarded to the guest (see [`usernet`]); never together with `tap`.
    pub published: Vec<PublishedPort>,
    /// A virtio-blk device backed by this raw image.
    pub disk: Option<PathBuf>,
    /// Give the net device QEMU's defaults (VIRTIO_F_EVENT_IDX and the offloads on), as
    /// urunc and kraftkit start it, instead of the tuned settings below.
    pub net_defaults: bool,
    /// Host folders shared over virtio-9p (mount tags `fs0`, `fs1`... in this order).
    pub volumes: Vec<Volume>,
    /// QEMU's gdb stub on this host port (127.0.0.1), the guest stopped before its first
    /// instruction until a debugger continues it.
    pub gdb: Option<u16>,
}

/// `value` as one value in QEMU's comma-separated options: QEMU reads `,,` as a comma
/// that belongs to the value (a single one would start the next option, so a disk named
/// `x.img,readonly=on` would quietly become a read-only `x.img`).
pub fn qemu_option_value(value: &OsStr) -> OsString {
    let mut escaped = Vec::with_capacity(value.len());
    for &byte in value.as_bytes() {
        escaped.push(byte);
        if byte == b',' {
            escaped.push(b',');
        }
    }
    OsString::from_vec(escaped)
}

/// `prefix` followed by `value` escaped for QEMU's options, then `suffix`.
fn qemu_option(prefix: &str, value: &OsStr, suffix: &str) -> OsString {
    let mut option = OsString::from(prefix);
    option.push(qemu_option_value(value));
    option.push(suffix);
    option
}

impl QemuDevices {
    fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        if let Some(disk) = &self.disk {
            args.push("-drive".into());
            args.push(qemu_option("file=", disk.as_os_str(), ",if=virtio,format=raw"));
        }
        for (i, volume) in self.volumes.iter().enumerate() {
            args.push("-fsdev".into());
            args.push(qemu_option(&format!("local,id=vol{i},path="), volume.host.as_os_str(), ",security_model=none"));
            args.push("-device".into());
            args.push(format!("virtio-9p-pci,fsdev=vol{i},mount_tag=fs{i}").into());
        }
        if let Some(port) = self.gdb {
            args.extend(["-gdb".into(), format!("tcp:127.0.0.1:{port}").into(), "-S".into()]);
        }
        let netdev = match &self.tap {
            Some(tap) => Some(qemu_option("tap,id=n0,ifname=", OsStr::new(tap), ",script=no,downscript=no")),
            None if !self.published.is_empty() => Some(usernet::netdev_arg(&self.published).into()),
            None => None,
        };
        if let Some(netdev) = netdev {
            args.push("-netdev".into());
            args.push(netdev);
            args.push("-device".into());
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
                if self.net_defaults {
                    "virtio-net-pci,netdev=n0"
                } else {
                    "virtio-net-pci,netdev=n0,gso=off,guest_tso4=off,guest_tso6=off,guest_ecn=off,guest_ufo=off,\
                     event_idx=off"
                }
                .into(),
            );
        }
        args
    }

    /// The kernel parameters these devices need: the guest's address on user-mode
    /// networking, the mounts of the shared folders.
    fn kernel_params(&self) -> Vec<String> {
        let mut params = Vec::new();
        if self.tap.is_none() && !self.published.is_empty() {
            params.push(usernet::netdev_ip_param());
        }
        params.extend(volume::unikraft_params(&self.volumes));
        params
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
    qemu_command_with_env(qemu, image, memory_mib, kvm, devices, &[], args)
}

/// [`qemu_command_with`], the app's environment set to `env`.
pub fn qemu_command_with_env(
    qemu: &Path,
    image: &Path,
    memory_mib: u32,
    kvm: bool,
    devices: &QemuDevices,
    env: &[EnvVar],
    args: &[String],
) -> Command {
    let mut params = devices.kernel_params();
    params.extend(guest_env::unikraft_params(env));
    let mut cmd = Command::new(qemu);
    cmd.args(["-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot"])
        .args(["-accel", if kvm { "kvm" } else { "tcg" }, "-cpu", "max"])
        .arg("-m")
        .arg(format!("{memory_mib}M"))
        .arg("-kernel")
        .arg(image)
        // QEMU passes the kernel's path as the first word, which Unikraft makes argv[0].
        .arg("-append")
        .arg(kernel_command_line(None, &params, args))
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
    /// The app's environment.
    pub env: Vec<EnvVar>,
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
        Ok(Qemu { qemu, image: image.to_path_buf(), memory_mib, kvm, devices, env: Vec::new() })
    }
}

impl Guest for Qemu {
    fn command(&self, args: &[String]) -> Command {
        qemu_command_with_env(&self.qemu, &self.image, self.memory_mib, self.kvm, &self.devices, &self.env, args)
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
        // An abort: the glue's (through the port and its status line), or lib-musl's own
        // (a crash, QEMU's status 0), both 134 as SIGABRT on Linux.
        assert_eq!(decode_qemu_status(255, "rt-unikraft: abort\nrt-unikraft: exit status 134\n"), GuestExit::App(134));
        assert_eq!(decode_qemu_status(0, "x\n[    2.1] CRIT: [libmusl] abort called\n"), GuestExit::App(134));
    }

    fn arg_strings(devices: &QemuDevices) -> Vec<String> {
        devices.args().into_iter().map(|a| a.into_string().unwrap()).collect()
    }

    /// A19: a comma in a disk path or TAP name is doubled, as QEMU's option parser needs.
    #[test]
    fn user_values_in_comma_separated_options_are_escaped() {
        let devices = QemuDevices {
            tap: Some("t,ap".into()),
            disk: Some("/tmp/a,b.img,readonly=on".into()),
            ..QemuDevices::default()
        };
        let args = arg_strings(&devices);
        assert_eq!(args[1], "file=/tmp/a,,b.img,,readonly=on,if=virtio,format=raw");
        assert_eq!(args[3], "tap,id=n0,ifname=t,,ap,script=no,downscript=no");
        // Bytes that are not UTF-8 pass through untouched.
        let odd = OsStr::from_bytes(b"caf\xe9,x");
        assert_eq!(qemu_option_value(odd).as_bytes(), b"caf\xe9,,x");
    }

    /// Published ports: the user netdev and the guest's address on the kernel command line,
    /// before the app's `--`, with the environment.
    #[test]
    fn published_ports_use_user_networking_and_tell_the_guest_its_address() {
        let devices = QemuDevices { published: vec!["8080:80".parse().unwrap()], ..QemuDevices::default() };
        let args = arg_strings(&devices);
        assert_eq!(args[0..2], ["-netdev", &usernet::netdev_arg(&devices.published)]);
        assert!(args[3].starts_with("virtio-net-pci,netdev=n0,"), "{args:?}");
        let env = vec!["GREETING=hi there".parse().unwrap()];
        let cmd = qemu_command_with_env(Path::new("qemu"), Path::new("k"), 64, false, &devices, &env, &["--x".into()]);
        let argv: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        let append = &argv[argv.iter().position(|a| a == "-append").unwrap() + 1];
        assert_eq!(append, r#"netdev.ip=10.0.2.15/24:10.0.2.2:10.0.2.3 "env.vars=GREETING=hi there" -- --x"#);
        // A TAP gets no address from the runner: the network behind it is the user's.
        let tap = QemuDevices { tap: Some("tap0".into()), ..QemuDevices::default() };
        assert!(tap.kernel_params().is_empty());
    }

    /// `-v`: one local fsdev and virtio-9p device per folder, tagged as the mount entries
    /// on the command line name them; `--gdb`: the stub on loopback, the CPU stopped.
    #[test]
    fn shared_folders_and_the_gdb_stub() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("a,b");
        std::fs::create_dir(&host).unwrap();
        let host = std::fs::canonicalize(host).unwrap();
        let devices = QemuDevices {
            volumes: vec![format!("{}:/data", host.display()).parse().unwrap()],
            gdb: Some(1234),
            ..QemuDevices::default()
        };
        let args = arg_strings(&devices);
        let escaped = host.display().to_string().replace(',', ",,");
        assert_eq!(
            args,
            [
                "-fsdev".to_string(),
                format!("local,id=vol0,path={escaped},security_model=none"),
                "-device".to_string(),
                "virtio-9p-pci,fsdev=vol0,mount_tag=fs0".to_string(),
                "-gdb".to_string(),
                "tcp:127.0.0.1:1234".to_string(),
                "-S".to_string(),
            ]
        );
        let cmd = qemu_command_with_env(Path::new("qemu"), Path::new("k"), 64, false, &devices, &[], &[]);
        let argv: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        let append = &argv[argv.iter().position(|a| a == "-append").unwrap() + 1];
        assert_eq!(append, "vfs.fstab=none:/:ramfs vfs.fstab=fs0:/data:9pfs:::mkmp --");
    }

    /// The glue and this decoder agree on the port and the encoding's limit.
    #[test]
    fn the_glue_uses_the_same_exit_constants() {
        let glue = rt_unikraft_glue::file("main.c");
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
