//! Mirror-port reality: tunnelled traffic is analysed as its inner flow.

mod support;

use std::collections::BTreeMap;

use etherparse::PacketBuilder;
use support::*;

fn stats(records: &[serde_json::Value]) -> &serde_json::Value {
    &records
        .iter()
        .rev()
        .find(|r| r["event"]["dataset"] == "tlstap.stats")
        .expect("stats record")["tlstap"]["stats"]
}

#[test]
fn tunnelled_corpus_sessions_match_tshark_with_their_encapsulation_path() {
    let Some(corpus) =
        corpus_or_skip("tunnelled_corpus_sessions_match_tshark_with_their_encapsulation_path")
    else {
        return;
    };
    // (trace, expected tlstap.encap of the session)
    let cases: &[(&str, &[&str])] = &[
        (
            "pppoe-over-qinq",
            &["vlan:3704", "vlan:2474", "pppoe:session=3847"],
        ),
        ("geneve-47101", &["geneve:vni=4242"]),
        ("gtp6_gtp_0x32", &["gtp:teid=1980578736"]),
    ];
    for (trace, encap) in cases {
        let pcap = corpus.join(format!("misc/{trace}.pcap"));
        let facts_text =
            std::fs::read_to_string(corpus.join(format!("facts/misc/{trace}.pcap.jsonl")))
                .expect("facts");
        let fact: serde_json::Value =
            serde_json::from_str(facts_text.lines().next().expect("one fact")).expect("json");
        let (code, records, stderr) = run_tlstap_all(&[
            "read",
            "-q",
            "--geneve-port",
            "47101",
            pcap.to_str().expect("p"),
        ]);
        assert_eq!(code, 0, "{trace}: {stderr}");
        let sessions: Vec<_> = records
            .iter()
            .filter(|r| r["event"]["dataset"] == "tlstap.tls")
            .collect();
        assert_eq!(sessions.len(), 1, "{trace}");
        let r = sessions[0];
        assert_eq!(
            r["source"]["ip"], fact["client_ip"],
            "{trace}: inner client"
        );
        assert_eq!(r["source"]["port"], fact["client_port"], "{trace}");
        assert_eq!(
            r["destination"]["ip"], fact["server_ip"],
            "{trace}: inner server"
        );
        assert_eq!(r["destination"]["port"], fact["server_port"], "{trace}");
        assert_eq!(r["tls"]["version"], fact["version"], "{trace}");
        assert_eq!(r["tlstap"]["cipher_id"], fact["cipher"], "{trace}");
        assert_eq!(
            r["tls"]["client"]["server_name"].as_str(),
            fact["sni"].as_str(),
            "{trace}"
        );
        assert_eq!(r["tls"]["client"]["ja3"], fact["ja3"], "{trace}");
        assert_eq!(r["tlstap"]["encap"], serde_json::json!(encap), "{trace}");
        assert_eq!(stats(&records)["decode_errors"], 0, "{trace}");
    }
}

#[test]
fn tunnels_without_tls_yield_inner_tcp_flows_and_no_invented_tls() {
    let Some(corpus) =
        corpus_or_skip("tunnels_without_tls_yield_inner_tcp_flows_and_no_invented_tls")
    else {
        return;
    };
    // (trace, TCP connections inside; the counts are tshark's `tcp.stream` ids)
    let cases: &[(&str, u64)] = &[
        ("erspan", 5),
        ("gre-sample", 1),
        ("vxlan-encapsulated-http", 1),
        ("mixed-vlan-mpls", 3),
        ("nflog-http", 1),
        ("vlan-qinqinq", 1),
        ("ipv6-http-atomic-frag", 4),
        ("var-services-std-ports", 6),
        ("http-get", 1),
    ];
    let mut seen = BTreeMap::new();
    for (trace, flows) in cases {
        let pcap = corpus.join(format!("misc/{trace}.pcap"));
        let (code, records, stderr) = run_tlstap_all(&["read", "-q", pcap.to_str().expect("p")]);
        assert_eq!(code, 0, "{trace}: {stderr}");
        assert!(
            records
                .iter()
                .all(|r| r["event"]["dataset"] != "tlstap.tls"),
            "{trace}: no TLS is invented"
        );
        let s = stats(&records);
        seen.insert(*trace, s["flows_created"].as_u64().expect("flows"));
        if *flows > 0 {
            assert_eq!(s["flows_created"], *flows, "{trace}: inner TCP flows");
        }
        assert_eq!(s["decode_errors"], 0, "{trace}");
    }
    eprintln!("{seen:?}");
}

