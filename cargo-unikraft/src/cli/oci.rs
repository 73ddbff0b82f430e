//! `cargo unikraft oci`: build the app's image and write it as an OCI image layout (and,
//! with `--archive`, an `oci-archive` tar) for urunc and kraftkit. See [`crate::oci`].

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use super::build::BuildArgs;
use crate::oci::{kconfig_features, write_archive, write_layout, ImageSpec, Kind};
use crate::pipeline::{self, Devices};
use crate::runner::guest_env::{self, EnvVar};
use crate::target::Target;

#[derive(clap::Args, Debug, Clone)]
pub struct OciArgs {
    /// The app and the target (qemu/x86_64, fc/x86_64, solo5/spt, solo5/hvt).
    #[command(flatten)]
    pub build: BuildArgs,
    /// The layout's directory (default `target/unikraft/<name>/oci/qemu-x86_64` and
    /// `fc-x86_64`, `target/solo5/<name>/oci/solo5-spt` and `solo5-hvt`); an earlier layout
    /// there is replaced, anything else is refused.
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Also write the layout as an `oci-archive` tar here (for `skopeo copy
    /// oci-archive:FILE ...` or `ctr image import`).
    #[arg(long, value_name = "FILE")]
    pub archive: Option<PathBuf>,
    /// The tag the image is known by in the layout (`org.opencontainers.image.ref.name`).
    #[arg(long, default_value = "latest")]
    pub tag: String,
    /// An initrd to ship at /unikraft/bin/initrd.
    #[arg(long, value_name = "FILE")]
    pub initrd: Option<PathBuf>,
    /// An environment variable for the app: the image config's `Env` (urunc gives it to a
    /// Unikraft guest as `env.vars`); `-e KEY` takes this environment's value. Repeatable.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<EnvVar>,
    /// A guest folder where the runtime mounts a host folder or volume (`docker run -v
    /// HOST:GUEST_DIR`, a pod's `volumeMounts`): the image config's `Volumes`, and urunc is
    /// asked to share the container's root over 9P (`com.urunc.unikernel.mountRootfs`).
    /// qemu/x86_64 only (urunc has no shared folders for Firecracker or Solo5); the image
    /// needs `devices = ["9pfs"]`. Repeatable.
    #[arg(short = 'v', long = "volume", value_name = "GUEST_DIR", value_parser = parse_oci_volume)]
    pub volumes: Vec<String>,
    /// The app's arguments: the image's `Cmd` (after the metadata's `cmdline`).
    #[arg(last = true)]
    pub args: Vec<String>,
}

/// `-v GUEST_DIR`: only the guest side; the host side is chosen where the image runs.
fn parse_oci_volume(spec: &str) -> Result<String, String> {
    if spec.contains(':') {
        return Err(format!(
            "`{spec}`: an image only names the guest folder (GUEST_DIR); the host folder is chosen where it runs \
             (`docker run -v HOST:GUEST_DIR`, a pod's volumeMounts)"
        ));
    }
    let guest = crate::runner::volume::guest_path(spec, spec)?;
    if guest == "/" {
        return Err(format!("`{spec}`: the guest's root is the container's own root under urunc; name a folder in it"));
    }
    Ok(guest)
}

