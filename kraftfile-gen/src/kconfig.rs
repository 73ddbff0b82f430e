//! Checking `CONFIG_` names against a Unikraft tree.
//!
//! A typo in `[package.metadata.unikraft] kconfig` would otherwise be dropped without a word
//! by `make defconfig` and show up much later as a missing feature in the booted image. So
//! before anything slow runs, every name the build will write into a defconfig is looked up
//! in the set of symbols the Unikraft core and its libraries declare, and an unknown one is
//! an error that names the closest real symbols.
//!
//! # How the symbol set is built
//!
//! Every `Config.uk` and `Kconfig` file under each given root is parsed on its own with
//! [`nom_kconfig`], and the symbols of its `config` / `menuconfig` entries are collected,
//! descending into `menu`, `choice` and `if` blocks. Two details of Unikraft's layout
//! shape this:
//!
//! - `source` lines are dropped before parsing. Unikraft generates several of the files it
//!   sources at `make` time (through `$(shell,...)`), so they cannot be followed from a
//!   clean tree; since every file on disk is scanned anyway, nothing is lost.
//! - A `support/` directory is skipped: it holds Kconfig *tooling* and its test fixtures
//!   (one is deliberately self-recursive), not configuration.
//!
//! # Values
//!
//! Each symbol's type is recorded too, and [`KconfigIndex::check_values`] checks every
//! value against it: Kconfig only warns about a value of the wrong type (`"12"` for a
//! bool) and leaves the option unset, which the build would otherwise carry on without.
//!
//! Why `nom-kconfig` rather than `kconfig-parser`: on the Unikraft 0.16.3 tree,
//! `kconfig-parser` 0.1 rejects 37 of the 96 files (it does not handle `choice` or `if`
//! blocks), while `nom-kconfig` parses all of them and finds the same 689 symbols a plain
//! scan for `config NAME` lines finds.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use nom_kconfig::attribute::r#type::Type;
use nom_kconfig::{parse_kconfig, Attribute, Entry, KconfigFile, KconfigInput};

/// The set of kconfig symbols (without the `CONFIG_` prefix) a tree declares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KconfigIndex {
    symbols: BTreeSet<String>,
    /// The type of each symbol that declares one (the first declaration wins).
    types: BTreeMap<String, SymbolType>,
}

/// A kconfig symbol's type, which decides the values it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolType {
    /// `y` or `n`.
    Bool,
    /// `y`, `m` or `n`.
    Tristate,
    /// A quoted string.
    String,
    /// A decimal integer.
    Int,
    /// A hexadecimal integer (`0x...`).
    Hex,
}

impl SymbolType {
    /// Whether `value` (as written after `=` in a defconfig) is one this type takes.
    pub fn accepts(self, value: &str) -> bool {
        let digits = |s: &str, hex: bool| {
            !s.is_empty() && s.bytes().all(|b| if hex { b.is_ascii_hexdigit() } else { b.is_ascii_digit() })
        };
        match self {
            SymbolType::Bool => matches!(value, "y" | "n"),
            SymbolType::Tristate => matches!(value, "y" | "n" | "m"),
            SymbolType::Int => digits(value.strip_prefix('-').unwrap_or(value), false),
            SymbolType::Hex => {
                digits(value.strip_prefix("0x").or_else(|| value.strip_prefix("0X")).unwrap_or(value), true)
            }
            SymbolType::String => value.len() >= 2 && value.starts_with('"') && value.ends_with('"'),
        }
    }

    /// What the type takes, for messages.
    pub fn expects(self) -> &'static str {
        match self {
            SymbolType::Bool => "a bool option: \"y\" or \"n\"",
            SymbolType::Tristate => "a tristate option: \"y\" or \"n\"",
            SymbolType::String => "a string option: a quoted string, written '\"text\"' in TOML",
            SymbolType::Int => "an int option: a decimal number",
            SymbolType::Hex => "a hex option: a number like \"0x1000\"",
        }
    }
}

