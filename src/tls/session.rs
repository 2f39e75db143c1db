//! The per-connection handshake state machine.

use tls_parser::{TlsMessage, TlsMessageHandshake};

use super::hello::{
    summarize_client_hello, summarize_server_extensions, summarize_server_hello, HELLO_RETRY_RANDOM,
};
use super::summary::*;
use super::{sslv2, Counters, TlsError, TlsLimits};
use crate::time::PacketTime;
use crate::x509::CertificateCache;

const CONTENT_CHANGE_CIPHER_SPEC: u8 = 20;
const CONTENT_ALERT: u8 = 21;
const CONTENT_HANDSHAKE: u8 = 22;
const CONTENT_APPLICATION_DATA: u8 = 23;
const CONTENT_HEARTBEAT: u8 = 24;
/// RFC 8446 §5.2: ciphertext may exceed the 2^14 plaintext limit by 256 (1.3)
/// or 2048 (≤ 1.2) bytes; anything longer is not TLS.
const MAX_RECORD_LENGTH: usize = (1 << 14) + 2048;
const RECORD_HEADER_LENGTH: usize = 5;

/// What the caller should do with the flow after a feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Keep feeding bytes.
    NeedMore,
    /// The handshake is over; take the summary and stop feeding.
    Done(EndReason),
    /// The first bytes are not TLS.
    NotTls,
    /// TLS records, but the handshake happened before the capture saw it.
    MidStream,
}

#[derive(Debug, Default)]
struct Stream {
    /// Bytes received but not yet framed into a whole record.
    pending: Vec<u8>,
    /// Handshake bytes of a message that spans records.
    message: Vec<u8>,
    delivered: usize,
    encrypted: bool,
    records_after_change_cipher: u32,
    application_after_server_hello: u32,
    sslv2: bool,
}

/// One TLS connection's handshake, both directions.
#[derive(Debug)]
pub struct Session {
    limits: TlsLimits,
    summary: HandshakeSummary,
    /// Indexed by role: 0 = client to server, 1 = server to client.
    streams: [Stream; 2],
    /// None until the first bytes decide which side is the client.
    swapped: Option<bool>,
    server_hello_done: bool,
    server_certificate_seen: bool,
    done: Option<EndReason>,
    /// `--keylog` secrets, for reading a TLS 1.3 handshake.
    keylog: Option<std::sync::Arc<super::keylog::KeyLogStore>>,
    decryption: Option<Box<decrypted::Decryption>>,
    /// TLS 1.3, decrypted: the server's Finished was read.
    server_finished: bool,
}

impl Session {
    pub fn new(limits: TlsLimits) -> Self {
        Self {
            limits,
            summary: HandshakeSummary::default(),
            streams: [Stream::default(), Stream::default()],
            swapped: None,
            server_hello_done: false,
            server_certificate_seen: false,
            done: None,
            keylog: None,
            decryption: None,
            server_finished: false,
        }
    }

    /// A session that reads TLS 1.3 handshakes whose secrets are in `keylog`.
    pub fn with_keylog(
        mut self,
        keylog: Option<std::sync::Arc<super::keylog::KeyLogStore>>,
    ) -> Self {
        self.keylog = keylog;
        self
    }

    /// A session whose handshake travels in QUIC or DTLS.
    pub fn with_carrier(limits: TlsLimits, carrier: super::fingerprint::Carrier) -> Self {
        let mut session = Self::new(limits);
        session.summary.carrier = carrier;
        session
    }

    pub fn summary(&self) -> &HandshakeSummary {
        &self.summary
    }

    /// Heap bytes held (record and message buffers, the summary so far,
    /// TLS 1.3 decryption state with held records), for the memory cap.
    pub fn heap_bytes(&self) -> usize {
        self.streams
            .iter()
            .map(|s| s.pending.capacity() + s.message.capacity())
            .sum::<usize>()
            + self.summary.heap_bytes()
            + self
                .decryption
                .as_deref()
                .map_or(0, decrypted::Decryption::heap_bytes)
    }

