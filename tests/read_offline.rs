//! `tlstap read` on the bundled OpenSSL samples and on bad input.

mod support;

use std::path::{Path, PathBuf};

use support::*;

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(name)
}

fn read(name: &str) -> Vec<serde_json::Value> {
    let path = sample(name);
    let (code, records, stderr) = run_tlstap(&["read", "-q", path.to_str().expect("path")]);
    assert_eq!(code, 0, "{name}: {stderr}");
    records
}

#[test]
fn openssl_tls13_sample_gives_the_manifest_values() {
    let records = read("tls13.pcap");
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(string(r, "tls.version"), "1.3");
    assert_eq!(string(r, "tls.cipher"), "TLS_AES_256_GCM_SHA384");
    assert_eq!(string(r, "tlstap.cipher_id"), "0x1302");
    assert_eq!(string(r, "tls.curve"), "x25519");
    assert_eq!(string(r, "tls.client.server_name"), "api.internal");
    assert_eq!(string(r, "source.ip"), "10.20.0.20");
    assert_eq!(string(r, "destination.ip"), "10.20.0.10");
    assert_eq!(field(r, "destination.port"), 443);
    assert_eq!(
        field(r, "tlstap.client.alpn"),
        &serde_json::json!(["h2", "http/1.1"])
    );
    assert_eq!(field(r, "tls.established"), true);
}

#[test]
fn pcapng_copy_gives_the_same_record_as_the_pcap() {
    let a = read("tls13.pcap");
    let b = read("tls13.pcapng");
    assert_eq!(a, b);
}

#[test]
fn openssl_tls12_samples_report_certificates_and_key_exchange() {
    let r = &read("tls12-ecdhe.pcap")[0];
    assert_eq!(string(r, "tls.version"), "1.2");
    assert_eq!(
        string(r, "tls.cipher"),
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    );
    assert!(string(r, "tls.server.x509.subject.distinguished_name").contains("CN=api.internal"));
    assert_eq!(
        field(r, "tlstap.server.chain")
            .as_array()
            .expect("chain")
            .len(),
        2
    );

    let r = &read("tls12-rsa-static.pcap")[0];
    assert_eq!(string(r, "tls.cipher"), "TLS_RSA_WITH_AES_128_CBC_SHA");
    assert!(field(r, "tls.curve").is_null(), "static RSA has no curve");

    let r = &read("tls12-client-cert.pcap")[0];
    assert_eq!(
        field(r, "tls.client.x509.subject.common_name"),
        &serde_json::json!(["client.internal"])
    );
    assert_eq!(field(r, "tlstap.server.certificate_requested"), true);
}

#[test]
fn old_versions_and_fallback_signals_are_reported() {
    assert_eq!(string(&read("tls10.pcap")[0], "tls.version"), "1.0");
    assert_eq!(string(&read("tls11.pcap")[0], "tls.version"), "1.1");
    let capped = &read("tls12-capped-server.pcap")[0];
    assert_eq!(string(capped, "tls.version"), "1.2");
    assert!(field(capped, "tlstap.client.offered_versions")
        .as_array()
        .expect("offered")
        .contains(&serde_json::json!("tls1.3")));
    // OpenSSL writes the RFC 8446 sentinel only when it has TLS 1.3 enabled;
    // a server run with -no_tls1_3 does not, so the downgrade is visible only
    // from the offered versions.
    assert!(field(capped, "tlstap.server.downgrade_sentinel").is_null());
    assert_eq!(
        field(
            &read("tls12-fallback-scsv.pcap")[0],
            "tlstap.client.fallback_scsv"
        ),
        true
    );
}

#[test]
fn fatal_alerts_end_the_session_as_not_established() {
    let r = &read("tls12-unknown-ca-alert.pcap")[0];
    assert_eq!(field(r, "tls.established"), false);
    assert_eq!(string(r, "event.outcome"), "failure");
    let alerts = field(r, "tlstap.alerts").as_array().expect("alerts");
    assert_eq!(alerts[0]["description"], "unknown_ca");
    assert_eq!(alerts[0]["level"], "fatal");
    assert_eq!(alerts[0]["direction"], "to_server");
}

#[test]
fn hello_retry_and_small_mtu_samples_are_reassembled() {
    let r = &read("tls13-hrr.pcap")[0];
    assert_eq!(field(r, "tlstap.hello_retry"), true);
    assert_eq!(string(r, "tls.curve"), "secp256r1");
    let r = &read("tls13-small-mtu.pcap")[0];
    assert_eq!(string(r, "tls.version"), "1.3");
    assert!(string(r, "tls.client.server_name").ends_with(".svc.internal"));
}

