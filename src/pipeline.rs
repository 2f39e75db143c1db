//! The pipeline: reader → N flow workers → one output stage.
//!
//! The reader (the calling thread) pulls packets from the capture, decodes
//! their headers once, and appends each TCP packet's facts and payload to the
//! batch of the worker its symmetric flow hash selects. Every `round_packets`
//! packets it sends every worker its batch (empty ones too), stamped with the
//! input position reached and the packet clock; batches come back on a return
//! channel, so the steady state allocates nothing. Offline, a full queue blocks
//! the reader (a file read never drops a packet).
//!
//! Workers own their flow tables outright. They report finished sessions plus a
//! watermark (the input position they have fully processed); the output stage
//! holds sessions in a heap and releases them in [`EmitOrder`] once every worker
//! has passed that position. So 1 and N workers write the same records in the
//! same order, and cross-session judgements see sessions in packet order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::capture::{CaptureError, FileSource};
use crate::decode::{self, DecodeConfig, EncapPath, TcpSegment, Transport};
use crate::flow::{Endpoint, FlowContent, FlowEvent, FlowKey, FlowLimits, FlowPacket, FlowTable};
use crate::output::{OutputError, OutputOptions, RecordWriter};
use crate::policy::{Evaluator, Policy};
use crate::stats::Snapshot;
use crate::time::PacketTime;

/// Pipeline settings.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub workers: usize,
    /// Packets per round; each round ends with one batch per worker.
    pub round_packets: usize,
    /// Batches queued per worker before the reader waits.
    pub queue_batches: usize,
    pub flow: FlowLimits,
    pub decode: DecodeConfig,
    /// Keep VLAN ids in the flow key (Suricata's default).
    pub key_on_encap: bool,
    /// How often (packet time) idle flows are swept.
    pub sweep_interval: Duration,
    pub filter: Option<String>,
    pub output: OutputOptions,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            workers: std::thread::available_parallelism().map_or(1, usize::from),
            round_packets: 1024,
            queue_batches: 4,
            flow: FlowLimits::default(),
            decode: DecodeConfig::default(),
            key_on_encap: true,
            sweep_interval: Duration::from_secs(5),
            filter: None,
            output: OutputOptions::default(),
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

#[derive(Debug, Clone, Copy)]
struct Entry {
    index: u64,
    time: PacketTime,
    key: FlowKey,
    source: Endpoint,
    destination: Endpoint,
    transport: Transport,
    tcp: TcpSegment,
    encap: EncapPath,
    payload: (u32, u32),
}

#[derive(Debug, Default)]
struct Batch {
    entries: Vec<Entry>,
    arena: Vec<u8>,
    /// Input position reached when the batch was sent (exclusive).
    upto: u64,
    clock: PacketTime,
    last: bool,
}

impl Batch {
    fn payload(&self, range: (u32, u32)) -> &[u8] {
        let range: Range<usize> = range.0 as usize..range.1 as usize;
        self.arena.get(range).unwrap_or(&[])
    }
}

enum WorkerMessage {
    Events {
        worker: usize,
        events: Vec<FlowEvent>,
        watermark: u64,
    },
    Done {
        worker: usize,
        counters: Box<crate::flow::Counters>,
        flows_active: u64,
    },
}

