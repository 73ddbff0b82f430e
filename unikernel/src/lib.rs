//! The crate an app depends on: `shared-core`'s API plus exactly one backend.
//!
//! ```toml
//! [dependencies]
//! unikernel = { path = "...", default-features = false }
//! [features]
//! default = ["unix"]
//! unix = ["unikernel/unix"]
//! ```
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! unikernel::main!(run);
//! fn run() -> i32 { unikernel::println!("hello"); 0 }
//! ```
//!
//! # Backend selection
//!
//! `shared-core` declares its services as link-time symbols; this crate defines them from
//! the selected backend's [`Platform`](shared_core::services::Platform) implementation.
//! It is the only crate that does, and it does so only when exactly one backend feature is
//! on, so zero or two backends is a `compile_error!` naming the fix rather than a linker
//! error about missing or duplicate symbols.
#![no_std]
#![warn(missing_docs)]

pub use shared_core::*;

#[cfg(not(any(feature = "unix", feature = "unikraft", feature = "solo5")))]
compile_error!(
    "no unikernel backend selected: enable exactly one feature of the `unikernel` crate: \
     `unix` (hosted Linux process), `unikraft` or `solo5`. For example, in your app's \
     Cargo.toml: `[features] default = [\"unix\"]` with `unix = [\"unikernel/unix\"]`, \
     or build with `--features unikernel/unix`."
);

#[cfg(any(
    all(feature = "unix", feature = "unikraft"),
    all(feature = "unix", feature = "solo5"),
    all(feature = "unikraft", feature = "solo5"),
))]
compile_error!(
    "two unikernel backends selected: the features `unix`, `unikraft` and `solo5` of the \
     `unikernel` crate are exclusive. Keep one: build with `--no-default-features \
     --features <backend>` so an app's default `unix` feature is not added to the one \
     you asked for, and check `cargo tree -e features -i unikernel` for who enables which."
);

#[cfg(all(feature = "unix", not(any(feature = "unikraft", feature = "solo5"))))]
shared_core::provide_platform!(rt_unix::Unix);

#[cfg(all(feature = "unikraft", not(any(feature = "unix", feature = "solo5"))))]
shared_core::provide_platform!(rt_unikraft::Unikraft);

#[cfg(all(feature = "solo5", not(any(feature = "unix", feature = "unikraft"))))]
shared_core::provide_platform!(rt_solo5::Solo5);

/// Backend entry points the [`main!`] macro expands to. Not a public API.
#[doc(hidden)]
pub mod __private {
    #[cfg(all(feature = "unix", not(any(feature = "unikraft", feature = "solo5"))))]
    pub use rt_unix::start as backend_start;

    /// What an app's main function may return.
    /// Runs the app's entry with the runtime's services around it: heap sampling
    /// (`--heap-sample-ms`) starts before and prints its last sample after.
    pub fn run_app<R: ExitStatus>(entry: impl FnOnce() -> R) -> i32 {
        shared_core::heap::sampler::start_from_boot_args();
        let code = entry().code();
        shared_core::heap::sampler::finish();
        // One mapping for every backend: 256 or -1 must not reach a process's or Solo5's
        // `exit` as is (only the low byte survives).
        shared_core::services::exit_status(code)
    }

    pub trait ExitStatus {
        /// The process exit status.
        fn code(self) -> i32;
    }
    impl ExitStatus for i32 {
        fn code(self) -> i32 {
            self
        }
    }
    impl ExitStatus for () {
        fn code(self) -> i32 {
            0
        }
    }
    impl<E: core::fmt::Display> ExitStatus for Result<(), E> {
        fn code(self) -> i32 {
            match self {
                Ok(()) => 0,
                Err(e) => {
                    shared_core::println!("error: {e}");
                    1
                }
            }
        }
    }
}

/// Declares the app's entry function (`fn() -> i32`, `fn()` or `fn() -> Result<(), E>`).
///
/// The crate must be `#![no_main]`; what the macro defines depends on the backend:
/// * `unix`: the process's C `main`, which the C runtime calls;
/// * `unikraft`: `unikernel_app_run`, which rt-unikraft's `unikernel_main` calls once
///   the C `main` compiled by Unikraft's build has handed it `argc`/`argv`;
/// * `solo5`: the same `unikernel_app_run`, called by rt-solo5's `solo5_app_main`.
#[macro_export]
macro_rules! main {
    ($entry:path) => {
        $crate::__backend_entry!($entry);
    };
}

#[cfg(all(feature = "unix", not(any(feature = "unikraft", feature = "solo5"))))]
#[doc(hidden)]
#[macro_export]
macro_rules! __backend_entry {
    ($entry:path) => {
        #[unsafe(no_mangle)]
        extern "C" fn main(argc: i32, argv: *const *const u8) -> i32 {
            $crate::__private::backend_start(argc, argv, || $crate::__private::run_app($entry))
        }
    };
}

#[cfg(any(
    all(feature = "unikraft", not(any(feature = "unix", feature = "solo5"))),
    all(feature = "solo5", not(any(feature = "unix", feature = "unikraft")))
))]
#[doc(hidden)]
#[macro_export]
macro_rules! __backend_entry {
    ($entry:path) => {
        #[unsafe(no_mangle)]
        extern "C" fn unikernel_app_run() -> i32 {
            $crate::__private::run_app($entry)
        }
    };
}

/// With zero or two backends the `compile_error!`s above say what to fix; this keeps
/// `main!` from adding a second, confusing error.
#[cfg(any(
    not(any(feature = "unix", feature = "unikraft", feature = "solo5")),
    all(feature = "unix", feature = "unikraft"),
    all(feature = "unix", feature = "solo5"),
    all(feature = "unikraft", feature = "solo5"),
))]
#[doc(hidden)]
#[macro_export]
macro_rules! __backend_entry {
    ($entry:path) => {};
}
