//! Per-packet cost of the worker path: decode + flow lookup for a bypassed
//! flow (the steady state), and a whole TLS 1.3 handshake from first byte to record.

#[path = "../tests/support/mod.rs"]
mod support;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use support::*;
use tlstap::capture::LinkType;
use tlstap::decode::{decode_packet, DecodeConfig, EncapPath, Packet, Transport};
use tlstap::flow::{Endpoint, FlowKey, FlowLimits, FlowPacket, FlowTable};
use tlstap::time::PacketTime;

fn packets(frames: &[Frame]) -> Vec<(PacketTime, Vec<u8>)> {
    frames
        .iter()
        .map(|f| {
            (
                PacketTime::from_nanos(f.micros as i64 * 1000),
                f.bytes.clone(),
            )
        })
        .collect()
}

fn run(
    table: &mut FlowTable,
    frames: &[(PacketTime, Vec<u8>)],
    events: &mut Vec<tlstap::flow::FlowEvent>,
    start: u64,
) {
    let config = DecodeConfig::default();
    let mut encap = EncapPath::EMPTY;
    for (i, (time, bytes)) in frames.iter().enumerate() {
        let Ok(Packet::Whole(d)) = decode_packet(LinkType::ETHERNET, bytes, &config, &mut encap)
        else {
            continue;
        };
        let source = Endpoint {
            ip: d.source,
            port: d.source_port,
        };
        let destination = Endpoint {
            ip: d.destination,
            port: d.destination_port,
        };
        let packet = FlowPacket {
            index: start + i as u64,
            time: *time,
            key: FlowKey::new(source, destination, Transport::Tcp, encap.flow_context()),
            source,
            destination,
            transport: d.transport,
            tcp: d.tcp,
            encap: &encap,
            payload: d.payload,
            withheld: 0,
        };
        table.process(&packet, events);
    }
}

fn bench(c: &mut Criterion) {
    let pki = Pki::new(&["api.internal"]);
    let mut wire = handshake(&pki, &HandshakeOptions::default());
    let handshake_frames = packets(&frame(
        &wire,
        &Framing {
            close: false,
            ..Framing::default()
        },
    ));
    for n in 0..1000 {
        wire.push((
            if n % 2 == 0 {
                Side::Client
            } else {
                Side::Server
            },
            vec![0x17; 1400],
        ));
    }
    let all = packets(&frame(
        &wire,
        &Framing {
            close: false,
            ..Framing::default()
        },
    ));
    let bulk = &all[handshake_frames.len()..];

    let mut group = c.benchmark_group("worker");
    group.throughput(Throughput::Elements(bulk.len() as u64));
    group.bench_function("bypassed_flow_per_packet", |b| {
        let mut table = FlowTable::new(FlowLimits::default());
        let mut events = Vec::new();
        run(&mut table, &handshake_frames, &mut events, 0);
        b.iter(|| run(&mut table, bulk, &mut events, 1000));
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("tls13_handshake_to_record", |b| {
        b.iter(|| {
            let mut table = FlowTable::new(FlowLimits::default());
            let mut events = Vec::new();
            run(&mut table, &handshake_frames, &mut events, 0);
            assert_eq!(events.len(), 1);
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
