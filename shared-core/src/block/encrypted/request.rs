//! The steps of one request through the encrypted layer, kept between polls.
//!
//! A request becomes several requests below: per group it touches, a write is (metadata
//! read, unless cached or the whole group is written) → encrypt → data write → metadata
//! write, after (once per epoch) a header write and a flush; a read is (metadata read) →
//! data read → decrypt. The device below may answer `Pending` to any of them, so the
//! layer remembers the step it is in and polls the same request below again with the
//! same buffer. Encryption happens once per chunk, on the way into the data write, so a
//! re-poll never draws new nonces for the same bytes.

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Nonce, Tag};
use core::task::{ready, Context, Poll};

use super::layout::{aad, entry, integrity, set_entry, Header, NonceParts};
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
    /// Writing the header with the next epoch (its bytes are in `scratch`).
    WriteHeader,
    /// Making that header durable before the epoch is used.
    FlushHeader,
    /// Reading the metadata sector of a group.
    ReadMeta { group: u64 },
    /// Reading `sectors` data sectors from logical `first` (into the caller's buffer).
    ReadData { first: u64, sectors: u64 },
    /// Writing the ciphertext of `sectors` sectors from logical `first` (from `scratch`).
    WriteData { first: u64, sectors: u64 },
    /// Writing the metadata of the group just written.
    WriteMeta { group: u64, sectors: u64 },
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

    /// Ends the request, successful or not (a failed one leaves no cached metadata).
    pub(super) fn finish(&mut self, result: Result<(), BlockError>) -> Poll<Result<(), BlockError>> {
        self.step = Step::Idle;
        if result.is_err() {
            self.meta_group = None;
        }
        Poll::Ready(result)
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
                    ready!(self.disk.poll_read(cx, self.geometry.meta_sector(group), &mut self.meta))?;
                    self.meta_group = Some(group);
                    self.set(Io::Next, 0);
                }
                Io::ReadData { first, sectors } => {
                    let bytes = &mut buf[(first - lba) as usize * ss..][..sectors as usize * ss];
                    ready!(self.disk.poll_read(cx, self.geometry.data_sector(first), bytes))?;
                    self.decrypt(first, bytes)?;
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
                    let (group, _) = self.geometry.locate(at);
                    let sectors = self.geometry.chunk(at, total - done);
                    if u64::from(u32::MAX - self.next.counter) < sectors {
                        self.epoch_durable = false;
                    }
                    if !self.epoch_durable {
                        self.prepare_epoch()?;
                        self.set(Io::WriteHeader, 0);
                    } else if self.meta_group != Some(group) && sectors < self.geometry.per_group {
                        self.set(Io::ReadMeta { group }, 0);
                    } else {
                        if self.meta_group != Some(group) {
                            // The whole group is rewritten: no need for its old entries.
                            self.meta.fill(0);
                            self.meta_group = Some(group);
                        }
                        let from = (at - lba) as usize * ss;
                        self.encrypt(at, &buf[from..from + sectors as usize * ss])?;
                        self.set(Io::WriteData { first: at, sectors }, 0);
                    }
                }
                Io::WriteHeader => {
                    ready!(self.disk.poll_write(cx, 0, &self.scratch[..ss]))?;
                    self.set(Io::FlushHeader, 0);
                }
                Io::FlushHeader => {
                    ready!(self.disk.poll_flush(cx))?;
                    self.header.epoch += 1;
                    let mut salt = [0u8; 4];
                    crate::services::fill_random(&mut salt);
                    self.next = NonceParts { epoch: self.header.epoch, salt, counter: 0 };
                    self.epoch_durable = true;
                    self.set(Io::Next, 0);
                }
                Io::ReadMeta { group } => {
                    ready!(self.disk.poll_read(cx, self.geometry.meta_sector(group), &mut self.meta))?;
                    self.meta_group = Some(group);
                    self.set(Io::Next, 0);
                }
                Io::WriteData { first, sectors } => {
                    let bytes = &self.scratch[..sectors as usize * ss];
                    ready!(self.disk.poll_write(cx, self.geometry.data_sector(first), bytes))?;
                    let (group, _) = self.geometry.locate(first);
                    self.set(Io::WriteMeta { group, sectors }, 0);
                }
                Io::WriteMeta { group, sectors } => {
                    ready!(self.disk.poll_write(cx, self.geometry.meta_sector(group), &self.meta))?;
                    self.set(Io::Next, sectors);
                }
                Io::ReadData { .. } => unreachable!("a write never reads data"),
            }
        }
    }

    /// Puts the header with the next epoch into `scratch`.
    fn prepare_epoch(&mut self) -> Result<(), BlockError> {
        let epoch = self.header.epoch.checked_add(1).ok_or_else(|| {
            BlockError::Io("this key has written in 2^32 sessions: format the device with a new key".into())
        })?;
        let ss = self.geometry.sector_size;
        Header { epoch, ..self.header }.write(&mut self.scratch[..ss]);
        Ok(())
    }

    /// Encrypts `plain` (sectors from logical `first`, all in one group) into `scratch`,
    /// one fresh nonce per sector, and records nonces and tags in the cached metadata.
    fn encrypt(&mut self, first: u64, plain: &[u8]) -> Result<(), BlockError> {
        let ss = self.geometry.sector_size;
        let (_, index) = self.geometry.locate(first);
        let out = &mut self.scratch[..plain.len()];
        out.copy_from_slice(plain);
        for (k, sector) in out.chunks_mut(ss).enumerate() {
            let nonce = self.next.bytes();
            self.next.counter += 1;
            let lba = first + k as u64;
            let tag = self
                .cipher
                .encrypt_in_place_detached(Nonce::from_slice(&nonce), &aad(&self.header.disk_id, lba), sector)
                .map_err(|_| BlockError::Io("AES-GCM refused a sector".into()))?;
            set_entry(&mut self.meta, index + k, &nonce, &tag);
        }
        Ok(())
    }

    /// Authenticates and decrypts `bytes` (sectors from logical `first`, one group) in
    /// place with the cached metadata.
    fn decrypt(&self, first: u64, bytes: &mut [u8]) -> Result<(), BlockError> {
        let ss = self.geometry.sector_size;
        let (_, index) = self.geometry.locate(first);
        for (k, sector) in bytes.chunks_mut(ss).enumerate() {
            let lba = first + k as u64;
            let (nonce, tag) = entry(&self.meta, index + k);
            if NonceParts::from_bytes(nonce).epoch == 0 {
                // Epoch 0 never encrypts data: a zeroed or forged entry.
                return Err(integrity(lba));
            }
            self.cipher
                .decrypt_in_place_detached(
                    Nonce::from_slice(nonce),
                    &aad(&self.header.disk_id, lba),
                    sector,
                    Tag::from_slice(tag),
                )
                .map_err(|_| integrity(lba))?;
        }
        Ok(())
    }
}
