//! Block devices: a trait usable from async code, and layers that stack on it.
//!
//! A [`BlockDevice`] reads, writes and flushes whole sectors. Its methods are poll-shaped
//! (like `AsyncRead`) so the trait stays object-safe (`Box<dyn BlockDevice>` is what a
//! backend hands out) while a device with real asynchronous queues (virtio, ukblkdev)
//! can return `Pending` and wake the task on completion. [`BlockExt`] adds the `async fn`
//! forms apps call, and checks every request first with [`check_request`]: a request
//! that is out of range or not a whole number of sectors fails with [`BlockError`] and
//! never reaches the device.
//!
//! A device may keep a request's progress between polls (chunks in a device queue), so a
//! caller that stops polling a request before `Ready` must say so with
//! [`BlockDevice::cancel`]; the futures of [`BlockExt`] do it when they are dropped. The
//! next poll then starts a new request, even with the same arguments: a retried read
//! fills its own buffer, a retried write writes its own bytes.
//!
//! Layers are block devices over block devices; [`mbr::Partition`] is a view of one
//! partition of a disk with an MBR table, and [`encrypted::Encrypted`] an authenticated
//! AES-GCM encryption of one. Both work over any `BlockDevice`, including another layer.

pub mod encrypted;
pub mod mbr;

use core::future::poll_fn;
use core::task::{Context, Poll};

/// Why a block request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockError {
    /// The range `[lba, lba + sectors)` ends past the device's `sectors`.
    OutOfRange {
        /// First sector asked for.
        lba: u64,
        /// Sectors asked for.
        sectors: u64,
        /// Sectors the device has.
        capacity: u64,
    },
    /// The buffer is not a whole, non-zero number of sectors.
    Misaligned {
        /// Buffer length in bytes.
        len: usize,
        /// The device's sector size.
        sector_size: u32,
    },
    /// Writing to a read-only device.
    ReadOnly,
    /// The device reported an error; the text says what.
    Io(alloc::string::String),
    /// Sector `lba` failed authentication ([`encrypted`]): its bytes or its metadata were
    /// changed, moved or copied from elsewhere behind the layer's back (tampering, or a
    /// failing medium). Never the result of a crash or a cancelled write (those leave a
    /// sector old or new), unless the device tore a single sector inside itself. The
    /// read's buffer is zeroed, never filled with unauthenticated bytes.
    Integrity {
        /// The (logical) sector that failed.
        lba: u64,
    },
}

impl core::fmt::Display for BlockError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BlockError::OutOfRange { lba, sectors, capacity } => {
                write!(f, "sectors {lba}..{} are out of range (device has {capacity})", lba.saturating_add(*sectors))
            }
            BlockError::Misaligned { len, sector_size } => {
                write!(f, "buffer of {len} bytes is not a whole number of {sector_size}-byte sectors")
            }
            BlockError::ReadOnly => write!(f, "device is read-only"),
            BlockError::Io(why) => write!(f, "I/O error: {why}"),
            BlockError::Integrity { lba } => {
                write!(f, "sector {lba} failed authentication (changed behind the encrypted layer: tampering or a failing disk)")
            }
        }
    }
}

impl core::error::Error for BlockError {}

/// Size facts of a block device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockInfo {
    /// Bytes per sector (512 or 4096 in practice).
    pub sector_size: u32,
    /// Number of sectors.
    pub sectors: u64,
    /// Whether writes are refused.
    pub read_only: bool,
}

impl BlockInfo {
    /// Capacity in bytes.
    pub fn capacity_bytes(&self) -> u64 {
        self.sectors * self.sector_size as u64
    }
}

