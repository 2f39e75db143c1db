use std::borrow::Cow;
use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use x509_parser::asn1_rs::{Any, Oid, Tag};
use x509_parser::x509::{AttributeTypeAndValue, RelativeDistinguishedName, X509Name};

use super::*;

const IMAP_LEAF: &[u8] = include_bytes!("testdata/rsa-imap-gmx-leaf.der");
const TELESEC_INTERMEDIATE: &[u8] = include_bytes!("testdata/rsa-telesec-intermediate.der");
const PANTZ_LEAF: &[u8] = include_bytes!("testdata/ecdsa-p384-pantz-leaf.der");
const COMODO_ECC_INTERMEDIATE: &[u8] =
    include_bytes!("testdata/ecdsa-p256-comodo-intermediate.der");
const STARFIELD_ROOT: &[u8] = include_bytes!("testdata/rsa-starfield-root-escaped-dn.der");
const GENERALIZED_TIME: &[u8] = include_bytes!("testdata/rsa-generalizedtime.der");
const NO_CN: &[u8] = include_bytes!("testdata/rsa-no-cn.der");
const ML_DSA_44: &[u8] = include_bytes!("testdata/ml-dsa-44-self-signed.der");
const MD5_ROOT: &[u8] = include_bytes!("testdata/rsa-md5-cacert-root.der");
const SELF_ISSUED_OTHER_KEY: &[u8] = include_bytes!("testdata/rsa-self-issued-not-self-signed.der");

const ALL_CORPUS: [&[u8]; 10] = [
    IMAP_LEAF,
    TELESEC_INTERMEDIATE,
    PANTZ_LEAF,
    COMODO_ECC_INTERMEDIATE,
    STARFIELD_ROOT,
    GENERALIZED_TIME,
    NO_CN,
    ML_DSA_44,
    MD5_ROOT,
    SELF_ISSUED_OTHER_KEY,
];

fn summary(der: &[u8]) -> CertificateSummary {
    summarize(der).expect("corpus certificate parses")
}

// ---------------------------------------------------------------------------------------------
// Corpus certificates against the tshark facts (/work/shared/corpus/facts/*/*.jsonl)
// ---------------------------------------------------------------------------------------------

struct Fact {
    der: &'static [u8],
    sha256: &'static str,
    sha1: &'static str,
    subject_cn: Option<&'static str>,
    issuer_cn: Option<&'static str>,
    subject: &'static str,
    issuer: &'static str,
    not_before: &'static str,
    not_after: &'static str,
    serial: &'static str,
}

