//! `--keylog`: TLS 1.3 handshakes read with the client's NSS key log give the
//! same certificate findings as the same case under TLS 1.2; without keys,
//! a client's alert-sized answer is inferred as `tls13_handshake_aborted`.
//! Handshakes come from rustls (its `KeyLog`) and from OpenSSL samples.

mod support;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use support::*;

/// Collects what rustls logs, in the NSS key log format.
#[derive(Debug, Default)]
struct KeyLogText(Mutex<String>);

impl rustls::KeyLog for KeyLogText {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let hex = |bytes: &[u8]| {
            bytes.iter().fold(String::new(), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            })
        };
        let mut text = self.0.lock().expect("lock");
        let _ = writeln!(text, "{label} {} {}", hex(client_random), hex(secret));
    }
}

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

fn tls12() -> Vec<&'static rustls::SupportedProtocolVersion> {
    vec![&rustls::version::TLS12]
}

fn tls13() -> Vec<&'static rustls::SupportedProtocolVersion> {
    vec![&rustls::version::TLS13]
}

/// One rustls handshake as a pcap, with the client's key log beside it.
fn capture(dir: &Path, name: &str, pki: &Pki, options: HandshakeOptions) -> (PathBuf, PathBuf) {
    let log = Arc::new(KeyLogText::default());
    let options = HandshakeOptions {
        key_log: Some(log.clone()),
        ..options
    };
    let pcap = handshake_pcap(
        dir,
        &format!("{name}.pcap"),
        pki,
        &options,
        &Framing::default(),
    );
    let keys = dir.join(format!("{name}.keylog"));
    std::fs::write(&keys, log.0.lock().expect("lock").as_bytes()).expect("write keylog");
    (pcap, keys)
}

fn policy(dir: &Path, pki: &Pki, extra: &str) -> PathBuf {
    std::fs::write(dir.join("root.pem"), &pki.root_pem).expect("write root");
    let path = dir.join("policy.toml");
    std::fs::write(
        &path,
        format!(
            "[certificates]\ntrusted_ca = \"root.pem\"\nsystem_roots = false\nmax_validity_days = 1000000\n{extra}"
        ),
    )
    .expect("write policy");
    path
}

fn read(policy: &Path, pcap: &Path, keylog: Option<&Path>) -> serde_json::Value {
    let mut args = vec![
        "read",
        "-q",
        "--policy",
        policy.to_str().expect("path"),
        pcap.to_str().expect("path"),
    ];
    if let Some(keylog) = keylog {
        args.extend(["--keylog", keylog.to_str().expect("path")]);
    }
    let (code, records, stderr) = run_tlstap(&args);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(records.len(), 1, "{records:?}");
    records.into_iter().next().expect("one record")
}

