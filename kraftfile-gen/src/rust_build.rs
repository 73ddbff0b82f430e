//! How the app's Rust side is built: where it is ([`RustBuild`]), what the user asked of
//! cargo ([`CargoOptions`]), and the one cargo command line of every image's Rust archive
//! ([`cargo_staticlib_args`], [`platform_staticlib_args`]), which the generated
//! `Makefile.uk` and `cargo unikraft build` share.

use crate::{target, AppSpec};

/// Where the Rust side of the app is and how the generated `Makefile.uk` builds it. These
/// are facts about this machine's checkout (absolute paths), not metadata, so they are
/// passed in by the caller (the xtask reads them from `cargo metadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RustBuild {
    /// Absolute path of the app's `Cargo.toml`.
    pub manifest_path: String,
    /// The app's library target name (the archive is `lib<lib_name>.a`).
    pub lib_name: String,
    /// Absolute cargo target directory for the staticlib build.
    pub cargo_target_dir: String,
    /// Absolute paths of C files Unikraft's build compiles into the app (rt-unikraft's glue).
    pub glue_sources: Vec<String>,
    /// Set for a plain binary (a `fn main()` bin, or a libtest harness), which cargo links
    /// into an archive with cargo-unikraft as its linker, instead of the staticlib of an
    /// app on rt-unikraft.
    pub linked_bin: Option<LinkedBin>,
    /// The profile and the user's cargo flags every cargo call of the build carries.
    pub cargo: CargoOptions,
}

/// What the user asked of cargo (`cargo unikraft build --profile P --features F --locked`):
/// the profile, and flags given to every cargo command that builds the app, the one in the
/// generated `Makefile.uk` included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CargoOptions {
    /// The cargo profile (`release` unless the user chose another).
    pub profile: String,
    /// Features to enable (`--features`), besides the platform's for an app on rt-unikraft.
    pub features: Vec<String>,
    /// `--all-features` (plain binaries only: it would enable every backend of an app).
    pub all_features: bool,
    /// `--no-default-features` (always given for an app on rt-unikraft).
    pub no_default_features: bool,
    /// `--locked`, `--offline`, `--frozen`, `-v`, `-q`: passed through unchanged.
    pub flags: Vec<String>,
}

impl Default for CargoOptions {
    fn default() -> Self {
        CargoOptions {
            profile: "release".into(),
            features: Vec::new(),
            all_features: false,
            no_default_features: false,
            flags: Vec::new(),
        }
    }
}

impl CargoOptions {
    /// The profile's directory under cargo's target directory (`dev` and `test` build into
    /// `debug`, `bench` into `release`, any other profile into its own name).
    pub fn profile_dir(&self) -> &str {
        profile_dir(&self.profile)
    }

    /// The feature flags as cargo takes them, for a plain binary.
    pub fn feature_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if !self.features.is_empty() {
            args.extend(["--features".to_string(), self.features.join(",")]);
        }
        if self.all_features {
            args.push("--all-features".into());
        }
        if self.no_default_features {
            args.push("--no-default-features".into());
        }
        args
    }

    /// `--release`, or `--profile NAME`.
    pub fn profile_args(&self) -> Vec<String> {
        if self.profile == "release" {
            vec!["--release".into()]
        } else {
            vec!["--profile".into(), self.profile.clone()]
        }
    }
}

/// The directory cargo builds `profile` into.
pub fn profile_dir(profile: &str) -> &str {
    match profile {
        "dev" | "test" => "debug",
        "bench" => "release",
        other => other,
    }
}

/// How a plain binary's archive is made (see cargo-unikraft's `linker` module).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedBin {
    /// Absolute path of the archive Unikraft links.
    pub archive: String,
    /// The environment variable that makes cargo-unikraft act as the linker, and the
    /// arguments after `cargo` that build the archive; `None` when the archive is built
    /// before make runs (test harnesses, whose file names cargo hashes).
    pub cargo: Option<(String, Vec<String>)>,
    /// Archives linked beside the program, built by cargo-unikraft before make runs: the
    /// socket driver of a plain binary with `sockets = true`.
    pub extra_archives: Vec<String>,
}

/// The arguments after `cargo` that build the app's staticlib for Unikraft. The generated
/// `Makefile.uk` and `cargo unikraft build` both use exactly these, so neither undoes the
/// other's build.
///
/// Three settings of the chosen profile are forced because the image depends on them: fat
/// LTO lets the linker see only what the app reaches (a Rust hello image is about half the
/// size without it, since whole std objects are pulled in otherwise), one codegen unit puts
/// rt-unikraft's shims in the same object as its entry (so a `clock_nanosleep` override is
/// always linked), and `panic = "abort"` is what the `_Unwind_*` stubs assume (a profile
/// that asks for `panic = "unwind"` is refused before this, naming the key).
pub fn cargo_staticlib_args(spec: &AppSpec, build: &RustBuild) -> Vec<String> {
    platform_staticlib_args(spec, build, target::Platform::Unikraft, &build.cargo_target_dir)
}

/// [`cargo_staticlib_args`] for `platform` (Unikraft or Solo5), into `target_dir`: the one
/// cargo command line of every image's Rust archive (Solo5's too), so the profile settings
/// above hold for all.
pub fn platform_staticlib_args(
    spec: &AppSpec,
    build: &RustBuild,
    platform: target::Platform,
    target_dir: &str,
) -> Vec<String> {
    // The app's own `unikraft` (or `solo5`) feature selects the backend; `backtrace` in
    // the metadata turns on the real unwinder in rt-unikraft (through the facade).
    let unikraft = platform.feature() == "unikraft";
    let mut features = String::from(platform.feature());
    if unikraft && spec.backtrace {
        features.push_str(",unikernel/backtrace");
    }
    if unikraft {
        // Only an app that asks for a device (or sockets) carries its driver (9pfs is
        // Unikraft's own: no Rust driver).
        for device in spec.devices.iter().filter(|d| ["net", "block"].contains(&d.as_str())) {
            features.push_str(&format!(",unikernel/{device}"));
        }
    }
    if unikraft && spec.sockets {
        features.push_str(",unikernel/sockets");
    }
    // The user's own features go beside the platform's (`--features` is the only feature
    // flag an app on rt-unikraft takes: the platform feature is chosen here).
    for feature in &build.cargo.features {
        features.push(',');
        features.push_str(feature);
    }
    let profile = &build.cargo.profile;
    let mut args: Vec<String> = ["rustc", "--manifest-path", &build.manifest_path, "--lib"].map(String::from).into();
    args.extend(build.cargo.profile_args());
    args.extend(
        ["--no-default-features", "--features", &features, "--crate-type", "staticlib", "--target-dir", target_dir]
            .map(String::from),
    );
    for setting in ["lto=true", "codegen-units=1", "panic='abort'"] {
        args.extend(["--config".to_string(), format!("profile.{profile}.{setting}")]);
    }
    if spec.backtrace && unikraft {
        // Line tables, so the symbolized frames name files and lines. They live in the
        // debug image only; Unikraft strips the bootable one.
        args.extend(["--config".to_string(), format!("profile.{profile}.debug='line-tables-only'")]);
    }
    args.extend(build.cargo.flags.iter().cloned());
    args
}
