//! Unit tests: RFC 9001 / RFC 9369 Appendix A vectors, RFC 9000 examples,
//! reassembly caps and hostile input.

use proptest::prelude::*;

use super::*;

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

const RFC9001_DCID: [u8; 8] = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];

fn rfc9001_client_initial() -> Vec<u8> {
    hex(include_str!("testdata/rfc9001-a2-client-initial.hex"))
}
fn rfc9001_server_initial() -> Vec<u8> {
    hex(include_str!("testdata/rfc9001-a3-server-initial.hex"))
}
fn rfc9001_crypto_frame() -> Vec<u8> {
    hex(include_str!("testdata/rfc9001-a2-crypto-frame.hex"))
}
fn rfc9369_client_initial() -> Vec<u8> {
    hex(include_str!("testdata/rfc9369-a2-client-initial.hex"))
}

fn open(packet_bytes: &[u8], secrets: &InitialSecrets) -> (Opened, Vec<u8>) {
    let packet = parse_long_header(packet_bytes).unwrap();
    let mut scratch = Vec::new();
    let opened = open_long_packet(&packet, &PacketKeys::new(secrets), None, &mut scratch).unwrap();
    (opened, scratch)
}

#[test]
fn rfc9001_a1_initial_secret_and_client_secret() {
    let (initial, _) = hkdf::Hkdf::<sha2::Sha256>::extract(
        Some(QuicVersion::V1.initial_salt().unwrap()),
        &RFC9001_DCID,
    );
    assert_eq!(
        initial.to_vec(),
        hex("7db5df06e7a69e432496adedb00851923595221596ae2ae9fb8115c1e9ed0a44")
    );
    let mut client = [0u8; 32];
    hkdf_expand_label(&initial, b"client in", b"", &mut client).unwrap();
    assert_eq!(
        client.to_vec(),
        hex("c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea")
    );
    let mut server = [0u8; 32];
    hkdf_expand_label(&initial, b"server in", b"", &mut server).unwrap();
    assert_eq!(
        server.to_vec(),
        hex("3c199828fd139efd216c155ad844cc81fb82fa8d7446fa7d78be803acdda951b")
    );
}

#[test]
fn hkdf_expand_label_refuses_a_short_secret() {
    let mut out = [0u8; 16];
    assert_eq!(
        hkdf_expand_label(&[0u8; 16], b"quic key", b"", &mut out),
        None
    );
}

#[test]
fn rfc9001_a1_client_and_server_initial_keys() {
    let (client, server) = derive_initial_secrets(QuicVersion::V1, &RFC9001_DCID).unwrap();
    assert_eq!(client.key.to_vec(), hex("1f369613dd76d5467730efcbe3b1a22d"));
    assert_eq!(client.iv.to_vec(), hex("fa044b2f42a3fd3b46fb255c"));
    assert_eq!(client.hp.to_vec(), hex("9f50449e04a0e810283a1e9933adedd2"));
    assert_eq!(server.key.to_vec(), hex("cf3a5331653c364c88f0f379b6067e37"));
    assert_eq!(server.iv.to_vec(), hex("0ac1493ca1905853b0bba03e"));
    assert_eq!(server.hp.to_vec(), hex("c206b8d9b9f0f37644430b490eeaa314"));
}

#[test]
fn rfc9001_a2_header_protection_mask() {
    let (client, _) = derive_initial_secrets(QuicVersion::V1, &RFC9001_DCID).unwrap();
    let sample: [u8; 16] = hex("d1b1c98dd7689fb8ec11d242b123dc9b").try_into().unwrap();
    let mask = PacketKeys::new(&client).header_mask(&sample);
    assert_eq!(mask[..5].to_vec(), hex("437b9aec36"));
}

