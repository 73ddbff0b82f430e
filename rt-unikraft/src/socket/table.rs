//! The socket table: the stack, every open socket, and the closed connections still
//! finishing their close, behind one lock.
//!
//! [`Net`] is everything the socket layer owns. It lives in [`NET`], a `std::sync::Mutex`
//! that app threads take for each socket op and the network thread ([`super::thread`])
//! takes for each poll. Nothing here blocks: an op that cannot go on now says `-EAGAIN`
//! and posix-socket waits on the socket file's poll queue, whose events
//! [`super::readiness`] keeps exact.

use crate::socket::Errno;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use std::vec::Vec;

use shared_core::net::Stack;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::{tcp, udp};
use smoltcp::wire::{IpEndpoint, Ipv4Address};

/// The socket layer, once started (the first `socket()`): see [`super::thread::start`].
pub static NET: Mutex<Slot> = Mutex::new(Slot(None));

/// What [`NET`] holds: the table, once started.
pub struct Slot(pub Option<Net>);

// SAFETY: `Net` is not `Send` only because its stack holds the device as a
// `Box<dyn NetDevice>` (a trait object without a `Send` bound) and its packet pool as a
// pointer to its own allocation. The device is always `crate::net::UkNet`, plain data
// plus indices into the glue's global state, with no tie to a thread; the pool owns its
// memory. The table is only ever reached through the mutex.
unsafe impl Send for Slot {}

impl core::ops::Deref for Slot {
    type Target = Option<Net>;
    fn deref(&self) -> &Option<Net> {
        &self.0
    }
}

impl core::ops::DerefMut for Slot {
    fn deref_mut(&mut self) -> &mut Option<Net> {
        &mut self.0
    }
}

/// Takes the table's lock (a panic elsewhere already ended the program: no poisoning).
pub fn lock() -> MutexGuard<'static, Slot> {
    NET.lock().unwrap_or_else(|e| e.into_inner())
}

/// Default receive buffer of a TCP socket (`SO_RCVBUF` before `listen`/`connect` changes it).
pub const TCP_RX_DEFAULT: usize = 64 * 1024;
/// Default transmit buffer of a TCP socket.
pub const TCP_TX_DEFAULT: usize = 64 * 1024;
/// Smallest and largest buffer `SO_RCVBUF`/`SO_SNDBUF` can ask for.
pub const BUFFER_RANGE: (usize, usize) = (4 * 1024, 1024 * 1024);
/// UDP buffers: datagrams and payload bytes queued each way.
pub const UDP_PACKETS: usize = 64;
/// Payload bytes a UDP socket queues each way.
pub const UDP_PAYLOAD: usize = 64 * 1024;
/// Payload bytes of datagrams a UDP socket holds while smoltcp's buffer is full: room
/// for two of the largest. A send is accepted while they fit, and `EPOLLOUT` is set
/// exactly while the largest datagram would fit, so the event never lies (see
/// [`super::udp`]).
pub const UDP_PENDING_MAX: usize = 2 * UDP_MAX_DATAGRAM;
/// The largest datagram sent: what fits the stack's 8 KiB fragmentation buffer with its
/// IP and UDP headers (docs/runtime.md#ip-fragments). Larger is `-EMSGSIZE`.
pub const UDP_MAX_DATAGRAM: usize = 8192 - 20 - 8;
/// Most sockets `listen` sets listening for one listener (its backlog; `listen`'s
/// argument is capped to this). Each holds a connection's buffers.
pub const LISTEN_BACKLOG_MAX: usize = 64;
/// The network thread keeps at least this many of a listener's sockets in `LISTEN` (or
/// all its backlog, if smaller), adding sockets while connections wait for `accept`...
pub const LISTEN_SPARE: usize = 8;
/// ... up to this many sockets per listener in all, which bounds a listener's memory.
pub const LISTEN_SOCKETS_MAX: usize = 128;
/// While a listener holds half-open connections (a burst, or a spoofed SYN flood), it
/// keeps this many sockets in `LISTEN`, recycling the oldest half-open ones to do so
/// (see [`super::backlog`]).
pub const LISTEN_SPARE_UNDER_PRESSURE: usize = 32;
/// How long a connection may stay half-open (SYN answered, no ACK) before its socket
/// listens again. Linux gives up after about a minute of SYN-ACK retries, but it has SYN
/// cookies and so no socket to lose; here a socket is held, so a short one.
pub const SYN_RECEIVED_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a half-open connection is safe from recycling under pressure: a real
/// client's ACK is a round trip away.
pub const HALF_OPEN_GRACE: Duration = Duration::from_millis(20);
/// Most closed connections still finishing their close, all sockets together: each holds
/// its buffers, so a peer that never acknowledges our FIN must not decide the guest's
/// memory. Past this, the oldest is reset (as Linux's `tcp_max_orphans`).
pub const ORPHANS_MAX: usize = 64;
/// How long a connection may take to be set up before `connect` reports `ETIMEDOUT`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(75);
/// How long a closed connection may take to finish its close (FIN exchange) before it is
/// reset: a peer that never closes cannot hold a socket for ever.
pub const LINGER_TIMEOUT: Duration = Duration::from_secs(30);
/// Ephemeral ports, as Linux's default range.
pub const EPHEMERAL: core::ops::RangeInclusive<u16> = 32768..=60999;

