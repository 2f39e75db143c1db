use super::*;
use crate::tls::summary::Direction;
use tls_parser::{TlsMessage, TlsMessageHandshake};

/// An owned copy of one event, so tests can look at a whole trace.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owned {
    Record {
        content_type: u8,
        version: u16,
        body: Vec<u8>,
        encrypted: bool,
    },
    HelloVerifyRequest {
        server_version: u16,
        cookie_len: usize,
    },
    ClientHelloRepeated {
        message_seq: u16,
        cookie_len: usize,
    },
}

impl From<DtlsEvent<'_>> for Owned {
    fn from(event: DtlsEvent<'_>) -> Self {
        match event {
            DtlsEvent::Record {
                content_type,
                version,
                body,
                encrypted,
            } => Owned::Record {
                content_type,
                version,
                body: body.to_vec(),
                encrypted,
            },
            DtlsEvent::HelloVerifyRequest {
                server_version,
                cookie_len,
            } => Owned::HelloVerifyRequest {
                server_version,
                cookie_len,
            },
            DtlsEvent::ClientHelloRepeated {
                message_seq,
                cookie_len,
            } => Owned::ClientHelloRepeated {
                message_seq,
                cookie_len,
            },
        }
    }
}

/// UDP payloads of a Zeek trace in `testdata/` (see its README); the first
/// sender is the client.
fn datagrams(name: &str) -> Vec<(Direction, Vec<u8>)> {
    datagrams_at(&format!(
        "{}/src/tls/dtls/testdata/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
}

fn datagrams_at(path: &str) -> Vec<(Direction, Vec<u8>)> {
    let mut capture = pcap::Capture::from_file(path).expect("test trace is readable");
    let mut client_port = None;
    let mut out = Vec::new();
    while let Ok(packet) = capture.next_packet() {
        let sliced = etherparse::SlicedPacket::from_ethernet(packet.data).expect("ethernet");
        let Some(etherparse::TransportSlice::Udp(udp)) = sliced.transport else {
            continue;
        };
        let client = *client_port.get_or_insert(udp.source_port());
        let direction = if udp.source_port() == client {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        out.push((direction, udp.payload().to_vec()));
    }
    out
}

struct Run {
    events: [Vec<Owned>; 2],
    counters: DtlsCounters,
    not_dtls: usize,
}

fn run(datagrams: &[(Direction, Vec<u8>)], limits: DtlsLimits) -> Run {
    let mut connection = DtlsConnection::new(limits);
    let mut counters = DtlsCounters::default();
    let mut events: [Vec<Owned>; 2] = [Vec::new(), Vec::new()];
    let mut not_dtls = 0;
    for (direction, datagram) in datagrams {
        let sink = &mut events[direction.index()];
        let mut push = |event: DtlsEvent<'_>| sink.push(event.into());
        if !connection.on_datagram(*direction, datagram, &mut counters, &mut push) {
            not_dtls += 1;
        }
        assert!(connection.buffered_bytes() <= 2 * limits.max_buffered_bytes);
    }
    Run {
        events,
        counters,
        not_dtls,
    }
}

fn run_trace(name: &str) -> Run {
    run(&datagrams(name), DtlsLimits::default())
}

/// The plaintext handshake messages of one direction, in TLS form.
fn messages(events: &[Owned]) -> Vec<&[u8]> {
    events
        .iter()
        .filter_map(|event| match event {
            Owned::Record {
                content_type: CONTENT_HANDSHAKE,
                body,
                encrypted: false,
                ..
            } => Some(body.as_slice()),
            _ => None,
        })
        .collect()
}

fn parse(message: &[u8]) -> TlsMessageHandshake<'_> {
    match tls_parser::parse_tls_message_handshake(message) {
        Ok((rest, TlsMessage::Handshake(parsed))) => {
            assert!(rest.is_empty(), "one whole message per record");
            parsed
        }
        other => panic!("not a TLS handshake message: {other:?}"),
    }
}

#[test]
fn dtls10_client_hellos_are_reassembled_and_lose_their_cookie() {
    let run = run_trace("dtls1_0.pcap");
    assert_eq!(run.not_dtls, 0);
    let to_server = &run.events[0];
    let hellos: Vec<_> = messages(to_server)
        .into_iter()
        .filter(|m| m.first() == Some(&1))
        .collect();
    assert_eq!(hellos.len(), 2);
    for hello in &hellos {
        // DTLS body 231 (first) / 251 (second, 20-byte cookie), minus cookie and its length byte.
        assert_eq!(hello.len(), 4 + 230);
        let TlsMessageHandshake::ClientHello(parsed) = parse(hello) else {
            panic!("ClientHello expected");
        };
        assert_eq!(parsed.version.0, DTLS10);
        assert_eq!(parsed.ciphers.len(), 55);
        assert_eq!(parsed.ciphers.first().map(|c| c.0), Some(0xc014));
    }
    // The second ClientHello answers the HelloVerifyRequest.
    let repeated = to_server
        .iter()
        .position(|e| {
            *e == Owned::ClientHelloRepeated {
                message_seq: 1,
                cookie_len: 20,
            }
        })
        .expect("repeated ClientHello event");
    assert!(matches!(
        &to_server[repeated + 1],
        Owned::Record { content_type: 22, body, .. } if body.first() == Some(&1)
    ));
    assert_eq!(run.counters.client_hellos_repeated, 1);
    assert_eq!(run.counters.hello_verify_requests, 1);
    assert_eq!(run.counters.messages_reassembled, 2);
}

#[test]
fn dtls10_server_flight_parses_and_encrypted_records_are_flagged() {
    let run = run_trace("dtls1_0.pcap");
    let to_client = &run.events[1];
    assert_eq!(
        to_client.first(),
        Some(&Owned::HelloVerifyRequest {
            server_version: DTLS10,
            cookie_len: 20
        })
    );
    let server_messages = messages(to_client);
    let types: Vec<u8> = server_messages
        .iter()
        .filter_map(|m| m.first().copied())
        .collect();
    // NewSessionTicket (4) comes in epoch 0, before the server's CCS.
    assert_eq!(types, [2, 11, 12, 14, 4]);
    // Zeek ssl.log: TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA.
    assert_eq!(
        parse_server_hello(server_messages[0], |h| (h.version.0, h.cipher.0)),
        Some((DTLS10, 0xc014))
    );
    let TlsMessageHandshake::Certificate(chain) = parse(server_messages[1]) else {
        panic!("Certificate expected");
    };
    assert_eq!(chain.cert_chain.len(), 1);
    assert_eq!(chain.cert_chain[0].data.len(), 755);
    // After the flight: CCS in epoch 0, Finished in epoch 1, then application data.
    let tail: Vec<(u8, bool)> = to_client
        .iter()
        .filter_map(|e| match e {
            Owned::Record {
                content_type,
                encrypted,
                body,
                ..
            } if *content_type != 22 || *encrypted => {
                assert!(*encrypted || body == &[1], "plaintext CCS body is 1");
                Some((*content_type, *encrypted))
            }
            _ => None,
        })
        .collect();
    assert_eq!(tail, [(20, false), (22, true), (23, true)]);
}

#[test]
fn dtls12_certificate_fragmented_over_five_datagrams_is_reassembled() {
    let run = run_trace("dtls1_2.pcap");
    let server_messages = messages(&run.events[1]);
    let types: Vec<u8> = server_messages
        .iter()
        .filter_map(|m| m.first().copied())
        .collect();
    assert_eq!(types, [2, 11, 12, 14, 4]);
    // Zeek ssl.log: DTLSv12, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384.
    assert_eq!(
        parse_server_hello(server_messages[0], |h| (h.version.0, h.cipher.0)),
        Some((DTLS12, 0xc030))
    );
    assert_eq!(server_messages[1].len(), 4 + 874);
    let TlsMessageHandshake::Certificate(chain) = parse(server_messages[1]) else {
        panic!("Certificate expected");
    };
    assert_eq!(chain.cert_chain.len(), 1);
    assert_eq!(chain.cert_chain[0].data.len(), 868);
    assert_eq!(server_messages[2].len(), 4 + 329);
    let client_hellos = messages(&run.events[0]);
    let TlsMessageHandshake::ClientHello(hello) = parse(client_hellos[0]) else {
        panic!("ClientHello expected");
    };
    assert_eq!(hello.version.0, DTLS12);
    assert_eq!(hello.ciphers.len(), 80);
    // Certificate (5 pieces), ServerKeyExchange (3) and both ClientHellos (2 each).
    assert_eq!(run.counters.messages_reassembled, 4);
    assert_eq!(run.counters.fragments_dropped_over_cap, 0);
    assert_eq!(run.counters.records_malformed, 0);
}

#[test]
fn dtls13_hello_retry_and_unified_header_records() {
    let run = run_trace("dtls13-wolfssl.pcap");
    let client_hellos = messages(&run.events[0]);
    assert_eq!(client_hellos.len(), 2);
    let TlsMessageHandshake::ClientHello(hello) = parse(client_hellos[1]) else {
        panic!("ClientHello expected");
    };
    assert_eq!(hello.version.0, DTLS12);
    assert_eq!(hello.ciphers.len(), 27);
    let extensions = tls_parser::parse_tls_client_hello_extensions(hello.ext.unwrap_or(&[]))
        .expect("extensions parse")
        .1;
    assert!(extensions.iter().any(|e| matches!(
        e,
        tls_parser::TlsExtension::SupportedVersions(v) if v.iter().any(|v| v.0 == DTLS13)
    )));
    // The second ClientHello follows a HelloRetryRequest: legacy cookie empty.
    assert!(run.events[0].contains(&Owned::ClientHelloRepeated {
        message_seq: 1,
        cookie_len: 0
    }));
    let server_hellos = messages(&run.events[1]);
    assert_eq!(server_hellos.len(), 2);
    // The first is the HelloRetryRequest (RFC 8446 §4.1.3 random).
    assert_eq!(
        parse_server_hello(server_hellos[0], |h| h.random
            == crate::tls::HELLO_RETRY_RANDOM),
        Some(true)
    );
    // Zeek ssl.log: TLS_AES_128_GCM_SHA256.
    assert_eq!(
        parse_server_hello(server_hellos[1], |h| (h.version.0, h.cipher.0)),
        Some((DTLS12, 0x1301))
    );
    let encrypted = |events: &[Owned]| {
        events
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    Owned::Record {
                        content_type: 23,
                        version: UNIFIED_HEADER_VERSION,
                        encrypted: true,
                        ..
                    }
                )
            })
            .count()
    };
    assert_eq!(encrypted(&run.events[0]), 3);
    assert_eq!(encrypted(&run.events[1]), 8);
    assert_eq!(run.counters.records_unified_header, 11);
    assert_eq!(run.counters.records_malformed, 0);
}

