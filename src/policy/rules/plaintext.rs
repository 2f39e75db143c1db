//! Plaintext findings: non-TLS traffic where TLS is expected.

use super::{Check, Rule};
use crate::policy::Severity;

pub const PLAINTEXT_ON_TLS_PORT: Rule = Rule {
    id: "plaintext_on_tls_port",
    severity: Severity::High,
    summary: "A connection to a port the policy lists as TLS whose first bytes are not TLS.",
    check: Check::Session(|facts, policy, out| {
        let Some(plaintext) = facts.plaintext else {
            return;
        };
        let port = facts.server.port();
        if policy.tls_ports.contains(&port) {
            out.add(
                format!("{} in plaintext on TLS port {port}", plaintext.protocol.as_str()),
                crate::evidence! {protocol: plaintext.protocol.as_str(), port: port, first_line: &plaintext.first_line},
            );
        }
    }),
};

pub const PLAINTEXT_FALLBACK: Rule = Rule {
    id: "plaintext_fallback",
    severity: Severity::High,
    summary: "A server ip:port that spoke TLS earlier in the run now carries plaintext.",
    check: Check::History(|session, previous, out| {
        let Some(protocol) = session.plaintext else {
            return;
        };
        let Some(first_tls) = previous.first_tls else {
            return;
        };
        out.add(
            format!("{} spoke TLS earlier in this capture and now carries plaintext {}", session.server, protocol.as_str()),
            crate::evidence! {server: crate::addr::AddrText::socket(session.server), tls_first_seen: crate::time::Rfc3339Micros(first_tls), protocol: protocol.as_str()},
        );
    }),
};

pub const STARTTLS_NOT_USED: Rule = Rule {
    id: "starttls_not_used",
    severity: Severity::Medium,
    summary: "An SMTP, IMAP or POP3 session that never upgraded to TLS (noting whether the server offered STARTTLS).",
    check: Check::Session(|facts, _, out| {
        let Some(plaintext) = facts.plaintext else { return };
        if plaintext.protocol.has_starttls() && !plaintext.starttls_requested {
            let offered = if plaintext.starttls_offered { "although the server offered it" } else { "and the server did not offer it" };
            out.add(
                format!("{} session without STARTTLS, {offered}", plaintext.protocol.as_str()),
                crate::evidence! {protocol: plaintext.protocol.as_str(), starttls_offered: plaintext.starttls_offered, greeting: &plaintext.first_line},
            );
        }
    }),
};

pub const POSTGRES_SSL_REFUSED: Rule = Rule {
    id: "postgres_ssl_refused",
    severity: Severity::High,
    summary: "A PostgreSQL SSLRequest answered 'N': the session continues in plaintext.",
    check: Check::Session(|facts, _, out| {
        let Some(plaintext) = facts.plaintext else {
            return;
        };
        if plaintext.postgres_ssl_answer == Some(b'N') {
            out.add(
                "PostgreSQL server refused SSL ('N'); the session continues in plaintext"
                    .to_string(),
                crate::evidence! {server: crate::addr::AddrText::socket(facts.server), answer: "N"},
            );
        }
    }),
};
