//! Build an app for a target and make the [`Guest`] that runs it: the one place that
//! turns a [`Target`] into a build and a runner.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::app::{App, CargoFailure};
use crate::runner::firecracker::{Firecracker, FirecrackerDevices};
use crate::runner::guest_env::{self, EnvVar};
use crate::runner::qemu::{Qemu, QemuDevices};
use crate::runner::usernet::PublishedPort;
use crate::runner::volume::{self, Volume};
use crate::runner::{solo5::Tender as TenderGuest, Accel, Guest, Process};
use crate::target::Target;
use crate::{hosted_musl, solo5, sources, unikraft};

/// What a run attaches to the guest: its devices, and its environment.
#[derive(Debug, Clone, Default)]
pub struct Devices {
    /// A TAP interface for the app's net device.
    pub tap: Option<String>,
    /// Or host ports forwarded to the app's net device over QEMU's user-mode networking
    /// (`-p`, QEMU only).
    pub published: Vec<PublishedPort>,
    /// A raw disk image for the app's block device.
    pub disk: Option<PathBuf>,
    /// QEMU's default virtio-net settings (see [`QemuDevices::net_defaults`]).
    pub net_defaults: bool,
    /// The app's environment (`-e`).
    pub env: Vec<EnvVar>,
    /// Host folders shared with the guest over 9P (`-v`, QEMU only).
    pub volumes: Vec<Volume>,
    /// QEMU's gdb stub on this port, the guest waiting for the debugger (`--gdb`).
    pub gdb: Option<u16>,
}

impl Devices {
    /// Whether every device the app declares is attached (Solo5 builds a manifest with
    /// only the attached ones: its tenders refuse to start otherwise).
    fn cover(&self, app: &App) -> bool {
        let wants = |d: &str| app.spec.devices.iter().any(|x| x == d);
        (!wants("net") || self.tap.is_some()) && (!wants("block") || self.disk.is_some())
    }

    /// Refuses what `target` cannot give the guest, before anything is built.
    pub fn check_for(&self, target: Target) -> Result<()> {
        if self.tap.is_some() && !self.published.is_empty() {
            bail!("-p/--publish and --tap both give the guest its net device: use one of them");
        }
        if !self.published.is_empty() && target != Target::UnikraftQemu {
            bail!(
                "-p/--publish needs QEMU's user-mode networking (--plat qemu/x86_64); {target} has none{}",
                match target {
                    Target::Solo5(_) => ": give the guest a TAP with --tap instead",
                    _ => "",
                }
            );
        }
        volume::check(&self.volumes).map_err(|e| anyhow::anyhow!(e))?;
        if !self.volumes.is_empty() && target != Target::UnikraftQemu {
            bail!(
                "-v/--volume shares a folder over virtio-9p, which only QEMU has (--plat qemu/x86_64); {target} \
                 has no shared-folder device{}",
                match target {
                    Target::UnikraftFirecracker => " (Firecracker has neither virtio-9p nor virtio-fs)",
                    _ => "",
                }
            );
        }
        if self.gdb.is_some() && target != Target::UnikraftQemu {
            bail!("--gdb uses QEMU's gdb stub (--plat qemu/x86_64); {target} has none");
        }
        if self.net_defaults && target != Target::UnikraftQemu {
            bail!("--virtio-net-defaults sets QEMU's virtio-net options (--plat qemu/x86_64); {target} has none");
        }
        if !self.env.is_empty() && matches!(target, Target::Solo5(_)) {
            bail!(
                "-e/--env: a Solo5 unikernel has no environment variables (the tender passes only arguments); \
                 give the setting as an argument after `--`"
            );
        }
        Ok(())
    }
}

/// The `.config` of a Unikraft image `build` made (`None` when it is not beside the image).
fn unikraft_config(image: &Path) -> Option<String> {
    std::fs::read_to_string(image.parent()?.join(".config")).ok()
}

