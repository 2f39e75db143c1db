//! Per-worker connection tracking: flow table, TCP reassembly, TLS hand-off, bypass.
//!
//! A worker hands every packet of its shard to [`FlowTable::process`]. New flows
//! start small (`Opening`); the first payload allocates the reassemblers and a
//! [`tls::Session`]; when the handshake is over, or the flow is clearly not TLS,
//! the flow drops all of that and turns to `Bypass`, where a packet costs one
//! lookup and two stores. Finished sessions leave as [`FlowEvent`]s.
//! Bounds: [`FlowLimits`] (flows per worker, idle timeout in packet time,
//! out-of-order queue, handshake bytes via [`tls::TlsLimits`]).

mod datagram;
mod key;
pub mod reassembly;

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use datagram::DatagramTracker;
pub use datagram::{may_carry_tls, DatagramFacts, DatagramProtocol};
pub use key::{Endpoint, FlowKey};
use reassembly::{PushOutcome, Reassembler, ReassemblyCounters, ReassemblyLimits};

use crate::decode::{EncapPath, TcpSegment, Transport};
use crate::time::PacketTime;
use crate::tls::plaintext::{self, PlaintextProtocol};
use crate::tls::{
    self, CacheLimits, CertificateCache, Direction, EndReason, HandshakeSummary, Session,
    TlsLimits, Verdict,
};

pub use tls::keylog;

/// Packets after which a plaintext flow is reported even if its heads are not full.
const MAX_PLAINTEXT_PACKETS: u64 = 24;

/// Caps and timeouts for one worker's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowLimits {
    /// Flows tracked per worker; at the cap the oldest flow is evicted (and
    /// reported if it was mid-handshake).
    pub max_flows: usize,
    /// A flow with no packet for this long (packet time) is closed.
    pub idle_timeout: Duration,
    pub reassembly: ReassemblyLimits,
    pub tls: TlsLimits,
    /// Bytes of each side kept from a flow that turned out not to be TLS, for
    /// plaintext classification downstream; 0 turns plaintext events off.
    pub plaintext_head_bytes: usize,
    /// The worker's certificate cache (each distinct certificate summarised once).
    pub certificate_cache: CacheLimits,
}

impl Default for FlowLimits {
    fn default() -> Self {
        Self {
            max_flows: 128 * 1024,
            idle_timeout: Duration::from_secs(120),
            reassembly: ReassemblyLimits::default(),
            tls: TlsLimits::default(),
            plaintext_head_bytes: 1024,
            certificate_cache: CacheLimits::default(),
        }
    }
}

/// Per-worker flow counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub packets_tracked: u64,
    pub packets_bypassed: u64,
    pub flows_created: u64,
    pub flows_evicted: u64,
    pub flows_timed_out: u64,
    pub flows_closed: u64,
    pub flows_not_tls: u64,
    pub sessions_emitted: u64,
    /// UDP datagrams of no tracked flow that were neither QUIC nor DTLS.
    pub datagrams_ignored: u64,
    /// Exact copies of the previous packets of a flow (SPAN ingress + egress).
    pub duplicates: u64,
    pub reassembly: ReassemblyCounters,
    pub tls: tls::Counters,
    pub quic: tls::quic::QuicCounters,
    pub dtls: tls::dtls::DtlsCounters,
    pub certificate_cache: tls::CertificateCacheCounters,
}

impl Counters {
    pub fn add(&mut self, other: &Counters) {
        self.packets_tracked += other.packets_tracked;
        self.packets_bypassed += other.packets_bypassed;
        self.flows_created += other.flows_created;
        self.flows_evicted += other.flows_evicted;
        self.flows_timed_out += other.flows_timed_out;
        self.flows_closed += other.flows_closed;
        self.flows_not_tls += other.flows_not_tls;
        self.sessions_emitted += other.sessions_emitted;
        self.datagrams_ignored += other.datagrams_ignored;
        self.duplicates += other.duplicates;
        self.reassembly.add(&other.reassembly);
        self.tls.add(&other.tls);
        self.quic.add(&other.quic);
        self.dtls.add(&other.dtls);
        self.certificate_cache.add(&other.certificate_cache);
    }
}

