//! Unit tests of the layout writer on a stand-in kernel file (the real images are checked
//! with skopeo, umoci and a boot in `tests/oci.rs`).

use super::*;

fn spec(dir: &Path, kind: Kind) -> ImageSpec {
    let kernel = dir.join("kernel");
    fs::write(&kernel, b"\x7fELF stand-in kernel").unwrap();
    ImageSpec {
        name: "http".into(),
        tag: "latest".into(),
        kernel,
        initrd: None,
        cmd: vec!["--port=8080".into(), "a b".into()],
        env: Vec::new(),
        volumes: Vec::new(),
        kind,
    }
}

fn unikraft() -> Kind {
    Kind::Unikraft {
        platform: "qemu".into(),
        version: "0.16.3".into(),
        kconfig: vec!["CONFIG_LIBUKLIBPARAM=y".into(), "CONFIG_PLAT_KVM=y".into()],
    }
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn blob(layout: &Path, digest: &str) -> serde_json::Value {
    read_json(&layout.join("blobs/sha256").join(digest.strip_prefix("sha256:").unwrap()))
}

#[test]
fn two_builds_write_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = spec(tmp.path(), unikraft());
    let first = write_layout(&spec, &tmp.path().join("a")).unwrap();
    let second = write_layout(&spec, &tmp.path().join("b")).unwrap();
    assert_eq!(first, second);
    let mut files = Vec::new();
    collect_files(&tmp.path().join("a"), &tmp.path().join("a"), &mut files).unwrap();
    assert_eq!(files.len(), 2 + 5, "oci-layout, index.json, a layer, two configs, two manifests: {files:?}");
    for file in files {
        assert_eq!(
            fs::read(tmp.path().join("a").join(&file)).unwrap(),
            fs::read(tmp.path().join("b").join(&file)).unwrap()
        );
    }
    write_archive(&tmp.path().join("a"), &tmp.path().join("a.tar")).unwrap();
    write_archive(&tmp.path().join("b"), &tmp.path().join("b.tar")).unwrap();
    assert_eq!(fs::read(tmp.path().join("a.tar")).unwrap(), fs::read(tmp.path().join("b.tar")).unwrap());
}

#[test]
fn the_index_has_urunc_and_kraftkit_manifests_with_spec_platform_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("img");
    let urunc_digest = write_layout(&spec(tmp.path(), unikraft()), &layout).unwrap();
    let index = read_json(&layout.join("index.json"));
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2);
    assert_eq!(manifests[0]["digest"], urunc_digest.as_str());
    assert_eq!(manifests[0]["platform"], serde_json::json!({"architecture": "amd64", "os": "linux"}));
    assert_eq!(manifests[0]["annotations"]["org.opencontainers.image.ref.name"], "latest");
    let kraftkit = &manifests[1]["platform"];
    assert_eq!(kraftkit["os"], "qemu");
    assert_eq!(kraftkit["architecture"], "x86_64");
    assert_eq!(kraftkit["os.version"], "0.16.3");
    assert_eq!(kraftkit["os.features"][0], "CONFIG_LIBUKLIBPARAM=y");
    assert!(kraftkit.get("os_version").is_none() && kraftkit.get("os_features").is_none());

    let manifest = blob(&layout, &urunc_digest);
    let annotations = &manifest["annotations"];
    assert_eq!(annotations["com.urunc.unikernel.unikernelType"], "unikraft");
    assert_eq!(annotations["com.urunc.unikernel.hypervisor"], "qemu");
    assert_eq!(annotations["com.urunc.unikernel.binary"], UNIKRAFT_KERNEL_PATH);
    assert_eq!(annotations["com.urunc.unikernel.unikernelVersion"], "0.16.3");
    let config = blob(&layout, manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["--port=8080", "a b"]));
    assert_eq!(config["config"]["Labels"], *annotations);
    assert_eq!(config["os"], "linux");

    let kraftkit_manifest = blob(&layout, manifests[1]["digest"].as_str().unwrap());
    assert_eq!(kraftkit_manifest["annotations"]["org.unikraft.kernel.version"], "0.16.3");
    let kraftkit_config = blob(&layout, kraftkit_manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(kraftkit_config["os"], "qemu");
    assert_eq!(kraftkit_config["os.version"], "0.16.3");
    assert_eq!(kraftkit_manifest["layers"], manifest["layers"], "one layer serves both");
}

