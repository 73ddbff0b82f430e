//! `cargo xtask bench-unikraft`: the Unikraft build path's size and rebuild benchmarks.
//!
//! Measured in one run, printed as ratios (machines are noisy; ratios and medians travel):
//!
//! * image size: the stripped image of the Rust `hello` over that of a C hello built with
//!   the same Unikraft configuration (the same defconfig, only the name differs). Target:
//!   at most 1.05×.
//! * rebuild time: after an app-only change (the app's source is touched), the whole
//!   `kraft-run` build (cargo, then Unikraft's relink) over the cargo build alone. The
//!   difference is what Unikraft adds to an edit-build cycle; target: at most 2 s. Wall
//!   clock and CPU time (this process and its children), since the machines are shared.
//! * the same figures for a plain `cargo new --bin` hello (std, unwinding), linked by
//!   cargo-unikraft's linker wrapper ([`crate::bench_plain`]); size target: at most 1.15×.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};

use cargo_unikraft::runner::qemu::{Qemu, QemuDevices};
use cargo_unikraft::runner::{Accel, Guest, GuestExit};
use cargo_unikraft::sources;
use cargo_unikraft::unikraft::{build_image, make::UkMake};

use crate::bench_plain::bench_plain_hello;
use crate::examples;

/// How many times each rebuild is timed; the median is reported.
pub(crate) const ROUNDS: usize = 5;
/// Rust hello / C hello, for the `unikernel::main!` hello and for a plain `fn main()` one.
const SIZE_TARGET: f64 = 1.05;
const PLAIN_SIZE_TARGET: f64 = 1.15;
/// What Unikraft may add to a rebuild after an app-only change, in seconds.
const SHARE_TARGET_S: f64 = 2.0;

/// A C hello built like the Rust one, for the size comparison.
const C_HELLO: &str =
    "#include <stdio.h>\n\nint main(int argc, char *argv[])\n{\n\tprintf(\"Hello from C\\n\");\n\treturn 0;\n}\n";

pub(crate) fn touch(path: &Path) -> Result<()> {
    let file = fs::File::options().write(true).open(path).with_context(|| format!("open {}", path.display()))?;
    file.set_modified(SystemTime::now())?;
    Ok(())
}

pub(crate) fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// How long a step took: on the wall clock, and in CPU time (user and system, of this
/// process and the child processes it waited for). The machines here are shared, so the
/// wall clock grows with everyone else's load; the CPU time is the work itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub wall: Duration,
    pub cpu: Duration,
}

/// The CPU time this process and its waited-for children have used so far: `utime`,
/// `stime`, `cutime` and `cstime` of /proc/self/stat, in clock ticks of 10 ms (Linux's
/// `USER_HZ` on x86_64).
fn cpu_used() -> Result<Duration> {
    let stat = fs::read_to_string("/proc/self/stat").context("read /proc/self/stat")?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> =
        stat.rsplit_once(')').context("the format of /proc/self/stat")?.1.split_whitespace().collect();
    let ticks: u64 = fields
        .get(11..15)
        .context("the format of /proc/self/stat")?
        .iter()
        .map(|f| f.parse::<u64>().unwrap_or(0))
        .sum();
    Ok(Duration::from_millis(ticks * 10))
}

pub(crate) fn timed(what: &str, f: impl FnOnce() -> Result<()>) -> Result<Timing> {
    let (start, cpu) = (Instant::now(), cpu_used()?);
    f().with_context(|| format!("while timing {what}"))?;
    Ok(Timing { wall: start.elapsed(), cpu: cpu_used()?.saturating_sub(cpu) })
}

/// The medians of the wall-clock and of the CPU times.
pub(crate) fn median_timing(samples: &[Timing]) -> Timing {
    Timing {
        wall: median(samples.iter().map(|t| t.wall).collect()),
        cpu: median(samples.iter().map(|t| t.cpu).collect()),
    }
}

