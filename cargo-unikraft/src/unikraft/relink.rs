//! Relinking an image without make when only the app's Rust archives changed.
//!
//! After an edit to the app's Rust code, Unikraft's make spends most of a rebuild finding
//! out that the final link is all there is to do: it evaluates the `Makefile.uk` of every
//! library (about 2 s of CPU) and checks the dependencies of some 1500 objects before it
//! links, strips and writes the boot information. So after every successful make this
//! module records a fingerprint of what make's decisions depend on, apart from the Rust
//! archives: every file of the Unikraft and library trees, of the generated app directory
//! and of the C glue, every file of the build directory (objects, `.config`, the commands
//! make saved), and the other inputs of the final link. When a later build finds the same
//! fingerprint, make would only redo the final link, so this runs that recipe itself: the
//! commands make saved in `<image>.dbg.cmd` (the link), `<image>.cmd` (strip) and
//! `<image>.bootinfo.cmd`, then Unikraft's `multiboot.py`, in the order and the directory
//! `plat/kvm/Linker.uk` of Unikraft 0.16.3 runs them. The image is the same, byte for byte.
//!
//! Anything else makes it fall back to make: no record (the first build, or one that
//! failed or was interrupted: the record is removed before make or a relink starts), a
//! changed fingerprint (a kconfig change, a glue or Unikraft source edited, an object
//! deleted), or a configuration whose final recipe has steps this does not replay (another
//! platform than KVM, PIE, the EFI stub, `.sym` or `.gz` images, build time recording).
//! Files are compared by size and modification time, as make compares them by time; the
//! toolchain itself (gcc, binutils), which make does not track either, is not fingerprinted.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::UNIX_EPOCH;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::make::{run_logged, UkMake};

/// The record of the last make or relink, in the build directory.
const RECORD: &str = ".relink-record";

/// Directories never fingerprinted: version control and Python's byte code caches (which
/// running Unikraft's scripts may write).
const SKIPPED_DIRS: &[&str] = &[".git", "__pycache__"];

/// What a build of the image has to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Nothing changed since the image was linked.
    UpToDate,
    /// Only the Rust archives changed: run the final recipe without make.
    Relink,
    /// Make has to decide, for this reason.
    Make(String),
}

/// The final link of one Unikraft build directory (see the module docs).
pub struct Relink<'a> {
    make: &'a UkMake,
    /// The bootable image (`<build dir>/<name>_<plat>-<arch>`).
    image: PathBuf,
    /// The archives cargo builds, which a relink takes up.
    archives: Vec<PathBuf>,
    /// Directories outside the build directory whose files make reads: the generated app
    /// directory and the C glue's.
    sources: Vec<PathBuf>,
}

/// The fingerprint of the sources, taken before make runs (a source edited while make
/// runs then shows as a change at the next build, never as up to date).
pub struct SourcesSnapshot(String);

impl<'a> Relink<'a> {
    pub fn new(make: &'a UkMake, image: PathBuf, archives: Vec<PathBuf>, sources: Vec<PathBuf>) -> Self {
        Relink { make, image, archives, sources }
    }

    fn record_path(&self) -> PathBuf {
        self.make.build_dir.join(RECORD)
    }

    /// What the build has to do now.
    pub fn plan(&self) -> Result<Plan> {
        let Ok(record) = fs::read_to_string(self.record_path()) else {
            return Ok(Plan::Make("no record of an earlier build in this directory".into()));
        };
        let config = fs::read_to_string(self.make.config()).unwrap_or_default();
        if let Err(why) = final_recipe(&config) {
            return Ok(Plan::Make(why));
        }
        let now = self.fingerprint(&self.sources_snapshot()?)?;
        let recorded = Record::parse(&record);
        if recorded.fingerprint.as_deref() != Some(now.as_str()) {
            return Ok(Plan::Make("Unikraft's inputs changed (configuration, sources, glue or objects)".into()));
        }
        if recorded.linked == self.linked_state()? {
            Ok(Plan::UpToDate)
        } else {
            Ok(Plan::Relink)
        }
    }

