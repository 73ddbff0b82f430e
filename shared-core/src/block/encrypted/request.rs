//! The steps of one request through the encrypted layer, kept between polls.
//!
//! Per group it touches, a read is (metadata read: both copies) → data read → decrypt. A
//! write is (metadata read) → (probe: a read of the chunk's old ciphertext, when the
//! metadata does not say which slot matches it) → encrypt into the other slots → (a flush,
//! when data was written since the last one) → metadata write to the older copy → flush →
//! data write. The device below may answer `Pending` to any of them, so the layer
//! remembers the step it is in and polls the same request below again with the same
//! buffer. Encryption happens once per chunk, before the metadata write, so a re-poll
//! never draws new nonces for the same bytes.

use core::task::{ready, Context, Poll};

use super::layout::{
    generation, integrity, set_generation, set_slot, set_state, slot, split_mac, state, SectorState, TAG,
};
use super::Encrypted;
use crate::block::{BlockDevice, BlockError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Read,
    Write,
}

/// What the request in progress does next below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Io {
    /// Decide the next step from the sectors done so far.
    Next,
    /// Reading both metadata copies of a group.
    ReadMeta { group: u64 },
    /// Reading `sectors` data sectors from logical `first` (into the caller's buffer).
    ReadData { first: u64, sectors: u64 },
    /// Reading the old ciphertext of a chunk about to be written (into `scratch`), to
    /// learn which slot of each pending sector matches it.
    Probe { first: u64, sectors: u64 },
    /// Making earlier data writes durable before metadata that relies on them.
    FlushBefore { first: u64, sectors: u64 },
    /// Writing the metadata with the chunk's new slots (marked pending).
    WriteMeta { first: u64, sectors: u64 },
    /// Making that metadata durable before the data it describes is written.
    FlushMeta { first: u64, sectors: u64 },
    /// Writing the ciphertext of the chunk (from `scratch`).
    WriteData { first: u64, sectors: u64 },
}

/// The request in progress, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    Idle,
    Busy { kind: Kind, lba: u64, len: usize, done: u64, io: Io },
}

impl<D: BlockDevice> Encrypted<D> {
    /// Continues the request `(kind, lba, len)`, or starts it: a different request while
    /// one is in progress means the caller dropped the first without `cancel`.
    fn start(&mut self, kind: Kind, lba: u64, len: usize) -> (u64, Io) {
        match self.step {
            Step::Busy { kind: k, lba: l, len: n, done, io } if (k, l, n) == (kind, lba, len) => return (done, io),
            Step::Busy { .. } => {
                self.disk.cancel();
                self.meta_group = None;
                self.data_unflushed = true;
            }
            Step::Idle => {}
        }
        self.step = Step::Busy { kind, lba, len, done: 0, io: Io::Next };
        (0, Io::Next)
    }

    fn set(&mut self, next: Io, done_more: u64) {
        if let Step::Busy { io, done, .. } = &mut self.step {
            *io = next;
            *done += done_more;
        }
    }

    /// Ends the request, successful or not (a failed one leaves no cached metadata, and
    /// a write of it may still land below).
    pub(super) fn finish(&mut self, result: Result<(), BlockError>) -> Poll<Result<(), BlockError>> {
        self.step = Step::Idle;
        if result.is_err() {
            self.meta_group = None;
            self.data_unflushed = true;
        }
        Poll::Ready(result)
    }

    /// Reads both copies of `group`'s metadata (done by the caller into `meta`) and adopts
    /// the newest whose MAC holds; `false` when neither does.
    fn adopt_meta(&mut self, group: u64) -> bool {
        let ss = self.geometry.sector_size;
        let keys = &self.ciphers.keys;
        let valid = |copy: &mut [u8]| {
            let (signed, mac) = split_mac(copy);
            keys.meta_verifies(group, signed, mac)
        };
        let (first, second) = self.meta.split_at_mut(ss);
        let next_copy = match (valid(first), valid(second)) {
            (true, true) if generation(second) > generation(first) => {
                first.copy_from_slice(second);
                0
            }
            (true, true) => 1,
            (true, false) => {
                self.metadata_fallbacks += 1;
                1
            }
            (false, true) => {
                self.metadata_fallbacks += 1;
                first.copy_from_slice(second);
                0
            }
            (false, false) => return false,
        };
        self.meta_next_copy = next_copy;
        self.meta_group = Some(group);
        true
    }

    fn read_meta(&mut self, cx: &mut Context<'_>, group: u64, at: u64) -> Poll<Result<(), BlockError>> {
        let ss = self.geometry.sector_size;
        ready!(self.disk.poll_read(cx, self.geometry.meta_sector(group), &mut self.meta[..2 * ss]))?;
        if !self.adopt_meta(group) {
            return Poll::Ready(Err(integrity(at)));
        }
        Poll::Ready(Ok(()))
    }

