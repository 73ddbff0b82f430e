//! The encrypted layer against `MemDisk` (and a disk that answers `Pending`): round trips,
//! tampering, per-disk keys, nonce uniqueness across writes, reopenings and rollbacks,
//! bounds, stacking, cancel. Crashes and cancellations at every step: `tests_faults.rs`.

extern crate std;

use super::layout::{generation, slot, state, SlotId};
use super::*;
use crate::block::mbr::{write_table, Partition};
use crate::block::MemDisk;
use core::future::Future;
use core::pin::pin;
use core::task::Waker;
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};

const KEY: Key = Key::new([0x42; 32]);

/// Polls to the end with a no-op waker (the devices here never need a wake-up).
pub(super) fn run<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            return out;
        }
    }
}

fn formatted(sectors: u64) -> Encrypted<MemDisk> {
    run(Encrypted::format(MemDisk::new(512, sectors), &KEY)).unwrap()
}

pub(super) fn pattern(lba: u64, len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u64 * 7 + lba * 13 + seed as u64) as u8).collect()
}

/// The newest metadata copy of `group` in a device image (by generation; no MAC check).
pub(super) fn newest_meta(bytes: &[u8], g: Geometry, group: u64) -> &[u8] {
    let ss = g.sector_size;
    let at = g.meta_sector(group) as usize * ss;
    let (a, b) = (&bytes[at..at + ss], &bytes[at + ss..at + 2 * ss]);
    if generation(b) > generation(a) {
        b
    } else {
        a
    }
}

/// The slot (session and counter) each of logical sectors `lbas` was last sealed with.
fn slots(dev: &mut Encrypted<MemDisk>, lbas: core::ops::Range<u64>) -> Vec<SlotId> {
    let g = dev.geometry();
    let bytes = dev.inner_mut().bytes();
    lbas.map(|lba| {
        let (group, index) = g.locate(lba);
        let meta = newest_meta(bytes, g, group);
        // After a completed write the new slot is the pending one (until the next
        // metadata write of the group says so).
        let s = state(meta, index);
        slot(meta, index, if s.pending { 1 - s.current } else { s.current }).0
    })
    .collect()
}

#[test]
fn key_from_hex() {
    let hex = "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F";
    let key = Key::from_hex(hex).unwrap();
    assert!(key.same_as(&Key::new(core::array::from_fn(|i| i as u8))));
    assert!(!key.same_as(&KEY));
    assert!(Key::from_hex(&hex[1..]).is_none());
    assert!(Key::from_hex(&hex.replace('0', "g")).is_none());
    assert_eq!(std::format!("{key:?}"), "Key(..)");
}

#[test]
fn round_trip_survives_reopening_and_a_fresh_device_reads_zeros() {
    let mut dev = formatted(200);
    assert_eq!(dev.info().sectors, 22 * 7);
    let mut buf = vec![0xff; 512 * 3];
    run(dev.read(5, &mut buf)).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
    let data = pattern(14, 512 * 40, 1); // crosses three groups
    run(dev.write(14, &data)).unwrap();
    run(dev.flush()).unwrap();
    let mut back = vec![0; data.len()];
    run(dev.read(14, &mut back)).unwrap();
    assert_eq!(back, data);
    let mut dev = run(Encrypted::open(dev.into_inner(), &KEY)).unwrap();
    let mut back = vec![0; data.len()];
    run(dev.read(14, &mut back)).unwrap();
    assert_eq!(back, data);
    // No plaintext sector on the disk below.
    let raw = dev.into_inner();
    for sector in data.chunks(512) {
        assert!(!raw.bytes().chunks(512).any(|s| s == sector));
    }
}