#[test]
fn the_layer_holds_the_kernel_and_urunc_json_with_base64_values() {
    use std::io::Read;
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("img");
    let urunc_digest = write_layout(&spec(tmp.path(), unikraft()), &layout).unwrap();
    let manifest = blob(&layout, &urunc_digest);
    let layer_digest = manifest["layers"][0]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap();
    let gz = fs::read(layout.join("blobs/sha256").join(layer_digest)).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(gz.as_slice()));
    let mut found = HashMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        found.insert(entry.path().unwrap().display().to_string(), bytes);
    }
    assert_eq!(found["unikraft/bin/kernel"], b"\x7fELF stand-in kernel");
    let urunc: HashMap<String, String> = serde_json::from_slice(&found["urunc.json"]).unwrap();
    let decode =
        |k: &str| String::from_utf8(base64::engine::general_purpose::STANDARD.decode(&urunc[k]).unwrap()).unwrap();
    assert_eq!(decode("com.urunc.unikernel.unikernelType"), "unikraft");
    assert_eq!(decode("com.urunc.unikernel.binary"), UNIKRAFT_KERNEL_PATH);
    assert_eq!(decode("com.urunc.unikernel.cmdline"), r#"--port=8080 "a b""#);
}

#[test]
fn solo5_images_are_urunc_mirage_only() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("img");
    let digest = write_layout(&spec(tmp.path(), Kind::Solo5 { tender: "spt".into() }), &layout).unwrap();
    let index = read_json(&layout.join("index.json"));
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    let annotations = &blob(&layout, &digest)["annotations"];
    assert_eq!(annotations["com.urunc.unikernel.unikernelType"], "mirage");
    assert_eq!(annotations["com.urunc.unikernel.hypervisor"], "spt");
    assert_eq!(annotations["com.urunc.unikernel.binary"], "/unikernel/http.spt");
}

#[test]
fn an_output_that_is_not_a_layout_is_refused_and_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("precious");
    fs::create_dir(&out).unwrap();
    fs::write(out.join("notes.txt"), "keep me").unwrap();
    let err = write_layout(&spec(tmp.path(), unikraft()), &out).unwrap_err();
    assert!(err.to_string().contains("is not an OCI image layout"), "{err}");
    assert_eq!(fs::read_to_string(out.join("notes.txt")).unwrap(), "keep me");
}

#[test]
fn a_missing_kernel_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("img");
    let mut spec = spec(tmp.path(), unikraft());
    write_layout(&spec, &out).unwrap();
    let before = fs::read(out.join("index.json")).unwrap();
    spec.kernel = tmp.path().join("nope");
    let err = write_layout(&spec, &out).unwrap_err();
    assert!(format!("{err:#}").contains("read the kernel"), "{err:#}");
    assert_eq!(fs::read(out.join("index.json")).unwrap(), before);
    assert!(fs::read_dir(tmp.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains(".tmp-")));
}

#[test]
fn kconfig_features_are_the_set_lines_sorted() {
    let dot_config = "#\n# comment\nCONFIG_B=y\n# CONFIG_C is not set\nCONFIG_A=\"x\"\n";
    assert_eq!(kconfig_features(dot_config), vec!["CONFIG_A=\"x\"".to_string(), "CONFIG_B=y".to_string()]);
}

/// The archive is staged in a file created exclusively beside it: a symlink planted at the
/// old predictable staging path (`img.tmp` for `img.tar`) is neither followed nor removed.
#[test]
fn the_archive_is_not_staged_through_a_planted_symlink() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("img");
    write_layout(&spec(tmp.path(), unikraft()), &layout).unwrap();
    let victim = tmp.path().join("victim");
    fs::write(&victim, b"precious").unwrap();
    let archive = tmp.path().join("img.tar");
    let planted = archive.with_extension("tmp");
    std::os::unix::fs::symlink(&victim, &planted).unwrap();

    write_archive(&layout, &archive).unwrap();
    let victim_after = fs::read(&victim).unwrap();
    assert!(victim_after == b"precious", "the archive was written through the symlink ({} bytes)", victim_after.len());
    assert_eq!(fs::read_link(&planted).unwrap(), victim, "the planted symlink was replaced");
    let mut tar = tar::Archive::new(fs::File::open(&archive).unwrap());
    let entries = tar.entries().unwrap().filter(|e| e.is_ok()).count();
    assert_eq!(entries, 2 + 5, "the archive holds the layout's files");
    let names: Vec<String> =
        fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names.len(), 5, "kernel, img, img.tar, img.tmp, victim; no staging file left: {names:?}");
}

/// The layout is staged in a directory created exclusively beside `--output`: a symlink
/// planted at the old predictable staging path (`.img.tmp-<pid>`) is neither followed
/// nor removed and re-created (a race in a shared directory).
#[test]
fn the_layout_is_not_staged_through_a_planted_path() {
    let tmp = tempfile::tempdir().unwrap();
    let victim = tmp.path().join("victim");
    fs::create_dir(&victim).unwrap();
    let planted = tmp.path().join(format!(".img.tmp-{}", std::process::id()));
    std::os::unix::fs::symlink(&victim, &planted).unwrap();

    let layout = tmp.path().join("img");
    write_layout(&spec(tmp.path(), unikraft()), &layout).unwrap();
    assert!(layout.join("oci-layout").is_file());
    assert_eq!(fs::read_link(&planted).ok(), Some(victim.clone()), "the planted symlink was removed");
    assert!(fs::read_dir(&victim).unwrap().next().is_none(), "something was written into the symlink's target");
    let mode = std::os::unix::fs::PermissionsExt::mode(&fs::metadata(&layout).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o755, "the layout is readable like any output directory");
}

