//! `solo5-sys`: the Solo5 ABI (`include/solo5.h`, Solo5 v0.12.1) as rt-solo5 uses it.
//!
//! Hand-written and small; `tests/abi.rs` runs bindgen on the real header of a
//! provisioned Solo5 tree and compares every struct size, field offset and function
//! signature below (SKIP line without a tree).
#![no_std]
#![allow(non_camel_case_types)]

use core::ffi::{c_char, c_int};

pub type solo5_time_t = u64;
pub type solo5_handle_t = u64;
pub type solo5_handle_set_t = u64;
pub type solo5_off_t = u64;
/// `solo5_result_t` (an enum in C, int-sized).
pub type solo5_result_t = c_int;

pub const SOLO5_R_OK: solo5_result_t = 0;
pub const SOLO5_R_AGAIN: solo5_result_t = 1;
pub const SOLO5_R_EINVAL: solo5_result_t = 2;
pub const SOLO5_R_EUNSPEC: solo5_result_t = 3;

/// `struct solo5_start_info`.
#[repr(C)]
pub struct solo5_start_info {
    pub cmdline: *const c_char,
    pub heap_start: usize,
    pub heap_size: usize,
}

/// `struct solo5_net_info`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct solo5_net_info {
    pub mac_address: [u8; 6],
    /// Not including the Ethernet header.
    pub mtu: usize,
}

/// `struct solo5_block_info`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct solo5_block_info {
    /// Bytes.
    pub capacity: solo5_off_t,
    /// The I/O unit, bytes.
    pub block_size: solo5_off_t,
}

unsafe extern "C" {
    pub fn solo5_exit(status: c_int) -> !;
    pub fn solo5_abort() -> !;
    pub fn solo5_clock_monotonic() -> solo5_time_t;
    pub fn solo5_clock_wall() -> solo5_time_t;
    pub fn solo5_yield(deadline: solo5_time_t, ready_set: *mut solo5_handle_set_t);
    pub fn solo5_console_write(buf: *const c_char, size: usize);
    pub fn solo5_net_acquire(
        name: *const c_char,
        handle: *mut solo5_handle_t,
        info: *mut solo5_net_info,
    ) -> solo5_result_t;
    pub fn solo5_net_read(handle: solo5_handle_t, buf: *mut u8, size: usize, read_size: *mut usize) -> solo5_result_t;
    pub fn solo5_net_write(handle: solo5_handle_t, buf: *const u8, size: usize) -> solo5_result_t;
    pub fn solo5_block_acquire(
        name: *const c_char,
        handle: *mut solo5_handle_t,
        info: *mut solo5_block_info,
    ) -> solo5_result_t;
    pub fn solo5_block_read(handle: solo5_handle_t, offset: solo5_off_t, buf: *mut u8, size: usize) -> solo5_result_t;
    pub fn solo5_block_write(
        handle: solo5_handle_t,
        offset: solo5_off_t,
        buf: *const u8,
        size: usize,
    ) -> solo5_result_t;
}

/// The functions above as (name, parameter count), for the ABI test.
pub const FUNCTIONS: &[(&str, usize)] = &[
    ("solo5_exit", 1),
    ("solo5_abort", 0),
    ("solo5_clock_monotonic", 0),
    ("solo5_clock_wall", 0),
    ("solo5_yield", 2),
    ("solo5_console_write", 2),
    ("solo5_net_acquire", 3),
    ("solo5_net_read", 4),
    ("solo5_net_write", 3),
    ("solo5_block_acquire", 3),
    ("solo5_block_read", 4),
    ("solo5_block_write", 4),
];
