//! The cross-backend conformance app: exercises every shared-core service and prints one
//! report line per case, identical in format on every backend:
//!
//! ```text
//! CONFORMANCE BEGIN backend=unix
//! PASS time.monotonic 1000 reads never went backwards
//! SKIP net.arp --net=false (runner is not root)
//! CONFORMANCE END pass=N fail=N skip=N
//! ```
//!
//! Net cases need a host peer (played by `cargo xtask conformance`): see
//! docs/architecture.md for the exchange. Exit status is 0 only if no case failed.
//!
//! What the host must agree on (case names, ports, payloads, patterns, the report lines)
//! is in the `conformance-protocol` crate, which the host runner uses too.
#![forbid(unsafe_code)]
#![no_std]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod block_cases;
mod net_cases;
#[cfg(feature = "std")]
mod std_cases;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use conformance_protocol::report::{Counts, Line, Status};
use conformance_protocol::{case, BLOCK_CASES, HEAP_CASES, NET_CASES, STD_CASES};
use unikernel::bootargs::{BootArgs, Ipv4Cidr};
use unikernel::executor::{self, block_on};
use unikernel::smoltcp::wire::Ipv4Address;
use unikernel::{println, services};

unikernel::main!(run);

/// How long a net case waits for the host peer.
const CASE_TIMEOUT_MS: u64 = 20_000;
/// Tolerance for `sleep`: not early at all, at most this late.
const SLEEP_LATE_TOLERANCE_MS: u64 = 50;

/// The report so far: each case is printed as it is recorded.
#[derive(Default)]
struct Report {
    counts: Counts,
}

enum Outcome {
    Pass(String),
    Fail(String),
    Skip(String),
}

impl Report {
    fn record(&mut self, case: &str, outcome: Outcome) {
        let (status, detail) = match outcome {
            Outcome::Pass(d) => (Status::Pass, d),
            Outcome::Fail(d) => (Status::Fail, d),
            Outcome::Skip(d) => (Status::Skip, d),
        };
        self.counts.add(status);
        println!("{}", Line::Case { status, case, detail: &detail });
    }
}

fn check(ok: bool, pass: String, fail: String) -> Outcome {
    if ok {
        Outcome::Pass(pass)
    } else {
        Outcome::Fail(fail)
    }
}

fn run() -> i32 {
    let mut args = BootArgs::or_exit(BootArgs::from_boot());
    let default_ip = Ipv4Cidr { address: Ipv4Address::new(10, 0, 0, 2), prefix_len: 24 };
    let cidr = BootArgs::or_exit(args.optional("ipv4", default_ip, "guest address"));
    let host: Ipv4Address =
        BootArgs::or_exit(args.optional("host", Ipv4Address::new(10, 0, 0, 1), "host peer address"));
    let net_on: bool = BootArgs::or_exit(args.optional("net", true, "run the net cases"));
    let block_on_: bool = BootArgs::or_exit(args.optional("block", true, "run the block cases"));
    let label: String =
        BootArgs::or_exit(args.optional("backend", String::from(services::backend_name()), "report label"));
    let std_exit: String = BootArgs::or_exit(args.optional(
        "std-exit",
        String::new(),
        "end at once instead of reporting: `panic`, or an exit code for std::process::exit",
    ));
    let args_ok = args.finish();
    if !std_exit.is_empty() {
        end_now(&std_exit);
    }

    let mut report = Report::default();
    println!("{}", Line::Begin { backend: &label });
    time_cases(&mut report);
    random_case(&mut report);
    heap_cases(&mut report);
    report.record(
        case::ARGS_PARSE,
        match args_ok {
            Ok(()) => args_case(),
            Err(e) => Outcome::Fail(format!("boot arguments rejected: {e}")),
        },
    );
    #[cfg(feature = "std")]
    for (case, run) in STD_CASES.iter().zip(std_cases::CASES) {
        report.record(case, run());
    }
    #[cfg(not(feature = "std"))]
    for case in STD_CASES {
        report.record(case, Outcome::Skip(String::from("this backend has no std")));
    }
    if net_on {
        net_cases::net_cases(&mut report, cidr, host);
    } else {
        for case in NET_CASES {
            report.record(case, Outcome::Skip(String::from("--net=false (runner is not root, or net disabled)")));
        }
    }
    if block_on_ {
        block_cases::run(&mut report);
    } else {
        for case in BLOCK_CASES {
            report.record(case, Outcome::Skip(String::from("--block=false")));
        }
    }
    println!("{}", Line::End(report.counts));
    if report.counts.fail == 0 {
        0
    } else {
        1
    }
}

