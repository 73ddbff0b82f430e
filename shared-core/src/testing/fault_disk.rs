//! A block device with a volatile write cache that a test can stop, crash and tear.
//!
//! Writes complete into a cache (in order); a flush makes the cache durable. What a crash
//! leaves is the durable bytes plus any subset of the cached writes (a device may write
//! back its cache in any order), one of them possibly torn (only its first bytes landed):
//! [`FaultDisk::crash`]. [`FaultDisk::stop_at`] makes the n-th request below answer
//! `Pending` for ever, either before it is done or after (a transfer the device finished
//! but did not report), which is what a dropped future or a hung device leaves.

use alloc::vec::Vec;
use core::task::{Context, Poll};

use crate::block::{check_request, BlockDevice, BlockError, BlockInfo, MemDisk};

/// One request the disk was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultOp {
    /// A read of `sectors` from `lba`.
    Read {
        /// First sector.
        lba: u64,
        /// Sectors.
        sectors: u64,
    },
    /// A write of `sectors` from `lba`.
    Write {
        /// First sector.
        lba: u64,
        /// Sectors.
        sectors: u64,
    },
    /// A flush.
    Flush,
}

/// Where the disk stops answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop {
    /// The index (from 0, counting every read, write and flush) of the request that
    /// never completes.
    pub op: usize,
    /// Whether that request is carried out anyway (it only never reports).
    pub lands: bool,
}

/// A cached write: where, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedWrite {
    /// First sector.
    pub lba: u64,
    /// The bytes written.
    pub bytes: Vec<u8>,
}

/// How one cached write lands torn in a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tear {
    /// Its index in [`FaultDisk::cached`].
    pub write: usize,
    /// How many of its first bytes land.
    pub bytes: usize,
    /// Whether the rest of the sector the cut falls in reads as zeros (else it keeps its
    /// old bytes).
    pub zeroes_rest: bool,
}

/// A disk with a volatile cache, stops and crashes (see the module docs).
#[derive(Debug, Clone)]
pub struct FaultDisk {
    durable: Vec<u8>,
    cache: Vec<CachedWrite>,
    sector_size: usize,
    /// Every request so far (a stopped one once, however often it is polled).
    pub ops: Vec<FaultOp>,
    stop: Option<Stop>,
    /// Whether the stopped request is outstanding (until `cancel` or `resume`).
    stopped: bool,
    /// Whether a stop was ever reached.
    reached: bool,
}

impl FaultDisk {
    /// A disk whose durable contents are `disk`'s.
    pub fn new(disk: &MemDisk) -> Self {
        let sector_size = disk.info().sector_size as usize;
        FaultDisk {
            durable: disk.bytes().into(),
            cache: Vec::new(),
            sector_size,
            ops: Vec::new(),
            stop: None,
            stopped: false,
            reached: false,
        }
    }

    /// Makes request number `stop.op` (counted from now) never complete.
    pub fn stop_at(&mut self, stop: Stop) {
        self.stop = Some(Stop { op: self.ops.len() + stop.op, ..stop });
    }

    /// Answers requests again (the stopped one, if any, stays as it was left).
    pub fn resume(&mut self) {
        self.stop = None;
        self.stopped = false;
    }

    /// Whether the stop was reached.
    pub fn reached_stop(&self) -> bool {
        self.reached
    }

    /// The writes completed since the last flush, oldest first.
    pub fn cached(&self) -> &[CachedWrite] {
        &self.cache
    }

    /// What the device holds as seen by requests: the durable bytes with the cache on top.
    pub fn view(&self) -> MemDisk {
        let mut disk = self.durable_disk();
        for w in &self.cache {
            apply(&mut disk, w, w.bytes.len());
        }
        disk
    }

    /// What a crash now leaves: the durable bytes, then the cached writes whose index
    /// `landed` accepts, in order, except `torn.write`, of which only what `torn` says.
    pub fn crash(&self, landed: impl Fn(usize) -> bool, torn: Option<Tear>) -> MemDisk {
        let mut disk = self.durable_disk();
        for (i, w) in self.cache.iter().enumerate() {
            match torn {
                Some(tear) if tear.write == i => {
                    apply(&mut disk, w, tear.bytes);
                    let ss = self.sector_size;
                    if tear.zeroes_rest && !tear.bytes.is_multiple_of(ss) {
                        // The sector the cut falls in: what the device did not finish of
                        // it reads as zeros (the old bytes are gone too).
                        let end = tear.bytes.next_multiple_of(ss);
                        let at = w.lba as usize * ss;
                        disk.bytes_mut()[at + tear.bytes..at + end].fill(0);
                    }
                }
                _ if landed(i) => apply(&mut disk, w, w.bytes.len()),
                _ => {}
            }
        }
        disk
    }

    fn durable_disk(&self) -> MemDisk {
        let mut disk = MemDisk::new(self.sector_size as u32, (self.durable.len() / self.sector_size) as u64);
        disk.bytes_mut().copy_from_slice(&self.durable);
        disk
    }

    /// Records `op`: whether it is carried out, and whether it is reported done.
    fn begin(&mut self, op: FaultOp) -> (bool, bool) {
        if self.stopped {
            // The stopped request polled again: still nothing.
            return (false, false);
        }
        self.ops.push(op);
        match self.stop {
            Some(stop) if stop.op == self.ops.len() - 1 => {
                self.stopped = true;
                self.reached = true;
                (stop.lands, false)
            }
            _ => (true, true),
        }
    }
}

fn apply(disk: &mut MemDisk, w: &CachedWrite, bytes: usize) {
    let ss = disk.info().sector_size as usize;
    disk.bytes_mut()[w.lba as usize * ss..][..bytes].copy_from_slice(&w.bytes[..bytes]);
}

impl BlockDevice for FaultDisk {
    fn info(&self) -> BlockInfo {
        BlockInfo {
            sector_size: self.sector_size as u32,
            sectors: (self.durable.len() / self.sector_size) as u64,
            read_only: false,
        }
    }

    fn poll_read(&mut self, _: &mut Context<'_>, lba: u64, buf: &mut [u8]) -> Poll<Result<(), BlockError>> {
        check_request(&self.info(), lba, buf.len())?;
        let (run, report) = self.begin(FaultOp::Read { lba, sectors: (buf.len() / self.sector_size) as u64 });
        if run {
            buf.copy_from_slice(&self.view().bytes()[lba as usize * self.sector_size..][..buf.len()]);
        }
        if report {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    fn poll_write(&mut self, _: &mut Context<'_>, lba: u64, buf: &[u8]) -> Poll<Result<(), BlockError>> {
        check_request(&self.info(), lba, buf.len())?;
        let (run, report) = self.begin(FaultOp::Write { lba, sectors: (buf.len() / self.sector_size) as u64 });
        if run {
            self.cache.push(CachedWrite { lba, bytes: buf.into() });
        }
        if report {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BlockError>> {
        let (run, report) = self.begin(FaultOp::Flush);
        if run {
            self.durable = self.view().bytes().into();
            self.cache.clear();
        }
        if report {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    fn cancel(&mut self) {
        // The stopped request is given up; later ones run (unless the test stops again).
        if self.stopped {
            self.stop = None;
            self.stopped = false;
        }
    }
}
