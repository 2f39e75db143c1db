//! QUIC Initial decryption on real traces from the corpus's quic/ folder
//! (Zeek's test traces; `TLSTAP_CORPUS`, see docs/testing.md). Expected server names
//! come from Zeek's baselines in zeek-baselines-quic/<test>/ssl.log
//! (server_name column). Without the corpus these tests skip.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

mod support;

use tlstap::capture::FileSource;
use tlstap::decode::{decode, DecodeConfig, Transport};
use tlstap::tls::quic::{
    looks_like_initial, QuicConnection, QuicCounters, QuicLimits, QuicVersion,
};
use tlstap::tls::Direction;

/// A trace of the corpus's `quic/` folder.
fn trace(corpus: &Path, name: &str) -> PathBuf {
    corpus.join("quic").join(name)
}

/// One UDP flow fed to a QuicConnection, client = sender of its first Initial.
struct Flow {
    client: (IpAddr, u16),
    server: (IpAddr, u16),
    connection: QuicConnection,
    /// Reassembled CRYPTO bytes per direction (ToServer, ToClient).
    crypto: [Vec<u8>; 2],
    /// Per datagram: direction, whether a Retry had been seen before it,
    /// and how many of its packets decrypted.
    events: Vec<(Direction, bool, u64)>,
}