#[test]
fn plaintext_http_on_443_is_a_plaintext_record_not_a_tls_one() {
    let records = read("plaintext-http-443.pcap");
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert!(field(r, "tls").is_null());
    assert_eq!(string(r, "network.protocol"), "http");
    assert_eq!(string(r, "event.dataset"), "tlstap.plaintext");
    assert_eq!(string(r, "tlstap.findings.0.id"), "plaintext_on_tls_port");
}

#[test]
fn missing_file_is_a_one_line_error_and_non_zero_exit() {
    let (code, records, stderr) = run_tlstap(&["read", "/nonexistent/capture.pcap"]);
    assert_ne!(code, 0);
    assert!(records.is_empty());
    assert_eq!(
        stderr.trim(),
        "tlstap: error: /nonexistent/capture.pcap: no such file"
    );
}

#[test]
fn non_pcap_file_is_named_in_the_error() {
    let (code, _, stderr) = run_tlstap(&[
        "read",
        "-q",
        concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
    ]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("Cargo.toml: cannot open: not a pcap or pcapng file"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn truncated_file_still_flushes_records_seen_before_the_damage() {
    let dir = temp_dir();
    // Two captures back to back: the first file is whole, the second is cut mid-packet.
    let whole = sample("tls12-ecdhe.pcap");
    let bytes = std::fs::read(sample("tls13.pcap")).expect("read");
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 40]).expect("write");
    let (code, records, stderr) = run_tlstap(&[
        "read",
        whole.to_str().expect("path"),
        cut.to_str().expect("path"),
    ]);
    assert_ne!(code, 0);
    assert!(stderr.contains("cut.pcap: read failed after"), "{stderr}");
    assert!(stderr.contains("truncated dump file"), "{stderr}");
    assert_eq!(
        records.len(),
        2,
        "the whole session and the one cut short are both written"
    );
    assert_eq!(string(&records[0], "tls.version"), "1.2");
}

#[test]
fn bad_arguments_are_refused_before_reading() {
    let (code, _, stderr) = run_tlstap(&["read", "--internal", "10.0.0.0/33", "x.pcap"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("10.0.0.0/33"), "{stderr}");
    let (code, _, stderr) = run_tlstap(&["read", "-w", "0", "x.pcap"]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = run_tlstap(&[
        "read",
        "-f",
        "tcp port banana",
        sample("tls13.pcap").to_str().expect("p"),
    ]);
    assert_ne!(code, 0);
    assert!(stderr.contains("bad capture filter"), "{stderr}");
}

#[test]
fn bpf_filter_selects_flows() {
    let path = sample("tls13.pcap");
    let (code, records, _) = run_tlstap(&[
        "read",
        "-q",
        "-f",
        "tcp port 8443",
        path.to_str().expect("p"),
    ]);
    assert_eq!(code, 0);
    assert!(records.is_empty());
    let (_, records, _) = run_tlstap(&[
        "read",
        "-q",
        "-f",
        "tcp port 443",
        path.to_str().expect("p"),
    ]);
    assert_eq!(records.len(), 1);
}

#[test]
fn stdin_is_read_when_the_file_is_a_dash() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let bytes = std::fs::read(sample("tls13.pcap")).expect("read");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tlstap"))
        .args(["read", "-q", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&bytes)
        .expect("write");
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).expect("utf-8");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(lines.len(), 2, "one session and the final stats record");
    assert_eq!(string(&lines[0], "tls.version"), "1.3");
    assert_eq!(string(&lines[1], "event.dataset"), "tlstap.stats");
}

#[test]
fn corpus_file_with_snaplen_cut_packet_is_counted_not_an_error() {
    // misc/trunc-hdr.pcap: snaplen 1, one record of 8 captured bytes out of 78.
    // libpcap and tshark both read it as a valid file, and so does tlstap.
    let Some(corpus) =
        corpus_or_skip("corpus_file_with_snaplen_cut_packet_is_counted_not_an_error")
    else {
        return;
    };
    let path = corpus.join("misc/trunc-hdr.pcap");
    let (code, records, stderr) = run_tlstap(&["read", path.to_str().expect("p")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(records.is_empty());
    assert!(
        stderr.contains("1 packets") && stderr.contains("1 decode errors"),
        "{stderr}"
    );
}

#[test]
fn certificate_message_of_330_kb_is_reassembled_when_the_cap_allows_it() {
    // zeek-tls/tls-fragmented-handshake.pcap.gz: a 330 kB Certificate over many
    // records. With the default 64 KiB cap the session is reported truncated;
    // with a raised cap the chain matches Zeek's ssl.log (CN=Bro, af4a46e9…).
    let Some(corpus) =
        corpus_or_skip("certificate_message_of_330_kb_is_reassembled_when_the_cap_allows_it")
    else {
        return;
    };
    // Read as it is, gzip and all (issue #12).
    let pcap = corpus.join("zeek-tls/tls-fragmented-handshake.pcap.gz");
    let pcap = pcap.to_str().expect("path");
    let (_, records, _) = run_tlstap(&["read", "-q", pcap]);
    assert_eq!(field(&records[0], "tlstap.truncated"), true);
    let (code, records, stderr) =
        run_tlstap(&["read", "-q", "--max-handshake-bytes", "600000", pcap]);
    assert_eq!(code, 0, "{stderr}");
    let record = &records[0];
    assert_eq!(field(record, "tlstap.truncated"), false);
    assert_eq!(string(record, "tls.server.subject"), "CN=Bro");
    assert_eq!(
        string(record, "tls.server.hash.sha256"),
        "AF4A46E989DC24078EE2A205490856E059E7F2F9D2114CEC4D4C44974ADD9D34"
    );
    assert_eq!(
        string(record, "tls.cipher"),
        "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"
    );
}

#[test]
fn server_hello_under_the_byte_cap_is_reported_when_the_chain_crosses_it() {
    let path = sample("tls12-ecdhe.pcap");
    let (code, records, _) = run_tlstap(&[
        "read",
        "-q",
        "--max-handshake-bytes",
        "1024",
        path.to_str().expect("p"),
    ]);
    assert_eq!(code, 0);
    let record = &records[0];
    assert_eq!(field(record, "tlstap.truncated"), true);
    assert_eq!(string(record, "tls.version"), "1.2");
    assert_eq!(
        string(record, "tls.cipher"),
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    );
    assert_eq!(
        string(record, "tlstap.parse_error"),
        "handshake bytes exceeded the per-direction cap"
    );
}

#[test]
fn offline_run_ends_with_one_stats_record_that_adds_up() {
    let path = sample("tls-then-plaintext.pcap");
    let (code, records, _) = run_tlstap_all(&["read", "-q", "-w", "2", path.to_str().expect("p")]);
    assert_eq!(code, 0);
    let stats: Vec<_> = records
        .iter()
        .filter(|r| r["event"]["dataset"] == "tlstap.stats")
        .collect();
    assert_eq!(stats.len(), 1);
    assert_eq!(
        records.last(),
        Some(stats[0]),
        "the stats record comes last"
    );
    let s = &stats[0]["tlstap"]["stats"];
    assert_eq!(s["tls_sessions"], 1);
    assert_eq!(s["plaintext_records"], 1);
    assert_eq!(s["flows_created"], 2);
    assert_eq!(s["records_written"], 2, "the two session records before it");
    assert_eq!(s["findings_by_id"]["plaintext_on_tls_port"], 1);
    assert_eq!(s["user_drops"], 0);
    assert!(s["kernel_drops"].is_null(), "a file has no kernel counters");
    assert_eq!(s["handshake_rtt_us"]["count"], 1);
    assert!(s["packet_processing_ns"]["count"].as_u64().expect("count") > 0);
    assert_eq!(s["worker_queue_depth"].as_array().expect("depths").len(), 2);
    assert_eq!(string(stats[0], "event.kind"), "metric");
}

/// Issue #12: value errors found after parsing exited 1; every argument error
/// is clap's, exit 2, naming the option.
#[test]
fn regression_value_errors_exit_2_like_every_other_argument_error() {
    let capture = sample("tls13.pcap");
    let capture = capture.to_str().expect("p");
    for (option, value) in [
        ("--internal", "10.0.0.0/33"),
        ("--internal", "banana"),
        ("--max-flows", "0"),
        ("--max-handshake-bytes", "1023"),
    ] {
        let (code, records, stderr) = run_tlstap(&["read", option, value, capture]);
        assert_eq!(code, 2, "{option} {value}: {stderr}");
        assert!(records.is_empty());
        assert!(
            stderr.contains(&format!("invalid value '{value}' for '{option} ")),
            "{stderr}"
        );
    }
    let (code, _, stderr) = run_tlstap(&["live", "-i", "lo", "--max-flows", "0"]);
    assert_eq!(code, 2, "{stderr}");
    // The smallest accepted values still run.
    let (code, records, stderr) = run_tlstap(&[
        "read",
        "-q",
        "--internal",
        "10.20.0.0/16",
        "--max-flows",
        "1",
        "--max-handshake-bytes",
        "1024",
        capture,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(string(&records[0], "network.direction"), "internal");
}

/// Issue #12: when the reader closes the pipe, "records written" counts the
/// records that reached the pipe, not those still in tlstap's buffer.
#[test]
fn regression_records_written_counts_only_what_a_closed_pipe_took() {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_tlstap"))
        .args(["read", sample("stacks.pcap").to_str().expect("p")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // The reader is gone before anything is written.
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "a closed stdout is a clean end: {stderr}"
    );
    assert!(stderr.contains(", 0 records written;"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
