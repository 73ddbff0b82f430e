//! Console output: `print!`/`println!` over the backend's console service.
//!
//! Output is formatted into a small stack buffer and flushed in chunks, so printing
//! never allocates.

use core::fmt::{self, Write};

/// A `fmt::Write` sink that batches output into 256-byte writes to the console.
pub struct Console {
    buf: [u8; 256],
    len: usize,
}

impl Console {
    /// An empty console writer.
    pub const fn new() -> Self {
        Console { buf: [0; 256], len: 0 }
    }

    /// Writes out whatever is buffered.
    pub fn flush(&mut self) {
        if self.len > 0 {
            crate::services::console_write(&self.buf[..self.len]);
            self.len = 0;
        }
    }
}

impl Default for Console {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for chunk in s.as_bytes().chunks(self.buf.len()) {
            if self.len + chunk.len() > self.buf.len() {
                self.flush();
            }
            self.buf[self.len..self.len + chunk.len()].copy_from_slice(chunk);
            self.len += chunk.len();
        }
        Ok(())
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    let mut console = Console::new();
    let _ = console.write_fmt(args);
    console.flush();
}

/// Prints to the backend console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::_print(format_args!($($arg)*)) };
}

/// Prints to the backend console, with a newline.
#[macro_export]
macro_rules! println {
    () => { $crate::console::_print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::console::_print(format_args!("{}\n", format_args!($($arg)*))) };
}
