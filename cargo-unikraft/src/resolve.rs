//! App resolution: `cargo metadata` (typed, through `cargo_metadata`) for the crate the
//! user chose as cargo would choose it (`--manifest-path`, `-p`, the current directory,
//! a workspace's single default member), then one of the two kinds of app:
//!
//! * an app on this project's device core (the package has a `unikraft` feature):
//!   [`crate::device_core`], a staticlib with rt-unikraft's glue;
//! * any other crate with a binary: [`crate::plain_bin`], linked through this tool.
//!
//! Both modules depend on [`crate::app`] only; this module is the one that knows both.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cargo_metadata::{Metadata, MetadataCommand, Package};

use crate::app::{cargo, App, Selection};

/// The app of the crate at `manifest`, with cargo's defaults (xtask's examples).
pub fn resolve_app(manifest: &Path) -> Result<App> {
    resolve(&Selection::manifest(manifest))
}

/// The app the user selected.
pub fn resolve(selection: &Selection) -> Result<App> {
    let manifest = match &selection.manifest_path {
        Some(path) => Some(
            std::fs::canonicalize(path)
                .with_context(|| format!("--manifest-path: no manifest at {}", path.display()))?,
        ),
        None => None,
    };
    let meta = metadata(manifest.as_deref(), &selection.cargo.flags, &[])?;
    let package = select_package(&meta, manifest.as_deref(), selection.package.as_deref())?;
    check_features(package, &selection.cargo)?;
    let mut app = if package.features.contains_key("unikraft") {
        crate::device_core::resolve(&meta, package, selection)?
    } else {
        crate::plain_bin::resolve(&meta, package, selection)?
    };
    app.message_format = selection.message_format.clone();
    Ok(app)
}

/// `cargo metadata` for the manifest (or the current directory's crate), with the user's
/// `--locked`/`--offline`/`--frozen` and these extra arguments.
pub fn metadata(manifest: Option<&Path>, flags: &[String], extra: &[&str]) -> Result<Metadata> {
    let mut command = MetadataCommand::new();
    command.cargo_path(cargo());
    if let Some(manifest) = manifest {
        command.manifest_path(manifest);
    }
    let mut options: Vec<String> = flags.iter().filter(|f| !f.starts_with("-v") && *f != "-q").cloned().collect();
    options.extend(extra.iter().map(|s| s.to_string()));
    command.other_options(options);
    command.exec().map_err(|e| match e {
        cargo_metadata::Error::CargoMetadata { stderr } => {
            anyhow::anyhow!("`cargo metadata` failed:\n{}", stderr.trim())
        }
        other => anyhow::Error::new(other).context("run `cargo metadata`"),
    })
}

/// The package cargo would build: `-p SPEC` among the workspace's members, else the one
/// of the manifest (or of the current directory), else a workspace's only default member.
pub fn select_package<'m>(meta: &'m Metadata, manifest: Option<&Path>, spec: Option<&str>) -> Result<&'m Package> {
    let members = meta.workspace_packages();
    let names = || members.iter().map(|p| p.name.to_string()).collect::<Vec<_>>().join(", ");
    if let Some(spec) = spec {
        let (name, version) = match spec.split_once('@') {
            Some((name, version)) => (name, Some(version)),
            None => (spec, None),
        };
        return members
            .iter()
            .copied()
            .find(|p| *p.name == *name && version.is_none_or(|v| p.version.to_string() == v))
            .with_context(|| {
                format!(
                    "-p/--package {spec}: no such package in the workspace at {}; its packages: {}",
                    meta.workspace_root,
                    names()
                )
            });
    }
    let by_manifest = manifest.and_then(|m| members.iter().copied().find(|p| p.manifest_path.as_std_path() == m));
    if let Some(package) = by_manifest.or_else(|| if manifest.is_none() { meta.root_package() } else { None }) {
        return Ok(package);
    }
    match meta.workspace_default_packages().as_slice() {
        [only] => Ok(only),
        _ => bail!(
            "the workspace at {} has several packages ({}); choose one with -p/--package NAME \
             (`--package NAME` on `cargo unikraft run`, where -p publishes a port)",
            meta.workspace_root,
            names()
        ),
    }
}

/// `--features` names only features the package has (or its dependencies', `dep/feature`).
fn check_features(package: &Package, cargo: &kraftfile_gen::CargoOptions) -> Result<()> {
    for feature in &cargo.features {
        let own = !feature.contains('/') && !feature.starts_with("dep:");
        if own && !package.features.contains_key(feature) {
            let known: Vec<&str> = package.features.keys().map(String::as_str).collect();
            bail!(
                "--features {feature}: `{}` has no such feature (its features: {})",
                package.name,
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            );
        }
    }
    Ok(())
}

/// The value of `key` in `[profile.<profile>]` of the workspace's Cargo.toml, following
/// `inherits` (`None`: the profile does not set it, or there is no such table).
pub fn profile_setting(workspace_root: &Path, profile: &str, key: &str) -> Result<Option<toml::Value>> {
    let manifest: PathBuf = workspace_root.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).with_context(|| format!("read {}", manifest.display()))?;
    let doc: toml::Table = toml::from_str(&text).with_context(|| format!("parse {}", manifest.display()))?;
    let profiles = doc.get("profile").and_then(|p| p.as_table());
    let mut name = profile.to_string();
    // A chain of `inherits` ends at a built-in profile; the bound stops a cycle.
    for _ in 0..8 {
        let table = profiles.and_then(|p| p.get(&name)).and_then(|t| t.as_table());
        if let Some(value) = table.and_then(|t| t.get(key)) {
            return Ok(Some(value.clone()));
        }
        match (table.and_then(|t| t.get("inherits")).and_then(|i| i.as_str()), name.as_str()) {
            (Some(parent), _) => name = parent.to_string(),
            // The built-in profiles `test` and `bench` inherit from `dev` and `release`.
            (None, "test") => name = "dev".into(),
            (None, "bench") => name = "release".into(),
            (None, _) => return Ok(None),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_settings_follow_inherits() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[profile.release]\npanic = \"unwind\"\n[profile.small]\ninherits = \"release\"\nopt-level = \"z\"\n",
        )
        .unwrap();
        let get = |profile, key| profile_setting(dir.path(), profile, key).unwrap();
        assert_eq!(get("small", "panic").unwrap().as_str(), Some("unwind"));
        assert_eq!(get("small", "opt-level").unwrap().as_str(), Some("z"));
        assert_eq!(get("dev", "panic"), None);
        assert_eq!(get("bench", "panic").unwrap().as_str(), Some("unwind"));
    }
}
