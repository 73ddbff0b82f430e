//! The conformance report's `std.net` section: a second guest (`conformance/std-net`, std
//! sockets) run against the host peer in a namespace of its own.

use std::time::Duration;

use crate::netns::{self, NetNs};
use anyhow::{Context, Result};
use cargo_unikraft::runner::console;
use conformance_protocol::report::{Line, Status};
use conformance_protocol::{std_net, STD_NET_CASES};

use super::{Guests, StdNet};
use crate::report::{self, CaseLine};

/// How long the std.net host peer may take to bind its ports.
const PEER_START: Duration = Duration::from_secs(30);

/// The `std.net` section: its guest booted in a namespace of its own with the host peer
/// (`xtask peer std-net`), its case lines checked against [`STD_NET_CASES`] (a missing one
/// is a FAIL line here); or each case SKIP with the reason. Problems of the run that are
/// not a case's go to `host_lines`.
pub(super) fn std_net_section(guests: &Guests, host_lines: &mut Vec<String>) -> Result<Vec<CaseLine>> {
    let guest = match &guests.std_net {
        StdNet::Run(guest) => guest,
        StdNet::Skip(why) => {
            let skipped: Vec<CaseLine> = STD_NET_CASES
                .iter()
                .map(|case| CaseLine { status: Status::Skip, case: case.to_string(), detail: why.to_string() })
                .collect();
            skipped.iter().for_each(print_case);
            return Ok(skipped);
        }
    };
    let ns = NetNs::create("ukstdnet")?;
    // The host peer is the namespace's DNS server (a hosted guest's libc reads this; a
    // Unikraft guest asks its gateway, the same address).
    ns.resolv_conf(&format!("nameserver {}\n", netns::HOST_IP))?;
    let exe = std::env::current_exe().context("the xtask executable")?;
    let mut peer = ns
        .command(&exe.to_string_lossy())
        .args(["peer", "std-net"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("start the std.net host peer")?;
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = peer.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut peer_lines = Vec::new();
    let ready = loop {
        match rx.recv_timeout(PEER_START) {
            Ok(line) if line == std_net::PEER_READY => break true,
            Ok(line) => peer_lines.push(line),
            Err(_) => break false,
        }
    };
    let finished = if ready {
        let args = [format!("--host={}", netns::HOST_IP), format!("--backend={}", guests.label)];
        let command = ns.wrap(&guest.command(&args));
        Some(console::run(&**guest, command, console::Limits::total(guests.timeout), |line| println!("{line}"))?)
    } else {
        let _ = peer.kill();
        None
    };
    drop(peer.stdin.take()); // the peer's signal to stop
    let status = peer.wait()?;
    let _ = reader.join();
    peer_lines.extend(rx.try_iter());
    let mut stderr = String::new();
    if let Some(mut err) = peer.stderr.take() {
        use std::io::Read;
        let _ = err.read_to_string(&mut stderr);
    }
    for line in &peer_lines {
        println!("# std.net peer: {line}");
    }
    let stderr = stderr.trim().replace('\n', " ");
    let Some(finished) = finished else {
        let why = format!("the host peer did not start: {stderr}");
        let failed: Vec<CaseLine> = STD_NET_CASES
            .iter()
            .map(|case| CaseLine { status: Status::Fail, case: case.to_string(), detail: why.clone() })
            .collect();
        failed.iter().for_each(print_case);
        return Ok(failed);
    };
    if !status.success() {
        host_lines.push(format!("FAIL host.std-net-peer the host peer failed ({status}): {stderr}"));
    }
    if finished.timed_out {
        host_lines.push(format!(
            "FAIL host.std-net-timeout the std.net guest did not finish within {} s and was killed",
            guests.timeout.as_secs()
        ));
    }
    let (mut cases, problems) = report::section(&finished.transcript, &STD_NET_CASES);
    for problem in problems {
        host_lines.push(format!("FAIL host.std-net-report {problem}"));
    }
    for case in STD_NET_CASES {
        if !cases.iter().any(|c| c.case == case) {
            let missing = CaseLine {
                status: Status::Fail,
                case: case.to_string(),
                detail: "the std.net guest did not report this case".into(),
            };
            print_case(&missing);
            cases.push(missing);
        }
    }
    let code = finished.exit.code();
    if code != Some(0) && cases.iter().all(|c| c.status != Status::Fail) {
        host_lines
            .push(format!("FAIL host.std-net-exit the std.net guest exited with {code:?} although no case failed"));
    }
    Ok(cases)
}

pub(super) fn print_case(c: &CaseLine) {
    println!("{}", Line::Case { status: c.status, case: &c.case, detail: &c.detail });
}