const FACTS: [Fact; 10] = [
    Fact {
        der: IMAP_LEAF,
        sha256: "e0129ac9d82beb2ad399c85a2d246c0a5376e1094a5410ba9157cc42c3d514c1",
        sha1: "0fe8eae24887df8efef28459fed0fc1c462485f5",
        subject_cn: Some("imap.gmx.net"),
        issuer_cn: Some("TeleSec ServerPass DE-1"),
        subject: "CN=imap.gmx.net,emailAddress=server-certs@1und1.de,L=Montabaur,ST=Rhineland-Palatinate,O=1&1 Mail & Media GmbH,C=DE",
        issuer: "CN=TeleSec ServerPass DE-1,street=Untere Industriestr. 20,L=Netphen,postalCode=57250,ST=NRW,OU=T-Systems Trust Center,O=T-Systems International GmbH,C=DE",
        not_before: "2013-11-12T10:17:31Z",
        not_after: "2016-11-17T23:59:59Z",
        serial: "339D9ED8E73927C9",
    },
    Fact {
        der: TELESEC_INTERMEDIATE,
        sha256: "3c80fe6e6a70e12fae2e7c7b289420f10a69e80dcc88847bb9836ff14a20f872",
        sha1: "a6b228c58723522484f914ce162afe9b6166b0a4",
        subject_cn: Some("TeleSec ServerPass DE-1"),
        issuer_cn: Some("Deutsche Telekom Root CA 2"),
        subject: "CN=TeleSec ServerPass DE-1,street=Untere Industriestr. 20,L=Netphen,postalCode=57250,ST=NRW,OU=T-Systems Trust Center,O=T-Systems International GmbH,C=DE",
        issuer: "CN=Deutsche Telekom Root CA 2,OU=T-TeleSec Trust Center,O=Deutsche Telekom AG,C=DE",
        not_before: "2013-03-01T13:58:29Z",
        not_after: "2019-07-09T23:59:00Z",
        serial: "21B6777E8CBD0EA8",
    },
    Fact {
        der: PANTZ_LEAF,
        sha256: "11db6d4f6e4df14cec874b9d4a306c64c282dacbd479788ee0510b2c99382dc4",
        sha1: "e69968e62a6e0cccb811ca0a5c4d35b8731b5dd0",
        subject_cn: Some("pantz.org"),
        issuer_cn: Some("COMODO ECC Domain Validation Secure Server CA"),
        subject: "CN=pantz.org,OU=PositiveSSL,OU=Domain Control Validated",
        issuer: "CN=COMODO ECC Domain Validation Secure Server CA,O=COMODO CA Limited,L=Salford,ST=Greater Manchester,C=GB",
        not_before: "2014-11-08T00:00:00Z",
        not_after: "2019-11-07T23:59:59Z",
        serial: "F0AFBBF558BF4D1B71FED9CB33793EE4",
    },
    Fact {
        der: COMODO_ECC_INTERMEDIATE,
        sha256: "7e32368e24a2cc48d3d29e883b260e40ceda22af97189c78fc5b928484e9a010",
        sha1: "16ee54e48c76eaa1052e09010d8faefee95e5ebb",
        subject_cn: Some("COMODO ECC Domain Validation Secure Server CA"),
        issuer_cn: Some("COMODO ECC Certification Authority"),
        subject: "CN=COMODO ECC Domain Validation Secure Server CA,O=COMODO CA Limited,L=Salford,ST=Greater Manchester,C=GB",
        issuer: "CN=COMODO ECC Certification Authority,O=COMODO CA Limited,L=Salford,ST=Greater Manchester,C=GB",
        not_before: "2014-03-13T00:00:00Z",
        not_after: "2029-03-12T23:59:59Z",
        serial: "510601E63B50673C55EE4E19DA304CA8",
    },
    Fact {
        der: STARFIELD_ROOT,
        sha256: "2ce1cb0bf9d2f9e102993fbe215152c3b2dd0cabde1c68e5319b839154dbb7f5",
        sha1: "b51c067cee2b0c3df855ab2d92f4fe39d4e70f0e",
        subject_cn: Some("Starfield Root Certificate Authority - G2"),
        issuer_cn: Some("Starfield Root Certificate Authority - G2"),
        subject: "CN=Starfield Root Certificate Authority - G2,O=Starfield Technologies\\, Inc.,L=Scottsdale,ST=Arizona,C=US",
        issuer: "CN=Starfield Root Certificate Authority - G2,O=Starfield Technologies\\, Inc.,L=Scottsdale,ST=Arizona,C=US",
        not_before: "2009-09-01T00:00:00Z",
        not_after: "2037-12-31T23:59:59Z",
        serial: "00",
    },
    Fact {
        der: GENERALIZED_TIME,
        sha256: "cd08183f5ed85d69936278bf8d3e9a850abe14921dbe45e6b28364512a19e0b8",
        sha1: "467a040e71cecb6100e8391aadebe08a4f501290",
        subject_cn: Some("bro-generalizedtime-test"),
        issuer_cn: Some("bro-generalizedtime-test"),
        subject: "CN=bro-generalizedtime-test,O=Bro,C=NL",
        issuer: "CN=bro-generalizedtime-test,O=Bro,C=NL",
        not_before: "2015-09-01T13:33:37Z",
        not_after: "2025-09-01T13:33:37Z",
        serial: "03E8",
    },
    Fact {
        der: NO_CN,
        sha256: "3cd6d125cca7c6f128928b0570cd3dc6efb0ad52f95dbff292011106b7f8d4b4",
        sha1: "36ffd6dc09f1578d3a978c29feed84c425f1e9d4",
        subject_cn: None,
        issuer_cn: None,
        subject: "O=TestCorp",
        issuer: "O=TestCorp",
        not_before: "2015-03-04T00:31:05Z",
        not_after: "2016-03-03T00:31:05Z",
        serial: "FA17A614059B1EF3",
    },
    Fact {
        der: ML_DSA_44,
        sha256: "fd95785a038018dccb84cd816602920a1e010d8acd9ce63407aa68440f595758",
        sha1: "d36abb9e6c6b82270778a6b56ef822d0cbc06b81",
        subject_cn: Some("ml-dsa.example.com"),
        issuer_cn: Some("ml-dsa.example.com"),
        subject: "CN=ml-dsa.example.com,O=PQC-Test,C=US",
        issuer: "CN=ml-dsa.example.com,O=PQC-Test,C=US",
        not_before: "2026-04-03T07:06:08Z",
        not_after: "2027-04-03T07:06:08Z",
        serial: "6CC93D07602EC79CFD5201B425D1A93C7023197F",
    },
    Fact {
        der: MD5_ROOT,
        sha256: "ff2a65cff1149c7430101e0f65a07ec19183a3b633ef4a6510890dad18316b3a",
        sha1: "135cec36f49cb8e93b1ab270cd80884676ce8f33",
        subject_cn: Some("CA Cert Signing Authority"),
        issuer_cn: Some("CA Cert Signing Authority"),
        subject: "emailAddress=support@cacert.org,CN=CA Cert Signing Authority,OU=http://www.cacert.org,O=Root CA",
        issuer: "emailAddress=support@cacert.org,CN=CA Cert Signing Authority,OU=http://www.cacert.org,O=Root CA",
        not_before: "2003-03-30T12:29:49Z",
        not_after: "2033-03-29T12:29:49Z",
        serial: "00",
    },
    Fact {
        der: SELF_ISSUED_OTHER_KEY,
        sha256: "e3803fed72de6742148784b568c223771e91a6a2720849973d30995d627bc4f0",
        sha1: "ff97dc57dceb803167cb8e4090e6f3fae863328a",
        subject_cn: None,
        issuer_cn: None,
        subject: "O=Internet Widgits Pty Ltd,ST=Some-State,C=AU",
        issuer: "O=Internet Widgits Pty Ltd,ST=Some-State,C=AU",
        not_before: "2018-10-29T20:36:10Z",
        not_after: "2028-09-06T20:36:10Z",
        serial: "01",
    },
];

#[test]
fn corpus_certificates_match_the_tshark_facts() {
    for fact in &FACTS {
        let s = summary(fact.der);
        assert_eq!(s.sha256_hex(), fact.sha256.to_uppercase());
        assert_eq!(s.sha1_hex(), fact.sha1.to_uppercase());
        assert_eq!(
            s.subject.rfc4514, fact.subject,
            "subject of {}",
            fact.sha256
        );
        assert_eq!(s.issuer.rfc4514, fact.issuer, "issuer of {}", fact.sha256);
        assert_eq!(s.subject.common_name.as_deref(), fact.subject_cn);
        assert_eq!(s.issuer.common_name.as_deref(), fact.issuer_cn);
        assert_eq!(s.not_before.to_rfc3339(), fact.not_before);
        assert_eq!(s.not_after.to_rfc3339(), fact.not_after);
        assert_eq!(s.serial_hex, fact.serial);
        assert_eq!(s.der_len, fact.der.len());
    }
}

