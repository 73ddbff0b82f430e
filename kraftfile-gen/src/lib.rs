//! `kraftfile-gen`: Cargo metadata in, Unikraft build files out. Pure data, no I/O
//! (except [`kconfig`], which reads a Unikraft tree to check names against it).
//!
//! An app describes its unikernel in `Cargo.toml`:
//!
//! ```toml
//! [package.metadata.unikraft]
//! version = "RELEASE-0.16.3"          # Unikraft core and lib-musl tag
//! targets = ["qemu/x86_64", "fc/x86_64"]
//! memory = "64M"
//! cmdline = ["--port=8080"]           # boot arguments baked into the image config
//! kconfig = { CONFIG_LIBUKDEBUG_PRINTK_INFO = "y" }
//! backtrace = true                    # real backtraces on panic (gcc's unwinder)
//! ```
//!
//! Every key is optional (an app with no table gets the defaults); unknown keys are an
//! error. [`generate`] turns a [`AppSpec`] into the Kraftfile (spec v0.6), the app library's
//! `Makefile.uk` and `Config.uk`, and one defconfig per target. Output is deterministic
//! (sorted keys), and each file carries a header with a hash of its body so a hand edit
//! is detected by [`check_drift`] instead of being silently overwritten.
//!
//! [`kconfig`] checks the `CONFIG_` names a defconfig sets against the Kconfig files of a
//! Unikraft tree and its libraries (the only part that reads files).
//!
//! Status: the generated files are what `cargo xtask kraft-run` builds and boots on
//! Unikraft 0.16.3, and what the kraft-driven path (Unikraft's make run the way kraft runs
//! it) builds with no xtask step; both are tested in `xtask/tests/unikraft.rs`.

pub mod kconfig;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The Unikraft / lib-musl tag used when the metadata names none: the consistent pair.
pub const DEFAULT_VERSION: &str = "RELEASE-0.16.3";
/// Targets this generator knows, as `platform/arch`.
pub const KNOWN_TARGETS: &[&str] = &["qemu/x86_64", "fc/x86_64"];

/// `[package.metadata.unikraft]`, as written by the user.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UnikraftMetadata {
    /// Unikraft core tag (default [`DEFAULT_VERSION`]).
    pub version: Option<String>,
    /// Unikraft core source (default: the upstream repository).
    pub source: Option<String>,
    /// Extra libraries beyond musl, name → tag.
    #[serde(default)]
    pub libraries: BTreeMap<String, String>,
    /// `platform/arch` targets (default `["qemu/x86_64"]`).
    pub targets: Option<Vec<String>>,
    /// Extra kconfig options, `CONFIG_NAME` → value.
    #[serde(default)]
    pub kconfig: BTreeMap<String, String>,
    /// Boot arguments for the app.
    #[serde(default)]
    pub cmdline: Vec<String>,
    /// Guest memory, like `64M` (default `64M`).
    pub memory: Option<String>,
    /// Image name (default: the package name).
    pub name: Option<String>,
    /// Real backtraces on panic (default `false`): links gcc's unwinder and prints the
    /// frames, which `cargo xtask kraft-run` symbolizes from the debug image.
    pub backtrace: Option<bool>,
    /// Devices the app uses: any of `net`, `block` (default none).
    #[serde(default)]
    pub devices: Vec<String>,
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
    /// Devices (`net`, `block`), sorted; their drivers are in the kconfig.
    pub devices: Vec<String>,
}

