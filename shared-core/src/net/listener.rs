//! A TCP server's listen side: a fixed pool of smoltcp sockets with a real backlog,
//! deadlines on every connection, and eviction under pressure.
//!
//! smoltcp has one socket per connection and answers a SYN that finds no socket in
//! `LISTEN` with a reset. A server that re-listens on a socket only once its previous
//! connection is over therefore refuses connections whenever they arrive faster than old
//! ones close. A [`ListenerPool`] keeps every socket that carries no connection listening
//! at all times, and keeps at least [`ListenerConfig::backlog`] of them free:
//!
//! * A socket whose connection ended (closed, reset, timed out) listens again in the next
//!   [`ListenerPool::poll`]; one that was aborted first sends its reset. smoltcp would hold
//!   `TIME-WAIT` for 10 s; the pool recycles it at once. Its sockets ACK without delay, so
//!   the last ACK left in the interface poll that brought the peer's FIN (with a delayed
//!   ACK it would still be pending, and recycling would lose it).
//! * No smoltcp timeout or keep-alive: the pool's two deadlines already bound every
//!   connection's life, dead peers included, and count what they end.
//! * A connection has [`ListenerConfig::request_timeout`] from its SYN until the app marks
//!   it [answered](Connection::answered), then [`ListenerConfig::close_timeout`] to be
//!   closed. Past its deadline it is aborted. Every connection's life is bounded, so idle
//!   clients, slow senders, slow readers and peers that never close all free their socket.
//! * When fewer than `backlog` sockets are free, the pool aborts connections: half-open
//!   ones first (a SYN answered, its handshake not completed: what a spoofed SYN flood
//!   leaves, oldest first, dropped silently as Linux drops a SYN-RECEIVED entry), then
//!   finished exchanges (answer and FIN acknowledged, only the peer's FIN awaited), then the
//!   oldest of the unanswered ones (idle or slow clients) and of the answered ones whose
//!   answer is sent but not acknowledged (slow readers, peers that delay their ACK and
//!   never close), as Linux resets orphaned sockets under pressure. The clients being
//!   served right now are the youngest, so they go last; a connection the app is still
//!   sending on, or accepted less than 50 ms ago (answered: 5 ms), is never evicted (when only those are
//!   left, new SYNs are refused: work in progress is not thrown away for more work). So
//!   neither a flood of idle connections nor clients that take their answer and never
//!   close can deafen the server, and more clients than sockets still get served.
//! * A reset that cannot leave (its peer has no route, or its neighbour never answers
//!   ARP) does not hold its socket: after [`RESET_GRACE`] it listens again anyway.
//! * Mark the pool's port quiet on the stack
//!   ([`RingPhy::set_port_quiet`](super::RingPhy::set_port_quiet)) so that a SYN arriving
//!   while no socket is free is dropped, not refused: the client retries, as with Linux.
//!
//! Memory is fixed when the pool is built: `sockets` sockets with their buffers, and one
//! app state `T` per socket (reset to `T::default()` for each new connection).
//!
//! ```ignore
//! let mut pool = ListenerPool::<MyState>::new(&mut stack.sockets, ListenerConfig::new(80));
//! loop {
//!     stack.poll();
//!     let next = pool.poll(&mut stack.sockets, net::stack::now(), |conn| {
//!         /* read conn.socket, keep progress in conn.state; once the request is
//!            complete: conn.answered(), then send and close */
//!     });
//!     stack.send();
//!     stack.wait_until(next).await;
//! }
//! ```

use alloc::vec;
use alloc::vec::Vec;

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::{Duration, Instant};

/// How long a connection just accepted is safe from eviction: its request normally
/// follows within a round trip. Under overload, refusing new SYNs serves more clients than
/// resetting connections whose request is on its way (measured: `wrk -c 300` against 256
/// sockets answered twice as many requests with 50 ms as with none).
const FRESH: Duration = Duration::from_millis(50);

/// How long an answered connection is safe from eviction: the ACK of its answer and FIN
/// is normally a round trip away. Shorter than [`FRESH`]: the answer has been sent, so a
/// reset costs the peer little, and Linux peers that never close delay that ACK by 40 ms.
const FRESH_ANSWERED: Duration = Duration::from_millis(5);

/// How long a half-open connection is safe from eviction: a real client's ACK is a round
/// trip away. A flood then needs more than `(sockets - backlog) / HALF_OPEN_GRACE` SYNs a
/// second (9600 with the defaults) to keep every socket half-open, and even then only
/// new SYNs wait (dropped on a quiet port, so their clients retry).
const HALF_OPEN_GRACE: Duration = Duration::from_millis(20);

