//! A single-threaded async executor with timers that sleeps in the backend when idle.
//!
//! [`block_on`] runs one future (and whatever it [`spawn`]s) to completion. Each turn it
//! polls the tasks that were woken; when none is, it fires due timers, and when no timer
//! is due either it calls [`services::wait_until`](crate::services::wait_until) with the
//! earliest timer as the deadline. The backend blocks there — in `poll(2)`, in Unikraft's
//! scheduler, in `solo5_yield` — until a device has an event or the deadline passes, so an
//! idle program uses no CPU.
//!
//! Device code waits for "something may have happened on a device" with [`wait_io`]:
//! every return from the backend's wait wakes all such waiters, which then re-check their
//! devices (a network task re-polls its `Interface`). This is coarse but correct, and keeps
//! the backend contract to one function.
//!
//! # One thread
//!
//! The executor is single-threaded by design (unikernels have one core and no
//! preemption). Its state is global, so this is checked at run time rather than trusted:
//!
//! * while [`block_on`] runs, it owns the executor for its thread (identified by the
//!   backend's [`services::thread_id`]); [`spawn`], [`sleep_until`], [`wait_io`] or a second
//!   `block_on` from any other thread panics with a message that says so;
//! * [`spawn`], and a poll of a [`Sleep`] or [`WaitIo`] that is not complete yet, panic
//!   outside `block_on` too: polled by another executor (tokio, say), nothing would ever
//!   wake them, and they would hang. So do the device futures built on them (rt-unikraft's
//!   `UkBlock` reads and writes, the encrypted layer over it, the `Stack`'s waits);
//! * every access to the state holds an "in use" flag, taken *before* the owner is
//!   checked, and `block_on` takes it too while it claims the executor: a thread cannot
//!   pass the check and then find that another thread's `block_on` started meanwhile.
//!   Two threads that touch the state at once get a panic instead of a data race.
//!
//! Using it from one thread after another (a `block_on` on thread A, then one on thread
//! B) is fine. On std backends, other threads talk to the executor's thread through
//! `std::sync` (channels, `Mutex`) instead, or use `std::net` (the socket layer of
//! rt-unikraft, where the NIC belongs to its network thread, not to this executor).

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::task::Wake;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use core::task::{Context, Poll, Waker};

use crate::services;

/// The executor's global state, usable from one thread at a time.
///
/// `in_use` is held (set) for every borrow of `state`, and `owner` names the thread whose
/// `block_on` is running (0: none). What stops a race is the panic, not waiting: a second
/// thread never blocks on the flag, so a single-threaded unikernel cannot deadlock on it.
struct SingleThreaded {
    state: RefCell<Option<State>>,
    in_use: AtomicBool,
    owner: AtomicUsize,
}
// SAFETY: `state` is only borrowed while `in_use` is held (`enter`, `Owner::claim`,
// `Owner::drop`), which is taken with an atomic swap that panics when it was already set,
// so no two threads ever borrow the RefCell at once. Its non-`Send` content (spawned
// futures, wakers) is only added on the owning thread: `spawn` checks, while holding the
// flag, that the caller's own `block_on` owns the executor, and `block_on` sets the owner
// only while holding the flag, so no check can go stale before its use. The owner's
// `block_on` polls them and, on its way out, drops what is left (waiting out another
// thread's brief hold of the flag), so a future never moves to another thread.
unsafe impl Sync for SingleThreaded {}

const SINGLE_THREADED: &str = "shared_core::executor is single-threaded: it was used from two threads at \
     once. Run block_on, spawn, sleep and wait_io on one thread; from other threads use \
     std::sync (channels, Mutex) to talk to it, or std::net sockets instead of the \
     shared-core Stack";

#[derive(Default)]
struct State {
    timers: BTreeMap<(u64, u64), Waker>,
    next_timer_id: u64,
    io_waiters: Vec<Waker>,
    io_generation: u64,
    spawned: Vec<Pin<Box<dyn Future<Output = ()>>>>,
}

static STATE: SingleThreaded =
    SingleThreaded { state: RefCell::new(None), in_use: AtomicBool::new(false), owner: AtomicUsize::new(0) };

/// Releases the "in use" flag, also when `f` panics.
struct InUse;

impl Drop for InUse {
    fn drop(&mut self) {
        STATE.in_use.store(false, Ordering::Release);
    }
}

/// Who may use the state in [`enter`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Any thread while no `block_on` runs, and the owner's thread while one does.
    NoOtherOwner,
    /// Only the thread whose `block_on` runs; `panic` says why not, when it does not.
    Owner { panic: &'static str },
}

