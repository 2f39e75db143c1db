//! The pipeline: reader → N flow workers → one output stage.
//!
//! The reader (the calling thread) pulls packets from a [`PacketSource`],
//! decodes their headers once, and appends each TCP packet's facts and payload
//! to the batch of the worker its symmetric flow hash selects. Every
//! `round_packets` packets (and, live, every `round_interval` of wall time, so
//! a quiet link still times out idle flows) it sends every worker its batch,
//! empty ones too, stamped with the input position reached and the clock.
//! Batches come back on a return channel, so the steady state allocates
//! nothing; they bring the workers' bypass notices with them (the reader
//! then stops copying finished flows' payloads, see `flow::bypass`). A file never drops a packet (a full queue blocks the reader); a
//! live capture drops the batch in user space and counts it unless
//! `overload` says block.
//!
//! Workers own their flow tables outright. They report finished sessions plus
//! a watermark (the input position they have fully processed); the output
//! stage holds sessions in a heap and releases them in [`EmitOrder`] once every
//! worker has passed that position. So 1 and N workers write the same records
//! in the same order, and cross-session judgements see sessions in packet
//! order. Stats rounds carry counters from every thread to the output stage,
//! which writes the `tlstap.stats` record.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::IsTerminal;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use hdrhistogram::Histogram;

use crate::capture::{CaptureError, Next, PacketSource};
use crate::decode::fragment::{FragmentKey, FragmentLimits, FragmentTable};
use crate::decode::{
    self, DecodeConfig, Decoded, EncapPath, IpFragment, Packet, TcpSegment, Transport,
};
pub use crate::flow::keylog;
use crate::flow::{BypassFilter, Endpoint, FlowKey, FlowLimits, FlowPacket, FlowTable, Notice};
use crate::memory::{MemoryAccount, MemoryBudget};
use crate::output::{
    OutputError, OutputOptions, PrepareLimits, PreparedRecord, Preparer, RecordKind, RecordWriter,
};
use crate::policy::{Evaluator, Policy};
use crate::stats::{histogram, MemoryStats, ReaderStats, Snapshot};
use crate::time::PacketTime;

/// Sweep interval while the memory budget is in emergency mode.
const EMERGENCY_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// What the reader does when a worker's queue is full (live capture only;
/// a file read always waits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overload {
    /// Drop the batch and count its packets: never hold the kernel ring.
    Drop,
    /// Wait for the worker (the kernel may drop instead, and counts it).
    Block,
}

/// Pipeline settings.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub workers: usize,
    /// Packets per round; each round ends with one batch per worker.
    pub round_packets: usize,
    /// Live: the longest a round stays open, so timers run on quiet links.
    pub round_interval: Duration,
    /// Batches queued per worker before the reader waits (or drops, live).
    pub queue_batches: usize,
    pub flow: FlowLimits,
    pub decode: DecodeConfig,
    /// IP fragment reassembly (in the reader, before sharding).
    pub fragments: FragmentLimits,
    /// What earlier runs saw (the inventory), for the drift findings.
    pub known_services: Vec<crate::policy::drift::KnownService>,
    /// Keep VLAN ids in the flow key (Suricata's default).
    pub key_on_encap: bool,
    /// How often (on the round clock) idle flows are swept.
    pub sweep_interval: Duration,
    pub filter: Option<String>,
    pub output: OutputOptions,
    /// The workers' judgement and rendering caches.
    pub prepare: PrepareLimits,
    pub overload: Overload,
    /// Live: write a stats record this often (wall clock). A stats record is
    /// always written at the end of a run.
    pub stats_interval: Option<Duration>,
    /// Live: print a status line on stderr with every stats record.
    pub status_line: bool,
    /// Bytes all workers together may hold in flows, handshakes, caches and
    /// records waiting for output (`--memcap`).
    pub memcap: usize,
    /// `--keylog`: TLS 1.3 secrets shared by the workers.
    pub keylog: Option<Arc<keylog::KeyLogStore>>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            workers: std::thread::available_parallelism().map_or(1, usize::from),
            round_packets: 1024,
            round_interval: Duration::from_millis(100),
            queue_batches: 4,
            flow: FlowLimits::default(),
            decode: DecodeConfig::default(),
            fragments: FragmentLimits::default(),
            known_services: Vec::new(),
            key_on_encap: true,
            sweep_interval: Duration::from_secs(5),
            filter: None,
            output: OutputOptions::default(),
            prepare: PrepareLimits::default(),
            overload: Overload::Drop,
            stats_interval: None,
            status_line: false,
            memcap: crate::memory::DEFAULT_MEMCAP,
            keylog: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("a pipeline thread failed: {0}")]
    Thread(&'static str),
}