/// Bad metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataError {
    /// The table does not deserialize (unknown key, wrong type).
    Malformed(String),
    /// A target this generator does not know.
    UnknownTarget(String),
    /// A kconfig name not of the form `CONFIG_[A-Z0-9_]+`.
    BadKconfigName(String),
    /// A memory size that is not `<n>M` or `<n>G` within [`MEMORY_MIB_RANGE`].
    BadMemory(String),
    /// An image name Unikraft will not accept.
    BadName(String),
    /// A device this generator does not know.
    UnknownDevice(String),
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataError::Malformed(e) => write!(f, "[package.metadata.unikraft] is malformed: {e}"),
            MetadataError::UnknownDevice(d) => write!(
                f,
                "unknown device `{d}` in `devices`; known: {}",
                KNOWN_DEVICES.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
            ),
            MetadataError::UnknownTarget(t) => {
                write!(f, "unknown target `{t}`; known targets: {}", KNOWN_TARGETS.join(", "))
            }
            MetadataError::BadKconfigName(n) => {
                write!(f, "kconfig key `{n}` is not of the form CONFIG_[A-Z0-9_]+")
            }
            MetadataError::BadMemory(m) => write!(
                f,
                "memory `{m}` is not a size like 64M or 1G between {}M and {}G",
                MEMORY_MIB_RANGE.start(),
                MEMORY_MIB_RANGE.end() / 1024
            ),
            MetadataError::BadName(n) => {
                write!(f, "image name `{n}` must be 1-64 characters of a-z, 0-9 and _ (set `name` in the metadata)")
            }
        }
    }
}

impl std::error::Error for MetadataError {}

/// The kconfig every Rust app needs on Unikraft 0.16 with lib-musl (see docs/runtime.md).
pub fn base_kconfig() -> BTreeMap<String, String> {
    [
        "CONFIG_LIBUKBUS",
        "CONFIG_LIBUKSGLIST",
        "CONFIG_LIBMUSL",
        "CONFIG_LIBUKSWRAND",
        "CONFIG_LIBPOSIX_FUTEX",
        "CONFIG_LIBPOSIX_MMAP",
        "CONFIG_LIBPOSIX_SYSINFO",
        "CONFIG_LIBPOSIX_TIME",
        "CONFIG_LIBVFSCORE_AUTOMOUNT_CI",
        "CONFIG_LIBVFSCORE_AUTOMOUNT_CI_RAMFS",
        "CONFIG_LIBRAMFS",
        // rt-unikraft's executor waits on a semaphore that device interrupts signal.
        "CONFIG_LIBUKLOCK",
        "CONFIG_LIBUKLOCK_SEMAPHORE",
    ]
    .into_iter()
    .map(|k| (k.to_string(), "y".to_string()))
    .collect()
}

/// Devices an app can ask for in `devices`, and the kconfig each needs (virtio over PCI,
/// what QEMU and Firecracker give a guest).
pub const KNOWN_DEVICES: &[(&str, &[&str])] = &[
    ("net", &["CONFIG_LIBUKNETDEV", "CONFIG_LIBVIRTIO_NET", "CONFIG_LIBVIRTIO_PCI", "CONFIG_LIBUKBUS_PCI"]),
    ("block", &["CONFIG_LIBUKBLKDEV", "CONFIG_LIBVIRTIO_BLK", "CONFIG_LIBVIRTIO_PCI", "CONFIG_LIBUKBUS_PCI"]),
];

/// Guest memory this project accepts, in MiB: below 4 MiB a Rust unikernel does not boot
/// (a std hello that spawns a thread needs about that), and above 64 GiB is a typo.
pub const MEMORY_MIB_RANGE: std::ops::RangeInclusive<u32> = 4..=65536;

fn parse_memory(m: &str) -> Option<u32> {
    let (digits, factor) = if let Some(d) = m.strip_suffix('M') {
        (d, 1)
    } else if let Some(d) = m.strip_suffix('G') {
        (d, 1024)
    } else {
        return None;
    };
    // Digits only: `u32::from_str` would also take a sign (`+64M`).
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mib = digits.parse::<u32>().ok()?.checked_mul(factor)?;
    MEMORY_MIB_RANGE.contains(&mib).then_some(mib)
}