/// Takes the "in use" flag, then checks the owner: the order that leaves no window
/// between the check and the use (see `SingleThreaded`).
fn enter(need: Need) -> InUse {
    if STATE.in_use.swap(true, Ordering::Acquire) {
        panic!("{SINGLE_THREADED} (its state is in use right now)");
    }
    let in_use = InUse;
    #[cfg(test)]
    tests::hook_after_taking_the_flag();
    let owner = STATE.owner.load(Ordering::Acquire);
    let me = services::thread_id();
    if owner != 0 && owner != me {
        drop(in_use);
        panic!("{SINGLE_THREADED} (block_on is running on another thread)");
    }
    if let Need::Owner { panic } = need {
        if owner != me {
            drop(in_use);
            panic!("{panic}");
        }
    }
    in_use
}

fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> R {
    state_for(Need::NoOtherOwner, f)
}

fn state_for<R>(need: Need, f: impl FnOnce(&mut State) -> R) -> R {
    let _in_use = enter(need);
    let mut guard = STATE.state.borrow_mut();
    f(guard.get_or_insert_with(State::default))
}

/// Ownership of the executor by the thread running `block_on`; given back on return and
/// on unwinding, so a later `block_on` (on any thread) can run.
struct Owner;

impl Owner {
    fn claim() -> Owner {
        let me = services::thread_id();
        assert_ne!(me, 0, "the backend's thread_id must not be 0");
        // Under the flag, so no other thread is between its owner check and its use.
        let in_use = enter(Need::NoOtherOwner);
        let claimed = STATE.owner.compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire);
        drop(in_use);
        match claimed {
            Ok(_) => Owner,
            Err(owner) if owner == me => panic!("block_on called from inside block_on"),
            Err(_) => panic!("{SINGLE_THREADED} (block_on is running on another thread)"),
        }
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        // Leave nothing behind for the next block_on (which may run on another thread):
        // spawned futures are dropped here, on their own thread. Another thread can hold
        // the flag only for its owner check, which fails and lets go at once (it never
        // blocks or yields while holding it), so waiting for it ends; no panic here, so
        // never a second one while unwinding.
        while STATE.in_use.swap(true, Ordering::Acquire) {
            core::hint::spin_loop();
        }
        let in_use = InUse;
        let left = STATE
            .state
            .borrow_mut()
            .as_mut()
            .map(|s| (core::mem::take(&mut s.spawned), core::mem::take(&mut s.io_waiters)));
        STATE.owner.store(0, Ordering::Release);
        drop(in_use);
        drop(left);
    }
}

/// Set by a task's waker; the executor polls tasks whose flag is set.
struct WakeFlag(AtomicBool);

impl Wake for WakeFlag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }
}

struct Task {
    future: Pin<Box<dyn Future<Output = ()>>>,
    flag: Arc<WakeFlag>,
    waker: Waker,
}

impl Task {
    fn new(future: Pin<Box<dyn Future<Output = ()>>>) -> Self {
        let flag = Arc::new(WakeFlag(AtomicBool::new(true)));
        let waker = Waker::from(flag.clone());
        Task { future, flag, waker }
    }
}

/// Runs `future` to completion, along with tasks spawned meanwhile. Tasks still pending
/// when `future` completes are dropped.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let owner = Owner::claim();
    let mut main = core::pin::pin!(future);
    let main_flag = Arc::new(WakeFlag(AtomicBool::new(true)));
    let main_waker = Waker::from(main_flag.clone());
    let mut tasks: Vec<Task> = Vec::new();
    let output = loop {
        if main_flag.0.swap(false, Ordering::Acquire) {
            if let Poll::Ready(out) = main.as_mut().poll(&mut Context::from_waker(&main_waker)) {
                break out;
            }
        }
        tasks.extend(with_state(|s| core::mem::take(&mut s.spawned)).into_iter().map(Task::new));
        tasks.retain_mut(|task| {
            if !task.flag.0.swap(false, Ordering::Acquire) {
                return true;
            }
            task.future.as_mut().poll(&mut Context::from_waker(&task.waker)).is_pending()
        });
        let anything_woken = main_flag.0.load(Ordering::Acquire)
            || tasks.iter().any(|t| t.flag.0.load(Ordering::Acquire))
            || with_state(|s| !s.spawned.is_empty());
        if anything_woken {
            continue;
        }
        if fire_due_timers(services::monotonic_ns()) {
            continue;
        }
        let deadline = with_state(|s| s.timers.keys().next().map(|&(d, _)| d));
        services::wait_until(deadline);
        let waiters = with_state(|s| {
            s.io_generation += 1;
            core::mem::take(&mut s.io_waiters)
        });
        waiters.into_iter().for_each(Waker::wake);
        fire_due_timers(services::monotonic_ns());
    };
    drop(tasks);
    drop(owner);
    output
}

