//! End-to-end tests of the Unikraft build path: real Unikraft builds, real QEMU boots.
//!
//! They need the pinned sources (`cargo xtask fetch`, see docs/unikraft.md) and QEMU. When
//! those are missing each test prints a line starting `SKIP:` and returns. A first build
//! takes a minute or two per build directory; later runs reuse `target/unikraft`.
//!
//! The tests share build directories, so they take a lock and run one at a time.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

mod common;

use common::unikraft::{sources_or_skip, sources_or_skip_in, which, workspace_root};
use common::{is_root, show, skip, XTASK};

static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn kraft_run_boots_hello_with_its_args_and_exit_code() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if sources_or_skip("kraft_run_boots_hello_with_its_args_and_exit_code").is_none() {
        return;
    }
    let out = Command::new(XTASK)
        .args(["kraft-run", "--example", "hello", "--", "a", "b", "--exit=3"])
        .output()
        .expect("run xtask kraft-run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Hello from a unikernel! (backend: unikraft)"), "{}", show(&out));
    assert!(stdout.contains("boot args: a b --exit=3"), "{}", show(&out));
    assert!(stdout.contains("goodbye (exit 3)"), "{}", show(&out));
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));

    // Exit code 0 is distinguishable from "no code reported".
    let out = Command::new(XTASK).args(["kraft-run", "--example", "hello"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}

/// Exit statuses never lie: every status byte comes back exactly (the ones QEMU's exit
/// status cannot carry travel on the console), a nonzero code never reads as success,
/// and QEMU failing on its own is an error, not "the app exited 0".
#[test]
fn kraft_run_exit_statuses_are_exact_and_a_qemu_failure_is_not_success() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if sources_or_skip("kraft_run_exit_statuses_are_exact_and_a_qemu_failure_is_not_success").is_none() {
        return;
    }
    // Codes outside 0..=255 are 255 on every backend (examples.rs, solo5.rs: the same table).
    for (arg, want) in [
        ("--exit=125", 125),
        ("--exit=126", 126),
        ("--exit=128", 128),
        ("--exit=200", 200),
        ("--exit=255", 255),
        ("--exit=256", 255),
        ("--exit=-1", 255),
        ("--exit=-2", 255),
        ("--exit=300", 255),
        ("--services-exit=-1", 255),
        ("--services-exit=256", 255),
    ] {
        let out = Command::new(XTASK).args(["kraft-run", "--example", "hello", "--", arg]).output().unwrap();
        assert_eq!(out.status.code(), Some(want), "{arg}:\n{}", show(&out));
    }
    let missing = std::env::temp_dir().join(format!("no-such-disk-{}.img", std::process::id()));
    let out = Command::new(XTASK).args(["kraft-run", "--example", "hello", "--disk"]).arg(&missing).output().unwrap();
    assert_ne!(out.status.code(), Some(0), "QEMU could not open the disk, yet success:\n{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("QEMU failed"), "{}", show(&out));
}

#[test]
fn an_app_only_change_only_relinks() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if sources_or_skip("an_app_only_change_only_relinks").is_none() {
        return;
    }
    // A first (possibly full) build, then touch the app and build again.
    let build = || Command::new(XTASK).args(["kraft-run", "--example", "hello", "--no-boot"]).output().unwrap();
    let out = build();
    assert!(out.status.success(), "{}", show(&out));
    let log = workspace_root().join("target/unikraft/hello/build-qemu-x86_64/make.log");
    let before = std::fs::read_to_string(&log).unwrap().len();
    let lib = workspace_root().join("examples/hello/src/lib.rs");
    let file = std::fs::File::options().write(true).open(&lib).unwrap();
    file.set_modified(std::time::SystemTime::now()).unwrap();
    drop(file);
    let out = build();
    assert!(out.status.success(), "{}", show(&out));
    let text = std::fs::read_to_string(&log).unwrap();
    let rebuild = &text[before..];
    assert!(rebuild.contains("  LD "), "the changed archive was not linked:\n{rebuild}");
    assert!(!rebuild.contains("  CC "), "Unikraft recompiled C after an app-only change:\n{rebuild}");
}