/// Builds the C hello with the Rust hello's defconfig and returns the image.
fn build_c_hello(rust_app: &cargo_unikraft::app::App, sources: &sources::Sources) -> Result<std::path::PathBuf> {
    let dir = rust_app.unikraft_dir().with_file_name("bench-c-hello");
    let app_dir = dir.join("app");
    let build_dir = dir.join("build-qemu-x86_64");
    fs::create_dir_all(&app_dir)?;
    fs::write(app_dir.join("main.c"), C_HELLO)?;
    fs::write(
        app_dir.join("Makefile.uk"),
        "$(eval $(call addlib,appchello))\nAPPCHELLO_SRCS-y += $(APPCHELLO_BASE)/main.c\n",
    )?;
    fs::write(app_dir.join("Config.uk"), "config APPCHELLO\nbool \"C hello\"\ndefault y\n")?;
    let rust_defconfig = fs::read_to_string(rust_app.unikraft_dir().join("app/defconfig.qemu-x86_64"))?;
    let defconfig = rust_defconfig
        .lines()
        .map(|l| if l.starts_with("CONFIG_UK_NAME=") { "CONFIG_UK_NAME=\"chello\"" } else { l })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    fs::write(app_dir.join("defconfig"), &defconfig)?;
    let tarball = build_dir.join("libmusl/musl-1.2.3.tar.gz");
    if !tarball.is_file() {
        fs::create_dir_all(tarball.parent().expect("has a parent"))?;
        fs::copy(&sources.musl_tarball, &tarball)?;
    }
    let make = UkMake {
        unikraft: sources.unikraft.clone(),
        app_dir: app_dir.clone(),
        libs: vec![sources.lib_musl.clone()],
        build_dir: build_dir.clone(),
        name: "chello".into(),
    };
    // Configured again whenever the Rust hello's defconfig (and so this one) changed.
    let stamp = build_dir.join(".defconfig-applied");
    if !make.config().is_file() || fs::read_to_string(&stamp).ok().as_deref() != Some(defconfig.as_str()) {
        let _ = fs::remove_file(&stamp);
        make.run(&[&format!("UK_DEFCONFIG={}", app_dir.join("defconfig").display()), "defconfig"], "configure")?;
        fs::write(&stamp, &defconfig)?;
    }
    eprintln!("bench: building the C hello (same configuration; the first build takes a few minutes)");
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get()).to_string();
    make.run(&["-j", &jobs], "build")?;
    Ok(build_dir.join("chello_qemu-x86_64"))
}

