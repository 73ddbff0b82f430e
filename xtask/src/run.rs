//! `cargo xtask run`: an example on a backend, in a fresh network namespace when it needs
//! a net device; exits with the app's exit status.

use std::path::PathBuf;
use std::process::Command;

use crate::netns::{self, NetNs};
use anyhow::{bail, Context, Result};
use cargo_unikraft::pipeline::{self, Devices};
use cargo_unikraft::runner::{console, Accel, Guest, GuestExit, Process};
use cargo_unikraft::target::Target;
use xshell::{cmd, Shell};

use crate::examples::{self, workspace_root};
use cargo_unikraft::target::Platform;

/// Builds `package` for the unix backend and returns the binary's path.
pub fn build_unix(package: &str, release: bool) -> Result<PathBuf> {
    let sh = Shell::new()?;
    sh.change_dir(workspace_root());
    let profile_flag = release.then_some("--release");
    eprintln!("xtask: building {package} for unix");
    cmd!(sh, "cargo build --quiet -p {package} {profile_flag...}").run()?;
    let bin = workspace_root().join("target").join(if release { "release" } else { "debug" }).join(package);
    if !bin.exists() {
        bail!("build succeeded but {} is missing", bin.display());
    }
    Ok(bin)
}

pub fn exit_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(sig)) => 128 + sig as u8,
        _ => 1,
    }
}

pub fn run(backend: Platform, example: &str, release: bool, args: &[String]) -> Result<u8> {
    let needs_net = examples::needs_net(example)?;
    match backend {
        Platform::Unikraft => run_vm("kraft-run", example, needs_net, args),
        Platform::Solo5 => run_vm("solo5-run", example, needs_net, args),
        Platform::HostedMusl => {
            if needs_net {
                bail!("{example} needs a network device, which the hosted-musl harness does not have");
            }
            let app = examples::app(example)?;
            let devices = Devices::default();
            let exe = pipeline::build(&app, Target::HostedMusl, &devices)?;
            let guest = pipeline::guest(&app, Target::HostedMusl, &exe, app.spec.memory_mib, Accel::Auto, &devices)?;
            run_guest(&*guest, guest.command(args))
        }
        Platform::Unix => run_unix(example, examples::needs_net_on_unix(example)?, release, args),
    }
}

fn run_unix(example: &str, needs_net: bool, release: bool, args: &[String]) -> Result<u8> {
    let bin = build_unix(example, release)?;
    let mut guest = Process::new(&bin);
    if needs_net && std::env::var_os("RT_UNIX_TAP").is_none() {
        if !netns::is_root() {
            bail!(
                "`{example}` needs a network device: run as root (xtask then creates a network \
                 namespace with a TAP for it), or create a persistent TAP you own \
                 (`sudo ip tuntap add dev tap0 mode tap user $USER`) and set RT_UNIX_TAP=tap0"
            );
        }
        let ns = NetNs::create("ukrun")?;
        eprintln!(
            "xtask: {example} runs in network namespace {ns} on {tap} (host side {host}/24, guest {guest});\n\
             xtask: reach it with e.g. `sudo ip netns exec {ns} nc -u {guest} 7` or `sudo ip netns exec {ns} curl http://{guest}/`",
            ns = ns.name,
            tap = netns::TAP,
            host = netns::HOST_IP,
            guest = netns::GUEST_IP
        );
        guest.env.push(("RT_UNIX_TAP".into(), netns::TAP.into()));
        let code = run_guest(&guest, ns.wrap(&guest.command(args)));
        drop(ns);
        return code;
    }
    run_guest(&guest, guest.command(args))
}

/// Runs a guest through cargo-unikraft's runner seam (its console echoed), and returns
/// the app's exit status; a guest that ends without one is an error.
fn run_guest(guest: &dyn Guest, command: Command) -> Result<u8> {
    let finished = console::run(guest, command, console::Limits::default(), |line| println!("{line}"))?;
    match finished.exit {
        GuestExit::App(code) => Ok(code),
        GuestExit::NotReported(why) => bail!("{} ended without an exit status: {why}", guest.describe()),
    }
}

/// `run` on a VM backend: the example through `cargo xtask <subcommand>` (kraft-run or
/// solo5-run). An example with a net device is built first, then run as root inside a
/// fresh network namespace whose TAP the guest is given.
fn run_vm(subcommand: &str, example: &str, needs_net: bool, args: &[String]) -> Result<u8> {
    let exe = std::env::current_exe()?;
    let exe = exe.to_str().context("exe path")?;
    if !needs_net {
        let status = Command::new(exe).args([subcommand, "--example", example, "--"]).args(args).status()?;
        return Ok(exit_code(status));
    }
    if !netns::is_root() {
        bail!(
            "`{example}` needs a network device: run as root (xtask then creates a network namespace with a \
             TAP for the guest), or use `cargo xtask {subcommand} --tap IFNAME` with a TAP you own"
        );
    }
    // Build outside the namespace (the build needs nothing from it), then run inside.
    let build =
        Command::new(exe).args([subcommand, "--example", example, "--tap", netns::TAP, "--no-boot"]).status()?;
    if !build.success() {
        return Ok(exit_code(build));
    }
    let ns = NetNs::create("ukrun")?;
    eprintln!(
        "xtask: {example} runs in network namespace {ns} on {tap} (host side {host}/24, guest {guest})",
        ns = ns.name,
        tap = netns::TAP,
        host = netns::HOST_IP,
        guest = netns::GUEST_IP
    );
    let status = ns
        .command(exe)
        .args([subcommand, "--example", example, "--tap", netns::TAP, "--"])
        .args(args)
        .status()
        .with_context(|| format!("start {subcommand} in the namespace"))?;
    drop(ns);
    Ok(exit_code(status))
}
