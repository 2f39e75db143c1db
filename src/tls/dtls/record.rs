//! The DTLS record layer (RFC 6347 §4.1, RFC 9147 §4): splits a datagram into
//! records, reports ciphertext as opaque and hands plaintext handshake records
//! to [`super::handshake`].

use tls_parser::parse_dtls_record_header;

use super::{
    DtlsCounters, DtlsEvent, DtlsStream, CONTENT_ACK, CONTENT_APPLICATION_DATA,
    CONTENT_CHANGE_CIPHER_SPEC, CONTENT_HANDSHAKE, CONTENT_TLS12_CID, DTLS10, DTLS12,
    UNIFIED_HEADER_VERSION,
};

/// RFC 6347 §4.1: 2^14 plus the TLS 1.2 ciphertext expansion allowance.
const MAX_RECORD_LENGTH: usize = (1 << 14) + 2048;

/// DTLSPlaintext header (RFC 6347 §4.1): type, version, epoch, 48-bit sequence
/// number, length. Parsed with tls-parser; this only names the fixed size.
pub(super) struct RecordView;

impl RecordView {
    pub(super) const LENGTH: usize = 13;
}

impl DtlsStream {
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