    /// Removes the record: from now until [`Relink::record`], the directory is make's.
    pub fn forget(&self) -> Result<()> {
        match fs::remove_file(self.record_path()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("remove {}", self.record_path().display()))
            }
            _ => Ok(()),
        }
    }

    /// Fingerprints the sources (call it before make runs).
    pub fn sources_snapshot(&self) -> Result<SourcesSnapshot> {
        let mut lines = String::new();
        // How make is run is part of what it decides from.
        writeln!(lines, "make {} {} {}", self.make.unikraft.display(), self.make.app_dir.display(), self.make.name)?;
        let roots = [&self.make.unikraft].into_iter().chain(&self.make.libs).chain(&self.sources);
        for root in roots {
            writeln!(lines, "root {}", root.display())?;
            list_files(root, root, &[], &mut lines)?;
        }
        Ok(SourcesSnapshot(digest(&lines)))
    }

    /// The whole fingerprint: the sources (as `sources` saw them), the build directory but
    /// for what the final recipe writes, and the final link's inputs that are neither.
    fn fingerprint(&self, sources: &SourcesSnapshot) -> Result<String> {
        let mut lines = format!("sources {}\n", sources.0);
        let build = &self.make.build_dir;
        let name = self.image.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let outputs =
            [RECORD.to_string(), "make.log".into(), name.clone(), format!("{name}.dbg"), format!("{name}.bootinfo")];
        list_files(build, build, &outputs, &mut lines)?;
        let link = fs::read_to_string(self.dbg_cmd()).unwrap_or_default();
        for input in link_inputs(&link) {
            let inside = input.starts_with(build)
                || input.starts_with(&self.make.unikraft)
                || self.make.libs.iter().chain(&self.sources).any(|dir| input.starts_with(dir));
            if !inside && !self.archives.contains(&input) {
                writeln!(lines, "input {} {}", input.display(), file_state(&input))?;
            }
        }
        Ok(digest(&lines))
    }

    /// The Rust archives and the images as they are: a relink is due when they differ
    /// from what the record says they were after the last link.
    fn linked_state(&self) -> Result<String> {
        let mut lines = String::new();
        for path in self.archives.iter().chain([&self.image, &self.dbg_image()]) {
            writeln!(lines, "{} {}", path.display(), file_state(path))?;
        }
        Ok(digest(&lines))
    }

    /// Records the state after a successful make (`sources` taken before it ran), so the
    /// next build can relink without it.
    pub fn record(&self, sources: &SourcesSnapshot) -> Result<()> {
        let config = fs::read_to_string(self.make.config()).unwrap_or_default();
        if final_recipe(&config).is_err() {
            return Ok(());
        }
        let record = Record { fingerprint: Some(self.fingerprint(sources)?), linked: self.linked_state()? };
        fs::write(self.record_path(), record.to_text())
            .with_context(|| format!("write {}", self.record_path().display()))
    }

    /// Runs the final recipe (the plan said [`Plan::Relink`]) and records the result.
    pub fn relink(&self) -> Result<()> {
        let record = fs::read_to_string(self.record_path()).context("read the relink record")?;
        let fingerprint = Record::parse(&record).fingerprint;
        self.forget()?;
        let config = fs::read_to_string(self.make.config())?;
        let recipe = final_recipe(&config).map_err(anyhow::Error::msg)?;
        let shell = if Path::new("/bin/bash").is_file() { "/bin/bash" } else { "sh" };
        let name = self.image.file_name().expect("an image file name").to_string_lossy().into_owned();
        for step in recipe {
            let mut cmd = match step {
                Step::Saved { tag, suffix } => {
                    let saved = self.make.build_dir.join(format!("{name}{suffix}.cmd"));
                    if !saved.is_file() {
                        bail!("{} is missing; a full build will write it again", saved.display());
                    }
                    let mut log = fs::OpenOptions::new().append(true).create(true).open(self.make.log())?;
                    std::io::Write::write_all(&mut log, format!("  {tag:<7} {name}{suffix} (relink)\n").as_bytes())?;
                    let mut cmd = Command::new(shell);
                    cmd.arg(saved);
                    cmd
                }
                Step::Multiboot => {
                    let mut cmd = Command::new(self.make.unikraft.join("support/scripts/multiboot.py"));
                    cmd.arg(&self.image);
                    cmd
                }
            };
            cmd.current_dir(&self.make.build_dir);
            run_logged(cmd, &self.make.log(), "relink", &self.make.upstream_roots())?;
        }
        let record = Record { fingerprint, linked: self.linked_state()? };
        fs::write(self.record_path(), record.to_text())
            .with_context(|| format!("write {}", self.record_path().display()))
    }

    fn dbg_image(&self) -> PathBuf {
        let mut dbg = self.image.clone().into_os_string();
        dbg.push(".dbg");
        dbg.into()
    }

    fn dbg_cmd(&self) -> PathBuf {
        let mut cmd = self.dbg_image().into_os_string();
        cmd.push(".cmd");
        cmd.into()
    }
}