/// Reads `paths` in order as one continuous capture and writes records to `writer`.
pub fn run_files(
    paths: &[PathBuf],
    config: &PipelineConfig,
    policy: &Policy,
    writer: &mut RecordWriter,
    progress: Progress<'_>,
) -> RunOutcome {
    let workers = config.workers.max(1);
    let stop = AtomicBool::new(false);
    let (output_tx, output_rx) = bounded::<WorkerMessage>(workers * (config.queue_batches + 2));
    let mut worker_txs = Vec::with_capacity(workers);
    let mut return_rxs = Vec::with_capacity(workers);

    std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(workers);
        for worker in 0..workers {
            let (batch_tx, batch_rx) = bounded::<Batch>(config.queue_batches);
            let (return_tx, return_rx) = bounded::<Batch>(config.queue_batches + 2);
            for _ in 0..config.queue_batches + 1 {
                let _ = return_tx.send(Batch::default());
            }
            worker_txs.push(batch_tx);
            return_rxs.push(return_rx);
            let output_tx = output_tx.clone();
            let limits = config.flow;
            let sweep_interval = config.sweep_interval;
            handles.push(scope.spawn(move || {
                run_worker(
                    worker,
                    limits,
                    sweep_interval,
                    batch_rx,
                    return_tx,
                    output_tx,
                )
            }));
        }
        drop(output_tx);

        let options = config.output;
        let stop_flag = &stop;
        let output = scope
            .spawn(move || run_output(output_rx, workers, policy, writer, &options, stop_flag));

        let mut stats = Snapshot::default();
        let read_error = read(
            paths,
            config,
            &worker_txs,
            &return_rxs,
            &stop,
            &mut stats,
            progress,
        );
        drop(worker_txs);
        let mut thread_failed = false;
        for handle in handles {
            if handle.join().is_err() {
                thread_failed = true;
            }
        }
        let (output_stats, output_error, output_closed) = match output.join() {
            Ok(result) => result,
            Err(_) => {
                thread_failed = true;
                (Snapshot::default(), None, false)
            }
        };
        stats.flow = output_stats.flow;
        stats.flows_active = output_stats.flows_active;
        stats.sessions_by_version = output_stats.sessions_by_version;
        stats.plaintext_records = output_stats.plaintext_records;
        stats.output = output_stats.output;
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

fn read(
    paths: &[PathBuf],
    config: &PipelineConfig,
    worker_txs: &[Sender<Batch>],
    return_rxs: &[Receiver<Batch>],
    stop: &AtomicBool,
    stats: &mut Snapshot,
    progress: Progress<'_>,
) -> Option<CaptureError> {
    let workers = worker_txs.len();
    let hasher = ahash::RandomState::new();
    let mut batches: Vec<Batch> = return_rxs
        .iter()
        .map(|rx| rx.recv().unwrap_or_default())
        .collect();
    let mut index: u64 = 0;
    let mut clock = PacketTime::ZERO;
    let mut in_round = 0usize;
    let mut bytes_before = 0u64;
    let mut error = None;

    'files: for path in paths {
        let mut source = match FileSource::open(path, config.filter.as_deref()) {
            Ok(source) => source,
            Err(e) => {
                error = Some(e);
                break;
            }
        };
        loop {
            let packet = match source.next_packet() {
                Ok(Some(packet)) => packet,
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break 'files;
                }
            };
            stats.packets_read += 1;
            stats.bytes_read += u64::from(packet.wire_length);
            clock = clock.max(packet.time);
            let decoded = decode::decode(packet.link, packet.data, &config.decode);
            stats.decode.count(&decoded);
            if let Ok(decoded) = decoded {
                if decoded.transport == Transport::Tcp {
                    let source_endpoint = Endpoint {
                        ip: decoded.source,
                        port: decoded.source_port,
                    };
                    let destination = Endpoint {
                        ip: decoded.destination,
                        port: decoded.destination_port,
                    };
                    let context = if config.key_on_encap {
                        decoded.encap.flow_context()
                    } else {
                        0
                    };
                    let key =
                        FlowKey::new(source_endpoint, destination, decoded.transport, context);
                    let shard = (key.shard_hash(&hasher) % workers as u64) as usize;
                    if let Some(batch) = batches.get_mut(shard) {
                        let start = batch.arena.len();
                        batch.arena.extend_from_slice(decoded.payload);
                        batch.entries.push(Entry {
                            index,
                            time: packet.time,
                            key,
                            source: source_endpoint,
                            destination,
                            transport: decoded.transport,
                            tcp: decoded.tcp,
                            encap: decoded.encap,
                            payload: (start as u32, batch.arena.len() as u32),
                        });
                    }
                } else {
                    stats.packets_skipped_non_tcp += 1;
                }
            }
            index += 1;
            in_round += 1;
            if in_round >= config.round_packets {
                in_round = 0;
                if !send_round(&mut batches, worker_txs, return_rxs, index, clock, false) {
                    break 'files;
                }
                progress(bytes_before + source.bytes_read(), stats.packets_read);
                if stop.load(Ordering::Relaxed) {
                    break 'files;
                }
            }
        }
        bytes_before += source.bytes_read();
        progress(bytes_before, stats.packets_read);
    }
    send_round(&mut batches, worker_txs, return_rxs, index, clock, true);
    error
}

/// Sends every worker its batch; false if a worker has gone away.
fn send_round(
    batches: &mut [Batch],
    worker_txs: &[Sender<Batch>],
    return_rxs: &[Receiver<Batch>],
    upto: u64,
    clock: PacketTime,
    last: bool,
) -> bool {
    for ((batch, tx), rx) in batches.iter_mut().zip(worker_txs).zip(return_rxs) {
        let mut full = if last {
            std::mem::take(batch)
        } else {
            match rx.recv() {
                Ok(fresh) => std::mem::replace(batch, fresh),
                Err(_) => return false,
            }
        };
        full.upto = upto;
        full.clock = clock;
        full.last = last;
        if tx.send(full).is_err() {
            return false;
        }
    }
    true
}

