//! Distinguished names: the RFC 4514 string in the exact form Zeek's x509.log shows, plus the
//! decoded values of the common attributes.
//!
//! Zeek prints names with OpenSSL's `X509_NAME_print_ex(.., XN_FLAG_RFC2253)`, and the corpus
//! facts use the same form, so this reproduces that function rather than x509-parser's
//! `Display` (which prints in DER order, joins with ", " and " + ", and escapes nothing).
//! What OpenSSL does, and this code copies:
//! - attributes in reverse DER order (most specific first); a multi-valued RDN's members are
//!   reversed too and joined with `+`, RDNs with `,`;
//! - OpenSSL short names (`CN`, `emailAddress`, `street`, `jurisdictionC`, ...); an OID OpenSSL
//!   does not know is printed dotted and its value as `#` + hex of the value's DER;
//! - escaping: `"+,;<>\` always, `#` first, space first or last get a backslash; control
//!   bytes and every byte >= 0x80 are printed as `\XX`, so the string is pure ASCII
//!   (a UTF-8 `é` becomes `\C3\A9`);
//! - one-byte string types (Printable, T61, IA5, ...) are read as Latin-1, BMPString as
//!   UCS-2 and UniversalString as UCS-4, then UTF-8 encoded before that escaping; UTF8String
//!   bytes are escaped as they are, valid or not; other value types are dumped as `#` + DER hex.
//!
//! Known differences: where OpenSSL fails the whole print (BMPString of odd length,
//! UniversalString not a multiple of 4) this dumps that value as `#` + DER hex instead; a
//! certificate OpenSSL refuses outright (invalid UTF8String) is still printed here; Zeek
//! truncates names at 2047 bytes (its buffer), this does not.

use x509_parser::asn1_rs::{Any, Class, Tag, ToDer};
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

use super::algorithms::dotted_oid;
use super::{hex_upper, DistinguishedName};

pub(crate) fn distinguished_name(name: &X509Name<'_>) -> DistinguishedName {
    let mut dn = DistinguishedName::default();
    let rdns: Vec<_> = name.iter_rdn().collect();
    for (rdn_index, rdn) in rdns.iter().rev().enumerate() {
        let attrs: Vec<_> = rdn.iter().collect();
        for (attr_index, attr) in attrs.iter().rev().enumerate() {
            if rdn_index > 0 || attr_index > 0 {
                dn.rfc4514.push(if attr_index > 0 { '+' } else { ',' });
            }
            let oid = dotted_oid(attr.attr_type());
            push_attribute(&mut dn.rfc4514, &oid, attr.attr_value());

            let list = match oid.as_str() {
                "2.5.4.3" => {
                    // The first CN as printed: the most specific one, as tshark/Zeek users see it.
                    if dn.common_name.is_none() {
                        dn.common_name = Some(attribute_text(attr));
                    }
                    continue;
                }
                "2.5.4.10" => &mut dn.organization,
                "2.5.4.11" => &mut dn.organizational_unit,
                "2.5.4.6" => &mut dn.country,
                "2.5.4.7" => &mut dn.locality,
                "2.5.4.8" => &mut dn.state_or_province,
                _ => continue,
            };
            list.push(attribute_text(attr));
        }
    }
    dn
}

