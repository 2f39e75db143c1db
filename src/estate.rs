//! Drift judged across the estate: `tlstap inventory ingest` runs every
//! sensor's records through one drift memory (seeded from the estate
//! inventory), so a service that negotiates TLS 1.3 behind one tap and
//! TLS 1.2 behind another, or shows a different leaf to each, is noticed even
//! though neither sensor saw the change. Downstream of output: it reads
//! records, never the stream.

use std::net::{IpAddr, SocketAddr};

use serde_json::Value;

use crate::policy::drift::{Drift, KnownService};
use crate::policy::{Finding, Observation, Policy, ServerLeaf, TlsObservation};
use crate::time::PacketTime;
use crate::tls::ProtocolVersion;

/// What the estate judgement added, for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EstateCounters {
    /// Records judged (TLS sessions with a negotiated version).
    pub judged: u64,
    /// Drift findings added that the sensor had not raised itself.
    pub findings_added: u64,
}

pub struct EstateDrift {
    drift: Drift,
    policy: Policy,
    counters: EstateCounters,
    found: Vec<Finding>,
}

impl EstateDrift {
    pub fn new(policy: Policy, known: Vec<KnownService>) -> Self {
        Self {
            drift: Drift::new(policy.max_services, known),
            policy,
            counters: EstateCounters::default(),
            found: Vec::new(),
        }
    }

    pub fn counters(&self) -> EstateCounters {
        self.counters
    }

    /// Judges one record and appends to its `tlstap.findings` the drift
    /// findings its sensor did not raise, marked `"estate": true`.
    pub fn judge(&mut self, record: &mut Value) {
        let Some(observation) = observation(record) else {
            return;
        };
        self.counters.judged += 1;
        self.found.clear();
        self.drift
            .check(&observation, &self.policy, &mut self.found);
        if self.found.is_empty() {
            return;
        }
        // The same exceptions as on the sensor: an owned, live exception
        // covers an estate finding too.
        crate::policy::apply_exceptions(&observation, &self.policy, &mut self.found);
        let observer = record
            .pointer("/observer/name")
            .and_then(Value::as_str)
            .map(str::to_string);
        let Some(tlstap) = record.get_mut("tlstap").and_then(Value::as_object_mut) else {
            return;
        };
        let findings = tlstap
            .entry("findings")
            .or_insert_with(|| Value::Array(Vec::new()));
        let Some(findings) = findings.as_array_mut() else {
            return;
        };
        for finding in self.found.drain(..) {
            let raised = findings
                .iter()
                .any(|f| f.get("id").and_then(Value::as_str) == Some(finding.id));
            if raised {
                continue;
            }
            let Ok(mut value) = serde_json::to_value(&finding) else {
                continue;
            };
            if let Some(object) = value.as_object_mut() {
                object.insert("estate".into(), Value::Bool(true));
                if let Some(observer) = &observer {
                    object.insert("observer".into(), Value::String(observer.clone()));
                }
            }
            findings.push(value);
            self.counters.findings_added += 1;
        }
    }
}

/// The drift rules' view of a record, or None for records they ignore.
fn observation(record: &Value) -> Option<Observation> {
    let text = |pointer: &str| record.pointer(pointer).and_then(Value::as_str);
    let endpoint = |ip: &str, port: &str| -> Option<SocketAddr> {
        let ip: IpAddr = text(ip)?.parse().ok()?;
        let port = u16::try_from(record.pointer(port)?.as_u64()?).ok()?;
        Some(SocketAddr::new(ip, port))
    };
    let time = text("/event/start").or_else(|| text("/@timestamp"))?;
    let time = unix_nanos(time)?;
    let version = wire_version(text("/tls/version_protocol")?, text("/tls/version")?)?;
    let cipher = text("/tlstap/cipher_id")?;
    let cipher = u16::from_str_radix(cipher.strip_prefix("0x")?, 16).ok()?;
    // Seconds: a leaf valid to 4096 (rcgen's default) is past i64 nanoseconds.
    let leaf = match (
        text("/tls/server/hash/sha256"),
        text("/tls/server/not_after").and_then(|t| Some(parse(t)?.unix_timestamp())),
    ) {
        (Some(sha256), Some(not_after)) => Some(ServerLeaf {
            sha256: sha256.to_string(),
            not_after,
        }),
        _ => None,
    };
    Some(Observation {
        time: PacketTime::from_nanos(time),
        client: endpoint("/source/ip", "/source/port")?,
        server: endpoint("/destination/ip", "/destination/port")?,
        sni: text("/tls/client/server_name").map(str::to_string),
        tls: Some(TlsObservation {
            client_hello: record.pointer("/tls/client").is_some(),
            negotiated: Some((version, cipher)),
            client_stack: text("/tlstap/client/stack").map(str::to_string),
            server_leaf: leaf,
        }),
        plaintext: None,
    })
}

