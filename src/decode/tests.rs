use super::*;
use etherparse::PacketBuilder;

fn tcp_v4_frame(vlans: &[u16], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let builder = match vlans {
        [] => PacketBuilder::ethernet2([1; 6], [2; 6]).ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64),
        [one] => PacketBuilder::ethernet2([1; 6], [2; 6])
            .single_vlan((*one).try_into().expect("vlan id"))
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64),
        [outer, inner, ..] => PacketBuilder::ethernet2([1; 6], [2; 6])
            .double_vlan(
                (*outer).try_into().expect("vlan id"),
                (*inner).try_into().expect("vlan id"),
            )
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64),
    }
    .tcp(40000, 443, 1000, 65535)
    .syn();
    builder.write(&mut out, payload).expect("build");
    out
}

#[test]
fn ethernet_ipv4_tcp_gives_endpoints_flags_and_payload() {
    let frame = tcp_v4_frame(&[], b"hello");
    let decoded = decode(LinkType::ETHERNET, &frame, &DecodeConfig::default()).expect("decodes");
    assert_eq!(decoded.source, "10.0.0.1".parse::<IpAddr>().expect("ip"));
    assert_eq!(
        decoded.destination,
        "10.0.0.2".parse::<IpAddr>().expect("ip")
    );
    assert_eq!(
        (decoded.source_port, decoded.destination_port),
        (40000, 443)
    );
    assert_eq!(decoded.transport, Transport::Tcp);
    assert_eq!(decoded.tcp.seq, 1000);
    assert!(decoded.tcp.flags.syn());
    assert!(!decoded.tcp.flags.ack());
    assert_eq!(decoded.payload, b"hello");
    let mut encap = EncapPath::EMPTY;
    decode_packet(
        LinkType::ETHERNET,
        &frame,
        &DecodeConfig::default(),
        &mut encap,
    )
    .expect("ok");
    assert!(encap.is_empty());
}

#[test]
fn qinq_tags_are_recorded_outermost_first() {
    let config = DecodeConfig::default();
    let path = |frame: &[u8]| {
        let mut encap = EncapPath::EMPTY;
        decode_packet(LinkType::ETHERNET, frame, &config, &mut encap).expect("decodes");
        encap
    };
    let double = path(&tcp_v4_frame(&[100, 20], b"x"));
    assert_eq!(double.vlan_ids().collect::<Vec<_>>(), vec![100, 20]);
    let labels: Vec<String> = double.iter().map(|e| e.to_string()).collect();
    assert_eq!(labels, vec!["vlan:100", "vlan:20"]);
    let single = path(&tcp_v4_frame(&[100], b"x"));
    assert_ne!(double.flow_context(), single.flow_context());
}

#[test]
fn ethernet_padding_after_ip_total_length_is_not_payload() {
    let mut frame = tcp_v4_frame(&[], b"");
    frame.extend_from_slice(&[0u8; 6]); // minimum-frame padding
    let decoded = decode(LinkType::ETHERNET, &frame, &DecodeConfig::default()).expect("decodes");
    assert!(decoded.payload.is_empty());
}

#[test]
fn sll2_header_is_skipped_by_protocol_type() {
    let ether = tcp_v4_frame(&[], b"abc");
    let ip = &ether[14..];
    // protocol 0x0800, reserved, ifindex 2, ARPHRD_ETHER 1, packet type 0, addr len 6, addr
    let mut frame = vec![
        0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
    ];
    frame.extend_from_slice(ip);
    let decoded = decode(LinkType::LINUX_SLL2, &frame, &DecodeConfig::default()).expect("decodes");
    assert_eq!(decoded.payload, b"abc");
}

#[test]
fn sll_header_is_skipped() {
    let ether = tcp_v4_frame(&[], b"abc");
    let ip = &ether[14..];
    // packet type 0, ARPHRD_ETHER, addr len 6, 8 address bytes, protocol 0x0800
    let mut frame = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
    frame.extend_from_slice(ip);
    let decoded = decode(LinkType::LINUX_SLL, &frame, &DecodeConfig::default()).expect("decodes");
    assert_eq!(decoded.payload, b"abc");
}

#[test]
fn bsd_null_family_is_read_in_either_byte_order() {
    let ether = tcp_v4_frame(&[], b"abc");
    for family in [[2u8, 0, 0, 0], [0, 0, 0, 2]] {
        let mut frame = family.to_vec();
        frame.extend_from_slice(&ether[14..]);
        let decoded = decode(LinkType::NULL, &frame, &DecodeConfig::default()).expect("decodes");
        assert_eq!(decoded.payload, b"abc");
    }
}

#[test]
fn raw_ipv6_with_udp_is_decoded() {
    let mut out = Vec::new();
    PacketBuilder::ipv6([0xfd; 16], [0xfe; 16], 64)
        .udp(5353, 443)
        .write(&mut out, b"quic")
        .expect("build");
    let decoded = decode(LinkType::RAW, &out, &DecodeConfig::default()).expect("decodes");
    assert_eq!(decoded.transport, Transport::Udp);
    assert_eq!(decoded.destination_port, 443);
    assert_eq!(decoded.payload, b"quic");
}

#[test]
fn every_prefix_of_a_frame_fails_cleanly() {
    let frame = tcp_v4_frame(&[100, 20], b"payload");
    let mut counters = Counters::default();
    for cut in 0..frame.len() - b"payload".len() {
        let result = decode(LinkType::ETHERNET, &frame[..cut], &DecodeConfig::default());
        assert!(result.is_err(), "prefix {cut} decoded");
        counters.count(&result);
    }
    assert!(counters.packets_truncated > 0);
    assert_eq!(counters.packets_decoded, 0);
}

#[test]
fn vlan_stack_deeper_than_limit_is_refused() {
    let frame = tcp_v4_frame(&[1, 2], b"");
    let config = DecodeConfig {
        max_depth: 2,
        ..DecodeConfig::default()
    };
    assert_eq!(
        decode(LinkType::ETHERNET, &frame, &config).err(),
        Some(DecodeError::TooDeep)
    );
}

#[test]
fn unknown_link_type_is_counted_not_decoded() {
    let result = decode(LinkType(147), &[0u8; 64], &DecodeConfig::default());
    assert_eq!(result.err(), Some(DecodeError::UnsupportedLinkType(147)));
}
