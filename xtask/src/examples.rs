//! This repository's example apps: names, manifests and which need a network device.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use cargo_unikraft::app::App;
use cargo_unikraft::resolve::resolve_app;

/// Examples and whether they need a network device.
pub const EXAMPLES: &[(&str, bool)] = &[
    ("hello", false),
    ("hello-std", false),
    ("udp-echo", true),
    ("tcp-echo", true),
    ("http", true),
    ("conformance", true),
    ("conformance-std-net", true),
    ("std-echo", true),
    ("tokio-http", true),
    ("kv", true),
    ("tunnel-echo", true),
    ("block-bench", false),
];

/// Examples written against `std::net`: on unix they use the host's sockets (no TAP);
/// on Unikraft, the net device through rt-unikraft's socket driver.
pub const STD_NET: &[&str] = &["std-echo", "tokio-http", "conformance-std-net"];

/// Whether `example` needs a net device on the unix backend (std::net examples do not).
pub fn needs_net_on_unix(example: &str) -> Result<bool> {
    Ok(needs_net(example)? && !STD_NET.contains(&example))
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

/// Whether `example` needs a net device; an error listing the examples if it is unknown.
pub fn needs_net(example: &str) -> Result<bool> {
    match EXAMPLES.iter().find(|(name, _)| *name == example) {
        Some(&(_, net)) => Ok(net),
        None => {
            let names: Vec<_> = EXAMPLES.iter().map(|(n, _)| *n).collect();
            bail!("unknown example `{example}`; examples: {}", names.join(", "))
        }
    }
}

/// The example's Cargo.toml.
pub fn manifest(example: &str) -> Result<PathBuf> {
    needs_net(example)?;
    let dir = if example == "conformance" {
        workspace_root().join("conformance")
    } else if example == "conformance-std-net" {
        workspace_root().join("conformance/std-net")
    } else {
        workspace_root().join("examples").join(example)
    };
    Ok(dir.join("Cargo.toml"))
}

/// The example as cargo-unikraft sees it.
pub fn app(example: &str) -> Result<App> {
    resolve_app(&manifest(example)?)
}

/// `--example NAME` for the delegating subcommands.
#[derive(clap::Args, Debug, Clone)]
pub struct ExampleSelect {
    /// An example of this repository (hello, hello-std, udp-echo, http, conformance).
    #[arg(long, conflicts_with = "manifest_path")]
    pub example: Option<String>,
    /// Any app crate's Cargo.toml.
    #[arg(long)]
    pub manifest_path: Option<PathBuf>,
}

impl ExampleSelect {
    pub fn app_args(&self) -> Result<cargo_unikraft::cli::AppArgs> {
        let manifest = match (&self.example, &self.manifest_path) {
            (_, Some(path)) => path.clone(),
            (example, None) => manifest(example.as_deref().unwrap_or("hello"))?,
        };
        let mut app = cargo_unikraft::cli::AppArgs::default();
        app.or_manifest(manifest);
        Ok(app)
    }
}
