//! SSL 2.0 record views (draft-hickman-netscape-ssl-00, RFC 6101 appendix E.2).
//!
//! tls-parser has no SSL 2.0 support. Clients still send the SSL 2.0-compatible
//! ClientHello (OpenSSL 0.9.x, old Java), and old servers answer in SSL 2.0, so
//! these two messages are read here with checked views.

use super::summary::ClientHelloSummary;
use crate::time::PacketTime;

pub const MESSAGE_CLIENT_HELLO: u8 = 1;
pub const MESSAGE_SERVER_HELLO: u8 = 4;

/// A 2-byte-header SSL 2.0 record (high bit of the first byte set). The 3-byte
/// form with padding only appears on encrypted records, after the hellos.
#[derive(Debug, Clone, Copy)]
pub struct Sslv2Record<'a> {
    body: &'a [u8],
}

impl<'a> Sslv2Record<'a> {
    /// Parses one record from the front of `bytes`: `Ok(None)` if more bytes are
    /// needed, `Err(())` if this is not an SSL 2.0 record header.
    #[allow(clippy::result_unit_err)]
    pub fn parse(bytes: &'a [u8]) -> Result<Option<(Self, usize)>, ()> {
        let (Some(&first), Some(&second)) = (bytes.first(), bytes.get(1)) else {
            return Ok(None);
        };
        if first & 0x80 == 0 {
            return Err(());
        }
        let length = usize::from(first & 0x7f) << 8 | usize::from(second);
        if length == 0 {
            return Err(());
        }
        match bytes.get(2..2 + length) {
            Some(body) => Ok(Some((Self { body }, 2 + length))),
            None => Ok(None),
        }
    }

    pub fn message_type(&self) -> Option<u8> {
        self.body.first().copied()
    }

    pub fn body(&self) -> &'a [u8] {
        self.body
    }
}

/// True when `bytes` start like an SSL 2.0-format CLIENT-HELLO offering SSL 2 or 3.x.
pub fn looks_like_client_hello(bytes: &[u8]) -> bool {
    matches!(
        bytes,
        [first, _, MESSAGE_CLIENT_HELLO, 0x00, 0x02, ..] | [first, _, MESSAGE_CLIENT_HELLO, 0x03, 0x00..=0x04, ..]
            if first & 0x80 != 0
    )
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

/// CLIENT-HELLO: type, version, cipher-specs length, session-id length,
/// challenge length, then the three fields. Cipher specs are 3 bytes; those
/// starting with 0x00 are TLS suites (RFC 6101 E.2).
pub fn summarize_client_hello(message: &[u8], time: PacketTime) -> Option<ClientHelloSummary> {
    if message.first() != Some(&MESSAGE_CLIENT_HELLO) {
        return None;
    }
    let version = be16(message, 1)?;
    let specs_length = usize::from(be16(message, 3)?);
    let session_id_length = usize::from(be16(message, 5)?);
    let challenge_length = usize::from(be16(message, 7)?);
    if specs_length % 3 != 0 {
        return None;
    }
    let specs = message.get(9..9 + specs_length)?;
    let session_id = message.get(9 + specs_length..9 + specs_length + session_id_length)?;
    let start = 9 + specs_length + session_id_length;
    message.get(start..start + challenge_length)?;
    let mut summary = ClientHelloSummary {
        time,
        record_version: 0x0002,
        legacy_version: version,
        session_id: session_id.to_vec(),
        sslv2_format: true,
        compression_methods: vec![0],
        ..ClientHelloSummary::default()
    };
    for spec in specs.chunks_exact(3) {
        if spec[0] == 0 {
            summary
                .cipher_suites
                .push(u16::from_be_bytes([spec[1], spec[2]]));
        } else {
            summary
                .sslv2_cipher_specs
                .push(u32::from_be_bytes([0, spec[0], spec[1], spec[2]]));
        }
    }
    summary.fallback_scsv = summary.cipher_suites.contains(&super::hello::FALLBACK_SCSV);
    Some(summary)
}

/// The parts of an SSL 2.0 SERVER-HELLO tlstap reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sslv2ServerHello<'a> {
    pub session_id_hit: bool,
    pub version: u16,
    pub certificate: &'a [u8],
    pub cipher_specs: Vec<u32>,
}

/// SERVER-HELLO: type, session-id-hit, certificate type, version, certificate
/// length, cipher-specs length, connection-id length, then the fields.
pub fn parse_server_hello(message: &[u8]) -> Option<Sslv2ServerHello<'_>> {
    if message.first() != Some(&MESSAGE_SERVER_HELLO) {
        return None;
    }
    let session_id_hit = *message.get(1)? != 0;
    let version = be16(message, 3)?;
    let certificate_length = usize::from(be16(message, 5)?);
    let specs_length = usize::from(be16(message, 7)?);
    let certificate = message.get(11..11 + certificate_length)?;
    let specs = message.get(11 + certificate_length..11 + certificate_length + specs_length)?;
    Some(Sslv2ServerHello {
        session_id_hit,
        version,
        certificate,
        cipher_specs: specs
            .chunks_exact(3)
            .map(|s| u32::from_be_bytes([0, s[0], s[1], s[2]]))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // CLIENT-HELLO, version 3.1, two specs: SSL_CK_RC4_128_WITH_MD5 (01 00 80) and
    // TLS_RSA_WITH_AES_128_CBC_SHA (00 00 2f), no session id, 16-byte challenge.
    const CLIENT_HELLO: [u8; 33] = [
        0x80, 0x1f, // record header, 31 bytes
        0x01, 0x03, 0x01, // CLIENT-HELLO, version 3.1
        0x00, 0x06, 0x00, 0x00, 0x00, 0x10, // specs 6, session id 0, challenge 16
        0x01, 0x00, 0x80, 0x00, 0x00, 0x2f, // cipher specs
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, // challenge
    ];

    #[test]
    fn compatible_client_hello_is_recognised_and_split_into_tls_and_sslv2_specs() {
        assert!(looks_like_client_hello(&CLIENT_HELLO));
        let (record, used) = Sslv2Record::parse(&CLIENT_HELLO)
            .expect("header")
            .expect("complete");
        assert_eq!(used, CLIENT_HELLO.len());
        let hello = summarize_client_hello(record.body(), PacketTime::ZERO).expect("parses");
        assert_eq!(hello.legacy_version, 0x0301);
        assert_eq!(hello.cipher_suites, vec![0x002f]);
        assert_eq!(hello.sslv2_cipher_specs, vec![0x010080]);
        assert!(hello.sslv2_format);
    }

    #[test]
    fn every_prefix_of_a_client_hello_is_incomplete_not_a_panic() {
        for cut in 0..CLIENT_HELLO.len() {
            let parsed = Sslv2Record::parse(&CLIENT_HELLO[..cut]);
            assert!(matches!(parsed, Ok(None)), "prefix {cut}");
            let _ = summarize_client_hello(&CLIENT_HELLO[2..cut.max(2)], PacketTime::ZERO);
            let _ = parse_server_hello(&CLIENT_HELLO[2..cut.max(2)]);
        }
    }

    #[test]
    fn tls_record_header_is_not_sslv2() {
        assert!(!looks_like_client_hello(&[0x16, 0x03, 0x01, 0x00, 0x10]));
        assert!(Sslv2Record::parse(&[0x16, 0x03, 0x01]).is_err());
    }
}