#[test]
fn rfc9001_a2_client_initial_decrypts_to_the_client_hello_crypto_frame() {
    let datagram = rfc9001_client_initial();
    assert_eq!(datagram.len(), 1200);
    let packet = parse_long_header(&datagram).unwrap();
    assert_eq!(packet.version, QuicVersion::V1);
    assert_eq!(packet.packet_type, Some(LongPacketType::Initial));
    assert_eq!(packet.dcid, RFC9001_DCID);
    assert!(packet.scid.is_empty() && packet.token.is_empty());
    assert_eq!(packet.packet_number_offset, 18);
    assert!(packet.rest.is_empty());

    let (client, _) = derive_initial_secrets(QuicVersion::V1, &RFC9001_DCID).unwrap();
    let (opened, plaintext) = open(&datagram, &client);
    assert_eq!(opened.packet_number, 2);
    // Unprotected header from A.2.
    assert_eq!(
        plaintext[..22].to_vec(),
        hex("c300000001088394c8f03e5157080000449e00000002")
    );
    let payload = &plaintext[opened.payload];
    assert_eq!(payload.len(), 1162);
    let frame = rfc9001_crypto_frame();
    assert_eq!(payload[..frame.len()], frame[..]);
    assert!(payload[frame.len()..].iter().all(|byte| *byte == 0));

    let frames: Vec<_> = Frames::new(payload).collect::<Result<_, _>>().unwrap();
    assert_eq!(frames.len(), 2);
    let Frame::Crypto { offset, data } = frames[0] else {
        panic!("first frame is {:?}", frames[0]);
    };
    assert_eq!(offset, 0);
    assert_eq!(data.len(), 241);
    // ClientHello, 0xed bytes long, legacy_version 0x0303.
    assert_eq!(data[..6], [0x01, 0x00, 0x00, 0xed, 0x03, 0x03]);
    assert_eq!(frames[1], Frame::Padding);
}

#[test]
fn rfc9001_a3_server_initial_decrypts() {
    let datagram = rfc9001_server_initial();
    let packet = parse_long_header(&datagram).unwrap();
    assert_eq!(packet.dcid.len(), 0);
    assert_eq!(packet.scid, hex("f067a5502a4262b5"));
    let (_, server) = derive_initial_secrets(QuicVersion::V1, &RFC9001_DCID).unwrap();
    let (opened, plaintext) = open(&datagram, &server);
    assert_eq!(opened.packet_number, 1);
    assert_eq!(
        plaintext[..20].to_vec(),
        hex("c1000000010008f067a5502a4262b50040750001")
    );
    assert_eq!(
        plaintext[opened.payload].to_vec(),
        hex(include_str!("testdata/rfc9001-a3-server-payload.hex"))
    );
}

#[test]
fn rfc9001_a3_server_initial_does_not_open_with_client_keys() {
    let datagram = rfc9001_server_initial();
    let packet = parse_long_header(&datagram).unwrap();
    let (client, _) = derive_initial_secrets(QuicVersion::V1, &RFC9001_DCID).unwrap();
    let mut scratch = Vec::new();
    assert_eq!(
        open_long_packet(&packet, &PacketKeys::new(&client), None, &mut scratch),
        Err(QuicError::DecryptFailed)
    );
}

#[test]
fn connection_hands_back_both_hellos_of_rfc9001_appendix_a() {
    let mut connection = QuicConnection::new(QuicLimits::default());
    let mut counters = QuicCounters::default();
    assert!(connection.on_datagram(
        Direction::ToServer,
        &rfc9001_client_initial(),
        &mut counters
    ));
    assert!(connection.on_datagram(
        Direction::ToClient,
        &rfc9001_server_initial(),
        &mut counters
    ));
    assert_eq!(counters.packets_decrypted, 2);
    assert_eq!(counters.packets_decrypt_failed, 0);

    let client_hello = connection.take_crypto(Direction::ToServer);
    assert_eq!(client_hello.len(), 241);
    assert_eq!(client_hello[..6], [0x01, 0x00, 0x00, 0xed, 0x03, 0x03]);
    assert!(
        connection.take_crypto(Direction::ToServer).is_empty(),
        "take drains"
    );

    let server_hello = connection.take_crypto(Direction::ToClient);
    assert_eq!(server_hello.len(), 0x5a);
    assert_eq!(server_hello[..6], [0x02, 0x00, 0x00, 0x56, 0x03, 0x03]);

    assert_eq!(connection.version(), Some(QuicVersion::V1));
    assert_eq!(connection.server_version(), Some(QuicVersion::V1));
    assert!(!connection.retry_seen());
    assert!(!connection.handshake_or_short_seen(Direction::ToServer));
}

