//! DTLS handshake reassembly (RFC 6347 §4.2.2): fragments in, whole messages
//! out in `message_seq` order and in TLS form, under [`super::DtlsLimits`].

use super::{
    DtlsCounters, DtlsEvent, DtlsStream, CONTENT_HANDSHAKE, HANDSHAKE_CLIENT_HELLO,
    HANDSHAKE_HELLO_VERIFY_REQUEST, HANDSHAKE_SERVER_HELLO,
};

/// A scratch buffer larger than this is freed after use, so idle flows stay small.
const SCRATCH_KEEP: usize = 4096;

/// DTLS handshake header (RFC 6347 §4.2.2). `new` proves the 12 fixed bytes;
/// `fragment` is checked separately because it may overrun the record.
///
/// Not tls-parser's `parse_dtls_message_handshake`: it rejects unfragmented
/// messages of types it has no body parser for (ServerKeyExchange, ...), and we
/// only need the header.
#[derive(Clone, Copy, Debug)]
pub(super) struct HandshakeView<'a> {
    bytes: &'a [u8],
}

pub(super) mod field {
    pub const MSG_TYPE: usize = 0;
    pub const LENGTH: std::ops::Range<usize> = 1..4;
    pub const MESSAGE_SEQ: std::ops::Range<usize> = 4..6;
    pub const FRAGMENT_OFFSET: std::ops::Range<usize> = 6..9;
    pub const FRAGMENT_LENGTH: std::ops::Range<usize> = 9..12;
    pub const HEADER_LENGTH: usize = 12;
}

pub(super) fn read_u24(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .take(3)
        .fold(0, |value, &byte| (value << 8) | usize::from(byte))
}

impl<'a> HandshakeView<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Option<Self> {
        (bytes.len() >= field::HEADER_LENGTH).then_some(Self { bytes })
    }
    pub(super) fn msg_type(&self) -> u8 {
        self.bytes[field::MSG_TYPE]
    }
    fn length(&self) -> usize {
        read_u24(&self.bytes[field::LENGTH])
    }
    fn message_seq(&self) -> u16 {
        let seq = &self.bytes[field::MESSAGE_SEQ];
        u16::from_be_bytes([seq[0], seq[1]])
    }
    pub(super) fn fragment_offset(&self) -> usize {
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
pub(super) struct Pending {
    pub(super) message_seq: u16,
    pub(super) msg_type: u8,
    pub(super) body: Vec<u8>,
    /// Received byte ranges, sorted, disjoint and not adjacent.
    pub(super) covered: Vec<(usize, usize)>,
    pub(super) fragments: u32,
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

impl DtlsStream {
    pub(super) fn on_handshake_record(
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
