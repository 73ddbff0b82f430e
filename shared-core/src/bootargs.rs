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
        }
    }
}

/// A type a boot argument value can be parsed into.
pub trait FromArg: Sized {
    /// Describes the expected form, for error messages (`"a number 0..=65535"`).
    fn expected() -> String;
    /// Parses the value, or `None` if malformed.
    fn from_arg(value: &str) -> Option<Self>;
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

/// An IPv4 address with a prefix length, as in `10.0.0.2/24`.
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
        T::from_arg(value).map(Some).ok_or_else(|| ArgError::Malformed {
            key: key.to_string(),
            value: value.to_string(),
            expected: T::expected(),
        })
    }

    /// The value of `--key`, or an error if it is absent or malformed.
    pub fn required<T: FromArg>(&mut self, key: &'static str, help: &'static str) -> Result<T, ArgError> {
        self.lookup(key, help)?.ok_or(ArgError::Missing { key: key.to_string(), help })
    }

    /// The value of `--key`, or `default` if absent; an error if malformed.
    pub fn optional<T: FromArg>(&mut self, key: &'static str, default: T, help: &'static str) -> Result<T, ArgError> {
        Ok(self.lookup(key, help)?.unwrap_or(default))
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
}