fn run_worker(
    worker: usize,
    limits: FlowLimits,
    sweep_interval: Duration,
    batches: Receiver<Batch>,
    returns: Sender<Batch>,
    output: Sender<WorkerMessage>,
) {
    let mut table = FlowTable::new(limits);
    let mut events = Vec::new();
    let mut next_sweep: Option<PacketTime> = None;
    for mut batch in batches.iter() {
        for entry in &batch.entries {
            let packet = FlowPacket {
                index: entry.index,
                time: entry.time,
                key: entry.key,
                source: entry.source,
                destination: entry.destination,
                transport: entry.transport,
                tcp: entry.tcp,
                encap: entry.encap,
                payload: batch.payload(entry.payload),
            };
            table.process(&packet, &mut events);
        }
        // Sweeps run at the same input positions in every worker, so which
        // flows time out does not depend on how flows were sharded.
        let due = next_sweep.is_none_or(|at| batch.clock >= at);
        if due {
            if next_sweep.is_some() {
                table.sweep(batch.clock, batch.upto, &mut events);
            }
            next_sweep = Some(batch.clock.saturating_add(sweep_interval));
        }
        let last = batch.last;
        let watermark = if last { u64::MAX } else { batch.upto };
        if last {
            table.drain(batch.upto, &mut events);
        }
        let message = WorkerMessage::Events {
            worker,
            events: std::mem::take(&mut events),
            watermark,
        };
        if output.send(message).is_err() {
            return;
        }
        batch.entries.clear();
        batch.arena.clear();
        let _ = returns.try_send(batch);
        if last {
            break;
        }
    }
    let _ = output.send(WorkerMessage::Done {
        worker,
        counters: Box::new(table.counters().clone()),
        flows_active: table.len() as u64,
    });
}

struct Pending(FlowEvent);

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

fn run_output(
    messages: Receiver<WorkerMessage>,
    workers: usize,
    policy: &Policy,
    writer: &mut RecordWriter,
    options: &OutputOptions,
    stop: &AtomicBool,
) -> (Snapshot, Option<OutputError>, bool) {
    let mut evaluator = Evaluator::new(policy);
    let mut heap: BinaryHeap<Reverse<Pending>> = BinaryHeap::new();
    let mut watermarks = vec![0u64; workers];
    let mut stats = Snapshot::default();
    let mut error: Option<OutputError> = None;
    let mut closed = false;
    let mut release =
        |heap: &mut BinaryHeap<Reverse<Pending>>, below: u64, stats: &mut Snapshot| {
            while heap
                .peek()
                .is_some_and(|Reverse(p)| p.0.order.at < below || below == u64::MAX)
            {
                let Some(Reverse(Pending(event))) = heap.pop() else {
                    break;
                };
                match &event.content {
                    FlowContent::Tls(summary) => {
                        let version = summary
                            .version()
                            .and_then(crate::tls::ProtocolVersion::ecs_version)
                            .unwrap_or("unknown");
                        *stats
                            .sessions_by_version
                            .entry(version.to_string())
                            .or_insert(0) += 1;
                    }
                    FlowContent::Plaintext { .. } => stats.plaintext_records += 1,
                }
                if error.is_some() || closed {
                    continue;
                }
                match writer.write(&event, policy, &mut evaluator, options) {
                    Ok(()) => {}
                    Err(OutputError::Closed) => {
                        closed = true;
                        stop.store(true, Ordering::Relaxed);
                    }
                    Err(e) => {
                        error = Some(e);
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            }
        };
    for message in messages.iter() {
        match message {
            WorkerMessage::Events {
                worker,
                events,
                watermark,
            } => {
                for event in events {
                    heap.push(Reverse(Pending(event)));
                }
                if let Some(slot) = watermarks.get_mut(worker) {
                    *slot = watermark;
                }
                let below = watermarks.iter().copied().min().unwrap_or(0);
                release(&mut heap, below, &mut stats);
            }
            WorkerMessage::Done {
                worker,
                counters,
                flows_active,
            } => {
                stats.flow.add(&counters);
                stats.flows_active += flows_active;
                if let Some(slot) = watermarks.get_mut(worker) {
                    *slot = u64::MAX;
                }
            }
        }
    }
    release(&mut heap, u64::MAX, &mut stats);
    if error.is_none() && !closed {
        match writer.flush() {
            Ok(()) => {}
            Err(OutputError::Closed) => closed = true,
            Err(e) => error = Some(e),
        }
    }
    stats.output = writer.counters().clone();
    (stats, error, closed)
}
