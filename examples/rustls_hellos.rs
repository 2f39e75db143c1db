//! Writes in-process rustls handshakes (the crate's dev-dependency, aws-lc-rs
//! provider) into a pcap, one connection per variation, so that
//! `scripts/make-fingerprints.sh` can merge them with the captures of the
//! system's TLS stacks. Each connection goes to its own server address; one
//! line per connection on stdout says which (`IP<TAB>variation`).
//!
//! ```text
//! cargo run --example rustls_hellos -- OUT.pcap START_UNIX_SECONDS
//! ```

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::Ipv4Addr;
use std::path::Path;

use support::{frame, handshake, write_pcap, Framing, HandshakeOptions, Pki};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(out), Some(start)) = (args.next(), args.next()) else {
        eprintln!("usage: rustls_hellos OUT.pcap START_UNIX_SECONDS");
        std::process::exit(2);
    };
    let start: u32 = start.parse().expect("START_UNIX_SECONDS is a number");
    let pki = Pki::new(&["api.internal"]);
    let base = HandshakeOptions {
        insecure_client: true,
        alpn: Vec::new(),
        ..HandshakeOptions::default()
    };
    // rustls sends no SNI for an IP address, which is how "no-sni" is made.
    let variations: [(&str, HandshakeOptions); 4] = [
        ("default", base.clone()),
        (
            "alpn",
            HandshakeOptions {
                alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
                ..base.clone()
            },
        ),
        (
            "no-sni",
            HandshakeOptions {
                server_name: "10.20.2.3".to_string(),
                ..base.clone()
            },
        ),
        (
            "tls1.2-only",
            HandshakeOptions {
                client_versions: vec![&rustls::version::TLS12],
                ..base.clone()
            },
        ),
    ];
    let mut frames = Vec::new();
    for (index, (variation, options)) in variations.iter().enumerate() {
        let number = u8::try_from(index + 1).expect("fewer than 256 variations");
        let server = Ipv4Addr::new(10, 20, 2, number);
        let framing = Framing {
            client: (Ipv4Addr::new(10, 20, 0, 20), 40_000 + u16::from(number)),
            server: (server, 443),
            start_seconds: start,
            ..Framing::default()
        };
        let offset = u64::from(number) * 1_000_000;
        for mut one in frame(&handshake(&pki, options), &framing) {
            one.micros += offset;
            frames.push(one);
        }
        println!("{server}\t{variation}");
    }
    write_pcap(Path::new(&out), &frames, start);
}
