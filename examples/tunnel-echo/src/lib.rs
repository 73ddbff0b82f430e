//! tunnel-echo: udp-echo inside a tunnel. The net device carries an outer stack; a
//! [`TunnelDevice`] on it carries Ethernet frames in VXLAN datagrams to a peer; the app's
//! own stack runs over the tunnel and echoes every UDP datagram on `--port` (default 7).
//!
//! Boot arguments: `--ipv4=10.0.0.2/24` and `--ipv4-gateway=` (the outer address, as
//! udp-echo's), `--peer=10.0.0.1` (the far end of the tunnel), `--vni=42`,
//! `--tunnel-ipv4=10.1.0.2/24` (the address inside), `--port=7`.
//!
//! The far end can be a Linux host:
//! `ip link add vx0 type vxlan id 42 remote 10.0.0.2 local 10.0.0.1 dstport 4789 dev tap0`,
//! then `10.1.0.1/24` on `vx0` (docs/architecture.md).
#![forbid(unsafe_code)]
#![no_std]

extern crate alloc;

use alloc::boxed::Box;
use alloc::vec;
use unikernel::bootargs::{BootArgs, Ipv4Cidr};
use unikernel::net::{RingConfig, Stack, StackConfig, TunnelConfig, TunnelDevice, VXLAN_PORT};
use unikernel::smoltcp::socket::udp;
use unikernel::smoltcp::wire::Ipv4Address;
use unikernel::{executor, println, services};

unikernel::main!(run);

fn run() -> i32 {
    let mut args = BootArgs::or_exit(BootArgs::from_boot());
    let default_ip = Ipv4Cidr { address: Ipv4Address::new(10, 0, 0, 2), prefix_len: 24 };
    let cidr = BootArgs::or_exit(args.optional("ipv4", default_ip, "outer address, like 10.0.0.2/24"));
    let gateway: Option<Ipv4Address> =
        BootArgs::or_exit(args.maybe("ipv4-gateway", "outer default gateway, like 10.0.0.1 (none by default)"));
    let peer = BootArgs::or_exit(args.optional("peer", Ipv4Address::new(10, 0, 0, 1), "the tunnel's far end"));
    let vni: u32 = BootArgs::or_exit(args.optional("vni", 42, "VXLAN network identifier, 0..=16777215"));
    let default_inner = Ipv4Cidr { address: Ipv4Address::new(10, 1, 0, 2), prefix_len: 24 };
    let inner = BootArgs::or_exit(args.optional("tunnel-ipv4", default_inner, "address inside the tunnel"));
    let port: u16 = BootArgs::or_exit(args.optional("port", 7, "UDP port to echo on, inside the tunnel"));
    BootArgs::or_exit(args.finish());

    let device = match services::open_net("") {
        Ok(device) => device,
        Err(e) => {
            println!("tunnel-echo: {e}");
            return 1;
        }
    };
    // The outer stack only carries the tunnel's datagrams (and answers ARP and pings). Its
    // pool is the real device's: Unikraft's virtio-net wants 272 slots or more (receive
    // buffers beside a transmit queue of 128), and posts only one receive buffer below.
    let mut outer_config = StackConfig::new(cidr);
    outer_config.gateway = gateway;
    outer_config.ring = RingConfig { slots: 288, ..RingConfig::default() };
    let outer = Stack::new(device, outer_config);
    let tunnel = match TunnelDevice::new(outer, TunnelConfig::new(peer, vni)) {
        Ok(tunnel) => tunnel,
        Err(e) => {
            println!("tunnel-echo: {e}");
            return 1;
        }
    };
    let mut inner_config = StackConfig::new(inner);
    inner_config.ring = RingConfig { slots: 128, ..RingConfig::default() };
    let mut stack = Stack::new(Box::new(tunnel), inner_config);
    let socket = udp::Socket::new(
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 64], vec![0; 64 * 1024]),
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 64], vec![0; 64 * 1024]),
    );
    let handle = stack.sockets.add(socket);
    if let Err(e) = stack.sockets.get_mut::<udp::Socket>(handle).bind(port) {
        println!("tunnel-echo: cannot bind port {port}: {e}");
        return 1;
    }
    let mtu = stack.phy.info().max_frame - 14;
    println!(
        "tunnel-echo: listening on {}:{port} inside VXLAN {vni} to {peer}:{VXLAN_PORT} from {} (inner MTU {mtu})",
        inner.address, cidr.address
    );

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
            stack.send();
            stack.wait().await;
        }
    })
}
