//! The flat C ABI of rt-unikraft's glue (`glue/*.c`): this project's own functions,
//! compiled by Unikraft's build against Unikraft's headers (or, for the hosted-musl
//! harness, `glue/hosted.c`'s stand-ins). The only Unikraft structs that cross are the
//! capability structs declared (and layout-checked) in `unikraft-sys`.

use core::ffi::c_int;

use unikraft_sys::{uk_blkdev_cap, uk_netdev_info};

unsafe extern "C" {
    /// Sleeps until a device event or `timeout_ns` passes.
    pub fn rtuk_wait(timeout_ns: u64);
    /// Makes the next `rtuk_wait` return at once.
    pub fn rtuk_kick();

    pub fn rtuk_net_count() -> c_int;
    pub fn rtuk_net_open(index: u32, info: *mut uk_netdev_info, mac: *mut u8, mtu: *mut u16) -> c_int;
    pub fn rtuk_net_attach(base: *mut u8, stride: usize, headroom: u16, slots: u16) -> c_int;
    pub fn rtuk_net_start() -> c_int;
    /// How many frames the driver's transmit queue can hold (pool slots it may park).
    pub fn rtuk_net_tx_frames() -> c_int;
    pub fn rtuk_net_post_rx(slot: u16) -> c_int;
    pub fn rtuk_net_rx(slot: *mut u16, len: *mut u16) -> c_int;
    pub fn rtuk_net_tx(slot: u16, len: u16) -> c_int;
    pub fn rtuk_net_tx_reclaim(out: *mut u16, max: c_int) -> c_int;

    pub fn rtuk_blk_open(index: u32, cap: *mut uk_blkdev_cap) -> c_int;
    pub fn rtuk_blk_submit(op: c_int, sector: u64, sectors: u64, buf: *mut core::ffi::c_void) -> c_int;
    pub fn rtuk_blk_poll(handle: c_int) -> c_int;
}
