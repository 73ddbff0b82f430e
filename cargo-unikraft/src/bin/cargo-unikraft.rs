//! `cargo unikraft`: see the library's docs and `cargo unikraft --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    match cargo_unikraft::cli::Cli::from_env().run() {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
