//! The session record: ECS field names where ECS has them, `tlstap.*` for the rest.
//!
//! The structs mirror the JSON tree so the field reference in docs/records.md and the
//! ECS conformance test read straight off them. They borrow from the session
//! and the worker's caches: lists of codes are rendered while serialising
//! (no string per element) and certificates come pre-rendered
//! ([`super::certificate`]). `None` and empty lists are left out of the JSON
//! rather than written as null. The findings are not part of these structs:
//! the output stage appends them (see [`super::PreparedRecord`]).

use std::fmt;
use std::net::IpAddr;

use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;
use serde_json::value::RawValue;

use super::certificate::Leaf;
use crate::time::Rfc3339Micros;
use crate::tls::plaintext::PlaintextFacts;
use crate::tls::{is_grease, names, AlertEvent, DowngradeSentinel, ProtocolVersion};

fn is_false(value: &bool) -> bool {
    !*value
}

fn is_zero(value: &usize) -> bool {
    *value == 0
}

#[derive(Serialize)]
pub struct EcsRecord<'a> {
    #[serde(rename = "@timestamp")]
    pub timestamp: Rfc3339Micros,
    pub event: Event,
    pub source: Host,
    pub destination: Host,
    pub network: Network,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<EcsService<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls<'a>>,
    /// Last, and never empty: the output stage appends `findings` to it.
    pub tlstap: Tlstap<'a>,
}

/// ECS `observer`: the sensor that wrote the record, so records of many
/// sensors in one topic or inventory can be told apart. The record writer
/// adds it to every record (see `RecordWriter::with_observer`).
#[derive(Serialize)]
pub struct Observer<'a> {
    /// `--sensor-name`, by default the host name.
    pub name: &'a str,
    pub hostname: &'a str,
}

/// ECS `service.target`: the policy's name for the service this session reached.
#[derive(Serialize)]
pub struct EcsService<'a> {
    pub target: ServiceTarget<'a>,
}

#[derive(Serialize)]
pub struct ServiceTarget<'a> {
    pub name: &'a str,
}

/// The owner of the policy's service (ECS has no owner field).
#[derive(Serialize)]
pub struct TlstapService<'a> {
    pub owner: &'a str,
}

#[derive(Serialize)]
pub struct Event {
    pub kind: &'static str,
    pub category: [&'static str; 1],
    #[serde(rename = "type")]
    pub kind_type: [&'static str; 1],
    pub dataset: &'static str,
    pub outcome: &'static str,
    pub start: Rfc3339Micros,
    pub end: Rfc3339Micros,
    /// Nanoseconds from first to last packet seen before the record was written.
    pub duration: i64,
}

#[derive(Serialize)]
pub struct Host {
    #[serde(serialize_with = "ip")]
    pub ip: IpAddr,
    pub port: u16,
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Serialize)]
pub struct Network {
    pub transport: &'static str,
    pub protocol: &'static str,
    pub direction: &'static str,
    pub community_id: super::community_id::CommunityId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vlan: Option<Vlan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inner: Option<InnerVlan>,
}

#[derive(Serialize)]
pub struct Vlan {
    #[serde(serialize_with = "display")]
    pub id: u16,
}

#[derive(Serialize)]
pub struct InnerVlan {
    pub vlan: Vlan,
}

#[derive(Serialize)]
pub struct Tls<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_protocol: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher: Option<Label>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curve: Option<Label>,
    pub established: bool,
    pub resumed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_protocol: Option<&'a str>,
    pub client: TlsClient<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<TlsServer<'a>>,
}

/// `tls.client`: fingerprints, SNI, offered suites and the leaf's ECS fields.
pub struct TlsClient<'a> {
    pub ja3: Option<&'a str>,
    pub server_name: Option<&'a str>,
    /// Pre-rendered [`CipherNames`]; None when empty.
    pub supported_ciphers: Option<&'a RawValue>,
    pub certificate: Option<&'a Leaf>,
}

impl Serialize for TlsClient<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if let Some(ja3) = self.ja3 {
            map.serialize_entry("ja3", ja3)?;
        }
        if let Some(name) = self.server_name {
            map.serialize_entry("server_name", name)?;
        }
        if let Some(ciphers) = self.supported_ciphers {
            map.serialize_entry("supported_ciphers", ciphers)?;
        }
        if let Some(leaf) = self.certificate {
            leaf.serialize_entries(&mut map)?;
        }
        map.end()
    }
}

/// `tls.server`: JA3S and the leaf's ECS fields.
pub struct TlsServer<'a> {
    pub ja3s: Option<&'a str>,
    pub certificate: Option<&'a Leaf>,
}

impl Serialize for TlsServer<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if let Some(ja3s) = self.ja3s {
            map.serialize_entry("ja3s", ja3s)?;
        }
        if let Some(leaf) = self.certificate {
            leaf.serialize_entries(&mut map)?;
        }
        map.end()
    }
}

