//! A throw-away network namespace holding a TAP interface for a hosted guest.
//!
//! The guest process is started inside the namespace and attaches to `tap0`; the host
//! side (10.0.0.1/24 on `tap0`) lives only in the namespace, so tests never touch the
//! machine's real network. Dropping the guard deletes the namespace.
//!
//! A namespace must not outlive the run that made it, however the run ends:
//!
//! - **SIGINT, SIGTERM, SIGHUP** (Ctrl-C, `kill`, a closed terminal): the first namespace
//!   created installs handlers that only write the signal's number to a pipe (all a
//!   handler may safely do). A cleanup thread reads it, deletes this process's namespaces,
//!   stops every process still inside them (SIGTERM, then SIGKILL after [`GRACE`]; found by
//!   the namespace's identity, so also a guest that entered while the cleanup ran), and
//!   re-raises the signal with its previous disposition, so the run still ends as the
//!   signal says. A signal that was ignored when the first namespace was made stays
//!   ignored, as for any program: a shell starts its background jobs (`cmd &` in a script)
//!   with SIGINT ignored, so SIGINT does not end a run started that way (SIGTERM does);
//!   a terminal's Ctrl-C goes to its foreground job, whose SIGINT is not ignored.
//! - **SIGKILL** (nothing runs): a namespace is named `<prefix>-<pid>-<n>` after its
//!   creator, and each [`NetNs::create`] first removes namespaces of that form whose
//!   creator is gone: no process with that pid, or one started after the namespace was
//!   made (the pid was reused).

use std::os::fd::RawFd;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};

pub const HOST_IP: &str = "10.0.0.1";
pub const GUEST_IP: &str = "10.0.0.2";
pub const TAP: &str = "tap0";

/// How long processes left in a namespace get between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(2);

/// Where `ip netns add` puts the namespaces' names.
const NETNS_DIR: &str = "/run/netns";

pub fn is_root() -> bool {
    // Read our effective uid from /proc (no unsafe needed).
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

/// The namespaces this process made and has not deleted yet (what a signal cleans up).
static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

impl NetNs {
    /// Creates namespace `<prefix>-<pid>-<n>` with `tap0` = 10.0.0.1/24 and `lo` up, after
    /// removing namespaces earlier runs left ([`remove_stale`]). `prefix` is `uk` and
    /// lowercase letters (`ukrun`), the form the stale check recognises.
    pub fn create(prefix: &str) -> Result<NetNs> {
        if !(prefix.starts_with("uk") && prefix.len() > 2 && prefix.bytes().all(|b| b.is_ascii_lowercase())) {
            bail!("network namespace prefix `{prefix}` must be `uk` followed by lowercase letters");
        }
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        for (name, why) in remove_stale() {
            eprintln!("cargo-unikraft: removed network namespace {name}, left by an earlier run ({why})");
        }
        install_signal_cleanup()?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}-{}-{n}", std::process::id());
        // Registered first: a signal during set-up cleans up the half-made namespace too.
        LIVE.lock().unwrap_or_else(|e| e.into_inner()).push(name.clone());
        let ns = NetNs { name };
        ip(&["netns", "add", &ns.name])?;
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

    /// Gives the namespace its own `/etc/resolv.conf`: `ip netns exec` bind-mounts
    /// `/etc/netns/<name>/resolv.conf` over it for the commands it starts (so a hosted
    /// app's libc resolver asks a server inside the namespace). The directory goes with
    /// the namespace (on drop, and in the signal and stale-namespace cleanups).
    pub fn resolv_conf(&self, text: &str) -> Result<()> {
        let dir = etc_dir(&self.name);
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        std::fs::write(dir.join("resolv.conf"), text).with_context(|| format!("write {}/resolv.conf", dir.display()))
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }
}

/// Where `ip netns exec` finds namespace `name`'s own `/etc` files.
fn etc_dir(name: &str) -> std::path::PathBuf {
    Path::new("/etc/netns").join(name)
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
        let _ = std::fs::remove_dir_all(etc_dir(&self.name));
        LIVE.lock().unwrap_or_else(|e| e.into_inner()).retain(|n| n != &self.name);
    }
}

/// The pids of the processes inside namespace `name` (tests; [`remove`] finds them by the
/// namespace's identity instead).
#[cfg(test)]
fn pids_in(name: &str) -> Vec<i32> {
    let Ok(out) = Command::new("ip").args(["netns", "pids", name]).output() else { return Vec::new() };
    let me = std::process::id() as i32;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|&p| p != me)
        .collect()
}

fn kill(pid: i32, signal: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions; a pid that is gone is ESRCH.
    unsafe { libc::kill(pid, signal) };
}

/// The identity (device, inode) of namespace `name`, which `/proc/<pid>/ns/net` of every
/// process inside shares; `None` when there is no such namespace.
fn namespace_id(name: &str) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(Path::new(NETNS_DIR).join(name)).ok()?;
    Some((meta.dev(), meta.ino()))
}

