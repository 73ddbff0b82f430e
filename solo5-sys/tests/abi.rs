//! solo5-sys against the real `solo5.h`: bindgen's sizes, offsets, enum values and
//! function arities must equal ours. Runs when a Solo5 tree is provisioned (SOLO5_SRC,
//! or the per-user cache); prints a SKIP line otherwise.

use core::mem::{offset_of, size_of};
use std::path::PathBuf;

use solo5_sys::*;

/// Prints a skip line straight to stderr, so libtest's output capture does not hide it.
fn skip(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIP: {why}");
}

/// Skips `test` for want of a Solo5 tree, or, with `UNIKERNEL_REQUIRE_SOURCES=1` (set by CI once
/// it has provisioned the sources), fails it: a provisioning mistake must not pass as green.
fn skip_unprovisioned(test: &str, why: &str) {
    if std::env::var_os("UNIKERNEL_REQUIRE_SOURCES").is_some_and(|v| !v.is_empty() && v != "0") {
        panic!("{test}: sources are required (UNIKERNEL_REQUIRE_SOURCES=1) but {why}");
    }
    skip(&format!("{test}: {why}"));
}

fn solo5_tree() -> Option<PathBuf> {
    let tree = std::env::var_os("SOLO5_SRC").filter(|v| !v.is_empty()).map(PathBuf::from).or_else(|| {
        let cache = std::env::var_os("UNIKERNEL_CACHE").map(PathBuf::from).or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(|x| PathBuf::from(x).join("unikernel-rs"))
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/unikernel-rs")))
        })?;
        Some(cache.join("solo5/v0.12.1"))
    })?;
    tree.join("include/solo5.h").is_file().then_some(tree)
}

fn layout_number(bindings: &str, label: &str) -> Option<usize> {
    let at = bindings.find(&format!("[\"{label}\"]"))?;
    let rest = &bindings[at..];
    let minus = rest.find(" - ")?;
    rest[minus + 3..].chars().take_while(|c| c.is_ascii_digit()).collect::<String>().parse().ok()
}

fn arity(bindings: &str, name: &str) -> Option<usize> {
    let start = bindings.find(&format!("pub fn {name}("))? + format!("pub fn {name}(").len();
    let rest = &bindings[start..];
    let close = rest.find(')')?;
    Some(rest[..close].split(',').filter(|p| !p.trim().is_empty()).count())
}

/// A struct's name, our size, and our (field, offset) pairs.
type StructLayout = (&'static str, usize, Vec<(&'static str, usize)>);

#[test]
fn declarations_match_solo5_h() {
    let Some(tree) = solo5_tree() else {
        skip_unprovisioned(
            "declarations_match_solo5_h",
            "Solo5 is not provisioned (cargo xtask fetch --solo5-src DIR, or SOLO5_SRC)",
        );
        return;
    };
    let header = tree.join("include/solo5.h");
    let bindings = bindgen::Builder::default()
        .header(header.to_str().unwrap())
        .use_core()
        .generate()
        .expect("bindgen runs on solo5.h")
        .to_string();
    let structs: [StructLayout; 3] = [
        (
            "solo5_start_info",
            size_of::<solo5_start_info>(),
            vec![
                ("cmdline", offset_of!(solo5_start_info, cmdline)),
                ("heap_start", offset_of!(solo5_start_info, heap_start)),
                ("heap_size", offset_of!(solo5_start_info, heap_size)),
            ],
        ),
        (
            "solo5_net_info",
            size_of::<solo5_net_info>(),
            vec![("mac_address", offset_of!(solo5_net_info, mac_address)), ("mtu", offset_of!(solo5_net_info, mtu))],
        ),
        (
            "solo5_block_info",
            size_of::<solo5_block_info>(),
            vec![
                ("capacity", offset_of!(solo5_block_info, capacity)),
                ("block_size", offset_of!(solo5_block_info, block_size)),
            ],
        ),
    ];
    for (name, size, fields) in &structs {
        let real = layout_number(&bindings, &format!("Size of {name}")).unwrap_or_else(|| panic!("no size for {name}"));
        assert_eq!(*size, real, "size of {name}");
        let prefix = format!("[\"Offset of field: {name}::");
        let mut count = 0;
        for (at, _) in bindings.match_indices(&prefix) {
            let field: String = bindings[at + prefix.len()..].chars().take_while(|c| *c != '"').collect();
            count += 1;
            let real = layout_number(&bindings, &format!("Offset of field: {name}::{field}")).unwrap();
            let ours = fields.iter().find(|(f, _)| *f == field).map(|(_, o)| *o);
            assert_eq!(ours, Some(real), "{name}::{field}");
        }
        assert_eq!(count, fields.len(), "{name}: field count");
    }
    for (name, params) in FUNCTIONS {
        assert_eq!(arity(&bindings, name), Some(*params), "arity of {name}");
    }
    for (constant, value) in [
        ("SOLO5_R_OK", SOLO5_R_OK),
        ("SOLO5_R_AGAIN", SOLO5_R_AGAIN),
        ("SOLO5_R_EINVAL", SOLO5_R_EINVAL),
        ("SOLO5_R_EUNSPEC", SOLO5_R_EUNSPEC),
    ] {
        let pattern = format!("pub const solo5_result_t_{constant}: solo5_result_t = {value};");
        assert!(bindings.contains(&pattern), "{constant} is not {value}:\n{}", &bindings[..bindings.len().min(4000)]);
    }
    assert!(bindings.contains("pub type solo5_time_t = u64;"), "solo5_time_t changed");
    assert!(bindings.contains("pub type solo5_handle_t = u64;"), "solo5_handle_t changed");
}