/// A sector-addressed device. Callers go through [`BlockExt`], which validates requests;
/// implementations may assume `lba`/`buf` passed [`check_request`].
///
/// A complete device with a queue, the shape of a virtio or ukblkdev backend: a request
/// is submitted on its first poll (`Pending`; the device's completion wakes the task) and
/// finished on a later one, and [`cancel`](BlockDevice::cancel) forgets a submitted
/// request, so the next poll submits anew. Here the "device" is memory that completes at
/// once; apps call `disk.read(lba, buf).await` ([`BlockExt`]) instead of polling by hand.
///
/// ```
/// use core::task::{Context, Poll, Waker};
///
/// use shared_core::block::{BlockDevice, BlockError, BlockInfo};
///
/// const SECTOR: usize = 512;
///
/// struct QueuedRam {
///     data: Vec<u8>,
///     /// The request in the device: (lba, is a write).
///     in_flight: Option<(u64, bool)>,
/// }
///
/// impl QueuedRam {
///     /// Submits the request on its first poll; finishes it with `done` on the next.
///     fn step(&mut self, cx: &mut Context<'_>, request: (u64, bool), done: impl FnOnce(&mut [u8]))
///         -> Poll<Result<(), BlockError>> {
///         if self.in_flight != Some(request) {
///             self.in_flight = Some(request);
///             cx.waker().wake_by_ref(); // stands in for the device's completion interrupt
///             return Poll::Pending;
///         }
///         self.in_flight = None;
///         done(&mut self.data[request.0 as usize * SECTOR..]);
///         Poll::Ready(Ok(()))
///     }
/// }
///
/// impl BlockDevice for QueuedRam {
///     fn info(&self) -> BlockInfo {
///         BlockInfo { sector_size: SECTOR as u32, sectors: (self.data.len() / SECTOR) as u64, read_only: false }
///     }
///     fn poll_read(&mut self, cx: &mut Context<'_>, lba: u64, buf: &mut [u8]) -> Poll<Result<(), BlockError>> {
///         self.step(cx, (lba, false), |at| buf.copy_from_slice(&at[..buf.len()]))
///     }
///     fn poll_write(&mut self, cx: &mut Context<'_>, lba: u64, buf: &[u8]) -> Poll<Result<(), BlockError>> {
///         self.step(cx, (lba, true), |at| at[..buf.len()].copy_from_slice(buf))
///     }
///     fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BlockError>> {
///         Poll::Ready(Ok(())) // memory has no write cache
///     }
///     fn cancel(&mut self) {
///         self.in_flight = None; // the caller gave up: its request is forgotten
///     }
/// }
///
/// let mut disk = QueuedRam { data: vec![0; 8 * SECTOR], in_flight: None };
/// let mut cx = Context::from_waker(Waker::noop());
/// let sector = [0xab; SECTOR];
/// assert!(disk.poll_write(&mut cx, 3, &sector).is_pending());
/// assert_eq!(disk.poll_write(&mut cx, 3, &sector), Poll::Ready(Ok(())));
///
/// let mut back = [0; SECTOR];
/// assert!(disk.poll_read(&mut cx, 3, &mut back).is_pending());
/// disk.cancel(); // dropped before it finished: the next poll starts a new request
/// assert!(disk.poll_read(&mut cx, 3, &mut back).is_pending());
/// assert_eq!(disk.poll_read(&mut cx, 3, &mut back), Poll::Ready(Ok(())));
/// assert_eq!(back, sector);
/// ```
pub trait BlockDevice {
    /// Sector size and count.
    fn info(&self) -> BlockInfo;
    /// Reads `buf.len() / sector_size` sectors starting at `lba` into `buf`.
    fn poll_read(&mut self, cx: &mut Context<'_>, lba: u64, buf: &mut [u8]) -> Poll<Result<(), BlockError>>;
    /// Writes `buf` to the sectors starting at `lba`.
    fn poll_write(&mut self, cx: &mut Context<'_>, lba: u64, buf: &[u8]) -> Poll<Result<(), BlockError>>;
    /// Makes earlier writes durable.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BlockError>>;
    /// The caller gave up the request it was polling (it returned `Pending` and will not
    /// be polled again; [`BlockExt`]'s futures call this when dropped). A device that
    /// keeps a request's progress between polls forgets it: the next `poll_*` call starts
    /// a new request whatever its arguments. Transfers already in the device may still
    /// complete (a cancelled write may be partly written). Devices that finish every
    /// request in one poll keep nothing, hence the empty default; layers forward it.
    fn cancel(&mut self) {}
}

/// Forwards every method of [`BlockDevice`] through a pointer type: one list, so a method
/// added to the trait cannot be forgotten in one of them (a missed forward silently falls
/// back to the default, as `cancel` would).
macro_rules! forward_block_device {
    ($($pointer:ty),*) => {$(
        impl<T: BlockDevice + ?Sized> BlockDevice for $pointer {
            fn info(&self) -> BlockInfo {
                (**self).info()
            }
            fn poll_read(&mut self, cx: &mut Context<'_>, lba: u64, buf: &mut [u8]) -> Poll<Result<(), BlockError>> {
                (**self).poll_read(cx, lba, buf)
            }
            fn poll_write(&mut self, cx: &mut Context<'_>, lba: u64, buf: &[u8]) -> Poll<Result<(), BlockError>> {
                (**self).poll_write(cx, lba, buf)
            }
            fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BlockError>> {
                (**self).poll_flush(cx)
            }
            fn cancel(&mut self) {
                (**self).cancel()
            }
        }
    )*};
}

// A boxed device is a device; so is a borrowed one: a layer can be stacked on it for a
// while and the device used again afterwards (e.g. to try a key, or to look below an
// encrypted layer).
forward_block_device!(alloc::boxed::Box<T>, &mut T);

/// Checks that `len` bytes at `lba` is a whole, non-empty number of sectors inside the
/// device. Every layer and [`BlockExt`] call this before touching a device.
pub fn check_request(info: &BlockInfo, lba: u64, len: usize) -> Result<(), BlockError> {
    let ss = info.sector_size as usize;
    if len == 0 || !len.is_multiple_of(ss) {
        return Err(BlockError::Misaligned { len, sector_size: info.sector_size });
    }
    let sectors = (len / ss) as u64;
    match lba.checked_add(sectors) {
        Some(end) if end <= info.sectors => Ok(()),
        _ => Err(BlockError::OutOfRange { lba, sectors, capacity: info.sectors }),
    }
}

/// Polls one request on a device and, if dropped before the request finished, cancels
/// it ([`BlockDevice::cancel`]).
struct Request<'a, D: BlockDevice + ?Sized> {
    device: &'a mut D,
    finished: bool,
}

impl<D: BlockDevice + ?Sized> Request<'_, D> {
    async fn run(
        mut self,
        mut poll: impl FnMut(&mut D, &mut Context<'_>) -> Poll<Result<(), BlockError>>,
    ) -> Result<(), BlockError> {
        let result = poll_fn(|cx| poll(self.device, cx)).await;
        self.finished = true;
        result
    }
}

impl<D: BlockDevice + ?Sized> Drop for Request<'_, D> {
    fn drop(&mut self) {
        if !self.finished {
            self.device.cancel();
        }
    }
}

