//! The hosted (`unix`) executable. The app itself is the library: its `unikernel::main!`
//! defines the process entry, so this file only links it.
#![forbid(unsafe_code)]
#![no_main]

extern crate conformance_std_net;
