//! Reads the fields the inventory keeps out of one ECS record. Records can
//! come from anywhere (a file a person edited, another tool), so every field
//! is checked for its type, every string is capped, and a record without a
//! usable time, server address or port is refused rather than guessed.

use std::net::IpAddr;

use serde_json::Value;

/// Longest string kept from a record, in bytes (an SNI is at most 255; DNs and
/// messages are short). Longer values are cut at a character boundary.
pub const MAX_TEXT_BYTES: usize = 1024;
/// Subject alternative names kept per certificate.
pub const MAX_SANS: usize = 64;
/// Certificate problems kept per invalid-certificate client.
pub const MAX_PROBLEMS: usize = 16;
/// Findings read from one record.
pub const MAX_FINDINGS_PER_RECORD: usize = 64;
/// Serialised size of a drift finding's evidence; larger evidence is replaced
/// by `{"truncated": true}`.
pub const MAX_EVIDENCE_BYTES: usize = 4096;

/// Drift finding ids (raised by `policy::drift`), kept as events.
pub const DRIFT_IDS: [&str; 4] = [
    "negotiation_changed",
    "cert_rotated",
    "cert_not_rotated",
    "new_client_stack",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    Tls,
    Plaintext,
}

/// Why a record was not ingested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Stats or any dataset that is not a session.
    NotASession,
    /// A session record missing a usable time, server address or port.
    Malformed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SessionFacts {
    pub kind: SessionKind,
    /// Canonical fixed-width RFC 3339 (see [`canonical_time`]).
    pub time: String,
    pub unix_seconds: i64,
    pub client_ip: Option<String>,
    pub server_ip: String,
    pub port: u16,
    /// Lower-case; empty when the client sent none.
    pub sni: String,
    pub name: Option<String>,
    pub owner: Option<String>,
    pub direction: String,
    pub protocol: String,
    pub negotiation: Option<Negotiation>,
    pub certificate: Option<Certificate>,
    pub stack: Option<String>,
    pub ja4: Option<String>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiation {
    pub version: String,
    pub protocol: String,
    pub cipher: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub sha256: String,
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    pub not_before: String,
    pub not_after: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub id: String,
    pub severity: String,
    pub message: String,
    pub evidence: Value,
    pub exception: Option<ExceptionRef>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionRef {
    pub id: String,
    pub owner: String,
    pub expires: String,
}

fn path<'a>(value: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().try_fold(value, |v, key| v.get(*key))
}

fn text(value: &Value, keys: &[&str]) -> Option<String> {
    path(value, keys).and_then(Value::as_str).map(cap_text)
}

/// Cuts `s` to [`MAX_TEXT_BYTES`] at a character boundary.
pub fn cap_text(s: &str) -> String {
    if s.len() <= MAX_TEXT_BYTES {
        return s.to_string();
    }
    let mut end = MAX_TEXT_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Parses an RFC 3339 time and writes it in the one fixed-width form the
/// store compares as text. Years outside 1970..=9999 are refused: they would
/// break that ordering and no capture has them.
pub fn canonical_time(s: &str) -> Option<(String, i64)> {
    let parsed =
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    let utc = parsed.to_offset(time::UtcOffset::UTC);
    if !(1970..=9999).contains(&utc.year()) {
        return None;
    }
    Some((format_time(utc)?, utc.unix_timestamp()))
}

/// The store's time format: `2026-11-23T01:19:19.497797Z`.
pub fn format_time(t: time::OffsetDateTime) -> Option<String> {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    t.to_offset(time::UtcOffset::UTC).format(&format).ok()
}

/// Unix seconds of an RFC 3339 time, `None` when it does not parse.
pub fn unix_seconds(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// Reads one record. Never panics, whatever the JSON.
pub fn session_facts(record: &Value) -> Result<SessionFacts, Refusal> {
    let kind = match path(record, &["event", "dataset"]).and_then(Value::as_str) {
        Some("tlstap.tls") => SessionKind::Tls,
        Some("tlstap.plaintext") => SessionKind::Plaintext,
        _ => return Err(Refusal::NotASession),
    };
    let (time, unix_seconds) = path(record, &["@timestamp"])
        .and_then(Value::as_str)
        .and_then(canonical_time)
        .ok_or(Refusal::Malformed)?;
    // Parsed and written back so "10.0.0.1" and "::ffff:..." spellings of one
    // address cannot make two services, and a non-address cannot make one.
    let server_ip = path(record, &["destination", "ip"])
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<IpAddr>().ok())
        .ok_or(Refusal::Malformed)?
        .to_string();
    let port = path(record, &["destination", "port"])
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or(Refusal::Malformed)?;
    let client_ip = path(record, &["source", "ip"])
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<IpAddr>().ok())
        .map(|ip| ip.to_string());
    let sni = text(record, &["tls", "client", "server_name"])
        .map(|s| s.to_ascii_lowercase())
        .unwrap_or_default();
    let negotiation = match (
        text(record, &["tls", "version"]),
        text(record, &["tls", "cipher"]),
    ) {
        (Some(version), Some(cipher)) => Some(Negotiation {
            version,
            protocol: text(record, &["tls", "version_protocol"]).unwrap_or_default(),
            cipher,
        }),
        _ => None,
    };
    let certificate = text(record, &["tls", "server", "hash", "sha256"]).map(|sha256| {
        let sans = path(record, &["tls", "server", "x509", "alternative_names"])
            .and_then(Value::as_array)
            .map(|names| {
                names
                    .iter()
                    .filter_map(Value::as_str)
                    .take(MAX_SANS)
                    .map(cap_text)
                    .collect()
            })
            .unwrap_or_default();
        Certificate {
            sha256,
            subject: text(record, &["tls", "server", "subject"]).unwrap_or_default(),
            issuer: text(record, &["tls", "server", "issuer"]).unwrap_or_default(),
            sans,
            not_before: text(record, &["tls", "server", "not_before"]).unwrap_or_default(),
            not_after: text(record, &["tls", "server", "not_after"]).unwrap_or_default(),
        }
    });
    let findings = path(record, &["tlstap", "findings"])
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .take(MAX_FINDINGS_PER_RECORD)
                .filter_map(finding)
                .collect()
        })
        .unwrap_or_default();
    Ok(SessionFacts {
        kind,
        time,
        unix_seconds,
        client_ip,
        server_ip,
        port,
        sni,
        name: text(record, &["service", "target", "name"]),
        owner: text(record, &["tlstap", "service", "owner"]),
        direction: text(record, &["network", "direction"]).unwrap_or_default(),
        protocol: text(record, &["network", "protocol"]).unwrap_or_default(),
        negotiation,
        certificate,
        stack: text(record, &["tlstap", "client", "stack"]),
        ja4: text(record, &["tlstap", "client", "ja4"]),
        findings,
    })
}

