//! OID tables: signature algorithms, public-key algorithms, named curves, extended key usages.
//! Names are OpenSSL's (`openssl asn1parse` / `openssl x509 -text`), which is what Zeek logs.

use x509_parser::asn1_rs::Oid;
use x509_parser::der_parser::der::parse_der_integer;
use x509_parser::prelude::{AlgorithmIdentifier, FromDer, SubjectPublicKeyInfo};
use x509_parser::public_key::RSAPublicKey;
use x509_parser::signature_algorithm::RsaSsaPssParams;

use super::{PublicKeyAlgorithm, SignatureHash};

const RSASSA_PSS: &str = "1.2.840.113549.1.1.10";

/// Dotted form of an OID, as OpenSSL prints one it has no name for. asn1-rs 0.7's
/// `to_id_string` misreads a first subidentifier longer than one byte (2.999.1 comes out as
/// 3.16.55.1), so the base-128 arcs of the content octets are read here (X.690 8.19).
pub(crate) fn dotted_oid(oid: &Oid<'_>) -> String {
    let mut arcs: Vec<u128> = Vec::new();
    let mut acc: u128 = 0;
    let mut pending = false;
    for &b in oid.as_bytes() {
        let Some(shifted) = acc.checked_mul(128) else {
            return oid.to_id_string();
        };
        acc = shifted | u128::from(b & 0x7f);
        pending = b & 0x80 != 0;
        if !pending {
            arcs.push(acc);
            acc = 0;
        }
    }
    let Some((&first, rest)) = arcs.split_first() else {
        return oid.to_id_string();
    };
    if pending {
        return oid.to_id_string();
    }
    // The first subidentifier packs two arcs: 40 * X + Y, with Y unbounded when X is 2.
    let (x, y) = match first {
        0..=39 => (0, first),
        40..=79 => (1, first - 40),
        _ => (2, first - 80),
    };
    let mut out = format!("{x}.{y}");
    for arc in rest {
        out.push('.');
        out.push_str(&arc.to_string());
    }
    out
}

/// Which key a signature algorithm needs, to tell a mismatch from an unsupported algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignatureFamily {
    Rsa,
    Ecdsa,
    Dsa,
    Ed25519,
    Ed448,
    MlDsa,
}

pub(crate) struct SignatureInfo {
    pub name: String,
    pub hash: SignatureHash,
    pub family: Option<SignatureFamily>,
}