impl AppSpec {
    /// Builds the spec from a package name and its `metadata` JSON value (as `cargo
    /// metadata` reports it; `null` or a missing `unikraft` key means all defaults).
    pub fn from_cargo_metadata(package: &str, metadata: &serde_json::Value) -> Result<Self, MetadataError> {
        let table = metadata.get("unikraft").cloned().unwrap_or(serde_json::Value::Null);
        let meta: UnikraftMetadata = if table.is_null() {
            UnikraftMetadata::default()
        } else {
            serde_json::from_value(table).map_err(|e| MetadataError::Malformed(e.to_string()))?
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
        let targets = meta.targets.clone().unwrap_or_else(|| vec!["qemu/x86_64".to_string()]);
        if let Some(bad) = targets.iter().find(|t| !KNOWN_TARGETS.contains(&t.as_str())) {
            return Err(MetadataError::UnknownTarget(bad.clone()));
        }
        for key in meta.kconfig.keys() {
            let ok = key.strip_prefix("CONFIG_").is_some_and(|rest| {
                !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            });
            if !ok {
                return Err(MetadataError::BadKconfigName(key.clone()));
            }
        }
        let memory = meta.memory.clone().unwrap_or_else(|| "64M".to_string());
        let memory_mib = parse_memory(&memory).ok_or(MetadataError::BadMemory(memory))?;
        let version = meta.version.clone().unwrap_or_else(|| DEFAULT_VERSION.to_string());
        let mut libraries = meta.libraries.clone();
        libraries.entry("musl".to_string()).or_insert_with(|| version.clone());
        let mut kconfig = base_kconfig();
        let mut devices = meta.devices.clone();
        devices.sort();
        devices.dedup();
        for device in &devices {
            let Some((_, options)) = KNOWN_DEVICES.iter().find(|(name, _)| name == device) else {
                return Err(MetadataError::UnknownDevice(device.clone()));
            };
            kconfig.extend(options.iter().map(|o| (o.to_string(), "y".to_string())));
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
        })
    }
}

/// The generated files, by path relative to the app directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFiles {
    /// `(path, contents)`, sorted by path.
    pub files: Vec<(String, String)>,
}

const MARK: &str =
    "Generated from Cargo.toml by kraftfile-gen; do not edit (edit [package.metadata.unikraft] instead).";

/// FNV-1a: a stable, dependency-free hash; it detects edits, it is not for security.
fn body_hash(body: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in body.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

fn with_header(comment: &str, body: String) -> String {
    format!("{comment} {MARK}\n{comment} body-hash: {}\n{body}", body_hash(&body))
}

/// What [`check_drift`] found in an existing file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// The file is exactly what would be generated.
    UpToDate,
    /// A generated file, untouched since, from older metadata: safe to regenerate.
    Stale,
    /// The file was edited by hand (its body no longer matches its own hash), or was never
    /// generated: do not overwrite.
    HandEdited,
}

/// Compares an existing file with what [`generate`] would write now.
pub fn check_drift(existing: &str, expected: &str) -> Drift {
    if existing == expected {
        return Drift::UpToDate;
    }
    let mut lines = existing.splitn(3, '\n');
    let (Some(first), Some(second), Some(body)) = (lines.next(), lines.next(), lines.next()) else {
        return Drift::HandEdited;
    };
    let recorded = second.rsplit("body-hash: ").next().unwrap_or("");
    if first.contains(MARK) && second.contains("body-hash: ") && recorded == body_hash(body) {
        Drift::Stale
    } else {
        Drift::HandEdited
    }
}

#[derive(Serialize)]
struct Kraftfile<'a> {
    spec: &'a str,
    name: &'a str,
    unikraft: Component<'a>,
    libraries: BTreeMap<&'a str, Component<'a>>,
    targets: &'a [String],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cmd: Vec<&'a str>,
}

#[derive(Serialize)]
struct Component<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
    version: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    kconfig: BTreeMap<&'a str, &'a str>,
}

/// Where the Rust side of the app is and how the generated `Makefile.uk` builds it. These
/// are facts about this machine's checkout (absolute paths), not metadata, so they are
/// passed in by the caller (the xtask reads them from `cargo metadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RustBuild {
    /// Absolute path of the app's `Cargo.toml`.
    pub manifest_path: String,
    /// The app's library target name (the archive is `lib<lib_name>.a`).
    pub lib_name: String,
    /// Absolute cargo target directory for the staticlib build.
    pub cargo_target_dir: String,
    /// Absolute paths of C files Unikraft's build compiles into the app (rt-unikraft's glue).
    pub glue_sources: Vec<String>,
    /// Set for a plain binary (a `fn main()` bin, or a libtest harness), which cargo links
    /// into an archive with cargo-unikraft as its linker, instead of the staticlib of an
    /// app on rt-unikraft.
    pub linked_bin: Option<LinkedBin>,
}

