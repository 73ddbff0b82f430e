//! Booting a Unikraft `fc/x86_64` image under Firecracker, when a `firecracker` binary is
//! on PATH. Firecracker has no `isa-debug-exit` device, so the app's exit code cannot
//! leave the VM: a run reports no exit code (never success).
//!
//! `--tap` and `--disk` become the config's `network-interfaces` and `drives` (virtio
//! over MMIO, which Firecracker announces to the guest on its command line as
//! `virtio_mmio.device=...`; an `fc/x86_64` image with devices is built with
//! `CONFIG_LIBVIRTIO_MMIO`). What Firecracker has no device for (`-p`, `-v`, `--gdb`) is
//! refused before anything is built ([`crate::pipeline::Devices::check_for`]).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use anyhow::{bail, Context, Result};

use super::cmdline::kernel_command_line;
use super::guest_env::{self, EnvVar};
use super::{Guest, GuestExit};

/// The devices a Firecracker boot gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirecrackerDevices {
    /// A virtio-net device on this TAP interface.
    pub tap: Option<String>,
    /// A virtio-blk device backed by this raw image, read-write.
    pub disk: Option<PathBuf>,
}

/// The `firecracker --config-file` JSON for one boot.
pub fn config_json(
    image: &Path,
    name: &str,
    memory_mib: u32,
    devices: &FirecrackerDevices,
    env: &[EnvVar],
    args: &[String],
) -> Result<String> {
    let drives: Vec<serde_json::Value> = match &devices.disk {
        Some(disk) => vec![serde_json::json!({
            "drive_id": "disk0",
            "path_on_host": disk.to_str().context("the disk image's path is not UTF-8")?,
            "is_root_device": false,
            "is_read_only": false,
        })],
        None => Vec::new(),
    };
    let interfaces: Vec<serde_json::Value> = match &devices.tap {
        Some(tap) => vec![serde_json::json!({ "iface_id": "net0", "host_dev_name": tap })],
        None => Vec::new(),
    };
    let config = serde_json::json!({
        "boot-source": {
            "kernel_image_path": image.to_str().context("image path is not UTF-8")?,
            // Firecracker does not name the kernel first, so the app's name is argv[0].
            "boot_args": kernel_command_line(Some(name), &guest_env::unikraft_params(env), args),
        },
        "drives": drives,
        "machine-config": { "vcpu_count": 1, "mem_size_mib": memory_mib },
        "network-interfaces": interfaces,
    });
    Ok(serde_json::to_string_pretty(&config)?)
}

/// A Unikraft `fc/x86_64` image under Firecracker (`firecracker` on PATH). Firecracker
/// has no exit device, so no exit code leaves the VM: a run is never reported as success.
#[derive(Debug, Clone)]
pub struct Firecracker {
    pub firecracker: PathBuf,
    pub image: PathBuf,
    pub name: String,
    pub memory_mib: u32,
    pub devices: FirecrackerDevices,
    /// The app's environment.
    pub env: Vec<EnvVar>,
}

impl Firecracker {
    pub fn new(image: &Path, name: &str, memory_mib: u32, devices: FirecrackerDevices) -> Result<Firecracker> {
        let Ok(firecracker) = which::which("firecracker") else {
            bail!("firecracker is not on PATH, so the fc/x86_64 image was built but not booted: {}", image.display());
        };
        Ok(Firecracker {
            firecracker,
            image: image.to_path_buf(),
            name: name.to_string(),
            memory_mib,
            devices,
            env: Vec::new(),
        })
    }
}

impl Guest for Firecracker {
    fn command(&self, args: &[String]) -> Command {
        let config = self.image.with_extension("firecracker.json");
        // A command cannot fail; a config that cannot be written makes firecracker fail
        // to start, with its own message.
        if let Ok(json) = config_json(&self.image, &self.name, self.memory_mib, &self.devices, &self.env, args) {
            let _ = std::fs::write(&config, json);
        }
        let mut cmd = Command::new(&self.firecracker);
        cmd.arg("--no-api").arg("--config-file").arg(&config).stdin(Stdio::null());
        cmd
    }

    fn exit(&self, status: ExitStatus, _console: &str) -> GuestExit {
        GuestExit::NotReported(if status.success() {
            "the VM shut down, but Firecracker cannot carry the app's exit code out of the VM".to_string()
        } else {
            format!("firecracker exited with {status}")
        })
    }

    fn prints_at_boot(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        "Firecracker".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `-e` reaches Firecracker's `boot_args` as Unikraft parameters before the app's `--`,
    /// after the program name Firecracker does not put there itself.
    #[test]
    fn the_environment_goes_into_boot_args_before_the_apps_arguments() {
        let env = vec!["GREETING=hi there".parse().unwrap(), "A=1".parse().unwrap()];
        let devices = FirecrackerDevices::default();
        let json = config_json(Path::new("/k"), "http", 64, &devices, &env, &["--port=8080".into()]).unwrap();
        let config: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            config["boot-source"]["boot_args"],
            r#"http "env.vars=GREETING=hi there" env.vars=A=1 -- --port=8080"#
        );
        assert_eq!(config["drives"], serde_json::json!([]));
        assert_eq!(config["network-interfaces"], serde_json::json!([]));
    }

    /// `--tap` and `--disk` reach Firecracker as a network interface and a drive (they
    /// were dropped without a word before).
    #[test]
    fn the_tap_and_the_disk_become_a_network_interface_and_a_drive() {
        let devices = FirecrackerDevices { tap: Some("tap0".into()), disk: Some("/tmp/disk.img".into()) };
        let json = config_json(Path::new("/k"), "kv", 64, &devices, &[], &[]).unwrap();
        let config: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(config["network-interfaces"], serde_json::json!([{ "iface_id": "net0", "host_dev_name": "tap0" }]));
        assert_eq!(
            config["drives"],
            serde_json::json!([{
                "drive_id": "disk0",
                "path_on_host": "/tmp/disk.img",
                "is_root_device": false,
                "is_read_only": false,
            }])
        );
    }
}
