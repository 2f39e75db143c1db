//! Test support: real TLS handshakes from rustls (certificates from rcgen),
//! framed into TCP/IP packets and written as pcap files, plus a runner for the
//! tlstap binary. Every handshake byte comes from a real TLS stack.
#![allow(dead_code)]

pub mod flood;

use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use etherparse::PacketBuilder;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

/// Which side sent a chunk of TLS bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

/// A test PKI: root CA → intermediate → server leaf (and a client leaf).
pub struct Pki {
    pub root_der: CertificateDer<'static>,
    pub root_pem: String,
    pub intermediate_der: CertificateDer<'static>,
    pub server_chain: Vec<CertificateDer<'static>>,
    pub server_key: PrivateKeyDer<'static>,
    pub client_chain: Vec<CertificateDer<'static>>,
    pub client_key: PrivateKeyDer<'static>,
}

fn ca_params(name: &str) -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "tlstap tests");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    params
}

/// Leaf properties a test may want to change.
#[derive(Clone)]
pub struct LeafOptions {
    /// (not_before, not_after) of both leaves; rcgen's default is 1975..4096.
    pub validity: Option<(time::OffsetDateTime, time::OffsetDateTime)>,
    pub server_eku: Vec<rcgen::ExtendedKeyUsagePurpose>,
    pub client_eku: Vec<rcgen::ExtendedKeyUsagePurpose>,
}

impl Default for LeafOptions {
    fn default() -> Self {
        Self {
            validity: None,
            server_eku: vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth],
            client_eku: vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth],
        }
    }
}

impl Pki {
    pub fn new(server_names: &[&str]) -> Self {
        Self::with_leaves(server_names, &LeafOptions::default())
    }

    pub fn with_leaves(server_names: &[&str], leaves: &LeafOptions) -> Self {
        let root_key = rcgen::KeyPair::generate().expect("key");
        let root = ca_params("tlstap Test Root")
            .self_signed(&root_key)
            .expect("root");
        let root_issuer = rcgen::Issuer::new(ca_params("tlstap Test Root"), &root_key);
        let intermediate_key = rcgen::KeyPair::generate().expect("key");
        let intermediate = ca_params("tlstap Test Intermediate")
            .signed_by(&intermediate_key, &root_issuer)
            .expect("intermediate");
        let intermediate_issuer =
            rcgen::Issuer::new(ca_params("tlstap Test Intermediate"), &intermediate_key);

        let names: Vec<String> = server_names.iter().map(|s| s.to_string()).collect();
        let mut server_params = rcgen::CertificateParams::new(names).expect("params");
        server_params.distinguished_name.push(
            rcgen::DnType::CommonName,
            server_names.first().copied().unwrap_or("server"),
        );
        server_params.extended_key_usages = leaves.server_eku.clone();
        if let Some((not_before, not_after)) = leaves.validity {
            server_params.not_before = not_before;
            server_params.not_after = not_after;
        }
        let server_key = rcgen::KeyPair::generate().expect("key");
        let server = server_params
            .signed_by(&server_key, &intermediate_issuer)
            .expect("leaf");

        let mut client_params =
            rcgen::CertificateParams::new(vec!["client.internal".to_string()]).expect("params");
        client_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "client.internal");
        client_params.extended_key_usages = leaves.client_eku.clone();
        if let Some((not_before, not_after)) = leaves.validity {
            client_params.not_before = not_before;
            client_params.not_after = not_after;
        }
        let client_key = rcgen::KeyPair::generate().expect("key");
        let client = client_params
            .signed_by(&client_key, &intermediate_issuer)
            .expect("client");

        Pki {
            root_der: root.der().clone(),
            root_pem: root.pem(),
            intermediate_der: intermediate.der().clone(),
            server_chain: vec![server.der().clone(), intermediate.der().clone()],
            server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
            client_chain: vec![client.der().clone(), intermediate.der().clone()],
            client_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(client_key.serialize_der())),
        }
    }
}

