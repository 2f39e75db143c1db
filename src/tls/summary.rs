//! Owned results of a parsed handshake: the only TLS types other modules see.
//!
//! tls-parser's borrowed message types stop at this boundary; everything here is
//! plain data, so fingerprints, policy and output are pure functions of it.

use crate::time::PacketTime;
use crate::x509::CertificateSummary;

/// Which way bytes travel, once the ClientHello has named the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    ToServer,
    ToClient,
}

impl Direction {
    pub fn index(self) -> usize {
        match self {
            Direction::ToServer => 0,
            Direction::ToClient => 1,
        }
    }

    pub fn reverse(self) -> Self {
        match self {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::ToServer => "to_server",
            Direction::ToClient => "to_client",
        }
    }
}

/// A protocol version as on the wire (`0x0303` = TLS 1.2, `0x0002` = SSL 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProtocolVersion(pub u16);

impl ProtocolVersion {
    pub const SSL2: Self = Self(0x0002);
    pub const SSL3: Self = Self(0x0300);
    pub const TLS10: Self = Self(0x0301);
    pub const TLS11: Self = Self(0x0302);
    pub const TLS12: Self = Self(0x0303);
    pub const TLS13: Self = Self(0x0304);
    pub const DTLS10: Self = Self(0xfeff);
    pub const DTLS12: Self = Self(0xfefd);
    pub const DTLS13: Self = Self(0xfefc);

    /// GREASE values (RFC 8701) are never a real version.
    pub fn is_grease(self) -> bool {
        is_grease(self.0)
    }

    /// The released TLS version this wire value stands for: TLS 1.3 drafts
    /// (0x7fNN) and Google's experiments (0x7eNN) count as TLS 1.3, and each
    /// DTLS version as the TLS version it was derived from (DTLS 1.0 is TLS 1.1,
    /// RFC 4347), so the policy judges both alike.
    pub fn normalized(self) -> Option<Self> {
        match self.0 {
            0x0002 | 0x0300..=0x0304 => Some(self),
            0x7e00..=0x7fff => Some(Self::TLS13),
            0xfeff => Some(Self::TLS11),
            0xfefd => Some(Self::TLS12),
            0xfefc => Some(Self::TLS13),
            _ => None,
        }
    }

    pub fn is_dtls(self) -> bool {
        matches!(self.0, 0xfefc..=0xfeff)
    }

    /// ECS `tls.version` text: "1.3", "1.2", "1.1", "1.0", "3.0" (SSL 3), "2.0" (SSL 2);
    /// a DTLS version keeps its own number ("1.0" for DTLS 1.0).
    pub fn ecs_version(self) -> Option<&'static str> {
        if self == Self::DTLS10 {
            return Some("1.0");
        }
        Some(match self.normalized()?.0 {
            0x0002 => "2.0",
            0x0300 => "3.0",
            0x0301 => "1.0",
            0x0302 => "1.1",
            0x0303 => "1.2",
            _ => "1.3",
        })
    }

    /// ECS `tls.version_protocol`: "ssl", "tls" or "dtls".
    pub fn ecs_protocol(self) -> Option<&'static str> {
        if self.is_dtls() {
            return Some("dtls");
        }
        Some(match self.normalized()?.0 {
            0x0002 | 0x0300 => "ssl",
            _ => "tls",
        })
    }

    /// Pre-standard TLS 1.3 variants (drafts, experiments), for the record.
    pub fn variant(self) -> Option<String> {
        match self.0 {
            0x7f00..=0x7fff => Some(format!("draft-{}", self.0 & 0xff)),
            0x7e00..=0x7eff => Some(format!("experiment-{:#06x}", self.0)),
            _ => None,
        }
    }
}

/// RFC 8701 GREASE: 0x?A?A with both bytes equal.
pub fn is_grease(value: u16) -> bool {
    value & 0x0f0f == 0x0a0a && value >> 8 == value & 0xff
}

/// What the client offered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientHelloSummary {
    pub time: PacketTime,
    pub record_version: u16,
    pub legacy_version: u16,
    /// Names the session in a key log (NSS format is keyed by client random).
    pub random: [u8; 32],
    pub session_id: Vec<u8>,
    pub cipher_suites: Vec<u16>,
    pub compression_methods: Vec<u8>,
    /// Extension types in wire order, GREASE included (fingerprints filter it).
    pub extensions: Vec<u16>,
    pub server_name: Option<String>,
    /// ALPN protocol names for display (invalid UTF-8 becomes U+FFFD).
    pub alpn: Vec<String>,
    /// The first ALPN protocol name as sent, for JA4, which reads its bytes
    /// (`alpn` cannot give them back); empty without ALPN.
    pub alpn_first_raw: Vec<u8>,
    pub supported_versions: Vec<u16>,
    pub supported_groups: Vec<u16>,
    pub ec_point_formats: Vec<u8>,
    pub key_share_groups: Vec<u16>,
    pub signature_algorithms: Vec<u16>,
    pub session_ticket: bool,
    pub psk: bool,
    pub early_data: bool,
    pub ech: bool,
    pub fallback_scsv: bool,
    /// Sent in the SSL 2.0-compatible record format.
    pub sslv2_format: bool,
    /// SSL 2.0 cipher specs that have no TLS equivalent (3-byte values).
    pub sslv2_cipher_specs: Vec<u32>,
}

