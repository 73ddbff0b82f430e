//! The uknetdev network device behind shared-core's ring interface.
//!
//! The C side (`glue/netdev.c`, compiled by Unikraft's build) does the Unikraft calls;
//! this side keeps the books. Pool slots move between three owners without a byte being
//! copied:
//!
//! ```text
//!   pool ──post_rx──▶ driver RX ring ──rx──▶ receive ring ──▶ smoltcp ──▶ pool
//!   smoltcp ──▶ transmit ring ──tx──▶ driver TX ring ──reclaim──▶ pool
//! ```
//!
//! While the driver holds a slot, its [`SlotId`] is parked in `lent` (indexed by slot),
//! so the id is never lost and never used twice. The pool reserves the driver's headroom
//! (virtio-net's header) before each buffer.
//!
//! On every `receive` the device tops the driver up to [`rx_posted_target`] buffers, then drains
//! it while it reports more frames (the batch), up to the receive ring's room. Receive
//! interrupts wake the executor's wait (see [`crate::Unikraft::wait_until`]).

use core::sync::atomic::{AtomicUsize, Ordering};
use std::boxed::Box;
use std::vec::Vec;

use shared_core::net::{Frame, NetDevice, NetInfo, RingContext, SlotId};
use shared_core::services::OpenError;

use crate::glue;

/// Receive buffers kept lent to the driver, at most: a 256-descriptor virtio ring holds
/// 128 (two descriptors per buffer), and a burst larger than what is posted waits in the
/// host's TAP queue or is dropped there. Fewer when the pool is small; see
/// [`rx_posted_target`].
const RX_POSTED_MAX: usize = 128;

/// Pool slots kept out of the driver's reach (receive and transmit sides together), so
/// that smoltcp can always build a frame.
const POOL_RESERVE: usize = 16;

/// Fewer receive buffers than this is worth a warning: a burst of that many frames
/// already overflows the ring.
const RX_POSTED_LOW: usize = 32;

/// How many receive buffers to keep lent to the driver, given the pool's size and how
/// many sent frames the driver may park (`tx_frames`).
///
/// virtio-net frees a sent buffer only inside a *later* transmit call. If the receive
/// buffers plus the parked transmit buffers could take the whole pool, smoltcp would
/// find no slot to build a frame in, nothing would be transmitted, and so nothing would
/// ever be freed (receive 128 + transmit 128 would be all of a 256-slot pool). Keeping
/// the two below the pool's size means a frame can always be built, and its transmit
/// frees the finished ones. See docs/unikraft.md for this and the driver's other traps.
fn rx_posted_target(capacity: usize, tx_frames: usize) -> usize {
    RX_POSTED_MAX.min(capacity / 2).min(capacity.saturating_sub(tx_frames + POOL_RESERVE)).max(1)
}

/// Frames taken from the driver per wake-up: all that are waiting (the default), or a
/// fixed number. `--rt-unikraft-rx-batch=1` (a runtime boot argument the app never sees)
/// gives the one-packet-per-wake-up behaviour `cargo xtask bench-net` compares against.
static RX_BATCH: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Sets how many frames one wake-up takes from the driver (at least 1).
pub fn set_rx_batch(frames: usize) {
    RX_BATCH.store(frames.max(1), Ordering::Relaxed);
}

/// An opened uknetdev device.
pub struct UkNet {
    info: NetInfo,
    started: bool,
    /// Slots lent to the driver (RX or TX), by slot index.
    lent: Vec<Option<SlotId>>,
    /// How many of `lent` are receive buffers.
    rx_lent: usize,
    /// How many receive buffers to keep lent ([`rx_posted_target`]), set at start.
    rx_target: usize,
    /// Scratch for reclaimed TX slots, allocated once.
    reclaimed: Box<[u16]>,
}

