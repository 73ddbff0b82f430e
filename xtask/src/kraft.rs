//! Cargo drives Unikraft: `cargo xtask kraft-gen` and `cargo xtask kraft-run`.
//!
//! The pipeline, each step its own function:
//!
//! 1. [`resolve_app`]: `cargo metadata` for the app (with its `unikraft` feature) gives the
//!    package, its library target, `[package.metadata.unikraft]` and where rt-unikraft's C
//!    glue is. Nothing about the app is written twice: Cargo.toml is the source.
//! 2. [`write_app_dir`]: kraftfile-gen's files go to `target/unikraft/<name>/app`, unless a
//!    generated file there was edited by hand (then we stop and say so).
//! 3. Kconfig names are checked against the Unikraft tree before anything slow runs.
//! 4. [`build_image`]: cargo builds the staticlib, then Unikraft's make configures (only when
//!    the defconfig changed) and builds. Make's routine `CC ...` lines become a progress
//!    count; everything else (warnings, cargo, errors) is shown, and all of it is logged.
//!    The generated `Makefile.uk` runs cargo itself too, which is a no-op here and what
//!    makes `kraft build` work without this tool.
//! 5. [`boot_qemu`]: QEMU with KVM when a probe shows it works, else TCG; the console goes
//!    to stdout and the app's exit code comes back through `isa-debug-exit`.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use kraftfile_gen::{check_drift, generate, AppSpec, Drift, GeneratedFiles, RustBuild};

use crate::sources::{self, Sources};

/// Which app: an example of this repository or any crate by manifest.
#[derive(clap::Args, Debug, Clone)]
pub struct AppSelect {
    /// An example of this repository (hello, udp-echo, http, conformance).
    #[arg(long, conflicts_with = "manifest_path")]
    pub example: Option<String>,
    /// The app crate's Cargo.toml.
    #[arg(long)]
    pub manifest_path: Option<PathBuf>,
}

