//! The cargo build of the app's Rust archive, shared by the Unikraft, hosted-musl and
//! solo5 paths (one cargo command line, [`kraftfile_gen::platform_staticlib_args`]), with
//! the user's profile, features, flags and `--message-format`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use cargo_metadata::Message;

use crate::app::{cargo, App};
use crate::target::Platform;

/// The app's Rust archive for Solo5 (its `solo5` feature), built into `target_dir` with
/// the same profile settings as the Unikraft one ([`kraftfile_gen::platform_staticlib_args`]).
pub fn build_solo5_staticlib(app: &App, target_dir: &Path) -> Result<PathBuf> {
    let build = &app.build;
    let target_dir_str = crate::app::path_str(target_dir)?;
    let args = kraftfile_gen::platform_staticlib_args(&app.spec, build, Platform::Solo5, &target_dir_str);
    eprintln!("cargo-unikraft: building the Rust staticlib for solo5 ({})", build.manifest_path);
    let mut cmd = Command::new(cargo());
    cmd.args(&args);
    if !run_cargo(app, cmd)? {
        bail!(
            "cargo failed to build {} for solo5; the app needs a `solo5 = [\"unikernel/solo5\"]` feature \
             and must be no_std + alloc (Solo5 has no libc for std)",
            build.manifest_path
        );
    }
    Ok(target_dir.join(build.cargo.profile_dir()).join(format!("lib{}.a", build.lib_name)))
}

/// Builds the app's Rust archive with the cargo command line the generated Makefile.uk
/// also runs: the staticlib of an app on rt-unikraft, or the archive a plain binary's
/// link writes (cargo-unikraft as the linker). Returns the archive.
pub fn build_staticlib(app: &App) -> Result<PathBuf> {
    let build = &app.build;
    let (env, args, archive) = match &build.linked_bin {
        None => (
            None,
            kraftfile_gen::cargo_staticlib_args(&app.spec, build),
            Path::new(&build.cargo_target_dir).join(build.cargo.profile_dir()).join(format!("lib{}.a", build.lib_name)),
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
    if !run_cargo(app, cmd)? {
        bail!("cargo failed to build the Rust archive of {}", build.manifest_path);
    }
    Ok(archive)
}

/// Runs a cargo build; with `--message-format`, cargo's JSON messages go to stdout as
/// cargo prints them, except its `build-finished`: the image is not built yet (`cargo
/// unikraft build` prints its own when it is). Returns whether cargo succeeded.
fn run_cargo(app: &App, mut cmd: Command) -> Result<bool> {
    if app.message_format.is_none() {
        return Ok(cmd.status().context("run cargo")?.success());
    }
    // `--message-format` goes before `--` (the rustc flags of a plain binary's build).
    let mut args: Vec<std::ffi::OsString> = cmd.get_args().map(Into::into).collect();
    let at = args.iter().position(|a| a == "--").unwrap_or(args.len());
    args.splice(at..at, app.message_format_args().into_iter().map(Into::into));
    let mut json = Command::new(cmd.get_program());
    json.args(&args).stdout(Stdio::piped());
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            json.env(key, value);
        }
    }
    let mut child = json.spawn().context("run cargo")?;
    let stdout = child.stdout.take().expect("piped");
    for line in BufReader::new(stdout).lines() {
        let line = line.context("read cargo's messages")?;
        if !matches!(serde_json::from_str::<Message>(&line), Ok(Message::BuildFinished(_))) {
            println!("{line}");
        }
    }
    Ok(child.wait().context("wait for cargo")?.success())
}
