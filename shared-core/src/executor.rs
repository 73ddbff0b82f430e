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
//! The executor is single-threaded by design (unikernels have one core and no
//! preemption); its global state must only be touched from the thread that runs
//! `block_on`.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::task::Wake;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll, Waker};

use crate::services;

struct SingleThreaded<T>(T);
// SAFETY: the executor runs on one thread (see module docs); `block_on` asserts it is not
// re-entered, and the state is never handed to another thread.
unsafe impl<T> Sync for SingleThreaded<T> {}

#[derive(Default)]
struct State {
    running: bool,
    timers: BTreeMap<(u64, u64), Waker>,
    next_timer_id: u64,
    io_waiters: Vec<Waker>,
    io_generation: u64,
    spawned: Vec<Pin<Box<dyn Future<Output = ()>>>>,
}

static STATE: SingleThreaded<RefCell<Option<State>>> = SingleThreaded(RefCell::new(None));

fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> R {
    let mut guard = STATE.0.borrow_mut();
    f(guard.get_or_insert_with(State::default))
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
    with_state(|s| {
        assert!(!s.running, "block_on called from inside block_on");
        s.running = true;
    });
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
    with_state(|s| {
        // Leave nothing behind for the next block_on: dropped tasks' timers are gone too.
        s.running = false;
        s.spawned.clear();
        s.io_waiters.clear();
    });
    drop(tasks);
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
pub fn spawn(future: impl Future<Output = ()> + 'static) {
    with_state(|s| s.spawned.push(Box::pin(future)));
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
        let key = *self.timer.get_or_insert_with(|| {
            with_state(|s| {
                s.next_timer_id += 1;
                (deadline, s.next_timer_id)
            })
        });
        with_state(|s| s.timers.insert(key, cx.waker().clone()));
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
        if let Some(sleep) = self.sleep.as_mut() {
            if Pin::new(sleep).poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        self.generation = Some(current);
        with_state(|s| s.io_waiters.push(cx.waker().clone()));
        Poll::Pending
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
    use super::*;
    use crate::test_platform::{self, WAITS};
    use alloc::rc::Rc;
    use core::cell::Cell;

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

    #[test]
    fn wait_io_completes_after_a_backend_wait() {
        let _guard = test_platform::lock();
        let start = services::monotonic_ns();
        block_on(wait_io(None));
        block_on(wait_io(Some(start + 3_000_000)));
        assert!(services::monotonic_ns() >= start);
    }
}
