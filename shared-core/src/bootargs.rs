//! Boot-time keys: a small typed parser for `--key=value` boot arguments.
//!
//! Build-time keys live in `Cargo.toml`; boot-time keys arrive on the kernel command line
//! (Unikraft, solo5) or as process arguments (unix). This parser behaves the same on every
//! backend:
//!
//! ```
//! use shared_core::bootargs::{BootArgs, Ipv4Cidr};
//! let mut args = BootArgs::parse(["--ipv4=10.0.0.2/24", "--port=8080"]).unwrap();
//! let ip: Ipv4Cidr = args.required("ipv4", "the guest address").unwrap();
//! let port: u16 = args.optional("port", 80, "the listening port").unwrap();
//! args.finish().unwrap();
//! assert_eq!((ip.prefix_len, port), (24, 8080));
//! ```
//!
//! Every key the program asks for is remembered, so [`BootArgs::finish`] can reject an
//! unknown key and list the known ones. [`BootArgs::or_exit`] prints an error and exits
//! with status 2, which is what apps want at start-up.
//!
//! Values are refused at the door rather than later: an [`Ipv4Cidr`] must be usable as
//! a host's address (not `0.0.0.0`, a broadcast, a multicast or a network address), and
//! every backend refuses an argument that is not UTF-8 before the app starts
//! ([`args_from_bytes`], status 2), naming it. Where the arguments arrive as one command
//! line (solo5), [`split_cmdline`] splits it with the quoting rule documented there.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

/// A parsed `--key=value` / `--flag` argument list.
#[derive(Debug, Clone)]
pub struct BootArgs {
    entries: Vec<Entry>,
    known: Vec<(&'static str, &'static str)>,
}

#[derive(Debug, Clone)]
struct Entry {
    key: String,
    value: Option<String>,
    used: bool,
}

/// What is wrong with the boot arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgError {
    /// An argument that does not start with `--`.
    NotAKey(String),
    /// The same key given twice.
    Duplicate(String),
    /// A key no part of the program asked for; `known` lists the keys that exist.
    Unknown {
        /// The key as given.
        key: String,
        /// `--key: help` lines for every key the program knows.
        known: Vec<String>,
    },
    /// A required key is missing.
    Missing {
        /// The key.
        key: String,
        /// What it is for.
        help: &'static str,
    },
    /// A value that does not parse as the key's type.
    Malformed {
        /// The key.
        key: String,
        /// The value given.
        value: String,
        /// What was expected.
        expected: String,
    },
    /// A value of the right form that cannot be used (`--ipv4=255.255.255.255/32`).
    Unusable {
        /// The key.
        key: String,
        /// The value given.
        value: String,
        /// Why it cannot be used.
        why: String,
    },
    /// An argument that is not valid UTF-8.
    NotUtf8 {
        /// Its position among the boot arguments, from 1.
        position: usize,
        /// The argument with each invalid sequence shown as U+FFFD.
        lossy: String,
    },
    /// A command line that cannot be split into arguments ([`split_cmdline`]).
    BadCommandLine(&'static str),
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::NotAKey(arg) => {
                write!(f, "boot argument `{arg}` is not of the form --key=value or --flag")
            }
            ArgError::Duplicate(key) => write!(f, "boot argument --{key} is given twice"),
            ArgError::Unknown { key, known } => {
                write!(f, "unknown boot argument --{key}")?;
                if known.is_empty() {
                    write!(f, " (this program takes no boot arguments)")
                } else {
                    write!(f, "; known arguments:")?;
                    for line in known {
                        write!(f, "\n  {line}")?;
                    }
                    Ok(())
                }
            }
            ArgError::Missing { key, help } => {
                write!(f, "missing boot argument --{key} ({help})")
            }
            ArgError::Malformed { key, value, expected } => {
                write!(f, "boot argument --{key}={value} is malformed: expected {expected}")
            }
            ArgError::Unusable { key, value, why } => {
                write!(f, "boot argument --{key}={value} cannot be used: {why}")
            }
            ArgError::NotUtf8 { position, lossy } => write!(
                f,
                "boot argument {position} (`{lossy}`, invalid bytes shown as \u{fffd}) is not valid UTF-8; \
                 boot arguments must be UTF-8"
            ),
            ArgError::BadCommandLine(why) => write!(f, "cannot split the boot command line: {why}"),
        }
    }
}