/// How the rustls peers are configured.
#[derive(Clone)]
pub struct HandshakeOptions {
    pub server_name: String,
    pub client_versions: Vec<&'static rustls::SupportedProtocolVersion>,
    pub server_versions: Vec<&'static rustls::SupportedProtocolVersion>,
    pub alpn: Vec<Vec<u8>>,
    pub client_auth: bool,
    /// Key-exchange groups the client offers, in order (None = provider default).
    pub client_groups: Option<Vec<&'static dyn rustls::crypto::SupportedKxGroup>>,
    pub server_groups: Option<Vec<&'static dyn rustls::crypto::SupportedKxGroup>>,
    pub application_data: bool,
    /// Unix seconds both peers take as "now" when validating certificates
    /// (None: the wall clock).
    pub validation_time: Option<u64>,
    /// The client accepts any server certificate (like `curl -k`).
    pub insecure_client: bool,
    /// Where the client logs its secrets (rustls `KeyLog`, NSS format).
    pub key_log: Option<Arc<dyn rustls::KeyLog>>,
    /// A peer may refuse the other (bad certificate): keep what was sent,
    /// the refusing side's alert included, instead of failing the test.
    pub allow_failure: bool,
    /// Cipher suites the client offers (None = provider default).
    pub client_suites: Option<Vec<rustls::SupportedCipherSuite>>,
    /// With `client_auth`: the server requires a certificate, the client has none.
    pub client_without_certificate: bool,
}

/// A client that does not validate the server's certificate (signatures on the
/// handshake itself are still checked, so the TLS exchange stays real).
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            certificate,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            certificate,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[derive(Debug)]
struct FixedTime(u64);

impl rustls::time_provider::TimeProvider for FixedTime {
    fn current_time(&self) -> Option<rustls::pki_types::UnixTime> {
        Some(rustls::pki_types::UnixTime::since_unix_epoch(
            std::time::Duration::from_secs(self.0),
        ))
    }
}

fn time_provider(options: &HandshakeOptions) -> Arc<dyn rustls::time_provider::TimeProvider> {
    match options.validation_time {
        Some(seconds) => Arc::new(FixedTime(seconds)),
        None => Arc::new(rustls::time_provider::DefaultTimeProvider),
    }
}

impl Default for HandshakeOptions {
    fn default() -> Self {
        Self {
            server_name: "api.internal".to_string(),
            client_versions: vec![&rustls::version::TLS13, &rustls::version::TLS12],
            server_versions: vec![&rustls::version::TLS13, &rustls::version::TLS12],
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            client_auth: false,
            client_groups: None,
            server_groups: None,
            application_data: true,
            validation_time: None,
            insecure_client: false,
            key_log: None,
            allow_failure: false,
            client_suites: None,
            client_without_certificate: false,
        }
    }
}

fn provider(
    groups: &Option<Vec<&'static dyn rustls::crypto::SupportedKxGroup>>,
) -> Arc<rustls::crypto::CryptoProvider> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if let Some(groups) = groups {
        provider.kx_groups = groups.clone();
    }
    Arc::new(provider)
}

