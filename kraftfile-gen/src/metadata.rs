//! `[package.metadata.unikraft]`: the schema, its parser and the checks that turn it into an
//! [`AppSpec`].
//!
//! The table is read key by key (not with a derived `Deserialize`), so every error names
//! the key it is about, as `package.metadata.unikraft.<key>`, and says what was expected
//! and what was found. Anything that ends up in a generated file is checked here, before
//! any file is written: a kconfig value is one a defconfig line can hold (never a line
//! break or another control character), and options the generator sets itself cannot be
//! overridden into something that breaks std.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::values::{
    base_kconfig, kconfig_value_problem, parse_memory, DEBUG_LEVEL_PREFIX, DEFAULT_DEBUG_LEVEL, KNOWN_DEVICES,
    MEMORY_MIB_RANGE, NINEPFS_REPLACES, NINEPFS_ROOT, SOCKETS_KCONFIG, TARGET_KCONFIG,
};

/// The Unikraft / lib-musl tag used when the metadata names none: the consistent pair.
pub const DEFAULT_VERSION: &str = "RELEASE-0.16.3";
/// Targets this generator knows, as `platform/arch`: the Unikraft ones of
/// [`crate::target::Target`].
pub const KNOWN_TARGETS: &[&str] = crate::target::UNIKRAFT_TARGETS;

/// Where the table lives in `Cargo.toml`; every error names its key under this.
pub const TABLE: &str = "package.metadata.unikraft";

/// The keys of the table, in the order the docs list them.
pub const KNOWN_KEYS: &[&str] = &[
    "version",
    "source",
    "libraries",
    "targets",
    "kconfig",
    "cmdline",
    "memory",
    "name",
    "backtrace",
    "devices",
    "sockets",
];

/// `[package.metadata.unikraft]`, as written by the user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnikraftMetadata {
    /// Unikraft core tag (default [`DEFAULT_VERSION`]).
    pub version: Option<String>,
    /// Unikraft core source (default: the upstream repository).
    pub source: Option<String>,
    /// Extra libraries beyond musl, name → tag.
    pub libraries: BTreeMap<String, String>,
    /// `platform/arch` targets (default `["qemu/x86_64"]`).
    pub targets: Option<Vec<String>>,
    /// Extra kconfig options, `CONFIG_NAME` → value.
    pub kconfig: BTreeMap<String, String>,
    /// Boot arguments for the app.
    pub cmdline: Vec<String>,
    /// Guest memory, like `64M` (default `64M`).
    pub memory: Option<String>,
    /// Image name (default: the package name).
    pub name: Option<String>,
    /// Real backtraces on panic (default `false`): links gcc's unwinder and prints the
    /// frames, which `cargo xtask kraft-run` symbolizes from the debug image.
    pub backtrace: Option<bool>,
    /// Devices the app uses: any of `net`, `block`, `9pfs` (host folders, `run -v`)
    /// (default none).
    pub devices: Vec<String>,
    /// std's sockets (`std::net`, mio, tokio) over the net device (default `false`):
    /// Unikraft's posix-socket with rt-unikraft's AF_INET driver. Needs `net` in `devices`.
    pub sockets: Option<bool>,
}

/// Everything needed to generate the files for one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSpec {
    /// Image / app name (lowercase letters, digits, `_`).
    pub name: String,
    /// Cargo package name.
    pub package: String,
    /// Core tag.
    pub version: String,
    /// Core source.
    pub source: String,
    /// Libraries, name → tag (always includes `musl`).
    pub libraries: BTreeMap<String, String>,
    /// Targets.
    pub targets: Vec<String>,
    /// Kconfig: the base options std needs plus the user's.
    pub kconfig: BTreeMap<String, String>,
    /// Boot arguments.
    pub cmdline: Vec<String>,
    /// Memory in MiB.
    pub memory_mib: u32,
    /// Real backtraces on panic (gcc's `libgcc_eh` and rt-unikraft's `backtrace` feature).
    pub backtrace: bool,
    /// Devices (`net`, `block`, `9pfs`), sorted; their drivers are in the kconfig.
    pub devices: Vec<String>,
    /// std's sockets through rt-unikraft's AF_INET driver (posix-socket, epoll, eventfd
    /// in the kconfig; the link wraps `connect`, see rt-unikraft/glue/socket.c).
    pub sockets: bool,
}