/// `--std-exit=panic` panics; `--std-exit=N` exits with N, through `std::process::exit`
/// where there is std (so std's own exit path is what is tested), else the backend's.
/// The runner checks the statuses (`std.panic-exit`, `std.process-exit`).
fn end_now(how: &str) -> ! {
    if how == "panic" {
        panic!("conformance: deliberate panic (--std-exit=panic)");
    }
    let code = how.parse::<i32>().unwrap_or_else(|_| {
        println!("--std-exit={how}: expected `panic` or an exit code");
        2
    });
    #[cfg(feature = "std")]
    std::process::exit(code);
    #[cfg(not(feature = "std"))]
    services::exit(code)
}

fn time_cases(report: &mut Report) {
    let mut prev = services::monotonic_ns();
    let mut backwards = 0;
    for _ in 0..1000 {
        let now = services::monotonic_ns();
        if now < prev {
            backwards += 1;
        }
        prev = now;
    }
    report.record(
        case::TIME_MONOTONIC,
        check(
            backwards == 0,
            String::from("1000 reads never went backwards"),
            format!("went backwards {backwards} times"),
        ),
    );

    let mut worst_late_ms = 0;
    let mut early = None;
    for ms in [10u64, 50, 100] {
        let start = services::monotonic_ns();
        block_on(executor::sleep_ms(ms));
        let took = services::monotonic_ns() - start;
        if took < ms * 1_000_000 {
            early = Some((ms, took));
        }
        worst_late_ms = worst_late_ms.max(took / 1_000_000 - ms.min(took / 1_000_000));
    }
    report.record(
        case::TIME_SLEEP,
        match early {
            Some((ms, took)) => Outcome::Fail(format!("sleep({ms} ms) returned after {took} ns")),
            None => check(
                worst_late_ms <= SLEEP_LATE_TOLERANCE_MS,
                format!("10/50/100 ms sleeps, worst {worst_late_ms} ms late (tolerance {SLEEP_LATE_TOLERANCE_MS} ms)"),
                format!("a sleep was {worst_late_ms} ms late (tolerance {SLEEP_LATE_TOLERANCE_MS} ms)"),
            ),
        },
    );

    // After 2020-01-01 and before 2100-01-01.
    let wall_s = services::wall_clock_ns() / 1_000_000_000;
    report.record(
        case::TIME_WALL,
        check(
            (1_577_836_800..4_102_444_800).contains(&wall_s),
            format!("{wall_s} s since the epoch"),
            format!("{wall_s} s since the epoch is not between 2020 and 2100"),
        ),
    );
}

fn random_case(report: &mut Report) {
    let mut a = [0u8; 32];
    let mut b = [0u8; 32];
    services::fill_random(&mut a);
    services::fill_random(&mut b);
    let distinct = a.iter().collect::<alloc::collections::BTreeSet<_>>().len();
    report.record(
        case::RANDOM_BYTES,
        check(
            a != b && distinct > 8,
            format!("two 32-byte draws differ ({distinct} distinct byte values)"),
            String::from("random draws repeat or are nearly constant"),
        ),
    );
}

/// Rounds of the soak loop; each allocates and frees a few hundred blocks of mixed sizes.
const SOAK_ROUNDS: usize = 2000;

