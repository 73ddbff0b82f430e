//! The ukblkdev block device behind shared-core's [`BlockDevice`] trait.
//!
//! A request is split into chunks of at most the device's maximum sectors per request.
//! At most [`MAX_IN_FLIGHT`] chunks are queued at once (the glue's request table has the
//! same bound). While chunks run, `poll_*` returns `Pending` with the task registered for
//! the executor's next wake-up, which a completion interrupt brings forward.
//!
//! Data goes through bounce buffers allocated once at open, aligned as the device asks.
//! Apps hand the trait arbitrary slices, and DMA needs alignment. Zero copy is the
//! network path's goal, not this one's.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
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

const OP_READ: i32 = 0;
const OP_WRITE: i32 = 1;
const OP_FLUSH: i32 = 4;

/// An aligned buffer owned by the device.
struct Bounce {
    ptr: *mut u8,
    layout: Layout,
}

impl Bounce {
    fn new(len: usize, align: usize) -> Self {
        let layout = Layout::from_size_align(len, align.max(16)).expect("bounce buffer layout");
        // SAFETY: non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        Bounce { ptr, layout }
    }

    fn slice_mut(&mut self, len: usize) -> &mut [u8] {
        // SAFETY: `len` is at most the allocation's size (chunks are bounded by it).
        unsafe { core::slice::from_raw_parts_mut(self.ptr, len.min(self.layout.size())) }
    }
}