pub(crate) fn signature_info(alg: &AlgorithmIdentifier<'_>) -> SignatureInfo {
    use SignatureFamily as F;
    use SignatureHash as H;
    let oid = dotted_oid(&alg.algorithm);
    let known: Option<(&str, H, F)> = match oid.as_str() {
        "1.2.840.113549.1.1.2" => Some(("md2WithRSAEncryption", H::Md2, F::Rsa)),
        // No MD4 variant in SignatureHash; MD4 is as broken as MD5 but is not MD5.
        "1.2.840.113549.1.1.3" => Some(("md4WithRSAEncryption", H::Unknown, F::Rsa)),
        "1.2.840.113549.1.1.4" => Some(("md5WithRSAEncryption", H::Md5, F::Rsa)),
        "1.2.840.113549.1.1.5" => Some(("sha1WithRSAEncryption", H::Sha1, F::Rsa)),
        RSASSA_PSS => Some(("rsassaPss", pss_hash(alg), F::Rsa)),
        "1.2.840.113549.1.1.11" => Some(("sha256WithRSAEncryption", H::Sha256, F::Rsa)),
        "1.2.840.113549.1.1.12" => Some(("sha384WithRSAEncryption", H::Sha384, F::Rsa)),
        "1.2.840.113549.1.1.13" => Some(("sha512WithRSAEncryption", H::Sha512, F::Rsa)),
        "1.2.840.113549.1.1.14" => Some(("sha224WithRSAEncryption", H::Sha224, F::Rsa)),
        // SHA-512/224 and SHA-512/256 (FIPS 180-4) are truncated SHA-512.
        "1.2.840.113549.1.1.15" => Some(("sha512-224WithRSAEncryption", H::Sha512, F::Rsa)),
        "1.2.840.113549.1.1.16" => Some(("sha512-256WithRSAEncryption", H::Sha512, F::Rsa)),
        "1.3.14.3.2.29" => Some(("sha1WithRSA", H::Sha1, F::Rsa)),
        "1.3.14.3.2.3" => Some(("md5WithRSA", H::Md5, F::Rsa)),
        // SHA-0, which SignatureHash has no name for.
        "1.3.14.3.2.15" => Some(("shaWithRSAEncryption", H::Unknown, F::Rsa)),
        "1.3.14.3.2.13" => Some(("dsaWithSHA", H::Unknown, F::Dsa)),
        "1.3.14.3.2.27" => Some(("dsaWithSHA1-old", H::Sha1, F::Dsa)),
        "1.2.840.10040.4.3" => Some(("dsaWithSHA1", H::Sha1, F::Dsa)),
        "2.16.840.1.101.3.4.3.1" => Some(("dsa_with_SHA224", H::Sha224, F::Dsa)),
        "2.16.840.1.101.3.4.3.2" => Some(("dsa_with_SHA256", H::Sha256, F::Dsa)),
        "2.16.840.1.101.3.4.3.3" => Some(("dsa_with_SHA384", H::Sha384, F::Dsa)),
        "2.16.840.1.101.3.4.3.4" => Some(("dsa_with_SHA512", H::Sha512, F::Dsa)),
        "1.2.840.10045.4.1" => Some(("ecdsa-with-SHA1", H::Sha1, F::Ecdsa)),
        "1.2.840.10045.4.3.1" => Some(("ecdsa-with-SHA224", H::Sha224, F::Ecdsa)),
        "1.2.840.10045.4.3.2" => Some(("ecdsa-with-SHA256", H::Sha256, F::Ecdsa)),
        "1.2.840.10045.4.3.3" => Some(("ecdsa-with-SHA384", H::Sha384, F::Ecdsa)),
        "1.2.840.10045.4.3.4" => Some(("ecdsa-with-SHA512", H::Sha512, F::Ecdsa)),
        "1.3.101.112" => Some(("ED25519", H::Intrinsic, F::Ed25519)),
        "1.3.101.113" => Some(("ED448", H::Intrinsic, F::Ed448)),
        // FIPS 204 / RFC 9881; names as OpenSSL 3.5 (and Zeek's baseline) print them.
        "2.16.840.1.101.3.4.3.17" => Some(("ML-DSA-44", H::Intrinsic, F::MlDsa)),
        "2.16.840.1.101.3.4.3.18" => Some(("ML-DSA-65", H::Intrinsic, F::MlDsa)),
        "2.16.840.1.101.3.4.3.19" => Some(("ML-DSA-87", H::Intrinsic, F::MlDsa)),
        _ => None,
    };
    match known {
        Some((name, hash, family)) => SignatureInfo {
            name: name.to_owned(),
            hash,
            family: Some(family),
        },
        None => SignatureInfo {
            name: oid,
            hash: H::Unknown,
            family: None,
        },
    }
}

/// RFC 4055 section 3.1: the hash defaults to SHA-1 when the parameters leave it out.
fn pss_hash(alg: &AlgorithmIdentifier<'_>) -> SignatureHash {
    let Some(params) = alg.parameters.as_ref() else {
        return SignatureHash::Sha1;
    };
    match RsaSsaPssParams::try_from(params) {
        Ok(p) => hash_of(&dotted_oid(p.hash_algorithm_oid())),
        Err(_) => SignatureHash::Unknown,
    }
}

fn hash_of(oid: &str) -> SignatureHash {
    match oid {
        "1.2.840.113549.2.2" => SignatureHash::Md2,
        "1.2.840.113549.2.5" => SignatureHash::Md5,
        "1.3.14.3.2.26" => SignatureHash::Sha1,
        "2.16.840.1.101.3.4.2.4" => SignatureHash::Sha224,
        "2.16.840.1.101.3.4.2.1" => SignatureHash::Sha256,
        "2.16.840.1.101.3.4.2.2" => SignatureHash::Sha384,
        "2.16.840.1.101.3.4.2.3" => SignatureHash::Sha512,
        _ => SignatureHash::Unknown,
    }
}

