//! The conformance suite's wire protocol: everything the guest app (`conformance/`) and the
//! host runner (`cargo xtask conformance`) must agree on, written once.
//!
//! * [`case`] and [`CASES`]: the case names the guest reports, in report order;
//! * [`net`]: the host peer's ports, payloads and sizes, and the TCP byte pattern;
//! * [`std_net`] and [`STD_NET_CASES`]: the `std.net.*` section, which its own guest
//!   (`conformance/std-net`, std sockets) reports in a second run;
//! * [`block`]: the sectors the guest writes and the pattern the host checks in the image;
//! * [`report`]: the report grammar, formatted by the guest ([`report::Line`]'s `Display`)
//!   and parsed by the host ([`report::Line::parse`]):
//!
//! ```text
//! CONFORMANCE BEGIN backend=<label>
//! PASS|FAIL|SKIP <case> <detail...>
//! CONFORMANCE END pass=N fail=N skip=N
//! ```
//!
//! `#![no_std]` without `alloc` and without dependencies, so every backend's guest (solo5's
//! `no_std` staticlib included) links it as it is.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![no_std]

/// The names of the cases the guest reports. Groups that are run (or skipped) together
/// are arrays: [`HEAP_CASES`], [`STD_CASES`], [`NET_CASES`], [`BLOCK_CASES`].
pub mod case {
    /// 1000 reads of the monotonic clock never go backwards.
    pub const TIME_MONOTONIC: &str = "time.monotonic";
    /// A sleep is never early and at most a little late.
    pub const TIME_SLEEP: &str = "time.sleep";
    /// The wall clock is between 2020 and 2100.
    pub const TIME_WALL: &str = "time.wall";
    /// Two draws of random bytes differ and are not nearly constant.
    pub const RANDOM_BYTES: &str = "random.bytes";
    /// The heap counters follow a 1 MiB allocation, its release and the peak.
    pub const HEAP_STATS: &str = "heap.stats";
    /// Rounds of allocations leave as many bytes and blocks in use as before.
    pub const HEAP_SOAK: &str = "heap.soak";
    /// Boot arguments parse: typed values, unknown and malformed keys refused.
    pub const ARGS_PARSE: &str = "args.parse";
    /// The guest resolves the host's MAC, sends [`net::PROBE`](crate::net::PROBE) and gets
    /// [`net::PROBE_ACK`](crate::net::PROBE_ACK) back.
    pub const NET_ARP: &str = "net.arp";
    /// The guest pings the host and gets the matching echo reply.
    pub const NET_ICMP: &str = "net.icmp";
    /// The guest echoes the host's [`net::UDP_ECHO_DATAGRAMS`](crate::net::UDP_ECHO_DATAGRAMS) datagrams.
    pub const NET_UDP_ECHO: &str = "net.udp-echo";
    /// The guest verifies and echoes [`net::TCP_BYTES`](crate::net::TCP_BYTES) of a known pattern over TCP.
    pub const NET_TCP: &str = "net.tcp";
    /// A pattern written to the disk reads back intact.
    pub const BLOCK_WRITE_READ: &str = "block.write-read";
    /// A flush completes.
    pub const BLOCK_FLUSH: &str = "block.flush";
    /// Requests past the end or misaligned are refused before they reach the device.
    pub const BLOCK_OUT_OF_RANGE: &str = "block.out-of-range";
    /// Through shared-core's encrypted layer on an MBR partition of the disk
    /// ([`block::ENCRYPTED_FIRST_SECTOR`](crate::block::ENCRYPTED_FIRST_SECTOR)): the
    /// pattern is written and read back, and a flipped ciphertext bit fails the read.
    pub const BLOCK_ENCRYPTED: &str = "block.encrypted";
    /// `std::net` ([`std_net`](crate::std_net)): 256 KiB of the TCP pattern through the
    /// host peer's TCP echo.
    pub const STD_NET_TCP_ECHO: &str = "std.net.tcp-echo";
    /// Datagrams through the host peer's UDP echo.
    pub const STD_NET_UDP_ECHO: &str = "std.net.udp-echo";
    /// A connect to the host's closed port fails with `ConnectionRefused` (ECONNREFUSED),
    /// blocking and with `connect_timeout`.
    pub const STD_NET_CONNECT_REFUSED: &str = "std.net.connect-refused";
    /// The host peer resets a connection while the guest is blocked reading it: the read
    /// wakes with `ConnectionReset`.
    pub const STD_NET_RESET_WAKES_READER: &str = "std.net.reset-wakes-reader";
    /// `accept` on a non-blocking listener nobody connects to gives `WouldBlock`.
    pub const STD_NET_NONBLOCKING_ACCEPT: &str = "std.net.nonblocking-accept";
    /// std's resolver looks up [`std_net::DNS_NAME`](crate::std_net::DNS_NAME), which the
    /// host peer's DNS server answers with [`std_net::DNS_ANSWER`](crate::std_net::DNS_ANSWER).
    pub const STD_NET_DNS: &str = "std.net.dns";
}