    /// Whether the first ClientHello has been seen (the flow is TLS).
    pub fn is_tls(&self) -> bool {
        self.swapped.is_some()
    }

    /// Ends the session and returns its summary with certificates summarised.
    pub fn finish(mut self, reason: EndReason) -> (HandshakeSummary, EndReason) {
        let reason = self.done.unwrap_or(reason);
        if reason == EndReason::Truncated {
            self.summary.truncated = true;
        }
        (self.summary, reason)
    }

    /// Feeds in-order bytes travelling `direction` as the flow sees it
    /// (`ToServer` = from the side that opened the connection).
    pub fn feed(
        &mut self,
        direction: Direction,
        bytes: &[u8],
        now: PacketTime,
        counters: &mut Counters,
        certificates: &mut CertificateCache,
    ) -> Verdict {
        if let Some(reason) = self.done {
            return Verdict::Done(reason);
        }
        let role = match self.swapped {
            Some(swapped) => {
                if swapped {
                    direction.reverse()
                } else {
                    direction
                }
            }
            None => {
                // Decide on the first bytes of whichever side spoke first.
                let stream = &mut self.streams[direction.index()];
                let mut head = [0u8; 6];
                let have = stream.pending.len().min(6);
                head[..have].copy_from_slice(&stream.pending[..have]);
                let more = (6 - have).min(bytes.len());
                head[have..have + more].copy_from_slice(&bytes[..more]);
                let head = &head[..have + more];
                if head.len() < 6 {
                    stream.pending.extend_from_slice(bytes);
                    return Verdict::NeedMore;
                }
                if super::starts_like_client_hello(head) {
                    self.start(direction, counters);
                    self.streams[0].sslv2 = head[0] & 0x80 != 0;
                    Direction::ToServer
                } else if super::starts_like_tls_record(head) {
                    counters.sessions_midstream += 1;
                    return Verdict::MidStream;
                } else {
                    counters.sessions_not_tls += 1;
                    return Verdict::NotTls;
                }
            }
        };

        let index = role.index();
        // Parse what fits under the cap, then stop: the ServerHello of a
        // session whose chain is too long is still worth reporting.
        // After a TLS ≤ 1.2 handshake completes only record headers are read
        // (waiting for application data), so the handshake cap no longer applies.
        let allowance = if self.summary.established {
            usize::MAX
        } else {
            self.limits
                .max_handshake_bytes
                .saturating_sub(self.streams[index].delivered)
        };
        let over_cap = bytes.len() > allowance;
        let bytes = &bytes[..bytes.len().min(allowance)];
        self.streams[index].delivered = self.streams[index].delivered.saturating_add(bytes.len());
        if self.streams[index].pending.is_empty() {
            // Whole records straight from the caller's bytes; only a partial
            // record at the end is copied.
            let consumed = self.process(role, bytes, now, counters, certificates);
            if self.done.is_none() {
                if let Some(rest) = bytes.get(consumed..).filter(|rest| !rest.is_empty()) {
                    self.streams[index].pending.extend_from_slice(rest);
                }
            }
        } else {
            let mut pending = std::mem::take(&mut self.streams[index].pending);
            pending.extend_from_slice(bytes);
            let consumed = self.process(role, &pending, now, counters, certificates);
            pending.drain(..consumed.min(pending.len()));
            if self.done.is_none() {
                self.streams[index].pending = pending;
            }
        }
        if over_cap && self.done.is_none() {
            counters.handshakes_truncated += 1;
            self.summary.parse_error = Some(TlsError::HandshakeTooLong);
            return self.end(EndReason::Truncated);
        }
        match self.done {
            Some(reason) => Verdict::Done(reason),
            None => Verdict::NeedMore,
        }
    }

