//! `cargo unikraft build`: the app's image for a platform.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::AppArgs;
use crate::pipeline::{self, Devices};
use crate::target::{Target, TARGET_NAMES};

#[derive(clap::Args, Debug, Clone)]
pub struct BuildArgs {
    #[command(flatten)]
    pub app: AppArgs,
    /// Where the image runs (kraft's platform/arch): qemu/x86_64, fc/x86_64, solo5/spt,
    /// solo5/hvt or hosted-musl.
    #[arg(long, value_name = "PLAT", default_value = "qemu/x86_64")]
    pub plat: Target,
    /// Cargo's target triple: only x86_64-unknown-linux-gnu, which every image's Rust is
    /// compiled for (the platform is --plat).
    #[arg(long, value_name = "TRIPLE", value_parser = parse_triple)]
    pub target: Option<String>,
}

/// `cargo unikraft build`: [`BuildArgs`] and how the build reports.
#[derive(clap::Args, Debug, Clone)]
pub struct BuildCommand {
    #[command(flatten)]
    pub build: BuildArgs,
    /// How cargo reports (`json`, `json-render-diagnostics`, ...: its messages on stdout,
    /// then one `unikraft-image` message with the image's path).
    #[arg(long, value_name = "FMT", value_parser = ["human", "short", "json", "json-diagnostic-short", "json-diagnostic-rendered-ansi", "json-render-diagnostics"])]
    pub message_format: Option<String>,
}

/// The one triple `--target` takes; a platform given there points to `--plat`.
fn parse_triple(value: &str) -> Result<String, String> {
    if value == "x86_64-unknown-linux-gnu" {
        Ok(value.to_string())
    } else if TARGET_NAMES.contains(&value) || value.parse::<Target>().is_ok() {
        Err(format!("--target is cargo's target triple; the platform is now given with --plat {value}"))
    } else {
        Err(format!(
            "images are compiled for x86_64-unknown-linux-gnu only; the platform is --plat ({})",
            TARGET_NAMES.join(", ")
        ))
    }
}

/// The message `build --message-format json` ends with, after cargo's own: where the
/// image is (cargo's `compiler-artifact` names the Rust archive, not the bootable image).
#[derive(Serialize)]
struct ImageMessage<'a> {
    reason: &'static str,
    package_id: &'a str,
    plat: String,
    image: &'a Path,
}

/// cargo's last message, once the image is built too.
#[derive(Serialize)]
struct BuildFinished {
    reason: &'static str,
    success: bool,
}

impl BuildCommand {
    /// The JSON `--message-format`, if one was chosen (the human ones are cargo's default).
    fn json_format(&self) -> Option<String> {
        self.message_format.clone().filter(|f| f.starts_with("json"))
    }

    pub fn run(&self) -> Result<u8> {
        let mut selection = self.build.app.selection("release");
        selection.message_format = self.json_format();
        let app = super::CargoFailure::mark(crate::resolve::resolve(&selection))?;
        let built = pipeline::build(&app, self.build.plat, &Devices::default());
        if self.json_format().is_none() {
            println!("{}", built?.display());
            return Ok(0);
        }
        if let Ok(image) = &built {
            let message = ImageMessage {
                reason: "unikraft-image",
                package_id: &app.package.id.repr,
                plat: self.build.plat.to_string(),
                image,
            };
            println!("{}", serde_json::to_string(&message)?);
        }
        println!("{}", serde_json::to_string(&BuildFinished { reason: "build-finished", success: built.is_ok() })?);
        built.map(|_| 0)
    }
}
