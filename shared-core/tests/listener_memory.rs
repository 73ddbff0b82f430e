//! A `ListenerPool` server behind a `RingPhy`, driven by a smoltcp client through an
//! in-memory wire with thousands of exchanges, more clients than sockets (evictions) and
//! idle connections left to their deadline: the server side (interface poll, pool poll,
//! send) makes no heap allocation in steady state, the pool never holds more sockets
//! than it was built with, and clients that reconnect at once when evicted still get
//! answers (they do not evict each other before any request arrives).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use shared_core::net::{
    Connection, Frame, ListenerConfig, ListenerPool, NetDevice, NetInfo, RingConfig, RingContext, RingPhy,
};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, Ipv4Address};

struct CountingAlloc;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = COUNTING.try_with(|on| {
            if on.get() {
                let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
            }
        });
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: allocated by `System` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Runs `f` with allocations counted; returns how many it made.
fn counted(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(Cell::get) - before
}

const FRAME: usize = 1514;

/// A frame on the wire: its length and a full-size buffer.
type WireFrame = (usize, [u8; FRAME]);

/// Frames in flight one way, in storage reserved up front (pushing never allocates).
#[derive(Clone)]
struct Queue(Rc<RefCell<VecDeque<WireFrame>>>);

impl Queue {
    fn new() -> Queue {
        Queue(Rc::new(RefCell::new(VecDeque::with_capacity(4096))))
    }
    fn push(&self, bytes: &[u8]) {
        let mut q = self.0.borrow_mut();
        assert!(q.len() < q.capacity(), "the wire is full");
        let mut frame = [0u8; FRAME];
        frame[..bytes.len()].copy_from_slice(bytes);
        q.push_back((bytes.len(), frame));
    }
    fn pop(&self) -> Option<WireFrame> {
        self.0.borrow_mut().pop_front()
    }
}

/// The server's device: the production path (pool slots, rings) over the wire.
struct WireDevice {
    rx: Queue,
    tx: Queue,
}

impl NetDevice for WireDevice {
    fn info(&self) -> NetInfo {
        NetInfo { mac: [2, 0, 0, 0, 0, 2], max_frame: FRAME, headroom: 0 }
    }
    fn receive(&mut self, ctx: RingContext<'_>) {
        while !ctx.ring.is_full() {
            let Some((len, frame)) = self.rx.pop() else { break };
            let Some(slot) = ctx.pool.alloc() else {
                ctx.counters.rx_dropped += 1;
                continue;
            };
            ctx.pool.buf_mut(&slot)[..len].copy_from_slice(&frame[..len]);
            let _ = ctx.ring.push(Frame { slot, len });
            ctx.counters.rx_packets += 1;
        }
    }
    fn transmit(&mut self, ctx: RingContext<'_>) {
        while let Some(frame) = ctx.ring.pop() {
            self.tx.push(&ctx.pool.buf(&frame.slot)[..frame.len]);
            ctx.counters.tx_packets += 1;
            ctx.pool.free(frame.slot);
        }
    }
}

/// The client's device: plain smoltcp (its allocations are not counted).
struct ClientDevice {
    rx: Queue,
    tx: Queue,
}

struct Rx([u8; FRAME], usize);
struct Tx(Queue);

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0[..self.1])
    }
}

impl phy::TxToken for Tx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = [0u8; FRAME];
        let result = f(&mut frame[..len]);
        self.0.push(&frame[..len]);
        result
    }
}

impl phy::Device for ClientDevice {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx;
    fn receive(&mut self, _: Instant) -> Option<(Rx, Tx)> {
        let (len, frame) = self.rx.pop()?;
        Some((Rx(frame, len), Tx(self.tx.clone())))
    }
    fn transmit(&mut self, _: Instant) -> Option<Tx> {
        Some(Tx(self.tx.clone()))
    }
    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = FRAME;
        caps
    }
}

const ANSWER: &[u8] = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok";

#[derive(Default)]
struct Exchange {
    sent: usize,
}

/// Any byte is a request; the answer is [`ANSWER`], then close.
fn serve(conn: &mut Connection<'_, Exchange>) {
    let mut got = false;
    while conn.socket.can_recv() {
        got |= conn.socket.recv(|d| (d.len(), !d.is_empty())).unwrap();
    }
    if got || conn.is_answered() {
        conn.answered();
        if conn.state.sent < ANSWER.len() {
            conn.state.sent += conn.socket.send_slice(&ANSWER[conn.state.sent..]).unwrap();
        }
        if conn.state.sent == ANSWER.len() {
            conn.socket.close();
        }
    }
}