/// `cargo xtask kraft-gen`.
#[derive(clap::Args, Debug)]
pub struct KraftGenArgs {
    #[command(flatten)]
    pub app: AppSelect,
    /// Where to write the app directory (default: target/unikraft/<name>/app).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `cargo xtask kraft-run`.
#[derive(clap::Args, Debug)]
pub struct KraftRunArgs {
    #[command(flatten)]
    pub app: AppSelect,
    /// `platform/arch` to build for.
    #[arg(long, default_value = "qemu/x86_64")]
    pub target: String,
    /// QEMU accelerator: probe KVM and fall back to TCG (auto), or force one.
    #[arg(long, value_enum, default_value = "auto")]
    pub accel: Accel,
    /// Build the image and print its path without booting it.
    #[arg(long)]
    pub no_boot: bool,
    /// Guest memory in MiB for this boot, instead of the metadata's `memory`.
    #[arg(long, value_name = "MIB")]
    pub memory_mib: Option<u32>,
    /// Give the guest a virtio-net device on this TAP interface (which must exist in the
    /// network namespace kraft-run runs in).
    #[arg(long, value_name = "IFNAME")]
    pub tap: Option<String>,
    /// Give the guest a virtio-blk device backed by this raw disk image.
    #[arg(long, value_name = "FILE")]
    pub disk: Option<PathBuf>,
    /// Boot arguments for the app (after those in the metadata's `cmdline`).
    #[arg(last = true)]
    pub args: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Accel {
    Auto,
    Kvm,
    Tcg,
}

/// Everything known about the app after `cargo metadata`.
#[derive(Debug, Clone)]
pub struct App {
    pub spec: AppSpec,
    pub build: RustBuild,
    /// `target/unikraft/<name>` of the app's workspace.
    pub unikraft_dir: PathBuf,
}

fn manifest_of(select: &AppSelect) -> Result<PathBuf> {
    let manifest = match (&select.example, &select.manifest_path) {
        (_, Some(path)) => path.clone(),
        (example, None) => {
            let example = example.as_deref().unwrap_or("hello");
            let dir = if example == "conformance" {
                crate::workspace_root().join("conformance")
            } else {
                crate::workspace_root().join("examples").join(example)
            };
            if !dir.join("Cargo.toml").is_file() {
                let names: Vec<_> = crate::EXAMPLES.iter().map(|(n, _)| *n).collect();
                bail!("unknown example `{example}`; examples: {}", names.join(", "));
            }
            dir.join("Cargo.toml")
        }
    };
    let manifest = fs::canonicalize(&manifest).with_context(|| format!("no manifest at {}", manifest.display()))?;
    Ok(manifest)
}

/// Reads the app's package, library target, metadata and rt-unikraft's glue from cargo.
pub fn resolve_app(select: &AppSelect) -> Result<App> {
    let manifest = manifest_of(select)?;
    let output = Command::new(cargo())
        .args(["metadata", "--format-version", "1", "--no-default-features", "--features", "unikraft"])
        .arg("--manifest-path")
        .arg(&manifest)
        .stderr(Stdio::piped())
        .output()
        .context("run `cargo metadata`")?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("unikraft") && stderr.contains("feature") {
            bail!(
                "{} has no `unikraft` feature. An app selects its backend with features; add\n  \
                 [features]\n  default = [\"unix\"]\n  unix = [\"unikernel/unix\"]\n  unikraft = [\"unikernel/unikraft\"]\n\
                 (cargo said: {})",
                manifest.display(),
                stderr.trim()
            );
        }
        bail!("`cargo metadata` failed for {}:\n{}", manifest.display(), stderr.trim());
    }
    let meta: serde_json::Value = serde_json::from_slice(&output.stdout).context("parse `cargo metadata` output")?;
    let packages = meta["packages"].as_array().context("`cargo metadata` has no packages")?;
    let package = packages
        .iter()
        .find(|p| p["manifest_path"].as_str().map(Path::new) == Some(manifest.as_path()))
        .with_context(|| format!("`cargo metadata` does not list the package of {}", manifest.display()))?;
    let name = package["name"].as_str().context("package without a name")?;
    let lib_name = package["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "lib")))
        .and_then(|t| t["name"].as_str())
        .with_context(|| {
            format!(
                "`{name}` has no library target. Unikraft links the app as a staticlib, so the app's code \
                 goes in src/lib.rs (with `unikernel::main!`) and src/main.rs only says `extern crate {};` \
                 for the unix backend (see examples/hello)",
                name.replace('-', "_")
            )
        })?;
    let rt_unikraft = packages.iter().find(|p| p["name"] == "rt-unikraft").with_context(|| {
        format!("`{name}` with its `unikraft` feature does not depend on rt-unikraft; the feature should be `unikraft = [\"unikernel/unikraft\"]`")
    })?;
    let glue_dir = Path::new(rt_unikraft["manifest_path"].as_str().context("rt-unikraft manifest path")?)
        .parent()
        .expect("a manifest is in a directory")
        .join("glue");
    // main.c first: the hosted-musl harness finds hosted.c next to it.
    let mut glue_sources = Vec::new();
    for file in ["main.c", "netdev.c", "blkdev.c"] {
        let glue = glue_dir.join(file);
        if !glue.is_file() {
            bail!("rt-unikraft's C glue is missing: {}", glue.display());
        }
        glue_sources.push(path_str(&glue)?);
    }
    let spec = AppSpec::from_cargo_metadata(name, &package["metadata"])
        .with_context(|| format!("in {}", manifest.display()))?;
    let target_dir = PathBuf::from(meta["target_directory"].as_str().context("no target directory")?);
    let unikraft_dir = target_dir.join("unikraft").join(&spec.name);
    let build = RustBuild {
        manifest_path: path_str(&manifest)?,
        lib_name: lib_name.to_string(),
        cargo_target_dir: path_str(&target_dir.join("unikraft").join("cargo"))?,
        glue_sources,
    };
    Ok(App { spec, build, unikraft_dir })
}

fn path_str(path: &Path) -> Result<String> {
    let s = path.to_str().with_context(|| format!("path is not UTF-8: {}", path.display()))?;
    if s.contains(char::is_whitespace) {
        bail!("Unikraft's make cannot handle paths with spaces: {s}");
    }
    Ok(s.to_string())
}

/// The cargo that runs us (so a rustup toolchain override is honoured).
fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

/// Writes the generated files into `dir`. Up-to-date files are left alone (their
/// timestamps drive make); stale generated files are replaced; a hand-edited file stops
/// everything before anything is written. Returns whether any file changed.
pub fn write_app_dir(dir: &Path, files: &GeneratedFiles) -> Result<bool> {
    let mut to_write = Vec::new();
    let mut edited = Vec::new();
    for (name, body) in &files.files {
        let path = dir.join(name);
        match fs::read_to_string(&path) {
            Ok(existing) => match check_drift(&existing, body) {
                Drift::UpToDate => {}
                Drift::Stale => to_write.push((path, body)),
                Drift::HandEdited => edited.push(path),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => to_write.push((path, body)),
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        }
    }
    if !edited.is_empty() {
        let list: Vec<String> = edited.iter().map(|p| format!("  {}", p.display())).collect();
        bail!(
            "generated file(s) were edited by hand; not overwriting them:\n{}\n\
             Move the change into [package.metadata.unikraft] in Cargo.toml (see docs/unikraft.md), \
             then delete the file(s) so they are generated again.",
            list.join("\n")
        );
    }
    fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    for (path, body) in &to_write {
        fs::write(path, body).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(!to_write.is_empty())
}

/// `cargo xtask kraft-gen`: write the app directory and say how to build it with kraft.
pub fn kraft_gen(args: &KraftGenArgs) -> Result<u8> {
    let app = resolve_app(&args.app)?;
    let dir = args.out.clone().unwrap_or_else(|| app.unikraft_dir.join("app"));
    let changed = write_app_dir(&dir, &generate(&app.spec, &app.build))?;
    eprintln!(
        "xtask: app directory {} {}; build it with `kraft build` there, or `cargo xtask kraft-run`",
        dir.display(),
        if changed { "written" } else { "already up to date" }
    );
    Ok(0)
}

/// Checks that the app asks for the source set `cargo xtask fetch` provisions: the build
/// has exactly one Unikraft tree and one lib-musl tree, so any other version or library
/// would silently build against something else.
fn check_pinned_sources(app: &App) -> Result<()> {
    let pin = &sources::PIN;
    if app.spec.version != pin.unikraft_tag {
        bail!(
            "{} asks for Unikraft {}, but this xtask builds against the pinned {} (the pair lib-musl links with); \
             set `version = \"{}\"` in [package.metadata.unikraft] or remove it",
            app.build.manifest_path,
            app.spec.version,
            pin.unikraft_tag,
            pin.unikraft_tag
        );
    }
    for (name, tag) in &app.spec.libraries {
        if name != "musl" {
            bail!(
                "{} asks for the Unikraft library `{name}`; only musl is provisioned so far \
                 (remove it from `libraries` in [package.metadata.unikraft])",
                app.build.manifest_path
            );
        }
        if tag != pin.lib_musl_tag {
            bail!(
                "{} asks for lib-musl {tag}, but the pinned lib-musl is {}; \
                 set `libraries = {{ musl = \"{}\" }}` or remove it",
                app.build.manifest_path,
                pin.lib_musl_tag,
                pin.lib_musl_tag
            );
        }
    }
    Ok(())
}

/// Checks every kconfig name the defconfig for `target` sets (the app's own and the
/// generated platform/arch ones) against the Unikraft tree, lib-musl and the app's
/// `Config.uk`, before anything slow runs.
fn check_kconfig(app_dir: &Path, defconfig: &Path, sources: &Sources) -> Result<()> {
    let roots = [sources.lib_musl.clone(), app_dir.to_path_buf()];
    let index = kraftfile_gen::kconfig::KconfigIndex::load(&sources.unikraft, &roots)
        .map_err(|e| anyhow::anyhow!("read the Unikraft Kconfig files: {e}"))?;
    let body = fs::read_to_string(defconfig).with_context(|| format!("read {}", defconfig.display()))?;
    index.check(kraftfile_gen::kconfig::defconfig_names(&body)).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

/// `plat/arch` → the image file suffix Unikraft uses (`qemu-x86_64`).
fn target_suffix(target: &str) -> String {
    target.replace('/', "-")
}

/// The cargo command line the generated Makefile.uk also runs.
pub fn build_staticlib(spec: &AppSpec, build: &RustBuild) -> Result<PathBuf> {
    eprintln!("xtask: building the Rust staticlib ({})", build.manifest_path);
    let status =
        Command::new(cargo()).args(kraftfile_gen::cargo_staticlib_args(spec, build)).status().context("run cargo")?;
    if !status.success() {
        bail!("cargo failed to build the staticlib ({status})");
    }
    Ok(Path::new(&build.cargo_target_dir).join("release").join(format!("lib{}.a", build.lib_name)))
}

/// Builds the image for `target` and returns its path.
pub fn build_image(app: &App, target: &str, sources: &Sources) -> Result<PathBuf> {
    if !app.spec.targets.iter().any(|t| t == target) {
        bail!(
            "target {target} is not in the app's targets ({}); add it to `targets` in [package.metadata.unikraft]",
            app.spec.targets.join(", ")
        );
    }
    let suffix = target_suffix(target);
    let app_dir = app.unikraft_dir.join("app");
    let build_dir = app.unikraft_dir.join(format!("build-{suffix}"));
    check_pinned_sources(app)?;
    write_app_dir(&app_dir, &generate(&app.spec, &app.build))?;
    let defconfig = app_dir.join(format!("defconfig.{suffix}"));
    check_kconfig(&app_dir, &defconfig, sources)?;
    build_staticlib(&app.spec, &app.build)?;

    // lib-musl downloads musl at build time; a verified copy in place skips that.
    let tarball = build_dir.join("libmusl").join(sources::PIN.musl_tarball_name);
    if !tarball.is_file() {
        fs::create_dir_all(tarball.parent().expect("has a parent"))?;
        fs::copy(&sources.musl_tarball, &tarball)
            .with_context(|| format!("copy {} to {}", sources.musl_tarball.display(), tarball.display()))?;
    }

    let make = UkMake {
        unikraft: sources.unikraft.clone(),
        app_dir: app_dir.clone(),
        libs: vec![sources.lib_musl.clone()],
        build_dir: build_dir.clone(),
        name: app.spec.name.clone(),
    };
    let wanted = fs::read(&defconfig)?;
    let stamp = build_dir.join(".defconfig-applied");
    if !make.config().is_file() || fs::read(&stamp).ok().as_deref() != Some(&wanted[..]) {
        eprintln!("xtask: configuring Unikraft for {target}");
        make.run(&[&format!("UK_DEFCONFIG={}", defconfig.display()), "defconfig"], "configure")?;
        fs::write(&stamp, &wanted)?;
    }
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get()).to_string();
    let started = Instant::now();
    eprintln!(
        "xtask: building the Unikraft image (the first build takes a few minutes; log: {})",
        make.log().display()
    );
    make.run(&["-j", &jobs], "build")?;
    let image = build_dir.join(format!("{}_{suffix}", app.spec.name));
    if !image.is_file() {
        bail!("Unikraft's build finished but {} is missing", image.display());
    }
    let size = fs::metadata(&image)?.len();
    eprintln!(
        "xtask: image {} ({} KiB) built in {:.1} s",
        image.display(),
        size / 1024,
        started.elapsed().as_secs_f64()
    );
    Ok(image)
}

/// One Unikraft build directory and how to run make in it.
pub struct UkMake {
    pub unikraft: PathBuf,
    pub app_dir: PathBuf,
    pub libs: Vec<PathBuf>,
    pub build_dir: PathBuf,
    /// The image name (`N=`). Without it, `make defconfig` (which has no `.config` to read
    /// `CONFIG_UK_NAME` from yet) names the app after its directory, so `UK_DEFNAME` in the
    /// `.config` changes on the first build and the second one recompiles everything.
    pub name: String,
}

impl UkMake {
    /// Kept in the build directory, so several targets of one app directory do not share it.
    pub fn config(&self) -> PathBuf {
        self.build_dir.join(".config")
    }

    pub fn log(&self) -> PathBuf {
        self.build_dir.join("make.log")
    }

    /// Runs `make` in the Unikraft tree with this app, showing progress and logging output.
    pub fn run(&self, extra: &[&str], what: &str) -> Result<()> {
        if which::which("make").is_err() {
            bail!("`make` is not installed; run `cargo xtask doctor` for the packages Unikraft needs");
        }
        fs::create_dir_all(&self.build_dir)?;
        let libs: Vec<String> = self.libs.iter().map(|l| l.display().to_string()).collect();
        let mut cmd = Command::new("make");
        cmd.arg("--no-print-directory")
            .arg("-C")
            .arg(&self.unikraft)
            .arg(format!("A={}", self.app_dir.display()))
            .arg(format!("L={}", libs.join(":")))
            .arg(format!("O={}", self.build_dir.display()))
            .arg(format!("C={}", self.config().display()))
            .arg(format!("N={}", self.name))
            .args(extra)
            .env("CARGO", cargo())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut upstream = vec![self.unikraft.clone(), self.build_dir.clone()];
        upstream.extend(self.libs.iter().cloned());
        run_with_progress(cmd, &self.log(), what, UpstreamDiagnostics::new(&upstream))
    }
}

/// Recognises compiler diagnostics about upstream sources (Unikraft, its libraries, musl
/// as unpacked in the build directory): hundreds of warnings on a first build that the
/// user can do nothing about. They go to the log only, and are counted; diagnostics about
/// anything else (this project's glue, the app) are shown.
///
/// gcc writes a diagnostic as a header line naming the file (`path:12:3: warning: ...`,
/// `In file included from path...`, `                 from path...`, `path: In function`)
/// followed by source excerpt lines (` 12 | code`, `    | ^~~`); the excerpts belong to
/// the header before them.
#[derive(Clone)]
struct UpstreamDiagnostics {
    roots: Vec<String>,
    /// Whether the last header line was about an upstream file (per stream).
    in_upstream: bool,
}

impl UpstreamDiagnostics {
    fn new(roots: &[PathBuf]) -> Self {
        UpstreamDiagnostics { roots: roots.iter().map(|r| r.display().to_string()).collect(), in_upstream: false }
    }

    /// Whether `line` is (part of) a diagnostic about an upstream source.
    fn hides(&mut self, line: &str) -> bool {
        let trimmed = line.trim_start();
        let path =
            trimmed.strip_prefix("In file included from ").or_else(|| trimmed.strip_prefix("from ")).unwrap_or(trimmed);
        if self.roots.iter().any(|root| path.starts_with(root.as_str())) {
            self.in_upstream = true;
            return true;
        }
        let excerpt =
            trimmed.split_once('|').is_some_and(|(gutter, _)| gutter.trim().chars().all(|c| c.is_ascii_digit()));
        if excerpt {
            return self.in_upstream;
        }
        self.in_upstream = false;
        false
    }
}

/// A routine line of Unikraft's build (`  CC      libfoo: bar.o`): counted, not printed.
fn is_routine(line: &str) -> bool {
    // GNU ld 2.39+ warns about every Unikraft object without a `.note.GNU-stack` section;
    // Unikraft 0.16.3 builds that way by design (the unikernel has no NX stack policy), so
    // these go to the log only.
    if line.starts_with("/usr/bin/ld: warning: ")
        && (line.ends_with("missing .note.GNU-stack section implies executable stack")
            || line.ends_with("requires executable stack (because the .note.GNU-stack section is executable)"))
        || line
            == "/usr/bin/ld: NOTE: This behaviour is deprecated and will be removed in a future version of the linker"
    {
        return true;
    }
    let Some(rest) = line.strip_prefix("  ") else { return false };
    let tag: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
    !tag.is_empty()
        && tag.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-')
        && rest[tag.len()..].starts_with(' ')
}

/// Runs `cmd`, appending everything to `log`, printing unusual lines as they come and a
/// progress line every few seconds. On failure, shows the end of the log.
fn run_with_progress(mut cmd: Command, log: &Path, what: &str, upstream: UpstreamDiagnostics) -> Result<()> {
    let mut child = cmd.spawn().with_context(|| format!("start make ({what})"))?;
    let log_file = Arc::new(Mutex::new(
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("open {}", log.display()))?,
    ));
    let routine = Arc::new(Mutex::new((0usize, Instant::now(), Instant::now())));
    let hidden = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    let streams: Vec<Box<dyn std::io::Read + Send>> =
        vec![Box::new(child.stdout.take().expect("piped")), Box::new(child.stderr.take().expect("piped"))];
    for stream in streams {
        let log_file = Arc::clone(&log_file);
        let routine = Arc::clone(&routine);
        let hidden = Arc::clone(&hidden);
        let mut upstream = upstream.clone();
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = writeln!(log_file.lock().expect("log lock"), "{line}");
                if upstream.hides(&line) {
                    if line.contains(": warning: ") {
                        hidden.fetch_add(1, Ordering::Relaxed);
                    }
                } else if is_routine(&line) {
                    let mut r = routine.lock().expect("progress lock");
                    r.0 += 1;
                    if line.trim_start().starts_with("LD ") || r.2.elapsed() >= Duration::from_secs(10) {
                        eprintln!(
                            "unikraft: {} steps done ({:.0} s), now: {}",
                            r.0,
                            r.1.elapsed().as_secs_f64(),
                            line.trim()
                        );
                        r.2 = Instant::now();
                    }
                } else {
                    eprintln!("{line}");
                }
            }
        }));
    }
    for reader in readers {
        let _ = reader.join();
    }
    let status = child.wait()?;
    let hidden = hidden.load(Ordering::Relaxed);
    if hidden > 0 {
        eprintln!("unikraft: {hidden} compiler warnings about Unikraft and musl sources are in {}", log.display());
    }
    if !status.success() {
        let text = fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(25).collect();
        eprintln!("--- last lines of {} ---", log.display());
        for line in tail.iter().rev() {
            eprintln!("{line}");
        }
        bail!("Unikraft's make ({what}) failed with {status}; full log: {}", log.display());
    }
    Ok(())
}

