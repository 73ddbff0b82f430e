//! Timers and I/O waits: the futures that complete when the executor's clock or the
//! backend's wait says so ([`sleep_until`], [`wait_io`]).

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use super::state::{state_for, with_state, Need};
use crate::services;

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
    pub(super) fn poll_once_for_test(mut self) -> Self {
        use alloc::sync::Arc;
        use core::sync::atomic::AtomicBool;
        use core::task::Waker;
        let waker = Waker::from(Arc::new(super::WakeFlag(AtomicBool::new(false))));
        let _ = Pin::new(&mut self).poll(&mut Context::from_waker(&waker));
        self
    }
}
