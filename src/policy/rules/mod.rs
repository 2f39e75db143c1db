//! The finding rules, one file per family. A new finding is a `Rule` in its
//! family's file plus one line in [`RULES`]; ids are stable once released.
//! Every finding id lives here (drift's too), so the modules that raise
//! findings depend on this one and never the other way round.

mod certificate;
mod cipher;
pub mod drift;
mod handshake;
mod plaintext;
mod version;

use super::history::ServiceMemory;
use super::{ChainRole, Evidence, Finding, Observation, Policy, SessionFacts, Severity};

/// What a rule needs to be judged, which decides where it runs.
#[derive(Clone, Copy)]
pub enum Check {
    /// Only this session: run in the worker.
    Session(fn(&SessionFacts<'_>, &Policy, &mut Findings<'_>)),
    /// Only what was negotiated (see `judge::NegotiationKey`: versions,
    /// cipher suite, direction, fallback flag, downgrade sentinel) and the
    /// policy: judged once per distinct negotiation (the worker caches it).
    Negotiated(fn(&SessionFacts<'_>, &Policy, &mut Findings<'_>)),
    /// Only the session's certificate chains and the policy, neither the
    /// time nor the names: judged once per distinct chain (the worker caches it).
    Chain(fn(&SessionFacts<'_>, &Policy, &mut Findings<'_>)),
    /// The chains, the policy and the packet time, through each certificate's
    /// validity dates only: re-judged when a date-derived value changes
    /// (see `policy::judge`).
    Dated(fn(&SessionFacts<'_>, &Policy, &mut Findings<'_>)),
    /// What earlier sessions to the same server showed: run in the output
    /// stage, in packet order.
    History(fn(&Observation, &ServiceMemory, &mut Findings<'_>)),
    /// Raised by other logic (derivation, drift, exceptions), never by a check of its own.
    Raised,
}

/// One rule: a stable id, its default severity, what it means, and its check.
pub struct Rule {
    pub id: &'static str,
    pub severity: Severity,
    /// One sentence for docs and `--help`-style listings.
    pub summary: &'static str,
    pub check: Check,
}

/// Collects one rule's findings.
pub struct Findings<'a> {
    rule: &'a Rule,
    out: &'a mut Vec<Finding>,
}

impl<'a> Findings<'a> {
    pub fn new(rule: &'a Rule, out: &'a mut Vec<Finding>) -> Self {
        Self { rule, out }
    }

    pub fn add(&mut self, message: String, evidence: Evidence) {
        self.add_with(self.rule.severity, message, evidence);
    }

    pub fn add_with(&mut self, severity: Severity, message: String, evidence: Evidence) {
        self.out
            .push(Finding::new(self.rule, severity, message, evidence));
    }