impl ClientHelloSummary {
    /// Highest real version offered: `supported_versions` when present, else legacy.
    pub fn highest_offered(&self) -> ProtocolVersion {
        self.supported_versions
            .iter()
            .map(|&v| ProtocolVersion(v))
            .filter(|v| !v.is_grease())
            .filter_map(ProtocolVersion::normalized)
            .max()
            .unwrap_or(ProtocolVersion(self.legacy_version))
    }
}

/// TLS 1.3 downgrade protection (RFC 8446 §4.1.3): the last 8 bytes of the
/// ServerHello random when a 1.3-capable server negotiated lower.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DowngradeSentinel {
    /// "DOWNGRD\x01": negotiated TLS 1.2.
    Tls12,
    /// "DOWNGRD\x00": negotiated TLS 1.1 or below.
    Tls11OrBelow,
}

/// What the server chose.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerHelloSummary {
    pub time: PacketTime,
    pub legacy_version: u16,
    /// From `supported_versions` (TLS 1.3).
    pub selected_version: Option<u16>,
    pub random: Vec<u8>,
    pub session_id: Vec<u8>,
    pub cipher_suite: u16,
    /// SSL 2.0 servers choose a 3-byte cipher spec instead of a suite.
    pub sslv2_cipher_spec: Option<u32>,
    pub compression_method: u8,
    pub extensions: Vec<u16>,
    pub alpn: Option<String>,
    pub key_share_group: Option<u16>,
    pub psk_selected: bool,
    pub downgrade_sentinel: Option<DowngradeSentinel>,
    pub extended_master_secret: bool,
    pub session_ticket: bool,
}

impl ServerHelloSummary {
    pub fn version(&self) -> ProtocolVersion {
        ProtocolVersion(self.selected_version.unwrap_or(self.legacy_version))
    }
}

/// A plaintext alert, or an encrypted one whose content is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertEvent {
    pub time: PacketTime,
    pub direction: Direction,
    /// None when the alert was encrypted.
    pub level: Option<u8>,
    pub description: Option<u8>,
}

impl AlertEvent {
    pub fn is_fatal(&self) -> bool {
        self.level == Some(2)
    }
}

/// One certificate as sent, with its summary (or why it did not parse),
/// shared with the worker's certificate cache.
pub type ChainEntry = std::sync::Arc<crate::x509::Certificate>;

/// A certificate chain in message order, leaf first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chain {
    pub certificates: Vec<ChainEntry>,
    /// Certificates beyond the per-chain cap that were not kept.
    pub dropped: usize,
}

impl Chain {
    pub fn is_empty(&self) -> bool {
        self.certificates.is_empty()
    }

    pub fn leaf(&self) -> Option<&CertificateSummary> {
        self.certificates
            .first()
            .and_then(|entry| entry.summary.as_ref().ok())
    }
}

/// Why the session ended, i.e. why the record was written when it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Both sides finished the handshake (or it failed with a fatal alert).
    HandshakeDone,
    FatalAlert,
    /// A handshake byte cap was hit.
    Truncated,
    /// The bytes stopped making sense as TLS.
    ParseError,
    ConnectionClosed,
    ConnectionReset,
    IdleTimeout,
    /// The flow table was full and this flow was the oldest.
    Evicted,
    /// The input ended (offline) or the sensor stopped (live).
    EndOfCapture,
    /// Dropped to stay under the memory cap (`--memcap`): a stalled
    /// handshake shed in emergency mode, or one whose growth did not fit.
    MemoryPressure,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::HandshakeDone => "handshake_done",
            EndReason::FatalAlert => "fatal_alert",
            EndReason::Truncated => "truncated",
            EndReason::ParseError => "parse_error",
            EndReason::ConnectionClosed => "closed",
            EndReason::ConnectionReset => "reset",
            EndReason::IdleTimeout => "idle_timeout",
            EndReason::Evicted => "evicted",
            EndReason::EndOfCapture => "end_of_capture",
            EndReason::MemoryPressure => "memory_pressure",
        }
    }
}

