//! Where the encrypted layer keeps things on the device below it, and the byte formats of
//! its header, its metadata entries and its nonces. Pure arithmetic; no I/O, no cipher.
//!
//! ```text
//! physical sector 0        header (magic, version, geometry, epoch, disk id, key check)
//! physical 1               metadata of group 0: K entries of 32 bytes
//! physical 2 ..= K+1       data of group 0: logical sectors 0 ..= K-1
//! physical K+2             metadata of group 1
//! ...                      (K = sector size / 32: 16 for 512-byte sectors, 128 for 4 KiB)
//! ```
//!
//! A metadata entry is `nonce (12) | tag (16) | 4 zero bytes`. A nonce is
//! `epoch (u32 BE) | salt (4 bytes) | counter (u32 BE)`; epoch 0 is never used for data.

use crate::block::BlockError;

/// Bytes of one metadata entry.
pub const ENTRY: usize = 32;
/// Bytes of a nonce (AES-GCM's 96 bits).
pub const NONCE: usize = 12;
/// Bytes of an authentication tag.
pub const TAG: usize = 16;
/// The first bytes of the header sector.
pub const MAGIC: &[u8; 8] = b"SCENCBLK";
/// The only header version this code reads and writes.
pub const VERSION: u32 = 1;
/// Bytes of the random disk id, authenticated with every sector.
pub const DISK_ID: usize = 16;
/// The smallest sector the layout supports (one header needs 64 bytes; a group needs at
/// least one entry per sector, so the sector size must be a multiple of [`ENTRY`]).
pub const MIN_SECTOR: usize = 512;

/// How the layer maps logical sectors onto a device of `sector_size` × `physical` sectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Bytes per sector (the same above and below the layer).
    pub sector_size: usize,
    /// Data sectors per group (entries per metadata sector).
    pub per_group: u64,
    /// Complete groups that fit after the header.
    pub groups: u64,
}

impl Geometry {
    /// The layout of a device, or `None` when its sectors are too small or too few for a
    /// header and one group.
    pub fn new(sector_size: usize, physical: u64) -> Option<Geometry> {
        if sector_size < MIN_SECTOR || !sector_size.is_multiple_of(ENTRY) {
            return None;
        }
        let per_group = (sector_size / ENTRY) as u64;
        let groups = physical.checked_sub(1)? / (per_group + 1);
        (groups > 0).then_some(Geometry { sector_size, per_group, groups })
    }

    /// Logical sectors the layer offers.
    pub fn logical_sectors(&self) -> u64 {
        self.groups * self.per_group
    }

    /// The group of logical sector `lba`, and its index in the group.
    pub fn locate(&self, lba: u64) -> (u64, usize) {
        (lba / self.per_group, (lba % self.per_group) as usize)
    }

    /// The physical sector of group `group`'s metadata.
    pub fn meta_sector(&self, group: u64) -> u64 {
        1 + group * (self.per_group + 1)
    }

    /// The physical sector holding logical sector `lba`.
    pub fn data_sector(&self, lba: u64) -> u64 {
        let (group, index) = self.locate(lba);
        self.meta_sector(group) + 1 + index as u64
    }

    /// How many sectors from `lba` on (at most `want`) lie in `lba`'s group.
    pub fn chunk(&self, lba: u64, want: u64) -> u64 {
        let (_, index) = self.locate(lba);
        want.min(self.per_group - index as u64)
    }
}

/// A nonce's parts: unique per key as long as `(epoch, counter)` is (see the module docs
/// of `encrypted` for why it is); the salt is a second line of defence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NonceParts {
    /// The session number, persisted in the header before its first use; never 0.
    pub epoch: u32,
    /// Random bytes drawn when the epoch started.
    pub salt: [u8; 4],
    /// Sector writes so far in this epoch.
    pub counter: u32,
}

impl NonceParts {
    /// The 12 bytes fed to AES-GCM.
    pub fn bytes(&self) -> [u8; NONCE] {
        let mut n = [0u8; NONCE];
        n[..4].copy_from_slice(&self.epoch.to_be_bytes());
        n[4..8].copy_from_slice(&self.salt);
        n[8..].copy_from_slice(&self.counter.to_be_bytes());
        n
    }

    /// The parts of a stored nonce.
    pub fn from_bytes(n: &[u8]) -> NonceParts {
        NonceParts {
            epoch: u32::from_be_bytes([n[0], n[1], n[2], n[3]]),
            salt: [n[4], n[5], n[6], n[7]],
            counter: u32::from_be_bytes([n[8], n[9], n[10], n[11]]),
        }
    }
}

/// Entry `index` of a metadata sector: `(nonce, tag)`.
pub fn entry(meta: &[u8], index: usize) -> (&[u8], &[u8]) {
    let e = &meta[index * ENTRY..(index + 1) * ENTRY];
    (&e[..NONCE], &e[NONCE..NONCE + TAG])
}

/// Stores `(nonce, tag)` as entry `index` of a metadata sector.
pub fn set_entry(meta: &mut [u8], index: usize, nonce: &[u8; NONCE], tag: &[u8]) {
    let e = &mut meta[index * ENTRY..(index + 1) * ENTRY];
    e[..NONCE].copy_from_slice(nonce);
    e[NONCE..NONCE + TAG].copy_from_slice(tag);
    e[NONCE + TAG..].fill(0);
}

