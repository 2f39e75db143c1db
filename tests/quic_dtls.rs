//! TLS over UDP: QUIC Initials and DTLS, against Zeek's baselines.

mod support;

use support::*;

/// One session Zeek logged: (client ip, client port, server ip, server port,
/// QUIC version as tlstap names it, SNI or "", cipher or "", curve or "").
type Expected = (
    &'static str,
    u16,
    &'static str,
    u16,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

/// The QUIC traces and what Zeek's quic.log/ssl.log baselines
/// (the corpus's zeek-baselines-quic/) say about each session.
const QUIC: &[(&str, &[&str], &[Expected])] = &[
    (
        "quic-39264-rand.pcap",
        &[],
        &[(
            "765b:b77b:dad1:7e73:56f9:5a0f:52a3:f4f",
            39264,
            "725f:1f71:525f:a3b:525f:3673:525f:3673",
            443,
            "1",
            "tr6.snapchat.com",
            "TLS_AES_128_GCM_SHA256",
            "x25519",
        )],
    ),
    (
        "chromium-115.0.5790.110-api-cirrus-com.pcap",
        &[],
        &[(
            "82.239.54.117",
            53727,
            "110.213.53.115",
            443,
            "1",
            "api.cirrus-ci.com",
            "TLS_AES_128_GCM_SHA256",
            "x25519",
        )],
    ),
    (
        "curl-8.1.2-dev-http3-www-google-de.pcap",
        &[],
        &[(
            "172.17.0.2",
            34347,
            "64.233.166.94",
            443,
            "1",
            "www.google.de",
            "TLS_AES_128_GCM_SHA256",
            "x25519",
        )],
    ),
    (
        "chromium-dpd-custom-port-4433.pcap",
        &[],
        &[(
            "82.239.54.117",
            53727,
            "110.213.53.115",
            4433,
            "1",
            "api.cirrus-ci.com",
            "",
            "",
        )],
    ),
    (
        "quicv2-echo-dpd-custom-port-4433.pcap",
        &[],
        &[(
            "127.0.0.1",
            49320,
            "127.0.0.1",
            4433,
            "2",
            "localhost",
            "",
            "",
        )],
    ),
    (
        "firefox-102.13.0esr-blog-cloudflare-com.pcap",
        &[],
        &[(
            "82.239.54.117",
            44174,
            "250.58.23.113",
            443,
            "1",
            "blog.cloudflare.com",
            "TLS_AES_128_GCM_SHA256",
            "x25519",
        )],
    ),
    (
        "chromium-115.0.5790.110-google-de-fragmented.pcap",
        &[],
        &[(
            "669b:cb7a:de99:6a13:4a9b:46ef:3bed:cb6c",
            57538,
            "6699:ded3:da8c:be73:5a99:ca73:5a99:cadb",
            443,
            "1",
            "www.google.de",
            "TLS_AES_128_GCM_SHA256",
            "x25519",
        )],
    ),
    (
        "interop-quic-go_quic-go-handshake.pcap",
        &[],
        &[(
            "193.167.0.100",
            40084,
            "193.167.100.100",
            443,
            "1",
            "server4:443",
            "TLS_AES_128_GCM_SHA256",
            "x25519",
        )],
    ),
    (
        "interop-quic-go_quic-go-retry.pcap",
        &[],
        &[(
            "193.167.0.100",
            42834,
            "193.167.100.100",
            443,
            "1",
            "server4:443",
            "TLS_AES_128_GCM_SHA256",
            "x25519",
        )],
    ),
    (
        "interop-quic-go_quic-go-zerortt.pcap",
        &[],
        &[
            (
                "193.167.0.100",
                49394,
                "193.167.100.100",
                443,
                "1",
                "server4:443",
                "TLS_AES_128_GCM_SHA256",
                "x25519",
            ),
            (
                "193.167.0.100",
                60492,
                "193.167.100.100",
                443,
                "1",
                "server4:443",
                "TLS_AES_128_GCM_SHA256",
                "x25519",
            ),
        ],
    ),
    (
        "merlinc2_Zeek_example.pcapng",
        &[],
        &[(
            "10.0.0.4",
            53241,
            "24.199.110.233",
            443,
            "1",
            "",
            "TLS_AES_128_GCM_SHA256",
            "x25519",
        )],
    ),
    (
        "quicdoq.pcap",
        &[],
        &[(
            "127.0.0.1",
            46907,
            "127.0.0.1",
            853,
            "1",
            "",
            "TLS_AES_128_GCM_SHA256",
            "secp256r1",
        )],
    ),
    (
        "quicv2-echo-443.pcap",
        &[],
        &[(
            "127.0.0.1",
            49320,
            "127.0.0.1",
            443,
            "2",
            "localhost",
            "TLS_AES_128_GCM_SHA256",
            "x25519",
        )],
    ),
    (
        "quicv2-http3-443.pcap",
        &[],
        &[(
            "127.0.0.1",
            50841,
            "127.0.0.1",
            443,
            "2",
            "",
            "TLS_AES_128_GCM_SHA256",
            "x25519",
        )],
    ),
    (
        "quic_win11_firefox_google.pcap",
        &[],
        &[(
            "1.2.3.4",
            49369,
            "4.3.2.1",
            443,
            "1",
            "www.google.com",
            "TLS_AES_128_GCM_SHA256",
            "x25519",
        )],
    ),
];

fn tls_records(records: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    records
        .iter()
        .filter(|r| r["event"]["dataset"] == "tlstap.tls")
        .collect()
}

fn text(record: &serde_json::Value, path: &str) -> String {
    let value = field(record, path);
    value.as_str().map_or_else(String::new, str::to_string)
}

#[test]
fn every_quic_session_in_zeeks_baselines_is_a_record_with_zeeks_facts() {
    let Some(corpus) =
        corpus_or_skip("every_quic_session_in_zeeks_baselines_is_a_record_with_zeeks_facts")
    else {
        return;
    };
    let mut compared = 0;
    for (trace, extra, expected) in QUIC {
        let path = corpus.join("quic").join(trace);
        let mut args = vec!["read", "-q", path.to_str().expect("p")];
        args.extend_from_slice(extra);
        let (code, records, stderr) = run_tlstap(&args);
        assert_eq!(code, 0, "{trace}: {stderr}");
        let sessions = tls_records(&records);
        assert_eq!(sessions.len(), expected.len(), "{trace}: {sessions:#?}");
        for (client, client_port, server, server_port, version, sni, cipher, curve) in *expected {
            let r = sessions
                .iter()
                .find(|r| field(r, "source.port") == *client_port)
                .unwrap_or_else(|| panic!("{trace}: no session from port {client_port}"));
            assert_eq!(text(r, "source.ip"), *client, "{trace}");
            assert_eq!(text(r, "destination.ip"), *server, "{trace}");
            assert_eq!(field(r, "destination.port"), *server_port, "{trace}");
            assert_eq!(text(r, "network.transport"), "udp", "{trace}");
            assert_eq!(text(r, "network.protocol"), "quic", "{trace}");
            assert_eq!(text(r, "tlstap.quic.version"), *version, "{trace}");
            assert_eq!(text(r, "tls.client.server_name"), *sni, "{trace}");
            assert_eq!(text(r, "tls.version"), "1.3", "{trace}");
            assert_eq!(text(r, "tls.version_protocol"), "tls", "{trace}");
            if !cipher.is_empty() {
                assert_eq!(text(r, "tls.cipher"), *cipher, "{trace}");
                assert_eq!(text(r, "tls.curve"), *curve, "{trace}");
            }
            // JA4's first character names the carrier.
            assert!(text(r, "tlstap.client.ja4").starts_with("q13"), "{trace}");
            assert_eq!(field(r, "tlstap.midstream"), false, "{trace}");
            compared += 1;
        }
    }
    assert_eq!(compared, 16);
}

/// Zeek's `.cut` baselines: the ClientHello spread over several Initials (and
/// CRYPTO frames out of order) is whole; no server Initial, so no version.
#[test]
fn crypto_spread_over_initials_gives_the_whole_client_hello() {
    let Some(corpus) = corpus_or_skip("crypto_spread_over_initials_gives_the_whole_client_hello")
    else {
        return;
    };
    for trace in [
        "quic-multiple-initial-fragmented-crypto.pcap",
        "quic-multiple-initial-fragmented-crypto-only-initial.pcap",
    ] {
        let path = corpus.join("quic").join(trace);
        let (code, records, stderr) = run_tlstap(&["read", "-q", path.to_str().expect("p")]);
        assert_eq!(code, 0, "{stderr}");
        let sessions = tls_records(&records);
        assert_eq!(sessions.len(), 1, "{trace}");
        let r = sessions[0];
        assert_eq!(
            text(r, "tls.client.server_name"),
            "googleads.g.doubleclick.net"
        );
        assert_eq!(field(r, "tls.version"), &serde_json::Value::Null, "{trace}");
        assert_eq!(field(r, "tls.established"), false, "{trace}");
        assert_eq!(field(r, "tlstap.truncated"), false, "{trace}");
        assert_eq!(field(r, "tlstap.parse_error"), &serde_json::Value::Null);
        // Chrome's post-quantum hello: X25519MLKEM768 (0x11ec) key share.
        assert!(field(r, "tlstap.client.key_share_groups")
            .as_array()
            .expect("groups")
            .iter()
            .any(|g| g
                .as_str()
                .is_some_and(|g| g.to_ascii_lowercase().contains("mlkem"))));
    }
    // The post-quantum ServerHello spans two server Initials.
    let path = corpus.join("quic/quic-decrypt-fail-google-de-51833.pcap");
    let (_, records, _) = run_tlstap(&["read", "-q", path.to_str().expect("p")]);
    let sessions = tls_records(&records);
    assert_eq!(sessions.len(), 1);
    assert_eq!(text(sessions[0], "tls.client.server_name"), "www.google.de");
    assert_eq!(text(sessions[0], "tls.cipher"), "TLS_AES_128_GCM_SHA256");
    assert_eq!(text(sessions[0], "tls.curve"), "X25519MLKEM768");
}

/// Zeek's fuzzer crash traces: survived, nothing invented. Zeek logs the
/// second as QUIC version "unknown-10010000"; tlstap has no keys for an
/// unknown version and so starts no flow for it (documented in docs/quic-dtls.md).
#[test]
fn quic_crash_traces_are_survived_without_invented_sessions() {
    let Some(corpus) = corpus_or_skip("quic_crash_traces_are_survived_without_invented_sessions")
    else {
        return;
    };
    for trace in ["383379789-decrypt-crash.pcap", "vector-max-size-crash.pcap"] {
        let path = corpus.join("quic").join(trace);
        let (code, records, stderr) = run_tlstap(&["read", "-q", path.to_str().expect("p")]);
        assert_eq!(code, 0, "{trace}: {stderr}");
        assert!(tls_records(&records).is_empty(), "{trace}");
    }
}

/// Every frame of a pcap with its capture time relative to the first.
fn read_frames(path: &std::path::Path) -> (u32, Vec<Frame>) {
    let mut capture = pcap::Capture::from_file(path).expect("open");
    let mut frames = Vec::new();
    let mut start = None;
    while let Ok(packet) = capture.next_packet() {
        let micros = packet.header.ts.tv_sec as u64 * 1_000_000 + packet.header.ts.tv_usec as u64;
        let first = *start.get_or_insert(micros);
        frames.push(Frame {
            micros: micros - first,
            bytes: packet.data.to_vec(),
        });
    }
    ((start.unwrap_or(0) / 1_000_000) as u32, frames)
}

/// Cuts an Ethernet/IPv4 frame into IPv4 fragments of at most `size` payload
/// bytes (a multiple of 8), with identification `id`.
fn fragment_ipv4(frame: &[u8], size: usize, id: u16) -> Vec<Vec<u8>> {
    let (ethernet, rest) = frame.split_at(14);
    let (header, _) = etherparse::Ipv4Header::from_slice(rest).expect("ipv4");
    let payload = &rest[header.header_len()..usize::from(header.total_len)];
    payload
        .chunks(size)
        .enumerate()
        .map(|(i, chunk)| {
            let mut h = header.clone();
            h.identification = id;
            h.dont_fragment = false;
            h.more_fragments = (i + 1) * size < payload.len();
            h.fragment_offset =
                etherparse::IpFragOffset::try_new(((i * size) / 8) as u16).expect("offset");
            h.set_payload_len(chunk.len()).expect("length");
            h.header_checksum = h.calc_header_checksum();
            let mut out = ethernet.to_vec();
            h.write(&mut out).expect("write");
            out.extend_from_slice(chunk);
            out
        })
        .collect()
}

/// A QUIC Initial cut into IPv4 fragments (odd MTU), sent last fragment
/// first, is reassembled into the same session as the unfragmented trace.
#[test]
fn fragmented_quic_initial_is_reassembled_into_the_same_record() {
    let Some(corpus) =
        corpus_or_skip("fragmented_quic_initial_is_reassembled_into_the_same_record")
    else {
        return;
    };
    let original = corpus.join("quic/chromium-115.0.5790.110-api-cirrus-com.pcap");
    let (start, frames) = read_frames(&original);
    let mut cut = Vec::new();
    for (i, frame) in frames.into_iter().enumerate() {
        if i == 0 {
            // The client's first Initial (1250-byte UDP payload) in three pieces, reversed.
            let mut pieces = fragment_ipv4(&frame.bytes, 512, 0x4242);
            assert_eq!(pieces.len(), 3);
            pieces.reverse();
            for (n, bytes) in pieces.into_iter().enumerate() {
                cut.push(Frame {
                    micros: frame.micros + n as u64,
                    bytes,
                });
            }
        } else {
            cut.push(frame);
        }
    }
    let dir = temp_dir();
    let path = dir.path().join("fragmented.pcap");
    write_pcap(&path, &cut, start);
    let (_, whole, _) = run_tlstap_all(&["read", "-q", original.to_str().expect("p")]);
    let (code, pieces, stderr) = run_tlstap_all(&["read", "-q", path.to_str().expect("p")]);
    assert_eq!(code, 0, "{stderr}");
    let stats = &pieces.last().expect("stats")["tlstap"]["stats"];
    assert_eq!(stats["ip_fragments"], 3);
    assert_eq!(stats["ip_fragments_reassembled"], 1);
    let (a, b) = (tls_records(&whole), tls_records(&pieces));
    assert_eq!((a.len(), b.len()), (1, 1));
    for path in [
        "tls.client.server_name",
        "tls.cipher",
        "tls.version",
        "tlstap.client.ja4",
        "tls.client.ja3",
        "source.ip",
        "source.port",
        "destination.port",
        "tlstap.quic.version",
    ] {
        assert_eq!(field(a[0], path), field(b[0], path), "{path}");
    }
    assert_eq!(text(b[0], "tls.client.server_name"), "api.cirrus-ci.com");
}

/// OpenSSL DTLS 1.2 with a cookie exchange (tests/data/README.md says how it
/// was made): SNI, version, cipher, the cookie exchange and JA4's `d` prefix.
#[test]
fn openssl_dtls12_session_with_cookie_exchange() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dtls12-sni-hvr.pcap");
    let (code, records, stderr) = run_tlstap(&["read", "-q", path.to_str().expect("p")]);
    assert_eq!(code, 0, "{stderr}");
    let sessions = tls_records(&records);
    assert_eq!(sessions.len(), 1);
    let r = sessions[0];
    assert_eq!(text(r, "network.transport"), "udp");
    assert_eq!(text(r, "network.protocol"), "dtls");
    assert_eq!(text(r, "tls.version"), "1.2");
    assert_eq!(text(r, "tls.version_protocol"), "dtls");
    assert_eq!(
        text(r, "tls.cipher"),
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
    );
    assert_eq!(text(r, "tls.client.server_name"), "dtls.example");
    assert_eq!(field(r, "tls.established"), true);
    assert_eq!(field(r, "tlstap.dtls_cookie_exchange"), true);
    assert!(text(r, "tlstap.client.ja4").starts_with("dd2d"));
    assert_eq!(field(r, "destination.port"), 4740);
    // The server's certificate came in two datagrams and is summarised.
    assert!(!text(r, "tls.server.x509.subject.distinguished_name").is_empty());
}
