//! The `cargo unikraft` command line: one module per subcommand, each an `Args` struct
//! with a `run` function (xtask delegates to the same functions).

pub mod build;
pub mod gen;
pub mod oci;
pub mod run;
pub mod run_devices;
pub mod test;

use std::ffi::OsString;

use anyhow::Result;
use clap::{ArgAction, CommandFactory, FromArgMatches, Parser, Subcommand};

pub use crate::app::CargoFailure;
use crate::app::{App, Selection};

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
    /// Build the app's image for a platform and print its path.
    Build(build::BuildCommand),
    /// Build the app, boot it, and exit with the app's exit code.
    Run(run::RunArgs),
    /// Run the crate's unit and integration tests, each harness inside a unikernel; exits
    /// 101 when a test fails, as `cargo test`.
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

/// The subcommands where cargo's `-p` (package) is a short flag. On `run` the letter is
/// Docker's and kraft's (`-p` publishes a port), so `--package` is spelled out there.
const PACKAGE_SHORT: &[&str] = &["build", "test", "gen", "oci"];

/// The subcommands where cargo's `-v` (verbose) is a short flag. On `run` and `oci` the
/// letter is Docker's and kraft's (`-v` shares a folder, or declares a volume), so
/// `--verbose` is spelled out there.
const VERBOSE_SHORT: &[&str] = &["build", "test", "gen"];

impl Cli {
    /// The command line, with cargo's short flags where they do not clash
    /// ([`PACKAGE_SHORT`], [`VERBOSE_SHORT`]).
    pub fn cargo_command() -> clap::Command {
        let mut command = Cli::command();
        for name in PACKAGE_SHORT {
            command = command.mut_subcommand(name, |sub| sub.mut_arg("package", |a| a.short('p')));
        }
        for name in VERBOSE_SHORT {
            command = command.mut_subcommand(name, |sub| sub.mut_arg("verbose", |a| a.short('v')));
        }
        command
    }

    /// Parses `args` (the program name first).
    pub fn try_parse_args<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches = Cli::cargo_command().try_get_matches_from(args)?;
        Cli::from_arg_matches(&matches)
    }

    /// Parses the command line whether cargo ran us (`cargo-unikraft unikraft run ...`)
    /// or we were run directly (`cargo-unikraft run ...`, `cargo run -p cargo-unikraft --`).
    pub fn from_env() -> Cli {
        let mut args: Vec<OsString> = std::env::args_os().collect();
        if args.get(1).is_some_and(|a| a == "unikraft") {
            args.remove(1);
        }
        Cli::try_parse_args(args).unwrap_or_else(|e| e.exit())
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

/// The exit status for an error, as cargo gives it: 101 when the crate could not be
/// resolved or built ([`CargoFailure`]), 1 for anything else (a guest that did not report).
pub fn exit_status(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<CargoFailure>().is_some() {
        101
    } else {
        1
    }
}

/// Which crate and which of its binaries, and how cargo builds it: cargo's own flags.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AppArgs {
    /// Path to the app's Cargo.toml (default: the one cargo finds from the current directory).
    #[command(flatten)]
    pub manifest: clap_cargo::Manifest,
    /// The workspace member to build (cargo's package spec: NAME or NAME@VERSION).
    #[arg(long, value_name = "SPEC")]
    pub package: Option<String>,
    /// The binary target to build (a crate with several binaries needs one).
    #[arg(long, value_name = "NAME", conflicts_with = "example")]
    pub bin: Option<String>,
    /// The example to build (examples/NAME.rs).
    #[arg(long, value_name = "NAME")]
    pub example: Option<String>,
    #[command(flatten)]
    pub features: clap_cargo::Features,
    #[command(flatten)]
    pub cargo: CargoFlags,
}

/// The profile and the flags cargo takes unchanged.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CargoFlags {
    /// Build with the release profile (the default of `build` and `run`; `test` uses cargo's test profile).
    #[arg(long, conflicts_with = "profile")]
    pub release: bool,
    /// Build with this profile (docs/unikraft.md says what an image needs of it).
    #[arg(long, value_name = "PROFILE-NAME")]
    pub profile: Option<String>,
    /// Cargo's verbose output (-vv: very verbose).
    #[arg(long, action = ArgAction::Count)]
    pub verbose: u8,
    /// Cargo's quiet output.
    #[arg(short = 'q', long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Passed to cargo: Cargo.lock must stay as it is.
    #[arg(long)]
    pub locked: bool,
    /// Passed to cargo: no network.
    #[arg(long)]
    pub offline: bool,
    /// Passed to cargo: --locked and --offline.
    #[arg(long)]
    pub frozen: bool,
}

