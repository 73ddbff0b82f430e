//! `cargo unikraft run --gdb`: how to attach gdb to a guest waiting in QEMU's gdb stub.
//!
//! Unikraft's build leaves two images side by side: `<name>_qemu-x86_64`, stripped, which
//! QEMU boots, and `<name>_qemu-x86_64.dbg`, the same link with its symbols and debug
//! information, which gdb reads. The guest runs at the addresses it was linked at (no
//! relocation), so the `.dbg` file's symbols match the booted image as they are.
//!
//! The program's own `main` (`<crate>::main`) is named by its mangled symbol in the hint:
//! the Rust code is built in the release profile, without debug information unless the
//! crate's profile asks for it, and gdb finds a function without debug information only
//! by its exact (mangled or hashed) name.

use std::path::{Path, PathBuf};

use object::{Object, ObjectSymbol};

/// The image with symbols beside a Unikraft image.
pub fn debug_image(image: &Path) -> PathBuf {
    let mut name = image.as_os_str().to_owned();
    name.push(".dbg");
    PathBuf::from(name)
}

/// The symbol of `<krate>::main` in `dbg` (Rust's legacy mangling,
/// `_ZN<len><krate>4main17h<hash>E`), if it is there.
pub fn app_main_symbol(dbg: &Path, krate: &str) -> Option<String> {
    let data = std::fs::read(dbg).ok()?;
    let file = object::File::parse(&*data).ok()?;
    let prefix = format!("_ZN{}{krate}4main17h", krate.len());
    file.symbols()
        .filter_map(|s| s.name().ok())
        .find(|n| n.starts_with(&prefix) && n.ends_with('E'))
        .map(str::to_string)
}

/// The lines that tell the user how to attach: the gdb command that loads the symbols,
/// connects, stops in the program's `main` (`<krate>::main` when the image has it, else
/// the C `main` that calls it) and continues the guest.
pub fn attach_hint(image: &Path, port: u16, krate: &str) -> String {
    let dbg = debug_image(image);
    let (symbol, what) = match app_main_symbol(&dbg, krate) {
        Some(symbol) => (symbol, format!("{krate}::main")),
        None => ("main".to_string(), "the C main that starts the app".to_string()),
    };
    format!(
        "cargo-unikraft: QEMU's gdb stub listens on 127.0.0.1:{port}; the guest waits for a debugger. To stop in \
         {what}, in another terminal:\n  gdb {} -ex 'target remote 127.0.0.1:{port}' -ex 'break {symbol}' -ex \
         continue\ncargo-unikraft: (docs/debugging.md says more)",
        dbg.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hint_names_the_debug_image_and_the_port() {
        let image = Path::new("/t/unikraft/hello/build-qemu-x86_64/hello_qemu-x86_64");
        let hint = attach_hint(image, 4321, "hello");
        assert!(
            hint.contains(
                "gdb /t/unikraft/hello/build-qemu-x86_64/hello_qemu-x86_64.dbg -ex 'target remote 127.0.0.1:4321' \
                 -ex 'break main' -ex continue"
            ),
            "{hint}"
        );
    }

    /// This test binary's own symbols stand in for a `.dbg` image: `<crate>::main` is
    /// found by its mangled name only when the crate has one.
    #[test]
    fn the_apps_main_is_found_by_its_mangled_name() {
        let exe = std::env::current_exe().unwrap();
        assert_eq!(app_main_symbol(&exe, "no_such_crate"), None);
        assert_eq!(app_main_symbol(Path::new("/nonexistent"), "x"), None);
    }
}
