//! `cargo-unikraft` as rustc's linker: turns the link of an ordinary Rust binary (a
//! `fn main()` bin, an example, a libtest harness) into an `ar` archive that Unikraft's
//! build links into a unikernel.
//!
//! # Why a linker wrapper
//!
//! Only the stock `x86_64-unknown-linux-gnu` std is available (stable, no `rust-src`, no
//! `build-std`), and Unikraft links its own libc (lib-musl), boot code and linker script.
//! So cargo must compile the app exactly as for Linux, but must not link it: Unikraft's
//! make does the final link. rustc lets a project replace the linker
//! (`-C linker=...`, or `target.x86_64-unknown-linux-gnu.linker` in cargo's config), and it
//! hands that linker every Rust object the binary needs, in a cc-style command line. This
//! module is that linker. It writes, at the `-o` path rustc asked for, an archive with one
//! relocatable object holding the whole Rust program (its own objects, std and every
//! dependency) with its libc references still undefined. Cargo then copies it to
//! `target/<triple>/<profile>/<name>` as usual, and the app's `Makefile.uk` links it with
//! `UK_ALIBS-y += <that path>`, resolving libc against lib-musl.
//!
//! `cargo-unikraft` runs itself as the linker: it builds with
//! `--config target.x86_64-unknown-linux-gnu.linker="<its own path>"` and
//! `CARGO_UNIKRAFT_LINKER=1` in the environment (cargo passes it to rustc, rustc to its
//! linker), so its `main` starts with:
//!
//! ```ignore
//! if linker::is_linker_invocation() {
//!     return linker::run_as_linker(std::env::args_os().skip(1).collect());
//! }
//! ```
//!
//! # The steps, and why each exists
//!
//! 1. **Pass host links through** ([`host_link_reason`]). The host and the unikernel have
//!    the same triple, so cargo links build scripts and proc macros with the same linker
//!    setting, even with an explicit `--target` (cargo's `target-applies-to-host` defaults
//!    to true; seen with cargo 1.95 on a crate using serde_derive, libc and a build.rs).
//!    They must stay host programs, so a `-shared` link (proc macro, `cdylib`, `dylib`) or
//!    a build script's link (`build_script_*`) is handed to the host C compiler unchanged,
//!    with `CARGO_UNIKRAFT_LINKER` removed from its environment.
//! 2. **Expand `@file` arguments** ([`expand_response_files`]). When a command line is too
//!    long, rustc writes the arguments to a file, one per line with GNU escaping, and passes
//!    `@file` instead; gcc would read it, so this does too, in libiberty's syntax.
//! 3. **Parse the cc-style command line** ([`parse_link_line`]): the output (`-o`),
//!    the positional inputs (objects, `.rlib`s, `.a`s; rustc's `symbols.o`, which holds the
//!    references that keep `#[used]` statics such as std's argv recorder alive), the
//!    libraries (`-l`), search directories (`-L`), and the linker state that changes what
//!    a library means (`-Bstatic`/`-Bdynamic`, `--whole-archive`). Everything else (PIE,
//!    `--gc-sections`, `-fuse-ld=lld`, `--eh-frame-hdr`, ...) is for a Linux executable and
//!    is dropped: Unikraft's link decides those.
//! 4. **Decide which inputs are kept** ([`plan_link`]). Objects and Rust/C archives are
//!    the program and are kept. The C runtime libraries rustc asks for (`-lc`, `-lm`,
//!    `-lpthread`, `-lgcc_s`, ...) are glibc's and are dropped: lib-musl and gcc's
//!    `libgcc_eh.a` (added by the Unikraft link) stand in for them. A native library a build
//!    script asked for is kept when a static `lib<name>.a` is in one of the `-L`
//!    directories (never the system's: those are built for glibc); any other library is an
//!    error now rather than an undefined symbol later, because a unikernel cannot load a
//!    shared library.
//! 5. **Merge into one relocatable object** with `ld -r --start-group ... --end-group`.
//!    This resolves the Rust program against itself now: archive members are pulled
//!    exactly as a normal link would pull them (from `main` and `symbols.o` outwards), and
//!    what remains undefined is libc and the unwinder. One object is also what makes the
//!    rename in step 7 possible (the C `main` and the archives it pulls become one unit), and
//!    it outlives rustc's temporary directory, where `symbols.o` lives. `ld` gets its
//!    arguments in a response file: rustc falls back to `@file` when executing the linker
//!    failed with `E2BIG`, and in that case `ld` with the same inputs on its command line
//!    would fail the same way (seen: with a large environment, rustc used `@file` and a
//!    plain `ld` command line then failed with "Argument list too long").
//! 6. **Remove `.llvmbc` and `.llvmcmd`**. The precompiled std embeds LLVM bitcode in its
//!    objects, and `ld -r` concatenates those sections into one that is no longer valid
//!    bitcode. GNU `ar`, `nm` and `ld` auto-load LLVM's linker plugin from
//!    `/usr/lib/bfd-plugins` when clang is installed, and that plugin aborts on it
//!    ("LLVM ERROR: Invalid encoding"), so the archive step and Unikraft's final link would
//!    crash. Nothing needs the bitcode (no cross-language LTO here).
//! 7. **Rename `main` to `unikernel_main`** (`objcopy --redefine-sym`). rustc's generated
//!    C `main(argc, argv)` is the program's entry, but Unikraft's boot already has a weak
//!    `main`, and a linker never pulls an archive member just to replace a weak definition,
//!    so a `main` in the archive would be ignored. rt-unikraft's `glue/main.c`, compiled by
//!    Unikraft's build and therefore always linked, defines the strong `main` and calls
//!    `unikernel_main` (which pulls this archive in), then routes the returned status through
//!    `exit` so it reaches the host (isa-debug-exit). The name is the one rt-unikraft's own
//!    entry uses, so the same glue serves both kinds of app; an archive that already defines
//!    `unikernel_main` (an app that also links rt-unikraft) is refused.
//! 8. **Write an `ar` archive at the `-o` path** (through a temporary file and a rename, so
//!    an interrupted link never leaves a half-written output that make would take as up to
//!    date). An archive, not a bare object, because Unikraft's `UK_ALIBS` puts its entries
//!    in the `--start-group` with lib-musl, where an archive member is linked only once
//!    something needs it, and because cargo copies the output under the binary's name,
//!    which then has the archive format Unikraft's make expects.
//!
//! The tools are binutils' `ld`, `objcopy`, `nm` and `ar` (override each with
//! `CARGO_UNIKRAFT_LD`, `CARGO_UNIKRAFT_OBJCOPY`, `CARGO_UNIKRAFT_NM`, `CARGO_UNIKRAFT_AR`),
//! and `cc` for host links (`CARGO_UNIKRAFT_HOST_CC`). They are the ones Unikraft's build
//! needs anyway.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