impl UkNet {
    /// Opens device `index` (0 = the first).
    pub fn open(index: u32) -> Result<Self, OpenError> {
        // SAFETY: plain call; the glue checks the index.
        let count = unsafe { glue::rtuk_net_count() };
        if count <= 0 {
            return Err(OpenError::NotFound(
                "Unikraft has no network device (boot with a virtio-net device, e.g. `cargo xtask kraft-run --tap IFNAME`; \
                 the app needs `devices = [\"net\"]` in [package.metadata.unikraft])"
                    .into(),
            ));
        }
        let mut info = unikraft_sys::uk_netdev_info::default();
        let mut mac = [0u8; 6];
        let mut mtu = 0u16;
        // SAFETY: valid out-pointers; `uk_netdev_info`'s layout is checked against the
        // headers by unikraft-sys's layout test.
        let rc = unsafe { glue::rtuk_net_open(index, &mut info, mac.as_mut_ptr(), &mut mtu) };
        if rc < 0 {
            return Err(OpenError::Failed(std::format!("uknetdev {index}: error {}", -rc)));
        }
        Ok(UkNet {
            info: NetInfo {
                mac,
                max_frame: usize::from(mtu) + 14,
                // The pool reserves the larger of the two: a slot serves both directions.
                headroom: usize::from(info.nb_encap_rx.max(info.nb_encap_tx)),
            },
            started: false,
            lent: Vec::new(),
            rx_lent: 0,
            rx_target: 0,
            reclaimed: std::vec![0u16; 0].into_boxed_slice(),
        })
    }

    /// Starts the device on the pool's memory (first use only): the glue gets the pool,
    /// the first receive buffers are posted, then the queues start (the driver fills its
    /// receive ring from those buffers).
    fn start(&mut self, ctx: &mut RingContext<'_>) -> bool {
        if self.started {
            return true;
        }
        let (base, stride, headroom) = ctx.pool.raw_layout();
        let slots = ctx.pool.capacity();
        // SAFETY: the pool's memory outlives the device (both live in the same RingPhy,
        // and the driver only touches slots lent to it, whose ids are parked in `lent`).
        if unsafe { glue::rtuk_net_attach(base, stride, headroom as u16, slots as u16) } < 0 {
            return false;
        }
        // SAFETY: plain call, after open.
        let tx_frames = usize::try_from(unsafe { glue::rtuk_net_tx_frames() }).unwrap_or(RX_POSTED_MAX);
        self.rx_target = rx_posted_target(slots, tx_frames);
        if self.rx_target < RX_POSTED_LOW {
            std::eprintln!(
                "rt-unikraft: warning: a packet pool of {slots} buffers is small for this device, whose transmit \
                 queue may hold {tx_frames} sent frames; only {} receive buffers are posted (set RingConfig::slots \
                 to at least {})",
                self.rx_target,
                tx_frames + POOL_RESERVE + RX_POSTED_MAX
            );
        }
        self.lent = (0..slots).map(|_| None).collect();
        self.reclaimed = std::vec![0u16; slots].into_boxed_slice();
        self.post_rx(ctx);
        // SAFETY: plain call.
        if unsafe { glue::rtuk_net_start() } < 0 {
            return false;
        }
        self.started = true;
        true
    }

    /// Tops the driver up to [`rx_posted_target`] receive buffers.
    fn post_rx(&mut self, ctx: &mut RingContext<'_>) {
        while self.rx_lent < self.rx_target {
            let Some(slot) = ctx.pool.alloc() else { break };
            let index = slot.index();
            // SAFETY: plain call with a slot index the glue checks.
            if unsafe { glue::rtuk_net_post_rx(index as u16) } < 0 {
                ctx.pool.free(slot);
                break;
            }
            self.lent[index] = Some(slot);
            self.rx_lent += 1;
        }
    }

    /// Takes frames from the driver while it reports more, the receive ring has room and
    /// `budget` allows. Returns how many, and whether the driver may still hold some.
    fn drain(&mut self, ctx: &mut RingContext<'_>, budget: usize) -> (usize, bool) {
        let mut frames = 0;
        loop {
            if ctx.ring.is_full() || frames == budget {
                return (frames, true);
            }
            let (mut slot, mut len) = (0u16, 0u16);
            // SAFETY: both are valid out-pointers.
            let status = unsafe { glue::rtuk_net_rx(&mut slot, &mut len) };
            if status <= 0 || status & 1 == 0 {
                return (frames, false);
            }
            let Some(id) = self.lent[usize::from(slot)].take() else { return (frames, false) };
            self.rx_lent -= 1;
            frames += 1;
            let len = usize::from(len);
            if len > ctx.pool.slot_size() {
                ctx.counters.rx_dropped += 1;
                ctx.pool.free(id);
            } else {
                ctx.counters.rx_packets += 1;
                ctx.counters.rx_bytes += len as u64;
                if let Err(frame) = ctx.ring.push(Frame { slot: id, len }) {
                    ctx.counters.rx_dropped += 1;
                    ctx.pool.free(frame.slot);
                }
            }
            if status & 2 == 0 {
                return (frames, false);
            }
        }
    }