/// What kraft does with a Kraftfile, done by hand: a defconfig from its kconfig and
/// target, then make's defconfig, prepare and build. No xtask step builds anything: the
/// generated Makefile.uk has to run cargo itself.
#[test]
fn kraft_build_path_builds_and_boots_without_xtask() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(sources) = sources_or_skip("kraft_build_path_builds_and_boots_without_xtask") else { return };
    let work = workspace_root().join("target/unikraft/kraft-path");
    let app_dir = work.join("app");
    let build_dir = work.join("build");
    let _ = std::fs::remove_dir_all(&app_dir);
    let out = Command::new(XTASK).args(["kraft-gen", "--example", "hello", "--out"]).arg(&app_dir).output().unwrap();
    assert!(out.status.success(), "{}", show(&out));

    // The Kraftfile is the only input, as for kraft.
    let kraftfile: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(app_dir.join("Kraftfile")).unwrap()).unwrap();
    assert_eq!(kraftfile["spec"].as_str(), Some("v0.6"));
    let name = kraftfile["name"].as_str().unwrap();
    let target = kraftfile["targets"][0].as_str().unwrap();
    assert_eq!(target, "qemu/x86_64");
    let mut defconfig =
        format!("CONFIG_UK_NAME=\"{name}\"\nCONFIG_PLAT_KVM=y\nCONFIG_KVM_VMM_QEMU=y\nCONFIG_ARCH_X86_64=y\n");
    for (key, value) in kraftfile["unikraft"]["kconfig"].as_mapping().unwrap() {
        defconfig.push_str(&format!("{}={}\n", key.as_str().unwrap(), value.as_str().unwrap()));
    }
    std::fs::create_dir_all(build_dir.join("libmusl")).unwrap();
    std::fs::write(work.join("defconfig"), defconfig).unwrap();
    std::fs::copy(&sources.musl_tarball, build_dir.join("libmusl/musl-1.2.3.tar.gz")).unwrap();

    // Remove the archive so only the Makefile.uk's cargo step can bring it back.
    let makefile = std::fs::read_to_string(app_dir.join("Makefile.uk")).unwrap();
    let target_dir = makefile.lines().find_map(|l| l.strip_prefix("APPHELLO_CARGO_TARGET_DIR := ")).unwrap();
    let archive = Path::new(target_dir).join("release/libhello.a");
    let _ = std::fs::remove_file(&archive);

    let make = |goals: &[&str]| {
        let out = Command::new("make")
            .arg("--no-print-directory")
            .arg("-C")
            .arg(&sources.unikraft)
            .arg(format!("A={}", app_dir.display()))
            .arg(format!("L={}", sources.lib_musl.display()))
            .arg(format!("O={}", build_dir.display()))
            .arg(format!("C={}", build_dir.join(".config").display()))
            .args(goals)
            .env_remove("CARGO")
            .output()
            .unwrap();
        assert!(out.status.success(), "make {goals:?} failed:\n{}", show(&out));
        out
    };
    make(&[&format!("UK_DEFCONFIG={}", work.join("defconfig").display()), "defconfig"]);
    make(&["prepare"]);
    let out = make(&["-j2"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("CARGO"), "make did not run cargo:\n{}", show(&out));
    assert!(archive.is_file(), "the Makefile.uk's cargo step did not produce {}", archive.display());

    let image = build_dir.join(format!("{name}_qemu-x86_64"));
    let out = Command::new("qemu-system-x86_64")
        .args(["-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot"])
        .args(["-accel", "tcg", "-cpu", "max", "-m", "64M", "-kernel"])
        .arg(&image)
        .args(["-append", "kraft path --exit=5", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("boot args: kraft path --exit=5"), "{}", show(&out));
    // rt-unikraft writes code + 1 to the exit port (0 would be QEMU's own failure status).
    assert_eq!(out.status.code(), Some(((5 + 1) << 1) | 1), "{}", show(&out));
}

/// The fc/x86_64 image builds; it boots only where a firecracker binary exists.
#[test]
fn firecracker_image_builds() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if sources_or_skip("firecracker_image_builds").is_none() {
        return;
    }
    let out = Command::new(XTASK)
        .args(["kraft-run", "--example", "http", "--plat", "fc/x86_64", "--no-boot"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let image = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(image.ends_with("http_fc-x86_64") && image.is_file(), "{}", show(&out));
    if which("firecracker").is_none() {
        skip("booting the fc/x86_64 image: no firecracker binary on PATH");
    }
}

/// A throwaway app crate outside the workspace, with `metadata` as its
/// `[package.metadata.unikraft]` table body.
fn scratch_app(dir: &Path, metadata: &str) -> PathBuf {
    scratch_app_with(dir, metadata, "#![no_std]\nunikernel::main!(run);\nfn run() -> i32 { 0 }\n")
}

/// [`scratch_app`] with `lib_rs` as its code.
fn scratch_app_with(dir: &Path, metadata: &str, lib_rs: &str) -> PathBuf {
    let root = workspace_root();
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"scratch\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [lib]\npath = \"src/lib.rs\"\ntest = false\n\n\
             [features]\ndefault = [\"unix\"]\nunix = [\"unikernel/unix\"]\nunikraft = [\"unikernel/unikraft\"]\n\n\
             [dependencies]\nunikernel = {{ path = \"{}\" }}\n\n\
             [package.metadata.unikraft]\n{metadata}\n\n[workspace]\n",
            root.join("unikernel").display()
        ),
    )
    .unwrap();
    fs::write(dir.join("src/lib.rs"), lib_rs).unwrap();
    // The workspace's lock file keeps the scratch crate on the same dependency versions.
    fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    dir.join("Cargo.toml")
}

