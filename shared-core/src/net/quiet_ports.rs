//! Listening ports whose refused SYNs are dropped, not answered with a reset.
//!
//! smoltcp answers a SYN that finds no socket in `LISTEN` with a reset, so a client that
//! arrives while every socket of a busy listener holds a connection (or a half-open one,
//! under a spoofed SYN flood) is refused at once and does not retry. Linux instead drops
//! a SYN that finds the listener's queues full: the client retransmits it (after 1 s, then
//! 2 s, ...) and is served as soon as a socket is free. A server that marks its port
//! quiet here gets Linux's behaviour: [`RingPhy`](super::RingPhy) drops, on its way out,
//! smoltcp's reset reply to a SYN sent from that port. Every other reset goes out: a port
//! nobody listens on still refuses connections, and established connections still reset.

use alloc::boxed::Box;
use alloc::vec;

use smoltcp::wire::{EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, TcpPacket, TcpSeqNumber};

/// A set of TCP ports (allocated on first use: 8 KiB).
#[derive(Default)]
pub struct QuietPorts {
    bits: Option<Box<[u64]>>,
    dropped: u64,
}

impl QuietPorts {
    /// Marks `port` quiet (`true`) or not.
    pub fn set(&mut self, port: u16, quiet: bool) {
        let bits = self.bits.get_or_insert_with(|| vec![0u64; 1024].into_boxed_slice());
        let (word, bit) = (usize::from(port) / 64, port % 64);
        if quiet {
            bits[word] |= 1 << bit;
        } else {
            bits[word] &= !(1 << bit);
        }
    }

    /// Whether `port` is quiet.
    pub fn contains(&self, port: u16) -> bool {
        self.bits.as_ref().is_some_and(|bits| bits[usize::from(port) / 64] & (1 << (port % 64)) != 0)
    }

    /// Resets dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Whether `frame`, on its way out, is to be dropped: smoltcp's reset reply to a SYN
    /// (RST and ACK, sequence number 0: the reply to a segment that carried no ACK) from a
    /// quiet port. Counts it when it is.
    pub fn drops(&mut self, frame: &[u8]) -> bool {
        if self.bits.is_none() {
            return false;
        }
        let drop = refused_syn_source_port(frame).is_some_and(|port| self.contains(port));
        self.dropped += u64::from(drop);
        drop
    }
}

/// The source port of `frame` if it is an IPv4 TCP reset with ACK and sequence number 0,
/// which is how smoltcp (like Linux) refuses a SYN.
fn refused_syn_source_port(frame: &[u8]) -> Option<u16> {
    let ethernet = EthernetFrame::new_checked(frame).ok()?;
    if ethernet.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(ethernet.payload()).ok()?;
    if ip.next_header() != IpProtocol::Tcp || ip.frag_offset() != 0 {
        return None;
    }
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    (tcp.rst() && tcp.ack() && !tcp.syn() && tcp.seq_number() == TcpSeqNumber(0)).then(|| tcp.src_port())
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        EthernetAddress, EthernetRepr, IpAddress, Ipv4Address, Ipv4Repr, TcpControl, TcpRepr, TcpSeqNumber,
    };

    fn frame(src_port: u16, control: TcpControl, seq: i32, ack: Option<i32>) -> std::vec::Vec<u8> {
        let tcp = TcpRepr {
            src_port,
            dst_port: 40000,
            control,
            seq_number: TcpSeqNumber(seq),
            ack_number: ack.map(TcpSeqNumber),
            window_len: 0,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: &[],
        };
        let (src, dst) = (Ipv4Address::new(10, 0, 0, 2), Ipv4Address::new(203, 0, 113, 9));
        let ip = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            ethertype: EthernetProtocol::Ipv4,
        };
        let mut buf = std::vec![0u8; eth.buffer_len() + ip.buffer_len() + tcp.buffer_len()];
        let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
        eth.emit(&mut f);
        let mut p = Ipv4Packet::new_unchecked(f.payload_mut());
        ip.emit(&mut p, &ChecksumCapabilities::default());
        let mut t = TcpPacket::new_unchecked(p.payload_mut());
        tcp.emit(&mut t, &IpAddress::Ipv4(src), &IpAddress::Ipv4(dst), &ChecksumCapabilities::default());
        buf
    }

    #[test]
    fn only_the_syn_refusal_from_a_quiet_port_is_dropped() {
        let mut ports = QuietPorts::default();
        let refusal = frame(80, TcpControl::Rst, 0, Some(1001));
        assert!(!ports.drops(&refusal), "nothing is quiet yet");
        ports.set(80, true);
        assert!(ports.drops(&refusal));
        assert!(!ports.drops(&frame(81, TcpControl::Rst, 0, Some(1001))), "another port refuses as before");
        assert!(!ports.drops(&frame(80, TcpControl::Rst, 5000, Some(1001))), "a connection's reset goes out");
        assert!(!ports.drops(&frame(80, TcpControl::Rst, 0, None)), "a reset without ACK goes out");
        assert!(!ports.drops(&frame(80, TcpControl::Syn, 0, Some(1001))), "a SYN-ACK goes out");
        assert!(!ports.drops(&refusal[..20]), "a runt is not parsed");
        assert_eq!(ports.dropped(), 1);
        ports.set(80, false);
        assert!(!ports.drops(&refusal));
        assert!(!ports.contains(65535));
        ports.set(65535, true);
        assert!(ports.contains(65535), "the last port has its bit");
    }
}
