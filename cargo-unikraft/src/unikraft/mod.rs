//! Building a Unikraft image: the app directory is written; when the defconfig changed,
//! its kconfig names are checked against the tree and Unikraft's make applies it, before
//! anything slow runs; cargo builds the Rust archive; then Unikraft's make builds, or,
//! when only the Rust archives changed, the image is relinked without make ([`relink`]).

pub mod config;
pub mod make;
pub mod relink;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use kraftfile_gen::generate;

use crate::app::App;
use crate::appdir::{write_app_dir, BuildLock};
use crate::sources::{self, Sources};
use crate::staticlib::build_staticlib;
use make::UkMake;
use relink::{Plan, Relink};

/// Checks that the app asks for the source set `cargo unikraft fetch` provisions: the build
/// has exactly one Unikraft tree and one lib-musl tree, so any other version or library
/// would silently build against something else.
pub fn check_pinned_sources(app: &App) -> Result<()> {
    let pin = &sources::PIN;
    if app.spec.version != pin.unikraft_tag {
        bail!(
            "{} asks for Unikraft {}, but this tool builds against the pinned {} (the pair lib-musl links with); \
             set `version = \"{}\"` in [package.metadata.unikraft] or remove it",
            app.build.manifest_path,
            app.spec.version,
            pin.unikraft_tag,
            pin.unikraft_tag
        );
    }
    for (name, tag) in &app.spec.libraries {
        if name != "musl" {
            bail!(
                "{} asks for the Unikraft library `{name}`; only musl is provisioned so far \
                 (remove it from `libraries` in [package.metadata.unikraft])",
                app.build.manifest_path
            );
        }
        if tag != pin.lib_musl_tag {
            bail!(
                "{} asks for lib-musl {tag}, but the pinned lib-musl is {}; \
                 set `libraries = {{ musl = \"{}\" }}` or remove it",
                app.build.manifest_path,
                pin.lib_musl_tag,
                pin.lib_musl_tag
            );
        }
    }
    Ok(())
}

