//! A plain program whose UDP senders outpace the link: a blocking std sender, then a tokio
//! one, each sending full-size datagrams to the host as fast as it can. Each must finish
//! (a send that cannot go now waits for room) and the program exit 0.

use std::net::UdpSocket;

const DATAGRAMS: usize = 500;

fn main() {
    let sink = std::env::var("UDP_SINK").expect("UDP_SINK=HOST:PORT");
    let payload = [0x5au8; 1472];
    let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
    for _ in 0..DATAGRAMS {
        socket.send_to(&payload, &sink).unwrap();
    }
    println!("std: sent {DATAGRAMS}");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let socket = tokio::net::UdpSocket::bind("0.0.0.0:0").await.unwrap();
        for _ in 0..DATAGRAMS {
            socket.send_to(&payload, &sink).await.unwrap();
        }
    });
    println!("tokio: sent {DATAGRAMS}");
}
