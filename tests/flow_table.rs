//! Flow table behaviour at the library level: bypass cost, caps, timeouts.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::IpAddr;
use std::time::Duration;

use support::*;
use tlstap::decode::{EncapPath, TcpFlags, TcpSegment, Transport};
use tlstap::flow::{Endpoint, FlowContent, FlowEvent, FlowKey, FlowLimits, FlowPacket, FlowTable};
use tlstap::time::PacketTime;
use tlstap::tls::EndReason;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

struct CountingAllocator;

// SAFETY: defers every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

fn endpoint(ip: &str, port: u16) -> Endpoint {
    Endpoint {
        ip: ip.parse::<IpAddr>().expect("ip"),
        port,
    }
}

struct Conversation {
    client: Endpoint,
    server: Endpoint,
    seq: [u32; 2],
    index: u64,
    time: PacketTime,
}

impl Conversation {
    fn new(client_port: u16) -> Self {
        Self {
            client: endpoint("10.9.0.1", client_port),
            server: endpoint("10.9.0.2", 443),
            seq: [1000, 5000],
            index: 0,
            time: PacketTime::from_secs_nanos(1_767_225_600, 0),
        }
    }

    fn packet<'a>(&mut self, from_client: bool, flags: u8, payload: &'a [u8]) -> FlowPacket<'a> {
        let side = usize::from(!from_client);
        let (source, destination) = if from_client {
            (self.client, self.server)
        } else {
            (self.server, self.client)
        };
        let seq = self.seq[side];
        let syn = u32::from(flags & TcpFlags::SYN != 0);
        self.seq[side] = seq.wrapping_add(payload.len() as u32 + syn);
        self.index += 1;
        self.time = self.time.saturating_add(Duration::from_millis(1));
        FlowPacket {
            index: self.index,
            time: self.time,
            key: FlowKey::new(source, destination, Transport::Tcp, 0),
            source,
            destination,
            transport: Transport::Tcp,
            tcp: TcpSegment {
                seq,
                ack: 0,
                flags: TcpFlags(flags),
                // A distinct IP id per packet, as a real sender gives.
                ident: (self.index as u32) << 16,
            },
            encap: &EncapPath::EMPTY,
            payload,
            withheld: 0,
        }
    }
}

#[test]
fn bypassed_tls_flow_costs_no_allocation_per_packet() {
    let pki = Pki::new(&["api.internal"]);
    let wire = handshake(&pki, &HandshakeOptions::default());
    let mut table = FlowTable::new(FlowLimits::default());
    let mut events = Vec::with_capacity(16);
    let mut c = Conversation::new(40001);
    for (side, bytes) in &wire {
        let packet = c.packet(*side == Side::Client, TcpFlags::ACK, bytes);
        table.process(&packet, &mut events);
    }
    assert_eq!(events.len(), 1, "the handshake finished and was emitted");
    assert_eq!(events[0].end, EndReason::HandshakeDone);
    let bypassed_before = table.counters().packets_bypassed;
    let payload = [0x17u8; 1200];
    let packets: Vec<FlowPacket<'_>> = (0..10_000)
        .map(|i| c.packet(i % 2 == 0, TcpFlags::ACK, &payload))
        .collect();
    let before = allocations();
    for packet in &packets {
        table.process(packet, &mut events);
    }
    let after = allocations();
    assert_eq!(after - before, 0, "allocations on the bypass path");
    assert_eq!(table.counters().packets_bypassed - bypassed_before, 10_000);
    assert_eq!(events.len(), 1);
}

