//! The one lookup of the pinned Unikraft sources for the tests that build images: found,
//! a `SKIP` (never provisioned; a failure under `UNIKERNEL_REQUIRE_SOURCES=1`), or a
//! failure (provisioned but broken: a corrupted tarball or an incomplete tree must not turn
//! a run green). It asks cargo-unikraft's own check, so a test skips exactly when
//! `cargo unikraft` would refuse to build.

use std::path::Path;

pub use cargo_unikraft::sources::Sources;
use cargo_unikraft::sources::{Overrides, Provisioning};

use crate::skip::{skip, skip_unprovisioned};

/// The provisioned sources (from the environment's cache and overrides), or `None` after
/// printing why `test` is skipped. QEMU is checked too: the tests that need the sources
/// boot what they build (its absence is a host reason, a plain `SKIP`).
///
/// # Panics
/// When the sources are there but broken, or required and missing.
pub fn sources_or_skip(test: &str) -> Option<Sources> {
    sources_or_skip_in(test, None)
}

/// [`sources_or_skip`] for the cache `cache` without the environment's overrides, or, with
/// `None`, for the environment's.
///
/// # Panics
/// As [`sources_or_skip`].
pub fn sources_or_skip_in(test: &str, cache: Option<&Path>) -> Option<Sources> {
    let provisioning = match cache {
        Some(cache) => cargo_unikraft::sources::provisioning_in(cache, &Overrides::default()),
        None => cargo_unikraft::sources::provisioning().unwrap_or_else(|e| panic!("{test}: {e:#}")),
    };
    match provisioning {
        Provisioning::Broken(why) => {
            panic!("{test}: the Unikraft sources are provisioned but unusable, which is a failure, not a skip: {why}")
        }
        Provisioning::Missing(_) => {
            skip_unprovisioned(
                test,
                "the Unikraft sources are not provisioned (`cargo unikraft fetch`; `cargo unikraft doctor` \
                 says what is missing)",
            );
            None
        }
        Provisioning::Ready(_) if which::which("qemu-system-x86_64").is_err() => {
            skip(&format!("{test}: qemu-system-x86_64 is not installed"));
            None
        }
        Provisioning::Ready(sources) => Some(sources),
    }
}
