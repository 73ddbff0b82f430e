//! The relink decisions on a stand-in build (files laid out as a Unikraft build lays them
//! out, shell commands in place of the link): what counts as a change for make, what
//! only for a relink, and what is no change at all. The real build is checked in
//! `tests/relink.rs`.

use super::*;
use std::time::{Duration, SystemTime};

const CONFIG: &str = "CONFIG_PLAT_KVM=y\nCONFIG_ARCH_X86_64=y\nCONFIG_KVM_BOOT_PROTO_LXBOOT=y\n";

/// A stand-in build: trees, an app directory, glue, a build directory whose saved link
/// command copies the archive to the debug image, an archive, and an input outside all
/// of them (as gcc's `libgcc_eh.a` is).
struct Fake {
    _dir: tempfile::TempDir,
    root: PathBuf,
    make: UkMake,
}

impl Fake {
    fn new() -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        for file in [
            "unikraft/Makefile",
            "unikraft/support/scripts/mkbootinfo.py",
            "musl/Makefile.uk",
            "app/Makefile.uk",
            "glue/main.c",
            "toolchain/libgcc_eh.a",
        ] {
            write(&root.join(file), file);
        }
        write(&root.join("archive.a"), "rust v1");
        let build = root.join("build");
        write(&build.join(".config"), CONFIG);
        write(&build.join("libmusl.o"), "musl objects");
        let (img, dbg) = (build.join("app_qemu-x86_64"), build.join("app_qemu-x86_64.dbg"));
        let link = format!(
            "cat {} {} > {}\n",
            root.join("archive.a").display(),
            root.join("toolchain/libgcc_eh.a").display(),
            dbg.display()
        );
        write(&build.join("app_qemu-x86_64.dbg.cmd"), &link);
        write(&build.join("app_qemu-x86_64.cmd"), &format!("cp {} {}\n", dbg.display(), img.display()));
        write(&build.join("app_qemu-x86_64.bootinfo.cmd"), &format!("echo info >> {}\n", img.display()));
        std::os::unix::fs::symlink(root.join("unikraft/Makefile"), build.join("Makefile")).unwrap();
        let make = UkMake {
            unikraft: root.join("unikraft"),
            app_dir: root.join("app"),
            libs: vec![root.join("musl")],
            build_dir: build,
            name: "app".into(),
        };
        Fake { _dir: dir, root, make }
    }

    fn relink(&self) -> Relink<'_> {
        Relink::new(
            &self.make,
            self.make.build_dir.join("app_qemu-x86_64"),
            vec![self.root.join("archive.a")],
            vec![self.root.join("app"), self.root.join("glue")],
        )
    }

    /// What a successful make leaves: the images (from the saved commands), and the record.
    fn made(&self) {
        let relink = self.relink();
        let sources = relink.sources_snapshot().unwrap();
        for cmd in ["app_qemu-x86_64.dbg.cmd", "app_qemu-x86_64.cmd", "app_qemu-x86_64.bootinfo.cmd"] {
            let status = Command::new("sh").arg(self.make.build_dir.join(cmd)).status().unwrap();
            assert!(status.success());
        }
        relink.record(&sources).unwrap();
    }

    fn image(&self) -> String {
        fs::read_to_string(self.make.build_dir.join("app_qemu-x86_64")).unwrap()
    }
}

fn write(path: &Path, body: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, body).unwrap();
}

/// Gives `path` a modification time one minute later than it had (content unchanged).
fn touch(path: &Path) {
    let old = fs::metadata(path).unwrap().modified().unwrap();
    let file = fs::File::options().write(true).open(path).unwrap();
    file.set_modified(old.max(SystemTime::now()) + Duration::from_secs(60)).unwrap();
}

fn is_make(plan: Plan) -> bool {
    matches!(plan, Plan::Make(_))
}

#[test]
fn the_first_build_is_makes_and_an_unchanged_one_is_up_to_date() {
    let fake = Fake::new();
    assert!(is_make(fake.relink().plan().unwrap()), "no record yet");
    fake.made();
    assert_eq!(fake.relink().plan().unwrap(), Plan::UpToDate);
}

#[test]
fn a_new_rust_archive_is_relinked_with_the_saved_commands() {
    let fake = Fake::new();
    fake.made();
    write(&fake.root.join("archive.a"), "rust version 2");
    assert_eq!(fake.relink().plan().unwrap(), Plan::Relink);
    fake.relink().relink().unwrap();
    assert_eq!(fake.image(), "rust version 2toolchain/libgcc_eh.ainfo\n");
    assert_eq!(fake.relink().plan().unwrap(), Plan::UpToDate, "the relink is recorded");
    let log = fs::read_to_string(fake.make.log()).unwrap();
    assert!(log.contains("LD      app_qemu-x86_64.dbg (relink)"), "{log}");
}

#[test]
fn a_removed_or_rewritten_image_is_relinked() {
    let fake = Fake::new();
    fake.made();
    fs::remove_file(fake.make.build_dir.join("app_qemu-x86_64")).unwrap();
    assert_eq!(fake.relink().plan().unwrap(), Plan::Relink);
    fake.relink().relink().unwrap();
    assert_eq!(fake.image(), "rust v1toolchain/libgcc_eh.ainfo\n");
}

