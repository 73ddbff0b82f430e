//! Floods a `RingPhy` with far more frames than it has buffers, through a real smoltcp
//! interface, and checks that: frames beyond the pool are dropped and counted, the heap
//! does not grow (a counting global allocator sees zero allocations in steady state),
//! every slot comes back, and nothing panics.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use shared_core::net::{Frame, NetDevice, NetInfo, RingConfig, RingContext, RingPhy};
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::Device;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};

struct CountingAlloc;

thread_local! {
    // Per thread: the test harness's own threads allocate too, and must not count.
    // A const-initialised Cell needs no allocation or destructor, so the allocator may use it.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: every call is forwarded unchanged to the system allocator, which upholds
// GlobalAlloc's contract; the count on the side allocates nothing.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract for `alloc` is passed on as it is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this `layout` (above).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

/// A device that always has `burst` frames waiting: a broadcast ARP request for our IP,
/// which smoltcp answers, so the flood exercises receive and transmit.
struct FloodDevice {
    burst: usize,
    offered: u64,
    sent: u64,
    frame: [u8; 42],
}

impl FloodDevice {
    fn new(burst: usize) -> Self {
        let mut frame = [0u8; 42];
        frame[0..6].copy_from_slice(&[0xff; 6]); // broadcast
        frame[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
        frame[12..14].copy_from_slice(&[0x08, 0x06]); // ARP
        frame[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]); // Ethernet/IPv4 request
        frame[22..28].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
        frame[28..32].copy_from_slice(&[10, 0, 0, 1]);
        frame[38..42].copy_from_slice(&[10, 0, 0, 2]);
        FloodDevice { burst, offered: 0, sent: 0, frame }
    }
}

impl NetDevice for FloodDevice {
    fn info(&self) -> NetInfo {
        NetInfo { mac: MAC, max_frame: 1514, headroom: 0 }
    }
    fn receive(&mut self, ctx: RingContext<'_>) {
        for _ in 0..self.burst {
            self.offered += 1;
            let Some(slot) = ctx.pool.alloc() else {
                ctx.counters.rx_dropped += 1;
                continue;
            };
            ctx.pool.buf_mut(&slot)[..42].copy_from_slice(&self.frame);
            match ctx.ring.push(Frame { slot, len: 42 }) {
                Ok(()) => {
                    ctx.counters.rx_packets += 1;
                    ctx.counters.rx_bytes += 42;
                }
                Err(frame) => {
                    ctx.pool.free(frame.slot);
                    ctx.counters.rx_dropped += 1;
                }
            }
        }
    }
    fn transmit(&mut self, ctx: RingContext<'_>) {
        while let Some(frame) = ctx.ring.pop() {
            self.sent += 1;
            ctx.counters.tx_packets += 1;
            ctx.counters.tx_bytes += frame.len as u64;
            ctx.pool.free(frame.slot);
        }
    }
}

#[test]
fn flood_beyond_the_pool_drops_counts_and_stays_bounded() {
    const SLOTS: usize = 16;
    let config = RingConfig { slots: SLOTS, slot_size: 2048, rx_ring: 64, tx_ring: 8 };
    let mut phy: RingPhy<FloodDevice> = RingPhy::new(Box::new(FloodDevice::new(1000)), config);
    let mut iface =
        Interface::new(Config::new(HardwareAddress::Ethernet(EthernetAddress(MAC))), &mut phy, Instant::ZERO);
    iface.update_ip_addrs(|a| a.push(IpCidr::new(IpAddress::v4(10, 0, 0, 2), 24)).unwrap());
    let mut sockets = SocketSet::new(Vec::with_capacity(4));

    // Warm up: let smoltcp size its internal structures (neighbour cache etc.).
    for t in 0..10 {
        iface.poll(Instant::from_millis(t), &mut phy, &mut sockets);
        phy.flush();
    }
    let before = allocations();
    let rounds = 200;
    for t in 10..10 + rounds {
        iface.poll(Instant::from_millis(t), &mut phy, &mut sockets);
        phy.flush();
        assert!(phy.pool_available() <= SLOTS);
    }
    let allocations = allocations() - before;

    let c = phy.counters();
    println!("counters after {rounds} polls of 1000-frame bursts: {c:?}");
    assert_eq!(allocations, 0, "steady-state flood must not allocate");
    assert!(c.rx_dropped > 0, "frames beyond the pool must be dropped: {c:?}");
    assert!(c.rx_packets > 0 && c.tx_packets > 0, "the stack still made progress: {c:?}");
    // Every offered frame is either received or counted as dropped.
    let offered = (rounds + 10) as u64 * 1000;
    assert!(c.rx_packets + c.rx_dropped >= offered - 1000, "{c:?} vs offered {offered}");
    // Frames left in the receive ring still hold slots; drain them, then all come back.
    phy.device_mut().burst = 0;
    phy.flush();
    while let Some((rx, _tx)) = phy.receive(Instant::ZERO) {
        smoltcp::phy::RxToken::consume(rx, |_| ());
    }
    phy.flush();
    assert_eq!(phy.pool_available(), phy.pool_capacity(), "slots leaked");
}
