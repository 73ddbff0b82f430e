//! `cargo unikraft`: see the library's docs and `cargo unikraft --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Run by rustc as the linker of a plain binary (see the `linker` module).
    if cargo_unikraft::linker::is_linker_invocation() {
        return match cargo_unikraft::linker::run_as_linker(std::env::args_os().skip(1).collect()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cargo-unikraft (as the linker): {e:#}");
                ExitCode::from(1)
            }
        };
    }
    match cargo_unikraft::cli::Cli::from_env().run() {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
