//! Heap over time: with the boot argument `--heap-sample-ms=N` (N > 0) a guest under
//! `unikernel::main!` prints its heap counters every N ms, one line per sample, and a
//! count of the samples it could not print:
//!
//! ```text
//! heap-sample t_ms=1500 live=20480 peak=1069056 blocks=37
//! heap-sample-dropped count=3
//! ```
//!
//! ```
//! use console_protocol::heap_sample::Sample;
//!
//! let sample = Sample { t_ms: 1500, live: 20480, peak: 1_069_056, blocks: 37 };
//! let mut line = [0u8; Sample::MAX_LINE];
//! let text = console_protocol::heap_sample::format_into(&mut line, &sample).unwrap();
//! assert_eq!(Sample::parse(text), Some(sample));
//! ```

use core::fmt;

/// The boot argument that turns sampling on (milliseconds between samples), without `--`.
pub const BOOT_ARG: &str = "heap-sample-ms";
/// The first word of a sample line.
pub const PREFIX: &str = "heap-sample";
/// The first word of a dropped-samples line.
pub const DROPPED_PREFIX: &str = "heap-sample-dropped";

/// One sample: what a `heap-sample` line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sample {
    /// Milliseconds since the app started.
    pub t_ms: u64,
    /// Bytes in use.
    pub live: u64,
    /// The most bytes ever in use.
    pub peak: u64,
    /// Blocks in use.
    pub blocks: u64,
}

impl Sample {
    /// The longest line a sample formats to, newline included (every field at `u64::MAX`).
    pub const MAX_LINE: usize = 128;

    /// Parses a `heap-sample` line (trailing whitespace allowed); `None` for any other line.
    pub fn parse(line: &str) -> Option<Sample> {
        let mut words = crate::after_word(line, PREFIX)?.split(' ');
        let mut field = |key: &str| words.next()?.strip_prefix(key)?.strip_prefix('=')?.parse::<u64>().ok();
        let sample =
            Sample { t_ms: field("t_ms")?, live: field("live")?, peak: field("peak")?, blocks: field("blocks")? };
        words.next().is_none().then_some(sample)
    }
}

impl fmt::Display for Sample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX} t_ms={} live={} peak={} blocks={}", self.t_ms, self.live, self.peak, self.blocks)
    }
}

/// Samples the guest took but could not print (its ring was full), since the last such line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    /// How many.
    pub count: u64,
}

impl Dropped {
    /// Parses a `heap-sample-dropped count=N` line; `None` for any other line.
    pub fn parse(line: &str) -> Option<Dropped> {
        let count = crate::after_word(line, DROPPED_PREFIX)?.strip_prefix("count=")?.parse().ok()?;
        Some(Dropped { count })
    }
}

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{DROPPED_PREFIX} count={}", self.count)
    }
}

/// Formats `line` and a newline into `buf`, with no allocation (the guest prints samples
/// from code that must not allocate); the text written, or `None` when it does not fit.
pub fn format_into<'b>(buf: &'b mut [u8], line: &dyn fmt::Display) -> Option<&'b str> {
    struct Cursor<'b> {
        buf: &'b mut [u8],
        len: usize,
    }
    impl fmt::Write for Cursor<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let end = self.len + s.len();
            self.buf.get_mut(self.len..end).ok_or(fmt::Error)?.copy_from_slice(s.as_bytes());
            self.len = end;
            Ok(())
        }
    }
    let mut cursor = Cursor { buf, len: 0 };
    fmt::Write::write_fmt(&mut cursor, format_args!("{line}\n")).ok()?;
    let Cursor { buf, len } = cursor;
    core::str::from_utf8(&buf[..len]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_round_trip_and_other_lines_do_not_parse() {
        let mut buf = [0u8; Sample::MAX_LINE];
        let s = Sample { t_ms: 1500, live: 20480, peak: 1_069_056, blocks: 37 };
        let text = format_into(&mut buf, &s).unwrap();
        assert_eq!(text, "heap-sample t_ms=1500 live=20480 peak=1069056 blocks=37\n");
        assert_eq!(Sample::parse(text), Some(s));
        assert_eq!(Sample::parse("heap-sample t_ms=1500 live=20480 peak=1069056 blocks=37\r"), Some(s));
        let max = Sample { t_ms: u64::MAX, live: u64::MAX, peak: u64::MAX, blocks: u64::MAX };
        let text = format_into(&mut buf, &max).expect("the longest line fits MAX_LINE");
        assert_eq!(Sample::parse(text), Some(max));
        for other in [
            "",
            "heap-sample",
            "heap-sample t_ms=1 live=2 peak=3",
            "heap-sample t_ms=1 live=2 peak=3 blocks=4 more=5",
            "heap-sample live=2 t_ms=1 peak=3 blocks=4",
            "heap-sample t_ms=x live=2 peak=3 blocks=4",
            "heap-samplet_ms=1 live=2 peak=3 blocks=4",
            "heap-sample-dropped count=3",
            "PASS heap.soak",
        ] {
            assert_eq!(Sample::parse(other), None, "{other:?}");
        }
    }

    #[test]
    fn dropped_lines_round_trip() {
        let mut buf = [0u8; Sample::MAX_LINE];
        let text = format_into(&mut buf, &Dropped { count: 3 }).unwrap();
        assert_eq!(text, "heap-sample-dropped count=3\n");
        assert_eq!(Dropped::parse(text), Some(Dropped { count: 3 }));
        for other in ["heap-sample-dropped", "heap-sample-dropped count=x", "heap-sample t_ms=1 live=2 peak=3 blocks=4"]
        {
            assert_eq!(Dropped::parse(other), None, "{other:?}");
        }
        assert!(format_into(&mut [0u8; 4], &Dropped { count: 3 }).is_none(), "too small a buffer is refused");
    }
}