    pub(super) fn drive_read(
        &mut self,
        cx: &mut Context<'_>,
        lba: u64,
        buf: &mut [u8],
    ) -> Poll<Result<(), BlockError>> {
        let ss = self.geometry.sector_size;
        let total = (buf.len() / ss) as u64;
        loop {
            let (done, io) = self.start(Kind::Read, lba, buf.len());
            match io {
                Io::Next => {
                    if done == total {
                        return Poll::Ready(Ok(()));
                    }
                    let at = lba + done;
                    let (group, _) = self.geometry.locate(at);
                    let sectors = self.geometry.chunk(at, total - done);
                    let io = if self.meta_group == Some(group) {
                        Io::ReadData { first: at, sectors }
                    } else {
                        Io::ReadMeta { group }
                    };
                    self.set(io, 0);
                }
                Io::ReadMeta { group } => {
                    ready!(self.read_meta(cx, group, lba + done))?;
                    self.set(Io::Next, 0);
                }
                Io::ReadData { first, sectors } => {
                    let bytes = &mut buf[(first - lba) as usize * ss..][..sectors as usize * ss];
                    ready!(self.disk.poll_read(cx, self.geometry.data_sector(first), bytes))?;
                    for (k, sector) in bytes.chunks_mut(ss).enumerate() {
                        let lba = first + k as u64;
                        if self.open_sector(lba, sector).is_none() {
                            return Poll::Ready(Err(integrity(lba)));
                        }
                    }
                    self.set(Io::Next, sectors);
                }
                _ => unreachable!("a read never writes"),
            }
        }
    }

    pub(super) fn drive_write(&mut self, cx: &mut Context<'_>, lba: u64, buf: &[u8]) -> Poll<Result<(), BlockError>> {
        let ss = self.geometry.sector_size;
        let total = (buf.len() / ss) as u64;
        loop {
            let (done, io) = self.start(Kind::Write, lba, buf.len());
            match io {
                Io::Next => {
                    if done == total {
                        return Poll::Ready(Ok(()));
                    }
                    let at = lba + done;
                    let (group, index) = self.geometry.locate(at);
                    let sectors = self.geometry.chunk(at, total - done);
                    if self.meta_group != Some(group) {
                        self.set(Io::ReadMeta { group }, 0);
                    } else if (index..index + sectors as usize).any(|i| state(&self.meta[..ss], i).pending) {
                        self.set(Io::Probe { first: at, sectors }, 0);
                    } else {
                        let from = (at - lba) as usize * ss;
                        self.encrypt(at, &buf[from..from + sectors as usize * ss])?;
                        let io = if self.data_unflushed {
                            Io::FlushBefore { first: at, sectors }
                        } else {
                            Io::WriteMeta { first: at, sectors }
                        };
                        self.set(io, 0);
                    }
                }
                Io::ReadMeta { group } => {
                    ready!(self.read_meta(cx, group, lba + done))?;
                    self.set(Io::Next, 0);
                }
                Io::Probe { first, sectors } => {
                    let bytes = &mut self.scratch[..sectors as usize * ss];
                    ready!(self.disk.poll_read(cx, self.geometry.data_sector(first), bytes))?;
                    self.resolve_pending(first, sectors);
                    self.set(Io::Next, 0);
                }
                Io::FlushBefore { first, sectors } => {
                    ready!(self.disk.poll_flush(cx))?;
                    self.data_unflushed = false;
                    self.set(Io::WriteMeta { first, sectors }, 0);
                }
                Io::WriteMeta { first, sectors } => {
                    let (group, _) = self.geometry.locate(first);
                    let at = self.geometry.meta_sector(group) + self.meta_next_copy;
                    ready!(self.disk.poll_write(cx, at, &self.meta[..ss]))?;
                    self.meta_next_copy ^= 1;
                    self.set(Io::FlushMeta { first, sectors }, 0);
                }
                Io::FlushMeta { first, sectors } => {
                    ready!(self.disk.poll_flush(cx))?;
                    self.set(Io::WriteData { first, sectors }, 0);
                }
                Io::WriteData { first, sectors } => {
                    let bytes = &self.scratch[..sectors as usize * ss];
                    ready!(self.disk.poll_write(cx, self.geometry.data_sector(first), bytes))?;
                    // The new slots match the data now; the old ones stay until the
                    // sector's next write, which goes to them.
                    let (_, index) = self.geometry.locate(first);
                    for i in index..index + sectors as usize {
                        let old = state(&self.meta[..ss], i);
                        set_state(&mut self.meta[..ss], i, SectorState { current: 1 - old.current, pending: false });
                    }
                    self.data_unflushed = true;
                    self.set(Io::Next, sectors);
                }
                Io::ReadData { .. } => unreachable!("a write never reads data"),
            }
        }
    }