#[test]
fn rsa_leaf_reports_what_openssl_shows() {
    let s = summary(IMAP_LEAF);
    assert_eq!(s.version, 3);
    assert_eq!(s.public_key_algorithm, PublicKeyAlgorithm::Rsa);
    assert_eq!(s.public_key_size, Some(2048));
    assert_eq!(s.public_key_exponent, Some(65537));
    assert_eq!(s.public_key_curve, None);
    assert_eq!(s.signature_algorithm, "sha1WithRSAEncryption");
    assert_eq!(s.signature_hash, SignatureHash::Sha1);
    assert_eq!(s.alt_names.dns, ["imap.gmx.net", "imap.gmx.de"]);
    assert!(s.alt_names.ip.is_empty() && s.alt_names.uri.is_empty());
    assert!(s.alt_names.email.is_empty());
    assert_eq!(s.key_usage, ["digital_signature", "key_encipherment"]);
    // The certificate lists clientAuth first; the summary uses a fixed order.
    assert_eq!(s.extended_key_usage, ["server_auth", "client_auth"]);
    assert_eq!(s.is_ca, Some(false));
    assert_eq!(s.path_len, None);
    assert!(!s.self_issued && !s.self_signed);
    assert_eq!(s.subject.organization, ["1&1 Mail & Media GmbH"]);
    assert_eq!(s.subject.locality, ["Montabaur"]);
    assert_eq!(s.subject.state_or_province, ["Rhineland-Palatinate"]);
    assert_eq!(s.subject.country, ["DE"]);
    assert!(s.subject.organizational_unit.is_empty());
    assert_eq!(
        s.subject_key_id.as_deref().map(hex_upper).as_deref(),
        Some("5F6F6818C83E95FA804DD888B95908F401D75E9A")
    );
    let issuer = summary(TELESEC_INTERMEDIATE);
    assert_eq!(s.authority_key_id, issuer.subject_key_id);
    assert_eq!(issuer.is_ca, Some(true));
    assert_eq!(issuer.path_len, Some(0));
    assert_eq!(issuer.key_usage, ["key_cert_sign", "crl_sign"]);
}

#[test]
fn ecdsa_certificates_report_curve_and_field_size() {
    let leaf = summary(PANTZ_LEAF);
    assert_eq!(leaf.public_key_algorithm, PublicKeyAlgorithm::Ec);
    assert_eq!(leaf.public_key_algorithm.as_str(), "EC");
    assert_eq!(leaf.public_key_size, Some(384));
    assert_eq!(leaf.public_key_curve.as_deref(), Some("secp384r1"));
    assert_eq!(leaf.public_key_exponent, None);
    assert_eq!(leaf.signature_algorithm, "ecdsa-with-SHA256");
    assert_eq!(leaf.signature_hash, SignatureHash::Sha256);
    assert_eq!(leaf.alt_names.dns, ["pantz.org", "www.pantz.org"]);
    assert_eq!(leaf.key_usage, ["digital_signature"]);
    assert_eq!(leaf.extended_key_usage, ["server_auth", "client_auth"]);
    assert_eq!(
        leaf.subject.organizational_unit,
        ["PositiveSSL", "Domain Control Validated"]
    );
    assert_eq!(leaf.is_ca, Some(false));

    let ca = summary(COMODO_ECC_INTERMEDIATE);
    assert_eq!(ca.public_key_size, Some(256));
    assert_eq!(ca.public_key_curve.as_deref(), Some("prime256v1"));
    assert_eq!(ca.signature_algorithm, "ecdsa-with-SHA384");
    assert_eq!(ca.signature_hash, SignatureHash::Sha384);
    assert_eq!((ca.is_ca, ca.path_len), (Some(true), Some(0)));
    assert_eq!(
        ca.key_usage,
        ["digital_signature", "key_cert_sign", "crl_sign"]
    );
}

#[test]
fn corpus_chain_links_verify_only_against_the_real_issuer() {
    assert_eq!(verify_issued_by(IMAP_LEAF, TELESEC_INTERMEDIATE), Ok(true));
    assert_eq!(
        verify_issued_by(PANTZ_LEAF, COMODO_ECC_INTERMEDIATE),
        Ok(true)
    );
    assert_eq!(verify_issued_by(TELESEC_INTERMEDIATE, IMAP_LEAF), Ok(false));
    assert_eq!(verify_issued_by(IMAP_LEAF, STARFIELD_ROOT), Ok(false));
    // An RSA issuer cannot have made an ECDSA signature: a failure, not "unsupported".
    assert_eq!(
        check_issued_by(PANTZ_LEAF, TELESEC_INTERMEDIATE),
        Ok(SignatureCheck::Failed)
    );
    assert_eq!(verify_issued_by(&[], IMAP_LEAF), Err(X509Error::Malformed));
    assert_eq!(
        verify_issued_by(IMAP_LEAF, &[0x30]),
        Err(X509Error::Malformed)
    );
}

#[test]
fn escaped_comma_and_zero_serial_match_zeek() {
    let s = summary(STARFIELD_ROOT);
    assert_eq!(s.serial_hex, "00");
    assert_eq!(
        s.subject.rfc4514,
        "CN=Starfield Root Certificate Authority - G2,O=Starfield Technologies\\, Inc.,L=Scottsdale,ST=Arizona,C=US"
    );
    // The decoded value is not escaped.
    assert_eq!(s.subject.organization, ["Starfield Technologies, Inc."]);
    assert!(s.self_issued && s.self_signed);
    assert_eq!(s.signature_algorithm, "sha256WithRSAEncryption");
    assert_eq!(
        check_issued_by(STARFIELD_ROOT, STARFIELD_ROOT),
        Ok(SignatureCheck::Verified)
    );
}

#[test]
fn version_one_certificate_with_generalized_time_is_read() {
    let s = summary(GENERALIZED_TIME);
    assert_eq!(s.version, 1);
    assert_eq!(s.not_before, CertificateTime(1_441_114_417));
    assert_eq!(s.not_after, CertificateTime(1_756_733_617));
    assert_eq!((s.is_ca, s.path_len), (None, None));
    assert!(s.key_usage.is_empty() && s.extended_key_usage.is_empty());
    assert_eq!(s.alt_names, SubjectAltNames::default());
    assert_eq!(s.public_key_size, Some(1024));
    // 1024-bit RSA with SHA-1 is within what ring verifies.
    assert!(s.self_signed);
}

#[test]
fn name_without_common_name_has_none() {
    let s = summary(NO_CN);
    assert_eq!(s.subject.common_name, None);
    assert_eq!(s.subject.organization, ["TestCorp"]);
    assert_eq!((s.is_ca, s.path_len), (Some(true), None));
}

