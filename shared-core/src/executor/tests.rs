//! The executor's unit tests: tasks, timers and I/O waits on the test platform, and the
//! single-thread checks raced from std threads.

extern crate std;

use super::*;
use crate::test_platform::{self, WAITS};
use alloc::rc::Rc;
use core::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};

std::thread_local! {
    /// Set on a thread whose every entry to the state should linger after taking the
    /// flag, where the owner check happens: the widest race window there is.
    static LINGER_IN_ENTER: Cell<bool> = const { Cell::new(false) };
}

/// Set while a lingering thread is inside that window.
static LINGERING: AtomicBool = AtomicBool::new(false);

/// Called by `enter` between taking the flag and checking the owner.
pub(super) fn hook_after_taking_the_flag() {
    if LINGER_IN_ENTER.with(Cell::get) {
        LINGERING.store(true, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn sleeps_wait_in_the_backend_until_the_deadline() {
    let _guard = test_platform::lock();
    let start = services::monotonic_ns();
    let waits_before = WAITS.with(|w| w.get());
    block_on(async {
        sleep_ms(5).await;
        sleep_ms(7).await;
    });
    let elapsed = services::monotonic_ns() - start;
    assert!(elapsed >= 12_000_000, "slept only {elapsed} ns");
    // Each sleep blocked once in wait_until instead of spinning.
    assert_eq!(WAITS.with(|w| w.get()) - waits_before, 2);
}

#[test]
fn spawned_tasks_interleave_by_deadline() {
    let _guard = test_platform::lock();
    let order = Rc::new(RefCell::new(Vec::new()));
    let done = Rc::new(Cell::new(0));
    block_on({
        let order = order.clone();
        let done = done.clone();
        async move {
            for (name, ms) in [("slow", 30u64), ("fast", 10), ("mid", 20)] {
                let order = order.clone();
                let done = done.clone();
                spawn(async move {
                    sleep_ms(ms).await;
                    order.borrow_mut().push(name);
                    done.set(done.get() + 1);
                });
            }
            while done.get() < 3 {
                sleep_ms(1).await;
            }
        }
    });
    assert_eq!(*order.borrow(), ["fast", "mid", "slow"]);
}

#[test]
fn dropped_sleep_removes_its_timer() {
    let _guard = test_platform::lock();
    block_on(async {
        let mut long = sleep_ms(1_000_000);
        let _ = core::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut long).poll(cx))).await;
        assert_eq!(with_state(|s| s.timers.len()), 1);
        drop(long);
        assert_eq!(with_state(|s| s.timers.len()), 0);
    });
}

/// Runs `f` on a new std thread and returns its panic message, if it panicked.
fn panic_on_a_thread(f: impl FnOnce() + Send + 'static) -> Option<std::string::String> {
    let err = std::thread::spawn(f).join().err()?;
    Some(match err.downcast::<std::string::String>() {
        Ok(text) => *text,
        Err(err) => err.downcast::<&str>().map(|s| (*s).into()).unwrap_or_default(),
    })
}