/// How long an aborted connection's reset may take to leave before its socket listens
/// again without it.
const RESET_GRACE: Duration = Duration::from_millis(500);

/// Sizes, backlog and deadlines of a [`ListenerPool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerConfig {
    /// The TCP port to serve.
    pub port: u16,
    /// Sockets in the pool: the most connections held at once, listeners included.
    pub sockets: usize,
    /// Listening sockets kept free: the most SYNs accepted between two [`ListenerPool::poll`]s.
    /// When fewer are free, the oldest unanswered connection is aborted. At least 1, less
    /// than `sockets`. One `Interface::poll` over a [`RingPhy`](super::RingPhy) takes at
    /// most one receive ring of frames ([`RingConfig::rx_ring`](super::RingConfig)), so a
    /// backlog that large never meets a SYN with no listener: no connection is refused.
    pub backlog: usize,
    /// Receive buffer per socket, in bytes (the advertised window).
    pub rx_buffer: usize,
    /// Transmit buffer per socket, in bytes.
    pub tx_buffer: usize,
    /// Time from a connection's SYN until the app answers it (reading the request).
    pub request_timeout: Duration,
    /// Time from the answer until the connection is closed (the peer reading the answer
    /// and closing its side).
    pub close_timeout: Duration,
}

impl ListenerConfig {
    /// Defaults for a small server on `port`: 256 sockets of 2 KiB + 2 KiB (1 MiB in
    /// all), a backlog of 64 (the default receive ring), 10 s to send a request and 10 s
    /// to finish the exchange.
    pub fn new(port: u16) -> Self {
        ListenerConfig {
            port,
            sockets: 256,
            backlog: 64,
            rx_buffer: 2048,
            tx_buffer: 2048,
            request_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(10),
        }
    }
}

/// What a [`ListenerPool`] has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenerCounters {
    /// Connections accepted (a listening socket got a SYN).
    pub accepted: u64,
    /// Connections the app marked answered.
    pub answered: u64,
    /// Connections aborted because they were not answered in `request_timeout`.
    pub request_timeouts: u64,
    /// Answered connections aborted because they did not close in `close_timeout`.
    pub close_timeouts: u64,
    /// Connections aborted to keep `backlog` sockets listening.
    pub evicted: u64,
    /// Half-open connections (handshake not completed) dropped to keep `backlog`
    /// sockets listening, or because their request deadline passed.
    pub half_open_dropped: u64,
}

/// Where a socket of the pool is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// In `LISTEN`.
    Listening,
    /// Accepted at `since`, not yet answered.
    Waiting { since: Instant },
    /// Answered at `since`, closing.
    Answered { since: Instant },
    /// Aborted at `since`: listens again once smoltcp has sent the reset, or after
    /// [`RESET_GRACE`].
    Resetting { since: Instant },
}

struct Slot<T> {
    handle: SocketHandle,
    phase: Phase,
    state: T,
}

/// One connection of the pool, as the app's `serve` function sees it.
pub struct Connection<'a, T> {
    /// The connection's socket. The app reads, sends and closes; closing or aborting it
    /// ends the connection and the pool listens on the socket again.
    pub socket: &'a mut tcp::Socket<'static>,
    /// The app's state for this connection; `T::default()` when the connection starts.
    pub state: &'a mut T,
    phase: &'a mut Phase,
    counters: &'a mut ListenerCounters,
    now: Instant,
}

impl<T> Connection<'_, T> {
    /// Marks the request as complete: the connection leaves the request deadline (and the
    /// eviction candidates) for the close deadline. Idempotent.
    pub fn answered(&mut self) {
        if let Phase::Waiting { .. } = self.phase {
            *self.phase = Phase::Answered { since: self.now };
            self.counters.answered += 1;
        }
    }

    /// Whether [`answered`](Self::answered) was called for this connection.
    pub fn is_answered(&self) -> bool {
        matches!(self.phase, Phase::Answered { .. })
    }
}

/// A fixed pool of TCP sockets serving one port. See the module docs.
pub struct ListenerPool<T> {
    config: ListenerConfig,
    slots: Vec<Slot<T>>,
    counters: ListenerCounters,
}

