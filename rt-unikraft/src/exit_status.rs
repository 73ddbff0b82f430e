//! Getting an exit code out of a VM.
//!
//! A unikernel has no parent process to return a status to. Under QEMU, the
//! `isa-debug-exit` device turns a write to its I/O port into QEMU exiting with status
//! `(value << 1) | 1`. The runner (`cargo xtask kraft-run`) starts QEMU with
//! `-device isa-debug-exit,iobase=0xf4,iosize=0x04` and decodes its status:
//!
//! * odd status `s`: the app exited with code `(s - 1) / 2`;
//! * status 0: QEMU stopped without the app reporting (the guest powered off, crashed or
//!   rebooted with `-no-reboot`).
//!
//! Because a process status has 8 bits, codes 0..=127 survive the trip; larger codes
//! arrive modulo 128.
//!
//! The port (0xf4) is deliberately not Unikraft's own (0x501), which Unikraft writes
//! when it crashes; keeping them apart means a crash can never look like an exit code.

/// The I/O port of the `isa-debug-exit` device the runner adds.
pub const QEMU_EXIT_PORT: u16 = 0xf4;

/// Writes `code` to the exit port. Ignored when no such device exists.
pub fn report(code: i32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a single 32-bit port write. Unikraft runs the app in ring 0, where port I/O
    // is allowed; an unclaimed port is ignored by the VMM. Never called in a hosted
    // process (this crate is only linked into Unikraft images), where it would fault.
    unsafe {
        core::arch::asm!("out dx, eax", in("dx") QEMU_EXIT_PORT, in("eax") (code & 0x7f) as u32, options(nomem, nostack));
    }
}