/// Human-readable value: the string if it decodes, else `#` + hex of the value's DER.
/// One-byte types are taken as UTF-8 when they are valid UTF-8 (what CAs that misuse them
/// mean) and as Latin-1 otherwise; invalid UTF-8, BMP or UCS-4 units become U+FFFD.
pub(crate) fn attribute_text(attr: &AttributeTypeAndValue<'_>) -> String {
    if let Ok(s) = attr.as_str() {
        return s.to_owned();
    }
    let value = attr.attr_value();
    let decoded = match string_kind(value) {
        Some(StringKind::Utf8) => Some(String::from_utf8_lossy(value.data).into_owned()),
        Some(StringKind::OneByte) => Some(match std::str::from_utf8(value.data) {
            Ok(s) => s.to_owned(),
            Err(_) => value.data.iter().map(|&b| char::from(b)).collect(),
        }),
        Some(StringKind::Bmp) => {
            let units = value.data.chunks_exact(2);
            let odd_tail = !units.remainder().is_empty();
            let mut s: String = char::decode_utf16(units.map(|c| match c {
                [hi, lo] => u16::from_be_bytes([*hi, *lo]),
                _ => 0xFFFD,
            }))
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect();
            if odd_tail {
                s.push(char::REPLACEMENT_CHARACTER);
            }
            Some(s)
        }
        Some(StringKind::Universal) => Some(
            ucs4_chars(value.data)
                .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect(),
        ),
        None => None,
    };
    decoded.unwrap_or_else(|| der_dump(value))
}

#[derive(Clone, Copy)]
enum StringKind {
    Utf8,
    /// One byte per character (Latin-1 as far as OpenSSL is concerned).
    OneByte,
    Bmp,
    Universal,
}

/// The string types OpenSSL prints as text (its `tag2nbyte` table); anything else is dumped.
fn string_kind(value: &Any<'_>) -> Option<StringKind> {
    if value.class() != Class::Universal || value.header.is_constructed() {
        return None;
    }
    match value.tag() {
        Tag::Utf8String => Some(StringKind::Utf8),
        Tag::NumericString
        | Tag::PrintableString
        | Tag::T61String
        | Tag::Ia5String
        | Tag::UtcTime
        | Tag::GeneralizedTime
        | Tag::VisibleString => Some(StringKind::OneByte),
        Tag::BmpString => Some(StringKind::Bmp),
        Tag::UniversalString => Some(StringKind::Universal),
        _ => None,
    }
}

fn ucs4_chars(data: &[u8]) -> impl Iterator<Item = Option<char>> + '_ {
    data.chunks(4).map(|c| match c {
        [a, b, c, d] => char::from_u32(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => None,
    })
}

fn push_attribute(out: &mut String, oid: &str, value: &Any<'_>) {
    match short_name(oid) {
        Some(sn) => {
            out.push_str(sn);
            out.push('=');
            push_value(out, value);
        }
        None => {
            out.push_str(oid);
            out.push('=');
            out.push_str(&der_dump(value));
        }
    }
}

fn push_value(out: &mut String, value: &Any<'_>) {
    let data = value.data;
    // Bytes as OpenSSL emits them before escaping (UTF-8 for all but raw UTF8String bytes).
    let bytes: Vec<u8> = match string_kind(value) {
        Some(StringKind::Utf8) => data.to_vec(),
        Some(StringKind::OneByte) => utf8_of(data.iter().map(|&b| Some(char::from(b)))),
        Some(StringKind::Bmp) if data.len() % 2 == 0 => utf8_of(data.chunks(2).map(|c| match c {
            // UTF8_putc drops surrogates; OpenSSL never pairs them in a BMPString.
            [hi, lo] => char::from_u32(u32::from(u16::from_be_bytes([*hi, *lo]))),
            _ => None,
        })),
        Some(StringKind::Universal) if data.len() % 4 == 0 => utf8_of(ucs4_chars(data)),
        _ => {
            out.push_str(&der_dump(value));
            return;
        }
    };
    let last = bytes.len().saturating_sub(1);
    for (i, &b) in bytes.iter().enumerate() {
        escape_byte(out, b, i == 0, i == last);
    }
}

/// Characters OpenSSL cannot encode (surrogates, > U+10FFFF) are skipped, as OpenSSL does.
fn utf8_of(chars: impl Iterator<Item = Option<char>>) -> Vec<u8> {
    let mut s = String::new();
    s.extend(chars.flatten());
    s.into_bytes()
}