/// Facts about a subject public key.
pub(crate) struct KeyInfo {
    pub algorithm: PublicKeyAlgorithm,
    pub size: Option<u32>,
    pub curve: Option<String>,
    pub exponent: Option<u64>,
}

pub(crate) fn key_info(spki: &SubjectPublicKeyInfo<'_>) -> KeyInfo {
    let oid = dotted_oid(&spki.algorithm.algorithm);
    let key_bits: &[u8] = spki.subject_public_key.data.as_ref();
    let mut info = KeyInfo {
        algorithm: key_algorithm(&oid),
        size: None,
        curve: None,
        exponent: None,
    };
    match info.algorithm {
        PublicKeyAlgorithm::Rsa => {
            if let Ok((_, rsa)) = RSAPublicKey::from_der(key_bits) {
                info.size = unsigned_bit_len(rsa.modulus);
                info.exponent = unsigned_u64(rsa.exponent);
            }
        }
        PublicKeyAlgorithm::Ec => {
            // RFC 5480 section 2.1.1: namedCurve OID; implicit or explicit curves get no name.
            if let Some(curve) = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
            {
                let curve = dotted_oid(&curve);
                match named_curve(&curve) {
                    Some((name, bits)) => {
                        info.curve = Some(name.to_owned());
                        info.size = Some(bits);
                    }
                    None => info.curve = Some(curve),
                }
            }
        }
        // RFC 8410 keys have fixed sizes; OpenSSL reports Ed448 as 456 bits.
        PublicKeyAlgorithm::Ed25519 => info.size = Some(256),
        PublicKeyAlgorithm::Ed448 => info.size = Some(456),
        // Dss-Parms (RFC 3279 section 2.3.2) and DH DomainParameters (section 2.3.3) both
        // start with the prime p, whose length is the key size.
        PublicKeyAlgorithm::Dsa | PublicKeyAlgorithm::Dh => {
            info.size = spki
                .algorithm
                .parameters
                .as_ref()
                .filter(|p| p.header.is_constructed())
                .and_then(|p| parse_der_integer(p.data).ok())
                .and_then(|(_, p)| p.as_slice().ok().and_then(unsigned_bit_len));
        }
        // OpenSSL (and so Zeek) give the encoded public key length: 10496 for ML-DSA-44.
        PublicKeyAlgorithm::MlDsa => {
            info.size = u32::try_from(key_bits.len())
                .ok()
                .and_then(|n| n.checked_mul(8));
        }
        PublicKeyAlgorithm::Other(_) => {}
    }
    info
}

fn key_algorithm(oid: &str) -> PublicKeyAlgorithm {
    match oid {
        // rsaEncryption, id-RSASSA-PSS (RFC 4055), X.500 rsa
        "1.2.840.113549.1.1.1" | RSASSA_PSS | "2.5.8.1.1" => PublicKeyAlgorithm::Rsa,
        "1.2.840.10045.2.1" => PublicKeyAlgorithm::Ec,
        "1.3.101.112" => PublicKeyAlgorithm::Ed25519,
        "1.3.101.113" => PublicKeyAlgorithm::Ed448,
        "1.2.840.10040.4.1" | "1.3.14.3.2.12" => PublicKeyAlgorithm::Dsa,
        // X9.42 dhpublicnumber, PKCS #3 dhKeyAgreement
        "1.2.840.10046.2.1" | "1.2.840.113549.1.3.1" => PublicKeyAlgorithm::Dh,
        "2.16.840.1.101.3.4.3.17" | "2.16.840.1.101.3.4.3.18" | "2.16.840.1.101.3.4.3.19" => {
            PublicKeyAlgorithm::MlDsa
        }
        other => PublicKeyAlgorithm::Other(other.to_owned()),
    }
}