impl<T: Default> ListenerPool<T> {
    /// Adds `config.sockets` sockets to `sockets`, all listening on `config.port`. This is
    /// the pool's only allocation.
    ///
    /// # Panics
    ///
    /// If `config.port` is 0, a buffer size is 0, or `config.backlog` is not in
    /// `1..config.sockets`.
    pub fn new(sockets: &mut SocketSet<'static>, config: ListenerConfig) -> Self {
        assert!(config.port != 0, "a listener pool needs a port");
        assert!(config.rx_buffer > 0 && config.tx_buffer > 0, "a listener pool needs socket buffers");
        assert!(
            config.backlog >= 1 && config.backlog < config.sockets,
            "backlog {} must be at least 1 and less than the {} sockets",
            config.backlog,
            config.sockets
        );
        let slots = (0..config.sockets)
            .map(|_| {
                let mut socket = tcp::Socket::new(
                    tcp::SocketBuffer::new(vec![0; config.rx_buffer]),
                    tcp::SocketBuffer::new(vec![0; config.tx_buffer]),
                );
                // See the module docs.
                socket.set_timeout(None);
                socket.set_ack_delay(None);
                // Cannot fail: the port is not 0 and a new socket is closed.
                let _ = socket.listen(config.port);
                Slot { handle: sockets.add(socket), phase: Phase::Listening, state: T::default() }
            })
            .collect();
        ListenerPool { config, slots, counters: ListenerCounters::default() }
    }
}

impl<T: Default> ListenerPool<T> {
    /// The configuration the pool was built with.
    pub fn config(&self) -> &ListenerConfig {
        &self.config
    }

    /// Counters so far.
    pub fn counters(&self) -> ListenerCounters {
        self.counters
    }

    /// Sockets in `LISTEN` now (after the last [`poll`](Self::poll)).
    pub fn listening(&self) -> usize {
        self.slots.iter().filter(|s| s.phase == Phase::Listening).count()
    }

    /// Connections held now (accepted and not yet over), after the last `poll`.
    pub fn connections(&self) -> usize {
        self.slots.iter().filter(|s| matches!(s.phase, Phase::Waiting { .. } | Phase::Answered { .. })).count()
    }

    /// Runs the pool once; call it after each `Interface::poll` (then send what `serve`
    /// queued: [`Stack::send`](super::Stack::send)). Calls `serve` for every open connection,
    /// enforces deadlines, recycles finished sockets and keeps the backlog free. Returns
    /// when the pool next needs to run (a deadline), if ever.
    pub fn poll<F>(&mut self, sockets: &mut SocketSet<'static>, now: Instant, mut serve: F) -> Option<Instant>
    where
        F: FnMut(&mut Connection<'_, T>),
    {
        let config = self.config;
        let counters = &mut self.counters;
        for slot in &mut self.slots {
            let socket = sockets.get_mut::<tcp::Socket>(slot.handle);
            match socket.state() {
                State::Listen => slot.phase = Phase::Listening,
                State::Closed if socket.remote_endpoint().is_some() => match slot.phase {
                    Phase::Resetting { since } if now >= since + RESET_GRACE => {
                        // The reset never left: listen again without it.
                        slot.handle = renew_listening(sockets, slot.handle, config.port);
                        slot.phase = Phase::Listening;
                    }
                    Phase::Resetting { .. } => {}
                    _ => slot.phase = Phase::Resetting { since: now },
                },
                State::Closed | State::TimeWait => {
                    // Cannot fail: not open, and the port is not 0.
                    let _ = socket.listen(config.port);
                    slot.phase = Phase::Listening;
                }
                _ => {
                    if matches!(slot.phase, Phase::Listening | Phase::Resetting { .. }) {
                        counters.accepted += 1;
                        slot.phase = Phase::Waiting { since: now };
                        slot.state = T::default();
                    }
                    match slot.phase {
                        Phase::Waiting { since } if now >= since + config.request_timeout => {
                            counters.request_timeouts += 1;
                            abort(sockets, slot, config.port, now, counters);
                        }
                        Phase::Answered { since } if now >= since + config.close_timeout => {
                            counters.close_timeouts += 1;
                            abort(sockets, slot, config.port, now, counters);
                        }
                        _ => serve(&mut Connection {
                            socket,
                            state: &mut slot.state,
                            phase: &mut slot.phase,
                            counters,
                            now,
                        }),
                    }
                }
            }
        }
        self.keep_backlog(sockets, now);
        self.next_deadline(now)
    }

    /// Aborts connections until `backlog` sockets listen (or will, once their reset is
    /// sent). See [`evictee`](Self::evictee) for which.
    fn keep_backlog(&mut self, sockets: &mut SocketSet<'static>, now: Instant) {
        let mut free =
            self.slots.iter().filter(|s| matches!(s.phase, Phase::Listening | Phase::Resetting { .. })).count();
        while free < self.config.backlog {
            let Some(index) = self.evictee(sockets, now) else {
                // Every held connection is just accepted or being answered.
                break;
            };
            abort(sockets, &mut self.slots[index], self.config.port, now, &mut self.counters);
            self.counters.evicted += 1;
            free += 1;
        }
    }

    /// The connection to give up first:
    ///
    /// 0. the oldest half-open connection (SYN-RECEIVED: its SYN answered, the handshake
    ///    not completed) older than [`HALF_OPEN_GRACE`], which costs nothing to drop: a
    ///    spoofed SYN flood leaves only those, and a real client whose handshake was
    ///    dropped retransmits its SYN;
    /// 1. else the oldest finished exchange: answered, answer and FIN acknowledged (`FIN-WAIT-2`,
    ///    only the peer's FIN awaited), which costs the peer nothing;
    /// 2. else the oldest of the unanswered connections (idle or slow clients, by the time
    ///    they were accepted) and the answered ones the app has closed whose answer or FIN
    ///    is not yet acknowledged (slow readers, peers that delay their ACK and never
    ///    close; by the time they were answered). Like Linux's orphans under memory
    ///    pressure, those are reset. The clients a busy server is serving right now are the
    ///    youngest, so they go last.
    ///
    /// Never an answered connection the app is still sending on (it ends by its deadline),
    /// nor one accepted less than [`FRESH`] or answered less than [`FRESH_ANSWERED`] ago:
    /// its request or the ACK of its answer is normally on its way, and evicting it would
    /// let clients that reconnect at once when reset (more of them than sockets) evict
    /// each other before any exchange completes. New SYNs are refused instead.
    fn evictee(&self, sockets: &SocketSet<'static>, now: Instant) -> Option<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(index, slot)| {
                let socket = sockets.get::<tcp::Socket>(slot.handle);
                let key = match slot.phase {
                    Phase::Waiting { since } if socket.state() == State::SynReceived => {
                        if now < since + HALF_OPEN_GRACE {
                            return None;
                        }
                        (0, since)
                    }
                    Phase::Answered { since } if socket.state() == State::FinWait2 => (1, since),
                    Phase::Answered { since } if !socket.may_send() && now >= since + FRESH_ANSWERED => (2, since),
                    Phase::Waiting { since } if now >= since + FRESH => (2, since),
                    _ => return None,
                };
                Some((key, index))
            })
            .min_by_key(|(key, _)| *key)
            .map(|(_, index)| index)
    }

