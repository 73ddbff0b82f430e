//! The pinned Unikraft sources: `cargo unikraft fetch` and where builds find them.
//!
//! A Unikraft image needs three things from outside this repository: the Unikraft core
//! tree, the lib-musl library tree (the two must be a matching pair: lib-musl's newest
//! commit does not link against core 0.17.0), and the musl release tarball lib-musl would
//! otherwise download, unverified, during the build. We pin all three and keep them in a
//! per-user cache:
//!
//! ```text
//! <cache>/unikraft/RELEASE-0.16.3/     git work tree at the tag
//! <cache>/lib-musl/RELEASE-0.16.3/     git work tree at the tag
//! <cache>/tarballs/musl-1.2.3.tar.gz   checked against the pinned SHA256
//! ```
//!
//! `<cache>` is `$UNIKERNEL_CACHE`, else `$XDG_CACHE_HOME/unikernel-rs`, else
//! `~/.cache/unikernel-rs`.
//!
//! Entries are put in place whole by [`fetch`] (`fetch.rs`), so an entry
//! that exists but is incomplete, or a tarball whose SHA256 is not the pin's, is *broken*,
//! not *missing*: [`provisioning`] tells the two apart, so tests skip only when nothing was
//! provisioned and fail on a broken cache.
//!
//! Sources come from upstream (git and curl) or, offline, from `--unikraft-src`,
//! `--musl-src` (a git repository, bare or not, that has the tag; or a plain tree whose
//! version files match the pin) and `--musl-tarball`. Whatever the origin, the tree must
//! be the pinned one by content (git's tree id, [`tree_pin`]), so a moved tag or a
//! modified mirror is refused before it enters the cache.
//!
//! A developer with trees elsewhere can skip the cache: `UNIKRAFT_SRC`, `UNIKRAFT_LIB_MUSL`
//! and `UNIKRAFT_MUSL_TARBALL` each override one entry (the tarball is still verified).

mod fetch;
pub mod tree_pin;
mod verify;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

pub use fetch::{fetch, FetchArgs};
pub use verify::{install_verified_copy, sha256_of, unikraft_release_of};

/// The one source set this project builds against.
pub struct Pin {
    /// Tag of `unikraft/unikraft`.
    pub unikraft_tag: &'static str,
    /// Tag of `unikraft/lib-musl` that matches the core.
    pub lib_musl_tag: &'static str,
    pub unikraft_git: &'static str,
    pub lib_musl_git: &'static str,
    /// The file name lib-musl looks for in `<build dir>/libmusl/`.
    pub musl_tarball_name: &'static str,
    pub musl_url: &'static str,
    pub musl_sha256: &'static str,
}

pub const PIN: Pin = Pin {
    unikraft_tag: "RELEASE-0.16.3",
    lib_musl_tag: "RELEASE-0.16.3",
    unikraft_git: "https://github.com/unikraft/unikraft.git",
    lib_musl_git: "https://github.com/unikraft/lib-musl.git",
    musl_tarball_name: "musl-1.2.3.tar.gz",
    musl_url: "https://musl.libc.org/releases/musl-1.2.3.tar.gz",
    musl_sha256: "7d5b0b6062521e4627e099e4c9dc8248d32a30285e959b7eecaa780cf8cfd4a4",
};

/// Where a build finds the pinned sources.
#[derive(Debug, Clone)]
pub struct Sources {
    pub unikraft: PathBuf,
    pub lib_musl: PathBuf,
    pub musl_tarball: PathBuf,
}

/// The per-user cache directory.
pub fn cache_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("UNIKERNEL_CACHE").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("unikernel-rs"));
    }
    let home = std::env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .context("cannot place the source cache: neither UNIKERNEL_CACHE, XDG_CACHE_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cache").join("unikernel-rs"))
}