/// Why KVM cannot be used, or `None` when it can.
///
/// Opening /dev/kvm is not enough: on some hosts (a nested, paravirtualized KVM) vCPUs
/// start but the guest's first SSE access to memory ends in a KVM emulation failure, and
/// QEMU stops the VM without exiting. So this boots a tiny probe guest
/// (`kvm_probe.S`: long mode, SSE on, MXCSR loaded from memory) under KVM and trusts KVM
/// only if it reports success.
pub fn kvm_problem(qemu: &Path) -> Option<String> {
    let dev = Path::new("/dev/kvm");
    if !dev.exists() {
        return Some("/dev/kvm does not exist".into());
    }
    if fs::OpenOptions::new().read(true).write(true).open(dev).is_err() {
        return Some("/dev/kvm is not readable and writable by this user".into());
    }
    let probe = match kvm_probe_guest() {
        Ok(probe) => probe,
        Err(e) => return Some(format!("the KVM probe guest could not be built ({e:#})")),
    };
    match run_probe_guest(qemu, &probe, "kvm") {
        Ok(()) => None,
        Err(e) => Some(format!("{e:#}")),
    }
}

/// The probe guest's source; assembled on first use with the C toolchain Unikraft's
/// build needs anyway.
const KVM_PROBE_SOURCE: &str = include_str!("kvm_probe.S");

