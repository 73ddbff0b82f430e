//! Where the encrypted layer keeps things on the device below it, and the byte formats of
//! its header, its metadata sectors and its slots. Pure arithmetic; no I/O, no cipher.
//!
//! ```text
//! physical sector 0        header (magic, version, geometry, disk id, key check, MAC)
//! physical 1, 2            metadata of group 0, two copies (A, B)
//! physical 3 ..= K+2       data of group 0: logical sectors 0 ..= K-1
//! physical K+3, K+4        metadata of group 1, two copies
//! ...                      (K = (sector size - 40) / 65: 7 for 512-byte sectors, 62 for 4 KiB)
//! ```
//!
//! A metadata sector holds, for each of its K data sectors, two slots of 32 bytes
//! (`session (12) | counter (u32 BE) | tag (16)`), then one state byte per sector (bit 0:
//! the slot that matches the data; bit 1: the other slot may match it instead, a write
//! was in flight), then the copy's generation (u64 LE) and an HMAC-SHA256 over the group
//! number and everything before it.

use crate::block::BlockError;

/// Bytes of one slot: the session id, the counter and the tag of one sector's ciphertext.
pub const SLOT: usize = 32;
/// Bytes of a session id (random per write session; names the session's key).
pub const SESSION: usize = 12;
/// Bytes of an authentication tag (AES-GCM).
pub const TAG: usize = 16;
/// Bytes of an HMAC-SHA256.
pub const MAC: usize = 32;
/// Bytes of a metadata sector's trailer: generation and MAC.
const TRAILER: usize = 8 + MAC;
/// Bytes a metadata sector spends per data sector: two slots and a state byte.
const PER_SECTOR: usize = 2 * SLOT + 1;
/// The first bytes of the header sector.
pub const MAGIC: &[u8; 8] = b"SCENCBLK";
/// The only header version this code reads and writes (1 was the format before per-disk
/// keys; it is refused, not converted).
pub const VERSION: u32 = 2;
/// Bytes of the random disk id (the HKDF salt of every key of the disk).
pub const DISK_ID: usize = 32;
/// The smallest sector the layout supports.
pub const MIN_SECTOR: usize = 512;

/// How the layer maps logical sectors onto a device of `sector_size` × `physical` sectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Bytes per sector (the same above and below the layer).
    pub sector_size: usize,
    /// Data sectors per group (sectors one metadata sector describes).
    pub per_group: u64,
    /// Complete groups that fit after the header.
    pub groups: u64,
}

impl Geometry {
    /// The layout of a device, or `None` when its sectors are too small or too few for a
    /// header and one group.
    pub fn new(sector_size: usize, physical: u64) -> Option<Geometry> {
        if sector_size < MIN_SECTOR {
            return None;
        }
        let per_group = ((sector_size - TRAILER) / PER_SECTOR) as u64;
        let groups = physical.checked_sub(1)? / (per_group + 2);
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

    /// The physical sector of group `group`'s first metadata copy (the second follows it).
    pub fn meta_sector(&self, group: u64) -> u64 {
        1 + group * (self.per_group + 2)
    }

    /// The physical sector holding logical sector `lba`.
    pub fn data_sector(&self, lba: u64) -> u64 {
        let (group, index) = self.locate(lba);
        self.meta_sector(group) + 2 + index as u64
    }

    /// How many sectors from `lba` on (at most `want`) lie in `lba`'s group.
    pub fn chunk(&self, lba: u64, want: u64) -> u64 {
        let (_, index) = self.locate(lba);
        want.min(self.per_group - index as u64)
    }
}

/// Where one sector's ciphertext was sealed: the session (its key) and the counter (its
/// nonce under that key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SlotId {
    /// The write session's random id.
    pub session: [u8; SESSION],
    /// Sectors sealed before this one in the session.
    pub counter: u32,
}

