//! A Solo5 unikernel on its tender (spt: a seccomp-confined process; hvt: KVM). The
//! tender exits with the app's code.

use std::path::PathBuf;
use std::process::{Command, ExitStatus};

use super::{process_exit, Guest, GuestExit};

/// The tender and the devices it attaches.
#[derive(Debug, Clone)]
pub struct Tender {
    /// `tenders/spt/solo5-spt` or `tenders/hvt/solo5-hvt` in the Solo5 tree.
    pub tender: PathBuf,
    pub image: PathBuf,
    pub memory_mib: u32,
    /// The TAP for the manifest's `service0` net device.
    pub tap: Option<String>,
    /// The disk image for the manifest's `storage0` block device.
    pub disk: Option<PathBuf>,
}

impl Guest for Tender {
    fn command(&self, args: &[String]) -> Command {
        let mut cmd = Command::new(&self.tender);
        cmd.arg(format!("--mem={}", self.memory_mib));
        if let Some(tap) = &self.tap {
            cmd.arg(format!("--net:service0={tap}"));
        }
        if let Some(disk) = &self.disk {
            cmd.arg(format!("--block:storage0={}", disk.display()));
        }
        cmd.arg(&self.image).args(args);
        cmd
    }

    fn exit(&self, status: ExitStatus, _console: &str) -> GuestExit {
        process_exit(status)
    }

    fn describe(&self) -> String {
        self.tender.file_name().map_or_else(|| "solo5 tender".into(), |n| n.to_string_lossy().into_owned())
    }
}