/// A type a boot argument value can be parsed into.
pub trait FromArg: Sized {
    /// Describes the expected form, for error messages (`"a number 0..=65535"`).
    fn expected() -> String;
    /// Parses the value, or `None` if malformed.
    fn from_arg(value: &str) -> Option<Self>;
    /// Why a well-formed value still cannot be used, if it cannot (checked by
    /// [`BootArgs`] after [`from_arg`](Self::from_arg) succeeded). The default accepts
    /// every value.
    fn unusable(&self) -> Option<String> {
        None
    }
}

macro_rules! from_arg_via_fromstr {
    ($($ty:ty => $what:expr),* $(,)?) => {$(
        impl FromArg for $ty {
            fn expected() -> String { $what.to_string() }
            fn from_arg(value: &str) -> Option<Self> { <$ty>::from_str(value).ok() }
        }
    )*};
}

from_arg_via_fromstr! {
    u8 => "an integer 0..=255",
    u16 => "an integer 0..=65535",
    u32 => "an integer 0..=4294967295",
    u64 => "a non-negative integer",
    usize => "a non-negative integer",
    i32 => "an integer",
    String => "a string",
}

impl FromArg for bool {
    fn expected() -> String {
        "true or false".to_string()
    }
    fn from_arg(value: &str) -> Option<Self> {
        match value {
            "true" | "yes" | "1" => Some(true),
            "false" | "no" | "0" => Some(false),
            _ => None,
        }
    }
}

impl FromArg for smoltcp::wire::Ipv4Address {
    fn expected() -> String {
        "an IPv4 address like 10.0.0.2".to_string()
    }
    fn from_arg(value: &str) -> Option<Self> {
        parse_ipv4(value)
    }
}

/// An IPv4 address with a prefix length, as in `10.0.0.2/24`: an interface's address.
///
/// As a boot argument it must be usable as a host's address, so [`BootArgs`] refuses
/// (with [`ArgError::Unusable`]) `0.0.0.0`, `255.255.255.255`, multicast addresses
/// (`224.0.0.0/4`), and, for prefixes up to /30, the subnet's network and broadcast
/// addresses (`10.0.0.0/24`, `10.0.0.255/24`). /31 and /32 have no such addresses
/// (RFC 3021). [`Ipv4Cidr::host_problem`] is the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Cidr {
    /// The address.
    pub address: smoltcp::wire::Ipv4Address,
    /// The prefix length, 0..=32.
    pub prefix_len: u8,
}

impl FromArg for Ipv4Cidr {
    fn expected() -> String {
        "an IPv4 address with prefix like 10.0.0.2/24".to_string()
    }
    fn from_arg(value: &str) -> Option<Self> {
        let (addr, len) = value.split_once('/')?;
        let prefix_len: u8 = len.parse().ok()?;
        if prefix_len > 32 {
            return None;
        }
        Some(Ipv4Cidr { address: parse_ipv4(addr)?, prefix_len })
    }
    fn unusable(&self) -> Option<String> {
        self.host_problem()
    }
}