impl AppArgs {
    /// The user's selection; `default_profile` when neither `--release` nor `--profile`
    /// is given.
    pub fn selection(&self, default_profile: &str) -> Selection {
        let flags = &self.cargo;
        let profile = match (&flags.profile, flags.release) {
            (Some(profile), _) => profile.clone(),
            (None, true) => "release".into(),
            (None, false) => default_profile.into(),
        };
        let mut pass = Vec::new();
        if flags.verbose > 0 {
            pass.push(format!("-{}", "v".repeat(flags.verbose.into())));
        }
        for (on, flag) in
            [(flags.quiet, "-q"), (flags.locked, "--locked"), (flags.offline, "--offline"), (flags.frozen, "--frozen")]
        {
            if on {
                pass.push(flag.to_string());
            }
        }
        Selection {
            manifest_path: self.manifest.manifest_path.clone(),
            package: self.package.clone(),
            bin: self.bin.clone(),
            example: self.example.clone(),
            cargo: kraftfile_gen::CargoOptions {
                profile,
                features: self
                    .features
                    .features
                    .iter()
                    .flat_map(|f| f.split(','))
                    .filter(|f| !f.is_empty())
                    .map(String::from)
                    .collect(),
                all_features: self.features.all_features,
                no_default_features: self.features.no_default_features,
                flags: pass,
            },
            message_format: None,
            tests: false,
        }
    }

    /// The app, with the release profile unless another is chosen (an image is what gets
    /// deployed, as with `cargo install`).
    pub fn resolve(&self) -> Result<App> {
        CargoFailure::mark(crate::resolve::resolve(&self.selection("release")))
    }

    /// Points the selection at `manifest` unless `--manifest-path` was given.
    pub fn or_manifest(&mut self, manifest: std::path::PathBuf) {
        if self.manifest.manifest_path.is_none() {
            self.manifest.manifest_path = Some(manifest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        let argv = ["cargo-unikraft"].iter().chain(args);
        Cli::try_parse_args(argv).map(|cli| cli.command).map_err(|e| e.to_string())
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::cargo_command().debug_assert();
    }

    /// `-p` and `-v` are cargo's where they do not clash with Docker's and kraft's `run`.
    #[test]
    fn p_and_v_are_cargos_except_on_run() {
        let Ok(Command::Build(build)) = parse(&["build", "-p", "member", "-vv", "--bin", "tool"]) else { panic!() };
        let selection = build.build.app.selection("release");
        assert_eq!((selection.package.as_deref(), selection.bin.as_deref()), (Some("member"), Some("tool")));
        assert_eq!(selection.cargo.flags, ["-vv"]);
        for sub in ["test", "gen", "oci"] {
            assert!(parse(&[sub, "-p", "member"]).is_ok(), "{sub}");
        }
        let Ok(Command::Run(run)) = parse(&["run", "-p", "8080:80", "--package", "member", "--verbose"]) else {
            panic!()
        };
        assert_eq!(run.publish.len(), 1);
        assert_eq!(run.build.app.package.as_deref(), Some("member"));
        assert_eq!(run.build.app.cargo.verbose, 1);
    }

    #[test]
    fn cargo_flags_become_the_selection() {
        let Ok(Command::Build(build)) = parse(&[
            "build",
            "--manifest-path",
            "/x/Cargo.toml",
            "--features",
            "a,b",
            "-F",
            "c",
            "--no-default-features",
            "--profile",
            "small",
            "--locked",
            "--offline",
            "--frozen",
            "-q",
            "--example",
            "demo",
            "--plat",
            "hosted-musl",
            "--target",
            "x86_64-unknown-linux-gnu",
        ]) else {
            panic!()
        };
        assert_eq!(build.build.plat, crate::target::Target::HostedMusl);
        let selection = build.build.app.selection("release");
        assert_eq!(selection.manifest_path.as_deref(), Some(std::path::Path::new("/x/Cargo.toml")));
        assert_eq!(selection.example.as_deref(), Some("demo"));
        assert_eq!(selection.cargo.features, ["a", "b", "c"]);
        assert!(selection.cargo.no_default_features && !selection.cargo.all_features);
        assert_eq!(selection.cargo.profile, "small");
        assert_eq!(selection.cargo.flags, ["-q", "--locked", "--offline", "--frozen"]);
        let Ok(Command::Build(build)) = parse(&["build", "--release"]) else { panic!() };
        assert_eq!(build.build.app.selection("test").cargo.profile, "release");
    }

    /// `--target` is cargo's triple now: an old platform value there points to `--plat`.
    #[test]
    fn an_old_platform_given_to_target_points_to_plat() {
        for sub in ["build", "run", "oci"] {
            let err = parse(&[sub, "--target", "fc/x86_64"]).unwrap_err();
            assert!(err.contains("the platform is now given with --plat fc/x86_64"), "{sub}: {err}");
        }
        let err = parse(&["build", "--target", "hvt"]).unwrap_err();
        assert!(err.contains("--plat hvt"), "{err}");
    }

    #[test]
    fn build_failures_exit_101_and_other_errors_1() {
        let built: Result<()> = CargoFailure::mark(Err(anyhow::anyhow!("cargo failed")));
        let error = built.unwrap_err();
        assert_eq!(exit_status(&error), 101);
        assert_eq!(format!("{error:#}"), "cargo failed");
        assert_eq!(exit_status(&CargoFailure::mark::<()>(Err(error)).unwrap_err()), 101, "marked once");
        assert_eq!(exit_status(&anyhow::anyhow!("the guest stopped")), 1);
    }
}