fn fire_due_timers(now: u64) -> bool {
    let due: Vec<Waker> = with_state(|s| {
        let later = s.timers.split_off(&(now.saturating_add(1), 0));
        let due = core::mem::replace(&mut s.timers, later);
        due.into_values().collect()
    });
    let fired = !due.is_empty();
    due.into_iter().for_each(Waker::wake);
    fired
}

/// Runs `future` concurrently with the others, on the current [`block_on`].
///
/// # Panics
///
/// Outside a `block_on` (the future could otherwise be polled later by another thread's
/// `block_on`), and on a thread other than the one running `block_on`.
pub fn spawn(future: impl Future<Output = ()> + 'static) {
    let panic = "shared_core::executor::spawn called outside block_on: spawn from a task that block_on runs";
    state_for(Need::Owner { panic }, |s| s.spawned.push(Box::pin(future)));
}

/// Why a shared-core future that needs a wake-up panics outside `block_on`.
macro_rules! polled_outside_block_on {
    ($what:literal) => {
        concat!(
            "shared_core::executor: ",
            $what,
            " polled outside block_on: shared-core's futures (sleep, wait_io, and the device I/O built on \
             them, such as rt-unikraft's block reads) only complete under shared_core::executor::block_on, \
             never under another executor (tokio, ...), where nothing would ever wake them; run them with \
             block_on, or use that executor's own timers and I/O"
        )
    };
}

/// Completes at or after the monotonic time `deadline_ns`.
pub fn sleep_until(deadline_ns: u64) -> Sleep {
    Sleep { deadline_ns, timer: None }
}

/// Completes after `ns` nanoseconds.
pub fn sleep_ns(ns: u64) -> Sleep {
    sleep_until(services::monotonic_ns().saturating_add(ns))
}

/// Completes after `ms` milliseconds.
pub fn sleep_ms(ms: u64) -> Sleep {
    sleep_ns(ms.saturating_mul(1_000_000))
}

/// The future returned by [`sleep_until`].
pub struct Sleep {
    deadline_ns: u64,
    timer: Option<(u64, u64)>,
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if services::monotonic_ns() >= self.deadline_ns {
            if let Some(key) = self.timer.take() {
                with_state(|s| s.timers.remove(&key));
            }
            return Poll::Ready(());
        }
        let deadline = self.deadline_ns;
        let need = Need::Owner { panic: polled_outside_block_on!("a sleep (executor::sleep_until, sleep_ms, ...)") };
        let key = *self.timer.get_or_insert_with(|| {
            state_for(need, |s| {
                s.next_timer_id += 1;
                (deadline, s.next_timer_id)
            })
        });
        state_for(need, |s| s.timers.insert(key, cx.waker().clone()));
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.timer.take() {
            with_state(|s| s.timers.remove(&key));
        }
    }
}

/// Completes after the backend's next wait returns (a device may have an event), or at
/// the monotonic `deadline_ns`, whichever is first.
pub fn wait_io(deadline_ns: Option<u64>) -> WaitIo {
    WaitIo { generation: None, sleep: deadline_ns.map(sleep_until) }
}

/// The future returned by [`wait_io`].
pub struct WaitIo {
    generation: Option<u64>,
    sleep: Option<Sleep>,
}

impl Future for WaitIo {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let current = with_state(|s| s.io_generation);
        if self.generation.is_some_and(|g| current > g) {
            return Poll::Ready(());
        }
        // Registered first, so a poll outside block_on panics as wait_io's own (a waiter
        // left when the sleep below is due only wakes its task once more).
        let need = Need::Owner { panic: polled_outside_block_on!("executor::wait_io (device I/O)") };
        state_for(need, |s| s.io_waiters.push(cx.waker().clone()));
        if let Some(sleep) = self.sleep.as_mut() {
            if Pin::new(sleep).poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        self.generation = Some(current);
        Poll::Pending
    }
}

#[cfg(test)]
impl Sleep {
    /// Polls once with a no-op waker (tests: registers the timer).
    fn poll_once_for_test(mut self) -> Self {
        let waker = Waker::from(Arc::new(WakeFlag(AtomicBool::new(false))));
        let _ = Pin::new(&mut self).poll(&mut Context::from_waker(&waker));
        self
    }
}

/// Yields once, letting other woken tasks run.
pub async fn yield_now() {
    let mut yielded = false;
    core::future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::test_platform::{self, WAITS};
    use alloc::rc::Rc;
    use core::cell::Cell;
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
}
