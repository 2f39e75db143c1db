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

use tls_parser::parse_dtls_record_header;

use super::summary::Direction;

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

/// RFC 6347 §4.1: 2^14 plus the TLS 1.2 ciphertext expansion allowance.
const MAX_RECORD_LENGTH: usize = (1 << 14) + 2048;
/// A scratch buffer larger than this is freed after use, so idle flows stay small.
const SCRATCH_KEEP: usize = 4096;

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

/// DTLSPlaintext header (RFC 6347 §4.1): type, version, epoch, 48-bit sequence
/// number, length. Parsed with tls-parser; this only names the fixed size.
struct RecordView;

impl RecordView {
    const LENGTH: usize = 13;
}

/// DTLS handshake header (RFC 6347 §4.2.2). `new` proves the 12 fixed bytes;
/// `fragment` is checked separately because it may overrun the record.
///
/// Not tls-parser's `parse_dtls_message_handshake`: it rejects unfragmented
/// messages of types it has no body parser for (ServerKeyExchange, ...), and we
/// only need the header.
#[derive(Clone, Copy, Debug)]
struct HandshakeView<'a> {
    bytes: &'a [u8],
}

mod field {
    pub const MSG_TYPE: usize = 0;
    pub const LENGTH: std::ops::Range<usize> = 1..4;
    pub const MESSAGE_SEQ: std::ops::Range<usize> = 4..6;
    pub const FRAGMENT_OFFSET: std::ops::Range<usize> = 6..9;
    pub const FRAGMENT_LENGTH: std::ops::Range<usize> = 9..12;
    pub const HEADER_LENGTH: usize = 12;
}

fn read_u24(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .take(3)
        .fold(0, |value, &byte| (value << 8) | usize::from(byte))
}

impl<'a> HandshakeView<'a> {
    fn new(bytes: &'a [u8]) -> Option<Self> {
        (bytes.len() >= field::HEADER_LENGTH).then_some(Self { bytes })
    }
    fn msg_type(&self) -> u8 {
        self.bytes[field::MSG_TYPE]
    }
    fn length(&self) -> usize {
        read_u24(&self.bytes[field::LENGTH])
    }
    fn message_seq(&self) -> u16 {
        let seq = &self.bytes[field::MESSAGE_SEQ];
        u16::from_be_bytes([seq[0], seq[1]])
    }
    fn fragment_offset(&self) -> usize {
        read_u24(&self.bytes[field::FRAGMENT_OFFSET])
    }
    fn fragment_length(&self) -> usize {
        read_u24(&self.bytes[field::FRAGMENT_LENGTH])
    }
    /// The fragment bytes, or None if the record is shorter than announced.
    fn fragment(&self) -> Option<&'a [u8]> {
        let end = field::HEADER_LENGTH.checked_add(self.fragment_length())?;
        self.bytes.get(field::HEADER_LENGTH..end)
    }
}

/// A message being reassembled.
#[derive(Debug)]
struct Pending {
    message_seq: u16,
    msg_type: u8,
    body: Vec<u8>,
    /// Received byte ranges, sorted, disjoint and not adjacent.
    covered: Vec<(usize, usize)>,
    fragments: u32,
}

impl Pending {
    fn is_complete(&self) -> bool {
        self.covered.as_slice() == [(0, self.body.len())] || self.body.is_empty()
    }

    /// Copies the parts of `fragment` at `offset` not yet received. First copy
    /// wins on overlap, as most stacks do. Returns false (and changes nothing)
    /// if the new range would exceed `max_ranges`.
    fn insert(&mut self, offset: usize, fragment: &[u8], max_ranges: usize) -> bool {
        let start = offset;
        let end = offset + fragment.len();
        if start == end {
            return true;
        }
        // Ranges overlapping or touching [start, end) merge into one.
        let first = self.covered.partition_point(|&(_, e)| e < start);
        let last = self.covered.partition_point(|&(s, _)| s <= end);
        if first == last && self.covered.len() >= max_ranges {
            return false;
        }
        let mut cursor = start;
        for &(s, e) in self.covered.get(first..last).unwrap_or_default() {
            if s > cursor {
                copy_range(&mut self.body, cursor..s, offset, fragment);
            }
            cursor = cursor.max(e);
        }
        if cursor < end {
            copy_range(&mut self.body, cursor..end, offset, fragment);
        }
        let merged_start = self
            .covered
            .get(first)
            .map_or(start, |&(s, _)| s.min(start));
        let merged_end = if last > first {
            self.covered.get(last - 1).map_or(end, |&(_, e)| e.max(end))
        } else {
            end
        };
        self.covered
            .splice(first..last, std::iter::once((merged_start, merged_end)));
        true
    }
}

