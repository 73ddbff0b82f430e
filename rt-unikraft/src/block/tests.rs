//! The request state machine against a scripted queue, on the host.
//!
//! The queue completes chunks only when told, or when the executor's idle wait runs (the
//! test platform below calls a hook there, as a completion interrupt would end Unikraft's
//! wait). A `Pending` that arranged no wake-up never gets polled again: the wait then
//! runs forever, and [`run`] fails the test after [`MAX_WAITS`] waits.
//!
//! This is the only `provide_platform!` in rt-unikraft's unit tests (one per binary):
//! tests of other modules that need services share it.

use std::boxed::Box;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::string::String;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Wake, Waker};
use std::vec;
use std::vec::Vec;

use shared_core::block::{BlockDevice, BlockExt, BlockInfo};
use shared_core::executor::block_on;
use shared_core::net::NetDevice;
use shared_core::services::{OpenError, Platform};

use super::*;

mod flush;

const MAX_WAITS: u32 = 10_000;

std::thread_local! {
    static CLOCK_NS: Cell<u64> = const { Cell::new(1) };
    static WAITS: Cell<u32> = const { Cell::new(0) };
    static ON_WAIT: RefCell<Option<Box<dyn FnMut()>>> = const { RefCell::new(None) };
}

/// The executor's state is global: tests that run it take turns.
static EXECUTOR: Mutex<()> = Mutex::new(());

struct TestPlatform;

impl Platform for TestPlatform {
    fn backend_name() -> &'static str {
        "rt-unikraft-test"
    }
    fn monotonic_ns() -> u64 {
        CLOCK_NS.with(Cell::get)
    }
    fn wall_clock_ns() -> u64 {
        Self::monotonic_ns()
    }
    fn fill_random(buf: &mut [u8]) {
        buf.fill(4);
    }
    fn console_write(bytes: &[u8]) {
        use std::io::Write;
        let _ = std::io::stdout().write_all(bytes);
    }
    fn exit(code: i32) -> ! {
        std::process::exit(code)
    }
    fn boot_args() -> Vec<String> {
        Vec::new()
    }
    fn wait_until(deadline_ns: Option<u64>) {
        WAITS.with(|w| w.set(w.get() + 1));
        ON_WAIT.with(|hook| {
            if let Some(hook) = hook.borrow_mut().as_mut() {
                hook()
            }
        });
        let now = Self::monotonic_ns();
        CLOCK_NS.with(|c| c.set(deadline_ns.unwrap_or(now + 1_000_000).max(now + 1)));
    }
    fn open_net(name: &str) -> Result<Box<dyn NetDevice>, OpenError> {
        Err(OpenError::NotFound(name.into()))
    }
    fn open_block(name: &str) -> Result<Box<dyn BlockDevice>, OpenError> {
        Err(OpenError::NotFound(name.into()))
    }
    fn thread_id() -> usize {
        std::thread_local!(static ID: u8 = const { 0 });
        // The address of a thread-local is unique among the threads alive now.
        ID.with(|id| id as *const u8 as usize)
    }
}

shared_core::provide_platform!(TestPlatform);

/// Runs `future` on the executor; each idle wait first runs `on_wait` (the device's
/// completion interrupt). Fails the test if the future stops being woken.
fn run<F: Future>(on_wait: impl FnMut() + 'static, future: F) -> F::Output {
    let _turn = EXECUTOR.lock().unwrap_or_else(|e| e.into_inner());
    WAITS.with(|w| w.set(0));
    ON_WAIT.with(|hook| *hook.borrow_mut() = Some(Box::new(on_wait)));
    // Woken at the start, so the first poll reaches the request.
    let woken = Arc::new(Flag { woken: AtomicBool::new(true), outer: Mutex::new(None) });
    let out = block_on(Watchdog { inner: core::pin::pin!(future), woken });
    ON_WAIT.with(|hook| *hook.borrow_mut() = None);
    out.unwrap_or_else(|waits| panic!("hung: the executor waited {waits} times and nothing woke the request"))
}

