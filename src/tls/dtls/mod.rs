//! DTLS record layer and handshake reassembly (DTLS 1.0 RFC 4347, 1.2 RFC 6347,
//! 1.3 RFC 9147): UDP payloads in, TLS-form records out.
//!
//! `flow` owns one [`DtlsStream`] per direction of a UDP flow (or one
//! [`DtlsConnection`]) and hands it every datagram. The stream splits the
//! datagram into records and pushes [`DtlsEvent`]s into a caller-supplied sink,
//! shaped so the TLS handshake parser can consume them unchanged:
//!
//! - plaintext handshake records become one `Record` per handshake message, in
//!   `message_seq` order, each exactly once, in TLS form (4-byte header instead
//!   of DTLS's 12), reassembled from fragments; a ClientHello loses its `cookie`
//!   so it has the TLS ClientHello layout;
//! - a HelloVerifyRequest becomes its own event and is not passed on;
//! - epoch > 0 records and DTLS 1.3 unified-header records are reported as
//!   encrypted records, so the consumer can count CCS, Finished and application
//!   data per direction.
//!
//! Two DTLS details reach the consumer: versions stay DTLS values (0xfeff,
//! 0xfefd; [`to_tls_version`] maps them for code that expects major version 3),
//! and tls-parser's TLS ServerHello parser rejects DTLS versions, so ServerHellos
//! are read with [`parse_server_hello`]. ClientHellos parse as TLS unchanged.
//!
//! Bounds: [`DtlsLimits`]; everything beyond a cap is dropped and counted in
//! [`DtlsCounters`], and [`DtlsStream::is_truncated`] says the handshake will not
//! complete. Every byte is attacker-controlled: no accessor here panics.
//!
//! Parts: `record.rs` frames records (plaintext and unified headers),
//! `handshake.rs` reassembles messages and rewrites them to TLS form,
//! `session.rs` holds the per-direction state the other two work on.

mod handshake;
mod record;
mod session;
#[cfg(test)]
mod tests;

pub use handshake::parse_server_hello;
pub use session::{DtlsConnection, DtlsStream};

use handshake::HandshakeView;
use record::RecordView;

/// DTLS 1.0 wire version (RFC 4347 §4.1).
pub const DTLS10: u16 = 0xfeff;
/// DTLS 1.2 wire version (RFC 6347 §4.1); DTLS 1.3 records carry it too.
pub const DTLS12: u16 = 0xfefd;
/// DTLS 1.3 version, seen only in `supported_versions` (RFC 9147 §5.3).
pub const DTLS13: u16 = 0xfefc;
/// Version reported for DTLS 1.3 unified-header records, which carry none.
pub const UNIFIED_HEADER_VERSION: u16 = DTLS13;

const CONTENT_CHANGE_CIPHER_SPEC: u8 = 20;
const CONTENT_HANDSHAKE: u8 = 22;
const CONTENT_APPLICATION_DATA: u8 = 23;
/// RFC 9146: DTLS 1.2 record with a connection id of negotiated (unknown) length.
const CONTENT_TLS12_CID: u8 = 25;
/// RFC 9147 §7: DTLS 1.3 ACK.
const CONTENT_ACK: u8 = 26;

const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const HANDSHAKE_SERVER_HELLO: u8 = 2;
const HANDSHAKE_HELLO_VERIFY_REQUEST: u8 = 3;

/// Caps on what one direction may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtlsLimits {
    /// Largest handshake message accepted (a certificate chain is one message).
    pub max_message_length: usize,
    /// Incomplete or out-of-order messages held at once.
    pub max_pending_messages: usize,
    /// Disjoint received ranges tracked per message; more means a hostile
    /// fragmentation pattern.
    pub max_fragments_per_message: usize,
    /// Bytes held for pending messages (sum of their announced lengths).
    pub max_buffered_bytes: usize,
}

impl Default for DtlsLimits {
    fn default() -> Self {
        Self {
            max_message_length: 64 * 1024,
            max_pending_messages: 32,
            max_fragments_per_message: 32,
            max_buffered_bytes: 128 * 1024,
        }
    }
}

