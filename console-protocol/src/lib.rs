//! The console lines that cross the guest/host boundary, with one grammar for both sides.
//!
//! A guest has one channel back to the host tools: its console. Some lines on it are
//! meant for a program, not a person: the host draws heap samples, symbolizes a
//! backtrace, takes an exit status too large for QEMU's exit port, or waits for a server
//! to say it is ready. Each such line is defined here once, as a type whose `Display` is
//! what the guest prints and whose `parse` is what the host reads, and a round-trip test
//! keeps the two in step. The conformance report has its own grammar in
//! `conformance-protocol`.
//!
//! | line | written by | read by |
//! |---|---|---|
//! | [`heap_sample::Sample`], [`heap_sample::Dropped`] | `shared_core::heap::sampler` | cargo-unikraft's `--heap-plot` |
//! | [`backtrace::Backtrace`] | rt-unikraft's panic hook (`backtrace = true`) | cargo-unikraft's runner, which symbolizes it |
//! | [`exit_status::ExitStatus`] | rt-unikraft's C glue (`glue/main.c`, checked by a test there) | cargo-unikraft's QEMU runner |
//! | [`ready::Ready`] | apps that serve (the conformance app) | the host side that talks to them |
//!
//! `#![no_std]` without `alloc`: every backend's guest can link it, and lines are
//! formatted with no allocation.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod backtrace;
pub mod exit_status;
pub mod heap_sample;
pub mod ready;

/// The words of `line` after `prefix` (which must be followed by a space or the end),
/// with trailing whitespace (a serial console's `\r`) removed.
fn after_word<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = line.trim_end().strip_prefix(prefix)?;
    if rest.is_empty() {
        Some(rest)
    } else {
        rest.strip_prefix(' ')
    }
}