/// Set by the inner future's waker (which also wakes the executor's task).
struct Flag {
    woken: AtomicBool,
    outer: Mutex<Option<Waker>>,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        if let Some(outer) = self.outer.lock().unwrap().as_ref() {
            outer.wake_by_ref();
        }
    }
}

/// Polls `inner` only when its own waker was woken, as a task of its own would be; gives
/// up (the test fails outside the executor, which stays usable) once the platform waited
/// [`MAX_WAITS`] times. A `Pending` that arranged no wake-up is then seen as a hang.
struct Watchdog<'a, F> {
    inner: Pin<&'a mut F>,
    woken: Arc<Flag>,
}

impl<F: Future> Future for Watchdog<'_, F> {
    type Output = Result<F::Output, u32>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        *self.woken.outer.lock().unwrap() = Some(cx.waker().clone());
        if self.woken.woken.swap(false, Ordering::SeqCst) {
            let waker = Waker::from(self.woken.clone());
            if let Poll::Ready(out) = self.inner.as_mut().poll(&mut Context::from_waker(&waker)) {
                return Poll::Ready(Ok(out));
            }
        }
        let waits = WAITS.with(Cell::get);
        if waits >= MAX_WAITS {
            return Poll::Ready(Err(waits));
        }
        // Look again after the next idle wait, without polling `inner` unless woken.
        let mut watch = core::pin::pin!(shared_core::executor::wait_io(None));
        let _ = watch.as_mut().poll(cx);
        Poll::Pending
    }
}

/// Runs `f` once inside `block_on`, with the executor's context, as a task's poll would
/// (shared-core's waits panic outside `block_on`).
fn in_block_on<R>(f: impl FnOnce(&mut Context<'_>) -> R) -> R {
    let _turn = EXECUTOR.lock().unwrap_or_else(|e| e.into_inner());
    let mut f = Some(f);
    block_on(core::future::poll_fn(|cx| Poll::Ready((f.take().expect("polled once"))(cx))))
}

/// Polls `future` once (on the executor, which never polls it again) and drops it.
fn poll_once_and_drop<F: Future>(future: F) -> bool {
    let mut future = core::pin::pin!(future);
    in_block_on(|cx| future.as_mut().poll(cx).is_pending())
}

const SECTOR: usize = 512;
const SECTORS: u64 = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Submitted { handle: i32, kind: Kind, sector: u64 },
    Completed { handle: i32 },
}

struct Req {
    kind: Kind,
    sector: u64,
    sectors: u64,
    buf: *mut u8,
    done: Option<Status>,
}

/// A disk behind a queue of [`MAX_IN_FLIGHT`] slots that completes chunks when told.
struct Fake {
    disk: Vec<u8>,
    slots: Vec<Option<Req>>,
    log: Vec<Event>,
    /// Answer `Busy` to this many submissions.
    busy_next: u32,
    /// Chunks touching this sector fail.
    bad_sector: Option<u64>,
    /// How often a dropped device paused to wait for its chunks.
    pauses: u32,
    /// The pause at which every running chunk completes (`None`: never).
    complete_at_pause: Option<u32>,
    /// Chunks still running when the device was given back (`None`: not given back).
    running_at_close: Option<usize>,
    /// Flushes are refused with this errno (a device without a write cache: 95).
    flush_refused: Option<i32>,
}

impl Fake {
    fn new() -> Rc<RefCell<Fake>> {
        let disk = (0..SECTORS as usize * SECTOR).map(|i| (i * 7 + i / SECTOR) as u8).collect();
        Rc::new(RefCell::new(Fake {
            disk,
            slots: (0..MAX_IN_FLIGHT).map(|_| None).collect(),
            log: Vec::new(),
            busy_next: 0,
            bad_sector: None,
            pauses: 0,
            complete_at_pause: None,
            running_at_close: None,
            flush_refused: None,
        }))
    }

