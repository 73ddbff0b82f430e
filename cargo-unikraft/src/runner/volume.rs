//! Host folders shared with a Unikraft guest over 9P (`cargo unikraft run -v HOST:GUEST`).
//!
//! Each folder is a QEMU `local` fsdev behind a virtio-9p device whose mount tag is `fs<N>`;
//! the guest mounts it at boot from its command line with Unikraft's vfscore automount
//! (`vfs.fstab=fs<N>:GUEST:9pfs:::mkmp`, `mkmp` creating the mount point). An image gets
//! the driver, the 9P filesystem and the command-line mount table from `devices =
//! ["9pfs"]` (kraftfile-gen): its root ramfs is then the fall-back table's entry, which
//! vfscore skips as soon as `vfs.fstab` mounts anything, so the runner passes the ramfs
//! first (`vfs.fstab=none:/:ramfs`), unless a folder is mounted on `/` itself.
//!
//! Read-write, with QEMU's `security_model=none`: the guest's files are the host's, owned
//! by whoever runs QEMU; ownership and mode changes the guest asks for are ignored
//! instead of failing (Unikraft runs everything as root).

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use super::cmdline::quote_arg;

/// What `-v` takes, for errors.
pub const VOLUME_FORMAT: &str = "HOST_DIR:GUEST_DIR (an existing host folder, an absolute guest path)";

/// How many folders a boot takes: vfscore's command-line table holds 16 entries
/// (`CONFIG_LIBVFSCORE_AUTOMOUNT_UP_SIZE`), one of which is the root ramfs.
pub const MAX_VOLUMES: usize = 15;

/// One `-v HOST_DIR:GUEST_DIR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// The host folder, absolute (made so when parsed).
    pub host: PathBuf,
    /// Where the guest sees it: absolute, no `.` or `..`, no trailing `/`.
    pub guest: String,
}

impl FromStr for Volume {
    type Err = String;

    /// `HOST_DIR:GUEST_DIR`, split at the last `:` (a guest path cannot hold one: `:`
    /// separates the fields of a mount-table entry); clap puts the flag's name before the
    /// message.
    fn from_str(spec: &str) -> Result<Self, String> {
        let Some((host, guest)) = spec.rsplit_once(':') else {
            return Err(format!("`{spec}`: a host folder and a guest path are needed; expected {VOLUME_FORMAT}"));
        };
        if host.is_empty() {
            return Err(format!("`{spec}`: the host folder is empty; expected {VOLUME_FORMAT}"));
        }
        let host_path = Path::new(host);
        if !host_path.is_dir() {
            let why = if host_path.exists() { "is not a folder" } else { "does not exist" };
            return Err(format!("`{spec}`: the host folder {host} {why}"));
        }
        let host = std::fs::canonicalize(host_path).map_err(|e| format!("`{spec}`: the host folder {host}: {e}"))?;
        Ok(Volume { host, guest: guest_path(spec, guest)? })
    }
}

/// `guest` as vfscore mounts it, or why it cannot be; `spec` is the whole flag value, for
/// messages.
pub fn guest_path(spec: &str, guest: &str) -> Result<String, String> {
    if !guest.starts_with('/') {
        return Err(format!("`{spec}`: the guest path `{guest}` is not absolute (it starts with /)"));
    }
    if let Some(c) = guest.chars().find(|c| c.is_control() || c.is_whitespace() || *c == '"' || *c == '\\') {
        return Err(format!(
            "`{spec}`: the guest path holds {c:?}, which the kernel command line cannot carry in a mount entry"
        ));
    }
    let mut parts = Vec::new();
    for component in Path::new(guest).components() {
        match component {
            Component::RootDir => {}
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::CurDir | Component::ParentDir | Component::Prefix(_) => {
                return Err(format!("`{spec}`: the guest path `{guest}` holds `.` or `..` (vfscore refuses them)"))
            }
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

impl fmt::Display for Volume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host.display(), self.guest)
    }
}

/// Refuses what one boot cannot take: two folders on one guest path, more than
/// [`MAX_VOLUMES`].
pub fn check(volumes: &[Volume]) -> Result<(), String> {
    if volumes.len() > MAX_VOLUMES {
        return Err(format!(
            "-v/--volume: at most {MAX_VOLUMES} folders (Unikraft's mount table from the command line holds 16 \
             entries, one of them the root), {} given",
            volumes.len()
        ));
    }
    for (i, volume) in volumes.iter().enumerate() {
        if volumes[..i].iter().any(|v| v.guest == volume.guest) {
            return Err(format!("-v/--volume: two folders are given for the guest path {}", volume.guest));
        }
    }
    Ok(())
}

/// The volumes in mount order: a path before the paths under it (so `/data` is mounted
/// before `/data/logs`, which then lands in the shared folder as it would on Linux), each
/// with its mount tag (`fs<N>`, in the order given).
pub fn in_mount_order(volumes: &[Volume]) -> Vec<(String, &Volume)> {
    let mut tagged: Vec<(String, &Volume)> = volumes.iter().enumerate().map(|(i, v)| (format!("fs{i}"), v)).collect();
    tagged.sort_by_key(|(_, v)| if v.guest == "/" { 0 } else { v.guest.matches('/').count() });
    tagged
}

