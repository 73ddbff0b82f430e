//! Checking what the cache holds: the tarball's SHA256, the source trees' version files,
//! and verified copies of the tarball where a build needs one.

use std::fs;
use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::PIN;

/// The hex SHA256 of a file.
pub fn sha256_of(path: &Path) -> Result<String> {
    let mut file = fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).with_context(|| format!("read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

pub(super) fn verify_sha256(path: &Path, want: &str) -> Result<()> {
    let got = sha256_of(path)?;
    if got != want {
        bail!(
            "{} has the wrong SHA256:\n  expected {want}\n  found    {got}\n\
             It is not the pinned musl release (truncated download, or a different file).",
            path.display()
        );
    }
    Ok(())
}

/// Makes `dest` a verified copy of `src` (whose SHA256 must be `sha256`): a `dest` that is
/// already right is left alone (its timestamp drives make); a missing, truncated or
/// different one is replaced through a temporary file and a rename, so a copy cut short
/// never stays in place. Returns whether `dest` was (re)written.
pub fn install_verified_copy(src: &Path, dest: &Path, sha256: &str) -> Result<bool> {
    if dest.is_file() && sha256_of(dest)? == sha256 {
        return Ok(false);
    }
    verify_sha256(src, sha256)?;
    let parent = dest.parent().context("a copy needs a directory")?;
    fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    let name = dest.file_name().context("a copy needs a file name")?.to_string_lossy();
    let partial = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let copied = fs::copy(src, &partial)
        .with_context(|| format!("copy {} to {}", src.display(), partial.display()))
        .and_then(|_| verify_sha256(&partial, sha256))
        .and_then(|()| fs::rename(&partial, dest).with_context(|| format!("move into place: {}", dest.display())));
    if copied.is_err() {
        let _ = fs::remove_file(&partial);
    }
    copied.map(|()| true)
}

/// The `NAME = value` assignment in a makefile, if any.
fn make_variable(makefile: &str, name: &str) -> Option<String> {
    makefile.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        let key = key.trim().trim_end_matches([':', '?']).trim();
        (key == name).then(|| value.trim().to_string())
    })
}

/// The core's version from its `version.mk` (`UK_VERSION`, `UK_SUBVERSION`,
/// `UK_EXTRAVERSION`), as `RELEASE-x.y.z`.
pub fn unikraft_release_of(tree: &Path) -> Result<String> {
    let makefile = fs::read_to_string(tree.join("version.mk"))
        .with_context(|| format!("{} has no version.mk; not a Unikraft tree", tree.display()))?;
    let part = |name| {
        make_variable(&makefile, name).with_context(|| format!("{}/version.mk does not set {name}", tree.display()))
    };
    Ok(format!("RELEASE-{}.{}.{}", part("UK_VERSION")?, part("UK_SUBVERSION")?, part("UK_EXTRAVERSION")?))
}

pub(super) fn check_unikraft_tree(tree: &Path) -> Result<()> {
    let release = unikraft_release_of(tree)?;
    if release != PIN.unikraft_tag {
        bail!("it is Unikraft {release}, but the pinned release is {}", PIN.unikraft_tag);
    }
    if !tree.join("Config.uk").is_file() {
        bail!("{} has no Config.uk; not a Unikraft tree", tree.display());
    }
    Ok(())
}

pub(super) fn check_lib_musl_tree(tree: &Path) -> Result<()> {
    let makefile = fs::read_to_string(tree.join("Makefile.uk"))
        .with_context(|| format!("{} has no Makefile.uk; not a Unikraft library", tree.display()))?;
    if !makefile.contains("addlib_s,libmusl") {
        bail!("{}/Makefile.uk does not register libmusl; not lib-musl", tree.display());
    }
    match make_variable(&makefile, "LIBMUSL_VERSION") {
        Some(v) if PIN.musl_tarball_name == format!("musl-{v}.tar.gz") => Ok(()),
        Some(v) => bail!("this lib-musl builds musl {v}, but the pinned tarball is {}", PIN.musl_tarball_name),
        None => bail!("{}/Makefile.uk does not set LIBMUSL_VERSION", tree.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn make_variables_are_read_with_any_assignment_operator() {
        let mk = "UK_VERSION = 0\nUK_SUBVERSION := 16\nUK_EXTRAVERSION ?= 3\nOTHER=x\n";
        assert_eq!(make_variable(mk, "UK_VERSION").as_deref(), Some("0"));
        assert_eq!(make_variable(mk, "UK_SUBVERSION").as_deref(), Some("16"));
        assert_eq!(make_variable(mk, "UK_EXTRAVERSION").as_deref(), Some("3"));
        assert_eq!(make_variable(mk, "OTHER").as_deref(), Some("x"));
        assert_eq!(make_variable(mk, "MISSING"), None);
    }

    #[test]
    fn sha256_of_a_known_input() {
        let dir = std::env::temp_dir().join(format!("xtask-sha-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("abc");
        fs::write(&file, b"abc").unwrap();
        assert_eq!(sha256_of(&file).unwrap(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let err = verify_sha256(&file, PIN.musl_sha256).unwrap_err().to_string();
        assert!(err.contains("wrong SHA256"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A copy cut short (a full disk, a killed build) is found and replaced on the next
    /// run, instead of failing every run after it.
    #[test]
    fn a_truncated_copy_is_replaced_and_a_good_one_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.tar.gz");
        fs::write(&src, b"abc").unwrap();
        let sha = sha256_of(&src).unwrap();
        let dest = dir.path().join("build/libmusl/musl.tar.gz");

        assert!(install_verified_copy(&src, &dest, &sha).unwrap(), "a missing copy is made");
        assert_eq!(fs::read(&dest).unwrap(), b"abc");
        fs::write(&dest, b"ab").unwrap();
        assert!(install_verified_copy(&src, &dest, &sha).unwrap(), "a truncated copy is replaced");
        assert_eq!(fs::read(&dest).unwrap(), b"abc");

        let before = fs::metadata(&dest).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!install_verified_copy(&src, &dest, &sha).unwrap(), "a good copy is left alone");
        assert_eq!(fs::metadata(&dest).unwrap().modified().unwrap(), before);

        // A wrong source is refused and leaves nothing half-written behind.
        fs::write(&dest, b"xx").unwrap();
        fs::write(&src, b"abd").unwrap();
        let err = install_verified_copy(&src, &dest, &sha).unwrap_err().to_string();
        assert!(err.contains("wrong SHA256"), "{err}");
        let names: Vec<_> = fs::read_dir(dest.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["musl.tar.gz"]);
    }
}