/// Cases that need the counting allocator (SKIP where the backend does not count).
pub const HEAP_CASES: [&str; 2] = [case::HEAP_STATS, case::HEAP_SOAK];

/// The std section, in report order (SKIP on backends without std). The guest runs them
/// with its own table of functions, in this order.
pub const STD_CASES: [&str; 12] = [
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
];

/// The cases played against the host peer ([`net`]).
pub const NET_CASES: [&str; 4] = [case::NET_ARP, case::NET_ICMP, case::NET_UDP_ECHO, case::NET_TCP];

/// The block device cases ([`block`]).
pub const BLOCK_CASES: [&str; 4] =
    [case::BLOCK_WRITE_READ, case::BLOCK_FLUSH, case::BLOCK_OUT_OF_RANGE, case::BLOCK_ENCRYPTED];

/// The `std.net` section, in report order: `std::net` against the host peer
/// ([`std_net`]). Not part of [`CASES`]: the main guest drives the NIC through shared-core's
/// `Stack`, and on Unikraft one image cannot also give it to std's sockets, so a second
/// guest (`conformance/std-net`, `sockets = true`) reports these in a run of its own, and
/// the runner merges them into the report (or reports them SKIP where there is no such
/// guest).
pub const STD_NET_CASES: [&str; 6] = [
    case::STD_NET_TCP_ECHO,
    case::STD_NET_UDP_ECHO,
    case::STD_NET_CONNECT_REFUSED,
    case::STD_NET_RESET_WAKES_READER,
    case::STD_NET_NONBLOCKING_ACCEPT,
    case::STD_NET_DNS,
];

/// Every case the main guest reports, in report order; the host fails a report missing any.
pub const CASES: [&str; 27] = concat(&[
    &[case::TIME_MONOTONIC, case::TIME_SLEEP, case::TIME_WALL, case::RANDOM_BYTES],
    &HEAP_CASES,
    &[case::ARGS_PARSE],
    &STD_CASES,
    &NET_CASES,
    &BLOCK_CASES,
]);