#[test]
fn rfc9001_a4_retry_is_recognised_not_decrypted() {
    let retry = hex(include_str!("testdata/rfc9001-a4-retry.hex"));
    let packet = parse_long_header(&retry).unwrap();
    assert_eq!(packet.packet_type, Some(LongPacketType::Retry));
    assert_eq!(packet.scid, hex("f067a5502a4262b5"));
    assert!(!looks_like_initial(&retry));

    let mut connection = QuicConnection::new(QuicLimits::default());
    let mut counters = QuicCounters::default();
    connection.on_datagram(
        Direction::ToServer,
        &rfc9001_client_initial(),
        &mut counters,
    );
    assert!(connection.on_datagram(Direction::ToClient, &retry, &mut counters));
    assert!(connection.retry_seen());
    assert_eq!(counters.packets_retry, 1);
    assert_eq!(counters.packets_decrypt_failed, 0);
}

#[test]
fn rfc9369_a1_v2_initial_keys() {
    let (client, server) = derive_initial_secrets(QuicVersion::V2, &RFC9001_DCID).unwrap();
    assert_eq!(client.key.to_vec(), hex("8b1a0bc121284290a29e0971b5cd045d"));
    assert_eq!(client.iv.to_vec(), hex("91f73e2351d8fa91660e909f"));
    assert_eq!(client.hp.to_vec(), hex("45b95e15235d6f45a6b19cbcb0294ba9"));
    assert_eq!(server.key.to_vec(), hex("82db637861d55e1d011f19ea71d5d2a7"));
    assert_eq!(server.iv.to_vec(), hex("dd13c276499c0249d3310652"));
    assert_eq!(server.hp.to_vec(), hex("edf6d05c83121201b436e16877593c3a"));
}

#[test]
fn rfc9369_a2_v2_client_initial_decrypts() {
    let datagram = rfc9369_client_initial();
    assert_eq!(datagram.len(), 1200);
    // 0xd7: type bits 0b01, which is Initial in v2 but 0-RTT in v1.
    assert_eq!(datagram[0] & 0x30, 0x10);
    assert_eq!(
        QuicVersion::V1.packet_type(datagram[0]),
        LongPacketType::ZeroRtt
    );
    let packet = parse_long_header(&datagram).unwrap();
    assert_eq!(packet.version, QuicVersion::V2);
    assert_eq!(packet.packet_type, Some(LongPacketType::Initial));
    assert_eq!(initial_version(&datagram), Some(QuicVersion::V2));

    let (client, _) = derive_initial_secrets(QuicVersion::V2, &RFC9001_DCID).unwrap();
    let (opened, plaintext) = open(&datagram, &client);
    assert_eq!(opened.packet_number, 2);
    assert_eq!(
        plaintext[..22].to_vec(),
        hex("d36b3343cf088394c8f03e5157080000449e00000002")
    );
    let frame = rfc9001_crypto_frame();
    assert_eq!(plaintext[opened.payload][..frame.len()], frame[..]);

    let mut connection = QuicConnection::new(QuicLimits::default());
    let mut counters = QuicCounters::default();
    connection.on_datagram(Direction::ToServer, &datagram, &mut counters);
    assert_eq!(connection.version(), Some(QuicVersion::V2));
    assert_eq!(connection.take_crypto(Direction::ToServer).len(), 241);
}