    /// Feeds one record whose framing the carrier already did: a DTLS record
    /// (epoch 0 handshake bodies rebuilt in TLS form, later epochs as opaque
    /// records of their content type) or QUIC CRYPTO bytes as a handshake
    /// record. The first record decides the roles like [`Session::feed`] does.
    #[allow(clippy::too_many_arguments)]
    pub fn feed_record(
        &mut self,
        direction: Direction,
        content_type: u8,
        version: u16,
        body: &[u8],
        now: PacketTime,
        counters: &mut Counters,
        certificates: &mut CertificateCache,
    ) -> Verdict {
        if let Some(reason) = self.done {
            return Verdict::Done(reason);
        }
        let role = match self.swapped {
            Some(true) => direction.reverse(),
            Some(false) => direction,
            None => {
                if content_type != CONTENT_HANDSHAKE || body.first() != Some(&1) {
                    counters.sessions_not_tls += 1;
                    return Verdict::NotTls;
                }
                self.start(direction, counters);
                Direction::ToServer
            }
        };
        let index = role.index();
        if content_type == CONTENT_HANDSHAKE && !self.summary.established {
            let allowance = self
                .limits
                .max_handshake_bytes
                .saturating_sub(self.streams[index].delivered);
            if body.len() > allowance {
                counters.handshakes_truncated += 1;
                self.summary.parse_error = Some(TlsError::HandshakeTooLong);
                return self.end(EndReason::Truncated);
            }
            self.streams[index].delivered += body.len();
        }
        counters.records_parsed += 1;
        self.handle_record(
            role,
            content_type,
            version,
            body,
            now,
            counters,
            certificates,
        );
        self.check_established();
        match self.done {
            Some(reason) => Verdict::Done(reason),
            None => Verdict::NeedMore,
        }
    }

    /// DTLS HelloVerifyRequest (RFC 6347 §4.2.1): the client's next
    /// ClientHello repeats the first with a cookie and is kept as the retry.
    pub fn note_hello_verify(&mut self) {
        self.summary.hello_verify = true;
    }

    /// Ends the session now (the carrier knows the handshake is over, e.g. a
    /// QUIC connection whose later packets are all encrypted).
    pub fn close(&mut self, established: bool, reason: EndReason) -> Verdict {
        if established && self.summary.server_hello.is_some() {
            self.summary.established = true;
        }
        self.end(reason)
    }

    /// The first ClientHello travelled `direction`: its sender is the client.
    fn start(&mut self, direction: Direction, counters: &mut Counters) {
        let swapped = direction == Direction::ToClient;
        self.swapped = Some(swapped);
        counters.sessions_started += 1;
        if swapped {
            // Whatever the flow thought was client-bound is the client's.
            self.streams.swap(0, 1);
        }
        self.summary.roles_swapped = swapped;
    }

    fn end(&mut self, reason: EndReason) -> Verdict {
        if self.done.is_none() {
            self.done = Some(reason);
            if reason == EndReason::Truncated {
                self.summary.truncated = true;
            }
            // The buffers are no longer needed; free them now, not at flow end.
            self.streams = [Stream::default(), Stream::default()];
        }
        Verdict::Done(reason)
    }

