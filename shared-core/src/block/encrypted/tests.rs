//! The encrypted layer against `MemDisk` (and a disk that answers `Pending`): round trips,
//! tampering, nonce uniqueness across writes and reopenings, bounds, stacking, cancel.

extern crate std;

use super::layout::{entry, NONCE};
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
fn run<F: Future>(future: F) -> F::Output {
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

fn pattern(lba: u64, len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u64 * 7 + lba * 13 + seed as u64) as u8).collect()
}

/// Every nonce stored in the metadata of logical sectors `lbas`.
fn nonces(dev: &mut Encrypted<MemDisk>, lbas: core::ops::Range<u64>) -> Vec<[u8; NONCE]> {
    let g = dev.geometry();
    let bytes = dev.inner_mut().bytes();
    lbas.map(|lba| {
        let (group, index) = g.locate(lba);
        let meta = &bytes[g.meta_sector(group) as usize * 512..][..512];
        entry(meta, index).0.try_into().unwrap()
    })
    .collect()
}

#[test]
fn key_from_hex() {
    let hex = "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F";
    let key = Key::from_hex(hex).unwrap();
    assert_eq!(key, Key::new(core::array::from_fn(|i| i as u8)));
    assert_eq!(Key::from_hex(&hex[1..]), None);
    assert_eq!(Key::from_hex(&hex.replace('0', "g")), None);
    assert_eq!(std::format!("{key:?}"), "Key(..)");
}

#[test]
fn round_trip_survives_reopening_and_a_fresh_device_reads_zeros() {
    let mut dev = formatted(200);
    assert_eq!(dev.info().sectors, 11 * 16);
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
fn a_flipped_bit_a_moved_sector_and_a_zeroed_entry_are_integrity_errors() {
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

    // Sector 5's ciphertext and entry copied over sector 6: authenticated data differs.
    let g = dev.geometry();
    let raw = dev.inner_mut().bytes_mut();
    raw.copy_within(
        g.data_sector(5) as usize * 512..g.data_sector(5) as usize * 512 + 512,
        g.data_sector(6) as usize * 512,
    );
    let meta = g.meta_sector(0) as usize * 512;
    raw.copy_within(meta + 5 * 32..meta + 6 * 32, meta + 6 * 32);
    assert_eq!(run(dev.read(6, &mut one)), Err(BlockError::Integrity { lba: 6 }));
    // A zeroed entry is not "unwritten": every sector was written at format.
    dev.inner_mut().bytes_mut()[meta + 7 * 32..meta + 8 * 32].fill(0);
    assert_eq!(run(dev.read(7, &mut one)), Err(BlockError::Integrity { lba: 7 }));
    // A flipped tag bit.
    dev.inner_mut().bytes_mut()[meta + 3 * 32 + NONCE] ^= 1;
    assert_eq!(run(dev.read(3, &mut one)), Err(BlockError::Integrity { lba: 3 }));
}

#[test]
fn open_checks_header_and_key() {
    let disk = formatted(100).into_inner();
    let other = Key::new([7; 32]);
    assert_eq!(run(Encrypted::open(disk, &other)).err(), Some(EncryptedError::WrongKey));
    assert_eq!(run(Encrypted::open(MemDisk::new(512, 100), &KEY)).err(), Some(EncryptedError::NotFormatted));
    assert!(matches!(run(Encrypted::format(MemDisk::new(512, 17), &KEY)).err(), Some(EncryptedError::TooSmall(_))));
    let mut bigger = MemDisk::new(512, 200);
    bigger.bytes_mut()[..512].copy_from_slice(&formatted(100).into_inner().bytes()[..512]);
    assert_eq!(run(Encrypted::open(bigger, &KEY)).err(), Some(EncryptedError::GeometryChanged));
}

#[test]
fn out_of_range_and_misaligned_requests_are_refused() {
    let mut dev = formatted(100); // 5 groups: 80 logical sectors
    assert_eq!(dev.info().sectors, 80);
    let buf = vec![0; 1024];
    assert_eq!(run(dev.write(80, &buf[..512])), Err(BlockError::OutOfRange { lba: 80, sectors: 1, capacity: 80 }));
    assert!(matches!(run(dev.write(79, &buf)), Err(BlockError::OutOfRange { .. })));
    assert!(matches!(run(dev.write(0, &buf[..100])), Err(BlockError::Misaligned { .. })));
    let mut rbuf = vec![0; 1024];
    assert!(matches!(run(dev.read(u64::MAX, &mut rbuf)), Err(BlockError::OutOfRange { .. })));
    // Bypassing BlockExt's checks does not reach past the end either.
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(dev.poll_read(&mut cx, 80, &mut rbuf[..512]), Poll::Ready(Err(BlockError::OutOfRange { .. }))));
}