#[test]
fn an_app_asking_for_another_unikraft_version_is_refused_up_front() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = scratch_app(tmp.path(), "version = \"RELEASE-0.17.0\"");
    let out = Command::new(XTASK)
        .args(["kraft-run", "--manifest-path"])
        .arg(&manifest)
        .env("UNIKERNEL_CACHE", tmp.path().join("empty-cache"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("RELEASE-0.17.0") && err.contains("pinned RELEASE-0.16.3"), "{err}");
    assert!(!tmp.path().join("target/unikraft").exists(), "a refused app generated files");
}

#[test]
fn an_unknown_kconfig_name_fails_before_any_build_with_suggestions() {
    if sources_or_skip("an_unknown_kconfig_name_fails_before_any_build_with_suggestions").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let manifest =
        scratch_app(tmp.path(), "kconfig = { CONFIG_FOO_BAR = \"y\", CONFIG_LIBUKDEBUG_PRINTK_INF0 = \"y\" }");
    let out = Command::new(XTASK).args(["kraft-run", "--manifest-path"]).arg(&manifest).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown kconfig options"), "{err}");
    assert!(err.contains("CONFIG_FOO_BAR: did you mean"), "{err}");
    assert!(err.contains("CONFIG_LIBUKDEBUG_PRINTK_INF0: did you mean CONFIG_LIBUKDEBUG_PRINTK_INFO"), "{err}");
    assert!(!tmp.path().join("target/unikraft/cargo").exists(), "cargo ran before the check");
    assert!(!tmp.path().join("target/unikraft/scratch/build-qemu-x86_64").exists(), "make ran before the check");
}

