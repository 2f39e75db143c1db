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
        let Some(kx) = static_key_exchange(suite.kx) else { return };
        if !matches!(suite.enc, TlsCipherEnc::Null) && !suite.name.starts_with("TLS_AES") && !suite.name.starts_with("TLS_CHACHA") {
            out.add(
                format!("{} has no forward secrecy ({kx} key exchange)", suite.name),
                crate::evidence! {cipher: suite.name, key_exchange: kx},
            );
        }
    }),
};

/// The key exchange's name as the suite names spell it, for the static ones
/// (no forward secrecy); None for ephemeral and the rest.
fn static_key_exchange(kx: TlsCipherKx) -> Option<&'static str> {
    match kx {
        TlsCipherKx::Rsa => Some("RSA"),
        TlsCipherKx::Dh => Some("DH"),
        TlsCipherKx::Ecdh => Some("ECDH"),
        _ => None,
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// The evidence names the key exchange as the suite's own name does
    /// (`TLS_ECDH_RSA_…` → `ECDH`), for every static suite tls-parser knows.
    #[test]
    fn static_key_exchange_reads_as_in_the_suite_name() {
        let mut seen = [0usize; 3];
        for id in 0..=u16::MAX {
            let Some(suite) = TlsCipherSuite::from_id(id) else {
                continue;
            };
            let Some(kx) = static_key_exchange(suite.kx) else {
                continue;
            };
            assert!(
                suite.name.starts_with(&format!("TLS_{kx}_")),
                "{} read as {kx}",
                suite.name
            );
            seen[["RSA", "DH", "ECDH"].iter().position(|k| *k == kx).unwrap()] += 1;
        }
        assert!(seen.iter().all(|n| *n > 0), "{seen:?}");
    }
}
