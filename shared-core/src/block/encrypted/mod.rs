//! An authenticated encryption layer over any block device: AES-256-GCM per sector, with
//! per-disk keys, an authenticated header, and writes that a crash or a dropped future
//! leaves old or new.
//!
//! [`Encrypted<D>`] is a [`BlockDevice`] over a `D: BlockDevice`, so it stacks with the
//! other layers in both orders (an encrypted [`Partition`](super::mbr::Partition), or a
//! partition table inside an encrypted disk). Sectors keep their size (512 bytes stay 512
//! bytes, so an MBR or a file system fits above); the nonces and tags live in metadata
//! sectors next to the data ([`layout`] has the picture):
//!
//! * one header sector, then groups of two metadata sectors (two copies) + K data
//!   sectors, K = (sector size − 40) / 65: 7 for 512-byte sectors (the layer offers 7/9
//!   of the device, 78 %), 62 for 4 KiB sectors (62/64, 97 %);
//! * a write of n sectors inside one group costs one metadata write, two flushes (one
//!   only when data was written since the last) and one data write, plus a metadata read
//!   (both copies in one request) when that group is not the one cached, plus a read of
//!   the n old sectors when the metadata does not say which slot matches them (the last
//!   sectors written in a group before the layer moved to another group or was reopened);
//! * a read costs the data read (plus the metadata read when not cached);
//! * memory: two metadata sectors, one group of ciphertext and one sector, allocated at
//!   open (5 KiB at 512-byte sectors, 260 KiB at 4 KiB; one more sector while pending
//!   sectors are probed), plus up to five AES key schedules.
//!
//! **Keys** ([`keys`]). The user's 256-bit [`Key`] never encrypts anything itself.
//! HKDF-SHA256 (RFC 5869) derives, with the disk's random 32-byte id (drawn at format,
//! stored in the header) as salt, one key per purpose: the key check, the header's
//! HMAC-SHA256 key, the metadata's HMAC-SHA256 key, and per write session an AES-256-GCM
//! key (`info` = a label ‖ the session's id). So one key on several disks gives unrelated
//! keys (the key checks differ: disks are not linkable by them). `Key` and the derived
//! keys are wiped when dropped; `Key` is not `Clone`.
//!
//! **Nonces never repeat under one key, whatever the disk says.** A write session is the
//! time from the first write after [`open`](Encrypted::open) (or [`format`](Encrypted::format))
//! to the layer's drop; it draws a random 96-bit id from
//! [`services::fill_random`](crate::services::fill_random), its key is derived from it,
//! and its sector writes use the nonces `0⁶⁴ ‖ counter` with an in-memory counter that
//! only goes up (after 2³² − 1 sectors a new session starts). Nothing about nonces is
//! read from the disk, so neither a rolled-back header nor a rolled-back disk can make
//! one repeat. A (key, nonce) pair repeats only if two sessions of one disk draw the
//! same 96-bit id: with s sessions in the disk's life the probability is at most
//! s² / 2⁹⁷ (10⁶ sessions: below 2⁻⁵⁷; 2³² sessions: 2⁻³³). Different disks have
//! different keys (their 256-bit ids collide with probability s_disks² / 2²⁵⁷). Each
//! session key encrypts at most 2³² sectors, inside AES-GCM's limits. This rests on
//! `fill_random` being unpredictable: rt-unix and rt-unikraft call `getrandom` (the
//! host kernel's; Unikraft's random library), rt-solo5 reads RDRAND.
//!
//! **Integrity.** Each sector's tag covers its ciphertext and its logical sector number
//! under its session key (which belongs to this disk), so a flipped bit, a sector moved
//! to another place or copied from another disk fails authentication, and the read
//! returns [`BlockError::Integrity`] with its buffer zeroed, never the bytes. Each
//! metadata sector carries an HMAC over its group number, its slots, its states and its
//! generation; the header an HMAC over its fields (a changed header is
//! [`EncryptedError::HeaderTampered`] at open). Not covered: putting back an older
//! version of a whole group (its data and both metadata copies) or of the whole disk:
//! freshness needs something the disk cannot rewrite (a hash tree rooted outside it, or
//! an application generation kept elsewhere: kv's `--min-generation`).
//!
//! **Cancellation and crashes.** Each sector has two slots; a write seals the new
//! ciphertext into the slot that does not match the data on the disk and marks the
//! sector *pending*, writes that metadata (to the older copy, with generation + 1),
//! flushes, then writes the data. Before a metadata write, data written since the last
//! flush is flushed, so metadata never claims a slot whose data might not be durable.
//! So at every step, on the disk, each sector's data matches its current slot, or it is
//! pending and matches one of its two slots: a write dropped at any await point (the
//! caller's timeout, `select!`) or cut by a crash leaves each sector with its old or its
//! new contents, and the next write of a pending sector first reads it to learn which.
//! A metadata write torn by a crash fails its HMAC and the other copy (one write older,
//! which does not know the write being made, whose data was not written yet) is used:
//! no sector is lost, including sectors that were not being written.
//! [`metadata_fallbacks`](Encrypted::metadata_fallbacks) counts those. So
//! `BlockError::Integrity` never comes from a crash or a cancellation: it means the disk
//! was changed behind the layer's back (or the medium decayed). Assumed: a device writes
//! one sector atomically (what virtio-blk and NVMe devices promise at their logical
//! block size); a data sector torn inside itself reads as `Integrity`, not old or new.
//! Data a write left unflushed may be lost by a crash, as on any disk (call `flush`).
//!
//! **Format and open.** [`format`](Encrypted::format) clears the old header, writes
//! encrypted zeros over the whole device (so every sector always holds an authenticated
//! ciphertext and a fresh device reads as zeros), then the header: a format cut short
//! is [`EncryptedError::NotFormatted`]. [`open`](Encrypted::open) checks the version (the
//! earlier version 1 is refused by name), the key (a wrong key is
//! [`EncryptedError::WrongKey`], not a stream of integrity errors), the header's MAC and
//! the geometry. One writer at a time: two layers open on one device would each keep
//! their own idea of the metadata.
//!
//! **The key** is 32 bytes ([`Key`]): from a boot argument (`Key` is a
//! [`FromArg`](crate::bootargs::FromArg), 64 hex digits: `--block-key=00ff...`) or, for a
//! build-time secret, `Key::from_hex(env!("APP_BLOCK_KEY"))` in the app. A boot argument
//! is visible to whoever starts the VM; a build-time key to whoever has the image.

