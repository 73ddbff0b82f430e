//! The Solo5 network device (`solo5_net_*`) behind shared-core's ring interface.
//!
//! Solo5 moves one packet per call and copies it across the tender boundary anyway, so
//! `receive` reads straight into free pool slots until the tender has no more (or the
//! ring is full), and `transmit` writes each queued frame from its slot and frees it.
//! `solo5_yield` returns when the device has a packet, which wakes the executor.

use alloc::string::String;

use shared_core::net::{Frame, NetDevice, NetInfo, RingContext};
use shared_core::services::OpenError;

use solo5_sys::{solo5_net_acquire, solo5_net_info, solo5_net_read, solo5_net_write, SOLO5_R_AGAIN, SOLO5_R_OK};

/// An acquired Solo5 network device.
pub struct Solo5Net {
    handle: u64,
    info: NetInfo,
}

impl Solo5Net {
    /// Acquires the manifest's device `name` (`""` = `service`: what cargo-unikraft
    /// declares, and the name urunc gives its tender).
    pub fn open(name: &str) -> Result<Self, OpenError> {
        let name = if name.is_empty() { "service" } else { name };
        let mut cname = String::from(name);
        cname.push('\0');
        let mut handle = 0u64;
        let mut info = solo5_net_info::default();
        // SAFETY: a NUL-terminated name and valid out-pointers.
        let rc = unsafe { solo5_net_acquire(cname.as_ptr().cast(), &mut handle, &mut info) };
        if rc != SOLO5_R_OK {
            return Err(OpenError::NotFound(alloc::format!(
                "solo5 net device `{name}` (is it in the manifest, i.e. `devices = [\"net\"]`, and attached with \
                 `--net:{name}=TAP`? solo5_net_acquire returned {rc})"
            )));
        }
        Ok(Solo5Net { handle, info: NetInfo { mac: info.mac_address, max_frame: info.mtu + 14, headroom: 0 } })
    }
}

impl NetDevice for Solo5Net {
    fn info(&self) -> NetInfo {
        self.info
    }

    fn receive(&mut self, ctx: RingContext<'_>) {
        while !ctx.ring.is_full() {
            let Some(slot) = ctx.pool.alloc() else { break };
            let buf = ctx.pool.buf_mut(&slot);
            let mut len = 0usize;
            // SAFETY: `buf` is valid for its length, which is at least mtu + 14.
            let rc = unsafe { solo5_net_read(self.handle, buf.as_mut_ptr(), buf.len(), &mut len) };
            if rc != SOLO5_R_OK {
                ctx.pool.free(slot);
                if rc != SOLO5_R_AGAIN {
                    ctx.counters.rx_dropped += 1;
                }
                break;
            }
            ctx.counters.rx_packets += 1;
            ctx.counters.rx_bytes += len as u64;
            if let Err(frame) = ctx.ring.push(Frame { slot, len }) {
                ctx.counters.rx_dropped += 1;
                ctx.pool.free(frame.slot);
            }
        }
    }

    fn transmit(&mut self, ctx: RingContext<'_>) {
        while let Some(frame) = ctx.ring.pop() {
            let buf = &ctx.pool.buf(&frame.slot)[..frame.len];
            // SAFETY: `buf` is valid for its length.
            let rc = unsafe { solo5_net_write(self.handle, buf.as_ptr(), buf.len()) };
            if rc == SOLO5_R_OK {
                ctx.counters.tx_packets += 1;
                ctx.counters.tx_bytes += frame.len as u64;
            } else {
                ctx.counters.tx_dropped += 1;
            }
            ctx.pool.free(frame.slot);
        }
    }
}
