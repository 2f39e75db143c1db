//! Certificate summaries: DER in, owned facts out.
//!
//! Place in the pipeline: `tls` hands this module the DER of each certificate it finds in
//! Certificate handshake messages; [`summarize`] returns a [`CertificateSummary`] that `policy`
//! and `output` consume. [`verify_issued_by`] lets `policy` check chain links later.
//!
//! This module states facts and never judges: a certificate signed with MD5, expired, or
//! self-signed is summarized like any other, and deciding what that means is `policy`'s job.
//! It uses nothing else from the crate.
//!
//! Bound: a certificate larger than [`MAX_CERTIFICATE_DER`] (1 MiB; the TLS layer's
//! message cap is the tighter, configurable bound) is refused with
//! [`X509Error::TooLarge`] before any parsing. All parsing is done by x509-parser, and input is
//! attacker-controlled, so nothing here panics on any byte string.

mod algorithms;
mod cache;
mod name;

#[cfg(test)]
mod tests;

use sha1::Sha1;
use sha2::{Digest, Sha256};
use x509_parser::error::X509Error as ParserError;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, SubjectPublicKeyInfo, X509Certificate};

use algorithms::SignatureFamily;
pub use cache::{CacheCounters, CacheLimits, Certificate, CertificateCache};

/// Largest certificate DER accepted by [`summarize`] and [`verify_issued_by`].
pub const MAX_CERTIFICATE_DER: usize = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum X509Error {
    #[error("certificate larger than the {0}-byte limit")]
    TooLarge(usize),
    #[error("certificate DER does not parse")]
    Malformed,
    #[error("trailing bytes after the certificate")]
    TrailingData,
}

/// Time as seconds since the Unix epoch (UTC). Kept as an integer so policy can compare it
/// with packet time. Serializes as its RFC 3339 string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CertificateTime(pub i64);