#[test]
fn v2_packet_types_are_rotated() {
    let v2 = QuicVersion::V2;
    assert_eq!(v2.packet_type(0xc0), LongPacketType::Retry);
    assert_eq!(v2.packet_type(0xd0), LongPacketType::Initial);
    assert_eq!(v2.packet_type(0xe0), LongPacketType::ZeroRtt);
    assert_eq!(v2.packet_type(0xf0), LongPacketType::Handshake);
    assert_eq!(QuicVersion::V1.packet_type(0xe0), LongPacketType::Handshake);
    assert_eq!(
        QuicVersion::DRAFT_29.packet_type(0xf0),
        LongPacketType::Retry
    );
}

#[test]
fn salts_per_version() {
    assert_eq!(QuicVersion::V1.initial_salt().unwrap()[..2], [0x38, 0x76]);
    assert_eq!(QuicVersion::V2.initial_salt().unwrap()[..2], [0x0d, 0xed]);
    assert_eq!(
        QuicVersion::DRAFT_29.initial_salt().unwrap()[..2],
        [0xaf, 0xbf]
    );
    assert_eq!(
        QuicVersion(0xff00_0020).initial_salt().unwrap()[..2],
        [0xaf, 0xbf]
    );
    // draft-33 introduced the salt RFC 9001 kept.
    assert_eq!(
        QuicVersion(0xff00_0021).initial_salt().unwrap()[..2],
        [0x38, 0x76]
    );
    assert_eq!(QuicVersion(0xff00_001c).initial_salt(), None);
    assert_eq!(QuicVersion(0x5130_3530).initial_salt(), None);
}

#[test]
fn version_names() {
    assert_eq!(version_name(1), "1");
    assert_eq!(version_name(0x6b33_43cf), "2");
    assert_eq!(version_name(0xff00_001d), "draft-29");
    assert_eq!(version_name(0xff00_0022), "draft-34");
    assert_eq!(version_name(0x5130_3530), "0x51303530");
}

#[test]
fn rfc9000_16_varint_examples() {
    let cases: [(&str, u64, usize); 5] = [
        ("c2197c5eff14e88c", 151_288_809_941_952_652, 8),
        ("9d7f3e7d", 494_878_333, 4),
        ("7bbd", 15_293, 2),
        ("25", 37, 1),
        ("4025", 37, 2),
    ];
    for (bytes, value, length) in cases {
        let mut position = 0;
        assert_eq!(read_varint(&hex(bytes), &mut position), Some(value));
        assert_eq!(position, length);
    }
    let mut position = 0;
    assert_eq!(read_varint(&hex("9d7f3e"), &mut position), None);
    assert_eq!(position, 0);
}

#[test]
fn rfc9000_a3_packet_number_decoding_example() {
    assert_eq!(
        decode_packet_number(Some(0xa82f30ea), 0x9b32, 16),
        0xa82f9b32
    );
    assert_eq!(decode_packet_number(None, 2, 32), 2);
    assert_eq!(decode_packet_number(Some(0xff), 0x01, 8), 0x101);
}

#[test]
fn ack_with_ranges_and_ecn_then_crypto_then_close() {
    let payload = [
        0x03, 0x10, 0x00, 0x01, 0x02, 0x01, 0x01, // ACK_ECN: largest 16, one extra range
        0x05, 0x06, 0x40, 0x07, // ECT0, ECT1, CE counts
        0x01, // PING
        0x06, 0x05, 0x03, 0xaa, 0xbb, 0xcc, // CRYPTO offset 5, 3 bytes
        0x1c, 0x0a, 0x06, 0x02, b'n', b'o', // CONNECTION_CLOSE with reason "no"
        0x00, 0x00, 0x00, // PADDING
    ];
    let frames: Vec<_> = Frames::new(&payload).collect::<Result<_, _>>().unwrap();
    assert_eq!(
        frames,
        [
            Frame::Ack,
            Frame::Ping,
            Frame::Crypto {
                offset: 5,
                data: &[0xaa, 0xbb, 0xcc]
            },
            Frame::ConnectionClose,
            Frame::Padding,
        ]
    );
}