/// Project fields: everything ECS has no name for.
#[derive(Serialize, Default)]
pub struct Tlstap<'a> {
    pub end_reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher_id: Option<Label>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_variant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientFields<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<TlstapServer<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub alerts: &'a [AlertEvent],
    pub hello_retry: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hello_retry_group: Option<Label>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handshake_rtt_us: Option<i64>,
    pub truncated: bool,
    /// TLS 1.3 handshake read with `--keylog` secrets (absent otherwise).
    #[serde(skip_serializing_if = "is_false")]
    pub decrypted: bool,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "display_option"
    )]
    pub parse_error: Option<crate::tls::TlsError>,
    pub midstream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encap: Option<Encap<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<TlstapService<'a>>,
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
    pub client_zone: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_zone: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plaintext: Option<Plaintext<'a>>,
}

/// QUIC facts of a session carried in QUIC.
#[derive(Serialize)]
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
#[derive(Serialize)]
pub struct Plaintext<'a> {
    pub protocol: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub first_line: &'a str,
    pub starttls_offered: bool,
    pub starttls_requested: bool,
}

impl<'a> Plaintext<'a> {
    pub fn new(facts: &'a PlaintextFacts) -> Self {
        Self {
            protocol: facts.protocol.as_str(),
            first_line: &facts.first_line,
            starttls_offered: facts.starttls_offered,
            starttls_requested: facts.starttls_requested,
        }
    }
}

/// `tlstap.client`: rendered once per ClientHello shape when the client sent
/// no certificates (nearly always), else field by field.
pub enum ClientFields<'a> {
    Rendered(&'a RawValue),
    Fields(TlstapClient<'a>),
}

impl Serialize for ClientFields<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ClientFields::Rendered(raw) => raw.serialize(serializer),
            ClientFields::Fields(fields) => fields.serialize(serializer),
        }
    }
}

#[derive(Serialize)]
pub struct TlstapClient<'a> {
    /// The JA3 string whose MD5 is `tls.client.ja3`.
    pub ja3_full: &'a str,
    /// JA4 (FoxIO): ECS has no field for it.
    pub ja4: &'a str,
    /// JA4 with the lists instead of their hashes (`--raw-fingerprints`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja4_r: Option<&'a str>,
    /// The TLS library the JA4 b/c parts identify ("openssl 3.0", "unknown").
    pub stack: &'a str,
    /// What the stack match rests on: "ja4_bc" (both hashes) or "ja4_c".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack_basis: Option<&'static str>,
    pub legacy_version: VersionLabel,
    /// The lists below are rendered once per ClientHello shape ([`VersionLabels`],
    /// [`HexList`], [`GroupNames`]); None when empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offered_versions: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub alpn: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher_ids: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supported_groups: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "GroupNames::is_empty")]
    pub key_share_groups: GroupNames<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature_algorithms: Option<&'a RawValue>,
    pub extensions: &'a [u16],
    pub session_ticket: bool,
    pub psk: bool,
    pub early_data: bool,
    pub ech: bool,
    pub fallback_scsv: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub sslv2_format: bool,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub chain: &'a [&'a RawValue],
}

#[derive(Serialize)]
pub struct TlstapServer<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selected_version: Option<VersionLabel>,
    /// Negotiated compression method (0 = null; anything else is CRIME-prone).
    pub compression_method: u8,
    pub extensions: &'a [u16],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja3s_full: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "sentinel")]
    pub downgrade_sentinel: Option<DowngradeSentinel>,
    pub certificates_encrypted: bool,
    pub certificate_requested: bool,
    pub session_ticket_issued: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dh_prime_bits: Option<u32>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub chain: &'a [&'a RawValue],
    #[serde(skip_serializing_if = "is_zero")]
    pub chain_dropped: usize,
}

fn sentinel<S: Serializer>(value: &Option<DowngradeSentinel>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(DowngradeSentinel::Tls12) => s.serialize_str("tls1.2"),
        Some(DowngradeSentinel::Tls11OrBelow) => s.serialize_str("tls1.1_or_below"),
        None => s.serialize_none(),
    }
}

/// An address as text (see [`AddrText`]).
fn ip<S: Serializer>(value: &IpAddr, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(crate::addr::AddrText::ip(*value).as_str())
}

fn display<T: fmt::Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

fn display_option<T: fmt::Display, S: Serializer>(
    value: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => s.collect_str(value),
        None => s.serialize_none(),
    }
}

impl Serialize for AlertEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("direction", self.direction.as_str())?;
        map.serialize_entry("encrypted", &self.level.is_none())?;
        if let Some(level) = self.level {
            let level = match level {
                1 => "warning",
                2 => "fatal",
                _ => "unknown",
            };
            map.serialize_entry("level", level)?;
        }
        if let Some(code) = self.description {
            map.serialize_entry("description", &Label::alert(code))?;
            map.serialize_entry("code", &code)?;
        }
        map.end()
    }
}

