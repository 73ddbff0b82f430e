//! A test's network namespace, from the test's own threads: sockets opened on a thread
//! that entered it are the namespace's, so a test can be the host side (10.0.0.1 on
//! `tap0`) without a helper process. The namespaces themselves are made and removed by
//! `tests/common`'s `Ns`.

use std::os::fd::AsRawFd;
use std::path::PathBuf;

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
