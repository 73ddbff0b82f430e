//! A Solo5 unikernel on its tender (spt: a seccomp-confined process; hvt: KVM). The
//! tender exits with the app's code.
//!
//! The tender joins the arguments after the image into one command line with single
//! spaces, and rt-solo5 splits it again with `shared_core::bootargs::split_cmdline`'s rule
//! (quotes and backslashes, as a POSIX shell). So each argument is quoted here with that
//! rule ([`quote_arg`]): an argument holding a space or a quote reaches the app whole.

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
        cmd.arg(&self.image).args(args.iter().map(|a| quote_arg(a)));
        cmd
    }

    fn exit(&self, status: ExitStatus, _console: &str) -> GuestExit {
        process_exit(status)
    }

    fn describe(&self) -> String {
        self.tender.file_name().map_or_else(|| "solo5 tender".into(), |n| n.to_string_lossy().into_owned())
    }
}

/// Quotes `arg` for the guest's command-line split (`shared_core::bootargs::quote_arg`,
/// the same rule; cargo-unikraft does not link shared-core): unchanged when it holds no
/// space, quote or backslash, else in single quotes, with a `'` inside as `'\''`.
pub fn quote_arg(arg: &str) -> String {
    let plain =
        !arg.is_empty() && !arg.bytes().any(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\'' | b'"' | b'\\'));
    if plain {
        return arg.to_string();
    }
    format!("'{}'", arg.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::quote_arg;

    #[test]
    fn arguments_are_quoted_for_the_guest_split() {
        assert_eq!(quote_arg("--port=7"), "--port=7");
        assert_eq!(quote_arg("--msg=a b"), "'--msg=a b'");
        assert_eq!(quote_arg("it's"), "'it'\\''s'");
        assert_eq!(quote_arg(""), "''");
        assert_eq!(quote_arg("a\\b"), "'a\\b'");
    }
}
