//! Crashes and cancellations at every step of a write (A7, S7), checked exhaustively over
//! a small disk with the test kit's `FaultDisk`: a write future dropped at any request
//! below (whether that request then lands or not), and a crash at any request with any
//! subset of the writes not yet flushed landed (a device's cache writes back in any
//! order), one of them possibly torn (at a sector boundary, or inside a metadata sector).
//! After each, every sector reads back (never `Integrity`) with one of the contents it
//! had since the last flush (old or new), and the device takes new writes.

extern crate std;

use super::tests::{newest_meta, pattern, run};
use super::*;
use crate::block::MemDisk;
use crate::testing::{FaultDisk, FaultOp, Stop, Tear};
use core::future::Future;
use core::pin::pin;
use core::task::Waker;
use std::collections::HashSet;

const KEY: Key = Key::new([0x5c; 32]);
const SS: usize = 512;
/// A header and two groups of 7: 14 logical sectors.
const PHYSICAL: u64 = 1 + 9 * 2;
const SECTORS: u64 = 14;

/// A write of `sectors` sectors from `lba` with pattern `seed`.
type Write = (u64, u64, u8);

/// A formatted disk whose sectors hold pattern 1, flushed, then sectors 0..3 and 12 written
/// again (pattern 2) without a later metadata write, so some sectors are "pending" on disk
/// (their metadata does not say which slot matches); returns it and its contents.
fn base() -> (MemDisk, Vec<Vec<u8>>) {
    let mut dev = run(Encrypted::format(MemDisk::new(SS as u32, PHYSICAL), &KEY)).unwrap();
    assert_eq!(dev.info().sectors, SECTORS);
    run(dev.write(0, &pattern(0, SS * SECTORS as usize, 1))).unwrap();
    run(dev.write(0, &pattern(0, SS * 3, 2))).unwrap();
    run(dev.write(12, &pattern(12, SS, 2))).unwrap();
    run(dev.flush()).unwrap();
    let start = vec![vec![0u8; SS]; SECTORS as usize];
    let contents = after(&start, &[(0, SECTORS, 1), (0, 3, 2), (12, 1, 2)], None);
    (dev.into_inner(), contents.into_iter().map(|set| set.into_iter().next().expect("one")).collect())
}

/// The scenarios: each a sequence of writes run back to back.
fn scenarios() -> Vec<Vec<Write>> {
    vec![
        vec![(1, 1, 3)],             // a pending sector rewritten
        vec![(5, 4, 3)],             // across the group boundary
        vec![(7, 7, 3)],             // a whole group
        vec![(4, 1, 3), (4, 1, 4)],  // one sector twice, no flush between
        vec![(2, 2, 3), (10, 3, 4)], // two groups, one after the other
    ]
}

/// The buffer of a write.
fn write_buf((lba, sectors, seed): Write) -> Vec<u8> {
    pattern(lba, SS * sectors as usize, seed)
}

/// What a write puts in sector `s`.
fn expect_sector(write: Write, s: u64) -> Vec<u8> {
    let buf = write_buf(write);
    buf[(s - write.0) as usize * SS..][..SS].to_vec()
}

/// Every content each sector had from `start` on through `writes`.
fn history(start: &[Vec<u8>], writes: &[Write]) -> Vec<HashSet<Vec<u8>>> {
    let mut allowed: Vec<HashSet<Vec<u8>>> = start.iter().map(|c| HashSet::from([c.clone()])).collect();
    for &w in writes {
        for s in w.0..w.0 + w.1 {
            allowed[s as usize].insert(expect_sector(w, s));
        }
    }
    allowed
}

/// The contents after `writes`, each sector exactly, then (if any) also the contents
/// `in_flight` would give its sectors.
fn after(start: &[Vec<u8>], writes: &[Write], in_flight: Option<Write>) -> Vec<HashSet<Vec<u8>>> {
    let mut now = start.to_vec();
    for &w in writes {
        for s in w.0..w.0 + w.1 {
            now[s as usize] = expect_sector(w, s);
        }
    }
    let mut sets: Vec<HashSet<Vec<u8>>> = now.into_iter().map(|c| HashSet::from([c])).collect();
    if let Some(w) = in_flight {
        for s in w.0..w.0 + w.1 {
            sets[s as usize].insert(expect_sector(w, s));
        }
    }
    sets
}

