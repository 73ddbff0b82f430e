//! The ukblkdev block device behind shared-core's [`BlockDevice`] trait.
//!
//! A request is split into chunks of at most the device's maximum sectors per request.
//! At most [`MAX_IN_FLIGHT`] chunks are queued at once (the glue's request table has the
//! same bound). While chunks run, `poll_*` returns `Pending` with the task registered for
//! the executor's next wake-up, which a completion interrupt brings forward. Every
//! `Pending` is returned from one place ([`UkBlock::wait`]), after registering.
//!
//! Data goes through bounce buffers allocated once at open, aligned as the device asks.
//! Apps hand the trait arbitrary slices, and DMA needs alignment. Zero copy is the
//! network path's goal, not this one's.
//!
//! # Cancelled requests
//!
//! A request's progress (chunks done, chunks in the device) lives here between polls, so
//! a caller that gives up a request must say so: [`BlockDevice::cancel`], which
//! shared-core's `BlockExt` futures call when dropped. The request's chunks still in the
//! device become *orphans*: they keep their bounce buffers until the device finishes
//! them, their data is discarded, and the next request waits for them before it queues
//! anything (so a late chunk of a cancelled write cannot land after the new request's
//! data). The next poll always starts a new request, even with the same kind, sector and
//! length: a retried read fills its own buffer, a retried write writes its own bytes. A
//! poll with other arguments while a request runs is treated as a cancel too.
//!
//! # Dropping the device
//!
//! The device writes a read chunk's data into its bounce buffer by DMA whenever it
//! finishes it, so a bounce buffer is never freed while its chunk is in the device.
//! Dropping a `UkBlock` first waits, up to [`DROP_WAIT`], for the chunks still in the
//! device (cancelled requests' orphans included) to finish; a chunk that has not finished
//! by then keeps its bounce buffer for good (a deliberate leak, at most
//! [`MAX_IN_FLIGHT`] × 64 KiB, reported on the console). Then the device is given back
//! ([`Queue::close`]) still started, and a later [`UkBlock::open`] gets it again:
//! Unikraft 0.16.3's virtio-blk cannot be restarted once stopped.
//!
//! The state machine talks to the device through [`Queue`] ([`Glue`] on Unikraft), so
//! its unit tests run on the host against a scripted queue.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::alloc::Layout;
use std::format;
use std::vec::Vec;

use shared_core::block::{check_request, BlockDevice, BlockError, BlockInfo};
use shared_core::executor::{self, WaitIo};
use shared_core::services::OpenError;

use crate::glue;

/// Chunks queued at once (`RTUK_BLK_INFLIGHT` in glue/blkdev.c).
pub const MAX_IN_FLIGHT: usize = 8;
/// Largest chunk, in bytes, whatever the device allows (bounds the bounce buffers).
const MAX_CHUNK_BYTES: usize = 64 * 1024;
/// How long dropping a device waits for its chunks still in the device (see the module
/// docs). A healthy virtio disk finishes a chunk in well under a millisecond.
pub const DROP_WAIT: Duration = Duration::from_secs(1);

/// What a chunk asks the device to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Read sectors into the buffer.
    Read,
    /// Write the buffer to sectors.
    Write,
    /// Make earlier writes durable (no data).
    Flush,
}

/// The answer to [`Queue::submit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submit {
    /// Queued; the handle names it in [`Queue::poll`].
    Queued(i32),
    /// The queue is full: retry after a completion.
    Busy,
    /// Refused, with an errno.
    Failed(i32),
}

/// The answer to [`Queue::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Still in the device.
    Running,
    /// Done; the handle is free again.
    Done,
    /// Failed with an errno; the handle is free again.
    Failed(i32),
}

/// A device request queue: asynchronous chunks named by handles.
pub trait Queue {
    /// Queues `kind` on `sectors` sectors from `sector`, with `buf` (aligned as the device
    /// asks, valid for the chunk's bytes until [`poll`](Self::poll) reports it finished).
    fn submit(&mut self, kind: Kind, sector: u64, sectors: u64, buf: *mut u8) -> Submit;
    /// Collects completions and reports on `handle`.
    fn poll(&mut self, handle: i32) -> Status;
    /// Waits a little for completions (while a dropped device waits for its chunks).
    fn pause(&mut self) {
        std::thread::sleep(Duration::from_micros(200));
    }
    /// Gives the device back when its `UkBlock` is dropped; chunks still queued are
    /// abandoned (their buffers stay allocated).
    fn close(&mut self) {}
}

/// The ukblkdev queue of glue/blkdev.c.
pub struct Glue;

