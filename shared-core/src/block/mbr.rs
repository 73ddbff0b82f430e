//! An MBR partition table reader and a partition view that stacks on any block device.
//!
//! The MBR is the first 512 bytes of a disk: four 16-byte partition entries at offset 446
//! and the signature `55 AA` at 510. Each entry's type byte (offset 4), first LBA
//! (offset 8, little-endian u32) and sector count (offset 12) are all this layer needs.

use super::{check_request, BlockDevice, BlockError, BlockExt, BlockInfo};
use core::task::{Context, Poll};

/// One primary partition entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MbrEntry {
    /// Index 0..=3 in the table.
    pub index: usize,
    /// Partition type byte (0x83 Linux, 0x0c FAT32, ...).
    pub kind: u8,
    /// First sector.
    pub first_lba: u64,
    /// Length in sectors.
    pub sectors: u64,
}

/// Why a partition could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MbrError {
    /// Reading sector 0 failed.
    Block(BlockError),
    /// Sector 0 does not end in `55 AA`.
    NoSignature,
    /// The entry is empty (type 0).
    EmptyEntry(usize),
    /// The entry points past the end of the disk.
    EntryOutOfRange(MbrEntry),
}

impl core::fmt::Display for MbrError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MbrError::Block(e) => write!(f, "reading the partition table failed: {e}"),
            MbrError::NoSignature => f.write_str("sector 0 holds no partition table (no 55 AA signature)"),
            MbrError::EmptyEntry(index) => write!(f, "partition {index} is empty"),
            MbrError::EntryOutOfRange(entry) => write!(
                f,
                "partition {} (sectors {}..+{}) reaches past the end of the disk",
                entry.index, entry.first_lba, entry.sectors
            ),
        }
    }
}

impl core::error::Error for MbrError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            MbrError::Block(e) => Some(e),
            _ => None,
        }
    }
}

impl From<BlockError> for MbrError {
    fn from(e: BlockError) -> Self {
        MbrError::Block(e)
    }
}

/// Parses the four primary entries from a 512-byte sector 0.
pub fn parse_table(sector0: &[u8]) -> Result<[Option<MbrEntry>; 4], MbrError> {
    if sector0.len() < 512 || sector0[510] != 0x55 || sector0[511] != 0xAA {
        return Err(MbrError::NoSignature);
    }
    let mut entries = [None; 4];
    for (index, slot) in entries.iter_mut().enumerate() {
        let e = &sector0[446 + 16 * index..446 + 16 * (index + 1)];
        let kind = e[4];
        let first_lba = u32::from_le_bytes([e[8], e[9], e[10], e[11]]) as u64;
        let sectors = u32::from_le_bytes([e[12], e[13], e[14], e[15]]) as u64;
        if kind != 0 && sectors != 0 {
            *slot = Some(MbrEntry { index, kind, first_lba, sectors });
        }
    }
    Ok(entries)
}

/// Writes an MBR with the given `(type, first_lba, sectors)` entries into `sector0`.
pub fn write_table(sector0: &mut [u8], entries: &[(u8, u32, u32)]) {
    assert!(entries.len() <= 4 && sector0.len() >= 512);
    sector0[446..512].fill(0);
    for (i, &(kind, first, count)) in entries.iter().enumerate() {
        let e = &mut sector0[446 + 16 * i..446 + 16 * (i + 1)];
        e[4] = kind;
        e[8..12].copy_from_slice(&first.to_le_bytes());
        e[12..16].copy_from_slice(&count.to_le_bytes());
    }
    sector0[510] = 0x55;
    sector0[511] = 0xAA;
}

/// A window onto one partition of `D`: sector 0 of the view is the partition's first
/// sector, and requests past its end are [`BlockError::OutOfRange`].
pub struct Partition<D> {
    disk: D,
    entry: MbrEntry,
}

impl<D: BlockDevice> Partition<D> {
    /// Reads the MBR of `disk` and opens partition `index` (0..=3).
    pub async fn open(mut disk: D, index: usize) -> Result<Self, MbrError> {
        let info = disk.info();
        let mut sector0 = alloc::vec![0u8; info.sector_size as usize];
        disk.read(0, &mut sector0).await?;
        let entry = parse_table(&sector0)?.get(index).copied().flatten().ok_or(MbrError::EmptyEntry(index))?;
        if entry.first_lba.checked_add(entry.sectors).is_none_or(|end| end > info.sectors) {
            return Err(MbrError::EntryOutOfRange(entry));
        }
        Ok(Partition { disk, entry })
    }

