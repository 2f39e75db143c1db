//! Mirror-port reality on real captures: TLS after a plaintext upgrade between
//! Debian's own servers and clients (`samples/upgrades/`, made by
//! `scripts/make-upgrade-samples.sh`), upgrades that were refused or never
//! used, and one real session seen both inside and outside a VXLAN, GRE and
//! GENEVE tunnel (`samples/tunnels/`, made by `scripts/make-tunnel-samples.sh`).
//! Every expected value below was read from the captures with tshark; see
//! `samples/MANIFEST.md`. Re-running the scripts makes new connections (new
//! client ports, new CA): update the ports here from the manifest rows.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use support::*;

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

/// Session records of one capture, read with the example policy.
fn read(relative: &str) -> Vec<serde_json::Value> {
    let pcap = samples().join(relative);
    let policy = samples().join("policy.toml");
    let (code, records, stderr) = run_tlstap(&[
        "read",
        "-q",
        "--policy",
        policy.to_str().expect("path"),
        pcap.to_str().expect("path"),
    ]);
    assert_eq!(code, 0, "{relative}: {stderr}");
    records
}

fn ids(record: &serde_json::Value) -> BTreeSet<String> {
    field(record, "tlstap.findings")
        .as_array()
        .expect("findings list")
        .iter()
        .map(|f| f["id"].as_str().expect("id").to_string())
        .collect()
}

/// One upgraded session: what the record must say.
struct Upgrade {
    pcap: &'static str,
    /// `tlstap.starttls` and `network.protocol`.
    protocol: &'static str,
    client_port: u64,
    server_port: u64,
    /// SNI, when the client sent one.
    sni: Option<&'static str>,
    /// The key exchange group of the ServerHello key share.
    curve: &'static str,
    /// The server answered the first ClientHello with a HelloRetryRequest for this group.
    hello_retry_group: Option<&'static str>,
}

/// The common part of every upgraded session: both ends are Debian 12 builds
/// (OpenSSL 3.0 or GnuTLS 3.7), which settle on TLS 1.3 with
/// TLS_AES_256_GCM_SHA384 between 10.77.0.2 (client) and 10.77.0.1 (server).
fn assert_upgrade(case: &Upgrade) {
    let records = read(case.pcap);
    assert_eq!(records.len(), 1, "{}: {records:#?}", case.pcap);
    let r = &records[0];
    let pcap = case.pcap;
    assert_eq!(string(r, "event.dataset"), "tlstap.tls", "{pcap}");
    assert_eq!(string(r, "tlstap.starttls"), case.protocol, "{pcap}");
    assert_eq!(string(r, "network.protocol"), case.protocol, "{pcap}");
    assert_eq!(string(r, "network.transport"), "tcp", "{pcap}");
    assert_eq!(string(r, "network.direction"), "internal", "{pcap}");
    assert_eq!(string(r, "source.ip"), "10.77.0.2", "{pcap}");
    assert_eq!(field(r, "source.port"), case.client_port, "{pcap}");
    assert_eq!(string(r, "destination.ip"), "10.77.0.1", "{pcap}");
    assert_eq!(field(r, "destination.port"), case.server_port, "{pcap}");
    assert_eq!(string(r, "tls.version"), "1.3", "{pcap}");
    assert_eq!(string(r, "tls.cipher"), "TLS_AES_256_GCM_SHA384", "{pcap}");
    assert_eq!(field(r, "tls.established"), true, "{pcap}");
    assert_eq!(string(r, "tls.curve"), case.curve, "{pcap}");
    match case.sni {
        Some(sni) => assert_eq!(string(r, "tls.client.server_name"), sni, "{pcap}"),
        None => assert!(field(r, "tls.client.server_name").is_null(), "{pcap}"),
    }
    assert_eq!(
        field(r, "tlstap.hello_retry"),
        case.hello_retry_group.is_some(),
        "{pcap}"
    );
    if let Some(group) = case.hello_retry_group {
        assert_eq!(string(r, "tlstap.hello_retry_group"), group, "{pcap}");
    }
    assert!(field(r, "tlstap.encap").is_null(), "{pcap}");
    // TLS 1.3 at the internal baseline, certificates encrypted: nothing to report.
    assert!(ids(r).is_empty(), "{pcap}: {:?}", ids(r));
}

