//! The conformance report, parsed and checked on the host.
//!
//! ```text
//! CONFORMANCE BEGIN backend=<name>
//! PASS|FAIL|SKIP <case> <detail...>
//! CONFORMANCE END pass=N fail=N skip=N
//! ```
//! Other lines (app chatter, `READY`, `#` comments) are ignored. The grammar of one line
//! and the case list are `conformance_protocol`'s, which the guest app formats with; this
//! module checks a whole transcript.

use anyhow::{bail, Context, Result};
use conformance_protocol::report::{Counts, Line, ParseError, Status};
use conformance_protocol::CASES;

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

    /// The case lines by status (what the END line states).
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        self.cases.iter().for_each(|c| counts.add(c.status));
        counts
    }
}

/// The case lines of a section guest's transcript (a guest that prints only case lines of
/// `cases`, no BEGIN/END, such as the `std.net` guest), and what is wrong with it: a
/// malformed line, a case reported twice, a case not of the section, a BEGIN or END line.
/// A missing case is left to the caller.
pub fn section(text: &str, cases: &[&str]) -> (Vec<CaseLine>, Vec<String>) {
    let mut found: Vec<CaseLine> = Vec::new();
    let mut problems = Vec::new();
    for line in text.lines() {
        match Line::parse(line) {
            Ok(None) => {}
            Ok(Some(Line::Case { status, case, detail })) => {
                if !cases.contains(&case) {
                    problems.push(format!("{case} is not a case of this section: {line}"));
                } else if found.iter().any(|c| c.case == case) {
                    problems.push(format!("{case} is reported twice"));
                } else {
                    found.push(CaseLine { status, case: case.to_string(), detail: detail.to_string() });
                }
            }
            Ok(Some(_)) => problems.push(format!("a section prints no BEGIN or END line: {line}")),
            Err(e) => problems.push(format!("{e}: {line}")),
        }
    }
    (found, problems)
}

/// Parses and checks a whole console transcript: from the (last) BEGIN line to the first
/// END line after it, every case of [`CASES`] present and the END counts right. Before
/// BEGIN only a malformed BEGIN line is an error: the rest is boot output.
pub fn parse(text: &str) -> Result<Report> {
    let mut report: Option<Report> = None;
    let mut end: Option<Counts> = None;
    for line in text.lines() {
        let parsed = match Line::parse(line) {
            Ok(parsed) => parsed,
            Err(e) if report.is_some() || e == ParseError::BadBegin => bail!("{e}: {line}"),
            Err(_) => continue,
        };
        match (parsed, report.as_mut()) {
            (Some(Line::Begin { backend }), _) => {
                report = Some(Report { backend: backend.to_string(), cases: Vec::new() })
            }
            (Some(Line::Case { status, case, detail }), Some(r)) => {
                r.cases.push(CaseLine { status, case: case.to_string(), detail: detail.to_string() })
            }
            (Some(Line::End(counts)), Some(_)) => {
                end = Some(counts);
                break;
            }
            _ => {}
        }
    }
    let report = report.context("no `CONFORMANCE BEGIN` line: the app did not start its report")?;
    let end = end.context("no `CONFORMANCE END` line: the app stopped before finishing its report")?;
    for case in CASES {
        if !report.cases.iter().any(|c| c.case == case) {
            bail!("case {case} is missing from the report");
        }
    }
    let mut counted = Counts::default();
    report.cases.iter().for_each(|c| counted.add(c.status));
    if counted != end {
        bail!("END line counts {end} do not match the case lines ({counted})");
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use conformance_protocol::case;

    /// A transcript as the guest prints it, with the statuses `status_of` picks.
    fn full(status_of: impl Fn(&str) -> Status) -> String {
        let mut text = format!("boot noise\n{}\n", Line::Begin { backend: "unix" });
        let mut counts = Counts::default();
        for case in CASES {
            let status = status_of(case);
            counts.add(status);
            text += &format!("{}\n", Line::Case { status, case, detail: "some detail" });
            if case == case::ARGS_PARSE {
                text += "READY net 10.0.0.2\n";
            }
        }
        text + &format!("{}\n", Line::End(counts))
    }

    fn all_pass() -> String {
        full(|_| Status::Pass)
    }

    #[test]
    fn well_formed_report_parses() {
        let report = parse(&all_pass()).unwrap();
        assert_eq!(report.backend, "unix");
        assert_eq!(report.cases.len(), CASES.len());
        assert_eq!(report.failed().count(), 0);
        // A serial console ends its lines with \r\n.
        let report = parse(&all_pass().replace('\n', "\r\n")).unwrap();
        assert_eq!(report.cases.len(), CASES.len());
    }

    #[test]
    fn fail_lines_are_found() {
        let report = parse(&full(|c| if c == case::NET_TCP { Status::Fail } else { Status::Pass })).unwrap();
        assert_eq!(report.failed().map(|c| c.case.as_str()).collect::<Vec<_>>(), [case::NET_TCP]);
    }

    #[test]
    fn missing_end_is_an_error() {
        let text = all_pass();
        let cut = text.split("CONFORMANCE END").next().unwrap();
        assert!(parse(cut).unwrap_err().to_string().contains("no `CONFORMANCE END`"));
    }

    #[test]
    fn missing_case_and_bad_counts_are_errors() {
        let text = all_pass().replace("PASS net.icmp some detail\n", "");
        assert!(parse(&text).unwrap_err().to_string().contains("net.icmp is missing"));
        let text = all_pass().replace(&format!("pass={}", CASES.len()), "pass=1");
        assert!(parse(&text).unwrap_err().to_string().contains("do not match"));
    }

    #[test]
    fn a_section_is_its_case_lines() {
        use conformance_protocol::STD_NET_CASES;
        let text = format!(
            "# std.net section\nPASS {} 256 KiB\nchatter\nFAIL {} refused? no\r\n",
            STD_NET_CASES[0], STD_NET_CASES[2]
        );
        let (cases, problems) = section(&text, &STD_NET_CASES);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(cases.len(), 2);
        assert_eq!((cases[1].status, cases[1].detail.as_str()), (Status::Fail, "refused? no"));
        let bad = format!(
            "PASS {0} a\nPASS {0} b\nPASS net.tcp c\nPASS\nCONFORMANCE END pass=1 fail=0 skip=0\n",
            STD_NET_CASES[0]
        );
        let (cases, problems) = section(&bad, &STD_NET_CASES);
        assert_eq!(cases.len(), 1);
        assert_eq!(problems.len(), 4, "{problems:?}");
    }

    #[test]
    fn unknown_status_words_are_not_cases() {
        let text = all_pass().replace("PASS time.wall", "MAYBE time.wall");
        assert!(parse(&text).unwrap_err().to_string().contains("time.wall"));
    }

    #[test]
    fn malformed_lines_are_errors_only_inside_the_report() {
        let before = format!("PASS\n{}", all_pass());
        assert!(parse(&before).is_ok());
        let inside = all_pass().replace("PASS time.wall some detail", "PASS");
        assert!(parse(&inside).unwrap_err().to_string().contains("without a case name"));
        let bad_end = all_pass().replace(" skip=0", "");
        assert!(parse(&bad_end).unwrap_err().to_string().contains("CONFORMANCE END"));
        let bad_begin = all_pass().replace("backend=unix", "unix");
        assert!(parse(&bad_begin).unwrap_err().to_string().contains("backend="));
    }
}
