//! The places an app can be built for and run on: the one list of targets, parsed from
//! `--target` (Unikraft's `platform/arch` names, `solo5/<tender>`, `hosted-musl`).

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
    pub fn name(self) -> &'static str {
        match self {
            Tender::Spt => "spt",
            Tender::Hvt => "hvt",
        }
    }
}

/// Every accepted `--target` value, for help and errors.
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
            other => return Err(format!("unknown target `{other}`; targets: {}", TARGET_NAMES.join(", "))),
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
}