    /// Completes up to `n` running chunks, in handle order, doing their I/O.
    fn complete(&mut self, n: usize) {
        let mut left = n;
        for handle in 0..self.slots.len() {
            if left == 0 {
                return;
            }
            let Some(req) = self.slots[handle].as_mut() else { continue };
            if req.done.is_some() {
                continue;
            }
            left -= 1;
            let range = req.sector as usize * SECTOR..(req.sector + req.sectors) as usize * SECTOR;
            let failed =
                self.bad_sector.is_some_and(|bad| (req.sector..req.sector + req.sectors.max(1)).contains(&bad));
            if failed {
                req.done = Some(Status::Failed(5));
            } else {
                // SAFETY: the device keeps the bounce buffer alive and untouched until the
                // chunk is collected, which cannot happen before `done` is set.
                let buf = unsafe { core::slice::from_raw_parts_mut(req.buf, range.len()) };
                match req.kind {
                    Kind::Read => buf.copy_from_slice(&self.disk[range]),
                    Kind::Write => self.disk[range].copy_from_slice(buf),
                    Kind::Flush => {}
                }
                req.done = Some(Status::Done);
            }
            self.log.push(Event::Completed { handle: handle as i32 });
        }
    }

    fn complete_all(&mut self) {
        self.complete(usize::MAX);
    }

    fn running(&self) -> usize {
        self.slots.iter().flatten().filter(|r| r.done.is_none()).count()
    }
}

struct FakeQueue(Rc<RefCell<Fake>>);

impl Queue for FakeQueue {
    fn submit(&mut self, kind: Kind, sector: u64, sectors: u64, buf: *mut u8) -> Submit {
        let mut fake = self.0.borrow_mut();
        if fake.busy_next > 0 {
            fake.busy_next -= 1;
            return Submit::Busy;
        }
        if let (Kind::Flush, Some(errno)) = (kind, fake.flush_refused) {
            return Submit::Failed(errno);
        }
        let Some(handle) = fake.slots.iter().position(Option::is_none) else { return Submit::Busy };
        fake.slots[handle] = Some(Req { kind, sector, sectors, buf, done: None });
        fake.log.push(Event::Submitted { handle: handle as i32, kind, sector });
        Submit::Queued(handle as i32)
    }

    fn poll(&mut self, handle: i32) -> Status {
        let mut fake = self.0.borrow_mut();
        let slot = &mut fake.slots[handle as usize];
        match slot.as_ref().and_then(|r| r.done) {
            None => Status::Running,
            Some(status) => {
                *slot = None;
                status
            }
        }
    }

    fn pause(&mut self) {
        let mut fake = self.0.borrow_mut();
        fake.pauses += 1;
        if fake.complete_at_pause == Some(fake.pauses) {
            fake.complete_all();
        }
    }

    fn close(&mut self) {
        let mut fake = self.0.borrow_mut();
        fake.running_at_close = Some(fake.running());
    }
}

/// A device with one-sector chunks, so 16 sectors take two rounds of [`MAX_IN_FLIGHT`].
fn device() -> (UkBlock<FakeQueue>, Rc<RefCell<Fake>>) {
    let fake = Fake::new();
    let info = BlockInfo { sector_size: SECTOR as u32, sectors: SECTORS, read_only: false };
    (UkBlock::with_queue(FakeQueue(fake.clone()), info, 1, 0), fake)
}

/// What the next idle wait does: complete every running chunk.
fn completes_all(fake: &Rc<RefCell<Fake>>) -> impl FnMut() + 'static {
    let fake = fake.clone();
    move || fake.borrow_mut().complete_all()
}

fn assert_idle(dev: &UkBlock<FakeQueue>) {
    assert!(dev.request.is_none() && dev.orphans.is_empty(), "a request or orphan is left");
    assert_eq!(dev.free_bounces.len(), MAX_IN_FLIGHT, "bounce buffers leaked");
}