/// What a run produced: counters, and the error that stopped it early, if any.
/// Records produced before the error have been written and flushed.
#[derive(Debug)]
pub struct RunOutcome {
    pub stats: Snapshot,
    pub error: Option<PipelineError>,
    /// The output was closed by its reader (e.g. `| head`): not an error.
    pub output_closed: bool,
}

/// Progress callback: bytes of input consumed so far, packets so far.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

/// Signals from outside (set by signal handlers): stop reading, reopen outputs.
#[derive(Debug, Default, Clone)]
pub struct Controls {
    pub stop: std::sync::Arc<AtomicBool>,
    pub reopen: std::sync::Arc<AtomicBool>,
}

/// Sources to read in order; the next one is opened when the previous ends.
pub type Sources<'a> = dyn Iterator<Item = Result<Box<dyn PacketSource>, CaptureError>> + 'a;

#[derive(Debug, Clone, Copy)]
struct Entry {
    index: u64,
    time: PacketTime,
    key: FlowKey,
    source: Endpoint,
    destination: Endpoint,
    transport: Transport,
    tcp: TcpSegment,
    /// Index into the batch's `encaps`, or `NO_ENCAP`: the plain path does
    /// not copy 68 bytes of empty path per packet.
    encap: u32,
    payload: (u32, u32),
    /// Length of a payload not copied (its flow is bypassed); 0 when copied.
    withheld: u32,
}

const NO_ENCAP: u32 = u32::MAX;

#[derive(Debug, Default)]
struct Batch {
    entries: Vec<Entry>,
    arena: Vec<u8>,
    /// Encapsulation paths of the tunnelled packets in `entries`.
    encaps: Vec<EncapPath>,
    /// Input position reached when the batch was sent (exclusive).
    upto: u64,
    clock: PacketTime,
    last: bool,
    /// Report counters with this batch (a stats round).
    stats: bool,
    /// The reader's counters, on worker 0's batch of a stats round.
    reader: Option<Box<ReaderStats>>,
    /// Flows the worker finished while processing this batch, for the
    /// reader's bypass filter (on the way back).
    notices: Vec<Notice>,
}

impl Batch {
    fn payload(&self, range: (u32, u32)) -> &[u8] {
        let range: Range<usize> = range.0 as usize..range.1 as usize;
        self.arena.get(range).unwrap_or(&[])
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.arena.clear();
        self.encaps.clear();
        self.reader = None;
        self.notices.clear();
    }
}

/// A worker's counters for a stats round.
struct WorkerReport {
    counters: crate::flow::Counters,
    prepare: crate::output::PrepareCounters,
    flows_active: u64,
    processing_ns: Histogram<u64>,
    reader: Option<Box<ReaderStats>>,
}

struct WorkerMessage {
    worker: usize,
    records: Vec<PreparedRecord>,
    watermark: u64,
    report: Option<Box<WorkerReport>>,
    last: bool,
}

