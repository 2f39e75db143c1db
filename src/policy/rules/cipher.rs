//! Cipher suite findings, from tls-parser's suite registry.

use tls_parser::{
    TlsCipherAu, TlsCipherEnc, TlsCipherEncMode, TlsCipherKx, TlsCipherMac, TlsCipherSuite,
};

use super::{Check, Rule};
use crate::policy::{SessionFacts, Severity};

fn suite(facts: &SessionFacts<'_>) -> Option<&'static TlsCipherSuite> {
    let hello = facts.tls?.server_hello.as_ref()?;
    if hello.sslv2_cipher_spec.is_some() {
        return None;
    }
    TlsCipherSuite::from_id(hello.cipher_suite)
}

/// Why a suite is weak, if it is.
fn weakness(suite: &TlsCipherSuite) -> Option<&'static str> {
    if suite.name.contains("EXPORT") {
        return Some("export-grade");
    }
    if matches!(suite.enc, TlsCipherEnc::Null) {
        return Some("no encryption (NULL)");
    }
    if matches!(suite.au, TlsCipherAu::Null) || suite.name.contains("_anon_") {
        return Some("anonymous (no authentication)");
    }
    match suite.enc {
        TlsCipherEnc::Rc4 => return Some("RC4"),
        TlsCipherEnc::Des | TlsCipherEnc::TripleDes => return Some("DES/3DES"),
        TlsCipherEnc::Rc2 => return Some("RC2"),
        _ => {}
    }
    if matches!(suite.mac, TlsCipherMac::HmacMd5) {
        return Some("MD5 MAC");
    }
    None
}

pub const WEAK_CIPHER: Rule = Rule {
    id: "weak_cipher",
    severity: Severity::High,
    summary: "Negotiated suite is NULL, EXPORT, anonymous, RC4, RC2, DES/3DES or uses an MD5 MAC.",
    check: Check::Negotiated(|facts, _, out| {
        let Some(suite) = suite(facts) else { return };
        if let Some(reason) = weakness(suite) {
            out.add(
                format!("{} is weak: {reason}", suite.name),
                crate::evidence! {cipher: suite.name, reason: reason},
            );
        }
    }),
};

pub const NO_FORWARD_SECRECY: Rule = Rule {
    id: "no_forward_secrecy",
    severity: Severity::Medium,
    summary: "Static RSA, DH or ECDH key exchange: recorded traffic can be decrypted later with the server key.",
    check: Check::Negotiated(|facts, _, out| {
        let Some(suite) = suite(facts) else { return };
        let static_kx = matches!(suite.kx, TlsCipherKx::Rsa | TlsCipherKx::Dh | TlsCipherKx::Ecdh);
        if static_kx && !matches!(suite.enc, TlsCipherEnc::Null) && !suite.name.starts_with("TLS_AES") && !suite.name.starts_with("TLS_CHACHA") {
            out.add(
                format!("{} has no forward secrecy ({:?} key exchange)", suite.name, suite.kx),
                crate::evidence! {cipher: suite.name, key_exchange: format!("{:?}", suite.kx)},
            );
        }
    }),
};

pub const CBC_CIPHER: Rule = Rule {
    id: "cbc_cipher",
    severity: Severity::Low,
    summary:
        "A CBC-mode suite (MAC-then-encrypt, padding-oracle history) where an AEAD suite would do.",
    check: Check::Negotiated(|facts, _, out| {
        let Some(suite) = suite(facts) else { return };
        if matches!(suite.enc_mode, TlsCipherEncMode::Cbc) {
            out.add(
                format!("{} is a CBC suite", suite.name),
                crate::evidence! {cipher: suite.name},
            );
        }
    }),
};
