//! kv: a persistent key-value store served over UDP, kept on an encrypted partition of
//! the block device, so its data survives a reboot and the disk holds no plaintext.
//!
//! The disk: partition 0 of its MBR. On a blank disk kv writes an MBR with one partition
//! (type 0xda) from sector [`PARTITION_START`] to the end, and formats it with shared-core's
//! encrypted layer (AES-256-GCM per sector, `block::encrypted`); later boots open it and
//! refuse a wrong key. The map is saved in two alternating areas ([`store`]) and every change
//! is flushed before it is acknowledged. The protocol is in [`protocol`].
//!
//! kv never erases what it did not make without being told to: a disk that has no
//! partition table but is not blank, or a partition that is not blank but has no
//! encrypted-device header (erased, or a format cut short), is refused unless kv is
//! started with `--format`. A store that fails authentication (tampering) is refused, never
//! passed over to an older generation. A store rolled back whole to an older copy passes
//! authentication: `--min-generation=N` (N from `GEN`, or the boot log, of the last run)
//! refuses a store older than N.
//!
//! Boot arguments: `--key=<64 hex digits>` (required: the AES-256 key), `--ipv4=10.0.0.2/24`
//! (default), `--port=7070`, `--min-generation=<n>` (default 0), `--format` (erase and format
//! the disk whatever it holds: give it for one boot only).
#![forbid(unsafe_code)]
#![no_std]

extern crate alloc;

mod protocol;
mod store;

use alloc::string::String;
use alloc::vec;
use unikernel::block::encrypted::{Encrypted, EncryptedError, Key};
use unikernel::block::mbr::{write_table, MbrError, Partition};
use unikernel::block::{BlockDevice, BlockExt};
use unikernel::bootargs::{BootArgs, Ipv4Cidr};
use unikernel::net::{Stack, StackConfig};
use unikernel::smoltcp::socket::udp;
use unikernel::smoltcp::wire::Ipv4Address;
use unikernel::{executor, println, services};

use store::Store;

unikernel::main!(run);

/// First sector of the partition kv creates on a blank disk.
pub const PARTITION_START: u32 = 64;
/// The MBR type of that partition ("non-FS data").
const PARTITION_KIND: u8 = 0xda;

fn run() -> i32 {
    let mut args = BootArgs::or_exit(BootArgs::from_boot());
    let key: Key = BootArgs::or_exit(args.required("key", "the store's AES-256 key, 64 hex digits"));
    let default_ip = Ipv4Cidr { address: Ipv4Address::new(10, 0, 0, 2), prefix_len: 24 };
    let cidr = BootArgs::or_exit(args.optional("ipv4", default_ip, "guest address, like 10.0.0.2/24"));
    let port: u16 = BootArgs::or_exit(args.optional("port", 7070, "UDP port of the store"));
    let min_generation: u64 = BootArgs::or_exit(args.optional(
        "min-generation",
        0,
        "refuse a store older than this generation (the last run's GEN): rollback detection",
    ));
    let format = BootArgs::or_exit(args.flag("format", "erase and format the disk, whatever it holds"));
    BootArgs::or_exit(args.finish());

    let store = match executor::block_on(open_store(&key, format, min_generation)) {
        Ok(store) => store,
        Err(e) => {
            println!("kv: {e}");
            return 1;
        }
    };
    println!("kv: {} keys loaded (generation {})", store.len(), store.generation());
    match serve(store, cidr, port) {
        Ok(never) => match never {},
        Err(e) => {
            println!("kv: {e}");
            1
        }
    }
}

/// Whether the first `sectors` sectors of `device` (at most) are all zeros.
async fn blank(device: &mut impl BlockDevice, sectors: u64) -> Result<bool, unikernel::block::BlockError> {
    let info = device.info();
    let mut buf = vec![0u8; info.sector_size as usize * sectors.min(info.sectors) as usize];
    device.read(0, &mut buf).await?;
    Ok(buf.iter().all(|&b| b == 0))
}

/// Sectors checked for "blank" at the start of the disk and of the partition.
const BLANK_CHECK: u64 = 2 * PARTITION_START as u64;

