//! Every trace of the corpus's `misc/` (`TLSTAP_CORPUS`) against tshark's facts
//! (`facts/misc/*.jsonl`): each TLS connection tshark saw is one record with
//! the same inner endpoints, version, SNI and cipher; traces where tshark saw
//! no TLS give no TLS record (nothing invented), and their flows are counted.

mod support;

use support::*;

/// Tunnel paths, for the traces that have one (outermost first), and the
/// extra arguments a trace needs (a non-standard tunnel port).
fn expected_encap(trace: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match trace {
        "geneve-47101.pcap" => (&["geneve:vni=4242"], &["--geneve-port", "47101"]),
        "gtp6_gtp_0x32.pcap" => (&["gtp:teid=1980578736"], &[]),
        "pppoe-over-qinq.pcap" => (&["vlan:3704", "vlan:2474", "pppoe:session=3847"], &[]),
        _ => (&[], &[]),
    }
}

#[test]
fn every_misc_trace_matches_tsharks_facts() {
    let Some(corpus) = corpus_or_skip("every_misc_trace_matches_tsharks_facts") else {
        return;
    };
    let mut traces: Vec<_> = std::fs::read_dir(corpus.join("misc"))
        .expect("misc")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".pcap") || name.ends_with(".pcapng"))
        .collect();
    traces.sort();
    let mut sessions_compared = 0;
    let mut traces_without_tls = 0;
    for trace in &traces {
        let facts_path = corpus.join(format!("facts/misc/{trace}.jsonl"));
        let facts: Vec<serde_json::Value> = std::fs::read_to_string(&facts_path)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("fact"))
            .collect();
        let (encap, extra) = expected_encap(trace);
        let path = corpus.join("misc").join(trace);
        let mut args = vec!["read", "-q"];
        args.extend_from_slice(extra);
        args.push(path.to_str().expect("p"));
        let (code, records, stderr) = run_tlstap_all(&args);
        // trunc-hdr.pcap ends in a damaged record: an error exit after the records.
        if trace != "trunc-hdr.pcap" {
            assert_eq!(code, 0, "{trace}: {stderr}");
        }
        let tls: Vec<&serde_json::Value> = records
            .iter()
            .filter(|r| r["event"]["dataset"] == "tlstap.tls")
            .collect();
        let stats = &records
            .iter()
            .rev()
            .find(|r| r["event"]["dataset"] == "tlstap.stats")
            .expect("stats")["tlstap"]["stats"];
        if facts.is_empty() {
            traces_without_tls += 1;
            assert!(tls.is_empty(), "{trace}: tlstap invented TLS: {tls:#?}");
            // The plaintext connections were seen and tracked as flows; traces
            // with none (ERSPAN II/III carry only ICMP; trunc-hdr.pcap one cut
            // header) count every packet as not TCP or undecodable.
            let n = |key: &str| stats[key].as_u64().expect("n");
            assert!(
                n("flows_created") >= 1
                    || n("packets_not_tcp") + n("decode_errors") == n("packets"),
                "{trace}: {stats}"
            );

            continue;
        }
        // GridFTP's handshake is base64 inside FTP commands (corpus README):
        // tshark sees the data channel's TLS only, and so does tlstap.
        assert_eq!(tls.len(), facts.len(), "{trace}: {tls:#?}");
        for fact in &facts {
            let r = tls
                .iter()
                .find(|r| r["source"]["port"] == fact["client_port"])
                .unwrap_or_else(|| panic!("{trace}: no record for {}", fact["client_port"]));
            assert_eq!(r["source"]["ip"], fact["client_ip"], "{trace}");
            assert_eq!(r["destination"]["ip"], fact["server_ip"], "{trace}");
            assert_eq!(r["destination"]["port"], fact["server_port"], "{trace}");
            let text = |path: &str| field(r, path).as_str().map(str::to_string);
            let fact_text = |key: &str| fact[key].as_str().map(str::to_string);
            assert_eq!(
                text("tls.client.server_name"),
                fact_text("sni"),
                "{trace} SNI"
            );
            assert_eq!(text("tls.version"), fact_text("version"), "{trace} version");
            assert_eq!(
                text("tls.cipher"),
                fact_text("cipher_name"),
                "{trace} cipher"
            );
            assert_eq!(text("tls.client.ja3"), fact_text("ja3"), "{trace} JA3");
            let path: Vec<&str> = r["tlstap"]["encap"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            assert_eq!(path, encap, "{trace} encap");
            sessions_compared += 1;
        }
        assert!(stats["flows_created"].as_u64().expect("n") >= facts.len() as u64);
    }
    assert_eq!(traces.len(), 32, "corpus misc/ changed: {traces:?}");
    assert_eq!(sessions_compared, 15);
    assert_eq!(traces_without_tls, 18);
}
