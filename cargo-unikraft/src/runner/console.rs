//! The one loop that runs a guest and reads its console (stdout and stderr, interleaved as
//! they arrive) until it ends or a deadline passes.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::{Guest, GuestExit};

/// What a finished run left behind.
#[derive(Debug)]
pub struct Finished {
    /// Every console line, each ending in `\n`.
    pub transcript: String,
    pub exit: GuestExit,
    /// Whether the deadline passed and the guest was killed.
    pub timed_out: bool,
}

/// Runs `cmd` (a guest's command, possibly wrapped, e.g. in a network namespace), calls
/// `on_line` with each console line, and kills it once `timeout` (if any) has passed.
/// `guest` decodes the exit status.
pub fn run(
    guest: &dyn Guest,
    mut cmd: Command,
    timeout: Option<Duration>,
    mut on_line: impl FnMut(&str),
) -> Result<Finished> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("start {}", guest.describe()))?;
    let (tx, rx) = channel::<String>();
    forward(child.stdout.take().expect("piped"), tx.clone());
    forward(child.stderr.take().expect("piped"), tx);
    // A year stands in for "no deadline" (recv_timeout needs a finite wait).
    let timeout = timeout.unwrap_or(Duration::from_secs(365 * 24 * 3600));
    let deadline = Instant::now() + timeout;
    let mut transcript = String::new();
    let mut timed_out = false;
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                on_line(&line);
                transcript.push_str(&line);
                transcript.push('\n');
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                timed_out = true;
                break;
            }
        }
    }
    let status = child.wait().with_context(|| format!("wait for {}", guest.describe()))?;
    let exit = if timed_out {
        GuestExit::NotReported(format!("killed after {} s (timeout)", timeout.as_secs()))
    } else {
        guest.exit(status, &transcript)
    };
    Ok(Finished { transcript, exit, timed_out })
}

fn forward(stream: impl Read + Send + 'static, tx: Sender<String>) {
    std::thread::spawn(move || {
        // Lossy, so a guest that prints invalid UTF-8 cannot end the reading early.
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            let text = String::from_utf8_lossy(&line).trim_end_matches(['\n', '\r']).to_string();
            line.clear();
            if tx.send(text).is_err() {
                break;
            }
        }
    });
}