/// A registry value as records write it: its name when known, else a code.
#[derive(Debug, Clone, Copy)]
pub enum Label {
    Name(&'static str),
    /// `0x%04x`
    Hex16(u16),
    /// `0x%06x` (SSL 2.0 cipher specs)
    Hex24(u32),
    /// `unknown-N` (alert descriptions)
    Unknown(u8),
}

impl Label {
    pub fn cipher(id: u16) -> Self {
        names::cipher_suite_name(id).map_or(Self::Hex16(id), Self::Name)
    }

    pub fn group(id: u16) -> Self {
        names::group_name(id).map_or(Self::Hex16(id), Self::Name)
    }

    pub fn sslv2_cipher(spec: u32) -> Self {
        names::sslv2_cipher_name(spec).map_or(Self::Hex24(spec), Self::Name)
    }

    fn alert(code: u8) -> Self {
        names::alert_description_name(code).map_or(Self::Unknown(code), Self::Name)
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Label::Name(name) => f.write_str(name),
            Label::Hex16(value) => write!(f, "0x{value:04x}"),
            Label::Hex24(value) => write!(f, "0x{value:06x}"),
            Label::Unknown(code) => write!(f, "unknown-{code}"),
        }
    }
}

impl Serialize for Label {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Label::Name(name) => serializer.serialize_str(name),
            // Codes are written without the formatting machinery: records
            // carry dozens of them (cipher and group lists).
            Label::Hex16(value) => {
                let mut text = *b"0x0000";
                for (i, shift) in [12, 8, 4, 0].into_iter().enumerate() {
                    text[2 + i] = HEX_LOWER[usize::from((value >> shift) & 0xf)];
                }
                serializer.serialize_str(std::str::from_utf8(&text).unwrap_or("0x????"))
            }
            _ => serializer.collect_str(self),
        }
    }
}

const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

/// A protocol version code as records write it: "tls1.2", "dtls1.0",
/// "grease-0x0a0a", or the code in hex (drafts, unknown values).
#[derive(Debug, Clone, Copy)]
pub struct VersionLabel(pub u16);

impl fmt::Display for VersionLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let version = ProtocolVersion(self.0);
        // Drafts and experiments (0x7e00..=0x7fff) have a variant name: hex here.
        let variant = matches!(self.0, 0x7e00..=0x7fff);
        match (version.ecs_protocol(), version.ecs_version()) {
            _ if version.is_grease() => write!(f, "grease-0x{:04x}", self.0),
            (Some(protocol), Some(number)) if !variant => write!(f, "{protocol}{number}"),
            _ => write!(f, "0x{:04x}", self.0),
        }
    }
}

impl Serialize for VersionLabel {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// `[VersionLabel]` over a list of codes.
#[derive(Clone, Copy)]
pub struct VersionLabels<'a>(pub &'a [u16]);

impl Serialize for VersionLabels<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|&v| VersionLabel(v)))
    }
}

/// Codes as `0x%04x` strings.
#[derive(Clone, Copy)]
pub struct HexList<'a>(pub &'a [u16]);

impl Serialize for HexList<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|&v| Label::Hex16(v)))
    }
}

/// Named groups by name (or code).
#[derive(Clone, Copy)]
pub struct GroupNames<'a>(pub &'a [u16]);

impl GroupNames<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for GroupNames<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|&v| Label::group(v)))
    }
}

/// ECS `tls.client.supported_ciphers`: the offered suites by name, GREASE left out.
#[derive(Clone, Copy)]
pub struct CipherNames<'a>(pub &'a [u16]);

impl CipherNames<'_> {
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&c| is_grease(c))
    }
}

impl Serialize for CipherNames<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(None)?;
        for &cipher in self.0.iter().filter(|&&c| !is_grease(c)) {
            seq.serialize_element(&Label::cipher(cipher))?;
        }
        seq.end()
    }
}

/// `tlstap.encap`: the tunnel path, outermost first.
#[derive(Clone, Copy)]
pub struct Encap<'a>(pub &'a crate::decode::EncapPath);

impl Serialize for Encap<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(None)?;
        for layer in self.0.iter() {
            seq.serialize_element(&DisplayStr(layer))?;
        }
        seq.end()
    }
}

struct DisplayStr<T>(T);

impl<T: fmt::Display> Serialize for DisplayStr<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

#[cfg(test)]
mod ip_tests {
    use super::*;

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        // The text itself is AddrText's (its tests cover the forms): here, the quoting.
        for text in ["10.1.0.20", "2001:db8::1"] {
            let address: IpAddr = text.parse().expect("address");
            let mut out = Vec::new();
            ip(&address, &mut serde_json::Serializer::new(&mut out)).expect("serialise");
            assert_eq!(out, format!("\"{address}\"").into_bytes());
        }
    }
}
