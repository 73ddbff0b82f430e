//! What a received frame really is, from what the driver reports: pure arithmetic over
//! bytes, no device and no `unsafe`, so it is unit- and property-tested on the host.
//!
//! Unikraft 0.16.3's virtio-net driver reports a received frame with three flaws the
//! glue (`glue/netdev.c`) passes on as they are, and this module corrects:
//!
//! 1. The length counts the virtio-net header (10 bytes, 12 on modern virtio) that the
//!    device wrote before the frame: [`received_len`] takes it off, and never returns
//!    more than the receive buffer holds, whatever the driver says.
//! 2. A short frame can still come with bytes after its end (a sender's padding, or a
//!    previous frame's bytes in a reused buffer): for IPv4 and IPv6, [`ip_frame_len`]
//!    trims the frame to the end its IP header gives.
//! 3. A host stack sending over a TAP leaves the TCP/UDP checksum to "the hardware"
//!    (virtio's `NEEDS_CSUM`): [`complete_partial_checksum`] computes it, over the
//!    trimmed frame only (stale bytes after the end would spoil it).
//!
//! Frames that cannot be real (shorter than an Ethernet header) are dropped by the
//! caller and counted ([`ETHERNET_HEADER`]).

/// Bytes in an untagged Ethernet header; a shorter frame is dropped.
pub const ETHERNET_HEADER: usize = 14;

const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
const ETHERTYPE_IPV6: [u8; 2] = [0x86, 0xdd];
const IPV4_HEADER_MIN: usize = 20;
const IPV6_HEADER: usize = 40;

/// The frame's length from the driver's `reported` length, of which `header` bytes are
/// the virtio-net header, in a receive buffer of `room` bytes. Never more than `room`.
pub fn received_len(reported: usize, header: usize, room: usize) -> usize {
    reported.saturating_sub(header).min(room)
}

/// The frame's real length: for IPv4 and IPv6, where the IP header says the packet ends
/// (if that is within `frame`); otherwise all of `frame`. Never more than `frame.len()`.
pub fn ip_frame_len(frame: &[u8]) -> usize {
    let len = frame.len();
    let be16 = |at: usize| usize::from(u16::from_be_bytes([frame[at], frame[at + 1]]));
    let end = if len >= ETHERNET_HEADER + IPV4_HEADER_MIN && frame[12..14] == ETHERTYPE_IPV4 {
        // Total length: header and payload.
        ETHERNET_HEADER + be16(ETHERNET_HEADER + 2)
    } else if len >= ETHERNET_HEADER + IPV6_HEADER && frame[12..14] == ETHERTYPE_IPV6 {
        // Payload length: after the fixed header.
        ETHERNET_HEADER + IPV6_HEADER + be16(ETHERNET_HEADER + 4)
    } else {
        len
    };
    end.min(len)
}

/// Completes a checksum the sender left to the receiver: the 16-bit field at
/// `start + offset` holds the pseudo-header's sum, and gets the one's complement of the
/// one's-complement sum of everything from `start` to the frame's end (the field
/// included). Returns `false`, changing nothing, when the field is not inside `frame`.
pub fn complete_partial_checksum(frame: &mut [u8], start: usize, offset: usize) -> bool {
    let Some(field) = start.checked_add(offset) else { return false };
    if field.checked_add(2).is_none_or(|end| end > frame.len()) {
        return false;
    }
    let checksum = !ones_complement_sum(&frame[start..]);
    frame[field..field + 2].copy_from_slice(&checksum.to_be_bytes());
    true
}

