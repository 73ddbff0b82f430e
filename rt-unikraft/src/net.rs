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
//!
//! Receive buffers are `RTUK_NET_MAX_FRAME` (1514) bytes at most, what the driver accepts: a
//! longer frame (a jumbo frame from a host with a larger MTU) does not fit, and the VMM
//! drops it before the guest sees it. A frame the driver itself rejects takes its buffer
//! with it (the driver never gives it back); that is counted in `rx_dropped` and in
//! [`UkNet::lost_buffers`], and another buffer is posted in its place. The length the
//! driver reports counts the virtio-net header; [`crate::frame`] works out the frame's
//! real length and completes partial checksums.
//!
//! # Dropping the device
//!
//! Unikraft 0.16.3 cannot stop a network device: uknetdev has no stop and no queue
//! release. Once started, the device holds receive buffers from the packet pool and
//! writes into them by DMA whenever a frame arrives, for as long as the VM runs, whatever
//! happens to the `UkNet` or the `Stack` around it. So the pool's memory is never freed:
//! before lending the first slot the device calls
//! [`PacketPool::keep_memory_for_device`](shared_core::net::PacketPool::keep_memory_for_device),
//! a deliberate leak of one pool (512 KiB by default) per boot. Dropping the `UkNet` tells
//! the glue (`rtuk_net_close`), and a later [`UkNet::open`] is refused with a message,
//! rather than lending the device a second pool.

use core::sync::atomic::{AtomicUsize, Ordering};
use std::boxed::Box;
use std::vec::Vec;

use shared_core::net::{Frame, Ipv4Assignment, NetDevice, NetInfo, RingContext, SlotId};
use shared_core::services::OpenError;

use crate::frame;
use crate::glue::{
    self, NetRxFrame, RTUK_NET_DEFAULT_MTU, RTUK_NET_EINFO_IPV4_CIDR, RTUK_NET_EINFO_IPV4_DNS0, RTUK_NET_EINFO_IPV4_GW,
    RTUK_NET_MAX_FRAME, RTUK_NET_MAX_SLOTS, RTUK_NET_RX_DROPPED, RTUK_NET_RX_FRAME, RTUK_NET_RX_F_PARTIAL_CSUM,
    RTUK_NET_RX_MORE, RTUK_NET_TX_FULL, RTUK_NET_TX_QUEUED,
};

/// Receive buffers kept lent to the driver, at most: a 256-descriptor virtio ring holds
/// 128 (two descriptors per buffer), and a burst larger than what is posted waits in the
/// host's TAP queue or is dropped there. Fewer when the pool is small; see
/// [`rx_posted_target`].
const RX_POSTED_MAX: usize = 128;

/// Pool slots kept out of the driver's reach (receive and transmit sides together), so
/// that smoltcp can always build a frame.
const POOL_RESERVE: usize = 16;

/// The fewest receive buffers a device is started with. Below this the pool is too small
/// for the device: the sent frames the driver parks take what is left, and the guest
/// stopped receiving altogether (seen with a 64-slot pool: one buffer posted, not even
/// ARP answered). A start with fewer is an error that says how large the pool must be.
const RX_POSTED_MIN: usize = 32;

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

/// Why a pool of `slots` cannot serve a device whose transmit queue parks `tx_frames`.
fn pool_too_small(slots: usize, tx_frames: usize, rx_target: usize) -> std::string::String {
    std::format!(
        "a packet pool of {slots} buffers is too small for this device, whose transmit queue may hold \
         {tx_frames} sent frames: only {rx_target} receive buffers would be posted, and the guest would stop \
         receiving; set RingConfig::slots to at least {} (at least {} for full receive bursts)",
        tx_frames + POOL_RESERVE + RX_POSTED_MIN,
        tx_frames + POOL_RESERVE + RX_POSTED_MAX
    )
}

/// Frames taken from the driver per wake-up: all that are waiting (the default), or a
/// fixed number. `--rt-unikraft-rx-batch=1` (a runtime boot argument the app never sees)
/// gives the one-packet-per-wake-up behaviour `cargo xtask bench-net` compares against.
static RX_BATCH: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Sets how many frames one wake-up takes from the driver (at least 1).
pub fn set_rx_batch(frames: usize) {
    RX_BATCH.store(frames.max(1), Ordering::Relaxed);
}

/// A glue error (a negative errno) in words: "No such device (os error 19)".
fn errno_text(rc: i32) -> std::string::String {
    std::io::Error::from_raw_os_error(rc.saturating_neg()).to_string()
}