#[test]
fn frame_walk_stops_at_a_frame_not_allowed_in_initial() {
    // PING, then STREAM (0x08), then a CRYPTO frame that must not be reached.
    let payload = [0x01, 0x08, 0x00, 0x06, 0x00, 0x01, 0xaa];
    let frames: Vec<_> = Frames::new(&payload).collect();
    assert_eq!(frames, [Ok(Frame::Ping), Err(QuicError::UnexpectedFrame)]);
}

#[test]
fn crypto_frame_past_its_payload_is_malformed() {
    let payload = [0x06, 0x00, 0x10, 0xaa];
    let frames: Vec<_> = Frames::new(&payload).collect();
    assert_eq!(frames, [Err(QuicError::BadFrame)]);
    // An ACK claiming 2^62-1 ranges ends at the payload's end.
    let payload = [
        0x02, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00,
    ];
    let frames: Vec<_> = Frames::new(&payload).collect();
    assert_eq!(frames, [Err(QuicError::BadFrame)]);
}

#[test]
fn crypto_pieces_in_any_order_come_out_in_order() {
    let limits = QuicLimits::default();
    let mut counters = QuicCounters::default();
    let mut stream = CryptoStream::default();
    stream.insert(6, b"ghi", &limits, &mut counters);
    stream.insert(3, b"def", &limits, &mut counters);
    assert!(stream.ready().is_empty());
    stream.insert(0, b"abcd", &limits, &mut counters); // overlaps "def" by one byte
    assert_eq!(stream.take(), b"abcdefghi");
    stream.insert(2, b"cdefghijk", &limits, &mut counters); // retransmission plus new
    assert_eq!(stream.take(), b"jk");
    assert_eq!(stream.contiguous_length(), 11);
    assert_eq!(stream.pending_frames(), 0);
    assert_eq!(counters.crypto_frames_out_of_order, 2);
    assert!(!stream.is_truncated());
}

#[test]
fn pending_frame_cap_drops_and_counts() {
    let limits = QuicLimits {
        max_crypto_bytes: 1024,
        max_pending_frames: 2,
    };
    let mut counters = QuicCounters::default();
    let mut stream = CryptoStream::default();
    stream.insert(10, b"x", &limits, &mut counters);
    stream.insert(20, b"y", &limits, &mut counters);
    stream.insert(30, b"z", &limits, &mut counters);
    assert_eq!(stream.pending_frames(), 2);
    assert_eq!(counters.crypto_frames_dropped_over_cap, 1);
    assert!(stream.is_truncated());
}

#[test]
fn crypto_byte_cap_drops_and_counts() {
    let limits = QuicLimits {
        max_crypto_bytes: 8,
        max_pending_frames: 64,
    };
    let mut counters = QuicCounters::default();
    let mut stream = CryptoStream::default();
    stream.insert(4, b"efghij", &limits, &mut counters); // bytes 8, 9 over the cap
    stream.insert(100, b"far", &limits, &mut counters); // entirely over the cap
    stream.insert(0, b"abcd", &limits, &mut counters);
    assert_eq!(stream.take(), b"abcdefgh");
    assert_eq!(counters.crypto_bytes_dropped_over_cap, 5);
    assert!(stream.is_truncated());
    assert_eq!(stream.pending_bytes(), 0);
}

#[test]
fn connection_crypto_cap_truncates_the_client_hello() {
    let limits = QuicLimits {
        max_crypto_bytes: 100,
        max_pending_frames: 4,
    };
    let mut connection = QuicConnection::new(limits);
    let mut counters = QuicCounters::default();
    connection.on_datagram(
        Direction::ToServer,
        &rfc9001_client_initial(),
        &mut counters,
    );
    assert_eq!(connection.take_crypto(Direction::ToServer).len(), 100);
    assert_eq!(counters.crypto_bytes_dropped_over_cap, 141);
    assert!(connection.crypto_truncated(Direction::ToServer));
}