#[test]
fn a_flipped_bit_a_moved_sector_and_changed_metadata_are_integrity_errors() {
    let mut dev = formatted(100);
    run(dev.write(3, &pattern(3, 512 * 4, 2))).unwrap();
    let at = dev.physical_sector(4) as usize * 512;
    dev.inner_mut().bytes_mut()[at + 100] ^= 0x10;
    let mut buf = vec![0; 512 * 4];
    assert_eq!(run(dev.read(3, &mut buf)), Err(BlockError::Integrity { lba: 4 }));
    assert!(buf.iter().all(|&b| b == 0), "a failed read hands out no bytes");
    let mut one = vec![0; 512];
    run(dev.read(3, &mut one)).unwrap();
    assert_eq!(one, pattern(3, 512, 2));
    dev.inner_mut().bytes_mut()[at + 100] ^= 0x10;
    run(dev.read(3, &mut buf)).unwrap();

    // Sector 5's ciphertext copied over sector 6: its authenticated data differs.
    let g = dev.geometry();
    let raw = dev.inner_mut().bytes_mut();
    raw.copy_within(
        g.data_sector(5) as usize * 512..g.data_sector(5) as usize * 512 + 512,
        g.data_sector(6) as usize * 512,
    );
    assert_eq!(run(dev.read(6, &mut one)), Err(BlockError::Integrity { lba: 6 }));
    // A changed byte in the newest metadata copy: its MAC fails, the older copy does not
    // describe the sectors written since, so they fail; the others still read.
    let meta = g.meta_sector(0) as usize * 512;
    let raw = dev.inner_mut().bytes();
    let newest = if generation(&raw[meta + 512..meta + 1024]) > generation(&raw[meta..meta + 512]) { 512 } else { 0 };
    dev.inner_mut().bytes_mut()[meta + newest + 3 * 64 + 20] ^= 1;
    assert_eq!(run(dev.read(3, &mut one)), Err(BlockError::Integrity { lba: 3 }));
    run(dev.read(1, &mut one)).unwrap();
    assert_eq!(one, vec![0; 512]);
    // Both copies changed: nothing in the group reads.
    dev.inner_mut().bytes_mut()[meta + (512 - newest) + 100] ^= 1;
    assert_eq!(run(dev.read(1, &mut one)), Err(BlockError::Integrity { lba: 1 }));
    assert_eq!(run(dev.write(1, &one)), Err(BlockError::Integrity { lba: 1 }));
    // Metadata moved from another group fails too (the MAC covers the group number).
    let (m0, m1) = (g.meta_sector(0) as usize * 512, g.meta_sector(1) as usize * 512);
    dev.inner_mut().bytes_mut().copy_within(m1..m1 + 1024, m0);
    assert_eq!(run(dev.read(1, &mut one)), Err(BlockError::Integrity { lba: 1 }));
}

#[test]
fn open_checks_header_and_key() {
    let disk = formatted(100).into_inner();
    let other = Key::new([7; 32]);
    assert_eq!(run(Encrypted::open(disk, &other)).err(), Some(EncryptedError::WrongKey));
    assert_eq!(run(Encrypted::open(MemDisk::new(512, 100), &KEY)).err(), Some(EncryptedError::NotFormatted));
    assert!(matches!(run(Encrypted::format(MemDisk::new(512, 9), &KEY)).err(), Some(EncryptedError::TooSmall(_))));
    let mut bigger = MemDisk::new(512, 200);
    bigger.bytes_mut()[..512].copy_from_slice(&formatted(100).into_inner().bytes()[..512]);
    assert_eq!(run(Encrypted::open(bigger, &KEY)).err(), Some(EncryptedError::GeometryChanged));
}

/// A5: the header is authenticated. Before this, its epoch and geometry could be set to
/// anything by whoever wrote sector 0 (and an old epoch reused on every boot).
#[test]
fn a_changed_header_is_refused_and_version_1_is_refused_by_name() {
    let disk = formatted(100).into_inner();
    // Every byte the MAC covers after the version: geometry, disk id (the key check then
    // fails: another disk's keys), key check.
    for at in [12usize, 16, 20, 30, 60, 100, 119] {
        let mut bad = MemDisk::new(512, 100);
        bad.bytes_mut().copy_from_slice(disk.bytes());
        bad.bytes_mut()[at] ^= 1;
        let err = run(Encrypted::open(bad, &KEY)).err();
        assert!(matches!(err, Some(EncryptedError::HeaderTampered | EncryptedError::WrongKey)), "byte {at}: {err:?}");
    }
    // The MAC itself.
    let mut bad = MemDisk::new(512, 100);
    bad.bytes_mut().copy_from_slice(disk.bytes());
    bad.bytes_mut()[layout::HEADER_SIGNED + 5] ^= 1;
    assert_eq!(run(Encrypted::open(bad, &KEY)).err(), Some(EncryptedError::HeaderTampered));
    // The geometry with the right key: tampering, not a resized device.
    let mut bad = MemDisk::new(512, 100);
    bad.bytes_mut().copy_from_slice(disk.bytes());
    bad.bytes_mut()[16] ^= 1;
    assert_eq!(run(Encrypted::open(bad, &KEY)).err(), Some(EncryptedError::HeaderTampered));
    // A version-1 disk (the format before per-disk keys) is refused, saying why.
    let mut old = MemDisk::new(512, 100);
    old.bytes_mut().copy_from_slice(disk.bytes());
    old.bytes_mut()[8] = 1;
    let err = run(Encrypted::open(old, &KEY)).err().unwrap();
    assert_eq!(err, EncryptedError::Version(1));
    assert!(std::format!("{err}").contains("version 1 predates per-disk keys"), "{err}");
}