/// The kernel parameters that mount `volumes` (none when there are none): the root ramfs
/// first, unless a folder is the root, then each folder with `mkmp`.
pub fn unikraft_params(volumes: &[Volume]) -> Vec<String> {
    if volumes.is_empty() {
        return Vec::new();
    }
    let mut params = Vec::new();
    if !volumes.iter().any(|v| v.guest == "/") {
        params.push("vfs.fstab=none:/:ramfs".to_string());
    }
    for (tag, volume) in in_mount_order(volumes) {
        params.push(quote_arg(&format!("vfs.fstab={tag}:{}:9pfs:::mkmp", volume.guest)));
    }
    params
}

/// Whether a Unikraft image's `.config` can mount host folders: the virtio-9p driver and
/// the command-line mount table.
pub fn image_takes_volumes(dot_config: &str) -> bool {
    ["CONFIG_LIBVIRTIO_9P=y", "CONFIG_LIB9PFS=y", "CONFIG_LIBVFSCORE_AUTOMOUNT_UP=y"]
        .iter()
        .all(|wanted| dot_config.lines().any(|l| l == *wanted))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(spec: &str) -> Result<Volume, String> {
        spec.parse()
    }

    #[test]
    fn a_spec_is_split_at_the_last_colon_and_normalised() {
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("a:b");
        std::fs::create_dir(&odd).unwrap();
        let volume = parse(&format!("{}:/data/", odd.display())).unwrap();
        assert_eq!(volume.host, std::fs::canonicalize(&odd).unwrap());
        assert_eq!(volume.guest, "/data");
        assert_eq!(parse(&format!("{}://x//y", dir.path().display())).unwrap().guest, "/x/y");
        assert_eq!(parse(&format!("{}:/", dir.path().display())).unwrap().guest, "/");
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let d = dir.path().display();
        for (spec, why) in [
            ("/tmp".to_string(), "a host folder and a guest path are needed"),
            (":/data".to_string(), "the host folder is empty"),
            (format!("{d}/missing:/data"), "does not exist"),
            (format!("{}:/data", file.display()), "is not a folder"),
            (format!("{d}:data"), "is not absolute"),
            (format!("{d}:"), "is not absolute"),
            (format!("{d}:/a/../b"), "`.` or `..`"),
            (format!("{d}:/a b"), "cannot carry"),
        ] {
            let err = parse(&spec).expect_err(&spec);
            assert!(err.contains(why), "{spec}: {err}");
        }
    }

    #[test]
    fn mount_entries_put_the_ramfs_first_and_parents_before_children() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let volumes: Vec<Volume> =
            [format!("{d}:/data/logs"), format!("{d}:/data")].iter().map(|s| s.parse().unwrap()).collect();
        assert_eq!(
            unikraft_params(&volumes),
            ["vfs.fstab=none:/:ramfs", "vfs.fstab=fs1:/data:9pfs:::mkmp", "vfs.fstab=fs0:/data/logs:9pfs:::mkmp"]
        );
        // A folder on the root replaces the ramfs.
        let root: Vec<Volume> = [format!("{d}:/"), format!("{d}:/x")].iter().map(|s| s.parse().unwrap()).collect();
        assert_eq!(unikraft_params(&root), ["vfs.fstab=fs0:/:9pfs:::mkmp", "vfs.fstab=fs1:/x:9pfs:::mkmp"]);
        assert!(unikraft_params(&[]).is_empty());
    }

    /// `-v` is refused for an image whose configuration lacks the driver, the filesystem
    /// or the command-line mount table (an image built without `devices = ["9pfs"]`).
    #[test]
    fn only_an_image_with_the_9p_stack_takes_volumes() {
        let full = "CONFIG_LIBVIRTIO_9P=y\nCONFIG_LIB9PFS=y\nCONFIG_LIBVFSCORE_AUTOMOUNT_UP=y\n";
        assert!(image_takes_volumes(full));
        for missing in ["CONFIG_LIBVIRTIO_9P=y\n", "CONFIG_LIB9PFS=y\n", "CONFIG_LIBVFSCORE_AUTOMOUNT_UP=y\n"] {
            assert!(!image_takes_volumes(&full.replace(missing, "")), "without {missing}");
        }
        assert!(!image_takes_volumes("CONFIG_LIBVFSCORE_AUTOMOUNT_CI_RAMFS=y\n"));
    }

    #[test]
    fn one_path_twice_and_too_many_folders_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let v: Volume = format!("{}:/data", dir.path().display()).parse().unwrap();
        assert!(check(&[v.clone(), v.clone()]).unwrap_err().contains("two folders are given for the guest path /data"));
        let many: Vec<Volume> =
            (0..=MAX_VOLUMES).map(|i| Volume { host: v.host.clone(), guest: format!("/d{i}") }).collect();
        assert!(check(&many).unwrap_err().contains("at most 15 folders"));
        assert!(check(&many[..MAX_VOLUMES]).is_ok());
    }
}
