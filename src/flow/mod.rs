//! Per-worker connection tracking: flow table, TCP reassembly, TLS hand-off, bypass.
//!
//! A worker hands every packet of its shard to [`FlowTable::process`]. New flows
//! start small (`Opening`); the first payload allocates the reassemblers and a
//! [`tls::Session`]; when the handshake is over, or the flow is clearly not TLS,
//! the flow drops all of that and turns to `Bypass`, where a packet costs one
//! lookup and two stores. Finished sessions leave as [`FlowEvent`]s.
//! Bounds: [`FlowLimits`] (flows per worker, idle timeout in packet time,
//! out-of-order queue, handshake bytes via [`tls::TlsLimits`]) and the
//! shared byte budget of [`crate::memory`]: every flow entry, tracker and
//! cached certificate is charged to the worker's [`MemoryAccount`]. Near the
//! cap (emergency mode) idle flows time out sooner and stalled handshakes
//! are shed oldest first; at the cap new flows are refused.

pub mod bypass;
mod datagram;
mod key;
pub mod reassembly;

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

pub use bypass::{BypassFilter, Notice};
use datagram::DatagramTracker;
pub use datagram::{may_carry_tls, DatagramFacts, DatagramProtocol};
pub use key::{Endpoint, FlowKey};
use reassembly::{PushOutcome, Reassembler, ReassemblyCounters, ReassemblyLimits};

use crate::decode::{EncapPath, TcpSegment, Transport};
use crate::memory::{MemoryAccount, MemoryBudget};
use crate::time::PacketTime;
use crate::tls::plaintext::{self, PlaintextProtocol};
use crate::tls::{
    self, CacheLimits, CertificateCache, Direction, EndReason, HandshakeSummary, Session,
    TlsLimits, Verdict,
};

pub use tls::keylog;

/// Packets after which a plaintext flow is reported even if its heads are not full.
const MAX_PLAINTEXT_PACKETS: u64 = 24;

/// What one flow entry costs the memory cap: its slot in the table (key,
/// value, control byte) at the worst moment, while a table at 7/8 load
/// doubles (old and new allocations: 8/7 + 16/7 slots per flow), plus the
/// creation-order queue's entry, which may hold a stale copy and doubles too.
pub const FLOW_ENTRY_BYTES: usize = (std::mem::size_of::<(FlowKey, Flow)>() + 1) * 24 / 7
    + 3 * std::mem::size_of::<(FlowKey, u64)>();

/// Trackers are counted from their types' sizes and buffer capacities; the
/// allocator's headers, size-class rounding and fragmentation come on top.
/// Measured with `scripts/memcap.sh` (peak RSS against bytes charged on the
/// ClientHello, certificate and QUIC floods): about 40 %.
const ALLOCATOR_OVERHEAD_PERCENT: usize = 140;