/// A5, A23: one key on two disks gives two sets of keys: the key checks differ (the disks
/// cannot be linked by them) and the same (session, counter) encrypts differently.
#[test]
fn one_key_on_two_disks_derives_unrelated_keys() {
    let (a, b) = (formatted(100).into_inner(), formatted(100).into_inner());
    let header = |d: &MemDisk| layout::Header::read(&d.bytes()[..512]).unwrap();
    let (ha, hb) = (header(&a), header(&b));
    assert_ne!(ha.disk_id, hb.disk_id);
    assert_ne!(ha.key_check, hb.key_check, "the key check links disks with the same key");
    let session = [9u8; layout::SESSION];
    let mut sa = [0u8; 64];
    let mut sb = [0u8; 64];
    use aes_gcm::aead::AeadInPlace;
    let nonce = aes_gcm::Nonce::default();
    let ta =
        DiskKeys::derive(&KEY, &ha.disk_id).session_cipher(&session).encrypt_in_place_detached(&nonce, b"", &mut sa);
    let tb =
        DiskKeys::derive(&KEY, &hb.disk_id).session_cipher(&session).encrypt_in_place_detached(&nonce, b"", &mut sb);
    assert_ne!(sa, sb);
    assert_ne!(ta.unwrap(), tb.unwrap());
    // Different purposes of one disk differ too.
    let keys = DiskKeys::derive(&KEY, &ha.disk_id);
    assert_ne!(keys.header_mac(b"x"), keys.meta_mac(0, b"x"));
}

#[test]
fn out_of_range_and_misaligned_requests_are_refused() {
    let mut dev = formatted(100); // 11 groups: 77 logical sectors
    assert_eq!(dev.info().sectors, 77);
    let buf = vec![0; 1024];
    assert_eq!(run(dev.write(77, &buf[..512])), Err(BlockError::OutOfRange { lba: 77, sectors: 1, capacity: 77 }));
    assert!(matches!(run(dev.write(76, &buf)), Err(BlockError::OutOfRange { .. })));
    assert!(matches!(run(dev.write(0, &buf[..100])), Err(BlockError::Misaligned { .. })));
    let mut rbuf = vec![0; 1024];
    assert!(matches!(run(dev.read(u64::MAX, &mut rbuf)), Err(BlockError::OutOfRange { .. })));
    // Bypassing BlockExt's checks does not reach past the end either.
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(dev.poll_read(&mut cx, 77, &mut rbuf[..512]), Poll::Ready(Err(BlockError::OutOfRange { .. }))));
}

#[test]
fn rewrites_and_reopenings_never_reuse_a_nonce() {
    let mut dev = formatted(100);
    let mut seen: HashSet<SlotId> = slots(&mut dev, 0..70).into_iter().collect();
    assert_eq!(seen.len(), 70);
    for round in 0..6u8 {
        for lba in [0u64, 0, 6, 7, 40] {
            run(dev.write(lba, &pattern(lba, 512 * 2, round))).unwrap();
            for n in slots(&mut dev, lba..lba + 2) {
                assert!(seen.insert(n), "nonce reused in round {round} at sector {lba}");
            }
        }
        // A reboot: a new session, with a new random id.
        dev = run(Encrypted::open(dev.into_inner(), &KEY)).unwrap();
    }
}

