//! What each device adds to the generated configuration: `9pfs` (host folders) moves the
//! root ramfs to the fall-back mount table and adds the 9P stack, and only for the apps
//! that ask for it; an `fc/x86_64` defconfig with devices gets the virtio-mmio transport.

use kraftfile_gen::{generate, AppSpec, MetadataError, RustBuild, FC_VIRTIO_TRANSPORT};
use serde_json::json;

fn spec(metadata: serde_json::Value) -> AppSpec {
    AppSpec::from_cargo_metadata("app", &json!({ "unikraft": metadata })).unwrap()
}

fn defconfig(spec: &AppSpec, target: &str) -> String {
    let build = RustBuild {
        cargo: Default::default(),
        manifest_path: "/src/app/Cargo.toml".into(),
        lib_name: "app".into(),
        linked_bin: None,
        cargo_target_dir: "/src/target".into(),
        glue_sources: Vec::new(),
    };
    let name = format!("defconfig.{}", target.replace('/', "-"));
    generate(spec, &build).unwrap().files.into_iter().find(|(path, _)| *path == name).unwrap().1
}

const NINEP: &[&str] = &["CONFIG_LIBVIRTIO_9P", "CONFIG_LIB9PFS", "CONFIG_LIBUK9P", "CONFIG_LIBVFSCORE_AUTOMOUNT_UP"];

#[test]
fn host_folders_are_only_in_the_images_that_ask_for_them() {
    let plain = spec(json!({}));
    for option in NINEP {
        assert!(!plain.kconfig.contains_key(*option), "{option} is in every image");
    }
    assert_eq!(plain.kconfig["CONFIG_LIBVFSCORE_AUTOMOUNT_CI_RAMFS"], "y");

    let shared = spec(json!({ "devices": ["9pfs"] }));
    for option in NINEP {
        assert_eq!(shared.kconfig[*option], "y", "{option}");
    }
    // The root ramfs comes from the fall-back table, so `vfs.fstab` can mount 9P on `/`.
    assert!(!shared.kconfig.contains_key("CONFIG_LIBVFSCORE_AUTOMOUNT_CI"));
    assert!(!shared.kconfig.contains_key("CONFIG_LIBVFSCORE_AUTOMOUNT_CI_RAMFS"));
    assert_eq!(shared.kconfig["CONFIG_LIBVFSCORE_AUTOMOUNT_FB0_MP"], "\"/\"");
    assert_eq!(shared.kconfig["CONFIG_LIBVFSCORE_AUTOMOUNT_FB0_DRIVER"], "\"ramfs\"");
    assert!(defconfig(&shared, "qemu/x86_64").contains("\nCONFIG_LIBVFSCORE_AUTOMOUNT_FB0_MP=\"/\"\n"));
}

#[test]
fn the_generated_mount_table_cannot_be_overridden() {
    let err = AppSpec::from_cargo_metadata(
        "app",
        &json!({ "unikraft": { "devices": ["9pfs"], "kconfig": { "CONFIG_LIBVFSCORE_AUTOMOUNT_FB0_MP": "\"/x\"" } } }),
    )
    .unwrap_err();
    assert!(
        matches!(&err, MetadataError::ReservedKconfig { name, .. } if name == "CONFIG_LIBVFSCORE_AUTOMOUNT_FB0_MP"),
        "{err}"
    );
    assert!(err.to_string().contains("the 9pfs device"), "{err}");
}

#[test]
fn firecracker_devices_get_the_virtio_mmio_transport() {
    let targets = json!(["qemu/x86_64", "fc/x86_64"]);
    let with_devices = spec(json!({ "devices": ["net", "block"], "targets": targets }));
    let line = format!("\n{FC_VIRTIO_TRANSPORT}=y\n");
    assert!(defconfig(&with_devices, "fc/x86_64").contains(&line));
    assert!(!defconfig(&with_devices, "qemu/x86_64").contains(&line), "QEMU's devices are on PCI");
    let without = spec(json!({ "targets": targets }));
    assert!(!defconfig(&without, "fc/x86_64").contains(&line), "no device, no transport");
}