/// One sector's entry in a metadata sector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectorState {
    /// The slot that matches the data on the disk.
    pub current: usize,
    /// Whether the other slot may match it instead (a write of the sector was in flight
    /// when this metadata was written).
    pub pending: bool,
}

/// Slot `slot` of sector `index` in a metadata sector: its id and tag.
pub fn slot(meta: &[u8], index: usize, slot: usize) -> (SlotId, &[u8]) {
    let s = &meta[(2 * index + slot) * SLOT..][..SLOT];
    let mut session = [0u8; SESSION];
    session.copy_from_slice(&s[..SESSION]);
    let counter = u32::from_be_bytes(s[SESSION..SESSION + 4].try_into().expect("4 bytes"));
    (SlotId { session, counter }, &s[SESSION + 4..])
}

/// Stores an id and tag as slot `slot` of sector `index`.
pub fn set_slot(meta: &mut [u8], index: usize, slot: usize, id: &SlotId, tag: &[u8]) {
    let s = &mut meta[(2 * index + slot) * SLOT..][..SLOT];
    s[..SESSION].copy_from_slice(&id.session);
    s[SESSION..SESSION + 4].copy_from_slice(&id.counter.to_be_bytes());
    s[SESSION + 4..].copy_from_slice(tag);
}

fn state_at(meta: &[u8], index: usize) -> usize {
    let per_group = (meta.len() - TRAILER) / PER_SECTOR;
    2 * SLOT * per_group + index
}

/// The state of sector `index`.
pub fn state(meta: &[u8], index: usize) -> SectorState {
    let byte = meta[state_at(meta, index)];
    SectorState { current: usize::from(byte & 1), pending: byte & 2 != 0 }
}

/// Sets the state of sector `index`.
pub fn set_state(meta: &mut [u8], index: usize, state: SectorState) {
    let at = state_at(meta, index);
    meta[at] = state.current as u8 | if state.pending { 2 } else { 0 };
}

/// The generation of a metadata copy (higher is newer).
pub fn generation(meta: &[u8]) -> u64 {
    let at = meta.len() - TRAILER;
    u64::from_le_bytes(meta[at..at + 8].try_into().expect("8 bytes"))
}

/// Sets a metadata copy's generation.
pub fn set_generation(meta: &mut [u8], generation: u64) {
    let at = meta.len() - TRAILER;
    meta[at..at + 8].copy_from_slice(&generation.to_le_bytes());
}

/// A metadata sector split into what its MAC covers and the MAC.
pub fn split_mac(meta: &mut [u8]) -> (&mut [u8], &mut [u8]) {
    let at = meta.len() - MAC;
    meta.split_at_mut(at)
}

/// The header sector's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Sector size the layer was formatted with.
    pub sector_size: u32,
    /// Logical sectors it was formatted with.
    pub logical_sectors: u64,
    /// Random at format time; the salt of every key of the disk.
    pub disk_id: [u8; DISK_ID],
    /// Derived from the key and the disk id: tells a right key from a wrong one, and
    /// differs between disks with the same key.
    pub key_check: [u8; MAC],
}

// Byte offsets in the header sector.
const AT_VERSION: usize = 8;
const AT_SECTOR_SIZE: usize = 12;
const AT_LOGICAL: usize = 16;
const AT_DISK_ID: usize = 24;
const AT_KEY_CHECK: usize = AT_DISK_ID + DISK_ID;
/// Bytes of the header the header MAC covers; the MAC follows them.
pub const HEADER_SIGNED: usize = AT_KEY_CHECK + MAC;

/// What an unreadable header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// No magic: the device was never formatted for this layer.
    NoMagic,
    /// A version this code does not know.
    Version(u32),
}