    /// Frames and handles whole records; returns the bytes consumed.
    fn process(
        &mut self,
        role: Direction,
        bytes: &[u8],
        now: PacketTime,
        counters: &mut Counters,
        certificates: &mut CertificateCache,
    ) -> usize {
        let mut offset = 0;
        while self.done.is_none() {
            let rest = &bytes[offset..];
            if self.streams[role.index()].sslv2 {
                match sslv2::Sslv2Record::parse(rest) {
                    Ok(Some((record, used))) => {
                        offset += used;
                        counters.records_parsed += 1;
                        self.handle_sslv2(role, record.body(), now, counters, certificates);
                        // Only the hellos use the 2-byte SSL 2.0 format on a
                        // TLS connection; after the server answers in TLS, so does the client.
                        if self.summary.server_hello.is_some() && role == Direction::ToServer {
                            self.streams[role.index()].sslv2 = false;
                        }
                        continue;
                    }
                    Ok(None) => break,
                    Err(()) => {
                        if rest.first().is_some_and(|b| b & 0x80 == 0) {
                            // The client switched to TLS records after an SSL 2.0 hello.
                            self.streams[role.index()].sslv2 = false;
                            continue;
                        }
                        counters.records_malformed += 1;
                        self.summary.parse_error = Some(TlsError::BadSslv2Record);
                        self.end(EndReason::ParseError);
                        break;
                    }
                }
            }
            if rest.len() < RECORD_HEADER_LENGTH {
                break;
            }
            let content_type = rest[0];
            let length = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
            if !(CONTENT_CHANGE_CIPHER_SPEC..=CONTENT_HEARTBEAT).contains(&content_type)
                || rest[1] != 3
                || rest[2] > 4
            {
                // An SSL 2.0 server answering an SSL 2.0-format hello.
                if role == Direction::ToClient
                    && self.summary.server_hello.is_none()
                    && rest[0] & 0x80 != 0
                {
                    self.streams[role.index()].sslv2 = true;
                    continue;
                }
                counters.records_malformed += 1;
                self.summary.parse_error = Some(TlsError::BadRecordHeader);
                self.end(EndReason::ParseError);
                break;
            }
            if length > MAX_RECORD_LENGTH {
                counters.records_malformed += 1;
                self.summary.parse_error = Some(TlsError::RecordTooLong);
                self.end(EndReason::ParseError);
                break;
            }
            let Some(body) = rest.get(RECORD_HEADER_LENGTH..RECORD_HEADER_LENGTH + length) else {
                break;
            };
            offset += RECORD_HEADER_LENGTH + length;
            counters.records_parsed += 1;
            let record_version = u16::from_be_bytes([rest[1], rest[2]]);
            self.handle_record(
                role,
                content_type,
                record_version,
                body,
                now,
                counters,
                certificates,
            );
            self.check_established();
        }
        offset
    }

