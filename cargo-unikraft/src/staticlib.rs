//! The cargo build of the app's Rust archive, shared by the Unikraft, hosted-musl and
//! solo5 paths.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use kraftfile_gen::{AppSpec, RustBuild};

use crate::app::cargo;

/// Builds the app's Rust archive with the cargo command line the generated Makefile.uk
/// also runs: the staticlib of an app on rt-unikraft, or the archive a plain binary's
/// link writes (cargo-unikraft as the linker). Returns the archive.
pub fn build_staticlib(spec: &AppSpec, build: &RustBuild) -> Result<PathBuf> {
    let (env, args, archive) = match &build.linked_bin {
        None => (
            None,
            kraftfile_gen::cargo_staticlib_args(spec, build),
            Path::new(&build.cargo_target_dir).join("release").join(format!("lib{}.a", build.lib_name)),
        ),
        Some(bin) => {
            if bin.archive.is_empty() {
                bail!(
                    "{} has no binary target to run (only a library: `cargo unikraft test` runs its tests)",
                    build.manifest_path
                );
            }
            let Some((env, args)) = &bin.cargo else { return Ok(PathBuf::from(&bin.archive)) };
            (Some(env.split_once('=').expect("VAR=value")), args.clone(), PathBuf::from(&bin.archive))
        }
    };
    eprintln!("cargo-unikraft: building the Rust archive ({})", build.manifest_path);
    let mut cmd = Command::new(cargo());
    cmd.args(&args);
    if let Some((key, value)) = env {
        cmd.env(key, value);
    }
    let status = cmd.status().context("run cargo")?;
    if !status.success() {
        bail!("cargo failed to build the Rust archive ({status})");
    }
    Ok(archive)
}
