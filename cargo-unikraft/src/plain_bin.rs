//! Plain binaries: a crate with `src/main.rs` and `fn main()`, no dependency on this
//! project. Cargo compiles it for the stock `x86_64-unknown-linux-gnu` target as usual but
//! links it with cargo-unikraft as the linker ([`crate::linker`]), which writes one archive
//! in place of the executable; Unikraft's make links that archive with the glue this tool
//! carries (the C `main` and exit path, the libc shims the gnu std needs, and the
//! unwinder's `_dl_find_object`), which is written next to the generated app directory.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use kraftfile_gen::{AppSpec, LinkedBin, RustBuild};

use crate::app::{path_str, App};
use crate::linker::LINKER_ENV;
use crate::target::Platform;

/// rt-unikraft's glue, carried by this tool for apps that do not depend on rt-unikraft.
/// `main.c` includes the first two `.inc` files; `hosted.c` (the hosted-musl harness's
/// `main`) includes the device stand-ins too, and they include the glue's ABI header.
const GLUE: &[(&str, &str)] = &[
    ("main.c", include_str!("../../rt-unikraft/glue/main.c")),
    ("std_shims.inc", include_str!("../../rt-unikraft/glue/std_shims.inc")),
    ("dl_find_object.inc", include_str!("../../rt-unikraft/glue/dl_find_object.inc")),
    ("dl_find_object.h", include_str!("../../rt-unikraft/glue/dl_find_object.h")),
    ("hosted_dl_find_object.inc", include_str!("../../rt-unikraft/glue/hosted_dl_find_object.inc")),
    ("hosted.c", include_str!("../../rt-unikraft/glue/hosted.c")),
    ("no_netdev.inc", include_str!("../../rt-unikraft/glue/no_netdev.inc")),
    ("no_blkdev.inc", include_str!("../../rt-unikraft/glue/no_blkdev.inc")),
    ("no_socket.inc", include_str!("../../rt-unikraft/glue/no_socket.inc")),
    ("netdev.c", include_str!("../../rt-unikraft/glue/netdev.c")),
    ("blkdev.c", include_str!("../../rt-unikraft/glue/blkdev.c")),
    ("socket.c", include_str!("../../rt-unikraft/glue/socket.c")),
    ("rt_glue.h", include_str!("../../rt-unikraft/glue/rt_glue.h")),
];

/// The app for a crate without a `unikraft` feature: its one binary target (or an error
/// that says what to do).
pub fn resolve(manifest: &Path, meta: &serde_json::Value, package: &serde_json::Value) -> Result<App> {
    let name = package["name"].as_str().context("package without a name")?;
    let bins: Vec<&str> = package["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "bin")))
        .filter_map(|t| t["name"].as_str())
        .collect();
    let has_lib = package["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| t["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "lib")));
    // A library without a binary has nothing to run, but its tests (`cargo unikraft test`).
    let bin = match bins.as_slice() {
        [bin] => Some(*bin),
        [] if has_lib => None,
        [] => bail!(
            "`{name}` ({}) has neither a `unikraft` feature (an app on this project's device core) nor a \
             binary target (a plain `fn main()` program); cargo unikraft needs one of them",
            manifest.display()
        ),
        _ => bail!(
            "`{name}` has several binary targets ({}); plain binaries with more than one are not supported yet",
            bins.join(", ")
        ),
    };
    let spec = AppSpec::from_cargo_metadata(name, &package["metadata"])
        .with_context(|| format!("in {}", manifest.display()))?;
    // A plain program reaches the network through std's sockets (the driver is linked
    // beside it) and host folders through std::fs (9pfs); it has no API for a block device.
    let has_net = spec.devices.iter().any(|d| d == "net");
    if spec.devices.iter().any(|d| d != "net" && d != "9pfs") || (has_net && !spec.sockets) {
        bail!(
            "{}: a plain binary reaches the network through std's sockets: `devices = [\"net\"]` needs \
             `sockets = true`; \"9pfs\" (host folders) works as it is; other devices need an app on this \
             project's device core (a `unikraft` feature that enables `unikernel/unikraft`)",
            manifest.display()
        );
    }
    let target_dir = PathBuf::from(meta["target_directory"].as_str().context("no target directory")?);
    // The glue is an input of the Unikraft and hosted-musl builds alike; it stays in the
    // Unikraft directory (`target/unikraft/<name>/glue`), the one the generated Makefile.uk names.
    let unikraft_dir = target_dir.join(Platform::Unikraft.dir_name()).join(&spec.name);
    let mut glue_sources = write_glue(&unikraft_dir.join("glue"))?;
    let mut extra_archives = Vec::new();
    if spec.sockets {
        // The socket driver's C side; each file stands in for what the kconfig lacks.
        for file in ["netdev.c", "blkdev.c", "socket.c"] {
            glue_sources.push(path_str(&unikraft_dir.join("glue").join(file))?);
        }
        extra_archives.push(path_str(&crate::plain_sockets::archive_path(&target_dir))?);
    }
    let cargo_target_dir = target_dir.join("unikraft").join("cargo");
    let linker = std::env::current_exe().context("the path of this tool (it is cargo's linker for plain binaries)")?;
    let cargo_config = write_cargo_config(&unikraft_dir)?;
    let linked_bin = match bin {
        Some(bin) => LinkedBin {
            archive: path_str(&cargo_target_dir.join("release").join(bin))?,
            cargo: Some((
                format!("{LINKER_ENV}=1"),
                bin_cargo_args(manifest, bin, &cargo_target_dir, &linker, &cargo_config)?,
            )),
            extra_archives,
        },
        // Only test harnesses will be linked (cargo unikraft test sets their archive).
        None => LinkedBin { archive: String::new(), cargo: None, extra_archives },
    };
    let build = RustBuild {
        manifest_path: path_str(manifest)?,
        lib_name: bin.unwrap_or(name).to_string(),
        cargo_target_dir: path_str(&cargo_target_dir)?,
        glue_sources,
        linked_bin: Some(linked_bin),
    };
    Ok(App { spec, build, target_dir })
}