/// Bad metadata. Every variant's message starts with the key it is about
/// (`package.metadata.unikraft.memory: ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataError {
    /// The table or a value in it has the wrong type, or a key is unknown: the whole
    /// message, starting with the key.
    Malformed(String),
    /// A target this generator does not know.
    UnknownTarget(String),
    /// A kconfig name not of the form `CONFIG_[A-Z0-9_]+`.
    BadKconfigName(String),
    /// A kconfig value no defconfig line can hold (`"maybe"`, a line break, ...).
    BadKconfigValue {
        /// The option (`CONFIG_...`).
        name: String,
        /// The value as given.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// An option the generator sets itself, given a value that would break the image.
    ReservedKconfig {
        /// The option (`CONFIG_...`).
        name: String,
        /// The value as given.
        value: String,
        /// Who needs or sets it (`std on Unikraft`, `the net device`, `targets`).
        owner: String,
    },
    /// A memory size that is not `<n>M` or `<n>G` within [`MEMORY_MIB_RANGE`].
    BadMemory(String),
    /// An image name Unikraft will not accept.
    BadName(String),
    /// A device this generator does not know.
    UnknownDevice(String),
    /// `sockets = true` without `net` in `devices`.
    SocketsWithoutNet,
    /// A boot argument with a control character (a line break or NUL cannot be passed).
    BadCmdline {
        /// Its index in `cmdline`.
        index: usize,
        /// The argument as given.
        arg: String,
    },
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataError::Malformed(e) => write!(f, "{e}"),
            MetadataError::UnknownDevice(d) => write!(
                f,
                "{TABLE}.devices: unknown device `{}`; known: {}",
                d.escape_debug(),
                KNOWN_DEVICES.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
            ),
            MetadataError::SocketsWithoutNet => write!(
                f,
                "{TABLE}.sockets: std's sockets run over the net device, so `sockets = true` needs \"net\" in \
                 `devices` (devices = [\"net\"])"
            ),
            MetadataError::UnknownTarget(t) => {
                write!(
                    f,
                    "{TABLE}.targets: unknown target `{}`; known targets: {}",
                    t.escape_debug(),
                    KNOWN_TARGETS.join(", ")
                )
            }
            MetadataError::BadKconfigName(n) => {
                write!(f, "{TABLE}.kconfig: key `{}` is not of the form CONFIG_[A-Z0-9_]+", n.escape_debug())
            }
            MetadataError::BadKconfigValue { name, value, why } => {
                write!(f, "{TABLE}.kconfig.{name}: value {value:?} {why}")
            }
            MetadataError::ReservedKconfig { name, value, owner } => write!(
                f,
                "{TABLE}.kconfig.{name}: cannot be set to {value:?}: it is set by kraftfile-gen because {owner}; \
                 remove it from kconfig"
            ),
            MetadataError::BadMemory(m) => write!(
                f,
                "{TABLE}.memory: {m:?} is not a size like \"64M\" or \"1G\" (digits, then M or G) between {}M and {}G",
                MEMORY_MIB_RANGE.start(),
                MEMORY_MIB_RANGE.end() / 1024
            ),
            MetadataError::BadName(n) => write!(
                f,
                "{TABLE}.name: image name {n:?} must be 1-64 characters of a-z, 0-9 and _ \
                 (it defaults to the package name with - as _; set `name` to override it)"
            ),
            MetadataError::BadCmdline { index, arg } => write!(
                f,
                "{TABLE}.cmdline[{index}]: {arg:?} holds a control character (line break, tab, NUL, ...), \
                 which cannot be passed as a boot argument"
            ),
        }
    }
}

impl std::error::Error for MetadataError {}