fn finding(value: &Value) -> Option<Finding> {
    let id = text(value, &["id"])?;
    let exception = text(value, &["exception", "id"]).map(|exception_id| ExceptionRef {
        id: exception_id,
        owner: text(value, &["exception", "owner"]).unwrap_or_default(),
        expires: text(value, &["exception", "expires"]).unwrap_or_default(),
    });
    Some(Finding {
        id,
        severity: text(value, &["severity"]).unwrap_or_default(),
        message: text(value, &["message"]).unwrap_or_default(),
        evidence: value.get("evidence").cloned().unwrap_or(Value::Null),
        exception,
    })
}

/// Rank of an ECS-style severity; unknown words rank lowest.
pub fn severity_rank(severity: &str) -> u8 {
    match severity {
        "critical" => 5,
        "high" => 4,
        "medium" => 3,
        "low" => 2,
        "info" => 1,
        _ => 0,
    }
}

/// Evidence as stored: JSON text no longer than [`MAX_EVIDENCE_BYTES`].
pub fn evidence_text(evidence: &Value) -> String {
    let text = evidence.to_string();
    if text.len() <= MAX_EVIDENCE_BYTES {
        text
    } else {
        r#"{"truncated":true}"#.to_string()
    }
}

/// The certificate problems named by a `client_accepted_invalid_cert` finding.
pub fn certificate_problems(evidence: &Value) -> Vec<String> {
    evidence
        .get("certificate_problems")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .take(MAX_PROBLEMS)
                .map(cap_text)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stats_and_unknown_datasets_are_not_sessions() {
        let stats =
            json!({"@timestamp": "2026-11-23T01:19:19Z", "event": {"dataset": "tlstap.stats"}});
        assert_eq!(session_facts(&stats), Err(Refusal::NotASession));
        assert_eq!(session_facts(&json!([1, 2])), Err(Refusal::NotASession));
    }

    #[test]
    fn session_without_port_or_with_bad_address_is_malformed() {
        let base = json!({"@timestamp": "2026-11-23T01:19:19Z", "event": {"dataset": "tlstap.tls"},
            "destination": {"ip": "10.0.0.1", "port": 70000}});
        assert_eq!(session_facts(&base), Err(Refusal::Malformed));
        let bad_ip = json!({"@timestamp": "2026-11-23T01:19:19Z", "event": {"dataset": "tlstap.tls"},
            "destination": {"ip": "not-an-ip", "port": 443}});
        assert_eq!(session_facts(&bad_ip), Err(Refusal::Malformed));
        let bad_time = json!({"@timestamp": "0001-01-01T00:00:00Z", "event": {"dataset": "tlstap.tls"},
            "destination": {"ip": "10.0.0.1", "port": 443}});
        assert_eq!(session_facts(&bad_time), Err(Refusal::Malformed));
    }

    #[test]
    fn time_is_written_fixed_width_in_utc() {
        assert_eq!(
            canonical_time("2026-11-23T02:19:19+01:00"),
            Some(("2026-11-23T01:19:19.000000Z".to_string(), 1_795_396_759))
        );
    }

    #[test]
    fn sni_is_lower_cased_and_long_text_is_cut_at_a_char_boundary() {
        let long = "é".repeat(MAX_TEXT_BYTES);
        let record = json!({"@timestamp": "2026-11-23T01:19:19Z", "event": {"dataset": "tlstap.tls"},
            "destination": {"ip": "10.0.0.1", "port": 443},
            "tls": {"client": {"server_name": "API.Internal"}, "server": {"subject": long}}});
        let facts = session_facts(&record).expect("a session");
        assert_eq!(facts.sni, "api.internal");
        assert_eq!(facts.certificate, None);
        assert_eq!(cap_text(&long).len(), MAX_TEXT_BYTES);
        assert_eq!(cap_text("é€").len(), 5);
    }

    #[test]
    fn oversized_evidence_is_replaced() {
        let big = json!({"x": "a".repeat(MAX_EVIDENCE_BYTES)});
        assert_eq!(evidence_text(&big), r#"{"truncated":true}"#);
        assert_eq!(evidence_text(&json!({"a": 1})), r#"{"a":1}"#);
    }
}
