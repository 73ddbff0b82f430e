//! Booting a Unikraft `fc/x86_64` image under Firecracker, when a `firecracker` binary is
//! on PATH. Firecracker has no `isa-debug-exit` device, so the app's exit code cannot
//! leave the VM: a clean VM shutdown is reported as 0.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// The `firecracker --config-file` JSON for one boot.
pub fn config_json(image: &Path, name: &str, memory_mib: u32, args: &[String]) -> Result<String> {
    let mut boot_args = vec![name.to_string()];
    boot_args.extend(args.iter().cloned());
    let config = serde_json::json!({
        "boot-source": {
            "kernel_image_path": image.to_str().context("image path is not UTF-8")?,
            "boot_args": boot_args.join(" "),
        },
        "drives": [],
        "machine-config": { "vcpu_count": 1, "mem_size_mib": memory_mib },
        "network-interfaces": [],
    });
    Ok(serde_json::to_string_pretty(&config)?)
}

/// Boots `image`; fails with a clear message when Firecracker is not installed.
pub fn boot(image: &Path, name: &str, memory_mib: u32, args: &[String]) -> Result<u8> {
    let Ok(firecracker) = which::which("firecracker") else {
        bail!("firecracker is not on PATH, so the fc/x86_64 image was built but not booted: {}", image.display());
    };
    let config = image.with_extension("firecracker.json");
    std::fs::write(&config, config_json(image, name, memory_mib, args)?)?;
    eprintln!("xtask: booting {} under Firecracker", image.display());
    let status = Command::new(firecracker)
        .arg("--no-api")
        .arg("--config-file")
        .arg(&config)
        .stdin(Stdio::null())
        .status()
        .context("start firecracker")?;
    if !status.success() {
        bail!("firecracker exited with {status}");
    }
    eprintln!("xtask: the VM shut down (Firecracker cannot report the app's exit code)");
    Ok(0)
}