#[test]
fn version_negotiation_is_recognised() {
    let mut packet = vec![0xc5, 0, 0, 0, 0, 4, 1, 2, 3, 4, 0];
    packet.extend_from_slice(&[0, 0, 0, 1, 0x6b, 0x33, 0x43, 0xcf, 0x1a, 0x2a, 0x3a, 0x4a]);
    let mut connection = QuicConnection::new(QuicLimits::default());
    let mut counters = QuicCounters::default();
    assert!(connection.on_datagram(Direction::ToClient, &packet, &mut counters));
    assert_eq!(
        connection.version_negotiation(),
        Some(&[QuicVersion::V1, QuicVersion::V2, QuicVersion(0x1a2a_3a4a)][..])
    );
    assert_eq!(counters.packets_version_negotiation, 1);
    assert!(!looks_like_initial(&packet));
}

#[test]
fn google_quic_version_is_counted_unsupported() {
    // Q050 long header: "Q050" as the version, 8-byte DCID.
    let mut packet = vec![0xc3, b'Q', b'0', b'5', b'0', 8, 1, 2, 3, 4, 5, 6, 7, 8, 0];
    packet.resize(1200, 0);
    assert!(!looks_like_initial(&packet));
    let mut connection = QuicConnection::new(QuicLimits::default());
    let mut counters = QuicCounters::default();
    assert!(connection.on_datagram(Direction::ToServer, &packet, &mut counters));
    assert_eq!(counters.packets_version_unsupported, 1);
    assert_eq!(connection.version(), None);
}

#[test]
fn coalesced_handshake_and_short_header_are_noticed() {
    // The RFC's server Initial, then a Handshake packet (type 0b10) with a
    // 3-byte Length, then a short-header packet.
    let mut datagram = rfc9001_server_initial();
    datagram.extend_from_slice(&[0xe0, 0, 0, 0, 1, 0, 0, 3, 0xaa, 0xbb, 0xcc]);
    datagram.extend_from_slice(&[0x40, 0x11, 0x22]);
    let mut connection = QuicConnection::new(QuicLimits::default());
    let mut counters = QuicCounters::default();
    connection.on_datagram(
        Direction::ToServer,
        &rfc9001_client_initial(),
        &mut counters,
    );
    assert!(connection.on_datagram(Direction::ToClient, &datagram, &mut counters));
    assert_eq!(counters.packets_decrypted, 2);
    assert_eq!(counters.packets_handshake, 1);
    assert_eq!(counters.packets_short_header, 1);
    assert!(connection.handshake_or_short_seen(Direction::ToClient));
    assert!(!connection.handshake_or_short_seen(Direction::ToServer));
    assert_eq!(connection.take_crypto(Direction::ToClient).len(), 0x5a);
}

#[test]
fn datagram_that_is_not_quic_is_refused() {
    let mut connection = QuicConnection::new(QuicLimits::default());
    let mut counters = QuicCounters::default();
    // A DNS query header: high bit clear, and no Initial seen yet.
    assert!(!connection.on_datagram(
        Direction::ToServer,
        &[0x12, 0x34, 0x01, 0x00],
        &mut counters
    ));
    assert!(!connection.on_datagram(Direction::ToServer, &[0xc0, 0, 0], &mut counters));
    assert_eq!(counters.datagrams_not_quic, 2);
}

#[test]
fn looks_like_initial_accepts_the_rfc_client_initials_only() {
    assert_eq!(
        initial_version(&rfc9001_client_initial()),
        Some(QuicVersion::V1)
    );
    // Server Initial: empty DCID, not a first datagram.
    assert!(!looks_like_initial(&rfc9001_server_initial()));
    assert!(!looks_like_initial(&rfc9001_client_initial()[..30]));
    assert!(!looks_like_initial(&[]));
}

fn check_bounded(connection: &QuicConnection, limits: &QuicLimits) {
    for direction in [Direction::ToServer, Direction::ToClient] {
        let stream = connection.crypto_stream(direction);
        assert!(stream.ready().len() <= limits.max_crypto_bytes);
        assert!(stream.pending_frames() <= limits.max_pending_frames);
        assert!(stream.pending_bytes() <= limits.max_crypto_bytes);
    }
}