/// The cache entries for the pin, complete or not.
pub fn cached(cache: &Path) -> Sources {
    Sources {
        unikraft: cache.join("unikraft").join(PIN.unikraft_tag),
        lib_musl: cache.join("lib-musl").join(PIN.lib_musl_tag),
        musl_tarball: cache.join("tarballs").join(PIN.musl_tarball_name),
    }
}

/// What the cache (and the environment overrides) hold for the pin.
#[derive(Debug)]
pub enum Provisioning {
    /// Everything is there, and the tarball matches the pinned SHA256.
    Ready(Sources),
    /// Something was never provisioned (an entry does not exist): run `fetch`. The only
    /// state tests may report as a SKIP.
    Missing(String),
    /// Something is there but unusable (an incomplete tree, a tarball with the wrong
    /// SHA256, an override pointing nowhere): an error everywhere, never a SKIP.
    Broken(String),
}

/// The `UNIKRAFT_SRC`, `UNIKRAFT_LIB_MUSL` and `UNIKRAFT_MUSL_TARBALL` overrides.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub unikraft: Option<PathBuf>,
    pub lib_musl: Option<PathBuf>,
    pub musl_tarball: Option<PathBuf>,
}

impl Overrides {
    /// The overrides set (non-empty) in the environment.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        Overrides {
            unikraft: var("UNIKRAFT_SRC"),
            lib_musl: var("UNIKRAFT_LIB_MUSL"),
            musl_tarball: var("UNIKRAFT_MUSL_TARBALL"),
        }
    }
}

/// [`provisioning_in`] for the cache and overrides of this environment.
pub fn provisioning() -> Result<Provisioning> {
    Ok(provisioning_in(&cache_dir()?, &Overrides::from_env()))
}

/// What `cache` with `overrides` holds. A cache entry that does not exist is missing; one
/// that exists but lacks what every complete entry has is broken (entries are put in place
/// whole), and so is an override that points at nothing (it was set on purpose).
pub fn provisioning_in(cache: &Path, overrides: &Overrides) -> Provisioning {
    let in_cache = cached(cache);
    let found = Sources {
        unikraft: overrides.unikraft.clone().unwrap_or(in_cache.unikraft),
        lib_musl: overrides.lib_musl.clone().unwrap_or(in_cache.lib_musl),
        musl_tarball: overrides.musl_tarball.clone().unwrap_or(in_cache.musl_tarball),
    };
    let mut missing = Vec::new();
    let mut broken = Vec::new();
    let entries: [(String, &Path, bool, &[&str]); 3] = [
        (
            format!("Unikraft {}", PIN.unikraft_tag),
            &found.unikraft,
            overrides.unikraft.is_some(),
            &["Makefile", "Config.uk"],
        ),
        (format!("lib-musl {}", PIN.lib_musl_tag), &found.lib_musl, overrides.lib_musl.is_some(), &["Makefile.uk"]),
        (PIN.musl_tarball_name.to_string(), &found.musl_tarball, overrides.musl_tarball.is_some(), &[]),
    ];
    for (what, path, overridden, needs) in entries {
        let at = format!("{what} at {}", path.display());
        if !path.exists() {
            if overridden {
                broken.push(format!("{at}: the override in the environment points at nothing"));
            } else {
                missing.push(at);
            }
        } else if needs.is_empty() {
            if !path.is_file() {
                broken.push(format!("{at}: not a file"));
            } else {
                match verify::sha256_of(path) {
                    Ok(sha) if sha == PIN.musl_sha256 => {}
                    Ok(sha) => broken.push(format!(
                        "{at}: wrong SHA256 {sha} (the pin is {}; a truncated or different file)",
                        PIN.musl_sha256
                    )),
                    Err(e) => broken.push(format!("{at}: {e:#}")),
                }
            }
        } else if let Some(lacking) = needs.iter().find(|f| !path.join(f).is_file()) {
            broken.push(format!("{at}: incomplete (no {lacking})"));
        }
    }
    if !broken.is_empty() {
        return Provisioning::Broken(format!(
            "the Unikraft sources are provisioned but broken:\n  {}\n\
             Run `cargo unikraft fetch --force` to provision them again (offline: add \
             --unikraft-src DIR --musl-src DIR --musl-tarball FILE), or fix UNIKRAFT_SRC, \
             UNIKRAFT_LIB_MUSL and UNIKRAFT_MUSL_TARBALL (see docs/troubleshooting.md)",
            broken.join("\n  ")
        ));
    }
    if !missing.is_empty() {
        return Provisioning::Missing(format!(
            "the Unikraft sources are not provisioned; missing:\n  {}\n\
             Run `cargo unikraft fetch` (online), or offline:\n  \
             cargo unikraft fetch --unikraft-src DIR --musl-src DIR --musl-tarball FILE\n\
             (or point UNIKRAFT_SRC, UNIKRAFT_LIB_MUSL and UNIKRAFT_MUSL_TARBALL at existing copies; \
             see docs/unikraft.md)",
            missing.join("\n  ")
        ));
    }
    Provisioning::Ready(found)
}

