//! OCI images of a unikernel, for the orchestrators that run them: urunc (containerd and
//! Kubernetes) and kraftkit / Unikraft Cloud (and its containerd runtime, runu).
//!
//! [`write_layout`] writes an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/`) holding one layer with the kernel, and an index with up to two
//! manifests over that layer:
//!
//! * `linux/amd64`, for urunc: containerd pulls and unpacks it like any Linux image, and
//!   urunc (the runtime class) finds the kernel through the `com.urunc.unikernel.*`
//!   annotations. Docker and CRI do not pass image annotations to a runtime, so the same
//!   keys are also in `/urunc.json` at the root of the layer, values base64-encoded, as
//!   urunc reads them. The app's arguments are the config's `Cmd`, its environment the
//!   config's `Env`.
//! * `os` = the Unikraft platform (`qemu`, `fc`), `architecture` = `x86_64`,
//!   `os.version` = the Unikraft version, `os.features` = the image's kconfig, for
//!   kraftkit, which looks for the kernel at `/unikraft/bin/kernel`. Solo5 images have
//!   no such manifest (kraftkit does not run Solo5).
//!
//! oci-spec builds the configs and manifests; the index is written here, because
//! oci-spec 0.10 serialises a descriptor's platform with `os_version`/`os_features` keys
//! where the image-spec says `os.version`/`os.features`. Every document is canonical JSON
//! and the layer is a deterministic tar, so two builds of the same kernel give the same
//! digests.

mod json;
mod layer;

use std::collections::HashMap;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use base64::Engine;
use oci_spec::image::{
    Arch, ConfigBuilder, DescriptorBuilder, ImageConfigurationBuilder, ImageManifestBuilder, MediaType, Os,
    RootFsBuilder, Sha256Digest,
};
use sha2::{Digest as _, Sha256};

use json::canonical_json;
use layer::{build_layer, LayerFile};

/// Where kraftkit and runu look for the kernel (urunc is told through annotations).
pub const UNIKRAFT_KERNEL_PATH: &str = "/unikraft/bin/kernel";
/// Where they look for an initrd.
pub const UNIKRAFT_INITRD_PATH: &str = "/unikraft/bin/initrd";

/// What runs the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A Unikraft image for `platform` (`qemu` or `fc`), built from Unikraft `version`
    /// with `kconfig` (the `CONFIG_X=y` lines of its `.config`).
    Unikraft { platform: String, version: String, kconfig: Vec<String> },
    /// A Solo5 unikernel for `tender` (`spt` or `hvt`); urunc calls this type `mirage`.
    Solo5 { tender: String },
}

/// The image to write.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// The app's name (`org.unikraft.image.name`).
    pub name: String,
    /// The tag the urunc manifest is found by (`org.opencontainers.image.ref.name`).
    pub tag: String,
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    /// The app's arguments (the config's `Cmd`).
    pub cmd: Vec<String>,
    /// The app's environment, `KEY=VALUE` each (the config's `Env`; urunc passes it to a
    /// Unikraft guest as `env.vars`).
    pub env: Vec<String>,
    /// Guest folders the image declares as volumes (the config's `Volumes`): where the
    /// runtime mounts the host's. With any, urunc is asked to share the container's root
    /// (`mountRootfs`), into which it bind-mounts the volumes, over 9P.
    pub volumes: Vec<String>,
    pub kind: Kind,
}

impl ImageSpec {
    fn kernel_path(&self) -> String {
        match &self.kind {
            Kind::Unikraft { .. } => UNIKRAFT_KERNEL_PATH.to_string(),
            Kind::Solo5 { tender } => format!("/unikernel/{}.{tender}", self.name),
        }
    }

    /// The image config's `Cmd` and, when there are any, `Env` and `Volumes` (left out when empty, so
    /// an image without variables has the digests it always had).
    fn config_builder(&self) -> ConfigBuilder {
        let mut builder = ConfigBuilder::default().cmd(self.cmd.clone());
        if !self.env.is_empty() {
            builder = builder.env(self.env.clone());
        }
        if !self.volumes.is_empty() {
            builder = builder.volumes(self.volumes.clone());
        }
        builder
    }