/// Reads `sources` in order as one continuous capture and writes records to `writer`.
pub fn run(
    sources: &mut Sources<'_>,
    config: &PipelineConfig,
    policy: &Policy,
    writer: &mut RecordWriter,
    controls: &Controls,
    progress: Progress<'_>,
) -> RunOutcome {
    let workers = config.workers.max(1);
    let budget = MemoryBudget::new(config.memcap);
    let output_stop = AtomicBool::new(false);
    let (output_tx, output_rx) = bounded::<WorkerMessage>(workers * (config.queue_batches + 2));
    let mut worker_txs = Vec::with_capacity(workers);
    let mut return_rxs = Vec::with_capacity(workers);

    std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(workers);
        let mut spawn_failed = false;
        for worker in 0..workers {
            let (batch_tx, batch_rx) = bounded::<Batch>(config.queue_batches);
            // Queue + the batch in a worker + the one being filled: the reader
            // never waits for an empty batch.
            let (return_tx, return_rx) = bounded::<Batch>(config.queue_batches + 3);
            for _ in 0..config.queue_batches + 2 {
                let _ = return_tx.send(Batch::default());
            }
            worker_txs.push(batch_tx);
            return_rxs.push(return_rx);
            let output_tx = output_tx.clone();
            let memory = MemoryAccount::for_worker(Arc::clone(&budget), workers);
            // Named threads: `top -H` and profilers tell the stages apart.
            let spawned = std::thread::Builder::new()
                .name(format!("tlstap-worker{worker}"))
                .spawn_scoped(scope, move || {
                    let preparer = Preparer::new(policy, config.output, config.prepare);
                    let table = FlowTable::with_memory(config.flow, memory)
                        .with_keylog(config.keylog.clone());
                    run_worker(
                        worker, config, table, preparer, batch_rx, return_tx, output_tx,
                    )
                });
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(_) => spawn_failed = true,
            }
        }
        drop(output_tx);

        let output = {
            let stop = &output_stop;
            std::thread::Builder::new()
                .name("tlstap-output".to_string())
                .spawn_scoped(scope, move || {
                    run_output(output_rx, policy, writer, config, controls, stop, budget)
                })
        };
        let output = match output {
            Ok(output) if !spawn_failed => output,
            _ => {
                drop(worker_txs);
                for handle in handles {
                    let _ = handle.join();
                }
                return RunOutcome {
                    stats: Snapshot::default(),
                    error: Some(PipelineError::Thread(
                        "could not start the pipeline threads",
                    )),
                    output_closed: false,
                };
            }
        };

        let mut reader = Reader {
            config,
            fragments: FragmentTable::new(config.fragments.clone()),
            worker_txs: &worker_txs,
            return_rxs: &return_rxs,
            batches: Vec::new(),
            stats: ReaderStats::default(),
            index: 0,
            clock: PacketTime::ZERO,
            live: false,
            bypass: BypassFilter::default(),
        };
        let read_error = reader.read(sources, controls, &output_stop, progress);
        drop(worker_txs);
        let mut thread_failed = false;
        for handle in handles {
            if handle.join().is_err() {
                thread_failed = true;
            }
        }
        let (stats, output_error, output_closed) = match output.join() {
            Ok(result) => result,
            Err(_) => {
                thread_failed = true;
                (Snapshot::default(), None, false)
            }
        };
        let error = if thread_failed {
            Some(PipelineError::Thread("worker or output stage panicked"))
        } else {
            read_error
                .map(PipelineError::from)
                .or(output_error.map(PipelineError::from))
        };
        RunOutcome {
            stats,
            error,
            output_closed,
        }
    })
}

struct Reader<'a> {
    config: &'a PipelineConfig,
    fragments: FragmentTable,
    worker_txs: &'a [Sender<Batch>],
    return_rxs: &'a [Receiver<Batch>],
    batches: Vec<Batch>,
    stats: ReaderStats,
    index: u64,
    clock: PacketTime,
    live: bool,
    bypass: BypassFilter,
}