/// Checks every kconfig name the defconfig for `target` sets (the app's own and the
/// generated platform/arch ones) against the Unikraft tree, lib-musl and the app's
/// `Config.uk`, and each value against its option's type, before anything slow runs.
fn check_kconfig(app_dir: &Path, defconfig: &Path, sources: &Sources) -> Result<()> {
    let roots = [sources.lib_musl.clone(), app_dir.to_path_buf()];
    let index = kraftfile_gen::kconfig::KconfigIndex::load(&sources.unikraft, &roots)
        .map_err(|e| anyhow::anyhow!("read the Unikraft Kconfig files: {e}"))?;
    let body = fs::read_to_string(defconfig).with_context(|| format!("read {}", defconfig.display()))?;
    index.check(kraftfile_gen::kconfig::defconfig_names(&body)).map_err(|e| anyhow::anyhow!("{e}"))?;
    index.check_values(kraftfile_gen::kconfig::defconfig_settings(&body)).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

/// Fails, naming them, when the configuration `make defconfig` wrote at `config` does not
/// hold the app's own kconfig options as asked ([`config::unapplied`]).
fn check_configured(config: &Path, spec: &kraftfile_gen::AppSpec) -> Result<()> {
    let text = fs::read_to_string(config).with_context(|| format!("read {}", config.display()))?;
    let dropped = config::unapplied(&text, &config::app_options(spec));
    if !dropped.is_empty() {
        let list: Vec<String> = dropped.iter().map(|u| format!("  {u}")).collect();
        bail!(
            "Unikraft's configuration did not take these kconfig options from [package.metadata.unikraft]:\n{}\n\
             Kconfig drops an option whose `depends on` is not met; set what it depends on too \
             (see its Config.uk in the Unikraft tree), or remove it. The configuration: {}",
            list.join("\n"),
            config.display()
        );
    }
    Ok(())
}

/// lib-musl downloads musl at build time, unverified, unless `<build dir>/libmusl/` holds
/// the tarball: put a verified copy there. The copy is checked on every build, so one cut
/// short (a full disk, a killed build) is replaced instead of failing every run after it;
/// when it is (re)made, what Unikraft extracted from an earlier copy is removed, so it
/// extracts and patches again from the good one (its stamps would otherwise re-apply
/// lib-musl's patches over an already patched tree).
fn prepare_musl_tarball(build_dir: &Path, tarball: &Path, sha256: &str) -> Result<()> {
    let dir = build_dir.join("libmusl");
    if sources::install_verified_copy(tarball, &dir.join(sources::PIN.musl_tarball_name), sha256)? {
        for stamp in [".origin", ".patched", ".chksum"] {
            let _ = fs::remove_file(dir.join(stamp));
        }
        let origin = dir.join("origin");
        if origin.exists() {
            fs::remove_dir_all(&origin).with_context(|| format!("remove {}", origin.display()))?;
        }
    }
    Ok(())
}

/// `plat/arch` → the image file suffix Unikraft uses (`qemu-x86_64`).
pub fn target_suffix(target: &str) -> String {
    target.replace('/', "-")
}

/// The image [`build_image`] writes for `target` (`qemu/x86_64`):
/// `target/unikraft/<name>/build-qemu-x86_64/<name>_qemu-x86_64`.
pub fn image_path(app: &App, target: &str) -> PathBuf {
    let suffix = target_suffix(target);
    app.unikraft_dir().join(format!("build-{suffix}")).join(format!("{}_{suffix}", app.spec.name))
}

/// Builds the image for `target` and returns its path, holding the app's Unikraft
/// build-directory lock (`target/unikraft/<name>/`) while it builds.
pub fn build_image(app: &App, target: &str, sources: &Sources) -> Result<PathBuf> {
    if !app.spec.targets.iter().any(|t| t == target) {
        bail!(
            "target {target} is not in the app's targets ({}); add it to `targets` in [package.metadata.unikraft]",
            app.spec.targets.join(", ")
        );
    }
    // One Unikraft build of this app at a time: they share the app directory and build
    // directories. (Solo5 and hosted-musl builds of it have directories and locks of their own.)
    let _lock = BuildLock::acquire(&app.unikraft_dir())?;
    let suffix = target_suffix(target);
    let app_dir = app.unikraft_dir().join("app");
    let build_dir = app.unikraft_dir().join(format!("build-{suffix}"));
    check_pinned_sources(app)?;
    write_app_dir(&app_dir, &generate(&app.spec, &app.build)?)?;
    for archive in app.build.linked_bin.iter().flat_map(|bin| &bin.extra_archives) {
        crate::plain_sockets::build(Path::new(archive))?;
    }
    let defconfig = app_dir.join(format!("defconfig.{suffix}"));
    let make = UkMake {
        unikraft: sources.unikraft.clone(),
        app_dir: app_dir.clone(),
        libs: vec![sources.lib_musl.clone()],
        build_dir: build_dir.clone(),
        name: app.spec.name.clone(),
    };
    let wanted = fs::read(&defconfig)?;
    let stamp = build_dir.join(".defconfig-applied");
    let must_configure = !make.config().is_file() || fs::read(&stamp).ok().as_deref() != Some(&wanted[..]);
    if must_configure {
        // Checked whenever it is to be applied (a defconfig applied before passed already;
        // parsing every Kconfig file costs a rebuild more than the relink itself), and
        // before anything is written into the build directory or cargo runs.
        check_kconfig(&app_dir, &defconfig, sources)?;
    }
    prepare_musl_tarball(&build_dir, &sources.musl_tarball, sources::PIN.musl_sha256)?;
    if must_configure {
        eprintln!("cargo-unikraft: configuring Unikraft for {target}");
        let _ = fs::remove_file(&stamp);
        make.run(&[&format!("UK_DEFCONFIG={}", defconfig.display()), "defconfig"], "configure")?;
        check_configured(&make.config(), &app.spec)?;
        fs::write(&stamp, &wanted)?;
    }
    // Configured first, so a configuration that drops an option fails before the cargo build.
    let archive = build_staticlib(app)?;
    let image = image_path(app, target);
    let mut archives = vec![archive];
    let extra = app.build.linked_bin.iter().flat_map(|bin| &bin.extra_archives);
    archives.extend(extra.map(PathBuf::from));
    // The C glue's directories (sources and the headers beside them).
    let mut sources = vec![app_dir.clone()];
    for glue in &app.build.glue_sources {
        let dir = Path::new(glue).parent().expect("glue sources are absolute files").to_path_buf();
        if !sources.contains(&dir) {
            sources.push(dir);
        }
    }
    let relink = Relink::new(&make, image.clone(), archives, sources);
    let started = Instant::now();
    match relink.plan()? {
        Plan::UpToDate => {
            eprintln!("cargo-unikraft: image {} is up to date", image.display());
            return Ok(image);
        }
        Plan::Relink => {
            relink.relink()?;
            eprintln!(
                "cargo-unikraft: relinked {} without make (only the Rust archive changed) in {:.1} s",
                image.display(),
                started.elapsed().as_secs_f64()
            );
            return Ok(image);
        }
        Plan::Make(why) => {
            let sources = relink.sources_snapshot()?;
            relink.forget()?;
            let jobs = std::thread::available_parallelism().map_or(2, |n| n.get()).to_string();
            eprintln!(
                "cargo-unikraft: building the Unikraft image ({why}; the first build takes a few minutes; log: {})",
                make.log().display()
            );
            make.run(&["-j", &jobs], "build")?;
            if !image.is_file() {
                bail!("Unikraft's build finished but {} is missing", image.display());
            }
            relink.record(&sources)?;
        }
    }
    let size = fs::metadata(&image)?.len();
    eprintln!(
        "cargo-unikraft: image {} ({} KiB) built in {:.1} s",
        image.display(),
        size / 1024,
        started.elapsed().as_secs_f64()
    );
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_truncated_tarball_in_the_build_directory_is_replaced_and_extracted_again() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.tar.gz");
        fs::write(&good, b"the musl release").unwrap();
        let sha = sources::sha256_of(&good).unwrap();
        let build = dir.path().join("build-qemu-x86_64");
        let libmusl = build.join("libmusl");
        // What a build cut short leaves: a truncated copy, a partial extraction.
        fs::create_dir_all(libmusl.join("origin/musl-1.2.3")).unwrap();
        fs::write(libmusl.join(sources::PIN.musl_tarball_name), b"the musl").unwrap();
        fs::write(libmusl.join(".chksum"), b"").unwrap();

        prepare_musl_tarball(&build, &good, &sha).unwrap();
        assert_eq!(fs::read(libmusl.join(sources::PIN.musl_tarball_name)).unwrap(), b"the musl release");
        assert!(!libmusl.join("origin").exists() && !libmusl.join(".chksum").exists());

        // A good copy and its extraction are left alone (no rebuild).
        fs::create_dir_all(libmusl.join("origin/musl-1.2.3")).unwrap();
        fs::write(libmusl.join(".origin"), b"").unwrap();
        prepare_musl_tarball(&build, &good, &sha).unwrap();
        assert!(libmusl.join("origin/musl-1.2.3").is_dir() && libmusl.join(".origin").is_file());
    }
}
