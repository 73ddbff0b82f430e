//! The whole system's end-to-end tests live in `tests/`: each builds real images (unix,
//! Unikraft, Solo5, hosted-musl) through the `xtask` binary, boots them and talks to them
//! over real network namespaces, disks and consoles. Tests that need the Unikraft or Solo5
//! sources, root or a host tool print a `SKIP` line when it is missing (and fail instead
//! under `UNIKERNEL_REQUIRE_SOURCES=1`); helpers are in `tests/common/`.
#![forbid(unsafe_code)]
