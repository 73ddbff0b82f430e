//! tcp-echo: echoes the bytes of each TCP connection on `--port` (default 7) back to it,
//! one connection at a time, on shared-core's own smoltcp API (no sockets).
//!
//! It is the native-API twin of `examples/std-echo`'s TCP echo (std::net through
//! rt-unikraft's socket driver), with the same 64 KiB buffers each way, so that
//! `cargo xtask bench-sockets` compares the two paths on the same work.
//!
//! Boot arguments: `--ipv4=10.0.0.2/24` (default), `--port=7`,
//! `--idle-timeout-ms=10000` (a connection that sends nothing for that long is closed).
#![forbid(unsafe_code)]
#![no_std]

extern crate alloc;

use alloc::vec;
use unikernel::bootargs::{BootArgs, Ipv4Cidr};
use unikernel::net::{Stack, StackConfig};
use unikernel::smoltcp::socket::tcp;
use unikernel::smoltcp::time::Duration;
use unikernel::smoltcp::wire::Ipv4Address;
use unikernel::{executor, println, services};

unikernel::main!(run);

/// Receive and transmit buffer of the connection, as a std::net socket's default on
/// rt-unikraft (`TCP_RX_DEFAULT`, `TCP_TX_DEFAULT`).
const BUFFER: usize = 64 * 1024;

fn run() -> i32 {
    let mut args = BootArgs::or_exit(BootArgs::from_boot());
    let default_ip = Ipv4Cidr { address: Ipv4Address::new(10, 0, 0, 2), prefix_len: 24 };
    let cidr = BootArgs::or_exit(args.optional("ipv4", default_ip, "guest address, like 10.0.0.2/24"));
    let port: u16 = BootArgs::or_exit(args.optional("port", 7, "TCP port to echo on"));
    let idle_ms: u64 = BootArgs::or_exit(args.optional("idle-timeout-ms", 10_000, "close a connection idle this long"));
    BootArgs::or_exit(args.finish());
    if port == 0 || idle_ms == 0 {
        println!("tcp-echo: --port and --idle-timeout-ms must be nonzero");
        return 2;
    }

    let device = match services::open_net("") {
        Ok(device) => device,
        Err(e) => {
            println!("tcp-echo: {e}");
            return 1;
        }
    };
    let mut stack = Stack::new(device, StackConfig::new(cidr));
    let mut socket = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; BUFFER]), tcp::SocketBuffer::new(vec![0; BUFFER]));
    // A peer that goes silent (or never acknowledges) cannot hold the only connection.
    socket.set_timeout(Some(Duration::from_millis(idle_ms)));
    let handle = stack.sockets.add(socket);
    // A SYN that comes while the one connection is busy is dropped, not refused: the
    // client retries, as it would against a full backlog on Linux.
    stack.phy.set_port_quiet(port, true);
    // The address in use: netdev.ip (urunc, `cargo unikraft run -p`) replaces `--ipv4`.
    println!("tcp-echo: listening on {}:{port}", stack.iface.ipv4_addr().unwrap_or(cidr.address));

    let mut scratch = vec![0u8; BUFFER];
    executor::block_on(async {
        loop {
            stack.poll();
            let socket = stack.sockets.get_mut::<tcp::Socket>(handle);
            if !socket.is_open() {
                socket.abort();
                if let Err(e) = socket.listen(port) {
                    println!("tcp-echo: cannot listen on port {port}: {e}");
                    return 1;
                }
            }
            // What was received goes back out, as much as the transmit buffer has room
            // for, through one scratch buffer (std-echo copies through its own, too).
            while socket.can_recv() && socket.send_queue() < socket.send_capacity() {
                let room = (socket.send_capacity() - socket.send_queue()).min(scratch.len());
                match socket.recv_slice(&mut scratch[..room]) {
                    Ok(n) if n > 0 => {
                        let _ = socket.send_slice(&scratch[..n]);
                    }
                    _ => break,
                }
            }
            if !socket.may_recv() && socket.send_queue() == 0 && socket.state() == tcp::State::CloseWait {
                socket.close();
            }
            stack.poll();
            stack.wait().await;
        }
    })
}
