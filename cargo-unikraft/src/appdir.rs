//! The generated app directory (Kraftfile, Makefile.uk, Config.uk, defconfigs) that both
//! this tool's build and `kraft build` use, and the lock that lets one build at a time use
//! an app's `target/unikraft/<name>/`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use kraftfile_gen::{check_drift, Drift, GeneratedFiles};

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

/// An exclusive lock on an app's build directory (`target/unikraft/<name>/`), held while
/// one build writes its app directory, build directories and image: two builds of one app
/// at once would otherwise rewrite each other's files under each other's make. A second
/// build waits (saying so) until the first is done.
///
/// It is an advisory `flock` on `<dir>/.build.lock` (std's `File::lock`), so it is released
/// by the kernel when the holder exits, however it exits: a killed build leaves no stale
/// lock. Files are opened close-on-exec, so make and cargo do not inherit it.
#[derive(Debug)]
pub struct BuildLock {
    _file: fs::File,
    path: PathBuf,
}

impl BuildLock {
    /// Locks `dir`, printing `waiting for lock on <dir>` first when another build holds it.
    pub fn acquire(dir: &Path) -> Result<BuildLock> {
        Self::acquire_with(dir, |dir| {
            eprintln!("cargo-unikraft: waiting for lock on {} (another build of this app is running)", dir.display())
        })
    }

    /// Locks `dir`; `waiting` is called (once) before blocking when the lock is held.
    pub fn acquire_with(dir: &Path, waiting: impl FnOnce(&Path)) -> Result<BuildLock> {
        fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let path = dir.join(".build.lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("open {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                waiting(dir);
                file.lock().with_context(|| format!("lock {}", path.display()))?;
            }
            Err(fs::TryLockError::Error(e)) => return Err(e).with_context(|| format!("lock {}", path.display())),
        }
        Ok(BuildLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn a_second_build_waits_for_the_first_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("target/unikraft/app");
        let first = BuildLock::acquire_with(&app, |_| panic!("nobody holds it yet")).unwrap();
        assert!(first.path().is_file());

        let (said, heard) = mpsc::channel();
        let (got, locked) = mpsc::channel();
        let second = {
            let app = app.clone();
            std::thread::spawn(move || {
                let lock = BuildLock::acquire_with(&app, |dir| said.send(dir.to_path_buf()).unwrap()).unwrap();
                got.send(()).unwrap();
                drop(lock);
            })
        };
        assert_eq!(heard.recv_timeout(Duration::from_secs(10)).unwrap(), app, "the second build says it waits");
        assert!(locked.recv_timeout(Duration::from_millis(300)).is_err(), "the second build waits");
        drop(first);
        locked.recv_timeout(Duration::from_secs(10)).expect("the second build runs once the first is done");
        second.join().unwrap();
        // Free again: no stale lock.
        BuildLock::acquire_with(&app, |_| panic!("released")).unwrap();
    }

    #[test]
    fn hand_edited_files_stop_generation() {
        let dir = std::env::temp_dir().join(format!("xtask-appdir-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let files = kraftfile_gen::GeneratedFiles {
            files: vec![("Kraftfile".into(), "# Generated\n# body-hash: x\nspec\n".into())],
        };
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("Kraftfile"), "hand written\n").unwrap();
        let err = write_app_dir(&dir, &files).unwrap_err().to_string();
        assert!(err.contains("edited by hand"), "{err}");
        assert_eq!(fs::read_to_string(dir.join("Kraftfile")).unwrap(), "hand written\n");
        fs::remove_dir_all(&dir).unwrap();
    }
}
