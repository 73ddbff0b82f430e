//! Apps on this project's device core: a package with a `unikraft` feature (that enables
//! `unikernel/unikraft`), whose library holds the app (`unikernel::main!`). Unikraft links
//! the library as a staticlib with rt-unikraft's C glue, from the rt-unikraft the app
//! depends on.

use anyhow::{bail, Context, Result};
use cargo_metadata::{Metadata, Package};
use kraftfile_gen::{AppSpec, RustBuild};

use crate::app::{path_str, App, Selection};
use crate::resolve::{metadata, profile_setting};

/// The app for `package`, which has a `unikraft` feature.
pub fn resolve(meta: &Metadata, package: &Package, selection: &Selection) -> Result<App> {
    let name = package.name.to_string();
    let manifest = package.manifest_path.as_std_path();
    if let Some(flag) = [("--bin", &selection.bin), ("--example", &selection.example)]
        .into_iter()
        .find_map(|(flag, value)| value.as_ref().map(|v| format!("{flag} {v}")))
    {
        bail!(
            "{flag}: `{name}` is an app on this project's device core; its image is its library \
             (`unikernel::main!`), not a binary target"
        );
    }
    if selection.cargo.all_features {
        bail!(
            "--all-features: `{name}` selects its backend with a feature (`unikraft`), and all features \
             would enable every backend at once; name the features with --features"
        );
    }
    let profile = &selection.cargo.profile;
    if let Some(panic) = profile_setting(meta.workspace_root.as_std_path(), profile, "panic")? {
        if panic.as_str() != Some("abort") {
            let panic = panic.as_str().map_or_else(|| format!("{panic:?}"), |s| format!("{s:?}"));
            bail!(
                "profile.{profile}.panic = {panic} (in {}/Cargo.toml): an app on rt-unikraft is built with \
                 panic = \"abort\" (its _Unwind_* stand-ins cannot unwind); remove the key or set it to \"abort\"",
                meta.workspace_root
            );
        }
    }
    // With its `unikraft` feature the dependency graph has rt-unikraft, whose glue it needs.
    let with_unikraft =
        metadata(Some(manifest), &selection.cargo.flags, &["--no-default-features", "--features", "unikraft"])
            .map_err(|e| {
                let text = format!("{e:#}");
                if text.contains("unikraft") && text.contains("feature") {
                    anyhow::anyhow!(
                        "{} has no usable `unikraft` feature. An app selects its backend with features; add\n  \
                         [features]\n  default = [\"unix\"]\n  unix = [\"unikernel/unix\"]\n  unikraft = [\"unikernel/unikraft\"]\n\
                         ({text})",
                        manifest.display()
                    )
                } else {
                    e
                }
            })?;
    let lib_name = package.targets.iter().find(|t| t.is_lib()).map(|t| t.name.clone()).with_context(|| {
        format!(
            "`{name}` has no library target. Unikraft links the app as a staticlib, so the app's code \
             goes in src/lib.rs (with `unikernel::main!`) and src/main.rs only says `extern crate {};` \
             for the unix backend (see examples/hello)",
            name.replace('-', "_")
        )
    })?;
    let rt_unikraft = with_unikraft.packages.iter().find(|p| *p.name == "rt-unikraft").with_context(|| {
        format!("`{name}` with its `unikraft` feature does not depend on rt-unikraft; the feature should be `unikraft = [\"unikernel/unikraft\"]`")
    })?;
    let glue_dir = rt_unikraft.manifest_path.parent().expect("a manifest is in a directory").join("glue");
    // main.c first: the hosted-musl harness finds hosted.c next to it.
    let mut glue_sources = Vec::new();
    for file in ["main.c", "netdev.c", "blkdev.c", "socket.c"] {
        let glue = glue_dir.join(file);
        if !glue.is_file() {
            bail!("rt-unikraft's C glue is missing: {glue}");
        }
        glue_sources.push(path_str(glue.as_std_path())?);
    }
    let spec =
        AppSpec::from_cargo_metadata(&name, &package.metadata).with_context(|| format!("in {}", manifest.display()))?;
    let target_dir = meta.target_directory.clone().into_std_path_buf();
    let mut cargo = selection.cargo.clone();
    // The platform feature is chosen per build; the user's features go beside it.
    cargo.no_default_features = false;
    let build = RustBuild {
        manifest_path: path_str(manifest)?,
        lib_name,
        cargo_target_dir: path_str(&target_dir.join("unikraft").join("cargo"))?,
        glue_sources,
        linked_bin: None,
        cargo,
    };
    Ok(App { spec, build, target_dir, package: package.clone(), message_format: None })
}
