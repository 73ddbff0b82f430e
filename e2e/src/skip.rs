//! Skipping a test that cannot run here, with its reason on stderr, and the switch that
//! turns "the sources are not provisioned" into a failure.

use std::io::Write;

/// The switch CI sets once it has provisioned the Unikraft and Solo5 sources: with it, a
/// test that would skip for want of sources fails instead (see [`skip_unprovisioned`]).
pub const REQUIRE_SOURCES: &str = "UNIKERNEL_REQUIRE_SOURCES";

/// Prints a skip line (`SKIP: <why>`) straight to stderr, so libtest's output capture does
/// not hide it. For host reasons (not root, no /dev/kvm, no musl-gcc, ...); a test that
/// skips for want of the Unikraft or Solo5 sources uses [`skip_unprovisioned`].
pub fn skip(why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIP: {why}");
}

/// Whether [`REQUIRE_SOURCES`] is set (to anything but empty or `0`).
pub fn sources_required() -> bool {
    std::env::var_os(REQUIRE_SOURCES).is_some_and(|v| !v.is_empty() && v != "0")
}

/// Skips `test` because the Unikraft or Solo5 sources are missing (`why` says what is
/// missing and how to provision it): prints `SKIP: <test>: <why>`, or, with
/// `UNIKERNEL_REQUIRE_SOURCES=1` (CI, after provisioning), fails the test instead, so a
/// provisioning mistake cannot pass as a green run that booted nothing.
///
/// # Panics
/// When the sources are required.
pub fn skip_unprovisioned(test: &str, why: &str) {
    if sources_required() {
        panic!("{test}: sources are required ({REQUIRE_SOURCES}=1) but {why}");
    }
    skip(&format!("{test}: {why}"));
}