    /// urunc's keys (without the `com.urunc.unikernel.` prefix) and values.
    fn urunc_keys(&self) -> Vec<(&'static str, String)> {
        let mut keys = match &self.kind {
            Kind::Unikraft { platform, version, .. } => vec![
                ("unikernelType", "unikraft".to_string()),
                ("hypervisor", if platform == "fc" { "firecracker".to_string() } else { platform.clone() }),
                ("unikernelVersion", version.clone()),
            ],
            Kind::Solo5 { tender } => vec![("unikernelType", "mirage".to_string()), ("hypervisor", tender.clone())],
        };
        keys.push(("binary", self.kernel_path()));
        if !self.cmd.is_empty() {
            // Older urunc takes the app's command line from here, newer from `Cmd`.
            keys.push(("cmdline", self.urunc_cmdline()));
        }
        if self.initrd.is_some() {
            keys.push(("initrd", UNIKRAFT_INITRD_PATH.to_string()));
        }
        if !self.volumes.is_empty() {
            // urunc (QEMU) then exports the container's root, the volumes bind-mounted
            // into it, over virtio-9p (tag fs0) and mounts it on the guest's `/` with
            // `vfs.fstab=["fs0:/:9pfs:::"]`.
            keys.push(("mountRootfs", "true".to_string()));
        }
        keys
    }

    /// `com.urunc.unikernel.cmdline`: the arguments as one line the guest splits back into
    /// the same arguments. urunc pastes the value unchanged after the `--` of a Unikraft
    /// kernel command line (split by Unikraft's ukargparse), or, for `mirage` (Solo5),
    /// splits it at single spaces into tender arguments that the tender joins again with
    /// single spaces (split by rt-solo5's `split_cmdline`). Both splitters take double
    /// quotes with `\"` and `\\` escapes, so each argument is quoted that way when needed
    /// ([`kernel_command_line`](crate::runner::cmdline) quotes QEMU's `-append` alike).
    fn urunc_cmdline(&self) -> String {
        let quoted: Vec<String> = self.cmd.iter().map(|a| crate::runner::cmdline::quote_arg(a)).collect();
        quoted.join(" ")
    }

    /// Refuses arguments no command line can carry to the app unchanged: a NUL byte (the
    /// kernel command line and urunc's exec end there), and, on Unikraft, an empty
    /// argument (ukargparse gives `""` no argument at all).
    fn check_cmd(&self) -> Result<()> {
        for (i, arg) in self.cmd.iter().enumerate() {
            if arg.contains('\0') {
                bail!(
                    "argument {} of the command ({arg:?}) contains a NUL byte, which no kernel command line can carry",
                    i + 1
                );
            }
            if arg.is_empty() && matches!(self.kind, Kind::Unikraft { .. }) {
                bail!(
                    "argument {} of the command is empty: Unikraft's command-line split drops empty arguments, \
                     so urunc's `com.urunc.unikernel.cmdline` could not carry it; leave it out",
                    i + 1
                );
            }
        }
        Ok(())
    }

    fn urunc_annotations(&self) -> HashMap<String, String> {
        self.urunc_keys().into_iter().map(|(k, v)| (format!("com.urunc.unikernel.{k}"), v)).collect()
    }

    /// `/urunc.json`: the same keys, values base64-encoded.
    fn urunc_json(&self) -> Result<Vec<u8>> {
        let encoded: HashMap<String, String> = self
            .urunc_annotations()
            .into_iter()
            .map(|(k, v)| (k, base64::engine::general_purpose::STANDARD.encode(v)))
            .collect();
        Ok(canonical_json(&encoded)?)
    }
}

/// A content-addressed blob: its digest (hex) and size.
struct Blob {
    hex: String,
    size: u64,
}

/// The blobs of a layout being written.
struct BlobStore {
    dir: PathBuf,
}

