//! The hosted (`unix`) executable. The app itself is the library: its `unikernel::main!`
//! defines the process entry, so this file only links it. Unikernel backends build the
//! same library as a `staticlib` instead (`cargo xtask kraft-run`).
#![forbid(unsafe_code)]
#![no_std]
#![no_main]

extern crate http;
