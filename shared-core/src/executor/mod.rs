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
use alloc::sync::Arc;
use alloc::task::Wake;
use alloc::vec::Vec;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll, Waker};

use crate::services;

mod state;
#[cfg(test)]
mod tests;
mod timers;

#[cfg(test)]
use state::STATE;
use state::{state_for, with_state, Need, Owner};
pub use timers::{sleep_ms, sleep_ns, sleep_until, wait_io, Sleep, WaitIo};

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
