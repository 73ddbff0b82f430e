//! The one vocabulary of where an app runs, for the whole workspace: the [`Target`]s an
//! image is built for and booted on, parsed from `cargo unikraft --plat` (Unikraft's
//! `platform/arch` names as kraft writes them, `solo5/<tender>`, `hosted-musl`), and the
//! [`Platform`] each is built with (its build directory, its cargo feature, and xtask's
//! `--backend`). cargo-unikraft re-exports this module as `cargo_unikraft::target`.

use std::fmt;
use std::str::FromStr;

/// Where an image runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Unikraft for QEMU (`qemu/x86_64`).
    UnikraftQemu,
    /// Unikraft for Firecracker (`fc/x86_64`).
    UnikraftFirecracker,
    /// Solo5 on a tender (`solo5/spt`, `solo5/hvt`).
    Solo5(Tender),
    /// The Unikraft archive and glue linked against the host's musl, run as a process.
    HostedMusl,
}

/// A Solo5 tender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tender {
    /// A seccomp-confined Linux process.
    Spt,
    /// A KVM guest.
    Hvt,
}

impl Tender {
    /// The tender's name, as `solo5-<name>` and `--plat solo5/<name>` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Tender::Spt => "spt",
            Tender::Hvt => "hvt",
        }
    }
}

/// What an app is built with: each platform's build of an app has a directory of its own,
/// `<target dir>/<platform>/<app name>/` (cargo-unikraft's `App::build_dir`), locked by that
/// build alone (cargo-unikraft's `BuildLock`), so a Solo5 or hosted-musl build never waits
/// for a Unikraft build of the same app, nor the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// Unikraft images, for QEMU and Firecracker. The two share the generated app
    /// directory (`app/`), so they share the directory and its lock; each has its own
    /// `build-<plat>-<arch>/` in it.
    Unikraft,
    /// Solo5 unikernels, for every tender.
    Solo5,
    /// The hosted-musl harness's executable.
    HostedMusl,
    /// This project's hosted backend (rt-unix): the app's own cargo build, run as a Linux
    /// process. No [`Target`] builds for it (`cargo run` does); xtask runs examples on it.
    Unix,
}

impl Platform {
    /// The directory under the cargo target directory that holds this platform's builds.
    pub fn dir_name(self) -> &'static str {
        match self {
            Platform::Unikraft => "unikraft",
            Platform::Solo5 => "solo5",
            Platform::HostedMusl => "hosted-musl",
            Platform::Unix => "unix",
        }
    }

    /// The app's cargo feature that selects this platform's backend (`unikraft`, `solo5`,
    /// `unix`); the hosted-musl harness links the Unikraft archive.
    pub fn feature(self) -> &'static str {
        match self {
            Platform::Unikraft | Platform::HostedMusl => "unikraft",
            Platform::Solo5 => "solo5",
            Platform::Unix => "unix",
        }
    }
}

/// Every platform, for help and errors.
pub const PLATFORMS: &[Platform] = &[Platform::Unix, Platform::HostedMusl, Platform::Unikraft, Platform::Solo5];

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.dir_name())
    }
}

impl FromStr for Platform {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PLATFORMS.iter().copied().find(|p| p.dir_name() == s).ok_or_else(|| {
            let names: Vec<&str> = PLATFORMS.iter().map(|p| p.dir_name()).collect();
            format!("unknown platform `{s}`; platforms: {}", names.join(", "))
        })
    }
}

/// The Unikraft targets (`platform/arch`, as in a Kraftfile's `targets`).
pub const UNIKRAFT_TARGETS: &[&str] = &["qemu/x86_64", "fc/x86_64"];

/// Every accepted `--plat` value, for help and errors.
pub const TARGET_NAMES: &[&str] = &["qemu/x86_64", "fc/x86_64", "solo5/spt", "solo5/hvt", "hosted-musl"];

impl Target {
    /// Unikraft's `platform/arch`, for Unikraft targets.
    pub fn unikraft_target(self) -> Option<&'static str> {
        match self {
            Target::UnikraftQemu => Some("qemu/x86_64"),
            Target::UnikraftFirecracker => Some("fc/x86_64"),
            Target::Solo5(_) | Target::HostedMusl => None,
        }
    }
}

impl Target {
    /// The platform whose build directory this target's build uses.
    pub fn platform(self) -> Platform {
        match self {
            Target::UnikraftQemu | Target::UnikraftFirecracker => Platform::Unikraft,
            Target::Solo5(_) => Platform::Solo5,
            Target::HostedMusl => Platform::HostedMusl,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::UnikraftQemu => f.write_str("qemu/x86_64"),
            Target::UnikraftFirecracker => f.write_str("fc/x86_64"),
            Target::Solo5(tender) => write!(f, "solo5/{}", tender.name()),
            Target::HostedMusl => f.write_str("hosted-musl"),
        }
    }
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "qemu/x86_64" => Target::UnikraftQemu,
            "fc/x86_64" => Target::UnikraftFirecracker,
            "solo5/spt" | "spt" => Target::Solo5(Tender::Spt),
            "solo5/hvt" | "hvt" => Target::Solo5(Tender::Hvt),
            "hosted-musl" => Target::HostedMusl,
            other => return Err(format!("unknown platform `{other}`; platforms: {}", TARGET_NAMES.join(", "))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_name_parses_and_prints_back() {
        for name in TARGET_NAMES {
            assert_eq!(name.parse::<Target>().unwrap().to_string(), *name);
        }
        assert!("qemu/arm64".parse::<Target>().unwrap_err().contains("qemu/x86_64, fc/x86_64"));
    }

    #[test]
    fn the_unikraft_targets_are_the_listed_ones() {
        let unikraft: Vec<&str> =
            TARGET_NAMES.iter().filter_map(|n| n.parse::<Target>().unwrap().unikraft_target()).collect();
        assert_eq!(unikraft, UNIKRAFT_TARGETS);
    }

    #[test]
    fn platforms_parse_by_their_directory_names() {
        for platform in PLATFORMS {
            assert_eq!(platform.to_string().parse::<Platform>().unwrap(), *platform);
        }
        assert!("qemu".parse::<Platform>().unwrap_err().contains("unix, hosted-musl, unikraft, solo5"));
        for target in TARGET_NAMES {
            let target: Target = target.parse().unwrap();
            assert_ne!(target.platform(), Platform::Unix, "{target}");
        }
    }
}
