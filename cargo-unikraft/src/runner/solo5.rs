//! A Solo5 unikernel on its tender (spt: a seccomp-confined process; hvt: KVM). The
//! tender exits with the app's code.
//!
//! The tender joins the arguments after the image into one command line with single
//! spaces, and rt-solo5 splits it again with `shared_core::bootargs::split_cmdline`'s rule
//! (quotes and backslashes, as a POSIX shell). So each argument is quoted here with that
//! rule ([`quote_arg`]): an argument holding a space or a quote reaches the app whole.
//!
//! The tender also attaches the `--tap` itself, as a plain TAP, and cannot undo what the
//! TAP's last user left on it: QEMU turns on checksum and segmentation offloads, and the
//! host then sends TCP/UDP with unfinished checksums that the guest drops. So before
//! starting the tender, [`reset_tap_offloads`] turns them off (in the tool's network
//! namespace; a TAP the tool created in a fresh namespace never had them).

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
    /// The TAP for the manifest's `service` net device.
    pub tap: Option<String>,
    /// The disk image for the manifest's `storage` block device.
    pub disk: Option<PathBuf>,
}

impl Guest for Tender {
    fn command(&self, args: &[String]) -> Command {
        if let Some(tap) = &self.tap {
            if let Err(why) = reset_tap_offloads(tap) {
                eprintln!(
                    "cargo-unikraft: warning: could not turn off the offloads of TAP {tap} ({why}); if QEMU used it \
                     before, the guest will drop TCP and UDP: recreate it (`ip tuntap del/add dev {tap} mode tap`)"
                );
            }
        }
        let mut cmd = Command::new(&self.tender);
        cmd.arg(format!("--mem={}", self.memory_mib));
        if let Some(tap) = &self.tap {
            cmd.arg(format!("--net:service={tap}"));
        }
        if let Some(disk) = &self.disk {
            cmd.arg(format!("--block:storage={}", disk.display()));
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

/// Turns off checksum/segmentation offloads and the virtio-net header on TAP `ifname`
/// of the current network namespace, as the Solo5 tender (which attaches it as a plain
/// `IFF_TAP | IFF_NO_PI` TAP) needs. `Ok(false)` when there is no such interface (nothing
/// is created); an error when it cannot be attached (busy, or not a TAP).
pub fn reset_tap_offloads(ifname: &str) -> Result<bool, String> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ || ifname.contains('\0') {
        return Err("not an interface name".into());
    }
    let cname = std::ffi::CString::new(ifname).map_err(|e| e.to_string())?;
    // SAFETY: a NUL-terminated name.
    if unsafe { libc::if_nametoindex(cname.as_ptr()) } == 0 {
        return Ok(false);
    }
    // SAFETY: plain open(2) of a constant path.
    let raw = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if raw < 0 {
        return Err(format!("open /dev/net/tun: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: a fresh fd we own.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // struct ifreq: the name, then the flags (a short), padded to 40 bytes.
    let mut req = [0u8; 40];
    req[..ifname.len()].copy_from_slice(ifname.as_bytes());
    req[16..18].copy_from_slice(&((libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short).to_ne_bytes());
    // SAFETY: TUNSETIFF reads (and may write) a 40-byte ifreq.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, req.as_mut_ptr()) } < 0 {
        return Err(format!("attach: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: TUNSETOFFLOAD takes its argument by value.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETOFFLOAD, 0 as libc::c_ulong) } < 0 {
        return Err(format!("TUNSETOFFLOAD: {}", std::io::Error::last_os_error()));
    }
    Ok(true)
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
