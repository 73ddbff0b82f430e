//! Building an app as a Solo5 unikernel for the spt or hvt tender.
//!
//! 1. cargo builds the app's library as a `staticlib` for the ordinary
//!    `x86_64-unknown-linux-gnu` target with the `solo5` feature (stable Rust, `no_std` +
//!    `alloc`; rt-solo5 provides the allocator, the panic handler and the C functions
//!    `core` needs).
//! 2. `solo5-elftool gen-manifest` turns the device manifest into C (`service`, a
//!    NET_BASIC device, when the metadata lists `net`; `storage`, BLOCK_BASIC, for
//!    `block`).
//! 3. Solo5's toolchain wrapper links manifest + archive against the tender's bindings.
//! 4. The tender runs it; its exit status is the app's.
//!
//! The Solo5 tree (built: tenders, bindings, toolchain wrappers) comes from `SOLO5_SRC`,
//! or from `<cache>/solo5/v0.12.1`, which `cargo unikraft fetch --solo5-src DIR` provisions.
//!
//! Everything is written to the app's Solo5 build directory, `target/solo5/<name>/`,
//! under its own lock; the archive comes from cargo's `target/solo5/cargo`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::app::App;
use crate::appdir::BuildLock;
use crate::sources;
use crate::target::Platform;

/// The pinned Solo5 release.
pub const SOLO5_TAG: &str = "v0.12.1";

/// A built Solo5 tree: tenders, bindings and toolchain wrappers.
pub fn solo5_tree() -> Result<PathBuf> {
    let tree = match std::env::var_os("SOLO5_SRC").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => sources::cache_dir()?.join("solo5").join(SOLO5_TAG),
    };
    for needed in ["tenders/spt/solo5-spt", "elftool/solo5-elftool", "toolchain/bin/x86_64-solo5-none-static-ld"] {
        if !tree.join(needed).is_file() {
            bail!(
                "Solo5 {SOLO5_TAG} is not provisioned (no {} in {}); run \
                 `cargo unikraft fetch --solo5-src DIR` with a Solo5 repository, or set SOLO5_SRC to a built tree \
                 (./configure.sh && make; needs libseccomp-dev)",
                needed,
                tree.display()
            );
        }
    }
    Ok(tree)
}

/// `-nodev` for the variant whose manifest declares no devices.
fn variant(devices: bool) -> &'static str {
    if devices {
        ""
    } else {
        "-nodev"
    }
}

/// The unikernel [`build`] writes for `target` (a tender name) and `devices`.
pub fn image_path(app: &App, target: &str, devices: bool) -> PathBuf {
    app.build_dir(Platform::Solo5).join(format!("{}{}.{target}", app.spec.name, variant(devices)))
}

/// Builds the app for `target` and returns the unikernel. With `devices` false the
/// manifest declares none (a tender refuses to start a unikernel whose declared devices
/// are not all attached, so runs without a TAP need this variant). Holds the app's Solo5
/// build-directory lock while it builds.
pub fn build(app: &App, target: &str, tree: &Path, devices: bool) -> Result<PathBuf> {
    let out_dir = app.build_dir(Platform::Solo5);
    let _lock = BuildLock::acquire(&out_dir)?;
    let cargo_dir = app.target_dir.join(Platform::Solo5.dir_name()).join("cargo");
    let archive = crate::staticlib::build_solo5_staticlib(app, &cargo_dir)?;

    let variant = variant(devices);
    let manifest_json = out_dir.join(format!("manifest{variant}.json"));
    // The manifest lists the devices the metadata asks for.
    let mut declared = Vec::new();
    if devices && app.spec.devices.iter().any(|d| d == "net") {
        declared.push("{\"name\":\"service\",\"type\":\"NET_BASIC\"}");
    }
    if devices && app.spec.devices.iter().any(|d| d == "block") {
        declared.push("{\"name\":\"storage\",\"type\":\"BLOCK_BASIC\"}");
    }
    let declared = declared.join(",");
    std::fs::write(
        &manifest_json,
        format!("{{\"type\":\"solo5.manifest\",\"version\":1,\"devices\":[{declared}]}}\n"),
    )?;
    let manifest_c = out_dir.join(format!("manifest{variant}.c"));
    run(Command::new(tree.join("elftool/solo5-elftool")).arg("gen-manifest").arg(&manifest_json).arg(&manifest_c))?;
    let manifest_o = out_dir.join(format!("manifest{variant}.o"));
    run(Command::new(tree.join("toolchain/bin/x86_64-solo5-none-static-cc"))
        .arg("-c")
        .arg(&manifest_c)
        .arg("-o")
        .arg(&manifest_o))?;
    let image = image_path(app, target, devices);
    run(Command::new(tree.join("toolchain/bin/x86_64-solo5-none-static-ld"))
        .args(["-z", &format!("solo5-abi={target}"), "-o"])
        .arg(&image)
        .arg(&manifest_o)
        .arg(&archive))?;
    Ok(image)
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("run {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}
