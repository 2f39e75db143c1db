//! Handshake findings: fatal alerts and missing client certificates.

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
                crate::evidence! {description: description, code: code, sent_by: sender, certificate_validation: validation},
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
    summary: "The policy requires client certificates for this service and a TLS ≤ 1.2 handshake (or a TLS 1.3 one read with --keylog) shows none.",
    check: Check::Session(|facts, policy, out| {
        let Some(tls) = facts.tls else { return };
        let Some(service) = required_by(facts, policy) else { return };
        let Some(version) = facts.version() else { return };
        let visible = version < ProtocolVersion::TLS13 || tls.decrypted;
        if visible && tls.client_chain.is_empty() && tls.server_hello.is_some() {
            out.add(
                format!("{service} requires client certificates; none was sent"),
                crate::evidence! {service: service, certificate_requested: tls.certificate_requested},
            );
        }
    }),
};

pub const MTLS_NOT_OBSERVABLE: Rule = Rule {
    id: "mtls_not_observable",
    severity: Severity::Info,
    summary: "The policy requires client certificates but TLS 1.3 encrypts them: presence cannot be observed passively (without --keylog).",
    check: Check::Session(|facts, policy, out| {
        let Some(service) = required_by(facts, policy) else { return };
        let decrypted = facts.tls.is_some_and(|tls| tls.decrypted);
        if facts.version() == Some(ProtocolVersion::TLS13) && !decrypted {
            out.add(
                format!("{service} requires client certificates; TLS 1.3 hides them, so this is not observable"),
                crate::evidence! {service: service},
            );
        }
    }),
};

pub const TLS13_HANDSHAKE_ABORTED: Rule = Rule {
    id: "tls13_handshake_aborted",
    severity: Severity::Medium,
    summary: "TLS 1.3 without keys: the client answered the server's flight with one alert-sized encrypted record (19 bytes) and nothing more, so it very likely refused the server's certificate.",
    check: Check::Session(|facts, _, out| {
        let Some(tls) = facts.tls else { return };
        if facts.version() != Some(ProtocolVersion::TLS13) || tls.decrypted {
            return; // with keys the alert itself is read (tls_alert)
        }
        let flight = &tls.encrypted_flight;
        // RFC 8446 §5.2: a Finished is 53 or 69 bytes of ciphertext and a
        // Certificate more; only an alert (2 + 1 + 16) is 19. A client that
        // went on sends a second record (data, or its Finished after it).
        if !flight.client_answered_with_alert() || flight.client_records != 1 {
            return;
        }
        let answer_us = flight
            .client_first_time
            .zip(flight.server_last)
            .map(|(client, server)| client.since(server).as_micros() as u64);
        out.add(
            "the client answered the server's encrypted flight with one alert-sized record and no data: it likely refused the certificate".to_string(),
            crate::evidence! {server_flight_records: flight.server_records, server_flight_bytes: flight.server_bytes, client_first_record_bytes: flight.client_first_length, client_records: flight.client_records, client_answer_after_us: answer_us},
        );
    }),
};
