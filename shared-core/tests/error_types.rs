//! Every public error type is a `core::error::Error` (so `?` into `Box<dyn Error>` and
//! `anyhow` work in std apps), with a message that says what went wrong and, where it
//! wraps another error, that error as its source.

use core::error::Error;

use shared_core::block::encrypted::EncryptedError;
use shared_core::block::mbr::{MbrEntry, MbrError};
use shared_core::block::BlockError;
use shared_core::bootargs::ArgError;
use shared_core::net::TunnelError;
use shared_core::services::OpenError;

fn is_error<E: Error + Send + Sync + 'static>() {}

#[test]
fn the_public_errors_are_errors() {
    is_error::<OpenError>();
    is_error::<BlockError>();
    is_error::<ArgError>();
    is_error::<MbrError>();
    is_error::<EncryptedError>();
    is_error::<TunnelError>();
}

#[test]
fn a_partition_error_says_what_and_keeps_the_device_error_as_its_source() {
    let wrapped = MbrError::Block(BlockError::ReadOnly);
    assert_eq!(wrapped.to_string(), "reading the partition table failed: device is read-only");
    assert_eq!(wrapped.source().map(|e| e.to_string()), Some(BlockError::ReadOnly.to_string()));
    let entry = MbrEntry { index: 1, kind: 0x83, first_lba: 64, sectors: 1000 };
    let past_end = MbrError::EntryOutOfRange(entry);
    assert_eq!(past_end.to_string(), "partition 1 (sectors 64..+1000) reaches past the end of the disk");
    assert!(past_end.source().is_none());
    assert!(MbrError::NoSignature.to_string().contains("55 AA"));
    let open = OpenError::NotFound("net1".into());
    let boxed: Box<dyn Error> = Box::new(open);
    assert_eq!(boxed.to_string(), "no such device: net1");
}
