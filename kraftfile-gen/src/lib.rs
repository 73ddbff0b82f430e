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
//! it) builds with no xtask step; both are tested in `e2e/tests/unikraft.rs`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod kconfig;
pub mod target;

mod metadata;
mod rust_build;
mod values;

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

pub use metadata::*;
pub use rust_build::*;
pub use values::*;

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

/// [`with_header`] for a linker script, whose comments are `/* ... */`.
fn with_c_header(body: String) -> String {
    format!("/* {MARK} */\n/* body-hash: {} */\n{body}", body_hash(&body))
}

/// The linker script fragment that leaves the Rust archive's unwind tables out of the
/// image (see [`generate`]); `archive` is the archive's file name.
fn no_unwind_tables_lds(archive: &str) -> String {
    format!(
        "/* The app's Rust code is built with panic = \"abort\" and, without `backtrace = true`, with\n   \
         rt-unikraft's _Unwind_* stubs: nothing reads its unwind tables (the precompiled std still\n   \
         carries them), so they stay out of the image. The first matching rule of the link\n   \
         wins: this one is inserted before Unikraft's .eh_frame. */\n\
         SECTIONS\n{{\n\t/DISCARD/ : {{ *{archive}:*(.eh_frame) *{archive}:*(.gcc_except_table .gcc_except_table.*) }}\n}}\n\
         INSERT BEFORE .eh_frame;\n"
    )
}

/// The generated linker script of an app on rt-unikraft without `backtrace = true`.
pub const NO_UNWIND_TABLES_LDS: &str = "no_unwind_tables.lds";

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

/// The glue's link-time wraps ([`rt_unikraft_glue::LINK_WRAPS`], kept beside the C that
/// defines them) as Makefile.uk lines, each under its reason; socket ones only with `sockets`.
fn link_wraps(sockets: bool) -> String {
    rt_unikraft_glue::LINK_WRAPS
        .iter()
        .filter(|wrap| sockets || !wrap.sockets_only)
        .map(|wrap| {
            let why: String = wrap.why.iter().map(|line| format!("# {line}\n")).collect();
            format!("{why}LDFLAGS-y += -Wl,--wrap={}\n\n", wrap.symbol)
        })
        .collect()
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
    // `# body-hash: X`, or `/* body-hash: X */` in a linker script.
    let recorded = second.rsplit("body-hash: ").next().unwrap_or("").trim_end_matches(" */");
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

/// A path (or argument) that cannot be written into the generated `Makefile.uk` as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsafePath {
    /// What it is (`the app's manifest`, `a cargo argument`, ...).
    pub what: String,
    /// The path or argument.
    pub path: String,
    /// The first character that make or the recipe's shell would read as syntax.
    pub bad: char,
}

impl fmt::Display for UnsafePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:?} contains {:?}, which Unikraft's make cannot take in a path (make reads # as a comment, \
             $ as a variable, spaces as separators, : and % in rules, and recipes run in a shell); \
             move the crate, its target directory or the source cache to a path of letters, digits and / . _ - + @",
            self.what, self.path, self.bad
        )
    }
}

impl std::error::Error for UnsafePath {}

/// Whether `c` goes into a make file and a shell command line as itself: letters, digits
/// and `/ . _ - + @`. Everything else is refused rather than escaped, because one path
/// passes through several layers (make variables, `$(call ...)` arguments split at
/// commas, rule targets, the shell of a recipe, and Unikraft's own make, which takes the
/// app directory on its command line and does not escape it).
pub fn make_safe_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | '@')
}

/// Checks that `path` (described as `what` in the error) is made of [`make_safe_char`]s.
pub fn check_make_path(what: &str, path: &str) -> Result<(), UnsafePath> {
    check_word(what, path, |_| false)
}

fn check_word(what: &str, word: &str, also: impl Fn(char) -> bool) -> Result<(), UnsafePath> {
    match word.chars().find(|&c| !make_safe_char(c) && !also(c)) {
        Some(bad) => Err(UnsafePath { what: what.to_string(), path: word.to_string(), bad }),
        None => Ok(()),
    }
}

/// Checks every path and argument of `build` that [`generate`] writes into `Makefile.uk`.
/// Arguments may also hold `=` and `'` (`--config profile.release.panic='abort'`, which
/// the generator quotes).
pub fn check_build(spec: &AppSpec, build: &RustBuild) -> Result<(), UnsafePath> {
    check_make_path("the app's manifest", &build.manifest_path)?;
    check_make_path("the library name", &build.lib_name)?;
    check_make_path("the cargo target directory", &build.cargo_target_dir)?;
    for glue in &build.glue_sources {
        check_make_path("the C glue source", glue)?;
    }
    // Arguments go into a make variable, so `,` (`--features a,b`) is safe in them.
    let arg = |c: char| matches!(c, '=' | '\'' | ',');
    let mut args = cargo_staticlib_args(spec, build);
    if let Some(bin) = &build.linked_bin {
        check_make_path("the Rust archive", &bin.archive)?;
        if let Some((env, bin_args)) = &bin.cargo {
            check_word("the linker environment", env, |c| c == '=')?;
            args.extend(bin_args.iter().cloned());
        }
    }
    for a in &args {
        check_word("a cargo argument", a, arg)?;
    }
    Ok(())
}

