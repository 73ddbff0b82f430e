//! An exit status that QEMU's exit port cannot carry exactly. rt-unikraft's glue writes
//! `min(status, EXACT_MAX) + 1` to the `isa-debug-exit` port; a status of [`EXACT_MAX`] or
//! more is also printed on the console, and the host takes it from there:
//!
//! ```text
//! rt-unikraft: exit status 200
//! ```
//!
//! The writer is C (`rt-unikraft/glue/main.c`, `printf` of [`PREFIX`] and `%u`); a test
//! of the reader (cargo-unikraft's `runner::qemu`) checks that the glue's format string
//! and its `RT_UNIKRAFT_EXIT_EXACT_MAX` are this grammar.

use core::fmt;

/// The words before the status.
pub const PREFIX: &str = "rt-unikraft: exit status ";
/// Statuses below this travel exactly through the exit port; the others on the console
/// too (glue/main.c's `RT_UNIKRAFT_EXIT_EXACT_MAX`).
pub const EXACT_MAX: u8 = 126;

/// The status an exit-status line carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus(pub u8);

impl ExitStatus {
    /// Parses an exit-status line (surrounding whitespace allowed): `Some(Ok(status))`,
    /// `Some(Err(()))` for the line with a malformed status, `None` for any other line.
    pub fn parse(line: &str) -> Option<Result<ExitStatus, ()>> {
        let status = line.trim().strip_prefix(PREFIX)?;
        Some(status.trim().parse::<u8>().map(ExitStatus).map_err(|_| ()))
    }

    /// The status carried by the last exit-status line of a console transcript (a guest
    /// prints one at most, but the transcript may hold an earlier run's): `None` when
    /// there is none, `Some(Err(()))` when it is malformed.
    pub fn last_in(transcript: &str) -> Option<Result<ExitStatus, ()>> {
        transcript.lines().rev().find_map(ExitStatus::parse)
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;

    use super::*;

    #[test]
    fn statuses_round_trip_and_the_last_line_counts() {
        for status in [0, 126, 200, 255] {
            assert_eq!(ExitStatus::parse(&ExitStatus(status).to_string()), Some(Ok(ExitStatus(status))));
        }
        assert_eq!(ExitStatus::parse("rt-unikraft: exit status 200\r"), Some(Ok(ExitStatus(200))));
        assert_eq!(ExitStatus::parse("rt-unikraft: exit status 256"), Some(Err(())));
        assert_eq!(ExitStatus::parse("exit status 7"), None);
        assert_eq!(
            ExitStatus::last_in("x\nrt-unikraft: exit status 130\nrt-unikraft: exit status 200\n"),
            Some(Ok(ExitStatus(200)))
        );
        assert_eq!(ExitStatus::last_in("no line"), None);
    }
}