/// Reads every sector one by one; each must read and be one of `allowed`.
fn check(dev: &mut Encrypted<impl BlockDevice>, allowed: &[HashSet<Vec<u8>>], what: &str) {
    let mut one = vec![0u8; SS];
    for lba in 0..SECTORS {
        match run(dev.read(lba, &mut one)) {
            Ok(()) => assert!(allowed[lba as usize].contains(&one), "{what}: sector {lba} holds other bytes"),
            Err(e) => panic!("{what}: sector {lba}: {e}"),
        }
    }
}

/// Writes everything anew, flushes, reads back: the device works on.
fn still_writable(dev: &mut Encrypted<impl BlockDevice>, what: &str) {
    let fresh = pattern(0, SS * SECTORS as usize, 9);
    run(dev.write(0, &fresh)).unwrap_or_else(|e| panic!("{what}: writing after: {e}"));
    run(dev.flush()).unwrap();
    let mut back = vec![0u8; fresh.len()];
    run(dev.read(0, &mut back)).unwrap_or_else(|e| panic!("{what}: reading after: {e}"));
    assert!(back == fresh, "{what}: read after rewrite differs");
}

/// Runs `writes` on `dev` until the disk stops; returns how many completed. The future
/// in flight is dropped (so cancelled) when the disk stops.
fn run_until_stop(dev: &mut Encrypted<FaultDisk>, writes: &[Write]) -> usize {
    for (i, &w) in writes.iter().enumerate() {
        let buf = write_buf(w);
        let mut future = pin!(dev.write(w.0, &buf));
        let mut polls = 0;
        loop {
            match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
                Poll::Ready(result) => {
                    result.unwrap();
                    break;
                }
                Poll::Pending => {
                    polls += 1;
                    if polls > 3 {
                        return i; // stopped for good: dropped here
                    }
                }
            }
        }
    }
    writes.len()
}

/// The crash images of a disk: every subset of its cached writes, and every tear of one
/// of them (all others landed, or none) at each sector boundary and in the middle of each
/// metadata sector.
fn crash_images(disk: &FaultDisk, g: Geometry) -> Vec<(std::string::String, MemDisk)> {
    let cached = disk.cached();
    assert!(cached.len() <= 8, "{} cached writes", cached.len());
    let mut images = Vec::new();
    for mask in 0..1usize << cached.len() {
        images.push((std::format!("landed {mask:b}"), disk.crash(|i| mask & (1 << i) != 0, None)));
    }
    let is_meta = |p: u64| p != 0 && (p - 1) % (g.per_group + 2) < 2;
    for (i, w) in cached.iter().enumerate() {
        let sectors = w.bytes.len() / SS;
        let mut cuts: Vec<usize> = (1..sectors).map(|k| k * SS).collect();
        cuts.extend((0..sectors).filter(|&k| is_meta(w.lba + k as u64)).map(|k| k * SS + SS / 2));
        for cut in cuts {
            for (others, zeroes_rest) in [(true, false), (false, false), (true, true), (false, true)] {
                let image = disk.crash(|_| others, Some(Tear { write: i, bytes: cut, zeroes_rest }));
                let how = std::format!("write {i} torn at {cut} (rest zeroed: {zeroes_rest}), others landed: {others}");
                images.push((how, image));
            }
        }
    }
    images
}