    /// The earliest deadline of a connection, or (for a pending reset) a millisecond from
    /// now.
    fn next_deadline(&self, now: Instant) -> Option<Instant> {
        let config = &self.config;
        self.slots
            .iter()
            .filter_map(|slot| match slot.phase {
                Phase::Listening => None,
                Phase::Waiting { since } => Some(since + config.request_timeout),
                Phase::Answered { since } => Some(since + config.close_timeout),
                Phase::Resetting { .. } => Some(now + Duration::from_millis(1)),
            })
            .min()
    }
}

/// Ends a slot's connection: a half-open one is dropped silently and its socket listens
/// again at once (a reset to a spoofed source is wasted, and may never leave); any other
/// is reset, and listens again once the reset is sent.
fn abort(
    sockets: &mut SocketSet<'static>,
    slot: &mut Slot<impl Default>,
    port: u16,
    now: Instant,
    counters: &mut ListenerCounters,
) {
    let socket = sockets.get_mut::<tcp::Socket>(slot.handle);
    if socket.state() == State::SynReceived {
        counters.half_open_dropped += 1;
        slot.handle = renew_listening(sockets, slot.handle, port);
        slot.phase = Phase::Listening;
    } else {
        socket.abort();
        slot.phase = Phase::Resetting { since: now };
    }
}

/// Puts the TCP socket `handle` back in `LISTEN` on `endpoint` with nothing left of its
/// past, and returns its new handle: no reset is sent for its connection, and it loses
/// smoltcp's per-socket egress state too. That state matters after a half-open
/// connection to a forged source: smoltcp silences a socket for a second when its peer's
/// neighbour is unknown (a spoofed on-link address) or has no route, and a socket reused
/// as it is would keep silent towards its next, real client, whose SYN-ACK then waits a
/// second. The socket (and its buffers) is moved out of the set and back, not rebuilt.
pub fn renew_listening(
    sockets: &mut SocketSet<'static>,
    handle: SocketHandle,
    endpoint: impl Into<smoltcp::wire::IpListenEndpoint>,
) -> SocketHandle {
    let smoltcp::socket::Socket::Tcp(mut socket) = sockets.remove(handle) else {
        panic!("renew_listening: {handle} is not a TCP socket");
    };
    socket.abort();
    let _ = socket.listen(endpoint);
    sockets.add(socket)
}

#[cfg(test)]
mod tests;