/// The pids (other than ours) of the processes in the namespace with identity `id`, found
/// by that identity, so also after the namespace's name is gone.
fn pids_with(id: (u64, u64)) -> Vec<i32> {
    use std::os::unix::fs::MetadataExt;
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| std::fs::metadata(format!("/proc/{pid}/ns/net")).is_ok_and(|m| (m.dev(), m.ino()) == id))
        .collect()
}

/// Deletes namespace `name` and stops every process inside (SIGTERM, then SIGKILL after
/// `grace`). The name goes first, so nothing can enter it any more (`ip netns exec` opens
/// it by name); the processes inside are then found by the namespace's identity, so one
/// that entered while this ran (a guest the run was just starting) is stopped too instead
/// of outliving the run.
fn remove(name: &str, grace: Duration) {
    let id = namespace_id(name);
    let _ = Command::new("ip").args(["netns", "del", name]).stderr(std::process::Stdio::null()).status();
    let _ = std::fs::remove_dir_all(etc_dir(name));
    let Some(id) = id else { return };
    let deadline = Instant::now() + grace;
    let mut asked = Vec::new();
    loop {
        let pids = pids_with(id);
        if pids.is_empty() {
            return;
        }
        let late = Instant::now() >= deadline;
        for pid in pids {
            if late {
                kill(pid, libc::SIGKILL);
            } else if !asked.contains(&pid) {
                kill(pid, libc::SIGTERM);
                asked.push(pid);
            }
        }
        if late {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `(prefix, pid)` of a name this module makes (`uk<letters>-<pid>-<n>`).
fn parse_name(name: &str) -> Option<(&str, u32)> {
    let mut parts = name.rsplitn(3, '-');
    let (n, pid, prefix) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let ours = prefix.starts_with("uk") && prefix.len() > 2 && prefix.bytes().all(|b| b.is_ascii_lowercase());
    (ours && digits(n) && digits(pid)).then(|| Some((prefix, pid.parse().ok()?))).flatten()
}

/// When process `pid` started, if it is alive.
fn process_start(pid: u32) -> Option<SystemTime> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 (starttime, in clock ticks after boot) counts from the field after `comm`.
    let start_ticks: u64 = stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()?;
    let boot: u64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let ticks_per_second = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok().filter(|&t| t > 0)?;
    let since_boot = Duration::from_millis(start_ticks * 1000 / ticks_per_second);
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(boot) + since_boot)
}

/// Why the namespace `name` (of this module's form) has no living creator, or `None` when
/// its creator still runs (or the name is not of this module's form).
fn stale_reason(name: &str, created: SystemTime) -> Option<String> {
    let (_, pid) = parse_name(name)?;
    if pid == std::process::id() {
        return None;
    }
    match process_start(pid) {
        None => Some(format!("process {pid} is gone")),
        // Boot time has a one-second resolution: allow for it.
        Some(started) if started > created + Duration::from_secs(2) => {
            Some(format!("pid {pid} now belongs to a process started after it"))
        }
        Some(_) => None,
    }
}

/// Removes the namespaces of this module's form whose creator is gone (a run killed with
/// SIGKILL), and the processes left inside them; returns each name and why it was stale.
pub fn remove_stale() -> Vec<(String, String)> {
    remove_stale_in(Path::new(NETNS_DIR))
}

fn remove_stale_in(dir: &Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(created) = entry.metadata().and_then(|m| m.modified()) else { continue };
        if let Some(why) = stale_reason(&name, created) {
            remove(&name, Duration::ZERO);
            removed.push((name, why));
        }
    }
    removed
}

/// The write end of the self-pipe the signal handler writes to.
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);
const CLEANUP_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

extern "C" fn on_signal(signal: libc::c_int) {
    let byte = signal as u8;
    let fd: RawFd = SIGNAL_PIPE.load(Ordering::Relaxed);
    // SAFETY: write(2) is async-signal-safe; `byte` outlives the call. The pipe is
    // non-blocking, so a full pipe drops the byte instead of blocking the handler.
    unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
}

/// Installs the SIGINT/SIGTERM/SIGHUP cleanup (once per process; see the module docs).
fn install_signal_cleanup() -> Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| result = install());
    result
}