/// What a JSON value is, for "expected ..., found ..." messages (the table comes from
/// TOML through `cargo metadata`).
fn describe(value: &Value) -> String {
    let short =
        |s: String| if s.chars().count() > 40 { format!("{}...", s.chars().take(40).collect::<String>()) } else { s };
    match value {
        Value::Null => "nothing".to_string(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {}", short(format!("{s:?}"))),
        Value::Array(_) => "an array".to_string(),
        Value::Object(_) => "a table".to_string(),
    }
}

fn malformed(key: &str, expected: &str, found: &Value) -> MetadataError {
    MetadataError::Malformed(format!("{key}: expected {expected}, found {}", describe(found)))
}

fn string(key: &str, value: &Value, expected: &str) -> Result<String, MetadataError> {
    value.as_str().map(str::to_string).ok_or_else(|| malformed(key, expected, value))
}

fn string_list(key: &str, value: &Value, what: &str) -> Result<Vec<String>, MetadataError> {
    let items = value.as_array().ok_or_else(|| malformed(key, &format!("an array of {what}"), value))?;
    items.iter().enumerate().map(|(i, item)| string(&format!("{key}[{i}]"), item, what)).collect()
}

fn string_map(key: &str, value: &Value, what: &str) -> Result<BTreeMap<String, String>, MetadataError> {
    let table = value.as_object().ok_or_else(|| malformed(key, &format!("a table of {what}"), value))?;
    table.iter().map(|(k, v)| Ok((k.clone(), string(&format!("{key}.{}", k.escape_debug()), v, what)?))).collect()
}

impl UnikraftMetadata {
    /// Reads the table from its JSON form (as `cargo metadata` reports it). Every error
    /// names its key.
    pub fn from_json(table: &Value) -> Result<Self, MetadataError> {
        let table = table.as_object().ok_or_else(|| malformed(TABLE, "a table", table))?;
        let mut meta = UnikraftMetadata::default();
        for (key, value) in table {
            let path = format!("{TABLE}.{key}");
            let path = path.as_str();
            match key.as_str() {
                "version" => meta.version = Some(string(path, value, "a Unikraft tag like \"RELEASE-0.16.3\"")?),
                "source" => meta.source = Some(string(path, value, "a git URL")?),
                "libraries" => meta.libraries = string_map(path, value, "tags (strings)")?,
                "targets" => meta.targets = Some(string_list(path, value, "targets like \"qemu/x86_64\"")?),
                "kconfig" => meta.kconfig = string_map(path, value, "values (strings like \"y\")")?,
                "cmdline" => meta.cmdline = string_list(path, value, "boot arguments (strings)")?,
                "memory" => meta.memory = Some(string(path, value, "a size like \"64M\" or \"1G\" (a string)")?),
                "name" => meta.name = Some(string(path, value, "an image name (a string)")?),
                "backtrace" => {
                    meta.backtrace = Some(value.as_bool().ok_or_else(|| malformed(path, "true or false", value))?)
                }
                "devices" => meta.devices = string_list(path, value, "device names like \"net\"")?,
                "sockets" => {
                    meta.sockets = Some(value.as_bool().ok_or_else(|| malformed(path, "true or false", value))?)
                }
                unknown => {
                    let close = KNOWN_KEYS
                        .iter()
                        .filter(|k| strsim::normalized_damerau_levenshtein(unknown, k) >= 0.6)
                        .map(|k| format!(" (did you mean `{k}`?)"))
                        .next()
                        .unwrap_or_default();
                    return Err(MetadataError::Malformed(format!(
                        "{TABLE}: unknown key `{}`{close}; known keys: {}",
                        unknown.escape_debug(),
                        KNOWN_KEYS.join(", ")
                    )));
                }
            }
        }
        Ok(meta)
    }
}

impl AppSpec {
    /// Builds the spec from a package name and its `metadata` JSON value (as `cargo
    /// metadata` reports it; `null` or a missing `unikraft` key means all defaults).
    pub fn from_cargo_metadata(package: &str, metadata: &Value) -> Result<Self, MetadataError> {
        let meta = match metadata.get("unikraft") {
            None | Some(Value::Null) => UnikraftMetadata::default(),
            Some(table) => UnikraftMetadata::from_json(table)?,
        };
        Self::from_metadata(package, meta)
    }

    /// Validates `meta` and fills in defaults.
    pub fn from_metadata(package: &str, meta: UnikraftMetadata) -> Result<Self, MetadataError> {
        let name = meta.name.clone().unwrap_or_else(|| package.replace('-', "_"));
        if name.is_empty()
            || name.len() > 64
            || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(MetadataError::BadName(name));
        }
        let mut targets = meta.targets.clone().unwrap_or_else(|| vec!["qemu/x86_64".to_string()]);
        if let Some(bad) = targets.iter().find(|t| !KNOWN_TARGETS.contains(&t.as_str())) {
            return Err(MetadataError::UnknownTarget(bad.clone()));
        }
        // A target listed twice is one target (one defconfig).
        let mut unique: Vec<String> = Vec::new();
        for target in targets.drain(..) {
            if !unique.contains(&target) {
                unique.push(target);
            }
        }
        let targets = unique;
        let memory = meta.memory.clone().unwrap_or_else(|| "64M".to_string());
        let memory_mib = parse_memory(&memory).ok_or(MetadataError::BadMemory(memory))?;
        if let Some((index, arg)) = meta.cmdline.iter().enumerate().find(|(_, a)| a.chars().any(char::is_control)) {
            return Err(MetadataError::BadCmdline { index, arg: arg.clone() });
        }
        let version = meta.version.clone().unwrap_or_else(|| DEFAULT_VERSION.to_string());
        let mut libraries = meta.libraries.clone();
        libraries.entry("musl".to_string()).or_insert_with(|| version.clone());

        let mut devices = meta.devices.clone();
        devices.sort();
        devices.dedup();
        // Options the generator sets: name -> (value, who needs it).
        let mut owned: BTreeMap<String, (String, String)> =
            base_kconfig().into_iter().map(|(k, v)| (k, (v, "std on Unikraft needs it".to_string()))).collect();
        let need = |owned: &mut BTreeMap<String, (String, String)>, option: &str, value: &str, owner: String| {
            owned.entry(option.to_string()).or_insert_with(|| (value.to_string(), owner));
        };
        for device in &devices {
            let Some((_, options)) = KNOWN_DEVICES.iter().find(|(name, _)| name == device) else {
                return Err(MetadataError::UnknownDevice(device.clone()));
            };
            for option in *options {
                need(&mut owned, option, "y", format!("the {device} device needs it"));
            }
        }
        if devices.iter().any(|d| d == "9pfs") {
            for option in NINEPFS_REPLACES {
                owned.remove(*option);
            }
            for (option, value) in NINEPFS_ROOT {
                need(&mut owned, option, value, "the 9pfs device mounts the root ramfs this way".to_string());
            }
        }
        let sockets = meta.sockets.unwrap_or(false);
        if sockets {
            if !devices.iter().any(|d| d == "net") {
                return Err(MetadataError::SocketsWithoutNet);
            }
            for option in SOCKETS_KCONFIG {
                need(&mut owned, option, "y", "`sockets = true` needs it".to_string());
            }
        }
        for (key, value) in &meta.kconfig {
            let ok = key.strip_prefix("CONFIG_").is_some_and(|rest| {
                !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            });
            if !ok {
                return Err(MetadataError::BadKconfigName(key.clone()));
            }
            if let Some(why) = kconfig_value_problem(value) {
                return Err(MetadataError::BadKconfigValue { name: key.clone(), value: value.clone(), why });
            }
            let owner = if TARGET_KCONFIG.contains(&key.as_str()) {
                Some("each defconfig sets it from `name` and `targets`".to_string())
            } else {
                owned.get(key).filter(|(wanted, _)| value != wanted).map(|(_, owner)| owner.clone())
            };
            if let Some(owner) = owner {
                return Err(MetadataError::ReservedKconfig { name: key.clone(), value: value.clone(), owner });
            }
        }
        let mut kconfig: BTreeMap<String, String> = owned.into_iter().map(|(k, (v, _))| (k, v)).collect();
        if !meta.kconfig.keys().any(|k| k.starts_with(DEBUG_LEVEL_PREFIX)) {
            kconfig.insert(DEFAULT_DEBUG_LEVEL.to_string(), "y".to_string());
        }
        kconfig.extend(meta.kconfig.clone());
        Ok(AppSpec {
            name,
            package: package.to_string(),
            source: meta.source.clone().unwrap_or_else(|| "https://github.com/unikraft/unikraft.git".to_string()),
            version,
            libraries,
            targets,
            kconfig,
            cmdline: meta.cmdline.clone(),
            memory_mib,
            backtrace: meta.backtrace.unwrap_or(false),
            devices,
            sockets,
        })
    }
}