/// Values of the wrong type for their option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadValues {
    /// Each option (with `CONFIG_`), the value given, and the option's type.
    pub bad: Vec<(String, String, SymbolType)>,
}

impl fmt::Display for BadValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "kconfig value{} of the wrong type", if self.bad.len() > 1 { "s" } else { "" })?;
        write!(f, " (Kconfig would only warn and leave the option unset)")?;
        for (name, value, ty) in &self.bad {
            write!(f, "\n  {name} = {value:?}: {name} is {}", ty.expects())?;
        }
        write!(f, "\nfix the values in [package.metadata.unikraft] kconfig in Cargo.toml")
    }
}

impl std::error::Error for BadValues {}

/// A Kconfig tree that could not be read.
#[derive(Debug)]
pub enum KconfigError {
    /// A root directory does not exist.
    MissingRoot(PathBuf),
    /// A root holds no `Config.uk` / `Kconfig` file at all: probably the wrong directory.
    NoKconfigFiles(PathBuf),
    /// Reading a file or directory failed.
    Io(PathBuf, std::io::Error),
    /// A file is not valid Kconfig.
    Parse {
        /// The file.
        file: PathBuf,
        /// What is wrong, and where.
        message: String,
    },
}

impl fmt::Display for KconfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KconfigError::MissingRoot(p) => write!(f, "{} does not exist", p.display()),
            KconfigError::NoKconfigFiles(p) => {
                write!(f, "{} holds no Config.uk or Kconfig file; is it a Unikraft tree or library?", p.display())
            }
            KconfigError::Io(p, e) => write!(f, "read {}: {e}", p.display()),
            KconfigError::Parse { file, message } => write!(f, "{} is not valid Kconfig: {message}", file.display()),
        }
    }
}

impl std::error::Error for KconfigError {}

/// Names asked for that no Kconfig file declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownOptions {
    /// Each unknown name (as given, with `CONFIG_`) and up to three close real ones.
    pub unknown: Vec<(String, Vec<String>)>,
}

impl fmt::Display for UnknownOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown kconfig option")?;
        if self.unknown.len() > 1 {
            write!(f, "s")?;
        }
        write!(f, " (no Config.uk in the Unikraft tree or its libraries declares ")?;
        write!(f, "{})", if self.unknown.len() > 1 { "them" } else { "it" })?;
        for (name, close) in &self.unknown {
            write!(f, "\n  {name}")?;
            if close.is_empty() {
                write!(f, ": no similar option")?;
            } else {
                let close: Vec<String> = close.iter().map(|c| format!("CONFIG_{c}")).collect();
                write!(f, ": did you mean {}?", close.join(", "))?;
            }
        }
        write!(f, "\nfix the names in [package.metadata.unikraft] kconfig in Cargo.toml")
    }
}

impl std::error::Error for UnknownOptions {}

impl KconfigIndex {
    /// An index of exactly these symbols (no `CONFIG_` prefix); for tests and callers that
    /// already know the set.
    pub fn from_symbols<I: IntoIterator<Item = S>, S: Into<String>>(symbols: I) -> Self {
        KconfigIndex { symbols: symbols.into_iter().map(Into::into).collect(), types: BTreeMap::new() }
    }

    /// Reads every `Config.uk` / `Kconfig` under the Unikraft tree `unikraft` and under each
    /// of `libraries` (library trees, or the app directory with its own `Config.uk`).
    pub fn load(unikraft: &Path, libraries: &[PathBuf]) -> Result<Self, KconfigError> {
        let mut index = KconfigIndex::default();
        for root in std::iter::once(unikraft).chain(libraries.iter().map(PathBuf::as_path)) {
            index.add_root(root)?;
        }
        Ok(index)
    }

