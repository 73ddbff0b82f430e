//! Snapshot tests: the generated files for each example and for edge cases.

use kraftfile_gen::{check_drift, generate, AppSpec, Drift, MetadataError, RustBuild};
use serde_json::json;

/// Paths as the xtask would pass them for a checkout at `/src`.
fn build_of(package: &str) -> RustBuild {
    let dir = if package == "conformance" { package.to_string() } else { format!("examples/{package}") };
    RustBuild {
        cargo: Default::default(),
        manifest_path: format!("/src/{dir}/Cargo.toml"),
        lib_name: package.replace('-', "_"),
        linked_bin: None,
        cargo_target_dir: "/src/target/unikraft/cargo".to_string(),
        glue_sources: vec!["/src/rt-unikraft/glue/main.c".to_string(), "/src/rt-unikraft/glue/netdev.c".to_string()],
    }
}

fn files_of(package: &str, metadata: serde_json::Value) -> String {
    let spec = AppSpec::from_cargo_metadata(package, &metadata).unwrap();
    generate(&spec, &build_of(package))
        .unwrap()
        .files
        .iter()
        .map(|(path, body)| format!("==> {path} <==\n{body}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn hello_with_no_metadata_gets_the_defaults() {
    insta::assert_snapshot!(files_of("hello", json!(null)));
}

#[test]
fn udp_echo_with_two_targets_kconfig_and_cmdline() {
    insta::assert_snapshot!(files_of(
        "udp-echo",
        json!({"unikraft": {
            "targets": ["qemu/x86_64", "fc/x86_64"],
            "memory": "32M",
            "cmdline": ["--port=7"],
            "kconfig": {"CONFIG_LIBUKNETDEV": "y"},
        }})
    ));
}

#[test]
fn backtrace_links_gcc_s_unwinder_and_turns_on_the_feature() {
    insta::assert_snapshot!(files_of("hello-std", json!({ "unikraft": { "backtrace": true } })));
}

#[test]
fn sockets_add_the_socket_layer_and_wrap_connect() {
    insta::assert_snapshot!(files_of("std-echo", json!({ "unikraft": { "devices": ["net"], "sockets": true } })));
}

#[test]
fn sockets_without_a_net_device_are_refused() {
    let e = AppSpec::from_cargo_metadata("app", &json!({ "unikraft": { "sockets": true } })).unwrap_err();
    assert_eq!(e, MetadataError::SocketsWithoutNet);
    assert!(e.to_string().starts_with("package.metadata.unikraft.sockets: "), "{e}");
    assert!(e.to_string().contains("devices = [\"net\"]"), "{e}");
    let e = AppSpec::from_cargo_metadata("app", &json!({ "unikraft": { "sockets": "yes" } })).unwrap_err();
    assert!(e.to_string().contains("sockets: expected true or false"), "{e}");
    // Nobody can turn what the socket layer needs off behind its back.
    let e = AppSpec::from_cargo_metadata(
        "app",
        &json!({ "unikraft": { "devices": ["net"], "sockets": true, "kconfig": {"CONFIG_LIBPOSIX_SOCKET": "n"} } }),
    )
    .unwrap_err();
    assert!(e.to_string().contains("`sockets = true` needs it"), "{e}");
    // Off (or absent): none of it.
    let spec =
        AppSpec::from_cargo_metadata("app", &json!({ "unikraft": { "devices": ["net"], "sockets": false } })).unwrap();
    assert!(!spec.sockets && !spec.kconfig.contains_key("CONFIG_LIBPOSIX_SOCKET"));
}

#[test]
fn generation_is_deterministic() {
    let meta = json!({"unikraft": {"kconfig": {"CONFIG_B": "y", "CONFIG_A": "n"}}});
    assert_eq!(files_of("http", meta.clone()), files_of("http", meta));
}

#[test]
fn bad_metadata_is_a_clear_error() {
    let err = |m| AppSpec::from_cargo_metadata("app", &json!({ "unikraft": m })).unwrap_err();
    assert!(matches!(err(json!({"targets": ["xen/arm64"]})), MetadataError::UnknownTarget(t) if t == "xen/arm64"));
    assert!(matches!(err(json!({"kconfig": {"LIBFOO": "y"}})), MetadataError::BadKconfigName(_)));
    for bad in ["0M", "1M", "3M", "+64M", "-64M", " 64M", "64", "64K", "99999G", "65G", "M", "4294967296M"] {
        assert!(matches!(err(json!({ "memory": bad })), MetadataError::BadMemory(_)), "memory {bad:?}");
    }
    for (good, mib) in [("4M", 4), ("64M", 64), ("1G", 1024), ("64G", 65536)] {
        let spec = AppSpec::from_cargo_metadata("app", &json!({"unikraft": {"memory": good}})).unwrap();
        assert_eq!(spec.memory_mib, mib, "memory {good:?}");
    }
    assert!(matches!(err(json!({"memroy": "64M"})), MetadataError::Malformed(e) if e.contains("memroy")));
    assert!(matches!(err(json!({"name": "Bad-Name"})), MetadataError::BadName(_)));
    let text = err(json!({"targets": ["xen/arm64"]})).to_string();
    assert!(text.contains("known targets: qemu/x86_64, fc/x86_64"), "{text}");
}

#[test]
fn drift_is_detected_not_overwritten() {
    let spec = AppSpec::from_cargo_metadata("hello", &json!(null)).unwrap();
    let now = generate(&spec, &build_of("hello")).unwrap();
    let (_, kraftfile) = now.files.iter().find(|(p, _)| p == "Kraftfile").unwrap();
    assert_eq!(check_drift(kraftfile, kraftfile), Drift::UpToDate);

    let edited = kraftfile.replace("v0.6", "v0.5");
    assert_eq!(check_drift(&edited, kraftfile), Drift::HandEdited);
    assert_eq!(check_drift("name: hand-written\n", kraftfile), Drift::HandEdited);

    let stale_spec = AppSpec::from_cargo_metadata("hello", &json!({"unikraft": {"cmdline": ["--x=1"]}})).unwrap();
    let stale = generate(&stale_spec, &build_of("hello")).unwrap();
    let (_, stale_kraftfile) = stale.files.iter().find(|(p, _)| p == "Kraftfile").unwrap();
    assert_eq!(check_drift(stale_kraftfile, kraftfile), Drift::Stale);
}

#[test]
fn a_plain_bin_links_the_archive_its_linker_wrote() {
    let spec = AppSpec::from_cargo_metadata("plain", &json!(null)).unwrap();
    let mut build = build_of("plain");
    build.glue_sources = vec!["/src/target/unikraft/plain/glue/main.c".to_string()];
    build.linked_bin = Some(kraftfile_gen::LinkedBin {
        extra_archives: Vec::new(),
        archive: "/src/target/unikraft/cargo/release/plain".to_string(),
        cargo: Some((
            "CARGO_UNIKRAFT_LINKER=1".to_string(),
            ["rustc", "--bin", "plain", "--release", "--", "-C", "linker=/bin/cargo-unikraft"]
                .map(String::from)
                .to_vec(),
        )),
    });
    let files = generate(&spec, &build).unwrap();
    let (_, makefile) = files.files.iter().find(|(p, _)| p == "Makefile.uk").unwrap();
    insta::assert_snapshot!(makefile);
}
