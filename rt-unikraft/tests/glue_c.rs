//! The C glue's own logic, compiled and run on the host with the host's C compiler.
//!
//! - `events_test.c`: glue/netdev.c's device events (compiled without uknetdev, against
//!   the Unikraft stand-ins in `tests/c/mock/`): the event semaphores are initialised
//!   once, before `main`; an interrupt at the thread's first wait is not lost; the
//!   executor and the network thread each get their own wake-up (one never takes the
//!   other's), and a block completion wakes the executor only.
//! - `netdev_test.c`: glue/netdev.c's receive path (compiled with uknetdev, against
//!   stand-ins for its headers) driven as rt-unikraft's Rust drives it, over a scripted
//!   device that behaves as Unikraft 0.16.3's virtio-net driver and QEMU do: receive
//!   buffers are what the driver accepts, so 600 frames from a jumbo-MTU host cost no
//!   buffer; the reported length and the header's size; a frame the driver rejects is
//!   reported; open and start errors reach the caller.
//! - `clock_test.c`: glue/std_shims.inc's `clock_nanosleep`: durations saturate instead
//!   of wrapping, and a sleep of 18446744074 s (which used to wrap to 0.29 s) stays asleep.
//! - `hosted.c` (the hosted-musl harness's glue, with the no-device stand-ins) compiles
//!   against glue/rt_glue.h with warnings as errors: the C definitions match the header
//!   (src/glue.rs's test checks the Rust side against the same header).

use std::path::{Path, PathBuf};
use std::process::Command;

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The host's C compiler as the `cc` crate finds it for a build script (`CC`, `CFLAGS`,
/// else the target's `cc`), with the flags it adds for the target (`-m64`, `-fPIC`, ...).
fn cc() -> Command {
    let host = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    cc::Build::new()
        .cargo_metadata(false)
        .cargo_warnings(false)
        .target(&host)
        .host(&host)
        .opt_level(1)
        .debug(false)
        .get_compiler()
        .to_command()
}

/// A fresh scratch directory for one test's binary.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rt-unikraft-glue-c-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compiles `sources` (with the glue directory and `extra` include paths) and runs the
/// program; panics with its output unless it exits 0.
fn compile_and_run(test: &str, sources: &[PathBuf], includes: &[PathBuf], flags: &[&str]) -> String {
    let dir = scratch(test);
    let exe = dir.join(test);
    let mut cmd = cc();
    cmd.args(["-std=gnu11", "-O1", "-Wall", "-Wextra", "-Werror", "-Wno-unused-function", "-pthread"]);
    cmd.args(flags);
    for include in includes {
        cmd.arg("-I").arg(include);
    }
    cmd.args(sources).arg("-o").arg(&exe);
    let built = cmd.output().expect("run the host C compiler (cc)");
    assert!(built.status.success(), "{test}: compiling failed:\n{}", String::from_utf8_lossy(&built.stderr));
    let run = Command::new(&exe).output().expect("run the test program");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(run.status.success(), "{test} failed:\n{stdout}{}", String::from_utf8_lossy(&run.stderr));
    assert!(!stdout.contains("FAIL"), "{test}:\n{stdout}");
    stdout
}

#[test]
fn an_interrupt_at_the_first_wait_is_not_lost_and_each_waiter_has_its_own_wake_up() {
    let glue = crate_dir().join("glue");
    let c = crate_dir().join("tests/c");
    let out =
        compile_and_run("events", &[c.join("events_test.c"), glue.join("netdev.c")], &[c.join("mock"), glue], &[]);
    assert!(out.contains("ok the first wait saw the interrupt's wake-up"), "{out}");
    assert!(out.contains("ok the network thread still has its wake-up after the executor took its own"), "{out}");
}

#[test]
fn the_net_glue_keeps_its_buffers_against_jumbo_frames_and_reports_lengths_drops_and_errors() {
    let glue = crate_dir().join("glue");
    let c = crate_dir().join("tests/c");
    let dir = scratch("netdev");
    let exe = dir.join("netdev_test");
    let built = cc()
        .args(["-std=gnu11", "-O1", "-Wall", "-Wextra", "-Werror", "-DCONFIG_LIBUKNETDEV=1", "-I"])
        .arg(c.join("mock"))
        .arg("-I")
        .arg(&glue)
        .arg(c.join("netdev_test.c"))
        .arg(glue.join("netdev.c"))
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("run the host C compiler (cc)");
    assert!(built.status.success(), "compiling failed:\n{}", String::from_utf8_lossy(&built.stderr));
    for scenario in ["receive", "configure-fails", "start-fails"] {
        let run = Command::new(&exe).arg(scenario).output().expect("run netdev_test");
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success() && !stdout.contains("FAIL"),
            "scenario {scenario}:\n{stdout}{}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn clock_nanosleep_saturates_huge_durations_instead_of_wrapping() {
    let glue = crate_dir().join("glue");
    let c = crate_dir().join("tests/c");
    let out = compile_and_run("clock", &[c.join("clock_test.c")], &[glue], &[]);
    assert!(out.contains("ok a relative sleep of 18446744074 s is still asleep"), "{out}");
}

#[test]
fn the_hosted_glue_and_the_device_stand_ins_match_rt_glue_h() {
    // As the hosted-musl harness compiles it: against musl (glibc declares its own
    // _dl_find_object, which the hosted glue defines).
    let musl_gcc = std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).map(|d| d.join("musl-gcc")).find(|p| p.is_file()));
    let Some(musl_gcc) = musl_gcc else {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIP: the_hosted_glue_and_the_device_stand_ins_match_rt_glue_h: musl-gcc is not installed (Debian: musl-tools)"
        );
        return;
    };
    let glue = crate_dir().join("glue");
    let dir = scratch("hosted");
    let out = Command::new(musl_gcc)
        .args(["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter", "-c", "-o"])
        .arg(dir.join("hosted.o"))
        .arg(glue.join("hosted.c"))
        .output()
        .expect("run musl-gcc");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "glue/hosted.c does not compile:\n{}", String::from_utf8_lossy(&out.stderr));
}