/// Runs a full handshake in memory and returns what each side put on the wire,
/// in the order it was sent.
pub fn handshake(pki: &Pki, options: &HandshakeOptions) -> Vec<(Side, Vec<u8>)> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.root_der.clone()).expect("root");
    let roots = Arc::new(roots);

    let server_builder = rustls::ServerConfig::builder_with_details(
        provider(&options.server_groups),
        time_provider(options),
    )
    .with_protocol_versions(&options.server_versions)
    .expect("versions");
    let server_builder = if options.client_auth {
        let verifier = rustls::server::WebPkiClientVerifier::builder(roots.clone())
            .build()
            .expect("verifier");
        server_builder.with_client_cert_verifier(verifier)
    } else {
        server_builder.with_no_client_auth()
    };
    let mut server_config = server_builder
        .with_single_cert(pki.server_chain.clone(), pki.server_key.clone_key())
        .expect("server cert");
    server_config.alpn_protocols = options.alpn.clone();

    let mut client_provider = (*provider(&options.client_groups)).clone();
    if let Some(suites) = &options.client_suites {
        client_provider.cipher_suites = suites.clone();
    }
    let client_builder = rustls::ClientConfig::builder_with_details(
        Arc::new(client_provider),
        time_provider(options),
    )
    .with_protocol_versions(&options.client_versions)
    .expect("versions")
    .with_root_certificates(roots);
    let mut client_config = if options.client_auth && !options.client_without_certificate {
        client_builder
            .with_client_auth_cert(pki.client_chain.clone(), pki.client_key.clone_key())
            .expect("client cert")
    } else {
        client_builder.with_no_client_auth()
    };
    client_config.alpn_protocols = options.alpn.clone();
    if options.insecure_client {
        let verifier = Arc::new(AcceptAnyCertificate(provider(&options.client_groups)));
        client_config.dangerous().set_certificate_verifier(verifier);
    }
    if let Some(key_log) = &options.key_log {
        client_config.key_log = key_log.clone();
    }

    let name = ServerName::try_from(options.server_name.clone()).expect("server name");
    let mut client = rustls::ClientConnection::new(Arc::new(client_config), name).expect("client");
    let mut server = rustls::ServerConnection::new(Arc::new(server_config)).expect("server");
    if options.application_data {
        client
            .writer()
            .write_all(b"GET / HTTP/1.1\r\nHost: api.internal\r\n\r\n")
            .expect("write");
    }
    let mut wire = Vec::new();
    let mut server_replied = false;
    for _ in 0..64 {
        let mut progressed = false;
        let mut buffer = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut buffer).expect("client write");
        }
        if !buffer.is_empty() {
            progressed = true;
            server
                .read_tls(&mut buffer.as_slice())
                .expect("server read");
            let processed = server.process_new_packets();
            wire.push((Side::Client, buffer));
            if options.allow_failure && processed.is_err() {
                let mut alert = Vec::new();
                while server.wants_write() {
                    server.write_tls(&mut alert).expect("server write");
                }
                if !alert.is_empty() {
                    wire.push((Side::Server, alert));
                }
                return wire;
            }
            processed.expect("server process");
        }
        if !server.is_handshaking() && options.application_data && !server_replied {
            let mut request = [0u8; 256];
            if let Ok(n) = server.reader().read(&mut request) {
                if n > 0 {
                    server
                        .writer()
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .expect("write");
                    server_replied = true;
                }
            }
        }
        let mut buffer = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut buffer).expect("server write");
        }
        if !buffer.is_empty() {
            progressed = true;
            client
                .read_tls(&mut buffer.as_slice())
                .expect("client read");
            let processed = client.process_new_packets();
            wire.push((Side::Server, buffer));
            if options.allow_failure && processed.is_err() {
                let mut alert = Vec::new();
                while client.wants_write() {
                    client.write_tls(&mut alert).expect("client write");
                }
                if !alert.is_empty() {
                    wire.push((Side::Client, alert));
                }
                return wire;
            }
            processed.expect("client process");
        }
        if !progressed {
            break;
        }
    }
    assert!(
        !client.is_handshaking() && !server.is_handshaking(),
        "handshake did not complete"
    );
    wire
}

/// How a conversation is cut into packets.
#[derive(Debug, Clone)]
pub struct Framing {
    pub client: (Ipv4Addr, u16),
    pub server: (Ipv4Addr, u16),
    /// Largest TCP payload per segment.
    pub mss: usize,
    /// Omit the three-way handshake (connection picked up mid-stream).
    pub without_syn: bool,
    /// Swap each pair of consecutive data segments in the same direction.
    pub reorder: bool,
    /// Send every data segment twice (the second copy with a new IP id, as
    /// a real retransmission has).
    pub retransmit: bool,
    /// Mirror every packet twice, byte-identical (SPAN ingress + egress):
    /// `Adjacent` copies follow each other, `Paired` interleaves two packets.
    pub duplicate: Duplicate,
    pub close: bool,
    pub start_seconds: u32,
    pub vlan: Option<u16>,
}

