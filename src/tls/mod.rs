//! TLS handshake analysis: reassembled bytes per direction in, one owned
//! [`HandshakeSummary`] out.
//!
//! `flow` feeds each direction's in-order bytes to a [`Session`] as TCP delivers
//! them. The session frames records (RFC 5246 §6.2, RFC 8446 §5), joins handshake
//! messages split across records, parses them with tls-parser, and stops once the
//! handshake is over: established, failed, or cut off by a cap. It never judges
//! (that is `policy`) and never formats (that is `output`). Bounds: [`TlsLimits`].

mod decrypt;
pub mod dtls;
pub mod fingerprint;
mod hello;
pub mod keylog;
pub mod names;
pub mod plaintext;
pub mod quic;
mod session;
pub mod sslv2;
pub mod summary;

pub use crate::x509::{CacheCounters as CertificateCacheCounters, CacheLimits, CertificateCache};
pub use hello::HELLO_RETRY_RANDOM;
pub use session::{Session, Verdict};
pub use summary::*;

/// Caps on what one session may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsLimits {
    /// Handshake bytes accepted per direction before the session is cut off
    /// and reported with `truncated`.
    pub max_handshake_bytes: usize,
    /// Largest single handshake message accepted (a certificate chain is one message).
    pub max_message_length: usize,
    /// Certificates kept per chain; the rest are counted in `Chain::dropped`.
    pub max_chain_certificates: usize,
    /// Alerts kept per session.
    pub max_alerts: usize,
}

impl Default for TlsLimits {
    fn default() -> Self {
        Self {
            max_handshake_bytes: 64 * 1024,
            max_message_length: 64 * 1024,
            max_chain_certificates: 16,
            max_alerts: 8,
        }
    }
}

/// Why a session's bytes stopped being parsed. Counted, never logged per packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TlsError {
    #[error("record header is not TLS")]
    BadRecordHeader,
    #[error("record longer than TLS allows")]
    RecordTooLong,
    #[error("handshake message does not parse")]
    BadHandshakeMessage,
    #[error("handshake message larger than the cap")]
    MessageTooLong,
    #[error("handshake bytes exceeded the per-direction cap")]
    HandshakeTooLong,
    #[error("SSL 2.0 record does not parse")]
    BadSslv2Record,
}

/// Per-worker TLS counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub sessions_started: u64,
    pub sessions_not_tls: u64,
    pub sessions_midstream: u64,
    pub records_parsed: u64,
    pub messages_parsed: u64,
    pub messages_malformed: u64,
    pub records_malformed: u64,
    pub handshakes_truncated: u64,
    pub certificates_dropped: u64,
    pub alerts_dropped: u64,
    /// TLS 1.3 handshakes read with key-log secrets.
    pub handshakes_decrypted: u64,
    /// TLS 1.3 handshakes seen with `--keylog` whose secrets were not logged
    /// (or whose suite tlstap cannot read).
    pub handshakes_keys_missing: u64,
    pub records_decrypted: u64,
    pub records_decrypt_failed: u64,
}

impl Counters {
    pub fn add(&mut self, other: &Counters) {
        self.sessions_started += other.sessions_started;
        self.sessions_not_tls += other.sessions_not_tls;
        self.sessions_midstream += other.sessions_midstream;
        self.records_parsed += other.records_parsed;
        self.messages_parsed += other.messages_parsed;
        self.messages_malformed += other.messages_malformed;
        self.records_malformed += other.records_malformed;
        self.handshakes_truncated += other.handshakes_truncated;
        self.certificates_dropped += other.certificates_dropped;
        self.alerts_dropped += other.alerts_dropped;
        self.handshakes_decrypted += other.handshakes_decrypted;
        self.handshakes_keys_missing += other.handshakes_keys_missing;
        self.records_decrypted += other.records_decrypted;
        self.records_decrypt_failed += other.records_decrypt_failed;
    }
}

/// First bytes of a TLS record carrying a ClientHello, or of an SSL 2.0-format
/// ClientHello: how content, not the port, tells that a stream is TLS.
pub fn starts_like_client_hello(bytes: &[u8]) -> bool {
    match bytes {
        [0x16, 0x03, 0x00..=0x04, _, _, 0x01, ..] => true,
        _ => sslv2::looks_like_client_hello(bytes),
    }
}

/// First bytes of any TLS record (mid-stream pickup of an existing session).
pub fn starts_like_tls_record(bytes: &[u8]) -> bool {
    matches!(bytes, [0x14..=0x18, 0x03, 0x00..=0x04, ..])
}
