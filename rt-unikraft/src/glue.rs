//! The flat C ABI of rt-unikraft's glue (`glue/*.c`). These are this project's own
//! functions, compiled by Unikraft's build against Unikraft's headers (or, for the
//! hosted-musl harness, `glue/hosted.c`'s stand-ins); the Rust side never touches a
//! Unikraft struct directly.

use core::ffi::c_int;

/// `struct rtuk_net_info` in glue/netdev.c.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct RtukNetInfo {
    pub mac: [u8; 6],
    pub mtu: u16,
    pub headroom: u16,
    pub ioalign: u16,
}

/// `struct rtuk_blk_info` in glue/blkdev.c.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct RtukBlkInfo {
    pub sectors: u64,
    pub max_sectors_per_req: u64,
    pub sector_size: u32,
    pub ioalign: u32,
    pub read_only: i32,
}

unsafe extern "C" {
    /// Sleeps until a device event or `timeout_ns` passes.
    pub fn rtuk_wait(timeout_ns: u64);
    /// Makes the next `rtuk_wait` return at once.
    pub fn rtuk_kick();
    /// `ukplat_monotonic_clock()`.
    pub fn rtuk_monotonic_ns() -> u64;
    /// `ukplat_wall_clock()`.
    pub fn rtuk_wall_clock_ns() -> u64;

    pub fn rtuk_net_count() -> c_int;
    pub fn rtuk_net_open(index: u32, info: *mut RtukNetInfo) -> c_int;
    pub fn rtuk_net_attach(base: *mut u8, stride: usize, headroom: u16, slots: u16) -> c_int;
    pub fn rtuk_net_start() -> c_int;
    pub fn rtuk_net_post_rx(slot: u16) -> c_int;
    pub fn rtuk_net_rx(slot: *mut u16, len: *mut u16) -> c_int;
    pub fn rtuk_net_tx(slot: u16, len: u16) -> c_int;
    pub fn rtuk_net_tx_reclaim(out: *mut u16, max: c_int) -> c_int;

    pub fn rtuk_blk_open(index: u32, info: *mut RtukBlkInfo) -> c_int;
    pub fn rtuk_blk_submit(op: c_int, sector: u64, sectors: u64, buf: *mut core::ffi::c_void) -> c_int;
    pub fn rtuk_blk_poll(handle: c_int) -> c_int;
}
