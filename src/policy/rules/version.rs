//! Version findings: below baseline, obsolete, downgrade, fallback, regression.

use super::{Check, Rule};
use crate::policy::Severity;
use crate::tls::{DowngradeSentinel, ProtocolVersion};

fn label(version: ProtocolVersion) -> &'static str {
    match (version.ecs_protocol(), version.ecs_version()) {
        (Some("ssl"), Some("2.0")) => "SSL 2.0",
        (Some("ssl"), _) => "SSL 3.0",
        (_, Some("1.0")) => "TLS 1.0",
        (_, Some("1.1")) => "TLS 1.1",
        (_, Some("1.2")) => "TLS 1.2",
        (_, Some("1.3")) => "TLS 1.3",
        _ => "unknown",
    }
}

pub const TLS_BELOW_BASELINE: Rule = Rule {
    id: "tls_below_baseline",
    severity: Severity::Medium,
    summary: "Negotiated version below the baseline for the session's direction (default TLS 1.3 east-west, TLS 1.2 otherwise).",
    check: Check::Negotiated(|facts, policy, out| {
        let Some(version) = facts.version() else { return };
        let baseline = policy.baselines.for_direction(facts.direction);
        if version < baseline {
            out.add(
                format!("{} negotiated; the {} baseline is {}", label(version), facts.direction.as_str(), label(baseline)),
                crate::evidence! {negotiated: label(version), baseline: label(baseline), direction: facts.direction.as_str()},
            );
        }
    }),
};

pub const OBSOLETE_VERSION: Rule = Rule {
    id: "obsolete_version",
    severity: Severity::High,
    summary: "SSL 2.0/3.0 or TLS 1.0/1.1 negotiated (RFC 8996).",
    check: Check::Negotiated(|facts, _, out| {
        let Some(version) = facts.version() else {
            return;
        };
        if version < ProtocolVersion::TLS12 {
            out.add(
                format!("{} is obsolete", label(version)),
                crate::evidence! {negotiated: label(version)},
            );
        }
    }),
};

pub const DOWNGRADE: Rule = Rule {
    id: "downgrade",
    severity: Severity::Medium,
    summary: "The client offered a higher version than was negotiated (the ServerHello's TLS 1.3 downgrade sentinel, when present, is in the evidence).",
    check: Check::Negotiated(|facts, _, out| {
        let Some(tls) = facts.tls else { return };
        let (Some(version), Some(hello), Some(server)) = (facts.version(), &tls.client_hello, &tls.server_hello) else {
            return;
        };
        let offered = hello.highest_offered();
        // A 1.3-capable server always sets the RFC 8446 §4.1.3 sentinel when it
        // negotiates lower; that is only a downgrade if the client asked for more.
        if offered.normalized().is_some_and(|offered| offered > version) {
            let sentinel = server.downgrade_sentinel.map(|sentinel| match sentinel {
                DowngradeSentinel::Tls12 => "DOWNGRD\\x01 (TLS 1.2)",
                DowngradeSentinel::Tls11OrBelow => "DOWNGRD\\x00 (TLS 1.1 or below)",
            });
            out.add(
                format!("client offered {} but {} was negotiated", label(offered), label(version)),
                crate::evidence! {client_offered: label(offered), negotiated: label(version), sentinel: sentinel},
            );
        }
    }),
};

pub const FALLBACK_SCSV: Rule = Rule {
    id: "fallback_scsv",
    severity: Severity::Medium,
    summary: "The ClientHello carries TLS_FALLBACK_SCSV: a client retrying with a lower version after a failed attempt (RFC 7507).",
    check: Check::Negotiated(|facts, _, out| {
        let Some(hello) = facts.tls.and_then(|t| t.client_hello.as_ref()) else { return };
        if hello.fallback_scsv {
            out.add(
                format!("client retried with {} and TLS_FALLBACK_SCSV", label(hello.highest_offered())),
                crate::evidence! {client_offered: label(hello.highest_offered())},
            );
        }
    }),
};

pub const VERSION_REGRESSION: Rule = Rule {
    id: "version_regression",
    severity: Severity::High,
    summary: "A server ip:port that negotiated TLS 1.3 earlier in the run now negotiates a lower version.",
    check: Check::History(|session, previous, out| {
        let Some(version) = session.version() else { return };
        let Some((best, since)) = previous.best_version else { return };
        if best == ProtocolVersion::TLS13 && version < best {
            out.add(
                format!("{} negotiated {} earlier in this capture and now {}", crate::addr::AddrText::socket(session.server), label(best), label(version)),
                crate::evidence! {server: crate::addr::AddrText::socket(session.server), previous: label(best), previous_seen: crate::time::Rfc3339Micros(since), negotiated: label(version)},
            );
        }
    }),
};