    fn negotiated(&self) -> Option<ProtocolVersion> {
        self.summary.version().and_then(ProtocolVersion::normalized)
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_record(
        &mut self,
        role: Direction,
        content_type: u8,
        record_version: u16,
        body: &[u8],
        now: PacketTime,
        counters: &mut Counters,
        certificates: &mut CertificateCache,
    ) {
        let index = role.index();
        match content_type {
            CONTENT_CHANGE_CIPHER_SPEC => {
                self.summary.change_cipher_spec[index] = true;
                // In TLS 1.3 CCS is a middlebox-compatibility dummy (RFC 8446 §D.4):
                // a second ClientHello may follow it in plaintext.
                // Before a ServerHello the only CCS is that dummy (a server
                // sends it right after a HelloRetryRequest).
                let encrypts = self
                    .negotiated()
                    .is_some_and(|version| version < ProtocolVersion::TLS13);
                if encrypts {
                    self.streams[index].encrypted = true;
                    if role == Direction::ToClient
                        && !self.server_hello_done
                        && !self.server_certificate_seen
                    {
                        // Abbreviated handshake: the server resumed (RFC 5246 §7.3).
                        self.summary.resumed = true;
                    }
                }
            }
            CONTENT_ALERT => {
                let plaintext = !self.streams[index].encrypted && body.len() == 2;
                let alert = AlertEvent {
                    time: now,
                    direction: role,
                    level: plaintext.then(|| body[0]),
                    description: plaintext.then(|| body[1]),
                };
                if self.summary.alerts.len() < self.limits.max_alerts {
                    self.summary.alerts.push(alert);
                } else {
                    counters.alerts_dropped += 1;
                }
                if alert.is_fatal() {
                    self.end(EndReason::FatalAlert);
                }
            }
            CONTENT_HANDSHAKE => {
                if self.streams[index].encrypted {
                    self.streams[index].records_after_change_cipher += 1;
                    return;
                }
                if self.streams[index].message.len() + body.len()
                    > self.limits.max_message_length + 4
                {
                    counters.handshakes_truncated += 1;
                    self.summary.parse_error = Some(TlsError::MessageTooLong);
                    self.end(EndReason::Truncated);
                    return;
                }
                if self.streams[index].message.is_empty() {
                    // Whole messages straight from the record; only a message
                    // that continues in the next record is copied.
                    let consumed = self.handle_messages(
                        role,
                        record_version,
                        body,
                        now,
                        counters,
                        certificates,
                    );
                    if self.done.is_none() {
                        if let Some(rest) = body.get(consumed..).filter(|rest| !rest.is_empty()) {
                            self.streams[index].message.extend_from_slice(rest);
                        }
                    }
                } else {
                    let mut message = std::mem::take(&mut self.streams[index].message);
                    message.extend_from_slice(body);
                    let consumed = self.handle_messages(
                        role,
                        record_version,
                        &message,
                        now,
                        counters,
                        certificates,
                    );
                    message.drain(..consumed.min(message.len()));
                    if self.done.is_none() {
                        self.streams[index].message = message;
                    }
                }
            }
            CONTENT_APPLICATION_DATA => {
                if self.negotiated() == Some(ProtocolVersion::TLS13) {
                    self.note_encrypted_record(role, body.len(), now);
                }
                if self.decryption.is_some()
                    && self.decrypt_record(role, record_version, body, now, counters, certificates)
                {
                    return;
                }
                self.summary.application_records[index] += 1;
                if self.summary.server_hello.is_some() {
                    self.streams[index].application_after_server_hello += 1;
                }
                if self.streams[index].encrypted {
                    self.streams[index].records_after_change_cipher += 1;
                }
            }
            _ => self.summary.heartbeat_records[index] += 1,
        }
    }

    /// Handles the whole handshake messages at the start of `bytes`; returns
    /// the bytes they took.
    #[allow(clippy::too_many_arguments)]
    fn handle_messages(
        &mut self,
        role: Direction,
        record_version: u16,
        bytes: &[u8],
        now: PacketTime,
        counters: &mut Counters,
        certificates: &mut CertificateCache,
    ) -> usize {
        let mut start = 0;
        while self.done.is_none() {
            let rest = &bytes[start..];
            if rest.len() < 4 {
                break;
            }
            let length =
                (usize::from(rest[1]) << 16) | (usize::from(rest[2]) << 8) | usize::from(rest[3]);
            if length > self.limits.max_message_length {
                counters.handshakes_truncated += 1;
                self.summary.parse_error = Some(TlsError::MessageTooLong);
                self.end(EndReason::Truncated);
                break;
            }
            let Some(whole) = rest.get(..4 + length) else {
                break;
            };
            start += 4 + length;
            self.handle_message(role, record_version, whole, now, counters, certificates);
        }
        start
    }

    fn handle_message(
        &mut self,
        role: Direction,
        record_version: u16,
        message: &[u8],
        now: PacketTime,
        counters: &mut Counters,
        certificates: &mut CertificateCache,
    ) {
        if self.summary.decrypted && !matches!(message.first(), Some(1 | 2)) {
            self.handle_decrypted_message(role, message, counters, certificates);
            return;
        }
        self.handle_plain_message(role, record_version, message, now, counters, certificates);
        if self.keylog.is_some()
            && self.decryption.is_none()
            && self.negotiated() == Some(ProtocolVersion::TLS13)
        {
            self.start_decryption(now, counters);
        }
    }

    fn handle_plain_message(
        &mut self,
        role: Direction,
        record_version: u16,
        message: &[u8],
        now: PacketTime,
        counters: &mut Counters,
        certificates: &mut CertificateCache,
    ) {
        let parsed = match tls_parser::parse_tls_message_handshake(message) {
            Ok((_, TlsMessage::Handshake(parsed))) => parsed,
            _ => {
                if role == Direction::ToClient && message.first() == Some(&2) {
                    if let Some(hello) = parse_draft_server_hello(message, now) {
                        counters.messages_parsed += 1;
                        self.accept_server_hello(hello);
                        return;
                    }
                    // tls-parser's TLS reader refuses DTLS versions in a ServerHello.
                    if self.summary.carrier == super::fingerprint::Carrier::Dtls
                        && super::dtls::parse_server_hello(message, |hello| {
                            self.on_server_hello(hello, now)
                        })
                        .is_some()
                    {
                        counters.messages_parsed += 1;
                        return;
                    }
                }
                counters.messages_malformed += 1;
                if matches!(message.first(), Some(1 | 2 | 11)) && self.summary.parse_error.is_none()
                {
                    // A hello or certificate we cannot read leaves the record incomplete: say so.
                    self.summary.parse_error = Some(TlsError::BadHandshakeMessage);
                }
                return;
            }
        };
        counters.messages_parsed += 1;
        match (role, parsed) {
            (Direction::ToServer, TlsMessageHandshake::ClientHello(hello)) => {
                let summary = summarize_client_hello(&hello, record_version, now);
                if self.summary.client_hello.is_none() {
                    self.summary.client_hello = Some(Box::new(summary));
                } else if (self.summary.hello_retry || self.summary.hello_verify)
                    && self.summary.retry_client_hello.is_none()
                {
                    self.summary.retry_client_hello = Some(Box::new(summary));
                }
            }
            (Direction::ToClient, TlsMessageHandshake::ServerHello(hello)) => {
                self.on_server_hello(&hello, now)
            }
            (Direction::ToClient, TlsMessageHandshake::ServerHelloV13Draft18(hello)) => {
                let mut summary = ServerHelloSummary {
                    time: now,
                    legacy_version: hello.version.0,
                    random: hello.random.to_vec(),
                    cipher_suite: hello.cipher.0,
                    ..ServerHelloSummary::default()
                };
                summarize_server_extensions(&mut summary, hello.ext.unwrap_or(&[]));
                self.accept_server_hello(summary);
            }
            (Direction::ToClient, TlsMessageHandshake::HelloRetryRequest(retry)) => {
                let mut summary = ServerHelloSummary::default();
                summarize_server_extensions(&mut summary, retry.ext.unwrap_or(&[]));
                self.summary.hello_retry = true;
                self.summary.hello_retry_group = summary.key_share_group;
            }
            (_, TlsMessageHandshake::Certificate(certificate)) => {
                let ders = certificate.cert_chain.iter().map(|raw| raw.data);
                self.accept_chain(role, Some(ders), counters, certificates);
            }
            (Direction::ToClient, TlsMessageHandshake::ServerKeyExchange(exchange)) => {
                self.server_certificate_seen = true;
                self.read_server_key_exchange(exchange.parameters);
            }
            (Direction::ToClient, TlsMessageHandshake::CertificateRequest(_)) => {
                self.summary.certificate_requested = true;
            }
            (Direction::ToClient, TlsMessageHandshake::ServerDone(_)) => {
                self.server_hello_done = true
            }
            (Direction::ToClient, TlsMessageHandshake::NewSessionTicket(_)) => {
                self.summary.session_ticket_issued = true;
            }
            _ => {}
        }
    }

    /// A Certificate message's entries (in the clear, or decrypted under
    /// TLS 1.3; None when they did not parse): the first chain each way is
    /// kept, up to the chain cap. False when the first chain did not parse.
    fn accept_chain<'a>(
        &mut self,
        role: Direction,
        ders: Option<impl IntoIterator<Item = &'a [u8]>>,
        counters: &mut Counters,
        certificates: &mut CertificateCache,
    ) -> bool {
        let limit = self.limits.max_chain_certificates;
        let chain = match role {
            Direction::ToClient => {
                self.server_certificate_seen = true;
                &mut self.summary.server_chain
            }
            Direction::ToServer => &mut self.summary.client_chain,
        };
        if !chain.is_empty() {
            return true;
        }
        let Some(ders) = ders else {
            return false;
        };
        for der in ders {
            if chain.certificates.len() >= limit {
                chain.dropped += 1;
                counters.certificates_dropped += 1;
                continue;
            }
            chain.certificates.push(certificates.get(der));
        }
        true
    }