/// A socket file (`posix_sock *`), where a socket's events go. Only used to raise events
/// while the table is locked, and dropped from the table in `close`, before
/// posix-socket frees the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct File(pub *const core::ffi::c_void);
// SAFETY: the pointer is only handed back to the glue (socket.c's event helpers), under
// the table's lock, while the file is alive (see above); Rust never dereferences it.
unsafe impl Send for File {}

/// The socket options the layer keeps (see [`super::options`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// `SO_REUSEADDR` (reported back; binding never waits for TIME-WAIT here).
    pub reuse_addr: bool,
    /// `SO_REUSEPORT` (reported back only).
    pub reuse_port: bool,
    /// `SO_KEEPALIVE`.
    pub keep_alive: bool,
    /// `TCP_NODELAY`.
    pub no_delay: bool,
    /// `SO_BROADCAST` (reported back only).
    pub broadcast: bool,
    /// `SO_RCVBUF`: the receive buffer of sockets created from now on.
    pub rcv_buf: usize,
    /// `SO_SNDBUF`: the transmit buffer of sockets created from now on.
    pub snd_buf: usize,
    /// `SO_RCVTIMEO` (`None`: wait for ever).
    pub rcv_timeout: Option<Duration>,
    /// `SO_SNDTIMEO`.
    pub snd_timeout: Option<Duration>,
    /// `IP_TTL`.
    pub ttl: u8,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            reuse_addr: false,
            reuse_port: false,
            keep_alive: false,
            no_delay: false,
            broadcast: false,
            rcv_buf: TCP_RX_DEFAULT,
            snd_buf: TCP_TX_DEFAULT,
            rcv_timeout: None,
            snd_timeout: None,
            ttl: 64,
        }
    }
}

/// A TCP connection's side of the table.
#[derive(Debug)]
pub struct Stream {
    /// Its smoltcp socket.
    pub handle: SocketHandle,
    /// Still being set up (`connect` said `EINPROGRESS`), with the time it gives up.
    pub connecting: Option<u64>,
    /// The smoltcp state seen at the last look, to tell a reset from an orderly close.
    pub last_state: tcp::State,
    /// `shutdown(SHUT_RD)`: reads end.
    pub rd_shut: bool,
    /// `shutdown(SHUT_WR)`: our FIN is queued; writes fail.
    pub wr_shut: bool,
    /// The connection ended abnormally (reset, refused, timed out): reads end, writes fail.
    pub broken: bool,
}

/// A listening socket's smoltcp sockets.
#[derive(Debug)]
pub struct Listener {
    /// In `LISTEN`, or holding a connection not accepted yet.
    pub sockets: Vec<SocketHandle>,
    /// How many it keeps when idle (`listen`'s backlog, at most [`LISTEN_BACKLOG_MAX`]).
    pub backlog: usize,
    /// When each socket now half-open (`SYN-RECEIVED`) was first seen so.
    pub half_open: BTreeMap<SocketHandle, u64>,
    /// `shutdown` was called: `accept` fails with `EINVAL` (and a blocked one wakes).
    pub shut: bool,
}

impl Listener {
    /// A listener over `sockets`, all in `LISTEN`.
    pub fn new(sockets: Vec<SocketHandle>, backlog: usize) -> Self {
        Listener { sockets, backlog, half_open: BTreeMap::new(), shut: false }
    }
}

/// What a TCP socket is now.
#[derive(Debug)]
pub enum Tcp {
    /// Created, maybe bound (`local`), neither listening nor connected.
    Fresh,
    /// Listening.
    Listening(Listener),
    /// A connection (accepted, or from `connect`).
    Stream(Stream),
}