/// What the probe guest writes to isa-debug-exit; QEMU exits with `(value << 1) | 1`.
const KVM_PROBE_EXIT: i32 = (0x2a << 1) | 1;

/// Assembles the probe guest into `target/kvm-probe/probe.bin` (once per source change).
fn kvm_probe_guest() -> Result<PathBuf> {
    let dir = crate::workspace_root().join("target/kvm-probe");
    let bin = dir.join("probe.bin");
    let stamp = dir.join("probe.S");
    if bin.is_file() && fs::read_to_string(&stamp).ok().as_deref() == Some(KVM_PROBE_SOURCE) {
        return Ok(bin);
    }
    fs::create_dir_all(&dir)?;
    // Unique names, then renames: parallel tests may probe at the same time.
    let tag = std::process::id();
    let (src, obj, out) =
        (dir.join(format!("probe-{tag}.S")), dir.join(format!("probe-{tag}.o")), dir.join(format!("probe-{tag}.bin")));
    fs::write(&src, KVM_PROBE_SOURCE)?;
    let steps: [(&str, Vec<&std::ffi::OsStr>); 2] = [
        ("cc", vec!["-c".as_ref(), src.as_os_str(), "-o".as_ref(), obj.as_os_str()]),
        (
            "ld",
            vec![
                "-m".as_ref(),
                "elf_x86_64".as_ref(),
                "-Ttext=0x100000".as_ref(),
                "--oformat=binary".as_ref(),
                "-o".as_ref(),
                out.as_os_str(),
                obj.as_os_str(),
            ],
        ),
    ];
    for (tool, args) in steps {
        let result = Command::new(tool).args(args).output().with_context(|| format!("run `{tool}`"))?;
        if !result.status.success() {
            bail!("`{tool}` failed: {}", String::from_utf8_lossy(&result.stderr).trim());
        }
    }
    fs::rename(&out, &bin)?;
    fs::rename(&src, &stamp)?;
    let _ = fs::remove_file(&obj);
    Ok(bin)
}