proptest! {
    #[test]
    fn random_datagrams_never_panic(datagrams in proptest::collection::vec(
        (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..1400)), 1..8)) {
        let limits = QuicLimits { max_crypto_bytes: 512, max_pending_frames: 4 };
        let mut connection = QuicConnection::new(limits);
        let mut counters = QuicCounters::default();
        for (to_server, datagram) in &datagrams {
            let direction = if *to_server { Direction::ToServer } else { Direction::ToClient };
            connection.on_datagram(direction, datagram, &mut counters);
            let _ = looks_like_initial(datagram);
            check_bounded(&connection, &limits);
        }
    }

    #[test]
    fn mutated_rfc_initials_never_panic(
        flips in proptest::collection::vec((0usize..1200, any::<u8>()), 0..6),
        cut in 0usize..1300,
        prefix_server in any::<bool>(),
    ) {
        let mut datagram = rfc9001_client_initial();
        for (index, value) in flips {
            datagram[index] ^= value;
        }
        datagram.truncate(cut);
        let limits = QuicLimits { max_crypto_bytes: 128, max_pending_frames: 2 };
        let mut connection = QuicConnection::new(limits);
        let mut counters = QuicCounters::default();
        if prefix_server {
            connection.on_datagram(Direction::ToClient, &rfc9001_server_initial(), &mut counters);
        }
        connection.on_datagram(Direction::ToServer, &datagram, &mut counters);
        connection.on_datagram(Direction::ToServer, &rfc9001_client_initial(), &mut counters);
        connection.on_datagram(Direction::ToClient, &rfc9001_server_initial(), &mut counters);
        check_bounded(&connection, &limits);
        // The genuine packets still decrypt whatever came before.
        prop_assert!(connection.crypto_stream(Direction::ToServer).contiguous_length() > 0);
    }

    #[test]
    fn mutated_crypto_frames_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..300)) {
        let limits = QuicLimits { max_crypto_bytes: 64, max_pending_frames: 3 };
        let mut counters = QuicCounters::default();
        let mut stream = CryptoStream::default();
        for frame in Frames::new(&payload) {
            if let Ok(Frame::Crypto { offset, data }) = frame {
                stream.insert(offset, data, &limits, &mut counters);
            }
        }
        prop_assert!(stream.ready().len() <= 64);
        prop_assert!(stream.pending_frames() <= 3);
    }
}

#[test]
fn draft29_initial_keys() {
    // draft-ietf-quic-tls-29 Appendix A.1 (same DCID as RFC 9001).
    let (client, server) = derive_initial_secrets(QuicVersion::DRAFT_29, &RFC9001_DCID).unwrap();
    assert_eq!(client.key.to_vec(), hex("175257a31eb09dea9366d8bb79ad80ba"));
    assert_eq!(client.iv.to_vec(), hex("6b26114b9cba2b63a9e8dd4f"));
    assert_eq!(client.hp.to_vec(), hex("9ddd12c994c0698b89374a9c077a3077"));
    assert_eq!(server.key.to_vec(), hex("149d0b1662ab871fbe63c49b5e655a5d"));
    assert_eq!(server.iv.to_vec(), hex("bab2b12a4c76016ace47856d"));
    assert_eq!(server.hp.to_vec(), hex("c0c499a65a60024a18a250974ea01dfa"));
}

