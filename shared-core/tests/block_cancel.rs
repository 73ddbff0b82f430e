//! `BlockExt`'s futures cancel their request when dropped before it finished, and only
//! then (`BlockDevice::cancel`), through layers too.

use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use shared_core::block::mbr::{write_table, Partition};
use shared_core::block::{BlockDevice, BlockError, BlockExt, BlockInfo, MemDisk};

/// A `MemDisk` that answers `Pending` to the first `pending_polls` polls of each request.
struct SlowDisk {
    disk: MemDisk,
    pending_polls: u32,
    polls: u32,
    cancels: u32,
}

impl SlowDisk {
    fn new(pending_polls: u32) -> Self {
        let mut disk = MemDisk::new(512, 64);
        write_table(&mut disk.bytes_mut()[..512], &[(0x83, 8, 16)]);
        SlowDisk { disk, pending_polls, polls: 0, cancels: 0 }
    }

    fn wait(&mut self) -> bool {
        if self.polls < self.pending_polls {
            self.polls += 1;
            true
        } else {
            self.polls = 0;
            false
        }
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
        self.polls = 0;
    }
}

fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
    let mut future = pin!(future);
    future.as_mut().poll(&mut Context::from_waker(Waker::noop()))
}

fn poll_to_end<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            return out;
        }
    }
}

#[test]
fn a_dropped_pending_request_is_cancelled_and_a_finished_one_is_not() {
    let mut disk = SlowDisk::new(2);
    let mut buf = [0u8; 512];
    assert!(poll_once(disk.read(0, &mut buf)).is_pending());
    assert_eq!(disk.cancels, 1);
    assert!(poll_once(disk.write(0, &buf)).is_pending());
    assert!(poll_once(disk.flush()).is_pending());
    assert_eq!(disk.cancels, 3);

    poll_to_end(disk.read(0, &mut buf)).unwrap();
    poll_to_end(disk.write(0, &buf)).unwrap();
    poll_to_end(disk.flush()).unwrap();
    // A request refused before reaching the device, and a future never polled.
    assert!(poll_to_end(disk.read(64, &mut buf)).is_err());
    drop(disk.read(0, &mut buf));
    assert_eq!(disk.cancels, 3, "only dropped pending requests cancel");
}

#[test]
fn layers_and_boxes_forward_the_cancel() {
    let mut part = poll_to_end(Partition::open(SlowDisk::new(1), 0)).unwrap();
    let mut buf = [0u8; 512];
    assert!(poll_once(part.read(0, &mut buf)).is_pending());
    let mut boxed = Box::new(part);
    assert!(poll_once(BlockExt::write(&mut boxed, 0, &buf)).is_pending());
    poll_to_end(BlockExt::read(&mut boxed, 0, &mut buf)).unwrap();
    assert_eq!(boxed.into_inner().cancels, 2);
}
