//! `cargo unikraft build`: the app's image for a target.

use anyhow::Result;

use super::AppArgs;
use crate::pipeline::{self, Devices};
use crate::target::Target;

#[derive(clap::Args, Debug, Clone)]
pub struct BuildArgs {
    #[command(flatten)]
    pub app: AppArgs,
    /// What to build for: qemu/x86_64, fc/x86_64, solo5/spt, solo5/hvt or hosted-musl.
    #[arg(long, default_value = "qemu/x86_64")]
    pub target: Target,
    /// Accepted for cargo's sake: images are always built with the release profile.
    #[arg(long)]
    pub release: bool,
}

impl BuildArgs {
    pub fn run(&self) -> Result<u8> {
        let app = self.app.resolve()?;
        let image = pipeline::build(&app, self.target, &Devices::default())?;
        println!("{}", image.display());
        Ok(0)
    }
}