impl Drop for Bounce {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
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

/// The request being worked on. `poll_*` is called again with the same arguments until
/// it returns `Ready`.
struct Op {
    kind: i32,
    lba: u64,
    len: usize,
    /// Bytes of the request handed to the device so far.
    submitted: usize,
    running: Vec<Chunk>,
    /// Waits for the backend's next wake-up while chunks run.
    waiter: Option<WaitIo>,
    error: Option<BlockError>,
}

/// An opened ukblkdev device.
pub struct UkBlock {
    info: BlockInfo,
    chunk_bytes: usize,
    bounces: Vec<Bounce>,
    free_bounces: Vec<usize>,
    op: Option<Op>,
}

impl UkBlock {
    /// Opens device `index` (0 = the first).
    pub fn open(index: u32) -> Result<Self, OpenError> {
        let mut cap = unikraft_sys::uk_blkdev_cap::default();
        // SAFETY: a valid out-pointer; `uk_blkdev_cap`'s layout is checked against the
        // headers by unikraft-sys's layout test.
        let rc = unsafe { glue::rtuk_blk_open(index, &mut cap) };
        if rc == -19 {
            return Err(OpenError::NotFound(
                "Unikraft has no block device (boot with a virtio-blk disk, e.g. `cargo xtask kraft-run --disk FILE`; \
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
        let max_sectors = (cap.max_sectors_per_req as usize).clamp(1, MAX_CHUNK_BYTES / sector.min(MAX_CHUNK_BYTES));
        let chunk_bytes = max_sectors * sector;
        let align = (cap.ioalign as usize).max(sector.min(4096)).next_power_of_two();
        // O_RDONLY is 0 on Linux and in Unikraft's headers.
        let read_only = cap.mode == 0;
        let bounces = (0..MAX_IN_FLIGHT).map(|_| Bounce::new(chunk_bytes, align)).collect();
        Ok(UkBlock {
            info: BlockInfo { sector_size: sector as u32, sectors: cap.sectors, read_only },
            chunk_bytes,
            bounces,
            free_bounces: (0..MAX_IN_FLIGHT).rev().collect(),
            op: None,
        })
    }

    /// Drives the current request: collects finished chunks (copying read data out),
    /// queues more, and returns `Ready` when all are done.
    fn drive(
        &mut self,
        cx: &mut Context<'_>,
        kind: i32,
        lba: u64,
        read_into: Option<&mut [u8]>,
        write_from: Option<&[u8]>,
    ) -> Poll<Result<(), BlockError>> {
        let len = read_into.as_ref().map(|b| b.len()).or(write_from.map(|b| b.len())).unwrap_or(0);
        let same = self.op.as_ref().is_some_and(|op| op.kind == kind && op.lba == lba && op.len == len);
        if !same {
            if self.op.is_some() {
                // A different request while one runs: the caller dropped the earlier
                // future. Its chunks must finish before their buffers are reused.
                self.finish_abandoned(cx)?;
                if self.op.is_some() {
                    return Poll::Pending;
                }
            }
            self.op = Some(Op { kind, lba, len, submitted: 0, running: Vec::new(), waiter: None, error: None });
        }
        let mut read_into = read_into;
        let sector = self.info.sector_size as usize;
        loop {
            let op = self.op.as_mut().expect("set above");
            // Collect finished chunks.
            let mut i = 0;
            while i < op.running.len() {
                // SAFETY: plain call with a handle the glue gave out.
                let rc = unsafe { glue::rtuk_blk_poll(op.running[i].handle) };
                if rc == 0 {
                    i += 1;
                    continue;
                }
                let chunk = op.running.swap_remove(i);
                if rc < 0 {
                    op.error.get_or_insert(BlockError::Io(format!("ukblkdev request failed: error {}", -rc)));
                } else if let Some(buf) = read_into.as_deref_mut() {
                    let data = self.bounces[chunk.bounce].slice_mut(chunk.len);
                    buf[chunk.offset..chunk.offset + chunk.len].copy_from_slice(data);
                }
                self.free_bounces.push(chunk.bounce);
            }
            // Queue more while there is room and no error.
            let mut queued_any = false;
            while op.error.is_none() && op.submitted < op.len && !self.free_bounces.is_empty() {
                let offset = op.submitted;
                let chunk_len = (op.len - offset).min(self.chunk_bytes);
                let bounce = *self.free_bounces.last().expect("checked non-empty");
                if let Some(data) = write_from {
                    self.bounces[bounce].slice_mut(chunk_len).copy_from_slice(&data[offset..offset + chunk_len]);
                }
                let sector_at = op.lba + (offset / sector) as u64;
                let sectors = (chunk_len / sector) as u64;
                let buf = self.bounces[bounce].ptr;
                // SAFETY: the bounce buffer stays allocated and untouched until the chunk
                // is collected above.
                let handle = unsafe { glue::rtuk_blk_submit(op.kind, sector_at, sectors, buf.cast()) };
                if handle == -16 {
                    break; // EBUSY: queue full, retry after completions
                }
                if handle < 0 {
                    op.error = Some(BlockError::Io(format!("ukblkdev refused a request: error {}", -handle)));
                    break;
                }
                self.free_bounces.pop();
                op.running.push(Chunk { handle, bounce, offset, len: chunk_len });
                op.submitted += chunk_len;
                queued_any = true;
            }
            if op.running.is_empty() && (op.submitted >= op.len || op.error.is_some()) {
                let op = self.op.take().expect("set above");
                return Poll::Ready(match op.error {
                    Some(e) => Err(e),
                    None => Ok(()),
                });
            }
            if queued_any {
                continue; // a chunk may already be done (polling devices)
            }
            // Wait for the backend's next wake-up (a completion interrupt, or a timer).
            let waiter = op.waiter.get_or_insert_with(|| executor::wait_io(None));
            match Pin::new(waiter).poll(cx) {
                Poll::Ready(()) => op.waiter = None,
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Collects the chunks of a request whose future was dropped.
    fn finish_abandoned(&mut self, _cx: &mut Context<'_>) -> Result<(), BlockError> {
        if let Some(op) = self.op.as_mut() {
            op.running.retain(|chunk| {
                // SAFETY: plain call with a handle the glue gave out.
                let rc = unsafe { glue::rtuk_blk_poll(chunk.handle) };
                if rc != 0 {
                    self.free_bounces.push(chunk.bounce);
                }
                rc == 0
            });
            if op.running.is_empty() {
                self.op = None;
            }
        }
        Ok(())
    }
}

impl BlockDevice for UkBlock {
    fn info(&self) -> BlockInfo {
        self.info
    }

    fn poll_read(&mut self, cx: &mut Context<'_>, lba: u64, buf: &mut [u8]) -> Poll<Result<(), BlockError>> {
        check_request(&self.info, lba, buf.len())?;
        self.drive(cx, OP_READ, lba, Some(buf), None)
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, lba: u64, buf: &[u8]) -> Poll<Result<(), BlockError>> {
        check_request(&self.info, lba, buf.len())?;
        if self.info.read_only {
            return Poll::Ready(Err(BlockError::ReadOnly));
        }
        self.drive(cx, OP_WRITE, lba, None, Some(buf))
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BlockError>> {
        self.drive_flush(cx)
    }
}

impl UkBlock {
    /// A flush is one request with no data (the bounce buffer only gives the driver a
    /// valid pointer).
    fn drive_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BlockError>> {
        if self.op.as_ref().is_some_and(|op| op.kind != OP_FLUSH) {
            self.finish_abandoned(cx)?;
            if self.op.is_some() {
                return Poll::Pending;
            }
        }
        if self.op.is_none() {
            let Some(bounce) = self.free_bounces.pop() else { return Poll::Pending };
            // SAFETY: as for data requests; a flush transfers nothing.
            let handle = unsafe { glue::rtuk_blk_submit(OP_FLUSH, 0, 0, self.bounces[bounce].ptr.cast()) };
            if handle < 0 {
                self.free_bounces.push(bounce);
                return Poll::Ready(Err(BlockError::Io(format!("ukblkdev refused a flush: error {}", -handle))));
            }
            self.op = Some(Op {
                kind: OP_FLUSH,
                lba: 0,
                len: 0,
                submitted: 0,
                running: std::vec![Chunk { handle, bounce, offset: 0, len: 0 }],
                waiter: None,
                error: None,
            });
        }
        self.drive(cx, OP_FLUSH, 0, None, None)
    }
}
