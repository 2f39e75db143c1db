//! Writes a hostile capture for `scripts/memcap.sh` (see
//! `tests/support/flood.rs` for what each kind holds).
//!
//! usage: make_flood KIND FLOWS OUT.pcap [EVERY] [SPACING_US]
//!   KIND        syn | hello | certs | quic
//!   EVERY       one legitimate session after this many flood flows (1000)
//!   SPACING_US  packet time between two packets (5: 200k packets/s)

#[path = "../tests/support/mod.rs"]
mod support;

use support::flood::{write_flood, Flood};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: make_flood syn|hello|certs|quic FLOWS OUT.pcap [EVERY] [SPACING_US]";
    let (Some(kind), Some(flows), Some(path)) = (
        args.first().and_then(|k| Flood::parse(k)),
        args.get(1).and_then(|n| n.parse().ok()),
        args.get(2),
    ) else {
        eprintln!("{usage}");
        std::process::exit(2)
    };
    let every = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(1000);
    let spacing = args.get(4).and_then(|n| n.parse().ok()).unwrap_or(5);
    let made = write_flood(kind, flows, path.as_ref(), every, spacing);
    println!(
        "{}: {} flood flows, {} legitimate sessions, {} packets, {:.1} s of packet time",
        args[0],
        made.flood_flows,
        made.legit_sessions,
        made.packets,
        made.micros as f64 / 1e6
    );
}
