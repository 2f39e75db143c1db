//! Governance findings on real handshakes: OpenSSL samples with the example
//! policy, rustls sessions for what the samples cannot show, and exceptions.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use support::*;

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

fn ids(record: &serde_json::Value) -> BTreeSet<String> {
    field(record, "tlstap.findings")
        .as_array()
        .expect("findings list")
        .iter()
        .map(|f| f["id"].as_str().expect("id").to_string())
        .collect()
}

fn finding<'a>(record: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    field(record, "tlstap.findings")
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {record}"))
}

fn read_with(policy: &Path, pcap: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec![
        "read",
        "-q",
        "--policy",
        policy.to_str().expect("p"),
        pcap.to_str().expect("p"),
    ];
    args.extend_from_slice(extra);
    let (code, records, stderr) = run_tlstap(&args);
    assert_eq!(code, 0, "{stderr}");
    records
}

#[test]
fn each_sample_raises_exactly_its_findings_under_the_example_policy() {
    let policy = samples().join("policy.toml");
    let expected: &[(&str, &[&[&str]])] = &[
        ("tls13.pcap", &[&[]]),
        ("tls13-hrr.pcap", &[&[]]),
        ("tls13-small-mtu.pcap", &[&[]]),
        ("tls12-ecdhe.pcap", &[&["tls_below_baseline"]]),
        ("tls12-client-cert.pcap", &[&["tls_below_baseline"]]),
        (
            "tls10.pcap",
            &[&["cbc_cipher", "obsolete_version", "tls_below_baseline"]],
        ),
        (
            "tls11.pcap",
            &[&["cbc_cipher", "obsolete_version", "tls_below_baseline"]],
        ),
        (
            "tls12-rsa-static.pcap",
            &[&[
                "cbc_cipher",
                "exception_expired",
                "no_forward_secrecy",
                "tls_below_baseline",
            ]],
        ),
        (
            "tls12-capped-server.pcap",
            &[&["downgrade", "tls_below_baseline"]],
        ),
        (
            "tls12-fallback-scsv.pcap",
            &[&["fallback_scsv", "tls_below_baseline"]],
        ),
        (
            "tls12-fallback-scsv-rejected.pcap",
            &[&["fallback_scsv", "tls_alert"]],
        ),
        (
            "tls12-unknown-ca-alert.pcap",
            &[&["tls_alert", "tls_below_baseline"]],
        ),
        (
            "cert-expired.pcap",
            &[&[
                "client_accepted_invalid_cert",
                "cert_expired",
                "tls_below_baseline",
            ]],
        ),
        (
            "cert-not-yet-valid.pcap",
            &[&[
                "client_accepted_invalid_cert",
                "cert_not_yet_valid",
                "tls_below_baseline",
            ]],
        ),
        (
            "cert-self-signed.pcap",
            &[&[
                "client_accepted_invalid_cert",
                "cert_self_signed",
                "cert_untrusted_issuer",
                "tls_below_baseline",
            ]],
        ),
        (
            "cert-sha1.pcap",
            &[&["cert_weak_signature", "tls_below_baseline"]],
        ),
        (
            "cert-rsa1024.pcap",
            &[&["cert_weak_key", "tls_below_baseline"]],
        ),
        (
            "cert-wrong-san.pcap",
            &[&[
                "client_accepted_invalid_cert",
                "cert_name_mismatch",
                "tls_below_baseline",
            ]],
        ),
        (
            "cert-missing-intermediate.pcap",
            &[&[
                "client_accepted_invalid_cert",
                "cert_untrusted_issuer",
                "chain_incomplete",
                "tls_below_baseline",
            ]],
        ),
        ("plaintext-http-443.pcap", &[&["plaintext_on_tls_port"]]),
        (
            "tls-then-plaintext.pcap",
            &[
                &["mtls_not_observable"],
                &["plaintext_fallback", "plaintext_on_tls_port"],
            ],
        ),
    ];
    let mut problems = Vec::new();
    for (name, sessions) in expected {
        let records = read_with(&policy, &samples().join(name), &[]);
        let got: Vec<BTreeSet<String>> = records.iter().map(ids).collect();
        let want: Vec<BTreeSet<String>> = sessions
            .iter()
            .map(|ids| ids.iter().map(|s| s.to_string()).collect())
            .collect();
        if got != want {
            problems.push(format!("{name}: got {got:?}, want {want:?}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn findings_carry_concrete_evidence() {
    let policy = samples().join("policy.toml");
    let r = &read_with(&policy, &samples().join("cert-wrong-san.pcap"), &[])[0];
    let mismatch = finding(r, "cert_name_mismatch");
    assert_eq!(mismatch["severity"], "high");
    assert_eq!(mismatch["evidence"]["sni"], "api.internal");
    assert_eq!(mismatch["evidence"]["dns_names"][0], "other.internal");

    let r = &read_with(&policy, &samples().join("tls12-unknown-ca-alert.pcap"), &[])[0];
    let alert = finding(r, "tls_alert");
    assert_eq!(alert["evidence"]["description"], "unknown_ca");
    assert_eq!(alert["evidence"]["sent_by"], "client");
    assert_eq!(alert["severity"], "high", "a certificate-validation alert");

    let r = &read_with(&policy, &samples().join("tls12-capped-server.pcap"), &[])[0];
    assert_eq!(
        finding(r, "downgrade")["evidence"]["client_offered"],
        "TLS 1.3"
    );
    assert_eq!(
        finding(r, "tls_below_baseline")["evidence"]["direction"],
        "internal"
    );
    assert_eq!(string(r, "tlstap.server_zone"), "samples-lab");
}

#[test]
fn live_exception_covers_as_info_and_expired_exception_is_reported() {
    let policy = samples().join("policy.toml");
    let r = &read_with(&policy, &samples().join("tls12-rsa-static.pcap"), &[])[0];
    let cbc = finding(r, "cbc_cipher");
    assert_eq!(cbc["severity"], "info");
    assert_eq!(cbc["exception"]["id"], "EXC-2026-014");
    assert_eq!(cbc["exception"]["owner"], "payments-platform");
    assert_eq!(cbc["exception"]["expires"], "2027-03-31");
    let nfs = finding(r, "no_forward_secrecy");
    assert_eq!(
        nfs["severity"], "medium",
        "the expired exception does not cover"
    );
    assert!(nfs.get("exception").is_none());
    assert_eq!(nfs["evidence"]["key_exchange"], "RSA");
    assert_eq!(
        nfs["message"],
        "TLS_RSA_WITH_AES_128_CBC_SHA has no forward secrecy (RSA key exchange)"
    );
    let expired = finding(r, "exception_expired");
    assert_eq!(expired["evidence"]["exception_id"], "EXC-2025-101");
}

#[test]
fn exception_that_does_not_match_covers_nothing() {
    let dir = temp_dir();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[[exception]]\nid = \"EXC-1\"\nowner = \"team\"\nexpires = 2099-01-01\n\
         match = { server = \"10.20.0.10\", port = 8443 }\nallow = [\"tls_below_baseline\"]\n\
         [[exception]]\nid = \"EXC-2\"\nowner = \"team\"\nexpires = 2099-01-01\n\
         match = { sni = \"*.other.internal\" }\nallow = [\"tls_below_baseline\"]\n",
    )
    .expect("write");
    let r = &read_with(&policy, &samples().join("tls12-ecdhe.pcap"), &[])[0];
    let below = finding(r, "tls_below_baseline");
    assert_eq!(below["severity"], "medium");
    assert!(below.get("exception").is_none());
    // The same exception with the right port covers it.
    std::fs::write(
        &policy,
        "[[exception]]\nid = \"EXC-1\"\nowner = \"team\"\nexpires = 2099-01-01\n\
         match = { server = \"10.20.0.0/24\", port = 443, sni = \"*.internal\" }\nallow = [\"tls_below_baseline\"]\n",
    )
    .expect("write");
    let r = &read_with(&policy, &samples().join("tls12-ecdhe.pcap"), &[])[0];
    assert_eq!(finding(r, "tls_below_baseline")["exception"]["id"], "EXC-1");
}

#[test]
fn only_findings_and_min_severity_filter_records() {
    let policy = samples().join("policy.toml");
    let clean = read_with(&policy, &samples().join("tls13.pcap"), &["--only-findings"]);
    assert!(clean.is_empty());
    let r = &read_with(
        &policy,
        &samples().join("tls10.pcap"),
        &["--min-severity", "high"],
    )[0];
    // obsolete_version is high; the covered cbc_cipher stays (covered findings are evidence).
    assert_eq!(
        ids(r),
        ["cbc_cipher", "obsolete_version"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
}

fn rustls_policy(dir: &Path, pki: &Pki, extra: &str) -> PathBuf {
    std::fs::write(dir.join("root.pem"), &pki.root_pem).expect("write root");
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        format!("[certificates]\ntrusted_ca = \"root.pem\"\nsystem_roots = false\n{extra}"),
    )
    .expect("write");
    policy
}

type Conversation = Vec<(Side, Vec<u8>)>;

fn concatenate(dir: &Path, name: &str, conversations: &[(Conversation, Framing)]) -> PathBuf {
    let mut frames = Vec::new();
    let mut offset = 0;
    for (conversation, framing) in conversations {
        for frame in frame(conversation, framing) {
            frames.push(Frame {
                micros: offset + frame.micros,
                bytes: frame.bytes,
            });
        }
        offset = frames.last().map_or(0, |f| f.micros) + 1_000_000;
    }
    let path = dir.join(name);
    write_pcap(&path, &frames, 1_767_225_600);
    path
}

#[test]
fn server_that_negotiated_tls13_then_tls12_is_a_version_regression() {
    let dir = temp_dir();
    let now = time::OffsetDateTime::from_unix_timestamp(1_767_225_600).expect("time");
    let leaves = LeafOptions {
        validity: Some((
            now - time::Duration::days(10),
            now + time::Duration::days(80),
        )),
        ..LeafOptions::default()
    };
    let pki = Pki::with_leaves(&["api.internal"], &leaves);
    let at = HandshakeOptions {
        validation_time: Some(1_767_225_600),
        ..HandshakeOptions::default()
    };
    let tls13 = handshake(&pki, &at);
    let tls12 = handshake(
        &pki,
        &HandshakeOptions {
            server_versions: vec![&rustls::version::TLS12],
            ..at.clone()
        },
    );
    let second = Framing {
        client: (std::net::Ipv4Addr::new(10, 1, 0, 21), 50001),
        ..Framing::default()
    };
    let pcap = concatenate(
        dir.path(),
        "regression.pcap",
        &[(tls13, Framing::default()), (tls12, second)],
    );
    let policy = rustls_policy(dir.path(), &pki, "");
    let records = read_with(&policy, &pcap, &[]);
    assert_eq!(records.len(), 2);
    assert!(
        ids(&records[0]).is_empty(),
        "clean TLS 1.3 between internal hosts: {:?}",
        ids(&records[0])
    );
    assert_eq!(
        ids(&records[1]),
        // negotiation_changed: the drift view of the same downgrade.
        [
            "downgrade",
            "negotiation_changed",
            "tls_below_baseline",
            "version_regression"
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    );
    // That server was configured for TLS 1.2 only, so it sets no sentinel.
    assert!(finding(&records[1], "downgrade")["evidence"]["sentinel"].is_null());
    assert_eq!(
        finding(&records[1], "version_regression")["evidence"]["previous"],
        "TLS 1.3"
    );
}

#[test]
fn expiring_long_lived_and_wrong_eku_certificates_are_flagged_in_both_chains() {
    let dir = temp_dir();
    let now = time::OffsetDateTime::from_unix_timestamp(1_767_225_600).expect("time");
    let leaves = LeafOptions {
        validity: Some((
            now - time::Duration::days(500),
            now + time::Duration::days(9),
        )),
        server_eku: vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth],
        client_eku: vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth],
    };
    let pki = Pki::with_leaves(&["api.internal"], &leaves);
    let options = HandshakeOptions {
        client_versions: vec![&rustls::version::TLS12],
        client_auth: true,
        validation_time: Some(1_767_225_600),
        ..HandshakeOptions::default()
    };
    // rustls itself refuses a server leaf without serverAuth; build the
    // handshake with correct EKUs and check EKU on a second PKI below.
    let good_eku = LeafOptions {
        validity: leaves.validity,
        ..LeafOptions::default()
    };
    let pki_good = Pki::with_leaves(&["api.internal"], &good_eku);
    let pcap = handshake_pcap(
        dir.path(),
        "expiring.pcap",
        &pki_good,
        &options,
        &Framing::default(),
    );
    let policy = rustls_policy(dir.path(), &pki_good, "[baseline]\ninternal = \"1.2\"\n");
    let r = &read_with(&policy, &pcap, &[])[0];
    assert_eq!(
        ids(r),
        // cert_not_rotated: the once-a-day service view of the expiring leaf.
        [
            "cert_expiring_soon",
            "cert_long_validity",
            "cert_not_rotated"
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    );
    // The 1.3-capable rustls server marks its TLS 1.2 ServerHello; the client
    // only offered 1.2, so that is not a downgrade.
    assert_eq!(string(r, "tlstap.server.downgrade_sentinel"), "tls1.2");
    let soon: Vec<_> = field(r, "tlstap.findings")
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["id"] == "cert_expiring_soon")
        .map(|f| {
            (
                f["evidence"]["chain"].clone(),
                f["evidence"]["days_left"].clone(),
            )
        })
        .collect();
    assert!(
        soon.contains(&(serde_json::json!("server"), serde_json::json!(9))),
        "{soon:?}"
    );
    assert!(
        soon.contains(&(serde_json::json!("client"), serde_json::json!(9))),
        "{soon:?}"
    );
    let _ = pki;
}

#[test]
fn mtls_service_without_a_client_certificate_is_flagged() {
    let dir = temp_dir();
    let pki = Pki::new(&["api.internal"]);
    let tls12 = HandshakeOptions {
        client_versions: vec![&rustls::version::TLS12],
        ..HandshakeOptions::default()
    };
    let pcap = handshake_pcap(dir.path(), "nomtls.pcap", &pki, &tls12, &Framing::default());
    let policy = rustls_policy(
        dir.path(),
        &pki,
        "[[mtls]]\nname = \"orders-api\"\nmatch = { server = \"10.1.0.10\", port = 443 }\n",
    );
    let r = &read_with(&policy, &pcap, &[])[0];
    assert!(ids(r).contains("mtls_missing"), "{:?}", ids(r));
    assert_eq!(
        finding(r, "mtls_missing")["evidence"]["service"],
        "orders-api"
    );
    let with_cert = HandshakeOptions {
        client_auth: true,
        ..tls12
    };
    let pcap = handshake_pcap(
        dir.path(),
        "mtls.pcap",
        &pki,
        &with_cert,
        &Framing::default(),
    );
    let r = &read_with(&policy, &pcap, &[])[0];
    assert!(!ids(r).contains("mtls_missing"));
}

#[test]
fn smtp_without_starttls_and_refused_postgres_ssl_are_plaintext_findings() {
    let dir = temp_dir();
    let smtp = vec![
        (
            Side::Server,
            b"220 mail.internal ESMTP Postfix\r\n".to_vec(),
        ),
        (Side::Client, b"EHLO app.internal\r\n".to_vec()),
        (
            Side::Server,
            b"250-mail.internal\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n".to_vec(),
        ),
        (Side::Client, b"MAIL FROM:<app@internal>\r\n".to_vec()),
        (Side::Server, b"250 2.1.0 Ok\r\n".to_vec()),
    ];
    let postgres = vec![
        (Side::Client, vec![0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]),
        (Side::Server, b"N".to_vec()),
        (
            Side::Client,
            vec![
                0, 0, 0, 0x29, 0, 3, 0, 0, b'u', b's', b'e', b'r', 0, b'a', 0, 0,
            ],
        ),
    ];
    let pcap = concatenate(
        dir.path(),
        "plain.pcap",
        &[
            (
                smtp,
                Framing {
                    server: (std::net::Ipv4Addr::new(10, 1, 0, 25), 25),
                    ..Framing::default()
                },
            ),
            (
                postgres,
                Framing {
                    server: (std::net::Ipv4Addr::new(10, 1, 0, 54), 5432),
                    ..Framing::default()
                },
            ),
        ],
    );
    let policy = samples().join("policy.toml");
    let records = read_with(&policy, &pcap, &[]);
    assert_eq!(records.len(), 2, "{records:#?}");
    assert_eq!(string(&records[0], "network.protocol"), "smtp");
    assert_eq!(
        ids(&records[0]),
        ["starttls_not_used".to_string()].into_iter().collect()
    );
    assert_eq!(
        finding(&records[0], "starttls_not_used")["evidence"]["starttls_offered"],
        true
    );
    assert_eq!(string(&records[1], "network.protocol"), "postgresql");
    assert_eq!(
        ids(&records[1]),
        ["postgres_ssl_refused".to_string()].into_iter().collect()
    );
}

#[test]
fn weak_cipher_in_a_public_trace_is_flagged() {
    let Some(corpus) = corpus_or_skip("weak_cipher_in_a_public_trace_is_flagged") else {
        return;
    };
    // Zeek's tls-conn-with-extensions.pcap: TLS 1.0 with TLS_ECDHE_RSA_WITH_RC4_128_SHA.
    let policy = samples().join("policy.toml");
    let r = &read_with(
        &policy,
        &corpus.join("zeek-tls/tls-conn-with-extensions.pcap"),
        &[],
    )[0];
    assert_eq!(finding(r, "weak_cipher")["evidence"]["reason"], "RC4");
    assert!(ids(r).contains("obsolete_version"));
    assert_eq!(string(r, "network.direction"), "outbound");
    // TLS 1.0 outbound is below the 1.2 outbound baseline.
    assert!(ids(r).contains("tls_below_baseline"), "{:?}", ids(r));
}

#[test]
fn policy_check_reports_errors_with_line_numbers_and_lists_expired_exceptions() {
    let output =
        std::process::Command::new(option_env!("CARGO_BIN_EXE_tlstap").unwrap_or("tlstap"))
            .args([
                "policy",
                "check",
                samples().join("policy.toml").to_str().expect("p"),
            ])
            .output()
            .expect("run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(stdout.contains("2 exceptions"), "{stdout}");
    assert!(
        stdout.contains("expired: EXC-2025-101 (owner identity-team) expired 2026-01-31"),
        "{stdout}"
    );

    let dir = temp_dir();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[tls]\nports = [443]\n\n[baseline]\ninternal = \"1.4\"\n",
    )
    .expect("write");
    let (code, _, stderr) = run_tlstap(&["policy", "check", bad.to_str().expect("p")]);
    assert_eq!(code, 1);
    assert!(
        stderr
            .trim()
            .ends_with("bad.toml:5: \"1.4\" is not a version (1.3, 1.2, 1.1, 1.0, ssl3)"),
        "{stderr}"
    );
    std::fs::write(&bad, "[[exception]]\nid = \"x\"\nowner = \"o\"\nexpires = 2027-01-01\nallow = [\"weak_ciphr\"]\n").expect("write");
    let (_, _, stderr) = run_tlstap(&["policy", "check", bad.to_str().expect("p")]);
    assert!(
        stderr.contains("bad.toml:5: allow: \"weak_ciphr\" is not a finding id"),
        "{stderr}"
    );
}

#[test]
fn server_leaf_without_server_auth_is_an_eku_mismatch() {
    let dir = temp_dir();
    let leaves = LeafOptions {
        server_eku: vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth],
        ..LeafOptions::default()
    };
    let pki = Pki::with_leaves(&["api.internal"], &leaves);
    // Only a client that does not validate completes this handshake.
    let options = HandshakeOptions {
        client_versions: vec![&rustls::version::TLS12],
        insecure_client: true,
        ..HandshakeOptions::default()
    };
    let pcap = handshake_pcap(dir.path(), "eku.pcap", &pki, &options, &Framing::default());
    rustls_policy(dir.path(), &pki, ""); // writes root.pem
    let policy = dir.path().join("eku.toml");
    std::fs::write(
        &policy,
        "[baseline]\ninternal = \"1.2\"\n[certificates]\ntrusted_ca = \"root.pem\"\nsystem_roots = false\nmax_validity_days = 1000000\n",
    )
    .expect("write");
    let r = &read_with(&policy, &pcap, &[])[0];
    assert_eq!(
        ids(r),
        ["cert_eku_mismatch".to_string()].into_iter().collect()
    );
    let eku = finding(r, "cert_eku_mismatch");
    assert_eq!(eku["evidence"]["needed"], "server_auth");
    assert_eq!(
        eku["evidence"]["extended_key_usage"],
        serde_json::json!(["client_auth"])
    );
}

#[test]
fn client_that_ignores_a_bad_certificate_is_caught_and_one_that_validates_is_not() {
    let policy = samples().join("policy.toml");
    // s_client without -verify_return_error against an expired certificate.
    let r = &read_with(&policy, &samples().join("cert-expired.pcap"), &[])[0];
    let accepted = finding(r, "client_accepted_invalid_cert");
    assert_eq!(accepted["severity"], "high");
    assert_eq!(accepted["evidence"]["client"], "10.20.0.20");
    assert_eq!(
        accepted["evidence"]["certificate_problems"],
        serde_json::json!(["cert_expired"])
    );
    assert!(accepted["evidence"]["client_ja4"]
        .as_str()
        .expect("ja4")
        .starts_with("t1"));
    // The client's TLS stack, from the JA4 catalogue: OpenSSL 3.0's s_client.
    assert_eq!(accepted["evidence"]["client_stack"], "openssl 3.0");
    // s_client -verify_return_error with an unrelated CA aborts: validation works.
    let r = &read_with(&policy, &samples().join("tls12-unknown-ca-alert.pcap"), &[])[0];
    assert!(!ids(r).contains("client_accepted_invalid_cert"));
    let alert = finding(r, "tls_alert");
    assert!(alert["message"]
        .as_str()
        .expect("message")
        .contains("validated the certificate and refused it"));
    // rustls with verification off against a self-signed-chain server (no trust
    // for its root in this policy): caught; TLS 1.3 would not be observable.
    let dir = temp_dir();
    let pki = Pki::new(&["api.internal"]);
    let tls12 = HandshakeOptions {
        client_versions: vec![&rustls::version::TLS12],
        insecure_client: true,
        ..HandshakeOptions::default()
    };
    let pcap = handshake_pcap(
        dir.path(),
        "insecure.pcap",
        &pki,
        &tls12,
        &Framing::default(),
    );
    let strict = dir.path().join("strict.toml");
    std::fs::write(
        &strict,
        format!(
            "[certificates]\ntrusted_ca = \"{}\"\n",
            samples().join("pki/root-ca.pem").display()
        ),
    )
    .expect("write");
    let r = &read_with(&strict, &pcap, &[])[0];
    assert!(ids(r).contains("cert_untrusted_issuer"), "{:?}", ids(r));
    assert!(
        ids(r).contains("client_accepted_invalid_cert"),
        "{:?}",
        ids(r)
    );
    let tls13 = HandshakeOptions {
        insecure_client: true,
        ..HandshakeOptions::default()
    };
    let pcap = handshake_pcap(
        dir.path(),
        "insecure13.pcap",
        &pki,
        &tls13,
        &Framing::default(),
    );
    let r = &read_with(&strict, &pcap, &[])[0];
    assert!(
        !ids(r).contains("client_accepted_invalid_cert"),
        "not observable under TLS 1.3"
    );
}

#[test]
fn records_name_the_policys_service_its_owner_and_the_client_stack() {
    let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let pcap = samples.join("cert-expired.pcap");
    let policy = samples.join("policy.toml");
    let (code, records, stderr) = run_tlstap(&[
        "read",
        "-q",
        "--policy",
        policy.to_str().expect("p"),
        pcap.to_str().expect("p"),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(string(r, "service.target.name"), "samples-api");
    assert_eq!(string(r, "tlstap.service.owner"), "platform-team");
    // The samples were made with openssl s_client (OpenSSL 3.0): the built-in
    // catalogue knows its JA4 b/c.
    assert_eq!(string(r, "tlstap.client.stack"), "openssl 3.0");
    assert_eq!(string(r, "tlstap.client.stack_basis"), "ja4_bc");
    // A TLS 1.2 session under the 1.3 east-west baseline: the finding, the
    // service, the destination and the time are all in the one record.
    assert!(r["tlstap"]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .any(|f| f["id"] == "tls_below_baseline"));

    // A `[[stack]]` entry in the policy names a stack the catalogue does not know.
    let ja4 = string(r, "tlstap.client.ja4");
    let parts: Vec<&str> = ja4.split('_').collect();
    let dir = temp_dir();
    let own = dir.path().join("policy.toml");
    std::fs::write(
        &own,
        format!(
            "[[service]]\nname = \"edge\"\nowner = \"netops\"\nmatch = {{ port = 443 }}\n\n[[stack]]\nname = \"acme-tls\"\nversion = \"9.9\"\nclients = [\"acme-agent\"]\nja4_b = \"{}\"\nja4_c = \"{}\"\n",
            parts[1], parts[2]
        ),
    )
    .expect("write");
    let (code, records, stderr) = run_tlstap(&[
        "read",
        "-q",
        "--policy",
        own.to_str().expect("p"),
        pcap.to_str().expect("p"),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(string(&records[0], "tlstap.client.stack"), "acme-tls 9.9");
    assert_eq!(string(&records[0], "service.target.name"), "edge");

    // A broken [[stack]] entry is a policy error with its line.
    std::fs::write(&own, "\n[[stack]]\nname = \"x\"\nversion = \"1\"\nclients = []\nja4_b = \"nothex\"\nja4_c = \"0d308c48d2a3\"\n").expect("write");
    let (code, _, stderr) = run_tlstap(&["policy", "check", own.to_str().expect("p")]);
    assert_ne!(code, 0);
    assert!(stderr.contains(":2") || stderr.contains("line"), "{stderr}");
}

#[test]
fn the_stats_record_counts_findings_an_exception_covered() {
    let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let policy = samples.join("policy.toml");
    let mut args = vec![
        "read".to_string(),
        "-q".to_string(),
        "--policy".to_string(),
        policy.to_string_lossy().into_owned(),
    ];
    for name in [
        "tls12-ecdhe.pcap",
        "tls12-rsa-static.pcap",
        "tls10.pcap",
        "tls11.pcap",
    ] {
        args.push(samples.join(name).to_string_lossy().into_owned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, records, stderr) = run_tlstap_all(&args);
    assert_eq!(code, 0, "{stderr}");
    let covered = records
        .iter()
        .flat_map(|r| {
            r["tlstap"]["findings"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|f| !f["exception"].is_null())
        .count();
    assert!(covered > 0);
    let stats = &records.last().expect("stats")["tlstap"]["stats"];
    assert_eq!(stats["findings_excepted"], covered as u64);
    assert_eq!(stats["services_forgotten"], 0);
}

/// Version and cipher findings are judged once per distinct negotiation and
/// reused: read together in one run (one worker, so one cache), each sample
/// must still raise exactly the negotiation findings it raises alone.
#[test]
fn negotiation_findings_reused_across_sessions_match_each_session() {
    const NEGOTIATED: [&str; 7] = [
        "tls_below_baseline",
        "obsolete_version",
        "downgrade",
        "fallback_scsv",
        "weak_cipher",
        "no_forward_secrecy",
        "cbc_cipher",
    ];
    let negotiated = |record: &serde_json::Value| -> BTreeSet<String> {
        ids(record)
            .into_iter()
            .filter(|id| NEGOTIATED.contains(&id.as_str()))
            .collect()
    };
    let samples = samples();
    let policy = samples.join("policy.toml");
    let names = [
        "tls12-ecdhe.pcap",
        "tls12-rsa-static.pcap",
        "tls10.pcap",
        "tls11.pcap",
        "tls13.pcap",
        "tls12-fallback-scsv.pcap",
        "tls12-capped-server.pcap",
    ];
    let alone: Vec<BTreeSet<String>> = names
        .iter()
        .map(|name| {
            let records = read_with(&policy, &samples.join(name), &["-w", "1"]);
            assert_eq!(records.len(), 1, "{name}");
            negotiated(&records[0])
        })
        .collect();
    let distinct: BTreeSet<&BTreeSet<String>> = alone.iter().collect();
    assert!(
        distinct.len() > 3,
        "the samples differ in what they raise: {alone:?}"
    );
    // The same samples twice over, in one capture: the second time every
    // negotiation comes from the cache. Records are written in packet order.
    let mut paths: Vec<String> = Vec::new();
    for _ in 0..2 {
        for name in names {
            paths.push(samples.join(name).to_str().expect("path").to_string());
        }
    }
    let mut args = vec![
        "read",
        "-q",
        "-w",
        "1",
        "--policy",
        policy.to_str().expect("p"),
    ];
    args.extend(paths.iter().map(String::as_str));
    let (code, records, stderr) = run_tlstap(&args);
    assert_eq!(code, 0, "{stderr}");
    let together: Vec<BTreeSet<String>> = records.iter().map(negotiated).collect();
    let expected: Vec<BTreeSet<String>> = alone.iter().chain(alone.iter()).cloned().collect();
    assert_eq!(together, expected);
}
