//! UDP flows that carry a TLS handshake: QUIC Initials and DTLS records.
//!
//! A UDP flow enters the table only when its first datagram is a QUIC client
//! Initial or a DTLS ClientHello (content, not the port), so DNS and other UDP
//! never cost a table entry. The carrier turns datagrams into TLS-form records
//! that the same [`Session`] as TCP's reads through [`Session::feed_record`].

use crate::time::PacketTime;
use crate::tls::dtls::{DtlsConnection, DtlsEvent, DtlsLimits};
use crate::tls::fingerprint::Carrier as On;
use crate::tls::quic::{QuicConnection, QuicLimits};
use crate::tls::{self, CertificateCache, Direction, EndReason, Session, TlsLimits, Verdict};

use super::Counters;

/// Which TLS-over-UDP protocol a flow carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatagramProtocol {
    Quic,
    Dtls,
}

impl DatagramProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            DatagramProtocol::Quic => "quic",
            DatagramProtocol::Dtls => "dtls",
        }
    }
}

/// What the UDP carrier adds to a session's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatagramFacts {
    pub protocol: DatagramProtocol,
    /// QUIC version of the client's first Initial (wire value).
    pub quic_version: Option<u32>,
    /// QUIC version of the server's Initial when it differs (compatible
    /// version negotiation, RFC 9368).
    pub quic_server_version: Option<u32>,
    pub quic_retry: bool,
    /// The server answered with a Version Negotiation packet: these versions.
    pub quic_version_negotiation: Option<Vec<u32>>,
}

/// Content test for the first datagram of a UDP flow.
pub fn detect(payload: &[u8]) -> Option<DatagramProtocol> {
    if tls::quic::looks_like_initial(payload) {
        Some(DatagramProtocol::Quic)
    } else if tls::dtls::looks_like_client_hello(payload) {
        Some(DatagramProtocol::Dtls)
    } else {
        None
    }
}

/// Cheap pre-filter for the reader: could this UDP payload belong to a QUIC
/// or DTLS flow at all? QUIC packets have the fixed bit (RFC 9000 §17), DTLS
/// records a 0xfe major version or the DTLS 1.3 unified header bits.
pub fn may_carry_tls(payload: &[u8]) -> bool {
    match payload {
        [first, ..] if first & 0x40 != 0 => true,
        [20..=26, 0xfe, ..] => true,
        [first, ..] => first & 0xe0 == 0x20,
        [] => false,
    }
}

#[derive(Debug)]
enum Carrier {
    Quic(Box<QuicConnection>),
    Dtls(Box<DtlsConnection>),
}

/// One UDP flow's carrier and TLS session, until the handshake is over.
#[derive(Debug)]
pub(super) struct DatagramTracker {
    carrier: Carrier,
    pub(super) session: Session,
}

impl DatagramTracker {
    pub(super) fn new(protocol: DatagramProtocol, limits: TlsLimits) -> Self {
        let (carrier, on) = match protocol {
            DatagramProtocol::Quic => (
                Carrier::Quic(Box::new(QuicConnection::new(QuicLimits {
                    max_crypto_bytes: limits.max_handshake_bytes,
                    ..QuicLimits::default()
                }))),
                On::Quic,
            ),
            DatagramProtocol::Dtls => (
                Carrier::Dtls(Box::new(DtlsConnection::new(DtlsLimits {
                    max_message_length: limits.max_message_length,
                    ..DtlsLimits::default()
                }))),
                On::Dtls,
            ),
        };
        Self {
            carrier,
            session: Session::with_carrier(limits, on),
        }
    }