/// A read dropped after it collected half its chunks, then the same read again (same
/// sector and length): the retry must fill its own buffer completely.
#[test]
fn a_retried_read_is_not_resumed_from_the_cancelled_one() {
    let (mut dev, fake) = device();
    let want = fake.borrow().disk[..16 * SECTOR].to_vec();
    let mut first = vec![0u8; 16 * SECTOR];
    let mut read = Box::pin(dev.read(0, &mut first));
    in_block_on(|cx| {
        assert!(read.as_mut().poll(cx).is_pending());
        fake.borrow_mut().complete_all();
        // Collects 8 sectors into `first` and queues the other 8.
        assert!(read.as_mut().poll(cx).is_pending());
    });
    drop(read);
    assert!(first[..8 * SECTOR] == want[..8 * SECTOR]);

    let mut retry = vec![0u8; 16 * SECTOR];
    run(completes_all(&fake), dev.read(0, &mut retry)).unwrap();
    assert!(retry == want, "the retried read returned Ok with part of its buffer unfilled");
    assert_idle(&dev);
}

/// A write dropped after half its chunks reached the disk, then a write of other bytes
/// to the same sectors: the disk must hold the second write's bytes only.
#[test]
fn a_retried_write_writes_its_own_bytes() {
    let (mut dev, fake) = device();
    let old = vec![0xaa; 16 * SECTOR];
    let mut write = Box::pin(dev.write(4, &old));
    in_block_on(|cx| {
        assert!(write.as_mut().poll(cx).is_pending());
        fake.borrow_mut().complete_all();
        assert!(write.as_mut().poll(cx).is_pending());
    });
    drop(write);
    let submitted_before = fake.borrow().log.len();

    let new = vec![0x55; 16 * SECTOR];
    run(completes_all(&fake), dev.write(4, &new)).unwrap();
    assert!(
        fake.borrow().disk[4 * SECTOR..20 * SECTOR] == new[..],
        "the retried write mixed in the cancelled one's data"
    );
    // The cancelled write's chunks all finished before the retry queued anything, so none
    // can land after it.
    let log = fake.borrow().log[submitted_before..].to_vec();
    let first_new = log.iter().position(|e| matches!(e, Event::Submitted { .. })).unwrap();
    let orphans_done = log.iter().filter(|e| matches!(e, Event::Completed { .. })).count();
    assert!(orphans_done >= 8 && log[..first_new].iter().all(|e| matches!(e, Event::Completed { .. })), "{log:?}");
    assert_idle(&dev);
}

/// Every way to wait — for a cancelled request's chunks before a new request or a flush,
/// for a full queue, for running chunks — registers a wake-up (else `run` fails as hung).
#[test]
fn every_pending_arranges_a_wake_up() {
    // A different request while a cancelled one's chunks are still in the device.
    let (mut dev, fake) = device();
    let mut buf = vec![0u8; 8 * SECTOR];
    assert!(poll_once_and_drop(dev.read(0, &mut buf)));
    assert_eq!(fake.borrow().running(), 8);
    run(completes_all(&fake), dev.read(32, &mut buf)).unwrap();
    assert!(buf[..] == fake.borrow().disk[32 * SECTOR..40 * SECTOR], "buf does not hold the disk\'s bytes");
    assert_idle(&dev);

    // A flush while a cancelled write holds every bounce buffer.
    assert!(poll_once_and_drop(dev.write(0, &vec![1u8; 8 * SECTOR])));
    run(completes_all(&fake), dev.flush()).unwrap();
    assert_idle(&dev);

    // A queue that says "busy" with nothing of ours running.
    fake.borrow_mut().busy_next = 3;
    run(completes_all(&fake), dev.read(0, &mut buf)).unwrap();
    assert!(buf[..] == fake.borrow().disk[..8 * SECTOR], "buf does not hold the disk\'s bytes");

    // Completions trickling in one per wait.
    let trickle = {
        let fake = fake.clone();
        move || fake.borrow_mut().complete(1)
    };
    let mut big = vec![0u8; 40 * SECTOR];
    run(trickle, dev.read(3, &mut big)).unwrap();
    assert!(big[..] == fake.borrow().disk[3 * SECTOR..43 * SECTOR], "big does not hold the disk\'s bytes");
    assert_idle(&dev);
}

