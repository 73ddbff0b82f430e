//! Plain binaries: a crate with `src/main.rs` and `fn main()`, no dependency on this
//! project. Cargo compiles it for the stock `x86_64-unknown-linux-gnu` target as usual but
//! links it with cargo-unikraft as the linker ([`crate::linker`]), which writes one archive
//! in place of the executable; Unikraft's make links that archive with the glue this tool
//! carries (the C `main` and exit path, the libc shims the gnu std needs, and the
//! unwinder's `_dl_find_object`), which is written next to the generated app directory.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cargo_metadata::{Metadata, Package};
use kraftfile_gen::{AppSpec, CargoOptions, LinkedBin, RustBuild};

use crate::app::{path_str, App, Selection};
use crate::linker::LINKER_ENV;
use crate::target::Platform;

/// rt-unikraft's glue, carried by this tool for apps that do not depend on rt-unikraft
/// (the `rt-unikraft-glue` crate owns the files and checks the list is whole).
const GLUE: &[(&str, &str)] = rt_unikraft_glue::FILES;

/// The app for a crate without a `unikraft` feature: the binary (or example) the user
/// chose, or its only binary, or its `default-run` (or an error that says what to do).
pub fn resolve(meta: &Metadata, package: &Package, selection: &Selection) -> Result<App> {
    let name = package.name.to_string();
    let manifest = package.manifest_path.as_std_path();
    let runnable = if selection.tests { None } else { choose_runnable(package, selection)? };
    let mut spec =
        AppSpec::from_cargo_metadata(&name, &package.metadata).with_context(|| format!("in {}", manifest.display()))?;
    if let Some(runnable) = &runnable {
        // Each binary of a package has an image (and build directory) of its own.
        if runnable.name != name {
            spec.name = image_name(&spec.name, &runnable.name);
        }
    }
    // A plain program reaches the network through std's sockets (the driver is linked
    // beside it) and host folders through std::fs (9pfs); it has no API for a block device.
    let has_net = spec.devices.iter().any(|d| d == "net");
    if spec.devices.iter().any(|d| d != "net" && d != "9pfs") || (has_net && !spec.sockets) {
        bail!(
            "{}: a plain binary reaches the network through std's sockets: `devices = [\"net\"]` needs \
             `sockets = true`; \"9pfs\" (host folders) works as it is; other devices need an app on this \
             project's device core (a `unikraft` feature that enables `unikernel/unikraft`)",
            manifest.display()
        );
    }
    let target_dir = meta.target_directory.clone().into_std_path_buf();
    // The glue is an input of the Unikraft and hosted-musl builds alike; it stays in the
    // Unikraft directory (`target/unikraft/<name>/glue`), the one the generated Makefile.uk names.
    let unikraft_dir = target_dir.join(Platform::Unikraft.dir_name()).join(&spec.name);
    let mut glue_sources = write_glue(&unikraft_dir.join("glue"))?;
    let mut extra_archives = Vec::new();
    if spec.sockets {
        // The socket driver's C side; each file stands in for what the kconfig lacks.
        for file in ["netdev.c", "blkdev.c", "socket.c"] {
            glue_sources.push(path_str(&unikraft_dir.join("glue").join(file))?);
        }
        extra_archives.push(path_str(&crate::plain_sockets::archive_path(&target_dir))?);
    }
    let cargo_target_dir = target_dir.join("unikraft").join("cargo");
    let linker = std::env::current_exe().context("the path of this tool (it is cargo's linker for plain binaries)")?;
    let cargo_config = write_cargo_config(&unikraft_dir)?;
    let profile_dir = cargo_target_dir.join(selection.cargo.profile_dir());
    let linked_bin = match &runnable {
        Some(runnable) => LinkedBin {
            archive: path_str(&match runnable.kind {
                RunnableKind::Bin => profile_dir.join(&runnable.name),
                RunnableKind::Example => profile_dir.join("examples").join(&runnable.name),
            })?,
            cargo: Some((
                format!("{LINKER_ENV}=1"),
                bin_cargo_args(manifest, runnable, &cargo_target_dir, &linker, &cargo_config, &selection.cargo)?,
            )),
            extra_archives,
        },
        // Only test harnesses will be linked (cargo unikraft test sets their archive).
        None => LinkedBin { archive: String::new(), cargo: None, extra_archives },
    };
    let build = RustBuild {
        manifest_path: path_str(manifest)?,
        lib_name: runnable.as_ref().map_or(name.as_str(), |r| r.name.as_str()).to_string(),
        cargo_target_dir: path_str(&cargo_target_dir)?,
        glue_sources,
        linked_bin: Some(linked_bin),
        cargo: selection.cargo.clone(),
    };
    Ok(App { spec, build, target_dir, package: package.clone(), message_format: None })
}

/// A binary or an example of the package: what one image runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runnable {
    pub kind: RunnableKind,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnableKind {
    Bin,
    Example,
}

