//! Hostile captures for the memcap tests and `scripts/memcap.sh`: a flood of
//! connections that open and then stall, with complete TLS 1.3 sessions (SNI
//! `legit.internal`) interleaved every `every` flood flows. Written as it is
//! generated, so memory stays small whatever the flow count.

use std::net::Ipv4Addr;
use std::path::Path;

use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

use super::*;

/// The kinds of flood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flood {
    /// A SYN and nothing else.
    Syn,
    /// Handshake, then the first 1400 bytes of a real ClientHello whose
    /// lengths claim 16 KB, then silence.
    Hello,
    /// A real TLS 1.2 ClientHello and the server flight cut in the middle of
    /// its Certificate message.
    Certs,
    /// The first Initial of a ClientHello split over several
    /// (`tests/data/quic-initials-fragmented-crypto.pcap`).
    Quic,
}

impl Flood {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "syn" => Self::Syn,
            "hello" => Self::Hello,
            "certs" => Self::Certs,
            "quic" => Self::Quic,
            _ => return None,
        })
    }
}

/// What a generated capture holds.
#[derive(Debug, Clone, Copy)]
pub struct FloodCapture {
    pub flood_flows: u64,
    pub legit_sessions: u64,
    pub packets: u64,
    pub micros: u64,
}

struct Writer {
    savefile: pcap::Savefile,
    spacing: u64,
    micros: u64,
    packets: u64,
}

impl Writer {
    fn write(&mut self, bytes: &[u8]) {
        self.micros += self.spacing;
        self.packets += 1;
        let seconds = 1_767_225_600 + self.micros / 1_000_000;
        let header = pcap::PacketHeader {
            ts: libc::timeval {
                tv_sec: seconds as libc::time_t,
                tv_usec: (self.micros % 1_000_000) as libc::suseconds_t,
            },
            caplen: bytes.len() as u32,
            len: bytes.len() as u32,
        };
        self.savefile.write(&pcap::Packet::new(&header, bytes));
    }
}

/// Flow `n`'s client: an address in 10.128.0.0/9 and one of 50,000 ports.
fn client(n: u64) -> (Ipv4Addr, u16) {
    let host = (n / 50_000) as u32;
    let ip = Ipv4Addr::from(0x0a80_0000u32 | (host & 0x007f_ffff));
    (ip, 10_000 + (n % 50_000) as u16)
}

const SERVER: (Ipv4Addr, u16) = (Ipv4Addr::new(10, 1, 0, 10), 443);

fn framing(n: u64, close: bool) -> Framing {
    Framing {
        client: client(n),
        server: SERVER,
        close,
        ..Framing::default()
    }
}

/// A real ClientHello record whose record and handshake lengths claim
/// 16 KB, cut to its first 1400 bytes (padded with its own bytes if short).
fn claimed_large_hello(hello: &[u8]) -> Vec<u8> {
    let mut record = hello.to_vec();
    let claimed: usize = 16_000;
    record[3..5].copy_from_slice(&(claimed as u16).to_be_bytes());
    let body = (claimed - 4) as u32;
    record[6..9].copy_from_slice(&body.to_be_bytes()[1..]);
    while record.len() < 1400 {
        let more = hello[9..].to_vec();
        record.extend_from_slice(&more);
    }
    record.truncate(1400);
    record
}

/// UDP payloads client → server from a capture (Ethernet link type).
fn udp_payloads(path: &str) -> Vec<Vec<u8>> {
    let mut capture = pcap::Capture::from_file(path).expect("the QUIC template capture");
    let mut out = Vec::new();
    while let Ok(packet) = capture.next_packet() {
        let Ok(sliced) = SlicedPacket::from_ethernet(packet.data) else {
            continue;
        };
        if let Some(TransportSlice::Udp(udp)) = sliced.transport {
            if udp.destination_port() == 443 {
                out.push(udp.payload().to_vec());
            }
        }
    }
    out
}

fn udp_packet(n: u64, payload: &[u8]) -> Vec<u8> {
    let (ip, port) = client(n);
    let mut out = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(ip.octets(), SERVER.0.octets(), 64)
        .udp(port, SERVER.1)
        .write(&mut out, payload)
        .expect("build packet");
    out
}

/// Writes `flows` flood flows of `kind` to `path`, one legitimate session
/// after every `every` of them, packets `spacing_us` apart.
pub fn write_flood(
    kind: Flood,
    flows: u64,
    path: &Path,
    every: u64,
    spacing_us: u64,
) -> FloodCapture {
    let every = every.max(1);
    let capture = pcap::Capture::dead(pcap::Linktype::ETHERNET).expect("dead capture");
    let mut out = Writer {
        savefile: capture.savefile(path).expect("create the output"),
        spacing: spacing_us,
        micros: 0,
        packets: 0,
    };
    let pki = Pki::new(&["legit.internal", "flood.internal"]);
    let legit = handshake(
        &pki,
        &HandshakeOptions {
            server_name: "legit.internal".into(),
            ..HandshakeOptions::default()
        },
    );
    let flood: Vec<(Side, Vec<u8>)> = match kind {
        Flood::Syn | Flood::Quic => Vec::new(),
        Flood::Hello => vec![(Side::Client, claimed_large_hello(&legit[0].1))],
        Flood::Certs => {
            let tls12 = handshake(
                &pki,
                &HandshakeOptions {
                    server_name: "flood.internal".into(),
                    client_versions: vec![&rustls::version::TLS12],
                    ..HandshakeOptions::default()
                },
            );
            // ServerHello (about 90 bytes), then the Certificate message:
            // stop about 600 bytes into the chain.
            let server_flight = &tls12[1].1;
            let cut = server_flight.len().min(700);
            vec![
                tls12[0].clone(),
                (Side::Server, server_flight[..cut].to_vec()),
            ]
        }
    };
    // Only the first Initial: the ClientHello it starts stays incomplete.
    let initials: Vec<Vec<u8>> = if kind == Flood::Quic {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/quic-initials-fragmented-crypto.pcap"
        );
        udp_payloads(path).into_iter().take(1).collect()
    } else {
        Vec::new()
    };

    let mut legit_sessions = 0u64;
    for n in 0..flows {
        if n % every == every - 1 {
            // Clients of legitimate sessions are numbered after the flood's.
            for frame in frame(&legit, &framing(flows + n, true)) {
                out.write(&frame.bytes);
            }
            legit_sessions += 1;
        }
        match kind {
            Flood::Syn => {
                let frames = frame(&[], &framing(n, false));
                out.write(&frames[0].bytes);
            }
            Flood::Quic => {
                for initial in &initials {
                    out.write(&udp_packet(n, initial));
                }
            }
            Flood::Hello | Flood::Certs => {
                for frame in frame(&flood, &framing(n, false)) {
                    out.write(&frame.bytes);
                }
            }
        }
    }
    out.savefile.flush().expect("flush");
    FloodCapture {
        flood_flows: flows,
        legit_sessions,
        packets: out.packets,
        micros: out.micros,
    }
}
