//! A test's network namespace, from the test's own threads: sockets opened on a thread
//! that entered it are the namespace's, so a test can be the host side (10.0.0.1 on
//! `tap0`) without a helper process; [`Ns`] makes and removes the namespaces themselves,
//! for the end-to-end suite and cargo-unikraft's guest-booting tests alike.

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;

/// Moves the calling thread into the network namespace `name` (one under
/// `/var/run/netns`, as `ip netns add` makes). Only this thread moves: call it on a
/// thread spawned for the purpose, or use [`in_netns`].
///
/// # Panics
/// When the namespace does not exist or cannot be entered (not root).
pub fn enter_netns(name: &str) {
    let path = PathBuf::from("/var/run/netns").join(name);
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // SAFETY: setns on a valid namespace fd, which outlives the call; it changes only this
    // thread's network namespace.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {}: {}", path.display(), std::io::Error::last_os_error());
}

/// Runs `f` on a thread that has entered the network namespace `name` (sockets it and the
/// threads it spawns open are the namespace's), and returns its result; a panic in `f`
/// is the caller's.
pub fn in_netns<R: Send + 'static>(name: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let name = name.to_string();
    std::thread::spawn(move || {
        enter_netns(&name);
        f()
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// Whether the tests run as root (network namespaces need it).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

/// A network namespace with tap0 = 10.0.0.1/24, deleted on drop. A test's own threads
/// enter it with `e2e::netns::in_netns(ns.name(), ...)`.
pub struct Ns(String);

impl Ns {
    /// Creates `<tag>-<pid>` (the tag keeps concurrent tests apart).
    pub fn new(tag: &str) -> Ns {
        let name = format!("{tag}-{}", std::process::id());
        let ip = |args: &[&str]| assert!(Command::new("ip").args(args).status().unwrap().success(), "ip {args:?}");
        ip(&["netns", "add", &name]);
        let ns = Ns(name.clone());
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        ip(&["-n", &name, "tuntap", "add", "dev", "tap0", "mode", "tap"]);
        ip(&["-n", &name, "addr", "add", "10.0.0.1/24", "dev", "tap0"]);
        ip(&["-n", &name, "link", "set", "tap0", "up"]);
        ns
    }

    /// The namespace's name (`<tag>-<pid>`).
    pub fn name(&self) -> &str {
        &self.0
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0]).arg(program);
        c
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}
