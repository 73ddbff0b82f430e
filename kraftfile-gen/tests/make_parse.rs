//! The generated `Makefile.uk` read by a real GNU make: the paths it names come back out
//! byte for byte, and its recipe runs cargo with exactly the arguments
//! [`kraftfile_gen::cargo_staticlib_args`] gives (including `--features a,b`, whose comma
//! once split the `$(call verbose_cmd,...)` arguments and dropped half the command).
//!
//! Unikraft's own rules are replaced by stand-ins that keep their shape: `verbose_cmd`
//! expands to its third argument, as Unikraft's does.

use std::fs;
use std::path::Path;
use std::process::Command;

use kraftfile_gen::{cargo_staticlib_args, generate, AppSpec, LinkedBin, RustBuild};
use serde_json::json;

fn make_available() -> bool {
    Command::new("make").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// A stand-in `cargo` that writes its arguments (NUL-separated) and the linker variable
/// to the file `$ARGS_OUT`.
fn fake_cargo(dir: &Path) -> String {
    let script = dir.join("fake-cargo");
    fs::write(
        &script,
        "#!/bin/sh\n{ printf 'env=%s\\0' \"$CARGO_UNIKRAFT_LINKER\"; for a in \"$@\"; do printf '%s\\0' \"$a\"; done; } > \"$ARGS_OUT\"\n",
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&script).status().unwrap();
    script.to_str().unwrap().to_string()
}

/// Writes the Makefile.uk and a wrapper that includes it, runs make on `goal`, and returns
/// (the variables the wrapper wrote, the arguments the fake cargo got).
fn run_make(dir: &Path, makefile_uk: &str, name_upper: &str, goal: &str) -> (Vec<String>, Vec<String>) {
    let app = dir.join("app");
    fs::create_dir_all(&app).unwrap();
    fs::write(app.join("Makefile.uk"), makefile_uk).unwrap();
    let vars = dir.join("vars.out");
    let args = dir.join("args.out");
    let wrapper = format!(
        "addlib =\nverbose_cmd = $(3)\nCC = echo\ninclude {app}/Makefile.uk\n\
         $(file >{vars},$(APP{n}_SRCS-y)|$(UK_ALIBS-y)|$(APP{n}_RUST_ARCHIVE))\n",
        app = app.display(),
        vars = vars.display(),
        n = name_upper,
    );
    fs::write(dir.join("test.mk"), wrapper).unwrap();
    let out = Command::new("make")
        .arg("--no-print-directory")
        .arg("-f")
        .arg(dir.join("test.mk"))
        .arg(format!("CARGO={}", fake_cargo(dir)))
        .arg(goal)
        .env("ARGS_OUT", &args)
        .env_remove("CARGO_UNIKRAFT_LINKER")
        .output()
        .unwrap();
    assert!(out.status.success(), "make failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let vars = fs::read_to_string(&vars).unwrap().trim_end_matches('\n').split('|').map(str::to_string).collect();
    let args = fs::read_to_string(&args).unwrap();
    (vars, args.trim_end_matches('\0').split('\0').map(str::to_string).collect())
}

#[test]
fn make_reads_back_every_path_and_argument() {
    if !make_available() {
        eprintln!("SKIP: make_reads_back_every_path_and_argument: GNU make is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // Every character besides letters and digits that paths may hold, and a non-ASCII one.
    let base = tmp.path().join("c++_x@y-1.0").join("jürgen");
    let base = base.to_str().unwrap();
    let spec = AppSpec::from_cargo_metadata("my-app", &json!({"unikraft": {"backtrace": true}})).unwrap();
    let build = RustBuild {
        cargo: Default::default(),
        manifest_path: format!("{base}/Cargo.toml"),
        lib_name: "my_app".to_string(),
        cargo_target_dir: format!("{base}/target/unikraft/cargo"),
        glue_sources: vec![format!("{base}/glue/main.c"), format!("{base}/glue/net+dev.c")],
        linked_bin: None,
    };
    let files = generate(&spec, &build).unwrap();
    let (_, makefile_uk) = files.files.iter().find(|(p, _)| p == "Makefile.uk").unwrap();
    let archive = format!("{}/release/libmy_app.a", build.cargo_target_dir);
    let (vars, args) = run_make(tmp.path(), makefile_uk, "MY_APP", &archive);
    assert_eq!(vars[0], build.glue_sources.join(" "));
    assert_eq!(vars[1], format!("{archive} -print-file-name=libgcc_eh.a"));
    assert_eq!(vars[2], archive);
    assert_eq!(args[0], "env=");
    assert_eq!(args[1..], cargo_staticlib_args(&spec, &build)[..]);
    assert!(args.contains(&"unikraft,unikernel/backtrace".to_string()), "{args:?}");

    // A plain binary: the linker variable and the arguments after `--`.
    let archive = format!("{base}/target/unikraft/cargo/release/my-app");
    let bin_args: Vec<String> =
        ["rustc", "--bin", "my-app", "--release", "--config", "profile.release.panic='abort'", "--", "-C"]
            .iter()
            .map(|s| s.to_string())
            .chain([format!("linker={base}/bin/cargo-unikraft")])
            .collect();
    let build = RustBuild {
        cargo: Default::default(),
        linked_bin: Some(LinkedBin {
            extra_archives: Vec::new(),
            archive: archive.clone(),
            cargo: Some(("CARGO_UNIKRAFT_LINKER=1".to_string(), bin_args.clone())),
        }),
        ..build
    };
    let files = generate(&spec, &build).unwrap();
    let (_, makefile_uk) = files.files.iter().find(|(p, _)| p == "Makefile.uk").unwrap();
    let (vars, args) = run_make(tmp.path(), makefile_uk, "MY_APP", &archive);
    assert_eq!(vars[2], archive);
    assert_eq!(args[0], "env=1");
    assert_eq!(args[1..], bin_args[..]);
}