impl Queue for Glue {
    fn submit(&mut self, kind: Kind, sector: u64, sectors: u64, buf: *mut u8) -> Submit {
        let op = match kind {
            Kind::Read => glue::RTUK_BLK_OP_READ,
            Kind::Write => glue::RTUK_BLK_OP_WRITE,
            Kind::Flush => glue::RTUK_BLK_OP_FLUSH,
        };
        // SAFETY: the caller keeps `buf` valid until the chunk is collected (Queue's
        // contract, upheld by UkBlock).
        let rc = unsafe { glue::rtuk_blk_submit(op, sector, sectors, buf.cast()) };
        match rc {
            h if h >= 0 => Submit::Queued(h),
            e if e == -libc::EBUSY => Submit::Busy,
            e => Submit::Failed(-e),
        }
    }

    fn poll(&mut self, handle: i32) -> Status {
        // SAFETY: plain call with a handle the glue gave out.
        match unsafe { glue::rtuk_blk_poll(handle) } {
            glue::RTUK_BLK_RUNNING => Status::Running,
            glue::RTUK_BLK_DONE => Status::Done,
            e if e < 0 => Status::Failed(-e),
            other => Status::Failed(other), // not in the ABI: treated as a failure
        }
    }

    fn close(&mut self) {
        // SAFETY: plain call. The buffers of chunks still running are never freed
        // (UkBlock's Drop leaks them), so the device may finish them whenever it likes.
        unsafe { glue::rtuk_blk_close() };
    }
}

/// An aligned buffer owned by the device.
struct Bounce {
    ptr: *mut u8,
    layout: Layout,
    /// Given up to a chunk the device may still finish: never freed.
    leaked: bool,
}

impl Bounce {
    fn new(len: usize, align: usize) -> Self {
        let layout = Layout::from_size_align(len.max(1), align.max(16)).expect("bounce buffer layout");
        // SAFETY: non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        Bounce { ptr, layout, leaked: false }
    }

    fn slice_mut(&mut self, len: usize) -> &mut [u8] {
        // SAFETY: `len` is at most the allocation's size (chunks are bounded by it).
        unsafe { core::slice::from_raw_parts_mut(self.ptr, len.min(self.layout.size())) }
    }
}

impl Drop for Bounce {
    fn drop(&mut self) {
        if self.leaked {
            return;
        }
        // SAFETY: allocated in `new` with this layout; no chunk in the device uses it
        // (UkBlock's Drop marks those `leaked`).
        unsafe { std::alloc::dealloc(self.ptr, self.layout) };
    }
}

/// One queued chunk.
struct Chunk {
    handle: i32,
    bounce: usize,
    offset: usize,
    len: usize,
}

/// The request being worked on: `poll_*` is called again with the same arguments until
/// it returns `Ready`, or [`BlockDevice::cancel`] ends it.
struct Request {
    kind: Kind,
    lba: u64,
    len: usize,
    /// Bytes of the request handed to the device so far (for a flush: 1 once queued).
    submitted: usize,
    running: Vec<Chunk>,
    error: Option<BlockError>,
}

impl Request {
    fn work_left(&self) -> bool {
        match self.kind {
            Kind::Flush => self.submitted == 0,
            _ => self.submitted < self.len,
        }
    }
}

