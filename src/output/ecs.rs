//! The session record: ECS field names where ECS has them, `tlstap.*` for the rest.
//!
//! The structs mirror the JSON tree so the field reference in README and the
//! ECS conformance test read straight off them. `None` and empty lists are
//! left out of the JSON rather than written as null.

use serde::Serialize;

use crate::flow::{FlowContent, FlowEvent};
use crate::policy::{Finding, Policy};
use crate::tls::fingerprint;
use crate::tls::fingerprint::stacks::StackMatch;
use crate::tls::plaintext::PlaintextFacts;
use crate::tls::{
    names, AlertEvent, Chain, ClientHelloSummary, DowngradeSentinel, HandshakeSummary,
    ProtocolVersion, ServerHelloSummary,
};
use crate::x509::{CertificateSummary, DistinguishedName};

use super::community_id::community_id_v1;

fn is_false(value: &bool) -> bool {
    !*value
}

#[derive(Debug, Serialize)]
pub struct EcsRecord {
    #[serde(rename = "@timestamp")]
    pub timestamp: String,
    pub event: Event,
    pub source: Host,
    pub destination: Host,
    pub network: Network,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<EcsService>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    pub tlstap: Tlstap,
}

/// ECS `service.target`: the policy's name for the service this session reached.
#[derive(Debug, Serialize)]
pub struct EcsService {
    pub target: ServiceTarget,
}

#[derive(Debug, Serialize)]
pub struct ServiceTarget {
    pub name: String,
}

/// The owner of the policy's service (ECS has no owner field).
#[derive(Debug, Serialize)]
pub struct TlstapService {
    pub owner: String,
}

