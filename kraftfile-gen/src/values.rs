//! The values the generator sets itself and the ones it accepts: the kconfig std and each
//! device need, guest memory sizes, and what a defconfig line can hold.

use std::collections::BTreeMap;

/// The kconfig every Rust app needs on Unikraft 0.16 with lib-musl (see docs/runtime.md).
pub fn base_kconfig() -> BTreeMap<String, String> {
    [
        "CONFIG_LIBUKBUS",
        "CONFIG_LIBUKSGLIST",
        "CONFIG_LIBMUSL",
        "CONFIG_LIBUKSWRAND",
        "CONFIG_LIBPOSIX_FUTEX",
        "CONFIG_LIBPOSIX_MMAP",
        "CONFIG_LIBPOSIX_SYSINFO",
        "CONFIG_LIBPOSIX_TIME",
        "CONFIG_LIBVFSCORE_AUTOMOUNT_CI",
        "CONFIG_LIBVFSCORE_AUTOMOUNT_CI_RAMFS",
        "CONFIG_LIBRAMFS",
        // rt-unikraft's executor waits on a semaphore that device interrupts signal.
        "CONFIG_LIBUKLOCK",
        "CONFIG_LIBUKLOCK_SEMAPHORE",
        // Unikraft's kernel parameters: what precedes `--` on the command line is theirs
        // (urunc passes `netdev.ip=... env.vars=[...] -- <cmd>`), the app gets the rest.
        "CONFIG_LIBUKLIBPARAM",
        // `env.vars=[K=V ...]` becomes the app's environment.
        "CONFIG_LIBPOSIX_ENVIRON",
        "CONFIG_LIBPOSIX_ENVIRON_LIBPARAM",
    ]
    .into_iter()
    .map(|k| (k.to_string(), "y".to_string()))
    .collect()
}

/// The debug information level Unikraft's C code is compiled with, unless the app's
/// `kconfig` picks one (any `CONFIG_DEBUG_SYMBOLS_LVL*`): `-g2`. Unikraft's own default,
/// `-g3`, adds every macro definition of every C file to its debug information; lib-musl's
/// prelinked object then carries about 350 MB of macro strings, which the final link reads
/// and merges on every relink (about 1.5 s of CPU of a 2 s relink). `-g2` keeps what gdb
/// and `addr2line` use (functions, variables, types, lines); only C macros are gone.
pub const DEFAULT_DEBUG_LEVEL: &str = "CONFIG_DEBUG_SYMBOLS_LVL2";

/// The prefix of the debug-level choice's options (`LVL0` to `LVL3`).
pub const DEBUG_LEVEL_PREFIX: &str = "CONFIG_DEBUG_SYMBOLS_LVL";

/// Devices an app can ask for in `devices`, and the kconfig each needs (virtio over PCI,
/// what QEMU and Firecracker give a guest).
pub const KNOWN_DEVICES: &[(&str, &[&str])] = &[
    // `netdev.ip=<cidr>:<gw>:<dns>` reaches the driver as einfo (rt-unikraft reads it).
    (
        "net",
        &[
            "CONFIG_LIBUKNETDEV",
            "CONFIG_LIBUKNETDEV_EINFO_LIBPARAM",
            "CONFIG_LIBVIRTIO_NET",
            "CONFIG_LIBVIRTIO_PCI",
            "CONFIG_LIBUKBUS_PCI",
        ],
    ),
    ("block", &["CONFIG_LIBUKBLKDEV", "CONFIG_LIBVIRTIO_BLK", "CONFIG_LIBVIRTIO_PCI", "CONFIG_LIBUKBUS_PCI"]),
    // Host folders (`cargo unikraft run -v HOST:GUEST`): virtio-9p, the 9P client and
    // filesystem, and the mount table from the command line (`vfs.fstab=...`); the root
    // ramfs moves from the compiled-in table to the fall-back one ([`NINEPFS_ROOT`]).
    (
        "9pfs",
        &[
            "CONFIG_LIBUK9P",
            "CONFIG_LIB9PFS",
            "CONFIG_LIBVIRTIO_9P",
            "CONFIG_LIBVIRTIO_PCI",
            "CONFIG_LIBUKBUS_PCI",
            "CONFIG_LIBVFSCORE_AUTOMOUNT_UP",
            "CONFIG_LIBVFSCORE_AUTOMOUNT_FB",
            "CONFIG_LIBVFSCORE_AUTOMOUNT_FB_CUSTOM",
        ],
    ),
];

/// With the `9pfs` device, the root ramfs is the fall-back mount table's one entry
/// instead of the compiled-in table's: vfscore mounts the compiled-in table first and
/// the command line's `vfs.fstab` after it, and a second mount on `/` fails (EBUSY), which
/// would stop urunc's `vfs.fstab=["fs0:/:9pfs:::"]` (the container's root over 9P) from
/// booting. The fall-back table is used only when `vfs.fstab` mounts nothing, so a boot
/// without it still gets its ramfs at `/`, and `cargo unikraft run -v` passes the ramfs
/// itself before its 9P mounts.
pub const NINEPFS_ROOT: &[(&str, &str)] =
    &[("CONFIG_LIBVFSCORE_AUTOMOUNT_FB0_MP", "\"/\""), ("CONFIG_LIBVFSCORE_AUTOMOUNT_FB0_DRIVER", "\"ramfs\"")];

