//! ClientHello and ServerHello summaries (RFC 8446 §4.1.2–4.1.3, RFC 5246 §7.4.1).
//!
//! tls-parser parses the messages and each extension's content. The extension
//! block is walked here one (type, length) frame at a time because tls-parser's
//! list parser stops silently at the first extension whose content it rejects,
//! and fingerprints need every extension type in wire order.

use tls_parser::{TlsClientHelloContents, TlsExtension, TlsServerHelloContents};

use super::summary::{ClientHelloSummary, DowngradeSentinel, ServerHelloSummary};
use crate::time::PacketTime;

/// TLS_FALLBACK_SCSV (RFC 7507).
pub(super) const FALLBACK_SCSV: u16 = 0x5600;
/// encrypted_client_hello (draft-ietf-tls-esni), and the older encrypted_server_name.
const EXTENSION_ECH: u16 = 0xfe0d;
const EXTENSION_ESNI: u16 = 0xffce;
const EXTENSION_SUPPORTED_VERSIONS: u16 = 43;
const EXTENSION_KEY_SHARE: u16 = 51;
/// key_share before TLS 1.3 draft 23 (and in Google's 0x7e01 experiment), same layout.
const EXTENSION_KEY_SHARE_OLD: u16 = 40;

/// HelloRetryRequest is a ServerHello whose random is SHA-256("HelloRetryRequest") (RFC 8446 §4.1.3).
pub const HELLO_RETRY_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// One extension frame: type and raw content.
fn extension_frames(block: &[u8]) -> impl Iterator<Item = (u16, &[u8], &[u8])> {
    let mut rest = block;
    std::iter::from_fn(move || {
        if rest.len() < 4 {
            return None;
        }
        let kind = u16::from_be_bytes([rest[0], rest[1]]);
        let length = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let end = 4 + length;
        if rest.len() < end {
            rest = &[];
            return None;
        }
        let whole = &rest[..end];
        let content = &rest[4..end];
        rest = &rest[end..];
        Some((kind, content, whole))
    })
}

/// Groups named in a ClientHello key_share (RFC 8446 §4.2.8): a u16-length list of
/// (group, u16-length key) entries.
fn client_key_share_groups(content: &[u8]) -> Vec<u16> {
    let mut groups = Vec::new();
    let Some(list) = content.get(2..) else {
        return groups;
    };
    let mut rest = list;
    while rest.len() >= 4 {
        let group = u16::from_be_bytes([rest[0], rest[1]]);
        let length = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        groups.push(group);
        rest = rest.get(4 + length..).unwrap_or(&[]);
    }
    groups
}

pub fn summarize_client_hello(
    hello: &TlsClientHelloContents<'_>,
    record_version: u16,
    time: PacketTime,
) -> ClientHelloSummary {
    let cipher_suites: Vec<u16> = hello.ciphers.iter().map(|c| c.0).collect();
    let mut summary = ClientHelloSummary {
        time,
        record_version,
        legacy_version: hello.version.0,
        random: hello.random.try_into().unwrap_or([0; 32]),
        session_id: hello.session_id.map(<[u8]>::to_vec).unwrap_or_default(),
        fallback_scsv: cipher_suites.contains(&FALLBACK_SCSV),
        cipher_suites,
        compression_methods: hello.comp.iter().map(|c| c.0).collect(),
        ..ClientHelloSummary::default()
    };
    for (kind, content, whole) in extension_frames(hello.ext.unwrap_or(&[])) {
        summary.extensions.push(kind);
        match kind {
            EXTENSION_ECH | EXTENSION_ESNI => summary.ech = true,
            EXTENSION_KEY_SHARE | EXTENSION_KEY_SHARE_OLD => {
                summary.key_share_groups = client_key_share_groups(content);
            }
            _ => {}
        }
        let Ok((_, extension)) = tls_parser::parse_tls_client_hello_extension(whole) else {
            continue;
        };
        match extension {
            TlsExtension::SNI(names) => {
                if let Some((_, name)) = names.iter().find(|(kind, _)| kind.0 == 0) {
                    summary.server_name = Some(String::from_utf8_lossy(name).into_owned());
                }
            }
            TlsExtension::ALPN(protocols) => {
                summary.alpn = protocols
                    .iter()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect();
                summary.alpn_first_raw = protocols.first().map_or_else(Vec::new, |p| p.to_vec());
            }
            TlsExtension::SupportedVersions(versions) => {
                summary.supported_versions = versions.iter().map(|v| v.0).collect();
            }
            TlsExtension::EllipticCurves(groups) => {
                summary.supported_groups = groups.iter().map(|g| g.0).collect();
            }
            TlsExtension::EcPointFormats(formats) => summary.ec_point_formats = formats.to_vec(),
            TlsExtension::SignatureAlgorithms(algorithms) => {
                summary.signature_algorithms = algorithms;
            }
            TlsExtension::SessionTicket(_) => summary.session_ticket = true,
            TlsExtension::PreSharedKey(_) => summary.psk = true,
            TlsExtension::EarlyData(_) => summary.early_data = true,
            _ => {}
        }
    }
    summary
}

