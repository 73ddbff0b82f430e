//! hello on the full std: prints, spawns a thread that answers over a channel, and ends
//! in one of the three ways a Rust program can, chosen by a boot argument:
//!
//! * default, or `--exit=N`: `run` returns N (0 by default);
//! * `--process-exit=N`: `std::process::exit(N)` from inside the app;
//! * `--panic`: a panic, which prints its message and exits with 101;
//! * `--abort`: `std::process::abort()`, which has no exit status to report.
//!
//! On Unikraft each of these must reach the host as the QEMU exit status; the tests in
//! `e2e/tests/unikraft.rs` check all three, and `cargo xtask bench-runtime` boots this
//! app in ever smaller guests to find the least memory it needs.
#![forbid(unsafe_code)]

use std::sync::mpsc;
use std::thread;

unikernel::main!(run);

fn number_after(args: &[String], prefix: &str) -> Option<i32> {
    args.iter()
        .find_map(|a| a.strip_prefix(prefix))
        .map(|n| n.parse().unwrap_or_else(|_| panic!("{prefix}{n}: not a number")))
}

fn run() -> i32 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!("Hello from std on a unikernel! (backend: {})", unikernel::services::backend_name());
    println!("args: {}", args.join(" "));
    // What std will give the thread below (rt-unikraft sets a small default on Unikraft).
    match std::env::var("RUST_MIN_STACK") {
        Ok(bytes) => println!("thread stack: RUST_MIN_STACK={bytes}"),
        Err(_) => println!("thread stack: std's default (2 MiB)"),
    }

    let (tx, rx) = mpsc::channel();
    let worker = thread::Builder::new()
        .name("worker".into())
        .spawn(move || {
            let name = thread::current().name().unwrap_or("?").to_string();
            tx.send(format!("hello from the {name} thread")).expect("main is waiting");
        })
        .expect("spawn a thread");
    println!("{}", rx.recv().expect("the worker sends one message"));
    worker.join().expect("the worker does not panic");

    if args.iter().any(|a| a == "--abort") {
        println!("calling std::process::abort()");
        std::process::abort();
    }
    if args.iter().any(|a| a == "--panic") {
        panic!("deliberate panic (--panic)");
    }
    if let Some(code) = number_after(&args, "--process-exit=") {
        println!("calling std::process::exit({code})");
        std::process::exit(code);
    }
    let code = number_after(&args, "--exit=").unwrap_or(0);
    println!("goodbye (exit {code})");
    code
}