/// An opened uknetdev device.
pub struct UkNet {
    index: u32,
    info: NetInfo,
    started: bool,
    /// What the platform assigned (Unikraft's `netdev.ip=`), read at open.
    assigned: Option<Ipv4Assignment>,
    /// Receive buffer length: the pool's slot size, at most [`RTUK_NET_MAX_FRAME`].
    rx_len: usize,
    /// Buffers the driver discarded together with a frame (see the module docs).
    lost_buffers: u64,
    /// Slots lent to the driver (RX or TX), by slot index.
    lent: Vec<Option<SlotId>>,
    /// How many of `lent` are receive buffers.
    rx_lent: usize,
    /// How many receive buffers to keep lent ([`rx_posted_target`]), set at start.
    rx_target: usize,
    /// Scratch for reclaimed TX slots, allocated once.
    reclaimed: Box<[u16]>,
    /// The memory of the pool the device started on: the only one it may lend slots of.
    pool_base: usize,
}

/// Who opens a network device: rt-unikraft drives one at a time, for one of them.
#[derive(Clone, Copy)]
enum Opener {
    /// The app, through shared-core's `Stack` (`services::open_net`).
    Stack,
    /// std's sockets, through the socket driver's network thread.
    #[cfg_attr(not(any(feature = "sockets", test)), allow(dead_code))]
    Sockets,
}

impl UkNet {
    /// Opens device `index` (0 = the first) for shared-core's `Stack` (`services::open_net`).
    pub fn open(index: u32) -> Result<Self, OpenError> {
        Self::open_as(index, Opener::Stack)
    }

    /// Opens device `index` for std's sockets (the socket driver's network thread).
    #[cfg(any(feature = "sockets", test))]
    pub(crate) fn open_for_sockets(index: u32) -> Result<Self, OpenError> {
        Self::open_as(index, Opener::Sockets)
    }

