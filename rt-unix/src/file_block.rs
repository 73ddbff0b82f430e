//! A regular file as a block device with 512-byte sectors.
//!
//! Requests complete synchronously (`pread`/`pwrite`/`fdatasync`), so every poll returns
//! `Ready`; the async shape exists for backends with real queues.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::task::{Context, Poll};

use shared_core::block::{check_request, BlockDevice, BlockError, BlockInfo};
use shared_core::services::OpenError;

/// Sector size of file-backed disks.
pub const SECTOR_SIZE: u32 = 512;

/// A disk image file.
pub struct FileDisk {
    file: File,
    info: BlockInfo,
}

impl FileDisk {
    /// Opens `path` read-write (read-only if it is not writable). Its size must be a
    /// non-zero multiple of 512 bytes.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        let (file, read_only) = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => (f, false),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                (File::open(path).map_err(|e| OpenError::Failed(format!("{}: {e}", path.display())))?, true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(OpenError::NotFound(format!("{}: no such file", path.display())))
            }
            Err(e) => return Err(OpenError::Failed(format!("{}: {e}", path.display()))),
        };
        let len = file.metadata().map_err(|e| OpenError::Failed(e.to_string()))?.len();
        if len == 0 || !len.is_multiple_of(SECTOR_SIZE as u64) {
            return Err(OpenError::Failed(format!(
                "{}: size {len} is not a non-zero multiple of {SECTOR_SIZE} bytes",
                path.display()
            )));
        }
        Ok(FileDisk {
            file,
            info: BlockInfo { sector_size: SECTOR_SIZE, sectors: len / SECTOR_SIZE as u64, read_only },
        })
    }
}

fn io(e: std::io::Error) -> BlockError {
    BlockError::Io(e.to_string())
}

impl BlockDevice for FileDisk {
    fn info(&self) -> BlockInfo {
        self.info
    }
    fn poll_read(&mut self, _: &mut Context<'_>, lba: u64, buf: &mut [u8]) -> Poll<Result<(), BlockError>> {
        check_request(&self.info, lba, buf.len())?;
        Poll::Ready(self.file.read_exact_at(buf, lba * SECTOR_SIZE as u64).map_err(io))
    }
    fn poll_write(&mut self, _: &mut Context<'_>, lba: u64, buf: &[u8]) -> Poll<Result<(), BlockError>> {
        check_request(&self.info, lba, buf.len())?;
        if self.info.read_only {
            return Poll::Ready(Err(BlockError::ReadOnly));
        }
        Poll::Ready(self.file.write_all_at(buf, lba * SECTOR_SIZE as u64).map_err(io))
    }
    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BlockError>> {
        Poll::Ready(self.file.sync_data().map_err(io))
    }
}