impl Ipv4Cidr {
    /// Why this cannot be a host's address, or `None` if it can (see the type's docs).
    pub fn host_problem(&self) -> Option<String> {
        let a = self.address;
        let bits = u32::from_be_bytes(a.octets());
        let generic = if a.is_unspecified() {
            Some("the unspecified address")
        } else if a.is_broadcast() {
            Some("the limited broadcast address")
        } else if a.is_multicast() {
            Some("a multicast address")
        } else {
            None
        };
        if let Some(what) = generic {
            return Some(alloc::format!("{a} is {what}, not a host address (like 10.0.0.2/24)"));
        }
        if self.prefix_len <= 30 {
            let host_mask = u32::MAX.checked_shr(u32::from(self.prefix_len)).unwrap_or(0);
            let network = smoltcp::wire::Ipv4Address::from_bits(bits & !host_mask);
            let which = match bits & host_mask {
                0 => Some("network"),
                h if h == host_mask => Some("broadcast"),
                _ => None,
            };
            if let Some(which) = which {
                return Some(alloc::format!(
                    "{a} is the {which} address of {network}/{}, not a host address in it",
                    self.prefix_len
                ));
            }
        }
        None
    }
}

impl From<Ipv4Cidr> for smoltcp::wire::IpCidr {
    fn from(c: Ipv4Cidr) -> Self {
        smoltcp::wire::IpCidr::new(smoltcp::wire::IpAddress::Ipv4(c.address), c.prefix_len)
    }
}

fn parse_ipv4(s: &str) -> Option<smoltcp::wire::Ipv4Address> {
    let mut octets = [0u8; 4];
    let mut parts = s.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *octet = part.parse().ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(smoltcp::wire::Ipv4Address::from_octets(octets))
}

impl BootArgs {
    /// Splits `--key=value` and `--flag` arguments. Fails on anything else or on a
    /// repeated key.
    pub fn parse<I, S>(args: I) -> Result<Self, ArgError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut entries: Vec<Entry> = Vec::new();
        for arg in args {
            let arg = arg.as_ref();
            let body = match arg.strip_prefix("--") {
                Some(body) if !body.is_empty() && !body.starts_with('=') => body,
                _ => return Err(ArgError::NotAKey(arg.to_string())),
            };
            let (key, value) = match body.split_once('=') {
                Some((k, v)) => (k, Some(v.to_string())),
                None => (body, None),
            };
            if entries.iter().any(|e| e.key == key) {
                return Err(ArgError::Duplicate(key.to_string()));
            }
            entries.push(Entry { key: key.to_string(), value, used: false });
        }
        Ok(BootArgs { entries, known: Vec::new() })
    }

    /// Parses the backend's boot arguments ([`crate::services::boot_args`]).
    pub fn from_boot() -> Result<Self, ArgError> {
        Self::parse(crate::services::boot_args())
    }

    fn lookup<T: FromArg>(&mut self, key: &'static str, help: &'static str) -> Result<Option<T>, ArgError> {
        if !self.known.iter().any(|(k, _)| *k == key) {
            self.known.push((key, help));
        }
        let Some(entry) = self.entries.iter_mut().find(|e| e.key == key) else {
            return Ok(None);
        };
        entry.used = true;
        let value = entry.value.as_deref().unwrap_or("");
        let parsed = T::from_arg(value).ok_or_else(|| ArgError::Malformed {
            key: key.to_string(),
            value: value.to_string(),
            expected: T::expected(),
        })?;
        match parsed.unusable() {
            None => Ok(Some(parsed)),
            Some(why) => Err(ArgError::Unusable { key: key.to_string(), value: value.to_string(), why }),
        }
    }

    /// The value of `--key`, or an error if it is absent or malformed.
    pub fn required<T: FromArg>(&mut self, key: &'static str, help: &'static str) -> Result<T, ArgError> {
        self.lookup(key, help)?.ok_or(ArgError::Missing { key: key.to_string(), help })
    }

    /// The value of `--key`, or `default` if absent; an error if malformed.
    pub fn optional<T: FromArg>(&mut self, key: &'static str, default: T, help: &'static str) -> Result<T, ArgError> {
        Ok(self.lookup(key, help)?.unwrap_or(default))
    }

    /// The value of `--key` if given (`None` if absent); an error if malformed.
    pub fn maybe<T: FromArg>(&mut self, key: &'static str, help: &'static str) -> Result<Option<T>, ArgError> {
        self.lookup(key, help)
    }

    /// Whether `--key` (with no value, or `=true`) is present.
    pub fn flag(&mut self, key: &'static str, help: &'static str) -> Result<bool, ArgError> {
        if !self.known.iter().any(|(k, _)| *k == key) {
            self.known.push((key, help));
        }
        match self.entries.iter_mut().find(|e| e.key == key) {
            None => Ok(false),
            Some(entry) => {
                entry.used = true;
                match entry.value.as_deref() {
                    None => Ok(true),
                    Some(v) => bool::from_arg(v).ok_or_else(|| ArgError::Malformed {
                        key: key.to_string(),
                        value: v.to_string(),
                        expected: bool::expected(),
                    }),
                }
            }
        }
    }

    /// Fails if any argument was not asked for, listing the keys that are known.
    pub fn finish(&self) -> Result<(), ArgError> {
        match self.entries.iter().find(|e| !e.used) {
            None => Ok(()),
            Some(entry) => Err(ArgError::Unknown {
                key: entry.key.clone(),
                known: self.known.iter().map(|(k, h)| alloc::format!("--{k}: {h}")).collect(),
            }),
        }
    }

    /// Unwraps `result`, or prints the error to the console and exits with status 2.
    pub fn or_exit<T>(result: Result<T, ArgError>) -> T {
        match result {
            Ok(value) => value,
            Err(err) => {
                crate::println!("error: {err}");
                crate::services::exit(2)
            }
        }
    }
}

