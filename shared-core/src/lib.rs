//! `shared-core`: what every backend provides and every app uses.
//!
//! The crate is `no_std` + `alloc` so the same app code runs on a hosted Linux process
//! (`rt-unix`), on Unikraft and on solo5. It holds four seams:
//!
//! * [`services`] — clocks, random bytes, console, exit, boot arguments and the idle wait,
//!   as plain functions resolved **at link time** to exactly one backend (see that module
//!   for how "zero or two backends" becomes a compile-time error).
//! * [`net`] — a ring-shaped network device interface over a fixed pool of packet buffers,
//!   and [`net::RingPhy`], which lends those buffers to smoltcp without copying.
//! * [`block`] — a block device trait usable from async code, and layers that stack on any
//!   block device (an MBR partition view).
//! * [`executor`] — a single-threaded executor with timers that sleeps in the backend's
//!   wait hook when nothing is ready.
//!
//! [`bootargs`] parses `--key=value` boot arguments the same way on every backend.
#![no_std]
#![warn(missing_docs)]

extern crate alloc;

pub mod block;
pub mod bootargs;
pub mod console;
pub mod executor;
pub mod heap;
pub mod net;
pub mod services;

#[cfg(test)]
mod test_platform;
#[cfg(any(test, feature = "test-utils"))]
pub mod testing;

pub use smoltcp;

#[doc(hidden)]
pub extern crate alloc as __alloc;
