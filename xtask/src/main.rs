//! `cargo xtask`: this repository's chores, on top of the cargo-unikraft library.
//!
//! * `cargo xtask run [--backend unix] [--example hello] [-- boot args]`
//! * `cargo xtask conformance --backend unix|hosted-musl|unikraft|solo5`
//! * `cargo xtask bench-unikraft | bench-runtime | bench-net | bench-block`
//! * `cargo xtask corpus [CRATE...]`: crates.io crates' test suites on Linux and on Unikraft
//! * `kraft-run`, `kraft-gen`, `oci`, `solo5-run`, `fetch`, `doctor`: `cargo unikraft run`, `gen`, `oci`,
//!   `run --plat solo5/...`, `fetch` and `doctor`, with `--example NAME` for this
//!   repository's examples.
//!
//! No unsafe code except in `netns` (signal handlers and `kill` for the namespaces' cleanup).
#![deny(unsafe_code)]

mod bench;
mod bench_block;
mod bench_plain;
mod bench_sockets;
mod bench_sockets_plain;
mod conformance;
mod corpus;
mod examples;
#[allow(unsafe_code)] // signal handlers, pipes and kill(2) through libc; each block says why it is sound
mod netns;
mod peer;
mod report;
mod run;
#[cfg(test)]
mod tidy;

use std::process::ExitCode;

use anyhow::Result;
use cargo_unikraft::cli::{build::BuildArgs, gen::GenArgs, run::RunArgs};
use cargo_unikraft::target::{Platform, Target, Tender};
use clap::{Parser, Subcommand};
use examples::ExampleSelect;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "This repository's chores: examples, conformance, benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build an example and run it on a backend; exits with the app's exit status.
    Run {
        /// Where the example runs: unix, hosted-musl (the Unikraft archive on the host's
        /// musl, as a process), unikraft or solo5.
        #[arg(long, default_value = "unix")]
        backend: Platform,
        #[arg(long, default_value = "hello")]
        example: String,
        #[arg(long)]
        release: bool,
        /// Boot arguments for the app.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// `cargo unikraft run` for an example of this repository (`--example NAME`: hello,
    /// hello-std, udp-echo, http, conformance, ...) or any crate (`--manifest-path`).
    KraftRun {
        #[command(flatten)]
        run: RunArgs,
    },
    /// `cargo unikraft run --plat solo5/<tender>` for an example or any crate.
    Solo5Run(Solo5RunArgs),
    /// `cargo unikraft gen` for an example or any crate.
    KraftGen {
        #[command(flatten)]
        gen: GenArgs,
    },
    /// `cargo unikraft oci` for an example or any crate.
    Oci {
        #[command(flatten)]
        oci: cargo_unikraft::cli::oci::OciArgs,
    },
    /// `cargo unikraft fetch`.
    Fetch(cargo_unikraft::sources::FetchArgs),
    /// Benchmarks of the Unikraft build path: image size against a C hello, and rebuild
    /// time after an app-only change against the cargo build alone (prints ratios).
    BenchUnikraft,
    /// Benchmark of the Unikraft runtime: the least guest memory in which `hello-std`
    /// (std, one spawned thread) boots and finishes.
    BenchRuntime,
    /// Benchmark of the Unikraft net path: UDP echo round trips per second through the
    /// guest, draining the driver per wake-up versus one packet per wake-up (needs root).
    BenchNet,
    /// Benchmark of std's sockets on Unikraft: tokio-http through the socket driver against
    /// the http example on shared-core's smoltcp API and tokio-http on unix (wrk: requests/s,
    /// CPU per request), and a TCP bulk echo (needs root and wrk).
    BenchSockets,
    /// Benchmark of the encrypted block layer: throughput against the plain device in 4 KiB
    /// requests, sequential and random, printed with the ratios (examples/block-bench).
    BenchBlock {
        /// Where the example runs: unix, hosted-musl (the Unikraft archive on the host's
        /// musl, as a process), unikraft or solo5.
        #[arg(long, default_value = "unix")]
        backend: Platform,
        /// Random requests per pass.
        #[arg(long, default_value_t = 512)]
        requests: u64,
    },
    /// Real crates' own test suites from crates.io, on Linux and inside unikernels: a
    /// table of passed/failed/ignored on each (long: one Unikraft build per crate).
    Corpus(corpus::CorpusArgs),
    /// `cargo unikraft doctor`.
    Doctor,
    /// Run the conformance app on a backend and check its report.
    Conformance {
        /// Where the example runs: unix, hosted-musl (the Unikraft archive on the host's
        /// musl, as a process), unikraft or solo5.
        #[arg(long, default_value = "unix")]
        backend: Platform,
        /// With `--backend solo5`: the tender.
        #[arg(long, default_value = "spt", value_parser = ["spt", "hvt"])]
        solo5_target: String,
        /// Sample the heap during the main run (`--heap-sample-ms`) and draw it into this SVG.
        #[arg(long, value_name = "FILE")]
        heap_plot: Option<std::path::PathBuf>,
    },
    /// Print where the provisioned Unikraft sources are, or fail (internal, for tests).
    #[command(hide = true)]
    Sources,
    /// The host side of network tests, run inside a namespace (internal).
    #[command(hide = true)]
    Peer {
        #[command(subcommand)]
        action: peer::PeerAction,
    },
}

