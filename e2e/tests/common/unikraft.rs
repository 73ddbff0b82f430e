//! Helpers for the tests that build and boot Unikraft images (unikraft.rs, unikraft_net.rs).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{skip, skip_unprovisioned, XTASK};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub struct Sources {
    pub unikraft: PathBuf,
    pub lib_musl: PathBuf,
    pub musl_tarball: PathBuf,
}

/// The provisioned sources, or `None` after printing why the test is skipped (with
/// `UNIKERNEL_REQUIRE_SOURCES=1`, missing sources fail the test instead).
pub fn sources_or_skip(test: &str) -> Option<Sources> {
    sources_or_skip_in(test, None)
}

/// [`sources_or_skip`] for the cache `cache` (without the environment's overrides), or the
/// environment's. Only sources that were never provisioned are a SKIP: a broken cache (a
/// corrupted tarball, an incomplete tree) fails the test, so it cannot turn the suite green.
pub fn sources_or_skip_in(test: &str, cache: Option<&Path>) -> Option<Sources> {
    let mut sources = Command::new(XTASK);
    sources.arg("sources");
    if let Some(cache) = cache {
        sources.env("UNIKERNEL_CACHE", cache);
        for var in ["UNIKRAFT_SRC", "UNIKRAFT_LIB_MUSL", "UNIKRAFT_MUSL_TARBALL"] {
            sources.env_remove(var);
        }
    }
    let out = sources.output().expect("run xtask sources");
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr).split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            err.contains("the Unikraft sources are not provisioned"),
            "{test}: the Unikraft sources are provisioned but unusable, which is a failure, not a skip \
             (`xtask sources` failed: {err})"
        );
        skip_unprovisioned(
            test,
            "the Unikraft sources are not provisioned (`cargo xtask fetch`; `cargo xtask doctor` says what is missing)",
        );
        return None;
    }
    if which("qemu-system-x86_64").is_none() {
        skip(&format!("{test}: qemu-system-x86_64 is not installed"));
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(PathBuf::from)
            .unwrap_or_else(|| panic!("`xtask sources` printed no {key}: {text}"))
    };
    Some(Sources { unikraft: get("unikraft"), lib_musl: get("lib_musl"), musl_tarball: get("musl_tarball") })
}

pub fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(tool)).find(|p| p.is_file())
}
