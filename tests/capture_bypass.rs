//! Capture-side bypass: once a worker has finished a flow, the reader stops
//! copying its payloads. What must never happen is a payload withheld that a
//! worker needs: a new connection on the same ports (port reuse), even when
//! the old connection's notice reaches the reader after the new SYN.

mod support;

use support::*;

fn conversation(name: &str, tls12: bool, port: u16, data_segments: usize) -> Vec<Frame> {
    let pki = Pki::new(&[name]);
    let options = HandshakeOptions {
        client_versions: if tls12 {
            vec![&rustls::version::TLS12]
        } else {
            vec![&rustls::version::TLS13]
        },
        server_name: name.to_string(),
        ..HandshakeOptions::default()
    };
    let mut wire = handshake(&pki, &options);
    if data_segments > 0 {
        // Application data after the handshake (never parsed: the flow is done).
        wire.push((Side::Server, vec![0x17; 1000 * data_segments]));
    }
    let framing = Framing {
        client: (std::net::Ipv4Addr::new(10, 1, 0, 20), port),
        mss: 1000,
        close: true,
        ..Framing::default()
    };
    frame(&wire, &framing)
}

#[test]
fn payloads_of_finished_flows_are_withheld_and_port_reuse_is_still_seen() {
    // short.internal finishes and closes at once; a new connection on its
    // ports opens (SYN) but sends its ClientHello only after thousands of
    // packets of bulk.internal, long after the notice about short.internal
    // has come back to the reader. Then bulk.internal closes and its ports
    // are reused too.
    let short = conversation("short.internal", false, 41001, 20);
    let late = conversation("late.internal", true, 41001, 0);
    let bulk = conversation("bulk.internal", false, 41000, 8000);
    let reuse = conversation("reuse.internal", true, 41000, 0);
    let mut frames: Vec<Frame> = Vec::new();
    frames.extend(short);
    frames.extend(late[..3].iter().cloned());
    frames.extend(bulk);
    frames.extend(late[3..].iter().cloned());
    frames.extend(reuse);
    for (i, frame) in frames.iter_mut().enumerate() {
        frame.micros = 50 * i as u64;
    }
    let dir = temp_dir();
    let path = dir.path().join("reuse.pcap");
    write_pcap(&path, &frames, 1_767_225_600);
    let path = path.to_str().expect("path");

    let (code, one, _) = run_tlstap_all(&["read", "-q", "-w", "1", path]);
    assert_eq!(code, 0);
    let (code, two, _) = run_tlstap_all(&["read", "-q", "-w", "2", path]);
    assert_eq!(code, 0);
    let sessions = |records: &[serde_json::Value]| -> Vec<(String, String)> {
        records
            .iter()
            .filter(|r| string(r, "event.kind") == "event")
            .map(|r| {
                (
                    string(r, "tls.client.server_name"),
                    string(r, "tls.version"),
                )
            })
            .collect()
    };
    let expected = [
        ("short.internal", "1.3"),
        ("bulk.internal", "1.3"),
        ("late.internal", "1.2"),
        ("reuse.internal", "1.2"),
    ];
    let mut seen = sessions(&one);
    seen.sort();
    let mut want: Vec<(String, String)> = expected
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    want.sort();
    assert_eq!(seen, want);
    let without_stats = |records: &[serde_json::Value]| -> Vec<serde_json::Value> {
        records
            .iter()
            .filter(|r| string(r, "event.kind") == "event")
            .cloned()
            .collect()
    };
    assert_eq!(without_stats(&one), without_stats(&two));

    let stats = |records: &[serde_json::Value]| -> serde_json::Value {
        records
            .iter()
            .find(|r| string(r, "event.kind") == "metric")
            .expect("stats record")["tlstap"]["stats"]
            .clone()
    };
    for run in [&one, &two] {
        let stats = stats(run);
        let withheld = stats["payloads_withheld"].as_u64().expect("number");
        // bulk.internal's segments after the notice came back (the reader
        // takes a batch back six rounds of 1024 packets after sending it).
        assert!(withheld > 1500, "withheld only {withheld}");
        assert_eq!(stats["withheld_untracked"], 0);
    }
    // Which payloads are withheld is fixed by the input, not by timing.
    assert_eq!(
        stats(&one)["payloads_withheld"],
        stats(&two)["payloads_withheld"]
    );
}