/// How a plain binary's archive is made (see cargo-unikraft's `linker` module).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedBin {
    /// Absolute path of the archive Unikraft links.
    pub archive: String,
    /// The environment variable that makes cargo-unikraft act as the linker, and the
    /// arguments after `cargo` that build the archive; `None` when the archive is built
    /// before make runs (test harnesses, whose file names cargo hashes).
    pub cargo: Option<(String, Vec<String>)>,
}

/// The arguments after `cargo` that build the app's staticlib for Unikraft. The generated
/// `Makefile.uk` and `cargo xtask kraft-run` both use exactly these, so neither undoes the
/// other's build.
///
/// The profile settings are forced because the image depends on them: fat LTO lets the
/// linker see only what the app reaches (a Rust hello image is about half the size
/// without it, since whole std objects are pulled in otherwise), one codegen unit puts
/// rt-unikraft's shims in the same object as its entry (so a `clock_nanosleep` override
/// is always linked), and `panic = "abort"` is what the `_Unwind_*` stubs assume.
pub fn cargo_staticlib_args(spec: &AppSpec, build: &RustBuild) -> Vec<String> {
    // The app's own `unikraft` feature selects the backend; `backtrace` in the metadata
    // turns on the real unwinder in rt-unikraft (through the facade).
    let features = if spec.backtrace { "unikraft,unikernel/backtrace" } else { "unikraft" };
    let mut args: Vec<String> = [
        "rustc",
        "--manifest-path",
        &build.manifest_path,
        "--lib",
        "--release",
        "--no-default-features",
        "--features",
        features,
        "--crate-type",
        "staticlib",
        "--target-dir",
        &build.cargo_target_dir,
        "--config",
        "profile.release.lto=true",
        "--config",
        "profile.release.codegen-units=1",
        "--config",
        "profile.release.panic='abort'",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    if spec.backtrace {
        // Line tables, so the symbolized frames name files and lines. They live in the
        // debug image only; Unikraft strips the bootable one.
        args.extend(["--config", "profile.release.debug='line-tables-only'"].map(String::from));
    }
    args
}

/// Generates every file for `spec`, building the Rust side as `build` says.
pub fn generate(spec: &AppSpec, build: &RustBuild) -> GeneratedFiles {
    let kraftfile = Kraftfile {
        spec: "v0.6",
        name: &spec.name,
        unikraft: Component {
            source: Some(&spec.source),
            version: &spec.version,
            kconfig: spec.kconfig.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
        },
        libraries: spec
            .libraries
            .iter()
            .map(|(name, tag)| (name.as_str(), Component { source: None, version: tag, kconfig: BTreeMap::new() }))
            .collect(),
        targets: &spec.targets,
        cmd: spec.cmdline.iter().map(String::as_str).collect(),
    };
    let kraftfile = serde_yaml::to_string(&kraftfile).expect("a Kraftfile always serializes");

    let upper = spec.name.to_uppercase();
    let glue: String = build.glue_sources.iter().map(|src| format!("APP{upper}_SRCS-y += {src}\n")).collect();
    let quote = |args: &[String]| {
        args.iter()
            .map(|arg| if arg.contains('\'') { format!("\"{arg}\"") } else { arg.clone() })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let unwinder = "# gcc's unwinder, which finds unwind tables through the glue's _dl_find_object over\n\
                    # the image's .eh_frame_hdr.\n\
                    UK_ALIBS-y += $(shell $(CC) -print-file-name=libgcc_eh.a)\n\
                    LDFLAGS-y += -Wl,--eh-frame-hdr\n\n";
    let rust = match &build.linked_bin {
        None => format!(
            "# The Rust app: cargo builds it as a staticlib before the final link. Cargo runs on\n\
             # every build and decides what is stale; the archive only gets a new timestamp when\n\
             # the Rust code changed, so an unchanged app does not relink.\n\
             APP{upper}_CARGO := $(or $(CARGO),cargo)\n\
             APP{upper}_CARGO_TARGET_DIR := {target_dir}\n\
             APP{upper}_RUST_ARCHIVE := $(APP{upper}_CARGO_TARGET_DIR)/release/lib{lib_name}.a\n\
             UK_ALIBS-y += $(APP{upper}_RUST_ARCHIVE)\n\n\
             {unwinder}\
             .PHONY: app{name}-cargo\n\
             app{name}-cargo:\n\n\
             $(APP{upper}_RUST_ARCHIVE): app{name}-cargo\n\
             \t$(call verbose_cmd,CARGO,app{name},$(APP{upper}_CARGO) {cargo_args})\n",
            name = spec.name,
            unwinder = if spec.backtrace { unwinder } else { "" },
            target_dir = build.cargo_target_dir,
            lib_name = build.lib_name,
            cargo_args = quote(&cargo_staticlib_args(spec, build)),
        ),
        Some(bin) => {
            let recipe = match &bin.cargo {
                None => "# Built by cargo-unikraft before make runs.\n".to_string(),
                Some((env, args)) => format!(
                    "APP{upper}_CARGO := $(or $(CARGO),cargo)\n\
                     .PHONY: app{name}-cargo\n\
                     app{name}-cargo:\n\n\
                     $(APP{upper}_RUST_ARCHIVE): app{name}-cargo\n\
                     \t$(call verbose_cmd,CARGO,app{name},{env} $(APP{upper}_CARGO) {args})\n",
                    name = spec.name,
                    args = quote(args),
                ),
            };
            format!(
                "# The Rust app: a plain binary, linked by cargo with cargo-unikraft as its linker,\n\
                 # which writes one archive for Unikraft's final link instead of a Linux executable.\n\
                 APP{upper}_RUST_ARCHIVE := {archive}\n\
                 UK_ALIBS-y += $(APP{upper}_RUST_ARCHIVE)\n\n\
                 {unwinder}{recipe}",
                archive = bin.archive,
            )
        }
    };
    let makefile_uk = format!(
        "$(eval $(call addlib,app{name}))\n\n\
         # rt-unikraft's C glue (the C `main`), compiled by Unikraft's build with its own flags.\n\
         {glue}\n\
         # Every exit(code) goes through the glue's __wrap_exit, which carries the code out of\n\
         # the VM (Unikraft's exit_group drops it).\n\
         LDFLAGS-y += -Wl,--wrap=exit\n\n\
         {rust}",
        name = spec.name,
    );
    let config_uk = format!("config APP{upper}\nbool \"{name}: a Rust application\"\ndefault y\n", name = spec.name);

    let mut files = vec![
        ("Kraftfile".to_string(), with_header("#", kraftfile)),
        ("Makefile.uk".to_string(), with_header("#", makefile_uk)),
        ("Config.uk".to_string(), with_header("#", config_uk)),
    ];
    for target in &spec.targets {
        let (plat, arch) = target.split_once('/').expect("targets are validated");
        let mut lines =
            vec![format!("CONFIG_UK_NAME=\"{}\"", spec.name), format!("CONFIG_ARCH_{}=y", arch.to_uppercase())];
        match plat {
            "qemu" => lines.extend(["CONFIG_PLAT_KVM=y".to_string(), "CONFIG_KVM_VMM_QEMU=y".to_string()]),
            "fc" => lines.extend(["CONFIG_PLAT_KVM=y".to_string(), "CONFIG_KVM_VMM_FIRECRACKER=y".to_string()]),
            _ => unreachable!("targets are validated"),
        }
        lines.extend(spec.kconfig.iter().map(|(k, v)| format!("{k}={v}")));
        lines.sort();
        let body = lines.join("\n") + "\n";
        files.push((format!("defconfig.{}", target.replace('/', "-")), with_header("#", body)));
    }
    files.sort();
    GeneratedFiles { files }
}
