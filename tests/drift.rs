//! Drift findings: a service's negotiation, leaf and client stacks judged
//! against its history (earlier sessions of the run; earlier runs through
//! `--inventory`), on the OpenSSL samples (all to 10.20.0.10, SNI api.internal).

mod support;

use std::path::{Path, PathBuf};

use support::*;

const DRIFT: [&str; 4] = [
    "negotiation_changed",
    "cert_rotated",
    "cert_not_rotated",
    "new_client_stack",
];

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(name)
}

/// Destination port, tls.cipher and drift findings as (id, severity) of one record.
type Drifted = (u64, String, Vec<(String, String)>);

fn drift_of(records: &[serde_json::Value]) -> Vec<Drifted> {
    records
        .iter()
        .filter(|r| r["event"]["dataset"] == "tlstap.tls")
        .map(|r| {
            let findings = r["tlstap"]["findings"]
                .as_array()
                .expect("findings")
                .iter()
                .filter(|f| DRIFT.contains(&f["id"].as_str().unwrap_or("")))
                .map(|f| (string(f, "id"), string(f, "severity")))
                .collect();
            (
                field(r, "destination.port").as_u64().expect("port"),
                string(r, "tls.cipher"),
                findings,
            )
        })
        .collect()
}

fn read(extra: &[&str], files: &[&str]) -> Vec<serde_json::Value> {
    let policy = sample("policy.toml");
    let paths: Vec<String> = files
        .iter()
        .map(|f| sample(f).to_string_lossy().into_owned())
        .collect();
    let mut args = vec!["read", "-q", "--policy", policy.to_str().expect("p")];
    args.extend_from_slice(extra);
    args.extend(paths.iter().map(String::as_str));
    let (code, records, stderr) = run_tlstap(&args);
    assert_eq!(code, 0, "{stderr}");
    records
}

#[test]
fn drift_within_one_run_is_raised_exactly_where_the_history_changes() {
    let records = read(
        &[],
        &[
            "tls12-ecdhe.pcap",
            "tls12-rsa-static.pcap",
            "cert-expired.pcap",
            "tls12-client-cert.pcap",
            "tls13.pcap",
        ],
    );
    let s = |id: &str, severity: &str| (id.to_string(), severity.to_string());
    assert_eq!(
        drift_of(&records),
        vec![
            // First sight of the service: nothing to compare with.
            (443, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into(), vec![]),
            // Same version, another cipher: low.
            (
                443,
                "TLS_RSA_WITH_AES_128_CBC_SHA".into(),
                vec![s("negotiation_changed", "low")]
            ),
            // Another leaf (the expired one) and, for the first time, OpenSSL's
            // default hello; the history is no longer uniform, so no new
            // negotiation_changed.
            (
                443,
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384".into(),
                vec![s("cert_rotated", "info"), s("new_client_stack", "low")]
            ),
            // Another port is another service.
            (8443, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384".into(), vec![]),
            (443, "TLS_AES_256_GCM_SHA384".into(), vec![]),
        ]
    );
    let rotated = records
        .iter()
        .flat_map(|r| {
            r["tlstap"]["findings"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .find(|f| f["id"] == "cert_rotated")
        .expect("cert_rotated");
    // The old leaf (samples/MANIFEST.md: B3C2…, not_after 2027-02-21T01:19:05Z)
    // had 89 days left at the rotation (2026-11-23).
    assert!(string(&rotated, "evidence.old.sha256").starts_with("B3C2785B9B0FCDEB"));
    assert_eq!(
        string(&rotated, "evidence.old.not_after"),
        "2027-02-21T01:19:05Z"
    );
    assert_eq!(rotated["evidence"]["days_before_old_expiry"], 89);
}

#[test]
fn a_downgrade_after_a_uniform_tls13_history_is_high() {
    let records = read(&[], &["tls13.pcap", "tls13-hrr.pcap", "cert-expired.pcap"]);
    let drift = drift_of(&records);
    assert_eq!(drift.len(), 3);
    assert_eq!(
        drift[2].2,
        vec![("negotiation_changed".to_string(), "high".to_string())],
        "{drift:?}"
    );
    let finding = records
        .iter()
        .flat_map(|r| {
            r["tlstap"]["findings"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .find(|f| f["id"] == "negotiation_changed")
        .expect("finding");
    assert_eq!(string(&finding, "evidence.change"), "downgrade");
    assert_eq!(string(&finding, "evidence.previous.version"), "1.3");
    assert_eq!(string(&finding, "evidence.now.version"), "1.2");
}
