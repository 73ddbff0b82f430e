//! Helpers for the tests that build and boot Unikraft images (unikraft.rs, unikraft_net.rs);
//! the sources lookup itself is `e2e::sources`.

use std::path::{Path, PathBuf};

#[allow(unused_imports)] // each test binary uses a different subset
pub use e2e::sources::{sources_or_skip, sources_or_skip_in, Sources};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(tool)).find(|p| p.is_file())
}
