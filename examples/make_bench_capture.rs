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
    let mut streams: Vec<Vec<Frame>> = (0..sessions)
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
    let mut micros = 0u64;
    for group in streams.chunks_mut(64) {
        let mut cursors = vec![0usize; group.len()];
        loop {
            let mut any = false;
            for (stream, cursor) in group.iter().zip(cursors.iter_mut()) {
                if let Some(f) = stream.get(*cursor) {
                    micros += 20;
                    frames.push(Frame {
                        micros,
                        bytes: f.bytes.clone(),
                    });
                    *cursor += 1;
                    any = true;
                }
            }
            if !any {
                break;
            }
        }
    }
    write_pcap(std::path::Path::new(&path), &frames, 1_767_225_600);
    eprintln!("{path}: {} packets, {sessions} sessions", frames.len());
}