#[derive(Debug, Serialize)]
pub struct Event {
    pub kind: &'static str,
    pub category: [&'static str; 1],
    #[serde(rename = "type")]
    pub kind_type: [&'static str; 1],
    pub dataset: &'static str,
    pub outcome: &'static str,
    pub start: String,
    pub end: String,
    /// Nanoseconds from first to last packet seen before the record was written.
    pub duration: i64,
}

#[derive(Debug, Serialize)]
pub struct Host {
    pub ip: String,
    pub port: u16,
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct Network {
    pub transport: &'static str,
    pub protocol: &'static str,
    pub direction: &'static str,
    pub community_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vlan: Option<Vlan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inner: Option<InnerVlan>,
}

#[derive(Debug, Serialize)]
pub struct Vlan {
    pub id: String,
}

#[derive(Debug, Serialize)]
pub struct InnerVlan {
    pub vlan: Vlan,
}

#[derive(Debug, Serialize)]
pub struct Tls {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_protocol: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curve: Option<String>,
    pub established: bool,
    pub resumed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_protocol: Option<String>,
    pub client: TlsClient,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<TlsServer>,
}

#[derive(Debug, Serialize)]
pub struct TlsClient {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja3: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub supported_ciphers: Vec<String>,
    #[serde(flatten)]
    pub certificate: Option<TlsCertificate>,
}

#[derive(Debug, Serialize)]
pub struct TlsServer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja3s: Option<String>,
    #[serde(flatten)]
    pub certificate: Option<TlsCertificate>,
}

/// The leaf certificate as ECS places it under `tls.client` / `tls.server`.
#[derive(Debug, Serialize)]
pub struct TlsCertificate {
    pub hash: Hashes,
    pub subject: String,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
    pub x509: X509,
}

#[derive(Debug, Serialize)]
pub struct Hashes {
    pub sha256: String,
    pub sha1: String,
}

#[derive(Debug, Serialize)]
pub struct X509 {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alternative_names: Vec<String>,
    pub subject: X509Name,
    pub issuer: X509Name,
    pub not_before: String,
    pub not_after: String,
    pub serial_number: String,
    pub public_key_algorithm: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key_curve: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key_exponent: Option<u64>,
    pub signature_algorithm: String,
    pub version_number: String,
}

#[derive(Debug, Serialize)]
pub struct X509Name {
    pub distinguished_name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub common_name: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub organization: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub organizational_unit: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub country: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locality: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub state_or_province: Vec<String>,
}

/// Project fields: everything ECS has no name for.
#[derive(Debug, Serialize, Default)]
pub struct Tlstap {
    pub end_reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_variant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<TlstapClient>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<TlstapServer>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<Alert>,
    pub hello_retry: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hello_retry_group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handshake_rtt_us: Option<i64>,
    pub truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
    pub midstream: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub encap: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<TlstapService>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quic: Option<Quic>,
    /// DTLS: the server asked for a cookie (HelloVerifyRequest) first.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dtls_cookie_exchange: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_records: Option<u32>,
    /// The plaintext protocol whose upgrade started TLS ("smtp", "postgresql", …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starttls: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plaintext: Option<Plaintext>,
    pub findings: Vec<Finding>,
}

/// QUIC facts of a session carried in QUIC.
#[derive(Debug, Serialize)]
pub struct Quic {
    /// "1", "2", "draft-29", or the wire value in hex.
    pub version: String,
    /// The server's Initial used another version (compatible negotiation, RFC 9368).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    pub retry: bool,
    /// Versions a Version Negotiation packet offered instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_negotiation: Option<Vec<String>>,
}

/// What a non-TLS session showed.
#[derive(Debug, Serialize)]
pub struct Plaintext {
    pub protocol: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub first_line: String,
    pub starttls_offered: bool,
    pub starttls_requested: bool,
}

#[derive(Debug, Serialize, Default)]
pub struct TlstapClient {
    /// The JA3 string whose MD5 is `tls.client.ja3`.
    pub ja3_full: String,
    /// JA4 (FoxIO): ECS has no field for it.
    pub ja4: String,
    /// JA4 with the lists instead of their hashes (`--raw-fingerprints`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja4_r: Option<String>,
    /// The TLS library the JA4 b/c parts identify ("openssl 3.0", "unknown").
    pub stack: String,
    /// What the stack match rests on: "ja4_bc" (both hashes) or "ja4_c".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack_basis: Option<&'static str>,
    pub legacy_version: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub offered_versions: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alpn: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cipher_ids: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub supported_groups: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub key_share_groups: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signature_algorithms: Vec<String>,
    pub extensions: Vec<u16>,
    pub session_ticket: bool,
    pub psk: bool,
    pub early_data: bool,
    pub ech: bool,
    pub fallback_scsv: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub sslv2_format: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<ChainCertificate>,
}

#[derive(Debug, Serialize, Default)]
pub struct TlstapServer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selected_version: Option<String>,
    /// Negotiated compression method (0 = null; anything else is CRIME-prone).
    pub compression_method: u8,
    pub extensions: Vec<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja3s_full: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downgrade_sentinel: Option<&'static str>,
    pub certificates_encrypted: bool,
    pub certificate_requested: bool,
    pub session_ticket_issued: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dh_prime_bits: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<ChainCertificate>,
    #[serde(skip_serializing_if = "is_zero")]
    pub chain_dropped: usize,
}

fn is_zero(value: &usize) -> bool {
    *value == 0
}

/// One certificate of a chain, with every fact x509 extracted.
#[derive(Debug, Serialize)]
pub struct ChainCertificate {
    pub sha256: String,
    pub sha1: String,
    #[serde(flatten)]
    pub x509: X509,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alt_names_ip: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alt_names_uri: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alt_names_email: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_ca: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub key_usage: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extended_key_usage: Vec<String>,
    pub self_issued: bool,
    pub self_signed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Alert {
    pub direction: &'static str,
    pub encrypted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u8>,
}

fn hex16(value: u16) -> String {
    format!("0x{value:04x}")
}

fn group_label(id: u16) -> String {
    names::group_name(id).map_or_else(|| hex16(id), str::to_string)
}

fn cipher_label(id: u16) -> String {
    names::cipher_suite_name(id).map_or_else(|| hex16(id), str::to_string)
}

fn server_cipher(hello: &ServerHelloSummary) -> (String, String) {
    match hello.sslv2_cipher_spec {
        Some(spec) => (
            names::sslv2_cipher_name(spec).map_or_else(|| format!("0x{spec:06x}"), str::to_string),
            format!("0x{spec:06x}"),
        ),
        None => (cipher_label(hello.cipher_suite), hex16(hello.cipher_suite)),
    }
}

fn version_label(value: u16) -> String {
    let version = ProtocolVersion(value);
    match (version.ecs_protocol(), version.ecs_version()) {
        _ if version.is_grease() => format!("grease-{}", hex16(value)),
        (Some(protocol), Some(number)) if version.variant().is_none() => {
            format!("{protocol}{number}")
        }
        _ => hex16(value),
    }
}

fn name(dn: &DistinguishedName) -> X509Name {
    X509Name {
        distinguished_name: dn.rfc4514.clone(),
        common_name: dn.common_name.iter().cloned().collect(),
        organization: dn.organization.clone(),
        organizational_unit: dn.organizational_unit.clone(),
        country: dn.country.clone(),
        locality: dn.locality.clone(),
        state_or_province: dn.state_or_province.clone(),
    }
}

fn x509(summary: &CertificateSummary) -> X509 {
    X509 {
        // ECS: "commonly contain IP addresses, DNS names (and wildcards), and email addresses".
        alternative_names: summary
            .alt_names
            .dns
            .iter()
            .cloned()
            .chain(summary.alt_names.ip.iter().map(ToString::to_string))
            .chain(summary.alt_names.uri.iter().cloned())
            .chain(summary.alt_names.email.iter().cloned())
            .collect(),
        subject: name(&summary.subject),
        issuer: name(&summary.issuer),
        not_before: summary.not_before.to_rfc3339(),
        not_after: summary.not_after.to_rfc3339(),
        serial_number: summary.serial_hex.clone(),
        public_key_algorithm: summary.public_key_algorithm.as_str().to_string(),
        public_key_size: summary.public_key_size,
        public_key_curve: summary.public_key_curve.clone(),
        public_key_exponent: summary.public_key_exponent,
        signature_algorithm: summary.signature_algorithm.clone(),
        version_number: summary.version.to_string(),
    }
}

fn certificate(summary: &CertificateSummary) -> TlsCertificate {
    TlsCertificate {
        hash: Hashes {
            sha256: summary.sha256_hex(),
            sha1: summary.sha1_hex(),
        },
        subject: summary.subject.rfc4514.clone(),
        issuer: summary.issuer.rfc4514.clone(),
        not_before: summary.not_before.to_rfc3339(),
        not_after: summary.not_after.to_rfc3339(),
        x509: x509(summary),
    }
}

fn chain(chain: &Chain) -> Vec<ChainCertificate> {
    chain
        .certificates
        .iter()
        .map(|entry| match &entry.summary {
            Ok(summary) => ChainCertificate {
                sha256: summary.sha256_hex(),
                sha1: summary.sha1_hex(),
                x509: x509(summary),
                alt_names_ip: summary
                    .alt_names
                    .ip
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                alt_names_uri: summary.alt_names.uri.clone(),
                alt_names_email: summary.alt_names.email.clone(),
                is_ca: summary.is_ca,
                key_usage: summary.key_usage.clone(),
                extended_key_usage: summary.extended_key_usage.clone(),
                self_issued: summary.self_issued,
                self_signed: summary.self_signed,
                parse_error: None,
            },
            Err(error) => {
                use sha2::Digest;
                ChainCertificate {
                    sha256: crate::x509::hex_upper(&sha2::Sha256::digest(&entry.der)),
                    sha1: crate::x509::hex_upper(&sha1::Sha1::digest(&entry.der)),
                    x509: X509 {
                        alternative_names: Vec::new(),
                        subject: X509Name::empty(),
                        issuer: X509Name::empty(),
                        not_before: String::new(),
                        not_after: String::new(),
                        serial_number: String::new(),
                        public_key_algorithm: String::new(),
                        public_key_size: None,
                        public_key_curve: None,
                        public_key_exponent: None,
                        signature_algorithm: String::new(),
                        version_number: String::new(),
                    },
                    alt_names_ip: Vec::new(),
                    alt_names_uri: Vec::new(),
                    alt_names_email: Vec::new(),
                    is_ca: None,
                    key_usage: Vec::new(),
                    extended_key_usage: Vec::new(),
                    self_issued: false,
                    self_signed: false,
                    parse_error: Some(error.to_string()),
                }
            }
        })
        .collect()
}

impl X509Name {
    fn empty() -> Self {
        Self {
            distinguished_name: String::new(),
            common_name: Vec::new(),
            organization: Vec::new(),
            organizational_unit: Vec::new(),
            country: Vec::new(),
            locality: Vec::new(),
            state_or_province: Vec::new(),
        }
    }
}

fn alert(event: &AlertEvent) -> Alert {
    Alert {
        direction: event.direction.as_str(),
        encrypted: event.level.is_none(),
        level: event.level.map(|level| match level {
            1 => "warning",
            2 => "fatal",
            _ => "unknown",
        }),
        description: event.description.map(|code| {
            names::alert_description_name(code)
                .map_or_else(|| format!("unknown-{code}"), str::to_string)
        }),
        code: event.description,
    }
}

fn client_extras(
    hello: &ClientHelloSummary,
    summary: &HandshakeSummary,
    ja3_full: String,
    raw: bool,
) -> TlstapClient {
    let ja4 = fingerprint::ja4::client(hello, summary.carrier);
    TlstapClient {
        ja3_full,
        ja4: ja4.fingerprint,
        ja4_r: raw.then_some(ja4.raw),
        stack: String::new(),
        stack_basis: None,
        legacy_version: version_label(hello.legacy_version),
        offered_versions: hello
            .supported_versions
            .iter()
            .map(|&v| version_label(v))
            .collect(),
        alpn: hello.alpn.clone(),
        cipher_ids: hello.cipher_suites.iter().map(|&c| hex16(c)).collect(),
        supported_groups: hello
            .supported_groups
            .iter()
            .map(|&g| group_label(g))
            .collect(),
        key_share_groups: hello
            .key_share_groups
            .iter()
            .map(|&g| group_label(g))
            .collect(),
        signature_algorithms: hello
            .signature_algorithms
            .iter()
            .map(|&s| hex16(s))
            .collect(),
        extensions: hello.extensions.clone(),
        session_ticket: hello.session_ticket,
        psk: hello.psk,
        early_data: hello.early_data,
        ech: hello.ech,
        fallback_scsv: hello.fallback_scsv,
        sslv2_format: hello.sslv2_format,
        chain: chain(&summary.client_chain),
    }
}

/// Builds the record for one finished flow.
pub fn build(
    event: &FlowEvent,
    policy: &Policy,
    service: Option<&crate::policy::Service>,
    plaintext: Option<&PlaintextFacts>,
    findings: Vec<Finding>,
    options: &super::OutputOptions,
) -> EcsRecord {
    let direction = policy.internal.direction(event.client.ip, event.server.ip);
    let tcp = matches!(event.transport, crate::decode::Transport::Tcp);
    let mut vlans = event.encap.vlan_ids();
    let outer = vlans.next();
    let inner = vlans.next();
    let (tls, tlstap, protocol, start) = match &event.content {
        FlowContent::Tls(summary) => {
            let (tls, tlstap) = tls_fields(summary, options.raw_fingerprints);
            let start = summary
                .client_hello
                .as_ref()
                .map_or(event.first_seen, |hello| hello.time);
            let protocol = match (&event.datagram, event.starttls) {
                (Some(datagram), _) => datagram.protocol.as_str(),
                (None, Some(preamble)) => preamble.as_str(),
                // PostgreSQL 17's direct TLS (no SSLRequest) is told by its ALPN.
                (None, None) if direct_postgres(summary) => "postgresql",
                (None, None) => "tls",
            };
            (Some(tls), tlstap, protocol, start)
        }
        FlowContent::Plaintext { .. } => {
            let protocol = plaintext.map_or("unknown", |p| p.protocol.as_str());
            (None, Tlstap::default(), protocol, event.first_seen)
        }
    };
    let mut tlstap = tlstap;
    tlstap.findings = findings;
    tlstap.service = service.map(|s| TlstapService {
        owner: s.owner.clone(),
    });
    if let Some(client) = &mut tlstap.client {
        let found = policy.stacks.identify(&client.ja4);
        client.stack = found.label();
        client.stack_basis = match found {
            StackMatch::Known { basis, .. } => Some(basis.as_str()),
            StackMatch::Unknown => None,
        };
    }
    tlstap.starttls = event.starttls.map(|p| p.as_str());
    tlstap.client_zone = policy.zone(event.client.ip).map(str::to_string);
    tlstap.server_zone = policy.zone(event.server.ip).map(str::to_string);
    tlstap.plaintext = plaintext.map(|p| Plaintext {
        protocol: p.protocol.as_str(),
        first_line: p.first_line.clone(),
        starttls_offered: p.starttls_offered,
        starttls_requested: p.starttls_requested,
    });
    tlstap.end_reason = event.end.as_str();
    tlstap.midstream = tcp && !event.syn_seen;
    tlstap.encap = event.encap.iter().map(|layer| layer.to_string()).collect();
    tlstap.quic = event.datagram.as_ref().and_then(|datagram| {
        let name = crate::tls::quic::version_name;
        Some(Quic {
            version: name(datagram.quic_version?),
            server_version: datagram.quic_server_version.map(name),
            retry: datagram.quic_retry,
            version_negotiation: datagram
                .quic_version_negotiation
                .as_ref()
                .map(|versions| versions.iter().map(|&v| name(v)).collect()),
        })
    });
    let outcome = match &tls {
        Some(tls) if tls.established => "success",
        Some(_) => "failure",
        None => "unknown",
    };
    let dataset = if tls.is_some() {
        "tlstap.tls"
    } else {
        "tlstap.plaintext"
    };
    EcsRecord {
        timestamp: start.to_rfc3339_micros(),
        event: Event {
            kind: "event",
            category: ["network"],
            kind_type: ["connection"],
            dataset,
            outcome,
            start: event.first_seen.to_rfc3339_micros(),
            end: event.last_seen.to_rfc3339_micros(),
            duration: event
                .last_seen
                .as_nanos()
                .saturating_sub(event.first_seen.as_nanos()),
        },
        source: Host {
            ip: event.client.ip.to_string(),
            port: event.client.port,
            packets: event.packets[0],
            bytes: event.bytes[0],
        },
        destination: Host {
            ip: event.server.ip.to_string(),
            port: event.server.port,
            packets: event.packets[1],
            bytes: event.bytes[1],
        },
        network: Network {
            transport: if tcp { "tcp" } else { "udp" },
            protocol,
            direction: direction.as_str(),
            community_id: community_id_v1(
                (event.client.ip, event.client.port),
                (event.server.ip, event.server.port),
                tcp,
            ),
            vlan: outer.map(|id| Vlan { id: id.to_string() }),
            inner: inner.map(|id| InnerVlan {
                vlan: Vlan { id: id.to_string() },
            }),
        },
        service: service.map(|s| EcsService {
            target: ServiceTarget {
                name: s.name.clone(),
            },
        }),
        tls,
        tlstap,
    }
}

fn direct_postgres(summary: &HandshakeSummary) -> bool {
    summary
        .client_hello
        .as_ref()
        .is_some_and(|hello| hello.alpn.iter().any(|p| p == "postgresql"))
}

fn tls_fields(summary: &HandshakeSummary, raw_fingerprints: bool) -> (Tls, Tlstap) {
    let hello = summary.client_hello.as_ref();
    let server_hello = summary.server_hello.as_ref();
    let version = summary.version();
    // Each fingerprint is computed once; its hash and full string go to two fields.
    let ja3 = hello.map(fingerprint::ja3::client);
    let ja3s = server_hello
        .filter(|sh| sh.sslv2_cipher_spec.is_none())
        .map(fingerprint::ja3::server);
    let server_leaf = summary.server_chain.leaf().map(certificate);
    let client_leaf = summary.client_chain.leaf().map(certificate);
    let tls = Tls {
        version: version.and_then(ProtocolVersion::ecs_version),
        version_protocol: version.and_then(ProtocolVersion::ecs_protocol),
        cipher: server_hello.map(|sh| server_cipher(sh).0),
        curve: summary.curve().map(group_label),
        established: summary.established,
        resumed: summary.resumed,
        next_protocol: server_hello.and_then(|sh| sh.alpn.clone()),
        client: TlsClient {
            ja3: ja3.as_ref().map(|j| j.hash.clone()),
            server_name: hello.and_then(|h| h.server_name.clone()),
            supported_ciphers: hello
                .map(|h| {
                    h.cipher_suites
                        .iter()
                        .filter(|&&c| !crate::tls::is_grease(c))
                        .map(|&c| cipher_label(c))
                        .collect()
                })
                .unwrap_or_default(),
            certificate: client_leaf,
        },
        server: server_hello.map(|_| TlsServer {
            ja3s: ja3s.as_ref().map(|j| j.hash.clone()),
            certificate: server_leaf,
        }),
    };
    let tlstap = Tlstap {
        end_reason: "",
        service: None,
        quic: None,
        dtls_cookie_exchange: summary.hello_verify,
        cipher_id: server_hello.map(|sh| server_cipher(sh).1),
        version_variant: server_hello.and_then(|sh| sh.version().variant()),
        client: hello
            .zip(ja3)
            .map(|(h, ja3)| client_extras(h, summary, ja3.full, raw_fingerprints)),
        server: server_hello.map(|sh| TlstapServer {
            selected_version: sh.selected_version.map(version_label),
            compression_method: sh.compression_method,
            extensions: sh.extensions.clone(),
            ja3s_full: ja3s.as_ref().map(|j| j.full.clone()),
            downgrade_sentinel: sh.downgrade_sentinel.map(|s| match s {
                DowngradeSentinel::Tls12 => "tls1.2",
                DowngradeSentinel::Tls11OrBelow => "tls1.1_or_below",
            }),
            certificates_encrypted: summary.certificates_encrypted,
            certificate_requested: summary.certificate_requested,
            session_ticket_issued: summary.session_ticket_issued,
            dh_prime_bits: summary.dh_prime_bits,
            chain: chain(&summary.server_chain),
            chain_dropped: summary.server_chain.dropped,
        }),
        alerts: summary.alerts.iter().map(alert).collect(),
        hello_retry: summary.hello_retry,
        hello_retry_group: summary.hello_retry_group.map(group_label),
        handshake_rtt_us: match (hello, server_hello) {
            (Some(ch), Some(sh)) => Some((sh.time.as_nanos() - ch.time.as_nanos()) / 1000),
            _ => None,
        },
        truncated: summary.truncated,
        parse_error: summary.parse_error.map(|e| e.to_string()),
        midstream: false,
        encap: Vec::new(),
        heartbeat_records: {
            let total = summary.heartbeat_records[0] + summary.heartbeat_records[1];
            (total > 0).then_some(total)
        },
        starttls: None,
        client_zone: None,
        server_zone: None,
        plaintext: None,
        findings: Vec::new(),
    };
    (tls, tlstap)
}