impl Header {
    /// Writes the header (without its MAC) into a whole (zeroed beyond it) sector buffer.
    pub fn write(&self, sector: &mut [u8]) {
        sector.fill(0);
        sector[..8].copy_from_slice(MAGIC);
        sector[AT_VERSION..AT_VERSION + 4].copy_from_slice(&VERSION.to_le_bytes());
        sector[AT_SECTOR_SIZE..AT_SECTOR_SIZE + 4].copy_from_slice(&self.sector_size.to_le_bytes());
        sector[AT_LOGICAL..AT_LOGICAL + 8].copy_from_slice(&self.logical_sectors.to_le_bytes());
        sector[AT_DISK_ID..AT_DISK_ID + DISK_ID].copy_from_slice(&self.disk_id);
        sector[AT_KEY_CHECK..AT_KEY_CHECK + MAC].copy_from_slice(&self.key_check);
    }

    /// Reads a header sector (its MAC is checked by the caller, who has the key).
    pub fn read(sector: &[u8]) -> Result<Header, HeaderError> {
        if &sector[..8] != MAGIC {
            return Err(HeaderError::NoMagic);
        }
        let u32_at = |at: usize| u32::from_le_bytes(sector[at..at + 4].try_into().expect("4 bytes"));
        let version = u32_at(AT_VERSION);
        if version != VERSION {
            return Err(HeaderError::Version(version));
        }
        let mut disk_id = [0u8; DISK_ID];
        disk_id.copy_from_slice(&sector[AT_DISK_ID..AT_DISK_ID + DISK_ID]);
        let mut key_check = [0u8; MAC];
        key_check.copy_from_slice(&sector[AT_KEY_CHECK..AT_KEY_CHECK + MAC]);
        Ok(Header {
            sector_size: u32_at(AT_SECTOR_SIZE),
            logical_sectors: u64::from_le_bytes(sector[AT_LOGICAL..AT_LOGICAL + 8].try_into().expect("8 bytes")),
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
        let g = Geometry::new(512, 1 + 9 * 3 + 5).unwrap();
        assert_eq!((g.per_group, g.groups, g.logical_sectors()), (7, 3, 21));
        assert_eq!((g.meta_sector(0), g.data_sector(0), g.data_sector(6)), (1, 3, 9));
        assert_eq!((g.meta_sector(1), g.data_sector(7)), (10, 12));
        assert_eq!(g.chunk(5, 10), 2);
        assert_eq!(g.chunk(7, 3), 3);
        let g = Geometry::new(4096, 1000).unwrap();
        assert_eq!((g.per_group, g.groups), (62, 15));
        assert_eq!(Geometry::new(512, 9), None, "a header and one group need 10 sectors");
        assert!(Geometry::new(512, 10).is_some());
        assert_eq!(Geometry::new(256, 1000), None);
    }

    #[test]
    fn header_slots_and_states_round_trip() {
        let h = Header { sector_size: 512, logical_sectors: 48, disk_id: [3; DISK_ID], key_check: [9; MAC] };
        let mut sector = [0xff; 512];
        h.write(&mut sector);
        assert_eq!(Header::read(&sector), Ok(h));
        assert_eq!(Header::read(&[0; 512]), Err(HeaderError::NoMagic));
        sector[AT_VERSION] = 1;
        assert_eq!(Header::read(&sector), Err(HeaderError::Version(1)));

        let mut meta = [0u8; 512];
        let id = SlotId { session: [5; SESSION], counter: 0x0102_0304 };
        set_slot(&mut meta, 6, 1, &id, &[7; TAG]);
        assert_eq!(slot(&meta, 6, 1), (id, &[7u8; TAG][..]));
        assert_eq!(slot(&meta, 6, 0).0.counter, 0);
        let s = SectorState { current: 1, pending: true };
        set_state(&mut meta, 6, s);
        assert_eq!(state(&meta, 6), s);
        assert_eq!(state(&meta, 5), SectorState { current: 0, pending: false });
        set_generation(&mut meta, 77);
        assert_eq!(generation(&meta), 77);
        assert!(state_at(&meta, 6) < 512 - TRAILER);
    }
}