#[test]
fn a_write_cancelled_or_crashed_at_any_step_leaves_each_sector_old_or_new() {
    let (disk, start) = base();
    let g = Geometry::new(SS, PHYSICAL).unwrap();
    let mut cases = 0;
    for writes in scenarios() {
        // How many requests below the scenario makes when nothing fails.
        // (`inner_mut` as below: it makes the layer flush before its next metadata write.)
        let mut probe = run(Encrypted::open(FaultDisk::new(&disk), &KEY)).unwrap();
        probe.inner_mut().ops.clear();
        assert_eq!(run_until_stop(&mut probe, &writes), writes.len());
        let steps = probe.into_inner().ops.len();
        assert!(steps >= 4 * writes.len(), "{writes:?}: {steps} requests");
        for op in 0..steps {
            for lands in [false, true] {
                let what = std::format!("{writes:?}, stopped at request {op} (lands: {lands})");
                let mut dev = run(Encrypted::open(FaultDisk::new(&disk), &KEY)).unwrap();
                dev.inner_mut().stop_at(Stop { op, lands });
                let completed = run_until_stop(&mut dev, &writes);
                assert!(dev.inner_mut().reached_stop(), "{what}: never stopped");
                // Cancelled: completed writes read new, the one in flight old or new.
                let now = after(&start, &writes[..completed], writes.get(completed).copied());
                // After a crash: any content since the last flush (the scenario's start).
                let since_flush = history(&start, &writes[..(completed + 1).min(writes.len())]);
                // A crash now, in every way the device may leave it.
                let below = dev.inner_mut().clone();
                for (how, image) in crash_images(&below, g) {
                    let what = std::format!("{what}, crash: {how}");
                    let mut after = run(Encrypted::open(image, &KEY)).unwrap_or_else(|e| panic!("{what}: {e}"));
                    check(&mut after, &since_flush, &what);
                    still_writable(&mut after, &what);
                    cases += 1;
                }
                // No crash: the same layer reads on, then writes on.
                dev.inner_mut().resume();
                check(&mut dev, &now, &what);
                still_writable(&mut dev, &what);
            }
        }
    }
    // (201 when this was written: a write keeps at most two writes unflushed below.)
    assert!(cases > 150, "{cases} crash images");
}

/// S7: a metadata write torn in the middle of its sector loses nothing: the sectors that
/// were not being written read as before, and the ones being written read old (their
/// data was not written yet). Before, one metadata sector described 16 (512 B) or 128
/// (4 KiB) sectors, and a torn one whose unfinished part read as zeros made all of those
/// past the cut unreadable.
#[test]
fn a_torn_metadata_write_loses_no_sector() {
    let (disk, start) = base();
    // The requests of a one-sector write: metadata read, probe, metadata write, flush, data.
    let mut dev = run(Encrypted::open(FaultDisk::new(&disk), &KEY)).unwrap();
    let from = dev.inner_mut().ops.len();
    run(dev.write(8, &pattern(8, SS, 7))).unwrap();
    let ops = &dev.inner_mut().ops[from..];
    let meta_write = ops.iter().position(|op| matches!(op, FaultOp::Write { sectors: 1, .. })).unwrap();
    let mut dev = run(Encrypted::open(FaultDisk::new(&disk), &KEY)).unwrap();
    dev.inner_mut().stop_at(Stop { op: meta_write, lands: true });
    assert_eq!(run_until_stop(&mut dev, &[(8, 1, 7)]), 0);
    let below = dev.into_inner();
    // Half of it lands, the rest of the sector reads as zeros (the entries of the
    // sectors described there are gone from this copy).
    let tear = Tear { write: below.cached().len() - 1, bytes: SS / 2, zeroes_rest: true };
    let torn = below.crash(|_| false, Some(tear));
    let mut after = run(Encrypted::open(torn, &KEY)).unwrap();
    let exact: Vec<HashSet<Vec<u8>>> = start.iter().map(|c| HashSet::from([c.clone()])).collect();
    check(&mut after, &exact, "torn metadata");
    assert_eq!(after.metadata_fallbacks(), 1, "the torn copy was seen and passed over");
    let g = after.geometry();
    let image = after.into_inner();
    assert!(newest_meta(image.bytes(), g, 1).len() == SS);
}