/// A kconfig value Kconfig would only warn about (leaving the option unset, even one std
/// needs) stops the build before cargo or make runs, naming the option.
#[test]
fn a_kconfig_value_kconfig_would_drop_fails_before_any_build() {
    if sources_or_skip("a_kconfig_value_kconfig_would_drop_fails_before_any_build").is_none() {
        return;
    }
    for (kconfig, says) in [
        // Not a value of any type: refused by the generator itself.
        (
            "kconfig = { CONFIG_LIBPOSIX_FUTEX = \"maybe\" }",
            "package.metadata.unikraft.kconfig.CONFIG_LIBPOSIX_FUTEX: value \"maybe\"",
        ),
        // A line break would inject a second defconfig line.
        ("kconfig = { CONFIG_LIBUKDEBUG = \"y\\nCONFIG_LIBMUSL=n\" }", "control character"),
        // A value of the wrong type for the option, found with the Unikraft tree.
        (
            "kconfig = { CONFIG_LIBUKDEBUG_PRINTK_INFO = \"1\" }",
            "CONFIG_LIBUKDEBUG_PRINTK_INFO = \"1\": CONFIG_LIBUKDEBUG_PRINTK_INFO is a bool option",
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let manifest = scratch_app(tmp.path(), kconfig);
        let out = Command::new(XTASK).args(["kraft-run", "--manifest-path"]).arg(&manifest).output().unwrap();
        assert!(!out.status.success(), "{kconfig}: {}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{kconfig}: {err}");
        assert!(!tmp.path().join("target/unikraft/cargo").exists(), "cargo ran before the check");
        assert!(!tmp.path().join("target/unikraft/scratch/build-qemu-x86_64").exists(), "make ran before the check");
    }
}

/// An option Kconfig drops because what it depends on is off (here a posix-mmap option
/// while posix-mmap itself cannot be enabled) stops the build right after configuring,
/// naming the option, before the cargo build.
#[test]
fn a_kconfig_option_the_configuration_drops_fails_before_the_cargo_build() {
    if sources_or_skip("a_kconfig_option_the_configuration_drops_fails_before_the_cargo_build").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let manifest = scratch_app(tmp.path(), "kconfig = { CONFIG_LIBPOSIX_MMAP_TEST = \"y\" }");
    let out = Command::new(XTASK).args(["kraft-run", "--manifest-path"]).arg(&manifest).output().unwrap();
    assert!(!out.status.success(), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("did not take these kconfig options"), "{err}");
    assert!(err.contains("CONFIG_LIBPOSIX_MMAP_TEST = \"y\": not set in the configuration"), "{err}");
    assert!(!tmp.path().join("target/unikraft/cargo").exists(), "cargo ran before the check");
}

#[test]
fn returning_process_exit_and_panic_each_reach_the_host() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if sources_or_skip("returning_process_exit_and_panic_each_reach_the_host").is_none() {
        return;
    }
    let kraft_run = |args: &[&str]| {
        Command::new(XTASK).args(["kraft-run", "--example", "hello-std", "--"]).args(args).output().unwrap()
    };
    let out = kraft_run(&["--exit=5"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("hello from the worker thread"), "{}", show(&out));
    assert_eq!(out.status.code(), Some(5), "{}", show(&out));

    let out = kraft_run(&["--process-exit=3"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("calling std::process::exit(3)"), "{}", show(&out));
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));

    let out = kraft_run(&["--panic"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("app panicked: ") && stdout.contains("deliberate panic (--panic)"), "{}", show(&out));
    assert_eq!(out.status.code(), Some(101), "{}", show(&out));
}

#[test]
fn conformance_passes_on_unikraft() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if sources_or_skip("conformance_passes_on_unikraft").is_none() {
        return;
    }
    let out = Command::new(XTASK).args(["conformance", "--backend", "unikraft"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", show(&out));
    assert!(stdout.contains("CONFORMANCE BEGIN backend=unikraft-qemu"), "{}", show(&out));
    assert!(stdout.contains("PASS std.fs "), "{}", show(&out));
    assert!(stdout.contains("PASS std.panic-exit "), "{}", show(&out));
    assert!(stdout.contains("conformance (unikraft-qemu): all cases passed"), "{}", show(&out));
    // virtio-blk is given without root: the block section always runs.
    for case in ["block.write-read", "block.encrypted", "host.block-encrypted-image"] {
        assert!(stdout.contains(&format!("PASS {case} ")), "{case} did not pass:\n{}", show(&out));
    }
    if is_root() {
        for case in ["net.arp", "net.icmp", "net.udp-echo", "net.tcp", "host.tcp"] {
            assert!(stdout.contains(&format!("PASS {case} ")), "{case} did not pass:\n{}", show(&out));
        }
        // The std.net section: a second image (`sockets = true`) booted after the main run,
        // merged into the report.
        for case in conformance_protocol::STD_NET_CASES {
            assert!(stdout.contains(&format!("\nPASS {case} ")), "{case} did not pass:\n{}", show(&out));
        }
        assert!(stdout.contains("CONFORMANCE END pass=33 fail=0 skip=0"), "{}", show(&out));
    } else {
        skip("conformance_passes_on_unikraft: net section not run (not root: no network namespace and TAP)");
    }
}

#[test]
fn backtrace_true_prints_a_symbolized_backtrace_on_panic() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if sources_or_skip("backtrace_true_prints_a_symbolized_backtrace_on_panic").is_none() {
        return;
    }
    // Under target/ (git-ignored) rather than a temp dir, so a re-run only relinks.
    let dir = workspace_root().join("target/test-apps/backtrace");
    let lib_rs = "unikernel::main!(run);\n\n\
                  #[inline(never)]\n\
                  fn deliberately_panicking_function(depth: u32) -> i32 {\n\
                  \x20   if depth == 0 {\n\
                  \x20       panic!(\"panic at the bottom of the stack\");\n\
                  \x20   }\n\
                  \x20   std::hint::black_box(deliberately_panicking_function(depth - 1)) + 1\n\
                  }\n\n\
                  fn run() -> i32 {\n\
                  \x20   deliberately_panicking_function(std::hint::black_box(2))\n\
                  }\n";
    let manifest = scratch_app_with(&dir, "backtrace = true", lib_rs);
    let out = Command::new(XTASK).args(["kraft-run", "--manifest-path"]).arg(&manifest).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(101), "{}", show(&out));
    assert!(stdout.contains("panic at the bottom of the stack"), "{}", show(&out));
    assert!(stdout.contains("rt-unikraft backtrace: 0x"), "{}", show(&out));
    assert!(stdout.contains("backtrace (symbolized from "), "{}", show(&out));
    // The panicking function, with its file and line, three times (depth 2, 1, 0).
    let frames = stdout.lines().filter(|l| l.contains("scratch::deliberately_panicking_function at ")).count();
    assert!(frames >= 3, "{}", show(&out));
    assert!(stdout.contains("src/lib.rs:6"), "{}", show(&out));
    assert!(stdout.contains("main at ") && stdout.contains("rt-unikraft/glue/main.c"), "{}", show(&out));
}

