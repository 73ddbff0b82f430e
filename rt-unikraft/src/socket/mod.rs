//! std's sockets on Unikraft: an AF_INET driver for Unikraft's posix-socket, over
//! shared-core's smoltcp [`Stack`](shared_core::net::Stack) on the uknetdev device.
//!
//! With `sockets = true` (and `devices = ["net"]`) in an app's
//! `[package.metadata.unikraft]`, musl's `socket`, `bind`, `accept4`, `connect`,
//! `sendto`/`recvfrom`/`sendmsg`/`recvmsg`, `getsockopt`/`setsockopt`, `shutdown`,
//! `getsockname`/`getpeername` reach posix-socket, which calls this driver through the
//! C trampolines of `glue/socket.c` (the `rtuk_sock_*` functions below). So `std::net`,
//! mio and tokio work unchanged. See docs/unikraft.md#sockets.
//!
//! * [`table`]: every socket, the stack, one lock; [`thread`]: the network thread that
//!   owns the NIC, started by the first `socket()`; [`readiness`]: the poll events of
//!   each socket file, which posix-socket blocks on and epoll watches;
//! * [`entry`]: the C edge, the only place that turns C pointers and lengths into Rust
//!   values (bounded as Linux bounds them) and each op's [`Errno`] into `-errno`;
//!   [`errno`]: that error type;
//! * [`tcp`], [`udp`], [`options`]: the ops; [`backlog`]: a listener's sockets under
//!   bursts and floods; [`addr`]: `sockaddr_in`; [`config`]: the address (netdev.ip,
//!   `RT_UNIKRAFT_IPV4`, or 10.0.0.2/24).
//!
//! Every op runs on the calling app thread, under the table's lock, and never blocks:
//! `-EAGAIN` (or `-EINPROGRESS`) makes posix-socket wait on the file's events, which
//! the op itself or the network thread raises when things change. An op that queued
//! something to send (data, a FIN, a SYN, a window update) kicks the network thread,
//! which transmits it at its next poll.

pub mod addr;
pub mod backlog;
pub mod config;
pub mod entry;
pub mod errno;
pub mod loopback;
pub mod options;
pub mod readiness;
pub mod table;
pub mod tcp;
pub mod thread;
pub mod udp;

#[cfg(test)]
mod tests;

pub use errno::Errno;
use shared_core::services;

pub use table::deadline_after;
use table::{lock, Net};

/// The buffers of a message being sent.
pub struct Bufs<'a>(std::vec::Vec<&'a [u8]>);

impl Bufs<'_> {
    /// Their total length.
    pub fn total(&self) -> usize {
        self.0.iter().map(|b| b.len()).sum()
    }

    /// Each buffer.
    pub fn iter(&self) -> impl Iterator<Item = &&[u8]> {
        self.0.iter()
    }
}

/// The buffers a message is received into.
pub struct BufsMut<'a>(std::vec::Vec<&'a mut [u8]>);

impl<'a> BufsMut<'a> {
    /// Their total length.
    pub fn total(&self) -> usize {
        self.0.iter().map(|b| b.len()).sum()
    }

    /// Each buffer.
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, &'a mut [u8]> {
        self.0.iter_mut()
    }

    /// Copies as much of `data` as fits, buffer after buffer; returns how much.
    pub fn fill_from(&mut self, mut data: &[u8]) -> usize {
        let mut copied = 0;
        for buf in self.0.iter_mut() {
            let n = buf.len().min(data.len());
            buf[..n].copy_from_slice(&data[..n]);
            copied += n;
            data = &data[n..];
            if data.is_empty() {
                break;
            }
        }
        copied
    }
}

/// Runs an op on the table, then refreshes the socket's events and, with `kick`, wakes
/// the network thread to send what the op queued.
pub(crate) fn with_net<T>(id: u64, kick: bool, f: impl FnOnce(&mut Net) -> Result<T, Errno>) -> Result<T, Errno> {
    let mut guard = lock();
    let net = guard.as_mut().ok_or(Errno::EBADF)?;
    let result = f(net);
    readiness::refresh(net, id);
    drop(guard);
    if kick {
        thread::kick();
    }
    result
}

/// Applies `SO_RCVTIMEO` (`recv`) or `SO_SNDTIMEO` to an op's result: a `-EAGAIN` arms
/// the deadline (the network thread marks it passed and raises the event), and once it
/// passed the op fails with `-ETIMEDOUT` (posix-socket would wait again on `-EAGAIN`).
pub(crate) fn timed<T>(net: &mut Net, id: u64, recv: bool, result: Result<T, Errno>) -> Result<T, Errno> {
    let Some(sock) = net.socks.get_mut(&id) else { return result };
    let (timeout, deadline, timed_out) = if recv {
        (sock.opts.rcv_timeout, &mut sock.recv_deadline, &mut sock.recv_timed_out)
    } else {
        (sock.opts.snd_timeout, &mut sock.send_deadline, &mut sock.send_timed_out)
    };
    match result {
        Err(e) if e == Errno::EAGAIN => {
            if *timed_out {
                *timed_out = false;
                return Err(Errno::ETIMEDOUT);
            }
            if let (Some(timeout), None) = (timeout, *deadline) {
                *deadline = Some(deadline_after(services::monotonic_ns(), timeout));
                // The network thread's sleep must end at the new deadline.
                thread::kick();
            }
            Err(e)
        }
        other => {
            *deadline = None;
            *timed_out = false;
            other
        }
    }
}
