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

mod cmdline;
mod values;

pub use cmdline::{args_from_bytes, quote_arg, split_cmdline};
pub use values::{FromArg, Ipv4Cidr};

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

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

impl core::error::Error for ArgError {}

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

    /// Parses the backend's boot arguments ([`crate::services::boot_args`]). The runtime's
    /// own keys (`--heap-sample-ms`, [`crate::heap::sampler`]) are known and taken here, so
    /// [`finish`](Self::finish) accepts them and lists them among the known keys.
    pub fn from_boot() -> Result<Self, ArgError> {
        let mut args = Self::parse(crate::services::boot_args())?;
        use crate::heap::sampler::{BOOT_ARG, BOOT_ARG_HELP};
        args.maybe::<u64>(BOOT_ARG, BOOT_ARG_HELP)?;
        Ok(args)
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
