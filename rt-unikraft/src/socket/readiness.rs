//! Each socket's poll events, computed from its state and given to its file.
//!
//! posix-socket blocks a thread on a socket file's poll queue (EPOLLIN for accept and
//! reads, EPOLLOUT for writes and connect) whenever an op says `-EAGAIN`, and epoll (mio,
//! tokio) watches the same queue. So the events must be exact at all times:
//!
//! * an event left set while the op would still say `-EAGAIN` makes posix-socket retry at
//!   once, for ever, and on Unikraft's cooperative scheduler nothing else runs;
//! * an event never raised leaves a thread asleep for good. posix-socket's waits do not
//!   include EPOLLERR/EPOLLHUP, so a peer's FIN or reset raises EPOLLIN (reads return 0 or
//!   the error), and a failed connect raises EPOLLOUT (its waiter then reads `SO_ERROR`).
//!
//! Events are recomputed after every op on the socket (by the app's thread) and for every
//! socket after every poll of the stack (by the network thread), always under the
//! table's lock and from thread context, never from the device interrupt. A file gets
//! the events through the glue's `rtuk_sock_event_assign`, only when they changed, so
//! epoll's edge-triggered waiters see one edge per change.

use smoltcp::iface::SocketSet;
use smoltcp::socket::{tcp, udp};

use super::table::{Kind, Net, Sock, Tcp};
use crate::glue;

/// Readable: EPOLLIN and EPOLLRDNORM, as Linux sets them together.
pub const IN: u32 = (libc::EPOLLIN | libc::EPOLLRDNORM) as u32;
/// Writable.
pub const OUT: u32 = (libc::EPOLLOUT | libc::EPOLLWRNORM) as u32;
/// An error is pending (`SO_ERROR`).
pub const ERR: u32 = libc::EPOLLERR as u32;
/// Both directions are closed.
pub const HUP: u32 = libc::EPOLLHUP as u32;
/// The peer closed its side (FIN received).
pub const RDHUP: u32 = libc::EPOLLRDHUP as u32;

/// Whether a connection in this state has received the peer's FIN (or is over).
pub fn fin_received(state: tcp::State) -> bool {
    use tcp::State::*;
    matches!(state, CloseWait | LastAck | Closing | TimeWait | Closed)
}

/// Whether a connection in `LISTEN`'s backlog has completed its handshake and can be
/// accepted.
pub fn acceptable(state: tcp::State) -> bool {
    use tcp::State::*;
    matches!(state, Established | CloseWait)
}

/// The events `sock` should show now.
pub fn events_of(sockets: &SocketSet<'_>, sock: &Sock) -> u32 {
    let mut events = 0;
    if sock.error.is_some() {
        events |= ERR;
    }
    match &sock.kind {
        // Linux: an unconnected stream socket is writable and hung up.
        Kind::Tcp(Tcp::Fresh) => events |= OUT | HUP,
        Kind::Tcp(Tcp::Listening(listener)) => {
            // After `shutdown`, `accept` fails at once: a blocked one must wake to see it.
            if listener.shut || listener.sockets.iter().any(|&h| acceptable(sockets.get::<tcp::Socket>(h).state())) {
                events |= IN;
            }
        }
        Kind::Tcp(Tcp::Stream(stream)) => {
            let socket = sockets.get::<tcp::Socket>(stream.handle);
            if stream.connecting.is_some() {
                // Nothing until the handshake ends; a failure arrives as `broken` + error.
            } else if stream.broken {
                events |= IN | OUT | HUP | RDHUP;
            } else {
                let fin = fin_received(socket.state());
                if socket.can_recv() || fin || stream.rd_shut {
                    events |= IN;
                }
                if fin || stream.rd_shut {
                    events |= RDHUP;
                }
                // After our own FIN a write fails at once (EPIPE), which is "writable".
                if socket.can_send() || stream.wr_shut || !socket.may_send() {
                    events |= OUT;
                }
                if (stream.wr_shut || !socket.may_send()) && (fin || stream.rd_shut) {
                    events |= HUP;
                }
            }
        }
        Kind::Udp(udp) => {
            let socket = sockets.get::<udp::Socket>(udp.handle);
            if socket.can_recv() {
                events |= IN;
            }
            if super::udp::writable(udp) {
                events |= OUT;
            }
        }
    }
    // A read or write whose SO_RCVTIMEO/SO_SNDTIMEO passed must wake up to report it.
    if sock.recv_timed_out {
        events |= IN;
    }
    if sock.send_timed_out {
        events |= OUT;
    }
    if sock.error.is_some() {
        // Whoever waits (a blocked read, write or connect) must wake up to see the error.
        events |= IN | OUT;
    }
    events
}

/// Gives `sock`'s file `events`, if it has a file and they changed. (Before
/// posix-socket created the file, `sock.events` stays 0: a new file starts with none.)
pub fn push(sock: &mut Sock, events: u32) {
    let Some(file) = sock.file else { return };
    if sock.events == events {
        return;
    }
    sock.events = events;
    // SAFETY: the file is alive while its socket is in the table (`close` removes it
    // first), and this runs in thread context under the table's lock.
    unsafe { glue::rtuk_sock_event_assign(file.0, events) };
}

/// Recomputes and pushes one socket's events.
pub fn refresh(net: &mut Net, id: u64) {
    if let Some(sock) = net.socks.get_mut(&id) {
        let events = events_of(&net.stack.sockets, sock);
        push(sock, events);
    }
}

/// Recomputes and pushes every socket's events.
pub fn refresh_all(net: &mut Net) {
    let sockets = &net.stack.sockets;
    for sock in net.socks.values_mut() {
        let events = events_of(sockets, sock);
        push(sock, events);
    }
}
