//! The plain-binary half of `cargo xtask bench-unikraft`: a `cargo new --bin` hello (no
//! dependency on this project) built through cargo-unikraft's linker wrapper.
//!
//! Printed next to the `unikernel::main!` hello's figures: its image size over the C
//! hello's, and the rebuild ratio after an app-only change (the whole build, cargo then
//! Unikraft's relink, over cargo alone).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use cargo_unikraft::app::cargo;
use cargo_unikraft::resolve::resolve_app;
use cargo_unikraft::sources::Sources;
use cargo_unikraft::unikraft::build_image;

use crate::bench::{median_timing, timed, touch, Timing, ROUNDS};

const MANIFEST: &str = "[package]\nname = \"plain-hello\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
     # Its own workspace: it lives under this repository's target/ but is not a member.\n[workspace]\n";
const MAIN: &str = "fn main() {\n    println!(\"Hello from a plain Rust binary\");\n}\n";

/// What the plain hello measured.
pub struct PlainFigures {
    pub image_size: u64,
    pub whole_rebuild: Timing,
    pub cargo_alone: Timing,
}

/// Writes a benchmark's scratch crate `files` (path, text) into `dir`, each only when it
/// differs, so a rerun rebuilds only what changed (a relink).
pub(crate) fn write_scratch_crate(dir: &Path, files: &[(&str, &str)]) -> Result<()> {
    for (path, body) in files {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().expect("has a parent"))?;
        if fs::read_to_string(&path).ok().as_deref() != Some(*body) {
            fs::write(&path, body).with_context(|| format!("write {}", path.display()))?;
        }
    }
    Ok(())
}

/// Writes the crate under `target/`.
fn write_crate(target_dir: &Path) -> Result<PathBuf> {
    let dir = target_dir.join("bench-plain-hello");
    write_scratch_crate(&dir, &[("Cargo.toml", MANIFEST), ("src/main.rs", MAIN)])?;
    Ok(dir)
}

pub fn bench_plain_hello(target_dir: &Path, sources: &Sources) -> Result<PlainFigures> {
    let dir = write_crate(target_dir)?;
    let app = resolve_app(&dir.join("Cargo.toml"))?;
    let linked = app.build.linked_bin.as_ref().context("the plain hello is not resolved as a plain binary")?;
    let (env, args) = linked.cargo.clone().context("the plain hello has no cargo command")?;
    let (key, value) = env.split_once('=').context("the linker switch is VAR=value")?;
    eprintln!("bench: building the plain-binary hello");
    let image = build_image(&app, "qemu/x86_64", sources)?;
    let image_size = fs::metadata(&image)?.len();

    let source = dir.join("src/main.rs");
    let mut cargo_alone = Vec::new();
    let mut whole_rebuild = Vec::new();
    for round in 1..=ROUNDS {
        eprintln!("bench: plain hello rebuild round {round}/{ROUNDS}");
        touch(&source)?;
        cargo_alone.push(timed("cargo alone (plain hello)", || {
            let out = Command::new(cargo()).args(&args).env(key, value).output()?;
            if !out.status.success() {
                bail!("cargo failed: {}", String::from_utf8_lossy(&out.stderr));
            }
            Ok(())
        })?);
        touch(&source)?;
        whole_rebuild
            .push(timed("the whole rebuild (plain hello)", || build_image(&app, "qemu/x86_64", sources).map(drop))?);
    }
    Ok(PlainFigures {
        image_size,
        whole_rebuild: median_timing(&whole_rebuild),
        cargo_alone: median_timing(&cargo_alone),
    })
}
