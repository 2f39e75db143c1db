//! Certificate findings, for server chains and client (mTLS) chains alike,
//! judged at the handshake's packet time.

use super::{Check, Rule};
use crate::policy::{sni_matches, ChainRole as Role, SessionFacts, Severity, TrustStore};
use crate::tls::{Chain, ChainEntry};
use crate::x509::{self, CertificateSummary, PublicKeyAlgorithm, SignatureCheck, SignatureHash};

const DAY: i64 = 86_400;

fn chains<'a>(facts: &SessionFacts<'a>) -> Vec<(Role, &'a Chain)> {
    let Some(tls) = facts.tls else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if !tls.server_chain.is_empty() {
        out.push((Role::Server, &tls.server_chain));
    }
    if !tls.client_chain.is_empty() {
        out.push((Role::Client, &tls.client_chain));
    }
    out
}

fn parsed(chain: &Chain) -> impl Iterator<Item = (usize, &CertificateSummary)> {
    chain
        .certificates
        .iter()
        .enumerate()
        .filter_map(|(i, entry)| entry.summary.as_ref().ok().map(|s| (i, s)))
}

/// Every parsed certificate of every chain, with its chain and position.
fn certificates<'a>(
    facts: &SessionFacts<'a>,
) -> impl Iterator<Item = (Role, usize, &'a CertificateSummary)> {
    chains(facts)
        .into_iter()
        .flat_map(|(role, chain)| parsed(chain).map(move |(i, cert)| (role, i, cert)))
}

/// Which certificate a finding is about, first in its evidence.
#[derive(serde::Serialize)]
struct Identity<'a> {
    chain: &'static str,
    position: usize,
    subject: &'a str,
    issuer: &'a str,
    sha256: String,
    not_before: x509::CertificateTime,
    not_after: x509::CertificateTime,
}

fn identity(role: Role, position: usize, certificate: &CertificateSummary) -> Identity<'_> {
    Identity {
        chain: role.as_str(),
        position,
        subject: &certificate.subject.rfc4514,
        issuer: &certificate.issuer.rfc4514,
        sha256: certificate.sha256_hex(),
        not_before: certificate.not_before,
        not_after: certificate.not_after,
    }
}

fn name(role: Role, position: usize) -> String {
    match position {
        0 => format!("{} leaf certificate", role.as_str()),
        n => format!("{} chain certificate #{n}", role.as_str()),
    }
}

pub const CERT_EXPIRED: Rule = Rule {
    id: "cert_expired",
    severity: Severity::High,
    summary: "A certificate in the chain was past its notAfter at the time of the handshake.",
    check: Check::Dated(|facts, _, out| {
        let now = facts.time.as_secs();
        for (role, i, cert) in certificates(facts) {
            if cert.not_after.0 < now {
                let days = (now - cert.not_after.0) / DAY;
                out.add_on(
                    role,
                    format!("{} expired {days} days before the handshake", name(role, i)),
                    crate::evidence! {..identity(role, i, cert); days_expired: days},
                );
            }
        }
    }),
};

pub const CERT_NOT_YET_VALID: Rule = Rule {
    id: "cert_not_yet_valid",
    severity: Severity::High,
    summary: "A certificate in the chain was before its notBefore at the time of the handshake.",
    check: Check::Dated(|facts, _, out| {
        let now = facts.time.as_secs();
        for (role, i, cert) in certificates(facts) {
            if cert.not_before.0 > now {
                out.add_on(
                    role,
                    format!(
                        "{} is not valid until {}",
                        name(role, i),
                        cert.not_before.to_rfc3339()
                    ),
                    crate::evidence! {..identity(role, i, cert);},
                );
            }
        }
    }),
};

pub const CERT_EXPIRING_SOON: Rule = Rule {
    id: "cert_expiring_soon",
    severity: Severity::Medium,
    summary: "A certificate in the chain expires within the warning window (default 30 days) of the handshake.",
    check: Check::Dated(|facts, policy, out| {
        let now = facts.time.as_secs();
        let window = policy.certificates.expiry_warning_days * DAY;
        for (role, i, cert) in certificates(facts) {
            let left = cert.not_after.0 - now;
            if left >= 0 && left < window {
                out.add_on(
                    role,
                    format!("{} expires in {} days", name(role, i), left / DAY),
                    crate::evidence! {..identity(role, i, cert); days_left: left / DAY},
                );
            }
        }
    }),
};

