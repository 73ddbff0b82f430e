//! Getting the corpus from crates.io through cargo itself: a scratch crate that depends on
//! every selected crate, `cargo metadata` on it (which downloads and unpacks the `.crate`
//! files into cargo's registry cache), and a copy of each crate's unpacked sources under
//! `target/corpus/crates/<name>-<version>/`, where its tests run. Nothing is changed in
//! the copies (the workspace's `exclude = ["target"]` keeps cargo from taking them for
//! members of this workspace).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use super::crates::CorpusCrate;
use cargo_unikraft::app::cargo;

/// Each selected crate's resolved version and unpacked directory, in order.
pub fn unpack(corpus_dir: &Path, selected: &[&CorpusCrate]) -> Result<Vec<(String, PathBuf)>> {
    let scratch = corpus_dir.join("fetch");
    fs::create_dir_all(scratch.join("src"))?;
    let mut manifest = String::from(
        "[package]\nname = \"corpus-fetch\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         [workspace]\n\n[dependencies]\n",
    );
    for krate in selected {
        manifest.push_str(&format!("{} = \"{}\"\n", krate.name, krate.req));
    }
    fs::write(scratch.join("Cargo.toml"), manifest)?;
    fs::write(scratch.join("src/lib.rs"), "")?;
    eprintln!("corpus: fetching {} crate(s) from the registry", selected.len());
    let output = Command::new(cargo())
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(scratch.join("Cargo.toml"))
        .stderr(Stdio::inherit())
        .output()
        .context("run cargo metadata")?;
    if !output.status.success() {
        bail!("cargo could not resolve the corpus ({})", output.status);
    }
    let meta: serde_json::Value = serde_json::from_slice(&output.stdout).context("parse cargo metadata")?;
    let root = meta["resolve"]["root"].as_str().context("no resolve root")?;
    let root_node = meta["resolve"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["id"] == root)
        .context("no node for the scratch crate")?;
    let crates_dir = corpus_dir.join("crates");
    fs::create_dir_all(&crates_dir)?;
    let mut unpacked = Vec::new();
    for krate in selected {
        // The version the scratch crate depends on directly (others may be in the graph).
        let package = root_node["deps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d["pkg"].as_str())
            .filter_map(|id| meta["packages"].as_array()?.iter().find(|p| p["id"] == id))
            .find(|p| p["name"] == krate.name)
            .with_context(|| format!("cargo did not resolve {}", krate.name))?;
        let version = package["version"].as_str().context("no version")?.to_string();
        let source = Path::new(package["manifest_path"].as_str().context("no manifest path")?)
            .parent()
            .context("manifest without a directory")?
            .to_path_buf();
        let dir = crates_dir.join(format!("{}-{version}", krate.name));
        if !dir.join("Cargo.toml").is_file() {
            if dir.exists() {
                fs::remove_dir_all(&dir)?;
            }
            let status = Command::new("cp").arg("-r").arg(&source).arg(&dir).status().context("run cp")?;
            if !status.success() {
                bail!("copying {} to {} failed", source.display(), dir.display());
            }
        }
        unpacked.push((version, dir));
    }
    Ok(unpacked)
}