#[test]
fn dtls13_connection_id_records_stop_the_datagram() {
    let run = run_trace("dtls13-cid-one-connection.pcap");
    assert_eq!(run.not_dtls, 0);
    // Frames 5-15 (8-18 of the Zeek trace) start with 0x3e/0x3f: unified
    // header with the C bit.
    assert_eq!(run.counters.records_connection_id_unparsed, 11);
    assert_eq!(run.counters.records_malformed, 0);
}

#[test]
fn client_hello_in_three_fragments_with_record_sequence_jumps() {
    let run = run_trace("dtls-sequence-number-jumps.pcap");
    let hellos = messages(&run.events[0]);
    assert_eq!(hellos.len(), 1);
    // DTLS body 81 bytes, minus the empty cookie's length byte.
    assert_eq!(hellos[0].len(), 4 + 80);
    let TlsMessageHandshake::ClientHello(hello) = parse(hellos[0]) else {
        panic!("ClientHello expected");
    };
    assert_eq!(
        hello.ciphers.iter().map(|c| c.0).collect::<Vec<_>>(),
        [0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f]
    );
    assert_eq!(run.counters.messages_reassembled, 1);
    let server_hellos = messages(&run.events[1]);
    assert_eq!(
        parse_server_hello(server_hellos[0], |h| h.cipher.0),
        Some(0x1301)
    );
}

