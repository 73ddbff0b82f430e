//! A throw-away network namespace holding a TAP interface for a hosted guest.
//!
//! The guest process is started inside the namespace and attaches to `tap0`; the host
//! side (10.0.0.1/24 on `tap0`) lives only in the namespace, so tests never touch the
//! machine's real network. Dropping the guard deletes the namespace.

use anyhow::{bail, Context, Result};
use std::process::Command;

pub const HOST_IP: &str = "10.0.0.1";
pub const GUEST_IP: &str = "10.0.0.2";
pub const TAP: &str = "tap0";

pub fn is_root() -> bool {
    // SAFETY-free: read our effective uid from /proc.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

pub struct NetNs {
    pub name: String,
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).output().context("cannot run `ip` (install iproute2)")?;
    if !out.status.success() {
        bail!("`ip {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

impl NetNs {
    /// Creates namespace `<prefix>-<pid>-<n>` with `tap0` = 10.0.0.1/24 and `lo` up.
    pub fn create(prefix: &str) -> Result<NetNs> {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("{prefix}-{}-{n}", std::process::id());
        ip(&["netns", "add", &name])?;
        let ns = NetNs { name };
        let name = ns.name.as_str();
        ip(&["-n", name, "link", "set", "lo", "up"])?;
        ip(&["-n", name, "tuntap", "add", "dev", TAP, "mode", "tap"])?;
        ip(&["-n", name, "addr", "add", &format!("{HOST_IP}/24"), "dev", TAP])?;
        ip(&["-n", name, "link", "set", TAP, "up"])?;
        Ok(ns)
    }

    /// `cmd` (program, arguments, environment, directory), run inside the namespace instead.
    pub fn wrap(&self, cmd: &Command) -> Command {
        let mut wrapped = Command::new("ip");
        wrapped.args(["netns", "exec", &self.name]).arg(cmd.get_program()).args(cmd.get_args());
        // `ip netns exec` passes its environment on, so the command's own variables
        // (RT_UNIX_TAP, RT_UNIX_BLOCK...) and directory go on the wrapper.
        for (key, value) in cmd.get_envs() {
            match value {
                Some(value) => wrapped.env(key, value),
                None => wrapped.env_remove(key),
            };
        }
        if let Some(dir) = cmd.get_current_dir() {
            wrapped.current_dir(dir);
        }
        wrapped
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}