/// `com.urunc.unikernel.cmdline` is one line that urunc hands on unchanged (after the `--`
/// of a Unikraft kernel command line; split at spaces into spt arguments joined again by
/// the tender): each argument is quoted so the guest's splitter gives it back whole.
#[test]
fn the_urunc_cmdline_quotes_arguments_the_guest_would_split() {
    let tmp = tempfile::tempdir().unwrap();
    let mut spec = spec(tmp.path(), unikraft());
    spec.cmd = vec!["--greeting=hello world".into(), r#"say "hi"\"#.into(), "it's".into(), "plain".into()];
    let digest = write_layout(&spec, &tmp.path().join("img")).unwrap();
    let annotations = &blob(&tmp.path().join("img"), &digest)["annotations"];
    assert_eq!(annotations["com.urunc.unikernel.cmdline"], r#""--greeting=hello world" "say \"hi\"\\" "it's" plain"#);
}

/// What no command line can carry is refused before anything is written: an empty
/// argument on Unikraft (ukargparse drops `""`), a NUL byte anywhere.
#[test]
fn arguments_a_command_line_cannot_carry_are_refused_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("img");
    let mut spec = spec(tmp.path(), unikraft());
    spec.cmd = vec!["a".into(), String::new()];
    let err = write_layout(&spec, &out).unwrap_err();
    assert!(err.to_string().contains("argument 2 of the command is empty"), "{err}");
    spec.cmd = vec!["a\0b".into()];
    let err = write_layout(&spec, &out).unwrap_err();
    assert!(err.to_string().contains("NUL"), "{err}");
    assert!(!out.exists(), "nothing was written");
    // Solo5's splitter keeps `""` as an empty argument.
    let mut solo5 = spec.clone();
    solo5.kind = Kind::Solo5 { tender: "spt".into() };
    solo5.cmd = vec!["a".into(), String::new()];
    let digest = write_layout(&solo5, &out).unwrap();
    assert_eq!(blob(&out, &digest)["annotations"]["com.urunc.unikernel.cmdline"], r#"a """#);
}

/// `-e` reaches both manifests' configs as `Env` (urunc turns it into `env.vars`).
#[test]
fn the_environment_is_the_configs_env() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("img");
    let mut with_env = spec(tmp.path(), unikraft());
    with_env.env = vec!["GREETING=hi there".into(), "URL=a=b".into()];
    write_layout(&with_env, &layout).unwrap();
    let index = read_json(&layout.join("index.json"));
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2);
    for manifest in manifests {
        let manifest = blob(&layout, manifest["digest"].as_str().unwrap());
        let config = blob(&layout, manifest["config"]["digest"].as_str().unwrap());
        assert_eq!(config["config"]["Env"], serde_json::json!(["GREETING=hi there", "URL=a=b"]), "{config}");
    }
    // Without variables there is no `Env` key at all.
    let plain = tmp.path().join("plain");
    write_layout(&spec(tmp.path(), unikraft()), &plain).unwrap();
    let index = read_json(&plain.join("index.json"));
    let manifest = blob(&plain, index["manifests"][0]["digest"].as_str().unwrap());
    let config = blob(&plain, manifest["config"]["digest"].as_str().unwrap());
    assert!(config["config"].get("Env").is_none(), "{config}");
}

/// `-v GUEST_DIR`: the config declares the volume, and urunc is asked to share the
/// container's root (where it mounts the volumes) over 9P.
#[test]
fn volumes_are_declared_and_ask_urunc_for_the_shared_root() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("img");
    let mut with_volumes = spec(tmp.path(), unikraft());
    with_volumes.volumes = vec!["/data".into()];
    assert!(with_volumes.urunc_keys().contains(&("mountRootfs", "true".to_string())));
    write_layout(&with_volumes, &layout).unwrap();
    let index = read_json(&layout.join("index.json"));
    for manifest in index["manifests"].as_array().unwrap() {
        let manifest = blob(&layout, manifest["digest"].as_str().unwrap());
        let config = blob(&layout, manifest["config"]["digest"].as_str().unwrap());
        assert_eq!(config["config"]["Volumes"], serde_json::json!({ "/data": {} }), "{config}");
    }
    let plain = spec(tmp.path(), unikraft());
    assert!(!plain.urunc_keys().iter().any(|(k, _)| *k == "mountRootfs"));
}