#[test]
fn webrtc_stun_datagrams_are_not_dtls_and_the_client_certificate_is_reassembled() {
    // The STUN side speaks first, so here "ToServer" is the DTLS server.
    let run = run_trace("webrtc-stun.pcap");
    assert_eq!(run.not_dtls, 10);
    let dtls_server = messages(&run.events[0]);
    let dtls_client = messages(&run.events[1]);
    let types = |messages: &[&[u8]]| -> Vec<u8> {
        messages.iter().filter_map(|m| m.first().copied()).collect()
    };
    assert_eq!(types(&dtls_server), [2, 11, 12, 13, 14]);
    assert_eq!(types(&dtls_client), [1, 11, 16, 15]);
    // Zeek ssl.log: DTLSv10, TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA.
    assert_eq!(
        parse_server_hello(dtls_server[0], |h| (h.version.0, h.cipher.0)),
        Some((DTLS10, 0xc00a))
    );
    // Zeek logs a client chain (client_cert_chain_fps, CN=mantis.tokbox.com).
    let TlsMessageHandshake::Certificate(chain) = parse(dtls_client[1]) else {
        panic!("client Certificate expected");
    };
    assert_eq!(chain.cert_chain.len(), 1);
    assert_eq!(chain.cert_chain[0].data.len(), 585);
}