#[test]
fn a_served_port_under_churn_and_idle_floods_does_not_allocate() {
    const SOCKETS: usize = 32;
    const CLIENTS: usize = 48;
    let (to_server, to_client) = (Queue::new(), Queue::new());
    let mut now = Instant::from_secs(1);

    let ring = RingConfig { slots: 64, slot_size: 2048, rx_ring: 16, tx_ring: 16 };
    let mut phy: RingPhy<WireDevice> =
        RingPhy::new(Box::new(WireDevice { rx: to_server.clone(), tx: to_client.clone() }), ring);
    let mut server =
        Interface::new(Config::new(HardwareAddress::Ethernet(EthernetAddress([2, 0, 0, 0, 0, 2]))), &mut phy, now);
    server.update_ip_addrs(|a| a.push(IpCidr::new(IpAddress::v4(10, 0, 0, 2), 24)).unwrap());
    let mut server_sockets = SocketSet::new(Vec::with_capacity(SOCKETS));
    let config = ListenerConfig { sockets: SOCKETS, backlog: 16, ..ListenerConfig::new(80) };
    let mut pool = ListenerPool::<Exchange>::new(&mut server_sockets, config);

    let mut client_dev = ClientDevice { rx: to_client, tx: to_server };
    let mut client = Interface::new(
        Config::new(HardwareAddress::Ethernet(EthernetAddress([2, 0, 0, 0, 0, 1]))),
        &mut client_dev,
        now,
    );
    client.update_ip_addrs(|a| a.push(IpCidr::new(IpAddress::v4(10, 0, 0, 1), 24)).unwrap());
    let mut client_sockets = SocketSet::new(Vec::with_capacity(CLIENTS));
    let handles: Vec<SocketHandle> = (0..CLIENTS)
        .map(|_| {
            client_sockets
                .add(tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 1024]), tcp::SocketBuffer::new(vec![0; 1024])))
        })
        .collect();

    let mut server_allocations = 0u64;
    let mut port = 40000u16;
    let mut ports = [0u16; CLIENTS];
    let mut answers = 0u64;
    for step in 0..5400u32 {
        // Every client socket that is free connects again; two connections in three send a
        // request at once, one in three stays idle; answers are read and the client
        // closes. For 15 s, 48 clients on 32 sockets (idle ones are evicted under
        // pressure); then 12 s with 8 (idle ones are reset at their deadline).
        let active = if step < 3000 { CLIENTS } else { 8 };
        for (i, &h) in handles.iter().enumerate().take(active) {
            let socket = client_sockets.get_mut::<tcp::Socket>(h);
            match socket.state() {
                State::Closed => {
                    // An answer that arrived before a reset is still there to read.
                    while socket.can_recv() {
                        let n = socket.recv(|d| (d.len(), d.len())).unwrap();
                        answers += u64::from(n > 0);
                    }
                    port = if port == u16::MAX { 40000 } else { port + 1 };
                    ports[i] = port;
                    socket.connect(client.context(), (Ipv4Address::new(10, 0, 0, 2), 80), port).unwrap();
                }
                State::Established if ports[i] % 3 != 0 && socket.send_queue() == 0 => {
                    let _ = socket.send_slice(b"GET / HTTP/1.0\r\n\r\n");
                    ports[i] = 0; // sent
                }
                State::CloseWait => {
                    while socket.can_recv() {
                        let n = socket.recv(|d| (d.len(), d.len())).unwrap();
                        answers += u64::from(n > 0);
                    }
                    socket.close();
                }
                _ => {}
            }
        }
        client.poll(now, &mut client_dev, &mut client_sockets);
        let n = counted(|| {
            server.poll(now, &mut phy, &mut server_sockets);
            phy.flush();
            pool.poll(&mut server_sockets, now, serve);
            server.poll_egress(now, &mut phy, &mut server_sockets);
            phy.flush();
        });
        if step >= 100 {
            server_allocations += n;
        }
        assert!(pool.connections() + pool.listening() <= SOCKETS);
        now += Duration::from_millis(5);
    }
    let counters = pool.counters();
    println!("{counters:?}, {answers} answers read, net {:?}", phy.counters());
    assert_eq!(server_allocations, 0, "the server allocated in steady state");
    assert!(counters.answered > 5000 && answers + 16 >= counters.answered, "{counters:?}, {answers} read");
    assert!(counters.evicted > 0 && counters.request_timeouts > 0, "{counters:?}");
    assert_eq!(phy.counters().rx_dropped, 0);
}