/// The boot arguments as strings, from the bytes a backend received. Every backend calls
/// this before the app starts and refuses (prints the error, exits with status 2) an
/// argument that is not UTF-8, naming it by position and with a lossy rendering, instead
/// of crashing or altering it silently.
pub fn args_from_bytes<I, B>(raw: I) -> Result<Vec<String>, ArgError>
where
    I: IntoIterator<Item = B>,
    B: AsRef<[u8]>,
{
    raw.into_iter()
        .enumerate()
        .map(|(i, arg)| {
            let bytes = arg.as_ref();
            core::str::from_utf8(bytes)
                .map(String::from)
                .map_err(|_| ArgError::NotUtf8 { position: i + 1, lossy: String::from_utf8_lossy(bytes).into_owned() })
        })
        .collect()
}

/// Splits a command line into arguments (solo5 hands the guest one line: its tender joins
/// the arguments after the image with single spaces). The rule, a small part of a POSIX
/// shell's:
///
/// * unquoted spaces, tabs and newlines separate arguments;
/// * `'...'` keeps everything inside literally (no escapes), including spaces;
/// * `"..."` keeps spaces; inside, `\"` and `\\` stand for `"` and `\`, any other `\`
///   stays as it is;
/// * outside quotes, `\` makes the next byte literal (`a\ b` is one argument);
/// * an unterminated quote or a trailing `\` is an error ([`ArgError::BadCommandLine`]).
///
/// `''` or `""` gives an empty argument. [`quote_arg`] quotes an argument so this rule
/// gives it back unchanged (`cargo unikraft`'s solo5 runner quotes the same way).
pub fn split_cmdline(line: &[u8]) -> Result<Vec<Vec<u8>>, ArgError> {
    #[derive(PartialEq)]
    enum Quote {
        None,
        Single,
        Double,
    }
    let mut args = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    // Whether an argument has started (so `''` counts as an empty argument).
    let mut started = false;
    let mut quote = Quote::None;
    let mut bytes = line.iter().copied();
    while let Some(b) = bytes.next() {
        match quote {
            Quote::Single => {
                if b == b'\'' {
                    quote = Quote::None;
                } else {
                    current.push(b);
                }
            }
            Quote::Double => match b {
                b'"' => quote = Quote::None,
                b'\\' => match bytes.next() {
                    Some(n @ (b'"' | b'\\')) => current.push(n),
                    Some(n) => current.extend_from_slice(&[b'\\', n]),
                    None => return Err(ArgError::BadCommandLine("unterminated double quote")),
                },
                _ => current.push(b),
            },
            Quote::None => match b {
                b' ' | b'\t' | b'\n' | b'\r' => {
                    if started {
                        args.push(core::mem::take(&mut current));
                        started = false;
                    }
                }
                b'\'' => {
                    quote = Quote::Single;
                    started = true;
                }
                b'"' => {
                    quote = Quote::Double;
                    started = true;
                }
                b'\\' => {
                    let n = bytes.next().ok_or(ArgError::BadCommandLine("a `\\` ends the command line"))?;
                    current.push(n);
                    started = true;
                }
                _ => {
                    current.push(b);
                    started = true;
                }
            },
        }
    }
    match quote {
        Quote::None => {}
        Quote::Single => return Err(ArgError::BadCommandLine("unterminated single quote")),
        Quote::Double => return Err(ArgError::BadCommandLine("unterminated double quote")),
    }
    if started {
        args.push(current);
    }
    Ok(args)
}

