//! App resolution: `cargo metadata` for the app crate gives its package, library target,
//! `[package.metadata.unikraft]` and where rt-unikraft's C glue is. Nothing about the app
//! is written twice: Cargo.toml is the source.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use kraftfile_gen::{AppSpec, RustBuild};

use crate::target::Platform;

/// Everything known about the app after `cargo metadata`.
#[derive(Debug, Clone)]
pub struct App {
    pub spec: AppSpec,
    pub build: RustBuild,
    /// The cargo target directory of the app's workspace; every build directory is under it.
    pub target_dir: PathBuf,
}

impl App {
    /// `<target dir>/<platform>/<name>/`: the directory of this platform's build of the app,
    /// which [`crate::appdir::BuildLock`] locks while a build uses it. Each platform has its
    /// own, so builds for different platforms never wait for each other.
    pub fn build_dir(&self, platform: Platform) -> PathBuf {
        self.target_dir.join(platform.dir_name()).join(&self.spec.name)
    }

    /// `target/unikraft/<name>/`: the generated app directory, the image build
    /// directories, and the glue of a plain binary ([`App::build_dir`] for Unikraft).
    pub fn unikraft_dir(&self) -> PathBuf {
        self.build_dir(Platform::Unikraft)
    }
}

/// Reads the app from cargo: an app on rt-unikraft (it has a `unikraft` feature) is
/// built as a staticlib with rt-unikraft's glue; any other crate with a binary target is
/// a plain binary, linked through cargo-unikraft's linker wrapper with the glue this tool
/// carries.
pub fn resolve_app(manifest: &Path) -> Result<App> {
    let manifest = fs::canonicalize(manifest).with_context(|| format!("no manifest at {}", manifest.display()))?;
    let meta = metadata(&manifest, &[])?;
    let package = package_of(&meta, &manifest)?;
    if package["features"].get("unikraft").is_none() {
        return crate::plain_bin::resolve(&manifest, &meta, package);
    }
    let output = Command::new(cargo())
        .args(["metadata", "--format-version", "1", "--no-default-features", "--features", "unikraft"])
        .arg("--manifest-path")
        .arg(&manifest)
        .stderr(Stdio::piped())
        .output()
        .context("run `cargo metadata`")?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("unikraft") && stderr.contains("feature") {
            bail!(
                "{} has no `unikraft` feature. An app selects its backend with features; add\n  \
                 [features]\n  default = [\"unix\"]\n  unix = [\"unikernel/unix\"]\n  unikraft = [\"unikernel/unikraft\"]\n\
                 (cargo said: {})",
                manifest.display(),
                stderr.trim()
            );
        }
        bail!("`cargo metadata` failed for {}:\n{}", manifest.display(), stderr.trim());
    }
    let meta: serde_json::Value = serde_json::from_slice(&output.stdout).context("parse `cargo metadata` output")?;
    let packages = meta["packages"].as_array().context("`cargo metadata` has no packages")?;
    let package = packages
        .iter()
        .find(|p| p["manifest_path"].as_str().map(Path::new) == Some(manifest.as_path()))
        .with_context(|| format!("`cargo metadata` does not list the package of {}", manifest.display()))?;
    let name = package["name"].as_str().context("package without a name")?;
    let lib_name = package["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "lib")))
        .and_then(|t| t["name"].as_str())
        .with_context(|| {
            format!(
                "`{name}` has no library target. Unikraft links the app as a staticlib, so the app's code \
                 goes in src/lib.rs (with `unikernel::main!`) and src/main.rs only says `extern crate {};` \
                 for the unix backend (see examples/hello)",
                name.replace('-', "_")
            )
        })?;
    let rt_unikraft = packages.iter().find(|p| p["name"] == "rt-unikraft").with_context(|| {
        format!("`{name}` with its `unikraft` feature does not depend on rt-unikraft; the feature should be `unikraft = [\"unikernel/unikraft\"]`")
    })?;
    let glue_dir = Path::new(rt_unikraft["manifest_path"].as_str().context("rt-unikraft manifest path")?)
        .parent()
        .expect("a manifest is in a directory")
        .join("glue");
    // main.c first: the hosted-musl harness finds hosted.c next to it.
    let mut glue_sources = Vec::new();
    for file in ["main.c", "netdev.c", "blkdev.c", "socket.c"] {
        let glue = glue_dir.join(file);
        if !glue.is_file() {
            bail!("rt-unikraft's C glue is missing: {}", glue.display());
        }
        glue_sources.push(path_str(&glue)?);
    }
    let spec = AppSpec::from_cargo_metadata(name, &package["metadata"])
        .with_context(|| format!("in {}", manifest.display()))?;
    let target_dir = PathBuf::from(meta["target_directory"].as_str().context("no target directory")?);
    let build = RustBuild {
        manifest_path: path_str(&manifest)?,
        lib_name: lib_name.to_string(),
        cargo_target_dir: path_str(&target_dir.join("unikraft").join("cargo"))?,
        glue_sources,
        linked_bin: None,
    };
    Ok(App { spec, build, target_dir })
}

/// `cargo metadata` for the manifest, with these extra arguments.
fn metadata(manifest: &Path, extra: &[&str]) -> Result<serde_json::Value> {
    let output = Command::new(cargo())
        .args(["metadata", "--format-version", "1"])
        .args(extra)
        .arg("--manifest-path")
        .arg(manifest)
        .stderr(Stdio::piped())
        .output()
        .context("run `cargo metadata`")?;
    if !output.status.success() {
        bail!(
            "`cargo metadata` failed for {}:\n{}",
            manifest.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    serde_json::from_slice(&output.stdout).context("parse `cargo metadata` output")
}

/// The package whose manifest this is.
fn package_of<'a>(meta: &'a serde_json::Value, manifest: &Path) -> Result<&'a serde_json::Value> {
    meta["packages"]
        .as_array()
        .context("`cargo metadata` has no packages")?
        .iter()
        .find(|p| p["manifest_path"].as_str().map(Path::new) == Some(manifest))
        .with_context(|| format!("`cargo metadata` does not list the package of {}", manifest.display()))
}

/// A path Unikraft's build will use, as a string: UTF-8 and made of characters make and the
/// shell take as themselves (no spaces, `#`, `$`, `:`, ...; see
/// [`kraftfile_gen::make_safe_char`]), or an error naming it.
pub fn path_str(path: &Path) -> Result<String> {
    let s = path.to_str().with_context(|| format!("path is not UTF-8: {}", path.display()))?;
    kraftfile_gen::check_make_path("the path", s)?;
    Ok(s.to_string())
}

/// The cargo that runs us (so a rustup toolchain override is honoured).
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}
