//! Hostile input on the decapsulation path: real tunnelled frames from the
//! corpus, mutated (lying length fields, flipped type codes, truncation), then
//! decoded, fragments reassembled and flows tracked, as the pipeline does.
//! No panic; the fragment table stays under its caps whatever arrives.

mod support;

use proptest::prelude::*;
use tlstap::capture::LinkType;
use tlstap::decode::fragment::{
    Fragment, FragmentCounters, FragmentKey, FragmentLimits, FragmentTable,
};
use tlstap::decode::{decode_packet, decode_reassembled, DecodeConfig, EncapPath, Packet};
use tlstap::flow::{Endpoint, FlowKey, FlowLimits, FlowPacket, FlowTable};
use tlstap::time::PacketTime;

/// Tunnelled traces whose frames seed the mutations.
const SEEDS: &[&str] = &[
    "erspan.pcap",
    "erspanII.pcap",
    "erspanIII.pcap",
    "geneve-47101.pcap",
    "gre-sample.pcap",
    "gtp6_gtp_0x32.pcap",
    "mixed-vlan-mpls.pcap",
    "nflog-http.pcap",
    "pppoe-over-qinq.pcap",
    "vlan-qinqinq.pcap",
    "vxlan-encapsulated-http.pcap",
    "ipv6-http-atomic-frag.pcap",
];

/// Frames of the corpus's tunnel traces, read once per test binary.
fn seeds_from(corpus: &std::path::Path) -> Vec<(i32, Vec<u8>)> {
    let mut frames = Vec::new();
    for name in SEEDS {
        let mut capture = pcap::Capture::from_file(corpus.join("misc").join(name)).expect("open");
        let link = capture.get_datalink().0;
        let mut n = 0;
        while let Ok(packet) = capture.next_packet() {
            frames.push((link, packet.data.to_vec()));
            n += 1;
            if n == 300 {
                break;
            }
        }
    }
    frames
}

struct Harness {
    config: DecodeConfig,
    fragments: FragmentTable,
    counters: FragmentCounters,
    flows: FlowTable,
    limits: FragmentLimits,
    index: u64,
}

impl Harness {
    fn new() -> Self {
        let limits = FragmentLimits {
            max_bytes: 64 * 1024,
            max_datagrams: 32,
            ..FragmentLimits::default()
        };
        Self {
            config: DecodeConfig {
                geneve_ports: vec![6081, 47101],
                ..DecodeConfig::default()
            },
            fragments: FragmentTable::new(limits.clone()),
            counters: FragmentCounters::default(),
            flows: FlowTable::new(FlowLimits {
                max_flows: 64,
                ..FlowLimits::default()
            }),
            limits,
            index: 0,
        }
    }

    fn run(&mut self, link: i32, bytes: &[u8]) {
        self.index += 1;
        let now = PacketTime::from_nanos(self.index as i64 * 1_000_000);
        let mut events = Vec::new();
        let mut encap = EncapPath::EMPTY;
        match decode_packet(LinkType(link), bytes, &self.config, &mut encap) {
            Ok(Packet::Whole(decoded)) => self.track(&decoded, &encap, now, &mut events),
            Ok(Packet::Fragment(fragment)) => {
                let key = FragmentKey::new(
                    fragment.source,
                    fragment.destination,
                    fragment.id,
                    fragment.protocol,
                    encap.flow_context(),
                );
                let piece = Fragment {
                    offset: fragment.offset,
                    more_fragments: fragment.more,
                    payload: fragment.payload,
                };
                if let Some(whole) = self.fragments.push(key, piece, now, &mut self.counters) {
                    let mut path = encap;
                    if let Ok(Packet::Whole(decoded)) =
                        decode_reassembled(&fragment, &whole, &self.config, &mut path)
                    {
                        self.track(&decoded, &path, now, &mut events);
                    }
                }
            }
            Err(_) => {}
        }
        assert!(self.fragments.buffered_bytes() <= self.limits.max_bytes);
        assert!(self.fragments.len() <= self.limits.max_datagrams);
        assert!(self.flows.len() <= 64);
    }

    fn track(
        &mut self,
        decoded: &tlstap::decode::Decoded<'_>,
        encap: &EncapPath,
        now: PacketTime,
        events: &mut Vec<tlstap::flow::FlowEvent>,
    ) {
        let source = Endpoint {
            ip: decoded.source,
            port: decoded.source_port,
        };
        let destination = Endpoint {
            ip: decoded.destination,
            port: decoded.destination_port,
        };
        let packet = FlowPacket {
            index: self.index,
            time: now,
            key: FlowKey::new(source, destination, decoded.transport, encap.flow_context()),
            source,
            destination,
            transport: decoded.transport,
            tcp: decoded.tcp,
            encap,
            payload: decoded.payload,
            withheld: 0,
        };
        self.flows.process(&packet, events);
    }
}

