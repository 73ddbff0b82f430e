//! `cargo xtask bench-block`: block throughput through shared-core's encrypted layer
//! against the plain device (examples/block-bench, 4 KiB requests: sequential and random,
//! write and read), on unix and, with `--backend unikraft`, on Unikraft under QEMU. The
//! guest prints the figures and the ratios; this runs it on a scratch image and shows them.

use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::examples::workspace_root;
use cargo_unikraft::target::Platform;

/// The scratch disk: the whole of it is overwritten by each pass.
const IMAGE_MIB: u64 = 16;

pub(crate) fn bench_block(backend: Platform, requests: u64) -> Result<u8> {
    let image = workspace_root().join("target/bench-block.img");
    std::fs::File::create(&image)?.set_len(IMAGE_MIB << 20)?;
    let requests_arg = format!("--requests={requests}");
    let out = match backend {
        Platform::Unix => {
            let build =
                Command::new(env!("CARGO")).args(["build", "--release", "--quiet", "-p", "block-bench"]).status()?;
            if !build.success() {
                bail!("building block-bench failed");
            }
            let bin = workspace_root().join("target/release/block-bench");
            Command::new(&bin)
                .env("RT_UNIX_BLOCK", &image)
                .arg(&requests_arg)
                .output()
                .context("running block-bench")?
        }
        Platform::Unikraft => Command::new(std::env::current_exe()?)
            .args(["kraft-run", "--example", "block-bench", "--disk"])
            .arg(&image)
            .args(["--", &requests_arg])
            .output()
            .context("running block-bench on Unikraft")?,
        other => bail!("bench-block runs on unix and unikraft, not {other:?}"),
    };
    std::fs::remove_file(&image)?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("BENCH ") || l.contains("block-bench:")).collect();
    if !out.status.success() || !lines.iter().any(|l| l.contains("BENCH ratio")) {
        bail!("block-bench failed ({}):\n{text}", out.status);
    }
    println!("block throughput, encrypted vs plain ({backend:?}, {IMAGE_MIB} MiB image, 4 KiB requests)");
    for line in lines {
        println!("  {}", line.trim_start_matches(|c| c != 'B' && c != 'b'));
    }
    Ok(0)
}
