//! `cargo unikraft run --gdb`: how to attach gdb to a guest waiting in QEMU's gdb stub.
//!
//! Unikraft's build leaves two images side by side: `<name>_qemu-x86_64`, stripped, which
//! QEMU boots, and `<name>_qemu-x86_64.dbg`, the same link with its symbols and debug
//! information, which gdb reads. The guest runs at the addresses it was linked at (no
//! relocation), so the `.dbg` file's symbols match the booted image as they are.

use std::path::{Path, PathBuf};

/// The image with symbols beside a Unikraft image.
pub fn debug_image(image: &Path) -> PathBuf {
    let mut name = image.as_os_str().to_owned();
    name.push(".dbg");
    PathBuf::from(name)
}

/// The lines that tell the user how to attach: the gdb command that loads the symbols,
/// connects, stops in `main` and continues the guest.
pub fn attach_hint(image: &Path, port: u16) -> String {
    let dbg = debug_image(image);
    format!(
        "cargo-unikraft: QEMU's gdb stub listens on 127.0.0.1:{port}; the guest waits for a debugger. In another \
         terminal:\n  gdb {} -ex 'target remote 127.0.0.1:{port}' -ex 'break main' -ex continue\n\
         cargo-unikraft: (`break main` stops in the C main before the app's; see docs/debugging.md)",
        dbg.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hint_names_the_debug_image_and_the_port() {
        let image = Path::new("/t/unikraft/hello/build-qemu-x86_64/hello_qemu-x86_64");
        let hint = attach_hint(image, 4321);
        assert!(
            hint.contains(
                "gdb /t/unikraft/hello/build-qemu-x86_64/hello_qemu-x86_64.dbg -ex 'target remote 127.0.0.1:4321'"
            ),
            "{hint}"
        );
    }
}