/// Everything learnt from one TLS handshake.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HandshakeSummary {
    /// True when the ClientHello came from the side that did not open the connection.
    pub roles_swapped: bool,
    // The hellos are boxed: a flow mid-handshake holds this summary, and
    // most of its size would otherwise be hellos not yet seen.
    pub client_hello: Option<Box<ClientHelloSummary>>,
    /// The ClientHello sent after a HelloRetryRequest.
    pub retry_client_hello: Option<Box<ClientHelloSummary>>,
    pub server_hello: Option<Box<ServerHelloSummary>>,
    pub hello_retry: bool,
    /// DTLS cookie exchange (HelloVerifyRequest) before the real handshake.
    pub hello_verify: bool,
    /// What carried the handshake (TCP, QUIC or DTLS), for JA4's first character.
    pub carrier: super::fingerprint::Carrier,
    /// Group the HelloRetryRequest asked for.
    pub hello_retry_group: Option<u16>,
    pub server_chain: Chain,
    pub client_chain: Chain,
    /// TLS 1.3: certificates travel encrypted and cannot be observed.
    pub certificates_encrypted: bool,
    pub certificate_requested: bool,
    /// Named group from a TLS ≤ 1.2 ECDHE ServerKeyExchange.
    pub server_key_exchange_group: Option<u16>,
    /// Prime size of a TLS ≤ 1.2 DHE ServerKeyExchange.
    pub dh_prime_bits: Option<u32>,
    pub alerts: Vec<AlertEvent>,
    pub change_cipher_spec: [bool; 2],
    pub established: bool,
    pub resumed: bool,
    pub session_ticket_issued: bool,
    pub heartbeat_records: [u32; 2],
    pub application_records: [u32; 2],
    /// The handshake parser gave up; the reason is in `parse_error`.
    pub parse_error: Option<super::TlsError>,
    /// A cap cut the handshake short.
    pub truncated: bool,
    /// TLS 1.3: the encrypted handshake was read with secrets from a key log.
    pub decrypted: bool,
    /// TLS 1.3, decrypted: the client's Finished was read (it went on with
    /// the server it was shown).
    pub client_finished: bool,
    /// TLS 1.3: sizes and times of the encrypted records around the client's
    /// answer to the server's flight, for inference without keys.
    pub encrypted_flight: EncryptedFlight,
}

/// TLS 1.3 encrypted records seen after the ServerHello, up to the client's
/// first one (RFC 8446 §5.2: the ciphertext is content + 1 type byte + 16-byte tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EncryptedFlight {
    /// The server's encrypted records before the client's first.
    pub server_records: u32,
    pub server_bytes: u64,
    pub server_last: Option<PacketTime>,
    /// Ciphertext length of the client's first encrypted record.
    pub client_first_length: Option<u16>,
    pub client_first_time: Option<PacketTime>,
    /// The client's encrypted records, the first included.
    pub client_records: u32,
}

impl EncryptedFlight {
    /// Ciphertext of a 2-byte alert with its inner type and an AES-GCM or
    /// ChaCha20-Poly1305 tag, unpadded (the default of OpenSSL, rustls, Go, NSS).
    pub const ALERT_LENGTH: u16 = 2 + 1 + 16;

    /// The client's first encrypted record has the size of an alert: no
    /// Finished (53 or 69 bytes) or Certificate is that small.
    pub fn client_answered_with_alert(&self) -> bool {
        self.server_records > 0 && self.client_first_length == Some(Self::ALERT_LENGTH)
    }
}

impl HandshakeSummary {
    /// Heap bytes held by a summary in flight, for the memory cap. The
    /// certificates themselves live in the worker's certificate cache and
    /// are charged there; a chain entry costs its slot here.
    pub fn heap_bytes(&self) -> usize {
        fn client(hello: &ClientHelloSummary) -> usize {
            std::mem::size_of::<ClientHelloSummary>()
                + hello.session_id.capacity()
                + hello.cipher_suites.capacity() * 2
                + hello.compression_methods.capacity()
                + hello.extensions.capacity() * 2
                + hello.server_name.as_ref().map_or(0, String::capacity)
                + hello.alpn.iter().map(|a| a.capacity() + 24).sum::<usize>()
                + hello.alpn_first_raw.capacity()
                + hello.supported_versions.capacity() * 2
                + hello.supported_groups.capacity() * 2
                + hello.ec_point_formats.capacity()
                + hello.key_share_groups.capacity() * 2
                + hello.signature_algorithms.capacity() * 2
                + hello.sslv2_cipher_specs.capacity() * 4
        }
        let server = self.server_hello.as_deref().map_or(0, |hello| {
            std::mem::size_of::<ServerHelloSummary>()
                + hello.random.capacity()
                + hello.session_id.capacity()
                + hello.extensions.capacity() * 2
                + hello.alpn.as_ref().map_or(0, String::capacity)
        });
        self.client_hello.as_deref().map_or(0, client)
            + self.retry_client_hello.as_deref().map_or(0, client)
            + server
            + (self.server_chain.certificates.capacity()
                + self.client_chain.certificates.capacity())
                * std::mem::size_of::<ChainEntry>()
            + self.alerts.capacity() * std::mem::size_of::<AlertEvent>()
    }

    /// The negotiated version, from the ServerHello.
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.server_hello
            .as_deref()
            .map(ServerHelloSummary::version)
    }

    /// ECS `tls.curve`: the TLS 1.3 key share group, else the ECDHE group.
    pub fn curve(&self) -> Option<u16> {
        self.server_hello
            .as_ref()
            .and_then(|sh| sh.key_share_group)
            .or(self.server_key_exchange_group)
    }
}