/// Timeouts in emergency mode (packet time), Suricata-style: a flow that has
/// only opened, a handshake that stopped progressing, and a finished flow
/// kept for its bypass entry.
pub const EMERGENCY_OPENING_TIMEOUT: Duration = Duration::from_secs(2);
pub const EMERGENCY_STALLED_TIMEOUT: Duration = Duration::from_secs(5);
pub const EMERGENCY_BYPASS_TIMEOUT: Duration = Duration::from_secs(10);
/// A handshake with no packet for this long may be shed at the cap. Short:
/// a flood fills the cap in well under a second, and a handshake in flight
/// between two services moves every round trip (a few ms east-west).
const STALLED_AGE: Duration = Duration::from_millis(50);
/// Creation-order entries looked at per attempt to shed a stalled flow.
const SHED_SCAN: usize = 64;
/// Entries of departed flows dropped at most per attempt.
const SHED_STALE_SCAN: usize = 4096;
/// Stalled flows shed at most to make room for one charge: a server flight
/// arriving may need the room of a few dozen half-open flows (about 1.2 KB
/// each) or several stalled ClientHellos.
const SHED_PER_CHARGE: usize = 64;

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
    /// Flow creations refused at the memory cap (a refused flow's later
    /// packets are refused, and counted, again).
    pub memcap_refused_flows: u64,
    /// Unfinished handshakes dropped to stay under the memory cap (shed
    /// while stalled, or refused room to grow); each is still reported,
    /// with `end_reason: memory_pressure`, if it had begun TLS.
    pub handshakes_dropped_by_pressure: u64,
    /// Flows closed by the shorter emergency-mode timeouts.
    pub emergency_timeouts: u64,
    /// Packets whose payload the reader withheld (the flow was declared
    /// finished) that arrived after the flow left the table: ignored.
    pub withheld_untracked: u64,
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
        self.memcap_refused_flows += other.memcap_refused_flows;
        self.handshakes_dropped_by_pressure += other.handshakes_dropped_by_pressure;
        self.emergency_timeouts += other.emergency_timeouts;
        self.withheld_untracked += other.withheld_untracked;
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
    /// The length of a payload the reader did not copy (see [`bypass`]);
    /// 0 when `payload` is all there was.
    pub withheld: u32,
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
    /// The reader was told this finished flow's payloads are not needed.
    notified: bool,
    packets: [u64; 2],
    bytes: [u64; 2],
    /// Signatures of the last two packets each way, for duplicate suppression.
    recent: [[u64; 2]; 2],
    /// Bytes charged for the state's tracker (beyond the entry itself).
    charged: u32,
    state: FlowState,
}

impl Flow {
    /// What the state holds beyond the entry.
    fn footprint(&self) -> usize {
        let counted = match &self.state {
            FlowState::Tracking(tracker) => tracker.footprint(),
            FlowState::Datagram(tracker) => tracker.footprint(),
            FlowState::Opening { .. } | FlowState::Bypass => 0,
        };
        counted * ALLOCATOR_OVERHEAD_PERCENT / 100
    }

    fn unfinished(&self) -> bool {
        !matches!(self.state, FlowState::Bypass)
    }
}

impl Tracker {
    fn footprint(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .streams
                .iter()
                .map(Reassembler::heap_bytes)
                .sum::<usize>()
            + self.session.heap_bytes()
            + self.heads[0].capacity()
            + self.heads[1].capacity()
    }
}

/// One worker's flows.
pub struct FlowTable {
    /// Keys carry their hash (computed by the reader): not hashed again here.
    flows: HashMap<FlowKey, Flow, crate::prehashed::Prehashed>,
    /// Creation order for eviction; entries of flows already gone are skipped lazily.
    order: VecDeque<(FlowKey, u64)>,
    limits: FlowLimits,
    counters: Counters,
    certificates: CertificateCache,
    memory: MemoryAccount,
    /// Bytes charged for the certificate cache.
    cache_charged: usize,
    /// `--keylog` secrets handed to each TCP session.
    keylog: Option<std::sync::Arc<tls::keylog::KeyLogStore>>,
    /// Finished flows the reader may stop copying payloads for.
    notices: Vec<Notice>,
}

impl FlowTable {
    /// A table with no memory cap (tools and tests).
    pub fn new(limits: FlowLimits) -> Self {
        Self::with_memory(limits, MemoryAccount::new(MemoryBudget::unlimited()))
    }

    /// A table charging `memory` for everything it holds.
    pub fn with_memory(limits: FlowLimits, memory: MemoryAccount) -> Self {
        Self {
            flows: HashMap::with_hasher(crate::prehashed::Prehashed),
            order: VecDeque::new(),
            limits,
            counters: Counters::default(),
            certificates: CertificateCache::new(limits.certificate_cache),
            memory,
            cache_charged: 0,
            keylog: None,
            notices: Vec::with_capacity(256),
        }
    }

    /// TLS 1.3 sessions whose secrets are in `keylog` are decrypted.
    pub fn with_keylog(mut self, keylog: Option<std::sync::Arc<tls::keylog::KeyLogStore>>) -> Self {
        self.keylog = keylog;
        self
    }

    /// Whether the shared budget is in emergency mode.
    pub fn in_emergency(&self) -> bool {
        self.memory.budget().is_emergency()
    }

