//! std's sockets for plain binaries: rt-unikraft's socket driver, linked beside a program
//! that does not depend on this project.
//!
//! The driver is Rust (rt-unikraft's `socket` module, feature `sockets`). A plain binary
//! cannot depend on it, so this tool builds it on its own, as a staticlib with its own copy
//! of std, and turns that archive into one object whose only global definitions are the
//! `rtuk_sock_*` functions `glue/socket.c` calls (`objcopy --keep-global-symbols`).
//! Everything else in it (its std, its allocator shim, rt-unikraft's libc shims and entry)
//! becomes local, so it cannot clash with the program's own std or with the glue: the two
//! copies of std live side by side, each calling the same libc (lib-musl), the same heap
//! (`malloc`) and the same threads. The driver's panics abort the guest, as the program's
//! would without `catch_unwind`.
//!
//! The driver's sources are the rt-unikraft crate of the checkout this tool was built from
//! (`cargo install --path cargo-unikraft`), or `$UNIKERNEL_RT_UNIKRAFT` (a directory with
//! rt-unikraft's `Cargo.toml`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::app::{cargo, path_str};

/// Gives a plain crate's app std's sockets as `devices = ["net"]` with `sockets = true`
/// would (the kconfig of both, the glue's net and socket C files, the driver's archive),
/// when it does not have them already. `cargo unikraft test` does this for every test
/// image: test suites talk to themselves over 127.0.0.1 as freely as on Linux (the
/// loopback needs no net device attached).
pub fn add_to(app: &mut crate::app::App) -> Result<()> {
    if app.spec.sockets {
        return Ok(());
    }
    let Some(linked_bin) = app.build.linked_bin.as_mut() else { return Ok(()) };
    let glue_dir = app
        .build
        .glue_sources
        .first()
        .and_then(|main| Path::new(main).parent())
        .context("a plain binary's glue has its main.c")?
        .to_path_buf();
    for file in ["netdev.c", "blkdev.c", "socket.c"] {
        app.build.glue_sources.push(path_str(&glue_dir.join(file))?);
    }
    linked_bin.extra_archives.push(path_str(&archive_path(&app.target_dir))?);
    let net = kraftfile_gen::KNOWN_DEVICES.iter().find(|(name, _)| *name == "net").map_or(&[][..], |(_, o)| *o);
    for option in net.iter().chain(kraftfile_gen::SOCKETS_KCONFIG) {
        app.spec.kconfig.entry(option.to_string()).or_insert_with(|| "y".to_string());
    }
    if !app.spec.devices.iter().any(|d| d == "net") {
        app.spec.devices.push("net".to_string());
    }
    app.spec.sockets = true;
    Ok(())
}

/// The functions `glue/socket.c` calls: the driver's whole interface.
const DRIVER_SYMBOLS: &[&str] = &[
    "rtuk_sock_create",
    "rtuk_sock_accept",
    "rtuk_sock_bind",
    "rtuk_sock_connect",
    "rtuk_sock_listen",
    "rtuk_sock_shutdown",
    "rtuk_sock_getname",
    "rtuk_sock_getsockopt",
    "rtuk_sock_setsockopt",
    "rtuk_sock_recv",
    "rtuk_sock_send",
    "rtuk_sock_ioctl",
    "rtuk_sock_poll",
    "rtuk_sock_close",
];

/// rt-unikraft's manifest: `$UNIKERNEL_RT_UNIKRAFT`, else the checkout this tool was built
/// from.
fn rt_unikraft_manifest() -> Result<PathBuf> {
    let dir = match std::env::var_os("UNIKERNEL_RT_UNIKRAFT").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../rt-unikraft"),
    };
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        bail!(
            "`sockets = true` in a plain binary needs rt-unikraft's sources (the socket driver is built from them), \
             and there are none at {}: install cargo-unikraft from a checkout of this project (`cargo install --path \
             cargo-unikraft`) and keep the checkout, or set UNIKERNEL_RT_UNIKRAFT to rt-unikraft's directory",
            dir.display()
        );
    }
    Ok(manifest)
}

/// Where the driver's archive for apps under `target_dir` goes.
pub fn archive_path(target_dir: &Path) -> PathBuf {
    target_dir.join("unikraft").join("rt-sockets").join("librt_sockets.a")
}

/// Builds the driver (cargo decides whether anything changed) and writes the localized
/// archive at `archive`.
pub fn build(archive: &Path) -> Result<()> {
    let manifest = rt_unikraft_manifest()?;
    let dir = archive.parent().context("the driver's archive has a directory")?;
    let target_dir = dir.join("cargo");
    fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    eprintln!("cargo-unikraft: building the socket driver for a plain binary ({})", manifest.display());
    let status = Command::new(cargo())
        .args(["rustc", "--manifest-path"])
        .arg(&manifest)
        .args(["--lib", "--release", "--features", "standalone-sockets", "--crate-type", "staticlib", "--target-dir"])
        .arg(&target_dir)
        .args(["--config", "profile.release.lto=true", "--config", "profile.release.codegen-units=1"])
        .args(["--config", "profile.release.panic='abort'"])
        .status()
        .context("run cargo to build the socket driver")?;
    if !status.success() {
        bail!("building the socket driver failed ({status})");
    }
    let staticlib = target_dir.join("release").join("librt_unikraft.a");
    let merged = dir.join("rt_sockets.o");
    // Only what the driver's entry points reach, as a link would pull it.
    // With `--gc-sections` the `-u` symbols are the roots: rt-unikraft's entry and shims,
    // which call into the facade a plain binary does not have, are dropped.
    let mut ld = Command::new("ld");
    ld.args(["-r", "--gc-sections"]);
    for symbol in DRIVER_SYMBOLS {
        ld.args(["-u", symbol]);
    }
    ld.args(["--start-group"]).arg(&staticlib).args(["--end-group", "-o"]).arg(&merged);
    run(ld, "ld", "merge the socket driver into one object")?;
    let keep = dir.join("keep-global.txt");
    fs::write(&keep, DRIVER_SYMBOLS.join("\n") + "\n")?;
    let mut objcopy = Command::new("objcopy");
    objcopy
        .args(["--remove-section=.llvmbc", "--remove-section=.llvmcmd"])
        .arg(format!("--keep-global-symbols={}", path_str(&keep)?))
        .arg(&merged);
    run(objcopy, "objcopy", "make everything but the driver's entry points local")?;
    let staging = dir.join("librt_sockets.a.new");
    let _ = fs::remove_file(&staging);
    let mut ar = Command::new("ar");
    ar.arg("rcsD").arg(&staging).arg(&merged);
    run(ar, "ar", "write the socket driver's archive")?;
    fs::rename(&staging, archive).with_context(|| format!("write {}", archive.display()))?;
    Ok(())
}

fn run(mut cmd: Command, name: &str, step: &str) -> Result<()> {
    let out = cmd.output().with_context(|| format!("run `{name}` to {step} (binutils is needed)"))?;
    if !out.status.success() {
        bail!("`{name}` failed to {step} ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}