impl BlobStore {
    fn put(&self, bytes: &[u8]) -> Result<Blob> {
        let hex = format!("{:x}", Sha256::digest(bytes));
        let path = self.dir.join(&hex);
        fs::write(&path, bytes).with_context(|| format!("write {}", path.display()))?;
        Ok(Blob { hex, size: bytes.len() as u64 })
    }

    fn put_json(&self, value: &impl serde::Serialize) -> Result<Blob> {
        self.put(&canonical_json(value)?)
    }

    /// Stores `config` and a manifest over it and the one `layer`; returns the manifest.
    fn put_manifest(
        &self,
        config: &oci_spec::image::ImageConfiguration,
        layer: &oci_spec::image::Descriptor,
        annotations: HashMap<String, String>,
    ) -> Result<Blob> {
        let config_blob = self.put_json(config)?;
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(descriptor(MediaType::ImageConfig, &config_blob)?)
            .layers(vec![layer.clone()])
            .annotations(annotations)
            .build()?;
        self.put_json(&manifest)
    }
}

fn descriptor(media_type: MediaType, blob: &Blob) -> Result<oci_spec::image::Descriptor> {
    let digest: Sha256Digest = blob.hex.parse().context("a sha256 digest")?;
    Ok(DescriptorBuilder::default().media_type(media_type).digest(digest).size(blob.size).build()?)
}

/// Writes the image layout for `spec` to `out` (replacing an earlier layout there; any
/// other existing content is refused) and returns the digest of `index.json`'s urunc
/// manifest (`sha256:...`).
pub fn write_layout(spec: &ImageSpec, out: &Path) -> Result<String> {
    spec.check_cmd()?;
    if out.exists() && !out.join("oci-layout").is_file() {
        let empty = out.is_dir() && fs::read_dir(out)?.next().is_none();
        if !empty {
            bail!("{} exists and is not an OCI image layout; choose another --output", out.display());
        }
    }
    // Written beside `out` and renamed into place, so a failure leaves `out` as it was.
    // The staging directory has a random name and is created exclusively (mkdtemp), so
    // nothing planted beside the output (in a shared directory) is followed or removed.
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    let name = out.file_name().context("--output has no file name")?.to_string_lossy();
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp-"))
        .tempdir_in(parent)
        .with_context(|| format!("create a staging directory in {}", parent.display()))?;
    // A failure drops `staging`, which removes it.
    let digest = write_layout_into(spec, staging.path())?;
    // mkdtemp makes it 0700; the layout is an ordinary output directory.
    fs::set_permissions(staging.path(), fs::Permissions::from_mode(0o755))?;
    if out.exists() {
        fs::remove_dir_all(out).with_context(|| format!("replace {}", out.display()))?;
    }
    fs::rename(staging.path(), out).with_context(|| format!("move the layout to {}", out.display()))?;
    // Renamed: nothing is left for the guard to remove.
    let _ = staging.keep();
    Ok(digest)
}