#[test]
fn postgres_sslrequest_accepted_by_a_real_server_is_tls_named_postgresql() {
    // PostgreSQL 15 ssl=on, psql 15 sslmode=require (libpq sends SNI since 14).
    // The server only allows P-256 (ssl_ecdh_curve), so OpenSSL's x25519 key
    // share gets a HelloRetryRequest.
    assert_upgrade(&Upgrade {
        pcap: "upgrades/postgres-ssl.pcap",
        protocol: "postgresql",
        client_port: 50036,
        server_port: 5432,
        sni: Some("db.internal"),
        curve: "secp256r1",
        hello_retry_group: Some("secp256r1"),
    });
}

#[test]
fn smtp_starttls_with_postfix_is_tls_named_smtp() {
    assert_upgrade(&Upgrade {
        pcap: "upgrades/smtp-starttls.pcap",
        protocol: "smtp",
        client_port: 59974,
        server_port: 25,
        sni: Some("mail.internal"),
        curve: "x25519",
        hello_retry_group: None,
    });
}

#[test]
fn imap_starttls_and_pop3_stls_with_dovecot_are_tls_named_by_protocol() {
    assert_upgrade(&Upgrade {
        pcap: "upgrades/imap-starttls.pcap",
        protocol: "imap",
        client_port: 43824,
        server_port: 143,
        sni: Some("mail.internal"),
        curve: "x25519",
        hello_retry_group: None,
    });
    assert_upgrade(&Upgrade {
        pcap: "upgrades/pop3-stls.pcap",
        protocol: "pop3",
        client_port: 58574,
        server_port: 110,
        sni: Some("mail.internal"),
        curve: "x25519",
        hello_retry_group: None,
    });
}

#[test]
fn ldap_starttls_from_ldapsearch_to_slapd_is_tls_named_ldap() {
    // Both ends use GnuTLS (Debian's libldap and slapd), which settle on
    // secp256r1 without a HelloRetryRequest.
    assert_upgrade(&Upgrade {
        pcap: "upgrades/ldap-starttls.pcap",
        protocol: "ldap",
        client_port: 47616,
        server_port: 389,
        sni: Some("ldap.internal"),
        curve: "secp256r1",
        hello_retry_group: None,
    });
}

#[test]
fn mariadb_ssl_is_tls_named_mysql() {
    // The MariaDB client sends no SNI (tshark sees no server_name extension).
    assert_upgrade(&Upgrade {
        pcap: "upgrades/mysql-tls.pcap",
        protocol: "mysql",
        client_port: 47478,
        server_port: 3306,
        sni: None,
        curve: "x25519",
        hello_retry_group: None,
    });
}

#[test]
fn curl_through_tinyproxy_is_tls_named_http_connect() {
    // The record is the client-to-proxy leg: CONNECT api.internal:443 to
    // port 8888, then the end-to-end TLS session inside it.
    assert_upgrade(&Upgrade {
        pcap: "upgrades/http-connect.pcap",
        protocol: "http-connect",
        client_port: 40516,
        server_port: 8888,
        sni: Some("api.internal"),
        curve: "x25519",
        hello_retry_group: None,
    });
}

