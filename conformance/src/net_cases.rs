//! `net.*`: the exchange with the host peer (docs/architecture.md): ARP through a UDP
//! probe, ICMP echo both ways, a UDP echo of the host's datagrams and a verified TCP echo,
//! each case one [`poll_case`] loop under [`CASE_TIMEOUT_MS`].

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use conformance_protocol::{case, net, NET_CASES};
use console_protocol::ready::Ready;
use unikernel::bootargs::Ipv4Cidr;
use unikernel::executor::block_on;
use unikernel::net::{Stack, StackConfig};
use unikernel::smoltcp::socket::{icmp, tcp, udp};
use unikernel::smoltcp::wire::{Icmpv4Packet, Icmpv4Repr, IpAddress, Ipv4Address};
use unikernel::{println, services};

use super::{check, Outcome, Report, CASE_TIMEOUT_MS};

/// The loop of every net case: polls `stack` and calls `step` with the time and whether
/// the case's [`CASE_TIMEOUT_MS`] has passed, until `step` gives the outcome (it must,
/// once the time has passed), waiting for the device at most 100 ms between steps.
async fn poll_case(stack: &mut Stack, mut step: impl FnMut(&mut Stack, u64, bool) -> Option<Outcome>) -> Outcome {
    let until = deadline(CASE_TIMEOUT_MS);
    loop {
        stack.poll();
        let now = services::monotonic_ns();
        if let Some(outcome) = step(stack, now, now > until) {
            return outcome;
        }
        stack.poll();
        stack.wait_at_most(100).await;
    }
}

fn deadline(ms: u64) -> u64 {
    services::monotonic_ns() + ms * 1_000_000
}