    /// Adds the symbols of every Kconfig file under `root`.
    pub fn add_root(&mut self, root: &Path) -> Result<(), KconfigError> {
        if !root.is_dir() {
            return Err(KconfigError::MissingRoot(root.to_path_buf()));
        }
        let mut files = Vec::new();
        collect_kconfig_files(root, &mut files)?;
        if files.is_empty() {
            return Err(KconfigError::NoKconfigFiles(root.to_path_buf()));
        }
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|e| KconfigError::Io(file.clone(), e))?;
            self.add_text(&file, &text)?;
        }
        Ok(())
    }

    /// Adds the symbols declared in one file's text; `file` names it in errors.
    pub fn add_text(&mut self, file: &Path, text: &str) -> Result<(), KconfigError> {
        let without_sources: String = text
            .lines()
            .filter(|line| {
                let line = line.trim_start();
                !["source ", "osource ", "rsource ", "orsource "].iter().any(|kw| line.starts_with(kw))
            })
            .flat_map(|line| [line, "\n"])
            .collect();
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let name = PathBuf::from(file.file_name().unwrap_or_default());
        let input = KconfigInput::new_extra(&without_sources, KconfigFile::new(dir, name));
        let (rest, parsed) = parse_kconfig(input)
            .map_err(|e| KconfigError::Parse { file: file.to_path_buf(), message: first_line(&format!("{e:?}")) })?;
        let rest = rest.fragment().trim();
        if !rest.is_empty() {
            return Err(KconfigError::Parse {
                file: file.to_path_buf(),
                message: format!("could not parse from: {}", first_line(rest)),
            });
        }
        collect_symbols(&parsed.entries, &mut self.symbols, &mut self.types);
        Ok(())
    }

    /// Whether `symbol` (no `CONFIG_` prefix) is declared.
    pub fn contains(&self, symbol: &str) -> bool {
        self.symbols.contains(symbol)
    }

    /// The declared type of `symbol` (no `CONFIG_` prefix), if known.
    pub fn type_of(&self, symbol: &str) -> Option<SymbolType> {
        self.types.get(symbol).copied()
    }

    /// Checks each `(CONFIG_NAME, value)` against the option's type; options of unknown
    /// type (or unknown options: [`KconfigIndex::check`] reports those) pass.
    pub fn check_values<'a>(&self, settings: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<(), BadValues> {
        let bad: Vec<(String, String, SymbolType)> = settings
            .into_iter()
            .filter_map(|(name, value)| {
                let ty = self.type_of(name.strip_prefix("CONFIG_").unwrap_or(name))?;
                (!ty.accepts(value)).then(|| (name.to_string(), value.to_string(), ty))
            })
            .collect();
        if bad.is_empty() {
            Ok(())
        } else {
            Err(BadValues { bad })
        }
    }

    /// How many distinct symbols are declared.
    pub fn len(&self) -> usize {
        self.symbols.len()
    }

    /// Whether no symbol is declared.
    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// Checks `names` (each `CONFIG_NAME`); every unknown one is reported with up to three
    /// of the closest declared symbols.
    pub fn check<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Result<(), UnknownOptions> {
        let mut unknown: Vec<(String, Vec<String>)> = Vec::new();
        for name in names {
            let symbol = name.strip_prefix("CONFIG_").unwrap_or(name);
            if !self.contains(symbol) && !unknown.iter().any(|(n, _)| n == name) {
                unknown.push((name.to_string(), self.closest(symbol, 3)));
            }
        }
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(UnknownOptions { unknown })
        }
    }

    /// Up to `n` declared symbols closest to `symbol`, best first (empty only when no
    /// symbol shares anything with it).
    ///
    /// The score mixes edit distance (typos: `PRINTK_INF0` → `PRINTK_INFO`) with shared
    /// `_`-separated words (a half-remembered name: `FOO_BAR` → `LIBUKFOO_BAR`, `VFS_RAMFS`
    /// → `LIBVFSCORE_AUTOMOUNT_CI_RAMFS`), so a suggestion is offered even when the edit
    /// distance alone is large.
    pub fn closest(&self, symbol: &str, n: usize) -> Vec<String> {
        let mut scored: Vec<(f64, &String)> =
            self.symbols.iter().map(|s| (similarity(symbol, s), s)).filter(|(score, _)| *score >= 0.2).collect();
        // Best score first; ties in name order so the message is deterministic.
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        scored.into_iter().take(n).map(|(_, s)| s.clone()).collect()
    }
}