/// The 16-bit one's-complement sum of `bytes` as big-endian words (an odd last byte is
/// the high half of a word), folded.
pub fn ones_complement_sum(bytes: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    let mut words = bytes.chunks_exact(2);
    for word in &mut words {
        sum += u64::from(u16::from_be_bytes([word[0], word[1]]));
    }
    if let [last] = words.remainder() {
        sum += u64::from(*last) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet + IPv4 + UDP frame whose checksum field holds the pseudo-header sum,
    /// as a host stack leaves it with NEEDS_CSUM, followed by `trailer` stale bytes.
    fn partial_udp_frame(payload: &[u8], trailer: &[u8]) -> (Vec<u8>, usize, usize) {
        use smoltcp::phy::ChecksumCapabilities;
        use smoltcp::wire::{
            EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpProtocol, Ipv4Address, Ipv4Packet,
            Ipv4Repr, UdpPacket, UdpRepr,
        };
        let (src, dst) = (Ipv4Address::new(10, 0, 0, 1), Ipv4Address::new(10, 0, 0, 2));
        let udp = UdpRepr { src_port: 40000, dst_port: 7 };
        let udp_len = 8 + payload.len();
        let ip = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Udp,
            payload_len: udp_len,
            hop_limit: 64,
        };
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            ethertype: EthernetProtocol::Ipv4,
        };
        let total = 14 + 20 + udp_len;
        let mut bytes = vec![0u8; total];
        let mut frame = EthernetFrame::new_unchecked(&mut bytes);
        eth.emit(&mut frame);
        let mut packet = Ipv4Packet::new_unchecked(frame.payload_mut());
        ip.emit(&mut packet, &ChecksumCapabilities::default());
        let mut datagram = UdpPacket::new_unchecked(packet.payload_mut());
        let caps = ChecksumCapabilities::ignored();
        udp.emit(&mut datagram, &src.into(), &dst.into(), payload.len(), |p| p.copy_from_slice(payload), &caps);
        // The pseudo-header's sum (source, destination, protocol, UDP length), uncomplemented.
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&src.octets());
        pseudo.extend_from_slice(&dst.octets());
        pseudo.extend_from_slice(&[0, 17]);
        pseudo.extend_from_slice(&(udp_len as u16).to_be_bytes());
        bytes[14 + 20 + 6..14 + 20 + 8].copy_from_slice(&ones_complement_sum(&pseudo).to_be_bytes());
        bytes.extend_from_slice(trailer);
        (bytes, 14 + 20, 6)
    }

    fn udp_checksum_ok(frame: &[u8]) -> bool {
        use smoltcp::wire::{EthernetFrame, Ipv4Packet, UdpPacket};
        let Ok(eth) = EthernetFrame::new_checked(frame) else { return false };
        let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else { return false };
        let Ok(udp) = UdpPacket::new_checked(ip.payload()) else { return false };
        udp.verify_checksum(&ip.src_addr().into(), &ip.dst_addr().into())
    }

    #[test]
    fn the_virtio_header_is_not_part_of_the_frame() {
        // A 60-byte frame behind a 10-byte legacy header, in a 1514-byte buffer.
        assert_eq!(received_len(70, 10, 1514), 60);
        assert_eq!(received_len(72, 12, 1514), 60);
        // A driver that reports more than the buffer holds is not believed.
        assert_eq!(received_len(1524 + 500, 10, 1514), 1514);
        assert_eq!(received_len(5, 10, 1514), 0);
    }

    #[test]
    fn ipv4_and_ipv6_frames_are_trimmed_to_their_ip_length_and_others_kept() {
        let (mut frame, _, _) = partial_udp_frame(b"hello", &[0xee; 12]);
        assert_eq!(ip_frame_len(&frame), 14 + 20 + 8 + 5);
        // A header claiming more than was received does not extend the frame.
        frame[16..18].copy_from_slice(&9000u16.to_be_bytes());
        assert_eq!(ip_frame_len(&frame), frame.len());
        let mut v6 = vec![0u8; 14 + 40 + 8 + 10];
        v6[12..14].copy_from_slice(&[0x86, 0xdd]);
        v6[18..20].copy_from_slice(&8u16.to_be_bytes());
        assert_eq!(ip_frame_len(&v6), 14 + 40 + 8);
        let mut arp = vec![0u8; 60];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(ip_frame_len(&arp), 60);
        assert_eq!(ip_frame_len(&[]), 0);
    }

    #[test]
    fn a_partial_udp_checksum_is_completed_over_the_trimmed_frame_only() {
        let (mut frame, start, offset) = partial_udp_frame(b"ping-from-host", &[0xa5; 12]);
        let len = ip_frame_len(&frame);
        assert!(!udp_checksum_ok(&frame[..len]));
        assert!(complete_partial_checksum(&mut frame[..len], start, offset));
        assert!(udp_checksum_ok(&frame[..len]));
    }

    #[test]
    fn a_checksum_field_outside_the_frame_changes_nothing() {
        let mut frame = vec![7u8; 40];
        assert!(!complete_partial_checksum(&mut frame, 34, 6));
        assert!(!complete_partial_checksum(&mut frame, 39, 0));
        assert!(!complete_partial_checksum(&mut frame, usize::MAX, 2));
        assert!(!complete_partial_checksum(&mut frame, 2, usize::MAX));
        assert_eq!(frame, vec![7u8; 40]);
        assert!(complete_partial_checksum(&mut frame, 30, 8));
    }

    #[test]
    fn ones_complement_sums_fold_and_pad_odd_bytes() {
        assert_eq!(ones_complement_sum(&[]), 0);
        assert_eq!(ones_complement_sum(&[0x12]), 0x1200);
        assert_eq!(ones_complement_sum(&[0xff, 0xff, 0x00, 0x02]), 0x0002);
        // RFC 1071's example.
        assert_eq!(ones_complement_sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), 0xddf2);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Arbitrary frames, with the interesting Ethertypes made likely.
        fn frames() -> impl Strategy<Value = Vec<u8>> {
            (
                proptest::collection::vec(any::<u8>(), 0..1600),
                prop_oneof![Just(None), Just(Some([0x08, 0x00])), Just(Some([0x86, 0xdd]))],
            )
                .prop_map(|(mut bytes, ethertype)| {
                    if let (Some(t), true) = (ethertype, bytes.len() >= 14) {
                        bytes[12..14].copy_from_slice(&t);
                    }
                    bytes
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

            #[test]
            fn received_len_never_exceeds_the_buffer_or_the_report(reported in 0usize..70000, header in 0usize..64, room in 0usize..4096) {
                let len = received_len(reported, header, room);
                prop_assert!(len <= room);
                prop_assert!(len <= reported.saturating_sub(header));
                if reported >= header && reported - header <= room {
                    prop_assert_eq!(len, reported - header);
                }
            }

            #[test]
            fn trimming_stays_inside_the_frame_and_is_idempotent(frame in frames()) {
                let len = ip_frame_len(&frame);
                prop_assert!(len <= frame.len());
                prop_assert_eq!(ip_frame_len(&frame[..len]), len);
                if frame.len() < 14 || (frame[12..14] != [0x08, 0x00] && frame[12..14] != [0x86, 0xdd]) {
                    prop_assert_eq!(len, frame.len());
                }
            }

            #[test]
            fn completing_any_checksum_never_panics_and_touches_only_its_field(mut frame in frames(), start in 0usize..1700, offset in 0usize..64) {
                let before = frame.clone();
                let done = complete_partial_checksum(&mut frame, start, offset);
                prop_assert_eq!(done, start + offset + 2 <= frame.len());
                for (i, (a, b)) in before.iter().zip(&frame).enumerate() {
                    if !done || i < start + offset || i >= start + offset + 2 {
                        prop_assert_eq!(a, b, "byte {} changed", i);
                    }
                }
                if done && offset % 2 == 0 {
                    // (TCP's and UDP's fields are whole words from csum_start.)
                    // What the receiver checks: the sum over the covered bytes, with the
                    // pseudo-header's sum added back, is all ones.
                    let pseudo = u16::from_be_bytes([before[start + offset], before[start + offset + 1]]);
                    let covered = ones_complement_sum(&frame[start..]);
                    let total = u32::from(covered) + u32::from(pseudo);
                    let folded = (total & 0xffff) + (total >> 16);
                    prop_assert_eq!(folded, 0xffff);
                }
            }

            #[test]
            fn udp_frames_with_stale_bytes_verify_after_trim_and_completion(
                payload in proptest::collection::vec(any::<u8>(), 0..1400),
                trailer in proptest::collection::vec(any::<u8>(), 0..12),
                header in prop_oneof![Just(10usize), Just(12usize)],
            ) {
                let (frame, start, offset) = partial_udp_frame(&payload, &trailer);
                // As the driver reports it: the header counted in, a 1514-byte buffer.
                let mut slot = frame.clone();
                slot.resize(1514, 0x5a);
                let len = received_len(frame.len() + header, header, slot.len());
                prop_assert_eq!(len, frame.len().min(1514));
                let len = ip_frame_len(&slot[..len]);
                prop_assert_eq!(len, frame.len() - trailer.len());
                prop_assert!(complete_partial_checksum(&mut slot[..len], start, offset));
                prop_assert!(udp_checksum_ok(&slot[..len]));
            }
        }
    }
}
