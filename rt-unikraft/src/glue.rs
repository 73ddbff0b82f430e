//! The C ABI of rt-unikraft's glue (`glue/*.c`): this project's own functions, compiled
//! by Unikraft's build against Unikraft's headers (or, for the hosted-musl harness,
//! `glue/hosted.c`'s stand-ins). The only Unikraft structs that cross are the capability
//! structs declared (and layout-checked) in `unikraft-sys`.
//!
//! `glue/rt_glue.h` is the C side of this module: every function, struct and constant
//! here has its counterpart there, under the same name. The test at the bottom compiles
//! the header with the host's C compiler and checks each declaration against it, so the
//! two cannot drift apart silently. Errors are negative errno values (Linux numbering,
//! shared by musl, Unikraft and the `libc` crate): compare with `-libc::ENODEV` and the
//! like, never with bare numbers.

// Without the socket layer (feature `sockets`) or a device driver (`net`, `block`), its
// half of the contract is declared here and checked by the test, but nothing calls it.
#![cfg_attr(not(any(all(feature = "sockets", feature = "block"), test)), allow(dead_code, unused_macros))]

use core::ffi::{c_char, c_int, c_uint, c_void};

use unikraft_sys::{uk_blkdev_cap, uk_netdev_info};

/// Most pool slots the glue can lend (`RTUK_NET_MAX_SLOTS`).
pub const RTUK_NET_MAX_SLOTS: usize = 4096;
/// The largest frame, Ethernet header included, that Unikraft's virtio-net driver accepts
/// (`RTUK_NET_MAX_FRAME`). Receive buffers are never longer (see docs/unikraft.md).
pub const RTUK_NET_MAX_FRAME: usize = 1514;
/// The MTU the glue reports when the driver reports none, or more than it can carry.
pub const RTUK_NET_DEFAULT_MTU: u16 = 1500;
/// A driver-reported MTU below this is not believed (`RTUK_NET_MIN_MTU`; the glue uses it).
#[allow(dead_code)]
pub const RTUK_NET_MIN_MTU: u16 = 576;

/// `rtuk_net_rx` status bit: the out-parameter holds a received frame.
pub const RTUK_NET_RX_FRAME: c_int = 0x1;
/// `rtuk_net_rx` status bit: more frames may be waiting.
pub const RTUK_NET_RX_MORE: c_int = 0x2;
/// `rtuk_net_rx` status bit: the driver discarded a frame, and its buffer with it.
pub const RTUK_NET_RX_DROPPED: c_int = 0x4;

/// `rtuk_net_tx`: the ring is full, try again later.
pub const RTUK_NET_TX_FULL: c_int = 0;
/// `rtuk_net_tx`: the driver took the frame.
pub const RTUK_NET_TX_QUEUED: c_int = 1;

/// [`NetRxFrame::flags`]: the sender left its checksum for the receiver to complete.
pub const RTUK_NET_RX_F_PARTIAL_CSUM: u16 = 0x1;

/// `rtuk_net_einfo`: the address and prefix the platform gave (`netdev.ip=`'s first field).
pub const RTUK_NET_EINFO_IPV4_CIDR: c_int = 0;
/// `rtuk_net_einfo`: the gateway.
pub const RTUK_NET_EINFO_IPV4_GW: c_int = 1;
/// `rtuk_net_einfo`: the primary DNS server.
pub const RTUK_NET_EINFO_IPV4_DNS0: c_int = 2;

// The block constants are for src/block.rs, which still spells them itself.
/// `rtuk_blk_submit` operations (Unikraft's `enum uk_blkreq_op`).
#[allow(dead_code)]
pub const RTUK_BLK_OP_READ: c_int = 0;
#[allow(dead_code)]
pub const RTUK_BLK_OP_WRITE: c_int = 1;
#[allow(dead_code)]
pub const RTUK_BLK_OP_FLUSH: c_int = 4;
/// `rtuk_blk_poll`: the request is still running.
#[allow(dead_code)]
pub const RTUK_BLK_RUNNING: c_int = 0;
/// `rtuk_blk_poll`: the request is done.
#[allow(dead_code)]
pub const RTUK_BLK_DONE: c_int = 1;