#[test]
fn openssl_dtls12_with_cookie_exchange_keeps_sni_and_reassembles_the_certificate() {
    let trace = datagrams_at(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/dtls12-sni-hvr.pcap"
    ));
    let run = run(&trace, DtlsLimits::default());
    let client = messages(&run.events[0]);
    assert_eq!(client.len(), 3, "two ClientHellos and ClientKeyExchange");
    for hello in &client[..2] {
        let TlsMessageHandshake::ClientHello(hello) = parse(hello) else {
            panic!("ClientHello expected");
        };
        assert_eq!(hello.version.0, DTLS12);
        assert_eq!(hello.ciphers.len(), 2, "0xc02b and the renegotiation SCSV");
        let extensions = tls_parser::parse_tls_client_hello_extensions(hello.ext.unwrap_or(&[]))
            .expect("extensions parse")
            .1;
        let sni = extensions.iter().find_map(|e| match e {
            tls_parser::TlsExtension::SNI(names) => names.first().map(|n| n.1),
            _ => None,
        });
        assert_eq!(sni, Some(&b"dtls.example"[..]));
    }
    assert_eq!(
        run.events[1].first(),
        Some(&Owned::HelloVerifyRequest {
            server_version: DTLS10,
            cookie_len: 20
        })
    );
    assert!(run.events[0].contains(&Owned::ClientHelloRepeated {
        message_seq: 1,
        cookie_len: 20
    }));
    let server = messages(&run.events[1]);
    assert_eq!(parse_server_hello(server[0], |h| h.cipher.0), Some(0xc02b));
    let TlsMessageHandshake::Certificate(chain) = parse(server[1]) else {
        panic!("Certificate expected");
    };
    assert_eq!(server[1].len(), 4 + 422);
    assert_eq!(chain.cert_chain.len(), 1);
    // Application data and close_notify both ways are epoch 1: opaque.
    let encrypted = |events: &[Owned], wanted: u8| {
        events
            .iter()
            .filter(|e| {
                matches!(e, Owned::Record { content_type, encrypted: true, .. } if *content_type == wanted)
            })
            .count()
    };
    assert_eq!(encrypted(&run.events[0], 23), 1);
    assert_eq!(encrypted(&run.events[0], 21), 1);
    assert_eq!(encrypted(&run.events[1], 21), 1);
    assert!(looks_like_client_hello(&trace[0].1));
}

#[test]
fn first_datagram_content_test() {
    let trace = datagrams("dtls1_2.pcap");
    assert!(looks_like_client_hello(&trace[0].1));
    // The second fragment of the same ClientHello starts at offset 203.
    assert!(!looks_like_client_hello(&trace[1].1));
    assert!(!looks_like_client_hello(&trace[2].1), "HelloVerifyRequest");
    assert!(!looks_like_client_hello(&[
        0x16, 0x03, 0x01, 0x00, 0x05, 0x01
    ]));
    assert!(!looks_like_client_hello(&[]));
}

#[test]
fn version_names_and_tls_equivalents() {
    assert_eq!(version_name(0xfeff), Some("DTLS 1.0"));
    assert_eq!(version_name(0xfefd), Some("DTLS 1.2"));
    assert_eq!(version_name(0xfefc), Some("DTLS 1.3"));
    assert_eq!(version_name(0x0303), None);
    assert_eq!(to_tls_version(0xfeff), Some(0x0302));
    assert_eq!(to_tls_version(0xfefd), Some(0x0303));
    assert_eq!(to_tls_version(0xfefc), Some(0x0304));
    assert_eq!(to_tls_version(0x0100), None);
}