#[test]
fn a_finished_flow_is_noticed_once_and_its_withheld_payloads_cost_nothing() {
    let pki = Pki::new(&["api.internal"]);
    let wire = handshake(&pki, &HandshakeOptions::default());
    let mut table = FlowTable::new(FlowLimits::default());
    let mut events = Vec::new();
    let mut c = Conversation::new(40002);
    for (side, bytes) in &wire {
        let packet = c.packet(*side == Side::Client, TcpFlags::ACK, bytes);
        table.process(&packet, &mut events);
    }
    assert_eq!(events.len(), 1);
    // The first payload the finished flow did not need (here the rest of
    // rustls's flight, or the data after it): the reader is told once.
    let payload = [0x17u8; 1200];
    let first = c.packet(true, TcpFlags::ACK, &payload);
    table.process(&first, &mut events);
    table.process(&c.packet(false, TcpFlags::ACK, &payload), &mut events);
    let mut notices = Vec::new();
    table.take_notices(&mut notices);
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].key, first.key);
    assert!(notices[0].at <= first.index);
    // What the reader then sends: no bytes, their length.
    let before = table.counters().packets_bypassed;
    for i in 0..100 {
        let mut packet = c.packet(i % 2 == 0, TcpFlags::ACK, &[]);
        packet.withheld = 1200;
        table.process(&packet, &mut events);
    }
    assert_eq!(table.counters().packets_bypassed - before, 100);
    assert_eq!(table.counters().withheld_untracked, 0);
    table.take_notices(&mut notices);
    assert_eq!(notices.len(), 1, "noticed once");
    assert_eq!(events.len(), 1, "nothing new to report");
}

#[test]
fn a_withheld_payload_of_a_flow_gone_from_the_table_is_ignored() {
    let mut table = FlowTable::new(FlowLimits::default());
    let mut events = Vec::new();
    let mut c = Conversation::new(40003);
    let mut packet = c.packet(true, TcpFlags::ACK, &[]);
    packet.withheld = 1400;
    table.process(&packet, &mut events);
    assert_eq!(table.counters().withheld_untracked, 1);
    assert_eq!(table.len(), 0, "no flow is created from a withheld payload");
    assert!(events.is_empty());
}

#[test]
fn full_flow_table_evicts_oldest_and_counts_it() {
    let limits = FlowLimits {
        max_flows: 4,
        ..FlowLimits::default()
    };
    let mut table = FlowTable::new(limits);
    let mut events: Vec<FlowEvent> = Vec::new();
    // Five half-open TLS handshakes: a ClientHello record header and a few bytes each.
    let partial = [0x16u8, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc];
    for port in 0..5u16 {
        let mut c = Conversation::new(41000 + port);
        c.index = u64::from(port) * 10;
        table.process(&c.packet(true, TcpFlags::ACK, &partial), &mut events);
    }
    assert_eq!(table.len(), 4);
    assert_eq!(table.counters().flows_evicted, 1);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].end, EndReason::Evicted);
    assert_eq!(events[0].client.port, 41000, "the oldest flow goes first");
    assert!(matches!(events[0].content, FlowContent::Tls(_)));
}

#[test]
fn idle_flow_times_out_in_packet_time_with_its_partial_session() {
    let limits = FlowLimits {
        idle_timeout: Duration::from_secs(30),
        ..FlowLimits::default()
    };
    let mut table = FlowTable::new(limits);
    let mut events = Vec::new();
    let mut c = Conversation::new(42000);
    let partial = [0x16u8, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc];
    table.process(&c.packet(true, TcpFlags::SYN, &[]), &mut events);
    table.process(&c.packet(true, TcpFlags::ACK, &partial), &mut events);
    table.sweep(
        c.time.saturating_add(Duration::from_secs(29)),
        100,
        &mut events,
    );
    assert!(events.is_empty(), "not idle long enough");
    table.sweep(
        c.time.saturating_add(Duration::from_secs(31)),
        200,
        &mut events,
    );
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].end, EndReason::IdleTimeout);
    assert_eq!(events[0].order.at, 200);
    assert_eq!(table.counters().flows_timed_out, 1);
    assert!(table.is_empty());
}

#[test]
fn reset_before_the_server_hello_emits_a_not_established_session() {
    let pki = Pki::new(&["api.internal"]);
    let wire = handshake(&pki, &HandshakeOptions::default());
    let mut table = FlowTable::new(FlowLimits::default());
    let mut events = Vec::new();
    let mut c = Conversation::new(43000);
    table.process(&c.packet(true, TcpFlags::ACK, &wire[0].1), &mut events);
    table.process(&c.packet(false, TcpFlags::RST, &[]), &mut events);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].end, EndReason::ConnectionReset);
    let FlowContent::Tls(summary) = &events[0].content else {
        panic!("expected a TLS session");
    };
    assert!(!summary.established);
    assert!(summary.server_hello.is_none());
    assert_eq!(
        summary
            .client_hello
            .as_ref()
            .and_then(|h| h.server_name.as_deref()),
        Some("api.internal")
    );
}