mod ciphers;
mod keys;
mod layout;
mod request;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_faults;

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::task::{Context, Poll};

use super::{check_request, BlockDevice, BlockError, BlockExt, BlockInfo};
use ciphers::Ciphers;
use keys::DiskKeys;
pub use keys::Key;
pub use layout::Geometry;
use layout::{Header, HeaderError, DISK_ID, HEADER_SIGNED, MAC};
use request::Step;

/// Why an encrypted device could not be formatted or opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncryptedError {
    /// The device below failed.
    Block(BlockError),
    /// Its sectors are too small (under 512 bytes) or too few (a header and one group:
    /// 10 sectors of 512 bytes).
    TooSmall(BlockInfo),
    /// No header: the device was never formatted (see [`Encrypted::format`]).
    NotFormatted,
    /// A header version this code does not read.
    Version(u32),
    /// The header was written for a device of another size.
    GeometryChanged,
    /// The key is not the one the device was formatted with.
    WrongKey,
    /// The header's MAC does not match: it was changed since it was written.
    HeaderTampered,
}

impl fmt::Display for EncryptedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncryptedError::Block(e) => write!(f, "{e}"),
            EncryptedError::TooSmall(i) => write!(
                f,
                "{} sectors of {} B cannot hold an encrypted device (at least 10 sectors of 512 B or more)",
                i.sectors, i.sector_size
            ),
            EncryptedError::NotFormatted => f.write_str("no encrypted-device header: format the device first"),
            EncryptedError::Version(v) => write!(
                f,
                "encrypted-device header version {v} is not supported (this code reads version {}; version 1 predates per-disk keys: copy the data off with the code that wrote it and format again)",
                layout::VERSION
            ),
            EncryptedError::GeometryChanged => f.write_str("the device's size differs from the one it was formatted with"),
            EncryptedError::WrongKey => f.write_str("wrong key for this encrypted device"),
            EncryptedError::HeaderTampered => {
                f.write_str("the encrypted device's header was changed since it was written (tampering)")
            }
        }
    }
}