/// The sources a build uses: the environment overrides, else the cache. Fails with how to
/// provision them when something is missing, and with what is wrong when something is
/// broken ([`Provisioning`]).
pub fn provisioned() -> Result<Sources> {
    match provisioning()? {
        Provisioning::Ready(sources) => Ok(sources),
        Provisioning::Missing(why) | Provisioning::Broken(why) => bail!("{why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A cache with complete trees (as far as [`provisioning_in`] looks) and `tarball` as
    /// the musl tarball.
    fn cache_with(tarball: Option<&[u8]>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let entry = cached(dir.path());
        fs::create_dir_all(&entry.unikraft).unwrap();
        fs::write(entry.unikraft.join("Makefile"), "").unwrap();
        fs::write(entry.unikraft.join("Config.uk"), "").unwrap();
        fs::create_dir_all(&entry.lib_musl).unwrap();
        fs::write(entry.lib_musl.join("Makefile.uk"), "").unwrap();
        if let Some(bytes) = tarball {
            fs::create_dir_all(entry.musl_tarball.parent().unwrap()).unwrap();
            fs::write(&entry.musl_tarball, bytes).unwrap();
        }
        dir
    }

    #[test]
    fn an_empty_cache_is_missing_not_broken() {
        let dir = tempfile::tempdir().unwrap();
        match provisioning_in(dir.path(), &Overrides::default()) {
            Provisioning::Missing(why) => assert!(why.contains("are not provisioned"), "{why}"),
            other => panic!("{other:?}"),
        }
        // Some entries there, the rest never fetched: still missing.
        let dir = cache_with(None);
        assert!(matches!(provisioning_in(dir.path(), &Overrides::default()), Provisioning::Missing(_)));
    }

    /// The issue this guards: a corrupted tarball made every Unikraft test print "sources
    /// are not provisioned" and pass.
    #[test]
    fn a_corrupted_tarball_is_broken_not_missing() {
        let dir = cache_with(Some(b"truncated musl"));
        match provisioning_in(dir.path(), &Overrides::default()) {
            Provisioning::Broken(why) => {
                assert!(why.contains("provisioned but broken") && why.contains("wrong SHA256"), "{why}");
                assert!(!why.contains("not provisioned"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn incomplete_trees_and_dangling_overrides_are_broken() {
        let dir = cache_with(Some(b"x"));
        fs::remove_file(cached(dir.path()).unikraft.join("Config.uk")).unwrap();
        match provisioning_in(dir.path(), &Overrides::default()) {
            Provisioning::Broken(why) => assert!(why.contains("incomplete (no Config.uk)"), "{why}"),
            other => panic!("{other:?}"),
        }
        let empty = tempfile::tempdir().unwrap();
        let overrides = Overrides { unikraft: Some(empty.path().join("nowhere")), ..Overrides::default() };
        match provisioning_in(empty.path(), &overrides) {
            Provisioning::Broken(why) => assert!(why.contains("points at nothing"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
