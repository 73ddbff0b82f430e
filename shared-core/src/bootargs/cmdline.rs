//! Boot arguments from raw bytes: UTF-8 checked ([`args_from_bytes`]), and split from one
//! command line with a documented quoting rule ([`split_cmdline`], [`quote_arg`]).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::ArgError;

/// The boot arguments as strings, from the bytes a backend received. Every backend calls
/// this before the app starts and refuses (prints the error, exits with status 2) an
/// argument that is not UTF-8, naming it by position and with a lossy rendering, instead
/// of crashing or altering it silently.
pub fn args_from_bytes<I, B>(raw: I) -> Result<Vec<String>, ArgError>
where
    I: IntoIterator<Item = B>,
    B: AsRef<[u8]>,
{
    raw.into_iter()
        .enumerate()
        .map(|(i, arg)| {
            let bytes = arg.as_ref();
            core::str::from_utf8(bytes)
                .map(String::from)
                .map_err(|_| ArgError::NotUtf8 { position: i + 1, lossy: String::from_utf8_lossy(bytes).into_owned() })
        })
        .collect()
}

/// Splits a command line into arguments (solo5 hands the guest one line: its tender joins
/// the arguments after the image with single spaces). The rule, a small part of a POSIX
/// shell's:
///
/// * unquoted spaces, tabs and newlines separate arguments;
/// * `'...'` keeps everything inside literally (no escapes), including spaces;
/// * `"..."` keeps spaces; inside, `\"` and `\\` stand for `"` and `\`, any other `\`
///   stays as it is;
/// * outside quotes, `\` makes the next byte literal (`a\ b` is one argument);
/// * an unterminated quote or a trailing `\` is an error ([`ArgError::BadCommandLine`]).
///
/// `''` or `""` gives an empty argument. [`quote_arg`] quotes an argument so this rule
/// gives it back unchanged (`cargo unikraft`'s solo5 runner quotes the same way).
pub fn split_cmdline(line: &[u8]) -> Result<Vec<Vec<u8>>, ArgError> {
    #[derive(PartialEq)]
    enum Quote {
        None,
        Single,
        Double,
    }
    let mut args = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    // Whether an argument has started (so `''` counts as an empty argument).
    let mut started = false;
    let mut quote = Quote::None;
    let mut bytes = line.iter().copied();
    while let Some(b) = bytes.next() {
        match quote {
            Quote::Single => {
                if b == b'\'' {
                    quote = Quote::None;
                } else {
                    current.push(b);
                }
            }
            Quote::Double => match b {
                b'"' => quote = Quote::None,
                b'\\' => match bytes.next() {
                    Some(n @ (b'"' | b'\\')) => current.push(n),
                    Some(n) => current.extend_from_slice(&[b'\\', n]),
                    None => return Err(ArgError::BadCommandLine("unterminated double quote")),
                },
                _ => current.push(b),
            },
            Quote::None => match b {
                b' ' | b'\t' | b'\n' | b'\r' => {
                    if started {
                        args.push(core::mem::take(&mut current));
                        started = false;
                    }
                }
                b'\'' => {
                    quote = Quote::Single;
                    started = true;
                }
                b'"' => {
                    quote = Quote::Double;
                    started = true;
                }
                b'\\' => {
                    let n = bytes.next().ok_or(ArgError::BadCommandLine("a `\\` ends the command line"))?;
                    current.push(n);
                    started = true;
                }
                _ => {
                    current.push(b);
                    started = true;
                }
            },
        }
    }
    match quote {
        Quote::None => {}
        Quote::Single => return Err(ArgError::BadCommandLine("unterminated single quote")),
        Quote::Double => return Err(ArgError::BadCommandLine("unterminated double quote")),
    }
    if started {
        args.push(current);
    }
    Ok(args)
}

/// Quotes `arg` for [`split_cmdline`]: unchanged when it has no space, quote or
/// backslash, else in single quotes (a `'` inside becomes `'\''`).
pub fn quote_arg(arg: &str) -> String {
    let plain =
        !arg.is_empty() && !arg.bytes().any(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\'' | b'"' | b'\\'));
    if plain {
        return arg.to_string();
    }
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('\'');
    for c in arg.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}
