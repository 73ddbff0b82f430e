//! The one loop that runs a guest and reads its console (stdout and stderr, interleaved as
//! they arrive) until it ends or a deadline passes.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::{abort, Guest, GuestExit};

/// What a finished run left behind.
#[derive(Debug)]
pub struct Finished {
    /// Every console line, each ending in `\n`.
    pub transcript: String,
    pub exit: GuestExit,
    /// Whether the deadline passed and the guest was killed.
    pub timed_out: bool,
    /// When the app aborted (status 134, as SIGABRT on Linux): that, with the last line
    /// it printed ([`abort::describe`]).
    pub aborted: Option<String>,
}

/// How long a guest may take.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// The whole run (`None`: no limit).
    pub total: Option<Duration>,
    /// Until the first console line, for guests that always print at boot
    /// ([`Guest::prints_at_boot`]): a guest silent for this long never booted (too little
    /// memory, a broken image) and is killed with that diagnosis.
    pub boot: Option<Duration>,
}

/// The boot limit `cargo unikraft run` uses: a Unikraft banner takes well under a second
/// under KVM and a few seconds under TCG on a loaded machine.
pub const DEFAULT_BOOT_TIMEOUT: Duration = Duration::from_secs(60);

impl Limits {
    pub fn total(total: Duration) -> Limits {
        Limits { total: Some(total), boot: Some(DEFAULT_BOOT_TIMEOUT.min(total)) }
    }
}

/// Runs `cmd` (a guest's command, possibly wrapped, e.g. in a network namespace), calls
/// `on_line` with each console line, and kills it when a limit passes. `guest` decodes the
/// exit status. The guest dies with this process (`PR_SET_PDEATHSIG`), so killing the
/// tool, even with SIGKILL, leaves no VM behind.
pub fn run(guest: &dyn Guest, mut cmd: Command, limits: Limits, mut on_line: impl FnMut(&str)) -> Result<Finished> {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches only the calling (child) process.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
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
    let started = Instant::now();
    let timeout = limits.total.unwrap_or(Duration::from_secs(365 * 24 * 3600));
    let deadline = started + timeout;
    let boot_deadline = limits.boot.filter(|_| guest.prints_at_boot()).map(|boot| started + boot);
    let mut transcript = String::new();
    let mut timed_out = false;
    let mut silent = false;
    loop {
        let next = match boot_deadline {
            Some(boot) if transcript.is_empty() => boot.min(deadline),
            _ => deadline,
        };
        match rx.recv_timeout(next.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                on_line(&line);
                transcript.push_str(&line);
                transcript.push('\n');
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                timed_out = true;
                silent = transcript.is_empty();
                break;
            }
        }
    }
    let status = child.wait().with_context(|| format!("wait for {}", guest.describe()))?;
    let exit = if timed_out && silent && guest.prints_at_boot() {
        GuestExit::NotReported(format!(
            "the guest printed nothing within {} s and was killed: it did not boot \
             (too little memory for the image? a broken image?)",
            started.elapsed().as_secs()
        ))
    } else if timed_out {
        GuestExit::NotReported(format!("killed after {} s (timeout)", timeout.as_secs()))
    } else {
        guest.exit(status, &transcript)
    };
    let aborted = (exit == GuestExit::App(abort::ABORT_STATUS) && abort::aborted(&transcript))
        .then(|| abort::describe(&transcript));
    if let Some(why) = &aborted {
        eprintln!("cargo-unikraft: the app {why}");
    }
    Ok(Finished { transcript, exit, timed_out, aborted })
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

#[cfg(test)]
mod tests {
    use std::process::ExitStatus;

    use super::*;

    /// `sh -c SCRIPT` standing in for a VM that prints a banner at boot.
    struct Shell(&'static str);

    impl Guest for Shell {
        fn command(&self, _args: &[String]) -> Command {
            let mut cmd = Command::new("sh");
            cmd.args(["-c", self.0]);
            cmd
        }
        fn exit(&self, status: ExitStatus, _console: &str) -> GuestExit {
            crate::runner::process_exit(status)
        }
        fn prints_at_boot(&self) -> bool {
            true
        }
        fn describe(&self) -> String {
            "sh".into()
        }
    }

    fn run_shell(script: &'static str, limits: Limits) -> (Finished, Duration) {
        let guest = Shell(script);
        let started = Instant::now();
        let finished = run(&guest, guest.command(&[]), limits, |_| {}).unwrap();
        (finished, started.elapsed())
    }

    #[test]
    fn a_silent_guest_is_reported_as_never_booted_at_the_boot_limit() {
        let limits = Limits { total: None, boot: Some(Duration::from_millis(300)) };
        let (finished, took) = run_shell("sleep 30", limits);
        assert!(took < Duration::from_secs(10), "took {took:?}");
        assert!(finished.timed_out);
        assert!(
            matches!(&finished.exit, GuestExit::NotReported(why) if why.contains("did not boot")),
            "{:?}",
            finished.exit
        );
    }

    #[test]
    fn a_guest_that_printed_is_held_only_to_the_total_limit() {
        let limits = Limits { total: Some(Duration::from_secs(20)), boot: Some(Duration::from_millis(300)) };
        let (finished, _) = run_shell("echo banner; sleep 1; printf 'bad \\377 utf8\\n'; exit 7", limits);
        assert_eq!(finished.exit, GuestExit::App(7));
        assert!(finished.transcript.contains("banner\n") && finished.transcript.contains("bad \u{fffd} utf8"));
        let limits = Limits { total: Some(Duration::from_millis(500)), boot: None };
        let (finished, _) = run_shell("echo banner; sleep 30", limits);
        assert!(
            matches!(&finished.exit, GuestExit::NotReported(why) if why.contains("timeout")),
            "{:?}",
            finished.exit
        );
    }
}