impl Default for Framing {
    fn default() -> Self {
        Self {
            client: (Ipv4Addr::new(10, 1, 0, 20), 50_000),
            server: (Ipv4Addr::new(10, 1, 0, 10), 443),
            mss: 1400,
            without_syn: false,
            reorder: false,
            retransmit: false,
            duplicate: Duplicate::None,
            close: true,
            start_seconds: 1_767_225_600, // 2026-01-01T00:00:00Z
            vlan: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duplicate {
    None,
    Adjacent,
    Paired,
}

/// Sets the IPv4 identification of an Ethernet (optionally VLAN) frame and
/// fixes the header checksum.
pub fn with_ip_id(mut frame: Vec<u8>, id: u16) -> Vec<u8> {
    let ip = if frame[12..14] == [0x81, 0x00] {
        18
    } else {
        14
    };
    let header_len = usize::from(frame[ip] & 0x0f) * 4;
    frame[ip + 4..ip + 6].copy_from_slice(&id.to_be_bytes());
    frame[ip + 10..ip + 12].copy_from_slice(&[0, 0]);
    let sum: u32 = frame[ip..ip + header_len]
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    let folded = (sum & 0xffff) + (sum >> 16);
    let checksum = !(((folded & 0xffff) + (folded >> 16)) as u16);
    frame[ip + 10..ip + 12].copy_from_slice(&checksum.to_be_bytes());
    frame
}

/// One frame with its capture time (microseconds after the start).
#[derive(Clone)]
pub struct Frame {
    pub micros: u64,
    pub bytes: Vec<u8>,
}

fn segment(
    framing: &Framing,
    from: Side,
    seq: u32,
    ack: u32,
    flags: &str,
    payload: &[u8],
) -> Vec<u8> {
    let ((src, sport), (dst, dport)) = match from {
        Side::Client => (framing.client, framing.server),
        Side::Server => (framing.server, framing.client),
    };
    let base = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let mut out = Vec::new();
    macro_rules! finish {
        ($ip:expr) => {{
            let mut tcp = $ip.tcp(sport, dport, seq, 64_240);
            if flags.contains('S') {
                tcp = tcp.syn();
            }
            if flags.contains('A') {
                tcp = tcp.ack(ack);
            }
            if flags.contains('F') {
                tcp = tcp.fin();
            }
            if flags.contains('P') {
                tcp = tcp.psh();
            }
            tcp.write(&mut out, payload).expect("build packet");
        }};
    }
    match framing.vlan {
        Some(id) => finish!(base.single_vlan(id.try_into().expect("vlan")).ipv4(
            src.octets(),
            dst.octets(),
            64
        )),
        None => finish!(base.ipv4(src.octets(), dst.octets(), 64)),
    }
    out
}

/// Frames a conversation into Ethernet/IPv4/TCP packets.
pub fn frame(conversation: &[(Side, Vec<u8>)], framing: &Framing) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut micros = 0u64;
    let client_isn: u32 = 0x1000_0000;
    let server_isn: u32 = 0xfff0_0000; // wraps during the handshake
    let mut seq = [client_isn.wrapping_add(1), server_isn.wrapping_add(1)];
    let mut push = |frames: &mut Vec<Frame>, bytes: Vec<u8>| {
        micros += 150;
        frames.push(Frame { micros, bytes });
    };
    if !framing.without_syn {
        push(
            &mut frames,
            segment(framing, Side::Client, client_isn, 0, "S", &[]),
        );
        push(
            &mut frames,
            segment(framing, Side::Server, server_isn, seq[0], "SA", &[]),
        );
        push(
            &mut frames,
            segment(framing, Side::Client, seq[0], seq[1], "A", &[]),
        );
    }
    for (side, bytes) in conversation {
        let (me, other) = match side {
            Side::Client => (0, 1),
            Side::Server => (1, 0),
        };
        let mut segments = Vec::new();
        for chunk in bytes.chunks(framing.mss.max(1)) {
            segments.push(segment(framing, *side, seq[me], seq[other], "PA", chunk));
            seq[me] = seq[me].wrapping_add(chunk.len() as u32);
        }
        if framing.reorder {
            for pair in segments.chunks_mut(2) {
                pair.reverse();
            }
        }
        for packet in segments {
            if framing.retransmit {
                push(&mut frames, packet.clone());
                push(&mut frames, with_ip_id(packet, 1));
            } else {
                push(&mut frames, packet);
            }
        }
    }
    if framing.close {
        push(
            &mut frames,
            segment(framing, Side::Client, seq[0], seq[1], "FA", &[]),
        );
        push(
            &mut frames,
            segment(
                framing,
                Side::Server,
                seq[1],
                seq[0].wrapping_add(1),
                "FA",
                &[],
            ),
        );
    }
    match framing.duplicate {
        Duplicate::None => frames,
        Duplicate::Adjacent => frames
            .into_iter()
            .flat_map(|f| {
                let copy = Frame {
                    micros: f.micros + 3,
                    bytes: f.bytes.clone(),
                };
                [f, copy]
            })
            .collect(),
        Duplicate::Paired => {
            // a, b, a', b': the copies of two packets interleave.
            let mut out = Vec::new();
            let mut iter = frames.into_iter();
            while let Some(a) = iter.next() {
                let b = iter.next();
                let last = b.as_ref().map_or(a.micros, |b| b.micros);
                let copies = [Some(&a), b.as_ref()]
                    .into_iter()
                    .flatten()
                    .enumerate()
                    .map(|(i, f)| Frame {
                        micros: last + 2 * (i as u64 + 1),
                        bytes: f.bytes.clone(),
                    })
                    .collect::<Vec<_>>();
                out.push(a);
                out.extend(b);
                out.extend(copies);
            }
            out
        }
    }
}

/// Writes frames as a pcap file (Ethernet link type) through libpcap.
pub fn write_pcap(path: &Path, frames: &[Frame], start_seconds: u32) {
    let capture = pcap::Capture::dead(pcap::Linktype::ETHERNET).expect("dead capture");
    let mut savefile = capture.savefile(path).expect("savefile");
    for frame in frames {
        let seconds = u64::from(start_seconds) + frame.micros / 1_000_000;
        let header = pcap::PacketHeader {
            ts: libc::timeval {
                tv_sec: seconds as libc::time_t,
                tv_usec: (frame.micros % 1_000_000) as libc::suseconds_t,
            },
            caplen: frame.bytes.len() as u32,
            len: frame.bytes.len() as u32,
        };
        savefile.write(&pcap::Packet::new(&header, &frame.bytes));
    }
    savefile.flush().expect("flush");
}

/// A temporary directory that lives as long as the test.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// Handshake + framing + pcap in one call; returns the pcap path.
pub fn handshake_pcap(
    dir: &Path,
    name: &str,
    pki: &Pki,
    options: &HandshakeOptions,
    framing: &Framing,
) -> PathBuf {
    let conversation = handshake(pki, options);
    let path = dir.join(name);
    write_pcap(&path, &frame(&conversation, framing), framing.start_seconds);
    path
}

/// Runs `tlstap` with `args`; returns (exit code, session records, stderr).
/// The `tlstap.stats` record(s) are left out; see [`run_tlstap_all`].
pub fn run_tlstap(args: &[&str]) -> (i32, Vec<serde_json::Value>, String) {
    let (code, records, stderr) = run_tlstap_all(args);
    let sessions = records
        .into_iter()
        .filter(|r| r["event"]["dataset"] != "tlstap.stats")
        .collect();
    (code, sessions, stderr)
}

/// Runs `tlstap` with `args`; returns (exit code, every stdout record, stderr).
pub fn run_tlstap_all(args: &[&str]) -> (i32, Vec<serde_json::Value>, String) {
    let output = std::process::Command::new(
        option_env!("CARGO_BIN_EXE_tlstap").unwrap_or("target/release/tlstap"),
    )
    .args(args)
    .output()
    .expect("run tlstap");
    let stdout = String::from_utf8(output.stdout).expect("utf-8 output");
    let records = stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}"))
        })
        .collect();
    (
        output.status.code().unwrap_or(-1),
        records,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Numeric segments index arrays: "tlstap.findings.0.id".
pub fn field<'a>(record: &'a serde_json::Value, path: &str) -> &'a serde_json::Value {
    path.split('.')
        .fold(record, |value, key| match key.parse::<usize>() {
            Ok(index) if value.is_array() => &value[index],
            _ => &value[key],
        })
}