mod link_line;
mod response_file;

pub use link_line::{parse_link_line, LinkInput, LinkLine};
pub use response_file::{expand_response_files, response_file_text, split_response_file};

/// Set to `1` in the environment of the cargo build whose linker is `cargo-unikraft`.
pub const LINKER_ENV: &str = "CARGO_UNIKRAFT_LINKER";

/// What rustc's C `main` is renamed to; rt-unikraft's `glue/main.c` calls it.
pub const RENAMED_MAIN: &str = "unikernel_main";

/// Sections of embedded LLVM bitcode, removed from the merged object (step 6).
pub const BITCODE_SECTIONS: &[&str] = &[".llvmbc", ".llvmcmd"];

/// Libraries rustc links for std on `x86_64-unknown-linux-gnu` (and their usual
/// companions): glibc's and gcc's runtime. In a unikernel lib-musl provides the C library
/// and gcc's `libgcc_eh.a` (added to the Unikraft link) the unwinder, so these are dropped
/// and never searched for (a `-L` directory may well hold glibc's `libc.a`).
pub const C_RUNTIME_LIBS: &[&str] =
    &["c", "m", "rt", "pthread", "dl", "util", "resolv", "crypt", "gcc", "gcc_s", "gcc_eh", "unwind"];

/// Whether this process was started by rustc as the linker (see the module docs).
pub fn is_linker_invocation() -> bool {
    std::env::var_os(LINKER_ENV).is_some_and(|v| v == "1")
}

/// Runs the whole link (the steps in the module docs). `args` are the linker's arguments
/// without the program name, exactly as rustc passed them.
/// For a binary's `main`: when rustc runs this program as its linker, do the link and
/// return the process's exit status; otherwise `None` (carry on as the tool). Both
/// `cargo-unikraft` and xtask (which delegates builds to this library) start with it.
pub fn exit_if_invoked_as_linker(tool: &str) -> Option<std::process::ExitCode> {
    if !is_linker_invocation() {
        return None;
    }
    Some(match run_as_linker(std::env::args_os().skip(1).collect()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{tool} (as the linker): {e:#}");
            std::process::ExitCode::from(1)
        }
    })
}

