// The guest of e2e/tests/unikraft_device_edge.rs (copied into target/test-apps/ and
// built as a Unikraft image; not a test target of its own). The first boot argument picks the scenario; each prints its
// verdict as one `<scenario>: ...` line.
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use unikernel::block::{BlockDevice, BlockExt};
use unikernel::bootargs::Ipv4Cidr;
use unikernel::executor::block_on;
use unikernel::net::{Stack, StackConfig};
use unikernel::services::{boot_args, open_block, open_net};
use unikernel::smoltcp::wire::Ipv4Address;

unikernel::main!(run);

fn run() -> i32 {
    match boot_args().first().map(String::as_str) {
        Some("net-drop") => net_drop(),
        Some("block-drop") => block_drop(),
        Some("block-latency") => block_latency(),
        other => {
            println!("device-edge: unknown scenario {other:?}");
            2
        }
    }
}

/// Counts the bytes of `bufs` that are no longer `byte`.
fn changed(bufs: &[Vec<u8>], byte: u8) -> usize {
    bufs.iter().map(|b| b.iter().filter(|&&x| x != byte).count()).sum()
}

/// A started Stack, dropped; then the heap is filled with 0xAA while the host sends frames.
fn net_drop() -> i32 {
    let device = open_net("").expect("open_net");
    let mut stack = Stack::new(device, StackConfig::new(Ipv4Cidr { address: Ipv4Address::new(10, 0, 0, 2), prefix_len: 24 }));
    for _ in 0..3 {
        stack.poll();
    }
    drop(stack);
    // The default pool is 256 slots of 2112 bytes: allocations of that size and around it.
    let sizes = [540_672usize, 1 << 20, 540_672, 1 << 19, 540_672, 1 << 20, 270_336, 540_672];
    let bufs: Vec<Vec<u8>> = sizes.iter().map(|&n| vec![0xAAu8; n]).collect();
    println!("net-drop: filled, send frames now");
    std::thread::sleep(Duration::from_secs(3));
    println!("net-drop: {} bytes changed", changed(&bufs, 0xAA));
    match open_net("") {
        Ok(_) => println!("net-drop: open again: ok"),
        Err(e) => println!("net-drop: open again: {e}"),
    }
    0
}

/// An 8 MiB read polled once (it returns Pending with chunks in the device), given up,
/// the device dropped; then the heap is filled with 0xAA where the bounce buffers were.
fn block_drop() -> i32 {
    let mut disk = open_block("").expect("open_block");
    let mut buf = vec![0u8; 8 << 20];
    block_on(async {
        let mut read = pin!(disk.read(0, &mut buf));
        let first = std::future::poll_fn(|cx: &mut Context<'_>| Poll::Ready(read.as_mut().poll(cx))).await;
        println!("block-drop: first poll pending: {}", first.is_pending());
    });
    drop(disk);
    // The bounce buffers' own layout, so the allocator hands their memory back out.
    let layout = std::alloc::Layout::from_size_align(64 * 1024, 4096).unwrap();
    let blocks: Vec<&mut [u8]> = (0..16)
        .map(|_| {
            // SAFETY: a non-zero layout; the block is filled before it is read, and never
            // freed (the guest ends soon after).
            unsafe {
                let p = std::alloc::alloc(layout);
                assert!(!p.is_null());
                p.write_bytes(0xAA, layout.size());
                std::slice::from_raw_parts_mut(p, layout.size())
            }
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let changed: usize = blocks.iter().map(|b| b.iter().filter(|&&x| x != 0xAA).count()).sum();
    println!("block-drop: {changed} bytes changed");
    match open_block("") {
        Ok(mut disk) => {
            let mut sector = vec![0u8; 512];
            let read = block_on(disk.read(0, &mut sector));
            println!("block-drop: open again: {:?}, sector 0 is 0x55: {}", read.map_err(|e| e.to_string()), sector.iter().all(|&b| b == 0x55));
        }
        Err(e) => println!("block-drop: open again: {e}"),
    }
    0
}

/// Reads from the disk on the executor (this thread) while a std UDP echo runs on
/// another: with sockets the network thread sleeps beside the executor.
fn block_latency() -> i32 {
    let socket = std::net::UdpSocket::bind("0.0.0.0:7").expect("bind");
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(&buf[..n], from);
        }
    });
    let mut disk = open_block("").expect("open_block");
    println!("block-latency: echo ready");
    let mut sector = vec![0u8; 4096];
    let (mut reads, mut slow, mut worst) = (0u32, 0u32, Duration::ZERO);
    let end = Instant::now() + Duration::from_secs(4);
    block_on(async {
        while Instant::now() < end {
            let start = Instant::now();
            disk.read(0, &mut sector).await.expect("read");
            let took = start.elapsed();
            reads += 1;
            worst = worst.max(took);
            if took > Duration::from_millis(200) {
                slow += 1;
            }
        }
    });
    println!("block-latency: {reads} reads, {slow} over 200 ms, worst {} ms", worst.as_millis());
    0
}