pub const CERT_SELF_SIGNED: Rule = Rule {
    id: "cert_self_signed",
    severity: Severity::Medium,
    summary: "The leaf certificate is self-signed (it vouches for itself).",
    check: Check::Chain(|facts, _, out| {
        for (role, chain) in chains(facts) {
            if let Some(leaf) = chain.leaf() {
                if leaf.self_signed {
                    out.add_on(
                        role,
                        format!("{} is self-signed", name(role, 0)),
                        crate::evidence! {..identity(role, 0, leaf);},
                    );
                }
            }
        }
    }),
};

pub const CERT_NAME_MISMATCH: Rule = Rule {
    id: "cert_name_mismatch",
    severity: Severity::High,
    summary: "The SNI is not covered by the server leaf's DNS SANs (or CN when there are none), RFC 6125 wildcard rules.",
    check: Check::Session(|facts, _, out| {
        let (Some(sni), Some(leaf)) = (facts.sni(), facts.tls.and_then(|t| t.server_chain.leaf())) else {
            return;
        };
        if !sni_matches(sni, leaf) {
            out.add_on(
                Role::Server,
                format!("server certificate does not cover {sni}"),
                crate::evidence! {..identity(Role::Server, 0, leaf); sni: sni, dns_names: &leaf.alt_names.dns, common_name: &leaf.subject.common_name},
            );
        }
    }),
};

pub const CERT_WEAK_KEY: Rule = Rule {
    id: "cert_weak_key",
    severity: Severity::High,
    summary: "RSA key under 2048 bits, EC key under 256 bits, or a DSA key.",
    check: Check::Chain(|facts, _, out| {
        for (role, i, cert) in certificates(facts) {
            let size = cert.public_key_size.unwrap_or(0);
            let weak = match cert.public_key_algorithm {
                PublicKeyAlgorithm::Rsa => size < 2048,
                PublicKeyAlgorithm::Ec => size < 256,
                PublicKeyAlgorithm::Dsa => true,
                _ => false,
            };
            if weak {
                out.add_on(
                    role,
                    format!(
                        "{} has a weak {} {size}-bit key",
                        name(role, i),
                        cert.public_key_algorithm.as_str()
                    ),
                    crate::evidence! {..identity(role, i, cert); algorithm: cert.public_key_algorithm.as_str(), bits: size},
                );
            }
        }
    }),
};

pub const CERT_WEAK_SIGNATURE: Rule = Rule {
    id: "cert_weak_signature",
    severity: Severity::High,
    summary: "A certificate (other than a self-signed root) is signed with MD5 or SHA-1.",
    check: Check::Chain(|facts, _, out| {
        for (role, i, cert) in certificates(facts) {
            // A root's self-signature is never checked by a client.
            if cert.self_signed && i > 0 {
                continue;
            }
            if matches!(
                cert.signature_hash,
                SignatureHash::Md2 | SignatureHash::Md5 | SignatureHash::Sha1
            ) {
                out.add_on(
                    role,
                    format!(
                        "{} is signed with {}",
                        name(role, i),
                        cert.signature_algorithm
                    ),
                    crate::evidence! {..identity(role, i, cert); signature_algorithm: &cert.signature_algorithm},
                );
            }
        }
    }),
};

pub const CERT_LONG_VALIDITY: Rule = Rule {
    id: "cert_long_validity",
    severity: Severity::Low,
    summary: "A leaf certificate valid for longer than the maximum (default 398 days).",
    check: Check::Chain(|facts, policy, out| {
        for (role, chain) in chains(facts) {
            if let Some(leaf) = chain.leaf() {
                let days = (leaf.not_after.0 - leaf.not_before.0) / DAY;
                if days > policy.certificates.max_validity_days {
                    out.add_on(
                        role,
                        format!("{} is valid for {days} days (maximum {})", name(role, 0), policy.certificates.max_validity_days),
                        crate::evidence! {..identity(role, 0, leaf); validity_days: days, maximum_days: policy.certificates.max_validity_days},
                    );
                }
            }
        }
    }),
};

pub const CERT_EKU_MISMATCH: Rule = Rule {
    id: "cert_eku_mismatch",
    severity: Severity::Medium,
    summary: "A leaf whose extended key usage lacks serverAuth (server) or clientAuth (client), when EKU is present.",
    check: Check::Chain(|facts, _, out| {
        for (role, chain) in chains(facts) {
            let Some(leaf) = chain.leaf() else { continue };
            if leaf.extended_key_usage.is_empty() {
                continue;
            }
            let needed = match role {
                Role::Server => "server_auth",
                Role::Client => "client_auth",
            };
            let has = leaf.extended_key_usage.iter().any(|usage| usage == needed || usage == "any");
            if !has {
                out.add_on(
                    role,
                    format!("{} lacks {needed} in its extended key usage", name(role, 0)),
                    crate::evidence! {..identity(role, 0, leaf); extended_key_usage: &leaf.extended_key_usage, needed: needed},
                );
            }
        }
    }),
};