/// The groups one after another; a length that does not add up is a compile-time error.
const fn concat<const N: usize>(groups: &[&[&'static str]]) -> [&'static str; N] {
    let mut all = [""; N];
    let mut n = 0;
    let mut g = 0;
    while g < groups.len() {
        let mut i = 0;
        while i < groups[g].len() {
            all[n] = groups[g][i];
            n += 1;
            i += 1;
        }
        g += 1;
    }
    assert!(n == N, "CASES is longer than its groups");
    all
}

/// The net exchange (docs/architecture.md): the guest is 10.0.0.2, the host 10.0.0.1.
pub mod net {
    /// What the guest's ready line names (`console_protocol::ready::Ready`, `READY net
    /// <address>`) once its sockets are bound: the host starts its side then.
    pub const READY_WHAT: &str = "net";
    /// Host UDP port the guest's probe goes to (`net.arp`).
    pub const PROBE_PORT: u16 = 5555;
    /// The guest's probe datagram.
    pub const PROBE: &[u8] = b"probe";
    /// The host's answer to [`PROBE`].
    pub const PROBE_ACK: &[u8] = b"probe-ack";
    /// Guest UDP port that echoes datagrams (`net.udp-echo`).
    pub const UDP_ECHO_PORT: u16 = 7;
    /// How many distinct datagrams the host sends and the guest must echo.
    pub const UDP_ECHO_DATAGRAMS: usize = 10;
    /// Guest TCP port that checks and echoes the stream (`net.tcp`).
    pub const TCP_ECHO_PORT: u16 = 8000;
    /// Length of the host's TCP stream: 256 KiB of [`tcp_byte`].
    pub const TCP_BYTES: usize = 262_144;

    /// Byte `offset` of the host's TCP stream.
    pub const fn tcp_byte(offset: usize) -> u8 {
        (offset.wrapping_mul(7).wrapping_add(3) & 0xff) as u8
    }
}

/// The `std.net` exchange: the guest (std sockets, 10.0.0.2 on Unikraft, the namespace's
/// own sockets on unix) is the client of the host peer (`xtask peer std-net` on
/// 10.0.0.1), which serves everything below at once until the guest is done.
pub mod std_net {
    /// The host's TCP echo: the guest sends [`net::TCP_BYTES`](crate::net::TCP_BYTES) of
    /// [`net::tcp_byte`](crate::net::tcp_byte), the host echoes them and closes after the
    /// guest's FIN.
    pub const TCP_ECHO_PORT: u16 = 9100;
    /// The host's UDP echo (every datagram back to its sender).
    pub const UDP_ECHO_PORT: u16 = 9100;
    /// How many distinct datagrams the guest sends to [`UDP_ECHO_PORT`].
    pub const UDP_DATAGRAMS: usize = 10;
    /// The host accepts one connection here, waits for its first byte and closes without
    /// reading it: the host's kernel resets the connection.
    pub const RESET_PORT: u16 = 9101;
    /// Nobody listens here on the host: its kernel refuses a connect.
    pub const CLOSED_PORT: u16 = 9;
    /// The name the guest looks up; the host peer's DNS server (port 53 on the host, the
    /// guest's default resolver) answers every A question.
    pub const DNS_NAME: &str = "conformance.test";
    /// The host peer's answer: an address of TEST-NET-1 (RFC 5737), which no other source
    /// (`/etc/hosts`, a real server) would give for [`DNS_NAME`].
    pub const DNS_ANSWER: [u8; 4] = [192, 0, 2, 7];
    /// The line the host peer prints once it serves everything: the runner boots the guest
    /// after it.
    pub const PEER_READY: &str = "READY std.net peer";
}

/// The block exchange: the guest writes [`SECTORS`](block::SECTORS) sectors from
/// [`FIRST_SECTOR`](block::FIRST_SECTOR) with [`byte`](block::byte), and the host finds the
/// same bytes in the disk image afterwards.
pub mod block {
    /// The first sector the guest writes (sector 0 is left alone, as an MBR would be).
    pub const FIRST_SECTOR: u64 = 1;
    /// How many sectors the guest writes.
    pub const SECTORS: u64 = 8;
    /// `block.encrypted`: the guest writes an MBR in sector 0 with one partition (type
    /// [`ENCRYPTED_KIND`]) of [`ENCRYPTED_SECTORS`] sectors from here, formats it with the
    /// encrypted layer and writes the pattern to its logical sectors
    /// [`FIRST_SECTOR`]..+[`SECTORS`]. The host finds none of those plaintext sectors in the
    /// partition.
    pub const ENCRYPTED_FIRST_SECTOR: u64 = 64;
    /// Length of that partition (64 KiB at 512-byte sectors).
    pub const ENCRYPTED_SECTORS: u64 = 128;
    /// Its MBR type byte (0xda, "non-FS data").
    pub const ENCRYPTED_KIND: u8 = 0xda;

    /// Byte `offset` of `sector`: `sector * 31 + offset`, modulo 256.
    pub const fn byte(sector: u64, offset: usize) -> u8 {
        (sector as u8).wrapping_mul(31).wrapping_add(offset as u8)
    }

    /// Fills `buf`, which starts at `first_sector`, with the pattern.
    pub fn fill(buf: &mut [u8], first_sector: u64, sector_size: usize) {
        for (k, sector) in buf.chunks_mut(sector_size).enumerate() {
            for (i, b) in sector.iter_mut().enumerate() {
                *b = byte(first_sector + k as u64, i);
            }
        }
    }

    /// The first `(sector, offset)` at which `buf`, which starts at `first_sector`, differs
    /// from the pattern, or `None` when it holds the pattern.
    pub fn first_mismatch(buf: &[u8], first_sector: u64, sector_size: usize) -> Option<(u64, usize)> {
        buf.chunks(sector_size).enumerate().find_map(|(k, sector)| {
            let sector_no = first_sector + k as u64;
            sector.iter().enumerate().find(|&(i, &b)| b != byte(sector_no, i)).map(|(i, _)| (sector_no, i))
        })
    }
}

/// The report grammar: one [`Line`](report::Line) per console line; other console lines are
/// chatter.
pub mod report {
    use core::fmt;

    /// A case's outcome, the first word of its line.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Status {
        /// The case passed.
        Pass,
        /// The case failed; its detail says how.
        Fail,
        /// The case did not run here; its detail says why.
        Skip,
    }

    impl Status {
        /// `PASS`, `FAIL` or `SKIP`.
        pub const fn word(self) -> &'static str {
            match self {
                Status::Pass => "PASS",
                Status::Fail => "FAIL",
                Status::Skip => "SKIP",
            }
        }

        fn from_word(word: &str) -> Option<Status> {
            [Status::Pass, Status::Fail, Status::Skip].into_iter().find(|s| s.word() == word)
        }
    }

    impl fmt::Display for Status {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.word())
        }
    }

    /// Case lines by status: what the END line states, and what a reader counts.
    #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
    pub struct Counts {
        /// `PASS` lines.
        pub pass: u32,
        /// `FAIL` lines.
        pub fail: u32,
        /// `SKIP` lines.
        pub skip: u32,
    }

    impl Counts {
        /// Counts one line of `status`.
        pub fn add(&mut self, status: Status) {
            match status {
                Status::Pass => self.pass += 1,
                Status::Fail => self.fail += 1,
                Status::Skip => self.skip += 1,
            }
        }
    }

    /// `pass=N fail=N skip=N`, as on the END line.
    impl fmt::Display for Counts {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "pass={} fail={} skip={}", self.pass, self.fail, self.skip)
        }
    }

    /// One report line. `Display` writes it (without the newline); [`Line::parse`] reads it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Line<'a> {
        /// `CONFORMANCE BEGIN backend=<label>`; the label runs to the end of the line.
        Begin {
            /// The backend's report label.
            backend: &'a str,
        },
        /// `<STATUS> <case> <detail>`; the case is one word, the detail the rest of the line
        /// (written with line breaks turned into spaces, so it stays one line).
        Case {
            /// The outcome.
            status: Status,
            /// The case's name (one of [`case`](crate::case)).
            case: &'a str,
            /// What happened, for a person.
            detail: &'a str,
        },
        /// `CONFORMANCE END pass=N fail=N skip=N`.
        End(Counts),
    }

    const BEGIN: &str = "CONFORMANCE BEGIN";
    const END: &str = "CONFORMANCE END";

    /// A line that claims to be a report line but does not follow the grammar.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum ParseError {
        /// A BEGIN line without `backend=<label>`.
        BadBegin,
        /// A PASS/FAIL/SKIP line without a case name.
        CaseWithoutName,
        /// An END line that is not `pass=N fail=N skip=N`.
        BadEnd,
    }

    impl fmt::Display for ParseError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(match self {
                ParseError::BadBegin => "a `CONFORMANCE BEGIN` line without `backend=<label>`",
                ParseError::CaseWithoutName => "a case line without a case name",
                ParseError::BadEnd => "a `CONFORMANCE END` line that is not `pass=N fail=N skip=N`",
            })
        }
    }

    impl core::error::Error for ParseError {}

    impl<'a> Line<'a> {
        /// Parses one console line (trailing whitespace, such as a serial console's `\r`,
        /// is ignored). `Ok(None)` is chatter: any line not starting with `PASS`, `FAIL`,
        /// `SKIP` or `CONFORMANCE BEGIN`/`END` as a word.
        pub fn parse(line: &'a str) -> Result<Option<Line<'a>>, ParseError> {
            let line = line.trim_end();
            if let Some(rest) = strip_word(line, BEGIN) {
                let backend = rest.strip_prefix("backend=").filter(|b| !b.is_empty()).ok_or(ParseError::BadBegin)?;
                return Ok(Some(Line::Begin { backend }));
            }
            if let Some(rest) = strip_word(line, END) {
                return parse_counts(rest).map(|c| Some(Line::End(c))).ok_or(ParseError::BadEnd);
            }
            let mut words = line.splitn(3, ' ');
            let Some(status) = words.next().and_then(Status::from_word) else { return Ok(None) };
            let case = words.next().filter(|c| !c.is_empty()).ok_or(ParseError::CaseWithoutName)?;
            Ok(Some(Line::Case { status, case, detail: words.next().unwrap_or("") }))
        }
    }

    /// `line` without `word` and the space after it, if it starts with that word.
    fn strip_word<'a>(line: &'a str, word: &str) -> Option<&'a str> {
        let rest = line.strip_prefix(word)?;
        if rest.is_empty() {
            Some(rest)
        } else {
            rest.strip_prefix(' ')
        }
    }

    fn parse_counts(text: &str) -> Option<Counts> {
        let mut fields = text.split(' ');
        let mut field = |key: &str| fields.next()?.strip_prefix(key)?.parse::<u32>().ok();
        let counts = Counts { pass: field("pass=")?, fail: field("fail=")?, skip: field("skip=")? };
        fields.next().is_none().then_some(counts)
    }

    impl fmt::Display for Line<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Line::Begin { backend } => write!(f, "{BEGIN} backend={backend}"),
                Line::End(counts) => write!(f, "{END} {counts}"),
                Line::Case { status, case, detail } => {
                    write!(f, "{status} {case}")?;
                    if !detail.is_empty() {
                        f.write_str(" ")?;
                        for (i, piece) in detail.split(['\n', '\r']).enumerate() {
                            if i > 0 {
                                f.write_str(" ")?;
                            }
                            f.write_str(piece)?;
                        }
                    }
                    Ok(())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::{String, ToString};

    use super::report::{Counts, Line, ParseError, Status};
    use super::*;

    fn round_trip(line: Line<'_>) -> String {
        let text = line.to_string();
        assert_eq!(Line::parse(&text), Ok(Some(line)), "{text:?}");
        text
    }

    #[test]
    fn formatted_lines_parse_back() {
        assert_eq!(round_trip(Line::Begin { backend: "solo5-spt" }), "CONFORMANCE BEGIN backend=solo5-spt");
        let end = Line::End(Counts { pass: 24, fail: 1, skip: 0 });
        assert_eq!(round_trip(end), "CONFORMANCE END pass=24 fail=1 skip=0");
        for status in [Status::Pass, Status::Fail, Status::Skip] {
            for case in CASES {
                round_trip(Line::Case { status, case, detail: "a detail: with words, 10.0.0.1:5555" });
                round_trip(Line::Case { status, case, detail: "" });
            }
        }
        assert_eq!(round_trip(Line::Case { status: Status::Skip, case: "net.tcp", detail: "" }), "SKIP net.tcp");
    }

    #[test]
    fn a_multi_line_detail_is_written_as_one_line() {
        let line = Line::Case { status: Status::Fail, case: "std.fs", detail: "first\nsecond\r\nthird" };
        let text = line.to_string();
        assert_eq!(text, "FAIL std.fs first second  third");
        assert_eq!(
            Line::parse(&text),
            Ok(Some(Line::Case { status: Status::Fail, case: "std.fs", detail: "first second  third" }))
        );
    }

    #[test]
    fn console_noise_is_tolerated_or_rejected() {
        assert_eq!(
            Line::parse("PASS time.wall 1 s\r"),
            Ok(Some(Line::Case { status: Status::Pass, case: "time.wall", detail: "1 s" }))
        );
        for chatter in ["", "READY net 10.0.0.2", "# net counters", "PASSING by", "MAYBE time.wall", "CONFORMANCE"] {
            assert_eq!(Line::parse(chatter), Ok(None), "{chatter:?}");
        }
        assert_eq!(Line::parse("PASS"), Err(ParseError::CaseWithoutName));
        assert_eq!(Line::parse("FAIL  two spaces"), Err(ParseError::CaseWithoutName));
        assert_eq!(Line::parse("CONFORMANCE BEGIN"), Err(ParseError::BadBegin));
        assert_eq!(Line::parse("CONFORMANCE BEGIN backend="), Err(ParseError::BadBegin));
        assert_eq!(Line::parse("CONFORMANCE BEGIN unix"), Err(ParseError::BadBegin));
        for bad in ["", " pass=1 fail=0", " pass=1 fail=0 skip=x", " fail=0 pass=1 skip=0", " pass=1 fail=0 skip=0 x=1"]
        {
            assert_eq!(Line::parse(&std::format!("CONFORMANCE END{bad}")), Err(ParseError::BadEnd), "{bad:?}");
        }
    }

    #[test]
    fn counts_follow_statuses() {
        let mut counts = Counts::default();
        for status in [Status::Pass, Status::Pass, Status::Fail, Status::Skip] {
            counts.add(status);
        }
        assert_eq!(counts, Counts { pass: 2, fail: 1, skip: 1 });
    }

    #[test]
    fn case_names_are_unique_words_in_group_order() {
        for (i, case) in CASES.iter().enumerate() {
            assert!(!case.is_empty() && !case.contains(char::is_whitespace), "{case:?}");
            assert!(!CASES[..i].contains(case), "{case} is listed twice");
        }
        let at = |group: &[&str]| CASES.windows(group.len()).position(|w| w == group);
        for group in [&HEAP_CASES[..], &STD_CASES, &NET_CASES, &BLOCK_CASES] {
            assert!(at(group).is_some(), "{group:?} is not a run of CASES");
        }
        assert!(STD_CASES.iter().all(|c| c.starts_with("std.")));
        assert_eq!(CASES[0], case::TIME_MONOTONIC);
        assert_eq!(CASES[26], case::BLOCK_ENCRYPTED);
    }

    #[test]
    fn std_net_cases_are_their_own_section() {
        for (i, case) in STD_NET_CASES.iter().enumerate() {
            assert!(case.starts_with("std.net.") && !case.contains(char::is_whitespace), "{case:?}");
            assert!(!STD_NET_CASES[..i].contains(case), "{case} is listed twice");
            assert!(!CASES.contains(case), "{case} is also a main-run case");
            round_trip(Line::Case { status: Status::Skip, case, detail: "no std" });
        }
        assert_ne!(std_net::RESET_PORT, std_net::TCP_ECHO_PORT);
        assert_ne!(std_net::CLOSED_PORT, std_net::TCP_ECHO_PORT);
    }

    #[test]
    fn block_pattern_is_sector_times_31_plus_offset() {
        // What the host checked and the guest wrote before the pattern moved here.
        for (sector, offset) in [(1u64, 0usize), (1, 511), (8, 0), (8, 300), (9, 255)] {
            assert_eq!(block::byte(sector, offset), ((sector * 31 + offset as u64) % 256) as u8);
        }
        let ss = 512;
        let mut disk = [0u8; 512 * 10];
        let first = block::FIRST_SECTOR as usize * ss;
        let written = &mut disk[first..first + block::SECTORS as usize * ss];
        block::fill(written, block::FIRST_SECTOR, ss);
        assert_eq!(written[ss + 2], block::byte(2, 2));
        assert_eq!(block::first_mismatch(written, block::FIRST_SECTOR, ss), None);
        written[3 * ss + 17] ^= 1;
        assert_eq!(block::first_mismatch(written, block::FIRST_SECTOR, ss), Some((4, 17)));
        // The pattern depends on the sector: starting elsewhere is a mismatch at once.
        assert_eq!(block::first_mismatch(&disk[first..first + ss], 2, ss), Some((2, 0)));
    }

    #[test]
    fn tcp_pattern() {
        let bytes: std::vec::Vec<u8> = (0..net::TCP_BYTES).map(net::tcp_byte).collect();
        assert_eq!(&bytes[..4], [3, 10, 17, 24]);
        assert_eq!(bytes[37], ((37 * 7 + 3) % 256) as u8);
        assert_eq!(net::TCP_BYTES, 256 * 1024);
        assert_ne!(net::PROBE, net::PROBE_ACK);
    }
}