/// Refuses what this Unikraft image cannot take: published ports without a net device,
/// more variables than its command line holds (the rest would be dropped silently).
fn check_unikraft_image(app: &App, image: &Path, devices: &Devices) -> Result<()> {
    let Some(config) = unikraft_config(image) else { return Ok(()) };
    if !devices.published.is_empty() && !config.lines().any(|l| l == "CONFIG_LIBVIRTIO_NET=y") {
        bail!(
            "-p/--publish: {}'s image has no net device; add `devices = [\"net\"]` to its \
             [package.metadata.unikraft]",
            app.spec.name
        );
    }
    if !devices.volumes.is_empty() && !volume::image_takes_volumes(&config) {
        bail!(
            "-v/--volume: {}'s image cannot mount host folders; add \"9pfs\" to `devices` in its \
             [package.metadata.unikraft] (devices = [\"9pfs\"]: the virtio-9p driver and the mount table \
             from the command line)",
            app.spec.name
        );
    }
    if image.to_string_lossy().ends_with("_fc-x86_64") {
        check_firecracker_image(&app.spec.name, &config, devices)?;
    }
    let capacity = guest_env::unikraft_capacity(&config);
    if devices.env.len() > capacity {
        bail!(
            "-e/--env: this image takes at most {capacity} variables from its command line \
             (CONFIG_LIBPOSIX_ENVIRON_LIBPARAM_MAXCOUNT; `kconfig` in [package.metadata.unikraft] can raise it), \
             {} given",
            devices.env.len()
        );
    }
    Ok(())
}

/// Refuses `--tap`/`--disk` for an `fc/x86_64` image without the virtio-mmio transport or
/// the driver: Firecracker would attach the device and the guest would never see it.
fn check_firecracker_image(name: &str, config: &str, devices: &Devices) -> Result<()> {
    let has = |option: &str| config.lines().any(|l| l.strip_suffix("=y") == Some(option));
    for (flag, given, driver, device) in [
        ("--tap", devices.tap.is_some(), "CONFIG_LIBVIRTIO_NET", "net"),
        ("--disk", devices.disk.is_some(), "CONFIG_LIBVIRTIO_BLK", "block"),
    ] {
        if given && !(has(driver) && has(kraftfile_gen::FC_VIRTIO_TRANSPORT)) {
            bail!(
                "{flag}: {}'s fc/x86_64 image has no virtio-mmio {device} device ({driver} and {} in its \
                 configuration); add \"{device}\" to `devices` in its [package.metadata.unikraft]",
                name,
                kraftfile_gen::FC_VIRTIO_TRANSPORT
            );
        }
    }
    Ok(())
}

/// Builds `app` for `target`; returns the image (or, for hosted-musl, the executable).
/// Each platform's build locks the app's build directory of that platform only
/// ([`App::build_dir`]), so builds of one app for different platforms run side by side.
/// A failure is a [`CargoFailure`] (exit status 101, as cargo's).
pub fn build(app: &App, target: Target, devices: &Devices) -> Result<PathBuf> {
    CargoFailure::mark(build_for(app, target, devices))
}

fn build_for(app: &App, target: Target, devices: &Devices) -> Result<PathBuf> {
    match target {
        Target::UnikraftQemu | Target::UnikraftFirecracker => {
            // Before the sources: asking for an unprovisionable version is the app's mistake.
            unikraft::check_pinned_sources(app)?;
            let sources = sources::provisioned()?;
            unikraft::build_image(app, target.unikraft_target().expect("a Unikraft target"), &sources)
        }
        Target::Solo5(tender) => {
            let tree = solo5::solo5_tree()?;
            solo5::build(app, tender.name(), &tree, devices.cover(app))
        }
        Target::HostedMusl => hosted_musl::build(app),
    }
}

/// The image an earlier [`build`] for `target` and `devices` wrote, without building
/// (`run --no-build`): nothing is locked, compiled or waited for, so a boot right after a
/// build starts at once. An error says so when there is no such image yet.
pub fn built_image(app: &App, target: Target, devices: &Devices) -> Result<PathBuf> {
    let image = match target {
        Target::UnikraftQemu | Target::UnikraftFirecracker => {
            unikraft::image_path(app, target.unikraft_target().expect("a Unikraft target"))
        }
        Target::Solo5(tender) => solo5::image_path(app, tender.name(), devices.cover(app)),
        Target::HostedMusl => hosted_musl::executable_path(app),
    };
    if !image.is_file() {
        bail!(
            "--no-build: {} has not been built for {target} (no {}); build it first (the same command \
             with --no-boot instead of --no-build)",
            app.spec.name,
            image.display()
        );
    }
    Ok(image)
}

