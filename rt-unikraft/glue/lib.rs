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
//! [`LINK_WRAPS`] lists the symbols the glue wraps at link time (`--wrap`), beside the C
//! that defines each `__wrap_` function; kraftfile-gen writes them into Makefile.uk.
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

/// A symbol the glue wraps at link time: `-Wl,--wrap=SYMBOL` sends the image's calls to
/// it to the glue's `__wrap_SYMBOL`. The list lives here, beside the C it belongs to;
/// kraftfile-gen writes it into every generated Makefile.uk.
#[derive(Debug, Clone, Copy)]
pub struct LinkWrap {
    /// The wrapped symbol.
    pub symbol: &'static str,
    /// Only images with std's sockets (`sockets = true`) need it.
    pub sockets_only: bool,
    /// Why, one comment line per line (written above the flag).
    pub why: &'static [&'static str],
}

/// Every link-time wrap the glue defines a `__wrap_` function for.
pub const LINK_WRAPS: &[LinkWrap] = &[
    LinkWrap {
        symbol: "exit",
        sockets_only: false,
        why: &[
            "Every exit(code) goes through the glue's __wrap_exit, which carries the code out of",
            "the VM (Unikraft's exit_group drops it).",
        ],
    },
    LinkWrap {
        symbol: "abort",
        sockets_only: false,
        why: &[
            "abort() reports status 134, as SIGABRT on Linux, through the glue's __wrap_abort",
            "(lib-musl's halts the VM as a crash, with no exit status).",
        ],
    },
    LinkWrap {
        symbol: "dlsym",
        sockets_only: false,
        why: &["dlsym finds the libc functions gnu-target crates look up at run time (getrandom)."],
    },
    LinkWrap {
        symbol: "virtqueue_notify_enabled",
        sockets_only: false,
        why: &[
            "Unikraft 0.16.3 decides whether to notify a virtio device as if one buffer had been",
            "added since the last notification, and under VIRTIO_F_EVENT_IDX skips ones the device",
            "waits for; the glue's wrapper always notifies (glue/main.c).",
        ],
    },
    LinkWrap {
        symbol: "uk_syscall_r_connect",
        sockets_only: true,
        why: &[
            "sockets = true: a blocking connect() reports a refused or failed connection as",
            "an error, not as a positive status (rt-unikraft/glue/socket.c, __wrap_uk_syscall_r_connect).",
        ],
    },
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

    /// Every wrap in the list has its `__wrap_` function in the glue, and every `__wrap_`
    /// function the glue defines is in the list (a missing flag would leave it unused).
    #[test]
    fn every_link_wrap_has_its_wrapper_and_every_wrapper_is_listed() {
        let glue: String = FILES.iter().map(|(_, text)| *text).collect();
        for wrap in super::LINK_WRAPS {
            let wrapper = format!("__wrap_{}(", wrap.symbol);
            assert!(glue.contains(&wrapper), "no {wrapper} in the glue");
        }
        for (at, _) in glue.match_indices("__wrap_") {
            let name: String = glue[at + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            assert!(
                super::LINK_WRAPS.iter().any(|w| w.symbol == name),
                "the glue has __wrap_{name}, which LINK_WRAPS does not list"
            );
        }
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