pub fn summarize_server_hello(
    hello: &TlsServerHelloContents<'_>,
    time: PacketTime,
) -> ServerHelloSummary {
    let mut summary = ServerHelloSummary {
        time,
        legacy_version: hello.version.0,
        random: hello.random.to_vec(),
        session_id: hello.session_id.map(<[u8]>::to_vec).unwrap_or_default(),
        cipher_suite: hello.cipher.0,
        compression_method: hello.compression.0,
        downgrade_sentinel: downgrade_sentinel(hello.random),
        ..ServerHelloSummary::default()
    };
    summarize_server_extensions(&mut summary, hello.ext.unwrap_or(&[]));
    summary
}

/// ServerHello extensions; also used for HelloRetryRequest and draft ServerHellos.
pub fn summarize_server_extensions(summary: &mut ServerHelloSummary, block: &[u8]) {
    for (kind, content, whole) in extension_frames(block) {
        summary.extensions.push(kind);
        match kind {
            // ServerHello key_share carries one entry; HRR carries only the group.
            EXTENSION_KEY_SHARE | EXTENSION_KEY_SHARE_OLD if content.len() >= 2 => {
                summary.key_share_group = Some(u16::from_be_bytes([content[0], content[1]]));
            }
            EXTENSION_SUPPORTED_VERSIONS if content.len() == 2 => {
                summary.selected_version = Some(u16::from_be_bytes([content[0], content[1]]));
            }
            41 => summary.psk_selected = true,
            23 => summary.extended_master_secret = true,
            35 => summary.session_ticket = true,
            _ => {}
        }
        if kind == 16 {
            if let Ok((_, TlsExtension::ALPN(protocols))) =
                tls_parser::parse_tls_server_hello_extension(whole)
            {
                summary.alpn = protocols
                    .first()
                    .map(|p| String::from_utf8_lossy(p).into_owned());
            }
        }
    }
}

fn downgrade_sentinel(random: &[u8]) -> Option<DowngradeSentinel> {
    let tail = random.get(24..32)?;
    match tail {
        [0x44, 0x4f, 0x57, 0x4e, 0x47, 0x52, 0x44, 0x01] => Some(DowngradeSentinel::Tls12),
        [0x44, 0x4f, 0x57, 0x4e, 0x47, 0x52, 0x44, 0x00] => Some(DowngradeSentinel::Tls11OrBelow),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_frames_stop_at_a_lying_length() {
        // server_name (0) with 2 bytes, then a frame claiming 0x100 bytes with 1 present.
        let block = [0, 0, 0, 2, 0xaa, 0xbb, 0, 16, 1, 0, 0xcc];
        let frames: Vec<u16> = extension_frames(&block).map(|(kind, _, _)| kind).collect();
        assert_eq!(frames, vec![0]);
    }

    #[test]
    fn key_share_groups_are_read_in_order_even_when_the_last_key_is_short() {
        // list length, x25519 with 2-byte key, secp256r1 with a truncated key.
        let content = [0, 12, 0, 29, 0, 2, 1, 2, 0, 23, 0, 65, 4];
        assert_eq!(client_key_share_groups(&content), vec![29, 23]);
    }

    #[test]
    fn downgrade_sentinels_are_recognised() {
        let mut random = [7u8; 32];
        random[24..].copy_from_slice(b"DOWNGRD\x01");
        assert_eq!(downgrade_sentinel(&random), Some(DowngradeSentinel::Tls12));
        random[31] = 0;
        assert_eq!(
            downgrade_sentinel(&random),
            Some(DowngradeSentinel::Tls11OrBelow)
        );
        random[31] = 2;
        assert_eq!(downgrade_sentinel(&random), None);
    }
}
