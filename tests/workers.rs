//! The set and order of records does not depend on the number of workers.

mod support;

use support::*;

#[test]
fn one_and_four_workers_write_identical_records_in_identical_order() {
    let dir = temp_dir();
    let pki = Pki::new(&["api.internal"]);
    // 40 sessions on distinct ports, interleaved in time, mixed versions.
    let mut conversations = Vec::new();
    for i in 0..40u16 {
        let options = HandshakeOptions {
            client_versions: if i % 3 == 0 {
                vec![&rustls::version::TLS12]
            } else {
                vec![&rustls::version::TLS13]
            },
            server_name: format!("svc{i}.internal"),
            ..HandshakeOptions::default()
        };
        let pki_names = Pki::new(&[&options.server_name]);
        let _ = &pki;
        let framing = Framing {
            client: (
                std::net::Ipv4Addr::new(10, 1, (i % 7) as u8, 20),
                40_000 + i,
            ),
            mss: 300 + usize::from(i) * 17,
            reorder: i % 5 == 0,
            close: i % 4 != 0, // some stay open until the end of the capture
            ..Framing::default()
        };
        conversations.push(frame(&handshake(&pki_names, &options), &framing));
    }
    let frames = interleave(&conversations, 50);
    let path = dir.path().join("many.pcap");
    write_pcap(&path, &frames, 1_767_225_600);
    let path = path.to_str().expect("path");
    let (code1, one, _) = run_tlstap(&["read", "-q", "-w", "1", path]);
    let (code4, four, _) = run_tlstap(&["read", "-q", "-w", "4", path]);
    assert_eq!((code1, code4), (0, 0));
    assert_eq!(one.len(), 40);
    assert_eq!(one, four);
    let versions: Vec<String> = one.iter().map(|r| string(r, "tls.version")).collect();
    assert_eq!(versions.iter().filter(|v| *v == "1.2").count(), 14);
}