/// 0.0 (nothing in common) ..= 1.0 (equal).
fn similarity(wanted: &str, candidate: &str) -> f64 {
    let edit = strsim::normalized_damerau_levenshtein(wanted, candidate);
    let words = |s: &str| s.split('_').filter(|w| !w.is_empty()).map(str::to_string).collect::<BTreeSet<_>>();
    let (a, b) = (words(wanted), words(candidate));
    // A wanted word found inside a candidate word counts (FOO in LIBUKFOO).
    let found = a.iter().filter(|w| b.iter().any(|c| c.contains(w.as_str()))).count();
    let shared = if a.is_empty() { 0.0 } else { found as f64 / (a.len().max(b.len())) as f64 };
    0.5 * edit + 0.5 * shared
}

/// The names a defconfig body sets (`CONFIG_NAME=...` lines), in order.
pub fn defconfig_names(defconfig: &str) -> impl Iterator<Item = &str> {
    defconfig_settings(defconfig).map(|(name, _)| name)
}

/// The `(CONFIG_NAME, value)` pairs a defconfig body sets, in order.
pub fn defconfig_settings(defconfig: &str) -> impl Iterator<Item = (&str, &str)> {
    defconfig.lines().filter(|line| line.starts_with("CONFIG_")).filter_map(|line| line.split_once('='))
}

fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("");
    if line.len() > 200 {
        format!("{}...", &line[..line.floor_char_boundary(200)])
    } else {
        line.to_string()
    }
}

fn collect_kconfig_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), KconfigError> {
    let entries = std::fs::read_dir(dir).map_err(|e| KconfigError::Io(dir.to_path_buf(), e))?;
    for entry in entries {
        let path = entry.map_err(|e| KconfigError::Io(dir.to_path_buf(), e))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            // Tooling with self-recursive fixtures; build output and VCS data are not config.
            if !matches!(name, "support" | ".git") && !name.starts_with("build") {
                collect_kconfig_files(&path, out)?;
            }
        } else if name == "Config.uk" || name == "Kconfig" {
            out.push(path);
        }
    }
    Ok(())
}

fn collect_symbols(entries: &[Entry], out: &mut BTreeSet<String>, types: &mut BTreeMap<String, SymbolType>) {
    for entry in entries {
        match entry {
            Entry::Config(c) | Entry::MenuConfig(c) => {
                out.insert(c.symbol.clone());
                let ty = c.attributes.iter().find_map(|a| match a {
                    Attribute::Type(t) => Some(match t.r#type {
                        Type::Bool(_) | Type::DefBool(_) => SymbolType::Bool,
                        Type::Tristate(_) | Type::DefTristate(_) => SymbolType::Tristate,
                        Type::String(_) | Type::DefString(_) => SymbolType::String,
                        Type::Int(_) | Type::DefInt(_) => SymbolType::Int,
                        Type::Hex(_) | Type::DefHex(_) => SymbolType::Hex,
                    }),
                    _ => None,
                });
                if let Some(ty) = ty {
                    types.entry(c.symbol.clone()).or_insert(ty);
                }
            }
            Entry::Choice(c) => collect_symbols(&c.entries, out, types),
            Entry::Menu(m) => collect_symbols(&m.entries, out, types),
            Entry::If(i) => collect_symbols(&i.entries, out, types),
            _ => {}
        }
    }
}
