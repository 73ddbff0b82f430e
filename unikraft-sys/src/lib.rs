//! `unikraft-sys`: raw declarations of the Unikraft items rt-unikraft uses directly.
//!
//! Most of rt-unikraft's contact with Unikraft goes through its C glue (`rt-unikraft/glue`,
//! compiled by Unikraft's own build against the real headers), because the device APIs
//! are largely inline functions and callbacks. What crosses into Rust directly is listed
//! here by hand: the platform clocks, and the two capability structs the glue hands over
//! as they are (`uk_netdev_info`, `uk_blkdev_cap`).
//!
//! Hand-written declarations are only trustworthy when checked: `tests/layout.rs` runs
//! bindgen on the real headers (with the flags of a real Unikraft build) and compares
//! every size, field offset and function signature below. With the `bindgen` feature,
//! `build.rs` generates complete bindings into [`generated`] instead.
//!
//! Layouts are those of Unikraft RELEASE-0.16.3 on x86_64.
#![no_std]
#![allow(non_camel_case_types)]

use core::ffi::c_int;

/// Nanoseconds (`__nsec`, `include/uk/arch/time.h`).
pub type __nsec = u64;
/// A sector number (`__sector`).
pub type __sector = u64;

/// `struct uk_netdev_info` (`lib/uknetdev/include/uk/netdev_core.h`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct uk_netdev_info {
    pub max_rx_queues: u16,
    pub max_tx_queues: u16,
    /// If true, queues are allocated in pairs.
    pub in_queue_pairs: c_int,
    pub max_mtu: u16,
    /// Headroom the driver needs before a frame it transmits.
    pub nb_encap_tx: u16,
    /// Headroom the driver needs before a frame it receives.
    pub nb_encap_rx: u16,
    /// Alignment of packet data buffers.
    pub ioalign: u16,
    pub features: u32,
}

/// `struct uk_blkdev_cap` (`lib/ukblkdev/include/uk/blkdev_core.h`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct uk_blkdev_cap {
    pub sectors: __sector,
    pub ssize: usize,
    /// `O_RDONLY`, `O_RDWR` or `O_WRONLY`.
    pub mode: c_int,
    pub max_sectors_per_req: __sector,
    pub ioalign: u16,
}

/// `uk_netdev_rx_one` / `uk_netdev_tx_one` status bits.
pub const UK_NETDEV_STATUS_SUCCESS: c_int = 0x1;
pub const UK_NETDEV_STATUS_MORE: c_int = 0x2;
pub const UK_NETDEV_STATUS_UNDERRUN: c_int = 0x4;
/// `uk_blkdev_queue_submit_one` status bits.
pub const UK_BLKDEV_STATUS_SUCCESS: c_int = 0x1;
pub const UK_BLKDEV_STATUS_MORE: c_int = 0x2;

unsafe extern "C" {
    /// Nanoseconds since boot (`include/uk/plat/time.h`).
    pub fn ukplat_monotonic_clock() -> __nsec;
    /// Nanoseconds since the Unix epoch.
    pub fn ukplat_wall_clock() -> __nsec;
}

/// The declarations above as (name, parameter count, return type), for the layout test.
pub const FUNCTIONS: &[(&str, usize, &str)] =
    &[("ukplat_monotonic_clock", 0, "__nsec"), ("ukplat_wall_clock", 0, "__nsec")];

/// Complete bindings generated at build time (`bindgen` feature).
#[cfg(feature = "bindgen")]
#[allow(non_upper_case_globals, non_snake_case, dead_code, missing_docs, clippy::all)]
pub mod generated {
    include!(concat!(env!("OUT_DIR"), "/unikraft.rs"));
}
