//! The plain-server half of `cargo xtask bench-sockets`: an unmodified tokio web server
//! (a `cargo new --bin` crate with axum, no dependency on this project, only
//! `devices = ["net"]` and `sockets = true` in its metadata) run as a user runs it, with
//! `cargo unikraft run`, reached through `-p` (QEMU's user-mode networking, no root) and
//! through `--tap` (a TAP in a namespace this benchmark creates). For each: requests per
//! second and the guest's CPU per request (its QEMU's, from /proc), keep-alive.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::netns::{self, NetNs};
use anyhow::{bail, Context, Result};

use crate::bench_sockets::{load, wait_for, Http};
use crate::examples::workspace_root;

const MANIFEST: &str = "[package]\nname = \"bench-plain-axum\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
     [dependencies]\naxum = \"0.8\"\n\
     tokio = { version = \"1\", features = [\"rt-multi-thread\", \"macros\", \"net\"] }\n\n\
     [package.metadata.unikraft]\ndevices = [\"net\"]\nsockets = true\n\n\
     # Its own workspace: it lives under this repository's target/ but is not a member.\n[workspace]\n";

const MAIN: &str = "use axum::{routing::get, Router};\n\n\
     #[tokio::main]\nasync fn main() {\n    \
     let app = Router::new().route(\"/\", get(|| async { \"hello from axum\\n\" }));\n    \
     let listener = tokio::net::TcpListener::bind(\"0.0.0.0:8080\").await.unwrap();\n    \
     println!(\"axum: listening on {}\", listener.local_addr().unwrap());\n    \
     axum::serve(listener, app).await.unwrap();\n}\n";

/// The two rows this half prints.
pub struct PlainServer {
    pub published: Http,
    pub tap: Http,
}

/// Writes the crate under `target/` (only what differs, so a rerun relinks only).
fn write_crate() -> Result<PathBuf> {
    let dir = workspace_root().join("target/bench-plain-axum");
    crate::bench_plain::write_scratch_crate(&dir, &[("Cargo.toml", MANIFEST), ("src/main.rs", MAIN)])?;
    Ok(dir)
}

/// This workspace's `cargo-unikraft`, built now: the tool a user installs.
fn tool() -> Result<PathBuf> {
    let root = workspace_root();
    let status = Command::new("cargo")
        .args(["build", "-q", "-p", "cargo-unikraft"])
        .current_dir(&root)
        .status()
        .context("cargo build -p cargo-unikraft")?;
    if !status.success() {
        bail!("building cargo-unikraft failed");
    }
    Ok(root.join("target/debug/cargo-unikraft"))
}

/// The pid of the QEMU in process group `group` (the run's own group).
fn qemu_in_group(group: u32) -> Result<u32> {
    for entry in fs::read_dir("/proc")?.flatten() {
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some((head, rest)) = stat.rsplit_once(')') else { continue };
        let name = head.split_once('(').map_or("", |(_, n)| n);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if name.starts_with("qemu-system") && fields.get(2) == Some(&group.to_string().as_str()) {
            return entry.file_name().to_str().and_then(|p| p.parse().ok()).context("a /proc entry");
        }
    }
    bail!("no QEMU in process group {group}")
}

/// A `cargo unikraft run` in its own process group, killed with its QEMU on drop.
struct Run(Child);

impl Run {
    fn start(mut cmd: Command) -> Result<Run> {
        use std::os::unix::process::CommandExt;
        let child = cmd.stdout(Stdio::piped()).process_group(0).spawn().context("start cargo unikraft run")?;
        Ok(Run(child))
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["--", &format!("-{}", self.0.id())]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Builds the plain server, then loads it through `-p` and through `--tap`.
pub fn measure(port: u16) -> Result<PlainServer> {
    let dir = write_crate()?;
    let tool = tool()?;
    let cargo_unikraft = |args: &[&str]| {
        let mut cmd = Command::new(&tool);
        cmd.arg("unikraft").args(args).current_dir(&dir);
        cmd
    };
    eprintln!("bench: building the plain axum server ({})", dir.display());
    let build = cargo_unikraft(&["run", "--no-boot"]).status().context("cargo unikraft run --no-boot")?;
    if !build.success() {
        bail!("building the plain axum server failed");
    }

    eprintln!("bench: (d) plain axum on Unikraft through -p {port}:8080 (user-mode networking)");
    let published = {
        let mut run = Run::start(cargo_unikraft(&["run", "--no-build", "-p", &format!("{port}:8080")]))?;
        wait_for(&mut run.0, "axum: listening")?;
        let qemu = qemu_in_group(run.0.id())?;
        load(|p| Command::new(p), &format!("http://127.0.0.1:{port}/"), qemu, false)?
    };

    eprintln!("bench: (e) plain axum on Unikraft through --tap");
    let tap = {
        let ns = NetNs::create("ukbenchplain")?;
        let mut run = Run::start(ns.wrap(&cargo_unikraft(&["run", "--no-build", "--tap", netns::TAP])))?;
        wait_for(&mut run.0, "axum: listening")?;
        let qemu = qemu_in_group(run.0.id())?;
        let url = format!("http://{}:8080/", netns::GUEST_IP);
        let figures = load(|p| ns.command(p), &url, qemu, false);
        drop(run);
        figures?
    };
    Ok(PlainServer { published, tap })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_crate_has_no_dependency_on_this_project() {
        assert!(!super::MANIFEST.contains("unikernel") && !super::MANIFEST.contains("path ="));
        assert!(super::MAIN.contains("0.0.0.0:8080"));
    }

    #[test]
    fn no_qemu_in_a_group_that_has_none_is_an_error() {
        assert!(super::qemu_in_group(std::process::id()).is_err());
    }
}
