//! JA4 (FoxIO, BSD-3-Clause; technical_details/JA4.md): a human-readable
//! prefix, a hash of the sorted cipher suites, and a hash of the sorted
//! extensions plus the signature algorithms in order.

use sha2::{Digest, Sha256};

use super::Carrier;
use crate::tls::summary::{is_grease, ClientHelloSummary};

const EXTENSION_SERVER_NAME: u16 = 0x0000;
const EXTENSION_ALPN: u16 = 0x0010;
const EMPTY_HASH: &str = "000000000000";

/// JA4 and its raw form (`_r`: the lists instead of their hashes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ja4 {
    pub fingerprint: String,
    pub raw: String,
}

/// Two characters for the highest offered version: supported_versions
/// (GREASE ignored) when present, else the legacy ClientHello version.
fn version(hello: &ClientHelloSummary) -> &'static str {
    let version = hello
        .supported_versions
        .iter()
        .copied()
        .filter(|&v| !is_grease(v))
        .max()
        .unwrap_or(hello.legacy_version);
    match version {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// JA4's ALPN characters: the first and last byte of the first ALPN value
/// when both are ASCII alphanumeric (a one-byte value gives that character
/// twice); "00" without ALPN or with an empty first value. Otherwise two
/// references disagree and we follow the one users compare against:
/// - an end byte outside ASCII becomes '9', as FoxIO's own tools (python
///   ja4.py, rust ja4) write it and as their expected output for
///   `tls-non-ascii-alpn.pcapng` (`0xba 0xad` -> "99") says. JA4.md's later
///   hex rule would give "bd"; no FoxIO tool writes that, and JA4 databases
///   are filled by those tools.
/// - ASCII ends that are not alphanumeric (`h2/`) take JA4.md's rule: the
///   first and last characters of the value's hex form ("6f").
///
/// Bytes, not text: a non-UTF-8 value read through U+FFFD gave "ed".
fn alpn(hello: &ClientHelloSummary) -> String {
    let bytes = hello.alpn_first_raw.as_slice();
    let (Some(&head), Some(&tail)) = (bytes.first(), bytes.last()) else {
        return "00".to_string();
    };
    if head.is_ascii_alphanumeric() && tail.is_ascii_alphanumeric() {
        return format!("{}{}", char::from(head), char::from(tail));
    }
    if !head.is_ascii() || !tail.is_ascii() {
        let end = |b: u8| if b.is_ascii() { char::from(b) } else { '9' };
        return format!("{}{}", end(head), end(tail));
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    format!(
        "{}{}",
        char::from(HEX[usize::from(head >> 4)]),
        char::from(HEX[usize::from(tail & 0x0f)])
    )
}

/// Appends `values` as comma-separated 4-digit lowercase hex.
fn push_hex_list(out: &mut String, values: &[u16]) {
    for (i, &value) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for shift in [12, 8, 4, 0] {
            out.push(char::from(
                super::HEX_LOWER[usize::from((value >> shift) & 0xf)],
            ));
        }
    }
}

fn push_truncated_sha256(out: &mut String, text: &str) {
    if text.is_empty() {
        out.push_str(EMPTY_HASH);
        return;
    }
    super::push_hex(out, &Sha256::digest(text.as_bytes())[..6]);
}

pub fn client(hello: &ClientHelloSummary, carrier: Carrier) -> Ja4 {
    let mut ciphers: Vec<u16> = hello
        .cipher_suites
        .iter()
        .copied()
        .filter(|&c| !is_grease(c))
        .collect();
    let extensions: Vec<u16> = hello
        .extensions
        .iter()
        .copied()
        .filter(|&e| !is_grease(e))
        .collect();
    let signatures: Vec<u16> = hello
        .signature_algorithms
        .iter()
        .copied()
        .filter(|&s| !is_grease(s))
        .collect();
    let mut prefix = String::with_capacity(10);
    prefix.push(match carrier {
        Carrier::Tcp => 't',
        Carrier::Quic => 'q',
        Carrier::Dtls => 'd',
    });
    prefix.push_str(version(hello));
    prefix.push(if extensions.contains(&EXTENSION_SERVER_NAME) {
        'd'
    } else {
        'i'
    });
    for count in [ciphers.len().min(99), extensions.len().min(99)] {
        prefix.push(char::from(b'0' + (count / 10) as u8));
        prefix.push(char::from(b'0' + (count % 10) as u8));
    }
    prefix.push_str(&alpn(hello));
    ciphers.sort_unstable();
    let mut hashed_extensions: Vec<u16> = extensions
        .into_iter()
        .filter(|&e| e != EXTENSION_SERVER_NAME && e != EXTENSION_ALPN)
        .collect();
    hashed_extensions.sort_unstable();
    let mut cipher_list = String::with_capacity(ciphers.len() * 5);
    push_hex_list(&mut cipher_list, &ciphers);
    let mut extension_list =
        String::with_capacity((hashed_extensions.len() + signatures.len()) * 5 + 1);
    push_hex_list(&mut extension_list, &hashed_extensions);
    if !signatures.is_empty() && !extension_list.is_empty() {
        extension_list.push('_');
        push_hex_list(&mut extension_list, &signatures);
    }
    let mut fingerprint = String::with_capacity(36);
    fingerprint.push_str(&prefix);
    fingerprint.push('_');
    push_truncated_sha256(&mut fingerprint, &cipher_list);
    fingerprint.push('_');
    push_truncated_sha256(&mut fingerprint, &extension_list);
    let mut raw = prefix;
    raw.reserve(cipher_list.len() + extension_list.len() + 2);
    raw.push('_');
    raw.push_str(&cipher_list);
    raw.push('_');
    raw.push_str(&extension_list);
    Ja4 { fingerprint, raw }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrome() -> ClientHelloSummary {
        // A Chrome 143 ClientHello as published with its JA4 (ja4 and ja4_r
        // below come from the same capture).
        ClientHelloSummary {
            legacy_version: 0x0303,
            cipher_suites: vec![
                0x2a2a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8,
                0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
            ],
            extensions: vec![
                0x3a3a, 0x002d, 0x0033, 0x0010, 0xfe0d, 0x0017, 0x44cd, 0x0000, 0x000b, 0x000a,
                0x002b, 0xff01, 0x0023, 0x0012, 0x0005, 0x000d, 0x001b, 0x4a4a,
            ],
            supported_versions: vec![0x5a5a, 0x0304, 0x0303],
            alpn: vec!["h2".into(), "http/1.1".into()],
            alpn_first_raw: b"h2".to_vec(),
            signature_algorithms: vec![
                0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
            ],
            server_name: Some("tls.browserleaks.com".into()),
            ..ClientHelloSummary::default()
        }
    }

    #[test]
    fn published_chrome_fingerprint_is_reproduced() {
        let ja4 = client(&chrome(), Carrier::Tcp);
        assert_eq!(
            ja4.raw,
            "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_\
             0005,000a,000b,000d,0012,0017,001b,0023,002b,002d,0033,44cd,fe0d,ff01_\
             0403,0804,0401,0503,0805,0501,0806,0601"
        );
        assert_eq!(ja4.fingerprint, "t13d1516h2_8daaf6152771_d8a2da3f94cd");
    }

    #[test]
    fn grease_never_counts_and_quic_and_no_sni_change_the_prefix() {
        let mut hello = chrome();
        hello.extensions.retain(|&e| e != EXTENSION_SERVER_NAME);
        let ja4 = client(&hello, Carrier::Quic);
        assert!(
            ja4.fingerprint.starts_with("q13i1515h2_"),
            "{}",
            ja4.fingerprint
        );
    }

    fn with_alpn(value: &[u8]) -> String {
        let hello = ClientHelloSummary {
            alpn: vec![String::from_utf8_lossy(value).into_owned()],
            alpn_first_raw: value.to_vec(),
            ..ClientHelloSummary::default()
        };
        alpn(&hello)
    }

    #[test]
    fn alpn_alphanumeric_ends_are_used_as_they_are() {
        assert_eq!(with_alpn(b"h2"), "h2");
        assert_eq!(with_alpn(b"http/1.1"), "h1");
        // Only the two ends are looked at.
        assert_eq!(with_alpn(b"0\x01\x02\x31"), "01");
    }

    #[test]
    fn alpn_of_one_byte_is_that_character_twice() {
        assert_eq!(with_alpn(b"h"), "hh");
    }

    #[test]
    fn alpn_absent_or_empty_is_00() {
        assert_eq!(alpn(&ClientHelloSummary::default()), "00");
        assert_eq!(with_alpn(b""), "00");
    }

    /// JA4.md's five "ALPN Extension Value" examples, with FoxIO's tools'
    /// '9' for a non-ASCII end; ASCII punctuation keeps the hex rule.
    #[test]
    fn alpn_with_a_non_alphanumeric_end() {
        assert_eq!(with_alpn(&[0xab]), "99");
        assert_eq!(with_alpn(&[0xab, 0xcd]), "99");
        assert_eq!(with_alpn(&[0x30, 0xab]), "09");
        assert_eq!(with_alpn(&[0x30, 0x31, 0xab, 0xcd]), "09");
        assert_eq!(with_alpn(&[0x30, 0xab, 0xcd, 0x31]), "01");
        // ASCII punctuation is not alphanumeric either.
        assert_eq!(with_alpn(b"0\x7f"), "3f");
        assert_eq!(with_alpn(b"h2/"), "6f");
    }

    /// FoxIO's vector tls-non-ascii-alpn.pcapng: the JA4.md example hello
    /// (15 ciphers, 16 extensions, the example's signature algorithms) with
    /// the first ALPN value 0xba 0xad. FoxIO's expected-output file says
    /// `t13d151699_…` (their tools' '9' substitution, see `alpn`). The
    /// value is not valid UTF-8, so reading it as text gave "ed".
    #[test]
    fn regression_foxio_non_ascii_alpn_vector() {
        let hello = ClientHelloSummary {
            legacy_version: 0x0303,
            cipher_suites: vec![
                0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
                0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
            ],
            extensions: vec![
                0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023,
                0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015,
            ],
            supported_versions: vec![0x0304, 0x0303],
            alpn: vec![String::from_utf8_lossy(&[0xba, 0xad]).into_owned()],
            alpn_first_raw: vec![0xba, 0xad],
            signature_algorithms: vec![
                0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
            ],
            ..ClientHelloSummary::default()
        };
        assert_eq!(
            client(&hello, Carrier::Tcp).fingerprint,
            "t13d151699_8daaf6152771_e5627efa2ab1"
        );
    }

    #[test]
    fn missing_lists_hash_to_zeros_and_signatures_need_extensions() {
        let hello = ClientHelloSummary {
            legacy_version: 0x0301,
            ..ClientHelloSummary::default()
        };
        assert_eq!(
            client(&hello, Carrier::Tcp).fingerprint,
            "t10i000000_000000000000_000000000000"
        );
        let only_sni = ClientHelloSummary {
            legacy_version: 0x0303,
            cipher_suites: vec![0x1301],
            extensions: vec![0x0000],
            ..ClientHelloSummary::default()
        };
        let ja4 = client(&only_sni, Carrier::Tcp);
        assert_eq!(ja4.raw, "t12d010100_1301_");
        assert!(ja4.fingerprint.ends_with("_000000000000"));
    }

    #[test]
    fn counts_are_capped_at_99() {
        let hello = ClientHelloSummary {
            legacy_version: 0x0303,
            cipher_suites: (1..=150).collect(),
            ..ClientHelloSummary::default()
        };
        assert!(client(&hello, Carrier::Tcp)
            .fingerprint
            .starts_with("t12i9900"));
    }
}
