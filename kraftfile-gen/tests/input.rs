//! Bad input is refused at the door, with an error that names the key (or the path):
//! wrong types, sizes, kconfig values no defconfig can hold, options std needs, and paths
//! make cannot take.

use kraftfile_gen::{check_make_path, generate, AppSpec, MetadataError, RustBuild};
use serde_json::{json, Value};

fn err(table: Value) -> MetadataError {
    AppSpec::from_cargo_metadata("app", &json!({ "unikraft": table })).unwrap_err()
}

fn build() -> RustBuild {
    RustBuild {
        cargo: Default::default(),
        manifest_path: "/src/app/Cargo.toml".to_string(),
        lib_name: "app".to_string(),
        cargo_target_dir: "/src/target/unikraft/cargo".to_string(),
        glue_sources: vec!["/src/rt-unikraft/glue/main.c".to_string()],
        linked_bin: None,
    }
}

#[test]
fn wrong_types_name_the_key() {
    let cases = [
        (json!({"memory": true}), "package.metadata.unikraft.memory: expected a size like \"64M\"", "boolean true"),
        (json!({"memory": 64}), "package.metadata.unikraft.memory: expected", "number 64"),
        (json!({"backtrace": "yes"}), "package.metadata.unikraft.backtrace: expected true or false", "\"yes\""),
        (json!({"targets": "qemu/x86_64"}), "package.metadata.unikraft.targets: expected an array", "string"),
        (json!({"targets": ["qemu/x86_64", 3]}), "package.metadata.unikraft.targets[1]: expected", "number 3"),
        (json!({"kconfig": {"CONFIG_X": true}}), "package.metadata.unikraft.kconfig.CONFIG_X: expected", "boolean"),
        (json!({"kconfig": ["CONFIG_X"]}), "package.metadata.unikraft.kconfig: expected a table", "an array"),
        (json!({"cmdline": "--port=7"}), "package.metadata.unikraft.cmdline: expected an array", "string"),
        (json!({"libraries": {"musl": 1}}), "package.metadata.unikraft.libraries.musl: expected", "number 1"),
        (json!({"devices": [{"net": true}]}), "package.metadata.unikraft.devices[0]: expected", "a table"),
        (json!({"name": ["a"]}), "package.metadata.unikraft.name: expected", "an array"),
        (json!(5), "package.metadata.unikraft: expected a table", "number 5"),
    ];
    for (table, starts, found) in cases {
        let text = err(table.clone()).to_string();
        assert!(text.starts_with(starts), "{table}: {text}");
        assert!(text.contains(found), "{table}: {text}");
    }
    let text = err(json!({"memroy": "64M"})).to_string();
    assert!(text.contains("unknown key `memroy` (did you mean `memory`?)"), "{text}");
}

#[test]
fn memory_is_digits_then_m_or_g_within_the_range() {
    for bad in [
        "0M",
        "1M",
        "3M",
        "+64M",
        "-64M",
        " 64M",
        "64M ",
        "64",
        "64K",
        "64m",
        "1.5G",
        "0x40M",
        "99999G",
        "65G",
        "M",
        "4294967296M",
        "65537M",
        "",
    ] {
        let e = err(json!({ "memory": bad }));
        assert!(matches!(e, MetadataError::BadMemory(_)), "memory {bad:?}: {e:?}");
        assert!(e.to_string().starts_with("package.metadata.unikraft.memory: "), "{e}");
    }
    for (good, mib) in [("4M", 4), ("64M", 64), ("0064M", 64), ("1G", 1024), ("64G", 65536), ("65536M", 65536)] {
        let spec = AppSpec::from_cargo_metadata("app", &json!({"unikraft": {"memory": good}})).unwrap();
        assert_eq!(spec.memory_mib, mib, "memory {good:?}");
    }
}