    fn reclaim_tx(&mut self, ctx: &mut RingContext<'_>) {
        // SAFETY: `reclaimed` has room for its length.
        let n = unsafe { glue::rtuk_net_tx_reclaim(self.reclaimed.as_mut_ptr(), self.reclaimed.len() as i32) };
        for &slot in &self.reclaimed[..n.max(0) as usize] {
            if let Some(id) = self.lent[usize::from(slot)].take() {
                ctx.pool.free(id);
            }
        }
    }
}

impl NetDevice for UkNet {
    fn info(&self) -> NetInfo {
        self.info
    }

    fn receive(&mut self, mut ctx: RingContext<'_>) {
        if !self.start(&mut ctx) {
            return;
        }
        self.reclaim_tx(&mut ctx);
        // The driver refills its receive ring only inside rx_one, from the buffers posted
        // so far. So post, drain, and repeat: the rx_one that finds no more frames also
        // hands the driver the buffers posted just before it, and the ring never runs
        // dry while frames keep coming.
        let mut budget = RX_BATCH.load(Ordering::Relaxed);
        loop {
            self.post_rx(&mut ctx);
            let (frames, more) = self.drain(&mut ctx, budget);
            budget -= frames.min(budget);
            if more || budget == 0 {
                // Frames are left in the driver, whose interrupt stays off until it is
                // drained: make the executor's next wait return at once instead.
                // SAFETY: plain call.
                unsafe { glue::rtuk_kick() };
                break;
            }
            if frames == 0 {
                break;
            }
        }
    }

    fn transmit(&mut self, mut ctx: RingContext<'_>) {
        if !self.start(&mut ctx) {
            return;
        }
        self.reclaim_tx(&mut ctx);
        while let Some(frame) = ctx.ring.pop() {
            let index = frame.slot.index();
            // SAFETY: plain call; the slot's bytes stay valid while it is lent.
            let rc = unsafe { glue::rtuk_net_tx(index as u16, frame.len as u16) };
            match rc {
                1 => {
                    ctx.counters.tx_packets += 1;
                    ctx.counters.tx_bytes += frame.len as u64;
                    self.lent[index] = Some(frame.slot);
                }
                0 => {
                    // Ring full: keep the frame for the next flush, which the next
                    // wait must not delay.
                    // SAFETY: plain call.
                    unsafe { glue::rtuk_kick() };
                    if let Err(frame) = ctx.ring.push_front(frame) {
                        ctx.counters.tx_dropped += 1;
                        ctx.pool.free(frame.slot);
                    }
                    break;
                }
                _ => {
                    ctx.counters.tx_dropped += 1;
                    ctx.pool.free(frame.slot);
                }
            }
        }
        self.reclaim_tx(&mut ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receive_and_parked_transmit_buffers_never_take_the_whole_pool() {
        for capacity in [32usize, 64, 128, 200, 256, 384, 1024] {
            for tx_frames in [0usize, 32, 64, 128, 256] {
                let rx = rx_posted_target(capacity, tx_frames);
                assert!(rx >= 1);
                if capacity > tx_frames + POOL_RESERVE {
                    assert!(rx + tx_frames < capacity, "capacity {capacity}, tx {tx_frames}: rx {rx}");
                }
            }
        }
        // The default pool (256) with virtio's 128-frame transmit queue.
        assert_eq!(rx_posted_target(256, 128), 112);
        assert_eq!(rx_posted_target(1024, 128), RX_POSTED_MAX);
    }
}