impl OciArgs {
    pub fn run(&self) -> Result<u8> {
        if self.tag.is_empty() || !self.tag.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
            bail!("--tag {:?}: a tag is letters, digits, `.`, `_` and `-`", self.tag);
        }
        if let Some(initrd) = &self.initrd {
            if !initrd.is_file() {
                bail!("--initrd {}: no such file", initrd.display());
            }
        }
        guest_env::check_distinct(&self.env).map_err(|e| anyhow::anyhow!(e))?;
        let target = self.build.plat;
        if !self.env.is_empty() && matches!(target, Target::Solo5(_)) {
            bail!(
                "-e/--env: a Solo5 unikernel has no environment variables; give the setting in the image's arguments"
            );
        }
        if !self.volumes.is_empty() && target != Target::UnikraftQemu {
            bail!(
                "-v/--volume: urunc shares folders with a unikernel over virtio-9p under QEMU only \
                 (--plat qemu/x86_64); it has no shared folders for {target}"
            );
        }
        let app = self.build.app.resolve()?;
        let (image, kind) = match target {
            Target::UnikraftQemu | Target::UnikraftFirecracker => {
                let image = pipeline::build(&app, target, &Devices::default())?;
                let dot_config = image.parent().context("the image is in its build directory")?.join(".config");
                let dot_config = std::fs::read_to_string(&dot_config)
                    .with_context(|| format!("read the image's kconfig {}", dot_config.display()))?;
                if !self.volumes.is_empty() && !crate::runner::volume::image_takes_volumes(&dot_config) {
                    bail!(
                        "-v/--volume: {}'s image cannot mount a shared folder; add \"9pfs\" to `devices` in its \
                         [package.metadata.unikraft]",
                        app.spec.name
                    );
                }
                let capacity = guest_env::unikraft_capacity(&dot_config);
                if self.env.len() > capacity {
                    bail!(
                        "-e/--env: this image takes at most {capacity} variables from its command line \
                         (CONFIG_LIBPOSIX_ENVIRON_LIBPARAM_MAXCOUNT), {} given",
                        self.env.len()
                    );
                }
                let platform = if target == Target::UnikraftQemu { "qemu" } else { "fc" };
                let version = crate::sources::PIN.unikraft_tag.trim_start_matches("RELEASE-").to_string();
                (image, Kind::Unikraft { platform: platform.into(), version, kconfig: kconfig_features(&dot_config) })
            }
            Target::Solo5(tender) => {
                // Built with every declared device: the orchestrator attaches them.
                // (solo5::build holds the app's Solo5 build lock.)
                let tree = crate::solo5::solo5_tree()?;
                (crate::solo5::build(&app, tender.name(), &tree, true)?, Kind::Solo5 { tender: tender.name().into() })
            }
            Target::HostedMusl => bail!("hosted-musl is a test harness, not an image an orchestrator can run"),
        };
        let output = self
            .output
            .clone()
            .unwrap_or_else(|| app.build_dir(target.platform()).join("oci").join(target.to_string().replace('/', "-")));
        let mut cmd = app.spec.cmdline.clone();
        cmd.extend(self.args.iter().cloned());
        let spec = ImageSpec {
            name: app.spec.name.clone(),
            tag: self.tag.clone(),
            kernel: image,
            initrd: self.initrd.clone(),
            cmd,
            env: self.env.iter().map(ToString::to_string).collect(),
            volumes: self.volumes.clone(),
            kind,
        };
        let digest = write_layout(&spec, &output)?;
        eprintln!(
            "cargo-unikraft: wrote the OCI image layout {} (tag {}, manifest {digest})",
            output.display(),
            self.tag
        );
        if let Some(archive) = &self.archive {
            write_archive(&output, archive)?;
            eprintln!("cargo-unikraft: wrote the oci-archive {}", archive.display());
        }
        println!("{}", output.display());
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    fn oci_args(args: &[&str]) -> Result<super::OciArgs, String> {
        let argv = ["cargo-unikraft", "oci"].iter().chain(args);
        match Cli::try_parse_from(argv).map_err(|e| e.to_string())?.command {
            Command::Oci(oci) => Ok(oci),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn volumes_name_guest_folders_only() {
        assert_eq!(oci_args(&["-v", "/data/", "--volume", "/logs"]).unwrap().volumes, ["/data", "/logs"]);
        for (spec, why) in [
            ("/host:/data", "the host folder is chosen where it runs"),
            ("data", "is not absolute"),
            ("/", "name a folder in it"),
        ] {
            let err = oci_args(&["-v", spec]).expect_err(spec);
            assert!(err.contains("--volume") && err.contains(why), "{spec}: {err}");
        }
    }

    /// Refused before anything is built: urunc shares folders under QEMU only.
    #[test]
    fn volumes_on_firecracker_or_solo5_are_refused() {
        for target in ["fc/x86_64", "solo5/spt"] {
            let oci = oci_args(&["--plat", target, "-v", "/data", "--manifest-path", "/nonexistent/Cargo.toml"]);
            let err = oci.unwrap().run().unwrap_err().to_string();
            assert!(err.starts_with("-v/--volume: urunc shares folders with a unikernel over virtio-9p"), "{err}");
        }
    }
}