#[test]
fn kconfig_values_a_defconfig_cannot_hold_are_errors() {
    for (value, why) in [
        ("maybe", "is not \"y\", \"n\", a number"),
        ("yes", "is not \"y\", \"n\", a number"),
        ("m", "no loadable modules"),
        ("y\nCONFIG_LIBUKDEBUG=n", "control character"),
        ("y\r", "control character"),
        ("\"a\0b\"", "control character"),
        ("0x", "not a hex number"),
        ("0xZZ", "not a hex number"),
        ("\"open", "does not close it"),
        ("\"a\"b\"", "unescaped \""),
        ("\"a\\nb\"", "is not \\\\ or \\\""),
        ("", "is not \"y\""),
        ("\"$(shell touch /tmp/x)\"", "variable reference"),
        ("\"a#b\"", "comment"),
    ] {
        let e = err(json!({"kconfig": {"CONFIG_LIBUKDEBUG_PRINTK_INFO": value}}));
        assert!(matches!(e, MetadataError::BadKconfigValue { .. }), "{value:?}: {e:?}");
        let text = e.to_string();
        assert!(text.starts_with("package.metadata.unikraft.kconfig.CONFIG_LIBUKDEBUG_PRINTK_INFO: "), "{text}");
        assert!(text.contains(why), "{value:?}: {text}");
        assert!(!text.contains('\n'), "one line: {text}");
    }
    for good in ["y", "n", "0", "-12", "4096", "0x1000", "0XfF", "\"\"", "\"a b\"", "\"say \\\"hi\\\" \\\\\""] {
        let spec = AppSpec::from_cargo_metadata("app", &json!({"unikraft": {"kconfig": {"CONFIG_LIBFOO": good}}}))
            .unwrap_or_else(|e| panic!("{good:?}: {e}"));
        assert_eq!(spec.kconfig["CONFIG_LIBFOO"], good);
    }
}

#[test]
fn options_the_generator_sets_cannot_be_broken_or_set_twice() {
    // An option std needs, set to anything but y.
    let e = err(json!({"kconfig": {"CONFIG_LIBPOSIX_FUTEX": "n"}}));
    assert!(matches!(e, MetadataError::ReservedKconfig { .. }), "{e:?}");
    assert!(e.to_string().contains("std on Unikraft needs it"), "{e}");
    // An invalid value for it is an error too (before: a warning, and the option unset).
    let e = err(json!({"kconfig": {"CONFIG_LIBPOSIX_FUTEX": "maybe"}}));
    assert!(matches!(e, MetadataError::BadKconfigValue { .. }), "{e:?}");
    // A device's driver.
    let e = err(json!({"devices": ["net"], "kconfig": {"CONFIG_LIBVIRTIO_NET": "n"}}));
    assert!(e.to_string().contains("the net device needs it"), "{e}");
    // Options each defconfig sets from name and targets.
    for name in ["CONFIG_UK_NAME", "CONFIG_PLAT_KVM", "CONFIG_KVM_VMM_QEMU"] {
        let e = err(json!({"kconfig": { name: "y" }}));
        assert!(e.to_string().contains("from `name` and `targets`"), "{e}");
    }
    // Restating what the generator sets is allowed.
    AppSpec::from_cargo_metadata("app", &json!({"unikraft": {"kconfig": {"CONFIG_LIBMUSL": "y"}}})).unwrap();
}

#[test]
fn cmdline_control_characters_are_refused() {
    let e = err(json!({"cmdline": ["--a=1", "--b=2\n--c=3"]}));
    assert!(e.to_string().starts_with("package.metadata.unikraft.cmdline[1]: "), "{e}");
}

#[test]
fn a_target_listed_twice_is_one_target() {
    let spec = AppSpec::from_cargo_metadata(
        "app",
        &json!({"unikraft": {"targets": ["fc/x86_64", "qemu/x86_64", "fc/x86_64"]}}),
    )
    .unwrap();
    assert_eq!(spec.targets, ["fc/x86_64", "qemu/x86_64"]);
}

#[test]
fn paths_make_cannot_take_are_refused_naming_the_path() {
    let spec = AppSpec::from_cargo_metadata("app", &json!(null)).unwrap();
    for bad in ["/src/c#/app", "/src/$HOME/app", "/src/my app", "/src/a:b", "/src/50%", "/src/a,b", "/src/a\\b"] {
        let mut b = build();
        b.manifest_path = format!("{bad}/Cargo.toml");
        let e = generate(&spec, &b).unwrap_err();
        assert_eq!(e.path, b.manifest_path);
        assert!(e.to_string().contains(&format!("{:?}", b.manifest_path)), "{e}");

        let mut b = build();
        b.cargo_target_dir = bad.to_string();
        assert_eq!(generate(&spec, &b).unwrap_err().path, bad);

        let mut b = build();
        b.glue_sources.push(format!("{bad}/main.c"));
        assert!(generate(&spec, &b).is_err(), "{bad}");

        assert!(check_make_path("x", bad).is_err(), "{bad}");
    }
    for good in ["/src/app", "/home/jürgen/c++/app-1.0_x@host", "/tmp/.hidden/a+b"] {
        let mut b = build();
        b.manifest_path = format!("{good}/Cargo.toml");
        b.cargo_target_dir = format!("{good}/target");
        generate(&spec, &b).unwrap_or_else(|e| panic!("{good}: {e}"));
    }
}

