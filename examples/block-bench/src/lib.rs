//! block-bench: block throughput through shared-core's encrypted layer against the plain
//! device, in 4 KiB requests: sequential write and read over the device, random write and
//! read of `--requests` places. Prints one `BENCH` line per figure and the ratios
//! (encrypted / plain); `cargo xtask bench-block` runs it and shows them.
//!
//! The plain device is measured first (its writes flushed once at the end of each pass, as
//! an app that batches would), then once more with a flush after every random write (what
//! a write acknowledged only when durable costs without encryption), then the device is
//! formatted with the encrypted layer (which flushes inside every write: its crash safety)
//! and measured the same way. The whole device is overwritten: give it a scratch disk.
//!
//! Boot arguments: `--requests=512` (random requests per pass).
#![forbid(unsafe_code)]
#![no_std]

extern crate alloc;

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use unikernel::block::encrypted::{Encrypted, Key};
use unikernel::block::{BlockDevice, BlockError, BlockExt};
use unikernel::bootargs::BootArgs;
use unikernel::{executor, println, services};

unikernel::main!(run);

/// Bytes per request.
const REQUEST: usize = 4096;

fn run() -> i32 {
    let mut args = BootArgs::or_exit(BootArgs::from_boot());
    let requests: u64 = BootArgs::or_exit(args.optional("requests", 512, "random 4 KiB requests per pass"));
    BootArgs::or_exit(args.finish());
    match executor::block_on(bench(requests)) {
        Ok(()) => 0,
        Err(e) => {
            println!("block-bench: {e}");
            1
        }
    }
}

/// MiB/s of `bytes` in `ns`.
fn rate(bytes: u64, ns: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / (ns.max(1) as f64 / 1e9)
}

/// The four passes on `dev`: MiB/s of sequential write, sequential read, random write,
/// random read (and, with `flush_each`, random writes each followed by a flush).
async fn passes(dev: &mut impl BlockDevice, requests: u64, flush_each: bool) -> Result<[f64; 4], BlockError> {
    let info = dev.info();
    let per = (REQUEST / info.sector_size as usize) as u64;
    let places = info.sectors / per;
    let mut buf = vec![0u8; REQUEST];
    services::fill_random(&mut buf);
    let mut out = [0.0; 4];
    let start = services::monotonic_ns();
    for i in 0..places {
        dev.write(i * per, &buf).await?;
    }
    dev.flush().await?;
    out[0] = rate(places * REQUEST as u64, services::monotonic_ns() - start);
    let start = services::monotonic_ns();
    for i in 0..places {
        dev.read(i * per, &mut buf).await?;
    }
    out[1] = rate(places * REQUEST as u64, services::monotonic_ns() - start);
    // The same pseudo-random places for every device (a fixed LCG, not `fill_random`).
    let place = |n: u64| (n.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) >> 17) % places;
    let start = services::monotonic_ns();
    for n in 0..requests {
        dev.write(place(n) * per, &buf).await?;
        if flush_each {
            dev.flush().await?;
        }
    }
    dev.flush().await?;
    out[2] = rate(requests * REQUEST as u64, services::monotonic_ns() - start);
    let start = services::monotonic_ns();
    for n in 0..requests {
        dev.read(place(n + 1) * per, &mut buf).await?;
    }
    out[3] = rate(requests * REQUEST as u64, services::monotonic_ns() - start);
    Ok(out)
}

async fn bench(requests: u64) -> Result<(), String> {
    use alloc::format;
    let mut disk = services::open_block("").map_err(|e| format!("cannot open the block device: {e}"))?;
    let info = disk.info();
    println!(
        "block-bench: {} sectors of {} B ({} MiB), 4 KiB requests, {requests} random",
        info.sectors,
        info.sector_size,
        info.capacity_bytes() >> 20
    );
    let plain = passes(&mut disk, requests, false).await.map_err(|e| format!("plain: {e}"))?;
    let plain_flushed = passes(&mut disk, requests, true).await.map_err(|e| format!("plain, flushed: {e}"))?;
    let mut key = [0u8; 32];
    services::fill_random(&mut key);
    let mut dev = Encrypted::format(&mut disk, &Key::new(key)).await.map_err(|e| format!("format: {e}"))?;
    let encrypted = passes(&mut dev, requests, false).await.map_err(|e| format!("encrypted: {e}"))?;
    let names = ["seq-write", "seq-read", "rand-write", "rand-read"];
    let rows: Vec<(&str, [f64; 4])> =
        vec![("plain", plain), ("plain-flush-each", plain_flushed), ("encrypted", encrypted)];
    for (what, figures) in &rows {
        for (name, value) in names.iter().zip(figures) {
            println!("BENCH {what} {name} {value:.2} MiB/s");
        }
    }
    for (i, name) in names.iter().enumerate() {
        println!(
            "BENCH ratio {name} encrypted/plain {:.3} encrypted/plain-flush-each {:.3}",
            encrypted[i] / plain[i],
            encrypted[i] / plain_flushed[i]
        );
    }
    Ok(())
}
