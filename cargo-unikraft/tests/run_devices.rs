//! `cargo unikraft run -v`, the console log and `--gdb` on real guests:
//!
//! * a plain `fn main()` program (`devices = ["9pfs"]`, no code for it) reads a host file
//!   through `-v HOST:/data` with `std::fs`, writes one back, creates folders, lists,
//!   stats, renames, removes, appends and seeks; the host sees the result;
//! * every run's console is kept (`target/unikraft/<name>/last-run.log`), and a failed run
//!   prints where: the same program without `-v` panics, and its panic message is in the
//!   file the tool names;
//! * `--gdb PORT`: gdb in batch mode connects to QEMU's stub, breaks on the program's own
//!   `main` (`fs_share::main`, from the `.dbg` image), continues and sees it hit;
//! * `cargo unikraft oci -v /data` declares the volume and asks urunc for the shared root,
//!   and the image boots as urunc starts it then (the container's root over virtio-9p,
//!   tag `fs0`, mounted on `/` by `vfs.fstab=[ "fs0:/:9pfs:::" ]`): the program finds the
//!   volume's files under /data;
//! * a bad `-v` spec is refused by the command line, naming the flag.
//!
//! Guests need the pinned Unikraft sources and QEMU; without them each test prints a
//! `SKIP:` line (a failure with `UNIKERNEL_REQUIRE_SOURCES=1`, as CI sets); the gdb test
//! also skips, saying so, when gdb is not installed. The crate lives under the system temp
//! dir and its image is reused between runs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::Duration;

mod common;

use common::{free_port, provisioned, show, skip, Running};

const TOOL: &str = env!("CARGO_BIN_EXE_cargo-unikraft");

/// One guest at a time: they share the crate's build directory and the 2-core machines.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn tool(args: &[&str]) -> Command {
    let mut cmd = Command::new(TOOL);
    cmd.arg("unikraft").args(args);
    cmd
}

const MANIFEST: &str = r#"[package]
name = "fs-share"
version = "0.1.0"
edition = "2021"

[package.metadata.unikraft]
devices = ["9pfs"]

# Its own workspace, wherever the temp dir is.
[workspace]
"#;

/// Reads a host file, writes one back, makes folders, lists, stats, renames, removes,
/// appends and seeks: nothing in it knows about 9P.
const MAIN: &str = r#"use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};

fn main() {
    let input = fs::read_to_string("/data/in.txt").expect("read /data/in.txt");
    println!("read from the host: {}", input.trim_end());
    fs::write("/data/out.txt", input.to_uppercase()).expect("write /data/out.txt");
    fs::create_dir_all("/data/made/here").expect("create /data/made/here");
    fs::write("/data/made/here/note.txt", "from the guest\n").expect("write a nested file");
    let mut names: Vec<String> =
        fs::read_dir("/data").expect("list /data").map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    println!("listed: {}", names.join(" "));
    println!("size of in.txt: {}", fs::metadata("/data/in.txt").expect("stat").len());
    fs::rename("/data/old.txt", "/data/renamed.txt").expect("rename");
    fs::remove_file("/data/gone.txt").expect("remove");
    let mut log = fs::OpenOptions::new().append(true).open("/data/log.txt").expect("open for append");
    log.write_all(b"appended\n").expect("append");
    let mut file = fs::File::open("/data/in.txt").expect("open");
    file.seek(SeekFrom::Start(6)).expect("seek");
    let mut rest = String::new();
    file.read_to_string(&mut rest).expect("read from an offset");
    println!("from offset 6: {}", rest.trim_end());
    println!("wrote /data/out.txt");
}
"#;

/// The plain crate, built once (`--no-boot`); its directory.
fn fs_crate() -> PathBuf {
    let dir = std::env::temp_dir().join("cargo-unikraft-run-devices-tests").join("fs-share");
    fs::create_dir_all(dir.join("src")).unwrap();
    for (file, text) in [("Cargo.toml", MANIFEST), ("src/main.rs", MAIN)] {
        if fs::read_to_string(dir.join(file)).ok().as_deref() != Some(text) {
            fs::write(dir.join(file), text).unwrap();
        }
    }
    let build = tool(&["run", "--no-boot"]).current_dir(&dir).output().unwrap();
    assert!(build.status.success(), "{}", show(&build));
    dir
}

