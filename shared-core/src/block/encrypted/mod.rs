//! An authenticated encryption layer over any block device: AES-256-GCM per sector.
//!
//! [`Encrypted<D>`] is a [`BlockDevice`] over a `D: BlockDevice`, so it stacks with the
//! other layers in both orders (an encrypted [`Partition`](super::mbr::Partition), or a
//! partition table inside an encrypted disk). Sectors keep their size (512 bytes stay 512
//! bytes, so an MBR or a file system fits above); the nonces and tags live in metadata
//! sectors next to the data ([`layout`] has the picture):
//!
//! * one header sector, then groups of one metadata sector + K data sectors, K = sector
//!   size / 32 (16 for 512-byte sectors: the layer offers 16/17 of the device, 94 %; 128
//!   for 4 KiB sectors: 99.2 %);
//! * a write of n sectors inside one group costs n data writes plus one metadata write
//!   (and one metadata read when that metadata sector is not the one cached);
//! * a read costs the data read (plus the metadata read when not cached);
//! * memory: one metadata sector and one group of ciphertext, allocated at open (8.5 KiB
//!   at 512-byte sectors, 516 KiB at 4 KiB), plus the AES key schedule.
//!
//! **Nonces never repeat under one key.** A nonce is `epoch | salt | counter`. The epoch
//! counts write sessions and is stored in the header: before the first write after
//! [`open`](Encrypted::open), the layer writes the header with epoch + 1 and flushes it,
//! so an epoch is durable before any nonce with it reaches the disk, and a reboot (or a
//! crash at any point) starts above every epoch ever used. Within an epoch the counter
//! is in memory and only goes up, one per sector written; it is never read back from the
//! disk, so a torn write (data without its metadata, or the reverse) cannot make it
//! repeat. After 2³² writes in one epoch the next write starts a new epoch. The salt
//! (4 random bytes drawn at each epoch) only matters if the disk is rolled back to an
//! older image, which would let an epoch be used twice: two uses then also need the same
//! salt (probability 2⁻³²). Epoch 0 is never used for data: its nonce 0 is the key check.
//! One writer at a time: two layers open on the same device at once would start from the
//! same header epoch, and only their salts would keep their nonces apart.
//!
//! **Integrity.** Each sector's tag covers its ciphertext, the disk id (random at
//! format) and its logical sector number, so a flipped bit, a sector moved to another
//! place or copied from another disk fails authentication, and the read returns
//! [`BlockError::Integrity`] with its buffer zeroed, never the bytes. A sector torn by a
//! crash fails the same way. Not covered: replaying an older version of the same sector
//! together with its metadata entry (freshness would need a hash tree over the disk).
//!
//! **Format and open.** [`format`](Encrypted::format) writes a header and encrypted zeros
//! over the whole device, so every sector always holds an authenticated ciphertext and a
//! fresh device reads as zeros; an all-zero metadata entry is tampering, not "unwritten".
//! [`open`](Encrypted::open) checks the header and the key (a wrong key is
//! [`EncryptedError::WrongKey`], not a stream of integrity errors).
//!
//! **The key** is 32 bytes ([`Key`]): from a boot argument (`Key` is a
//! [`FromArg`](crate::bootargs::FromArg), 64 hex digits: `--block-key=00ff...`) or, for a
//! build-time secret, `Key::from_hex(env!("APP_BLOCK_KEY"))` in the app. A boot argument
//! is visible to whoever starts the VM; a build-time key to whoever has the image.

mod layout;
mod request;
#[cfg(test)]
mod tests;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::task::{Context, Poll};

use super::{check_request, BlockDevice, BlockError, BlockExt, BlockInfo};
pub use layout::Geometry;
use layout::{Header, HeaderError, NonceParts, DISK_ID, TAG};
use request::Step;

/// A 256-bit AES key. `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; 32]);

impl Key {
    /// The key of these bytes.
    pub const fn new(bytes: [u8; 32]) -> Key {
        Key(bytes)
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(hex: &str) -> Option<Key> {
        let hex = hex.as_bytes();
        if hex.len() != 64 {
            return None;
        }
        let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = digit(hex[2 * i])? << 4 | digit(hex[2 * i + 1])?;
        }
        Some(Key(key))
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

impl crate::bootargs::FromArg for Key {
    fn expected() -> alloc::string::String {
        "64 hex digits (a 256-bit AES key)".into()
    }
    fn from_arg(value: &str) -> Option<Self> {
        Key::from_hex(value)
    }
}

/// Why an encrypted device could not be formatted or opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncryptedError {
    /// The device below failed.
    Block(BlockError),
    /// Its sectors are too small (under 512 bytes or not a multiple of 32) or too few (a
    /// header and one group: 18 sectors of 512 bytes).
    TooSmall(BlockInfo),
    /// No header: the device was never formatted (see [`Encrypted::format`]).
    NotFormatted,
    /// A header version this code does not read.
    Version(u32),
    /// The header was written for a device of another size.
    GeometryChanged,
    /// The key is not the one the device was formatted with.
    WrongKey,
}

impl fmt::Display for EncryptedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncryptedError::Block(e) => write!(f, "{e}"),
            EncryptedError::TooSmall(i) => write!(
                f,
                "{} sectors of {} B cannot hold an encrypted device (at least 18 sectors of 512 B or more, a multiple of 32 B)",
                i.sectors, i.sector_size
            ),
            EncryptedError::NotFormatted => f.write_str("no encrypted-device header: format the device first"),
            EncryptedError::Version(v) => write!(f, "encrypted-device header version {v} is not supported"),
            EncryptedError::GeometryChanged => f.write_str("the device's size differs from the one it was formatted with"),
            EncryptedError::WrongKey => f.write_str("wrong key for this encrypted device"),
        }
    }
}

