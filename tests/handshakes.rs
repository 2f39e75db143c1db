//! Real rustls handshakes, framed into TCP and read back through the binary.

mod support;

use support::*;

fn one_record(path: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    let path = path.to_str().expect("utf-8 path");
    let mut args = vec!["read", "-q", path];
    args.extend_from_slice(extra);
    let (code, records, stderr) = run_tlstap(&args);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(records.len(), 1, "{records:#?}");
    records.into_iter().next().expect("one record")
}

#[test]
fn tls13_session_reports_version_cipher_sni_alpn_and_encrypted_certificates() {
    let dir = temp_dir();
    let pki = Pki::new(&["api.internal"]);
    let options = HandshakeOptions {
        client_versions: vec![&rustls::version::TLS13],
        ..HandshakeOptions::default()
    };
    let path = handshake_pcap(
        dir.path(),
        "tls13.pcap",
        &pki,
        &options,
        &Framing::default(),
    );
    let record = one_record(&path, &[]);
    assert_eq!(string(&record, "tls.version"), "1.3");
    assert_eq!(string(&record, "tls.version_protocol"), "tls");
    assert_eq!(string(&record, "tls.client.server_name"), "api.internal");
    assert!(
        string(&record, "tls.cipher").starts_with("TLS_AES_")
            || string(&record, "tls.cipher") == "TLS_CHACHA20_POLY1305_SHA256"
    );
    assert_eq!(field(&record, "tls.established"), true);
    assert_eq!(field(&record, "tls.resumed"), false);
    assert_eq!(string(&record, "source.ip"), "10.1.0.20");
    assert_eq!(field(&record, "source.port"), 50000);
    assert_eq!(string(&record, "destination.ip"), "10.1.0.10");
    assert_eq!(string(&record, "network.direction"), "internal");
    assert_eq!(string(&record, "network.protocol"), "tls");
    assert_eq!(
        field(&record, "tlstap.client.alpn"),
        &serde_json::json!(["h2", "http/1.1"])
    );
    assert_eq!(field(&record, "tlstap.server.certificates_encrypted"), true);
    assert!(
        field(&record, "tls.server.x509").is_null() && field(&record, "tls.server.hash").is_null(),
        "TLS 1.3 certificates cannot be seen"
    );
    assert_eq!(
        string(&record, "tls.server.ja3s").len(),
        32,
        "the ServerHello is still fingerprinted"
    );
    assert_eq!(
        field(&record, "tlstap.client.offered_versions"),
        &serde_json::json!(["tls1.3"])
    );
    assert!(
        field(&record, "tlstap.handshake_rtt_us")
            .as_i64()
            .expect("rtt")
            > 0
    );
}

#[test]
fn post_quantum_client_hello_spanning_two_segments_is_reassembled() {
    let dir = temp_dir();
    let pki = Pki::new(&["api.internal"]);
    let options = HandshakeOptions::default();
    let conversation = handshake(&pki, &options);
    let client_hello_length = conversation[0].1.len();
    assert!(
        client_hello_length > 1400,
        "rustls should send a ~1.8 KB ML-KEM ClientHello, got {client_hello_length}"
    );
    let path = handshake_pcap(dir.path(), "pq.pcap", &pki, &options, &Framing::default());
    let record = one_record(&path, &[]);
    assert_eq!(string(&record, "tls.version"), "1.3");
    assert_eq!(string(&record, "tls.curve"), "X25519MLKEM768");
    let shares = field(&record, "tlstap.client.key_share_groups");
    assert_eq!(shares[0], "X25519MLKEM768", "{shares}");
}

#[test]
fn tls12_mutual_tls_reports_server_and_client_chains() {
    let dir = temp_dir();
    let pki = Pki::new(&["api.internal", "*.svc.internal"]);
    let options = HandshakeOptions {
        client_versions: vec![&rustls::version::TLS12],
        client_auth: true,
        ..HandshakeOptions::default()
    };
    let path = handshake_pcap(
        dir.path(),
        "mtls.pcap",
        &pki,
        &options,
        &Framing {
            mss: 536,
            ..Framing::default()
        },
    );
    let record = one_record(&path, &[]);
    assert_eq!(string(&record, "tls.version"), "1.2");
    assert!(string(&record, "tls.cipher").starts_with("TLS_ECDHE_"));
    assert_eq!(field(&record, "tls.established"), true);
    assert_eq!(
        string(&record, "tls.server.hash.sha256"),
        sha256_hex(&pki.server_chain[0])
    );
    assert_eq!(
        string(&record, "tls.client.hash.sha256"),
        sha256_hex(&pki.client_chain[0])
    );
    assert_eq!(
        field(&record, "tls.server.x509.subject.common_name"),
        &serde_json::json!(["api.internal"])
    );
    assert_eq!(
        field(&record, "tls.server.x509.alternative_names"),
        &serde_json::json!(["api.internal", "*.svc.internal"])
    );
    assert_eq!(
        field(&record, "tls.server.x509.issuer.common_name"),
        &serde_json::json!(["tlstap Test Intermediate"])
    );
    let chain = field(&record, "tlstap.server.chain")
        .as_array()
        .expect("chain");
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[1]["sha256"], sha256_hex(&pki.intermediate_der));
    assert_eq!(field(&record, "tlstap.server.certificate_requested"), true);
    assert_eq!(
        field(&record, "tlstap.client.chain")
            .as_array()
            .expect("client chain")
            .len(),
        2
    );
    assert_eq!(
        field(&record, "tlstap.server.certificates_encrypted"),
        false
    );
}