/// A5: nonces do not depend on sector 0 (or any sector) being honest. The whole disk put
/// back to an older image, then written again: no (session, counter) of the lost
/// timeline comes back. Before this, the epoch in the (rolled-back) header was reused and
/// only a 4-byte salt told the two timelines apart (the same salt under a fixed RNG).
#[test]
fn a_rolled_back_disk_never_reuses_a_nonce() {
    let mut dev = formatted(100);
    run(dev.write(2, &pattern(2, 512, 1))).unwrap();
    let snapshot = dev.inner_mut().bytes().to_vec();
    let mut dev = run(Encrypted::open(dev.into_inner(), &KEY)).unwrap();
    run(dev.write(2, &pattern(2, 512, 2))).unwrap();
    let lost = slots(&mut dev, 2..3)[0];
    let mut disk = dev.into_inner();
    disk.bytes_mut().copy_from_slice(&snapshot);
    let mut dev = run(Encrypted::open(disk, &KEY)).unwrap();
    run(dev.write(2, &pattern(2, 512, 3))).unwrap();
    let again = slots(&mut dev, 2..3)[0];
    assert_ne!(again.session, lost.session, "the session after a rollback is a new one");
}

#[test]
fn stacks_with_partitions_both_ways() {
    // An encrypted partition...
    let mut disk = MemDisk::new(512, 300);
    write_table(&mut disk.bytes_mut()[..512], &[(0xda, 100, 150)]);
    let part = run(Partition::open(disk, 0)).unwrap();
    let mut dev = run(Encrypted::format(part, &KEY)).unwrap();
    run(dev.write(0, &pattern(0, 512, 9))).unwrap();
    let disk = dev.into_inner().into_inner();
    assert!(disk.bytes()[..100 * 512].iter().skip(512).all(|&b| b == 0), "nothing before the partition");
    let mut dev = run(Encrypted::open(run(Partition::open(disk, 0)).unwrap(), &KEY)).unwrap();
    let mut one = vec![0; 512];
    run(dev.read(0, &mut one)).unwrap();
    assert_eq!(one, pattern(0, 512, 9));

    // ...and a partition table inside an encrypted disk.
    let mut dev = formatted(200);
    let mut table = vec![0u8; 512];
    write_table(&mut table, &[(0x83, 10, 20)]);
    run(dev.write(0, &table)).unwrap();
    let mut inner = run(Partition::open(dev, 0)).unwrap();
    run(inner.write(19, &pattern(19, 512, 4))).unwrap();
    assert!(run(inner.write(20, &one)).is_err());
    let mut dev = inner.into_inner();
    run(dev.read(29, &mut one)).unwrap();
    assert_eq!(one, pattern(19, 512, 4));
}

/// A `MemDisk` that answers `Pending` to the first poll of each request below.
struct SlowDisk {
    disk: MemDisk,
    pending: bool,
    cancels: u32,
}

impl SlowDisk {
    fn wait(&mut self) -> bool {
        self.pending = !self.pending;
        self.pending
    }
}

impl BlockDevice for SlowDisk {
    fn info(&self) -> BlockInfo {
        self.disk.info()
    }
    fn poll_read(&mut self, cx: &mut Context<'_>, lba: u64, buf: &mut [u8]) -> Poll<Result<(), BlockError>> {
        if self.wait() {
            return Poll::Pending;
        }
        self.disk.poll_read(cx, lba, buf)
    }
    fn poll_write(&mut self, cx: &mut Context<'_>, lba: u64, buf: &[u8]) -> Poll<Result<(), BlockError>> {
        if self.wait() {
            return Poll::Pending;
        }
        self.disk.poll_write(cx, lba, buf)
    }
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BlockError>> {
        if self.wait() {
            return Poll::Pending;
        }
        self.disk.poll_flush(cx)
    }
    fn cancel(&mut self) {
        self.cancels += 1;
        self.pending = false;
    }
}

#[test]
fn pending_devices_below_and_cancel_forwarding() {
    let slow = SlowDisk { disk: MemDisk::new(512, 100), pending: false, cancels: 0 };
    let mut dev = run(Encrypted::format(slow, &KEY)).unwrap();
    let data = pattern(10, 512 * 20, 5);
    run(dev.write(10, &data)).unwrap();
    let mut back = vec![0; data.len()];
    run(dev.read(10, &mut back)).unwrap();
    assert_eq!(back, data);
    // Dropped after its first poll (Pending): the cancel reaches the disk, and the next
    // request starts afresh.
    {
        let mut future = pin!(dev.write(30, &data[..512 * 3]));
        assert!(future.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending());
    }
    let mut one = vec![0; 512];
    run(dev.read(10, &mut one)).unwrap();
    assert_eq!(one, data[..512]);
    assert_eq!(dev.into_inner().cancels, 1);
}