#[test]
fn ml_dsa_certificate_is_summarized_and_self_signed_by_key_ids() {
    let s = summary(ML_DSA_44);
    assert_eq!(s.public_key_algorithm, PublicKeyAlgorithm::MlDsa);
    assert_eq!(s.public_key_algorithm.as_str(), "ML-DSA");
    // Zeek's x509.log baseline shows key_length 10496 for this certificate.
    assert_eq!(s.public_key_size, Some(10496));
    assert_eq!(s.signature_algorithm, "ML-DSA-44");
    assert_eq!(s.signature_hash, SignatureHash::Intrinsic);
    assert_eq!(
        check_issued_by(ML_DSA_44, ML_DSA_44),
        Ok(SignatureCheck::Unsupported)
    );
    assert_eq!(verify_issued_by(ML_DSA_44, ML_DSA_44), Ok(false));
    // Unverifiable here, so self-signed rests on AKID == SKID.
    assert_eq!(s.authority_key_id, s.subject_key_id);
    assert!(s.self_issued && s.self_signed);
}

#[test]
fn md5_signature_is_reported_not_judged() {
    let s = summary(MD5_ROOT);
    assert_eq!(s.signature_algorithm, "md5WithRSAEncryption");
    assert_eq!(s.signature_hash, SignatureHash::Md5);
    assert_eq!(s.public_key_size, Some(4096));
    assert_eq!(
        check_issued_by(MD5_ROOT, MD5_ROOT),
        Ok(SignatureCheck::Unsupported)
    );
    assert!(s.self_signed);
    assert_eq!(s.subject.organizational_unit, ["http://www.cacert.org"]);
}

#[test]
fn self_issued_certificate_signed_by_another_key_is_not_self_signed() {
    let s = summary(SELF_ISSUED_OTHER_KEY);
    assert!(s.self_issued);
    assert!(!s.self_signed);
    assert_eq!(
        check_issued_by(SELF_ISSUED_OTHER_KEY, SELF_ISSUED_OTHER_KEY),
        Ok(SignatureCheck::Failed)
    );
}

#[test]
fn fingerprints_are_of_the_whole_der() {
    let s = summary(PANTZ_LEAF);
    let sha256: [u8; 32] = Sha256::digest(PANTZ_LEAF).into();
    assert_eq!(s.sha256, sha256);
    assert_eq!(s.sha1_hex().len(), 40);
    assert_eq!(s.sha256_hex(), hex_upper(&sha256));
}

// ---------------------------------------------------------------------------------------------
// rcgen-generated certificates
// ---------------------------------------------------------------------------------------------

fn params_with_cn(cn: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params
}

#[test]
fn self_signed_rcgen_certificate_reports_every_san_kind_and_purpose() {
    let key = KeyPair::generate().expect("key");
    let mut params = params_with_cn("api.internal");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "tlstap");
    params.distinguished_name.push(DnType::CountryName, "DE");
    params.subject_alt_names = vec![
        SanType::DnsName("api.internal".try_into().expect("ia5")),
        SanType::IpAddress("192.0.2.7".parse().expect("ip")),
        SanType::IpAddress("2001:db8::1".parse().expect("ip")),
        SanType::URI("spiffe://tlstap/api".try_into().expect("ia5")),
        SanType::Rfc822Name("ops@tlstap.example".try_into().expect("ia5")),
        SanType::DnsName("*.api.internal".try_into().expect("ia5")),
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
        ExtendedKeyUsagePurpose::Other(vec![1, 3, 6, 1, 4, 1, 311, 10, 3, 3]),
    ];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
    ];
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(2));
    params.serial_number = Some(SerialNumber::from_slice(&[0x0a, 0x1b]));
    let cert = params.self_signed(&key).expect("cert");

    let s = summary(cert.der());
    assert_eq!(s.subject.rfc4514, "C=DE,O=tlstap,CN=api.internal");
    assert_eq!(s.subject.common_name.as_deref(), Some("api.internal"));
    assert_eq!(s.alt_names.dns, ["api.internal", "*.api.internal"]);
    assert_eq!(
        s.alt_names.ip,
        [
            "192.0.2.7".parse::<IpAddr>().expect("ip"),
            "2001:db8::1".parse().expect("ip")
        ]
    );
    assert_eq!(s.alt_names.uri, ["spiffe://tlstap/api"]);
    assert_eq!(s.alt_names.email, ["ops@tlstap.example"]);
    assert_eq!(
        s.extended_key_usage,
        ["server_auth", "client_auth", "1.3.6.1.4.1.311.10.3.3"]
    );
    assert_eq!(s.key_usage, ["digital_signature", "key_cert_sign"]);
    assert_eq!((s.is_ca, s.path_len), (Some(true), Some(2)));
    assert_eq!(s.serial_hex, "0A1B");
    assert_eq!(s.public_key_curve.as_deref(), Some("prime256v1"));
    assert_eq!(s.signature_algorithm, "ecdsa-with-SHA256");
    assert!(s.self_issued && s.self_signed);
    assert!(s.subject_key_id.is_some());
}

#[test]
fn issued_leaf_verifies_against_its_issuer_and_no_other() {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = params_with_cn("tlstap test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().expect("key");
    let mut leaf_params = params_with_cn("leaf.internal");
    leaf_params.use_authority_key_identifier_extension = true;
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).expect("leaf");

    let other_key = KeyPair::generate().expect("key");
    let other = params_with_cn("tlstap test CA")
        .self_signed(&other_key)
        .expect("other");

    assert_eq!(verify_issued_by(leaf.der(), ca_cert.der()), Ok(true));
    assert_eq!(verify_issued_by(leaf.der(), other.der()), Ok(false));
    assert_eq!(verify_issued_by(ca_cert.der(), leaf.der()), Ok(false));

    let leaf_summary = summary(leaf.der());
    let ca_summary = summary(ca_cert.der());
    assert_eq!(leaf_summary.issuer, ca_summary.subject);
    assert_eq!(leaf_summary.authority_key_id, ca_summary.subject_key_id);
    assert!(!leaf_summary.self_issued && !leaf_summary.self_signed);
    assert_eq!((ca_summary.is_ca, ca_summary.path_len), (Some(true), None));
    assert_eq!(leaf_summary.is_ca, None);

    // Same name, different key: self-issued relative to the real CA, but not its signer.
    let impostor = summary(other.der());
    assert_eq!(impostor.subject, ca_summary.subject);
    assert!(impostor.self_signed);
}

