//! `cargo-unikraft`: the pipeline that turns a Rust crate into a unikernel image and runs
//! it, as a library (used by the `cargo unikraft` binary and by this repository's xtask).
//!
//! * [`resolve`]: the app the user selected (`--manifest-path`, `-p`, `--bin`, ...) from
//!   `cargo metadata` (Cargo.toml is the one source of truth), as an [`app::App`]: an app
//!   on this project's device core ([`device_core`]) or a plain binary ([`plain_bin`]).
//! * [`sources`]: the pinned upstream sources and the per-user cache (`fetch`).
//! * [`staticlib`]: the one cargo build of the app's Rust archive.
//! * [`appdir`]: the generated Unikraft app directory (also for `kraft build`).
//! * [`unikraft`]: image builds with Unikraft's make.
//! * [`plain_bin`], [`linker`]: plain `fn main()` crates, linked through this tool as
//!   rustc's linker.
//! * [`solo5`], [`hosted_musl`]: the other ways to link the archive.
//! * [`target`], [`pipeline`]: the one list of platforms (kraftfile-gen's, re-exported),
//!   and the build and runner for each.
//! * [`cli`]: the `cargo unikraft` subcommands.
//! * [`runner`]: how guests are booted and how their end maps to the app's exit code.
//! * [`doctor`]: which tools each backend needs.

pub mod app;
pub mod appdir;
pub mod cli;
pub mod device_core;
pub mod doctor;
pub mod heap_plot;
pub mod hosted_musl;
pub mod linker;
pub mod oci;
pub mod pipeline;
pub mod plain_bin;
pub mod plain_sockets;
pub mod resolve;
pub mod runner;
pub mod solo5;
pub mod sources;
pub mod staticlib;
pub use kraftfile_gen::target;
pub mod unikraft;