/// One packet as the flow layer needs it (already decoded by the reader).
#[derive(Debug, Clone, Copy)]
pub struct FlowPacket<'a> {
    /// Position in the input, for deterministic output order.
    pub index: u64,
    pub time: PacketTime,
    pub key: FlowKey,
    pub source: Endpoint,
    pub destination: Endpoint,
    pub transport: Transport,
    pub tcp: TcpSegment,
    pub encap: &'a EncapPath,
    pub payload: &'a [u8],
}

/// Emission order: input position of the packet (or sweep) that ended the
/// session, then the flow's first packet. The same for any number of workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EmitOrder {
    pub at: u64,
    pub flow_start: u64,
}

/// What a flow turned out to carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowContent {
    Tls(Box<HandshakeSummary>),
    /// Not TLS; the first bytes each side sent (up to `plaintext_head_bytes`).
    Plaintext {
        client_head: Vec<u8>,
        server_head: Vec<u8>,
    },
}

/// A finished session, ready for policy and output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowEvent {
    pub order: EmitOrder,
    pub client: Endpoint,
    pub server: Endpoint,
    pub transport: Transport,
    pub encap: EncapPath,
    pub first_seen: PacketTime,
    pub last_seen: PacketTime,
    /// Packets and payload bytes [client→server, server→client] up to emission.
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    pub syn_seen: bool,
    pub content: FlowContent,
    /// TLS began after this plaintext protocol's upgrade (STARTTLS and the like).
    pub starttls: Option<PlaintextProtocol>,
    /// QUIC or DTLS facts of a UDP session.
    pub datagram: Option<Box<DatagramFacts>>,
    pub end: EndReason,
}

/// Reassembly and TLS state of a flow still in its handshake.
#[derive(Debug)]
struct Tracker {
    streams: [Reassembler; 2],
    session: Session,
    fin: [bool; 2],
    heads: [Vec<u8>; 2],
    /// Not TLS: only the opening bytes are still being collected.
    plaintext: bool,
    /// The plaintext protocol that preceded TLS on this connection.
    preamble: Option<PlaintextProtocol>,
}

#[derive(Debug)]
enum FlowState {
    /// Seen, no payload yet: the SYN's sequence numbers only.
    Opening {
        isn: [Option<u32>; 2],
    },
    Tracking(Box<Tracker>),
    /// A UDP flow carrying QUIC or DTLS, in its handshake.
    Datagram(Box<DatagramTracker>),
    /// Done, cut off or not TLS: only timestamps move.
    Bypass,
}

#[derive(Debug)]
struct Flow {
    /// The side that sent the SYN (or, mid-stream, the first packet).
    initiator: Endpoint,
    responder: Endpoint,
    start_index: u64,
    first_seen: PacketTime,
    last_seen: PacketTime,
    encap: EncapPath,
    transport: Transport,
    syn_seen: bool,
    packets: [u64; 2],
    bytes: [u64; 2],
    /// Signatures of the last two packets each way, for duplicate suppression.
    recent: [[u64; 2]; 2],
    state: FlowState,
}

/// One worker's flows.
pub struct FlowTable {
    flows: HashMap<FlowKey, Flow, ahash::RandomState>,
    /// Creation order for eviction; entries of flows already gone are skipped lazily.
    order: VecDeque<(FlowKey, u64)>,
    limits: FlowLimits,
    counters: Counters,
    certificates: CertificateCache,
    /// `--keylog` secrets handed to each TCP session.
    keylog: Option<std::sync::Arc<tls::keylog::KeyLogStore>>,
}

impl FlowTable {
    pub fn new(limits: FlowLimits) -> Self {
        Self {
            flows: HashMap::with_hasher(ahash::RandomState::new()),
            order: VecDeque::new(),
            limits,
            counters: Counters::default(),
            certificates: CertificateCache::new(limits.certificate_cache),
            keylog: None,
        }
    }

    /// TLS 1.3 sessions whose secrets are in `keylog` are decrypted.
    pub fn with_keylog(mut self, keylog: Option<std::sync::Arc<tls::keylog::KeyLogStore>>) -> Self {
        self.keylog = keylog;
        self
    }