/// Quotes `arg` for [`split_cmdline`]: unchanged when it has no space, quote or
/// backslash, else in single quotes (a `'` inside becomes `'\''`).
pub fn quote_arg(arg: &str) -> String {
    let plain =
        !arg.is_empty() && !arg.bytes().any(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\'' | b'"' | b'\\'));
    if plain {
        return arg.to_string();
    }
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('\'');
    for c in arg.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values_and_defaults() {
        let mut args = BootArgs::parse(["--ipv4=10.0.0.2/24", "--verbose", "--port=8080"]).unwrap();
        let ip: Ipv4Cidr = args.required("ipv4", "address").unwrap();
        assert_eq!(ip.address, smoltcp::wire::Ipv4Address::new(10, 0, 0, 2));
        assert_eq!(ip.prefix_len, 24);
        assert_eq!(args.optional::<u16>("port", 80, "port").unwrap(), 8080);
        assert_eq!(args.optional::<u16>("other", 7, "other").unwrap(), 7);
        assert!(args.flag("verbose", "chatty").unwrap());
        args.finish().unwrap();
    }

    #[test]
    fn maybe_is_none_when_absent_and_checks_when_given() {
        use smoltcp::wire::Ipv4Address;
        let mut args = BootArgs::parse(["--ipv4-gateway=10.0.0.1"]).unwrap();
        assert_eq!(args.maybe::<Ipv4Address>("ipv4-gateway", "gw").unwrap(), Some(Ipv4Address::new(10, 0, 0, 1)));
        assert_eq!(args.maybe::<u16>("port", "port").unwrap(), None);
        args.finish().unwrap();
        let mut args = BootArgs::parse(["--ipv4-gateway=10.0.0"]).unwrap();
        assert!(args.maybe::<Ipv4Address>("ipv4-gateway", "gw").is_err());
    }

    #[test]
    fn unknown_key_lists_known_ones() {
        let mut args = BootArgs::parse(["--prot=1"]).unwrap();
        let _: u16 = args.optional("port", 80, "the port").unwrap();
        let err = args.finish().unwrap_err();
        let text = alloc::format!("{err}");
        assert!(text.contains("unknown boot argument --prot"), "{text}");
        assert!(text.contains("--port: the port"), "{text}");
    }

    #[test]
    fn malformed_values_are_errors() {
        for bad in ["--port=70000", "--port=", "--port=x1"] {
            let mut args = BootArgs::parse([bad]).unwrap();
            let err = args.optional::<u16>("port", 80, "p").unwrap_err();
            assert!(matches!(err, ArgError::Malformed { .. }), "{bad}: {err:?}");
        }
        for bad in ["1.2.3.4", "1.2.3.4/33", "1.2.3/8", "1.2.3.4.5/8", "a.b.c.d/8", "1.2.3.256/8"] {
            assert_eq!(Ipv4Cidr::from_arg(bad), None, "{bad}");
        }
    }

    #[test]
    fn shape_errors() {
        assert_eq!(BootArgs::parse(["port=1"]).unwrap_err(), ArgError::NotAKey("port=1".into()));
        assert_eq!(BootArgs::parse(["--"]).unwrap_err(), ArgError::NotAKey("--".into()));
        assert_eq!(BootArgs::parse(["--a=1", "--a=2"]).unwrap_err(), ArgError::Duplicate("a".into()));
        let mut args = BootArgs::parse::<[&str; 0], &str>([]).unwrap();
        assert!(matches!(args.required::<u16>("port", "p"), Err(ArgError::Missing { .. })));
    }

    #[test]
    fn addresses_that_cannot_be_a_host_are_refused_by_name() {
        for (bad, why) in [
            ("255.255.255.255/32", "limited broadcast"),
            ("255.255.255.255/24", "limited broadcast"),
            ("0.0.0.0/0", "unspecified"),
            ("0.0.0.0/24", "unspecified"),
            ("224.0.0.1/24", "multicast"),
            ("239.255.255.250/32", "multicast"),
            ("10.0.0.0/24", "network address of 10.0.0.0/24"),
            ("10.0.0.255/24", "broadcast address of 10.0.0.0/24"),
            ("10.0.0.3/30", "broadcast address of 10.0.0.0/30"),
            ("192.168.0.0/16", "network address of 192.168.0.0/16"),
        ] {
            let mut args = BootArgs::parse([alloc::format!("--ipv4={bad}")]).unwrap();
            let err = args.required::<Ipv4Cidr>("ipv4", "address").unwrap_err();
            let text = alloc::format!("{err}");
            assert!(matches!(err, ArgError::Unusable { .. }), "{bad}: {err:?}");
            assert!(text.contains(why) && text.contains(&alloc::format!("--ipv4={bad}")), "{bad}: {text}");
        }
        for good in ["10.0.0.2/24", "10.0.0.0/31", "10.0.0.1/31", "10.0.0.0/32", "10.0.0.255/32", "10.0.0.254/24"] {
            let mut args = BootArgs::parse([alloc::format!("--ipv4={good}")]).unwrap();
            assert!(args.required::<Ipv4Cidr>("ipv4", "address").is_ok(), "{good}");
        }
    }

    #[test]
    fn non_utf8_arguments_are_named_not_altered() {
        assert_eq!(args_from_bytes([&b"--a=1"[..], b"b"]).unwrap(), ["--a=1", "b"]);
        let err = args_from_bytes([&b"ok"[..], b"--name=caf\xe9"]).unwrap_err();
        assert_eq!(err, ArgError::NotUtf8 { position: 2, lossy: "--name=caf\u{fffd}".into() });
        let text = alloc::format!("{err}");
        assert!(text.contains("boot argument 2 (`--name=caf\u{fffd}`") && text.contains("UTF-8"), "{text}");
    }

    #[test]
    fn command_lines_split_with_quotes_and_escapes() {
        let split = |line: &str| -> Vec<String> {
            split_cmdline(line.as_bytes()).unwrap().into_iter().map(|a| String::from_utf8(a).unwrap()).collect()
        };
        assert_eq!(split("  a  b\tc\n"), ["a", "b", "c"]);
        assert_eq!(split("--msg='a b' x"), ["--msg=a b", "x"]);
        assert_eq!(split("--msg=\"a \\\" \\\\ \\n\""), ["--msg=a \" \\ \\n"]);
        assert_eq!(split("a\\ b 'it'\\''s' '' \"\""), ["a b", "it's", "", ""]);
        assert_eq!(split(""), Vec::<String>::new());
        for bad in ["'open", "\"open", "end\\", "\"a\\"] {
            assert!(matches!(split_cmdline(bad.as_bytes()), Err(ArgError::BadCommandLine(_))), "{bad}");
        }
        for arg in ["plain", "", "a b", "it's", "\"q\"", "back\\slash", " \t\n", "'"] {
            assert_eq!(split(&quote_arg(arg)), [arg], "{arg} quoted as {}", quote_arg(arg));
        }
    }
}