/// Protects an Initial the way a sender does (RFC 9001 §5.3, §5.4), for
/// versions without a published protected packet.
fn protect(header: &[u8], packet_number: u64, payload: &[u8], secrets: &InitialSecrets) -> Vec<u8> {
    use aes::cipher::{BlockEncrypt, KeyInit};
    use aes_gcm::aead::AeadInPlace;
    let mut nonce = secrets.iv;
    for (byte, pn) in nonce[4..].iter_mut().zip(packet_number.to_be_bytes()) {
        *byte ^= pn;
    }
    let mut body = payload.to_vec();
    let aead = aes_gcm::Aes128Gcm::new_from_slice(&secrets.key).unwrap();
    let tag = aead
        .encrypt_in_place_detached(aes_gcm::Nonce::from_slice(&nonce), header, &mut body)
        .unwrap();
    let mut packet = [header, &body, &tag].concat();
    let pn_length = usize::from(header[0] & 0x03) + 1;
    let pn_offset = header.len() - pn_length;
    let hp = aes::Aes128::new_from_slice(&secrets.hp).unwrap();
    let mut mask = aes::Block::clone_from_slice(&packet[pn_offset + 4..pn_offset + 20]);
    hp.encrypt_block(&mut mask);
    packet[0] ^= mask[0] & 0x0f;
    for (byte, mask) in packet[pn_offset..pn_offset + pn_length]
        .iter_mut()
        .zip(&mask[1..])
    {
        *byte ^= mask;
    }
    packet
}

#[test]
fn draft29_initial_round_trips_through_the_connection() {
    // RFC 9001 A.2's header and payload, with the draft-29 version number.
    let header = hex("c3ff00001d088394c8f03e5157080000449e00000002");
    let mut payload = rfc9001_crypto_frame();
    payload.resize(1162, 0);
    let (client, _) = derive_initial_secrets(QuicVersion::DRAFT_29, &RFC9001_DCID).unwrap();
    let datagram = protect(&header, 2, &payload, &client);
    assert_eq!(datagram.len(), 1200);
    assert_eq!(initial_version(&datagram), Some(QuicVersion::DRAFT_29));

    let mut connection = QuicConnection::new(QuicLimits::default());
    let mut counters = QuicCounters::default();
    connection.on_datagram(Direction::ToServer, &datagram, &mut counters);
    assert_eq!(counters.packets_decrypted, 1);
    assert_eq!(
        connection.version().map(|version| version.to_string()),
        Some("draft-29".into())
    );
    assert_eq!(
        connection.take_crypto(Direction::ToServer)[..4],
        [0x01, 0x00, 0x00, 0xed]
    );
}

#[test]
fn server_initial_after_retry_uses_the_new_client_dcid() {
    // Client Initial to the original DCID, Retry, then a client Initial to a
    // new (4-byte) DCID and a server Initial keyed on it.
    let new_dcid = [0x1b, 0x03, 0x6a, 0x11];
    let (client, server) = derive_initial_secrets(QuicVersion::V1, &new_dcid).unwrap();
    let mut payload = rfc9001_crypto_frame();
    payload.resize(1162, 0);
    let mut header = hex("c300000001041b036a110000449e00000003");
    let second_client = protect(&header, 3, &payload, &client);
    header = hex("c1000000010008f067a5502a4262b50040750001");
    let server_payload = hex(include_str!("testdata/rfc9001-a3-server-payload.hex"));
    let server_initial = protect(&header, 1, &server_payload, &server);

    let mut connection = QuicConnection::new(QuicLimits::default());
    let mut counters = QuicCounters::default();
    connection.on_datagram(
        Direction::ToServer,
        &rfc9001_client_initial(),
        &mut counters,
    );
    connection.on_datagram(
        Direction::ToClient,
        &hex(include_str!("testdata/rfc9001-a4-retry.hex")),
        &mut counters,
    );
    connection.on_datagram(Direction::ToServer, &second_client, &mut counters);
    connection.on_datagram(Direction::ToClient, &server_initial, &mut counters);
    assert!(connection.retry_seen());
    assert_eq!(counters.packets_decrypted, 3);
    // A failed key attempt on the way (original DCID first) is not a failed packet.
    assert_eq!(counters.packets_decrypt_failed, 0);
    // The repeated ClientHello lands on the same offsets: handed over once.
    assert_eq!(connection.take_crypto(Direction::ToServer).len(), 241);
    assert_eq!(connection.take_crypto(Direction::ToClient).len(), 0x5a);
}