/// The async API apps use on any block device. Dropping one of these futures before it
/// completes cancels its request ([`BlockDevice::cancel`]).
pub trait BlockExt: BlockDevice {
    /// Reads sectors into `buf` (a whole number of sectors).
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> impl core::future::Future<Output = Result<(), BlockError>> {
        async move {
            check_request(&self.info(), lba, buf.len())?;
            Request { device: self, finished: false }.run(|d, cx| d.poll_read(cx, lba, buf)).await
        }
    }
    /// Writes sectors from `buf` (a whole number of sectors).
    fn write(&mut self, lba: u64, buf: &[u8]) -> impl core::future::Future<Output = Result<(), BlockError>> {
        async move {
            let info = self.info();
            check_request(&info, lba, buf.len())?;
            if info.read_only {
                return Err(BlockError::ReadOnly);
            }
            Request { device: self, finished: false }.run(|d, cx| d.poll_write(cx, lba, buf)).await
        }
    }
    /// Makes earlier writes durable.
    fn flush(&mut self) -> impl core::future::Future<Output = Result<(), BlockError>> {
        async move { Request { device: self, finished: false }.run(|d, cx| d.poll_flush(cx)).await }
    }
}

impl<T: BlockDevice + ?Sized> BlockExt for T {}

/// A block device in memory, for tests and as a ramdisk.
pub struct MemDisk {
    data: alloc::vec::Vec<u8>,
    sector_size: u32,
}

impl MemDisk {
    /// `sectors` zeroed sectors of `sector_size` bytes.
    pub fn new(sector_size: u32, sectors: u64) -> Self {
        MemDisk { data: alloc::vec![0; sector_size as usize * sectors as usize], sector_size }
    }

    /// The disk's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// The disk's bytes, writable (to build fixtures).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }
}

impl BlockDevice for MemDisk {
    fn info(&self) -> BlockInfo {
        BlockInfo {
            sector_size: self.sector_size,
            sectors: (self.data.len() / self.sector_size as usize) as u64,
            read_only: false,
        }
    }
    fn poll_read(&mut self, _: &mut Context<'_>, lba: u64, buf: &mut [u8]) -> Poll<Result<(), BlockError>> {
        check_request(&self.info(), lba, buf.len())?;
        let start = lba as usize * self.sector_size as usize;
        buf.copy_from_slice(&self.data[start..start + buf.len()]);
        Poll::Ready(Ok(()))
    }
    fn poll_write(&mut self, _: &mut Context<'_>, lba: u64, buf: &[u8]) -> Poll<Result<(), BlockError>> {
        check_request(&self.info(), lba, buf.len())?;
        let start = lba as usize * self.sector_size as usize;
        self.data[start..start + buf.len()].copy_from_slice(buf);
        Poll::Ready(Ok(()))
    }
    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BlockError>> {
        Poll::Ready(Ok(()))
    }
}