fn issued_by_anchor(last: &CertificateSummary, anchors: &TrustStore) -> bool {
    anchors.has_subject(&last.issuer.rfc4514)
}

/// The chain's last certificate is a trusted anchor, or verifies under one
/// (only anchors named as its issuer are tried).
fn anchored(last: &ChainEntry, anchors: &TrustStore) -> bool {
    let Ok(summary) = last.summary.as_ref() else {
        return anchors.iter().any(|anchor| anchor.der[..] == last.der[..]);
    };
    anchors
        .with_subject(&summary.subject.rfc4514)
        .any(|anchor| anchor.der[..] == last.der[..])
        || anchors
            .with_subject(&summary.issuer.rfc4514)
            .any(|anchor| verifies(last, &anchor.der))
}

pub const CHAIN_INCOMPLETE: Rule = Rule {
    id: "chain_incomplete",
    severity: Severity::Medium,
    summary: "Issuer/subject links in the chain are broken, or the last certificate is neither self-signed nor issued by a trusted CA.",
    check: Check::Chain(|facts, policy, out| {
        for (role, chain) in chains(facts) {
            let certificates: Vec<&CertificateSummary> = chain.certificates.iter().filter_map(|e| e.summary.as_ref().ok()).collect();
            for (i, pair) in certificates.windows(2).enumerate() {
                if pair[0].issuer.rfc4514 != pair[1].subject.rfc4514 {
                    out.add_on(
                        role,
                        format!("{} chain is broken after certificate #{i}: its issuer is not the next certificate", role.as_str()),
                        crate::evidence! {chain: role.as_str(), position: i, issuer: &pair[0].issuer.rfc4514, next_subject: &pair[1].subject.rfc4514},
                    );
                    return;
                }
            }
            let Some(last) = certificates.last() else { continue };
            let (trusted, system) = (&policy.certificates.trusted, &policy.certificates.system);
            // Without any trust store loaded, only broken links can be judged.
            let no_store = trusted.is_empty() && system.is_empty();
            if last.self_signed || no_store || issued_by_anchor(last, trusted) || issued_by_anchor(last, system) {
                continue;
            }
            out.add_on(
                role,
                format!("{} chain ends at {} whose issuer {} is neither sent nor a trusted CA", role.as_str(), last.subject.rfc4514, last.issuer.rfc4514),
                crate::evidence! {chain: role.as_str(), last_subject: &last.subject.rfc4514, missing_issuer: &last.issuer.rfc4514, length: certificates.len()},
            );
        }
    }),
};

fn verifies(child: &ChainEntry, issuer_der: &[u8]) -> bool {
    matches!(
        x509::check_issued_by(&child.der, issuer_der),
        Ok(SignatureCheck::Verified)
    )
}

pub const CERT_UNTRUSTED_ISSUER: Rule = Rule {
    id: "cert_untrusted_issuer",
    severity: Severity::High,
    summary: "With a policy trust bundle: the chain does not verify (signatures checked) up to one of the configured internal CAs.",
    check: Check::Chain(|facts, policy, out| {
        let anchors = &policy.certificates.trusted;
        if anchors.is_empty() {
            return;
        }
        for (role, chain) in chains(facts) {
            let entries = &chain.certificates;
            let Some(last) = entries.last() else { continue };
            let mut failure = None;
            for (i, pair) in entries.windows(2).enumerate() {
                if !verifies(&pair[0], &pair[1].der) {
                    failure = Some(format!("certificate #{i} is not signed by certificate #{}", i + 1));
                    break;
                }
            }
            if failure.is_none() && !anchored(last, anchors) {
                failure = Some("the chain does not end at, or under, a trusted CA".to_string());
            }
            if let Some(reason) = failure {
                let issuer = last.summary.as_ref().map(|s| s.issuer.rfc4514.clone()).unwrap_or_default();
                out.add_on(
                    role,
                    format!("{} chain is not trusted: {reason}", role.as_str()),
                    crate::evidence! {chain: role.as_str(), reason: reason, last_issuer: issuer, trusted: anchors.iter().map(|a| a.subject.as_str()).collect::<Vec<_>>()},
                );
            }
        }
    }),
};