/// What `--bin`/`--example` name, or the package's only binary, or its `default-run`;
/// `None` for a library without binaries (only its tests can run). Ambiguity is refused,
/// naming `--bin`.
pub fn choose_runnable(package: &Package, selection: &Selection) -> Result<Option<Runnable>> {
    let name = &package.name;
    let of_kind = |is: fn(&cargo_metadata::Target) -> bool| -> Vec<String> {
        package.targets.iter().filter(|t| is(t)).map(|t| t.name.clone()).collect()
    };
    let bins = of_kind(cargo_metadata::Target::is_bin);
    let pick = |flag: &str, kind: RunnableKind, wanted: &str, among: Vec<String>| -> Result<Option<Runnable>> {
        if among.iter().any(|b| b == wanted) {
            return Ok(Some(Runnable { kind, name: wanted.to_string() }));
        }
        let what = if kind == RunnableKind::Bin { "binaries" } else { "examples" };
        bail!(
            "{flag} {wanted}: `{name}` has no such target; its {what}: {}",
            if among.is_empty() { "none".to_string() } else { among.join(", ") }
        )
    };
    if let Some(bin) = &selection.bin {
        return pick("--bin", RunnableKind::Bin, bin, bins);
    }
    if let Some(example) = &selection.example {
        return pick("--example", RunnableKind::Example, example, of_kind(cargo_metadata::Target::is_example));
    }
    let has_lib = package.targets.iter().any(|t| t.is_lib());
    match bins.as_slice() {
        [bin] => Ok(Some(Runnable { kind: RunnableKind::Bin, name: bin.clone() })),
        // A library without a binary has nothing to run, but its tests (`cargo unikraft test`).
        [] if has_lib => Ok(None),
        [] => bail!(
            "`{name}` ({}) has neither a `unikraft` feature (an app on this project's device core) nor a \
             binary target (a plain `fn main()` program); cargo unikraft needs one of them",
            package.manifest_path
        ),
        _ => match &package.default_run {
            Some(default) => pick("default-run", RunnableKind::Bin, default, bins),
            None => bail!(
                "`{name}` has several binaries ({}); choose one with --bin NAME (or set `default-run` in its [package])",
                bins.join(", ")
            ),
        },
    }
}

/// The image name of `bin` of a package whose image is `app`: Unikraft's names are `a-z`,
/// `0-9` and `_`, at most 64 characters.
fn image_name(app: &str, bin: &str) -> String {
    let bin: String =
        bin.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    let mut name = format!("{app}_{bin}");
    name.truncate(64);
    name
}

/// rustix (under async-io, polling, tempfile, ...) makes Linux system calls with the
/// `syscall` instruction by default, which Unikraft does not take (the guest traps:
/// invalid opcode); its documented `rustix_use_libc` cfg makes it call libc, which here is
/// lib-musl. Given as cargo config so build scripts and proc macros agree.
pub const RUSTIX_USE_LIBC: &str = r#"build.rustflags=["--cfg", "rustix_use_libc"]"#;

/// Writes the cargo configuration of a plain binary's build ([`RUSTIX_USE_LIBC`]) into
/// `dir`; returns its path.
fn write_cargo_config(dir: &Path) -> Result<PathBuf> {
    fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let path = dir.join("cargo-config.toml");
    let body = "# Written by cargo-unikraft for the plain binary's build.\n[build]\nrustflags = [\"--cfg\", \"rustix_use_libc\"]\n";
    if fs::read_to_string(&path).ok().as_deref() != Some(body) {
        fs::write(&path, body).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(path)
}

/// The arguments after `cargo` that link `runnable` into an archive, with the user's
/// profile, features and flags. `-C linker` goes to the final rustc call only (`cargo rustc
/// ... -- FLAGS`), so build scripts and proc macros are linked as usual. With the release
/// profile, fat LTO and one codegen unit keep the image small (the linker sees only what
/// the program reaches); any other profile is built as the user's Cargo.toml says.
pub fn bin_cargo_args(
    manifest: &Path,
    runnable: &Runnable,
    target_dir: &Path,
    linker: &Path,
    cargo_config: &Path,
    cargo: &CargoOptions,
) -> Result<Vec<String>> {
    let flag = match runnable.kind {
        RunnableKind::Bin => "--bin",
        RunnableKind::Example => "--example",
    };
    let mut args: Vec<String> = vec!["rustc".into(), "--manifest-path".into(), path_str(manifest)?];
    args.extend([flag.to_string(), runnable.name.clone()]);
    args.extend(cargo.profile_args());
    args.extend(cargo.feature_args());
    args.extend(["--target-dir".into(), path_str(target_dir)?]);
    if cargo.profile == "release" {
        for setting in ["lto=true", "codegen-units=1"] {
            args.extend(["--config".to_string(), format!("profile.release.{setting}")]);
        }
    }
    // A file: the value's brackets and quotes cannot go through Unikraft's make.
    args.extend(["--config".into(), path_str(cargo_config)?]);
    args.extend(cargo.flags.iter().cloned());
    args.extend(["--".into(), "-C".into(), format!("linker={}", path_str(linker)?)]);
    Ok(args)
}

/// Writes the glue into `dir` (only files whose content changed, so make does not
/// recompile needlessly); returns the sources Unikraft compiles (`main.c`).
pub fn write_glue(dir: &Path) -> Result<Vec<String>> {
    fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    for (name, body) in GLUE {
        let path = dir.join(name);
        if fs::read_to_string(&path).ok().as_deref() != Some(*body) {
            fs::write(&path, body).with_context(|| format!("write {}", path.display()))?;
        }
    }
    Ok(vec![path_str(&dir.join("main.c"))?])
}