    /// The table entry this view covers.
    pub fn entry(&self) -> MbrEntry {
        self.entry
    }

    /// Gives the underlying device back.
    pub fn into_inner(self) -> D {
        self.disk
    }
}

impl<D: BlockDevice> BlockDevice for Partition<D> {
    fn info(&self) -> BlockInfo {
        BlockInfo { sectors: self.entry.sectors, ..self.disk.info() }
    }
    fn poll_read(&mut self, cx: &mut Context<'_>, lba: u64, buf: &mut [u8]) -> Poll<Result<(), BlockError>> {
        check_request(&self.info(), lba, buf.len())?;
        self.disk.poll_read(cx, self.entry.first_lba + lba, buf)
    }
    fn poll_write(&mut self, cx: &mut Context<'_>, lba: u64, buf: &[u8]) -> Poll<Result<(), BlockError>> {
        check_request(&self.info(), lba, buf.len())?;
        self.disk.poll_write(cx, self.entry.first_lba + lba, buf)
    }
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BlockError>> {
        self.disk.poll_flush(cx)
    }
    fn cancel(&mut self) {
        self.disk.cancel()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::MemDisk;
    use crate::executor::block_on;

    fn disk_with_two_partitions() -> MemDisk {
        let mut disk = MemDisk::new(512, 100);
        write_table(&mut disk.bytes_mut()[..512], &[(0x83, 10, 20), (0x0c, 40, 60)]);
        disk
    }

    #[test]
    fn partition_maps_sectors_and_bounds_requests() {
        let _guard = crate::test_platform::lock();
        block_on(async {
            let mut part = Partition::open(disk_with_two_partitions(), 1).await.unwrap();
            assert_eq!(part.info().sectors, 60);
            part.write(0, &[0xAB; 512]).await.unwrap();
            part.write(59, &[0xCD; 512]).await.unwrap();
            let err = part.write(60, &[0; 512]).await.unwrap_err();
            assert_eq!(err, BlockError::OutOfRange { lba: 60, sectors: 1, capacity: 60 });
            assert!(matches!(part.read(0, &mut [0; 100]).await, Err(BlockError::Misaligned { .. })));
            let disk = part.into_inner();
            assert_eq!(disk.bytes()[40 * 512], 0xAB);
            assert_eq!(disk.bytes()[99 * 512], 0xCD);
            assert_eq!(disk.bytes()[39 * 512], 0);
        });
    }

    #[test]
    fn layers_stack() {
        let _guard = crate::test_platform::lock();
        block_on(async {
            // A partition table inside partition 1: a view of a view.
            let mut outer = Partition::open(disk_with_two_partitions(), 1).await.unwrap();
            let mut inner_table = [0u8; 512];
            write_table(&mut inner_table, &[(0x83, 5, 10)]);
            outer.write(0, &inner_table).await.unwrap();
            let mut inner = Partition::open(outer, 0).await.unwrap();
            inner.write(9, &[7; 512]).await.unwrap();
            assert!(inner.write(10, &[7; 512]).await.is_err());
            let disk = inner.into_inner().into_inner();
            assert_eq!(disk.bytes()[(40 + 5 + 9) * 512], 7);
        });
    }

    #[test]
    fn bad_tables_are_errors() {
        let _guard = crate::test_platform::lock();
        block_on(async {
            assert_eq!(Partition::open(MemDisk::new(512, 10), 0).await.err(), Some(MbrError::NoSignature));
            assert_eq!(Partition::open(disk_with_two_partitions(), 2).await.err(), Some(MbrError::EmptyEntry(2)));
            let mut disk = MemDisk::new(512, 10);
            write_table(&mut disk.bytes_mut()[..512], &[(0x83, 5, 10)]);
            assert!(matches!(Partition::open(disk, 0).await, Err(MbrError::EntryOutOfRange(_))));
        });
    }
}