#[test]
fn postgres_ssl_refused_by_a_real_server_is_a_plaintext_finding() {
    // PostgreSQL 15 ssl=off, psql sslmode=prefer: SSLRequest, 'N', then the
    // startup message and the query in plaintext.
    let records = read("upgrades/postgres-ssl-refused.pcap");
    assert_eq!(records.len(), 1, "{records:#?}");
    let r = &records[0];
    assert_eq!(string(r, "event.dataset"), "tlstap.plaintext");
    assert_eq!(string(r, "network.protocol"), "postgresql");
    assert_eq!(string(r, "tlstap.plaintext.protocol"), "postgresql");
    assert_eq!(field(r, "tlstap.plaintext.starttls_requested"), true);
    assert!(field(r, "tlstap.starttls").is_null());
    assert!(field(r, "tls").is_null());
    assert_eq!(string(r, "source.ip"), "10.77.0.2");
    assert_eq!(field(r, "source.port"), 50038);
    assert_eq!(string(r, "destination.ip"), "10.77.0.1");
    assert_eq!(field(r, "destination.port"), 5432);
    assert_eq!(
        ids(r),
        ["postgres_ssl_refused".to_string()].into_iter().collect()
    );
    let finding = field(r, "tlstap.findings.0");
    assert_eq!(finding["severity"], "high");
    assert_eq!(finding["evidence"]["answer"], "N");
    assert_eq!(finding["evidence"]["server"], "10.77.0.1:5432");
}

/// `first_line` exactly as the server sent it (a greeting's full stop kept).
fn assert_greeting(actual: &str, sent: &str, pcap: &str) {
    assert_eq!(actual, sent, "{pcap}: greeting");
}

/// A session whose server offered STARTTLS/STLS and whose client never sent it.
fn assert_never_upgraded(
    pcap: &str,
    protocol: &str,
    client_port: u64,
    server_port: u64,
    greeting: &str,
) {
    let records = read(pcap);
    assert_eq!(records.len(), 1, "{pcap}: {records:#?}");
    let r = &records[0];
    assert_eq!(string(r, "event.dataset"), "tlstap.plaintext", "{pcap}");
    assert_eq!(string(r, "network.protocol"), protocol, "{pcap}");
    assert_eq!(string(r, "tlstap.plaintext.protocol"), protocol, "{pcap}");
    assert_greeting(&string(r, "tlstap.plaintext.first_line"), greeting, pcap);
    assert_eq!(
        field(r, "tlstap.plaintext.starttls_offered"),
        true,
        "{pcap}"
    );
    assert_eq!(
        field(r, "tlstap.plaintext.starttls_requested"),
        false,
        "{pcap}"
    );
    assert!(field(r, "tls").is_null(), "{pcap}");
    assert_eq!(string(r, "source.ip"), "10.77.0.2", "{pcap}");
    assert_eq!(field(r, "source.port"), client_port, "{pcap}");
    assert_eq!(string(r, "destination.ip"), "10.77.0.1", "{pcap}");
    assert_eq!(field(r, "destination.port"), server_port, "{pcap}");
    assert_eq!(
        ids(r),
        ["starttls_not_used".to_string()].into_iter().collect(),
        "{pcap}"
    );
    let finding = field(r, "tlstap.findings.0");
    assert_eq!(finding["severity"], "medium", "{pcap}");
    assert_eq!(finding["evidence"]["starttls_offered"], true, "{pcap}");
    assert_eq!(finding["evidence"]["protocol"], protocol, "{pcap}");
    assert_greeting(
        finding["evidence"]["greeting"].as_str().expect("greeting"),
        greeting,
        pcap,
    );
}

#[test]
fn smtp_message_without_starttls_although_postfix_offered_it_is_a_plaintext_finding() {
    // swaks: EHLO, MAIL, RCPT, DATA, QUIT; Postfix listed 250-STARTTLS.
    assert_never_upgraded(
        "upgrades/smtp-plain.pcap",
        "smtp",
        45146,
        25,
        "220 mail.internal ESMTP Postfix (Debian/GNU)",
    );
}

#[test]
fn imap_and_pop3_logins_without_starttls_at_dovecot_are_plaintext_findings() {
    // curl imap:// and pop3:// without --ssl: AUTHENTICATE PLAIN / AUTH PLAIN in
    // the clear although Dovecot listed STARTTLS / STLS.
    assert_never_upgraded(
        "upgrades/imap-plain.pcap",
        "imap",
        45318,
        143,
        "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot (Debian) ready.",
    );
    assert_never_upgraded(
        "upgrades/pop3-plain.pcap",
        "pop3",
        40858,
        110,
        "+OK Dovecot (Debian) ready.",
    );
}