pub fn run_as_linker(args: Vec<OsString>) -> Result<()> {
    let expanded = expand_response_files(args.clone(), &mut |path| std::fs::read(path))?;
    let line = parse_link_line(&expanded)?;
    if let Some(reason) = host_link_reason(&line) {
        return host_link(&args, reason);
    }
    let output = line.output.clone().context("rustc passed no `-o <output>` to the linker")?;
    let plan = plan_link(&line, &|path| path.is_file())?;
    let scratch = ScratchDir::next_to(&output)?;
    let merged = scratch.path.join("merged.o");
    // ld reads its arguments from a response file: when rustc had to use one (the command
    // line was too long to execute), a command line with the same inputs would fail too.
    let response_file = scratch.path.join("ld.args");
    std::fs::write(&response_file, response_file_text(&ld_args(&plan, &merged)))
        .with_context(|| format!("write {}", response_file.display()))?;
    let mut ld = tool("LD", "ld");
    ld.arg(at_argument(&response_file));
    run_tool(ld, "ld", "merge the Rust program into one object (ld -r)")?;

    let stripped = scratch.path.join("program.o");
    let mut strip = tool("OBJCOPY", "objcopy");
    for section in BITCODE_SECTIONS {
        strip.arg(format!("--remove-section={section}"));
    }
    strip.arg(&merged).arg(&stripped);
    run_tool(strip, "objcopy", "remove the embedded LLVM bitcode")?;
    let _ = std::fs::remove_file(&merged);

    let mut nm = tool("NM", "nm");
    nm.args(["--defined-only", "--format=posix"]).arg(&stripped);
    let listing = run_tool(nm, "nm", "list the program's symbols")?;
    check_entry_symbols(&String::from_utf8_lossy(&listing))?;
    let mut rename = tool("OBJCOPY", "objcopy");
    rename.arg(format!("--redefine-sym=main={RENAMED_MAIN}")).arg(&stripped);
    run_tool(rename, "objcopy", "rename rustc's C main")?;

    // `D`: no timestamps or owners, so an unchanged program gives an identical archive.
    let archive = scratch.path.join("program.a");
    let mut ar = tool("AR", "ar");
    ar.arg("rcsD").arg(&archive).arg(&stripped);
    run_tool(ar, "ar", "write the archive")?;
    std::fs::rename(&archive, &output).with_context(|| format!("move the archive to {}", output.display()))?;
    Ok(())
}

/// Why this link is for the host, not the unikernel (see step 1), or `None`.
pub fn host_link_reason(line: &LinkLine) -> Option<&'static str> {
    if line.shared {
        return Some("a shared object (proc macro or dylib)");
    }
    let stem = line.output.as_deref().and_then(Path::file_name).map(OsStr::as_bytes).unwrap_or_default();
    if stem.starts_with(b"build_script_") {
        return Some("a build script");
    }
    None
}

/// Links `args` with the host C compiler, for what must stay a host program.
fn host_link(args: &[OsString], reason: &str) -> Result<()> {
    let cc = std::env::var_os("CARGO_UNIKRAFT_HOST_CC").unwrap_or_else(|| "cc".into());
    let status = Command::new(&cc)
        .args(args)
        .env_remove(LINKER_ENV)
        .status()
        .with_context(|| format!("run the host linker {} for {reason}", cc.to_string_lossy()))?;
    if !status.success() {
        bail!("the host linker {} failed for {reason} ({status})", cc.to_string_lossy());
    }
    Ok(())
}

/// What `ld -r` is given (see [`plan_link`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkPlan {
    /// Objects and archives, in order, each with its `--whole-archive` state.
    pub members: Vec<(PathBuf, bool)>,
    /// `-u` symbols.
    pub undefined: Vec<OsString>,
    /// C runtime libraries left to lib-musl and libgcc_eh (see [`C_RUNTIME_LIBS`]).
    pub dropped_libs: Vec<String>,
}

/// Decides which inputs of `line` go into the merged object (step 4). `is_file` tells
/// whether a path exists (a parameter so tests need no files).
pub fn plan_link(line: &LinkLine, is_file: &dyn Fn(&Path) -> bool) -> Result<LinkPlan> {
    let mut plan = LinkPlan { undefined: line.undefined.clone(), ..LinkPlan::default() };
    for input in &line.inputs {
        match input {
            LinkInput::File { path, whole_archive } => {
                let name = path.file_name().map(OsStr::as_bytes).unwrap_or_default();
                if is_shared_object_name(name) {
                    bail!(
                        "{} is a shared library; a unikernel cannot load one (link a static library instead)",
                        path.display()
                    );
                }
                plan.members.push((path.clone(), *whole_archive));
            }
            LinkInput::Library { name, verbatim, static_only, whole_archive } => {
                let shown = name.to_string_lossy();
                if !verbatim && C_RUNTIME_LIBS.contains(&shown.as_ref()) {
                    plan.dropped_libs.push(shown.into_owned());
                    continue;
                }
                let file_name: OsString = if *verbatim { name.clone() } else { format!("lib{shown}.a").into() };
                match line.search_dirs.iter().map(|dir| dir.join(&file_name)).find(|p| is_file(p)) {
                    Some(found) if !is_shared_object_name(file_name.as_bytes()) => {
                        plan.members.push((found, *whole_archive))
                    }
                    _ => bail!(
                        "rustc asks to link the {kind}library `{shown}`, but no static `{file}` is in the -L \
                         directories ({dirs}); a unikernel cannot load a shared library, so build it as a static \
                         library (most `-sys` crates have a `static` or `vendored` feature)",
                        kind = if *static_only { "static " } else { "" },
                        file = file_name.to_string_lossy(),
                        dirs = line.search_dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "),
                    ),
                }
            }
        }
    }
    if plan.members.is_empty() {
        bail!("the link has no objects or archives");
    }
    Ok(plan)
}