#[test]
fn a_second_thread_using_the_executor_while_block_on_runs_panics_clearly() {
    use std::sync::mpsc;
    let _guard = test_platform::lock();
    let (inside_tx, inside_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel::<Option<std::string::String>>();
    // The second thread waits until block_on runs on this one, then tries each entry point.
    let other = std::thread::spawn(move || {
        inside_rx.recv().unwrap();
        let spawn_msg = panic_on_a_thread(|| spawn(async {}));
        let sleep_msg = panic_on_a_thread(|| {
            let mut sleep = sleep_ms(1_000);
            let waker = Waker::from(Arc::new(WakeFlag(AtomicBool::new(false))));
            let _ = Pin::new(&mut sleep).poll(&mut Context::from_waker(&waker));
        });
        let block_on_msg = panic_on_a_thread(|| block_on(async {}));
        for msg in [&spawn_msg, &sleep_msg] {
            done_tx.send(msg.clone()).unwrap();
        }
        done_tx.send(block_on_msg).unwrap();
    });
    block_on(async {
        inside_tx.send(()).unwrap();
        // Stay inside block_on (as a running server would) until the other thread is done.
        other.join().unwrap();
    });
    for _ in 0..3 {
        let msg = done_rx.recv().unwrap().expect("using the executor from a second thread must panic");
        assert!(msg.contains("shared_core::executor is single-threaded"), "{msg}");
        assert!(msg.contains("block_on is running on another thread"), "{msg}");
        assert!(msg.contains("std::sync"), "the message names what to use instead: {msg}");
    }
    // The panics left the executor usable, on this thread ...
    block_on(sleep_ms(1));
}

#[test]
fn two_threads_touching_the_state_at_once_panic_instead_of_racing() {
    let _guard = test_platform::lock();
    // Holding the flag stands for "another thread is inside the state right now".
    STATE.in_use.store(true, Ordering::Release);
    let msg = panic_on_a_thread(|| drop(sleep_ms(1).poll_once_for_test()));
    STATE.in_use.store(false, Ordering::Release);
    let msg = msg.expect("a concurrent access must panic");
    assert!(msg.contains("single-threaded") && msg.contains("in use right now"), "{msg}");
}

#[test]
fn sequential_use_from_different_threads_works() {
    let _guard = test_platform::lock();
    for _ in 0..3 {
        let outcome = std::thread::spawn(|| {
            block_on(async {
                spawn(async { sleep_ms(2).await });
                sleep_ms(3).await;
                7
            })
        })
        .join()
        .expect("a block_on on a fresh thread after another thread's one is fine");
        assert_eq!(outcome, 7);
    }
    assert_eq!(block_on(async { 8 }), 8);
}

#[test]
fn spawn_outside_block_on_panics() {
    let _guard = test_platform::lock();
    let msg = panic_on_a_thread(|| spawn(async {})).expect("spawn outside block_on must panic");
    assert!(msg.contains("outside block_on"), "{msg}");
}

#[test]
fn block_on_inside_block_on_panics_and_the_executor_recovers() {
    let _guard = test_platform::lock();
    let msg = panic_on_a_thread(|| block_on(async { block_on(async {}) })).expect("nested block_on must panic");
    assert!(msg.contains("block_on called from inside block_on"), "{msg}");
    assert_eq!(block_on(async { 1 }), 1);
}

#[test]
fn wait_io_completes_after_a_backend_wait() {
    let _guard = test_platform::lock();
    let start = services::monotonic_ns();
    block_on(wait_io(None));
    block_on(wait_io(Some(start + 3_000_000)));
    assert!(services::monotonic_ns() >= start);
}

/// Finding A14: `spawn` used to check the owner before taking the flag, and `block_on`
/// claimed without the flag. So a spawn from thread B could pass its check while no
/// block_on ran, thread A's block_on could start, and B's (non-Send) future would end
/// up polled by A. Here B's spawn lingers right after it takes the flag, and A starts
/// a block_on meanwhile: B's spawn must fail, and A must never poll B's future.
#[test]
fn a_spawn_racing_a_starting_block_on_never_reaches_it() {
    use std::sync::atomic::AtomicU32;
    static POLLED: AtomicU32 = AtomicU32::new(0);
    let _guard = test_platform::lock();
    LINGERING.store(false, Ordering::SeqCst);
    let b_done = Arc::new(AtomicBool::new(false));
    let racer = std::thread::spawn({
        let b_done = b_done.clone();
        move || {
            LINGER_IN_ENTER.with(|l| l.set(true));
            let spawned = catch_unwind(|| {
                spawn(async {
                    POLLED.fetch_add(1, Ordering::SeqCst);
                })
            });
            b_done.store(true, Ordering::SeqCst);
            spawned.is_ok()
        }
    });
    while !LINGERING.load(Ordering::SeqCst) && !b_done.load(Ordering::SeqCst) {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    if LINGERING.load(Ordering::SeqCst) {
        // B is inside its check: start a block_on that outlives B's spawn.
        let _ = catch_unwind(AssertUnwindSafe(|| {
            block_on(async {
                while !b_done.load(Ordering::SeqCst) {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                yield_now().await;
                yield_now().await;
            })
        }));
    }
    let spawned = racer.join().unwrap();
    assert!(!spawned, "a spawn from a thread without block_on was accepted");
    assert_eq!(POLLED.load(Ordering::SeqCst), 0, "block_on polled another thread's future");
    assert_eq!(block_on(async { 3 }), 3, "the executor is usable afterwards");
}

/// Polls `future` once with a waker that goes nowhere, as another executor would.
fn poll_elsewhere<F: Future>(future: F) -> Poll<F::Output> {
    let mut future = core::pin::pin!(future);
    future.as_mut().poll(&mut Context::from_waker(Waker::noop()))
}

/// Finding A15: a shared-core future under another executor (tokio, say) registered a
/// waker nothing would ever wake, and hung. Now it panics and says why.
#[test]
fn sleeps_and_io_waits_polled_by_another_executor_panic_instead_of_hanging() {
    let _guard = test_platform::lock();
    let sleep_msg = panic_on_a_thread(|| {
        let _ = poll_elsewhere(sleep_ms(10));
    })
    .expect("a sleep outside block_on");
    let wait_msg = panic_on_a_thread(|| {
        let _ = poll_elsewhere(wait_io(None));
    })
    .expect("a wait_io outside block_on");
    let timed_msg = panic_on_a_thread(|| {
        let _ = poll_elsewhere(wait_io(Some(services::monotonic_ns() + 1_000_000)));
    })
    .expect("a timed wait_io outside block_on");
    for msg in [&sleep_msg, &wait_msg, &timed_msg] {
        assert!(msg.contains("outside block_on") && msg.contains("tokio"), "{msg}");
    }
    assert!(sleep_msg.contains("a sleep"), "{sleep_msg}");
    assert!(wait_msg.contains("wait_io") && timed_msg.contains("wait_io"), "{wait_msg} / {timed_msg}");
    // A sleep already due completes anywhere: it needs no wake-up.
    assert!(poll_elsewhere(sleep_until(0)).is_ready());
    // The panics left nothing behind.
    block_on(sleep_ms(1));
    assert_eq!(with_state(|s| s.timers.len() + s.io_waiters.len()), 0);
}