#[test]
fn rsa_key_size_and_exponent_come_from_the_modulus() {
    let key = KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        .expect("rsa key");
    let cert = params_with_cn("rsa.internal")
        .self_signed(&key)
        .expect("cert");
    let s = summary(cert.der());
    assert_eq!(s.public_key_algorithm, PublicKeyAlgorithm::Rsa);
    assert_eq!(s.public_key_size, Some(2048));
    assert_eq!(s.public_key_exponent, Some(65537));
    assert_eq!(s.signature_algorithm, "sha256WithRSAEncryption");
    assert!(s.self_signed);
}

#[test]
fn ed25519_certificate_has_an_intrinsic_hash() {
    let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("key");
    let cert = params_with_cn("ed.internal")
        .self_signed(&key)
        .expect("cert");
    let s = summary(cert.der());
    assert_eq!(s.public_key_algorithm, PublicKeyAlgorithm::Ed25519);
    assert_eq!(s.public_key_size, Some(256));
    assert_eq!(s.signature_algorithm, "ED25519");
    assert_eq!(s.signature_hash, SignatureHash::Intrinsic);
    assert_eq!(
        check_issued_by(cert.der(), cert.der()),
        Ok(SignatureCheck::Verified)
    );
}

#[test]
fn p521_signature_is_unsupported_rather_than_failed() {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).expect("key");
    let cert = params_with_cn("p521.internal")
        .self_signed(&key)
        .expect("cert");
    let s = summary(cert.der());
    assert_eq!(s.public_key_size, Some(521));
    assert_eq!(s.public_key_curve.as_deref(), Some("secp521r1"));
    assert_eq!(s.signature_algorithm, "ecdsa-with-SHA512");
    assert_eq!(
        check_issued_by(cert.der(), cert.der()),
        Ok(SignatureCheck::Unsupported)
    );
    // No AKID, so the fallback counts it as self-signed.
    assert_eq!(s.authority_key_id, None);
    assert!(s.self_signed);
}

#[test]
fn ml_dsa_65_is_named_like_openssl() {
    let key = KeyPair::generate_for(&rcgen::PKCS_ML_DSA_65).expect("key");
    let cert = params_with_cn("pq.internal")
        .self_signed(&key)
        .expect("cert");
    let s = summary(cert.der());
    assert_eq!(s.signature_algorithm, "ML-DSA-65");
    assert_eq!(s.public_key_algorithm, PublicKeyAlgorithm::MlDsa);
    assert_eq!(s.public_key_size, Some(1952 * 8));
}

#[test]
fn generalized_time_after_2050_and_utc_time_before_1970_are_read() {
    let key = KeyPair::generate().expect("key");
    let mut params = params_with_cn("long.internal");
    params.not_before = rcgen::date_time_ymd(1955, 6, 1);
    params.not_after = rcgen::date_time_ymd(2099, 12, 31);
    let s = summary(params.self_signed(&key).expect("cert").der());
    assert_eq!(s.not_before.to_rfc3339(), "1955-06-01T00:00:00Z");
    assert_eq!(s.not_before, CertificateTime(-460_339_200));
    assert_eq!(s.not_after.to_rfc3339(), "2099-12-31T00:00:00Z");
    assert_eq!(s.not_after, CertificateTime(4_102_358_400));

    params.not_after = rcgen::date_time_ymd(9999, 12, 31);
    let s = summary(params.self_signed(&key).expect("cert").der());
    assert_eq!(s.not_after.to_rfc3339(), "9999-12-31T00:00:00Z");
}

#[test]
fn string_types_and_unknown_attributes_survive_end_to_end() {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(
        DnType::CountryName,
        DnValue::PrintableString("DE".try_into().expect("p")),
    );
    dn.push(
        DnType::OrganizationName,
        DnValue::BmpString("Müller, Sohn".try_into().expect("bmp")),
    );
    dn.push(
        DnType::OrganizationalUnitName,
        DnValue::UniversalString("Ünit".try_into().expect("ucs4")),
    );
    dn.push(
        DnType::LocalityName,
        DnValue::TeletexString("x\x7fy".try_into().expect("t61")),
    );
    dn.push(DnType::CustomDnType(vec![1, 2, 3, 4]), "custom");
    dn.push(
        DnType::CommonName,
        DnValue::Ia5String("#host".try_into().expect("ia5")),
    );
    params.distinguished_name = dn;
    let s = summary(params.self_signed(&key).expect("cert").der());
    assert_eq!(
        s.subject.rfc4514,
        "CN=\\#host,1.2.3.4=#0C06637573746F6D,L=x\\7Fy,OU=\\C3\\9Cnit,O=M\\C3\\BCller\\, Sohn,C=DE"
    );
    assert_eq!(s.subject.organization, ["Müller, Sohn"]);
    assert_eq!(s.subject.organizational_unit, ["Ünit"]);
    assert_eq!(s.subject.locality, ["x\u{7f}y"]);
    assert_eq!(s.subject.common_name.as_deref(), Some("#host"));
}

#[test]
fn a_certificate_over_1_mib_is_refused_even_when_valid() {
    let key = KeyPair::generate().expect("key");
    let build = |names: usize| {
        let mut params = params_with_cn("big.internal");
        params.subject_alt_names = (0..names)
            .map(|i| {
                SanType::DnsName(
                    format!("host-{i:05}.a-rather-long-subdomain.example.internal")
                        .try_into()
                        .expect("ia5"),
                )
            })
            .collect();
        params.self_signed(&key).expect("cert").der().to_vec()
    };
    let small = build(1000);
    assert!(small.len() < MAX_CERTIFICATE_DER);
    assert_eq!(summary(&small).alt_names.dns.len(), 1000);
    let big = build(20_000);
    assert!(big.len() > MAX_CERTIFICATE_DER);
    assert_eq!(
        summarize(&big),
        Err(X509Error::TooLarge(MAX_CERTIFICATE_DER))
    );
    assert_eq!(
        verify_issued_by(&big, &small),
        Err(X509Error::TooLarge(MAX_CERTIFICATE_DER))
    );
}

