//! http: serves a small page over smoltcp TCP.
//!
//! Boot arguments: `--ipv4=10.0.0.2/24` (default), `--port=80`, `--sockets=256` (the most
//! connections held at once), `--request-timeout-ms=10000` (time to send a request) and
//! `--close-timeout-ms=10000` (time to take the answer and close).
//!
//! Each connection gets one answer (HTTP/1.0 style) and is closed. The sockets are a
//! [`ListenerPool`]: a backlog of listening sockets, deadlines on every connection, and
//! the oldest unanswered connection evicted when the backlog runs short (see
//! docs/runtime.md). A request head ends with an empty line (CRLF or bare LF line ends)
//! and may be [`MAX_HEAD`] bytes long; `GET` gets the page, `HEAD` its head, other methods
//! 405, longer heads 431, and a peer that closes its side before finishing its request
//! 400. Answers are sent as the peer's window allows, never waiting on a slow reader. Nothing
//! is printed per request.
#![forbid(unsafe_code)]
#![no_std]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use unikernel::bootargs::{BootArgs, Ipv4Cidr};
use unikernel::net::stack::now;
use unikernel::net::{Connection, ListenerConfig, ListenerPool, Stack, StackConfig};
use unikernel::smoltcp::time::Duration;
use unikernel::smoltcp::wire::Ipv4Address;
use unikernel::{executor, println, services};

unikernel::main!(run);

const PAGE: &str = "<!doctype html>\n<title>unikernel</title>\n<h1>Hello from a unikernel</h1>\n<p>Served by smoltcp over shared-core.</p>\n";

/// The longest request head (request line and header fields) read; longer ones get 431.
const MAX_HEAD: usize = 8 * 1024;

fn run() -> i32 {
    let mut args = BootArgs::or_exit(BootArgs::from_boot());
    let default_ip = Ipv4Cidr { address: Ipv4Address::new(10, 0, 0, 2), prefix_len: 24 };
    let cidr = BootArgs::or_exit(args.optional("ipv4", default_ip, "guest address, like 10.0.0.2/24"));
    let port: u16 = BootArgs::or_exit(args.optional("port", 80, "TCP port to serve on"));
    let sockets: usize =
        BootArgs::or_exit(args.optional("sockets", 256, "the most connections held at once (8..=4096)"));
    let request_ms: u64 =
        BootArgs::or_exit(args.optional("request-timeout-ms", 10_000, "time a client has to send its request"));
    let close_ms: u64 =
        BootArgs::or_exit(args.optional("close-timeout-ms", 10_000, "time a client has to take the answer and close"));
    BootArgs::or_exit(args.finish());
    if !(8..=4096).contains(&sockets) || port == 0 || request_ms == 0 || close_ms == 0 {
        println!("http: --sockets must be in 8..=4096, --port and the timeouts nonzero");
        return 2;
    }

    let device = match services::open_net("") {
        Ok(device) => device,
        Err(e) => {
            println!("http: {e}");
            return 1;
        }
    };
    let stack_config = StackConfig::new(cidr);
    let mut stack = Stack::new(device, stack_config);
    let config = ListenerConfig {
        sockets,
        // As many listeners as one poll can bring SYNs (a receive ring), but at most half.
        backlog: stack_config.ring.rx_ring.min(sockets / 2),
        request_timeout: Duration::from_millis(request_ms),
        close_timeout: Duration::from_millis(close_ms),
        ..ListenerConfig::new(port)
    };
    let mut pool = ListenerPool::<Exchange>::new(&mut stack.sockets, config);
    // A SYN that comes while every socket is busy (a burst, a SYN flood) is dropped, not
    // refused: the client retries, as it would against Linux.
    stack.phy.set_port_quiet(port, true);
    let answers = Answers::new();
    // The address in use: netdev.ip (urunc, `cargo unikraft run -p`) replaces `--ipv4`.
    let address = stack.iface.ipv4_addr().unwrap_or(cidr.address);
    println!("http: listening on {address}:{port} ({sockets} sockets, backlog {})", config.backlog);

    executor::block_on(async {
        loop {
            stack.poll();
            let next = pool.poll(&mut stack.sockets, now(), |conn| serve(conn, &answers));
            stack.send();
            stack.wait_until(next).await;
        }
    })
}

/// The answers, built once.
struct Answers {
    page: String,
    head: String,
    bad_request: String,
    not_allowed: String,
    too_large: String,
}