/// A poll with other arguments while a request runs (a caller polling by hand, without
/// `cancel`) also starts a new request.
#[test]
fn other_arguments_while_a_request_runs_start_a_new_request() {
    let (mut dev, fake) = device();
    let mut a = vec![0u8; 8 * SECTOR];
    in_block_on(|cx| assert!(dev.poll_read(cx, 0, &mut a).is_pending()));
    let mut b = vec![0u8; 8 * SECTOR];
    run(completes_all(&fake), core::future::poll_fn(|cx| dev.poll_read(cx, 8, &mut b))).unwrap();
    assert!(b[..] == fake.borrow().disk[8 * SECTOR..16 * SECTOR], "b does not hold the disk\'s bytes");
    assert_idle(&dev);
}

#[test]
fn a_failed_chunk_fails_the_request_and_the_next_one_starts_clean() {
    let (mut dev, fake) = device();
    fake.borrow_mut().bad_sector = Some(10);
    let mut buf = vec![0u8; 16 * SECTOR];
    let err = run(completes_all(&fake), dev.read(0, &mut buf)).unwrap_err();
    assert!(std::format!("{err}").contains("ukblkdev request failed: error 5"), "{err}");
    assert_idle(&dev);
    fake.borrow_mut().bad_sector = None;
    run(completes_all(&fake), dev.read(0, &mut buf)).unwrap();
    assert!(buf[..] == fake.borrow().disk[..16 * SECTOR], "buf does not hold the disk\'s bytes");
}

/// Polls `inner` until it is ready, or drops it (cancelling it) after `limit` pendings.
struct PollAtMost<F> {
    inner: Option<Pin<Box<F>>>,
    limit: Option<u64>,
}

impl<F: Future> Future for PollAtMost<F> {
    type Output = Option<F::Output>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(inner) = self.inner.as_mut() else { return Poll::Ready(None) };
        if let Poll::Ready(out) = inner.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        match self.limit.as_mut() {
            Some(0) => {
                self.inner = None;
                Poll::Ready(None)
            }
            Some(n) => {
                *n -= 1;
                Poll::Pending
            }
            None => Poll::Pending,
        }
    }
}

/// A small xorshift generator: the schedule is the same on every run.
#[derive(Clone)]
struct Rng(Rc<Cell<u64>>);

impl Rng {
    fn below(&self, n: u64) -> u64 {
        let mut x = self.0.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0.set(x);
        x % n.max(1)
    }
}

/// Random requests, cancels after random numbers of polls, random completion counts and
/// busy answers, against a model of the disk: every completed read returns what the model
/// says (bytes a cancelled write may or may not have reached are unknown until written
/// again), every wait is woken, and nothing leaks.
#[test]
fn random_schedules_agree_with_a_model_disk() {
    let rng = Rng(Rc::new(Cell::new(0x9e37_79b9_7f4a_7c15)));
    let (mut dev, fake) = device();
    let mut model: Vec<Option<u8>> = fake.borrow().disk.iter().map(|&b| Some(b)).collect();
    let interrupt = {
        let (fake, rng) = (fake.clone(), rng.clone());
        move || {
            let n = rng.below(4) as usize;
            fake.borrow_mut().complete(n)
        }
    };
    let body = async {
        for round in 0..500u64 {
            let sectors = 1 + rng.below(20) as usize;
            let lba = rng.below(SECTORS - sectors as u64 + 1);
            let range = lba as usize * SECTOR..(lba as usize + sectors) * SECTOR;
            let limit = if rng.below(3) == 0 { Some(rng.below(3)) } else { None };
            fake.borrow_mut().busy_next = rng.below(3) as u32;
            let fill = (round as u8).wrapping_mul(31) | 1;
            let data = vec![fill; range.len()];
            let mut buf = vec![0u8; range.len()];
            match rng.below(5) {
                0 | 1 => {
                    let done = PollAtMost { inner: Some(Box::pin(dev.write(lba, &data))), limit }.await;
                    if let Some(result) = done {
                        result.unwrap();
                        model[range].iter_mut().for_each(|b| *b = Some(fill));
                    } else {
                        // Maybe partly written: unknown until written again.
                        model[range].iter_mut().filter(|b| **b != Some(fill)).for_each(|b| *b = None);
                    }
                }
                2 => {
                    if let Some(result) = (PollAtMost { inner: Some(Box::pin(dev.flush())), limit }).await {
                        result.unwrap();
                    }
                }
                _ => {
                    let done = PollAtMost { inner: Some(Box::pin(dev.read(lba, &mut buf))), limit }.await;
                    if let Some(result) = done {
                        result.unwrap();
                        for (i, (got, want)) in buf.iter().zip(&model[range]).enumerate() {
                            assert!(want.is_none_or(|w| w == *got), "round {round}: byte {i} from sector {lba}");
                        }
                    }
                }
            }
        }
        // Whatever a last cancel left drains before this completes.
        dev.flush().await.unwrap();
    };
    run(interrupt, body);
    assert_idle(&dev);
}