/// Generates every file for `spec`, building the Rust side as `build` says. Fails, naming
/// the path, when a path in `build` cannot be written into `Makefile.uk` as it is
/// ([`check_build`]).
pub fn generate(spec: &AppSpec, build: &RustBuild) -> Result<GeneratedFiles, UnsafePath> {
    check_build(spec, build)?;
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
             # The arguments are a variable because a comma in them (`--features a,b`) would\n\
             # split the arguments of $(call verbose_cmd,...).\n\
             APP{upper}_CARGO := $(or $(CARGO),cargo)\n\
             APP{upper}_CARGO_ARGS := {cargo_args}\n\
             APP{upper}_CARGO_TARGET_DIR := {target_dir}\n\
             APP{upper}_RUST_ARCHIVE := $(APP{upper}_CARGO_TARGET_DIR)/{profile_dir}/lib{lib_name}.a\n\
             UK_ALIBS-y += $(APP{upper}_RUST_ARCHIVE)\n\n\
             {unwinder}\
             .PHONY: app{name}-cargo\n\
             app{name}-cargo:\n\n\
             $(APP{upper}_RUST_ARCHIVE): app{name}-cargo\n\
             \t$(call verbose_cmd,CARGO,app{name},$(APP{upper}_CARGO) $(APP{upper}_CARGO_ARGS))\n",
            name = spec.name,
            unwinder = if spec.backtrace {
                unwinder.to_string()
            } else {
                format!(
                    "# Nothing unwinds (panic = \"abort\", no `backtrace = true`): the Rust code's unwind\n\
                     # tables stay out of the image ({NO_UNWIND_TABLES_LDS}).\n\
                     EXTRA_LD_SCRIPT-y += $(APP{upper}_BASE)/{NO_UNWIND_TABLES_LDS}\n\n"
                )
            },
            target_dir = build.cargo_target_dir,
            lib_name = build.lib_name,
            profile_dir = build.cargo.profile_dir(),
            cargo_args = quote(&cargo_staticlib_args(spec, build)),
        ),
        Some(bin) => {
            let recipe = match &bin.cargo {
                None => "# Built by cargo-unikraft before make runs.\n".to_string(),
                Some((env, args)) => format!(
                    "APP{upper}_CARGO := $(or $(CARGO),cargo)\n\
                     APP{upper}_CARGO_ARGS := {args}\n\
                     .PHONY: app{name}-cargo\n\
                     app{name}-cargo:\n\n\
                     $(APP{upper}_RUST_ARCHIVE): app{name}-cargo\n\
                     \t$(call verbose_cmd,CARGO,app{name},{env} $(APP{upper}_CARGO) $(APP{upper}_CARGO_ARGS))\n",
                    name = spec.name,
                    args = quote(args),
                ),
            };
            format!(
                "# The Rust app: a plain binary, linked by cargo with cargo-unikraft as its linker,\n\
                 # which writes one archive for Unikraft's final link instead of a Linux executable.\n\
                 APP{upper}_RUST_ARCHIVE := {archive}\n\
                 UK_ALIBS-y += $(APP{upper}_RUST_ARCHIVE)\n\n\
                 {extra}{unwinder}{recipe}",
                archive = bin.archive,
                extra = bin
                    .extra_archives
                    .iter()
                    .map(|a| format!("# Built by cargo-unikraft before make runs.\nUK_ALIBS-y += {a}\n\n"))
                    .collect::<String>(),
            )
        }
    };
    let makefile_uk = format!(
        "$(eval $(call addlib,app{name}))\n\n\
         # rt-unikraft's C glue (the C `main`), compiled by Unikraft's build with its own flags.\n\
         {glue}\n\
         {wraps}{rust}",
        name = spec.name,
        wraps = link_wraps(spec.sockets),
    );
    let config_uk = format!("config APP{upper}\nbool \"{name}: a Rust application\"\ndefault y\n", name = spec.name);

    let mut files = vec![
        ("Kraftfile".to_string(), with_header("#", kraftfile)),
        ("Makefile.uk".to_string(), with_header("#", makefile_uk)),
        ("Config.uk".to_string(), with_header("#", config_uk)),
    ];
    if build.linked_bin.is_none() && !spec.backtrace {
        let archive = format!("lib{}.a", build.lib_name);
        files.push((NO_UNWIND_TABLES_LDS.to_string(), with_c_header(no_unwind_tables_lds(&archive))));
    }
    for target in &spec.targets {
        let (plat, arch) = target.split_once('/').expect("targets are validated");
        let mut lines =
            vec![format!("CONFIG_UK_NAME=\"{}\"", spec.name), format!("CONFIG_ARCH_{}=y", arch.to_uppercase())];
        match plat {
            "qemu" => lines.extend(["CONFIG_PLAT_KVM=y".to_string(), "CONFIG_KVM_VMM_QEMU=y".to_string()]),
            "fc" => {
                lines.extend(["CONFIG_PLAT_KVM=y".to_string(), "CONFIG_KVM_VMM_FIRECRACKER=y".to_string()]);
                // Firecracker has no PCI bus: its virtio devices are virtio-mmio ones, which
                // it announces on the kernel command line (`virtio_mmio.device=...`). Kconfig
                // drops the devices' LIBVIRTIO_PCI there (it depends on HAVE_PCI).
                if !spec.devices.is_empty() && !spec.kconfig.contains_key(FC_VIRTIO_TRANSPORT) {
                    lines.push(format!("{FC_VIRTIO_TRANSPORT}=y"));
                }
            }
            _ => unreachable!("targets are validated"),
        }
        lines.extend(spec.kconfig.iter().map(|(k, v)| format!("{k}={v}")));
        lines.sort();
        let body = lines.join("\n") + "\n";
        files.push((format!("defconfig.{}", target.replace('/', "-")), with_header("#", body)));
    }
    files.sort();
    Ok(GeneratedFiles { files })
}
