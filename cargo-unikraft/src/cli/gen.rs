//! `cargo unikraft gen`: the app directory for `kraft build`.

use std::path::PathBuf;

use anyhow::Result;
use kraftfile_gen::generate;

use super::AppArgs;
use crate::appdir::{write_app_dir, BuildLock};

#[derive(clap::Args, Debug, Clone)]
pub struct GenArgs {
    #[command(flatten)]
    pub app: AppArgs,
    /// Where to write the app directory (default: target/unikraft/<name>/app).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl GenArgs {
    pub fn run(&self) -> Result<u8> {
        let app = self.app.resolve()?;
        let dir = self.out.clone().unwrap_or_else(|| app.unikraft_dir().join("app"));
        // Not while a Unikraft build of the app is using the app directory.
        let _lock = BuildLock::acquire(&app.unikraft_dir())?;
        let changed = write_app_dir(&dir, &generate(&app.spec, &app.build)?)?;
        eprintln!(
            "cargo-unikraft: app directory {} {}; build it with `kraft build` there, or `cargo unikraft run`",
            dir.display(),
            if changed { "written" } else { "already up to date" }
        );
        Ok(0)
    }
}
