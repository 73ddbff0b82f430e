//! A Linux TAP device behind the ring interface: one frame per `read`/`write`.
//!
//! The fd is non-blocking; `receive` reads until the kernel queue is empty or the receive
//! ring is full, and the executor's idle wait polls the fd for readability.
//!
//! A persistent TAP keeps settings its last user made. QEMU turns on checksum and
//! segmentation offloads (`TUNSETOFFLOAD`) and virtio-net headers (`IFF_VNET_HDR`); with
//! offloads left on, the host sends TCP/UDP with unfinished checksums, which a reader of
//! plain frames cannot know about and smoltcp drops. So attaching sets everything this
//! device needs: flags `IFF_TAP | IFF_NO_PI` without `IFF_VNET_HDR` (checked back with
//! `TUNGETIFF`) and no offloads; it refuses with a message if the kernel does not agree.

use std::boxed::Box;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use shared_core::net::{Frame, NetDevice, NetInfo, RingContext};
use shared_core::services::OpenError;

const MAX_FRAME: usize = 1514;

/// An attached TAP interface.
pub struct TapDevice {
    fd: OwnedFd,
    mac: [u8; 6],
    /// Where frames go when the pool is empty: they must be read to be dropped.
    scratch: Box<[u8]>,
}

#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

impl TapDevice {
    /// Attaches to TAP interface `ifname` (created if absent, which needs CAP_NET_ADMIN).
    pub fn open(ifname: &str) -> Result<Self, OpenError> {
        if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ {
            return Err(OpenError::Failed(format!("bad TAP interface name {ifname:?}")));
        }
        // SAFETY: plain open(2) of a constant path.
        let raw = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC) };
        if raw < 0 {
            return Err(OpenError::Failed(format!("cannot open /dev/net/tun: {}", std::io::Error::last_os_error())));
        }
        // SAFETY: `raw` is a fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut req = IfReq { name: [0; libc::IFNAMSIZ], flags: (libc::IFF_TAP | libc::IFF_NO_PI) as _, _pad: [0; 22] };
        req.name[..ifname.len()].copy_from_slice(ifname.as_bytes());
        // SAFETY: TUNSETIFF reads an ifreq, which `IfReq` lays out.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req) } < 0 {
            return Err(OpenError::Failed(format!(
                "cannot attach TAP {ifname}: {} (needs root/CAP_NET_ADMIN, or a persistent TAP owned by you: `ip tuntap add dev {ifname} mode tap user $USER`)",
                std::io::Error::last_os_error()
            )));
        }
        configure(&fd, ifname)?;
        // A locally administered unicast MAC, distinct from the host side's.
        let mut mac = [0u8; 6];
        <crate::Unix as shared_core::services::Platform>::fill_random(&mut mac);
        mac[0] = (mac[0] & 0xfe) | 0x02;
        crate::watch_fd(fd.as_raw_fd());
        Ok(TapDevice { fd, mac, scratch: vec![0u8; 65536].into_boxed_slice() })
    }

    fn read_into(&self, buf: &mut [u8]) -> Option<usize> {
        // SAFETY: reads at most `buf.len()` bytes into `buf`.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        (n > 0).then_some(n as usize)
    }
}

/// Makes the attached TAP carry plain frames: no virtio-net header, no offloads (see the
/// module docs for why a TAP may have them).
fn configure(fd: &OwnedFd, ifname: &str) -> Result<(), OpenError> {
    let mut req = IfReq { name: [0; libc::IFNAMSIZ], flags: 0, _pad: [0; 22] };
    // SAFETY: TUNGETIFF writes an ifreq, which `IfReq` lays out.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNGETIFF, &mut req) } < 0 {
        return Err(OpenError::Failed(format!(
            "cannot read the flags of TAP {ifname}: {}",
            std::io::Error::last_os_error()
        )));
    }
    let wanted = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
    let unwanted = libc::IFF_VNET_HDR as libc::c_short;
    if req.flags & wanted != wanted || req.flags & unwanted != 0 {
        return Err(OpenError::Failed(format!(
            "TAP {ifname} has flags {:#x}, not IFF_TAP|IFF_NO_PI without IFF_VNET_HDR: rt-unix reads plain \
             Ethernet frames (recreate it: `ip tuntap del dev {ifname} mode tap; ip tuntap add dev {ifname} mode tap`)",
            req.flags
        )));
    }
    // SAFETY: TUNSETOFFLOAD takes its argument by value.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETOFFLOAD, 0 as libc::c_ulong) } < 0 {
        return Err(OpenError::Failed(format!(
            "cannot turn off checksum/segmentation offloads on TAP {ifname}: {} (a TAP that QEMU used keeps them, \
             and TCP/UDP then arrive with unfinished checksums; recreate the TAP)",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

impl Drop for TapDevice {
    fn drop(&mut self) {
        crate::unwatch_fd(self.fd.as_raw_fd());
    }
}

impl NetDevice for TapDevice {
    fn info(&self) -> NetInfo {
        NetInfo { mac: self.mac, max_frame: MAX_FRAME, headroom: 0 }
    }

    fn receive(&mut self, ctx: RingContext<'_>) {
        while !ctx.ring.is_full() {
            let Some(slot) = ctx.pool.alloc() else {
                // Pool exhausted: read the frame into scratch and drop it, so the
                // kernel queue drains and memory stays fixed.
                let mut scratch = std::mem::take(&mut self.scratch);
                let got = self.read_into(&mut scratch);
                self.scratch = scratch;
                match got {
                    Some(_) => {
                        ctx.counters.rx_dropped += 1;
                        continue;
                    }
                    None => break,
                }
            };
            match self.read_into(ctx.pool.buf_mut(&slot)) {
                Some(len) => {
                    ctx.counters.rx_packets += 1;
                    ctx.counters.rx_bytes += len as u64;
                    // Cannot fail: the loop checks the ring has room.
                    let _ = ctx.ring.push(Frame { slot, len });
                }
                None => {
                    ctx.pool.free(slot);
                    break;
                }
            }
        }
    }

    fn transmit(&mut self, ctx: RingContext<'_>) {
        while let Some(frame) = ctx.ring.pop() {
            let buf = &ctx.pool.buf(&frame.slot)[..frame.len];
            // SAFETY: writes `buf.len()` bytes from `buf`.
            let n = unsafe { libc::write(self.fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock {
                // Kernel queue full: keep the frame for the next flush.
                let _ = ctx.ring.push_front(frame);
                break;
            }
            if n == frame.len as isize {
                ctx.counters.tx_packets += 1;
                ctx.counters.tx_bytes += frame.len as u64;
            } else {
                ctx.counters.tx_dropped += 1;
            }
            ctx.pool.free(frame.slot);
        }
    }
}