    /// Authenticates and decrypts one sector in place with the cached metadata: its
    /// current slot, or, when a write of it was in flight, the other one. The slot that
    /// matched, or `None` (and the sector garbled).
    fn open_sector(&mut self, lba: u64, sector: &mut [u8]) -> Option<usize> {
        let ss = self.geometry.sector_size;
        let (_, index) = self.geometry.locate(lba);
        let s = state(&self.meta[..ss], index);
        if s.pending {
            self.probe.copy_from_slice(sector);
        }
        let try_slot = |this: &mut Self, which: usize, sector: &mut [u8]| {
            let (id, tag) = slot(&this.meta[..ss], index, which);
            let tag: [u8; TAG] = tag.try_into().expect("a tag");
            this.ciphers.open(&id, &tag, lba, sector)
        };
        if try_slot(self, s.current, sector) {
            return Some(s.current);
        }
        if s.pending {
            sector.copy_from_slice(&self.probe);
            if try_slot(self, 1 - s.current, sector) {
                return Some(1 - s.current);
            }
        }
        None
    }

    /// After a probe (old ciphertext of `sectors` from `first` in `scratch`): records which
    /// slot of each pending sector matches its data. A sector neither matches (tampered
    /// with) keeps its state: the write about to replace it still keeps `current`.
    fn resolve_pending(&mut self, first: u64, sectors: u64) {
        let ss = self.geometry.sector_size;
        let (_, index) = self.geometry.locate(first);
        let mut sector = alloc::vec![0u8; ss];
        for k in 0..sectors as usize {
            let s = state(&self.meta[..ss], index + k);
            if !s.pending {
                continue;
            }
            sector.copy_from_slice(&self.scratch[k * ss..][..ss]);
            let current = self.open_sector(first + k as u64, &mut sector).unwrap_or(s.current);
            set_state(&mut self.meta[..ss], index + k, SectorState { current, pending: false });
        }
        sector.fill(0);
    }

    /// Encrypts `plain` (sectors from logical `first`, all in one group) into `scratch`,
    /// one fresh `(session, counter)` per sector, into the slots that do not match the
    /// data on the disk, marks those sectors pending, and seals the cached metadata as
    /// the next generation.
    fn encrypt(&mut self, first: u64, plain: &[u8]) -> Result<(), BlockError> {
        let ss = self.geometry.sector_size;
        let (group, index) = self.geometry.locate(first);
        let out = &mut self.scratch[..plain.len()];
        out.copy_from_slice(plain);
        for (k, sector) in out.chunks_mut(ss).enumerate() {
            let (id, tag) = self.ciphers.seal(first + k as u64, sector)?;
            let meta = &mut self.meta[..ss];
            let s = state(meta, index + k);
            set_slot(meta, index + k, 1 - s.current, &id, &tag);
            set_state(meta, index + k, SectorState { current: s.current, pending: true });
        }
        self.seal_meta(group);
        Ok(())
    }

    /// Sets the cached metadata's generation to the next one and its MAC.
    pub(super) fn seal_meta(&mut self, group: u64) {
        let ss = self.geometry.sector_size;
        let meta = &mut self.meta[..ss];
        let next = generation(meta) + 1;
        set_generation(meta, next);
        let (signed, mac) = split_mac(meta);
        mac.copy_from_slice(&self.ciphers.keys.meta_mac(group, signed));
    }

    /// Writes group `group` of a device being formatted: encrypted zeros, slot 0 of each
    /// sector current, both metadata copies at generation 1.
    pub(super) async fn format_group(&mut self, group: u64) -> Result<(), BlockError> {
        use crate::block::BlockExt;
        let ss = self.geometry.sector_size;
        let per_group = self.geometry.per_group as usize;
        let first = group * self.geometry.per_group;
        self.meta.fill(0);
        self.scratch.fill(0);
        for (k, sector) in self.scratch.chunks_mut(ss).enumerate() {
            let (id, tag) = self.ciphers.seal(first + k as u64, sector)?;
            set_slot(&mut self.meta[..ss], k, 0, &id, &tag);
        }
        self.seal_meta(group);
        let (one, two) = self.meta.split_at_mut(ss);
        two.copy_from_slice(one);
        self.disk.write(self.geometry.data_sector(first), &self.scratch[..per_group * ss]).await?;
        self.disk.write(self.geometry.meta_sector(group), &self.meta).await?;
        self.meta_group = None;
        Ok(())
    }
}