/// Wraps an Ethernet frame in Ethernet/IPv4/UDP/VXLAN as a cloud mirror does.
fn vxlan(inner: &[u8], vni: u32, toward_collector: bool) -> Vec<u8> {
    let mut payload = vec![0x08, 0, 0, 0];
    payload.extend_from_slice(&(vni << 8).to_be_bytes());
    payload.extend_from_slice(inner);
    let (src, dst) = if toward_collector {
        ([172, 31, 0, 5], [172, 31, 0, 9])
    } else {
        ([172, 31, 0, 6], [172, 31, 0, 9])
    };
    let mut out = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 1, 1], [2, 0, 0, 0, 1, 2])
        .ipv4(src, dst, 64)
        .udp(49152, 4789)
        .write(&mut out, &payload)
        .expect("build");
    out
}

#[test]
fn the_same_session_plain_and_in_vxlan_gives_the_same_record_but_for_encap() {
    let dir = temp_dir();
    let pki = Pki::new(&["api.internal"]);
    let conversation = handshake(&pki, &HandshakeOptions::default());
    let frames = frame(&conversation, &Framing::default());
    let plain = dir.path().join("plain.pcap");
    write_pcap(&plain, &frames, 1_767_225_600);
    let tunnelled: Vec<Frame> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| Frame {
            micros: f.micros,
            bytes: vxlan(&f.bytes, 4242, i % 2 == 0),
        })
        .collect();
    let wrapped = dir.path().join("vxlan.pcap");
    write_pcap(&wrapped, &tunnelled, 1_767_225_600);
    let (_, a, _) = run_tlstap(&["read", "-q", plain.to_str().expect("p")]);
    let (_, b, _) = run_tlstap(&["read", "-q", wrapped.to_str().expect("p")]);
    assert_eq!((a.len(), b.len()), (1, 1));
    let (mut a, mut b) = (a[0].clone(), b[0].clone());
    assert_eq!(b["tlstap"]["encap"], serde_json::json!(["vxlan:vni=4242"]));
    for record in [&mut a, &mut b] {
        record["tlstap"]
            .as_object_mut()
            .expect("tlstap")
            .remove("encap");
    }
    assert_eq!(a, b);
}

#[test]
fn span_duplicates_are_counted_and_dropped_but_retransmissions_are_not() {
    let dir = temp_dir();
    let pki = Pki::new(&["api.internal"]);
    let conversation = handshake(&pki, &HandshakeOptions::default());
    let run = |name: &str, framing: &Framing| {
        let frames = frame(&conversation, framing);
        let path = dir.path().join(name);
        write_pcap(&path, &frames, 1_767_225_600);
        let (code, records, stderr) = run_tlstap_all(&["read", "-q", path.to_str().expect("p")]);
        assert_eq!(code, 0, "{stderr}");
        (frames.len(), records)
    };
    let (clean_packets, clean) = run("clean.pcap", &Framing::default());
    let clean_stats = stats(&clean).clone();
    assert_eq!(clean_stats["duplicates"], 0);
    for duplicate in [Duplicate::Adjacent, Duplicate::Paired] {
        let framing = Framing {
            duplicate,
            ..Framing::default()
        };
        let (packets, records) = run("dup.pcap", &framing);
        assert_eq!(packets, 2 * clean_packets, "{duplicate:?}");
        let s = stats(&records);
        assert_eq!(s["duplicates"], clean_packets as u64, "{duplicate:?}");
        assert_eq!(s["overlap_conflicts"], 0, "{duplicate:?}");
        assert_eq!(s["segments_retransmitted"], 0, "{duplicate:?}");
        // The one record is the clean one: same packet and byte counts, same TLS facts.
        let mut sessions: Vec<_> = records
            .iter()
            .filter(|r| r["event"]["dataset"] == "tlstap.tls")
            .cloned()
            .collect();
        assert_eq!(sessions.len(), 1, "{duplicate:?}");
        let mut expected = clean[0].clone();
        for record in [&mut sessions[0], &mut expected] {
            // Timing moves by the few microseconds the copies add.
            record["tlstap"]
                .as_object_mut()
                .expect("tlstap")
                .remove("handshake_rtt_us");
            record.as_object_mut().expect("record").remove("event");
        }
        assert_eq!(sessions[0], expected, "{duplicate:?}");
    }
    // A retransmission (new IP id) is not a mirror copy: reassembly sees it.
    let (_, records) = run(
        "retransmit.pcap",
        &Framing {
            retransmit: true,
            ..Framing::default()
        },
    );
    let s = stats(&records);
    assert_eq!(s["duplicates"], 0);
    assert!(s["segments_retransmitted"].as_u64().expect("n") > 0);
}

