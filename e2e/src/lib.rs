//! The whole system's end-to-end tests live in `tests/`: each builds real images (unix,
//! Unikraft, Solo5, hosted-musl) through the `xtask` binary, boots them and talks to them
//! over real network namespaces, disks and consoles. Tests that need the Unikraft or Solo5
//! sources, root or a host tool print a `SKIP` line when it is missing (and fail instead
//! under `UNIKERNEL_REQUIRE_SOURCES`).
//!
//! This library holds the helpers every system test shares, once: [`skip`] (the `SKIP`
//! line and the `UNIKERNEL_REQUIRE_SOURCES` switch), [`sources`] (the pinned Unikraft
//! sources, or a skip, or a failure when they are broken) and [`netns`] (entering a test's
//! network namespace from a thread). cargo-unikraft's own guest-booting tests use the
//! first two as well. The helpers that start guests through the `xtask` binary are in
//! `tests/common/`.
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[allow(unsafe_code)] // setns(2), the one call that enters a namespace; its block says why it is sound
pub mod netns;
pub mod skip;
pub mod sources;
