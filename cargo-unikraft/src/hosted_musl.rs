//! The hosted-musl harness: a Unikraft app's Rust archive, linked statically against the
//! host's musl instead of Unikraft's lib-musl, and run as a Linux process.
//!
//! The archive is byte for byte the one a Unikraft image links (same cargo command, same
//! `unikraft` feature, same rt-unikraft shims); only the C glue differs
//! (`rt-unikraft/glue/hosted.c` instead of `glue/main.c`). Debian's `musl-tools` ships
//! musl 1.2.3, the version lib-musl builds, so the symbols the shims provide and the ones
//! std expects are resolved against the same libc ABI as on Unikraft. A mistake in a shim
//! (a wrong signature, a missing symbol) shows up here in seconds, on any machine, without
//! a Unikraft tree or QEMU.
//!
//! One difference needs care: std records `argc`/`argv` from an `.init_array` function,
//! which static musl calls without arguments. The hosted glue calls the `.init_array`
//! functions again with the real values; [`check_init_array`] makes sure that is safe by
//! allowing only std's argument recorder and gcc's `frame_dummy` (which, in the
//! `crtbeginS.o` musl-gcc links, registers no unwind tables: harmless to repeat unless libitm
//! is linked, which it also checks).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use object::{Object, ObjectSection, ObjectSymbol};

use crate::app::App;
use crate::appdir::BuildLock;
use crate::staticlib::build_staticlib;
use crate::target::Platform;

/// The executable [`build`] writes: `target/hosted-musl/<name>/<name>`.
pub fn executable_path(app: &App) -> PathBuf {
    app.build_dir(Platform::HostedMusl).join(&app.spec.name)
}

/// Builds `app` for hosted musl and returns the executable, holding the app's hosted-musl
/// build-directory lock (`target/hosted-musl/<name>/`) while it builds. The archive is the
/// Unikraft build's (cargo's `target/unikraft/cargo`, whose own lock cargo takes).
pub fn build(app: &App) -> Result<PathBuf> {
    let musl_gcc = which::which("musl-gcc")
        .context("musl-gcc is not installed; the hosted-musl harness needs it (Debian: apt-get install musl-tools)")?;
    if app.spec.backtrace {
        bail!(
            "{} sets `backtrace = true`, which the hosted-musl harness does not support \
             (rt-unikraft's unwinder reads Unikraft's linker-script symbols); remove it to run here",
            app.build.manifest_path
        );
    }
    let _lock = BuildLock::acquire(&app.build_dir(Platform::HostedMusl))?;
    let archive = build_staticlib(app)?;
    let glue = hosted_glue(app)?;
    let exe = executable_path(app);
    eprintln!("cargo-unikraft: linking {} against the host's musl", exe.display());
    let out = Command::new(&musl_gcc)
        // --eh-frame-hdr: the unwinder of a panic = "unwind" binary finds its tables through
        // the PT_GNU_EH_FRAME segment (glue/hosted_dl_find_object.inc); gcc leaves the flag
        // out of static links.
        .args(["-static", "-O1", "-Wl,--eh-frame-hdr"])
        .args(UNWINDER_THREAD_CALLS.iter().map(|symbol| format!("-Wl,--undefined={symbol}")))
        .arg("-o")
        .arg(&exe)
        .arg(&glue)
        .arg(&archive)
        .output()
        .context("run musl-gcc")?;
    if !out.status.success() {
        bail!(
            "linking against musl failed (a shim is missing or wrong; see docs/runtime.md):\n{}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    check_init_array(&exe)?;
    Ok(exe)
}

/// The pthread calls libgcc_eh.a references weakly. A weak reference does not pull a
/// member out of a static archive, so once std's threads have linked some of them (which
/// makes the unwinder believe threads are in use) the others would be null, and the first
/// unwind would call address 0 (`pthread_once` in `uw_init_context_1`). Forcing all of
/// them in keeps the set consistent; in a Unikraft image lib-musl already provides them.
const UNWINDER_THREAD_CALLS: &[&str] = &[
    "pthread_once",
    "pthread_key_create",
    "pthread_getspecific",
    "pthread_setspecific",
    "pthread_mutex_lock",
    "pthread_mutex_unlock",
];

/// `glue/hosted.c`, next to the `glue/main.c` the app's Unikraft build compiles.
fn hosted_glue(app: &App) -> Result<PathBuf> {
    let main_c = app.build.glue_sources.first().context("rt-unikraft's glue is not known")?;
    let glue = Path::new(main_c).with_file_name("hosted.c");
    if !glue.is_file() {
        bail!("rt-unikraft's hosted glue is missing: {}", glue.display());
    }
    Ok(glue)
}

/// What may be in `.init_array`, given that the hosted glue calls every entry twice.
fn init_entry_is_repeatable(symbol: &str) -> bool {
    // std's recorder of (argc, argv, envp): it only stores them.
    symbol.contains("ARGV_INIT_ARRAY") && symbol.contains("init_wrapper")
        // musl-gcc's crtbeginS.o: registers libitm clone tables only if libitm is linked.
        || symbol == "frame_dummy"
}

/// Refuses an executable whose `.init_array` holds anything but repeatable entries.
pub fn check_init_array(exe: &Path) -> Result<()> {
    let data = std::fs::read(exe).with_context(|| format!("read {}", exe.display()))?;
    let file = object::File::parse(&*data).with_context(|| format!("parse {}", exe.display()))?;
    let Some(section) = file.section_by_name(".init_array") else { return Ok(()) };
    let bytes = section.data()?;
    let symbols: Vec<(u64, String)> = file
        .symbols()
        .filter(|s| s.is_definition())
        .filter_map(|s| Some((s.address(), s.name().ok()?.to_string())))
        .collect();
    for entry in bytes.chunks_exact(8) {
        let address = u64::from_le_bytes(entry.try_into().expect("8 bytes"));
        let names: Vec<&str> = symbols.iter().filter(|(a, _)| *a == address).map(|(_, n)| n.as_str()).collect();
        if !names.iter().any(|n| init_entry_is_repeatable(n)) {
            bail!(
                "{} has an .init_array entry at {address:#x} ({}) that the hosted glue would run twice; \
                 only std's argument recorder and gcc's frame_dummy are known to be safe (see rt-unikraft/glue/hosted.c)",
                exe.display(),
                if names.is_empty() { "no symbol".to_string() } else { names.join(", ") }
            );
        }
    }
    // musl-gcc's crtbeginS.o has a frame_dummy that only registers transactional-memory
    // clone tables (never unwind tables), and does so only when libitm is linked.
    if symbols.iter().any(|(_, n)| n == "_ITM_registerTMCloneTable") {
        bail!(
            "{} links libitm's _ITM_registerTMCloneTable, so running frame_dummy twice would register its tables twice",
            exe.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_init_entries_are_repeatable() {
        assert!(init_entry_is_repeatable(
            "_RNvNvNtNtNtNtCsjrHSEGnQ3l9_3std3sys4args4unix3imp15ARGV_INIT_ARRAY12init_wrapper"
        ));
        assert!(init_entry_is_repeatable("frame_dummy"));
        assert!(!init_entry_is_repeatable("my_constructor"));
        assert!(!init_entry_is_repeatable("_RNvNtNtNtNtCsjrHSEGnQ3l9_3std3sys4args4unix3imp15ARGV_INIT_ARRAY"));
    }
}
