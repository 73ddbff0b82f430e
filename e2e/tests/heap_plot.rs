//! Heap over time, end to end: a real run prints `heap-sample` lines (`--heap-sample-ms`,
//! shared_core::heap::sampler) and the host tool draws them (`--heap-plot FILE`). The SVG
//! must be a whole document with one point per printed sample in each series.

use std::process::{Command, Output};

mod common;

use common::unikraft::sources_or_skip;
use common::{show, XTASK};

/// The `heap-sample` lines a run printed, as `(t_ms, live)`.
fn samples(out: &Output) -> Vec<(u64, u64)> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut words = line.trim_end().strip_prefix("heap-sample ")?.split(' ');
            let mut field = |key: &str| words.next()?.strip_prefix(key)?.parse::<u64>().ok();
            Some((field("t_ms=")?, field("live=")?))
        })
        .collect()
}

/// Checks the SVG at `path` against the samples the run printed.
fn check_svg(path: &std::path::Path, printed: &[(u64, u64)], title: &str) {
    let svg = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"), "not a whole SVG document:\n{svg}");
    assert!(svg.contains("xmlns=\"http://www.w3.org/2000/svg\""), "{svg}");
    assert!(svg.contains(&format!("{title}: heap ({} samples", printed.len())), "caption:\n{svg}");
    let series: Vec<usize> = svg
        .split("<polyline")
        .skip(1)
        .filter_map(|p| p.split("points=\"").nth(1)?.split('"').next())
        .map(|points| points.split_whitespace().count())
        .collect();
    assert_eq!(series.iter().filter(|&&n| n == printed.len()).count(), 2, "in use and peak: {series:?}");
    // Time runs forward along the samples, and the plot is as long as the run.
    assert!(printed.windows(2).all(|w| w[0].0 <= w[1].0), "{printed:?}");
}

#[test]
fn heap_plot_of_a_conformance_run_on_unix() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("heap.svg");
    let out = Command::new(XTASK)
        .args(["conformance", "--backend", "unix", "--heap-plot"])
        .arg(&svg)
        .output()
        .expect("run xtask conformance");
    assert!(out.status.success(), "{}", show(&out));
    let printed = samples(&out);
    // Every 25 ms over a run of about a second (plus the samples taken in busy stretches).
    assert!(printed.len() >= 10, "{} samples:\n{}", printed.len(), show(&out));
    for case in ["host.heap-plot", "host.heap-growth"] {
        assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("PASS {case} ")), "{}", show(&out));
    }
    // The 8 MiB of std.alloc-large shows in the peak (the last sample's peak).
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last_peak = stdout.lines().rev().find_map(|l| l.split(" peak=").nth(1)?.split(' ').next()?.parse::<u64>().ok());
    assert!(last_peak.is_some_and(|p| p >= 8 << 20), "last peak {last_peak:?}");
    check_svg(&svg, &printed, "conformance (unix)");
}

#[test]
fn heap_plot_of_hello_on_unikraft() {
    if sources_or_skip("heap_plot_of_hello_on_unikraft").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("heap.svg");
    let out = Command::new(XTASK)
        .args(["kraft-run", "--example", "hello", "--heap-sample-ms", "100", "--heap-plot"])
        .arg(&svg)
        .args(["--", "--sleep-ms=1000"])
        .output()
        .expect("run xtask kraft-run");
    assert!(out.status.success(), "{}", show(&out));
    let printed = samples(&out);
    // A sample at start, every 100 ms of the 1 s sleep, and one at the end.
    assert!(printed.len() >= 10, "{} samples:\n{}", printed.len(), show(&out));
    assert!(printed.last().is_some_and(|&(t, _)| t >= 1000), "{printed:?}");
    check_svg(&svg, &printed, "hello (qemu/x86_64)");
}