impl core::error::Error for EncryptedError {}

impl From<BlockError> for EncryptedError {
    fn from(e: BlockError) -> Self {
        EncryptedError::Block(e)
    }
}

/// An encrypted view of `D` (see the module docs for the layout, the nonce scheme and what
/// a crash or a cancelled write leaves).
pub struct Encrypted<D> {
    disk: D,
    ciphers: Ciphers,
    geometry: Geometry,
    /// The request in progress, if a poll returned `Pending` (see `request.rs`).
    step: Step,
    /// Both metadata copies of a group as read; the first half is then the one adopted
    /// (the newest valid), with what this session learnt since.
    meta: Vec<u8>,
    /// The group `meta` describes, when it matches the disk.
    meta_group: Option<u64>,
    /// The copy (0 or 1) of `meta_group` the next metadata write goes to: the older one.
    meta_next_copy: u64,
    /// Whether data was written since the device below last flushed: the next metadata
    /// write must wait for a flush (see "Cancellation and crashes" in the module docs).
    data_unflushed: bool,
    /// Metadata copies that failed their MAC while the other copy was good (a torn
    /// metadata write, or tampering with one copy).
    metadata_fallbacks: u64,
    /// Ciphertext of a chunk being written, or being probed.
    scratch: Vec<u8>,
    /// One sector's ciphertext, kept while a first slot is tried.
    probe: Vec<u8>,
}

impl<D: BlockDevice> Encrypted<D> {
    /// Formats `disk` with `key`: a new disk id (so new keys), every sector written with
    /// encrypted zeros (so this writes the whole device once), then the header.
    pub async fn format(mut disk: D, key: &Key) -> Result<Self, EncryptedError> {
        let info = disk.info();
        let geometry = Geometry::new(info.sector_size as usize, info.sectors).ok_or(EncryptedError::TooSmall(info))?;
        let ss = geometry.sector_size;
        // An old header goes first: a format cut short must not look formatted.
        let mut sector = vec![0u8; ss];
        disk.write(0, &sector).await?;
        disk.flush().await?;
        let mut disk_id = [0u8; DISK_ID];
        crate::services::fill_random(&mut disk_id);
        let keys = DiskKeys::derive(key, &disk_id);
        let header = Header {
            sector_size: info.sector_size,
            logical_sectors: geometry.logical_sectors(),
            disk_id,
            key_check: keys.key_check,
        };
        let mut device = Encrypted::new(disk, keys, geometry);
        for group in 0..geometry.groups {
            device.format_group(group).await?;
        }
        device.disk.flush().await?;
        header.write(&mut sector);
        let mac = device.ciphers.keys.header_mac(&sector[..HEADER_SIGNED]);
        sector[HEADER_SIGNED..HEADER_SIGNED + MAC].copy_from_slice(&mac);
        device.disk.write(0, &sector).await?;
        device.disk.flush().await?;
        Ok(device)
    }