pub fn string(record: &serde_json::Value, path: &str) -> String {
    match field(record, path) {
        serde_json::Value::String(s) => s.clone(),
        other => panic!("{path} is not a string: {other}"),
    }
}

/// SHA-256 of a DER certificate, uppercase hex (as tlstap writes it).
pub fn sha256_hex(der: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// Where the external corpus (Zeek traces and baselines, tshark facts,
/// QUIC and misc traces) is looked for: `TLSTAP_CORPUS`, else
/// `../shared/corpus` beside the repository. `build.rs` uses the same rule.
pub fn corpus_dir() -> PathBuf {
    match std::env::var_os("TLSTAP_CORPUS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"),
    }
}

/// The corpus for the test `test`, or `None` when it is missing: the test
/// then returns early (it passes without running) and [`skipped`] says so.
/// With `TLSTAP_REQUIRE_CORPUS=1` (CI) a missing corpus fails the test instead.
pub fn corpus_or_skip(test: &str) -> Option<PathBuf> {
    let dir = corpus_dir();
    if dir.is_dir() {
        return Some(dir);
    }
    skipped(test, &dir);
    None
}

/// Tells the person running the tests that `test` did not run because
/// `missing` (external test data) is absent, or fails the test when
/// `TLSTAP_REQUIRE_CORPUS` is set. The line goes to stderr directly, not
/// through `eprintln!`, because the test harness hides what a passing test
/// prints.
pub fn skipped(test: &str, missing: &Path) {
    assert!(
        std::env::var_os("TLSTAP_REQUIRE_CORPUS").is_none_or(|v| v.is_empty() || v == "0"),
        "{test}: TLSTAP_REQUIRE_CORPUS is set but {} is missing",
        missing.display()
    );
    // One write, so parallel tests do not interleave inside the line.
    let line = format!(
        "tlstap tests: skipped {test}: {} not found (docs/testing.md)\n",
        missing.display()
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// Interleaves conversations frame by frame (round robin), `step` µs apart,
/// so many flows are open at once.
pub fn interleave(conversations: &[Vec<Frame>], step: u64) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut cursors = vec![0usize; conversations.len()];
    let mut micros = 0u64;
    loop {
        let mut any = false;
        for (conversation, cursor) in conversations.iter().zip(cursors.iter_mut()) {
            if let Some(frame) = conversation.get(*cursor) {
                micros += step;
                frames.push(Frame {
                    micros,
                    bytes: frame.bytes.clone(),
                });
                *cursor += 1;
                any = true;
            }
        }
        if !any {
            return frames;
        }
    }
}

/// The tansu broker for the Kafka tests (`scripts/kafka-broker.sh` starts
/// it), or `None` when it is not installed: the test then returns early and
/// [`skipped`] says so (or fails it under `TLSTAP_REQUIRE_CORPUS`, as in CI).
pub fn tansu_or_skip(test: &str) -> Option<PathBuf> {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([home.join(".cargo/bin")])
        .map(|dir| dir.join("tansu"))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        skipped(
            test,
            Path::new("tansu (scripts/kafka-broker.sh installs it)"),
        );
    }
    found
}
