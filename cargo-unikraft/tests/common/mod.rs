//! Helpers the guest-booting tests of cargo-unikraft share: skip lines, the provisioning
//! check, and a running `cargo unikraft run` whose output is read line by line.

// Each test binary uses a different subset.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// Everything a command printed, for an assertion's message.
pub fn show(out: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[allow(unused_imports)] // not every test binary skips
pub use e2e::skip::skip;

/// Whether the Unikraft sources and QEMU are there; otherwise a SKIP line (or, with
/// `UNIKERNEL_REQUIRE_SOURCES=1`, a failure). A broken cache always fails.
pub fn provisioned(test: &str) -> bool {
    e2e::sources::sources_or_skip(test).is_some()
}

/// A host port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running `cargo unikraft run` (in its own process group), its output lines arriving
/// on a channel; killed with its guest on drop.
pub struct Running {
    pub child: Child,
    lines: Receiver<String>,
    pub seen: Vec<String>,
}

impl Running {
    pub fn start(mut cmd: Command) -> Running {
        let mut child =
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0).spawn().expect("start the tool");
        let (tx, lines) = channel();
        for stream in
            [Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>, Box::new(child.stderr.take().unwrap())]
        {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Running { child, lines, seen: Vec::new() }
    }

    /// Waits for a line containing `text`; panics with everything seen after `timeout`.
    pub fn wait_for(&mut self, text: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with `{text}` within {timeout:?}; output:\n{}", self.seen.join("\n")),
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["--", &format!("-{}", self.child.id())]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
