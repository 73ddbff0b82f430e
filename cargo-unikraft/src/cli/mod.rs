//! The `cargo unikraft` command line: one module per subcommand, each an `Args` struct
//! with a `run` function (xtask delegates to the same functions).

pub mod build;
pub mod gen;
pub mod oci;
pub mod run;
pub mod run_devices;
pub mod test;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::app::{resolve_app, App};

/// `cargo unikraft`: build, run and test Rust crates as unikernels.
#[derive(Parser, Debug)]
#[command(name = "cargo unikraft", bin_name = "cargo unikraft", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Provision the pinned Unikraft, lib-musl and musl tarball (or Solo5) into the
    /// per-user cache, from upstream or offline from local copies; verifies SHA256.
    Fetch(crate::sources::FetchArgs),
    /// Build the app's image for a target and print its path.
    Build(build::BuildArgs),
    /// Build the app, boot it, and exit with the app's exit code.
    Run(run::RunArgs),
    /// Run the crate's unit and integration tests, each harness inside a unikernel; exits
    /// non-zero when a test fails.
    Test(test::TestArgs),
    /// Write the app's Unikraft directory (Kraftfile, Makefile.uk, Config.uk,
    /// defconfigs) from its Cargo.toml, for `kraft build`.
    Gen(gen::GenArgs),
    /// Build the app's image and write it as an OCI image layout (and oci-archive) that
    /// urunc (Kubernetes) and kraftkit / Unikraft Cloud run.
    Oci(oci::OciArgs),
    /// List the tools each backend needs, found or missing, and how to install them.
    Doctor,
}

impl Cli {
    /// Parses the command line whether cargo ran us (`cargo-unikraft unikraft run ...`)
    /// or we were run directly (`cargo-unikraft run ...`, `cargo run -p cargo-unikraft --`).
    pub fn from_env() -> Cli {
        let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
        if args.get(1).is_some_and(|a| a == "unikraft") {
            args.remove(1);
        }
        Cli::parse_from(args)
    }

    /// Runs the subcommand; returns the exit status for the process.
    pub fn run(self) -> Result<u8> {
        match self.command {
            Command::Fetch(args) => crate::sources::fetch(&args),
            Command::Build(args) => args.run(),
            Command::Run(args) => args.run(),
            Command::Gen(args) => args.run(),
            Command::Test(args) => args.run(),
            Command::Oci(args) => args.run(),
            Command::Doctor => {
                crate::doctor::report();
                Ok(0)
            }
        }
    }
}

/// Which crate: the manifest given, or the one in the current directory (as cargo does).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AppArgs {
    /// Path to the app's Cargo.toml.
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
}

impl AppArgs {
    pub fn resolve(&self) -> Result<App> {
        let manifest = match &self.manifest_path {
            Some(path) => path.clone(),
            None => find_manifest()?,
        };
        resolve_app(&manifest)
    }
}

/// The nearest Cargo.toml from the current directory up, as cargo finds it.
fn find_manifest() -> Result<PathBuf> {
    let cwd = std::env::current_dir().context("the current directory")?;
    cwd.ancestors()
        .map(|dir| dir.join("Cargo.toml"))
        .find(|m| m.is_file())
        .with_context(|| format!("could not find Cargo.toml in {} or any parent directory", cwd.display()))
}