#[test]
fn rewrites_and_reopenings_never_reuse_a_nonce() {
    let mut dev = formatted(100);
    let mut seen: HashSet<[u8; NONCE]> = nonces(&mut dev, 0..80).into_iter().collect();
    assert_eq!(seen.len(), 80);
    for round in 0..6u8 {
        for lba in [0u64, 0, 15, 16, 40] {
            run(dev.write(lba, &pattern(lba, 512 * 2, round))).unwrap();
            for n in nonces(&mut dev, lba..lba + 2) {
                assert!(seen.insert(n), "nonce reused in round {round} at sector {lba}");
            }
        }
        // A reboot: the next session's epoch is above every one used before.
        dev = run(Encrypted::open(dev.into_inner(), &KEY)).unwrap();
    }
}

#[test]
fn a_torn_write_is_detected_and_its_counter_not_reused() {
    let mut dev = formatted(100);
    run(dev.write(2, &pattern(2, 512, 1))).unwrap();
    let before = dev.inner_mut().bytes().to_vec();
    run(dev.write(2, &pattern(2, 512, 2))).unwrap();
    // Crash: the data reached the disk, its metadata did not.
    let g = dev.geometry();
    let mut disk = dev.into_inner();
    let meta = g.meta_sector(0) as usize * 512;
    disk.bytes_mut()[meta..meta + 512].copy_from_slice(&before[meta..meta + 512]);
    let mut dev = run(Encrypted::open(disk, &KEY)).unwrap();
    let mut one = vec![0; 512];
    assert_eq!(run(dev.read(2, &mut one)), Err(BlockError::Integrity { lba: 2 }));
    let old = nonces(&mut dev, 2..3)[0];
    run(dev.write(2, &pattern(2, 512, 3))).unwrap();
    assert_ne!(nonces(&mut dev, 2..3)[0][..4], old[..4], "a new epoch after reopening");
    run(dev.read(2, &mut one)).unwrap();
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
        let mut dev = formatted(1 + 17 * 4); // 64 logical sectors
        let mut model = vec![0u8; 64 * 512];
        // Sector -> the bytes flipped an odd number of times since it was last written.
        let mut flipped: HashMap<u64, HashSet<usize>> = HashMap::new();
        let mut seen: HashSet<[u8; NONCE]> = nonces(&mut dev, 0..64).into_iter().collect();
        for op in ops {
            match op {
                Op::Write { lba, sectors, seed } => {
                    let data = pattern(lba, sectors as usize * 512, seed);
                    let result = run(dev.write(lba, &data));
                    if lba + sectors > 64 {
                        prop_assert!(matches!(result, Err(BlockError::OutOfRange { .. })), "{:?}", result);
                        continue;
                    }
                    result.unwrap();
                    model[lba as usize * 512..][..data.len()].copy_from_slice(&data);
                    flipped.retain(|s, _| !(lba..lba + sectors).contains(s));
                    for n in nonces(&mut dev, lba..lba + sectors) {
                        prop_assert!(seen.insert(n), "a nonce was used twice");
                    }
                }
                Op::Read { lba, sectors } => {
                    let mut buf = vec![0u8; sectors as usize * 512];
                    let result = run(dev.read(lba, &mut buf));
                    if lba + sectors > 64 {
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
