//! hello: prints, reads both clocks, sleeps, draws random bytes and echoes its boot args.
//!
//! `--exit=N` makes it return N from `run`, `--services-exit=N` call `services::exit(N)`
//! (both used to test exit status propagation);
//! `--sleep-ms=N` sleeps N ms instead of 100 (used to measure idle CPU use); `--panic`
//! panics at the end (used to test that a panic ends the VM too).
#![forbid(unsafe_code)]
#![no_std]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use unikernel::{executor, println, services};

unikernel::main!(run);

fn run() -> i32 {
    let args = services::boot_args();
    println!("Hello from a unikernel! (backend: {})", services::backend_name());
    println!("boot args: {}", args.join(" "));

    let wall_s = services::wall_clock_ns() / 1_000_000_000;
    println!("wall clock: {wall_s} s since the Unix epoch");

    let sleep_ms =
        args.iter().find_map(|a| a.strip_prefix("--sleep-ms=")).and_then(|n| n.parse::<u64>().ok()).unwrap_or(100);
    let before = services::monotonic_ns();
    executor::block_on(executor::sleep_ms(sleep_ms));
    let slept_ms = (services::monotonic_ns() - before) / 1_000_000;
    println!("slept {sleep_ms} ms: monotonic clock advanced {slept_ms} ms");

    let mut random = [0u8; 8];
    services::fill_random(&mut random);
    let hex: String = random.iter().map(|b| alloc::format!("{b:02x}")).collect();
    println!("random bytes: {hex}");

    if args.iter().any(|a| a == "--panic") {
        panic!("hello panics, as asked");
    }
    if let Some(code) = args.iter().find_map(|a| a.strip_prefix("--services-exit=")).and_then(|n| n.parse().ok()) {
        println!("calling services::exit({code})");
        services::exit(code);
    }
    let exit_code = args.iter().find_map(|a| a.strip_prefix("--exit=")).map(|n| n.parse::<i32>()).transpose();
    match exit_code {
        Ok(code) => {
            let code = code.unwrap_or(0);
            println!("goodbye (exit {code})");
            code
        }
        Err(_) => {
            let bad: Vec<&String> = args.iter().filter(|a| a.starts_with("--exit=")).collect();
            println!("error: {} is not an integer exit code", bad[0]);
            2
        }
    }
}
