//! The hand-written declarations of `unikraft-sys` against the real Unikraft headers.
//!
//! bindgen runs on `wrapper.h` with the compile flags of a real Unikraft build (an app
//! with net and block devices), and every size, field offset and function signature it
//! reports is compared with ours. Runs when such a build exists (`UNIKRAFT_BUILD_DIR`, or
//! one under `target/unikraft/`); otherwise prints a SKIP line.

use core::mem::{offset_of, size_of};
use std::path::{Path, PathBuf};

use unikraft_sys::{uk_blkdev_cap, uk_netdev_info, FUNCTIONS};

include!("../clang_flags.rs");

/// Prints a skip line straight to stderr, so libtest's output capture does not hide it.
fn skip(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIP: {why}");
}

/// Skips `test` for want of a Unikraft build, or, with `UNIKERNEL_REQUIRE_SOURCES=1` (set by CI once
/// it has provisioned the sources), fails it: a provisioning mistake must not pass as green.
fn skip_unprovisioned(test: &str, why: &str) {
    if std::env::var_os("UNIKERNEL_REQUIRE_SOURCES").is_some_and(|v| !v.is_empty() && v != "0") {
        panic!("{test}: sources are required (UNIKERNEL_REQUIRE_SOURCES=1) but {why}");
    }
    skip(&format!("{test}: {why}"));
}

/// A build directory whose flags include uknetdev and ukblkdev.
fn build_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("UNIKRAFT_BUILD_DIR") {
        return Some(PathBuf::from(dir));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?.join("target/unikraft");
    let mut found = None;
    for app in std::fs::read_dir(root).ok()?.flatten() {
        let dir = app.path().join("build-qemu-x86_64");
        if let Ok(flags) = unikraft_clang_flags(&dir) {
            let joined = flags.join(" ");
            if joined.contains("uknetdev/include") && joined.contains("ukblkdev/include") {
                found = Some(dir);
                break;
            }
        }
    }
    found
}

/// The number in `["<label>"][... - N usize]` of bindgen's layout assertions.
fn layout_number(bindings: &str, label: &str) -> Option<usize> {
    let at = bindings.find(&format!("[\"{label}\"]"))?;
    let rest = &bindings[at..];
    let minus = rest.find(" - ")?;
    let digits: String = rest[minus + 3..].chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// `pub fn name(params) -> ret;` in the bindings: parameter count and return type.
fn function(bindings: &str, name: &str) -> Option<(usize, String)> {
    let at = bindings.find(&format!("pub fn {name}("))?;
    let rest = &bindings[at + format!("pub fn {name}(").len()..];
    let close = rest.find(')')?;
    let params = rest[..close].split(',').filter(|p| !p.trim().is_empty()).count();
    let after = &rest[close + 1..rest.find(';')?];
    let ret = after.trim().strip_prefix("->").map(|r| r.trim().to_string()).unwrap_or_default();
    Some((params, ret))
}

/// A struct's name, our size, and our (field, offset) pairs.
type StructLayout = (&'static str, usize, Vec<(&'static str, usize)>);

#[test]
fn hand_written_declarations_match_the_unikraft_headers() {
    let Some(dir) = build_dir() else {
        skip_unprovisioned(
            "hand_written_declarations_match_the_unikraft_headers",
            "there is no Unikraft build with net and block devices (run `cargo xtask kraft-run --example \
             conformance --no-boot`, or set UNIKRAFT_BUILD_DIR)",
        );
        return;
    };
    let flags = unikraft_clang_flags(&dir).expect("build flags");
    let wrapper = Path::new(env!("CARGO_MANIFEST_DIR")).join("wrapper.h");
    let bindings = bindgen::Builder::default()
        .header(wrapper.to_str().unwrap())
        .clang_args(&flags)
        .use_core()
        .generate()
        .expect("bindgen runs on the real headers")
        .to_string();

    let structs: [StructLayout; 2] = [
        (
            "uk_netdev_info",
            size_of::<uk_netdev_info>(),
            vec![
                ("max_rx_queues", offset_of!(uk_netdev_info, max_rx_queues)),
                ("max_tx_queues", offset_of!(uk_netdev_info, max_tx_queues)),
                ("in_queue_pairs", offset_of!(uk_netdev_info, in_queue_pairs)),
                ("max_mtu", offset_of!(uk_netdev_info, max_mtu)),
                ("nb_encap_tx", offset_of!(uk_netdev_info, nb_encap_tx)),
                ("nb_encap_rx", offset_of!(uk_netdev_info, nb_encap_rx)),
                ("ioalign", offset_of!(uk_netdev_info, ioalign)),
                ("features", offset_of!(uk_netdev_info, features)),
            ],
        ),
        (
            "uk_blkdev_cap",
            size_of::<uk_blkdev_cap>(),
            vec![
                ("sectors", offset_of!(uk_blkdev_cap, sectors)),
                ("ssize", offset_of!(uk_blkdev_cap, ssize)),
                ("mode", offset_of!(uk_blkdev_cap, mode)),
                ("max_sectors_per_req", offset_of!(uk_blkdev_cap, max_sectors_per_req)),
                ("ioalign", offset_of!(uk_blkdev_cap, ioalign)),
            ],
        ),
    ];
    for (name, size, fields) in &structs {
        let real = layout_number(&bindings, &format!("Size of {name}"))
            .unwrap_or_else(|| panic!("bindgen reports no size for {name}"));
        assert_eq!(*size, real, "size of {name}: ours {size}, Unikraft's {real}");
        // Every field Unikraft has, we have, at the same offset.
        let prefix = format!("[\"Offset of field: {name}::");
        let mut real_fields = 0;
        for (at, _) in bindings.match_indices(&prefix) {
            let field: String = bindings[at + prefix.len()..].chars().take_while(|c| *c != '"').collect();
            real_fields += 1;
            let real = layout_number(&bindings, &format!("Offset of field: {name}::{field}")).unwrap();
            let ours = fields.iter().find(|(f, _)| *f == field).map(|(_, o)| *o);
            assert_eq!(ours, Some(real), "{name}::{field}: ours {ours:?}, Unikraft's offset {real}");
        }
        assert_eq!(real_fields, fields.len(), "{name} has {real_fields} fields in Unikraft, {} in ours", fields.len());
    }
    for (name, params, ret) in FUNCTIONS {
        let (real_params, real_ret) =
            function(&bindings, name).unwrap_or_else(|| panic!("no function {name} in the headers"));
        assert_eq!((*params, *ret), (real_params, real_ret.as_str()), "signature of {name}");
    }
    assert!(bindings.contains("pub type __nsec = __u64;"), "__nsec is no longer a __u64");
    assert!(bindings.contains("pub type __sector ="), "__sector is missing");
}