/// `libfoo.so`, `libfoo.so.1.2`.
fn is_shared_object_name(name: &[u8]) -> bool {
    name.ends_with(b".so") || name.windows(4).any(|w| w == b".so.")
}

/// The `ld -r` arguments for `plan` (step 5).
pub fn ld_args(plan: &LinkPlan, merged: &Path) -> Vec<OsString> {
    // `-z noexecstack`: rustc's symbols.o has no .note.GNU-stack, which would otherwise mark
    // the merged object as needing an executable stack (a warning at every Unikraft link).
    let mut args: Vec<OsString> =
        ["-r", "-m", "elf_x86_64", "-z", "noexecstack", "-o"].into_iter().map(OsString::from).collect();
    args.push(merged.into());
    for symbol in &plan.undefined {
        args.push("-u".into());
        args.push(symbol.clone());
    }
    args.push("--start-group".into());
    let mut whole = false;
    for (path, whole_archive) in &plan.members {
        if *whole_archive != whole {
            args.push(if *whole_archive { "--whole-archive" } else { "--no-whole-archive" }.into());
            whole = *whole_archive;
        }
        args.push(path.into());
    }
    if whole {
        args.push("--no-whole-archive".into());
    }
    args.push("--end-group".into());
    args
}

/// `@<path>`.
fn at_argument(path: &Path) -> OsString {
    let mut arg = OsString::from("@");
    arg.push(path);
    arg
}

/// Checks the stripped object's symbols (`nm --format=posix` output) before the rename
/// (step 7): it must define `main`, and must not define `unikernel_main` already.
pub fn check_entry_symbols(nm_posix: &str) -> Result<()> {
    let defines = |wanted: &str| {
        nm_posix.lines().any(|l| {
            let mut f = l.split_whitespace();
            f.next() == Some(wanted) && f.next().is_some_and(|kind| kind != "U" && kind != "w" && kind != "v")
        })
    };
    if !defines("main") {
        bail!(
            "the program defines no C `main`; cargo-unikraft links binaries (bins, examples, tests, benches), \
             not libraries"
        );
    }
    if defines(RENAMED_MAIN) {
        bail!(
            "the program already defines `{RENAMED_MAIN}` (does it depend on rt-unikraft?); an app built as a plain \
             binary must not link another unikernel entry point"
        );
    }
    Ok(())
}

/// A binutils tool, overridable by `CARGO_UNIKRAFT_<VAR>`.
fn tool(var: &str, default: &str) -> Command {
    let program = std::env::var_os(format!("CARGO_UNIKRAFT_{var}")).unwrap_or_else(|| default.into());
    let mut cmd = Command::new(program);
    // Never let a tool run this program again as a linker.
    cmd.env_remove(LINKER_ENV);
    cmd
}

/// Runs `cmd`; on failure, says which step failed and shows the tool's output.
fn run_tool(mut cmd: Command, name: &str, step: &str) -> Result<Vec<u8>> {
    let out = cmd.output().with_context(|| format!("run `{name}` to {step} (binutils is needed)"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let hint = if stderr.contains("LLVM ERROR") {
            "\n(LLVM's bfd plugin choked on embedded bitcode; see cargo-unikraft's linker docs, step 6)"
        } else {
            ""
        };
        bail!("`{name}` failed to {step} ({}):\n{}{hint}", out.status, stderr.trim());
    }
    Ok(out.stdout)
}

/// A scratch directory beside the output (so the final rename stays on one file system),
/// removed when dropped.
struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    fn next_to(output: &Path) -> Result<Self> {
        let parent = output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = output.file_name().map(OsStr::to_string_lossy).unwrap_or_default();
        let path = parent.join(format!(".{name}.cargo-unikraft-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).with_context(|| format!("create {}", path.display()))?;
        Ok(ScratchDir { path })
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests;