/// rustix (under async-io, polling, tempfile, ...) makes Linux system calls with the
/// `syscall` instruction by default, which Unikraft does not take (the guest traps:
/// invalid opcode); its documented `rustix_use_libc` cfg makes it call libc, which here is
/// lib-musl. Given as cargo config so build scripts and proc macros agree.
pub const RUSTIX_USE_LIBC: &str = r#"build.rustflags=["--cfg", "rustix_use_libc"]"#;

/// Writes the cargo configuration of a plain binary's build ([`RUSTIX_USE_LIBC`]) into
/// `dir`; returns its path.
fn write_cargo_config(dir: &Path) -> Result<PathBuf> {
    fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let path = dir.join("cargo-config.toml");
    let body = "# Written by cargo-unikraft for the plain binary's build.\n[build]\nrustflags = [\"--cfg\", \"rustix_use_libc\"]\n";
    if fs::read_to_string(&path).ok().as_deref() != Some(body) {
        fs::write(&path, body).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(path)
}

/// The arguments after `cargo` that link `bin` into an archive. `-C linker` goes to the
/// final rustc call only (`cargo rustc ... -- FLAGS`), so build scripts and proc macros
/// are linked as usual. Fat LTO and one codegen unit keep the image small (the linker
/// sees only what the program reaches).
pub fn bin_cargo_args(
    manifest: &Path,
    bin: &str,
    target_dir: &Path,
    linker: &Path,
    cargo_config: &Path,
) -> Result<Vec<String>> {
    Ok(vec![
        "rustc".into(),
        "--manifest-path".into(),
        path_str(manifest)?,
        "--bin".into(),
        bin.into(),
        "--release".into(),
        "--target-dir".into(),
        path_str(target_dir)?,
        "--config".into(),
        "profile.release.lto=true".into(),
        "--config".into(),
        "profile.release.codegen-units=1".into(),
        // A file: the value's brackets and quotes cannot go through Unikraft's make.
        "--config".into(),
        path_str(cargo_config)?,
        "--".into(),
        "-C".into(),
        format!("linker={}", path_str(linker)?),
    ])
}

/// Writes the glue into `dir` (only files whose content changed, so make does not
/// recompile needlessly); returns the sources Unikraft compiles (`main.c`).
pub fn write_glue(dir: &Path) -> Result<Vec<String>> {
    fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    for (name, body) in GLUE {
        let path = dir.join(name);
        if fs::read_to_string(&path).ok().as_deref() != Some(*body) {
            fs::write(&path, body).with_context(|| format!("write {}", path.display()))?;
        }
    }
    Ok(vec![path_str(&dir.join("main.c"))?])
}

#[cfg(test)]
mod tests {
    use super::GLUE;

    /// Every `#include "..."` of the carried glue is carried too: the glue is written to a
    /// build directory of its own, where a forgotten header fails only at a user's build.
    #[test]
    fn the_carried_glue_includes_only_carried_files() {
        for (file, text) in GLUE {
            for line in text.lines() {
                let Some(rest) = line.trim().strip_prefix("#include \"") else { continue };
                let included = rest.split('"').next().unwrap();
                assert!(
                    GLUE.iter().any(|(name, _)| *name == included),
                    "{file} includes {included}, which is not carried"
                );
            }
        }
    }
}