    fn on_server_hello(&mut self, hello: &tls_parser::TlsServerHelloContents<'_>, now: PacketTime) {
        if hello.random == HELLO_RETRY_RANDOM {
            let mut retry = ServerHelloSummary::default();
            summarize_server_extensions(&mut retry, hello.ext.unwrap_or(&[]));
            self.summary.hello_retry = true;
            self.summary.hello_retry_group = retry.key_share_group;
            return;
        }
        self.accept_server_hello(summarize_server_hello(hello, now));
    }

    fn accept_server_hello(&mut self, hello: ServerHelloSummary) {
        if self.summary.server_hello.is_some() {
            return;
        }
        let version = hello.version().normalized();
        if version == Some(ProtocolVersion::TLS13) {
            self.summary.certificates_encrypted = true;
            self.summary.resumed = hello.psk_selected;
        } else if let Some(client) = &self.summary.client_hello {
            // RFC 5246 §7.4.1.3: echoing the client's session id resumes that session.
            if !client.session_id.is_empty() && client.session_id == hello.session_id {
                self.summary.resumed = true;
            }
        }
        self.summary.server_hello = Some(Box::new(hello));
    }

    /// ServerKeyExchange (RFC 8422 §5.4, RFC 5246 §7.4.3): the ECDHE named
    /// curve or the DHE prime size, chosen by the negotiated suite's key exchange.
    fn read_server_key_exchange(&mut self, parameters: &[u8]) {
        use tls_parser::TlsCipherKx;
        let kx = self
            .summary
            .server_hello
            .as_ref()
            .and_then(|hello| tls_parser::TlsCipherSuite::from_id(hello.cipher_suite))
            .map(|suite| suite.kx);
        match kx {
            Some(TlsCipherKx::Dhe) | Some(TlsCipherKx::Dh) => {
                if let Ok((_, params)) = tls_parser::parse_dh_params(parameters) {
                    let prime = params.dh_p;
                    let leading = prime.iter().take_while(|&&b| b == 0).count();
                    let bits = prime.get(leading).map_or(0, |first| {
                        (prime.len() - leading) * 8 - first.leading_zeros() as usize
                    });
                    self.summary.dh_prime_bits = u32::try_from(bits).ok();
                }
            }
            _ => {
                // named_curve (3) followed by the group; also the guess when the
                // suite is unknown.
                if let [3, high, low, ..] = parameters {
                    self.summary.server_key_exchange_group =
                        Some(u16::from_be_bytes([*high, *low]));
                }
            }
        }
    }