/// One step of the final recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// A command make saved as `<image><suffix>.cmd` (and runs as `$(SHELL) that.cmd`).
    Saved { tag: &'static str, suffix: &'static str },
    /// `support/scripts/multiboot.py <image>`, which make runs without saving it.
    Multiboot,
}

/// The final recipe of plat/kvm/Linker.uk (Unikraft 0.16.3) for the configuration
/// `config` (the text of `.config`), or why this module does not replay it.
fn final_recipe(config: &str) -> std::result::Result<Vec<Step>, String> {
    let set = |name: &str| config.lines().any(|l| l.strip_prefix(name).is_some_and(|v| v == "=y"));
    for required in ["CONFIG_PLAT_KVM", "CONFIG_ARCH_X86_64"] {
        if !set(required) {
            return Err(format!("{required} is not set (only KVM x86_64 images are relinked without make)"));
        }
    }
    for other in [
        "CONFIG_PLAT_XEN",
        "CONFIG_PLAT_LINUXU",
        "CONFIG_OPTIMIZE_PIE",
        "CONFIG_KVM_BOOT_PROTO_EFI_STUB",
        "CONFIG_OPTIMIZE_SYMFILE",
        "CONFIG_OPTIMIZE_COMPRESS",
        "CONFIG_RECORD_BUILDTIME",
    ] {
        if set(other) {
            return Err(format!("{other} adds steps to the final link that only make runs"));
        }
    }
    let mut steps = vec![
        Step::Saved { tag: "LD", suffix: ".dbg" },
        Step::Saved { tag: "SCSTRIP", suffix: "" },
        Step::Saved { tag: "UKBI", suffix: ".bootinfo" },
    ];
    if set("CONFIG_KVM_BOOT_PROTO_MULTIBOOT") {
        steps.push(Step::Multiboot);
    }
    Ok(steps)
}

/// The files a saved link command names: the absolute paths among its words, and those
/// in `-Wl,-T,<script>` / `-Wl,-dT,<script>`.
fn link_inputs(cmd: &str) -> Vec<PathBuf> {
    cmd.split_whitespace()
        .filter_map(|word| {
            let path = word.rsplit(',').next().unwrap_or(word);
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .filter(|path| path.is_file())
        .collect()
}

/// `size mtime` of a file (`-` when it is missing).
fn file_state(path: &Path) -> String {
    match fs::metadata(path) {
        Ok(meta) => format!("{} {}", meta.len(), mtime_ns(&meta)),
        Err(_) => "-".into(),
    }
}

fn mtime_ns(meta: &fs::Metadata) -> u128 {
    meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos())
}

/// Appends a line per file under `dir` (recursively, sorted, relative to `root`): its
/// size and modification time, or a symlink's target (make re-creates some links on every
/// run). Top-level names in `skip` are left out.
fn list_files(root: &Path, dir: &Path, skip: &[String], out: &mut String) -> Result<()> {
    let mut entries: Vec<fs::DirEntry> = match fs::read_dir(dir) {
        Ok(entries) => entries.collect::<std::io::Result<_>>()?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("read {}", dir.display())),
    };
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if dir == root && skip.contains(&name) {
            continue;
        }
        let relative = path.strip_prefix(root).unwrap_or(&path).display().to_string();
        let file_type = entry.file_type()?;
        if file_type.is_symlink() {
            let target = fs::read_link(&path).unwrap_or_default();
            writeln!(out, "L {relative} -> {}", target.display())?;
        } else if file_type.is_dir() {
            if !SKIPPED_DIRS.contains(&name.as_str()) {
                writeln!(out, "D {relative}")?;
                list_files(root, &path, &[], out)?;
            }
        } else {
            let meta = entry.metadata()?;
            writeln!(out, "F {relative} {} {}", meta.len(), mtime_ns(&meta))?;
        }
    }
    Ok(())
}

fn digest(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The relink record: the fingerprint and the linked state after the last link.
#[derive(Debug, Default, PartialEq, Eq)]
struct Record {
    fingerprint: Option<String>,
    linked: String,
}

impl Record {
    fn parse(text: &str) -> Record {
        let mut record = Record::default();
        for line in text.lines() {
            if let Some(f) = line.strip_prefix("fingerprint ") {
                record.fingerprint = Some(f.to_string());
            } else if let Some(l) = line.strip_prefix("linked ") {
                record.linked = l.to_string();
            }
        }
        record
    }

    fn to_text(&self) -> String {
        format!("fingerprint {}\nlinked {}\n", self.fingerprint.as_deref().unwrap_or("-"), self.linked)
    }
}

#[cfg(test)]
#[path = "relink_tests.rs"]
mod tests;
