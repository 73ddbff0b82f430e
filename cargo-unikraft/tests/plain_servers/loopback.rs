use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};

fn main() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut conn, peer) = listener.accept().expect("accept");
        let mut buf = [0u8; 5];
        conn.read_exact(&mut buf).expect("read");
        conn.write_all(&buf).expect("write");
        peer
    });
    let mut client = TcpStream::connect(addr).expect("connect");
    client.write_all(b"hello").unwrap();
    let mut back = [0u8; 5];
    client.read_exact(&mut back).unwrap();
    let peer = server.join().unwrap();
    println!("plain-sock: tcp over {addr} from {peer}: {}", String::from_utf8_lossy(&back));
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("localhost:0").unwrap();
    a.send_to(b"datagram", b.local_addr().unwrap()).unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = b.recv_from(&mut buf).unwrap();
    println!("plain-sock: udp from {from}: {}", String::from_utf8_lossy(&buf[..n]));
    std::process::exit(if &back == b"hello" && &buf[..n] == b"datagram" { 7 } else { 1 });
}
