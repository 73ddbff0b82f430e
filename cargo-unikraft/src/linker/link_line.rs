//! Step 3 of the linker wrapper: rustc's cc-style link command line, parsed into what it
//! asks for (output, inputs in order, search directories, the state that changes what a
//! library means). See the module docs of [`crate::linker`].

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use anyhow::{Context, Result};

/// One positional input or library, in command-line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkInput {
    /// A file named on the command line (object, archive, or something else).
    File {
        path: PathBuf,
        /// Inside `-Wl,--whole-archive`.
        whole_archive: bool,
    },
    /// `-l<name>` (or `-l:<file>`, `verbatim`).
    Library {
        name: OsString,
        verbatim: bool,
        /// `-Bstatic` (or `-static`) was in force: only `lib<name>.a` would do.
        static_only: bool,
        whole_archive: bool,
    },
}

/// What a cc-style link command line asks for (see [`parse_link_line`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkLine {
    /// `-o`.
    pub output: Option<PathBuf>,
    /// Objects, archives and libraries, in order.
    pub inputs: Vec<LinkInput>,
    /// `-L` directories, in order.
    pub search_dirs: Vec<PathBuf>,
    /// `-u <symbol>` / `-Wl,-u,<symbol>`: symbols to pull even if nothing refers to them.
    pub undefined: Vec<OsString>,
    /// `-shared`: a shared object (proc macro, `cdylib`, `dylib`), never for a unikernel.
    pub shared: bool,
}

/// gcc driver options whose value is the next argument (those rustc or a `-C link-arg`
/// may plausibly use). Joined forms (`-L/dir`) are handled too.
const OPTIONS_WITH_VALUE: &[&str] = &["-o", "-L", "-l", "-u", "-Xlinker", "-B", "-T", "-e", "-z", "-x", "--sysroot"];

/// Parses rustc's cc-style linker command line (already expanded, see
/// [`expand_response_files`]). Unknown options are ignored: they shape a Linux
/// executable, which this link does not produce.
pub fn parse_link_line(args: &[OsString]) -> Result<LinkLine> {
    let mut line = LinkLine::default();
    let mut static_only = false;
    let mut whole_archive = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let bytes = arg.as_bytes();
        if !bytes.starts_with(b"-") || bytes == b"-" {
            line.inputs.push(LinkInput::File { path: PathBuf::from(arg), whole_archive });
            continue;
        }
        // `-Wl,a,b` and `-Xlinker a` carry options for the linker itself.
        let mut linker_opts: Vec<OsString> = Vec::new();
        if let Some(rest) = bytes.strip_prefix(b"-Wl,") {
            linker_opts.extend(rest.split(|&b| b == b',').map(|o| OsString::from_vec(o.to_vec())));
        } else if bytes == b"-Xlinker" {
            linker_opts.push(it.next().context("`-Xlinker` without a value")?.clone());
        } else {
            let (option, joined) = split_option(bytes);
            let value = match (option, joined) {
                (Some(_), Some(v)) => Some(OsString::from_vec(v.to_vec())),
                (Some(o), None) => Some(it.next().with_context(|| format!("`{o}` without a value"))?.clone()),
                (None, _) => None,
            };
            match (option, value) {
                (Some("-o"), Some(v)) => line.output = Some(PathBuf::from(v)),
                (Some("-L"), Some(v)) => line.search_dirs.push(PathBuf::from(v)),
                (Some("-l"), Some(v)) => {
                    let (name, verbatim) = match v.as_bytes().strip_prefix(b":") {
                        Some(file) => (OsString::from_vec(file.to_vec()), true),
                        None => (v, false),
                    };
                    line.inputs.push(LinkInput::Library { name, verbatim, static_only, whole_archive });
                }
                (Some("-u"), Some(v)) => line.undefined.push(v),
                (Some(_), _) => {} // -B, -T, -e, -z, -x, --sysroot: for the Linux link only
                (None, _) => match bytes {
                    b"-shared" => line.shared = true,
                    b"-static" | b"-static-pie" => static_only = true,
                    _ => {}
                },
            }
            continue;
        }
        let mut opts = linker_opts.into_iter();
        while let Some(opt) = opts.next() {
            match opt.as_bytes() {
                b"-Bstatic" | b"-dn" | b"-non_shared" | b"-static" => static_only = true,
                b"-Bdynamic" | b"-dy" | b"-call_shared" => static_only = false,
                b"--whole-archive" => whole_archive = true,
                b"--no-whole-archive" => whole_archive = false,
                b"-shared" | b"-Bshareable" => line.shared = true,
                b"-u" | b"--undefined" => line.undefined.extend(opts.next()),
                o => {
                    if let Some(sym) = o.strip_prefix(b"--undefined=") {
                        line.undefined.push(OsString::from_vec(sym.to_vec()));
                    }
                }
            }
        }
    }
    Ok(line)
}

/// Splits `-Lfoo` into (`-L`, `foo`) and `-L` into (`-L`, none) for the options in
/// [`OPTIONS_WITH_VALUE`]; other options give (none, none).
fn split_option(arg: &[u8]) -> (Option<&'static str>, Option<&[u8]>) {
    for option in OPTIONS_WITH_VALUE {
        if arg == option.as_bytes() {
            return (Some(option), None);
        }
        // Only one-letter options take a joined value (`-ofile`, `-L/dir`); `--sysroot=`.
        if option.len() == 2 {
            if let Some(v) = arg.strip_prefix(option.as_bytes()) {
                return (Some(option), Some(v));
            }
        } else if let Some(v) = arg.strip_prefix(format!("{option}=").as_bytes()) {
            return (Some(option), Some(v));
        }
    }
    (None, None)
}
