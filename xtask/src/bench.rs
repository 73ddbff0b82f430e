//! `cargo xtask bench-unikraft`: the Unikraft build path's size and rebuild benchmarks.
//!
//! Measured in one run, printed as ratios (machines are noisy; ratios and medians travel):
//!
//! * image size: the stripped image of the Rust `hello` over that of a C hello built with
//!   the same Unikraft configuration (the same defconfig, only the name differs). Target:
//!   at most 1.3×.
//! * rebuild time: after an app-only change (the app's source is touched), the whole
//!   `kraft-run` build (cargo, then Unikraft's make relinking) over the cargo build alone.
//!   The difference is what Unikraft adds to an edit-build cycle.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};

use crate::kraft::{self, AppSelect, UkMake};
use crate::sources;

/// How many times each rebuild is timed; the median is reported.
const ROUNDS: usize = 5;

/// A C hello built like the Rust one, for the size comparison.
const C_HELLO: &str =
    "#include <stdio.h>\n\nint main(int argc, char *argv[])\n{\n\tprintf(\"Hello from C\\n\");\n\treturn 0;\n}\n";

fn touch(path: &Path) -> Result<()> {
    let file = fs::File::options().write(true).open(path).with_context(|| format!("open {}", path.display()))?;
    file.set_modified(SystemTime::now())?;
    Ok(())
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn timed(what: &str, f: impl FnOnce() -> Result<()>) -> Result<Duration> {
    let start = Instant::now();
    f().with_context(|| format!("while timing {what}"))?;
    Ok(start.elapsed())
}

/// Builds the C hello with the Rust hello's defconfig and returns the image.
fn build_c_hello(rust_app: &kraft::App, sources: &sources::Sources) -> Result<std::path::PathBuf> {
    let dir = rust_app.unikraft_dir.parent().expect("target/unikraft/<name>").join("bench-c-hello");
    let app_dir = dir.join("app");
    let build_dir = dir.join("build-qemu-x86_64");
    fs::create_dir_all(&app_dir)?;
    fs::write(app_dir.join("main.c"), C_HELLO)?;
    fs::write(
        app_dir.join("Makefile.uk"),
        "$(eval $(call addlib,appchello))\nAPPCHELLO_SRCS-y += $(APPCHELLO_BASE)/main.c\n",
    )?;
    fs::write(app_dir.join("Config.uk"), "config APPCHELLO\nbool \"C hello\"\ndefault y\n")?;
    let rust_defconfig = fs::read_to_string(rust_app.unikraft_dir.join("app/defconfig.qemu-x86_64"))?;
    let defconfig = rust_defconfig
        .lines()
        .map(|l| if l.starts_with("CONFIG_UK_NAME=") { "CONFIG_UK_NAME=\"chello\"" } else { l })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    fs::write(app_dir.join("defconfig"), &defconfig)?;
    let tarball = build_dir.join("libmusl/musl-1.2.3.tar.gz");
    if !tarball.is_file() {
        fs::create_dir_all(tarball.parent().expect("has a parent"))?;
        fs::copy(&sources.musl_tarball, &tarball)?;
    }
    let make = UkMake {
        unikraft: sources.unikraft.clone(),
        app_dir: app_dir.clone(),
        libs: vec![sources.lib_musl.clone()],
        build_dir: build_dir.clone(),
    };
    if !make.config().is_file() {
        make.run(&[&format!("UK_DEFCONFIG={}", app_dir.join("defconfig").display()), "defconfig"], "configure")?;
    }
    eprintln!("bench: building the C hello (same configuration; the first build takes a few minutes)");
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get()).to_string();
    make.run(&["-j", &jobs], "build")?;
    Ok(build_dir.join("chello_qemu-x86_64"))
}

pub fn bench_unikraft() -> Result<u8> {
    let sources = sources::provisioned()?;
    let app = kraft::resolve_app(&AppSelect { example: Some("hello".into()), manifest_path: None })?;
    let rust_image = kraft::build_image(&app, "qemu/x86_64", &sources)?;
    let c_image = build_c_hello(&app, &sources)?;

    let rust_size = fs::metadata(&rust_image)?.len();
    let c_size = fs::metadata(&c_image)?.len();
    let size_ratio = rust_size as f64 / c_size as f64;

    let source = Path::new(&app.build.manifest_path).parent().expect("manifest dir").join("src/lib.rs");
    let cargo_args = kraftfile_gen::cargo_staticlib_args(&app.build.manifest_path, &app.build.cargo_target_dir);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cargo_alone = Vec::new();
    let mut full_rebuild = Vec::new();
    for round in 1..=ROUNDS {
        eprintln!("bench: rebuild round {round}/{ROUNDS}");
        touch(&source)?;
        cargo_alone.push(timed("cargo alone", || {
            let out = Command::new(&cargo).args(&cargo_args).output()?;
            if !out.status.success() {
                bail!("cargo failed: {}", String::from_utf8_lossy(&out.stderr));
            }
            Ok(())
        })?);
        touch(&source)?;
        full_rebuild.push(timed("the whole rebuild", || kraft::build_image(&app, "qemu/x86_64", &sources).map(drop))?);
    }
    let cargo_median = median(cargo_alone);
    let full_median = median(full_rebuild);
    let rebuild_ratio = full_median.as_secs_f64() / cargo_median.as_secs_f64();

    println!("unikraft build benchmarks (Unikraft RELEASE-0.16.3, qemu/x86_64)");
    println!(
        "  image size:  Rust hello {rust_size} B / C hello {c_size} B = {size_ratio:.3}x  (target <= 1.3x: {})",
        if size_ratio <= 1.3 { "met" } else { "NOT met" }
    );
    println!(
        "  rebuild:     app-only change, whole build {:.2} s / cargo alone {:.2} s = {rebuild_ratio:.2}x  (medians of {ROUNDS}; Unikraft adds {:.2} s)",
        full_median.as_secs_f64(),
        cargo_median.as_secs_f64(),
        (full_median.saturating_sub(cargo_median)).as_secs_f64()
    );
    Ok(if size_ratio <= 1.3 { 0 } else { 1 })
}
