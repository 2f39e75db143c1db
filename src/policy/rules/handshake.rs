//! Handshake findings: fatal alerts and missing client certificates.

use serde_json::json;

use super::{Check, Rule};
use crate::policy::{Policy, SessionFacts, Severity};
use crate::tls::{names, ProtocolVersion};

pub const TLS_ALERT: Rule = Rule {
    id: "tls_alert",
    severity: Severity::Medium,
    summary: "A fatal plaintext alert; unknown_ca, bad_certificate, certificate_expired and the like mean a peer refused a certificate.",
    check: Check::Session(|facts, _, out| {
        let Some(tls) = facts.tls else { return };
        for alert in tls.alerts.iter().filter(|a| a.is_fatal()) {
            let code = alert.description.unwrap_or(0);
            let description = names::alert_description_name(code).unwrap_or("unknown");
            let sender = match alert.direction {
                crate::tls::Direction::ToServer => "client",
                crate::tls::Direction::ToClient => "server",
            };
            let validation = (42..=49).contains(&code) || code == 116;
            let severity = if validation { Severity::High } else { Severity::Medium };
            let note = if validation && sender == "client" {
                " (the client validated the certificate and refused it)"
            } else {
                ""
            };
            out.add_with(
                severity,
                format!("fatal {description} alert from the {sender}{note}"),
                json!({"description": description, "code": code, "sent_by": sender, "certificate_validation": validation}),
            );
        }
    }),
};

fn required_by<'p>(facts: &SessionFacts<'_>, policy: &'p Policy) -> Option<&'p str> {
    policy
        .mtls
        .iter()
        .find(|service| service.selector.matches_session(facts))
        .map(|service| service.name.as_str())
}

pub const MTLS_MISSING: Rule = Rule {
    id: "mtls_missing",
    severity: Severity::High,
    summary: "The policy requires client certificates for this service and a TLS ≤ 1.2 handshake shows none.",
    check: Check::Session(|facts, policy, out| {
        let Some(tls) = facts.tls else { return };
        let Some(service) = required_by(facts, policy) else { return };
        let Some(version) = facts.version() else { return };
        if version < ProtocolVersion::TLS13 && tls.client_chain.is_empty() && tls.server_hello.is_some() {
            out.add(
                format!("{service} requires client certificates; none was sent"),
                json!({"service": service, "certificate_requested": tls.certificate_requested}),
            );
        }
    }),
};

pub const MTLS_NOT_OBSERVABLE: Rule = Rule {
    id: "mtls_not_observable",
    severity: Severity::Info,
    summary: "The policy requires client certificates but TLS 1.3 encrypts them: presence cannot be observed passively.",
    check: Check::Session(|facts, policy, out| {
        let Some(service) = required_by(facts, policy) else { return };
        if facts.version() == Some(ProtocolVersion::TLS13) {
            out.add(
                format!("{service} requires client certificates; TLS 1.3 hides them, so this is not observable"),
                json!({"service": service}),
            );
        }
    }),
};
