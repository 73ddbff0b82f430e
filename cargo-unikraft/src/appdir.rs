//! The generated app directory (Kraftfile, Makefile.uk, Config.uk, defconfigs) that both
//! this tool's build and `kraft build` use.

use std::fs;
use std::path::Path;

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

#[cfg(test)]
mod tests {
    use super::*;

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
