//! A24: a device without a write cache (virtio-blk without `VIRTIO_BLK_F_FLUSH`, which
//! Unikraft's driver answers with -ENOTSUP) has nothing to flush: its flush succeeds, so
//! the encrypted layer (which flushes before every metadata write) writes on it. Other
//! flush errors are still errors.

use shared_core::block::encrypted::{Encrypted, Key};

use super::*;

#[test]
fn a_device_without_flush_support_flushes_as_nothing_to_do() {
    let (mut dev, fake) = device();
    fake.borrow_mut().flush_refused = Some(95);
    run(completes_all(&fake), dev.flush()).unwrap();
    assert_idle(&dev);
    // The encrypted layer over it formats, writes and reads back.
    let key = Key::new([3; 32]);
    let mut enc = run(completes_all(&fake), Encrypted::format(&mut dev, &key)).unwrap();
    let data = vec![0x5au8; 3 * SECTOR];
    run(completes_all(&fake), enc.write(4, &data)).unwrap();
    let mut back = vec![0u8; data.len()];
    run(completes_all(&fake), enc.read(4, &mut back)).unwrap();
    assert!(back == data, "read back differs");
    drop(enc);
    assert_idle(&dev);
}

#[test]
fn other_flush_errors_are_still_errors() {
    let (mut dev, fake) = device();
    fake.borrow_mut().flush_refused = Some(5);
    let err = run(completes_all(&fake), dev.flush()).unwrap_err();
    assert!(std::format!("{err}").contains("error 5"), "{err}");
    assert_idle(&dev);
}
