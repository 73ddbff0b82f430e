//! http: serves a small page over smoltcp TCP.
//!
//! Boot arguments: `--ipv4=10.0.0.2/24` (default), `--port=80`. Up to four connections are
//! served at once; each gets one response (HTTP/1.0 style) and is closed.
#![no_std]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;
use unikernel::bootargs::{BootArgs, Ipv4Cidr};
use unikernel::net::{Stack, StackConfig};
use unikernel::smoltcp::iface::SocketHandle;
use unikernel::smoltcp::socket::tcp;
use unikernel::smoltcp::wire::Ipv4Address;
use unikernel::{executor, println, services};

unikernel::main!(run);

const PAGE: &str = "<!doctype html>\n<title>unikernel</title>\n<h1>Hello from a unikernel</h1>\n<p>Served by smoltcp over shared-core.</p>\n";
const SOCKETS: usize = 4;

struct Conn {
    handle: SocketHandle,
    request: Vec<u8>,
    responded: bool,
}

fn run() -> i32 {
    let mut args = BootArgs::or_exit(BootArgs::from_boot());
    let default_ip = Ipv4Cidr { address: Ipv4Address::new(10, 0, 0, 2), prefix_len: 24 };
    let cidr = BootArgs::or_exit(args.optional("ipv4", default_ip, "guest address, like 10.0.0.2/24"));
    let port: u16 = BootArgs::or_exit(args.optional("port", 80, "TCP port to serve on"));
    BootArgs::or_exit(args.finish());

    let device = match services::open_net("") {
        Ok(device) => device,
        Err(e) => {
            println!("http: {e}");
            return 1;
        }
    };
    let mut stack = Stack::new(device, StackConfig::new(cidr));
    let mut conns: Vec<Conn> = (0..SOCKETS)
        .map(|_| {
            let socket = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 4096]), tcp::SocketBuffer::new(vec![0; 8192]));
            Conn { handle: stack.sockets.add(socket), request: Vec::with_capacity(1024), responded: false }
        })
        .collect();
    println!("http: listening on {}:{port}", cidr.address);

    let response = alloc::format!(
        "HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{PAGE}",
        PAGE.len()
    );
    executor::block_on(async {
        loop {
            stack.poll();
            for conn in &mut conns {
                let socket = stack.sockets.get_mut::<tcp::Socket>(conn.handle);
                if !socket.is_open() {
                    conn.request.clear();
                    conn.responded = false;
                    let _ = socket.listen(port);
                    continue;
                }
                if socket.can_recv() {
                    let _ = socket.recv(|data| {
                        let room = conn.request.capacity() - conn.request.len();
                        conn.request.extend_from_slice(&data[..data.len().min(room)]);
                        (data.len(), ())
                    });
                }
                let complete = conn.request.windows(4).any(|w| w == b"\r\n\r\n");
                if complete && !conn.responded && socket.can_send() {
                    let _ = socket.send_slice(response.as_bytes());
                    conn.responded = true;
                    socket.close();
                }
            }
            stack.poll();
            stack.wait().await;
        }
    })
}