/// OpenSSL short name and field size of the named curves seen on the wire.
fn named_curve(oid: &str) -> Option<(&'static str, u32)> {
    Some(match oid {
        "1.2.840.10045.3.1.7" => ("prime256v1", 256),
        "1.3.132.0.34" => ("secp384r1", 384),
        "1.3.132.0.35" => ("secp521r1", 521),
        "1.3.132.0.10" => ("secp256k1", 256),
        "1.2.840.10045.3.1.1" => ("prime192v1", 192),
        "1.3.132.0.33" => ("secp224r1", 224),
        "1.3.36.3.3.2.8.1.1.7" => ("brainpoolP256r1", 256),
        "1.3.36.3.3.2.8.1.1.11" => ("brainpoolP384r1", 384),
        "1.3.36.3.3.2.8.1.1.13" => ("brainpoolP512r1", 512),
        "1.2.156.10197.1.301" => ("SM2", 256),
        _ => return None,
    })
}

/// Bits of a non-negative big-endian INTEGER content (BN_num_bits); None if negative.
pub(crate) fn unsigned_bit_len(bytes: &[u8]) -> Option<u32> {
    if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        return None;
    }
    let significant = strip_leading(bytes, 0);
    let Some(first) = significant.first() else {
        return Some(0);
    };
    let bytes_len = u32::try_from(significant.len()).ok()?;
    bytes_len
        .checked_sub(1)?
        .checked_mul(8)?
        .checked_add(8 - first.leading_zeros())
}

fn unsigned_u64(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.first().is_some_and(|b| b & 0x80 != 0) {
        return None;
    }
    let significant = strip_leading(bytes, 0);
    if significant.len() > 8 {
        return None;
    }
    Some(
        significant
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
    )
}

pub(crate) fn strip_leading(bytes: &[u8], pad: u8) -> &[u8] {
    let start = bytes.iter().position(|&b| b != pad).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

/// RSA key size and exponent, for the pre-check against what ring can verify.
pub(crate) fn rsa_modulus_bits_and_exponent(spki: &SubjectPublicKeyInfo<'_>) -> Option<(u32, u64)> {
    let (_, rsa) = RSAPublicKey::from_der(spki.subject_public_key.data.as_ref()).ok()?;
    Some((unsigned_bit_len(rsa.modulus)?, unsigned_u64(rsa.exponent)?))
}

/// ECS-style names (RFC 5280 section 4.2.1.12) in a fixed order, since x509-parser keeps
/// only flags; other purposes follow as dotted OIDs in certificate order.
pub(crate) fn extended_key_usage(
    eku: &x509_parser::extensions::ExtendedKeyUsage<'_>,
) -> Vec<String> {
    let flags = [
        (eku.server_auth, "server_auth"),
        (eku.client_auth, "client_auth"),
        (eku.code_signing, "code_signing"),
        (eku.email_protection, "email_protection"),
        (eku.time_stamping, "time_stamping"),
        (eku.ocsp_signing, "ocsp_signing"),
        (eku.any, "any"),
    ];
    let mut out: Vec<String> = flags
        .iter()
        .filter(|(set, _)| *set)
        .map(|(_, name)| (*name).to_owned())
        .collect();
    out.extend(eku.other.iter().map(dotted_oid));
    out
}

/// RFC 5280 section 4.2.1.3, in bit order.
pub(crate) fn key_usage(ku: &x509_parser::extensions::KeyUsage) -> Vec<String> {
    let flags = [
        (ku.digital_signature(), "digital_signature"),
        (ku.non_repudiation(), "content_commitment"),
        (ku.key_encipherment(), "key_encipherment"),
        (ku.data_encipherment(), "data_encipherment"),
        (ku.key_agreement(), "key_agreement"),
        (ku.key_cert_sign(), "key_cert_sign"),
        (ku.crl_sign(), "crl_sign"),
        (ku.encipher_only(), "encipher_only"),
        (ku.decipher_only(), "decipher_only"),
    ];
    flags
        .iter()
        .filter(|(set, _)| *set)
        .map(|(_, name)| (*name).to_owned())
        .collect()
}
