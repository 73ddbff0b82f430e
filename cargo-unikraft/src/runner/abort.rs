//! An app that aborted: what its console shows, and the status Linux would give it.
//!
//! On Linux, `abort()` kills the process with SIGABRT: a shell sees status 134 and `cargo
//! test` says `signal: 6, SIGABRT`. Rust aborts after a failed allocation (`memory
//! allocation of N bytes failed`), a panic while panicking, `std::process::abort`, and
//! when libgcc's unwinder gives up. Inside a Unikraft image the glue's `__wrap_abort`
//! (rt-unikraft/glue/main.c) prints [`ABORT_LINE`] and reports [`ABORT_STATUS`]; an abort
//! inside lib-musl itself (not wrapped: it never leaves lib-musl's object) still halts the
//! VM as a crash, with Unikraft's `[libmusl] abort called`, and is read as the same.

/// The status of a process killed by SIGABRT (128 + 6); glue/main.c's
/// `RT_UNIKRAFT_ABORT_STATUS`.
pub const ABORT_STATUS: u8 = 134;
/// The line the glue prints when the app aborts (glue/main.c's `RT_UNIKRAFT_ABORT_LINE`).
pub const ABORT_LINE: &str = "rt-unikraft: abort";

/// Whether the console shows an abort (the glue's line, or lib-musl's crash message).
pub fn aborted(console: &str) -> bool {
    console.lines().any(|l| is_abort_line(l.trim()))
}

/// The last line the app printed before it aborted (`None`: no abort on this console, or
/// nothing before it). Unikraft's own messages (`CRIT:`, the crash dump) are skipped.
pub fn last_line_before_abort(console: &str) -> Option<String> {
    let lines: Vec<&str> = console.lines().map(str::trim).collect();
    let at = lines.iter().position(|l| is_abort_line(l))?;
    lines[..at].iter().rev().find(|l| !l.is_empty() && !is_unikraft_message(l) && !is_hint(l)).map(|l| l.to_string())
}

/// std's hint after the message it aborts with, which says nothing about the abort.
fn is_hint(line: &str) -> bool {
    line.starts_with("note: run with `RUST_BACKTRACE=")
}

fn is_abort_line(line: &str) -> bool {
    line == ABORT_LINE || (line.contains("[libmusl]") && line.ends_with("abort called") && is_unikraft_message(line))
}

/// Unikraft's kernel messages: `CRIT: [libmusl] ...`, `[    0.1] CRIT: ...`, `ERR: ...`.
fn is_unikraft_message(line: &str) -> bool {
    let text = match line.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or(line, |(_, after)| after.trim_start()),
        None => line,
    };
    ["CRIT:", "ERR:", "WARN:", "Info:", "dbg:"].iter().any(|p| text.starts_with(p))
}

/// How a run that ended in an abort is described: the status and the last line.
pub fn describe(console: &str) -> String {
    match last_line_before_abort(console) {
        Some(line) => format!("aborted: status {ABORT_STATUS}, SIGABRT on Linux; its last line: `{line}`"),
        None => format!("aborted: status {ABORT_STATUS}, SIGABRT on Linux"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_line_before_the_glue_s_abort_is_found() {
        let console = "running 3 tests\ntest a ... ok\nmemory allocation of 17825792 bytes failed\n\
                       note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n\n\
                       rt-unikraft: abort\nrt-unikraft: exit status 134\n";
        assert!(aborted(console));
        assert_eq!(last_line_before_abort(console).as_deref(), Some("memory allocation of 17825792 bytes failed"));
        assert!(describe(console).contains("status 134") && describe(console).contains("17825792"));
    }

    #[test]
    fn lib_musl_s_own_abort_counts_and_unikraft_s_messages_are_skipped() {
        // As Unikraft 0.16.3 prints it.
        let console = "test f::nan ... \n[    0.167333] CRIT: [libmusl] <abort.c @    7> abort called\n";
        assert!(aborted(console));
        assert_eq!(last_line_before_abort(console).as_deref(), Some("test f::nan ..."));
        // An app that merely prints the words did not abort.
        assert!(!aborted("the app says: [libmusl] abort called\nrt-unikraft: aborted\n"));
        assert_eq!(last_line_before_abort("no abort here\n"), None);
    }

    #[test]
    fn the_glue_uses_the_same_abort_constants() {
        let glue = include_str!("../../../rt-unikraft/glue/main.c");
        assert!(glue.contains(&format!("#define RT_UNIKRAFT_ABORT_STATUS {ABORT_STATUS}\n")));
        assert!(glue.contains(&format!("#define RT_UNIKRAFT_ABORT_LINE \"{ABORT_LINE}\"\n")));
        assert!(glue.contains(&format!("exit status {ABORT_STATUS}\\n\"")));
        assert!(glue.contains("__wrap_abort(void)"));
    }
}
