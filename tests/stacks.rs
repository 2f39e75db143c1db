//! TLS-stack identification round trip: every ClientHello in
//! `samples/stacks.pcap` (real OpenSSL, GnuTLS, NSS, Java, Node.js, Go and
//! rustls clients, made by `scripts/make-fingerprints.sh`) identifies, through
//! the built-in `data/tls-stacks.toml`, as the stack that sent it according to
//! `samples/stacks.tsv`.

mod support;

use std::collections::{BTreeSet, HashMap};

use support::*;
use tlstap::tls::fingerprint::stacks::{MatchBasis, StackCatalog, StackMatch};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// One row of samples/stacks.tsv: what the script ran against one server address.
struct Run {
    stack: String,
    version: String,
    client: String,
    variation: String,
    ja4: String,
}

fn runs() -> HashMap<String, Run> {
    let text = std::fs::read_to_string(format!("{ROOT}/samples/stacks.tsv")).expect("stacks.tsv");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("ip\tstack\tversion\tclient\tvariation\tja4")
    );
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 6, "{line:?}");
            let run = Run {
                stack: fields[1].to_string(),
                version: fields[2].to_string(),
                client: fields[3].to_string(),
                variation: fields[4].to_string(),
                ja4: fields[5].to_string(),
            };
            (fields[0].to_string(), run)
        })
        .collect()
}

