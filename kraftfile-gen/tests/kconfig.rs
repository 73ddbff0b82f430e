//! Kconfig-name validation: on small fixture trees written for these tests, and on the real
//! Unikraft tree when one is provisioned (`UNIKRAFT_SRC`, `UNIKRAFT_LIB_MUSL`).

use std::path::{Path, PathBuf};

use kraftfile_gen::kconfig::{defconfig_names, defconfig_settings, KconfigError, KconfigIndex, SymbolType};

/// Prints a skip line straight to stderr, so libtest's output capture does not hide it.
fn skip(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIP: {why}");
}

/// Skips `test` for want of a Unikraft tree, or, with `UNIKERNEL_REQUIRE_SOURCES=1` (set by CI once
/// it has provisioned the sources), fails it: a provisioning mistake must not pass as green.
fn skip_unprovisioned(test: &str, why: &str) {
    if std::env::var_os("UNIKERNEL_REQUIRE_SOURCES").is_some_and(|v| !v.is_empty() && v != "0") {
        panic!("{test}: sources are required (UNIKERNEL_REQUIRE_SOURCES=1) but {why}");
    }
    skip(&format!("{test}: {why}"));
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn fixture_index() -> KconfigIndex {
    let root = fixtures().join("kconfig");
    KconfigIndex::load(&root.join("core"), &[root.join("lib-extra")]).expect("fixtures parse")
}

#[test]
fn symbols_inside_menus_choices_and_ifs_are_found() {
    let index = fixture_index();
    for symbol in [
        "UK_NAME",
        "ARCH_X86_64",
        "ARCH_ARM_64",
        "PLAT_KVM",
        "KVM_VMM_QEMU",
        "KVM_VMM_FIRECRACKER",
        "LIBUKFOO",
        "LIBUKFOO_BAR",
        "LIBUKFOO_BAR_SIZE",
        "LIBEXTRA",
    ] {
        assert!(index.contains(symbol), "{symbol} missing from {index:?}");
    }
    assert_eq!(index.len(), 10, "{index:?}");
    index.check(["CONFIG_LIBUKFOO_BAR", "CONFIG_KVM_VMM_QEMU", "CONFIG_LIBEXTRA"]).expect("declared names pass");
}

#[test]
fn an_unknown_name_is_rejected_with_the_closest_real_ones() {
    let err = fixture_index().check(["CONFIG_UK_NAME", "CONFIG_FOO_BAR"]).unwrap_err();
    assert_eq!(err.unknown.len(), 1);
    let (name, close) = &err.unknown[0];
    assert_eq!(name, "CONFIG_FOO_BAR");
    assert_eq!(close.first().map(String::as_str), Some("LIBUKFOO_BAR"), "{close:?}");
    assert!(close.len() <= 3);
    let message = err.to_string();
    assert!(message.contains("CONFIG_FOO_BAR: did you mean CONFIG_LIBUKFOO_BAR"), "{message}");
    assert!(message.contains("Cargo.toml"), "{message}");
}

#[test]
fn a_name_like_nothing_gets_no_suggestion() {
    let err = fixture_index().check(["CONFIG_ZZZZZZZZZZQQQQQQ"]).unwrap_err();
    assert!(err.unknown[0].1.is_empty());
    assert!(err.to_string().contains("no similar option"), "{err}");
}

#[test]
fn a_missing_or_empty_root_is_a_clear_error() {
    let missing = fixtures().join("no-such-dir");
    assert!(matches!(KconfigIndex::load(&missing, &[]), Err(KconfigError::MissingRoot(_))));
    let empty = tempfile::tempdir().unwrap();
    let err = KconfigIndex::load(empty.path(), &[]).unwrap_err();
    assert!(matches!(err, KconfigError::NoKconfigFiles(_)));
    assert!(err.to_string().contains("is it a Unikraft tree"), "{err}");
}

#[test]
fn a_malformed_file_is_an_error_naming_it() {
    let err = KconfigIndex::load(&fixtures().join("kconfig-broken"), &[]).unwrap_err();
    match &err {
        KconfigError::Parse { file, .. } => assert!(file.ends_with("kconfig-broken/Config.uk"), "{err}"),
        other => panic!("expected a parse error, got {other}"),
    }
}

#[test]
fn defconfig_names_are_read_from_set_lines_only() {
    let body = "# generated\nCONFIG_A=y\nCONFIG_B=\"x=y\"\n# CONFIG_C is not set\n";
    assert_eq!(defconfig_names(body).collect::<Vec<_>>(), ["CONFIG_A", "CONFIG_B"]);
}

#[test]
fn values_of_the_wrong_type_are_rejected() {
    let mut index = fixture_index();
    index.add_text(Path::new("hex/Config.uk"), "config LIBUKFOO_BASE\n\thex \"Base\"\n\tdefault 0x1000\n").unwrap();
    assert_eq!(index.type_of("UK_NAME"), Some(SymbolType::String));
    assert_eq!(index.type_of("LIBUKFOO_BAR"), Some(SymbolType::Bool));
    assert_eq!(index.type_of("LIBUKFOO_BAR_SIZE"), Some(SymbolType::Int));
    assert_eq!(index.type_of("LIBUKFOO_BASE"), Some(SymbolType::Hex));
    let good =
        "CONFIG_UK_NAME=\"app\"\nCONFIG_LIBUKFOO_BAR=n\nCONFIG_LIBUKFOO_BAR_SIZE=-4\nCONFIG_LIBUKFOO_BASE=0x2000\n";
    index.check_values(defconfig_settings(good)).expect("values of the right types pass");
    // Before: Kconfig warned about each of these and left the option unset.
    let bad = "CONFIG_LIBUKFOO_BAR=12\nCONFIG_LIBUKFOO_BAR_SIZE=y\nCONFIG_LIBUKFOO_BASE=\"x\"\nCONFIG_UK_NAME=0x10\n";
    let err = index.check_values(defconfig_settings(bad)).unwrap_err();
    assert_eq!(err.bad.len(), 4, "{err}");
    let text = err.to_string();
    assert!(text.contains("CONFIG_LIBUKFOO_BAR = \"12\": CONFIG_LIBUKFOO_BAR is a bool option"), "{text}");
    assert!(text.contains("CONFIG_UK_NAME is a string option"), "{text}");
    assert!(text.contains("Cargo.toml"), "{text}");
    // Unknown options are check()'s business, not this one's.
    index.check_values([("CONFIG_NOPE", "maybe")]).unwrap();
}

/// `UNIKRAFT_SRC` / `UNIKRAFT_LIB_MUSL`, else the trees `cargo xtask fetch` put in the
/// per-user cache (same lookup as xtask's `sources` module).
fn real_tree() -> (Option<PathBuf>, Option<PathBuf>) {
    let cache = std::env::var_os("UNIKERNEL_CACHE").map(PathBuf::from).or_else(|| {
        std::env::var_os("XDG_CACHE_HOME")
            .map(|x| PathBuf::from(x).join("unikernel-rs"))
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/unikernel-rs")))
    });
    // A tree that is not there is a skip; one that is there but incomplete is broken, and
    // a broken cache must fail the test rather than pass as a skip.
    let pick = |var: &str, cached: &str, needs: &str| {
        let path = std::env::var_os(var).map(PathBuf::from).or_else(|| cache.as_ref().map(|c| c.join(cached)))?;
        if !path.exists() {
            return None;
        }
        assert!(path.join(needs).is_file(), "{} is provisioned but broken: it has no {needs}", path.display());
        Some(path)
    };
    (
        pick("UNIKRAFT_SRC", "unikraft/RELEASE-0.16.3", "Config.uk"),
        pick("UNIKRAFT_LIB_MUSL", "lib-musl/RELEASE-0.16.3", "Makefile.uk"),
    )
}

#[test]
fn the_real_unikraft_tree_declares_what_the_generator_writes() {
    let (Some(unikraft), Some(musl)) = real_tree() else {
        skip_unprovisioned(
            "the_real_unikraft_tree_declares_what_the_generator_writes",
            "there is no Unikraft tree (run `cargo xtask fetch`, or set UNIKRAFT_SRC and UNIKRAFT_LIB_MUSL)",
        );
        return;
    };
    let index = KconfigIndex::load(&unikraft, &[musl]).expect("the real tree parses");
    assert!(index.len() > 500, "only {} symbols", index.len());
    let base = kraftfile_gen::base_kconfig();
    index.check(base.keys().map(String::as_str)).expect("every base option exists");
    index
        .check([
            "CONFIG_UK_NAME",
            "CONFIG_ARCH_X86_64",
            "CONFIG_PLAT_KVM",
            "CONFIG_KVM_VMM_QEMU",
            "CONFIG_KVM_VMM_FIRECRACKER",
        ])
        .expect("target options exist");
    let err = index.check(["CONFIG_LIBUKDEBUG_PRINTK_INF0"]).unwrap_err();
    assert!(err.unknown[0].1.iter().any(|s| s == "LIBUKDEBUG_PRINTK_INFO"), "{err}");
    // Every option the generator writes takes the value it writes.
    let spec = kraftfile_gen::AppSpec::from_cargo_metadata(
        "app",
        &serde_json::json!({"unikraft": {"devices": ["net", "block", "9pfs"], "targets": ["qemu/x86_64", "fc/x86_64"]}}),
    )
    .unwrap();
    index
        .check(spec.kconfig.keys().map(String::as_str).chain([kraftfile_gen::FC_VIRTIO_TRANSPORT]))
        .expect("every option the devices and an fc target add exists");
    let settings: Vec<(&str, &str)> = spec.kconfig.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    index.check_values(settings).expect("the generated values have the right types");
    assert_eq!(index.type_of("LIBUKDEBUG_PRINTK_INFO"), Some(SymbolType::Bool));
    assert!(index.check_values([("CONFIG_LIBUKDEBUG_PRINTK_INFO", "1")]).is_err());
}
