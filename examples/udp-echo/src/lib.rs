//! udp-echo: answers every UDP datagram on `--port` (default 7) with the same bytes.
//!
//! Boot arguments: `--ipv4=10.0.0.2/24` (default), `--ipv4-gateway=10.0.0.1` (none by
//! default; urunc passes it to Solo5 images), `--port=7`.
#![forbid(unsafe_code)]
#![no_std]

extern crate alloc;

use alloc::vec;
use unikernel::bootargs::{BootArgs, Ipv4Cidr};
use unikernel::net::{Stack, StackConfig};
use unikernel::smoltcp::socket::udp;
use unikernel::smoltcp::wire::Ipv4Address;
use unikernel::{executor, println, services};

unikernel::main!(run);

fn run() -> i32 {
    let mut args = BootArgs::or_exit(BootArgs::from_boot());
    let default_ip = Ipv4Cidr { address: Ipv4Address::new(10, 0, 0, 2), prefix_len: 24 };
    let cidr = BootArgs::or_exit(args.optional("ipv4", default_ip, "guest address, like 10.0.0.2/24"));
    let gateway: Option<Ipv4Address> =
        BootArgs::or_exit(args.maybe("ipv4-gateway", "default gateway, like 10.0.0.1 (none by default)"));
    let port: u16 = BootArgs::or_exit(args.optional("port", 7, "UDP port to echo on"));
    BootArgs::or_exit(args.finish());

    let device = match services::open_net("") {
        Ok(device) => device,
        Err(e) => {
            println!("udp-echo: {e}");
            return 1;
        }
    };
    let mut config = StackConfig::new(cidr);
    config.gateway = gateway;
    let mut stack = Stack::new(device, config);
    let socket = udp::Socket::new(
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 64], vec![0; 64 * 1024]),
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 64], vec![0; 64 * 1024]),
    );
    let handle = stack.sockets.add(socket);
    if let Err(e) = stack.sockets.get_mut::<udp::Socket>(handle).bind(port) {
        println!("udp-echo: cannot bind port {port}: {e}");
        return 1;
    }
    // The address in use: netdev.ip (urunc, `cargo unikraft run -p`) replaces `--ipv4`.
    println!("udp-echo: listening on {}:{port}", stack.iface.ipv4_addr().unwrap_or(cidr.address));

    // Allocated once: a datagram is copied here so the socket can be borrowed to reply.
    let mut datagram = vec![0u8; 64 * 1024];
    executor::block_on(async {
        loop {
            stack.poll();
            let socket = stack.sockets.get_mut::<udp::Socket>(handle);
            while socket.can_send() {
                let Ok((len, meta)) = socket.recv_slice(&mut datagram) else { break };
                let _ = socket.send_slice(&datagram[..len], meta);
            }
            stack.poll();
            stack.wait().await;
        }
    })
}
