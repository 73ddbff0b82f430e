//! A server's "ready" line: the guest has bound what it serves, and the host side may
//! start talking to it. `what` names the service, `detail` (optional) where it is:
//!
//! ```text
//! READY net 10.0.0.2
//! ```

use core::fmt;

/// The first word of a ready line.
pub const PREFIX: &str = "READY";

/// A ready line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready<'a> {
    /// What is ready (one word): `net` for the conformance app's network cases.
    pub what: &'a str,
    /// The rest of the line (an address, say); empty for none.
    pub detail: &'a str,
}

impl<'a> Ready<'a> {
    /// Parses a ready line (trailing whitespace allowed); `None` for any other line.
    pub fn parse(line: &'a str) -> Option<Ready<'a>> {
        let rest = crate::after_word(line, PREFIX)?;
        let (what, detail) = rest.split_once(' ').unwrap_or((rest, ""));
        (!what.is_empty()).then_some(Ready { what, detail })
    }
}

impl fmt::Display for Ready<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX} {}", self.what)?;
        if !self.detail.is_empty() {
            write!(f, " {}", self.detail)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;

    use super::*;

    #[test]
    fn ready_lines_round_trip() {
        for ready in [
            Ready { what: "net", detail: "10.0.0.2" },
            Ready { what: "std.net", detail: "peer" },
            Ready { what: "x", detail: "" },
        ] {
            assert_eq!(Ready::parse(&ready.to_string()), Some(ready));
        }
        assert_eq!(Ready::parse("READY net 10.0.0.2\r"), Some(Ready { what: "net", detail: "10.0.0.2" }));
        for other in ["READY", "READY ", "READYnet", "PASS net.arp", ""] {
            assert_eq!(Ready::parse(other), None, "{other:?}");
        }
    }
}