pub(crate) fn net_cases(report: &mut Report, cidr: Ipv4Cidr, host: Ipv4Address) {
    let device = match services::open_net("") {
        Ok(d) => d,
        Err(e) => {
            for case in NET_CASES {
                report.record(case, Outcome::Fail(format!("cannot open the net device: {e}")));
            }
            return;
        }
    };
    let mut stack = Stack::new(device, StackConfig::new(cidr));
    let udp_socket = || {
        udp::Socket::new(
            udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 16], vec![0; 8192]),
            udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 16], vec![0; 8192]),
        )
    };
    let probe = stack.sockets.add(udp_socket());
    let echo = stack.sockets.add(udp_socket());
    let icmp_h = stack.sockets.add(icmp::Socket::new(
        icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 4], vec![0; 1024]),
        icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 4], vec![0; 1024]),
    ));
    let tcp_h = stack
        .sockets
        .add(tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 65536]), tcp::SocketBuffer::new(vec![0; 65536])));
    let _ = stack.sockets.get_mut::<udp::Socket>(probe).bind(40000);
    let _ = stack.sockets.get_mut::<udp::Socket>(echo).bind(net::UDP_ECHO_PORT);
    let _ = stack.sockets.get_mut::<icmp::Socket>(icmp_h).bind(icmp::Endpoint::Ident(0x4242));
    let _ = stack.sockets.get_mut::<tcp::Socket>(tcp_h).listen(net::TCP_ECHO_PORT);
    println!("{}", Ready { what: net::READY_WHAT, detail: &format!("{}", cidr.address) });

    block_on(async {
        // net.arp: the guest must resolve the host's MAC to send this; the reply proves it.
        let mut next_send = 0;
        let arp = poll_case(&mut stack, |stack, now, expired| {
            let sock = stack.sockets.get_mut::<udp::Socket>(probe);
            if now >= next_send {
                let _ = sock.send_slice(net::PROBE, (IpAddress::Ipv4(host), net::PROBE_PORT));
                next_send = now + 500_000_000;
            }
            if let Ok((data, meta)) = sock.recv() {
                return Some(check(
                    data == net::PROBE_ACK,
                    format!("resolved {host} and got a reply from {}", meta.endpoint),
                    format!("unexpected reply {:?}", data),
                ));
            }
            expired
                .then(|| Outcome::Fail(format!("no reply from {host}:{} within {CASE_TIMEOUT_MS} ms", net::PROBE_PORT)))
        })
        .await;
        report.record(case::NET_ARP, arp);

        // net.icmp: echo request to the host, expect the matching reply.
        let mut next_send = 0;
        let mut seq = 0u16;
        let icmp_outcome = poll_case(&mut stack, |stack, now, expired| {
            let checksum = stack.phy.capabilities_checksum();
            let sock = stack.sockets.get_mut::<icmp::Socket>(icmp_h);
            if now >= next_send && sock.can_send() {
                seq += 1;
                let repr = Icmpv4Repr::EchoRequest { ident: 0x4242, seq_no: seq, data: b"conformance" };
                if let Ok(buf) = sock.send(repr.buffer_len(), IpAddress::Ipv4(host)) {
                    repr.emit(&mut Icmpv4Packet::new_unchecked(buf), &checksum);
                }
                next_send = now + 500_000_000;
            }
            if let Ok((payload, from)) = sock.recv() {
                let packet = Icmpv4Packet::new_unchecked(payload);
                if let Ok(Icmpv4Repr::EchoReply { ident: 0x4242, data, .. }) = Icmpv4Repr::parse(&packet, &checksum) {
                    return Some(check(
                        data == b"conformance",
                        format!("echo reply from {from}"),
                        String::from("echo reply with the wrong payload"),
                    ));
                }
            }
            expired.then(|| Outcome::Fail(format!("no ICMP echo reply from {host} within {CASE_TIMEOUT_MS} ms")))
        })
        .await;
        report.record(case::NET_ICMP, icmp_outcome);

        // net.udp-echo: the host sends UDP_ECHO_DATAGRAMS datagrams to UDP_ECHO_PORT; echo each.
        let mut echoed = 0;
        let mut buf = [0u8; 2048];
        let udp_outcome = poll_case(&mut stack, |stack, _, expired| {
            let sock = stack.sockets.get_mut::<udp::Socket>(echo);
            while let Ok((len, meta)) = sock.recv_slice(&mut buf) {
                if sock.send_slice(&buf[..len], meta).is_ok() {
                    echoed += 1;
                }
            }
            if echoed >= net::UDP_ECHO_DATAGRAMS {
                return Some(Outcome::Pass(format!("echoed {echoed} datagrams")));
            }
            expired.then(|| {
                Outcome::Fail(format!(
                    "echoed only {echoed} of {} datagrams within {CASE_TIMEOUT_MS} ms",
                    net::UDP_ECHO_DATAGRAMS
                ))
            })
        })
        .await;
        report.record(case::NET_UDP_ECHO, udp_outcome);

        // net.tcp: the host sends TCP_BYTES of `tcp_byte` to TCP_ECHO_PORT; verify and echo.
        let tcp_start = services::monotonic_ns();
        let mut received = 0usize;
        let mut corrupt = None;
        let mut pending: Vec<u8> = Vec::with_capacity(65536);
        let tcp_outcome = poll_case(&mut stack, |stack, now, expired| {
            let sock = stack.sockets.get_mut::<tcp::Socket>(tcp_h);
            if sock.can_recv() && pending.len() < pending.capacity() {
                let room = pending.capacity() - pending.len();
                let _ = sock.recv(|data| {
                    let n = data.len().min(room);
                    for (i, &b) in data[..n].iter().enumerate() {
                        let at = received + i;
                        if corrupt.is_none() && b != net::tcp_byte(at) {
                            corrupt = Some(at);
                        }
                    }
                    received += n;
                    pending.extend_from_slice(&data[..n]);
                    (n, ())
                });
            }
            if !pending.is_empty() && sock.can_send() {
                if let Ok(sent) = sock.send_slice(&pending) {
                    pending.drain(..sent);
                }
            }
            let peer_done = received > 0 && !sock.may_recv();
            if peer_done && pending.is_empty() {
                sock.close();
                return Some(match corrupt {
                    Some(at) => Outcome::Fail(format!("byte {at} of the stream is wrong")),
                    None => check(
                        received == net::TCP_BYTES,
                        format!(
                            "received, verified and echoed {received} bytes in {} ms",
                            (now - tcp_start) / 1_000_000
                        ),
                        format!("received {received} bytes, expected {}", net::TCP_BYTES),
                    ),
                });
            }
            expired.then(|| {
                Outcome::Fail(format!(
                    "TCP transfer incomplete after {CASE_TIMEOUT_MS} ms: {received} bytes ({} of {} buffers free)",
                    stack.phy.pool_available(),
                    stack.phy.pool_capacity()
                ))
            })
        })
        .await;
        // Let the FIN and the last segments go out before the report ends.
        let linger = deadline(500);
        while services::monotonic_ns() < linger {
            stack.poll();
            stack.wait_at_most(20).await;
        }
        report.record(case::NET_TCP, tcp_outcome);
    });
    let c = stack.phy.counters();
    println!(
        "# net counters: rx {} pkts {} B, tx {} pkts {} B, drops rx {} tx {}; {} of {} buffers free",
        c.rx_packets,
        c.rx_bytes,
        c.tx_packets,
        c.tx_bytes,
        c.rx_dropped,
        c.tx_dropped,
        stack.phy.pool_available(),
        stack.phy.pool_capacity()
    );
}