    /// Opens device `index` for `opener`; a device already driven is refused naming the
    /// other user (this is the one place that words it).
    fn open_as(index: u32, opener: Opener) -> Result<Self, OpenError> {
        // SAFETY: plain call; the glue checks the index.
        let count = unsafe { glue::rtuk_net_count() };
        if count <= 0 {
            return Err(OpenError::NotFound(
                "Unikraft has no network device (boot with a virtio-net device, e.g. `cargo unikraft run -p HOST:GUEST` or `--tap IFNAME`; \
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
        if rc == -libc::ENODEV {
            return Err(OpenError::NotFound(std::format!(
                "Unikraft has {count} network device(s); there is no device {index}"
            )));
        }
        if rc == -libc::ESHUTDOWN {
            return Err(OpenError::Failed(std::format!(
                "network device {index} cannot be opened again: it was opened and dropped before, and Unikraft \
                 cannot stop a network device, so rt-unikraft drives it once per boot (keep the Stack for the \
                 program's lifetime)"
            )));
        }
        if rc == -libc::EBUSY {
            #[cfg(any(feature = "sockets", test))]
            let sockets_own_it = crate::socket::thread::OWNS_NIC.load(Ordering::SeqCst);
            #[cfg(not(any(feature = "sockets", test)))]
            let sockets_own_it = false;
            let holder = match (opener, sockets_own_it) {
                (Opener::Stack, true) => {
                    "std's sockets (`sockets = true`) already drive it: an app uses std::net sockets or shared-core's \
                     Stack (services::open_net), not both"
                }
                (Opener::Sockets, _) => {
                    "the app opened it through shared-core's Stack (services::open_net): an app uses std::net sockets \
                     or that Stack, not both"
                }
                (Opener::Stack, false) => "one is already open",
            };
            return Err(OpenError::Failed(std::format!(
                "network device {index} cannot be opened: rt-unikraft drives one network device at a time, and {holder}"
            )));
        }
        if rc < 0 {
            return Err(OpenError::Failed(std::format!(
                "uknetdev {index}: the driver could not probe or configure the device or its transmit queue: {}",
                errno_text(rc)
            )));
        }
        let assigned = platform_ipv4()?;
        Ok(UkNet {
            index,
            assigned,
            info: NetInfo {
                mac,
                max_frame: (usize::from(if mtu == 0 { RTUK_NET_DEFAULT_MTU } else { mtu }) + frame::ETHERNET_HEADER)
                    .min(RTUK_NET_MAX_FRAME),
                // The pool reserves the larger of the two: a slot serves both directions.
                headroom: usize::from(info.nb_encap_rx.max(info.nb_encap_tx)),
            },
            started: false,
            rx_len: 0,
            lost_buffers: 0,
            lent: Vec::new(),
            rx_lent: 0,
            rx_target: 0,
            reclaimed: std::vec![0u16; 0].into_boxed_slice(),
            pool_base: 0,
        })
    }

    /// Buffers the driver discarded together with a frame it rejected. They are never
    /// given back, so the pool is that much smaller; with receive buffers sized to what
    /// the driver accepts this stays 0 (see the module docs).
    pub fn lost_buffers(&self) -> u64 {
        self.lost_buffers
    }

    /// Starts the device on the pool's memory (first use only), or stops the app with a
    /// message that says why it cannot: a device that silently never receives is worse.
    ///
    /// Probing and configuring the device and its transmit queue happen in [`Self::open`],
    /// whose errors the app gets. What needs the pool (it is created after `open`, by the
    /// stack) happens here: the receive queue is filled from the pool's slots as it is
    /// set up.
    fn start(&mut self, ctx: &mut RingContext<'_>) {
        if self.started {
            // Slot ids and the driver's buffers belong to the pool the device started on.
            assert!(
                ctx.pool.raw_layout().0 as usize == self.pool_base,
                "rt-unikraft: network device {} was moved to another packet pool after it started; it only \
                 lends the buffers of its first one",
                self.index
            );
            return;
        }
        if let Err(why) = self.try_start(ctx) {
            panic!("rt-unikraft: network device {} could not start: {why}", self.index);
        }
    }

    fn try_start(&mut self, ctx: &mut RingContext<'_>) -> Result<(), std::string::String> {
        let (base, stride, headroom) = ctx.pool.raw_layout();
        let slots = ctx.pool.capacity();
        if slots > RTUK_NET_MAX_SLOTS {
            return Err(std::format!(
                "its packet pool has {slots} buffers, more than the {RTUK_NET_MAX_SLOTS} the glue can lend \
                 (set RingConfig::slots to at most {RTUK_NET_MAX_SLOTS})"
            ));
        }
        let headroom = u16::try_from(headroom).map_err(|_| std::format!("a headroom of {headroom} bytes"))?;
        // What the driver accepts, so that it never receives a frame it would reject.
        self.rx_len = ctx.pool.slot_size().min(RTUK_NET_MAX_FRAME);
        // The device may write into lent buffers until the VM ends (see the module docs).
        ctx.pool.keep_memory_for_device();
        self.pool_base = base as usize;
        // SAFETY: the pool's memory is never freed from here on (kept for the device just
        // above), and never moves. While this UkNet lives, the driver only touches slots
        // lent to it, whose ids are parked in `lent`, and `start` refuses any other pool;
        // after it is dropped the slots still lent stay the device's for good, since
        // nothing frees their memory. `slots` and `rx_len` fit in u16 (checked above;
        // RTUK_NET_MAX_FRAME < 65536).
        let rc = unsafe { glue::rtuk_net_attach(base, stride, headroom, slots as u16, self.rx_len as u16) };
        if rc < 0 {
            return Err(std::format!("the glue refused the packet pool: {}", errno_text(rc)));
        }
        // SAFETY: plain call, after open.
        let tx_frames = usize::try_from(unsafe { glue::rtuk_net_tx_frames() }).unwrap_or(RX_POSTED_MAX);
        self.rx_target = rx_posted_target(slots, tx_frames);
        if self.rx_target < RX_POSTED_MIN {
            return Err(pool_too_small(slots, tx_frames, self.rx_target));
        }
        self.lent = (0..slots).map(|_| None).collect();
        self.reclaimed = std::vec![0u16; slots].into_boxed_slice();
        self.post_rx(ctx);
        // SAFETY: plain call.
        let rc = unsafe { glue::rtuk_net_start() };
        if rc < 0 {
            return Err(std::format!("setting up its receive queue or starting it failed: {}", errno_text(rc)));
        }
        self.started = true;
        Ok(())
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
            let mut rx = NetRxFrame::default();
            // SAFETY: a valid out-pointer (its layout is checked against rt_glue.h).
            let status = unsafe { glue::rtuk_net_rx(&mut rx) };
            if status < 0 {
                return (frames, false);
            }
            if status & RTUK_NET_RX_DROPPED != 0 {
                // The driver took a buffer with a frame it rejected and kept it: count
                // both, and post another in its place (its slot stays parked in `lent`).
                ctx.counters.rx_dropped += 1;
                self.lost_buffers += 1;
                self.rx_lent = self.rx_lent.saturating_sub(1);
                if self.lost_buffers == 1 {
                    std::eprintln!(
                        "rt-unikraft: warning: network device {} rejected a received frame and kept its buffer \
                         (counted in rx_dropped; each such frame makes the packet pool one buffer smaller)",
                        self.index
                    );
                }
                frames += 1;
            }
            if status & RTUK_NET_RX_FRAME != 0 {
                frames += 1;
                self.accept(ctx, rx);
            }
            if status & RTUK_NET_RX_MORE == 0 {
                return (frames, false);
            }
        }
    }

    /// Puts one received frame on the receive ring, or drops it (counted).
    fn accept(&mut self, ctx: &mut RingContext<'_>, rx: NetRxFrame) {
        let Some(id) = self.lent.get_mut(usize::from(rx.slot)).and_then(Option::take) else {
            // Not a slot the driver holds: a glue bug; nothing to give back.
            ctx.counters.rx_dropped += 1;
            return;
        };
        self.rx_lent -= 1;
        let buf = ctx.pool.buf_mut(&id);
        let len = frame::received_len(usize::from(rx.len), usize::from(rx.header), self.rx_len.min(buf.len()));
        let len = frame::ip_frame_len(&buf[..len]);
        if len < frame::ETHERNET_HEADER {
            ctx.counters.rx_dropped += 1;
            ctx.pool.free(id);
            return;
        }
        if rx.flags & RTUK_NET_RX_F_PARTIAL_CSUM != 0 {
            // A field outside the frame leaves it as it is; smoltcp then drops it.
            frame::complete_partial_checksum(&mut buf[..len], usize::from(rx.csum_start), usize::from(rx.csum_offset));
        }
        ctx.counters.rx_packets += 1;
        ctx.counters.rx_bytes += len as u64;
        if let Err(frame) = ctx.ring.push(Frame { slot: id, len }) {
            ctx.counters.rx_dropped += 1;
            ctx.pool.free(frame.slot);
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

impl Drop for UkNet {
    fn drop(&mut self) {
        // The device cannot be stopped, only given up: its pool's memory stays allocated
        // (kept at start), and the glue refuses a later open (see the module docs).
        // SAFETY: plain call; nothing is passed.
        unsafe { glue::rtuk_net_close() };
    }
}

impl NetDevice for UkNet {
    fn info(&self) -> NetInfo {
        self.info
    }

    fn assigned_ipv4(&self) -> Option<Ipv4Assignment> {
        self.assigned
    }

    fn receive(&mut self, mut ctx: RingContext<'_>) {
        self.start(&mut ctx);
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
        self.start(&mut ctx);
        self.reclaim_tx(&mut ctx);
        while let Some(frame) = ctx.ring.pop() {
            let index = frame.slot.index();
            // SAFETY: plain call; the slot's bytes stay valid while it is lent.
            let rc = unsafe { glue::rtuk_net_tx(index as u16, frame.len as u16) };
            match rc {
                RTUK_NET_TX_QUEUED => {
                    ctx.counters.tx_packets += 1;
                    ctx.counters.tx_bytes += frame.len as u64;
                    self.lent[index] = Some(frame.slot);
                }
                RTUK_NET_TX_FULL => {
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

/// The IPv4 settings the platform gave the open device (`netdev.ip=<cidr>:<gw>:<dns>`),
/// or `None`. A malformed one fails the open with a message naming the field: running
/// with an address nobody asked for is worse than not running.
fn platform_ipv4() -> Result<Option<Ipv4Assignment>, OpenError> {
    let read = |kind: core::ffi::c_int| -> Result<Option<std::string::String>, OpenError> {
        let mut buf = [0u8; 64];
        // SAFETY: `buf` is valid for `buf.len()` bytes; the glue writes at most that many.
        let n = unsafe { glue::rtuk_net_einfo(kind, buf.as_mut_ptr().cast(), buf.len()) };
        match usize::try_from(n) {
            Ok(0) => Ok(None),
            Ok(n) => Ok(Some(std::string::String::from_utf8_lossy(&buf[..n]).into_owned())),
            Err(_) if n == -libc::ENOSPC => {
                Err(OpenError::Failed("netdev.ip: a field is longer than an IPv4 setting can be".into()))
            }
            Err(_) => Err(OpenError::Failed(std::format!("netdev.ip: cannot read it: {}", errno_text(n)))),
        }
    };
    let Some(cidr) = read(RTUK_NET_EINFO_IPV4_CIDR)? else { return Ok(None) };
    let gateway = read(RTUK_NET_EINFO_IPV4_GW)?;
    let dns = read(RTUK_NET_EINFO_IPV4_DNS0)?;
    Ipv4Assignment::parse(&cidr, gateway.as_deref(), dns.as_deref()).map(Some).map_err(OpenError::Failed)
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

    #[test]
    fn a_pool_the_device_would_starve_is_refused_with_the_size_it_needs() {
        // 64 slots against a 128-frame transmit queue: one receive buffer, a deaf guest.
        assert!(rx_posted_target(64, 128) < RX_POSTED_MIN);
        let why = pool_too_small(64, 128, rx_posted_target(64, 128));
        assert!(why.contains("64 buffers") && why.contains("at least 176"), "{why}");
        // The default pool is enough.
        assert!(rx_posted_target(256, 128) >= RX_POSTED_MIN);
        assert!(rx_posted_target(128 + POOL_RESERVE + RX_POSTED_MIN, 128) >= RX_POSTED_MIN);
    }
}