impl Reader<'_> {
    /// Hands a decoded packet to its worker's batch: TCP always, UDP only
    /// when it could be QUIC or DTLS (the rest is counted here, not shipped).
    fn dispatch(
        &mut self,
        decoded: &Decoded<'_>,
        encap: &EncapPath,
        time: PacketTime,
        workers: usize,
    ) {
        if decoded.transport == Transport::Udp && !crate::flow::may_carry_tls(decoded.payload) {
            self.stats.packets_not_tcp += 1;
            return;
        }
        let source = Endpoint {
            ip: decoded.source,
            port: decoded.source_port,
        };
        let destination = Endpoint {
            ip: decoded.destination,
            port: decoded.destination_port,
        };
        let context = if self.config.key_on_encap {
            encap.flow_context()
        } else {
            0
        };
        let key = FlowKey::new(source, destination, decoded.transport, context);
        let shard = key.shard(workers);
        let withheld = decoded.transport == Transport::Tcp
            && self
                .bypass
                .withhold(&key, decoded.tcp.flags, self.index, decoded.payload.len());
        if let Some(batch) = self.batches.get_mut(shard) {
            let start = batch.arena.len();
            if !withheld {
                batch.arena.extend_from_slice(decoded.payload);
            }
            let encap = if encap.is_empty() {
                NO_ENCAP
            } else {
                batch.encaps.push(*encap);
                batch.encaps.len() as u32 - 1
            };
            batch.entries.push(Entry {
                index: self.index,
                time,
                key,
                source,
                destination,
                transport: decoded.transport,
                tcp: decoded.tcp,
                encap,
                payload: (start as u32, batch.arena.len() as u32),
                withheld: if withheld {
                    decoded.payload.len() as u32
                } else {
                    0
                },
            });
        }
    }

    /// Fragments wait in the reader's table (before sharding: only the first
    /// fragment has ports); a completed datagram is decoded on from its
    /// transport header and dispatched like any packet.
    fn reassemble(
        &mut self,
        fragment: &IpFragment<'_>,
        encap: &EncapPath,
        time: PacketTime,
        workers: usize,
    ) {
        let context = if self.config.key_on_encap {
            encap.flow_context()
        } else {
            0
        };
        let key = FragmentKey::new(
            fragment.source,
            fragment.destination,
            fragment.id,
            fragment.protocol,
            context,
        );
        let piece = decode::fragment::Fragment {
            offset: fragment.offset,
            more_fragments: fragment.more,
            payload: fragment.payload,
        };
        let Some(whole) = self
            .fragments
            .push(key, piece, time, &mut self.stats.fragments)
        else {
            return;
        };
        let mut path = *encap;
        match decode::decode_reassembled(fragment, &whole, &self.config.decode, &mut path) {
            Ok(Packet::Whole(decoded)) => {
                self.stats.decode.packets_reassembled += 1;
                self.dispatch(&decoded, &path, time, workers);
            }
            // A tunnelled packet that is itself a fragment, inside a reassembled one.
            Ok(Packet::Fragment(_)) => self.stats.decode.packets_fragmented += 1,
            Err(error) => self.stats.decode.count(&Err(error)),
        }
    }

    fn read(
        &mut self,
        sources: &mut Sources<'_>,
        controls: &Controls,
        output_stop: &AtomicBool,
        progress: Progress<'_>,
    ) -> Option<CaptureError> {
        let workers = self.worker_txs.len();
        // The tunnel path of the packet at hand, rewritten by each decode.
        let mut encap = EncapPath::EMPTY;
        self.batches = self
            .return_rxs
            .iter()
            .map(|rx| rx.recv().unwrap_or_default())
            .collect();
        let mut in_round = 0usize;
        let mut bytes_before = 0u64;
        let mut error = None;
        let mut round_started = Instant::now();
        let mut last_stats = Instant::now();
        let stopped =
            || controls.stop.load(Ordering::Relaxed) || output_stop.load(Ordering::Relaxed);

        'sources: for source in sources {
            let mut source = match source {
                Ok(source) => source,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            };
            self.live = source.is_live();
            loop {
                let next = match source.next_packet() {
                    Ok(next) => next,
                    Err(e) => {
                        error = Some(e);
                        break 'sources;
                    }
                };
                match next {
                    Next::End => break,
                    Next::Idle => {}
                    Next::Packet(packet) => {
                        self.stats.packets += 1;
                        self.stats.bytes += u64::from(packet.wire_length);
                        if !self.live {
                            self.clock = self.clock.max(packet.time);
                        }
                        let decoded = decode::decode_packet(
                            packet.link,
                            packet.data,
                            &self.config.decode,
                            &mut encap,
                        );
                        self.stats.decode.count_packet(&decoded);
                        match decoded {
                            Ok(Packet::Whole(decoded)) => {
                                self.dispatch(&decoded, &encap, packet.time, workers)
                            }
                            Ok(Packet::Fragment(fragment)) => {
                                self.reassemble(&fragment, &encap, packet.time, workers)
                            }
                            Err(_) => {}
                        }
                        self.index += 1;
                        in_round += 1;
                    }
                }
                let round_due = in_round >= self.config.round_packets
                    || (self.live && round_started.elapsed() >= self.config.round_interval);
                if round_due {
                    if self.live {
                        self.clock = PacketTime::wall_clock();
                    }
                    let stats_due = self.live
                        && self
                            .config
                            .stats_interval
                            .is_some_and(|interval| last_stats.elapsed() >= interval);
                    if stats_due {
                        last_stats = Instant::now();
                        self.stats.kernel = source.kernel_stats();
                    }
                    in_round = 0;
                    round_started = Instant::now();
                    if !self.send_round(false, stats_due) {
                        break 'sources;
                    }
                    progress(bytes_before + source.bytes_read(), self.stats.packets);
                    if stopped() {
                        self.stats.kernel = source.kernel_stats().or(self.stats.kernel);
                        break 'sources;
                    }
                }
            }
            bytes_before += source.bytes_read();
            self.stats.kernel = source.kernel_stats().or(self.stats.kernel);
            progress(bytes_before, self.stats.packets);
        }
        if self.live {
            self.clock = PacketTime::wall_clock();
        }
        self.send_round(true, true);
        error
    }

    /// Sends every worker its batch; false if a worker has gone away.
    fn send_round(&mut self, last: bool, stats: bool) -> bool {
        if stats {
            self.stats.worker_queue_depth =
                self.worker_txs.iter().map(|tx| tx.len() as u64).collect();
        }
        for (worker, ((batch, tx), rx)) in self
            .batches
            .iter_mut()
            .zip(self.worker_txs)
            .zip(self.return_rxs)
            .enumerate()
        {
            let mut full = std::mem::take(batch);
            full.upto = self.index;
            full.clock = self.clock;
            full.last = last;
            full.stats = stats;
            if stats && worker == 0 {
                self.stats.payloads_withheld = self.bypass.withheld;
                full.reader = Some(Box::new(self.stats.clone()));
            }
            let must_deliver =
                last || stats || !self.live || self.config.overload == Overload::Block;
            if must_deliver {
                if tx.send(full).is_err() {
                    return false;
                }
            } else {
                match tx.try_send(full) {
                    Ok(()) => {}
                    Err(TrySendError::Full(mut dropped)) => {
                        // The worker is behind: drop this batch's packets, keep
                        // the buffers, and count what was lost.
                        self.stats.packets_user_dropped += dropped.entries.len() as u64;
                        dropped.clear();
                        *batch = dropped;
                        continue;
                    }
                    Err(TrySendError::Disconnected(_)) => return false,
                }
            }
            // Taken after the send, so buffers circulate instead of being
            // grown anew each round. A file waits for it: the batch coming
            // back is always the one sent a fixed number of rounds ago, so
            // its bypass notices apply at a position fixed by the input
            // (and the records do not depend on thread timing).
            if !last {
                *batch = if self.live {
                    rx.try_recv().unwrap_or_default()
                } else {
                    rx.recv().unwrap_or_default()
                };
                self.bypass.apply(&mut batch.notices);
            }
        }
        true
    }
}