#[test]
fn smtp_message_that_only_mentions_starttls_is_still_a_plaintext_finding() {
    // Same session shape as smtp-plain.pcap; the message's Subject is
    // "Please enable STARTTLS on the relay". No STARTTLS command was sent
    // (tshark: smtp.req.command is EHLO, MAIL, RCPT, DATA, QUIT).
    let records = read("upgrades/smtp-plain-subject-starttls.pcap");
    assert_eq!(records.len(), 1, "{records:#?}");
    let r = &records[0];
    assert_eq!(string(r, "network.protocol"), "smtp");
    assert_eq!(field(r, "source.port"), 59530);
    assert_eq!(field(r, "tlstap.plaintext.starttls_requested"), false);
    assert_eq!(
        ids(r),
        ["starttls_not_used".to_string()].into_iter().collect()
    );
}

/// Removes the fields that legitimately differ between the two capture points
/// of one session: the tunnel path, and packet times (the inner device and the
/// underlay stamp each frame a few microseconds apart, in an order that
/// depends on the direction, so start, end, duration, the record's
/// @timestamp and the handshake round trip move by microseconds).
fn without_capture_point(mut record: serde_json::Value) -> serde_json::Value {
    let tlstap = record["tlstap"].as_object_mut().expect("tlstap");
    tlstap.remove("encap");
    tlstap.remove("handshake_rtt_us");
    let event = record["event"].as_object_mut().expect("event");
    for key in ["start", "end", "duration"] {
        event.remove(key);
    }
    record.as_object_mut().expect("record").remove("@timestamp");
    record
}

#[test]
fn one_real_session_inside_and_outside_a_tunnel_gives_the_same_record_but_for_encap() {
    // (tunnel type, expected tlstap.encap, client port of the session)
    let cases: &[(&str, &[&str], u64)] = &[
        ("vxlan", &["vxlan:vni=4242"], 43104),
        ("gretap", &["gre"], 46144),
        ("gretap-key", &["gre:key=77"], 46146),
        ("geneve", &["geneve:vni=4242"], 46156),
    ];
    for (tunnel, encap, client_port) in cases {
        let inner = read(&format!("tunnels/{tunnel}-inner.pcap"));
        let outer = read(&format!("tunnels/{tunnel}.pcap"));
        assert_eq!((inner.len(), outer.len()), (1, 1), "{tunnel}");
        let (plain, tunnelled) = (&inner[0], &outer[0]);
        assert!(field(plain, "tlstap.encap").is_null(), "{tunnel}");
        assert_eq!(field(tunnelled, "tlstap.encap"), &serde_json::json!(encap));
        // The facts of the session itself, from tshark.
        for r in [plain, tunnelled] {
            assert_eq!(string(r, "event.dataset"), "tlstap.tls", "{tunnel}");
            assert_eq!(string(r, "source.ip"), "10.99.0.2", "{tunnel}");
            assert_eq!(field(r, "source.port"), *client_port, "{tunnel}");
            assert_eq!(string(r, "destination.ip"), "10.99.0.1", "{tunnel}");
            assert_eq!(field(r, "destination.port"), 443, "{tunnel}");
            assert_eq!(string(r, "network.protocol"), "tls", "{tunnel}");
            assert_eq!(string(r, "tls.version"), "1.3", "{tunnel}");
            assert_eq!(
                string(r, "tls.cipher"),
                "TLS_AES_256_GCM_SHA384",
                "{tunnel}"
            );
            assert_eq!(string(r, "tls.client.server_name"), "api.internal");
            assert_eq!(field(r, "tls.established"), true, "{tunnel}");
        }
        assert_eq!(
            without_capture_point(plain.clone()),
            without_capture_point(tunnelled.clone()),
            "{tunnel}"
        );
    }
}
