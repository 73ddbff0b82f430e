//! The one seam for guests: how an app is started and how the end of what was started
//! maps to the app's exit code. One type per way of running an app:
//!
//! | type | runs | exit status |
//! |---|---|---|
//! | [`Process`] | a unix or hosted-musl executable | the process's own |
//! | [`qemu::Qemu`] | a Unikraft image under QEMU | decoded from `isa-debug-exit` |
//! | [`firecracker::Firecracker`] | a Unikraft `fc/x86_64` image | cannot be carried out of the VM |
//! | [`solo5::Tender`] | a Solo5 unikernel on spt or hvt | the tender's |
//!
//! [`console::run`] is the one loop that reads a guest's console until it ends or a
//! deadline passes.

pub mod abort;
pub mod backtrace;
pub mod cmdline;
pub mod console;
pub mod console_log;
pub mod firecracker;
pub mod gdb;
pub mod guest_env;
pub mod kvm;
pub mod qemu;
pub mod solo5;
pub mod usernet;
pub mod volume;

use std::path::PathBuf;
use std::process::{Command, ExitStatus};

/// QEMU accelerator: probe KVM and fall back to TCG (auto), or force one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Accel {
    Auto,
    Kvm,
    Tcg,
}

/// What the end of a guest says about the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestExit {
    /// The app exited with this code.
    App(u8),
    /// The guest stopped without the app reporting a code (crash, halt, a VMM error, a
    /// signal): never to be taken as success.
    NotReported(String),
}

impl GuestExit {
    /// The app's code, if it reported one.
    pub fn code(&self) -> Option<u8> {
        match self {
            GuestExit::App(code) => Some(*code),
            GuestExit::NotReported(_) => None,
        }
    }
}

/// A way of running an app.
pub trait Guest {
    /// The command that starts the app with these arguments.
    fn command(&self, args: &[String]) -> Command;
    /// What the runner's exit status (and, where the exit code travels partly on it, the
    /// console transcript) says about the app.
    fn exit(&self, status: ExitStatus, console: &str) -> GuestExit;
    /// Whether the guest always prints something at boot (Unikraft's banner), so that
    /// silence means it never booted.
    fn prints_at_boot(&self) -> bool {
        false
    }
    /// A short description for progress lines (`QEMU (TCG)`, `solo5-spt`...).
    fn describe(&self) -> String;
}

/// A plain executable (the unix backend, the hosted-musl harness): its status is the app's.
#[derive(Debug, Clone)]
pub struct Process {
    pub program: PathBuf,
    /// Variables set for the app (`RT_UNIX_TAP`, `RT_UNIX_BLOCK`).
    pub env: Vec<(String, String)>,
}

impl Process {
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Process { program: program.into(), env: Vec::new() }
    }
}

impl Guest for Process {
    fn command(&self, args: &[String]) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(args).envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    fn exit(&self, status: ExitStatus, _console: &str) -> GuestExit {
        process_exit(status)
    }

    fn describe(&self) -> String {
        self.program.display().to_string()
    }
}

/// A process whose exit status is the app's own (a process, a Solo5 tender).
pub fn process_exit(status: ExitStatus) -> GuestExit {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => GuestExit::App(code as u8),
        (None, Some(signal)) => GuestExit::NotReported(format!("killed by signal {signal}")),
        _ => GuestExit::NotReported(format!("ended with {status}")),
    }
}