fn ids(record: &serde_json::Value) -> BTreeSet<String> {
    field(record, "tlstap.findings")
        .as_array()
        .map(|list| {
            list.iter()
                .map(|f| f["id"].as_str().expect("id").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The findings that need the certificates (or the client's answer to them).
fn certificate_ids(record: &serde_json::Value) -> BTreeSet<String> {
    ids(record)
        .into_iter()
        .filter(|id| {
            id.starts_with("cert_")
                || id.starts_with("chain_")
                || id.starts_with("mtls_")
                || id == "client_accepted_invalid_cert"
                || id == "tls_alert"
        })
        .collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// Runs a case under TLS 1.2 and under TLS 1.3 with its key log; asserts
/// both show `expected` and returns (TLS 1.2 record, TLS 1.3 record).
fn compare(
    name: &str,
    pki: &Pki,
    options: HandshakeOptions,
    extra_policy: &str,
    expected: &[&str],
) -> (serde_json::Value, serde_json::Value) {
    let dir = temp_dir();
    let policy = policy(dir.path(), pki, extra_policy);
    let (pcap12, _) = capture(
        dir.path(),
        &format!("{name}-12"),
        pki,
        HandshakeOptions {
            client_versions: tls12(),
            ..options.clone()
        },
    );
    let (pcap13, keys13) = capture(
        dir.path(),
        &format!("{name}-13"),
        pki,
        HandshakeOptions {
            client_versions: tls13(),
            ..options
        },
    );
    let r12 = read(&policy, &pcap12, None);
    let r13 = read(&policy, &pcap13, Some(&keys13));
    assert_eq!(string(&r12, "tls.version"), "1.2");
    assert_eq!(string(&r13, "tls.version"), "1.3");
    assert_eq!(
        field(&r13, "tlstap.decrypted"),
        &serde_json::json!(true),
        "{r13}"
    );
    assert!(field(&r12, "tlstap.decrypted").is_null());
    assert_eq!(certificate_ids(&r12), set(expected), "TLS 1.2: {r12}");
    assert_eq!(certificate_ids(&r13), set(expected), "TLS 1.3: {r13}");
    // The same server certificate, read in the clear and decrypted.
    assert_eq!(
        field(&r13, "tls.server.hash.sha256"),
        field(&r12, "tls.server.hash.sha256")
    );
    (r12, r13)
}

#[test]
fn good_chain_decrypted_shows_the_same_certificate_and_no_findings() {
    let pki = Pki::new(&["api.internal"]);
    let (r12, r13) = compare("good", &pki, HandshakeOptions::default(), "", &[]);
    assert_eq!(string(&r13, "tls.server.subject"), "CN=api.internal");
    assert_eq!(
        string(&r13, "tls.server.hash.sha256"),
        sha256_hex(&pki.server_chain[0])
    );
    assert_eq!(
        string(&r13, "tls.server.issuer"),
        string(&r12, "tls.server.issuer")
    );
    assert_eq!(string(&r13, "tlstap.end_reason"), "handshake_done");
    // ALPN travels in EncryptedExtensions under TLS 1.3.
    assert_eq!(string(&r13, "tls.next_protocol"), "h2");
}

#[test]
fn expired_leaf_is_flagged_and_the_accepting_client_caught_under_both_versions() {
    let leaves = LeafOptions {
        validity: Some((
            time::macros::datetime!(2024-01-01 00:00 UTC),
            time::macros::datetime!(2025-01-01 00:00 UTC),
        )),
        ..LeafOptions::default()
    };
    let pki = Pki::with_leaves(&["api.internal"], &leaves);
    // The peers validate at mid-2024 (the leaf is good then); tlstap judges
    // at packet time, 2026.
    let options = HandshakeOptions {
        validation_time: Some(1_717_200_000),
        ..HandshakeOptions::default()
    };
    let (_, r13) = compare(
        "expired",
        &pki,
        options,
        "",
        &["cert_expired", "client_accepted_invalid_cert"],
    );
    let findings = field(&r13, "tlstap.findings").as_array().expect("findings");
    let accepted = findings
        .iter()
        .find(|f| f["id"] == "client_accepted_invalid_cert")
        .expect("accepted");
    assert_eq!(
        accepted["evidence"]["certificate_problems"],
        serde_json::json!(["cert_expired"])
    );
}

#[test]
fn untrusted_issuer_is_flagged_under_both_versions() {
    let pki = Pki::new(&["api.internal"]);
    let dir = temp_dir();
    // Trust only the samples' unrelated CA: this chain's root is unknown.
    let strict = dir.path().join("strict.toml");
    std::fs::write(
        &strict,
        format!(
            "[certificates]\ntrusted_ca = \"{}\"\nsystem_roots = false\nmax_validity_days = 1000000\n",
            samples().join("pki/root-ca.pem").display()
        ),
    )
    .expect("write");
    let options = HandshakeOptions {
        insecure_client: true,
        ..HandshakeOptions::default()
    };
    let (pcap12, _) = capture(
        dir.path(),
        "untrusted-12",
        &pki,
        HandshakeOptions {
            client_versions: tls12(),
            ..options.clone()
        },
    );
    let (pcap13, keys) = capture(
        dir.path(),
        "untrusted-13",
        &pki,
        HandshakeOptions {
            client_versions: tls13(),
            ..options
        },
    );
    // The chain's last certificate is not a trusted root's child either.
    let expected = set(&[
        "cert_untrusted_issuer",
        "chain_incomplete",
        "client_accepted_invalid_cert",
    ]);
    let r12 = read(&strict, &pcap12, None);
    let r13 = read(&strict, &pcap13, Some(&keys));
    assert_eq!(certificate_ids(&r12), expected);
    assert_eq!(certificate_ids(&r13), expected);
    // Without the key log the certificate is not seen at all.
    let blind = read(&strict, &pcap13, None);
    assert!(certificate_ids(&blind).is_empty(), "{blind}");
    assert!(field(&blind, "tls.server.subject").is_null());
}

#[test]
fn name_mismatch_is_flagged_under_both_versions() {
    let pki = Pki::new(&["other.internal"]);
    let options = HandshakeOptions {
        insecure_client: true,
        ..HandshakeOptions::default()
    };
    let (_, r13) = compare(
        "mismatch",
        &pki,
        options,
        "",
        &["cert_name_mismatch", "client_accepted_invalid_cert"],
    );
    assert_eq!(string(&r13, "tls.server.subject"), "CN=other.internal");
    assert_eq!(string(&r13, "tls.client.server_name"), "api.internal");
}

const MTLS_POLICY: &str =
    "[[mtls]]\nname = \"orders-api\"\nmatch = { server = \"10.1.0.10\", port = 443 }\n";

#[test]
fn mtls_client_certificate_is_read_from_the_decrypted_flight() {
    let pki = Pki::new(&["api.internal"]);
    let options = HandshakeOptions {
        client_auth: true,
        ..HandshakeOptions::default()
    };
    let (r12, r13) = compare("mtls", &pki, options, MTLS_POLICY, &[]);
    for record in [&r12, &r13] {
        assert_eq!(string(record, "tls.client.subject"), "CN=client.internal");
        assert_eq!(
            string(record, "tls.client.hash.sha256"),
            sha256_hex(&pki.client_chain[0])
        );
        assert_eq!(
            field(record, "tlstap.server.certificate_requested"),
            &serde_json::json!(true)
        );
    }
    assert!(!ids(&r13).contains("mtls_not_observable"));
}

#[test]
fn mtls_service_without_a_client_certificate_is_flagged_under_both_versions() {
    let pki = Pki::new(&["api.internal"]);
    let (r12, r13) = compare(
        "nomtls",
        &pki,
        HandshakeOptions::default(),
        MTLS_POLICY,
        &["mtls_missing"],
    );
    for record in [&r12, &r13] {
        assert!(field(record, "tls.client.subject").is_null());
        assert_eq!(
            field(record, "tlstap.server.certificate_requested"),
            &serde_json::json!(false)
        );
    }
    // Without keys TLS 1.3 can only say it cannot tell.
    let dir = temp_dir();
    let policy = policy(dir.path(), &pki, MTLS_POLICY);
    let (pcap, _) = capture(
        dir.path(),
        "nomtls-blind",
        &pki,
        HandshakeOptions {
            client_versions: tls13(),
            ..HandshakeOptions::default()
        },
    );
    let blind = read(&policy, &pcap, None);
    assert_eq!(
        certificate_ids(&blind),
        set(&["mtls_not_observable"]),
        "{blind}"
    );
}

/// A validating rustls client against a certificate for another name: it
/// refuses with an alert instead of its Finished.
fn rejecting(versions: Vec<&'static rustls::SupportedProtocolVersion>) -> HandshakeOptions {
    HandshakeOptions {
        client_versions: versions,
        allow_failure: true,
        application_data: false,
        ..HandshakeOptions::default()
    }
}

#[test]
fn client_that_rejects_the_chain_sends_a_decrypted_alert_like_tls12() {
    let pki = Pki::new(&["other.internal"]);
    let (r12, r13) = compare(
        "reject",
        &pki,
        rejecting(tls13()),
        "",
        &["cert_name_mismatch", "tls_alert"],
    );
    for record in [&r12, &r13] {
        assert_eq!(string(record, "tlstap.end_reason"), "fatal_alert");
        let alert = field(record, "tlstap.findings")
            .as_array()
            .expect("findings")
            .iter()
            .find(|f| f["id"] == "tls_alert")
            .expect("tls_alert")
            .clone();
        assert_eq!(alert["evidence"]["sent_by"], "client");
        assert_eq!(alert["evidence"]["description"], "bad_certificate");
        assert_eq!(alert["evidence"]["certificate_validation"], true);
    }
    assert!(!ids(&r13).contains("tls13_handshake_aborted"));
}

#[test]
fn without_keys_a_rejecting_client_is_inferred_and_an_accepting_one_is_not() {
    let pki = Pki::new(&["other.internal"]);
    let dir = temp_dir();
    let policy = policy(dir.path(), &pki, "");
    let (pcap, _) = capture(dir.path(), "reject-blind", &pki, rejecting(tls13()));
    let r = read(&policy, &pcap, None);
    assert!(ids(&r).contains("tls13_handshake_aborted"), "{r}");
    let finding = field(&r, "tlstap.findings")
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["id"] == "tls13_handshake_aborted")
        .expect("finding")
        .clone();
    assert_eq!(finding["evidence"]["client_first_record_bytes"], 19);
    assert_eq!(finding["evidence"]["client_records"], 1);
    assert!(
        finding["evidence"]["server_flight_bytes"]
            .as_u64()
            .expect("bytes")
            > 500
    );
    assert_eq!(string(&r, "tlstap.end_reason"), "closed");
    // rustls refusing an expired leaf: the same 19-byte answer.
    let expired = Pki::with_leaves(
        &["api.internal"],
        &LeafOptions {
            validity: Some((
                time::macros::datetime!(2024-01-01 00:00 UTC),
                time::macros::datetime!(2025-01-01 00:00 UTC),
            )),
            ..LeafOptions::default()
        },
    );
    let (pcap, _) = capture(dir.path(), "expired-blind", &expired, rejecting(tls13()));
    let r = read(&policy, &pcap, None);
    assert!(ids(&r).contains("tls13_handshake_aborted"), "{r}");
    // The same client when it accepts (no verification; no data either).
    let (pcap, _) = capture(
        dir.path(),
        "accept-blind",
        &pki,
        HandshakeOptions {
            insecure_client: true,
            ..rejecting(tls13())
        },
    );
    let r = read(&policy, &pcap, None);
    assert!(!ids(&r).contains("tls13_handshake_aborted"), "{r}");
    // And with application data.
    let (pcap, _) = capture(
        dir.path(),
        "accept-data-blind",
        &pki,
        HandshakeOptions {
            client_versions: tls13(),
            insecure_client: true,
            ..HandshakeOptions::default()
        },
    );
    let r = read(&policy, &pcap, None);
    assert!(!ids(&r).contains("tls13_handshake_aborted"), "{r}");
}

#[test]
fn secrets_never_appear_in_the_record_or_on_stderr() {
    let pki = Pki::new(&["api.internal"]);
    let dir = temp_dir();
    let (pcap, keys) = capture(
        dir.path(),
        "secret",
        &pki,
        HandshakeOptions {
            client_versions: tls13(),
            ..HandshakeOptions::default()
        },
    );
    let text = std::fs::read_to_string(&keys).expect("keylog");
    let secrets: Vec<&str> = text
        .lines()
        .filter_map(|line| line.split(' ').nth(2))
        .collect();
    assert!(secrets.len() >= 4, "{text}");
    let (code, records, stderr) = run_tlstap_all(&[
        "read",
        pcap.to_str().expect("path"),
        "--keylog",
        keys.to_str().expect("path"),
    ]);
    assert_eq!(code, 0);
    let all = serde_json::to_string(&records).expect("json");
    for secret in secrets {
        let upper = secret.to_uppercase();
        assert!(!all.contains(secret) && !all.contains(&upper));
        assert!(!stderr.contains(secret));
    }
    let stats = records
        .iter()
        .find(|r| r["event"]["dataset"] == "tlstap.stats")
        .expect("stats");
    assert_eq!(stats["tlstap"]["stats"]["tls13_decrypted"], 1);
    assert_eq!(stats["tlstap"]["stats"]["tls13_keys_missing"], 0);
}

#[test]
fn world_readable_key_log_gets_one_warning_line() {
    use std::os::unix::fs::PermissionsExt;
    let pki = Pki::new(&["api.internal"]);
    let dir = temp_dir();
    let (pcap, keys) = capture(dir.path(), "perm", &pki, HandshakeOptions::default());
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let (_, _, stderr) = run_tlstap(&[
        "read",
        "-q",
        pcap.to_str().expect("p"),
        "--keylog",
        keys.to_str().expect("p"),
    ]);
    assert_eq!(stderr.matches("world-readable").count(), 1, "{stderr}");
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let (_, _, stderr) = run_tlstap(&[
        "read",
        "-q",
        pcap.to_str().expect("p"),
        "--keylog",
        keys.to_str().expect("p"),
    ]);
    assert!(!stderr.contains("world-readable"), "{stderr}");
}

#[test]
fn wrong_or_foreign_secrets_leave_the_session_undecrypted_without_harm() {
    let pki = Pki::new(&["api.internal"]);
    let dir = temp_dir();
    let policy = policy(dir.path(), &pki, "");
    let (pcap, keys) = capture(
        dir.path(),
        "wrong",
        &pki,
        HandshakeOptions {
            client_versions: tls13(),
            ..HandshakeOptions::default()
        },
    );
    // Same client random, secrets flipped: nothing opens.
    let text = std::fs::read_to_string(&keys).expect("keylog");
    let garbled: String = text
        .lines()
        .map(|line| {
            let mut parts: Vec<String> = line.split(' ').map(str::to_string).collect();
            if let Some(secret) = parts.get_mut(2) {
                *secret = secret.chars().rev().collect();
            }
            parts.join(" ") + "\n"
        })
        .collect();
    let bad = dir.path().join("bad.keylog");
    std::fs::write(&bad, garbled).expect("write");
    let r = read(&policy, &pcap, Some(&bad));
    assert!(field(&r, "tlstap.decrypted").is_null(), "{r}");
    assert!(field(&r, "tls.server.subject").is_null());
    assert_eq!(string(&r, "tls.version"), "1.3");
    assert_eq!(string(&r, "tlstap.end_reason"), "handshake_done");
    // A key log of another session, and one of junk lines.
    let (_, other) = capture(dir.path(), "other", &pki, HandshakeOptions::default());
    let junk = dir.path().join("junk.keylog");
    std::fs::write(
        &junk,
        "x".repeat(100_000) + "\nCLIENT_HANDSHAKE_TRAFFIC_SECRET zz\n\0\0\n",
    )
    .expect("write");
    let (code, records, stderr) = run_tlstap(&[
        "read",
        "-q",
        pcap.to_str().expect("p"),
        "--keylog",
        other.to_str().expect("p"),
        "--keylog",
        junk.to_str().expect("p"),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(field(&records[0], "tlstap.decrypted").is_null());
    // A missing key log is an error that names the file.
    let (code, _, stderr) = run_tlstap(&[
        "read",
        pcap.to_str().expect("p"),
        "--keylog",
        "/nonexistent/keys.log",
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("/nonexistent/keys.log"), "{stderr}");
}

#[test]
fn many_key_logs_keep_every_session_decrypted_in_one_and_many_workers() {
    let pki = Pki::new(&["api.internal"]);
    let dir = temp_dir();
    let mut conversations = Vec::new();
    let log = Arc::new(KeyLogText::default());
    for i in 0..6u16 {
        let options = HandshakeOptions {
            client_versions: tls13(),
            key_log: Some(log.clone()),
            ..HandshakeOptions::default()
        };
        let framing = Framing {
            client: (std::net::Ipv4Addr::new(10, 1, 0, 20), 40_000 + i),
            ..Framing::default()
        };
        conversations.push(frame(&handshake(&pki, &options), &framing));
    }
    let pcap = dir.path().join("many.pcap");
    write_pcap(
        &pcap,
        &interleave(&conversations, 50),
        Framing::default().start_seconds,
    );
    let keys = dir.path().join("many.keylog");
    std::fs::write(&keys, log.0.lock().expect("lock").as_bytes()).expect("write");
    let mut outputs = Vec::new();
    for workers in ["1", "2"] {
        let (code, records, stderr) = run_tlstap(&[
            "read",
            "-q",
            "--workers",
            workers,
            pcap.to_str().expect("p"),
            "--keylog",
            keys.to_str().expect("p"),
        ]);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(records.len(), 6);
        for record in &records {
            assert_eq!(field(record, "tlstap.decrypted"), &serde_json::json!(true));
            assert_eq!(string(record, "tls.server.subject"), "CN=api.internal");
        }
        let mut lines: Vec<String> = records
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r["event"]["ingested"] = serde_json::Value::Null;
                r.to_string()
            })
            .collect();
        lines.sort();
        outputs.push(lines);
    }
    assert_eq!(outputs[0], outputs[1]);
}

#[test]
fn openssl_tls13_samples_decrypt_with_their_key_logs() {
    let policy = samples().join("policy.toml");
    for name in ["tls13", "tls13-hrr", "tls13-small-mtu"] {
        let pcap = samples().join(format!("{name}.pcap"));
        let keys = samples().join(format!("keylog/{name}.keylog"));
        let r = read(&policy, &pcap, Some(&keys));
        assert_eq!(
            field(&r, "tlstap.decrypted"),
            &serde_json::json!(true),
            "{name}"
        );
        assert_eq!(string(&r, "tls.version"), "1.3");
        assert_eq!(
            string(&r, "tls.server.subject"),
            "CN=api.internal",
            "{name}"
        );
        assert_eq!(
            string(&r, "tls.server.hash.sha256"),
            "B3C2785B9B0FCDEBDD22DBB818B0C09438724375858C66EEBDBC5921493EC714"
        );
        assert_eq!(
            string(&r, "tls.server.issuer"),
            "CN=tlstap Test Intermediate CA,O=tlstap Test PKI"
        );
        assert!(certificate_ids(&r).is_empty(), "{name}: {:?}", ids(&r));
        // Without the key log, the same capture shows no certificate.
        let blind = read(&policy, &pcap, None);
        assert!(field(&blind, "tls.server.subject").is_null());
    }
}

/// Reads one OpenSSL capture of `samples/tls13/` (make-tls13-samples.sh).
fn tls13_sample(name: &str, keylog: bool) -> serde_json::Value {
    let dir = samples().join("tls13");
    let policy_dir = temp_dir();
    let policy = policy_dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[certificates]\ntrusted_ca = \"{}\"\nsystem_roots = false\n",
            dir.join("ca.pem").display()
        ),
    )
    .expect("write");
    let keys = dir.join(format!("{name}.keylog"));
    read(
        &policy,
        &dir.join(format!("{name}.pcap")),
        keylog.then_some(keys.as_path()),
    )
}

#[test]
fn openssl_tls13_clients_that_reject_alert_in_the_clear_and_decrypt_like_the_rest() {
    for i in 1..=3 {
        // OpenSSL 3.0's s_client refuses before it switches to its handshake
        // keys: its alert is a plaintext record, read without any key log.
        for (case, description) in [
            ("unknown-ca-reject", "unknown_ca"),
            ("name-reject", "bad_certificate"),
            ("expired-reject", "certificate_expired"),
        ] {
            let r = tls13_sample(&format!("{case}-{i}"), false);
            assert_eq!(string(&r, "tlstap.end_reason"), "fatal_alert", "{case}");
            assert_eq!(
                field(&r, "tlstap.alerts.0.description"),
                description,
                "{case}"
            );
            assert_eq!(field(&r, "tlstap.alerts.0.direction"), "to_server");
            assert!(!ids(&r).contains("tls13_handshake_aborted"), "{case}");
        }
        for case in ["good", "unknown-ca-accept", "expired-accept", "mtls"] {
            let blind = tls13_sample(&format!("{case}-{i}"), false);
            assert!(!ids(&blind).contains("tls13_handshake_aborted"), "{case}");
            assert!(field(&blind, "tls.server.subject").is_null());
            let r = tls13_sample(&format!("{case}-{i}"), true);
            assert_eq!(
                field(&r, "tlstap.decrypted"),
                &serde_json::json!(true),
                "{case}"
            );
            assert_eq!(string(&r, "tls.server.subject"), "CN=api.internal");
        }
        let r = tls13_sample(&format!("expired-accept-{i}"), true);
        assert!(ids(&r).contains("cert_expired"), "{r}");
        assert!(ids(&r).contains("client_accepted_invalid_cert"), "{r}");
        let r = tls13_sample(&format!("unknown-ca-reject-{i}"), true);
        assert_eq!(string(&r, "tls.server.subject"), "CN=api.internal");
        assert!(!ids(&r).contains("client_accepted_invalid_cert"));
        let r = tls13_sample(&format!("mtls-{i}"), true);
        assert_eq!(string(&r, "tls.client.subject"), "CN=client.internal");
        assert_eq!(
            field(&r, "tlstap.server.certificate_requested"),
            &serde_json::json!(true)
        );
    }
}

#[test]
fn every_tls13_aead_suite_decrypts() {
    use rustls::crypto::aws_lc_rs::cipher_suite;
    let pki = Pki::new(&["api.internal"]);
    let dir = temp_dir();
    let policy = policy(dir.path(), &pki, "");
    for (suite, name, id) in [
        (
            cipher_suite::TLS13_AES_128_GCM_SHA256,
            "TLS_AES_128_GCM_SHA256",
            "0x1301",
        ),
        (
            cipher_suite::TLS13_AES_256_GCM_SHA384,
            "TLS_AES_256_GCM_SHA384",
            "0x1302",
        ),
        (
            cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
            "TLS_CHACHA20_POLY1305_SHA256",
            "0x1303",
        ),
    ] {
        let (pcap, keys) = capture(
            dir.path(),
            id,
            &pki,
            HandshakeOptions {
                client_versions: tls13(),
                client_suites: Some(vec![suite]),
                client_auth: true,
                ..HandshakeOptions::default()
            },
        );
        let r = read(&policy, &pcap, Some(&keys));
        assert_eq!(string(&r, "tls.cipher"), name);
        assert_eq!(string(&r, "tlstap.cipher_id"), id);
        assert_eq!(
            field(&r, "tlstap.decrypted"),
            &serde_json::json!(true),
            "{name}"
        );
        assert_eq!(string(&r, "tls.server.subject"), "CN=api.internal");
        assert_eq!(string(&r, "tls.client.subject"), "CN=client.internal");
    }
}

#[test]
fn one_byte_segments_and_reordering_still_decrypt() {
    let pki = Pki::new(&["api.internal"]);
    let dir = temp_dir();
    let policy = policy(dir.path(), &pki, "");
    let log = Arc::new(KeyLogText::default());
    let options = HandshakeOptions {
        client_versions: tls13(),
        key_log: Some(log.clone()),
        ..HandshakeOptions::default()
    };
    for (name, mss, reorder) in [("tiny", 1, false), ("reordered", 100, true)] {
        let framing = Framing {
            mss,
            reorder,
            ..Framing::default()
        };
        let pcap = handshake_pcap(
            dir.path(),
            &format!("{name}.pcap"),
            &pki,
            &options,
            &framing,
        );
        let keys = dir.path().join(format!("{name}.keylog"));
        std::fs::write(&keys, log.0.lock().expect("lock").as_bytes()).expect("write");
        let r = read(&policy, &pcap, Some(&keys));
        assert_eq!(
            field(&r, "tlstap.decrypted"),
            &serde_json::json!(true),
            "{name}"
        );
        assert_eq!(
            string(&r, "tls.server.hash.sha256"),
            sha256_hex(&pki.server_chain[0])
        );
    }
}

#[test]
fn stats_count_key_log_entries_and_sessions_without_secrets() {
    let pki = Pki::new(&["api.internal"]);
    let dir = temp_dir();
    let (pcap, _) = capture(
        dir.path(),
        "nokeys",
        &pki,
        HandshakeOptions {
            client_versions: tls13(),
            ..HandshakeOptions::default()
        },
    );
    let (_, keys) = capture(dir.path(), "other", &pki, HandshakeOptions::default());
    let lines = std::fs::read_to_string(&keys)
        .expect("read")
        .lines()
        .filter(|line| line.contains("TRAFFIC_SECRET"))
        .count();
    let (code, records, stderr) = run_tlstap_all(&[
        "read",
        "-q",
        pcap.to_str().expect("p"),
        "--keylog",
        keys.to_str().expect("p"),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let stats = &records
        .iter()
        .find(|r| r["event"]["dataset"] == "tlstap.stats")
        .expect("stats")["tlstap"]["stats"];
    assert_eq!(stats["keylog_entries"], lines as u64);
    assert_eq!(stats["keylog_entries_dropped"], 0);
    assert_eq!(stats["tls13_decrypted"], 0);
    assert_eq!(stats["tls13_keys_missing"], 1);
}

#[test]
fn server_refusing_a_missing_client_certificate_is_read_with_the_application_secret() {
    let pki = Pki::new(&["api.internal"]);
    let options = HandshakeOptions {
        client_auth: true,
        client_without_certificate: true,
        allow_failure: true,
        application_data: false,
        ..HandshakeOptions::default()
    };
    let (r12, r13) = compare(
        "mtls-refused",
        &pki,
        options,
        MTLS_POLICY,
        &["mtls_missing", "tls_alert"],
    );
    for record in [&r12, &r13] {
        assert_eq!(string(record, "tlstap.end_reason"), "fatal_alert");
        assert_eq!(field(record, "tlstap.alerts.0.direction"), "to_client");
        assert_eq!(
            field(record, "tlstap.alerts.0.description"),
            "certificate_required"
        );
        assert!(field(record, "tls.client.subject").is_null());
        assert_eq!(
            field(record, "tlstap.server.certificate_requested"),
            &serde_json::json!(true)
        );
    }
}
