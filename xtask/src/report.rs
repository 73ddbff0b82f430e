//! The conformance report format, parsed and checked on the host.
//!
//! ```text
//! CONFORMANCE BEGIN backend=<name>
//! PASS|FAIL|SKIP <case> <detail...>
//! CONFORMANCE END pass=N fail=N skip=N
//! ```
//! Other lines (app chatter, `READY`, `#` comments) are ignored.

use anyhow::{bail, Context, Result};

/// Every case the conformance app reports, in order.
pub const CASES: &[&str] = &[
    "time.monotonic",
    "time.sleep",
    "time.wall",
    "random.bytes",
    "heap.stats",
    "heap.soak",
    "args.parse",
    "std.args",
    "std.env",
    "std.time",
    "std.sleep",
    "std.thread",
    "std.sync",
    "std.thread-local",
    "std.alloc-large",
    "std.fs",
    "std.hashmap",
    "std.parallelism",
    "std.command",
    "net.arp",
    "net.icmp",
    "net.udp-echo",
    "net.tcp",
    "block.write-read",
    "block.flush",
    "block.out-of-range",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseLine {
    pub status: Status,
    pub case: String,
    pub detail: String,
}

#[derive(Debug, Default)]
pub struct Report {
    pub backend: String,
    pub cases: Vec<CaseLine>,
}

impl Report {
    pub fn failed(&self) -> impl Iterator<Item = &CaseLine> {
        self.cases.iter().filter(|c| c.status == Status::Fail)
    }
}

/// Parses and checks a whole console transcript.
pub fn parse(text: &str) -> Result<Report> {
    let mut report: Option<Report> = None;
    let mut end: Option<(usize, usize, usize)> = None;
    for line in text.lines() {
        let line = line.trim_end();
        if let Some(rest) = line.strip_prefix("CONFORMANCE BEGIN ") {
            let backend = rest.strip_prefix("backend=").context("BEGIN line without backend=")?;
            report = Some(Report { backend: backend.to_string(), cases: Vec::new() });
            continue;
        }
        let Some(r) = report.as_mut() else { continue };
        if let Some(rest) = line.strip_prefix("CONFORMANCE END ") {
            let mut counts = [0usize; 3];
            for (i, (field, key)) in rest.split(' ').zip(["pass=", "fail=", "skip="]).enumerate() {
                counts[i] = field.strip_prefix(key).with_context(|| format!("bad END line: {line}"))?.parse()?;
            }
            end = Some((counts[0], counts[1], counts[2]));
            break;
        }
        let mut words = line.splitn(3, ' ');
        let status = match words.next() {
            Some("PASS") => Status::Pass,
            Some("FAIL") => Status::Fail,
            Some("SKIP") => Status::Skip,
            _ => continue,
        };
        let case = words.next().with_context(|| format!("case line without a case name: {line}"))?;
        r.cases.push(CaseLine { status, case: case.to_string(), detail: words.next().unwrap_or("").to_string() });
    }
    let report = report.context("no `CONFORMANCE BEGIN` line: the app did not start its report")?;
    let (pass, fail, skip) = end.context("no `CONFORMANCE END` line: the app stopped before finishing its report")?;
    for case in CASES {
        if !report.cases.iter().any(|c| c.case == *case) {
            bail!("case {case} is missing from the report");
        }
    }
    let count = |s| report.cases.iter().filter(|c| c.status == s).count();
    if (count(Status::Pass), count(Status::Fail), count(Status::Skip)) != (pass, fail, skip) {
        bail!("END line counts pass={pass} fail={fail} skip={skip} do not match the case lines");
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(status_of: impl Fn(&str) -> &'static str) -> String {
        let mut text = String::from("boot noise\nCONFORMANCE BEGIN backend=unix\n");
        let (mut p, mut f, mut s) = (0, 0, 0);
        for case in CASES {
            let st = status_of(case);
            match st {
                "PASS" => p += 1,
                "FAIL" => f += 1,
                _ => s += 1,
            }
            text += &format!("{st} {case} some detail\n");
            if *case == "args.parse" {
                text += "READY net 10.0.0.2\n";
            }
        }
        text + &format!("CONFORMANCE END pass={p} fail={f} skip={s}\n")
    }

    #[test]
    fn well_formed_report_parses() {
        let report = parse(&full(|_| "PASS")).unwrap();
        assert_eq!(report.backend, "unix");
        assert_eq!(report.cases.len(), CASES.len());
        assert_eq!(report.failed().count(), 0);
    }

    #[test]
    fn fail_lines_are_found() {
        let report = parse(&full(|c| if c == "net.tcp" { "FAIL" } else { "PASS" })).unwrap();
        assert_eq!(report.failed().map(|c| c.case.as_str()).collect::<Vec<_>>(), ["net.tcp"]);
    }

    #[test]
    fn missing_end_is_an_error() {
        let text = full(|_| "PASS");
        let cut = text.split("CONFORMANCE END").next().unwrap();
        assert!(parse(cut).unwrap_err().to_string().contains("no `CONFORMANCE END`"));
    }

    #[test]
    fn missing_case_and_bad_counts_are_errors() {
        let text = full(|_| "PASS").replace("PASS net.icmp some detail\n", "");
        assert!(parse(&text).is_err());
        let text = full(|_| "PASS").replace(&format!("pass={}", CASES.len()), "pass=1");
        assert!(parse(&text).unwrap_err().to_string().contains("do not match"));
    }

    #[test]
    fn unknown_status_words_are_not_cases() {
        let text = full(|_| "PASS").replace("PASS time.wall", "MAYBE time.wall");
        assert!(parse(&text).unwrap_err().to_string().contains("time.wall"));
    }
}