/// `cargo xtask solo5-run`: the tender is `--plat spt|hvt` (or `solo5/spt`, `solo5/hvt`).
#[derive(clap::Args)]
struct Solo5RunArgs {
    #[command(flatten)]
    select: ExampleSelect,
    /// The tender: spt (a sandboxed Linux process) or hvt (KVM).
    #[arg(long, default_value = "spt", value_parser = ["spt", "hvt", "solo5/spt", "solo5/hvt"])]
    plat: String,
    /// Build only; print the unikernel's path.
    #[arg(long, alias = "no-boot")]
    no_run: bool,
    /// Boot the unikernel an earlier `--no-run` build left, without building.
    #[arg(long, conflicts_with = "no_run")]
    no_build: bool,
    #[arg(long, value_name = "IFNAME")]
    tap: Option<String>,
    #[arg(long, value_name = "FILE")]
    disk: Option<std::path::PathBuf>,
    /// Draw the guest's heap over time into this SVG (as `kraft-run --heap-plot`).
    #[arg(long, value_name = "FILE")]
    heap_plot: Option<std::path::PathBuf>,
    #[arg(last = true)]
    args: Vec<String>,
}

/// In this repository `--example NAME` names one of its example crates (default hello),
/// which becomes the delegated command's `--manifest-path`; with `--manifest-path` given,
/// `--example` keeps cargo's meaning (an example target of that crate).
fn with_example(app: &mut cargo_unikraft::cli::AppArgs) -> Result<()> {
    if app.manifest.manifest_path.is_none() {
        let example = app.example.take();
        app.or_manifest(examples::manifest(example.as_deref().unwrap_or("hello"))?);
    }
    Ok(())
}

fn main() -> ExitCode {
    // xtask delegates `kraft-run` to cargo-unikraft's library, so for a plain binary it is
    // the linker rustc runs (see cargo_unikraft::linker).
    if let Some(status) = cargo_unikraft::linker::exit_if_invoked_as_linker("xtask") {
        return status;
    }
    match real_main() {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(cargo_unikraft::cli::exit_status(&e))
        }
    }
}

fn real_main() -> Result<u8> {
    match Cli::parse().command {
        Cmd::Run { backend, example, release, args } => run::run(backend, &example, release, &args),
        Cmd::KraftRun { mut run } => {
            with_example(&mut run.build.app)?;
            run.run()
        }
        Cmd::Solo5Run(args) => {
            let tender = if args.plat.ends_with("hvt") { Tender::Hvt } else { Tender::Spt };
            RunArgs {
                build: BuildArgs { app: args.select.app_args()?, plat: Target::Solo5(tender), target: None },
                accel: cargo_unikraft::runner::Accel::Auto,
                no_boot: args.no_run,
                no_build: args.no_build,
                memory_mib: None,
                tap: args.tap,
                publish: Vec::new(),
                env: Vec::new(),
                disk: args.disk,
                virtio_net_defaults: false,
                timeout: None,
                boot_timeout: cargo_unikraft::runner::console::DEFAULT_BOOT_TIMEOUT.as_secs(),
                heap_plot: args.heap_plot,
                heap_sample_ms: cargo_unikraft::heap_plot::DEFAULT_SAMPLE_MS,
                devices: Default::default(),
                args: args.args,
            }
            .run()
        }
        Cmd::KraftGen { mut gen } => {
            with_example(&mut gen.app)?;
            gen.run()
        }
        Cmd::Oci { mut oci } => {
            with_example(&mut oci.build.app)?;
            oci.run()
        }
        Cmd::Fetch(args) => cargo_unikraft::sources::fetch(&args),
        Cmd::BenchUnikraft => bench::bench_unikraft(),
        Cmd::BenchRuntime => bench::bench_runtime(),
        Cmd::BenchNet => bench::bench_net(),
        Cmd::BenchSockets => bench_sockets::bench_sockets(),
        Cmd::BenchBlock { backend, requests } => bench_block::bench_block(backend, requests),
        Cmd::Sources => {
            let found = cargo_unikraft::sources::provisioned()?;
            println!("unikraft={}", found.unikraft.display());
            println!("lib_musl={}", found.lib_musl.display());
            println!("musl_tarball={}", found.musl_tarball.display());
            Ok(0)
        }
        Cmd::Corpus(args) => corpus::corpus(&args),
        Cmd::Doctor => {
            cargo_unikraft::doctor::report();
            Ok(0)
        }
        Cmd::Conformance { backend, solo5_target, heap_plot } => {
            conformance::conformance(backend, &solo5_target, heap_plot.as_deref())
        }
        Cmd::Peer { action } => peer::run(action),
    }
}