/// A change to a stand-in build, named for the assertion's message.
type Change = (&'static str, fn(&Fake));

#[test]
fn a_change_make_must_see_goes_to_make() {
    let changes: &[Change] = &[
        ("a kconfig change", |f| write(&f.make.config(), &format!("{CONFIG}CONFIG_LIBUKDEBUG_ANSI_COLOR=y\n"))),
        ("a touched Unikraft source", |f| touch(&f.root.join("unikraft/Makefile"))),
        ("a new library source", |f| write(&f.root.join("musl/src/new.c"), "int x;")),
        ("an edited glue source", |f| write(&f.root.join("glue/main.c"), "int main;")),
        ("a regenerated Makefile.uk", |f| touch(&f.root.join("app/Makefile.uk"))),
        ("a deleted object", |f| fs::remove_file(f.make.build_dir.join("libmusl.o")).unwrap()),
        ("a changed saved link command", |f| touch(&f.make.build_dir.join("app_qemu-x86_64.dbg.cmd"))),
        ("another input of the link", |f| touch(&f.root.join("toolchain/libgcc_eh.a"))),
    ];
    for (what, change) in changes {
        let fake = Fake::new();
        fake.made();
        change(&fake);
        assert!(is_make(fake.relink().plan().unwrap()), "{what} must go to make");
        // Nor does a relink after it pass for up to date.
        write(&fake.root.join("archive.a"), "rust version 2");
        assert!(is_make(fake.relink().plan().unwrap()), "{what} and a new archive must go to make");
    }
}

#[test]
fn what_make_or_python_rewrite_without_a_change_is_no_change() {
    let fake = Fake::new();
    fake.made();
    // make re-creates the build directory's Makefile link on every run, appends to its
    // log, and Python may cache byte code beside Unikraft's scripts.
    let link = fake.make.build_dir.join("Makefile");
    fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(fake.root.join("unikraft/Makefile"), &link).unwrap();
    write(&fake.make.log(), "  CC      libfoo: foo.o\n");
    write(&fake.root.join("unikraft/support/scripts/__pycache__/x.pyc"), "byte code");
    assert_eq!(fake.relink().plan().unwrap(), Plan::UpToDate);
}

#[test]
fn a_failed_or_interrupted_build_leaves_no_record() {
    let fake = Fake::new();
    fake.made();
    fake.relink().forget().unwrap();
    assert!(is_make(fake.relink().plan().unwrap()));
    // A relink whose link fails: the next build is make's.
    fake.made();
    write(&fake.make.build_dir.join("app_qemu-x86_64.cmd"), "exit 1\n");
    write(&fake.root.join("archive.a"), "rust version 2");
    // The changed strip command alone sends it to make; a relink forced anyway fails...
    assert!(fake.relink().relink().is_err());
    // ...and leaves no record claiming anything.
    assert!(is_make(fake.relink().plan().unwrap()));
}

#[test]
fn only_recipes_this_replays_are_relinked() {
    let steps = final_recipe(&format!("{CONFIG}CONFIG_KVM_BOOT_PROTO_MULTIBOOT=y\n")).unwrap();
    assert_eq!(steps.len(), 4);
    assert_eq!(steps[3], Step::Multiboot);
    assert_eq!(final_recipe(CONFIG).unwrap().len(), 3, "no multiboot step for the Linux boot protocol");
    for (config, named) in [
        (format!("{CONFIG}CONFIG_OPTIMIZE_PIE=y\n"), "CONFIG_OPTIMIZE_PIE"),
        (format!("{CONFIG}CONFIG_OPTIMIZE_COMPRESS=y\n"), "CONFIG_OPTIMIZE_COMPRESS"),
        ("CONFIG_PLAT_XEN=y\nCONFIG_ARCH_X86_64=y\n".to_string(), "CONFIG_PLAT_KVM"),
        ("CONFIG_PLAT_KVM=y\nCONFIG_ARCH_ARM_64=y\n".to_string(), "CONFIG_ARCH_X86_64"),
    ] {
        let why = final_recipe(&config).unwrap_err();
        assert!(why.contains(named), "{why}");
    }
    // Such a build always goes to make, even with a record.
    let fake = Fake::new();
    fake.made();
    write(&fake.make.config(), &format!("{CONFIG}CONFIG_OPTIMIZE_PIE=y\n"));
    assert!(is_make(fake.relink().plan().unwrap()));
}

#[test]
fn the_link_inputs_are_the_absolute_paths_of_the_saved_command() {
    let dir = tempfile::tempdir().unwrap();
    let (obj, lds) = (dir.path().join("libfoo.o"), dir.path().join("link64.lds"));
    write(&obj, "");
    write(&lds, "");
    let cmd = format!(
        "\"\"gcc -Wl,-m,elf_x86_64 {} -Wl,--start-group {}/missing.a -Wl,--end-group -Wl,-dT,{} -o {}/out.dbg",
        obj.display(),
        dir.path().display(),
        lds.display(),
        dir.path().display()
    );
    assert_eq!(link_inputs(&cmd), [obj, lds]);
}
