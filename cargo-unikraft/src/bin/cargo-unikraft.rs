//! `cargo unikraft`: see the library's docs and `cargo unikraft --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Run by rustc as the linker of a plain binary (see the `linker` module).
    if let Some(status) = cargo_unikraft::linker::exit_if_invoked_as_linker("cargo-unikraft") {
        return status;
    }
    match cargo_unikraft::cli::Cli::from_env().run() {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(cargo_unikraft::cli::exit_status(&e))
        }
    }
}