/// The runner for an image `build` made.
pub fn guest(
    app: &App,
    target: Target,
    image: &Path,
    memory_mib: u32,
    accel: Accel,
    devices: &Devices,
) -> Result<Box<dyn Guest>> {
    devices.check_for(target)?;
    if target.unikraft_target().is_some() {
        check_unikraft_image(app, image, devices)?;
    }
    Ok(match target {
        Target::UnikraftQemu => {
            if app.spec.devices.iter().any(|d| d == "net") && devices.tap.is_none() && devices.published.is_empty() {
                eprintln!(
                    "cargo-unikraft: note: {} uses a net device but neither -p nor --tap was given; it will find none",
                    app.spec.name
                );
            }
            let qemu_devices = QemuDevices {
                tap: devices.tap.clone(),
                published: devices.published.clone(),
                disk: devices.disk.clone(),
                net_defaults: devices.net_defaults,
                volumes: devices.volumes.clone(),
                gdb: devices.gdb,
            };
            let mut qemu = Qemu::new(image, memory_mib, accel, qemu_devices)?;
            qemu.env = devices.env.clone();
            Box::new(qemu)
        }
        Target::UnikraftFirecracker => {
            let fc_devices = FirecrackerDevices { tap: devices.tap.clone(), disk: devices.disk.clone() };
            let mut firecracker = Firecracker::new(image, &app.spec.name, memory_mib, fc_devices)?;
            firecracker.env = devices.env.clone();
            Box::new(firecracker)
        }
        Target::Solo5(tender) => {
            if tender == crate::target::Tender::Hvt && !Path::new("/dev/kvm").exists() {
                bail!("the hvt tender needs /dev/kvm, which this machine does not have; use --plat solo5/spt");
            }
            let tree = solo5::solo5_tree()?;
            Box::new(TenderGuest {
                tender: tree.join(format!("tenders/{0}/solo5-{0}", tender.name())),
                image: image.to_path_buf(),
                memory_mib,
                tap: devices.tap.clone(),
                disk: devices.disk.clone(),
            })
        }
        Target::HostedMusl => {
            if devices.tap.is_some() || devices.disk.is_some() {
                bail!("the hosted-musl harness has no net or block devices");
            }
            let mut process = Process::new(image);
            process.env = devices.env.iter().map(|v| (v.key.clone(), v.value.clone())).collect();
            Box::new(process)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An fc image without the virtio-mmio transport or the driver cannot see a TAP or a
    /// disk Firecracker attaches: refused, naming the flag, instead of booting without it.
    #[test]
    fn firecracker_devices_need_the_mmio_transport_and_the_driver() {
        let both = Devices { tap: Some("tap0".into()), disk: Some("/d.img".into()), ..Devices::default() };
        let full = "CONFIG_LIBVIRTIO_MMIO=y\nCONFIG_LIBVIRTIO_NET=y\nCONFIG_LIBVIRTIO_BLK=y\n";
        check_firecracker_image("kv", full, &both).unwrap();
        let no_mmio = "CONFIG_LIBVIRTIO_NET=y\nCONFIG_LIBVIRTIO_BLK=y\n";
        let err = check_firecracker_image("kv", no_mmio, &both).unwrap_err().to_string();
        assert!(err.starts_with("--tap: kv's fc/x86_64 image has no virtio-mmio net device"), "{err}");
        let no_blk = "CONFIG_LIBVIRTIO_MMIO=y\nCONFIG_LIBVIRTIO_NET=y\n";
        let err = check_firecracker_image("kv", no_blk, &both).unwrap_err().to_string();
        assert!(err.starts_with("--disk: kv's fc/x86_64 image has no virtio-mmio block device"), "{err}");
        check_firecracker_image("kv", "", &Devices::default()).unwrap();
    }
}