    fn handle_sslv2(
        &mut self,
        role: Direction,
        message: &[u8],
        now: PacketTime,
        counters: &mut Counters,
        certificates: &mut CertificateCache,
    ) {
        match role {
            Direction::ToServer => {
                if self.summary.client_hello.is_none() {
                    match sslv2::summarize_client_hello(message, now) {
                        Some(hello) => {
                            counters.messages_parsed += 1;
                            self.summary.client_hello = Some(Box::new(hello));
                        }
                        None => {
                            counters.messages_malformed += 1;
                            self.summary.parse_error = Some(TlsError::BadSslv2Record);
                            self.end(EndReason::ParseError);
                        }
                    }
                }
                // Later SSL 2.0 client messages are encrypted or key material.
            }
            Direction::ToClient => {
                if let Some(hello) = sslv2::parse_server_hello(message) {
                    counters.messages_parsed += 1;
                    let cipher = hello.cipher_specs.first().copied().unwrap_or(0);
                    if !hello.certificate.is_empty() {
                        self.summary
                            .server_chain
                            .certificates
                            .push(certificates.get(hello.certificate));
                    }
                    self.summary.server_hello = Some(Box::new(ServerHelloSummary {
                        time: now,
                        legacy_version: hello.version,
                        sslv2_cipher_spec: Some(cipher),
                        ..ServerHelloSummary::default()
                    }));
                    self.summary.resumed = hello.session_id_hit;
                    // SSL 2.0 never sends a ChangeCipherSpec: the hello exchange
                    // is all that can be seen in the clear.
                    self.summary.established = true;
                    self.end(EndReason::HandshakeDone);
                } else if self.summary.server_hello.is_none() {
                    counters.messages_malformed += 1;
                    self.summary.parse_error = Some(TlsError::BadSslv2Record);
                    self.end(EndReason::ParseError);
                }
            }
        }
    }