fn parse(text: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

fn unix_nanos(text: &str) -> Option<i64> {
    i64::try_from(parse(text)?.unix_timestamp_nanos()).ok()
}

/// The wire version a record's `tls.version_protocol` and `tls.version`
/// stand for (the inverse of `ProtocolVersion::ecs_*`).
fn wire_version(protocol: &str, version: &str) -> Option<ProtocolVersion> {
    Some(match (protocol, version) {
        ("tls", "1.3") => ProtocolVersion::TLS13,
        ("tls", "1.2") => ProtocolVersion::TLS12,
        ("tls", "1.1") => ProtocolVersion::TLS11,
        ("tls", "1.0") => ProtocolVersion::TLS10,
        ("ssl", "3.0") => ProtocolVersion::SSL3,
        ("ssl", "2.0") => ProtocolVersion::SSL2,
        ("dtls", "1.0") => ProtocolVersion::DTLS10,
        ("dtls", "1.2") => ProtocolVersion::DTLS12,
        ("dtls", "1.3") => ProtocolVersion::DTLS13,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every sample record's negotiation reads back to the values the
    /// record was written from.
    #[test]
    fn wire_versions_round_trip_through_the_ecs_names() {
        for wire in [
            ProtocolVersion::TLS13,
            ProtocolVersion::TLS12,
            ProtocolVersion::TLS11,
            ProtocolVersion::TLS10,
            ProtocolVersion::SSL3,
            ProtocolVersion::DTLS12,
            ProtocolVersion::DTLS13,
        ] {
            let (protocol, version) = (wire.ecs_protocol().unwrap(), wire.ecs_version().unwrap());
            assert_eq!(
                wire_version(protocol, version),
                Some(wire),
                "{protocol} {version}"
            );
        }
    }

    fn record(sensor: &str, version: &str, cipher: (&str, &str)) -> Value {
        serde_json::json!({
            "@timestamp": "2026-12-01T10:00:00.5Z",
            "event": {"kind": "event", "dataset": "tlstap.tls", "start": "2026-12-01T10:00:00Z"},
            "observer": {"name": sensor},
            "source": {"ip": "10.0.0.1", "port": 40000},
            "destination": {"ip": "10.0.0.2", "port": 443},
            "tls": {"version": version, "version_protocol": "tls", "cipher": cipher.0,
                    "client": {"server_name": "api.internal"}},
            "tlstap": {"cipher_id": cipher.1, "findings": []}
        })
    }

    #[test]
    fn a_downgrade_seen_by_another_sensor_is_drift() {
        let mut estate = EstateDrift::new(Policy::default(), Vec::new());
        let mut first = record("tap-a", "1.3", ("TLS_AES_128_GCM_SHA256", "0x1301"));
        estate.judge(&mut first);
        assert_eq!(first["tlstap"]["findings"], serde_json::json!([]));
        let mut second = record(
            "tap-b",
            "1.2",
            ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "0xc02f"),
        );
        estate.judge(&mut second);
        let added = &second["tlstap"]["findings"][0];
        assert_eq!(added["id"], "negotiation_changed");
        assert_eq!(added["severity"], "high");
        assert_eq!(added["estate"], true);
        assert_eq!(added["observer"], "tap-b");
        assert_eq!(added["evidence"]["change"], "downgrade");
        assert_eq!(estate.counters().findings_added, 1);
    }

    #[test]
    fn a_finding_the_sensor_raised_is_not_added_twice() {
        let mut estate = EstateDrift::new(Policy::default(), Vec::new());
        estate.judge(&mut record(
            "tap-a",
            "1.3",
            ("TLS_AES_128_GCM_SHA256", "0x1301"),
        ));
        let mut second = record("tap-a", "1.2", ("X", "0xc02f"));
        second["tlstap"]["findings"] = serde_json::json!([{"id": "negotiation_changed"}]);
        estate.judge(&mut second);
        assert_eq!(second["tlstap"]["findings"].as_array().unwrap().len(), 1);
        assert_eq!(estate.counters().judged, 2);
        assert_eq!(estate.counters().findings_added, 0);
    }

    #[test]
    fn records_without_a_negotiation_are_left_alone() {
        let mut estate = EstateDrift::new(Policy::default(), Vec::new());
        let mut stats = serde_json::json!({"event": {"kind": "metric"}, "tlstap": {"stats": {}}});
        let before = stats.clone();
        estate.judge(&mut stats);
        assert_eq!(stats, before);
        assert_eq!(estate.counters().judged, 0);
    }
}
