//! `cargo unikraft fetch`: provisioning the cache from upstream (git, curl) or offline
//! (`--unikraft-src`, `--musl-src`, `--musl-tarball`, `--solo5-src`).
//!
//! Every entry is assembled in a staging directory inside the cache and renamed into place
//! only once it is complete and verified, so an entry that exists is whole; a failed fetch
//! (wrong checksum, missing source, no network) removes its staging directory and leaves
//! the cache as it was. Inputs that are cheap to check (the tarball's checksum, that the
//! source directories exist) are checked before anything is copied.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use super::tree_pin::{self, Checkout};
use super::verify::{check_lib_musl_tree, check_unikraft_tree, verify_sha256};
use super::{cache_dir, cached, PIN};

/// Solo5's upstream repository (`cargo unikraft fetch --solo5`).
const SOLO5_GIT: &str = "https://github.com/Solo5/solo5.git";

/// `cargo unikraft fetch`.
#[derive(clap::Args, Debug)]
pub struct FetchArgs {
    /// Take Unikraft from this git repository (bare or not) or plain tree instead of GitHub.
    #[arg(long, value_name = "DIR")]
    pub unikraft_src: Option<PathBuf>,
    /// Take lib-musl from this git repository (bare or not) or plain tree instead of GitHub.
    #[arg(long, value_name = "DIR")]
    pub musl_src: Option<PathBuf>,
    /// Take the musl release tarball from this file instead of musl.libc.org (Debian's
    /// `musl_1.2.3.orig.tar.gz` is the same file). Its SHA256 must match the pin.
    #[arg(long, value_name = "FILE")]
    pub musl_tarball: Option<PathBuf>,
    /// Replace entries that are already in the cache.
    #[arg(long)]
    pub force: bool,
    /// Provision only Solo5 (pinned v0.12.1) from this git repository (bare or not):
    /// cloned at the tag into the cache and built there (needs libseccomp-dev).
    #[arg(long, value_name = "DIR")]
    pub solo5_src: Option<PathBuf>,
    /// Provision only Solo5 (pinned v0.12.1), cloned from upstream (needs git and network).
    #[arg(long, conflicts_with = "solo5_src")]
    pub solo5: bool,
    /// Print the cache layout and exit.
    #[arg(long)]
    pub print_cache: bool,
}

/// A directory in the cache that is removed unless [`Staging::commit`] moves it into place.
struct Staging {
    path: PathBuf,
}

impl Staging {
    fn new(cache: &Path, what: &str) -> Result<Self> {
        let path = cache.join(".staging").join(format!("{what}-{}", std::process::id()));
        if path.exists() {
            fs::remove_dir_all(&path).with_context(|| format!("remove stale {}", path.display()))?;
        }
        fs::create_dir_all(&path).with_context(|| format!("create {}", path.display()))?;
        Ok(Staging { path })
    }

    /// Moves `self.path/<name>` to `dest` (replacing what is there) and cleans up.
    fn commit(self, name: &str, dest: &Path) -> Result<()> {
        let parent = dest.parent().expect("cache entries have a parent");
        fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
        if dest.is_dir() {
            fs::remove_dir_all(dest).with_context(|| format!("remove old {}", dest.display()))?;
        } else if dest.exists() {
            fs::remove_file(dest).with_context(|| format!("remove old {}", dest.display()))?;
        }
        fs::rename(self.path.join(name), dest).with_context(|| format!("move into place: {}", dest.display()))?;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
        // The parent `.staging` goes too when no other fetch is using it.
        if let Some(parent) = self.path.parent() {
            let _ = fs::remove_dir(parent);
        }
    }
}

