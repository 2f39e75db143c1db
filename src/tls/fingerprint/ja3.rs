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

/// Appends the decimal values joined by '-'.
fn push_joined<T: Into<u32>>(out: &mut String, values: impl Iterator<Item = T>) {
    let mut buffer = itoa::Buffer::new();
    for (i, value) in values.enumerate() {
        if i > 0 {
            out.push('-');
        }
        out.push_str(buffer.format(value.into()));
    }
}

fn md5_hex(text: &str) -> String {
    let mut out = String::with_capacity(32);
    super::push_hex(&mut out, &Md5::digest(text.as_bytes()));
    out
}

/// `SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats`.
pub fn client(hello: &ClientHelloSummary) -> Ja3 {
    let mut full = String::with_capacity(
        8 + 6 * (hello.cipher_suites.len() + hello.extensions.len() + hello.supported_groups.len()),
    );
    full.push_str(itoa::Buffer::new().format(hello.legacy_version));
    full.push(',');
    push_joined(
        &mut full,
        hello
            .cipher_suites
            .iter()
            .copied()
            .filter(|&c| !is_grease(c)),
    );
    full.push(',');
    push_joined(
        &mut full,
        hello.extensions.iter().copied().filter(|&e| !is_grease(e)),
    );
    full.push(',');
    push_joined(
        &mut full,
        hello
            .supported_groups
            .iter()
            .copied()
            .filter(|&g| !is_grease(g)),
    );
    full.push(',');
    push_joined(&mut full, hello.ec_point_formats.iter().copied());
    Ja3 {
        hash: md5_hex(&full),
        full,
    }
}

/// `SSLVersion,Cipher,Extensions` of the ServerHello.
pub fn server(hello: &ServerHelloSummary) -> Ja3 {
    let mut full = String::with_capacity(16 + 6 * hello.extensions.len());
    full.push_str(itoa::Buffer::new().format(hello.legacy_version));
    full.push(',');
    full.push_str(itoa::Buffer::new().format(hello.cipher_suite));
    full.push(',');
    push_joined(
        &mut full,
        hello.extensions.iter().copied().filter(|&e| !is_grease(e)),
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