#[test]
fn hello_retry_request_is_followed_to_the_second_server_hello() {
    let dir = temp_dir();
    let pki = Pki::new(&["api.internal"]);
    let kx = rustls::crypto::aws_lc_rs::kx_group::X25519;
    let p256 = rustls::crypto::aws_lc_rs::kx_group::SECP256R1;
    let options = HandshakeOptions {
        client_groups: Some(vec![kx, p256]),
        server_groups: Some(vec![p256]),
        ..HandshakeOptions::default()
    };
    let path = handshake_pcap(dir.path(), "hrr.pcap", &pki, &options, &Framing::default());
    let record = one_record(&path, &[]);
    assert_eq!(field(&record, "tlstap.hello_retry"), true);
    assert_eq!(string(&record, "tlstap.hello_retry_group"), "secp256r1");
    assert_eq!(string(&record, "tls.curve"), "secp256r1");
    assert_eq!(string(&record, "tls.version"), "1.3");
    assert_eq!(field(&record, "tls.established"), true);
    assert_eq!(
        field(&record, "tlstap.client.key_share_groups"),
        &serde_json::json!(["x25519"])
    );
}

#[test]
fn small_reordered_and_retransmitted_segments_give_the_same_record_as_clean_ones() {
    let dir = temp_dir();
    let pki = Pki::new(&["api.internal"]);
    let options = HandshakeOptions {
        client_versions: vec![&rustls::version::TLS12],
        ..HandshakeOptions::default()
    };
    let conversation = handshake(&pki, &options);
    let clean = dir.path().join("clean.pcap");
    write_pcap(
        &clean,
        &frame(&conversation, &Framing::default()),
        1_767_225_600,
    );
    let messy = dir.path().join("messy.pcap");
    let framing = Framing {
        mss: 97,
        reorder: true,
        retransmit: true,
        ..Framing::default()
    };
    write_pcap(&messy, &frame(&conversation, &framing), 1_767_225_600);
    let a = one_record(&clean, &[]);
    let b = one_record(&messy, &[]);
    for path in [
        "tls.version",
        "tls.cipher",
        "tls.curve",
        "tls.client.server_name",
        "tls.server.hash.sha256",
        "tls.established",
        "tlstap.client.cipher_ids",
        "tlstap.server.chain",
    ] {
        assert_eq!(field(&a, path), field(&b, path), "{path}");
    }
    assert_eq!(
        string(&b, "tls.server.hash.sha256"),
        sha256_hex(&pki.server_chain[0])
    );
}

#[test]
fn connection_picked_up_mid_stream_before_the_client_hello_is_still_analysed() {
    let dir = temp_dir();
    let pki = Pki::new(&["api.internal"]);
    let framing = Framing {
        without_syn: true,
        ..Framing::default()
    };
    let path = handshake_pcap(
        dir.path(),
        "nosyn.pcap",
        &pki,
        &HandshakeOptions::default(),
        &framing,
    );
    let record = one_record(&path, &[]);
    assert_eq!(string(&record, "tls.version"), "1.3");
    assert_eq!(field(&record, "tlstap.midstream"), true);
    assert_eq!(string(&record, "source.ip"), "10.1.0.20");
}

#[test]
fn handshake_longer_than_the_byte_cap_is_emitted_truncated() {
    let dir = temp_dir();
    let pki = Pki::new(&["api.internal"]);
    let options = HandshakeOptions {
        client_versions: vec![&rustls::version::TLS12],
        ..HandshakeOptions::default()
    };
    let path = handshake_pcap(dir.path(), "cap.pcap", &pki, &options, &Framing::default());
    let record = one_record(&path, &["--max-handshake-bytes", "1024"]);
    assert_eq!(field(&record, "tlstap.truncated"), true);
    assert_eq!(string(&record, "tlstap.end_reason"), "truncated");
    assert_eq!(field(&record, "tls.established"), false);
    assert_eq!(string(&record, "tls.client.server_name"), "api.internal");
    // rustls sends ServerHello..ServerHelloDone in one record that crosses
    // the cap, so nothing of the server's flight can be reported here; the
    // OpenSSL sample in read_offline.rs shows the ServerHello surviving.
    assert!(field(&record, "tls.version").is_null());
}

#[test]
fn vlan_tag_is_reported_as_ecs_network_vlan() {
    let dir = temp_dir();
    let pki = Pki::new(&["api.internal"]);
    let framing = Framing {
        vlan: Some(120),
        ..Framing::default()
    };
    let path = handshake_pcap(
        dir.path(),
        "vlan.pcap",
        &pki,
        &HandshakeOptions::default(),
        &framing,
    );
    let record = one_record(&path, &[]);
    assert_eq!(string(&record, "network.vlan.id"), "120");
    assert_eq!(
        field(&record, "tlstap.encap"),
        &serde_json::json!(["vlan:120"])
    );
}

#[test]
fn tls_on_an_unusual_port_is_recognised_by_content() {
    let dir = temp_dir();
    let pki = Pki::new(&["db.internal"]);
    let framing = Framing {
        server: (std::net::Ipv4Addr::new(192, 0, 2, 10), 15432),
        ..Framing::default()
    };
    let options = HandshakeOptions {
        server_name: "db.internal".into(),
        ..HandshakeOptions::default()
    };
    let pki_path = handshake_pcap(dir.path(), "port.pcap", &pki, &options, &framing);
    let record = one_record(&pki_path, &[]);
    assert_eq!(field(&record, "destination.port"), 15432);
    assert_eq!(string(&record, "network.direction"), "outbound");
    assert_eq!(string(&record, "tls.client.server_name"), "db.internal");
}