/// Where one source tree comes from.
enum TreeOrigin<'a> {
    Upstream(&'a str),
    Local(&'a Path),
}

/// `cargo unikraft fetch`.
pub fn fetch(args: &FetchArgs) -> Result<u8> {
    let cache = cache_dir()?;
    let dest = cached(&cache);
    if args.print_cache {
        println!("cache: {}", cache.display());
        println!("unikraft: {}", dest.unikraft.display());
        println!("lib-musl: {}", dest.lib_musl.display());
        println!("musl tarball: {}", dest.musl_tarball.display());
        return Ok(0);
    }

    if let Some(src) = &args.solo5_src {
        return fetch_solo5(Some(src), &cache, args.force);
    }
    if args.solo5 {
        return fetch_solo5(None, &cache, args.force);
    }

    // Check everything cheap first, so a bad input changes nothing.
    for (flag, dir) in [("--unikraft-src", &args.unikraft_src), ("--musl-src", &args.musl_src)] {
        if let Some(dir) = dir {
            if !dir.is_dir() {
                bail!("{flag} {}: no such directory", dir.display());
            }
        }
    }
    // A plain tree (not a git repository) is taken as it is, so its version is checked
    // before anything is copied; a git repository is checked for the tag when cloned.
    let plain_trees = [
        ("--unikraft-src", &args.unikraft_src, check_unikraft_tree as fn(&Path) -> Result<()>),
        ("--musl-src", &args.musl_src, check_lib_musl_tree as fn(&Path) -> Result<()>),
    ];
    for (flag, dir, check) in plain_trees {
        if let Some(dir) = dir {
            if !is_git_repository(dir) {
                check(dir).with_context(|| format!("{flag} {}", dir.display()))?;
            }
        }
    }
    if let Some(tarball) = &args.musl_tarball {
        if !tarball.is_file() {
            bail!("--musl-tarball {}: no such file", tarball.display());
        }
        verify_sha256(tarball, PIN.musl_sha256)?;
    }
    let online_parts = [
        args.unikraft_src.is_none().then_some("Unikraft"),
        args.musl_src.is_none().then_some("lib-musl"),
        args.musl_tarball.is_none().then_some("the musl tarball"),
    ];
    let online: Vec<&str> = online_parts.into_iter().flatten().collect();
    let needs = |path: &Path| args.force || !path.exists();
    if ((args.unikraft_src.is_none() && needs(&dest.unikraft)) || (args.musl_src.is_none() && needs(&dest.lib_musl)))
        && which::which("git").is_err()
    {
        bail!("git is not installed; it is needed to clone {} (apt install git)", online.join(" and "));
    }
    if args.musl_tarball.is_none() && needs(&dest.musl_tarball) && which::which("curl").is_err() {
        bail!(
            "curl is not installed; it is needed to download {} (apt install curl), or pass --musl-tarball FILE",
            PIN.musl_url
        );
    }
    fs::create_dir_all(&cache).with_context(|| format!("create the cache directory {}", cache.display()))?;
    eprintln!("cargo-unikraft: source cache {}", cache.display());

    // The tarball first: it is small, and a wrong one should fail before minutes of cloning.
    if needs(&dest.musl_tarball) {
        let staging = Staging::new(&cache, "musl-tarball")?;
        let file = staging.path.join(PIN.musl_tarball_name);
        match &args.musl_tarball {
            Some(src) => {
                fs::copy(src, &file).with_context(|| format!("copy {}", src.display()))?;
            }
            None => {
                eprintln!("cargo-unikraft: downloading {}", PIN.musl_url);
                let status = Command::new("curl")
                    .args(["--fail", "--location", "--silent", "--show-error", "--output"])
                    .arg(&file)
                    .arg(PIN.musl_url)
                    .status()
                    .context("run curl")?;
                if !status.success() {
                    bail!(
                        "downloading {} failed ({status}); offline, pass --musl-tarball FILE \
                         (Debian: `apt-get source --download-only musl` gives musl_1.2.3.orig.tar.gz)",
                        PIN.musl_url
                    );
                }
            }
        }
        verify_sha256(&file, PIN.musl_sha256)?;
        staging.commit(PIN.musl_tarball_name, &dest.musl_tarball)?;
        eprintln!("cargo-unikraft: {} verified ({})", dest.musl_tarball.display(), PIN.musl_sha256);
    } else {
        verify_sha256(&dest.musl_tarball, PIN.musl_sha256)?;
        eprintln!("cargo-unikraft: {} already cached and verified", dest.musl_tarball.display());
    }

    let trees = [
        (
            "unikraft",
            &tree_pin::UNIKRAFT,
            args.unikraft_src.as_deref().map_or(TreeOrigin::Upstream(PIN.unikraft_git), TreeOrigin::Local),
            &dest.unikraft,
            check_unikraft_tree as fn(&Path) -> Result<()>,
        ),
        (
            "lib-musl",
            &tree_pin::LIB_MUSL,
            args.musl_src.as_deref().map_or(TreeOrigin::Upstream(PIN.lib_musl_git), TreeOrigin::Local),
            &dest.lib_musl,
            check_lib_musl_tree as fn(&Path) -> Result<()>,
        ),
    ];
    for (what, pin, origin, dest, check) in trees {
        let tag = pin.tag;
        if !needs(dest) {
            eprintln!("cargo-unikraft: {what} {tag} already cached at {}", dest.display());
            continue;
        }
        let staging = Staging::new(&cache, what)?;
        let tree = staging.path.join(what);
        let checkout = match origin {
            TreeOrigin::Upstream(url) => {
                eprintln!("cargo-unikraft: cloning {what} {tag} from {url}");
                git_clone_at_tag(url, tag, &tree, true)?;
                Checkout::Upstream
            }
            TreeOrigin::Local(src) if is_git_repository(src) => {
                eprintln!("cargo-unikraft: cloning {what} {tag} from {}", src.display());
                git_clone_at_tag(&src.to_string_lossy(), tag, &tree, false)?;
                Checkout::LocalClone
            }
            TreeOrigin::Local(src) => {
                eprintln!(
                    "cargo-unikraft: copying {what} from {} (not a git repository; checking its files)",
                    src.display()
                );
                copy_tree(src, &tree)?;
                Checkout::Plain { scratch: &staging.path }
            }
        };
        check(&tree).with_context(|| format!("{what} from {}", origin_name(&origin)))?;
        // After the version check, whose message is clearer for another release.
        tree_pin::check(what, pin, &tree, checkout, &origin_name(&origin))?;
        staging.commit(what, dest)?;
        eprintln!("cargo-unikraft: {what} {tag} ready at {}", dest.display());
    }
    eprintln!("cargo-unikraft: sources provisioned; `cargo unikraft run` in an app crate builds and boots its image");
    Ok(0)
}

/// Clones Solo5 at its pinned tag from `src` (or upstream) into the cache and builds it.
fn fetch_solo5(src: Option<&Path>, cache: &Path, force: bool) -> Result<u8> {
    let tag = crate::solo5::SOLO5_TAG;
    let dest = cache.join("solo5").join(tag);
    if let Some(src) = src {
        if !src.is_dir() {
            bail!("--solo5-src {}: no such directory", src.display());
        }
        if !is_git_repository(src) {
            bail!(
                "--solo5-src {}: not a git repository (a clone of Solo5/solo5 with the tag {tag} is needed)",
                src.display()
            );
        }
    } else if which::which("git").is_err() {
        bail!("git is not installed; it is needed to clone Solo5 (apt install git), or pass --solo5-src DIR");
    }
    if dest.join("tenders/spt/solo5-spt").is_file() && !force {
        eprintln!("cargo-unikraft: Solo5 {tag} already provisioned at {}", dest.display());
        return Ok(0);
    }
    fs::create_dir_all(cache).with_context(|| format!("create the cache directory {}", cache.display()))?;
    let staging = Staging::new(cache, "solo5")?;
    let tree = staging.path.join("solo5");
    let (checkout, origin) = match src {
        Some(src) => {
            eprintln!("cargo-unikraft: cloning Solo5 {tag} from {}", src.display());
            git_clone_at_tag(&src.to_string_lossy(), tag, &tree, false)?;
            (Checkout::LocalClone, src.display().to_string())
        }
        None => {
            eprintln!("cargo-unikraft: cloning Solo5 {tag} from {SOLO5_GIT}");
            git_clone_at_tag(SOLO5_GIT, tag, &tree, true)?;
            (Checkout::Upstream, SOLO5_GIT.to_string())
        }
    };
    // Before anything of it runs (configure.sh, make).
    tree_pin::check("Solo5", &tree_pin::SOLO5, &tree, checkout, &origin)?;
    // Solo5's build records absolute paths (the toolchain's library symlink), so it is
    // built where it will stay; a failed build removes the whole entry again.
    staging.commit("solo5", &dest)?;
    eprintln!("cargo-unikraft: building Solo5 (configure.sh, make)");
    for (program, args) in [("./configure.sh", &[][..]), ("make", &["-j4"][..])] {
        let out =
            Command::new(program).args(args).current_dir(&dest).output().with_context(|| format!("run {program}"));
        let failure = match out {
            Ok(out) if out.status.success() => None,
            Ok(out) => Some(String::from_utf8_lossy(&out.stderr).into_owned()),
            Err(e) => Some(format!("{e:#}")),
        };
        if let Some(log) = failure {
            let _ = fs::remove_dir_all(&dest);
            let hint = if log.contains("seccomp") { " (apt-get install libseccomp-dev)" } else { "" };
            bail!(
                "building Solo5 failed at {program}{hint}: {}",
                log.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
            );
        }
    }
    eprintln!("cargo-unikraft: Solo5 {tag} ready at {}", dest.display());
    Ok(0)
}

fn origin_name(origin: &TreeOrigin) -> String {
    match origin {
        TreeOrigin::Upstream(url) => url.to_string(),
        TreeOrigin::Local(path) => path.display().to_string(),
    }
}

/// Whether `dir` is itself a git repository: a work tree's top (`.git` inside) or a bare
/// repository. A plain directory that merely sits inside some other repository is not.
fn is_git_repository(dir: &Path) -> bool {
    dir.join(".git").exists()
        || (dir.join("HEAD").is_file() && dir.join("objects").is_dir() && dir.join("refs").is_dir())
}

/// Clones `url` into `dest` and checks out `tag` (detached). Upstream clones are shallow.
fn git_clone_at_tag(url: &str, tag: &str, dest: &Path, shallow: bool) -> Result<()> {
    let mut clone = Command::new("git");
    clone.args(["clone", "--quiet", "--no-checkout"]);
    if shallow {
        clone.args(["--depth", "1", "--branch", tag]);
    }
    let out = clone.arg(url).arg(dest).stdin(Stdio::null()).output().context("run git clone")?;
    if !out.status.success() {
        bail!("git clone {url} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let tag_ref = format!("refs/tags/{tag}");
    let has_tag = Command::new("git")
        .arg("-C")
        .arg(dest)
        .args(["rev-parse", "--verify", "--quiet", &format!("{tag_ref}^{{commit}}")])
        .stdout(Stdio::null())
        .status()
        .context("run git rev-parse")?;
    if !has_tag.success() {
        bail!("{url} has no tag {tag}; it is not a Unikraft repository, or a copy made before {tag}");
    }
    let out = Command::new("git")
        .arg("-C")
        .arg(dest)
        .args(["-c", "advice.detachedHead=false", "checkout", "--quiet", &tag_ref])
        .output()
        .context("run git checkout")?;
    if !out.status.success() {
        bail!("git checkout {tag} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

fn copy_tree(src: &Path, dest: &Path) -> Result<()> {
    // `cp -a` keeps symlinks and modes, which Unikraft's build relies on (scripts).
    let status = Command::new("cp").arg("-a").arg(src).arg(dest).status().context("run cp")?;
    if !status.success() {
        bail!("copying {} failed ({status})", src.display());
    }
    Ok(())
}
