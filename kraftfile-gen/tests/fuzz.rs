//! Property tests: arbitrary `[package.metadata.unikraft]` tables and arbitrary build paths
//! through kraftfile-gen give a clear one-line error naming the key (or path), or files
//! that are well formed: every defconfig line `CONFIG_NAME=<value a defconfig can hold>`,
//! each option once; a Kraftfile that reads back as the spec; a Makefile.uk whose lines
//! all have one of the shapes the generator writes. Bounded case counts keep it fast.

use std::collections::BTreeSet;

use kraftfile_gen::{check_drift, generate, AppSpec, Drift, GeneratedFiles, RustBuild, KNOWN_KEYS};
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Map, Value};

fn config(cases: u32) -> Config {
    Config { cases, failure_persistence: None, ..Config::default() }
}

/// Strings with the characters that break files: line breaks, quotes, backslashes, make
/// and shell syntax, non-ASCII.
fn nasty_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_]{0,8}",
        "[a-z0-9 \n\r\t\"\\\\#$%:,'=./+@é\u{0}-]{0,12}",
        any::<String>().prop_map(|s| s.chars().take(12).collect()),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        nasty_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(nasty_string(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn strings_from(items: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![4 => prop::sample::select(items).prop_map(str::to_string), 1 => nasty_string()]
}

fn string_array(items: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop::collection::vec(strings_from(items).prop_map(Value::String), 0..4).prop_map(Value::Array)
}

fn kconfig_table() -> impl Strategy<Value = Value> {
    let name = prop_oneof![
        3 => "CONFIG_[A-Z0-9_]{1,10}",
        1 => strings_from(&["CONFIG_LIBMUSL", "CONFIG_UK_NAME", "CONFIG_LIBVIRTIO_NET", "CONFIG_", "LIBFOO"]),
    ];
    let value = strings_from(&[
        "y",
        "n",
        "m",
        "maybe",
        "0",
        "-12",
        "0x1F",
        "0x",
        "\"str\"",
        "\"a\\\"b\"",
        "\"open",
        "",
        "y\nCONFIG_X=n",
        "\"$(shell id)\"",
        "\"a#b\"",
    ]);
    prop::collection::btree_map(name, value, 0..5)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k, Value::String(v))).collect()))
}

/// A value for `key`: usually of the right shape (so generation is reached), sometimes
/// anything at all.
fn value_for(key: &'static str) -> BoxedStrategy<Value> {
    let plausible: BoxedStrategy<Value> = match key {
        "version" => strings_from(&["RELEASE-0.16.3"]).prop_map(Value::String).boxed(),
        "source" => strings_from(&["https://example.invalid/unikraft.git"]).prop_map(Value::String).boxed(),
        "libraries" => prop::collection::btree_map(strings_from(&["musl", "lwip"]), nasty_string(), 0..3)
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k, Value::String(v))).collect()))
            .boxed(),
        "targets" => string_array(&["qemu/x86_64", "fc/x86_64", "xen/arm64"]).boxed(),
        "kconfig" => kconfig_table().boxed(),
        "cmdline" => string_array(&["--port=7", "a b", ""]).boxed(),
        "memory" => prop_oneof![
            "[0-9+-]{0,6}[MGKm]?".prop_map(Value::String),
            strings_from(&["64M", "1G"]).prop_map(Value::String)
        ]
        .boxed(),
        "name" => {
            prop_oneof!["[a-z0-9_]{1,10}", strings_from(&["hello", "Bad-Name", ""])].prop_map(Value::String).boxed()
        }
        "backtrace" => any::<bool>().prop_map(Value::Bool).boxed(),
        "devices" => string_array(&["net", "block", "usb"]).boxed(),
        _ => json_value().boxed(),
    };
    prop_oneof![6 => plausible, 1 => json_value()].boxed()
}