    /// Opens a device formatted with [`format`](Self::format), checking the key and the
    /// header's MAC. Nothing is written until the first write.
    pub async fn open(mut disk: D, key: &Key) -> Result<Self, EncryptedError> {
        let info = disk.info();
        let geometry = Geometry::new(info.sector_size as usize, info.sectors).ok_or(EncryptedError::TooSmall(info))?;
        let mut sector = vec![0u8; geometry.sector_size];
        disk.read(0, &mut sector).await?;
        let header = Header::read(&sector).map_err(|e| match e {
            HeaderError::NoMagic => EncryptedError::NotFormatted,
            HeaderError::Version(v) => EncryptedError::Version(v),
        })?;
        let keys = DiskKeys::derive(key, &header.disk_id);
        if !keys.key_check_matches(&header.key_check) {
            return Err(EncryptedError::WrongKey);
        }
        if !keys.header_verifies(&sector[..HEADER_SIGNED], &sector[HEADER_SIGNED..HEADER_SIGNED + MAC]) {
            return Err(EncryptedError::HeaderTampered);
        }
        if header.sector_size != info.sector_size || header.logical_sectors != geometry.logical_sectors() {
            return Err(EncryptedError::GeometryChanged);
        }
        Ok(Encrypted::new(disk, keys, geometry))
    }

    fn new(disk: D, keys: DiskKeys, geometry: Geometry) -> Self {
        let ss = geometry.sector_size;
        Encrypted {
            disk,
            ciphers: Ciphers::new(keys),
            geometry,
            step: Step::Idle,
            meta: vec![0; 2 * ss],
            meta_group: None,
            meta_next_copy: 0,
            data_unflushed: false,
            metadata_fallbacks: 0,
            scratch: vec![0; ss * geometry.per_group as usize],
            probe: vec![0; ss],
        }
    }

    /// Where the logical sectors are on the device below.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// The physical sector (on the device below) that holds logical sector `lba`.
    pub fn physical_sector(&self, lba: u64) -> u64 {
        self.geometry.data_sector(lba)
    }

    /// How often a group's newest metadata copy failed its MAC and the other copy was
    /// used: what a torn metadata write looks like (or tampering with one copy).
    pub fn metadata_fallbacks(&self) -> u64 {
        self.metadata_fallbacks
    }

    /// The device below, e.g. to look at the ciphertext. Forgets the cached metadata, so
    /// what is changed through it is seen by the next request.
    pub fn inner_mut(&mut self) -> &mut D {
        self.meta_group = None;
        self.data_unflushed = true;
        &mut self.disk
    }

    /// Gives the device below back.
    pub fn into_inner(self) -> D {
        self.disk
    }
}

impl<D: BlockDevice> BlockDevice for Encrypted<D> {
    fn info(&self) -> BlockInfo {
        BlockInfo { sectors: self.geometry.logical_sectors(), ..self.disk.info() }
    }

    fn poll_read(&mut self, cx: &mut Context<'_>, lba: u64, buf: &mut [u8]) -> Poll<Result<(), BlockError>> {
        check_request(&self.info(), lba, buf.len())?;
        let result = core::task::ready!(self.drive_read(cx, lba, buf));
        if result.is_err() {
            buf.fill(0);
        }
        self.finish(result)
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, lba: u64, buf: &[u8]) -> Poll<Result<(), BlockError>> {
        let info = self.info();
        check_request(&info, lba, buf.len())?;
        if info.read_only {
            return Poll::Ready(Err(BlockError::ReadOnly));
        }
        let result = core::task::ready!(self.drive_write(cx, lba, buf));
        self.finish(result)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BlockError>> {
        core::task::ready!(self.disk.poll_flush(cx))?;
        self.data_unflushed = false;
        Poll::Ready(Ok(()))
    }

    fn cancel(&mut self) {
        // The metadata cached may hold slots of a chunk that never reached the disk (their
        // counters are skipped, never reused), and a write below may still land: read the
        // metadata again, and flush before the next metadata write.
        self.step = Step::Idle;
        self.meta_group = None;
        self.data_unflushed = true;
        self.disk.cancel();
    }
}
