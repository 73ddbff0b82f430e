//! The image's one layer: a tar of the kernel (and initrd, `/urunc.json`) that is the same
//! bytes on every build of the same files. Every header field that could carry the build
//! machine's state (times, owners, modes, the order of entries) is fixed.

use std::io::Write;

use anyhow::{Context, Result};
use flate2::{Compression, GzBuilder};

/// A file of the layer: its path inside the image (no leading `/`), its mode, its bytes.
pub struct LayerFile {
    pub path: String,
    pub mode: u32,
    pub bytes: Vec<u8>,
}

/// The layer as an uncompressed tar (its digest is the config's `diff_id`) and gzipped
/// (what the manifest points at).
pub struct Layer {
    pub tar: Vec<u8>,
    pub gzip: Vec<u8>,
}

/// Builds the layer from `files`: the parent directories first, then the files, sorted by
/// path; owner root, time 0 (the epoch, as reproducible-builds tools use without a
/// `SOURCE_DATE_EPOCH`).
pub fn build_layer(files: &[LayerFile]) -> Result<Layer> {
    let mut dirs: Vec<String> = Vec::new();
    for file in files {
        let mut prefix = String::new();
        for part in file.path.split('/').rev().skip(1).collect::<Vec<_>>().into_iter().rev() {
            prefix.push_str(part);
            prefix.push('/');
            if !dirs.contains(&prefix) {
                dirs.push(prefix.clone());
            }
        }
    }
    dirs.sort();
    let mut sorted: Vec<&LayerFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));

    let mut tar = tar::Builder::new(Vec::new());
    tar.mode(tar::HeaderMode::Deterministic);
    for dir in &dirs {
        let mut header = header(tar::EntryType::Directory, 0o755, 0);
        tar.append_data(&mut header, dir, std::io::empty()).with_context(|| format!("add {dir} to the layer"))?;
    }
    for file in sorted {
        let mut header = header(tar::EntryType::Regular, file.mode, file.bytes.len() as u64);
        tar.append_data(&mut header, &file.path, file.bytes.as_slice())
            .with_context(|| format!("add {} to the layer", file.path))?;
    }
    let tar = tar.into_inner().context("finish the layer's tar")?;

    // No file name and time 0 in the gzip header, so the compressed bytes depend only on
    // the tar (and the compressor, which Cargo.lock pins).
    let mut gz = GzBuilder::new().mtime(0).write(Vec::new(), Compression::default());
    gz.write_all(&tar).context("compress the layer")?;
    let gzip = gz.finish().context("compress the layer")?;
    Ok(Layer { tar, gzip })
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Vec<LayerFile> {
        vec![
            LayerFile { path: "urunc.json".into(), mode: 0o644, bytes: b"{}".to_vec() },
            LayerFile { path: "unikraft/bin/kernel".into(), mode: 0o755, bytes: vec![0x7f, b'E', b'L', b'F'] },
        ]
    }

    #[test]
    fn the_layer_lists_directories_then_files_in_order() {
        let layer = build_layer(&files()).unwrap();
        let mut archive = tar::Archive::new(layer.tar.as_slice());
        let entries: Vec<(String, u32, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (e.path().unwrap().display().to_string(), h.mode().unwrap(), h.mtime().unwrap())
            })
            .collect();
        assert_eq!(
            entries,
            vec![
                ("unikraft/".to_string(), 0o755, 0),
                ("unikraft/bin/".to_string(), 0o755, 0),
                ("unikraft/bin/kernel".to_string(), 0o755, 0),
                ("urunc.json".to_string(), 0o644, 0),
            ]
        );
    }

    #[test]
    fn the_same_files_give_the_same_bytes_in_any_order() {
        let a = build_layer(&files()).unwrap();
        let mut reversed = files();
        reversed.reverse();
        let b = build_layer(&reversed).unwrap();
        assert_eq!(a.tar, b.tar);
        assert_eq!(a.gzip, b.gzip);
        let c = build_layer(&[LayerFile { path: "urunc.json".into(), mode: 0o644, bytes: b"{ }".to_vec() }]).unwrap();
        assert_ne!(a.gzip, c.gzip);
    }
}