    pub(super) fn facts(&self) -> DatagramFacts {
        match &self.carrier {
            Carrier::Quic(quic) => {
                let client = quic.version().map(|v| v.0);
                let server = quic.server_version().map(|v| v.0);
                DatagramFacts {
                    protocol: DatagramProtocol::Quic,
                    quic_version: client,
                    quic_server_version: server.filter(|&s| Some(s) != client),
                    quic_retry: quic.retry_seen(),
                    quic_version_negotiation: quic
                        .version_negotiation()
                        .map(|versions| versions.iter().map(|v| v.0).collect()),
                }
            }
            Carrier::Dtls(_) => DatagramFacts {
                protocol: DatagramProtocol::Dtls,
                quic_version: None,
                quic_server_version: None,
                quic_retry: false,
                quic_version_negotiation: None,
            },
        }
    }

    /// Whether the carrier saw anything worth a record even if no
    /// ClientHello could be read (a QUIC Initial of a version we cannot decrypt).
    /// Heap bytes held by the tracker (its box included), for the memory cap.
    pub(super) fn footprint(&self) -> usize {
        let carrier = match &self.carrier {
            Carrier::Quic(quic) => std::mem::size_of::<QuicConnection>() + quic.heap_bytes(),
            Carrier::Dtls(dtls) => std::mem::size_of::<DtlsConnection>() + dtls.heap_bytes(),
        };
        std::mem::size_of::<Self>() + carrier + self.session.heap_bytes()
    }

    pub(super) fn has_facts(&self) -> bool {
        match &self.carrier {
            Carrier::Quic(quic) => quic.version().is_some() || quic.version_negotiation().is_some(),
            Carrier::Dtls(_) => false,
        }
    }

    /// Handles one datagram travelling `direction` (flow view).
    pub(super) fn on_datagram(
        &mut self,
        direction: Direction,
        payload: &[u8],
        now: PacketTime,
        counters: &mut Counters,
        certificates: &mut CertificateCache,
    ) -> Verdict {
        let session = &mut self.session;
        match &mut self.carrier {
            Carrier::Quic(quic) => {
                quic.on_datagram(direction, payload, &mut counters.quic);
                for side in [Direction::ToServer, Direction::ToClient] {
                    let bytes = quic.take_crypto(side);
                    if bytes.is_empty() {
                        continue;
                    }
                    // No record layer in QUIC: the CRYPTO stream is handshake
                    // messages, fed as one handshake record without a version.
                    let verdict = session.feed_record(
                        side,
                        22,
                        0,
                        &bytes,
                        now,
                        &mut counters.tls,
                        certificates,
                    );
                    if verdict != Verdict::NeedMore {
                        return verdict;
                    }
                }
                if quic.crypto_truncated(Direction::ToServer)
                    || quic.crypto_truncated(Direction::ToClient)
                {
                    counters.tls.handshakes_truncated += 1;
                    return session.close(false, EndReason::Truncated);
                }
                // The rest of a QUIC handshake is encrypted. Both sides moving
                // on to Handshake/1-RTT packets after the ServerHello is the
                // handshake going through: nothing more to read in the clear.
                let both_moved_on = quic.handshake_or_short_seen(Direction::ToServer)
                    && quic.handshake_or_short_seen(Direction::ToClient);
                if session.summary().server_hello.is_some() && both_moved_on {
                    return session.close(true, EndReason::HandshakeDone);
                }
                Verdict::NeedMore
            }
            Carrier::Dtls(dtls) => {
                let mut verdict = Verdict::NeedMore;
                dtls.on_datagram(direction, payload, &mut counters.dtls, &mut |event| {
                    if verdict != Verdict::NeedMore {
                        return;
                    }
                    match event {
                        DtlsEvent::Record {
                            content_type,
                            version,
                            body,
                            ..
                        } => {
                            verdict = session.feed_record(
                                direction,
                                content_type,
                                version,
                                body,
                                now,
                                &mut counters.tls,
                                certificates,
                            );
                        }
                        DtlsEvent::HelloVerifyRequest { .. } => session.note_hello_verify(),
                        // Kept as the retry ClientHello by the session, after
                        // either a HelloVerifyRequest or a HelloRetryRequest.
                        DtlsEvent::ClientHelloRepeated { .. } => {}
                    }
                });
                verdict
            }
        }
    }
}