/// Copies message bytes `range` from `fragment`, which starts at `offset`.
fn copy_range(body: &mut [u8], range: std::ops::Range<usize>, offset: usize, fragment: &[u8]) {
    let source = range.start.saturating_sub(offset)..range.end.saturating_sub(offset);
    if let (Some(target), Some(source)) = (body.get_mut(range), fragment.get(source)) {
        target.copy_from_slice(source);
    }
}

/// One direction of a DTLS flow: record framing and handshake reassembly.
#[derive(Debug)]
pub struct DtlsStream {
    limits: DtlsLimits,
    /// The next `message_seq` to deliver. Set by the first hello seen
    /// (ClientHello, ServerHello or HelloVerifyRequest open a side's first
    /// flight), not by the first fragment: that may be a reordered later
    /// message, and a capture may start after the cookie exchange (seq 1).
    next_seq: Option<u32>,
    pending: Vec<Pending>,
    buffered: usize,
    client_hellos: u32,
    /// A message was dropped at a cap: the handshake will not complete here.
    truncated: bool,
    /// Holds a message while it is rewritten to TLS form.
    scratch: Vec<u8>,
}

impl DtlsStream {
    pub fn new(limits: DtlsLimits) -> Self {
        Self {
            limits,
            next_seq: None,
            pending: Vec::new(),
            buffered: 0,
            client_hellos: 0,
            truncated: false,
            scratch: Vec::new(),
        }
    }