#[test]
fn a_cancelled_write_leaves_earlier_data_readable() {
    let slow = SlowDisk { disk: MemDisk::new(512, 100), pending: false, cancels: 0 };
    let mut dev = run(Encrypted::format(slow, &KEY)).unwrap();
    run(dev.write(1, &pattern(1, 512, 1))).unwrap();
    let second = pattern(2, 512, 2);
    {
        let mut future = pin!(dev.write(2, &second));
        assert!(future.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending());
    }
    let mut one = vec![0; 512];
    run(dev.read(1, &mut one)).unwrap();
    assert_eq!(one, pattern(1, 512, 1));
    run(dev.write(2, &pattern(2, 512, 3))).unwrap();
    run(dev.read(2, &mut one)).unwrap();
    assert_eq!(one, pattern(2, 512, 3));
    assert_eq!(dev.into_inner().cancels, 1);
}

#[derive(Debug, Clone)]
enum Op {
    Write { lba: u64, sectors: u64, seed: u8 },
    Read { lba: u64, sectors: u64 },
    Reopen,
    Flip { lba: u64, byte: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..64, 1u64..24, any::<u8>()).prop_map(|(lba, sectors, seed)| Op::Write { lba, sectors, seed }),
        3 => (0u64..64, 1u64..24).prop_map(|(lba, sectors)| Op::Read { lba, sectors }),
        1 => Just(Op::Reopen),
        1 => (0u64..64, 0usize..512).prop_map(|(lba, byte)| Op::Flip { lba, byte }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any sequence of writes, reads, reboots and bit flips: reads return what was last
    /// written or an integrity error for a flipped sector (never other bytes), requests
    /// past the end are refused, and no nonce is ever used twice.
    #[test]
    fn behaves_like_a_plain_disk_and_never_reuses_a_nonce(ops in proptest::collection::vec(op(), 1..40)) {
        let mut dev = formatted(1 + 9 * 10); // 70 logical sectors (64 used)
        let mut model = vec![0u8; 70 * 512];
        // Sector -> the bytes flipped an odd number of times since it was last written.
        let mut flipped: HashMap<u64, HashSet<usize>> = HashMap::new();
        let mut seen: HashSet<SlotId> = slots(&mut dev, 0..70).into_iter().collect();
        for op in ops {
            match op {
                Op::Write { lba, sectors, seed } => {
                    let data = pattern(lba, sectors as usize * 512, seed);
                    let result = run(dev.write(lba, &data));
                    if lba + sectors > 70 {
                        prop_assert!(matches!(result, Err(BlockError::OutOfRange { .. })), "{:?}", result);
                        continue;
                    }
                    result.unwrap();
                    model[lba as usize * 512..][..data.len()].copy_from_slice(&data);
                    flipped.retain(|s, _| !(lba..lba + sectors).contains(s));
                    for n in slots(&mut dev, lba..lba + sectors) {
                        prop_assert!(seen.insert(n), "a nonce was used twice");
                    }
                }
                Op::Read { lba, sectors } => {
                    let mut buf = vec![0u8; sectors as usize * 512];
                    let result = run(dev.read(lba, &mut buf));
                    if lba + sectors > 70 {
                        prop_assert!(matches!(result, Err(BlockError::OutOfRange { .. })), "{:?}", result);
                    } else if let Some(bad) = (lba..lba + sectors).find(|s| flipped.contains_key(s)) {
                        prop_assert_eq!(result, Err(BlockError::Integrity { lba: bad }));
                        prop_assert!(buf.iter().all(|&b| b == 0));
                    } else {
                        result.unwrap();
                        prop_assert_eq!(&buf[..], &model[lba as usize * 512..][..buf.len()]);
                    }
                }
                Op::Reopen => dev = run(Encrypted::open(dev.into_inner(), &KEY)).unwrap(),
                Op::Flip { lba, byte } => {
                    let at = dev.physical_sector(lba) as usize * 512 + byte;
                    dev.inner_mut().bytes_mut()[at] ^= 0x80;
                    // Flipping a byte twice puts the original back.
                    let bytes = flipped.entry(lba).or_default();
                    if !bytes.insert(byte) {
                        bytes.remove(&byte);
                    }
                    if bytes.is_empty() {
                        flipped.remove(&lba);
                    }
                }
            }
        }
    }
}