fn install() -> Result<()> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(std::io::Error::last_os_error()).context("create the signal pipe");
    }
    let (read_end, write_end) = (fds[0], fds[1]);
    // The read end blocks: the cleanup thread sleeps in read until a signal comes.
    // SAFETY: fcntl on a descriptor we own.
    unsafe { libc::fcntl(read_end, libc::F_SETFL, 0) };
    SIGNAL_PIPE.store(write_end, Ordering::Relaxed);

    let mut previous: Vec<(libc::c_int, libc::sigaction)> = Vec::new();
    for signal in CLEANUP_SIGNALS {
        // SAFETY: a zeroed sigaction is a valid argument for querying; the pointers are to
        // live locals.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: queries only (no new action); `old` is a live local.
        unsafe { libc::sigaction(signal, std::ptr::null(), &mut old) };
        if old.sa_sigaction == libc::SIG_IGN {
            continue; // ignored on purpose (nohup, a background job): leave it so
        }
        // SAFETY: as above; `on_signal` only does async-signal-safe work, and SA_RESTART
        // keeps the interrupted system calls of other threads going.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        // SAFETY: `action.sa_mask` is a live, writable local.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        // SAFETY: `action` is fully initialised above; no old action is asked for.
        if unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) } != 0 {
            return Err(std::io::Error::last_os_error()).context("install a signal handler");
        }
        previous.push((signal, old));
    }
    std::thread::Builder::new()
        .name("netns-cleanup".into())
        .spawn(move || cleanup_on_signal(read_end, previous))
        .context("start the namespace cleanup thread")?;
    Ok(())
}

fn cleanup_on_signal(read_end: RawFd, previous: Vec<(libc::c_int, libc::sigaction)>) {
    let mut byte = 0u8;
    // SAFETY: reads one byte into a live local.
    while unsafe { libc::read(read_end, (&mut byte as *mut u8).cast(), 1) } != 1 {}
    let signal = libc::c_int::from(byte);
    let names: Vec<String> = LIVE.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for name in &names {
        remove(name, GRACE);
    }
    LIVE.lock().unwrap_or_else(|e| e.into_inner()).retain(|n| !names.contains(n));
    // End as the signal says: its previous disposition (the default: terminate), again.
    if let Some((_, old)) = previous.iter().find(|(s, _)| *s == signal) {
        // SAFETY: restores a sigaction read from the kernel, then raises the signal.
        unsafe {
            libc::sigaction(signal, old, std::ptr::null_mut());
            libc::raise(signal);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_of_this_module_s_form_are_recognised() {
        assert_eq!(parse_name("ukrun-123-0"), Some(("ukrun", 123)));
        assert_eq!(parse_name("ukconf-9-12"), Some(("ukconf", 9)));
        for other in ["uktest-http-123", "ukload-uk-7", "uk-1-2", "docker-1-2", "ukrun-12", "ukrun-a-1", "UKRUN-1-1"] {
            assert_eq!(parse_name(other), None, "{other}");
        }
    }

    #[test]
    fn a_namespace_is_stale_when_its_creator_is_gone_or_its_pid_reused() {
        let now = SystemTime::now();
        // Our own namespaces are never stale.
        assert_eq!(stale_reason(&format!("ukrun-{}-0", std::process::id()), now), None);
        // A finished child's pid: gone.
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let why = stale_reason(&format!("ukrun-{pid}-0"), now).unwrap();
        assert!(why.contains("is gone"), "{why}");
        // pid 1 runs, but started long before a namespace made now... so it is its creator
        // only if it started before; made an hour before pid 1 started, it is stale.
        assert_eq!(stale_reason("ukrun-1-0", now), None);
        let long_ago = process_start(1).unwrap() - Duration::from_secs(3600);
        assert!(stale_reason("ukrun-1-0", long_ago).unwrap().contains("started after"));
        // Names of other forms are never touched.
        assert_eq!(stale_reason(&format!("uktest-http-{pid}"), now), None);
    }

    /// Root only: a namespace left by a SIGKILLed run (its creator gone, a process still
    /// inside) is removed, process and all, by the next create.
    #[test]
    fn the_next_create_removes_what_a_killed_run_left() {
        if !is_root() {
            eprintln!("SKIP: the_next_create_removes_what_a_killed_run_left: needs root (network namespaces)");
            return;
        }
        let mut gone = Command::new("true").spawn().unwrap();
        let dead_pid = gone.id();
        gone.wait().unwrap();
        let leftover = format!("ukleft-{dead_pid}-0");
        ip(&["netns", "add", &leftover]).unwrap();
        let mut inside = Command::new("ip").args(["netns", "exec", &leftover, "sleep", "600"]).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while pids_in(&leftover).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!pids_in(&leftover).is_empty(), "the leftover process runs in the namespace");

        let fresh = NetNs::create("ukleft").unwrap();
        let listed = std::fs::read_dir(NETNS_DIR)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect::<Vec<_>>();
        assert!(!listed.contains(&leftover), "{listed:?}");
        assert!(listed.contains(&fresh.name), "{listed:?}");
        let status = inside.wait().unwrap();
        assert!(!status.success(), "the process left inside was stopped: {status:?}");
        let name = fresh.name.clone();
        drop(fresh);
        assert!(!Path::new(NETNS_DIR).join(name).exists());
    }
}
