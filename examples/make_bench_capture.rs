//! Writes a large capture for `scripts/bench.sh`: N real rustls sessions
//! (TLS 1.3 and 1.2 mixed), each followed by bulk application data, with the
//! sessions interleaved so the flow table holds many flows at once.

#[path = "../tests/support/mod.rs"]
mod support;

use support::*;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "bench.pcap".to_string());
    let sessions: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(2000);
    let bulk: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100);
    let pki = Pki::new(&["api.internal"]);
    // A handful of distinct handshakes, reused across sessions (handshakes are
    // expensive to generate; the analyzer sees distinct flows either way).
    let templates: Vec<_> = (0..8)
        .map(|i| {
            let options = HandshakeOptions {
                client_versions: if i % 4 == 0 {
                    vec![&rustls::version::TLS12]
                } else {
                    vec![&rustls::version::TLS13]
                },
                ..HandshakeOptions::default()
            };
            let mut wire = handshake(&pki, &options);
            for n in 0..bulk {
                let side = if n % 4 == 0 {
                    Side::Client
                } else {
                    Side::Server
                };
                let mut record = vec![0x17, 0x03, 0x03, 0x05, 0x50];
                record.resize(5 + 0x550, (n % 251) as u8);
                wire.push((side, record));
            }
            wire
        })
        .collect();
    let streams: Vec<Vec<Frame>> = (0..sessions)
        .map(|i| {
            let framing = Framing {
                client: (
                    std::net::Ipv4Addr::new(10, 2, (i / 250) as u8, (i % 250) as u8 + 1),
                    20_000 + (i % 40_000) as u16,
                ),
                ..Framing::default()
            };
            frame(&templates[i % templates.len()], &framing)
        })
        .collect();
    // Interleave 64 sessions at a time.
    let mut frames = Vec::new();
    for group in streams.chunks(64) {
        let offset = frames.last().map_or(0, |f: &Frame| f.micros);
        frames.extend(interleave(group, 20).into_iter().map(|f| Frame {
            micros: offset + f.micros,
            bytes: f.bytes,
        }));
    }
    write_pcap(std::path::Path::new(&path), &frames, 1_767_225_600);
    eprintln!("{path}: {} packets, {sessions} sessions", frames.len());
}
