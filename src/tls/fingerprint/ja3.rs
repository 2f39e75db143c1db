//! JA3 and JA3S (https://github.com/salesforce/ja3): decimal fields joined by
//! '-' and ',', GREASE (RFC 8701) removed, then MD5.

use md5::{Digest, Md5};

use crate::tls::summary::{is_grease, ClientHelloSummary, ServerHelloSummary};

/// A fingerprint string and its MD5, lowercase hex as JA3 tools print it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ja3 {
    pub full: String,
    pub hash: String,
}

fn join<T: std::fmt::Display>(values: impl Iterator<Item = T>) -> String {
    values.map(|v| v.to_string()).collect::<Vec<_>>().join("-")
}

fn md5_hex(text: &str) -> String {
    Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats`.
pub fn client(hello: &ClientHelloSummary) -> Ja3 {
    let full = format!(
        "{},{},{},{},{}",
        hello.legacy_version,
        join(hello.cipher_suites.iter().filter(|&&c| !is_grease(c))),
        join(hello.extensions.iter().filter(|&&e| !is_grease(e))),
        join(hello.supported_groups.iter().filter(|&&g| !is_grease(g))),
        join(hello.ec_point_formats.iter()),
    );
    Ja3 {
        hash: md5_hex(&full),
        full,
    }
}

/// `SSLVersion,Cipher,Extensions` of the ServerHello.
pub fn server(hello: &ServerHelloSummary) -> Ja3 {
    let full = format!(
        "{},{},{}",
        hello.legacy_version,
        hello.cipher_suite,
        join(hello.extensions.iter().filter(|&&e| !is_grease(e))),
    );
    Ja3 {
        hash: md5_hex(&full),
        full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grease_is_removed_from_every_list_and_empty_lists_stay_empty() {
        let hello = ClientHelloSummary {
            legacy_version: 0x0303,
            cipher_suites: vec![0x0a0a, 0x1301, 0xc02f],
            extensions: vec![0x1a1a, 0, 10, 11],
            supported_groups: vec![0x2a2a, 29, 23],
            ec_point_formats: vec![0],
            ..ClientHelloSummary::default()
        };
        assert_eq!(client(&hello).full, "771,4865-49199,0-10-11,29-23,0");
        let bare = ClientHelloSummary {
            legacy_version: 0x0301,
            cipher_suites: vec![0x002f],
            ..ClientHelloSummary::default()
        };
        assert_eq!(client(&bare).full, "769,47,,,");
    }

    #[test]
    fn md5_is_lowercase_hex_of_the_full_string() {
        // The JA3 README's example string and hash.
        let ja3 = Ja3 {
            hash: md5_hex("769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0"),
            full: String::new(),
        };
        assert_eq!(ja3.hash, "ada70206e40642a3e4461f35503241d5");
    }
}