/// Per-worker DTLS counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DtlsCounters {
    pub records_parsed: u64,
    pub records_encrypted: u64,
    /// DTLS 1.3 records with the unified header (RFC 9147 §4); also in `records_encrypted`.
    pub records_unified_header: u64,
    pub records_malformed: u64,
    pub records_ack_skipped: u64,
    /// Datagrams whose remaining records were abandoned because a connection id
    /// of unknown length made the next header unreadable.
    pub records_connection_id_unparsed: u64,
    pub fragments_received: u64,
    /// Fragments of a message already delivered (retransmissions).
    pub fragments_duplicate: u64,
    /// Fragments whose type or length disagree with earlier ones, or that
    /// overrun their message.
    pub fragments_malformed: u64,
    pub fragments_dropped_over_cap: u64,
    pub messages_too_long: u64,
    pub messages_delivered: u64,
    /// Delivered messages that arrived in more than one fragment or out of order.
    pub messages_reassembled: u64,
    /// ClientHellos whose cookie could not be located; passed on unchanged.
    pub messages_malformed: u64,
    pub hello_verify_requests: u64,
    pub client_hellos_repeated: u64,
}

impl DtlsCounters {
    pub fn add(&mut self, other: &Self) {
        self.records_parsed += other.records_parsed;
        self.records_encrypted += other.records_encrypted;
        self.records_unified_header += other.records_unified_header;
        self.records_malformed += other.records_malformed;
        self.records_ack_skipped += other.records_ack_skipped;
        self.records_connection_id_unparsed += other.records_connection_id_unparsed;
        self.fragments_received += other.fragments_received;
        self.fragments_duplicate += other.fragments_duplicate;
        self.fragments_malformed += other.fragments_malformed;
        self.fragments_dropped_over_cap += other.fragments_dropped_over_cap;
        self.messages_too_long += other.messages_too_long;
        self.messages_delivered += other.messages_delivered;
        self.messages_reassembled += other.messages_reassembled;
        self.messages_malformed += other.messages_malformed;
        self.hello_verify_requests += other.hello_verify_requests;
        self.client_hellos_repeated += other.client_hellos_repeated;
    }
}

/// What a datagram yields, in wire order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsEvent<'a> {
    /// A record in TLS terms. For plaintext handshake content `body` is exactly
    /// one whole handshake message in TLS form (type, 3-byte length, body). For
    /// `encrypted` records `body` is ciphertext: count it, never parse it.
    /// `version` is the record's wire version ([`DTLS10`], [`DTLS12`]), or
    /// [`UNIFIED_HEADER_VERSION`] for DTLS 1.3 ciphertext; see [`to_tls_version`].
    Record {
        content_type: u8,
        version: u16,
        body: &'a [u8],
        encrypted: bool,
    },
    /// The server asked for a cookie exchange (RFC 6347 §4.2.1). The message
    /// itself is not passed on: TLS has no such message.
    HelloVerifyRequest {
        server_version: u16,
        cookie_len: usize,
    },
    /// The `Record` right after this event carries a further ClientHello of the
    /// same handshake: the answer to a HelloVerifyRequest (RFC 6347 §4.2.1,
    /// cookie non-empty) or to a HelloRetryRequest (RFC 9147 §5.1, cookie in an
    /// extension). For ≤ 1.2 it is the ClientHello the server negotiates on.
    ClientHelloRepeated { message_seq: u16, cookie_len: usize },
}

/// Wire version name, for records and logs.
pub fn version_name(version: u16) -> Option<&'static str> {
    match version {
        DTLS10 => Some("DTLS 1.0"),
        DTLS12 => Some("DTLS 1.2"),
        DTLS13 => Some("DTLS 1.3"),
        _ => None,
    }
}

/// The TLS version a DTLS version is derived from: DTLS 1.0 is TLS 1.1
/// (RFC 4347 §1), 1.2 is TLS 1.2, 1.3 is TLS 1.3. Lets the TLS session parser,
/// which checks for major version 3, take DTLS records.
pub fn to_tls_version(version: u16) -> Option<u16> {
    match version {
        DTLS10 => Some(0x0302),
        DTLS12 => Some(0x0303),
        DTLS13 => Some(0x0304),
        _ => None,
    }
}

/// Content test for the first datagram of a UDP flow: an epoch-0 DTLS
/// handshake record whose first message is the start of a ClientHello.
/// Records carry 0xfeff or 0xfefd only (RFC 9147 §5.1 keeps 0xfefd for 1.3).
pub fn looks_like_client_hello(datagram: &[u8]) -> bool {
    let Some(record) = datagram.get(..RecordView::LENGTH) else {
        return false;
    };
    let header_ok = matches!(
        record,
        [
            CONTENT_HANDSHAKE,
            0xfe,
            0xff | 0xfd,
            0,
            0,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _
        ]
    );
    let Some(rest) = datagram.get(RecordView::LENGTH..) else {
        return false;
    };
    header_ok
        && HandshakeView::new(rest).is_some_and(|message| {
            message.msg_type() == HANDSHAKE_CLIENT_HELLO && message.fragment_offset() == 0
        })
}