    pub fn counters(&self) -> Counters {
        let mut counters = self.counters.clone();
        counters.certificate_cache = self.certificates.counters().clone();
        counters
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Handles one packet; finished sessions are appended to `events`.
    pub fn process(&mut self, packet: &FlowPacket<'_>, events: &mut Vec<FlowEvent>) {
        let limits = self.limits;
        if let Some(flow) = self.flows.get_mut(&packet.key) {
            // A SPAN session that mirrors both ingress and egress shows each
            // packet twice; the second copy is counted and ignored.
            let side = usize::from(packet.source != flow.initiator);
            let signature = copy_signature(packet);
            if flow.recent[side].contains(&signature) {
                self.counters.duplicates += 1;
                return;
            }
            flow.recent[side] = [signature, flow.recent[side][0]];
            // The bypass fast path: no allocation, no copy.
            if let FlowState::Bypass = flow.state {
                let idle = packet.time.since(flow.last_seen) > limits.idle_timeout;
                let fresh_syn = packet.tcp.flags.syn() && !packet.tcp.flags.ack();
                if !idle && !fresh_syn {
                    flow.last_seen = packet.time;
                    self.counters.packets_bypassed += 1;
                    return;
                }
            }
        }
        self.process_slow(packet, events);
    }

    fn process_slow(&mut self, packet: &FlowPacket<'_>, events: &mut Vec<FlowEvent>) {
        let limits = self.limits;
        self.expire(packet, events);
        if packet.transport == Transport::Udp {
            self.process_datagram(packet, events);
            return;
        }
        if !self.flows.contains_key(&packet.key) {
            let syn = packet.tcp.flags.syn();
            let (initiator, responder) = if syn && packet.tcp.flags.ack() {
                (packet.destination, packet.source)
            } else {
                (packet.source, packet.destination)
            };
            self.insert(
                packet,
                initiator,
                responder,
                FlowState::Opening { isn: [None; 2] },
                events,
            );
        }
        let Some(flow) = self.flows.get_mut(&packet.key) else {
            return;
        };
        // SYN on a finished flow from the same initiator: port reuse, start over.
        if matches!(flow.state, FlowState::Bypass) {
            let fresh_syn = packet.tcp.flags.syn()
                && !packet.tcp.flags.ack()
                && packet.source == flow.initiator;
            if !fresh_syn {
                flow.last_seen = packet.time;
                self.counters.packets_bypassed += 1;
                return;
            }
            flow.start_index = packet.index;
            flow.first_seen = packet.time;
            flow.packets = [0; 2];
            flow.bytes = [0; 2];
            flow.state = FlowState::Opening { isn: [None; 2] };
            self.counters.flows_created += 1;
            self.order.push_back((packet.key, packet.index));
        }
        self.counters.packets_tracked += 1;
        let direction = if packet.source == flow.initiator {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let side = direction.index();
        flow.last_seen = packet.time;
        flow.packets[side] += 1;
        flow.bytes[side] += packet.payload.len() as u64;
        if packet.tcp.flags.syn() {
            flow.syn_seen = true;
        }

        if let FlowState::Opening { isn } = &mut flow.state {
            if packet.tcp.flags.syn() {
                isn[side] = Some(packet.tcp.seq);
            }
            if packet.tcp.flags.rst() || packet.payload.is_empty() {
                if packet.tcp.flags.rst() || (packet.tcp.flags.fin() && flow.packets[side ^ 1] > 0)
                {
                    // Closed without a byte of payload: nothing to report.
                    flow.state = FlowState::Bypass;
                    self.counters.flows_closed += 1;
                }
                return;
            }
            let mut tracker = Tracker {
                streams: [Reassembler::default(), Reassembler::default()],
                session: Session::new(limits.tls).with_keylog(self.keylog.clone()),
                fin: [false; 2],
                heads: [Vec::new(), Vec::new()],
                plaintext: false,
                preamble: None,
            };
            for (stream, seq) in tracker.streams.iter_mut().zip(*isn) {
                if let Some(seq) = seq {
                    stream.on_syn(seq);
                }
            }
            flow.state = FlowState::Tracking(Box::new(tracker));
        }

        let FlowState::Tracking(tracker) = &mut flow.state else {
            return;
        };
        let Tracker {
            streams,
            session,
            fin,
            heads,
            plaintext,
            preamble,
        } = &mut **tracker;
        let time = packet.time;
        let mut verdict = Verdict::NeedMore;
        if packet.tcp.flags.syn() {
            streams[side].on_syn(packet.tcp.seq);
        }
        let counters = &mut self.counters;
        let certificates = &mut self.certificates;
        let keylog = &self.keylog;
        let outcome = streams[side].push(
            packet.tcp.seq,
            packet.payload,
            &limits.reassembly,
            &mut counters.reassembly,
            |bytes| {
                if limits.plaintext_head_bytes > 0
                    && heads[side].len() < limits.plaintext_head_bytes
                {
                    let take = (limits.plaintext_head_bytes - heads[side].len()).min(bytes.len());
                    heads[side].extend_from_slice(&bytes[..take]);
                }
                if verdict != Verdict::NeedMore {
                    return;
                }
                if *plaintext {
                    // TLS after a plaintext preamble (STARTTLS, SSLRequest,
                    // CONNECT, …): a ClientHello starts a fresh session there.
                    let Some(at) = plaintext::find_client_hello(bytes) else {
                        return;
                    };
                    *preamble = Some(plaintext::classify(&heads[0], &heads[1]).protocol);
                    *plaintext = false;
                    *session = Session::new(limits.tls).with_keylog(keylog.clone());
                    verdict = session.feed(
                        direction,
                        &bytes[at..],
                        time,
                        &mut counters.tls,
                        certificates,
                    );
                    return;
                }
                verdict = session.feed(direction, bytes, time, &mut counters.tls, certificates);
            },
        );
        if packet.tcp.flags.fin() {
            fin[side] = true;
        }
        if verdict == Verdict::NotTls {
            self.counters.flows_not_tls += 1;
            if limits.plaintext_head_bytes > 0 {
                // Keep the opening of each side for plaintext findings.
                *plaintext = true;
                verdict = Verdict::NeedMore;
            }
        }
        if *plaintext {
            let full = |head: &Vec<u8>| head.len() >= limits.plaintext_head_bytes;
            let enough = (full(&heads[0]) || full(&heads[1]))
                && !heads[0].is_empty()
                && !heads[1].is_empty();
            if enough || flow.packets[0] + flow.packets[1] > MAX_PLAINTEXT_PACKETS {
                verdict = Verdict::Done(EndReason::HandshakeDone);
            }
        }
        let end = match verdict {
            Verdict::Done(reason) => Some(reason),
            Verdict::NotTls | Verdict::MidStream => {
                if verdict == Verdict::MidStream {
                    self.counters.flows_not_tls += 1;
                }
                Some(EndReason::HandshakeDone)
            }
            Verdict::NeedMore if outcome == PushOutcome::Dropped => Some(EndReason::Truncated),
            Verdict::NeedMore if packet.tcp.flags.rst() => Some(EndReason::ConnectionReset),
            Verdict::NeedMore if fin[0] && fin[1] => Some(EndReason::ConnectionClosed),
            Verdict::NeedMore => None,
        };
        if let Some(reason) = end {
            if matches!(
                reason,
                EndReason::ConnectionReset | EndReason::ConnectionClosed
            ) {
                self.counters.flows_closed += 1;
            }
            emit(flow, reason, packet.index, &mut self.counters, events);
        }
    }

    /// A flow idle past the timeout ends before this packet is considered,
    /// so the result does not depend on when a sweep happened to run.
    fn expire(&mut self, packet: &FlowPacket<'_>, events: &mut Vec<FlowEvent>) {
        let expired = self
            .flows
            .get(&packet.key)
            .is_some_and(|flow| packet.time.since(flow.last_seen) > self.limits.idle_timeout);
        if expired {
            if let Some(flow) = self.flows.remove(&packet.key) {
                self.counters.flows_timed_out += 1;
                finish(
                    flow,
                    EndReason::IdleTimeout,
                    packet.index,
                    &mut self.counters,
                    events,
                );
            }
        }
    }

    fn insert(
        &mut self,
        packet: &FlowPacket<'_>,
        initiator: Endpoint,
        responder: Endpoint,
        state: FlowState,
        events: &mut Vec<FlowEvent>,
    ) {
        if self.flows.len() >= self.limits.max_flows {
            self.evict_oldest(packet.index, events);
        }
        self.counters.flows_created += 1;
        self.order.push_back((packet.key, packet.index));
        if self.order.len() > 2 * self.flows.len() + 1024 {
            let flows = &self.flows;
            self.order
                .retain(|(key, start)| flows.get(key).is_some_and(|f| f.start_index == *start));
        }
        self.flows.insert(
            packet.key,
            Flow {
                initiator,
                responder,
                start_index: packet.index,
                first_seen: packet.time,
                last_seen: packet.time,
                encap: *packet.encap,
                transport: packet.transport,
                syn_seen: packet.tcp.flags.syn(),
                packets: [0; 2],
                bytes: [0; 2],
                recent: [[copy_signature(packet), 0], [0; 2]],
                state,
            },
        );
    }

    /// A UDP datagram: QUIC or DTLS by content, anything else ignored.
    fn process_datagram(&mut self, packet: &FlowPacket<'_>, events: &mut Vec<FlowEvent>) {
        if !self.flows.contains_key(&packet.key) {
            let Some(protocol) = datagram::detect(packet.payload) else {
                self.counters.datagrams_ignored += 1;
                return;
            };
            let tracker = DatagramTracker::new(protocol, self.limits.tls);
            self.insert(
                packet,
                packet.source,
                packet.destination,
                FlowState::Datagram(Box::new(tracker)),
                events,
            );
        }
        let Some(flow) = self.flows.get_mut(&packet.key) else {
            return;
        };
        flow.last_seen = packet.time;
        let FlowState::Datagram(tracker) = &mut flow.state else {
            self.counters.packets_bypassed += 1;
            return;
        };
        self.counters.packets_tracked += 1;
        let direction = if packet.source == flow.initiator {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        flow.packets[direction.index()] += 1;
        flow.bytes[direction.index()] += packet.payload.len() as u64;
        let verdict = tracker.on_datagram(
            direction,
            packet.payload,
            packet.time,
            &mut self.counters,
            &mut self.certificates,
        );
        let end = match verdict {
            Verdict::NeedMore => None,
            Verdict::Done(reason) => Some(reason),
            Verdict::NotTls | Verdict::MidStream => Some(EndReason::HandshakeDone),
        };
        if let Some(reason) = end {
            emit(flow, reason, packet.index, &mut self.counters, events);
        }
    }

    fn evict_oldest(&mut self, at: u64, events: &mut Vec<FlowEvent>) {
        while let Some((key, start)) = self.order.pop_front() {
            let live = self
                .flows
                .get(&key)
                .is_some_and(|flow| flow.start_index == start);
            if live {
                if let Some(flow) = self.flows.remove(&key) {
                    self.counters.flows_evicted += 1;
                    finish(flow, EndReason::Evicted, at, &mut self.counters, events);
                }
                return;
            }
        }
    }

    /// Closes flows idle since before `now - idle_timeout`; `at` orders their records.
    pub fn sweep(&mut self, now: PacketTime, at: u64, events: &mut Vec<FlowEvent>) {
        let timeout = self.limits.idle_timeout;
        let counters = &mut self.counters;
        let mut expired = Vec::new();
        self.flows.retain(|_, flow| {
            if now.since(flow.last_seen) > timeout {
                let flow = std::mem::replace(flow, placeholder(flow));
                expired.push(flow);
                false
            } else {
                true
            }
        });
        // Sort so the records of one sweep come out in a fixed order.
        expired.sort_by_key(|flow| flow.start_index);
        for flow in expired {
            counters.flows_timed_out += 1;
            finish(flow, EndReason::IdleTimeout, at, counters, events);
        }
    }

    /// Ends every flow (end of input or shutdown).
    pub fn drain(&mut self, at: u64, events: &mut Vec<FlowEvent>) {
        let mut flows: Vec<Flow> = self.flows.drain().map(|(_, flow)| flow).collect();
        flows.sort_by_key(|flow| flow.start_index);
        self.order.clear();
        for flow in flows {
            finish(
                flow,
                EndReason::EndOfCapture,
                at,
                &mut self.counters,
                events,
            );
        }
    }
}

fn placeholder(flow: &Flow) -> Flow {
    Flow {
        initiator: flow.initiator,
        responder: flow.responder,
        start_index: flow.start_index,
        first_seen: flow.first_seen,
        last_seen: flow.last_seen,
        encap: flow.encap,
        transport: flow.transport,
        syn_seen: flow.syn_seen,
        packets: flow.packets,
        bytes: flow.bytes,
        recent: flow.recent,
        state: FlowState::Bypass,
    }
}

/// What identifies one copy of a packet within its flow and direction: IP id,
/// transport checksum, sequence numbers, flags and length. Never 0 (an empty slot).
fn copy_signature(packet: &FlowPacket<'_>) -> u64 {
    let tcp = &packet.tcp;
    let mut a = u64::from(tcp.ident) << 32 | u64::from(tcp.seq);
    let mut b =
        u64::from(tcp.ack) << 32 | (packet.payload.len() as u64) << 8 | u64::from(tcp.flags.0);
    if packet.transport == Transport::Udp {
        // No sequence numbers, and a capture on the sending host carries
        // checksum-offload placeholders (equal for equal lengths): take
        // payload bytes where QUIC and DTLS packets differ (packet number,
        // record sequence, AEAD tag).
        let word = |bytes: Option<&[u8]>| {
            bytes
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_le_bytes)
        };
        let payload = packet.payload;
        a ^= word(payload.get(3..11));
        b ^= word(
            payload
                .len()
                .checked_sub(8)
                .and_then(|at| payload.get(at..)),
        );
    }
    (a ^ b.rotate_left(29)).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1
}

/// Emits the flow's session if it has one, then leaves it bypassed.
fn emit(
    flow: &mut Flow,
    reason: EndReason,
    at: u64,
    counters: &mut Counters,
    events: &mut Vec<FlowEvent>,
) {
    let state = std::mem::replace(&mut flow.state, FlowState::Bypass);
    let tracker = match state {
        FlowState::Tracking(tracker) => *tracker,
        FlowState::Datagram(tracker) => {
            if !tracker.session.is_tls() && !tracker.has_facts() {
                return;
            }
            let facts = tracker.facts();
            let (summary, reason) = tracker.session.finish(reason);
            let swapped = summary.roles_swapped;
            let content = FlowContent::Tls(Box::new(summary));
            push_event(
                flow,
                swapped,
                content,
                None,
                Some(Box::new(facts)),
                reason,
                at,
                counters,
                events,
            );
            return;
        }
        _ => return,
    };
    let starttls = tracker.preamble;
    let is_tls = tracker.session.is_tls();
    let (content, swapped, reason) = if is_tls {
        let (summary, reason) = tracker.session.finish(reason);
        let swapped = summary.roles_swapped;
        (FlowContent::Tls(Box::new(summary)), swapped, reason)
    } else if tracker.plaintext {
        let [client_head, server_head] = tracker.heads;
        (
            FlowContent::Plaintext {
                client_head,
                server_head,
            },
            false,
            reason,
        )
    } else {
        return;
    };
    push_event(
        flow, swapped, content, starttls, None, reason, at, counters, events,
    );
}

#[allow(clippy::too_many_arguments)]
fn push_event(
    flow: &Flow,
    swapped: bool,
    content: FlowContent,
    starttls: Option<PlaintextProtocol>,
    datagram: Option<Box<DatagramFacts>>,
    reason: EndReason,
    at: u64,
    counters: &mut Counters,
    events: &mut Vec<FlowEvent>,
) {
    let (client, server, packets, bytes) = if swapped {
        (
            flow.responder,
            flow.initiator,
            [flow.packets[1], flow.packets[0]],
            [flow.bytes[1], flow.bytes[0]],
        )
    } else {
        (flow.initiator, flow.responder, flow.packets, flow.bytes)
    };
    counters.sessions_emitted += 1;
    events.push(FlowEvent {
        order: EmitOrder {
            at,
            flow_start: flow.start_index,
        },
        client,
        server,
        transport: flow.transport,
        encap: flow.encap,
        first_seen: flow.first_seen,
        last_seen: flow.last_seen,
        packets,
        bytes,
        syn_seen: flow.syn_seen,
        content,
        starttls,
        datagram,
        end: reason,
    });
}

fn finish(
    mut flow: Flow,
    reason: EndReason,
    at: u64,
    counters: &mut Counters,
    events: &mut Vec<FlowEvent>,
) {
    emit(&mut flow, reason, at, counters, events);
}