fn run_worker(
    worker: usize,
    config: &PipelineConfig,
    mut table: FlowTable,
    mut preparer: Preparer<'_>,
    batches: Receiver<Batch>,
    returns: Sender<Batch>,
    output: Sender<WorkerMessage>,
) {
    let mut events = Vec::new();
    let mut next_sweep: Option<PacketTime> = None;
    let mut processing = histogram();
    for mut batch in batches.iter() {
        let started = Instant::now();
        for entry in &batch.entries {
            let packet = FlowPacket {
                index: entry.index,
                time: entry.time,
                key: entry.key,
                source: entry.source,
                destination: entry.destination,
                transport: entry.transport,
                tcp: entry.tcp,
                encap: batch
                    .encaps
                    .get(entry.encap as usize)
                    .unwrap_or(&EncapPath::EMPTY),
                payload: batch.payload(entry.payload),
                withheld: entry.withheld,
            };
            table.process(&packet, &mut events);
        }
        // One clock read per batch, not per packet: the per-packet figure is
        // the batch's average.
        if !batch.entries.is_empty() {
            let per_packet = started.elapsed().as_nanos() as u64 / batch.entries.len() as u64;
            let _ = processing.record_n(per_packet.max(1), batch.entries.len() as u64);
        }
        // Sweeps run at the same input positions in every worker, so which
        // flows time out does not depend on how flows were sharded.
        // In emergency mode sweeps come at least every second, for the
        // shorter timeouts (then sharding may change which flows are shed).
        let due = next_sweep.is_none_or(|at| batch.clock >= at);
        if due {
            if next_sweep.is_some() {
                table.sweep(batch.clock, batch.upto, &mut events);
            }
            let interval = if table.in_emergency() {
                config.sweep_interval.min(EMERGENCY_SWEEP_INTERVAL)
            } else {
                config.sweep_interval
            };
            next_sweep = Some(batch.clock.saturating_add(interval));
        }
        let last = batch.last;
        let watermark = if last { u64::MAX } else { batch.upto };
        if last {
            table.drain(batch.upto, &mut events);
        }
        // Sessions are finished here, in parallel: the output stage only
        // orders them, adds cross-session findings and writes.
        let records: Vec<PreparedRecord> = events
            .drain(..)
            .map(|event| preparer.prepare(event))
            .collect();
        // Records waiting for output hold memory too; the output stage gives
        // it back as it writes them. Forced: finished work is never dropped.
        table
            .budget()
            .force_take(records.iter().map(PreparedRecord::footprint).sum());
        let report = batch.stats.then(|| {
            Box::new(WorkerReport {
                counters: table.counters(),
                prepare: preparer.counters(),
                flows_active: table.len() as u64,
                processing_ns: processing.clone(),
                reader: batch.reader.take(),
            })
        });
        let message = WorkerMessage {
            worker,
            records,
            watermark,
            report,
            last,
        };
        if output.send(message).is_err() {
            return;
        }
        batch.clear();
        table.take_notices(&mut batch.notices);
        let _ = returns.try_send(batch);
        if last {
            break;
        }
    }
}