impl Answers {
    fn new() -> Self {
        let page_head = format!(
            "HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            PAGE.len()
        );
        let error = |status: &str, extra: &str| {
            let body = format!("{status}\n");
            format!(
                "HTTP/1.0 {status}\r\n{extra}Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        };
        Answers {
            page: format!("{page_head}{PAGE}"),
            head: page_head,
            bad_request: error("400 Bad Request", ""),
            not_allowed: error("405 Method Not Allowed", "Allow: GET, HEAD\r\n"),
            too_large: error("431 Request Header Fields Too Large", ""),
        }
    }

    fn bytes(&self, answer: Answer) -> &[u8] {
        match answer {
            Answer::Page => self.page.as_bytes(),
            Answer::Head => self.head.as_bytes(),
            Answer::BadRequest => self.bad_request.as_bytes(),
            Answer::NotAllowed => self.not_allowed.as_bytes(),
            Answer::TooLarge => self.too_large.as_bytes(),
        }
    }
}

#[derive(Clone, Copy)]
enum Answer {
    Page,
    Head,
    BadRequest,
    NotAllowed,
    TooLarge,
}

/// One connection's progress: the request head scanned so far, then the answer and how
/// much of it is queued. Fixed size: the request itself is never stored.
#[derive(Default)]
struct Exchange {
    head: Head,
    answer: Option<Answer>,
    sent: usize,
}

fn serve(conn: &mut Connection<'_, Exchange>, answers: &Answers) {
    let socket = &mut *conn.socket;
    let exchange = &mut *conn.state;
    if exchange.answer.is_none() {
        let mut verdict = Verdict::More;
        while matches!(verdict, Verdict::More) && socket.can_recv() {
            verdict = socket.recv(|data| (data.len(), exchange.head.feed(data))).unwrap_or(Verdict::More);
        }
        exchange.answer = match verdict {
            Verdict::Complete if exchange.head.method() == b"GET" => Some(Answer::Page),
            Verdict::Complete if exchange.head.method() == b"HEAD" => Some(Answer::Head),
            Verdict::Complete => Some(Answer::NotAllowed),
            Verdict::TooLarge => Some(Answer::TooLarge),
            // The peer closed its side with the request unfinished (CLOSE-WAIT: no more
            // can come, and an answer can still go).
            Verdict::More if !socket.may_recv() && socket.may_send() => Some(Answer::BadRequest),
            Verdict::More => None,
        };
    }
    // After the request (or once answered): whatever else the peer sends is discarded,
    // so a talkative peer cannot fill the window and stall its own close.
    while exchange.answer.is_some() && socket.can_recv() {
        let _ = socket.recv(|data| (data.len(), ()));
    }
    if let Some(answer) = exchange.answer {
        let bytes = answers.bytes(answer);
        if exchange.sent < bytes.len() && socket.can_send() {
            exchange.sent += socket.send_slice(&bytes[exchange.sent..]).unwrap_or(0);
        }
        if exchange.sent == bytes.len() {
            socket.close();
        }
        conn.answered();
    }
}

/// What the bytes of a request head so far amount to.
#[derive(Clone, Copy)]
enum Verdict {
    /// No empty line yet.
    More,
    /// The head ended (an empty line after the request line).
    Complete,
    /// More than [`MAX_HEAD`] bytes without an end.
    TooLarge,
}

/// A request head scanner that keeps no bytes but the method: lines end with LF, with or
/// without a CR before it; empty lines before the request line are skipped (RFC 9112
/// §2.2).
#[derive(Default)]
struct Head {
    len: usize,
    /// Bytes other than CR in the current line.
    line: usize,
    /// Non-empty lines seen.
    lines: usize,
    method: [u8; 8],
    method_len: usize,
    method_done: bool,
}

impl Head {
    fn feed(&mut self, data: &[u8]) -> Verdict {
        for &byte in data {
            self.len += 1;
            if self.len > MAX_HEAD {
                return Verdict::TooLarge;
            }
            match byte {
                b'\n' if self.line == 0 && self.lines > 0 => return Verdict::Complete,
                b'\n' => {
                    self.lines += usize::from(self.line > 0);
                    self.line = 0;
                    self.method_done |= self.lines > 0;
                }
                b'\r' => {}
                _ => {
                    if !self.method_done {
                        if byte == b' ' {
                            self.method_done = true;
                        } else if self.method_len < self.method.len() {
                            self.method[self.method_len] = byte;
                            self.method_len += 1;
                        } else {
                            // Longer than any method served: never matches.
                            self.method_len = self.method.len();
                            self.method[0] = 0;
                        }
                    }
                    self.line += 1;
                }
            }
        }
        Verdict::More
    }

    fn method(&self) -> &[u8] {
        &self.method[..self.method_len]
    }
}