/// The base options the `9pfs` device leaves out: the compiled-in root ramfs (see
/// [`NINEPFS_ROOT`]).
pub const NINEPFS_REPLACES: &[&str] = &["CONFIG_LIBVFSCORE_AUTOMOUNT_CI", "CONFIG_LIBVFSCORE_AUTOMOUNT_CI_RAMFS"];

/// Every option the generator may set and the value it sets: the base, every device's and
/// the socket layer's (for telling the app's own options from the generated ones).
pub fn generated_kconfig() -> BTreeMap<String, String> {
    let mut all = base_kconfig();
    for (_, options) in KNOWN_DEVICES {
        all.extend(options.iter().map(|o| (o.to_string(), "y".to_string())));
    }
    all.extend(SOCKETS_KCONFIG.iter().map(|o| (o.to_string(), "y".to_string())));
    all.extend(NINEPFS_ROOT.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    all.insert(DEFAULT_DEBUG_LEVEL.to_string(), "y".to_string());
    all
}

/// What `sockets = true` adds: Unikraft's socket layer, which calls rt-unikraft's AF_INET
/// driver (rt-unikraft/glue/socket.c), and what mio and tokio need beside it: epoll
/// (posix-poll), eventfd (mio's waker) and AF_UNIX socket pairs (tokio's signal driver).
pub const SOCKETS_KCONFIG: &[&str] =
    &["CONFIG_LIBPOSIX_SOCKET", "CONFIG_LIBPOSIX_POLL", "CONFIG_LIBPOSIX_EVENTFD", "CONFIG_LIBPOSIX_UNIXSOCKET"];

/// The virtio transport an `fc/x86_64` defconfig adds when the app has devices.
pub const FC_VIRTIO_TRANSPORT: &str = "CONFIG_LIBVIRTIO_MMIO";

/// Options each defconfig sets from `name` and `targets`; `kconfig` cannot set them too
/// (the defconfig would hold the option twice, with the user's line silently losing).
pub const TARGET_KCONFIG: &[&str] =
    &["CONFIG_UK_NAME", "CONFIG_ARCH_X86_64", "CONFIG_PLAT_KVM", "CONFIG_KVM_VMM_QEMU", "CONFIG_KVM_VMM_FIRECRACKER"];

/// Guest memory this project accepts, in MiB: below 4 MiB a Rust unikernel does not boot
/// (a std hello that spawns a thread needs about that), and above 64 GiB is a typo.
pub const MEMORY_MIB_RANGE: std::ops::RangeInclusive<u32> = 4..=65536;

/// `<digits>M` or `<digits>G` (upper case, nothing else: no sign, no space, no `K`, no
/// fraction) within [`MEMORY_MIB_RANGE`].
pub fn parse_memory(m: &str) -> Option<u32> {
    let (digits, factor) = if let Some(d) = m.strip_suffix('M') {
        (d, 1)
    } else if let Some(d) = m.strip_suffix('G') {
        (d, 1024)
    } else {
        return None;
    };
    // Digits only: `u32::from_str` would also take a sign (`+64M`).
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mib = digits.parse::<u32>().ok()?.checked_mul(factor)?;
    MEMORY_MIB_RANGE.contains(&mib).then_some(mib)
}

/// Why `value` cannot be written as `CONFIG_X=<value>` in a defconfig, or `None` when it
/// can: `y`, `n`, a decimal number, a `0x` hex number, or a double-quoted string whose
/// `"` and `\` are escaped with `\`. Nothing else: Kconfig warns about anything else and
/// leaves the option unset, and a line break would start a second defconfig line. No `#`
/// or `$` either, even quoted: Unikraft's make includes `.config` as a makefile.
pub fn kconfig_value_problem(value: &str) -> Option<String> {
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Some(format!("holds the control character {:?}; a line break would start another defconfig line", c));
    }
    // Unikraft's make includes the configuration as a makefile: `#` would cut the value
    // short there and `$` would be expanded (`$(shell ...)` run).
    if let Some(c) = value.chars().find(|c| matches!(c, '#' | '$')) {
        return Some(format!(
            "holds {c:?}, which Unikraft's make would read as a {} when it includes the configuration",
            if c == '#' { "comment" } else { "variable reference" }
        ));
    }
    let decimal = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match value {
        "y" | "n" => return None,
        "m" => return Some("is `m`, but Unikraft has no loadable modules: use \"y\" or \"n\"".to_string()),
        _ => {}
    }
    if decimal(value.strip_prefix('-').unwrap_or(value)) {
        return None;
    }
    if let Some(hex) = value.strip_prefix("0x").or_else(|| value.strip_prefix("0X")) {
        return if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            None
        } else {
            Some("is not a hex number (0x followed by hex digits)".to_string())
        };
    }
    if let Some(inner) = value.strip_prefix('"') {
        let Some(inner) = inner.strip_suffix('"') else {
            return Some("opens a string with \" but does not close it".to_string());
        };
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('\\' | '"') => {}
                    _ => return Some("has a \\ that is not \\\\ or \\\" inside its string".to_string()),
                },
                '"' => return Some("has an unescaped \" inside its string (write \\\")".to_string()),
                _ => {}
            }
        }
        return None;
    }
    Some(format!(
        "is not \"y\", \"n\", a number, a 0x hex number or a double-quoted string \
         (for a string option write it quoted inside the TOML string: '\"{}\"')",
        value.escape_debug()
    ))
}