/// OpenSSL `do_esc_char` with `ASN1_STRFLGS_RFC2253` (RFC 4514 section 2.4).
fn escape_byte(out: &mut String, b: u8, first: bool, last: bool) {
    match b {
        b'"' | b'+' | b',' | b';' | b'<' | b'>' | b'\\' => {
            out.push('\\');
            out.push(char::from(b));
        }
        b'#' if first => out.push_str("\\#"),
        b' ' if first || last => out.push_str("\\ "),
        0x00..=0x1f | 0x7f..=0xff => {
            out.push('\\');
            out.push_str(&hex_upper(&[b]));
        }
        _ => out.push(char::from(b)),
    }
}

/// `#` + uppercase hex of the value's DER (tag, length, content), as OpenSSL's `do_dump`.
fn der_dump(value: &Any<'_>) -> String {
    let der = value.to_der_vec().unwrap_or_else(|_| value.data.to_vec());
    format!("#{}", hex_upper(&der))
}

/// OpenSSL short names (`OBJ_nid2sn`) of the attribute types OpenSSL 3.0 knows; checked
/// against `openssl x509 -nameopt RFC2253` for each OID.
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "street",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.13" => "description",
        "2.5.4.14" => "searchGuide",
        "2.5.4.15" => "businessCategory",
        "2.5.4.16" => "postalAddress",
        "2.5.4.17" => "postalCode",
        "2.5.4.18" => "postOfficeBox",
        "2.5.4.19" => "physicalDeliveryOfficeName",
        "2.5.4.20" => "telephoneNumber",
        "2.5.4.21" => "telexNumber",
        "2.5.4.22" => "teletexTerminalIdentifier",
        "2.5.4.23" => "facsimileTelephoneNumber",
        "2.5.4.24" => "x121Address",
        "2.5.4.25" => "internationaliSDNNumber",
        "2.5.4.26" => "registeredAddress",
        "2.5.4.27" => "destinationIndicator",
        "2.5.4.28" => "preferredDeliveryMethod",
        "2.5.4.29" => "presentationAddress",
        "2.5.4.30" => "supportedApplicationContext",
        "2.5.4.31" => "member",
        "2.5.4.32" => "owner",
        "2.5.4.33" => "roleOccupant",
        "2.5.4.34" => "seeAlso",
        "2.5.4.35" => "userPassword",
        "2.5.4.36" => "userCertificate",
        "2.5.4.37" => "cACertificate",
        "2.5.4.38" => "authorityRevocationList",
        "2.5.4.39" => "certificateRevocationList",
        "2.5.4.40" => "crossCertificatePair",
        "2.5.4.41" => "name",
        "2.5.4.42" => "GN",
        "2.5.4.43" => "initials",
        "2.5.4.44" => "generationQualifier",
        "2.5.4.45" => "x500UniqueIdentifier",
        "2.5.4.46" => "dnQualifier",
        "2.5.4.47" => "enhancedSearchGuide",
        "2.5.4.48" => "protocolInformation",
        "2.5.4.49" => "distinguishedName",
        "2.5.4.50" => "uniqueMember",
        "2.5.4.51" => "houseIdentifier",
        "2.5.4.52" => "supportedAlgorithms",
        "2.5.4.53" => "deltaRevocationList",
        "2.5.4.54" => "dmdName",
        "2.5.4.65" => "pseudonym",
        "2.5.4.72" => "role",
        "2.5.4.97" => "organizationIdentifier",
        "2.5.4.98" => "c3",
        "2.5.4.99" => "n3",
        "2.5.4.100" => "dnsName",
        "1.2.840.113549.1.9.1" => "emailAddress",
        "1.2.840.113549.1.9.2" => "unstructuredName",
        "1.2.840.113549.1.9.3" => "contentType",
        "1.2.840.113549.1.9.4" => "messageDigest",
        "1.2.840.113549.1.9.5" => "signingTime",
        "1.2.840.113549.1.9.6" => "countersignature",
        "1.2.840.113549.1.9.7" => "challengePassword",
        "1.2.840.113549.1.9.8" => "unstructuredAddress",
        "1.2.840.113549.1.9.9" => "extendedCertificateAttributes",
        "1.2.840.113549.1.9.20" => "friendlyName",
        "1.2.840.113549.1.9.21" => "localKeyID",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.2" => "textEncodedORAddress",
        "0.9.2342.19200300.100.1.3" => "mail",
        "0.9.2342.19200300.100.1.4" => "info",
        "0.9.2342.19200300.100.1.5" => "favouriteDrink",
        "0.9.2342.19200300.100.1.6" => "roomNumber",
        "0.9.2342.19200300.100.1.7" => "photo",
        "0.9.2342.19200300.100.1.8" => "userClass",
        "0.9.2342.19200300.100.1.9" => "host",
        "0.9.2342.19200300.100.1.10" => "manager",
        "0.9.2342.19200300.100.1.11" => "documentIdentifier",
        "0.9.2342.19200300.100.1.12" => "documentTitle",
        "0.9.2342.19200300.100.1.13" => "documentVersion",
        "0.9.2342.19200300.100.1.14" => "documentAuthor",
        "0.9.2342.19200300.100.1.15" => "documentLocation",
        "0.9.2342.19200300.100.1.20" => "homeTelephoneNumber",
        "0.9.2342.19200300.100.1.21" => "secretary",
        "0.9.2342.19200300.100.1.22" => "otherMailbox",
        "0.9.2342.19200300.100.1.23" => "lastModifiedTime",
        "0.9.2342.19200300.100.1.24" => "lastModifiedBy",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.26" => "aRecord",
        "0.9.2342.19200300.100.1.27" => "pilotAttributeType27",
        "0.9.2342.19200300.100.1.28" => "mXRecord",
        "0.9.2342.19200300.100.1.29" => "nSRecord",
        "0.9.2342.19200300.100.1.30" => "sOARecord",
        "0.9.2342.19200300.100.1.31" => "cNAMERecord",
        "0.9.2342.19200300.100.1.37" => "associatedDomain",
        "0.9.2342.19200300.100.1.38" => "associatedName",
        "0.9.2342.19200300.100.1.39" => "homePostalAddress",
        "0.9.2342.19200300.100.1.40" => "personalTitle",
        "0.9.2342.19200300.100.1.41" => "mobileTelephoneNumber",
        "0.9.2342.19200300.100.1.42" => "pagerTelephoneNumber",
        "0.9.2342.19200300.100.1.43" => "friendlyCountryName",
        "0.9.2342.19200300.100.1.44" => "uid",
        "0.9.2342.19200300.100.1.45" => "organizationalStatus",
        "0.9.2342.19200300.100.1.46" => "janetMailbox",
        "0.9.2342.19200300.100.1.47" => "mailPreferenceOption",
        "0.9.2342.19200300.100.1.48" => "buildingName",
        "0.9.2342.19200300.100.1.49" => "dSAQuality",
        "0.9.2342.19200300.100.1.50" => "singleLevelQuality",
        "0.9.2342.19200300.100.1.51" => "subtreeMinimumQuality",
        "0.9.2342.19200300.100.1.52" => "subtreeMaximumQuality",
        "0.9.2342.19200300.100.1.53" => "personalSignature",
        "0.9.2342.19200300.100.1.54" => "dITRedirect",
        "0.9.2342.19200300.100.1.55" => "audio",
        "0.9.2342.19200300.100.1.56" => "documentPublisher",
        "1.3.6.1.4.1.311.60.2.1.1" => "jurisdictionL",
        "1.3.6.1.4.1.311.60.2.1.2" => "jurisdictionST",
        "1.3.6.1.4.1.311.60.2.1.3" => "jurisdictionC",
        _ => return None,
    })
}
