//! The Solo5 block device (`solo5_block_*`) behind shared-core's [`BlockDevice`] trait.
//!
//! Solo5 transfers exactly one block per call, synchronously (the tender does the I/O
//! before returning), so every request completes in the first poll: it is issued block
//! by block straight from and into the caller's buffer. Solo5 has no flush call; its
//! writes are complete when `solo5_block_write` returns, so a flush has nothing to wait
//! for.

use alloc::string::String;
use core::task::{Context, Poll};

use shared_core::block::{check_request, BlockDevice, BlockError, BlockInfo};
use shared_core::services::OpenError;

use solo5_sys::{solo5_block_acquire, solo5_block_info, solo5_block_read, solo5_block_write, SOLO5_R_OK};

/// An acquired Solo5 block device.
pub struct Solo5Block {
    handle: u64,
    info: BlockInfo,
}

impl Solo5Block {
    /// Acquires the manifest's device `name` (`""` = `storage`: what cargo-unikraft
    /// declares, and the name urunc gives its tender).
    pub fn open(name: &str) -> Result<Self, OpenError> {
        let name = if name.is_empty() { "storage" } else { name };
        let mut cname = String::from(name);
        cname.push('\0');
        let mut handle = 0u64;
        let mut info = solo5_block_info::default();
        // SAFETY: a NUL-terminated name and valid out-pointers.
        let rc = unsafe { solo5_block_acquire(cname.as_ptr().cast(), &mut handle, &mut info) };
        if rc != SOLO5_R_OK {
            return Err(OpenError::NotFound(alloc::format!(
                "solo5 block device `{name}` (is it in the manifest, i.e. `devices = [\"block\"]`, and attached with \
                 `--block:{name}=FILE`? solo5_block_acquire returned {rc})"
            )));
        }
        if info.block_size == 0 || info.block_size > u64::from(u32::MAX) {
            return Err(OpenError::Failed(alloc::format!(
                "solo5 block device `{name}`: block size {}",
                info.block_size
            )));
        }
        Ok(Solo5Block {
            handle,
            info: BlockInfo {
                sector_size: info.block_size as u32,
                sectors: info.capacity / info.block_size,
                read_only: false,
            },
        })
    }
}

impl BlockDevice for Solo5Block {
    fn info(&self) -> BlockInfo {
        self.info
    }

    fn poll_read(&mut self, _: &mut Context<'_>, lba: u64, buf: &mut [u8]) -> Poll<Result<(), BlockError>> {
        check_request(&self.info, lba, buf.len())?;
        let size = self.info.sector_size as usize;
        for (i, block) in buf.chunks_mut(size).enumerate() {
            let offset = (lba + i as u64) * size as u64;
            // SAFETY: `block` is valid for `size` bytes.
            let rc = unsafe { solo5_block_read(self.handle, offset, block.as_mut_ptr(), size) };
            if rc != SOLO5_R_OK {
                return Poll::Ready(Err(BlockError::Io(alloc::format!("solo5_block_read at {offset}: {rc}"))));
            }
        }
        Poll::Ready(Ok(()))
    }

    fn poll_write(&mut self, _: &mut Context<'_>, lba: u64, buf: &[u8]) -> Poll<Result<(), BlockError>> {
        check_request(&self.info, lba, buf.len())?;
        let size = self.info.sector_size as usize;
        for (i, block) in buf.chunks(size).enumerate() {
            let offset = (lba + i as u64) * size as u64;
            // SAFETY: `block` is valid for `size` bytes.
            let rc = unsafe { solo5_block_write(self.handle, offset, block.as_ptr(), size) };
            if rc != SOLO5_R_OK {
                return Poll::Ready(Err(BlockError::Io(alloc::format!("solo5_block_write at {offset}: {rc}"))));
            }
        }
        Poll::Ready(Ok(()))
    }

    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BlockError>> {
        Poll::Ready(Ok(()))
    }
}