fn write_layout_into(spec: &ImageSpec, dir: &Path) -> Result<String> {
    let blobs = BlobStore { dir: dir.join("blobs/sha256") };
    fs::create_dir_all(&blobs.dir).with_context(|| format!("create {}", blobs.dir.display()))?;

    let kernel = fs::read(&spec.kernel).with_context(|| format!("read the kernel {}", spec.kernel.display()))?;
    let mut files = vec![
        LayerFile { path: spec.kernel_path().trim_start_matches('/').to_string(), mode: 0o755, bytes: kernel },
        LayerFile { path: "urunc.json".to_string(), mode: 0o644, bytes: spec.urunc_json()? },
    ];
    if let Some(initrd) = &spec.initrd {
        let bytes = fs::read(initrd).with_context(|| format!("read the initrd {}", initrd.display()))?;
        files.push(LayerFile { path: UNIKRAFT_INITRD_PATH.trim_start_matches('/').to_string(), mode: 0o644, bytes });
    }
    let layer = build_layer(&files)?;
    let diff_id = format!("sha256:{:x}", Sha256::digest(&layer.tar));
    let layer_blob = blobs.put(&layer.gzip)?;
    let layer_descriptor = descriptor(MediaType::ImageLayerGzip, &layer_blob)?;

    let mut index_entries = Vec::new();

    // urunc's manifest: an ordinary linux/amd64 image.
    let urunc_labels = spec.urunc_annotations();
    let config = ImageConfigurationBuilder::default()
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .config(spec.config_builder().labels(urunc_labels.clone()).build()?)
        .rootfs(RootFsBuilder::default().typ("layers").diff_ids(vec![diff_id.clone()]).build()?)
        .build()?;
    let urunc_manifest = blobs.put_manifest(&config, &layer_descriptor, urunc_labels)?;
    index_entries.push(serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{}", urunc_manifest.hex),
        "size": urunc_manifest.size,
        "platform": {"architecture": "amd64", "os": "linux"},
        "annotations": {"org.opencontainers.image.ref.name": spec.tag},
    }));

    // kraftkit's manifest: the Unikraft platform as the OS.
    if let Kind::Unikraft { platform, version, kconfig } = &spec.kind {
        let annotations: HashMap<String, String> = [
            ("org.unikraft.image.name".to_string(), spec.name.clone()),
            ("org.unikraft.kernel.version".to_string(), version.clone()),
        ]
        .into();
        let config = ImageConfigurationBuilder::default()
            .architecture(Arch::Other("x86_64".into()))
            .os(Os::Other(platform.clone()))
            .os_version(version.clone())
            .os_features(kconfig.clone())
            .config(spec.config_builder().build()?)
            .rootfs(RootFsBuilder::default().typ("layers").diff_ids(vec![diff_id]).build()?)
            .build()?;
        let blob = blobs.put_manifest(&config, &layer_descriptor, annotations.clone())?;
        index_entries.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{}", blob.hex),
            "size": blob.size,
            "platform": {"architecture": "x86_64", "os": platform, "os.version": version, "os.features": kconfig},
            "annotations": annotations,
        }));
    }

    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": index_entries,
    });
    fs::write(dir.join("index.json"), canonical_json(&index)?)?;
    fs::write(dir.join("oci-layout"), canonical_json(&serde_json::json!({"imageLayoutVersion": "1.0.0"}))?)?;
    Ok(format!("sha256:{}", urunc_manifest.hex))
}

/// Writes `layout` (a directory [`write_layout`] made) as an `oci-archive` tar: the
/// layout's files, deterministic like the layer.
pub fn write_archive(layout: &Path, archive: &Path) -> Result<()> {
    let mut paths = Vec::new();
    collect_files(layout, layout, &mut paths)?;
    paths.sort();
    let mut tar = tar::Builder::new(Vec::new());
    for relative in &paths {
        let bytes = fs::read(layout.join(relative))?;
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_size(bytes.len() as u64);
        header.set_mtime(0);
        tar.append_data(&mut header, relative, bytes.as_slice())?;
    }
    let bytes = tar.into_inner()?;
    // Staged in a file created exclusively with a random name beside the archive (never
    // through a symlink planted there), then renamed over it: a reader sees the old
    // archive or the new one, and a failure removes the staging file.
    let parent = archive.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut staging = tempfile::Builder::new()
        .prefix(".oci-archive.tmp-")
        .tempfile_in(parent)
        .with_context(|| format!("create a staging file in {}", parent.display()))?;
    staging.write_all(&bytes).with_context(|| format!("write {}", staging.path().display()))?;
    staging.as_file().set_permissions(fs::Permissions::from_mode(0o644))?;
    staging.persist(archive).with_context(|| format!("write {}", archive.display()))?;
    Ok(())
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(root, &path, out)?;
        } else {
            out.push(path.strip_prefix(root).expect("under the root").to_path_buf());
        }
    }
    Ok(())
}

/// The `CONFIG_X=y` (and `=value`) lines of a Unikraft `.config`, sorted.
pub fn kconfig_features(dot_config: &str) -> Vec<String> {
    let mut features: Vec<String> =
        dot_config.lines().filter(|l| l.starts_with("CONFIG_")).map(str::to_string).collect();
    features.sort();
    features
}

#[cfg(test)]
mod tests;