/// A corrupted musl tarball in the cache once made every test here print "sources are not
/// provisioned" and pass. Now only an empty cache skips; a broken one fails.
#[test]
fn a_broken_cache_fails_the_tests_instead_of_skipping_them() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    match std::panic::catch_unwind(|| sources_or_skip_in("probe-empty", Some(&empty))) {
        Ok(found) => assert!(found.is_none(), "an empty cache has no sources"),
        // Only with UNIKERNEL_REQUIRE_SOURCES=1, and then for want of sources.
        Err(panic) => assert!(common::sources_required(), "{:?}", panic.downcast_ref::<String>()),
    }

    let cache = tmp.path().join("broken");
    let unikraft = cache.join("unikraft/RELEASE-0.16.3");
    let lib_musl = cache.join("lib-musl/RELEASE-0.16.3");
    fs::create_dir_all(&unikraft).unwrap();
    fs::write(unikraft.join("Makefile"), "").unwrap();
    fs::write(unikraft.join("Config.uk"), "").unwrap();
    fs::create_dir_all(&lib_musl).unwrap();
    fs::write(lib_musl.join("Makefile.uk"), "").unwrap();
    fs::create_dir_all(cache.join("tarballs")).unwrap();
    fs::write(cache.join("tarballs/musl-1.2.3.tar.gz"), b"a truncated download").unwrap();
    let Err(panic) = std::panic::catch_unwind(|| sources_or_skip_in("probe-broken", Some(&cache))) else {
        panic!("a broken cache must fail the test, not skip it");
    };
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("provisioned but broken") && message.contains("wrong SHA256"), "{message}");
}