fn table() -> impl Strategy<Value = Value> {
    let keys: Vec<BoxedStrategy<Option<(String, Value)>>> = KNOWN_KEYS
        .iter()
        .map(|&key| prop::option::weighted(0.4, value_for(key).prop_map(move |v| (key.to_string(), v))).boxed())
        .collect();
    let unknown = prop::option::weighted(0.05, (nasty_string(), json_value()));
    (keys, unknown).prop_map(|(known, unknown)| {
        let mut map: Map<String, Value> = known.into_iter().flatten().collect();
        if let Some((k, v)) = unknown {
            map.insert(k, v);
        }
        Value::Object(map)
    })
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

/// A value a defconfig line can hold, checked independently of the generator's own check.
fn defconfig_value_ok(v: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if v == "y" || v == "n" || digits(v.strip_prefix('-').unwrap_or(v)) {
        return true;
    }
    if let Some(hex) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        return !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    // Unikraft's make includes .config: no comment or variable reference in a value.
    if v.contains(['#', '$']) {
        return false;
    }
    let Some(inner) = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else { return false };
    let mut escaped = false;
    for c in inner.chars() {
        match (escaped, c) {
            (_, c) if c.is_control() => return false,
            (true, '"' | '\\') => escaped = false,
            (true, _) => return false,
            (false, '\\') => escaped = true,
            (false, '"') => return false,
            (false, _) => {}
        }
    }
    !escaped
}

fn body(file: &str) -> &str {
    let mut parts = file.splitn(3, '\n');
    let (first, second) = (parts.next().unwrap(), parts.next().unwrap());
    let (first, second) = (first.trim_start_matches("/* "), second.trim_start_matches("/* "));
    assert!(
        first.starts_with("# Generated from Cargo.toml") && second.starts_with("# body-hash: ")
            || first.starts_with("Generated from Cargo.toml") && second.starts_with("body-hash: "),
        "{file}"
    );
    parts.next().unwrap()
}

fn check_files(spec: &AppSpec, files: &GeneratedFiles) {
    for (path, text) in &files.files {
        assert_eq!(check_drift(text, text), Drift::UpToDate);
        assert!(text.ends_with('\n'), "{path}");
        for c in text.chars() {
            assert!(
                !c.is_control() || c == '\n' || (c == '\t' && (path == "Makefile.uk" || path.ends_with(".lds"))),
                "{path}: {c:?}"
            );
        }
        let body = body(text);
        if path.starts_with("defconfig.") {
            let mut names = BTreeSet::new();
            for line in body.lines() {
                let (name, value) = line.split_once('=').unwrap_or_else(|| panic!("{path}: {line:?}"));
                let symbol = name.strip_prefix("CONFIG_").unwrap_or_else(|| panic!("{path}: {line:?}"));
                assert!(
                    !symbol.is_empty()
                        && symbol.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
                    "{path}: {line:?}"
                );
                assert!(defconfig_value_ok(value), "{path}: {line:?}");
                assert!(names.insert(name), "{path}: {name} set twice");
            }
            assert!(body.contains(&format!("CONFIG_UK_NAME=\"{}\"\n", spec.name)), "{body}");
            for key in kraftfile_gen::base_kconfig().keys() {
                assert!(body.contains(&format!("{key}=y\n")), "{path}: {key} missing");
            }
        } else if path == "Kraftfile" {
            let yaml: serde_yaml::Value = serde_yaml::from_str(body).expect("the Kraftfile is YAML");
            assert_eq!(yaml["name"].as_str(), Some(spec.name.as_str()));
            let targets: Vec<&str> =
                yaml["targets"].as_sequence().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
            assert_eq!(targets, spec.targets);
            let cmd: Vec<String> = yaml["cmd"]
                .as_sequence()
                .map(|s| s.iter().map(|a| a.as_str().unwrap().to_string()).collect())
                .unwrap_or_default();
            assert_eq!(cmd, spec.cmdline);
            let kconfig = yaml["unikraft"]["kconfig"].as_mapping().unwrap();
            assert_eq!(kconfig.len(), spec.kconfig.len());
            for (k, v) in &spec.kconfig {
                assert_eq!(kconfig[k.as_str()].as_str(), Some(v.as_str()), "{k}");
            }
        } else if path == "Makefile.uk" {
            let mut after_rule = false;
            for line in body.lines() {
                let shape_ok = line.is_empty()
                    || line.starts_with("# ")
                    || (line.starts_with('\t') && after_rule)
                    || line.starts_with("$(eval $(call addlib,app")
                    || line.contains(" := ")
                    || line.contains(" += ")
                    || line.starts_with(".PHONY: ")
                    || line.ends_with(':')
                    || line.contains("): ");
                assert!(shape_ok, "Makefile.uk line of no known shape: {line:?}");
                assert!(!line.contains('#') || line.starts_with("# "), "a # that starts a comment: {line:?}");
                after_rule = line.ends_with(':') || line.contains("): ");
            }
        } else if path == "Config.uk" {
            assert_eq!(
                body,
                format!(
                    "config APP{}\nbool \"{}: a Rust application\"\ndefault y\n",
                    spec.name.to_uppercase(),
                    spec.name
                )
            );
        } else if path == kraftfile_gen::NO_UNWIND_TABLES_LDS {
            assert!(!spec.backtrace, "{path} with backtrace = true");
            assert!(body.contains("/DISCARD/ : {") && body.ends_with("INSERT BEFORE .eh_frame;\n"), "{body}");
        } else {
            panic!("unexpected file {path}");
        }
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn arbitrary_tables_give_a_clear_error_or_well_formed_files(table in table()) {
        let metadata = serde_json::json!({ "unikraft": table });
        match AppSpec::from_cargo_metadata("fuzz-app", &metadata) {
            Ok(spec) => {
                let files = generate(&spec, &build()).expect("a good build path always generates");
                check_files(&spec, &files);
            }
            Err(e) => {
                let text = e.to_string();
                prop_assert!(text.starts_with("package.metadata.unikraft"), "{}", text);
                prop_assert!(!text.chars().any(char::is_control), "one printable line: {:?}", text);
            }
        }
    }

    #[test]
    fn arbitrary_paths_are_refused_by_name_or_written_as_they_are(
        dir in prop_oneof![
            "/[a-z0-9/._+@-]{1,16}",
            "/[a-z0-9 \n\t\"'\\\\#$%:;,()*?!&|<>`~=é/._+@-]{1,16}",
        ]
    ) {
        let spec = AppSpec::from_cargo_metadata("app", &serde_json::json!(null)).unwrap();
        let mut b = build();
        b.manifest_path = format!("{dir}/Cargo.toml");
        b.cargo_target_dir = format!("{dir}/target");
        b.glue_sources = vec![format!("{dir}/main.c")];
        match generate(&spec, &b) {
            Ok(files) => {
                let (_, makefile) = files.files.iter().find(|(p, _)| p == "Makefile.uk").unwrap();
                prop_assert!(dir.chars().all(kraftfile_gen::make_safe_char));
                let srcs = format!("APPAPP_SRCS-y += {dir}/main.c\n");
                let target_dir = format!("APPAPP_CARGO_TARGET_DIR := {dir}/target\n");
                prop_assert!(makefile.contains(&srcs) && makefile.contains(&target_dir), "{}", makefile);
                check_files(&spec, &files);
            }
            Err(e) => {
                prop_assert!(!dir.chars().all(kraftfile_gen::make_safe_char));
                prop_assert!(e.path.contains(&dir), "{:?} names {:?}", e, dir);
                let quoted = format!("{:?}", e.path);
                prop_assert!(e.to_string().contains(&quoted), "{}", e);
            }
        }
    }
}