    /// Bytes held for incomplete or out-of-order messages; never above
    /// `max_buffered_bytes`.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// Whether a handshake message was dropped at a cap (too long, too many
    /// held, too many bytes held, too fragmented). Messages after it wait for it
    /// and never arrive, so the consumer should report the session truncated.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// Splits one UDP payload into records and reports them through `out`.
    /// Returns false if the datagram does not start with a DTLS record (the
    /// flow is something else); a malformed record later in a datagram only
    /// stops parsing that datagram and is counted.
    pub fn on_datagram(
        &mut self,
        datagram: &[u8],
        counters: &mut DtlsCounters,
        out: &mut dyn FnMut(DtlsEvent<'_>),
    ) -> bool {
        let mut rest = datagram;
        let mut first = true;
        while let Some(&head) = rest.first() {
            // RFC 9147 §4.1 demultiplexing: 0b001xxxxx is a unified header.
            if head & 0xe0 == 0x20 {
                match unified_record_length(rest) {
                    UnifiedLength::Record { total, header } => {
                        let Some(record) = rest.get(..total) else {
                            counters.records_malformed += 1;
                            return true;
                        };
                        counters.records_parsed += 1;
                        counters.records_encrypted += 1;
                        counters.records_unified_header += 1;
                        out(DtlsEvent::Record {
                            content_type: CONTENT_APPLICATION_DATA,
                            version: UNIFIED_HEADER_VERSION,
                            body: record.get(header..).unwrap_or_default(),
                            encrypted: true,
                        });
                        rest = rest.get(total..).unwrap_or_default();
                    }
                    UnifiedLength::ConnectionId => {
                        // The CID length was negotiated, not sent: the record
                        // (and any after it) cannot be framed. Report it once.
                        counters.records_parsed += 1;
                        counters.records_encrypted += 1;
                        counters.records_unified_header += 1;
                        out(DtlsEvent::Record {
                            content_type: CONTENT_APPLICATION_DATA,
                            version: UNIFIED_HEADER_VERSION,
                            body: &[],
                            encrypted: true,
                        });
                        counters.records_connection_id_unparsed += 1;
                        return true;
                    }
                    UnifiedLength::Truncated => {
                        counters.records_malformed += 1;
                        return true;
                    }
                }
                first = false;
                continue;
            }
            let header = match parse_dtls_record_header(rest) {
                Ok((_, header))
                    if (CONTENT_CHANGE_CIPHER_SPEC..=CONTENT_ACK)
                        .contains(&header.content_type.0)
                        && matches!(header.version.0, DTLS10 | DTLS12) =>
                {
                    header
                }
                _ => {
                    if first {
                        return false;
                    }
                    counters.records_malformed += 1;
                    return true;
                }
            };
            first = false;
            let content_type = header.content_type.0;
            let version = header.version.0;
            if content_type == CONTENT_TLS12_CID {
                // RFC 9146 §4: the CID sits between sequence number and length,
                // with a negotiated size, so the length we read is not this
                // record's and nothing after it can be framed.
                counters.records_parsed += 1;
                counters.records_encrypted += 1;
                counters.records_connection_id_unparsed += 1;
                out(DtlsEvent::Record {
                    content_type: CONTENT_APPLICATION_DATA,
                    version,
                    body: &[],
                    encrypted: true,
                });
                return true;
            }
            let length = usize::from(header.length);
            let Some(body) = rest.get(RecordView::LENGTH..RecordView::LENGTH + length) else {
                counters.records_malformed += 1;
                return true;
            };
            if length > MAX_RECORD_LENGTH {
                counters.records_malformed += 1;
                return true;
            }
            rest = rest.get(RecordView::LENGTH + length..).unwrap_or_default();
            counters.records_parsed += 1;
            if header.epoch > 0 {
                counters.records_encrypted += 1;
                out(DtlsEvent::Record {
                    content_type,
                    version,
                    body,
                    encrypted: true,
                });
                continue;
            }
            match content_type {
                CONTENT_HANDSHAKE => self.on_handshake_record(version, body, counters, out),
                // TLS has no ACK; the session parser would misfile it.
                CONTENT_ACK => counters.records_ack_skipped += 1,
                _ => out(DtlsEvent::Record {
                    content_type,
                    version,
                    body,
                    encrypted: false,
                }),
            }
        }
        true
    }

    fn on_handshake_record(
        &mut self,
        version: u16,
        mut body: &[u8],
        counters: &mut DtlsCounters,
        out: &mut dyn FnMut(DtlsEvent<'_>),
    ) {
        while !body.is_empty() {
            let Some(message) = HandshakeView::new(body) else {
                counters.fragments_malformed += 1;
                return;
            };
            let Some(fragment) = message.fragment() else {
                counters.fragments_malformed += 1;
                return;
            };
            body = body
                .get(field::HEADER_LENGTH + fragment.len()..)
                .unwrap_or_default();
            self.on_fragment(version, message, fragment, counters, out);
        }
    }

    fn on_fragment(
        &mut self,
        version: u16,
        message: HandshakeView<'_>,
        fragment: &[u8],
        counters: &mut DtlsCounters,
        out: &mut dyn FnMut(DtlsEvent<'_>),
    ) {
        let seq = message.message_seq();
        if self.next_seq.is_none()
            && matches!(
                message.msg_type(),
                HANDSHAKE_CLIENT_HELLO | HANDSHAKE_SERVER_HELLO | HANDSHAKE_HELLO_VERIFY_REQUEST
            )
        {
            self.start_at(seq, counters);
        }
        if self.next_seq.is_some_and(|next| u32::from(seq) < next) {
            counters.fragments_duplicate += 1;
            return;
        }
        counters.fragments_received += 1;
        let length = message.length();
        let offset = message.fragment_offset();
        if length > self.limits.max_message_length {
            counters.messages_too_long += 1;
            self.truncated = true;
            return;
        }
        if offset.saturating_add(fragment.len()) > length {
            counters.fragments_malformed += 1;
            return;
        }
        let held = self.pending.iter().position(|p| p.message_seq == seq);
        if held.is_none()
            && self.next_seq == Some(u32::from(seq))
            && offset == 0
            && fragment.len() == length
        {
            // The common case: a whole message, in order. No buffering.
            self.deliver(version, seq, message.msg_type(), fragment, counters, out);
            self.next_seq = Some(u32::from(seq) + 1);
            self.drain_ready(version, counters, out);
            return;
        }
        let index = match held {
            Some(index) => index,
            None => {
                if self.pending.len() >= self.limits.max_pending_messages
                    || self.buffered + length > self.limits.max_buffered_bytes
                {
                    counters.fragments_dropped_over_cap += 1;
                    self.truncated = true;
                    return;
                }
                self.buffered += length;
                self.pending.push(Pending {
                    message_seq: seq,
                    msg_type: message.msg_type(),
                    body: vec![0; length],
                    covered: Vec::new(),
                    fragments: 0,
                });
                self.pending.len() - 1
            }
        };
        let Some(pending) = self.pending.get_mut(index) else {
            return;
        };
        if pending.msg_type != message.msg_type() || pending.body.len() != length {
            counters.fragments_malformed += 1;
            return;
        }
        if !pending.insert(offset, fragment, self.limits.max_fragments_per_message) {
            counters.fragments_dropped_over_cap += 1;
            self.truncated = true;
            return;
        }
        pending.fragments += 1;
        self.drain_ready(version, counters, out);
    }

    /// Starts delivery at `seq`; held messages older than that are stale.
    fn start_at(&mut self, seq: u16, counters: &mut DtlsCounters) {
        self.next_seq = Some(u32::from(seq));
        let before = self.pending.len();
        self.pending.retain(|p| p.message_seq >= seq);
        counters.fragments_duplicate += (before - self.pending.len()) as u64;
        self.buffered = self.pending.iter().map(|p| p.body.len()).sum();
    }

    /// Delivers held messages while the next one in sequence is complete.
    fn drain_ready(
        &mut self,
        version: u16,
        counters: &mut DtlsCounters,
        out: &mut dyn FnMut(DtlsEvent<'_>),
    ) {
        while let Some(next) = self.next_seq {
            let Some(index) = self
                .pending
                .iter()
                .position(|p| u32::from(p.message_seq) == next && p.is_complete())
            else {
                return;
            };
            let pending = self.pending.swap_remove(index);
            self.buffered -= pending.body.len();
            counters.messages_reassembled += 1;
            self.deliver(
                version,
                pending.message_seq,
                pending.msg_type,
                &pending.body,
                counters,
                out,
            );
            self.next_seq = Some(next + 1);
        }
    }

    /// Hands one whole message on in TLS form.
    fn deliver(
        &mut self,
        version: u16,
        seq: u16,
        msg_type: u8,
        body: &[u8],
        counters: &mut DtlsCounters,
        out: &mut dyn FnMut(DtlsEvent<'_>),
    ) {
        if msg_type == HANDSHAKE_HELLO_VERIFY_REQUEST {
            // RFC 6347 §4.2.1: server_version, opaque cookie<0..2^8-1>.
            counters.hello_verify_requests += 1;
            out(DtlsEvent::HelloVerifyRequest {
                server_version: body
                    .get(..2)
                    .map_or(0, |v| u16::from_be_bytes([v[0], v[1]])),
                cookie_len: body.get(2).map_or(0, |&n| usize::from(n)),
            });
            return;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.push(msg_type);
        scratch.extend_from_slice(&[0; 3]);
        if msg_type == HANDSHAKE_CLIENT_HELLO {
            match client_hello_cookie(body) {
                Some(cookie) => {
                    if self.client_hellos > 0 {
                        counters.client_hellos_repeated += 1;
                        out(DtlsEvent::ClientHelloRepeated {
                            message_seq: seq,
                            cookie_len: cookie.len(),
                        });
                    }
                    scratch.extend_from_slice(body.get(..cookie.start - 1).unwrap_or_default());
                    scratch.extend_from_slice(body.get(cookie.end..).unwrap_or_default());
                }
                None => {
                    counters.messages_malformed += 1;
                    scratch.extend_from_slice(body);
                }
            }
            self.client_hellos += 1;
        } else {
            scratch.extend_from_slice(body);
        }
        // Lengths are capped by max_message_length, far below 2^24.
        let length = (scratch.len() - 4).to_be_bytes();
        if let (Some(target), Some(source)) =
            (scratch.get_mut(1..4), length.get(length.len() - 3..))
        {
            target.copy_from_slice(source);
        }
        counters.messages_delivered += 1;
        out(DtlsEvent::Record {
            content_type: CONTENT_HANDSHAKE,
            version,
            body: &scratch,
            encrypted: false,
        });
        if scratch.capacity() <= SCRATCH_KEEP {
            self.scratch = scratch;
        }
    }
}

/// Reads a DTLS ServerHello handed on in TLS form. tls-parser's TLS
/// ServerHello parser picks its layout by `server_version` and rejects the DTLS
/// values (0xfeff, 0xfefd); its DTLS parser takes the same body, so the
/// message is given back its 12-byte DTLS header and parsed with that. The
/// version fields stay as sent, so JA3S and version names see DTLS values.
pub fn parse_server_hello<R>(
    message: &[u8],
    read: impl FnOnce(&tls_parser::TlsServerHelloContents<'_>) -> R,
) -> Option<R> {
    let (&msg_type, rest) = message.split_first()?;
    let length = rest.get(..3)?;
    let body = rest.get(3..)?;
    if msg_type != HANDSHAKE_SERVER_HELLO || read_u24(length) != body.len() {
        return None;
    }
    let mut dtls = Vec::with_capacity(field::HEADER_LENGTH + body.len());
    dtls.push(msg_type);
    dtls.extend_from_slice(length);
    dtls.extend_from_slice(&[0, 0, 0, 0, 0]); // message_seq, fragment_offset
    dtls.extend_from_slice(length); // fragment_length: the whole message
    dtls.extend_from_slice(body);
    match tls_parser::parse_dtls_message_handshake(&dtls) {
        Ok((
            _,
            tls_parser::DTLSMessage::Handshake(tls_parser::DTLSMessageHandshake {
                body: tls_parser::DTLSMessageHandshakeBody::ServerHello(hello),
                ..
            }),
        )) => Some(read(&hello)),
        _ => None,
    }
}

/// Byte range of the cookie inside a DTLS ClientHello body (RFC 6347 §4.2.2:
/// client_version, random, session_id<0..32>, cookie<0..2^8-1>, ...). The
/// range starts after the cookie's length byte.
fn client_hello_cookie(body: &[u8]) -> Option<std::ops::Range<usize>> {
    const SESSION_ID_LENGTH_AT: usize = 2 + 32;
    let session_id_length = usize::from(*body.get(SESSION_ID_LENGTH_AT)?);
    let cookie_length_at = SESSION_ID_LENGTH_AT + 1 + session_id_length;
    let cookie_length = usize::from(*body.get(cookie_length_at)?);
    let cookie = cookie_length_at + 1..cookie_length_at + 1 + cookie_length;
    // The cipher suites length must follow.
    (body.len() >= cookie.end + 2).then_some(cookie)
}

enum UnifiedLength {
    /// The whole record and its header are `total` and `header` bytes long.
    Record {
        total: usize,
        header: usize,
    },
    /// A connection id of unknown length follows the first byte.
    ConnectionId,
    Truncated,
}

/// Frames a DTLS 1.3 unified header (RFC 9147 §4): first byte 0b001CSLEE,
/// C = connection id present, S = 16-bit (else 8-bit) sequence number,
/// L = 16-bit length present (else the record fills the datagram).
fn unified_record_length(bytes: &[u8]) -> UnifiedLength {
    let Some(&flags) = bytes.first() else {
        return UnifiedLength::Truncated;
    };
    if flags & 0x10 != 0 {
        return UnifiedLength::ConnectionId;
    }
    let sequence_length = if flags & 0x08 != 0 { 2 } else { 1 };
    let has_length = flags & 0x04 != 0;
    let header = 1 + sequence_length + if has_length { 2 } else { 0 };
    if bytes.len() < header {
        return UnifiedLength::Truncated;
    }
    let total = if has_length {
        let at = 1 + sequence_length;
        match bytes.get(at..at + 2) {
            Some(&[high, low]) => header + usize::from(u16::from_be_bytes([high, low])),
            _ => return UnifiedLength::Truncated,
        }
    } else {
        bytes.len()
    };
    UnifiedLength::Record { total, header }
}

/// Both directions of one DTLS flow, for callers that prefer one value per flow.
#[derive(Debug)]
pub struct DtlsConnection {
    streams: [DtlsStream; 2],
}

impl DtlsConnection {
    pub fn new(limits: DtlsLimits) -> Self {
        Self {
            streams: [DtlsStream::new(limits), DtlsStream::new(limits)],
        }
    }

    /// Feeds one datagram travelling `direction`; see [`DtlsStream::on_datagram`].
    pub fn on_datagram(
        &mut self,
        direction: Direction,
        datagram: &[u8],
        counters: &mut DtlsCounters,
        out: &mut dyn FnMut(DtlsEvent<'_>),
    ) -> bool {
        match &mut self.streams {
            [to_server, to_client] => match direction {
                Direction::ToServer => to_server.on_datagram(datagram, counters, out),
                Direction::ToClient => to_client.on_datagram(datagram, counters, out),
            },
        }
    }

    /// Whether either direction dropped a handshake message at a cap.
    pub fn is_truncated(&self) -> bool {
        self.streams.iter().any(DtlsStream::is_truncated)
    }

    /// Bytes held across both directions.
    pub fn buffered_bytes(&self) -> usize {
        self.streams.iter().map(DtlsStream::buffered_bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    /// UDP payloads of a corpus trace; the first sender is the client.
    fn datagrams(name: &str) -> Vec<(Direction, Vec<u8>)> {
        datagrams_at(&format!(
            "{}/../shared/corpus/zeek-tls/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
    }

    fn datagrams_at(path: &str) -> Vec<(Direction, Vec<u8>)> {
        let mut capture = pcap::Capture::from_file(path).expect("corpus trace is readable");
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
        let run = run_trace("dtls13-cid.pcap");
        assert_eq!(run.not_dtls, 0);
        // Frames 8-18 start with 0x3e/0x3f: unified header with the C bit.
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
            let extensions =
                tls_parser::parse_tls_client_hello_extensions(hello.ext.unwrap_or(&[]))
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
}
