//! The cargo build of the app's Rust archive, shared by the Unikraft, hosted-musl and
//! solo5 paths.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use kraftfile_gen::{AppSpec, RustBuild};

use crate::app::cargo;

/// The cargo command line the generated Makefile.uk also runs.
pub fn build_staticlib(spec: &AppSpec, build: &RustBuild) -> Result<PathBuf> {
    eprintln!("cargo-unikraft: building the Rust staticlib ({})", build.manifest_path);
    let status =
        Command::new(cargo()).args(kraftfile_gen::cargo_staticlib_args(spec, build)).status().context("run cargo")?;
    if !status.success() {
        bail!("cargo failed to build the staticlib ({status})");
    }
    Ok(Path::new(&build.cargo_target_dir).join("release").join(format!("lib{}.a", build.lib_name)))
}