impl CertificateTime {
    /// `2025-01-31T12:00:00Z`: seconds precision, always `Z`. Years outside 0000..=9999
    /// (which no X.509 time can encode) get a sign and more digits, ISO 8601 style.
    pub fn to_rfc3339(&self) -> String {
        let mut buffer = [0u8; 20];
        if let Some(text) = self.four_digit_year(&mut buffer) {
            return text.to_string();
        }
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        format!(
            "{year:+05}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }

    /// The common case (years 0000..=9999) written into `buffer` digit by
    /// digit: records and evidence write several dates per session, and
    /// `format!` cost about 3,000 instructions each.
    fn four_digit_year<'b>(&self, buffer: &'b mut [u8; 20]) -> Option<&'b str> {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        if !(0..=9999).contains(&year) {
            return None;
        }
        let two = |buffer: &mut [u8; 20], at: usize, value: i64| {
            buffer[at] = b'0' + (value / 10 % 10) as u8;
            buffer[at + 1] = b'0' + (value % 10) as u8;
        };
        *buffer = *b"0000-00-00T00:00:00Z";
        two(buffer, 0, year / 100);
        two(buffer, 2, year % 100);
        two(buffer, 5, i64::from(month));
        two(buffer, 8, i64::from(day));
        two(buffer, 11, secs / 3600);
        two(buffer, 14, secs / 60 % 60);
        two(buffer, 17, secs % 60);
        std::str::from_utf8(buffer).ok()
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`); total over i64 input.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // day is 1..=31 and month 1..=12 by construction.
    (year, month as u32, day as u32)
}

impl std::fmt::Display for CertificateTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.four_digit_year(&mut [0u8; 20]) {
            Some(text) => f.write_str(text),
            None => f.write_str(&self.to_rfc3339()),
        }
    }
}

impl serde::Serialize for CertificateTime {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.four_digit_year(&mut [0u8; 20]) {
            Some(text) => serializer.serialize_str(text),
            None => serializer.serialize_str(&self.to_rfc3339()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKeyAlgorithm {
    Rsa,
    Ec,
    Ed25519,
    Ed448,
    Dsa,
    Dh,
    MlDsa,
    /// Dotted OID of an algorithm not listed above.
    Other(String),
}

impl PublicKeyAlgorithm {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Rsa => "RSA",
            Self::Ec => "EC",
            Self::Ed25519 => "Ed25519",
            Self::Ed448 => "Ed448",
            Self::Dsa => "DSA",
            Self::Dh => "DH",
            Self::MlDsa => "ML-DSA",
            Self::Other(oid) => oid,
        }
    }
}

/// The digest a signature algorithm uses, so policy can flag MD5 and SHA-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureHash {
    Md2,
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    /// The scheme hashes internally (Ed25519, Ed448, ML-DSA).
    Intrinsic,
    /// Unrecognized algorithm, or a digest without a variant here (MD4, SHA-0).
    Unknown,
}

impl SignatureHash {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Md2 => "md2",
            Self::Md5 => "md5",
            Self::Sha1 => "sha1",
            Self::Sha224 => "sha224",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
            Self::Intrinsic => "intrinsic",
            Self::Unknown => "unknown",
        }
    }
}

/// Subject alternative names by kind, each in certificate order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubjectAltNames {
    pub dns: Vec<String>,
    pub ip: Vec<std::net::IpAddr>,
    pub uri: Vec<String>,
    pub email: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSummary {
    /// SHA-256 of the DER.
    pub sha256: [u8; 32],
    /// SHA-1 of the DER.
    pub sha1: [u8; 20],
    /// 1, 2 or 3 as people say it (the encoded value plus one).
    pub version: u32,
    /// Uppercase hex as `openssl x509 -serial` and Zeek print it: sign padding stripped,
    /// `00` for zero, `-` before a (non-conforming) negative serial.
    pub serial_hex: String,
    pub subject: DistinguishedName,
    pub issuer: DistinguishedName,
    pub not_before: CertificateTime,
    pub not_after: CertificateTime,
    pub public_key_algorithm: PublicKeyAlgorithm,
    /// Bits: RSA modulus, EC field size of a named curve, 256 for Ed25519, 456 for Ed448,
    /// DSA/DH prime, ML-DSA encoded key length (as OpenSSL and Zeek report it).
    pub public_key_size: Option<u32>,
    /// OpenSSL short name (`prime256v1`, `secp384r1`, ...), the dotted OID for a curve not
    /// known here, None if not EC or the curve is not named.
    pub public_key_curve: Option<String>,
    /// RSA public exponent, if it fits in 64 bits.
    pub public_key_exponent: Option<u64>,
    /// OpenSSL long name (`sha256WithRSAEncryption`, `ecdsa-with-SHA256`, `rsassaPss`,
    /// `ED25519`, `ML-DSA-44`), else the dotted OID.
    pub signature_algorithm: String,
    pub signature_hash: SignatureHash,
    pub alt_names: SubjectAltNames,
    /// basicConstraints cA; None when the extension is absent.
    pub is_ca: Option<bool>,
    pub path_len: Option<u32>,
    /// ECS names in bit order: `digital_signature`, `content_commitment`, ...
    pub key_usage: Vec<String>,
    /// `server_auth`, `client_auth`, `code_signing`, `email_protection`, `time_stamping`,
    /// `ocsp_signing`, `any`, then other purposes as dotted OIDs.
    pub extended_key_usage: Vec<String>,
    /// Subject and issuer DN are byte-identical.
    pub self_issued: bool,
    /// Self-issued and the signature verifies with the certificate's own key; where the
    /// algorithm cannot be verified here, self-issued and the authority key id is absent or
    /// equals the subject key id.
    pub self_signed: bool,
    pub subject_key_id: Option<Vec<u8>>,
    pub authority_key_id: Option<Vec<u8>>,
    pub der_len: usize,
}

impl CertificateSummary {
    pub fn sha256_hex(&self) -> String {
        hex_upper(&self.sha256)
    }

    pub fn sha1_hex(&self) -> String {
        hex_upper(&self.sha1)
    }

    /// Heap bytes behind this summary (its strings and lists), for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        fn strings(list: &[String]) -> usize {
            list.iter().map(|s| s.capacity() + 24).sum()
        }
        let names = &self.alt_names;
        self.serial_hex.capacity()
            + self.subject.heap_bytes()
            + self.issuer.heap_bytes()
            + self.public_key_curve.as_ref().map_or(0, String::capacity)
            + self.signature_algorithm.capacity()
            + strings(&names.dns)
            + strings(&names.uri)
            + strings(&names.email)
            + names.ip.len() * 17
            + strings(&self.key_usage)
            + strings(&self.extended_key_usage)
            + self.subject_key_id.as_ref().map_or(0, Vec::capacity)
            + self.authority_key_id.as_ref().map_or(0, Vec::capacity)
    }
}

/// A name as Zeek's x509.log shows it, plus the values of its common attributes. Lists are in
/// the string's order (most specific first), and `common_name` is the first CN of it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DistinguishedName {
    /// RFC 4514 string exactly as OpenSSL's `XN_FLAG_RFC2253` prints it (Zeek's form), e.g.
    /// `CN=api.internal,O=tlstap\, Inc.,C=DE`. Unlike x509-parser's `Display`, which is in DER
    /// order, comma-space separated and unescaped; see `name.rs` for the details.
    pub rfc4514: String,
    pub common_name: Option<String>,
    pub organization: Vec<String>,
    pub organizational_unit: Vec<String>,
    pub country: Vec<String>,
    pub locality: Vec<String>,
    pub state_or_province: Vec<String>,
}

impl DistinguishedName {
    fn heap_bytes(&self) -> usize {
        let list = |l: &[String]| l.iter().map(|s| s.capacity() + 24).sum::<usize>();
        self.rfc4514.capacity()
            + self.common_name.as_ref().map_or(0, String::capacity)
            + list(&self.organization)
            + list(&self.organizational_unit)
            + list(&self.country)
            + list(&self.locality)
            + list(&self.state_or_province)
    }
}

/// Whether a certificate's signature verifies under a given key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureCheck {
    Verified,
    /// It does not verify, or the key cannot make this kind of signature.
    Failed,
    /// The algorithm, curve or key size is outside what the verifier (ring) supports, e.g.
    /// MD5, ECDSA P-521, Ed448, ML-DSA, or an RSA key below 2048 bits with SHA-256.
    Unsupported,
}

/// Summarize one DER certificate.
pub fn summarize(der: &[u8]) -> Result<CertificateSummary, X509Error> {
    let cert = parse(der)?;
    let tbs = &cert.tbs_certificate;

    let key = algorithms::key_info(cert.public_key());
    let signature = algorithms::signature_info(&cert.signature_algorithm);

    let mut alt_names: Option<SubjectAltNames> = None;
    let mut basic_constraints = None;
    let mut key_usage = None;
    let mut extended_key_usage = None;
    let mut subject_key_id = None;
    let mut authority_key_id = None;
    // RFC 5280 section 4.2 forbids repeating an extension; if a certificate does, the first
    // one counts. Extensions that do not parse are treated as absent.
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) if alt_names.is_none() => {
                alt_names = Some(alt_names_of(&san.general_names));
            }
            ParsedExtension::BasicConstraints(bc) if basic_constraints.is_none() => {
                basic_constraints = Some((bc.ca, bc.path_len_constraint));
            }
            ParsedExtension::KeyUsage(ku) if key_usage.is_none() => {
                key_usage = Some(algorithms::key_usage(ku));
            }
            ParsedExtension::ExtendedKeyUsage(eku) if extended_key_usage.is_none() => {
                extended_key_usage = Some(algorithms::extended_key_usage(eku));
            }
            ParsedExtension::SubjectKeyIdentifier(id) if subject_key_id.is_none() => {
                subject_key_id = Some(id.0.to_vec());
            }
            ParsedExtension::AuthorityKeyIdentifier(akid) if authority_key_id.is_none() => {
                // Some(None) marks an AKID without keyIdentifier, so a later one is ignored.
                authority_key_id = Some(akid.key_identifier.as_ref().map(|id| id.0.to_vec()));
            }
            _ => {}
        }
    }
    let authority_key_id = authority_key_id.flatten();

    let self_issued = tbs.subject.as_raw() == tbs.issuer.as_raw();
    let self_signed = self_issued
        && match check_signature(&cert, cert.public_key()) {
            SignatureCheck::Verified => true,
            SignatureCheck::Failed => false,
            SignatureCheck::Unsupported => {
                authority_key_id.is_none() || authority_key_id == subject_key_id
            }
        };

    Ok(CertificateSummary {
        sha256: Sha256::digest(der).into(),
        sha1: Sha1::digest(der).into(),
        version: tbs.version.0.saturating_add(1),
        serial_hex: serial_hex(tbs.raw_serial()),
        subject: name::distinguished_name(&tbs.subject),
        issuer: name::distinguished_name(&tbs.issuer),
        not_before: CertificateTime(tbs.validity.not_before.timestamp()),
        not_after: CertificateTime(tbs.validity.not_after.timestamp()),
        public_key_algorithm: key.algorithm,
        public_key_size: key.size,
        public_key_curve: key.curve,
        public_key_exponent: key.exponent,
        signature_algorithm: signature.name,
        signature_hash: signature.hash,
        alt_names: alt_names.unwrap_or_default(),
        is_ca: basic_constraints.map(|(ca, _)| ca),
        path_len: basic_constraints.and_then(|(_, len)| len),
        key_usage: key_usage.unwrap_or_default(),
        extended_key_usage: extended_key_usage.unwrap_or_default(),
        self_issued,
        self_signed,
        subject_key_id,
        authority_key_id,
        der_len: der.len(),
    })
}

/// Verifies that `child` was signed by `issuer`'s public key (for chain checks done later by
/// policy). Only the signature is checked, not names or validity. Ok(false) also when the
/// algorithm cannot be verified here; [`check_issued_by`] tells the two apart.
pub fn verify_issued_by(child_der: &[u8], issuer_der: &[u8]) -> Result<bool, X509Error> {
    Ok(check_issued_by(child_der, issuer_der)? == SignatureCheck::Verified)
}

/// Like [`verify_issued_by`], but says whether a negative answer means "does not verify" or
/// "cannot be verified here".
pub fn check_issued_by(child_der: &[u8], issuer_der: &[u8]) -> Result<SignatureCheck, X509Error> {
    let child = parse(child_der)?;
    let issuer = parse(issuer_der)?;
    Ok(check_signature(&child, issuer.public_key()))
}

/// The subject DN (RFC 4514, as in [`DistinguishedName::rfc4514`]) without the
/// rest of the summary: loading a system trust store needs only this, and
/// verifying ~150 self-signatures at start-up would cost tens of milliseconds.
pub fn subject_rfc4514(der: &[u8]) -> Result<String, X509Error> {
    let certificate = parse(der)?;
    Ok(name::distinguished_name(certificate.subject()).rfc4514)
}

/// The DER of every CERTIFICATE block in a PEM bundle (a trust store file).
/// Blocks of other types are skipped; a damaged block is an error.
pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<Vec<u8>>, X509Error> {
    let mut out = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(pem) {
        let block = block.map_err(|_| X509Error::Malformed)?;
        if block.label == "CERTIFICATE" {
            out.push(block.contents);
        }
    }
    Ok(out)
}

/// Uppercase hex helper used for fingerprints: `hex_upper(&[0xab, 0x01]) == "AB01"`.
pub fn hex_upper(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, X509Error> {
    if der.len() > MAX_CERTIFICATE_DER {
        return Err(X509Error::TooLarge(MAX_CERTIFICATE_DER));
    }
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(X509Error::TrailingData),
        Err(_) => Err(X509Error::Malformed),
    }
}

/// OpenSSL's `i2a_ASN1_INTEGER`: magnitude bytes in uppercase hex, `-` if negative.
fn serial_hex(raw: &[u8]) -> String {
    let negative = raw.first().is_some_and(|b| b & 0x80 != 0);
    let magnitude = if negative {
        // Two's complement: invert and add one.
        let mut m: Vec<u8> = raw.iter().map(|b| !b).collect();
        for byte in m.iter_mut().rev() {
            let (v, carry) = byte.overflowing_add(1);
            *byte = v;
            if !carry {
                break;
            }
        }
        m
    } else {
        raw.to_vec()
    };
    let digits = algorithms::strip_leading(&magnitude, 0);
    let digits = if digits.is_empty() {
        "00".to_owned()
    } else {
        hex_upper(digits)
    };
    if negative {
        format!("-{digits}")
    } else {
        digits
    }
}

fn alt_names_of(names: &[GeneralName<'_>]) -> SubjectAltNames {
    let mut out = SubjectAltNames::default();
    for name in names {
        match name {
            GeneralName::DNSName(s) => out.dns.push((*s).to_owned()),
            GeneralName::URI(s) => out.uri.push((*s).to_owned()),
            GeneralName::RFC822Name(s) => out.email.push((*s).to_owned()),
            // RFC 5280 section 4.2.1.6: 4 octets for IPv4, 16 for IPv6; other lengths dropped.
            GeneralName::IPAddress(bytes) => {
                if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                    out.ip.push(std::net::IpAddr::from(v4));
                } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                    out.ip.push(std::net::IpAddr::from(v6));
                }
            }
            // IA5String names that are not UTF-8: keep them, lossily.
            GeneralName::Invalid(tag, bytes) => {
                let text = String::from_utf8_lossy(bytes).into_owned();
                match tag.0 {
                    1 => out.email.push(text),
                    2 => out.dns.push(text),
                    6 => out.uri.push(text),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    out
}

/// Verify `cert`'s signature with `signer`, telling unsupported algorithms from failures.
fn check_signature(
    cert: &X509Certificate<'_>,
    signer: &SubjectPublicKeyInfo<'_>,
) -> SignatureCheck {
    let signature = algorithms::signature_info(&cert.signature_algorithm);
    let key = algorithms::key_info(signer).algorithm;
    if let Some(family) = signature.family {
        let fits = matches!(
            (family, &key),
            (SignatureFamily::Rsa, PublicKeyAlgorithm::Rsa)
                | (SignatureFamily::Ecdsa, PublicKeyAlgorithm::Ec)
                | (SignatureFamily::Dsa, PublicKeyAlgorithm::Dsa)
                | (SignatureFamily::Ed25519, PublicKeyAlgorithm::Ed25519)
                | (SignatureFamily::Ed448, PublicKeyAlgorithm::Ed448)
                | (SignatureFamily::MlDsa, PublicKeyAlgorithm::MlDsa)
        );
        if !fits {
            return match key {
                PublicKeyAlgorithm::Other(_) => SignatureCheck::Unsupported,
                _ => SignatureCheck::Failed,
            };
        }
        if family == SignatureFamily::Rsa && !ring_accepts_rsa_key(signer, signature.hash) {
            return SignatureCheck::Unsupported;
        }
    }
    match cert.verify_signature(Some(signer)) {
        Ok(()) => SignatureCheck::Verified,
        Err(ParserError::SignatureUnsupportedAlgorithm) => SignatureCheck::Unsupported,
        Err(_) => SignatureCheck::Failed,
    }
}

/// ring rejects RSA keys outside its policy (modulus 1024 bits for SHA-1, else 2048, up to
/// 8192, rounded up to whole bytes for the minimum; odd exponent 3..2^33) as a verification
/// failure; for a fact that is "cannot verify here", not "does not verify".
fn ring_accepts_rsa_key(signer: &SubjectPublicKeyInfo<'_>, hash: SignatureHash) -> bool {
    let Some((bits, exponent)) = algorithms::rsa_modulus_bits_and_exponent(signer) else {
        // A key that does not parse is left to the verifier, which fails it.
        return true;
    };
    let min_bits = if hash == SignatureHash::Sha1 {
        1024
    } else {
        2048
    };
    let rounded_up = bits.div_ceil(8) * 8;
    rounded_up >= min_bits
        && bits <= 8192
        && (3..(1u64 << 33)).contains(&exponent)
        && exponent % 2 == 1
}
