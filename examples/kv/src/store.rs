//! The key-value map, persisted on a block device (kv puts it on an encrypted partition).
//!
//! Layout in the device's sectors:
//!
//! ```text
//! 0, 1            headers: "KVSTORE1", generation (u64 LE), length (u32 LE)
//! 2 .. 2+half     area 0
//! 2+half .. end   area 1           (half = (sectors - 2) / 2)
//! ```
//!
//! Generation g lives in header g % 2 and area g % 2. A save writes the next generation's
//! area, flushes, then its header, and flushes again, so a crash at any point leaves the
//! previous generation whole: loading takes the header with the highest generation. The
//! encrypted layer below leaves a sector whose write a crash cut old or new, never
//! unreadable, so a header that does not read, or reads as something other than a header
//! or a never-written (all-zero) sector, was changed behind kv's back: loading fails with
//! that error rather than fall back to an older generation. An area holds `count (u32)`
//! then, per entry, `key length (u16), key, value length (u16), value`.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use unikernel::block::{BlockDevice, BlockError, BlockExt};

const MAGIC: &[u8; 8] = b"KVSTORE1";

/// Why the store failed.
#[derive(Debug)]
pub enum StoreError {
    /// The device failed (an integrity error means the data was tampered with).
    Block(BlockError),
    /// The device is smaller than two headers and two one-sector areas.
    TooSmall(u64),
    /// A saved area does not decode.
    Corrupt(&'static str),
    /// The map no longer fits one area.
    Full { need: usize, room: usize },
    /// The newest saved generation is older than the one the operator says was reached:
    /// the device was put back to an older copy (or is another store).
    RolledBack { generation: u64, min: u64 },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Block(e) => write!(f, "{e}"),
            StoreError::TooSmall(sectors) => write!(f, "{sectors} sectors are too few for the store"),
            StoreError::Corrupt(why) => write!(f, "the saved map is corrupt: {why}"),
            StoreError::Full { need, room } => write!(f, "store full: the map needs {need} B, an area holds {room} B"),
            StoreError::RolledBack { generation, min } => write!(
                f,
                "the store is at generation {generation}, older than --min-generation={min}: the disk was rolled back to an older copy (or is another store)"
            ),
        }
    }
}

impl From<BlockError> for StoreError {
    fn from(e: BlockError) -> Self {
        StoreError::Block(e)
    }
}

/// The map and the device it is saved on.
pub struct Store<D> {
    device: D,
    map: BTreeMap<String, String>,
    generation: u64,
    half: u64,
    sector_size: usize,
}

impl<D: BlockDevice> Store<D> {
    /// Loads the newest saved map (an empty one on a fresh device).
    pub async fn load(mut device: D) -> Result<Self, StoreError> {
        let info = device.info();
        let half = info.sectors.saturating_sub(2) / 2;
        if half == 0 {
            return Err(StoreError::TooSmall(info.sectors));
        }
        let ss = info.sector_size as usize;
        let mut newest: Option<(u64, usize)> = None;
        let mut sector = vec![0u8; ss];
        for header in 0..2 {
            // A read error (an integrity error: tampering) ends the load: passing over the
            // header would serve an older generation as if it were the newest.
            device.read(header, &mut sector).await?;
            if sector.iter().all(|&b| b == 0) {
                continue; // never written
            }
            if &sector[..8] != MAGIC {
                return Err(StoreError::Corrupt("a header sector holds something else"));
            }
            let generation = u64::from_le_bytes(sector[8..16].try_into().expect("8 bytes"));
            let len = u32::from_le_bytes(sector[16..20].try_into().expect("4 bytes")) as usize;
            if generation % 2 != header {
                return Err(StoreError::Corrupt("a header's generation is in the other header's place"));
            }
            if newest.is_none_or(|(g, _)| generation > g) {
                newest = Some((generation, len));
            }
        }
        let mut store = Store { device, map: BTreeMap::new(), generation: 0, half, sector_size: ss };
        if let Some((generation, len)) = newest {
            if len > (half as usize) * ss {
                return Err(StoreError::Corrupt("the header's length exceeds an area"));
            }
            let mut area = vec![0u8; len.div_ceil(ss).max(1) * ss];
            store.device.read(store.area_start(generation), &mut area).await?;
            store.map = decode(&area[..len])?;
            store.generation = generation;
        }
        Ok(store)
    }

    /// The generation of the last save (0: never saved). Each save adds one.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn area_start(&self, generation: u64) -> u64 {
        2 + (generation % 2) * self.half
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    /// How many keys are stored.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    /// Stores `value` under `key` and saves; on failure the map is as before.
    pub async fn put(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        let old = self.map.insert(key.into(), value.into());
        let saved = self.save().await;
        if saved.is_err() {
            match old {
                Some(old) => self.map.insert(key.into(), old),
                None => self.map.remove(key),
            };
        }
        saved
    }

    /// Removes `key` and saves; whether it was there. On failure the map is as before.
    pub async fn delete(&mut self, key: &str) -> Result<bool, StoreError> {
        let Some(old) = self.map.remove(key) else { return Ok(false) };
        if let Err(e) = self.save().await {
            self.map.insert(key.into(), old);
            return Err(e);
        }
        Ok(true)
    }

    async fn save(&mut self) -> Result<(), StoreError> {
        let ss = self.sector_size;
        let bytes = encode(&self.map);
        let room = self.half as usize * ss;
        if bytes.len() > room {
            return Err(StoreError::Full { need: bytes.len(), room });
        }
        let next = self.generation + 1;
        let mut area = vec![0u8; bytes.len().div_ceil(ss).max(1) * ss];
        area[..bytes.len()].copy_from_slice(&bytes);
        self.device.write(self.area_start(next), &area).await?;
        self.device.flush().await?;
        let mut header = vec![0u8; ss];
        header[..8].copy_from_slice(MAGIC);
        header[8..16].copy_from_slice(&next.to_le_bytes());
        header[16..20].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
        self.device.write(next % 2, &header).await?;
        self.device.flush().await?;
        self.generation = next;
        Ok(())
    }
}

fn encode(map: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(map.len() as u32).to_le_bytes());
    for (key, value) in map {
        for field in [key.as_bytes(), value.as_bytes()] {
            out.extend_from_slice(&(field.len() as u16).to_le_bytes());
            out.extend_from_slice(field);
        }
    }
    out
}

fn decode(mut bytes: &[u8]) -> Result<BTreeMap<String, String>, StoreError> {
    let mut take = |n: usize| -> Result<&[u8], StoreError> {
        let (head, rest) = bytes.split_at_checked(n).ok_or(StoreError::Corrupt("an entry runs past the end"))?;
        bytes = rest;
        Ok(head)
    };
    let count = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes"));
    let mut map = BTreeMap::new();
    for _ in 0..count {
        let mut field = || -> Result<String, StoreError> {
            let len = u16::from_le_bytes(take(2)?.try_into().expect("2 bytes")) as usize;
            String::from_utf8(take(len)?.to_vec()).map_err(|_| StoreError::Corrupt("an entry is not UTF-8"))
        };
        let key = field()?;
        let value = field()?;
        map.insert(key, value);
    }
    Ok(map)
}
