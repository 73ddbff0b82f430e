//! What Unikraft's `make defconfig` made of the defconfig: every option the app sets in
//! `[package.metadata.unikraft] kconfig` must come out in `.config` as asked.
//!
//! Kconfig drops an option without a word when an option it depends on is off
//! (`CONFIG_LIBPOSIX_MMAP_TEST` without `CONFIG_LIBPOSIX_MMAP`), so an app would build
//! without what it asked for. The names and value types were checked before; this checks
//! the outcome, right after configuring and before anything is compiled.

use std::collections::BTreeMap;
use std::fmt;

use kraftfile_gen::{base_kconfig, AppSpec, DEFAULT_DEBUG_LEVEL, KNOWN_DEVICES};

/// An option the configuration did not take as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unapplied {
    /// `CONFIG_...`.
    pub name: String,
    /// The value the app asked for.
    pub wanted: String,
    /// What `.config` says (`None`: not set).
    pub got: Option<String>,
}

impl fmt::Display for Unapplied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.got {
            None => write!(f, "{} = {:?}: not set in the configuration", self.name, self.wanted),
            Some(got) => write!(f, "{} = {:?}: the configuration has {got}", self.name, self.wanted),
        }
    }
}

/// The options the app itself sets (its `kconfig`, less what the generator sets anyway).
pub fn app_options(spec: &AppSpec) -> BTreeMap<String, String> {
    let mut generated = base_kconfig();
    generated.insert(DEFAULT_DEBUG_LEVEL.to_string(), "y".to_string());
    for (_, options) in KNOWN_DEVICES {
        generated.extend(options.iter().map(|o| (o.to_string(), "y".to_string())));
    }
    spec.kconfig.iter().filter(|(k, v)| generated.get(*k) != Some(v)).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The options of `wanted` that the `.config` text `config` does not hold as asked. `n`
/// is held by an option that is not set; numbers compare by value (`0x10` and `0X10`).
pub fn unapplied(config: &str, wanted: &BTreeMap<String, String>) -> Vec<Unapplied> {
    let mut set: BTreeMap<&str, &str> = BTreeMap::new();
    for line in config.lines() {
        if let Some((name, value)) = line.split_once('=').filter(|(name, _)| name.starts_with("CONFIG_")) {
            set.insert(name, value);
        } else if let Some(name) = line.strip_prefix("# ").and_then(|l| l.strip_suffix(" is not set")) {
            set.insert(name, "n");
        }
    }
    let number = |v: &str| {
        let (negative, v) = v.strip_prefix('-').map_or((false, v), |v| (true, v));
        let n = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
            Some(hex) => i128::from_str_radix(hex, 16).ok()?,
            None => v.parse::<i128>().ok()?,
        };
        Some(if negative { -n } else { n })
    };
    wanted
        .iter()
        .filter_map(|(name, want)| {
            let got = set.get(name.as_str()).copied();
            let held = match got {
                None => want == "n",
                Some(got) => got == want || number(got).is_some_and(|g| number(want) == Some(g)),
            };
            (!held).then(|| Unapplied { name: name.clone(), wanted: want.clone(), got: got.map(str::to_string) })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn options_kconfig_dropped_are_found() {
        let config = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_SIZE=0x1000\nCONFIG_NAME=\"app\"\nCONFIG_N=12\n";
        let ok = wanted(&[
            ("CONFIG_A", "y"),
            ("CONFIG_B", "n"),
            ("CONFIG_ABSENT", "n"),
            ("CONFIG_SIZE", "4096"),
            ("CONFIG_NAME", "\"app\""),
            ("CONFIG_N", "12"),
        ]);
        assert_eq!(unapplied(config, &ok), []);
        let bad = wanted(&[("CONFIG_B", "y"), ("CONFIG_DROPPED", "y"), ("CONFIG_N", "13"), ("CONFIG_NAME", "\"x\"")]);
        let found = unapplied(config, &bad);
        let names: Vec<&str> = found.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["CONFIG_B", "CONFIG_DROPPED", "CONFIG_N", "CONFIG_NAME"]);
        assert_eq!(found[1].to_string(), "CONFIG_DROPPED = \"y\": not set in the configuration");
        assert_eq!(found[0].to_string(), "CONFIG_B = \"y\": the configuration has n");
    }

    #[test]
    fn only_what_the_app_sets_is_its_own() {
        let spec = AppSpec::from_cargo_metadata(
            "app",
            &serde_json::json!({"unikraft": {"devices": ["net"], "kconfig": {"CONFIG_LIBMUSL": "y", "CONFIG_X": "n"}}}),
        )
        .unwrap();
        assert_eq!(app_options(&spec), wanted(&[("CONFIG_X", "n")]));
    }
}
