//! The executor's global state and the checks that keep it on one thread: the "in use"
//! flag every access holds, and the owner (the thread whose `block_on` runs).

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use core::task::Waker;

use crate::services;

/// The executor's global state, usable from one thread at a time.
///
/// `in_use` is held (set) for every borrow of `state`, and `owner` names the thread whose
/// `block_on` is running (0: none). What stops a race is the panic, not waiting: a second
/// thread never blocks on the flag, so a single-threaded unikernel cannot deadlock on it.
pub(super) struct SingleThreaded {
    state: RefCell<Option<State>>,
    pub(super) in_use: AtomicBool,
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

pub(super) const SINGLE_THREADED: &str = "shared_core::executor is single-threaded: it was used from two threads at \
     once. Run block_on, spawn, sleep and wait_io on one thread; from other threads use \
     std::sync (channels, Mutex) to talk to it, or std::net sockets instead of the \
     shared-core Stack";

#[derive(Default)]
pub(super) struct State {
    pub(super) timers: BTreeMap<(u64, u64), Waker>,
    pub(super) next_timer_id: u64,
    pub(super) io_waiters: Vec<Waker>,
    pub(super) io_generation: u64,
    pub(super) spawned: Vec<Pin<Box<dyn Future<Output = ()>>>>,
}

pub(super) static STATE: SingleThreaded =
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
pub(super) enum Need {
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
    super::tests::hook_after_taking_the_flag();
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

pub(super) fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> R {
    state_for(Need::NoOtherOwner, f)
}

pub(super) fn state_for<R>(need: Need, f: impl FnOnce(&mut State) -> R) -> R {
    let _in_use = enter(need);
    let mut guard = STATE.state.borrow_mut();
    f(guard.get_or_insert_with(State::default))
}

/// Ownership of the executor by the thread running `block_on`; given back on return and
/// on unwinding, so a later `block_on` (on any thread) can run.
pub(super) struct Owner;

impl Owner {
    pub(super) fn claim() -> Owner {
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