// ---------------------------------------------------------------------------------------------
// Distinguished names, checked against `openssl x509 -nameopt RFC2253` on certificates made
// with the same attributes (Python cryptography), which is what Zeek logs.
// ---------------------------------------------------------------------------------------------

fn oid(arcs: &[u64]) -> Oid<'static> {
    Oid::from(arcs).expect("oid")
}

const CN: &[u64] = &[2, 5, 4, 3];
const C: &[u64] = &[2, 5, 4, 6];
const L: &[u64] = &[2, 5, 4, 7];
const O: &[u64] = &[2, 5, 4, 10];
const OU: &[u64] = &[2, 5, 4, 11];

fn attr(arcs: &[u64], tag: Tag, value: &'static [u8]) -> AttributeTypeAndValue<'static> {
    AttributeTypeAndValue::new(oid(arcs), Any::from_tag_and_data(tag, value))
}

fn utf8(arcs: &[u64], value: &'static str) -> AttributeTypeAndValue<'static> {
    attr(arcs, Tag::Utf8String, value.as_bytes())
}

/// RDNs in DER order (least specific first), each a set of attributes.
fn dn(rdns: Vec<Vec<AttributeTypeAndValue<'static>>>) -> DistinguishedName {
    let name = X509Name::new(
        rdns.into_iter()
            .map(RelativeDistinguishedName::new)
            .collect(),
        &[],
    );
    name::distinguished_name(&name)
}

fn single(attrs: Vec<AttributeTypeAndValue<'static>>) -> DistinguishedName {
    dn(attrs.into_iter().map(|a| vec![a]).collect())
}

#[test]
fn names_are_printed_most_specific_first_like_openssl() {
    let name = single(vec![
        utf8(C, "US"),
        utf8(O, "Google Inc"),
        utf8(CN, "*.google.com"),
    ]);
    assert_eq!(name.rfc4514, "CN=*.google.com,O=Google Inc,C=US");
}

#[test]
fn rfc4514_special_characters_are_escaped_like_openssl() {
    let name = single(vec![
        utf8(CN, " #lead,\"q\"+p;s<l>g\\b=e# "),
        utf8(O, "#x"),
        utf8(OU, "a b"),
    ]);
    assert_eq!(
        name.rfc4514,
        "OU=a b,O=\\#x,CN=\\ #lead\\,\\\"q\\\"\\+p\\;s\\<l\\>g\\\\b=e#\\ "
    );
    assert_eq!(
        name.common_name.as_deref(),
        Some(" #lead,\"q\"+p;s<l>g\\b=e# ")
    );

    let name = single(vec![utf8(OU, ""), utf8(CN, " ")]);
    assert_eq!(name.rfc4514, "CN=\\ ,OU=");
}

#[test]
fn control_and_non_ascii_bytes_are_hex_escaped() {
    let name = single(vec![utf8(CN, "a\u{1}b\u{7f}c\u{0}d")]);
    assert_eq!(name.rfc4514, "CN=a\\01b\\7Fc\\00d");

    let name = single(vec![utf8(CN, "Grüße 日本 😀"), utf8(L, "München")]);
    assert_eq!(
        name.rfc4514,
        "L=M\\C3\\BCnchen,CN=Gr\\C3\\BC\\C3\\9Fe \\E6\\97\\A5\\E6\\9C\\AC \\F0\\9F\\98\\80"
    );
    assert_eq!(name.common_name.as_deref(), Some("Grüße 日本 😀"));
}

#[test]
fn bmp_universal_and_one_byte_strings_are_converted_like_openssl() {
    // "Grüße 日本" as UCS-2 and "Grüße 😀" as UCS-4.
    const BMP: &[u8] = b"\x00G\x00r\x00\xfc\x00\xdf\x00e\x00 \x65\xe5\x67\x2c";
    const UCS4: &[u8] = b"\0\0\0G\0\0\0r\0\0\0\xfc\0\0\0\xdf\0\0\0e\0\0\0 \x00\x01\xf6\x00";
    let name = single(vec![attr(CN, Tag::BmpString, BMP)]);
    assert_eq!(
        name.rfc4514,
        "CN=Gr\\C3\\BC\\C3\\9Fe \\E6\\97\\A5\\E6\\9C\\AC"
    );
    assert_eq!(name.common_name.as_deref(), Some("Grüße 日本"));
    let name = single(vec![attr(CN, Tag::UniversalString, UCS4)]);
    assert_eq!(name.rfc4514, "CN=Gr\\C3\\BC\\C3\\9Fe \\F0\\9F\\98\\80");
    assert_eq!(name.common_name.as_deref(), Some("Grüße 😀"));

    // One-byte types are Latin-1 to OpenSSL, even when the bytes happen to be UTF-8.
    let name = single(vec![attr(CN, Tag::T61String, b"caf\xc3\xa9")]);
    assert_eq!(name.rfc4514, "CN=caf\\C3\\83\\C2\\A9");
    assert_eq!(name.common_name.as_deref(), Some("café"));
    let name = single(vec![attr(CN, Tag::Ia5String, b"x\xe9y")]);
    assert_eq!(name.rfc4514, "CN=x\\C3\\A9y");
    assert_eq!(name.common_name.as_deref(), Some("xéy"));
    let name = single(vec![attr(C, Tag::PrintableString, b"D\xc4")]);
    assert_eq!(name.rfc4514, "C=D\\C3\\84");
    assert_eq!(name.country, ["DÄ"]);
}

#[test]
fn invalid_strings_are_kept_lossily_instead_of_failing() {
    // OpenSSL refuses such a certificate; here the bytes are escaped and decoded lossily.
    let name = single(vec![attr(L, Tag::Utf8String, b"M\xfc\xfcnchen")]);
    assert_eq!(name.rfc4514, "L=M\\FC\\FCnchen");
    assert_eq!(name.locality, ["M\u{FFFD}\u{FFFD}nchen"]);

    // Odd-length BMPString: OpenSSL fails the whole print; this dumps the value.
    let name = single(vec![attr(CN, Tag::BmpString, b"\x00A\x00")]);
    assert_eq!(name.rfc4514, "CN=#1E03004100");
    assert_eq!(name.common_name.as_deref(), Some("A\u{FFFD}"));

    // A non-string value under a known type is dumped as DER, as OpenSSL does.
    let name = single(vec![attr(CN, Tag::Integer, b"\x05")]);
    assert_eq!(name.rfc4514, "CN=#020105");
    assert_eq!(name.common_name.as_deref(), Some("#020105"));
}

#[test]
fn multi_valued_rdns_are_joined_with_plus_in_reverse_order() {
    let name = dn(vec![
        vec![utf8(C, "DE")],
        vec![utf8(O, "O1"), utf8(CN, "cn1"), utf8(OU, "ou1")],
        vec![utf8(CN, "last")],
    ]);
    assert_eq!(name.rfc4514, "CN=last,OU=ou1+CN=cn1+O=O1,C=DE");
    assert_eq!(name.common_name.as_deref(), Some("last"));
    assert_eq!(name.organization, ["O1"]);
}

#[test]
fn unknown_attribute_types_print_dotted_with_a_der_dump() {
    let two_999_1 = Oid::new(Cow::Borrowed(&[0x88, 0x37, 0x01]));
    let name = single(vec![
        utf8(&[1, 2, 3, 4, 5], "hello"),
        utf8(CN, "x"),
        AttributeTypeAndValue::new(two_999_1, Any::from_tag_and_data(Tag::Ia5String, b"v")),
    ]);
    assert_eq!(
        name.rfc4514,
        "2.999.1=#160176,CN=x,1.2.3.4.5=#0C0568656C6C6F"
    );
}

#[test]
fn openssl_short_names_are_used_for_known_attribute_types() {
    let name = single(vec![
        utf8(&[0, 9, 2342, 19_200_300, 100, 1, 25], "com"),
        utf8(&[0, 9, 2342, 19_200_300, 100, 1, 25], "example"),
        utf8(&[0, 9, 2342, 19_200_300, 100, 1, 1], "u1"),
        utf8(&[2, 5, 4, 4], "S"),
        utf8(&[2, 5, 4, 42], "G"),
        utf8(&[2, 5, 4, 12], "T"),
        utf8(&[2, 5, 4, 5], "123"),
        utf8(&[1, 3, 6, 1, 4, 1, 311, 60, 2, 1, 3], "US"),
        utf8(&[2, 5, 4, 15], "Private Organization"),
        utf8(&[2, 5, 4, 9], "1 Main St"),
        utf8(&[2, 5, 4, 17], "12345"),
        utf8(&[2, 5, 4, 65], "p"),
        utf8(&[2, 5, 4, 97], "VATDE-1"),
        utf8(&[1, 2, 840, 113_549, 1, 9, 1], "a@b.c"),
    ]);
    assert_eq!(
        name.rfc4514,
        "emailAddress=a@b.c,organizationIdentifier=VATDE-1,pseudonym=p,postalCode=12345,\
         street=1 Main St,businessCategory=Private Organization,jurisdictionC=US,\
         serialNumber=123,title=T,GN=G,SN=S,UID=u1,DC=example,DC=com"
    );
}

#[test]
fn empty_name_is_an_empty_string() {
    assert_eq!(dn(vec![]), DistinguishedName::default());
}

#[test]
fn x509_parser_display_is_not_the_zeek_format() {
    let (_, cert) = X509Certificate::from_der(STARFIELD_ROOT).expect("parses");
    // x509-parser: DER order, ", " separators, no escaping. Zeek and this module: reversed,
    // "," separators, RFC 4514 escaping.
    assert_eq!(
        cert.subject().to_string(),
        "C=US, ST=Arizona, L=Scottsdale, O=Starfield Technologies, Inc., CN=Starfield Root Certificate Authority - G2"
    );
    assert_ne!(
        cert.subject().to_string(),
        summary(STARFIELD_ROOT).subject.rfc4514
    );
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

#[test]
fn serial_is_printed_like_openssl() {
    assert_eq!(serial_hex(&[0x00]), "00");
    assert_eq!(serial_hex(&[]), "00");
    assert_eq!(serial_hex(&[0x26]), "26");
    assert_eq!(serial_hex(&[0x0a, 0x1b]), "0A1B");
    assert_eq!(serial_hex(&[0x00, 0xf9, 0x43]), "F943");
    assert_eq!(serial_hex(&[0x02, 0x03, 0xbc]), "0203BC");
    // Negative serials (RFC 5280 section 4.1.2.2 forbids them; OpenSSL prints a sign).
    assert_eq!(serial_hex(&[0xff]), "-01");
    assert_eq!(serial_hex(&[0x80]), "-80");
    assert_eq!(serial_hex(&[0xff, 0x00]), "-0100");
    assert_eq!(serial_hex(&[0xfe, 0xdc, 0xba]), "-012346");
}

#[test]
fn hex_upper_prints_two_uppercase_digits_per_byte() {
    assert_eq!(hex_upper(&[0xab, 0x01]), "AB01");
    assert_eq!(hex_upper(&[]), "");
    assert_eq!(hex_upper(&[0x00, 0xff, 0x7e]), "00FF7E");
}

#[test]
fn certificate_time_formats_like_the_time_crate() {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    // Year 1 to year 9999, in uneven steps.
    let mut t: i64 = -62_135_596_800;
    while t <= 253_402_300_799 {
        let expected = time::OffsetDateTime::from_unix_timestamp(t)
            .expect("in range")
            .format(&format)
            .expect("formats");
        assert_eq!(CertificateTime(t).to_rfc3339(), expected, "at {t}");
        t += 86_400 * 37 + 3_607;
    }
    assert_eq!(CertificateTime(0).to_rfc3339(), "1970-01-01T00:00:00Z");
    assert_eq!(CertificateTime(-1).to_rfc3339(), "1969-12-31T23:59:59Z");
    assert_eq!(
        CertificateTime(951_782_400).to_rfc3339(),
        "2000-02-29T00:00:00Z"
    );
}

#[test]
fn certificate_time_never_panics_at_the_extremes() {
    for t in [i64::MIN, i64::MIN + 1, -1, i64::MAX - 1, i64::MAX] {
        let s = CertificateTime(t).to_rfc3339();
        assert!(s.ends_with('Z'), "{s}");
    }
    assert!(CertificateTime(253_402_300_800)
        .to_rfc3339()
        .starts_with("+10000-01-01"));
}

#[test]
fn certificate_time_serializes_as_its_rfc3339_string() {
    let json = serde_json::to_string(&CertificateTime(1_738_324_800)).expect("serializes");
    assert_eq!(json, "\"2025-01-31T12:00:00Z\"");
    assert_eq!(
        CertificateTime(1_738_324_800).to_string(),
        "2025-01-31T12:00:00Z"
    );
}

#[test]
fn public_key_algorithm_names_are_short_and_stable() {
    let names: Vec<&str> = [
        PublicKeyAlgorithm::Rsa,
        PublicKeyAlgorithm::Ec,
        PublicKeyAlgorithm::Ed25519,
        PublicKeyAlgorithm::Ed448,
        PublicKeyAlgorithm::Dsa,
        PublicKeyAlgorithm::Dh,
        PublicKeyAlgorithm::MlDsa,
    ]
    .iter()
    .map(|a| a.as_str())
    .collect();
    assert_eq!(
        names,
        ["RSA", "EC", "Ed25519", "Ed448", "DSA", "DH", "ML-DSA"]
    );
    assert_eq!(
        PublicKeyAlgorithm::Other("1.3.101.110".into()).as_str(),
        "1.3.101.110"
    );
}

#[test]
fn dotted_oids_handle_a_multi_byte_first_subidentifier() {
    use algorithms::dotted_oid;
    assert_eq!(
        dotted_oid(&Oid::new(Cow::Borrowed(&[0x88, 0x37, 0x01]))),
        "2.999.1"
    );
    assert_eq!(
        dotted_oid(&oid(&[1, 2, 840, 113_549, 1, 1, 11])),
        "1.2.840.113549.1.1.11"
    );
    assert_eq!(dotted_oid(&oid(&[0, 9, 2342])), "0.9.2342");
    // A truncated arc does not panic.
    let _ = dotted_oid(&Oid::new(Cow::Borrowed(&[0x2a, 0x86])));
    let _ = dotted_oid(&Oid::new(Cow::Borrowed(&[])));
}

// ---------------------------------------------------------------------------------------------
// Robustness: attacker-controlled bytes must give an error, never a panic.
// ---------------------------------------------------------------------------------------------

#[test]
fn empty_input_is_malformed() {
    assert_eq!(summarize(&[]), Err(X509Error::Malformed));
}

#[test]
fn every_truncation_of_a_real_certificate_is_an_error() {
    for der in [IMAP_LEAF, PANTZ_LEAF, ML_DSA_44, STARFIELD_ROOT] {
        for len in 0..der.len() {
            let prefix = der.get(..len).expect("in range");
            assert!(summarize(prefix).is_err(), "prefix of {len} bytes parsed");
        }
    }
}

#[test]
fn trailing_bytes_are_refused() {
    let mut der = PANTZ_LEAF.to_vec();
    der.push(0);
    assert_eq!(summarize(&der), Err(X509Error::TrailingData));
    assert_eq!(
        verify_issued_by(&der, COMODO_ECC_INTERMEDIATE),
        Err(X509Error::TrailingData)
    );
    let mut two = PANTZ_LEAF.to_vec();
    two.extend_from_slice(COMODO_ECC_INTERMEDIATE);
    assert_eq!(summarize(&two), Err(X509Error::TrailingData));
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let too_big = vec![0u8; MAX_CERTIFICATE_DER + 1];
    assert_eq!(
        summarize(&too_big),
        Err(X509Error::TooLarge(MAX_CERTIFICATE_DER))
    );
    assert_eq!(
        X509Error::TooLarge(MAX_CERTIFICATE_DER).to_string(),
        "certificate larger than the 1048576-byte limit"
    );
    // At the limit the bytes are parsed (and these do not parse).
    assert_eq!(summarize(&too_big[1..]), Err(X509Error::Malformed));
}

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_bytes_are_an_error_not_a_panic() {
    let mut rng = Rng(0x7157_7a90_0b5e_55ed);
    let headers: [&[u8]; 5] = [
        &[],
        &[0x30, 0x82],
        &[0x30, 0x80],
        &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
        &[
            0x30, 0x82, 0x01, 0x00, 0x30, 0x81, 0xf0, 0xa0, 0x03, 0x02, 0x01, 0x02,
        ],
    ];
    for round in 0..4000 {
        let mut buf = headers[round % headers.len()].to_vec();
        let len = rng.below(600);
        buf.extend((0..len).map(|_| rng.next() as u8));
        assert!(summarize(&buf).is_err());
        let _ = verify_issued_by(&buf, IMAP_LEAF);
    }
}

#[test]
fn corrupted_certificates_never_panic() {
    let mut rng = Rng(0x0dd_ba11_cafe);
    for der in ALL_CORPUS {
        // Every byte flipped once, in the non-self-issued certificates (cheap to summarize).
        if der == PANTZ_LEAF || der == IMAP_LEAF {
            for i in 0..der.len() {
                let mut mutated = der.to_vec();
                if let Some(b) = mutated.get_mut(i) {
                    *b ^= 0xff;
                }
                let _ = summarize(&mutated);
            }
        }
        // Random multi-byte damage everywhere, including lengths and tags.
        for _ in 0..300 {
            let mut mutated = der.to_vec();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(mutated.len());
                if let Some(b) = mutated.get_mut(i) {
                    *b = rng.next() as u8;
                }
            }
            let _ = summarize(&mutated);
            let _ = verify_issued_by(&mutated, der);
        }
    }
}