#[test]
fn unmutated_tunnel_seeds_decode() {
    let Some(corpus) = support::corpus_or_skip("unmutated_tunnel_seeds_decode") else {
        return;
    };
    let seeds = seeds_from(&corpus);
    let config = DecodeConfig {
        geneve_ports: vec![6081, 47101],
        ..DecodeConfig::default()
    };
    let mut outcomes = std::collections::BTreeMap::new();
    for (link, bytes) in &seeds {
        let outcome =
            match decode_packet(LinkType(*link), bytes, &config, &mut EncapPath::default()) {
                Ok(Packet::Whole(_)) => "whole".to_string(),
                Ok(Packet::Fragment(_)) => "fragment".to_string(),
                Err(error) => format!("{error:?}"),
            };
        *outcomes.entry(outcome).or_insert(0) += 1;
    }
    // The mutations below start from frames that reach the innermost layer:
    // the seeds decode to packets or fragments, and the rest is ICMP or ARP,
    // never a truncation or a malformed header.
    eprintln!("{outcomes:?}");
    assert!(
        outcomes
            .keys()
            .all(|k| !k.starts_with("Truncated") && !k.starts_with("Malformed")),
        "{outcomes:?}"
    );
    assert!(outcomes["whole"] >= 400, "{outcomes:?}");
    assert!(outcomes["fragment"] >= 50, "{outcomes:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mutated_tunnel_frames_never_panic(
        picks in proptest::collection::vec((any::<prop::sample::Index>(), proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6), any::<Option<prop::sample::Index>>()), 1..60)
    ) {
        static SEEDS: std::sync::OnceLock<Vec<(i32, Vec<u8>)>> = std::sync::OnceLock::new();
        let seeds = SEEDS.get_or_init(|| {
            support::corpus_or_skip("mutated_tunnel_frames_never_panic")
                .map(|corpus| seeds_from(&corpus))
                .unwrap_or_default()
        });
        if seeds.is_empty() {
            return Ok(());
        }
        let mut harness = Harness::new();
        for (pick, edits, cut) in picks {
            let (link, frame) = pick.get(seeds);
            let mut bytes = frame.clone();
            for (at, value) in edits {
                let i = at.index(bytes.len().max(1));
                if let Some(b) = bytes.get_mut(i) {
                    *b = value;
                }
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len().max(1)));
            }
            harness.run(*link, &bytes);
        }
    }

    /// A flood of IPv4 fragments with random ids, offsets, flags and lengths
    /// inside VXLAN: the table stays under its caps and nothing panics.
    #[test]
    fn fragment_flood_inside_a_tunnel_stays_bounded(
        pieces in proptest::collection::vec((0u16..8, 0u16..8192, any::<bool>(), 0usize..1500), 1..400)
    ) {
        let mut harness = Harness::new();
        for (id, offset, more, len) in pieces {
            let inner = ipv4_fragment(id, offset, more, len);
            let frame = vxlan(&inner, 77);
            harness.run(1, &frame);
        }
    }
}

fn ipv4_fragment(id: u16, offset: u16, more: bool, len: usize) -> Vec<u8> {
    let mut header = etherparse::Ipv4Header::new(
        len as u16,
        64,
        etherparse::IpNumber::UDP,
        [10, 0, 0, 1],
        [10, 0, 0, 2],
    )
    .expect("header");
    header.identification = id;
    header.more_fragments = more;
    header.fragment_offset = etherparse::IpFragOffset::try_new(offset).expect("offset");
    header.header_checksum = header.calc_header_checksum();
    let mut out = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    header.write(&mut out).expect("write");
    out.extend(std::iter::repeat_n(0xab, len));
    out
}

fn vxlan(inner: &[u8], vni: u32) -> Vec<u8> {
    let mut payload = vec![0x08, 0, 0, 0];
    payload.extend_from_slice(&(vni << 8).to_be_bytes());
    payload.extend_from_slice(inner);
    let builder = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 3], [2, 0, 0, 0, 0, 4])
        .ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
        .udp(40000, 4789);
    let mut out = Vec::new();
    builder.write(&mut out, &payload).expect("build");
    out
}