    /// The shared budget this table charges.
    pub fn budget(&self) -> &MemoryBudget {
        self.memory.budget()
    }

    /// Bytes this table has charged to the budget.
    pub fn charged_bytes(&self) -> usize {
        self.memory.charged()
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
                    if !flow.notified
                        && !packet.payload.is_empty()
                        && packet.transport == Transport::Tcp
                    {
                        flow.notified = true;
                        self.notices.push(Notice {
                            key: packet.key,
                            at: packet.index,
                        });
                    }
                    return;
                }
            }
        }
        if packet.withheld > 0 {
            // A flow this worker declared finished and has since let go
            // (timed out, evicted): its record is written, its bytes are
            // not needed (and were not copied).
            self.expire(packet, events);
            self.counters.withheld_untracked += 1;
            return;
        }
        self.process_slow(packet, events);
    }

    /// Moves the notices for the reader (see [`bypass`]) into `into`.
    pub fn take_notices(&mut self, into: &mut Vec<Notice>) {
        into.append(&mut self.notices);
    }

    fn process_slow(&mut self, packet: &FlowPacket<'_>, events: &mut Vec<FlowEvent>) {
        self.expire(packet, events);
        if packet.transport == Transport::Udp {
            self.process_datagram(packet, events);
        } else {
            self.process_tcp(packet, events);
        }
        self.settle(packet, events);
    }

    fn process_tcp(&mut self, packet: &FlowPacket<'_>, events: &mut Vec<FlowEvent>) {
        let limits = self.limits;
        if !self.flows.contains_key(&packet.key) {
            let syn = packet.tcp.flags.syn();
            let (initiator, responder) = if syn && packet.tcp.flags.ack() {
                (packet.destination, packet.source)
            } else {
                (packet.source, packet.destination)
            };
            let opening = FlowState::Opening { isn: [None; 2] };
            if !self.insert(packet, initiator, responder, opening, events) {
                return;
            }
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
            flow.notified = false;
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
                // Heads serve plaintext classification: once the flow is
                // known to be TLS they are not needed (nor kept).
                if limits.plaintext_head_bytes > 0
                    && (*plaintext || !session.is_tls())
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
        if !*plaintext && session.is_tls() && heads.iter().any(|h| h.capacity() > 0) {
            *heads = [Vec::new(), Vec::new()];
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
                self.release(&flow);
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
    ) -> bool {
        if self.flows.len() >= self.limits.max_flows {
            self.evict_oldest(packet.index, events);
        }
        // At the cap, room comes only from a stalled handshake; finished
        // flows (bypass entries) are not given up for a newcomer.
        if !self.make_room(FLOW_ENTRY_BYTES, packet, events) {
            self.counters.memcap_refused_flows += 1;
            return false;
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
                notified: false,
                packets: [0; 2],
                bytes: [0; 2],
                recent: [[copy_signature(packet), 0], [0; 2]],
                charged: 0,
                state,
            },
        );
        true
    }

    /// Gives back what a flow leaving the table had charged.
    fn release(&mut self, flow: &Flow) {
        self.memory
            .uncharge(FLOW_ENTRY_BYTES + flow.charged as usize);
    }

    /// After a packet: charges the growth (or returns the shrinkage) of its
    /// flow's tracker and of the certificate cache. Growth that does not fit
    /// even after shedding a stalled flow ends this handshake instead.
    fn settle(&mut self, packet: &FlowPacket<'_>, events: &mut Vec<FlowEvent>) {
        let cache = self.certificates.bytes();
        if cache != self.cache_charged {
            // The cache is bounded by its own limits; its bytes are in use.
            if cache > self.cache_charged {
                self.memory.force_charge(cache - self.cache_charged);
            } else {
                self.memory.uncharge(self.cache_charged - cache);
            }
            self.cache_charged = cache;
        }
        let Some(flow) = self.flows.get_mut(&packet.key) else {
            return;
        };
        let old = flow.charged as usize;
        let new = flow.footprint();
        if new <= old {
            if new < old {
                flow.charged = new as u32;
                self.memory.uncharge(old - new);
            }
            return;
        }
        let need = new - old;
        let fits = self.make_room(need, packet, events);
        let Some(flow) = self.flows.get_mut(&packet.key) else {
            return;
        };
        if fits {
            flow.charged = u32::try_from(new).unwrap_or(u32::MAX);
            return;
        }
        self.counters.handshakes_dropped_by_pressure += 1;
        emit(
            flow,
            EndReason::MemoryPressure,
            packet.index,
            &mut self.counters,
            events,
        );
        flow.charged = 0;
        self.memory.uncharge(old);
    }

    /// Charges `bytes`, shedding stalled handshakes (a few at most) until
    /// they fit.
    fn make_room(
        &mut self,
        bytes: usize,
        packet: &FlowPacket<'_>,
        events: &mut Vec<FlowEvent>,
    ) -> bool {
        for _ in 0..SHED_PER_CHARGE {
            if self.memory.try_charge(bytes) {
                return true;
            }
            if !self.shed_stalled(packet, events) {
                return false;
            }
        }
        self.memory.try_charge(bytes)
    }

    /// Ends the oldest unfinished flow that has not progressed for
    /// [`STALLED_AGE`] (never the flow of `packet`), reporting its session
    /// with `memory_pressure`. Finished flows met on the way move to the back
    /// of the creation order, so each call looks at a few entries only.
    fn shed_stalled(&mut self, packet: &FlowPacket<'_>, events: &mut Vec<FlowEvent>) -> bool {
        // Entries of flows already gone (timed out, closed) are dropped on
        // the way without counting: after a sweep they may lead the queue.
        let mut looked = 0;
        let mut stale = 0;
        while looked < SHED_SCAN && stale < SHED_STALE_SCAN {
            let Some((key, start)) = self.order.pop_front() else {
                return false;
            };
            let Some(flow) = self.flows.get(&key).filter(|f| f.start_index == start) else {
                stale += 1;
                continue;
            };
            looked += 1;
            let stalled = key != packet.key
                && flow.unfinished()
                && packet.time.since(flow.last_seen) >= STALLED_AGE;
            if !stalled {
                self.order.push_back((key, start));
                continue;
            }
            let Some(flow) = self.flows.remove(&key) else {
                continue;
            };
            self.release(&flow);
            if matches!(flow.state, FlowState::Opening { .. }) {
                self.counters.flows_evicted += 1;
            } else {
                self.counters.handshakes_dropped_by_pressure += 1;
            }
            finish(
                flow,
                EndReason::MemoryPressure,
                packet.index,
                &mut self.counters,
                events,
            );
            return true;
        }
        false
    }

    /// A UDP datagram: QUIC or DTLS by content, anything else ignored.
    fn process_datagram(&mut self, packet: &FlowPacket<'_>, events: &mut Vec<FlowEvent>) {
        if !self.flows.contains_key(&packet.key) {
            let Some(protocol) = datagram::detect(packet.payload) else {
                self.counters.datagrams_ignored += 1;
                return;
            };
            let tracker = DatagramTracker::new(protocol, self.limits.tls);
            let state = FlowState::Datagram(Box::new(tracker));
            if !self.insert(packet, packet.source, packet.destination, state, events) {
                return;
            }
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
                    self.release(&flow);
                    self.counters.flows_evicted += 1;
                    finish(flow, EndReason::Evicted, at, &mut self.counters, events);
                }
                return;
            }
        }
    }

    /// Closes flows idle since before `now - idle_timeout`; `at` orders their records.
    /// In emergency mode the shorter timeouts apply, and a handshake they
    /// end is reported with `memory_pressure`.
    pub fn sweep(&mut self, now: PacketTime, at: u64, events: &mut Vec<FlowEvent>) {
        let idle = self.limits.idle_timeout;
        let emergency = self.in_emergency();
        let timeout = |flow: &Flow| {
            if !emergency {
                return idle;
            }
            idle.min(match flow.state {
                FlowState::Opening { .. } => EMERGENCY_OPENING_TIMEOUT,
                FlowState::Tracking(_) | FlowState::Datagram(_) => EMERGENCY_STALLED_TIMEOUT,
                FlowState::Bypass => EMERGENCY_BYPASS_TIMEOUT,
            })
        };
        let counters = &mut self.counters;
        let mut expired = Vec::new();
        let mut released = 0;
        self.flows.retain(|_, flow| {
            let limit = timeout(flow);
            if now.since(flow.last_seen) > limit {
                released += FLOW_ENTRY_BYTES + flow.charged as usize;
                let pressure = limit < idle;
                let flow = std::mem::replace(flow, placeholder(flow));
                expired.push((flow, pressure));
                false
            } else {
                true
            }
        });
        self.memory.uncharge(released);
        // Sort so the records of one sweep come out in a fixed order.
        for (flow, pressure) in in_start_order(expired, |(flow, _)| flow.start_index) {
            counters.flows_timed_out += 1;
            let reason = if pressure {
                counters.emergency_timeouts += 1;
                if flow.unfinished() {
                    counters.handshakes_dropped_by_pressure += 1;
                }
                EndReason::MemoryPressure
            } else {
                EndReason::IdleTimeout
            };
            finish(flow, reason, at, counters, events);
        }
        // After a flood, give the table's storage back.
        if self.flows.capacity() > 4 * self.flows.len() + 4096 {
            let flows = &self.flows;
            self.order
                .retain(|(key, start)| flows.get(key).is_some_and(|f| f.start_index == *start));
            self.flows.shrink_to_fit();
            self.order.shrink_to_fit();
        }
    }

    /// Ends every flow (end of input or shutdown).
    pub fn drain(&mut self, at: u64, events: &mut Vec<FlowEvent>) {
        let flows: Vec<Flow> = self.flows.drain().map(|(_, flow)| flow).collect();
        let released = flows
            .iter()
            .map(|flow| FLOW_ENTRY_BYTES + flow.charged as usize)
            .sum();
        self.memory.uncharge(released);
        self.order.clear();
        for flow in in_start_order(flows, |flow| flow.start_index) {
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

/// `items` in order of `start` (unique per flow), sorting positions rather
/// than the items: a `Flow` is hundreds of bytes, and sorting the flows left
/// at the end of a capture moved them about a dozen times each.
fn in_start_order<T>(items: Vec<T>, start: impl Fn(&T) -> u64) -> impl Iterator<Item = T> {
    let mut order: Vec<(u64, usize)> = items
        .iter()
        .enumerate()
        .map(|(position, item)| (start(item), position))
        .collect();
    order.sort_unstable();
    let mut items: Vec<Option<T>> = items.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(move |(_, position)| items.get_mut(position).and_then(Option::take))
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
        notified: flow.notified,
        packets: flow.packets,
        bytes: flow.bytes,
        recent: flow.recent,
        charged: 0,
        state: FlowState::Bypass,
    }
}

/// What identifies one copy of a packet within its flow and direction: IP id,
/// transport checksum, sequence numbers, flags and length. Never 0 (an empty slot).
/// The payload's length on the wire, copied or withheld.
fn payload_length(packet: &FlowPacket<'_>) -> usize {
    packet.payload.len().max(packet.withheld as usize)
}

fn copy_signature(packet: &FlowPacket<'_>) -> u64 {
    let tcp = &packet.tcp;
    let mut a = u64::from(tcp.ident) << 32 | u64::from(tcp.seq);
    let mut b =
        u64::from(tcp.ack) << 32 | (payload_length(packet) as u64) << 8 | u64::from(tcp.flags.0);
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
#[cfg(test)]
mod sizes {
    use super::*;

    /// What a half-open flow costs (docs/memory.md).
    #[test]
    fn a_half_open_flow_stays_small() {
        assert_eq!(std::mem::size_of::<FlowState>(), 16);
        assert!(std::mem::size_of::<(FlowKey, Flow)>() <= 280);
        const { assert!(FLOW_ENTRY_BYTES <= 1200) };
    }
}