pub fn bench_unikraft() -> Result<u8> {
    let sources = sources::provisioned()?;
    let app = examples::app("hello")?;
    let rust_image = build_image(&app, "qemu/x86_64", &sources)?;
    let c_image = build_c_hello(&app, &sources)?;

    let rust_size = fs::metadata(&rust_image)?.len();
    let c_size = fs::metadata(&c_image)?.len();
    let size_ratio = rust_size as f64 / c_size as f64;

    let source = Path::new(&app.build.manifest_path).parent().expect("manifest dir").join("src/lib.rs");
    let cargo_args = kraftfile_gen::cargo_staticlib_args(&app.spec, &app.build);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cargo_alone = Vec::new();
    let mut full_rebuild = Vec::new();
    for round in 1..=ROUNDS {
        eprintln!("bench: rebuild round {round}/{ROUNDS}");
        touch(&source)?;
        cargo_alone.push(timed("cargo alone", || {
            let out = Command::new(&cargo).args(&cargo_args).output()?;
            if !out.status.success() {
                bail!("cargo failed: {}", String::from_utf8_lossy(&out.stderr));
            }
            Ok(())
        })?);
        touch(&source)?;
        full_rebuild.push(timed("the whole rebuild", || build_image(&app, "qemu/x86_64", &sources).map(drop))?);
    }
    let cargo = median_timing(&cargo_alone);
    let whole = median_timing(&full_rebuild);
    let rebuild_ratio = whole.wall.as_secs_f64() / cargo.wall.as_secs_f64();
    let unikraft_share = whole.wall.saturating_sub(cargo.wall).as_secs_f64();
    let unikraft_cpu = whole.cpu.saturating_sub(cargo.cpu).as_secs_f64();
    let target_dir = Path::new(&app.build.cargo_target_dir);
    let plain = bench_plain_hello(target_dir, &sources)?;
    let plain_size_ratio = plain.image_size as f64 / c_size as f64;
    let plain_rebuild_ratio = plain.whole_rebuild.wall.as_secs_f64() / plain.cargo_alone.wall.as_secs_f64();
    let plain_share = plain.whole_rebuild.wall.saturating_sub(plain.cargo_alone.wall).as_secs_f64();
    let plain_cpu = plain.whole_rebuild.cpu.saturating_sub(plain.cargo_alone.cpu).as_secs_f64();
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    let goals = [
        size_ratio <= SIZE_TARGET,
        plain_size_ratio <= PLAIN_SIZE_TARGET,
        unikraft_share <= SHARE_TARGET_S,
        plain_share <= SHARE_TARGET_S,
    ];

    println!("unikraft build benchmarks (Unikraft RELEASE-0.16.3, qemu/x86_64)");
    println!(
        "  image size:  Rust hello {rust_size} B / C hello {c_size} B = {size_ratio:.3}x  (target <= {SIZE_TARGET}x: {})",
        met(goals[0])
    );
    println!(
        "  rebuild:     app-only change, whole build {:.2} s / cargo alone {:.2} s = {rebuild_ratio:.2}x  \
         (medians of {ROUNDS}; Unikraft adds {unikraft_share:.2} s, target <= {SHARE_TARGET_S} s: {}; \
         CPU: whole {:.2} s, cargo {:.2} s, Unikraft {unikraft_cpu:.2} s)",
        whole.wall.as_secs_f64(),
        cargo.wall.as_secs_f64(),
        met(goals[2]),
        whole.cpu.as_secs_f64(),
        cargo.cpu.as_secs_f64(),
    );
    println!(
        "  plain bin:   `cargo new --bin` hello {} B / C hello {c_size} B = {plain_size_ratio:.3}x  \
         (std, panic = \"unwind\", linked by cargo-unikraft; target <= {PLAIN_SIZE_TARGET}x: {})",
        plain.image_size,
        met(goals[1])
    );
    println!(
        "  plain bin:   app-only change, whole build {:.2} s / cargo alone {:.2} s = {plain_rebuild_ratio:.2}x  \
         (medians of {ROUNDS}; Unikraft adds {plain_share:.2} s, target <= {SHARE_TARGET_S} s: {}; \
         CPU: whole {:.2} s, cargo {:.2} s, Unikraft {plain_cpu:.2} s)",
        plain.whole_rebuild.wall.as_secs_f64(),
        plain.cargo_alone.wall.as_secs_f64(),
        met(goals[3]),
        plain.whole_rebuild.cpu.as_secs_f64(),
        plain.cargo_alone.cpu.as_secs_f64(),
    );
    Ok(if goals.iter().all(|ok| *ok) { 0 } else { 1 })
}

/// Memory sizes tried by `bench-runtime`, in MiB, largest first.
const MEMORY_STEPS_MIB: &[u32] = &[16, 12, 8, 6, 5, 4, 3, 2];
/// The target for a Rust hello that spawns one thread.
const MEMORY_TARGET_MIB: u32 = 4;

/// Boots `image` with `memory_mib` under TCG (deterministic, and what CI has) and says
/// whether hello-std ran to its end; on failure, the console's last line says why.
fn boots_in(image: &Path, memory_mib: u32) -> Result<std::result::Result<String, String>> {
    let guest = Qemu::new(image, memory_mib, Accel::Tcg, QemuDevices::default())?;
    let mut cmd = guest.command(&[]);
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().context("start QEMU")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(Err("no exit within 60 s".into()));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output()?;
    let console = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let exit = guest.exit(status, &console);
    if exit == GuestExit::App(0) && console.contains("goodbye (exit 0)") {
        return Ok(Ok(console));
    }
    let last = console.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output").trim().to_string();
    Ok(Err(format!("{exit:?}: {last}")))
}

/// `cargo xtask bench-runtime`: the least guest memory `hello-std` (std, one spawned
/// thread) boots and finishes in, on Unikraft under QEMU.
pub fn bench_runtime() -> Result<u8> {
    let sources = sources::provisioned()?;
    let app = examples::app("hello-std")?;
    let image = build_image(&app, "qemu/x86_64", &sources)?;

    let mut smallest = None;
    let mut first_failure = None;
    let mut stack_line = String::from("thread stack: unknown");
    for &mib in MEMORY_STEPS_MIB {
        eprintln!("bench: booting hello-std with {mib} MiB");
        match boots_in(&image, mib)? {
            Ok(console) => {
                smallest = Some(mib);
                if let Some(line) = console.lines().find(|l| l.starts_with("thread stack: ")) {
                    stack_line = line.trim().to_string();
                }
            }
            Err(why) => {
                first_failure = Some((mib, why));
                break;
            }
        }
    }
    let Some(smallest) = smallest else {
        let (mib, why) = first_failure.expect("a step failed");
        bail!("hello-std did not boot even with {mib} MiB: {why}");
    };
    println!("unikraft runtime benchmarks (Unikraft RELEASE-0.16.3, qemu/x86_64, TCG)");
    println!(
        "  minimum guest memory, hello-std with one thread: {smallest} MiB  (target <= {MEMORY_TARGET_MIB} MiB: {}; \
         the app reports {stack_line})",
        if smallest <= MEMORY_TARGET_MIB { "met" } else { "NOT met" },
    );
    if let Some((mib, why)) = first_failure {
        println!("  with {mib} MiB it fails: {why}");
    }
    Ok(if smallest <= MEMORY_TARGET_MIB { 0 } else { 1 })
}