/// Reads a trace and returns its QUIC flows in order of first Initial.
fn read_quic_flows(corpus: &Path, name: &str) -> (Vec<Flow>, QuicCounters) {
    let mut source = FileSource::open(&trace(corpus, name), None).expect("trace opens");
    let link = source.link_type();
    let config = DecodeConfig::default();
    let mut flows: Vec<Flow> = Vec::new();
    let mut counters = QuicCounters::default();
    while let Some(packet) = source.next_packet().expect("trace reads") {
        let Ok(decoded) = decode(link, packet.data, &config) else {
            continue;
        };
        if decoded.transport != Transport::Udp {
            continue;
        }
        let from = (decoded.source, decoded.source_port);
        let to = (decoded.destination, decoded.destination_port);
        let index = flows.iter().position(|flow| {
            (flow.client, flow.server) == (from, to) || (flow.client, flow.server) == (to, from)
        });
        let index = match index {
            Some(index) => index,
            None if looks_like_initial(decoded.payload) => {
                flows.push(Flow {
                    client: from,
                    server: to,
                    connection: QuicConnection::new(QuicLimits::default()),
                    crypto: [Vec::new(), Vec::new()],
                    events: Vec::new(),
                });
                flows.len() - 1
            }
            None => continue,
        };
        let flow = &mut flows[index];
        let direction = if from == flow.client {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let retry_before = flow.connection.retry_seen();
        let decrypted_before = counters.packets_decrypted;
        flow.connection
            .on_datagram(direction, decoded.payload, &mut counters);
        flow.events.push((
            direction,
            retry_before,
            counters.packets_decrypted - decrypted_before,
        ));
        let bytes = flow.connection.take_crypto(direction);
        flow.crypto[direction.index()].extend_from_slice(&bytes);
    }
    (flows, counters)
}

/// Handshake type and length from the 4-byte handshake header (RFC 8446 §4).
fn handshake_header(bytes: &[u8]) -> (u8, usize) {
    assert!(
        bytes.len() >= 4,
        "no handshake header in {} bytes",
        bytes.len()
    );
    (
        bytes[0],
        usize::from(bytes[1]) << 16 | usize::from(bytes[2]) << 8 | usize::from(bytes[3]),
    )
}

/// SNI of the ClientHello at the start of `bytes`, parsed with tls-parser.
fn client_hello_sni(bytes: &[u8]) -> Option<String> {
    use tls_parser::{TlsExtension, TlsMessage, TlsMessageHandshake};
    let (_, message) = tls_parser::parse_tls_message_handshake(bytes).ok()?;
    let TlsMessage::Handshake(TlsMessageHandshake::ClientHello(hello)) = message else {
        return None;
    };
    let (_, extensions) = tls_parser::parse_tls_client_hello_extensions(hello.ext?).ok()?;
    extensions
        .into_iter()
        .find_map(|extension| match extension {
            TlsExtension::SNI(names) => names
                .first()
                .map(|(_, name)| String::from_utf8_lossy(name).into_owned()),
            _ => None,
        })
}

/// Asserts the client's CRYPTO bytes hold one whole ClientHello naming `sni`.
fn assert_whole_client_hello(flow: &Flow, sni: &str) -> usize {
    let bytes = &flow.crypto[Direction::ToServer.index()];
    let (message_type, length) = handshake_header(bytes);
    assert_eq!(message_type, 1, "ClientHello");
    assert_eq!(
        bytes.len(),
        4 + length,
        "reassembled exactly one ClientHello"
    );
    assert_eq!(client_hello_sni(bytes).as_deref(), Some(sni));
    length
}

/// Asserts the server's CRYPTO bytes start with a whole ServerHello.
fn assert_server_hello(flow: &Flow) {
    let bytes = &flow.crypto[Direction::ToClient.index()];
    let (message_type, length) = handshake_header(bytes);
    assert_eq!(message_type, 2, "ServerHello");
    assert!(bytes.len() >= 4 + length);
    assert!(matches!(
        tls_parser::parse_tls_message_handshake(&bytes[..4 + length]),
        Ok((
            _,
            tls_parser::TlsMessage::Handshake(tls_parser::TlsMessageHandshake::ServerHello(_))
        ))
    ));
}

#[test]
fn chromium_v1_initial_decrypts_and_names_api_cirrus_ci_com() {
    let Some(corpus) =
        support::corpus_or_skip("chromium_v1_initial_decrypts_and_names_api_cirrus_ci_com")
    else {
        return;
    };
    let (flows, counters) = read_quic_flows(&corpus, "chromium-115.0.5790.110-api-cirrus-com.pcap");
    assert_eq!(flows.len(), 1);
    let flow = &flows[0];
    assert_eq!(flow.connection.version(), Some(QuicVersion::V1));
    // zeek-baselines-quic/scripts.base.protocols.quic.chromium/ssl.log: server_name api.cirrus-ci.com
    assert_whole_client_hello(flow, "api.cirrus-ci.com");
    assert_server_hello(flow);
    assert!(flow.connection.handshake_or_short_seen(Direction::ToClient));
    assert!(flow.connection.handshake_or_short_seen(Direction::ToServer));
    assert_eq!(counters.crypto_bytes_dropped_over_cap, 0);
}

#[test]
fn quic_v2_http3_initial_decrypts_both_ways() {
    let Some(corpus) = support::corpus_or_skip("quic_v2_http3_initial_decrypts_both_ways") else {
        return;
    };
    let (flows, counters) = read_quic_flows(&corpus, "quicv2-http3-443.pcap");
    assert_eq!(flows.len(), 1);
    let flow = &flows[0];
    // zeek-baselines-quic/scripts.base.protocols.quic.quicv2-http3-443/quic.log: version quicv2,
    // ssl.log: server_name "-" (no SNI: the client connected to 127.0.0.1).
    let client_version = flow.connection.version().expect("client Initial decrypted");
    let server_version = flow
        .connection
        .server_version()
        .expect("server Initial decrypted");
    assert_eq!(client_version, QuicVersion::V2);
    assert_eq!(server_version, QuicVersion::V2);
    let bytes = &flow.crypto[Direction::ToServer.index()];
    let (message_type, length) = handshake_header(bytes);
    assert_eq!(message_type, 1);
    assert_eq!(bytes.len(), 4 + length);
    assert_eq!(client_hello_sni(bytes), None);
    assert_server_hello(flow);
    assert!(counters.packets_decrypted >= 2);
}

#[test]
fn chromium_clienthello_scattered_over_frames_is_reassembled_for_www_google_de() {
    let Some(corpus) = support::corpus_or_skip(
        "chromium_clienthello_scattered_over_frames_is_reassembled_for_www_google_de",
    ) else {
        return;
    };
    let (flows, counters) =
        read_quic_flows(&corpus, "chromium-115.0.5790.110-google-de-fragmented.pcap");
    assert!(!flows.is_empty());
    let flow = &flows[0];
    // zeek-baselines-quic/scripts.base.protocols.quic.fragmented-crypto/ssl.log.cut: server_name www.google.de
    // Chromium's ClientHello (296 bytes) fits one Initial, but its CRYPTO
    // frames are shuffled within the packet: 6 of them arrive ahead of a gap.
    assert_eq!(assert_whole_client_hello(flow, "www.google.de"), 296);
    assert_eq!(counters.crypto_frames_out_of_order, 6);
    assert_eq!(counters.crypto_frames_dropped_over_cap, 0);
    assert_server_hello(flow);
}

#[test]
fn multiple_initials_with_fragmented_crypto_name_googleads() {
    let Some(corpus) =
        support::corpus_or_skip("multiple_initials_with_fragmented_crypto_name_googleads")
    else {
        return;
    };
    let (flows, counters) =
        read_quic_flows(&corpus, "quic-multiple-initial-fragmented-crypto.pcap");
    assert!(!flows.is_empty());
    // zeek-baselines-quic/scripts.base.protocols.quic.multiple-initial-fragmented-crypto/ssl.log:
    // server_name googleads.g.doubleclick.net, history "C" (no ServerHello).
    // The 2242-byte ClientHello spans several client Initials.
    assert_eq!(
        assert_whole_client_hello(&flows[0], "googleads.g.doubleclick.net"),
        2242
    );
    let client_packets: u64 = flows[0]
        .events
        .iter()
        .filter(|(direction, _, _)| *direction == Direction::ToServer)
        .map(|(_, _, decrypted)| decrypted)
        .sum();
    assert!(client_packets >= 2, "{client_packets}");
    assert_eq!(counters.crypto_frames_out_of_order, 4);
    assert_eq!(counters.packets_decrypt_failed, 0);
}

#[test]
fn retry_then_new_dcid_initial_and_server_hello_decrypt() {
    let Some(corpus) =
        support::corpus_or_skip("retry_then_new_dcid_initial_and_server_hello_decrypt")
    else {
        return;
    };
    let (flows, counters) = read_quic_flows(&corpus, "interop-quic-go_quic-go-retry.pcap");
    assert_eq!(flows.len(), 1);
    let flow = &flows[0];
    assert!(flow.connection.retry_seen());
    assert_eq!(counters.packets_retry, 1);
    // zeek-baselines-quic/scripts.base.protocols.quic.interop.quic-go_quic-go.retry/ssl.log:
    // server_name server4:443 (quic-go's interop client sends host:port as SNI).
    // The ClientHello comes twice (before and after the Retry) in the same
    // CRYPTO stream offsets, so the stream holds it once.
    assert_whole_client_hello(flow, "server4:443");
    assert_server_hello(flow);
    assert_eq!(counters.packets_decrypt_failed, 0);
    // Keys follow the DCID of the client's Initial after the Retry, both ways.
    let after_retry = |wanted: Direction| {
        flow.events
            .iter()
            .any(|(direction, retry_before, decrypted)| {
                *direction == wanted && *retry_before && *decrypted > 0
            })
    };
    assert!(
        after_retry(Direction::ToServer),
        "client Initial after Retry decrypts"
    );
    assert!(
        after_retry(Direction::ToClient),
        "server Initial after Retry decrypts"
    );
}

#[test]
fn post_quantum_server_hello_spanning_initials_is_reassembled() {
    let Some(corpus) =
        support::corpus_or_skip("post_quantum_server_hello_spanning_initials_is_reassembled")
    else {
        return;
    };
    let (flows, counters) = read_quic_flows(&corpus, "quic-decrypt-fail-google-de-51833.pcap");
    assert_eq!(flows.len(), 1);
    let flow = &flows[0];
    // zeek-baselines-quic/scripts.base.protocols.quic.decrypt-fail-google-de-51833/ssl.log.cut:
    // server_name www.google.de, curve X25519MLKEM768.
    assert_eq!(assert_whole_client_hello(flow, "www.google.de"), 2199);
    assert_server_hello(flow);
    // An ML-KEM-768 key share makes the ServerHello 1180 bytes: two Initials.
    assert_eq!(flow.crypto[Direction::ToClient.index()].len(), 4 + 1180);
    assert_eq!(counters.packets_decrypt_failed, 0);
}

#[test]
fn zeek_crash_traces_are_survived() {
    let Some(corpus) = support::corpus_or_skip("zeek_crash_traces_are_survived") else {
        return;
    };
    // Zeek fuzzer finds: every UDP payload goes to one connection, both ways.
    // (trace, datagrams, not QUIC, decrypt failures, unsupported versions)
    let cases = [
        ("383379789-decrypt-crash.pcap", 7, 6, 1, 0),
        // zeek-baselines-quic/...vector-max-size-crash/quic.log: version unknown-10010000
        ("vector-max-size-crash.pcap", 1, 0, 0, 1),
    ];
    for (name, expected_datagrams, not_quic, failed, unsupported) in cases {
        let mut source = FileSource::open(&trace(&corpus, name), None).expect("trace opens");
        let link = source.link_type();
        let mut connection = QuicConnection::new(QuicLimits::default());
        let mut counters = QuicCounters::default();
        let mut datagrams = 0;
        while let Some(packet) = source.next_packet().expect("trace reads") {
            // The fuzzer's IP and UDP length fields are wrong (an IPv4 total
            // length of 40 on 22 KB frames), so the strict decoder refuses
            // them; take what follows Ethernet + 20-byte IPv4 + UDP instead.
            let payload = match decode(link, packet.data, &DecodeConfig::default()) {
                Ok(decoded) if decoded.transport == Transport::Udp => decoded.payload,
                _ if packet.data.get(12..14) == Some(&[0x08, 0x00]) => {
                    packet.data.get(42..).unwrap_or_default()
                }
                _ => continue,
            };
            let direction = if datagrams % 2 == 0 {
                Direction::ToServer
            } else {
                Direction::ToClient
            };
            connection.on_datagram(direction, payload, &mut counters);
            datagrams += 1;
        }
        assert_eq!(datagrams, expected_datagrams, "{name}");
        assert_eq!(counters.datagrams_not_quic, not_quic, "{name}");
        assert_eq!(counters.packets_decrypt_failed, failed, "{name}");
        assert_eq!(counters.packets_version_unsupported, unsupported, "{name}");
        assert_eq!(counters.packets_decrypted, 0, "{name}");
    }
}