/// Boots the probe guest with `accel` (`kvm`; `tcg` in tests): `Ok` when it reports
/// success, else why not. A host whose KVM cannot run it stops the VM (QEMU stays up),
/// so this gives up after 10 s, or at once when QEMU reports a KVM error.
fn run_probe_guest(qemu: &Path, probe: &Path, accel: &str) -> Result<()> {
    let mut child = Command::new(qemu)
        .args(["-accel", accel, "-cpu", "max", "-nodefaults", "-no-user-config", "-display", "none"])
        .args(["-m", "16", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-kernel"])
        .arg(probe)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("QEMU could not be started for the KVM probe")?;
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().expect("piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut first_error: Option<String> = None;
    let verdict = loop {
        while let Ok(line) = lines.try_recv() {
            if first_error.is_none() && !line.trim().is_empty() {
                first_error = Some(line.trim().to_string());
            }
        }
        if let Some(status) = child.try_wait()? {
            break if status.code() == Some(KVM_PROBE_EXIT) {
                Ok(())
            } else {
                Err(anyhow::anyhow!(
                    "the KVM probe guest failed (QEMU {status}): {}",
                    first_error.as_deref().unwrap_or("no message")
                ))
            };
        }
        if first_error.as_deref().is_some_and(|l| l.contains("KVM internal error")) || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break Err(anyhow::anyhow!(
                "QEMU ({accel}) cannot run a guest that uses SSE: {}",
                first_error.as_deref().unwrap_or("the probe guest did not finish within 10 s")
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    verdict
}

/// Quotes one argument for Unikraft's command-line splitter.
fn quote_arg(arg: &str) -> String {
    if !arg.is_empty() && !arg.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '\\') {
        return arg.to_string();
    }
    format!("\"{}\"", arg.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The return addresses in a `rt-unikraft backtrace: 0x.. 0x..` console line.
pub fn parse_backtrace_line(line: &str) -> Option<Vec<u64>> {
    let rest = line.trim().strip_prefix("rt-unikraft backtrace:")?;
    rest.split_whitespace().map(|word| u64::from_str_radix(word.strip_prefix("0x")?, 16).ok()).collect()
}

/// Function, file and line for each return address, from the unstripped image, with
/// binutils' `addr2line` (inlined frames are shown as "(inlined by)"). A return address
/// points after its call, so `address - 1` is looked up.
pub fn symbolize(debug_image: &Path, addresses: &[u64]) -> Result<Vec<String>> {
    if !debug_image.is_file() {
        bail!("{} is missing", debug_image.display());
    }
    let out = Command::new("addr2line")
        .args(["-f", "-C", "-i", "-p", "-e"])
        .arg(debug_image)
        .args(addresses.iter().map(|a| format!("{:#x}", a.saturating_sub(1))))
        .output()
        .context("run addr2line (binutils)")?;
    if !out.status.success() {
        bail!("addr2line failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim().to_string()).collect())
}

/// What the guest's exit looked like (see rt-unikraft's glue/main.c and docs/runtime.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestExit {
    /// The app exited with this code.
    App(u8),
    /// QEMU stopped without the app reporting (crash, halt or reboot).
    NotReported,
}

/// QEMU exits with `(value << 1) | 1` for a value written to `isa-debug-exit`.
pub fn decode_qemu_status(status: i32) -> GuestExit {
    if status & 1 == 1 {
        GuestExit::App(((status - 1) / 2) as u8)
    } else {
        GuestExit::NotReported
    }
}

/// The QEMU command line for an image.
/// Devices a QEMU boot gets besides the console and the exit port.
#[derive(Debug, Clone, Default)]
pub struct QemuDevices {
    /// A virtio-net device on this TAP interface.
    pub tap: Option<String>,
    /// A virtio-blk device backed by this raw image.
    pub disk: Option<PathBuf>,
}

impl QemuDevices {
    fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(disk) = &self.disk {
            args.push("-drive".to_string());
            args.push(format!("file={},if=virtio,format=raw", disk.display()));
        }
        if let Some(tap) = &self.tap {
            args.push("-netdev".to_string());
            args.push(format!("tap,id=n0,ifname={tap},script=no,downscript=no"));
            args.push("-device".to_string());
            // No segmentation offloads towards the guest: Unikraft 0.16's virtio-net
            // negotiates legacy GSO but posts MTU-sized receive buffers (no mergeable
            // buffers), so a 64 KiB TSO segment from the host could not be delivered and
            // TCP would crawl on retransmissions. Checksum offload stays (rt-unikraft
            // completes partial checksums).
            //
            // event_idx=off: Unikraft 0.16.3's virtio ring gets VIRTIO_F_EVENT_IDX wrong
            // under load (its notify check assumes one buffer per kick, and a flood of
            // datagrams left the guest waiting for a receive interrupt that never came);
            // the plain NO_NOTIFY / NO_INTERRUPT flags it falls back to are exact.
            args.push(
                "virtio-net-pci,netdev=n0,gso=off,guest_tso4=off,guest_tso6=off,guest_ecn=off,guest_ufo=off,\
                 event_idx=off"
                    .to_string(),
            );
        }
        args
    }
}

pub fn qemu_command(qemu: &Path, image: &Path, memory_mib: u32, kvm: bool, args: &[String]) -> Command {
    qemu_command_with(qemu, image, memory_mib, kvm, &QemuDevices::default(), args)
}

pub fn qemu_command_with(
    qemu: &Path,
    image: &Path,
    memory_mib: u32,
    kvm: bool,
    devices: &QemuDevices,
    args: &[String],
) -> Command {
    let mut cmd = Command::new(qemu);
    cmd.args(["-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot"])
        .args(["-accel", if kvm { "kvm" } else { "tcg" }, "-cpu", "max"])
        .arg("-m")
        .arg(format!("{memory_mib}M"))
        .arg("-kernel")
        .arg(image)
        // QEMU passes the kernel's path as the first word, which Unikraft makes argv[0].
        .arg("-append")
        .arg(args.iter().map(|a| quote_arg(a)).collect::<Vec<_>>().join(" "))
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .args(devices.args())
        .stdin(Stdio::null());
    cmd
}

/// Boots `image` under QEMU, streaming the console; returns the app's exit code.
pub fn boot_qemu(image: &Path, memory_mib: u32, accel: Accel, devices: &QemuDevices, args: &[String]) -> Result<u8> {
    let qemu = which::which("qemu-system-x86_64")
        .context("qemu-system-x86_64 is not installed (Debian: apt-get install qemu-system-x86)")?;
    let kvm = match accel {
        Accel::Tcg => false,
        Accel::Kvm => true,
        Accel::Auto => match kvm_problem(&qemu) {
            None => true,
            Some(why) => {
                eprintln!("xtask: using TCG (software emulation): {why}");
                false
            }
        },
    };
    eprintln!("xtask: booting {} under QEMU ({})", image.display(), if kvm { "KVM" } else { "TCG" });
    let mut child = qemu_command_with(&qemu, image, memory_mib, kvm, devices, args)
        .stdout(Stdio::piped())
        .spawn()
        .context("start QEMU")?;
    // The console is echoed line by line; a backtrace line from rt-unikraft (apps with
    // `backtrace = true`) is followed by its symbolized frames.
    let console = BufReader::new(child.stdout.take().expect("piped"));
    for line in console.lines().map_while(Result::ok) {
        println!("{line}");
        if let Some(addresses) = parse_backtrace_line(&line) {
            let debug_image =
                image.with_file_name(format!("{}.dbg", image.file_name().and_then(|n| n.to_str()).unwrap_or_default()));
            match symbolize(&debug_image, &addresses) {
                Ok(frames) => {
                    println!("backtrace (symbolized by xtask from {}):", debug_image.display());
                    let mut number = 0;
                    for frame in &frames {
                        if frame.starts_with("(inlined by)") {
                            println!("      {frame}");
                        } else {
                            println!("  {number:>2}: {frame}");
                            number += 1;
                        }
                    }
                }
                Err(e) => eprintln!("xtask: could not symbolize the backtrace: {e:#}"),
            }
        }
    }
    let status = child.wait().context("wait for QEMU")?;
    let Some(code) = status.code() else { bail!("QEMU was killed ({status})") };
    match decode_qemu_status(code) {
        GuestExit::App(code) => Ok(code),
        GuestExit::NotReported => bail!(
            "the unikernel stopped without reporting an exit code (QEMU exit status {code}): \
             it crashed or halted outside the app; see the console above"
        ),
    }
}

/// `cargo xtask kraft-run`.
pub fn kraft_run(args: &KraftRunArgs) -> Result<u8> {
    let app = resolve_app(&args.app)?;
    // Before the sources: asking for an unprovisionable version is the app's mistake.
    check_pinned_sources(&app)?;
    let sources = sources::provisioned()?;
    let image = build_image(&app, &args.target, &sources)?;
    if args.no_boot {
        println!("{}", image.display());
        return Ok(0);
    }
    let mut boot_args = app.spec.cmdline.clone();
    boot_args.extend(args.args.iter().cloned());
    let memory_mib = args.memory_mib.unwrap_or(app.spec.memory_mib);
    match args.target.as_str() {
        "qemu/x86_64" => {
            let devices = QemuDevices { tap: args.tap.clone(), disk: args.disk.clone() };
            if app.spec.devices.iter().any(|d| d == "net") && devices.tap.is_none() {
                eprintln!("xtask: note: {} uses a net device but no --tap was given; it will find none", app.spec.name);
            }
            boot_qemu(&image, memory_mib, args.accel, &devices, &boot_args)
        }
        "fc/x86_64" => crate::firecracker::boot(&image, &app.spec.name, memory_mib, &boot_args),
        other => bail!("booting {other} is not supported"),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn upstream_diagnostics_are_hidden_and_the_projects_are_shown() {
        let mut filter = UpstreamDiagnostics::new(&[PathBuf::from("/cache/unikraft"), PathBuf::from("/w/build")]);
        let hidden = [
            "In file included from /cache/unikraft/include/uk/plat/bootstrap.h:38,",
            "                 from /w/build/libmusl/origin/musl-1.2.3//src/internal/syscall.h:8,",
            "/cache/unikraft/include/uk/essentials.h:61: note: this is the location of the previous definition",
            "   61 | #define MIN(a, b)                                                              \\",
            "      | ",
            "/w/build/libmusl/origin/musl-1.2.3//src/stdlib/qsort.c:55:15: warning: storing the address",
            "      |         ~~~~~~^~~~~",
        ];
        for line in hidden {
            assert!(filter.hides(line), "should be hidden: {line}");
        }
        let shown = [
            "/w/rt-unikraft/glue/netdev.c:10:5: warning: unused variable 'x'",
            "   10 |     int x;",
            "  CC      libmusl: putwchar.o",
            "make: *** [Makefile:1] Error 1",
        ];
        for line in shown {
            assert!(!filter.hides(line), "should be shown: {line}");
        }
    }

    /// The probe guest must itself be right, or every host would be judged unable to run
    /// KVM: under TCG (software, always available with QEMU) it reports success.
    #[test]
    fn the_kvm_probe_guest_succeeds_under_tcg() {
        let Ok(qemu) = which::which("qemu-system-x86_64") else {
            eprintln!("SKIP: the_kvm_probe_guest_succeeds_under_tcg: qemu-system-x86_64 is not installed");
            return;
        };
        let probe = kvm_probe_guest().expect("assemble the probe guest");
        run_probe_guest(&qemu, &probe, "tcg").expect("the probe guest runs under TCG");
        match kvm_problem(&qemu) {
            None => eprintln!("note: KVM runs the probe guest on this host"),
            Some(why) => eprintln!("note: KVM is not usable here: {why}"),
        }
    }

    use super::*;

    #[test]
    fn routine_make_lines_are_recognised() {
        assert!(is_routine("  CC      libkvmplat: io.o"));
        assert!(is_routine("  LD      hello_qemu-x86_64.dbg"));
        assert!(is_routine("  UKBI    hello_qemu-x86_64.bootinfo"));
        assert!(!is_routine("/usr/bin/ld: warning: something"));
        assert!(is_routine(
            "/usr/bin/ld: warning: build/libmusl/libinfo.libuklibid.o: missing .note.GNU-stack section implies executable stack"
        ));
        assert!(is_routine(
            "/usr/bin/ld: NOTE: This behaviour is deprecated and will be removed in a future version of the linker"
        ));
        assert!(!is_routine("   Compiling hello v0.1.0"));
        assert!(!is_routine("error: oops"));
    }

    #[test]
    fn backtrace_lines_are_recognised() {
        assert_eq!(parse_backtrace_line("rt-unikraft backtrace: 0x10a2b3 0x1000"), Some(vec![0x10a2b3, 0x1000]));
        assert_eq!(parse_backtrace_line("rt-unikraft backtrace:"), Some(vec![]));
        assert_eq!(parse_backtrace_line("rt-unikraft backtrace: 0xzz"), None);
        assert_eq!(parse_backtrace_line("hello"), None);
    }

    #[test]
    fn exit_statuses_decode() {
        assert_eq!(decode_qemu_status(1), GuestExit::App(0));
        assert_eq!(decode_qemu_status(7), GuestExit::App(3));
        assert_eq!(decode_qemu_status(255), GuestExit::App(127));
        assert_eq!(decode_qemu_status(0), GuestExit::NotReported);
    }

    #[test]
    fn arguments_with_spaces_are_quoted() {
        assert_eq!(quote_arg("a"), "a");
        assert_eq!(quote_arg("a b"), "\"a b\"");
        assert_eq!(quote_arg(""), "\"\"");
        assert_eq!(quote_arg("say \"hi\""), "\"say \\\"hi\\\"\"");
    }

    #[test]
    fn hand_edited_files_stop_generation() {
        let dir = std::env::temp_dir().join(format!("xtask-appdir-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let files = GeneratedFiles { files: vec![("Kraftfile".into(), "# Generated\n# body-hash: x\nspec\n".into())] };
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("Kraftfile"), "hand written\n").unwrap();
        let err = write_app_dir(&dir, &files).unwrap_err().to_string();
        assert!(err.contains("edited by hand"), "{err}");
        assert_eq!(fs::read_to_string(dir.join("Kraftfile")).unwrap(), "hand written\n");
        fs::remove_dir_all(&dir).unwrap();
    }
}
