//! The app as the rest of the pipeline sees it once it is resolved ([`crate::resolve`]):
//! its `[package.metadata.unikraft]`, how its Rust side is built, and where its build
//! directories are. Nothing about the app is written twice: Cargo.toml is the source.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use kraftfile_gen::{AppSpec, CargoOptions, RustBuild};

use crate::target::Platform;

/// Everything known about the app after `cargo metadata`.
#[derive(Debug, Clone)]
pub struct App {
    pub spec: AppSpec,
    pub build: RustBuild,
    /// The cargo target directory of the app's workspace; every build directory is under it.
    pub target_dir: PathBuf,
    /// The package, as `cargo metadata` reports it (its targets, for `cargo unikraft test`).
    pub package: cargo_metadata::Package,
    /// cargo's `--message-format` for the builds of this run (`None`: cargo's human output).
    pub message_format: Option<String>,
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

    /// The arguments every cargo call of this run adds for `--message-format`.
    pub fn message_format_args(&self) -> Vec<String> {
        self.message_format.iter().flat_map(|f| ["--message-format".to_string(), f.clone()]).collect()
    }
}

/// What the user chose, as cargo's flags say it: which crate (`--manifest-path`, `-p`),
/// which of its binaries (`--bin`, `--example`), and how cargo builds it ([`CargoOptions`]).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub manifest_path: Option<PathBuf>,
    /// `-p/--package SPEC`: a workspace member's name (or `name@version`).
    pub package: Option<String>,
    /// `--bin NAME`.
    pub bin: Option<String>,
    /// `--example NAME`.
    pub example: Option<String>,
    pub cargo: CargoOptions,
    /// `--message-format`, for `build`.
    pub message_format: Option<String>,
    /// For `cargo unikraft test`: no binary is chosen (each test harness is the program).
    pub tests: bool,
}

impl Selection {
    /// The crate of this manifest, with cargo's defaults otherwise.
    pub fn manifest(manifest: &Path) -> Selection {
        Selection { manifest_path: Some(manifest.to_path_buf()), ..Selection::default() }
    }
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

/// An error of cargo's kind: the app could not be resolved or built (exit status 101, as
/// cargo's). It reads as the error it wraps.
pub struct CargoFailure(pub anyhow::Error);

impl CargoFailure {
    /// Marks `result`'s error as a [`CargoFailure`].
    pub fn mark<T>(result: Result<T>) -> Result<T> {
        result.map_err(|e| if e.is::<CargoFailure>() { e } else { anyhow::Error::new(CargoFailure(e)) })
    }
}

impl fmt::Display for CargoFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl fmt::Debug for CargoFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::error::Error for CargoFailure {}
