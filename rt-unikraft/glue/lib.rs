//! rt-unikraft's C glue, as text: the one way the host tools reach it.
//!
//! The glue is the C half of the Unikraft backend: `main.c` (Unikraft's `main`, the exit
//! status, the virtio notification wrapper), `hosted.c` (the hosted-musl harness's
//! `main`), the device drivers' C side (`netdev.c`, `blkdev.c`, `socket.c`), their
//! stand-ins for images without a device (`no_*.inc`), the libc shims std needs
//! (`std_shims.inc`, `*dl_find_object*`) and the ABI header `rt_glue.h` between all of
//! them and rt-unikraft's Rust (`src/glue.rs`).
//!
//! The files live in this directory, `rt-unikraft/glue/`, and are owned here:
//!
//! - an app that depends on rt-unikraft compiles the glue of *its* rt-unikraft (the
//!   generated Makefile.uk names that crate's `glue/` directory, found through `cargo
//!   metadata`), so glue and Rust always come from one version;
//! - a plain `fn main()` binary does not depend on rt-unikraft, so cargo-unikraft carries
//!   [`FILES`] (compiled into the tool) and writes them into the app's build directory.
//!
//! [`FILES`] is checked against the directory (every file listed, nothing else) and every
//! `#include "..."` in it names a listed file, so the carried copy is always whole.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// Every glue file, by name, with its text.
pub const FILES: &[(&str, &str)] = &[
    ("main.c", include_str!("main.c")),
    ("std_shims.inc", include_str!("std_shims.inc")),
    ("dl_find_object.inc", include_str!("dl_find_object.inc")),
    ("dl_find_object.h", include_str!("dl_find_object.h")),
    ("hosted_dl_find_object.inc", include_str!("hosted_dl_find_object.inc")),
    ("hosted.c", include_str!("hosted.c")),
    ("no_netdev.inc", include_str!("no_netdev.inc")),
    ("no_blkdev.inc", include_str!("no_blkdev.inc")),
    ("no_socket.inc", include_str!("no_socket.inc")),
    ("netdev.c", include_str!("netdev.c")),
    ("blkdev.c", include_str!("blkdev.c")),
    ("socket.c", include_str!("socket.c")),
    ("rt_glue.h", include_str!("rt_glue.h")),
];

/// The text of the glue file `name` (one of [`FILES`]).
///
/// # Panics
/// When there is no such file: a name is a constant in the caller's code.
pub fn file(name: &str) -> &'static str {
    FILES
        .iter()
        .find_map(|&(n, text)| (n == name).then_some(text))
        .unwrap_or_else(|| panic!("rt-unikraft's glue has no file {name}"))
}

#[cfg(test)]
mod tests {
    use super::FILES;

    /// The list is the directory: a glue file added without listing it would be missing
    /// from plain binaries' builds only, far from here.
    #[test]
    fn every_glue_file_is_listed_and_every_listed_file_exists() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| [".c", ".h", ".inc"].iter().any(|ext| name.ends_with(ext)))
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = FILES.iter().map(|(name, _)| name.to_string()).collect();
        listed.sort();
        assert_eq!(listed, on_disk);
    }

    /// Every `#include "..."` of the glue is listed too: the glue is written to a build
    /// directory of its own, where a forgotten header fails only at a user's build.
    #[test]
    fn the_glue_includes_only_listed_files() {
        for (file, text) in FILES {
            for line in text.lines() {
                let Some(rest) = line.trim().strip_prefix("#include \"") else { continue };
                let included = rest.split('"').next().unwrap();
                assert!(
                    FILES.iter().any(|(name, _)| *name == included),
                    "{file} includes {included}, which is not listed"
                );
            }
        }
    }
}