/// A host folder holding what the program reads, renames, removes and appends to.
fn host_folder() -> tempfile::TempDir {
    let host = tempfile::tempdir().unwrap();
    for (name, text) in
        [("in.txt", "hello from the host\n"), ("old.txt", "old\n"), ("gone.txt", "x\n"), ("log.txt", "first\n")]
    {
        fs::write(host.path().join(name), text).unwrap();
    }
    host
}

fn last_run_log(crate_dir: &Path) -> String {
    fs::read_to_string(crate_dir.join("target/unikraft/fs_share/last-run.log")).unwrap()
}

#[test]
fn a_plain_program_reads_and_writes_a_host_folder() {
    let _serial = serial();
    if !provisioned("a_plain_program_reads_and_writes_a_host_folder") {
        return;
    }
    let dir = fs_crate();
    let host = host_folder();
    let spec = format!("{}:/data", host.path().display());
    let out = tool(&["run", "--no-build", "-v", &spec]).current_dir(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("read from the host: hello from the host"), "{}", show(&out));
    assert_eq!(fs::read_to_string(host.path().join("out.txt")).unwrap(), "HELLO FROM THE HOST\n");
    assert_eq!(fs::read_to_string(host.path().join("made/here/note.txt")).unwrap(), "from the guest\n");
    for line in
        ["listed: gone.txt in.txt log.txt made old.txt out.txt", "size of in.txt: 20", "from offset 6: from the host"]
    {
        assert!(stdout.lines().any(|l| l == line), "missing `{line}`: {}", show(&out));
    }
    assert!(!host.path().join("old.txt").exists() && !host.path().join("gone.txt").exists(), "{}", show(&out));
    assert_eq!(fs::read_to_string(host.path().join("renamed.txt")).unwrap(), "old\n");
    assert_eq!(fs::read_to_string(host.path().join("log.txt")).unwrap(), "first\nappended\n");
    // The console is kept, and a run that succeeded does not point at it.
    let log = last_run_log(&dir);
    assert!(log.contains("read from the host: hello from the host") && log.contains("wrote /data/out.txt"), "{log}");
    assert!(log.ends_with("[cargo-unikraft: exit status 0]\n"), "{log}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("the console of this run is in"), "{}", show(&out));
}

/// Without `-v` there is no /data: the program panics, and the tool names the file that
/// holds the console, panic message included.
#[test]
fn a_failed_run_names_the_file_that_holds_its_console() {
    let _serial = serial();
    if !provisioned("a_failed_run_names_the_file_that_holds_its_console") {
        return;
    }
    let dir = fs_crate();
    let out: Output = tool(&["run", "--no-build"]).current_dir(&dir).output().unwrap();
    assert_ne!(out.status.code(), Some(0), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let path = stderr
        .lines()
        .find_map(|l| l.strip_prefix("cargo-unikraft: the console of this run is in "))
        .unwrap_or_else(|| panic!("no console path: {}", show(&out)));
    let log = fs::read_to_string(path).unwrap();
    assert!(log.contains("read /data/in.txt"), "the panic is not in {path}:\n{log}");
    assert!(Path::new(path).starts_with(dir.join("target/unikraft/fs_share/logs")), "{path}");
    assert_eq!(last_run_log(&dir), log);
}

/// gdb, in batch mode, stops the guest in the program's own `main` through `--gdb`.
#[test]
fn gdb_breaks_in_the_programs_main() {
    let _serial = serial();
    let test = "gdb_breaks_in_the_programs_main";
    if which::which("gdb").is_err() {
        skip(&format!("{test}: gdb is not installed (Debian: apt-get install gdb)"));
        return;
    }
    if !provisioned(test) {
        return;
    }
    let dir = fs_crate();
    let host = host_folder();
    let port = free_port();
    let spec = format!("{}:/data", host.path().display());
    let mut run = Running::start({
        let mut cmd = tool(&["run", "--no-build", "-v", &spec, "--gdb", &port.to_string()]);
        cmd.current_dir(&dir);
        cmd
    });
    assert!(run.wait_for("gdb stub listens", Duration::from_secs(60)).contains("To stop in fs_share::main"));
    // The command the tool prints, as a user would paste it, then one more `continue`.
    let hint = run.wait_for("gdb /", Duration::from_secs(10));
    let mut parts = hint.trim().split(" -ex ");
    let dbg = parts.next().unwrap().strip_prefix("gdb ").unwrap().to_string();
    assert!(dbg.ends_with("fs_share_qemu-x86_64.dbg") && Path::new(&dbg).is_file(), "{hint}");
    let commands: Vec<String> = parts.map(|c| c.trim_matches('\'').to_string()).collect();
    assert_eq!(commands[0], format!("target remote 127.0.0.1:{port}"), "{hint}");
    assert!(commands[1].starts_with("break _ZN8fs_share4main17h"), "{hint}");
    let mut gdb = Command::new("gdb");
    gdb.args(["-batch", "-nx", &dbg]);
    for command in commands.iter().map(String::as_str).chain(["info symbol $pc", "continue"]) {
        gdb.args(["-ex", command]);
    }
    let gdb = gdb.output().unwrap();
    let gdb_out = format!("{}{}", String::from_utf8_lossy(&gdb.stdout), String::from_utf8_lossy(&gdb.stderr));
    assert!(gdb_out.contains("Breakpoint 1, ") && gdb_out.contains("fs_share::main"), "{gdb_out}");
    // Continued, the program runs to its end as without a debugger.
    run.wait_for("wrote /data/out.txt", Duration::from_secs(120));
    assert_eq!(fs::read_to_string(host.path().join("out.txt")).unwrap(), "HELLO FROM THE HOST\n");
}

/// Refused by the command line before anything is built, naming the flag.
#[test]
fn a_bad_volume_spec_is_refused_naming_the_flag() {
    let out = tool(&["run", "-v", "/nonexistent-folder-for-a-test:/data"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--volume") && stderr.contains("does not exist"), "{}", show(&out));
}

/// What urunc does with an image from `oci -v /data` (read from urunc's sources; urunc is
/// not installable here): the container's root, the volume bind-mounted at /data in it,
/// is shared over virtio-9p with tag `fs0`, and the kernel command line mounts it on `/`.
#[test]
fn an_oci_image_with_a_volume_boots_on_uruncs_shared_root() {
    let _serial = serial();
    if !provisioned("an_oci_image_with_a_volume_boots_on_uruncs_shared_root") {
        return;
    }
    let dir = fs_crate();
    let layout = tempfile::tempdir().unwrap();
    let out = tool(&["oci", "-v", "/data", "--output"]).arg(layout.path().join("img")).current_dir(&dir).output();
    let out = out.unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let read = |digest: &str| -> serde_json::Value {
        let path = layout.path().join("img/blobs/sha256").join(digest.trim_start_matches("sha256:"));
        serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
    };
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.path().join("img/index.json")).unwrap()).unwrap();
    let manifests = index["manifests"].as_array().unwrap();
    let urunc = manifests
        .iter()
        .map(|m| read(m["digest"].as_str().unwrap()))
        .find(|m| m["annotations"]["com.urunc.unikernel.unikernelType"] == "unikraft");
    let urunc = urunc.unwrap_or_else(|| panic!("no manifest with urunc's annotations: {index}"));
    assert_eq!(urunc["annotations"]["com.urunc.unikernel.mountRootfs"], "true", "{urunc}");
    let config = read(urunc["config"]["digest"].as_str().unwrap());
    assert_eq!(config["config"]["Volumes"], serde_json::json!({ "/data": {} }), "{config}");

    // The container's root as urunc shares it: the volume at /data.
    let root = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join("data")).unwrap();
    for (name, text) in [("in.txt", "through urunc\n"), ("old.txt", ""), ("gone.txt", ""), ("log.txt", "")] {
        fs::write(root.path().join("data").join(name), text).unwrap();
    }
    let kernel = dir.join("target/unikraft/fs_share/build-qemu-x86_64/fs_share_qemu-x86_64");
    let fsdev = format!("local,id=rootfs9p,security_model=none,path={}", root.path().display());
    let out = Command::new("timeout")
        .args(["120", "qemu-system-x86_64", "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio"])
        .args(["-no-reboot", "-accel", "tcg", "-cpu", "max", "-m", "128M", "-kernel"])
        .arg(&kernel)
        .args(["-fsdev", &fsdev, "-device", "virtio-9p-pci,fsdev=rootfs9p,mount_tag=fs0"])
        .args(["-append", "Unikraft vfs.fstab=[ \"fs0:/:9pfs:::\" ] -- "])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("read from the host: through urunc"), "{}", show(&out));
    assert_eq!(fs::read_to_string(root.path().join("data/out.txt")).unwrap(), "THROUGH URUNC\n");
}