/// A UDP socket.
#[derive(Debug)]
pub struct Udp {
    /// Its smoltcp socket (created with the socket, bound on `bind` or first use).
    pub handle: SocketHandle,
    /// `connect`'s default peer.
    pub peer: Option<IpEndpoint>,
    /// Datagrams sent while smoltcp's buffer had no room for them, oldest first; they
    /// move there as it drains (see [`super::udp`]): what makes `EPOLLOUT` exact.
    pub pending: VecDeque<(IpEndpoint, Vec<u8>)>,
    /// Payload bytes in `pending`.
    pub pending_bytes: usize,
}

impl Udp {
    /// A UDP socket over `handle`.
    pub fn new(handle: SocketHandle) -> Self {
        Udp { handle, peer: None, pending: VecDeque::new(), pending_bytes: 0 }
    }
}

/// TCP or UDP.
#[derive(Debug)]
pub enum Kind {
    /// `SOCK_STREAM`.
    Tcp(Tcp),
    /// `SOCK_DGRAM`.
    Udp(Udp),
}

/// One open socket.
#[derive(Debug)]
pub struct Sock {
    /// TCP or UDP, and its state.
    pub kind: Kind,
    /// The address it is bound to (`0.0.0.0` = any), if bound.
    pub local: Option<(Ipv4Address, u16)>,
    /// Its file, once posix-socket created it (`ops->poll`).
    pub file: Option<File>,
    /// The events last given to the file.
    pub events: u32,
    /// `SO_ERROR`: an error not yet reported (a positive errno).
    pub error: Option<Errno>,
    /// Options.
    pub opts: Options,
    /// With `SO_RCVTIMEO`: when a read that found nothing gives up (monotonic ns), and
    /// whether it has (the next read then reports `ETIMEDOUT`).
    pub recv_deadline: Option<u64>,
    /// The read deadline passed.
    pub recv_timed_out: bool,
    /// The same for writes and `SO_SNDTIMEO`.
    pub send_deadline: Option<u64>,
    /// The write deadline passed.
    pub send_timed_out: bool,
}

impl Sock {
    /// A new socket of this kind.
    pub fn new(kind: Kind, opts: Options) -> Self {
        Sock {
            kind,
            local: None,
            file: None,
            events: 0,
            error: None,
            opts,
            recv_deadline: None,
            recv_timed_out: false,
            send_deadline: None,
            send_timed_out: false,
        }
    }
}

/// An [`Orphan`]'s deadline once it has been reset: it is dropped at the next look.
pub const RESET_SENT: u64 = u64::MAX;

/// A connection whose socket was closed while its close was still under way: the FIN
/// exchange goes on until `deadline`, then it is reset.
#[derive(Debug)]
pub struct Orphan {
    /// Its smoltcp socket.
    pub handle: SocketHandle,
    /// When it is reset if it has not finished.
    pub deadline: u64,
}

/// The stack and its sockets.
pub struct Net {
    /// The smoltcp interface over the uknetdev device.
    pub stack: Stack,
    /// Open sockets by id (the socket file's data).
    pub socks: BTreeMap<u64, Sock>,
    /// Closed connections finishing their close.
    pub orphans: Vec<Orphan>,
    /// The interface's address.
    pub address: Ipv4Address,
    next_id: u64,
}

