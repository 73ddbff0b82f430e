//! Reading libtest's output: how many tests passed, failed and were ignored, harness by
//! harness, and the first failure, from what `cargo test` or `cargo unikraft test`
//! printed (stdout and stderr in one stream).
//!
//! A harness that printed its `test result:` line is counted from it. One that ended
//! without it (an abort, a crash, a timeout) is counted from its `test NAME ... ok` lines,
//! so a partial run still shows how far it got. Doctests are not counted (`cargo unikraft
//! test` runs no doctests).

/// Totals over the harnesses of one run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub passed: u32,
    pub failed: u32,
    pub ignored: u32,
    /// Harnesses that ended without their `test result:` line.
    pub unfinished: u32,
    /// The first failure: the test's name and its panic message, or why a harness ended.
    pub first_failure: Option<String>,
}

/// How a line starts a new harness, per tool.
pub enum Tool {
    /// `cargo test`: `Running unittests src/lib.rs (...)`, `Running tests/x.rs (...)`,
    /// `Doc-tests name`.
    Cargo,
    /// `cargo unikraft test`: `cargo-unikraft: test harness `lib` as a unikernel`.
    CargoUnikraft,
}

enum Section {
    None,
    Harness,
    Doctests,
}

#[derive(Default)]
struct Harness {
    passed: u32,
    failed: u32,
    ignored: u32,
    result: Option<(u32, u32, u32)>,
}

/// Counts the tests in `output`.
pub fn count(tool: &Tool, output: &str) -> Counts {
    let mut counts = Counts::default();
    let mut harness: Option<Harness> = None;
    let mut section = Section::None;
    let mut failed_test: Option<String> = None;
    let mut lines = output.lines().peekable();
    while let Some(raw) = lines.next() {
        let line = raw.trim();
        let starts = match tool {
            Tool::Cargo => {
                if line.starts_with("Doc-tests ") {
                    Some(Section::Doctests)
                } else if line.starts_with("Running ") {
                    Some(Section::Harness)
                } else {
                    None
                }
            }
            Tool::CargoUnikraft => line
                .strip_prefix("cargo-unikraft: test harness ")
                .filter(|rest| rest.ends_with(" as a unikernel"))
                .map(|_| Section::Harness),
        };
        if let Some(next) = starts {
            finish(&mut counts, harness.take());
            if matches!(next, Section::Harness) {
                harness = Some(Harness::default());
            }
            section = next;
            continue;
        }
        if !matches!(section, Section::Harness) {
            continue;
        }
        let Some(current) = harness.as_mut() else { continue };
        if let Some(totals) = result_line(line) {
            current.result = Some(totals);
        } else if let Some((name, outcome)) = test_line(line) {
            match outcome {
                Outcome::Ok => current.passed += 1,
                Outcome::Ignored => current.ignored += 1,
                Outcome::Failed => {
                    current.failed += 1;
                    failed_test.get_or_insert_with(|| name.to_string());
                }
            }
        } else if let Some(name) = line.strip_prefix("---- ").and_then(|l| l.strip_suffix(" stdout ----")) {
            // The first failed test's captured output: its panic message is the line
            // after `thread 'NAME' panicked at FILE:LINE:COL:`.
            if counts.first_failure.is_none() && failed_test.as_deref() == Some(name) {
                counts.first_failure = Some(failure_message(name, &mut lines));
            }
        }
    }
    finish(&mut counts, harness.take());
    if counts.first_failure.is_none() {
        counts.first_failure = failed_test;
    }
    counts
}

fn finish(counts: &mut Counts, harness: Option<Harness>) {
    let Some(h) = harness else { return };
    let (passed, failed, ignored) = match h.result {
        Some(totals) => totals,
        None => {
            counts.unfinished += 1;
            (h.passed, h.failed, h.ignored)
        }
    };
    counts.passed += passed;
    counts.failed += failed;
    counts.ignored += ignored;
}