    fn check_established(&mut self) {
        if self.done.is_some() {
            return;
        }
        let client = &self.streams[0];
        let server = &self.streams[1];
        let established = match self.negotiated() {
            Some(ProtocolVersion::TLS13) => {
                // Server's encrypted flight and the client's Finished both travel
                // as application_data records after the ServerHello. A client
                // whose first answer has the size of an alert is watched until
                // it closes or sends more (see `tls13_handshake_aborted`).
                let seen = server.application_after_server_hello > 0
                    && client.application_after_server_hello > 0
                    && !(self.summary.encrypted_flight.client_answered_with_alert()
                        && self.summary.encrypted_flight.client_records == 1);
                match self.decrypted_established() {
                    Some(done) => {
                        if seen && self.holding_for_keys() {
                            // Application data may flow while the secrets are
                            // awaited: it must not count against the handshake cap.
                            self.summary.established = true;
                        }
                        done
                    }
                    None => seen,
                }
            }
            Some(_) => {
                let finished = self.summary.change_cipher_spec == [true, true]
                    && client.records_after_change_cipher > 0
                    && server.records_after_change_cipher > 0;
                if finished {
                    self.summary.established = true;
                }
                // Wait for application data both ways: it shows the client
                // really went on with the server it was shown (a client that
                // does not validate certificates is caught this way).
                finished && self.summary.application_records.iter().all(|&n| n > 0)
            }
            None => false,
        };
        if established {
            self.summary.established = true;
            self.end(EndReason::HandshakeDone);
        }
    }
}

impl Session {
    /// TLS 1.3 record sizes and times, before any decryption: what a sensor
    /// without keys can tell about the client's answer to the server's flight.
    fn note_encrypted_record(&mut self, role: Direction, length: usize, now: PacketTime) {
        let flight = &mut self.summary.encrypted_flight;
        match role {
            Direction::ToClient if flight.client_records == 0 => {
                flight.server_records += 1;
                flight.server_bytes += length as u64;
                flight.server_last = Some(now);
            }
            Direction::ToClient => {}
            Direction::ToServer => {
                if flight.client_records == 0 {
                    flight.client_first_length = u16::try_from(length).ok();
                    flight.client_first_time = Some(now);
                }
                flight.client_records = flight.client_records.saturating_add(1);
            }
        }
    }
}

/// ServerHello of TLS 1.3 drafts before -22 and Google's experiments:
/// version, random, cipher suite, extensions (no session id, no compression).
fn parse_draft_server_hello(message: &[u8], now: PacketTime) -> Option<ServerHelloSummary> {
    let body = message.get(4..)?;
    let version = u16::from_be_bytes([*body.first()?, *body.get(1)?]);
    if !matches!(version >> 8, 0x7e | 0x7f) {
        return None;
    }
    let random = body.get(2..34)?;
    let cipher = u16::from_be_bytes([*body.get(34)?, *body.get(35)?]);
    let mut summary = ServerHelloSummary {
        time: now,
        legacy_version: version,
        random: random.to_vec(),
        cipher_suite: cipher,
        ..ServerHelloSummary::default()
    };
    if let Some(length) = body.get(36..38) {
        let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
        if let Some(block) = body.get(38..38 + length) {
            summarize_server_extensions(&mut summary, block);
        }
    }
    Some(summary)
}

mod decrypted;

#[cfg(test)]
mod tests;