/// `Duration` to monotonic nanoseconds from now.
pub fn deadline_after(now_ns: u64, d: Duration) -> u64 {
    now_ns.saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Net {
    /// The table over a started stack.
    pub fn new(stack: Stack) -> Self {
        let address = stack.iface.ipv4_addr().expect("the socket layer's stack is built with an IPv4 address");
        Net { stack, socks: BTreeMap::new(), orphans: Vec::new(), address, next_id: 1 }
    }

    /// Whether the stack has a way to `addr`: one of its networks (loopback included) or
    /// a default route. Without one, smoltcp would take a connect and retry its SYN into
    /// the void until the connect timeout; Linux says `ENETUNREACH` at once.
    pub fn routable(&self, addr: Ipv4Address) -> bool {
        self.stack.iface.ip_addrs().iter().any(|cidr| cidr.contains_addr(&addr.into()))
            || self.stack.iface.routes().get_default_ipv4_route().is_some()
    }

    /// Adds a socket and returns its id (never 0, never reused).
    pub fn insert(&mut self, sock: Sock) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.socks.insert(id, sock);
        id
    }

    /// The socket `id`, or `-EBADF`.
    pub fn sock(&mut self, id: u64) -> Result<&mut Sock, Errno> {
        self.socks.get_mut(&id).ok_or(Errno::EBADF)
    }

    /// A fresh smoltcp TCP socket with these options' buffers and settings.
    pub fn new_tcp(&mut self, opts: &Options) -> SocketHandle {
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(std::vec![0u8; opts.rcv_buf]),
            tcp::SocketBuffer::new(std::vec![0u8; opts.snd_buf]),
        );
        apply_tcp_options(&mut socket, opts);
        self.stack.sockets.add(socket)
    }

    /// A fresh smoltcp UDP socket.
    pub fn new_udp(&mut self) -> SocketHandle {
        let buffer =
            || udp::PacketBuffer::new(std::vec![udp::PacketMetadata::EMPTY; UDP_PACKETS], std::vec![0u8; UDP_PAYLOAD]);
        self.stack.sockets.add(udp::Socket::new(buffer(), buffer()))
    }

    /// Whether `port` is taken for TCP (`tcp`) or UDP by another open socket (not
    /// `except`). Connections accepted from a listener share its port and have no `local`
    /// of their own, so they do not count.
    pub fn port_in_use(&self, tcp: bool, port: u16, except: u64) -> bool {
        self.socks.iter().any(|(id, s)| {
            *id != except && matches!(s.kind, Kind::Tcp(_)) == tcp && s.local.is_some_and(|(_, p)| p == port)
        })
    }

    /// An unused ephemeral port (`-EADDRINUSE` when all are taken); for TCP also unused by
    /// connections still closing. The search starts at a random port (RFC 6056's first
    /// algorithm, as Linux randomises): an off-path attacker cannot guess the port a
    /// connection or a DNS query will use.
    pub fn ephemeral_port(&mut self, tcp: bool) -> Result<u16, Errno> {
        self.ephemeral_port_from(tcp, shared_core::services::random_u64())
    }

    /// [`ephemeral_port`](Self::ephemeral_port) with the search starting at `random`.
    pub fn ephemeral_port_from(&mut self, tcp: bool, random: u64) -> Result<u16, Errno> {
        let span = u32::from(EPHEMERAL.end() - EPHEMERAL.start()) + 1;
        let first = (random % u64::from(span)) as u32;
        for step in 0..span {
            let port = EPHEMERAL.start() + ((first + step) % span) as u16;
            let closing = tcp
                && self.orphans.iter().any(|o| {
                    self.stack.sockets.get::<tcp::Socket>(o.handle).local_endpoint().is_some_and(|e| e.port == port)
                });
            if !closing && !self.port_in_use(tcp, port, 0) {
                return Ok(port);
            }
        }
        Err(Errno::EADDRINUSE)
    }

    /// Hands a connection whose socket is gone to the closing list; `graceful` sends a
    /// FIN (unless one was sent), else a reset.
    pub fn orphan(&mut self, handle: SocketHandle, graceful: bool, now_ns: u64) {
        let socket = self.stack.sockets.get_mut::<tcp::Socket>(handle);
        if graceful {
            socket.close();
        } else {
            socket.abort();
        }
        // The last ACK goes out with the next poll, before the socket is dropped.
        socket.set_ack_delay(None);
        let closing = self.orphans.iter().filter(|o| o.deadline != RESET_SENT).count();
        if closing >= ORPHANS_MAX {
            // Too many closing: reset the one closest to its deadline (the oldest).
            if let Some(oldest) =
                self.orphans.iter_mut().filter(|o| o.deadline != RESET_SENT).min_by_key(|o| o.deadline)
            {
                self.stack.sockets.get_mut::<tcp::Socket>(oldest.handle).abort();
                oldest.deadline = RESET_SENT;
            }
        }
        self.orphans.push(Orphan { handle, deadline: deadline_after(now_ns, LINGER_TIMEOUT) });
    }
}

/// `TCP_NODELAY`, `SO_KEEPALIVE` and `IP_TTL` on a smoltcp socket.
pub fn apply_tcp_options(socket: &mut tcp::Socket<'_>, opts: &Options) {
    socket.set_nagle_enabled(!opts.no_delay);
    socket.set_keep_alive(opts.keep_alive.then(|| smoltcp::time::Duration::from_secs(75)));
    socket.set_hop_limit(Some(opts.ttl));
}