fn heap_cases(report: &mut Report) {
    let Some(start) = unikernel::heap::stats() else {
        for case in HEAP_CASES {
            report.record(case, Outcome::Skip(String::from("this backend does not count allocations")));
        }
        return;
    };
    // black_box: an optimiser may otherwise elide an allocation nobody reads.
    let block = core::hint::black_box(vec![1u8; 1 << 20]);
    let during = unikernel::heap::stats().unwrap_or_default();
    drop(core::hint::black_box(block));
    let after = unikernel::heap::stats().unwrap_or_default();
    report.record(
        case::HEAP_STATS,
        check(
            during.in_use >= start.in_use + (1 << 20)
                && after.in_use + (1 << 20) <= during.in_use
                && after.peak >= during.in_use,
            format!("a 1 MiB block shows in in_use and peak ({} B in use, peak {} B)", after.in_use, after.peak),
            format!("counters did not follow a 1 MiB block: {start:?} -> {during:?} -> {after:?}"),
        ),
    );

    // An allocation-heavy loop (strings, vectors, maps; growing and shrinking) must hand
    // everything back: bytes in use after the loop equal bytes in use before it.
    let churn = |round: usize| {
        let mut map = alloc::collections::BTreeMap::new();
        for i in 0..64 {
            let text = format!("round {round} entry {i} {}", "x".repeat(i * 7 % 200));
            map.insert(i, text.into_bytes());
        }
        let mut v: Vec<Vec<u8>> = map.into_values().collect();
        v.retain(|b| b.len() % 2 == 0);
        v.shrink_to_fit();
        v.len()
    };
    churn(0); // warm-up: anything allocated once and kept is not a leak
    let before = unikernel::heap::stats().unwrap_or_default();
    let mut kept = 0;
    for round in 0..SOAK_ROUNDS {
        kept += churn(round);
    }
    let end = unikernel::heap::stats().unwrap_or_default();
    let allocations = end.allocations - before.allocations;
    report.record(
        case::HEAP_SOAK,
        check(
            end.in_use == before.in_use && end.live_blocks == before.live_blocks,
            format!(
                "{SOAK_ROUNDS} rounds, {allocations} allocations: {} B in use before and after, peak {} B ({kept} blocks survived the filters)",
                end.in_use, end.peak
            ),
            format!("the heap grew: {} B -> {} B, {} -> {} live blocks", before.in_use, end.in_use, before.live_blocks, end.live_blocks),
        ),
    );
}

fn args_case() -> Outcome {
    // The parser must accept what every backend passes and reject bad input the same way.
    let mut good = match BootArgs::parse(["--ipv4=10.1.2.3/16", "--port=8080", "--verbose"]) {
        Ok(a) => a,
        Err(e) => return Outcome::Fail(format!("valid args rejected: {e}")),
    };
    let ip: Result<Ipv4Cidr, _> = good.required("ipv4", "ip");
    let port: Result<u16, _> = good.optional("port", 1, "port");
    let verbose = good.flag("verbose", "v");
    let typed_ok = matches!((ip, port, verbose), (Ok(c), Ok(8080), Ok(true)) if c.prefix_len == 16);
    let mut unknown = BootArgs::parse(["--prot=1"]).unwrap_or_else(|_| unreachable!());
    let _ = unknown.optional::<u16>("port", 1, "port");
    let rejects_unknown = unknown.finish().is_err();
    let mut malformed = BootArgs::parse(["--port=99999"]).unwrap_or_else(|_| unreachable!());
    let rejects_malformed = malformed.optional::<u16>("port", 1, "port").is_err();
    check(
        typed_ok && rejects_unknown && rejects_malformed,
        format!("boot args {:?} parsed; typed values, unknown and malformed keys behave", services::boot_args()),
        format!("typed={typed_ok} rejects_unknown={rejects_unknown} rejects_malformed={rejects_malformed}"),
    )
}
