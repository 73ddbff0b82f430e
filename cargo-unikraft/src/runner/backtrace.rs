//! Backtraces from rt-unikraft (apps with `backtrace = true`): the console line with
//! return addresses, symbolized on the host from the unstripped image.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The return addresses in a `rt-unikraft backtrace: 0x.. 0x..` console line
/// (`console_protocol::backtrace`).
pub fn parse_backtrace_line(line: &str) -> Option<Vec<u64>> {
    console_protocol::backtrace::parse(line)?.collect()
}

/// Function, file and line for each return address, from the unstripped image, with
/// binutils' `addr2line` (inlined frames are shown as "(inlined by)"). A return address
/// points after its call, so `address - 1` is looked up.
pub fn symbolize(debug_image: &Path, addresses: &[u64]) -> Result<Vec<String>> {
    if !debug_image.is_file() {
        bail!("{} is missing", debug_image.display());
    }
    let out = Command::new("addr2line")
        .args(["-f", "-C", "-i", "-p", "-e"])
        .arg(debug_image)
        .args(addresses.iter().map(|a| format!("{:#x}", a.saturating_sub(1))))
        .output()
        .context("run addr2line (binutils)")?;
    if !out.status.success() {
        bail!("addr2line failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim().to_string()).collect())
}

/// The lines to print after a backtrace console line: its frames, symbolized from the
/// `.dbg` image beside `image` (or why they could not be).
pub fn symbolized_lines(image: &Path, addresses: &[u64]) -> Vec<String> {
    let debug_image =
        image.with_file_name(format!("{}.dbg", image.file_name().and_then(|n| n.to_str()).unwrap_or_default()));
    match symbolize(&debug_image, addresses) {
        Ok(frames) => {
            let mut lines = vec![format!("backtrace (symbolized from {}):", debug_image.display())];
            let mut number = 0;
            for frame in &frames {
                if frame.starts_with("(inlined by)") {
                    lines.push(format!("      {frame}"));
                } else {
                    lines.push(format!("  {number:>2}: {frame}"));
                    number += 1;
                }
            }
            lines
        }
        Err(e) => vec![format!("cargo-unikraft: could not symbolize the backtrace: {e:#}")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backtrace_lines_are_recognised() {
        assert_eq!(parse_backtrace_line("rt-unikraft backtrace: 0x10a2b3 0x1000"), Some(vec![0x10a2b3, 0x1000]));
        assert_eq!(parse_backtrace_line("rt-unikraft backtrace:"), Some(vec![]));
        assert_eq!(parse_backtrace_line("rt-unikraft backtrace: 0xzz"), None);
        assert_eq!(parse_backtrace_line("hello"), None);
    }
}