    /// A finding about one certificate chain (its evidence names the chain).
    pub fn add_on(&mut self, chain: ChainRole, message: String, evidence: Evidence) {
        self.out
            .push(Finding::new(self.rule, self.rule.severity, message, evidence).on(chain));
    }
}

/// Raised by the exception logic, not by a check.
pub const EXCEPTION_EXPIRED: Rule = Rule {
    id: "exception_expired",
    severity: Severity::Medium,
    summary: "An exception that would cover a finding on this session is past its expiry date.",
    check: Check::Raised,
};

/// Derived from the certificate findings of the same session (see [`derive`]).
pub const CLIENT_ACCEPTED_INVALID_CERT: Rule = Rule {
    id: "client_accepted_invalid_cert",
    severity: Severity::High,
    summary: "TLS ≤ 1.2 (or TLS 1.3 read with --keylog): the server chain had a problem a validating client must reject, and the client finished the handshake (and, before TLS 1.3, exchanged application data) anyway.",
    check: Check::Raised,
};

/// Server-chain findings a validating client must not accept.
const REJECTABLE: [&str; 6] = [
    "cert_expired",
    "cert_not_yet_valid",
    "cert_self_signed",
    "cert_untrusted_issuer",
    "chain_incomplete",
    "cert_name_mismatch",
];

/// Findings that follow from other findings of the same session.
pub fn derive(facts: &SessionFacts<'_>, _policy: &Policy, findings: &mut Vec<Finding>) {
    let Some(tls) = facts.tls else { return };
    let Some(version) = facts.version() else {
        return;
    };
    if version >= crate::tls::ProtocolVersion::TLS13 && !tls.decrypted {
        return; // certificates are encrypted: acceptance is not observable
    }
    let problems: Vec<&Finding> = findings
        .iter()
        .filter(|f| REJECTABLE.contains(&f.id))
        .filter(|f| {
            f.chain
                .is_none_or(|chain| chain == super::ChainRole::Server)
        })
        .collect();
    // TLS 1.3: the client's Finished (read with the key log) is its
    // acceptance; a client that refuses sends an alert instead.
    let finished = if tls.decrypted {
        tls.client_finished
    } else {
        tls.established
            && tls.change_cipher_spec[0]
            && tls.application_records.iter().all(|&n| n > 0)
    };
    let client_went_on = finished
        && !tls
            .alerts
            .iter()
            .any(|a| a.is_fatal() && a.direction == crate::tls::Direction::ToServer);
    if problems.is_empty() || !client_went_on {
        return;
    }
    let ids: Vec<&str> = problems.iter().map(|f| f.id).collect();
    let evidence = crate::evidence! {
        client: crate::addr::AddrText::ip(facts.client.ip()),
        client_stack: facts.client_ja4.and(facts.client_stack),
        client_ja4: facts.client_ja4,
        certificate_problems: &ids,
        application_records: tls.application_records,
    };
    let message = format!(
        "client {} completed the handshake and exchanged data despite: {}",
        facts.client.ip(),
        ids.join(", ")
    );
    findings.push(Finding::new(
        &CLIENT_ACCEPTED_INVALID_CERT,
        CLIENT_ACCEPTED_INVALID_CERT.severity,
        message,
        evidence,
    ));
}

/// Every rule, in the order findings are listed in a record.
pub const RULES: &[Rule] = &[
    version::TLS_BELOW_BASELINE,
    version::OBSOLETE_VERSION,
    version::DOWNGRADE,
    version::FALLBACK_SCSV,
    version::VERSION_REGRESSION,
    cipher::WEAK_CIPHER,
    cipher::NO_FORWARD_SECRECY,
    cipher::CBC_CIPHER,
    plaintext::PLAINTEXT_ON_TLS_PORT,
    plaintext::PLAINTEXT_FALLBACK,
    plaintext::STARTTLS_NOT_USED,
    plaintext::POSTGRES_SSL_REFUSED,
    certificate::CERT_EXPIRED,
    certificate::CERT_NOT_YET_VALID,
    certificate::CERT_EXPIRING_SOON,
    certificate::CERT_SELF_SIGNED,
    certificate::CERT_NAME_MISMATCH,
    certificate::CERT_WEAK_KEY,
    certificate::CERT_WEAK_SIGNATURE,
    certificate::CERT_LONG_VALIDITY,
    certificate::CERT_EKU_MISMATCH,
    certificate::CHAIN_INCOMPLETE,
    certificate::CERT_UNTRUSTED_ISSUER,
    handshake::TLS_ALERT,
    handshake::MTLS_MISSING,
    handshake::MTLS_NOT_OBSERVABLE,
    handshake::TLS13_HANDSHAKE_ABORTED,
    CLIENT_ACCEPTED_INVALID_CERT,
    drift::NEGOTIATION_CHANGED,
    drift::CERT_ROTATED,
    drift::CERT_NOT_ROTATED,
    drift::NEW_CLIENT_STACK,
    EXCEPTION_EXPIRED,
];

/// Position of a finding id in [`RULES`] (unknown ids last).
pub fn rank(id: &str) -> usize {
    RULES
        .iter()
        .position(|rule| rule.id == id)
        .unwrap_or(RULES.len())
}

/// Puts findings in [`RULES`] order, keeping the order within one rule.
pub fn sort(findings: &mut [Finding]) {
    if !findings.is_sorted_by_key(Finding::rank) {
        findings.sort_by_key(Finding::rank);
    }
}

#[cfg(test)]
mod tests {
    use super::RULES;

    #[test]
    fn every_rule_has_a_rank_a_finding_can_hold() {
        // Findings keep their rule's position in a u8; u8::MAX means unknown.
        assert!(RULES.len() < usize::from(u8::MAX));
        for (position, rule) in RULES.iter().enumerate() {
            assert_eq!(super::rank(rule.id), position);
        }
    }

    #[test]
    fn rule_ids_are_unique_snake_case_and_documented() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/findings.md"))
                .expect("docs/findings.md");
        let mut seen = std::collections::HashSet::new();
        for rule in RULES {
            assert!(seen.insert(rule.id), "duplicate id {}", rule.id);
            assert!(
                // Digits allowed after a letter: the issue names `tls13_handshake_aborted`.
                rule.id.starts_with(|c: char| c.is_ascii_lowercase())
                    && rule
                        .id
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{} is not snake_case",
                rule.id
            );
            assert!(
                readme.contains(&format!("`{}`", rule.id)),
                "{} is not in docs/findings.md",
                rule.id
            );
        }
    }
}