/// Starts a 16-sector read (8 chunks in the device), gives it up, and drops the device.
fn drop_with_chunks_in_the_device(fake: &Rc<RefCell<Fake>>, mut dev: UkBlock<FakeQueue>) -> Vec<u8> {
    let mut buf = vec![0u8; 16 * SECTOR];
    assert!(poll_once_and_drop(dev.read(0, &mut buf)));
    assert_eq!(fake.borrow().running(), MAX_IN_FLIGHT, "the read's chunks are in the device");
    drop(dev);
    buf
}

/// The device writes a read chunk's data into its bounce buffer whenever it finishes it:
/// dropping the UkBlock must not free that buffer first (it used to, at once).
#[test]
fn dropping_the_device_waits_for_its_chunks_before_freeing_their_buffers() {
    let (dev, fake) = device();
    fake.borrow_mut().complete_at_pause = Some(3);
    drop_with_chunks_in_the_device(&fake, dev);
    let fake = fake.borrow();
    assert_eq!(fake.pauses, 3, "the drop waited for the device, and no longer than needed");
    assert_eq!(fake.running_at_close, Some(0), "the device was given back with every chunk finished");
}

/// A device that never finishes: the drop gives up after its wait and keeps the buffers,
/// so the device may still write into them (here it does, after the drop).
#[test]
fn a_device_that_never_finishes_keeps_the_buffers_of_its_chunks() {
    let (mut dev, fake) = device();
    dev.drop_wait = core::time::Duration::from_millis(20);
    drop_with_chunks_in_the_device(&fake, dev);
    assert!(fake.borrow().pauses > 0);
    assert_eq!(fake.borrow().running_at_close, Some(MAX_IN_FLIGHT), "given back with its chunks abandoned");
    // The late DMA: sound only because the bounce buffers were kept.
    fake.borrow_mut().complete_all();
    assert_eq!(fake.borrow().running(), 0);
}

/// Finding A15: a read awaited under another executor (tokio, say) registered for the
/// executor's wake-up that never came, and hung. It panics and says why instead.
#[test]
fn a_read_polled_by_another_executor_panics_instead_of_hanging() {
    let (mut dev, _fake) = device();
    let _turn = EXECUTOR.lock().unwrap_or_else(|e| e.into_inner());
    let mut buf = vec![0u8; 4 * SECTOR];
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut read = core::pin::pin!(dev.read(0, &mut buf));
        let _ = read.as_mut().poll(&mut Context::from_waker(core::task::Waker::noop()));
    }));
    let panic = outcome.expect_err("polling a read outside block_on must panic, not register a wake-up for nobody");
    let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("outside block_on") && msg.contains("tokio"), "{msg}");
}