/// `NAME: message` from the lines after `---- NAME stdout ----`.
fn failure_message<'a>(name: &str, lines: &mut std::iter::Peekable<impl Iterator<Item = &'a str>>) -> String {
    let mut location = None;
    for _ in 0..4 {
        let Some(line) = lines.peek().map(|l| l.trim()) else { break };
        if line.starts_with("---- ") || line == "failures:" {
            break;
        }
        lines.next();
        // `thread 'NAME' panicked at FILE:LINE:COL:`; newer std adds the thread id:
        // `thread 'NAME' (2) panicked at ...`.
        if let Some(at) = line.strip_prefix("thread '").and_then(|l| l.split_once(" panicked at ")) {
            location = Some(at.1.trim_end_matches(':').to_string());
        } else if !line.is_empty() {
            return match location {
                Some(at) => format!("{name}: {line} ({at})"),
                None => format!("{name}: {line}"),
            };
        }
    }
    name.to_string()
}

enum Outcome {
    Ok,
    Failed,
    Ignored,
}

/// `test NAME ... ok` (also `ignored, reason` and `FAILED`); `bench` lines do not count.
fn test_line(line: &str) -> Option<(&str, Outcome)> {
    let (name, outcome) = line.strip_prefix("test ")?.rsplit_once(" ... ")?;
    let outcome = match outcome {
        "ok" => Outcome::Ok,
        "FAILED" => Outcome::Failed,
        o if o == "ignored" || o.starts_with("ignored, ") => Outcome::Ignored,
        _ => return None,
    };
    Some((name, outcome))
}

/// `test result: ok. 3 passed; 1 failed; 2 ignored; 0 measured; 0 filtered out; ...`.
fn result_line(line: &str) -> Option<(u32, u32, u32)> {
    let rest = line.strip_prefix("test result: ")?;
    let (_, fields) = rest.split_once(". ")?;
    let mut totals = (None, None, None);
    for field in fields.split(';') {
        let mut words = field.split_whitespace();
        let (Some(n), Some(what)) = (words.next(), words.next()) else { continue };
        let Ok(n) = n.parse::<u32>() else { continue };
        match what {
            "passed" => totals.0 = Some(n),
            "failed" => totals.1 = Some(n),
            "ignored" => totals.2 = Some(n),
            _ => {}
        }
    }
    Some((totals.0?, totals.1?, totals.2?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARGO: &str = "\
   Compiling x v1.0.0
     Running unittests src/lib.rs (target/debug/deps/x-1)

running 3 tests
test a ... ok
test b ... FAILED
test c ... ignored, slow

failures:

---- b stdout ----

thread 'b' (2) panicked at src/lib.rs:10:5:
assertion `left == right` failed
  left: 1

failures:
    b

test result: FAILED. 1 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s

     Running tests/t.rs (target/debug/deps/t-2)

running 2 tests
test t1 ... ok
test t2 ... ok

test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s

   Doc-tests x

running 5 tests
test src/lib.rs - f (line 3) ... ok

test result: ok. 5 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.30s
";

    #[test]
    fn cargo_test_output_is_counted_without_doctests() {
        let counts = count(&Tool::Cargo, CARGO);
        assert_eq!((counts.passed, counts.failed, counts.ignored, counts.unfinished), (3, 1, 1, 0));
        assert_eq!(counts.first_failure.as_deref(), Some("b: assertion `left == right` failed (src/lib.rs:10:5)"));
    }

    #[test]
    fn a_harness_that_ended_early_is_counted_from_its_test_lines() {
        let output = "\
cargo-unikraft: test harness `lib` as a unikernel
running 4 tests
test f1 ... ok
test f2 ... ok
test f3 ... ignored
cargo-unikraft: test harness `integration` as a unikernel
running 1 test
test g ... ok

test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s
error: test failed in `lib` (aborted)
";
        let counts = count(&Tool::CargoUnikraft, output);
        assert_eq!((counts.passed, counts.failed, counts.ignored, counts.unfinished), (3, 0, 1, 1));
        assert_eq!(counts.first_failure, None);
    }

    #[test]
    fn result_lines_parse_and_other_lines_do_not() {
        assert_eq!(
            result_line("test result: ok. 12 passed; 0 failed; 3 ignored; 0 measured; 0 filtered out; finished in 1s"),
            Some((12, 0, 3))
        );
        assert_eq!(result_line("test result: nothing"), None);
        assert!(test_line("test a::b ... bench:  10 ns/iter").is_none());
        assert!(matches!(test_line("test x - should panic ... ok"), Some(("x - should panic", Outcome::Ok))));
    }
}