/// The data side of one poll.
enum Io<'a> {
    Read(&'a mut [u8]),
    Write(&'a [u8]),
    Flush,
}

/// An opened ukblkdev device (or, in tests, any [`Queue`]).
pub struct UkBlock<Q: Queue = Glue> {
    queue: Q,
    info: BlockInfo,
    chunk_bytes: usize,
    bounces: Vec<Bounce>,
    free_bounces: Vec<usize>,
    request: Option<Request>,
    /// Chunks of cancelled requests still in the device.
    orphans: Vec<Chunk>,
    /// Waits for the backend's next wake-up while chunks run.
    waiter: Option<WaitIo>,
    /// How long a drop waits for chunks still in the device ([`DROP_WAIT`]).
    drop_wait: Duration,
}

impl UkBlock<Glue> {
    /// Opens device `index` (0 = the first).
    pub fn open(index: u32) -> Result<Self, OpenError> {
        let mut cap = unikraft_sys::uk_blkdev_cap::default();
        // SAFETY: a valid out-pointer; `uk_blkdev_cap`'s layout is checked against the
        // headers by unikraft-sys's layout test.
        let rc = unsafe { glue::rtuk_blk_open(index, &mut cap) };
        if rc == -libc::ENODEV {
            return Err(OpenError::NotFound(
                "Unikraft has no block device (boot with a virtio-blk disk, e.g. `cargo unikraft run --disk FILE`; \
                 the app needs `devices = [\"block\"]` in [package.metadata.unikraft])"
                    .into(),
            ));
        }
        if rc < 0 {
            return Err(OpenError::Failed(format!("ukblkdev {index}: error {}", -rc)));
        }
        let sector = cap.ssize;
        if sector == 0 || cap.sectors == 0 || sector > u32::MAX as usize {
            return Err(OpenError::Failed(format!(
                "ukblkdev {index}: reports {} sectors of {sector} bytes",
                cap.sectors
            )));
        }
        // O_RDONLY is 0 on Linux and in Unikraft's headers.
        let read_only = cap.mode == 0;
        let info = BlockInfo { sector_size: sector as u32, sectors: cap.sectors, read_only };
        Ok(UkBlock::with_queue(Glue, info, cap.max_sectors_per_req as usize, cap.ioalign as usize))
    }
}

impl<Q: Queue> UkBlock<Q> {
    /// A device over `queue`: chunks of at most `max_sectors_per_req` sectors (and
    /// [`MAX_CHUNK_BYTES`]), bounce buffers aligned to at least `ioalign`.
    pub fn with_queue(queue: Q, info: BlockInfo, max_sectors_per_req: usize, ioalign: usize) -> Self {
        let sector = info.sector_size as usize;
        let max_sectors = max_sectors_per_req.clamp(1, (MAX_CHUNK_BYTES / sector.min(MAX_CHUNK_BYTES)).max(1));
        let chunk_bytes = max_sectors * sector;
        let align = ioalign.max(sector.min(4096)).next_power_of_two();
        let bounces = (0..MAX_IN_FLIGHT).map(|_| Bounce::new(chunk_bytes, align)).collect();
        UkBlock {
            queue,
            info,
            chunk_bytes,
            bounces,
            free_bounces: (0..MAX_IN_FLIGHT).rev().collect(),
            request: None,
            orphans: Vec::new(),
            waiter: None,
            drop_wait: DROP_WAIT,
        }
    }

    /// The queue (for tests).
    pub fn queue_mut(&mut self) -> &mut Q {
        &mut self.queue
    }

    /// Bytes per chunk.
    pub fn chunk_bytes(&self) -> usize {
        self.chunk_bytes
    }

    /// Registers the task for the executor's next wake-up (after the backend's wait,
    /// which a completion interrupt ends early). `Ready` when that already happened.
    fn wait(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let waiter = self.waiter.get_or_insert_with(|| executor::wait_io(None));
        let ready = Pin::new(waiter).poll(cx);
        if ready.is_ready() {
            self.waiter = None;
        }
        ready
    }

    /// Frees the bounce buffers of orphans the device finished.
    fn collect_orphans(&mut self) {
        let UkBlock { queue, orphans, free_bounces, .. } = self;
        orphans.retain(|chunk| match queue.poll(chunk.handle) {
            Status::Running => true,
            Status::Done | Status::Failed(_) => {
                free_bounces.push(chunk.bounce);
                false
            }
        });
    }

    /// Drives the request `kind` at `lba` with `io`: waits out orphans, collects finished
    /// chunks (copying read data out), queues more, and returns `Ready` when all are done.
    fn drive(&mut self, cx: &mut Context<'_>, kind: Kind, lba: u64, mut io: Io<'_>) -> Poll<Result<(), BlockError>> {
        let len = match &io {
            Io::Read(buf) => buf.len(),
            Io::Write(buf) => buf.len(),
            Io::Flush => 0,
        };
        if self.request.as_ref().is_some_and(|r| (r.kind, r.lba, r.len) != (kind, lba, len)) {
            // Another request while one runs: the caller gave the earlier one up.
            self.cancel();
        }
        loop {
            // A cancelled request's chunks finish before anything new is queued.
            self.collect_orphans();
            if !self.orphans.is_empty() {
                if self.wait(cx).is_pending() {
                    return Poll::Pending;
                }
                continue;
            }
            let request = self.request.get_or_insert_with(|| Request {
                kind,
                lba,
                len,
                submitted: 0,
                running: Vec::new(),
                error: None,
            });
            // Collect finished chunks.
            let mut i = 0;
            while i < request.running.len() {
                let status = self.queue.poll(request.running[i].handle);
                if status == Status::Running {
                    i += 1;
                    continue;
                }
                let chunk = request.running.swap_remove(i);
                match status {
                    Status::Failed(errno) if kind == Kind::Flush && errno == libc::EOPNOTSUPP => {} // as above
                    Status::Failed(errno) => {
                        request.error.get_or_insert(BlockError::Io(format!("ukblkdev request failed: error {errno}")));
                    }
                    _ => {
                        if let Io::Read(buf) = &mut io {
                            let data = self.bounces[chunk.bounce].slice_mut(chunk.len);
                            buf[chunk.offset..chunk.offset + chunk.len].copy_from_slice(data);
                        }
                    }
                }
                self.free_bounces.push(chunk.bounce);
            }
            // Queue more while there is room and no error.
            let mut queued_any = false;
            while request.error.is_none() && request.work_left() {
                let Some(&bounce) = self.free_bounces.last() else { break };
                let offset = request.submitted;
                let chunk_len = (request.len - offset).min(self.chunk_bytes);
                if let Io::Write(data) = &io {
                    self.bounces[bounce].slice_mut(chunk_len).copy_from_slice(&data[offset..offset + chunk_len]);
                }
                let sector = self.info.sector_size as usize;
                let (at, sectors) = match kind {
                    Kind::Flush => (0, 0),
                    _ => (request.lba + (offset / sector) as u64, (chunk_len / sector) as u64),
                };
                // The bounce buffer stays allocated and untouched until the chunk is
                // collected (here, or as an orphan).
                match self.queue.submit(request.kind, at, sectors, self.bounces[bounce].ptr) {
                    Submit::Queued(handle) => {
                        self.free_bounces.pop();
                        request.running.push(Chunk { handle, bounce, offset, len: chunk_len });
                        request.submitted += chunk_len.max(usize::from(kind == Kind::Flush));
                        queued_any = true;
                    }
                    Submit::Busy => break, // retry after completions (or the next wake-up)
                    Submit::Failed(errno) if kind == Kind::Flush && errno == libc::EOPNOTSUPP => {
                        // A device without a volatile cache (no VIRTIO_BLK_F_FLUSH) refuses
                        // flushes with -ENOTSUP: its writes are durable when they complete,
                        // so there is nothing to flush.
                        request.submitted = 1;
                    }
                    Submit::Failed(errno) => {
                        request.error = Some(BlockError::Io(format!("ukblkdev refused a request: error {errno}")));
                    }
                }
            }
            if request.running.is_empty() && (!request.work_left() || request.error.is_some()) {
                let request = self.request.take().expect("set above");
                self.waiter = None;
                return Poll::Ready(match request.error {
                    Some(e) => Err(e),
                    None => Ok(()),
                });
            }
            if queued_any {
                continue; // a chunk may already be done (polling devices)
            }
            if self.wait(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl<Q: Queue> Drop for UkBlock<Q> {
    /// Frees no bounce buffer the device may still write: see the module docs.
    fn drop(&mut self) {
        self.cancel();
        let start = std::time::Instant::now();
        loop {
            self.collect_orphans();
            if self.orphans.is_empty() || start.elapsed() >= self.drop_wait {
                break;
            }
            self.queue.pause();
        }
        if !self.orphans.is_empty() {
            std::eprintln!(
                "rt-unikraft: warning: a block device was dropped with {} request(s) still running after {} ms; \
                 their buffers ({} bytes each) are kept for the device",
                self.orphans.len(),
                self.drop_wait.as_millis(),
                self.chunk_bytes
            );
        }
        for chunk in self.orphans.drain(..) {
            self.bounces[chunk.bounce].leaked = true;
        }
        self.queue.close();
    }
}

impl<Q: Queue> BlockDevice for UkBlock<Q> {
    fn info(&self) -> BlockInfo {
        self.info
    }

    fn poll_read(&mut self, cx: &mut Context<'_>, lba: u64, buf: &mut [u8]) -> Poll<Result<(), BlockError>> {
        check_request(&self.info, lba, buf.len())?;
        self.drive(cx, Kind::Read, lba, Io::Read(buf))
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, lba: u64, buf: &[u8]) -> Poll<Result<(), BlockError>> {
        check_request(&self.info, lba, buf.len())?;
        if self.info.read_only {
            return Poll::Ready(Err(BlockError::ReadOnly));
        }
        self.drive(cx, Kind::Write, lba, Io::Write(buf))
    }

    /// A flush is one chunk with no data (a bounce buffer only gives the driver a valid
    /// pointer).
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BlockError>> {
        self.drive(cx, Kind::Flush, 0, Io::Flush)
    }

    fn cancel(&mut self) {
        if let Some(request) = self.request.take() {
            self.orphans.extend(request.running);
        }
        self.waiter = None;
    }
}

#[cfg(test)]
mod tests;