/// `struct rtuk_net_rx_frame`: one received frame as the driver reported it. The frame
/// starts at the slot's buffer; [`crate::frame`] turns these numbers into its length.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NetRxFrame {
    /// The pool slot.
    pub slot: u16,
    /// The driver's length, which counts the virtio-net header too.
    pub len: u16,
    /// How many bytes of `len` are that header.
    pub header: u16,
    /// `RTUK_NET_RX_F_*` bits.
    pub flags: u16,
    /// With [`RTUK_NET_RX_F_PARTIAL_CSUM`]: where summing starts (from the frame's start).
    pub csum_start: u16,
    /// Where the checksum field is, from `csum_start`.
    pub csum_offset: u16,
}

/// `struct rtuk_iovec`: one buffer of a message (struct iovec's layout; socket.c checks it).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RtukIovec {
    /// Its start.
    pub base: *mut c_void,
    /// Its length.
    pub len: usize,
}

/// Declares the glue's functions, and (for the ABI test) records each signature as text.
macro_rules! glue_functions {
    ($( $(#[$meta:meta])* pub fn $name:ident( $($arg:ident : $ty:ty),* $(,)? ) $(-> $ret:ty)?; )*) => {
        unsafe extern "C" {
            $( $(#[$meta])* pub fn $name($($arg: $ty),*) $(-> $ret)?; )*
        }

        /// (name, parameter types, return type) of every function above, as written.
        #[cfg(test)]
        pub(crate) const FUNCTIONS: &[(&str, &[&str], &str)] =
            &[$( (stringify!($name), &[$(stringify!($ty)),*], glue_functions!(@ret $($ret)?)) ),*];
    };
    (@ret) => { "()" };
    (@ret $ret:ty) => { stringify!($ret) };
}

glue_functions! {
    /// The executor's thread sleeps until a wake-up for it or `timeout_ns` passes.
    pub fn rtuk_wait_executor(timeout_ns: u64);
    /// The socket layer's network thread sleeps until a wake-up for it or `timeout_ns`.
    pub fn rtuk_wait_net(timeout_ns: u64);
    /// Wakes every waiter: their next (or current) wait returns at once.
    pub fn rtuk_kick();
    /// Wakes the executor only (block completions; the C side calls it).
    #[allow(dead_code)]
    pub fn rtuk_kick_executor();

    pub fn rtuk_net_count() -> c_int;
    pub fn rtuk_net_open(index: c_uint, info: *mut uk_netdev_info, mac: *mut u8, mtu: *mut u16) -> c_int;
    pub fn rtuk_net_attach(base: *mut u8, stride: usize, headroom: u16, slots: u16, rx_len: u16) -> c_int;
    pub fn rtuk_net_start() -> c_int;
    /// How many frames the driver's transmit queue can hold (pool slots it may park).
    pub fn rtuk_net_tx_frames() -> c_int;
    pub fn rtuk_net_post_rx(slot: u16) -> c_int;
    pub fn rtuk_net_rx(out: *mut NetRxFrame) -> c_int;
    pub fn rtuk_net_tx(slot: u16, len: u16) -> c_int;
    pub fn rtuk_net_tx_reclaim(out: *mut u16, max: c_int) -> c_int;
    /// The platform's IPv4 setting `kind` for the open device, copied into `buf`.
    pub fn rtuk_net_einfo(kind: c_int, buf: *mut c_char, len: usize) -> c_int;
    /// The device was dropped; it keeps the pool's receive buffers (see rt_glue.h).
    pub fn rtuk_net_close() -> c_int;

    pub fn rtuk_blk_open(index: c_uint, cap: *mut uk_blkdev_cap) -> c_int;
    pub fn rtuk_blk_submit(op: c_int, sector: u64, sectors: u64, buf: *mut c_void) -> c_int;
    pub fn rtuk_blk_poll(handle: c_int) -> c_int;
    /// Gives the device back; running requests are abandoned (their buffers kept).
    pub fn rtuk_blk_close() -> c_int;

    /// Sets poll events on a socket file (`posix_sock_event_set`). The socket layer uses
    /// `assign` (it always knows the whole set); set and clear complete the helpers.
    #[allow(dead_code)]
    pub fn rtuk_sock_event_set(file: *const c_void, events: u32);
    /// Clears poll events on a socket file.
    #[allow(dead_code)]
    pub fn rtuk_sock_event_clear(file: *const c_void, events: u32);
    /// Sets a socket file's events to exactly these (raising only the new ones).
    pub fn rtuk_sock_event_assign(file: *const c_void, events: u32);
}

/// The functions the other way round: defined in Rust (`#[unsafe(no_mangle)]`), called by
/// the C glue. The macro checks at compile time that each definition has the listed
/// type, and (for the ABI test) records each signature as text.
macro_rules! rust_exports {
    ($( $path:path : fn $name:ident( $($ty:ty),* $(,)? ) $(-> $ret:ty)?; )*) => {
        const _: () = {
            $( let _: unsafe extern "C" fn($($ty),*) $(-> $ret)? = $path; )*
        };

        /// (name, parameter types, return type) of every Rust function the glue calls.
        #[cfg(test)]
        pub(crate) const EXPORTS: &[(&str, &[&str], &str)] =
            &[$( (stringify!($name), &[$(stringify!($ty)),*], glue_functions!(@ret $($ret)?)) ),*];
    };
}

#[cfg(any(feature = "sockets", test))]
rust_exports! {
    crate::socket::entry::rtuk_sock_create: fn rtuk_sock_create(c_int, c_int) -> i64;
    crate::socket::entry::rtuk_sock_accept: fn rtuk_sock_accept(u64, *mut c_void, *mut u32, c_int) -> i64;
    crate::socket::entry::rtuk_sock_bind: fn rtuk_sock_bind(u64, *const c_void, u32) -> c_int;
    crate::socket::entry::rtuk_sock_connect: fn rtuk_sock_connect(u64, *const c_void, u32) -> c_int;
    crate::socket::entry::rtuk_sock_listen: fn rtuk_sock_listen(u64, c_int) -> c_int;
    crate::socket::entry::rtuk_sock_shutdown: fn rtuk_sock_shutdown(u64, c_int) -> c_int;
    crate::socket::entry::rtuk_sock_getname: fn rtuk_sock_getname(u64, c_int, *mut c_void, *mut u32) -> c_int;
    crate::socket::entry::rtuk_sock_getsockopt: fn rtuk_sock_getsockopt(u64, c_int, c_int, *mut c_void, *mut u32) -> c_int;
    crate::socket::entry::rtuk_sock_setsockopt: fn rtuk_sock_setsockopt(u64, c_int, c_int, *const c_void, u32) -> c_int;
    crate::socket::entry::rtuk_sock_recv: fn rtuk_sock_recv(u64, *const RtukIovec, c_int, c_int, *mut c_void, *mut u32, *mut c_int) -> i64;
    crate::socket::entry::rtuk_sock_send: fn rtuk_sock_send(u64, *const RtukIovec, c_int, c_int, *const c_void, u32) -> i64;
    crate::socket::entry::rtuk_sock_ioctl: fn rtuk_sock_ioctl(u64, c_int, *mut c_void) -> c_int;
    crate::socket::entry::rtuk_sock_poll: fn rtuk_sock_poll(u64, *const c_void);
    crate::socket::entry::rtuk_sock_close: fn rtuk_sock_close(u64) -> c_int;
}

#[cfg(test)]
mod tests {
    //! The Rust declarations against `glue/rt_glue.h`, as the host's C compiler sees it.
    //!
    //! The test writes a C file of `_Static_assert`s, one per fact the Rust side relies on
    //! (each constant's value, the struct's size and field offsets, each function's type),
    //! and compiles it. It also reads the header's names, so a constant or function that
    //! exists only in C is caught too.

    use super::*;
    use core::mem::{offset_of, size_of};
    use std::path::{Path, PathBuf};

    fn glue_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("glue")
    }

    /// Every constant this module shares with the header, by its C name.
    fn constants() -> Vec<(&'static str, i64)> {
        vec![
            ("RTUK_NET_MAX_SLOTS", RTUK_NET_MAX_SLOTS as i64),
            ("RTUK_NET_MAX_FRAME", RTUK_NET_MAX_FRAME as i64),
            ("RTUK_NET_DEFAULT_MTU", RTUK_NET_DEFAULT_MTU.into()),
            ("RTUK_NET_MIN_MTU", RTUK_NET_MIN_MTU.into()),
            ("RTUK_NET_RX_FRAME", RTUK_NET_RX_FRAME.into()),
            ("RTUK_NET_RX_MORE", RTUK_NET_RX_MORE.into()),
            ("RTUK_NET_RX_DROPPED", RTUK_NET_RX_DROPPED.into()),
            ("RTUK_NET_TX_FULL", RTUK_NET_TX_FULL.into()),
            ("RTUK_NET_TX_QUEUED", RTUK_NET_TX_QUEUED.into()),
            ("RTUK_NET_RX_F_PARTIAL_CSUM", RTUK_NET_RX_F_PARTIAL_CSUM.into()),
            ("RTUK_NET_EINFO_IPV4_CIDR", RTUK_NET_EINFO_IPV4_CIDR.into()),
            ("RTUK_NET_EINFO_IPV4_GW", RTUK_NET_EINFO_IPV4_GW.into()),
            ("RTUK_NET_EINFO_IPV4_DNS0", RTUK_NET_EINFO_IPV4_DNS0.into()),
            ("RTUK_BLK_OP_READ", RTUK_BLK_OP_READ.into()),
            ("RTUK_BLK_OP_WRITE", RTUK_BLK_OP_WRITE.into()),
            ("RTUK_BLK_OP_FLUSH", RTUK_BLK_OP_FLUSH.into()),
            ("RTUK_BLK_RUNNING", RTUK_BLK_RUNNING.into()),
            ("RTUK_BLK_DONE", RTUK_BLK_DONE.into()),
        ]
    }

    /// The errno values the Rust side compares glue results with (from the `libc` crate).
    fn errnos() -> Vec<(&'static str, i64)> {
        [("ENODEV", libc::ENODEV), ("EBUSY", libc::EBUSY), ("EINVAL", libc::EINVAL), ("ENOMEM", libc::ENOMEM)]
            .into_iter()
            .map(|(n, v)| (n, v.into()))
            .collect()
    }

    /// The C type for a Rust type as written in the declarations above.
    fn c_type(rust: &str) -> String {
        let rust = rust.trim();
        for prefix in ["*mut ", "*const "] {
            if let Some(inner) = rust.strip_prefix(prefix) {
                let inner = c_type(inner);
                let konst = if prefix == "*const " { "const " } else { "" };
                return format!("{konst}{inner} *");
            }
        }
        match rust {
            "()" | "c_void" => "void",
            "u8" => "uint8_t",
            "u16" => "uint16_t",
            "u32" => "uint32_t",
            "u64" => "uint64_t",
            "i64" => "int64_t",
            "usize" => "size_t",
            "c_int" => "int",
            "c_uint" => "unsigned",
            "c_char" => "char",
            "NetRxFrame" => "struct rtuk_net_rx_frame",
            "RtukIovec" => "struct rtuk_iovec",
            "uk_netdev_info" => "struct uk_netdev_info",
            "uk_blkdev_cap" => "struct uk_blkdev_cap",
            other => panic!("no C type known for the Rust type `{other}`: add it to c_type()"),
        }
        .to_string()
    }

    /// `#define NAME` and `NAME(` names in the header that start with `prefix`.
    fn header_names(header: &str, prefix: &str, define: bool) -> Vec<String> {
        let mut names = Vec::new();
        for line in header.lines() {
            let line = line.trim();
            let rest = if define {
                match line.strip_prefix("#define ") {
                    Some(rest) => rest,
                    None => continue,
                }
            } else {
                if line.starts_with('#') || line.starts_with('*') || line.starts_with("/*") {
                    continue;
                }
                match line.find(prefix) {
                    Some(at) if line[at..].contains('(') => &line[at..],
                    _ => continue,
                }
            };
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if name.starts_with(prefix) && (define || rest[name.len()..].starts_with('(')) {
                names.push(name);
            }
        }
        names
    }

    #[test]
    fn the_rust_declarations_match_rt_glue_h() {
        let header_path = glue_dir().join("rt_glue.h");
        let header = std::fs::read_to_string(&header_path).expect("read rt_glue.h");

        // Names: nothing in the header that Rust does not declare, and the other way round.
        let mut c_constants = header_names(&header, "RTUK_", true);
        c_constants.sort();
        let mut rust_constants: Vec<String> = constants().iter().map(|(n, _)| n.to_string()).collect();
        rust_constants.sort();
        assert_eq!(c_constants, rust_constants, "constants in rt_glue.h (left) and src/glue.rs (right)");
        let mut c_functions = header_names(&header, "rtuk_", false);
        c_functions.sort();
        let mut rust_functions: Vec<String> = FUNCTIONS.iter().chain(EXPORTS).map(|(n, _, _)| n.to_string()).collect();
        rust_functions.sort();
        assert_eq!(c_functions, rust_functions, "functions in rt_glue.h (left) and src/glue.rs (right)");

        // Values, layout and signatures, as the C compiler sees them.
        let mut c = String::from(
            "#include <errno.h>\n#include <stddef.h>\n#include \"rt_glue.h\"\n\
             #define SAME_TYPE(f, t) __builtin_types_compatible_p(__typeof__(&f), t)\n",
        );
        for (name, value) in constants().into_iter().chain(errnos()) {
            c += &format!("_Static_assert({name} == {value}, \"{name} is {value} in src/glue.rs\");\n");
        }
        let frame = "struct rtuk_net_rx_frame";
        let size = size_of::<NetRxFrame>();
        c += &format!("_Static_assert(sizeof({frame}) == {size}, \"size of {frame}: {size} in Rust\");\n");
        let fields = [
            ("slot", offset_of!(NetRxFrame, slot)),
            ("len", offset_of!(NetRxFrame, len)),
            ("header", offset_of!(NetRxFrame, header)),
            ("flags", offset_of!(NetRxFrame, flags)),
            ("csum_start", offset_of!(NetRxFrame, csum_start)),
            ("csum_offset", offset_of!(NetRxFrame, csum_offset)),
        ];
        for (field, offset) in fields {
            c += &format!(
                "_Static_assert(offsetof({frame}, {field}) == {offset}, \"{frame}.{field} at {offset} in Rust\");\n\
                 _Static_assert(sizeof((({frame} *)0)->{field}) == 2, \"{frame}.{field} is a u16 in Rust\");\n"
            );
        }
        let iovec = "struct rtuk_iovec";
        c += &format!(
            "_Static_assert(sizeof({iovec}) == {}, \"size of {iovec}\");\n\
             _Static_assert(offsetof({iovec}, base) == {}, \"{iovec}.base\");\n\
             _Static_assert(offsetof({iovec}, len) == {}, \"{iovec}.len\");\n",
            size_of::<RtukIovec>(),
            offset_of!(RtukIovec, base),
            offset_of!(RtukIovec, len)
        );
        for (name, params, ret) in FUNCTIONS.iter().chain(EXPORTS) {
            let params: Vec<String> = params.iter().map(|p| c_type(p)).collect();
            let params = if params.is_empty() { "void".to_string() } else { params.join(", ") };
            let ty = format!("{} (*)({params})", c_type(ret));
            c += &format!("_Static_assert(SAME_TYPE({name}, {ty}), \"{name} is {ty} in src/glue.rs\");\n");
        }

        let dir = std::env::temp_dir().join(format!("rt-unikraft-abi-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let source = dir.join("abi_check.c");
        std::fs::write(&source, &c).unwrap();
        // The host's C compiler as the `cc` crate finds it for a build script.
        let host = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
        let out = cc::Build::new()
            .cargo_metadata(false)
            .cargo_warnings(false)
            .target(&host)
            .host(&host)
            .opt_level(0)
            .debug(false)
            .get_compiler()
            .to_command()
            .args(["-std=c11", "-fsyntax-only", "-Wall", "-Werror", "-I"])
            .arg(glue_dir())
            .arg(&source)
            .output()
            .expect("run the host C compiler (cc)");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            out.status.success(),
            "src/glue.rs and glue/rt_glue.h disagree:\n{}\n--- the generated check\n{c}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn every_declared_function_and_constant_is_checked() {
        // The check above covers what the tables list; make sure they are not empty.
        assert!(FUNCTIONS.len() >= 14, "{FUNCTIONS:?}");
        assert!(EXPORTS.len() >= 14, "{EXPORTS:?}");
        assert!(EXPORTS.iter().any(|(n, p, r)| *n == "rtuk_sock_poll" && p == &["u64", "*const c_void"] && *r == "()"));
        assert!(FUNCTIONS.iter().any(|(n, p, r)| *n == "rtuk_net_rx" && p == &["*mut NetRxFrame"] && *r == "c_int"));
        assert_eq!(c_type("*mut *const u8"), "const uint8_t * *");
    }
}