/// Runs per mode in `bench-net`; the median is reported.
const NET_ROUNDS: usize = 3;
/// Seconds of load per run.
const NET_SECONDS: u64 = 5;

/// Boots the udp-echo image in a fresh namespace with `runtime_args`, floods it for
/// [`NET_SECONDS`] and returns the round trips per second.
fn udp_echo_rate(image: &Path, memory_mib: u32, runtime_args: &[&str]) -> Result<f64> {
    use std::io::{BufRead, BufReader};
    let ns = crate::netns::NetNs::create("ukbench")?;
    let devices = QemuDevices { tap: Some(crate::netns::TAP.to_string()), ..QemuDevices::default() };
    let args: Vec<String> = runtime_args.iter().map(|a| a.to_string()).collect();
    let guest = Qemu::new(image, memory_mib, Accel::Tcg, devices)?;
    let qemu_cmd = guest.command(&args);
    let mut child = ns.wrap(&qemu_cmd).stdout(std::process::Stdio::piped()).spawn().context("start QEMU")?;
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let listening = lines.by_ref().map_while(Result::ok).any(|l| l.contains("listening on"));
    let result = if listening {
        let exe = std::env::current_exe()?;
        let out = ns
            .command(exe.to_str().context("exe path")?)
            .args(["peer", "udp-flood", "--window", "32", "--seconds", &NET_SECONDS.to_string()])
            .output()
            .context("run the flood peer")?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| l.strip_prefix("round trips: "))
            .and_then(|n| n.trim().parse::<f64>().ok())
            .map(|n| n / NET_SECONDS as f64)
            .with_context(|| format!("the flood peer failed: {}", String::from_utf8_lossy(&out.stderr)))
    } else {
        Err(anyhow::anyhow!("the udp-echo guest never said it was listening"))
    };
    let _ = child.kill();
    let _ = child.wait();
    drop(ns);
    result
}

fn median_f64(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// `cargo xtask bench-net`: UDP echo round trips per second through the Unikraft guest,
/// with the driver drained on every wake-up (the default) and with one packet per
/// wake-up (`--rt-unikraft-rx-batch=1`), from one run. Under TCG only the ratio means
/// anything.
pub fn bench_net() -> Result<u8> {
    if !crate::netns::is_root() {
        bail!("bench-net needs root (it boots the guest in a network namespace with a TAP)");
    }
    let sources = sources::provisioned()?;
    let app = examples::app("udp-echo")?;
    let image = build_image(&app, "qemu/x86_64", &sources)?;
    let mut drained = Vec::new();
    let mut single = Vec::new();
    for round in 1..=NET_ROUNDS {
        eprintln!("bench: round {round}/{NET_ROUNDS}: drain per wake-up");
        drained.push(udp_echo_rate(&image, app.spec.memory_mib, &[])?);
        eprintln!("bench: round {round}/{NET_ROUNDS}: one packet per wake-up");
        single.push(udp_echo_rate(&image, app.spec.memory_mib, &["--rt-unikraft-rx-batch=1"])?);
    }
    let (drained, single) = (median_f64(drained), median_f64(single));
    println!(
        "unikraft net benchmark (udp-echo, qemu/x86_64 under TCG, 32 datagrams in flight, {NET_SECONDS} s per run)"
    );
    println!(
        "  round trips/s: drain per wake-up {drained:.0} / one packet per wake-up {single:.0} = {:.2}x  (medians of {NET_ROUNDS})",
        drained / single
    );
    Ok(0)
}