/// Unikraft's C code gets `-g2` unless the app picks a debug level itself (`-g3` makes
/// every relink read some 350 MB of macro strings); a level the app picks is the only one.
#[test]
fn the_debug_level_is_g2_unless_the_app_picks_one() {
    let spec = |table: Value| AppSpec::from_cargo_metadata("app", &json!({ "unikraft": table })).unwrap();
    let levels = |spec: &AppSpec| -> Vec<String> {
        spec.kconfig.keys().filter(|k| k.starts_with("CONFIG_DEBUG_SYMBOLS_LVL")).cloned().collect()
    };
    assert_eq!(levels(&spec(json!({}))), ["CONFIG_DEBUG_SYMBOLS_LVL2"]);
    let picked = spec(json!({"kconfig": {"CONFIG_DEBUG_SYMBOLS_LVL3": "y"}}));
    assert_eq!(levels(&picked), ["CONFIG_DEBUG_SYMBOLS_LVL3"]);
    let defconfig = generate(&picked, &build()).unwrap();
    let (_, body) = defconfig.files.iter().find(|(name, _)| name == "defconfig.qemu-x86_64").unwrap();
    assert!(body.contains("CONFIG_DEBUG_SYMBOLS_LVL3=y\n") && !body.contains("LVL2"), "{body}");
}

/// Only what an app asks for is compiled in: each device's driver (`unikernel/net`,
/// `unikernel/block`) and the socket driver come with their metadata, never by default.
#[test]
fn drivers_are_features_of_the_devices_an_app_lists() {
    let features = |table: Value| {
        let spec = AppSpec::from_cargo_metadata("app", &json!({ "unikraft": table })).unwrap();
        let args = kraftfile_gen::cargo_staticlib_args(&spec, &build());
        let at = args.iter().position(|a| a == "--features").unwrap();
        args[at + 1].clone()
    };
    assert_eq!(features(json!({})), "unikraft");
    assert_eq!(features(json!({"devices": ["block"]})), "unikraft,unikernel/block");
    assert_eq!(features(json!({"devices": ["net", "block"]})), "unikraft,unikernel/block,unikernel/net");
    assert_eq!(features(json!({"devices": ["net"], "sockets": true})), "unikraft,unikernel/net,unikernel/sockets");
}

/// The generated linker script (an app without `backtrace = true`) has a header of `/* */`
/// comments; regenerated for another archive it is stale, not edited by hand.
#[test]
fn the_unwind_table_script_is_regenerated_not_taken_for_a_hand_edit() {
    use kraftfile_gen::{check_drift, Drift, NO_UNWIND_TABLES_LDS};
    let spec = AppSpec::from_cargo_metadata("app", &json!({})).unwrap();
    let script = |lib: &str| {
        let files = generate(&spec, &RustBuild { lib_name: lib.to_string(), ..build() }).unwrap();
        files.files.into_iter().find(|(name, _)| name == NO_UNWIND_TABLES_LDS).unwrap().1
    };
    let (old, new) = (script("app"), script("other"));
    assert!(new.contains("*libother.a:*(.eh_frame)"), "{new}");
    assert_eq!(check_drift(&old, &new), Drift::Stale);
    assert_eq!(check_drift(&old.replace("DISCARD", "KEEP"), &new), Drift::HandEdited);
    let with_backtrace = AppSpec::from_cargo_metadata("app", &json!({"unikraft": {"backtrace": true}})).unwrap();
    let files = generate(&with_backtrace, &build()).unwrap();
    assert!(files.files.iter().all(|(name, _)| name != NO_UNWIND_TABLES_LDS), "backtraces need the tables");
}