#[test]
fn every_captured_client_hello_identifies_as_the_stack_that_sent_it() {
    let runs = runs();
    let catalog = StackCatalog::builtin();
    let pcap = format!("{ROOT}/samples/stacks.pcap");
    let (code, records, stderr) = run_tlstap(&["read", &pcap]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(records.len(), runs.len());
    assert_eq!(records.len(), 39);

    let mut seen = BTreeSet::new();
    let mut entries_hit = BTreeSet::new();
    for record in &records {
        let ip = string(record, "destination.ip");
        let run = runs
            .get(&ip)
            .unwrap_or_else(|| panic!("session to {ip} is not in stacks.tsv"));
        let ja4 = string(record, "tlstap.client.ja4");
        assert_eq!(ja4, run.ja4, "{ip} {} {}", run.client, run.variation);
        assert_eq!(
            catalog.identify(&ja4),
            StackMatch::Known {
                name: &run.stack,
                version: &run.version,
                basis: MatchBasis::Ja4Bc,
            },
            "{ip} {} {}: {ja4}",
            run.client,
            run.variation
        );
        let mut parts = ja4.splitn(2, '_');
        parts.next();
        entries_hit.insert(parts.next().expect("b_c").to_string());
        seen.insert(format!("{} {}", run.stack, run.version));
    }
    let expected: BTreeSet<String> = [
        "gnutls 3.7",
        "go 1.19",
        "java 17.0",
        "node 20.20",
        "nss 3.87",
        "openssl 3.0",
        "rustls 0.23",
    ]
    .map(String::from)
    .into();
    assert_eq!(seen, expected);
    // No entry in the file without a session behind it: the file is exactly
    // what the capture shows.
    let catalog_pairs: BTreeSet<String> = catalog
        .entries()
        .map(|entry| format!("{}_{}", entry.ja4_b, entry.ja4_c))
        .collect();
    assert_eq!(catalog_pairs, entries_hit);
    assert_eq!(catalog_pairs.len(), 19);
}

#[test]
fn sni_and_alpn_variations_share_the_default_entry_and_tls12_only_does_not() {
    let runs = runs();
    let bc = |client: &str, variation: &str| {
        let run = runs
            .values()
            .find(|run| run.client == client && run.variation == variation)
            .unwrap_or_else(|| panic!("no {client} {variation} run"));
        run.ja4.split_once('_').expect("a_b_c").1.to_string()
    };
    for client in [
        "openssl s_client",
        "python3.11 ssl",
        "gnutls-cli",
        "java SSLSocket",
        "node tls",
        "go crypto/tls",
    ] {
        assert_eq!(bc(client, "default"), bc(client, "alpn"), "{client}");
        assert_eq!(bc(client, "default"), bc(client, "no-sni"), "{client}");
        assert_ne!(bc(client, "default"), bc(client, "tls1.2-only"), "{client}");
    }
    assert_eq!(bc("curl 7.88", "default"), bc("curl 7.88", "no-alpn"));
    assert_eq!(bc("tstclnt", "default"), bc("tstclnt", "no-sni"));
    // Node.js links OpenSSL: same extensions (c), its own cipher list (b).
    assert_eq!(
        bc("node tls", "default"),
        "a33745022dd6_1f22a2ca17c4".to_string()
    );
    assert_eq!(
        bc("openssl s_client", "default"),
        "e8f1e7e78f70_1f22a2ca17c4".to_string()
    );
}

#[test]
fn extensions_shared_by_node_and_openssl_give_no_weak_match() {
    let catalog = StackCatalog::builtin();
    // c of OpenSSL 3.0's TLS 1.3 hello, sent by s_client and Node.js alike:
    // with an unknown cipher list it could be either, so no answer.
    assert_eq!(
        catalog.identify("t13d0505h2_0123456789ab_1f22a2ca17c4"),
        StackMatch::Unknown
    );
    // c seen only from Java 17: a custom cipher list is still Java.
    assert_eq!(
        catalog.identify("t13d0505h2_0123456789ab_7c76daad20ec"),
        StackMatch::Known {
            name: "java",
            version: "17.0",
            basis: MatchBasis::Ja4C,
        }
    );
}

#[test]
fn in_process_rustls_hello_identifies_as_rustls() {
    // Guards the rustls entry against a dependency upgrade that changes what
    // rustls sends: regenerate the catalog then.
    let dir = temp_dir();
    let options = HandshakeOptions {
        insecure_client: true,
        ..HandshakeOptions::default()
    };
    let pcap = handshake_pcap(
        dir.path(),
        "rustls.pcap",
        &Pki::new(&["api.internal"]),
        &options,
        &Framing::default(),
    );
    let (code, records, stderr) = run_tlstap(&["read", pcap.to_str().expect("utf-8 path")]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(records.len(), 1);
    let ja4 = string(&records[0], "tlstap.client.ja4");
    assert_eq!(ja4, "t13d1011h2_61a7ad8aa9b6_0d308c48d2a3");
    assert_eq!(
        StackCatalog::builtin().identify(&ja4).label(),
        "rustls 0.23"
    );
}

/// Issue #12: the second connection of one OpenSSL client resumes with a PSK
/// (`samples/resumption/`, `scripts/make-resumption-sample.sh`); its
/// ClientHello adds pre_shared_key and early_data. The same library resuming
/// is not a new stack: both records name openssl 3.0 and drift stays quiet.
#[test]
fn regression_psk_resumption_keeps_the_stack_and_raises_no_new_client_stack() {
    let path = format!("{ROOT}/samples/resumption/tls13-psk-resumption.pcap");
    let (code, records, stderr) = run_tlstap(&["read", "-q", &path]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(records.len(), 2);
    let (full, resumed) = (&records[0], &records[1]);
    assert_eq!(field(full, "tls.resumed"), false);
    assert_eq!(field(resumed, "tls.resumed"), true);
    let extensions = |r: &serde_json::Value| field(r, "tlstap.client.extensions").clone();
    assert_eq!(
        extensions(full),
        serde_json::json!([0, 11, 10, 35, 22, 23, 13, 43, 45, 51])
    );
    assert_eq!(
        extensions(resumed),
        serde_json::json!([0, 11, 10, 35, 22, 23, 13, 43, 45, 51, 42, 41])
    );
    assert_ne!(
        string(full, "tlstap.client.ja4"),
        string(resumed, "tlstap.client.ja4"),
        "the JA4 itself reports what was sent"
    );
    for record in [full, resumed] {
        assert_eq!(string(record, "tlstap.client.stack"), "openssl 3.0");
        assert_eq!(string(record, "tlstap.client.stack_basis"), "ja4_bc");
        let findings = field(record, "tlstap.findings");
        assert!(
            !findings.to_string().contains("new_client_stack"),
            "{findings}"
        );
    }
}
