//! A panic's backtrace from rt-unikraft (apps with `backtrace = true`): the return
//! addresses of the panicking thread's stack, innermost first, on one line. The image has
//! no symbol names; the host symbolizes the addresses from the debug image.
//!
//! ```text
//! rt-unikraft backtrace: 0x1af089 0x1afeaf
//! ```

use core::fmt;

/// The words that start a backtrace line.
pub const PREFIX: &str = "rt-unikraft backtrace:";

/// A backtrace line: its return addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backtrace<'a> {
    /// Return addresses, innermost frame first.
    pub addresses: &'a [usize],
}

impl fmt::Display for Backtrace<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PREFIX)?;
        for address in self.addresses {
            write!(f, " {address:#x}")?;
        }
        Ok(())
    }
}

/// The return addresses of a backtrace line (surrounding whitespace allowed), or `None`
/// when `line` is not one or holds a word that is not a `0x` hexadecimal address.
pub fn parse(line: &str) -> Option<Addresses<'_>> {
    let rest = line.trim().strip_prefix(PREFIX)?;
    let addresses = Addresses(rest.split_whitespace());
    addresses.clone().all(|a| a.is_some()).then_some(addresses)
}

/// The addresses of a parsed backtrace line, in order (see [`parse`]); each is `Some`.
#[derive(Debug, Clone)]
pub struct Addresses<'a>(core::str::SplitWhitespace<'a>);

impl Iterator for Addresses<'_> {
    type Item = Option<u64>;
    fn next(&mut self) -> Option<Option<u64>> {
        let word = self.0.next()?;
        Some(word.strip_prefix("0x").and_then(|hex| u64::from_str_radix(hex, 16).ok()))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;
    use std::vec::Vec;

    use super::*;

    fn addresses(line: &str) -> Option<Vec<u64>> {
        parse(line).map(|a| a.map(|a| a.unwrap()).collect())
    }

    #[test]
    fn backtraces_round_trip_and_other_lines_do_not_parse() {
        let line = Backtrace { addresses: &[0x10a2b3, 0x1000] }.to_string();
        assert_eq!(line, "rt-unikraft backtrace: 0x10a2b3 0x1000");
        assert_eq!(addresses(&line), Some(std::vec![0x10a2b3, 0x1000]));
        assert_eq!(addresses(&(line + "\r")), Some(std::vec![0x10a2b3, 0x1000]));
        let empty = Backtrace { addresses: &[] }.to_string();
        assert_eq!(addresses(&empty), Some(std::vec![]));
        assert_eq!(addresses("rt-unikraft backtrace: 0xzz"), None);
        assert_eq!(addresses("rt-unikraft backtrace: 1000"), None);
        assert_eq!(addresses("hello"), None);
    }
}