/// A DTLS 1.2 record: type, version, epoch, 48-bit sequence 0, length, body.
fn record(content_type: u8, epoch: u16, body: &[u8]) -> Vec<u8> {
    let mut out = vec![content_type, 0xfe, 0xfd];
    out.extend_from_slice(&epoch.to_be_bytes());
    out.extend_from_slice(&[0; 6]);
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A DTLS handshake fragment: type, length, message_seq, offset, fragment length, bytes.
fn fragment(msg_type: u8, length: usize, seq: u16, offset: usize, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![msg_type];
    out.extend_from_slice(&(length as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&(offset as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(bytes);
    out
}

fn feed(
    stream: &mut DtlsStream,
    datagram: &[u8],
    counters: &mut DtlsCounters,
) -> (bool, Vec<Owned>) {
    let mut events = Vec::new();
    let dtls = stream.on_datagram(datagram, counters, &mut |e| events.push(e.into()));
    (dtls, events)
}

fn handshake(body: Vec<u8>) -> Owned {
    Owned::Record {
        content_type: CONTENT_HANDSHAKE,
        version: DTLS12,
        body,
        encrypted: false,
    }
}

#[test]
fn out_of_order_messages_are_delivered_in_message_seq_order() {
    let mut stream = DtlsStream::new(DtlsLimits::default());
    let mut counters = DtlsCounters::default();
    // A bodiless ServerHello stand-in: a hello sets where delivery starts.
    let (_, first) = feed(
        &mut stream,
        &record(22, 0, &fragment(2, 0, 0, 0, &[])),
        &mut counters,
    );
    assert_eq!(first, [handshake(vec![2, 0, 0, 0])]);
    let (_, held) = feed(
        &mut stream,
        &record(22, 0, &fragment(11, 2, 2, 0, b"cc")),
        &mut counters,
    );
    assert!(held.is_empty());
    assert_eq!(stream.buffered_bytes(), 2);
    let (_, both) = feed(
        &mut stream,
        &record(22, 0, &fragment(12, 1, 1, 0, b"b")),
        &mut counters,
    );
    assert_eq!(
        both,
        [
            handshake(vec![12, 0, 0, 1, b'b']),
            handshake(vec![11, 0, 0, 2, b'c', b'c'])
        ]
    );
    assert_eq!(stream.buffered_bytes(), 0);
    assert_eq!(counters.messages_delivered, 3);
    assert_eq!(counters.messages_reassembled, 1);
}

#[test]
fn messages_before_the_first_hello_wait_for_it() {
    // The capture missed the HelloVerifyRequest (seq 0), and the Certificate
    // (seq 2) overtook the ServerHello (seq 1).
    let mut stream = DtlsStream::new(DtlsLimits::default());
    let mut counters = DtlsCounters::default();
    let (_, early) = feed(
        &mut stream,
        &record(22, 0, &fragment(11, 1, 2, 0, b"c")),
        &mut counters,
    );
    assert!(early.is_empty());
    // A stale message from before the hello is dropped when the hello arrives.
    let (_, stale) = feed(
        &mut stream,
        &record(22, 0, &fragment(12, 1, 0, 0, b"z")),
        &mut counters,
    );
    assert!(stale.is_empty());
    assert_eq!(stream.buffered_bytes(), 2);
    let (_, both) = feed(
        &mut stream,
        &record(22, 0, &fragment(2, 1, 1, 0, b"s")),
        &mut counters,
    );
    assert_eq!(
        both,
        [
            handshake(vec![2, 0, 0, 1, b's']),
            handshake(vec![11, 0, 0, 1, b'c'])
        ]
    );
    assert_eq!(counters.fragments_duplicate, 1);
    assert_eq!(stream.buffered_bytes(), 0);
}

#[test]
fn retransmitted_message_is_delivered_once() {
    let mut stream = DtlsStream::new(DtlsLimits::default());
    let mut counters = DtlsCounters::default();
    let datagram = record(22, 0, &fragment(2, 3, 0, 0, b"abc"));
    let (_, first) = feed(&mut stream, &datagram, &mut counters);
    let (_, again) = feed(&mut stream, &datagram, &mut counters);
    assert_eq!(first, [handshake(vec![2, 0, 0, 3, b'a', b'b', b'c'])]);
    assert!(again.is_empty());
    assert_eq!(counters.fragments_duplicate, 1);
    assert_eq!(counters.messages_delivered, 1);
}

#[test]
fn overlapping_fragments_keep_the_first_copy() {
    let mut stream = DtlsStream::new(DtlsLimits::default());
    let mut counters = DtlsCounters::default();
    let mut body = fragment(2, 8, 0, 0, b"AAAAA");
    body.extend_from_slice(&fragment(2, 8, 0, 3, b"BBBBB"));
    let (_, events) = feed(&mut stream, &record(22, 0, &body), &mut counters);
    assert_eq!(
        events,
        [handshake([&[2, 0, 0, 8][..], b"AAAAABBB"].concat())]
    );
    assert_eq!(counters.fragments_received, 2);
}

#[test]
fn fragment_disagreeing_with_its_message_is_counted() {
    let mut stream = DtlsStream::new(DtlsLimits::default());
    let mut counters = DtlsCounters::default();
    let mut body = fragment(11, 8, 0, 0, b"AAAA");
    body.extend_from_slice(&fragment(11, 9, 0, 4, b"BBBB")); // other length
    body.extend_from_slice(&fragment(12, 8, 0, 4, b"BBBB")); // other type
    body.extend_from_slice(&fragment(11, 8, 0, 6, b"BBBB")); // overruns
    let (_, events) = feed(&mut stream, &record(22, 0, &body), &mut counters);
    assert!(events.is_empty());
    assert_eq!(counters.fragments_malformed, 3);
    assert_eq!(stream.buffered_bytes(), 8);
}

#[test]
fn pending_message_cap_drops_and_counts() {
    let limits = DtlsLimits {
        max_pending_messages: 2,
        ..DtlsLimits::default()
    };
    let mut stream = DtlsStream::new(limits);
    let mut counters = DtlsCounters::default();
    let mut body = fragment(2, 4, 0, 0, b"ab"); // held: incomplete
    body.extend_from_slice(&fragment(11, 1, 1, 0, b"x")); // held: out of order
    body.extend_from_slice(&fragment(12, 1, 2, 0, b"y")); // over the cap
    let (_, events) = feed(&mut stream, &record(22, 0, &body), &mut counters);
    assert!(events.is_empty());
    assert_eq!(counters.fragments_dropped_over_cap, 1);
    assert!(stream.is_truncated());
    // Completing seq 0 releases seq 1; seq 2 was dropped and is not invented.
    let (_, events) = feed(
        &mut stream,
        &record(22, 0, &fragment(2, 4, 0, 2, b"cd")),
        &mut counters,
    );
    assert_eq!(
        events,
        [
            handshake(vec![2, 0, 0, 4, b'a', b'b', b'c', b'd']),
            handshake(vec![11, 0, 0, 1, b'x'])
        ]
    );
}

#[test]
fn buffered_bytes_cap_drops_and_counts() {
    let limits = DtlsLimits {
        max_buffered_bytes: 100,
        ..DtlsLimits::default()
    };
    let mut stream = DtlsStream::new(limits);
    let mut counters = DtlsCounters::default();
    let mut body = fragment(11, 80, 0, 0, b"a");
    body.extend_from_slice(&fragment(12, 40, 1, 0, b"b"));
    feed(&mut stream, &record(22, 0, &body), &mut counters);
    assert_eq!(stream.buffered_bytes(), 80);
    assert_eq!(counters.fragments_dropped_over_cap, 1);
    assert!(stream.is_truncated());
}

#[test]
fn message_longer_than_cap_is_dropped_and_counted() {
    let limits = DtlsLimits {
        max_message_length: 100,
        ..DtlsLimits::default()
    };
    let mut stream = DtlsStream::new(limits);
    let mut counters = DtlsCounters::default();
    let (_, events) = feed(
        &mut stream,
        &record(22, 0, &fragment(11, 101, 0, 0, b"a")),
        &mut counters,
    );
    assert!(events.is_empty());
    assert_eq!(counters.messages_too_long, 1);
    assert_eq!(stream.buffered_bytes(), 0);
    assert!(stream.is_truncated());
}

#[test]
fn too_many_holes_in_one_message_drops_and_counts() {
    let limits = DtlsLimits {
        max_fragments_per_message: 2,
        ..DtlsLimits::default()
    };
    let mut stream = DtlsStream::new(limits);
    let mut counters = DtlsCounters::default();
    let mut body = fragment(11, 9, 0, 0, b"a");
    body.extend_from_slice(&fragment(11, 9, 0, 3, b"b"));
    body.extend_from_slice(&fragment(11, 9, 0, 6, b"c")); // a third disjoint range
    body.extend_from_slice(&fragment(11, 9, 0, 1, b"a")); // touches the first: merges
    feed(&mut stream, &record(22, 0, &body), &mut counters);
    assert_eq!(counters.fragments_dropped_over_cap, 1);
    assert_eq!(counters.fragments_received, 4);
}

#[test]
fn dtls_client_hello_cookie_is_removed() {
    // client_version, random, session_id<1>, cookie<3>, cipher_suites<2>, compression<1>.
    let mut dtls = vec![0xfe, 0xfd];
    dtls.extend_from_slice(&[7; 32]);
    dtls.extend_from_slice(&[1, 0xaa]);
    dtls.extend_from_slice(&[3, 0xc0, 0x0c, 0x1e]);
    dtls.extend_from_slice(&[0, 2, 0xc0, 0x2b, 1, 0]);
    let mut stream = DtlsStream::new(DtlsLimits::default());
    let mut counters = DtlsCounters::default();
    let (_, events) = feed(
        &mut stream,
        &record(22, 0, &fragment(1, dtls.len(), 0, 0, &dtls)),
        &mut counters,
    );
    let mut tls = vec![1, 0, 0, 42, 0xfe, 0xfd];
    tls.extend_from_slice(&[7; 32]);
    tls.extend_from_slice(&[1, 0xaa, 0, 2, 0xc0, 0x2b, 1, 0]);
    assert_eq!(events, [handshake(tls.clone())]);
    let TlsMessageHandshake::ClientHello(hello) = parse(&tls) else {
        panic!("ClientHello expected");
    };
    assert_eq!(hello.session_id, Some(&[0xaa][..]));
    assert_eq!(
        hello.ciphers.iter().map(|c| c.0).collect::<Vec<_>>(),
        [0xc02b]
    );
}

#[test]
fn ack_records_are_skipped_and_counted() {
    let mut stream = DtlsStream::new(DtlsLimits::default());
    let mut counters = DtlsCounters::default();
    let mut datagram = record(26, 0, &[0, 0]);
    datagram.extend_from_slice(&record(21, 0, &[2, 40]));
    let (dtls, events) = feed(&mut stream, &datagram, &mut counters);
    assert!(dtls);
    assert_eq!(counters.records_ack_skipped, 1);
    assert_eq!(
        events,
        [Owned::Record {
            content_type: 21,
            version: DTLS12,
            body: vec![2, 40],
            encrypted: false
        }]
    );
}

#[test]
fn datagrams_that_are_not_dtls_are_rejected() {
    let mut stream = DtlsStream::new(DtlsLimits::default());
    let mut counters = DtlsCounters::default();
    // A TLS record, a STUN binding request, and DTLS's type with a TLS version.
    for datagram in [
        &[0x16, 0x03, 0x01, 0x00, 0x01, 0x01][..],
        &[0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42],
        &record(22, 0, &[])
            .iter()
            .enumerate()
            .map(|(i, &b)| if i == 1 { 0x03 } else { b })
            .collect::<Vec<_>>(),
    ] {
        assert!(!feed(&mut stream, datagram, &mut counters).0);
    }
    assert_eq!(counters.records_parsed, 0);
}

#[test]
fn dtls12_connection_id_record_is_counted_not_framed() {
    let mut stream = DtlsStream::new(DtlsLimits::default());
    let mut counters = DtlsCounters::default();
    // type 25, version, epoch 1, sequence, then a 4-byte CID "cid!" where a
    // plain record has its length: read as a length it would overrun.
    let mut datagram = vec![25, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 7];
    datagram.extend_from_slice(b"cid!");
    datagram.extend_from_slice(&[0, 3, 1, 2, 3]);
    let (dtls, events) = feed(&mut stream, &datagram, &mut counters);
    assert!(dtls);
    assert_eq!(
        events,
        [Owned::Record {
            content_type: 23,
            version: DTLS12,
            body: vec![],
            encrypted: true
        }]
    );
    assert_eq!(counters.records_connection_id_unparsed, 1);
    assert_eq!(counters.records_malformed, 0);
}

#[test]
fn truncated_record_after_a_good_one_is_counted() {
    let mut stream = DtlsStream::new(DtlsLimits::default());
    let mut counters = DtlsCounters::default();
    let mut datagram = record(20, 0, &[1]);
    datagram.extend_from_slice(&record(23, 1, &[9; 10])[..20]);
    let (dtls, events) = feed(&mut stream, &datagram, &mut counters);
    assert!(dtls);
    assert_eq!(events.len(), 1);
    assert_eq!(counters.records_malformed, 1);
    assert_eq!(counters.records_parsed, 1);
}

#[test]
fn unified_header_records_are_framed_by_their_flags() {
    let mut stream = DtlsStream::new(DtlsLimits::default());
    let mut counters = DtlsCounters::default();
    // 0b00100100: S=0 (8-bit seq), L=1; then 0b00100000: no length, fills the rest.
    let datagram = [
        0x24, 0x05, 0x00, 0x02, 0xaa, 0xbb, 0x20, 0x06, 0xcc, 0xdd, 0xee,
    ];
    let (dtls, events) = feed(&mut stream, &datagram, &mut counters);
    assert!(dtls);
    let bodies: Vec<Vec<u8>> = events
        .into_iter()
        .map(|e| match e {
            Owned::Record {
                content_type: 23,
                version: UNIFIED_HEADER_VERSION,
                body,
                encrypted: true,
            } => body,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(bodies, [vec![0xaa, 0xbb], vec![0xcc, 0xdd, 0xee]]);
    assert_eq!(counters.records_unified_header, 2);
    // A length beyond the datagram is malformed, not a read past the end.
    let (_, events) = feed(&mut stream, &[0x24, 0x05, 0x00, 0x09, 0xaa], &mut counters);
    assert!(events.is_empty());
    assert_eq!(counters.records_malformed, 1);
}

mod hostile {
    use super::*;
    use proptest::prelude::*;

    fn small_limits() -> DtlsLimits {
        DtlsLimits {
            max_message_length: 512,
            max_pending_messages: 4,
            max_fragments_per_message: 4,
            max_buffered_bytes: 1024,
        }
    }

    fn check(stream: &DtlsStream, limits: &DtlsLimits) {
        assert!(stream.buffered_bytes() <= limits.max_buffered_bytes);
        assert!(stream.pending.len() <= limits.max_pending_messages);
        assert!(stream
            .pending
            .iter()
            .all(|p| p.covered.len() <= limits.max_fragments_per_message));
    }

    proptest! {
        #[test]
        fn random_datagrams_never_panic_and_stay_under_caps(
            datagrams in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..20)
        ) {
            let limits = small_limits();
            let mut stream = DtlsStream::new(limits);
            let mut counters = DtlsCounters::default();
            for datagram in &datagrams {
                stream.on_datagram(datagram, &mut counters, &mut |_| {});
                check(&stream, &limits);
            }
        }

        #[test]
        fn random_fragments_never_panic_and_stay_under_caps(
            fragments in proptest::collection::vec(
                (0u8..4, 0usize..700, 0u16..6, 0usize..700, proptest::collection::vec(any::<u8>(), 0..300)),
                0..40,
            )
        ) {
            let limits = small_limits();
            let mut stream = DtlsStream::new(limits);
            let mut counters = DtlsCounters::default();
            for (msg_type, length, seq, offset, bytes) in &fragments {
                let datagram = record(22, 0, &fragment(*msg_type, *length, *seq, *offset, bytes));
                stream.on_datagram(&datagram, &mut counters, &mut |event| {
                    if let DtlsEvent::Record { body, .. } = event {
                        assert!(body.len() <= limits.max_message_length + 4);
                    }
                });
                check(&stream, &limits);
            }
        }

        #[test]
        fn mutated_real_datagrams_never_panic(
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
            truncate in any::<usize>(),
        ) {
            let limits = small_limits();
            let mut connection = DtlsConnection::new(limits);
            let mut counters = DtlsCounters::default();
            for (direction, datagram) in datagrams("dtls1_2.pcap") {
                let mut datagram = datagram.clone();
                for &(at, byte) in &flips {
                    let len = datagram.len();
                    if len > 0 {
                        datagram[at % len] ^= byte;
                    }
                }
                datagram.truncate(truncate % (datagram.len() + 1).max(1) + datagram.len() / 2);
                connection.on_datagram(direction, &datagram, &mut counters, &mut |_| {});
                for stream in &connection.streams {
                    check(stream, &limits);
                }
            }
        }

        /// Any split of a message into fragments, fed in any order with
        /// repeats, yields that message exactly once.
        #[test]
        fn any_fragmentation_reassembles_to_the_message(
            message in proptest::collection::vec(any::<u8>(), 1..400),
            cuts in proptest::collection::vec(any::<usize>(), 0..6),
            order in any::<u64>(),
        ) {
            let mut points: Vec<usize> = cuts.iter().map(|c| c % message.len()).collect();
            points.push(0);
            points.push(message.len());
            points.sort_unstable();
            points.dedup();
            let mut pieces: Vec<Vec<u8>> = points
                .windows(2)
                .map(|w| fragment(2, message.len(), 0, w[0], &message[w[0]..w[1]]))
                .collect();
            // Repeat the first piece and shuffle deterministically.
            pieces.push(pieces[0].clone());
            let n = pieces.len();
            for i in 0..n {
                pieces.swap(i, ((order >> (i % 64)) as usize + i) % n);
            }
            let mut stream = DtlsStream::new(DtlsLimits::default());
            let mut counters = DtlsCounters::default();
            let mut delivered = Vec::new();
            for piece in &pieces {
                let (_, events) = feed(&mut stream, &record(22, 0, piece), &mut counters);
                delivered.extend(events);
            }
            let mut expected = vec![2, 0, (message.len() >> 8) as u8, message.len() as u8];
            expected.extend_from_slice(&message);
            prop_assert_eq!(delivered, vec![handshake(expected)]);
            prop_assert_eq!(stream.buffered_bytes(), 0);
        }
    }
}
