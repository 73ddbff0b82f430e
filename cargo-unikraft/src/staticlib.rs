//! The cargo build of the app's Rust archive, shared by the Unikraft, hosted-musl and
//! solo5 paths (one cargo command line, [`kraftfile_gen::backend_staticlib_args`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use kraftfile_gen::{AppSpec, Backend, RustBuild};

use crate::app::cargo;

/// The app's Rust archive for Solo5 (its `solo5` feature), built into `target_dir` with
/// the same profile settings as the Unikraft one ([`kraftfile_gen::backend_staticlib_args`]).
pub fn build_solo5_staticlib(spec: &AppSpec, build: &RustBuild, target_dir: &Path) -> Result<PathBuf> {
    let target_dir_str = crate::app::path_str(target_dir)?;
    let args = kraftfile_gen::backend_staticlib_args(spec, build, Backend::Solo5, &target_dir_str);
    eprintln!("cargo-unikraft: building the Rust staticlib for solo5 ({})", build.manifest_path);
    let status = Command::new(cargo()).args(&args).status().context("run cargo")?;
    if !status.success() {
        bail!(
            "cargo failed to build {} for solo5 ({status}); the app needs a `solo5 = [\"unikernel/solo5\"]` feature \
             and must be no_std + alloc (Solo5 has no libc for std)",
            build.manifest_path
        );
    }
    Ok(target_dir.join("release").join(format!("lib{}.a", build.lib_name)))
}

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
