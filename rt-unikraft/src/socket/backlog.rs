//! A listener's sockets between two polls: re-listening, spares, and half-open
//! connections, so that neither a burst nor a spoofed SYN flood can deafen a listener.
//!
//! smoltcp has no SYN queue: a SYN takes a socket in `LISTEN` into `SYN-RECEIVED`, and a
//! SYN that finds none is refused. A spoofed SYN's SYN-ACK goes nowhere, so without a
//! limit its socket would stay half-open for good (smoltcp has no timeout by default),
//! and a few hundred forged SYNs would leave no socket listening. So, at each look:
//!
//! * a socket back in `CLOSED` (its connection reset before `accept`) listens again;
//! * a half-open connection older than [`SYN_RECEIVED_TIMEOUT`] is dropped silently and
//!   its socket listens again (a reset to a forged source is wasted, and may never leave),
//!   renewed ([`renew_listening`]) so that nothing of its forged peer stays with it;
//! * the listener keeps [`LISTEN_SPARE`] sockets listening (or its whole backlog, if
//!   smaller), [`LISTEN_SPARE_UNDER_PRESSURE`] while it holds half-open connections,
//!   adding sockets up to [`LISTEN_SOCKETS_MAX`]; at that bound it recycles the oldest
//!   half-open connections (past [`HALF_OPEN_GRACE`], so a real client's ACK has time to
//!   arrive) to get its spares back;
//! * once the burst is over, sockets beyond the backlog go.
//!
//! A SYN that still finds no socket listening is dropped, not refused: the listener's
//! port is quiet on the stack ([`shared_core::net::QuietPorts`]), so the client
//! retransmits it, as it would against Linux with a full queue.

use shared_core::net::renew_listening;
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::wire::IpListenEndpoint;

use super::table::{
    deadline_after, Listener, HALF_OPEN_GRACE, LISTEN_SOCKETS_MAX, LISTEN_SPARE, LISTEN_SPARE_UNDER_PRESSURE,
    SYN_RECEIVED_TIMEOUT,
};

/// Looks at `listener`'s sockets after a poll (see the module docs); returns how many
/// sockets to add in `LISTEN` on `endpoint` (the caller creates them: that needs the
/// table).
pub fn maintain(
    sockets: &mut SocketSet<'static>,
    listener: &mut Listener,
    endpoint: IpListenEndpoint,
    now: u64,
) -> usize {
    let mut listening = 0;
    for handle in listener.sockets.iter_mut() {
        let socket = sockets.get_mut::<tcp::Socket>(*handle);
        match socket.state() {
            tcp::State::Closed => {
                // A connection reset before it was accepted: listen again.
                listener.half_open.remove(handle);
                *handle = renew_listening(sockets, *handle, endpoint);
            }
            tcp::State::SynReceived => {
                let since = *listener.half_open.entry(*handle).or_insert(now);
                if now >= deadline_after(since, SYN_RECEIVED_TIMEOUT) {
                    listener.half_open.remove(handle);
                    *handle = renew_listening(sockets, *handle, endpoint);
                }
            }
            _ => {
                listener.half_open.remove(handle);
            }
        }
        listening += usize::from(sockets.get::<tcp::Socket>(*handle).state() == tcp::State::Listen);
    }
    let under_pressure = !listener.half_open.is_empty();
    let spares = if under_pressure { LISTEN_SPARE_UNDER_PRESSURE } else { LISTEN_SPARE.min(listener.backlog) };
    if listening < spares {
        let room = LISTEN_SOCKETS_MAX.saturating_sub(listener.sockets.len());
        let missing = spares - listening;
        if room >= missing {
            return missing;
        }
        // At the bound: recycle the oldest half-open connections for the rest.
        recycle_oldest(sockets, listener, endpoint, missing - room, now);
        return room;
    }
    if !under_pressure && listener.sockets.len() > listener.backlog && listening > spares {
        // The burst is over: give back sockets beyond the backlog.
        let mut extra = (listener.sockets.len() - listener.backlog).min(listening - spares);
        listener.sockets.retain(|&h| {
            if extra > 0 && sockets.get::<tcp::Socket>(h).state() == tcp::State::Listen {
                sockets.remove(h);
                extra -= 1;
                false
            } else {
                true
            }
        });
    }
    0
}

/// Drops up to `count` of the oldest half-open connections past [`HALF_OPEN_GRACE`],
/// their sockets listening again.
fn recycle_oldest(
    sockets: &mut SocketSet<'static>,
    listener: &mut Listener,
    endpoint: IpListenEndpoint,
    count: usize,
    now: u64,
) {
    let mut oldest: std::vec::Vec<(u64, SocketHandle)> = listener
        .half_open
        .iter()
        .filter(|(_, &since)| now >= deadline_after(since, HALF_OPEN_GRACE))
        .map(|(&handle, &since)| (since, handle))
        .collect();
    oldest.sort_unstable();
    for (_, handle) in oldest.into_iter().take(count) {
        listener.half_open.remove(&handle);
        let renewed = renew_listening(sockets, handle, endpoint);
        if let Some(slot) = listener.sockets.iter_mut().find(|h| **h == handle) {
            *slot = renewed;
        }
    }
}