#[test]
fn tls_after_a_plaintext_preamble_is_analysed_and_named() {
    let Some(corpus) = corpus_or_skip("tls_after_a_plaintext_preamble_is_analysed_and_named")
    else {
        return;
    };
    let cases: &[(&str, &str, &str)] = &[
        ("zeek-tls/smtp-starttls.pcap", "smtp", "1.2"),
        ("zeek-tls/imap-starttls.pcap", "imap", "1.2"),
        ("zeek-tls/pop3-starttls.pcap", "pop3", "1.2"),
        ("zeek-tls/xmpp-starttls.pcap", "xmpp", "1.2"),
        ("zeek-tls/irc-starttls.pcap", "irc", "1.2"),
        ("misc/ftp-auth-tls.pcap", "ftp", "1.3"),
        ("misc/ldap-starttls.pcap", "ldap", "1.3"),
        ("misc/mysql-encrypted.pcap", "mysql", "1.1"),
        ("misc/mysql-tls-13-amazon-rds.pcap", "mysql", "1.3"),
        ("misc/psql-aws-ssl-require.pcap", "postgresql", "1.2"),
        ("misc/rdp-to-ssl.pcap", "rdp", "1.0"),
        ("misc/socks-with-ssl.pcap", "socks", "1.0"),
        ("misc/http-connect-with-header.pcap", "http-connect", "1.2"),
    ];
    for (trace, protocol, version) in cases {
        let pcap = corpus.join(trace);
        let (code, records, stderr) = run_tlstap(&["read", "-q", pcap.to_str().expect("p")]);
        assert_eq!(code, 0, "{trace}: {stderr}");
        let tls: Vec<_> = records
            .iter()
            .filter(|r| r["event"]["dataset"] == "tlstap.tls")
            .collect();
        assert!(
            !tls.is_empty(),
            "{trace}: no TLS session found after the preamble"
        );
        for r in tls {
            assert_eq!(r["tlstap"]["starttls"], *protocol, "{trace}");
            assert_eq!(r["network"]["protocol"], *protocol, "{trace}");
            assert_eq!(r["tls"]["version"], *version, "{trace}");
        }
    }
    // A PostgreSQL session whose server refused SSL stays plaintext.
    let (_, records, _) = run_tlstap(&[
        "read",
        "-q",
        corpus
            .join("misc/psql-aws-ssl-disable.pcap")
            .to_str()
            .expect("p"),
    ]);
    assert!(records
        .iter()
        .all(|r| r["event"]["dataset"] != "tlstap.tls"));
}

#[test]
fn postgres_direct_tls_is_named_by_its_alpn() {
    // PostgreSQL 17 `sslnegotiation=direct`: TLS from the first byte, ALPN "postgresql".
    let dir = temp_dir();
    let pki = Pki::new(&["db.internal"]);
    let options = HandshakeOptions {
        server_name: "db.internal".into(),
        alpn: vec![b"postgresql".to_vec()],
        ..HandshakeOptions::default()
    };
    let framing = Framing {
        server: (std::net::Ipv4Addr::new(10, 1, 0, 10), 5432),
        ..Framing::default()
    };
    let pcap = handshake_pcap(dir.path(), "pg-direct.pcap", &pki, &options, &framing);
    let (code, records, stderr) = run_tlstap(&["read", "-q", pcap.to_str().expect("p")]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["network"]["protocol"], "postgresql");
    assert!(records[0]["tlstap"]["starttls"].is_null());
    assert_eq!(
        records[0]["tlstap"]["client"]["alpn"],
        serde_json::json!(["postgresql"])
    );
}