/// Opens (creating on a blank disk, or with `--format`) the partition, its encrypted layer
/// and the store, refusing a store older than `min_generation`.
async fn open_store(
    key: &Key,
    format: bool,
    min_generation: u64,
) -> Result<Store<impl BlockDevice>, alloc::string::String> {
    use alloc::format;
    let mut disk = services::open_block("").map_err(|e| format!("cannot open the block device: {e}"))?;
    let part = match Partition::open(&mut disk, 0).await {
        Ok(_) if !format => Partition::open(disk, 0).await,
        Err(e) if !format && !matches!(e, MbrError::NoSignature) => Err(e),
        _ => {
            let blank = blank(&mut disk, BLANK_CHECK).await.map_err(|e| format!("cannot read the disk: {e}"))?;
            if !blank && !format {
                return Err(String::from(
                    "the disk has no partition table and is not blank: kv erases it only when started with --format",
                ));
            }
            let info = disk.info();
            let sectors = u32::try_from(info.sectors.saturating_sub(PARTITION_START.into())).unwrap_or(u32::MAX);
            let mut mbr = vec![0u8; info.sector_size as usize];
            write_table(&mut mbr, &[(PARTITION_KIND, PARTITION_START, sectors)]);
            disk.write(0, &mbr).await.map_err(|e| format!("cannot write the partition table: {e}"))?;
            println!("kv: partition 0 is sectors {PARTITION_START}..+{sectors}");
            Partition::open(disk, 0).await
        }
    };
    let mut part = part.map_err(|e| format!("cannot open partition 0: {e:?}"))?;
    // Tried on a borrow first, so the partition can still be formatted.
    let device = match Encrypted::open(&mut part, key).await {
        Ok(_) if !format => Encrypted::open(part, key).await,
        Err(EncryptedError::NotFormatted) if !format => {
            let blank = blank(&mut part, BLANK_CHECK).await.map_err(|e| format!("cannot read partition 0: {e}"))?;
            if !blank {
                return Err(String::from(
                    "partition 0 holds data but no encrypted-device header (erased, tampered with, or a format cut short): kv formats it only when started with --format",
                ));
            }
            println!("kv: formatting the encrypted partition");
            Encrypted::format(part, key).await
        }
        Err(e) if !format => Err(e),
        _ => {
            println!("kv: --format: formatting the encrypted partition (the old store is erased)");
            Encrypted::format(part, key).await
        }
    };
    let device = device.map_err(|e| format!("cannot open the encrypted partition: {e}"))?;
    let store = Store::load(device).await.map_err(|e| format!("cannot load the store: {e}"))?;
    if store.generation() < min_generation {
        let e = store::StoreError::RolledBack { generation: store.generation(), min: min_generation };
        return Err(format!("cannot load the store: {e}"));
    }
    Ok(store)
}

/// Answers requests until the device fails.
fn serve<D: BlockDevice>(
    mut store: Store<D>,
    cidr: Ipv4Cidr,
    port: u16,
) -> Result<core::convert::Infallible, alloc::string::String> {
    use alloc::format;
    let device = services::open_net("").map_err(|e| format!("{e}"))?;
    let mut stack = Stack::new(device, StackConfig::new(cidr));
    let socket = udp::Socket::new(
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 16], vec![0; 16 * 1024]),
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 16], vec![0; 16 * 1024]),
    );
    let handle = stack.sockets.add(socket);
    stack.sockets.get_mut::<udp::Socket>(handle).bind(port).map_err(|e| format!("cannot bind port {port}: {e}"))?;
    // The address in use: netdev.ip (urunc, `cargo unikraft run -p`) replaces `--ipv4`.
    println!("kv: listening on {}:{port}", stack.iface.ipv4_addr().unwrap_or(cidr.address));
    let mut datagram = vec![0u8; 2048];
    executor::block_on(async {
        loop {
            stack.poll();
            loop {
                let socket = stack.sockets.get_mut::<udp::Socket>(handle);
                if !socket.can_send() {
                    break;
                }
                let Ok((len, meta)) = socket.recv_slice(&mut datagram) else { break };
                let reply = protocol::handle(&mut store, &datagram[..len]).await;
                let _ = stack.sockets.get_mut::<udp::Socket>(handle).send_slice(reply.as_bytes(), meta);
                stack.poll();
            }
            stack.wait().await;
        }
    })
}