impl core::error::Error for EncryptedError {}

impl From<BlockError> for EncryptedError {
    fn from(e: BlockError) -> Self {
        EncryptedError::Block(e)
    }
}

/// The authenticated data of the key check (with the all-zero nonce, never used for data).
const KEY_CHECK_AAD: &[u8] = b"shared-core encrypted block device: key check";

fn key_check(cipher: &Aes256Gcm) -> [u8; TAG] {
    let nonce = aes_gcm::Nonce::default();
    let tag =
        cipher.encrypt_in_place_detached(&nonce, KEY_CHECK_AAD, &mut []).expect("an empty message always encrypts");
    tag.into()
}

/// An encrypted view of `D` (see the module docs for the layout and the nonce scheme).
pub struct Encrypted<D> {
    disk: D,
    cipher: Aes256Gcm,
    geometry: Geometry,
    header: Header,
    /// Nonce parts of the next sector write (valid once `epoch_durable`).
    next: NonceParts,
    /// Whether `next.epoch` is in the header on the disk.
    epoch_durable: bool,
    /// The request in progress, if a poll returned `Pending` (see `request.rs`).
    step: Step,
    /// One metadata sector and which group it is, when it matches the disk.
    meta: Vec<u8>,
    meta_group: Option<u64>,
    /// Ciphertext of a chunk being written; header bytes while an epoch is written.
    scratch: Vec<u8>,
}

impl<D: BlockDevice> Encrypted<D> {
    /// Formats `disk` with `key`: a new header, a new disk id, and every sector written
    /// with encrypted zeros (so this writes the whole device once).
    pub async fn format(mut disk: D, key: &Key) -> Result<Self, EncryptedError> {
        let info = disk.info();
        let geometry = Geometry::new(info.sector_size as usize, info.sectors).ok_or(EncryptedError::TooSmall(info))?;
        let cipher = Aes256Gcm::new(&key.0.into());
        let mut disk_id = [0u8; DISK_ID];
        crate::services::fill_random(&mut disk_id);
        let header = Header {
            sector_size: info.sector_size,
            logical_sectors: geometry.logical_sectors(),
            epoch: 0,
            disk_id,
            key_check: key_check(&cipher),
        };
        let mut sector = vec![0u8; geometry.sector_size];
        header.write(&mut sector);
        disk.write(0, &sector).await?;
        let mut device = Encrypted::new(disk, cipher, geometry, header);
        let zeros = vec![0u8; geometry.sector_size * geometry.per_group as usize];
        for group in 0..geometry.groups {
            device.write(group * geometry.per_group, &zeros).await?;
        }
        device.flush().await?;
        Ok(device)
    }

    /// Opens a device formatted with [`format`](Self::format), checking the header and
    /// the key. Nothing is written until the first write.
    pub async fn open(mut disk: D, key: &Key) -> Result<Self, EncryptedError> {
        let info = disk.info();
        let geometry = Geometry::new(info.sector_size as usize, info.sectors).ok_or(EncryptedError::TooSmall(info))?;
        let mut sector = vec![0u8; geometry.sector_size];
        disk.read(0, &mut sector).await?;
        let header = Header::read(&sector).map_err(|e| match e {
            HeaderError::NoMagic => EncryptedError::NotFormatted,
            HeaderError::Version(v) => EncryptedError::Version(v),
        })?;
        if header.sector_size != info.sector_size || header.logical_sectors != geometry.logical_sectors() {
            return Err(EncryptedError::GeometryChanged);
        }
        let cipher = Aes256Gcm::new(&key.0.into());
        if key_check(&cipher) != header.key_check {
            return Err(EncryptedError::WrongKey);
        }
        Ok(Encrypted::new(disk, cipher, geometry, header))
    }

    fn new(disk: D, cipher: Aes256Gcm, geometry: Geometry, header: Header) -> Self {
        let ss = geometry.sector_size;
        Encrypted {
            disk,
            cipher,
            geometry,
            next: NonceParts { epoch: header.epoch, salt: [0; 4], counter: 0 },
            header,
            epoch_durable: false,
            step: Step::Idle,
            meta: vec![0; ss],
            meta_group: None,
            scratch: vec![0; ss * geometry.per_group as usize],
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

    /// The device below, e.g. to look at the ciphertext. Forgets the cached metadata, so
    /// what is changed through it is seen by the next request.
    pub fn inner_mut(&mut self) -> &mut D {
        self.meta_group = None;
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
        self.disk.poll_flush(cx)
    }

    fn cancel(&mut self) {
        // The metadata cached may hold entries of a chunk that never reached the disk;
        // the counters they used are skipped, never reused.
        self.step = Step::Idle;
        self.meta_group = None;
        self.disk.cancel();
    }
}
