//! Step 2 of the linker wrapper (and the `ld` invocation of step 5): gcc's `@file`
//! response files, read and written in libiberty's syntax. See the module docs of
//! [`crate::linker`].

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use anyhow::{bail, Context, Result};

/// Nested `@file`s are followed this deep (gcc's limit is about as arbitrary).
const MAX_RESPONSE_FILE_DEPTH: usize = 16;

/// Expands every `@file` argument into the arguments the file holds, recursively, as gcc
/// does. `read` reads a file (a parameter so tests need no files).
pub fn expand_response_files(
    args: Vec<OsString>,
    read: &mut dyn FnMut(&Path) -> std::io::Result<Vec<u8>>,
) -> Result<Vec<OsString>> {
    expand_at_depth(args, read, 0)
}

fn expand_at_depth(
    args: Vec<OsString>,
    read: &mut dyn FnMut(&Path) -> std::io::Result<Vec<u8>>,
    depth: usize,
) -> Result<Vec<OsString>> {
    let mut out = Vec::with_capacity(args.len());
    for arg in args {
        let Some(file) = arg.as_bytes().strip_prefix(b"@").filter(|f| !f.is_empty()) else {
            out.push(arg);
            continue;
        };
        if depth >= MAX_RESPONSE_FILE_DEPTH {
            bail!("response files nest deeper than {MAX_RESPONSE_FILE_DEPTH} levels");
        }
        let path = Path::new(OsStr::from_bytes(file));
        let text = read(path).with_context(|| format!("read the response file {}", path.display()))?;
        out.extend(expand_at_depth(split_response_file(&text), read, depth + 1)?);
    }
    Ok(out)
}

/// Splits a response file the way gcc (libiberty's `buildargv`) does: whitespace separates
/// arguments; `'...'` and `"..."` quote; a backslash makes the next character literal.
/// rustc writes one argument per line with `\` and spaces escaped.
pub fn split_response_file(text: &[u8]) -> Vec<OsString> {
    let mut args = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    let mut in_arg = false;
    let (mut single, mut double, mut escaped) = (false, false, false);
    for &c in text {
        if escaped {
            current.push(c);
            escaped = false;
        } else if c == b'\\' {
            escaped = true;
            in_arg = true;
        } else if single {
            if c == b'\'' {
                single = false;
            } else {
                current.push(c);
            }
        } else if double {
            if c == b'"' {
                double = false;
            } else {
                current.push(c);
            }
        } else if c.is_ascii_whitespace() {
            if in_arg {
                args.push(OsString::from_vec(std::mem::take(&mut current)));
                in_arg = false;
            }
        } else {
            in_arg = true;
            match c {
                b'\'' => single = true,
                b'"' => double = true,
                _ => current.push(c),
            }
        }
    }
    if in_arg {
        args.push(OsString::from_vec(current));
    }
    args
}
/// A response file holding `args`, one per line, with every character that
/// [`split_response_file`] would treat specially escaped by a backslash.
pub fn response_file_text(args: &[OsString]) -> Vec<u8> {
    let mut text = Vec::new();
    for arg in args {
        if arg.is_empty() {
            text.extend_from_slice(b"''");
        }
        for &c in arg.as_bytes() {
            if c.is_ascii_whitespace() || matches!(c, b'\\' | b'\'' | b'"') {
                text.push(b'\\');
            }
            text.push(c);
        }
        text.push(b'\n');
    }
    text
}