struct Pending(PreparedRecord);

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.0.order == other.0.order
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.order.cmp(&other.0.order)
    }
}

/// The output stage's state.
struct OutputStage<'a> {
    policy: &'a Policy,
    writer: &'a mut RecordWriter,
    options: OutputOptions,
    evaluator: Evaluator,
    stats: Snapshot,
    error: Option<OutputError>,
    closed: bool,
    stop: &'a AtomicBool,
    memory: Arc<MemoryBudget>,
    keylog: Option<Arc<keylog::KeyLogStore>>,
}

impl OutputStage<'_> {
    fn release(&mut self, heap: &mut BinaryHeap<Reverse<Pending>>, below: u64) {
        while heap
            .peek()
            .is_some_and(|Reverse(p)| p.0.order.at < below || below == u64::MAX)
        {
            let Some(Reverse(Pending(record))) = heap.pop() else {
                break;
            };
            self.memory.give_back(record.footprint());
            match record.kind {
                RecordKind::Tls { version, rtt_us } => {
                    // Looked up before inserting: no String per record.
                    let counts = &mut self.stats.sessions_by_version;
                    match counts.get_mut(version) {
                        Some(count) => *count += 1,
                        None => {
                            counts.insert(version.to_string(), 1);
                        }
                    }
                    if let Some(rtt) = rtt_us {
                        let _ = self.stats.handshake_rtt_us.record(rtt.max(1));
                    }
                }
                RecordKind::Plaintext => self.stats.plaintext_records += 1,
            }
            if self.error.is_some() || self.closed {
                continue;
            }
            let result = self
                .writer
                .write(record, self.policy, &mut self.evaluator, &self.options);
            self.note(result);
        }
    }

    fn note(&mut self, result: Result<(), OutputError>) {
        match result {
            Ok(()) => {}
            Err(OutputError::Closed) => {
                self.closed = true;
                self.stop.store(true, Ordering::Relaxed);
            }
            Err(e) => {
                if self.error.is_none() {
                    self.error = Some(e);
                }
                self.stop.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Writes a stats record from the reports of one stats round.
    fn write_stats(
        &mut self,
        reports: &mut [Option<Box<WorkerReport>>],
        queue_depth: u64,
        status_line: bool,
    ) {
        let mut snapshot = Snapshot {
            sessions_by_version: self.stats.sessions_by_version.clone(),
            plaintext_records: self.stats.plaintext_records,
            handshake_rtt_us: self.stats.handshake_rtt_us.clone(),
            output: self.writer.counters(),
            sink: self.writer.sink_counters(),
            archive: self.writer.archive_counters(),
            policy: self.evaluator.counters(),
            output_queue_depth: queue_depth,
            memory: MemoryStats::of(&self.memory),
            keylog: self
                .keylog
                .as_ref()
                .map(|k| k.counters())
                .unwrap_or_default(),
            ..Snapshot::default()
        };
        for report in reports.iter_mut().filter_map(Option::take) {
            snapshot.flow.add(&report.counters);
            snapshot.prepare.add(&report.prepare);
            snapshot.flows_active += report.flows_active;
            let _ = snapshot.processing_ns.add(&report.processing_ns);
            if let Some(reader) = report.reader {
                snapshot.reader = *reader;
            }
        }
        let timestamp = PacketTime::wall_clock().to_rfc3339_micros();
        if !self.closed && self.error.is_none() {
            let result = self.writer.write_value(&snapshot.record(timestamp));
            self.note(result);
            let flushed = self.writer.flush();
            self.note(flushed);
        }
        if status_line {
            eprintln!("{}", snapshot.status_line());
        }
        self.stats = Snapshot {
            sessions_by_version: std::mem::take(&mut self.stats.sessions_by_version),
            handshake_rtt_us: std::mem::replace(&mut self.stats.handshake_rtt_us, histogram()),
            ..snapshot
        };
    }
}

fn run_output(
    messages: Receiver<WorkerMessage>,
    policy: &Policy,
    writer: &mut RecordWriter,
    config: &PipelineConfig,
    controls: &Controls,
    stop: &AtomicBool,
    memory: Arc<MemoryBudget>,
) -> (Snapshot, Option<OutputError>, bool) {
    let workers = config.workers.max(1);
    let mut stage = OutputStage {
        policy,
        evaluator: Evaluator::with_known(policy, config.known_services.clone()),
        writer,
        options: config.output,
        stats: Snapshot::default(),
        error: None,
        closed: false,
        stop,
        memory,
        keylog: config.keylog.clone(),
    };
    let mut heap: BinaryHeap<Reverse<Pending>> = BinaryHeap::new();
    let mut watermarks = vec![0u64; workers];
    // Stats rounds reach the output stage worker by worker; a round is
    // complete when every worker has reported it (reports arrive in order).
    let mut reports: Vec<std::collections::VecDeque<Box<WorkerReport>>> = (0..workers)
        .map(|_| std::collections::VecDeque::new())
        .collect();
    let status_line = config.status_line && std::io::stderr().is_terminal();
    for message in messages.iter() {
        if controls.reopen.swap(false, Ordering::Relaxed) {
            let result = stage.writer.reopen();
            stage.note(result);
        }
        let WorkerMessage {
            worker,
            records,
            watermark,
            report,
            last,
        } = message;
        for record in records {
            heap.push(Reverse(Pending(record)));
        }
        if let Some(slot) = watermarks.get_mut(worker) {
            *slot = watermark;
        }
        let below = watermarks.iter().copied().min().unwrap_or(0);
        stage.release(&mut heap, below);
        if let (Some(report), Some(queue)) = (report, reports.get_mut(worker)) {
            queue.push_back(report);
        }
        while reports.iter().all(|queue| !queue.is_empty()) {
            let mut round: Vec<Option<Box<WorkerReport>>> =
                reports.iter_mut().map(|queue| queue.pop_front()).collect();
            let final_round = last && watermarks.iter().all(|w| *w == u64::MAX);
            if final_round {
                stage.release(&mut heap, u64::MAX);
            }
            stage.write_stats(
                &mut round,
                messages.len() as u64,
                status_line && !final_round,
            );
        }
    }
    stage.release(&mut heap, u64::MAX);
    if stage.error.is_none() && !stage.closed {
        let flushed = stage.writer.flush();
        stage.note(flushed);
    }
    let mut stats = stage.stats;
    stats.output = stage.writer.counters();
    stats.sink = stage.writer.sink_counters();
    stats.archive = stage.writer.archive_counters();
    stats.policy = stage.evaluator.counters();
    (stats, stage.error, stage.closed)
}