/// The additional authenticated data of logical sector `lba`: the disk id and the sector
/// number, so a sector copied to another place or another disk fails authentication.
pub fn aad(disk_id: &[u8; DISK_ID], lba: u64) -> [u8; DISK_ID + 8] {
    let mut a = [0u8; DISK_ID + 8];
    a[..DISK_ID].copy_from_slice(disk_id);
    a[DISK_ID..].copy_from_slice(&lba.to_le_bytes());
    a
}

/// The header sector's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Sector size the layer was formatted with.
    pub sector_size: u32,
    /// Logical sectors it was formatted with.
    pub logical_sectors: u64,
    /// The last epoch made durable (0: none yet).
    pub epoch: u32,
    /// Random at format time; part of every sector's authenticated data.
    pub disk_id: [u8; DISK_ID],
    /// The tag that tells a right key from a wrong one (`encrypted::key_check`).
    pub key_check: [u8; TAG],
}

// Byte offsets in the header sector.
const AT_VERSION: usize = 8;
const AT_SECTOR_SIZE: usize = 12;
const AT_LOGICAL: usize = 16;
const AT_EPOCH: usize = 24;
const AT_DISK_ID: usize = 28;
const AT_KEY_CHECK: usize = AT_DISK_ID + DISK_ID;

/// What an unreadable header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// No magic: the device was never formatted for this layer.
    NoMagic,
    /// A version this code does not know.
    Version(u32),
}

impl Header {
    /// Writes the header into a whole (zeroed beyond it) sector buffer.
    pub fn write(&self, sector: &mut [u8]) {
        sector.fill(0);
        sector[..8].copy_from_slice(MAGIC);
        sector[AT_VERSION..AT_VERSION + 4].copy_from_slice(&VERSION.to_le_bytes());
        sector[AT_SECTOR_SIZE..AT_SECTOR_SIZE + 4].copy_from_slice(&self.sector_size.to_le_bytes());
        sector[AT_LOGICAL..AT_LOGICAL + 8].copy_from_slice(&self.logical_sectors.to_le_bytes());
        sector[AT_EPOCH..AT_EPOCH + 4].copy_from_slice(&self.epoch.to_le_bytes());
        sector[AT_DISK_ID..AT_DISK_ID + DISK_ID].copy_from_slice(&self.disk_id);
        sector[AT_KEY_CHECK..AT_KEY_CHECK + TAG].copy_from_slice(&self.key_check);
    }

    /// Reads a header sector.
    pub fn read(sector: &[u8]) -> Result<Header, HeaderError> {
        if &sector[..8] != MAGIC {
            return Err(HeaderError::NoMagic);
        }
        let u32_at = |at: usize| u32::from_le_bytes([sector[at], sector[at + 1], sector[at + 2], sector[at + 3]]);
        let version = u32_at(AT_VERSION);
        if version != VERSION {
            return Err(HeaderError::Version(version));
        }
        let mut logical = [0u8; 8];
        logical.copy_from_slice(&sector[AT_LOGICAL..AT_LOGICAL + 8]);
        let mut disk_id = [0u8; DISK_ID];
        disk_id.copy_from_slice(&sector[AT_DISK_ID..AT_DISK_ID + DISK_ID]);
        let mut key_check = [0u8; TAG];
        key_check.copy_from_slice(&sector[AT_KEY_CHECK..AT_KEY_CHECK + TAG]);
        Ok(Header {
            sector_size: u32_at(AT_SECTOR_SIZE),
            logical_sectors: u64::from_le_bytes(logical),
            epoch: u32_at(AT_EPOCH),
            disk_id,
            key_check,
        })
    }
}

/// The error of a sector that fails authentication.
pub fn integrity(lba: u64) -> BlockError {
    BlockError::Integrity { lba }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_of_512_and_4096_byte_sectors() {
        let g = Geometry::new(512, 1 + 17 * 3 + 5).unwrap();
        assert_eq!((g.per_group, g.groups, g.logical_sectors()), (16, 3, 48));
        assert_eq!((g.meta_sector(0), g.data_sector(0), g.data_sector(15)), (1, 2, 17));
        assert_eq!((g.meta_sector(1), g.data_sector(16)), (18, 19));
        assert_eq!(g.chunk(14, 10), 2);
        assert_eq!(g.chunk(16, 10), 10);
        let g = Geometry::new(4096, 1000).unwrap();
        assert_eq!((g.per_group, g.groups), (128, 7));
        assert_eq!(Geometry::new(512, 17), None, "a header and one group need 18 sectors");
        assert!(Geometry::new(512, 18).is_some());
        assert_eq!(Geometry::new(256, 1000), None);
        assert_eq!(Geometry::new(520, 1000), None);
    }

    #[test]
    fn header_and_nonce_round_trip() {
        let h = Header { sector_size: 512, logical_sectors: 48, epoch: 7, disk_id: [3; DISK_ID], key_check: [9; TAG] };
        let mut sector = [0xff; 512];
        h.write(&mut sector);
        assert_eq!(Header::read(&sector), Ok(h));
        assert_eq!(Header::read(&[0; 512]), Err(HeaderError::NoMagic));
        sector[AT_VERSION] = 2;
        assert_eq!(Header::read(&sector), Err(HeaderError::Version(2)));
        let n = NonceParts { epoch: 1, salt: [1, 2, 3, 4], counter: 0x0102_0304 };
        assert_eq!(NonceParts::from_bytes(&n.bytes()), n);
    }
}
