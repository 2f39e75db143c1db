//! Run statistics: per-thread counters and histograms merged into one
//! snapshot, written as a `tlstap.stats` record every interval (live) or once
//! at the end (offline), and summarised for people on stderr.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::capture::KernelStats;
use crate::output::sink::SinkCounters;
use crate::{decode, flow, output, policy};

/// A latency histogram in the unit given by its name (µs or ns).
pub fn histogram() -> Histogram<u64> {
    // 1 .. 10^10 with 2 significant digits: ~10 KiB, enough for ns and µs.
    Histogram::new_with_bounds(1, 10_000_000_000, 2)
        .expect("constant bounds 1..1e10, 2 digits, are valid")
}

/// What the reader counted since the start.
#[derive(Debug, Clone, Default)]
pub struct ReaderStats {
    pub packets: u64,
    pub bytes: u64,
    pub packets_not_tcp: u64,
    /// Packets dropped in user space because a worker queue was full (live only).
    pub packets_user_dropped: u64,
    /// Payloads of finished flows the reader did not copy (capture bypass).
    pub payloads_withheld: u64,
    pub decode: decode::Counters,
    pub fragments: decode::fragment::FragmentCounters,
    pub kernel: Option<KernelStats>,
    pub worker_queue_depth: Vec<u64>,
}

/// The memory cap's state (`--memcap`), read from the shared budget.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryStats {
    pub cap: usize,
    pub in_use: usize,
    pub peak: usize,
    pub emergencies: u64,
    pub emergency_now: bool,
}

impl MemoryStats {
    pub fn of(budget: &crate::memory::MemoryBudget) -> Self {
        Self {
            cap: budget.cap(),
            in_use: budget.used(),
            peak: budget.peak(),
            emergencies: budget.emergencies(),
            emergency_now: budget.is_emergency(),
        }
    }
}

/// Everything counted during a run, summed over threads.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub reader: ReaderStats,
    pub flow: flow::Counters,
    /// The workers' judgement and rendering caches.
    pub prepare: output::PrepareCounters,
    pub flows_active: u64,
    pub output: output::Counters,
    pub sink: SinkCounters,
    /// The inventory's: records added and refused.
    pub archive: SinkCounters,
    pub policy: policy::Counters,
    pub output_queue_depth: u64,
    /// TLS records written, by ECS version text ("1.3", "1.2", …, "unknown").
    pub sessions_by_version: BTreeMap<String, u64>,
    pub plaintext_records: u64,
    /// Per-packet worker processing time, nanoseconds (measured per batch).
    pub processing_ns: Histogram<u64>,
    /// ClientHello → ServerHello, microseconds.
    pub handshake_rtt_us: Histogram<u64>,
    pub memory: MemoryStats,
    /// `--keylog` store: entries read and dropped at its cap.
    pub keylog: flow::keylog::KeyLogCounters,
}

impl Default for Snapshot {
    fn default() -> Self {
        Self {
            reader: ReaderStats::default(),
            flow: flow::Counters::default(),
            prepare: output::PrepareCounters::default(),
            flows_active: 0,
            output: output::Counters::default(),
            sink: SinkCounters::default(),
            archive: SinkCounters::default(),
            policy: policy::Counters::default(),
            output_queue_depth: 0,
            sessions_by_version: BTreeMap::new(),
            plaintext_records: 0,
            processing_ns: histogram(),
            handshake_rtt_us: histogram(),
            memory: MemoryStats::default(),
            keylog: Default::default(),
        }
    }
}

/// p50/p90/p99/max of a histogram (zero when empty).
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Percentiles {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(histogram: &Histogram<u64>) -> Self {
        Self {
            count: histogram.len(),
            p50: histogram.value_at_quantile(0.5),
            p90: histogram.value_at_quantile(0.9),
            p99: histogram.value_at_quantile(0.99),
            max: histogram.max(),
        }
    }
}

/// The `tlstap.stats` record.
#[derive(Debug, Serialize)]
pub struct StatsRecord<'a> {
    #[serde(rename = "@timestamp")]
    pub timestamp: String,
    pub event: StatsEvent,
    pub tlstap: StatsBody<'a>,
}

#[derive(Debug, Serialize)]
pub struct StatsEvent {
    pub kind: &'static str,
    pub dataset: &'static str,
}

#[derive(Debug, Serialize)]
pub struct StatsBody<'a> {
    pub stats: StatsFields<'a>,
}

#[derive(Debug, Serialize)]
pub struct StatsFields<'a> {
    pub packets: u64,
    pub bytes: u64,
    pub kernel_received: Option<u64>,
    pub kernel_drops: Option<u64>,
    pub interface_drops: Option<u64>,
    pub user_drops: u64,
    pub decode_errors: u64,
    pub packets_not_tcp: u64,
    pub packets_bypassed: u64,
    pub payloads_withheld: u64,
    pub withheld_untracked: u64,
    pub duplicates: u64,
    pub flows_active: u64,
    pub flows_created: u64,
    pub flows_evicted: u64,
    pub flows_timed_out: u64,
    pub tls_sessions: u64,
    pub plaintext_records: u64,
    pub sessions_by_version: &'a BTreeMap<String, u64>,
    pub findings_by_id: &'a BTreeMap<&'static str, u64>,
    pub handshakes_truncated: u64,
    pub segments_out_of_order: u64,
    pub segments_out_of_order_dropped: u64,
    pub segments_retransmitted: u64,
    pub overlap_conflicts: u64,
    /// IP fragments received, datagrams reassembled, and those given up.
    pub ip_fragments: u64,
    pub ip_fragments_reassembled: u64,
    pub ip_fragments_timed_out: u64,
    pub ip_fragments_evicted: u64,
    pub ip_fragments_dropped: u64,
    /// QUIC Initial packets decrypted and those that failed to decrypt.
    pub quic_packets_decrypted: u64,
    pub quic_decrypt_failures: u64,
    pub dtls_records: u64,
    pub worker_queue_depth: &'a [u64],
    pub output_queue_depth: u64,
    pub records_written: u64,
    pub records_dropped: u64,
    /// `--inventory`: records added to it, and refused (malformed or past its service cap).
    pub inventory_records: u64,
    pub inventory_refused: u64,
    /// Findings an exception covered; services the bounded cross-session
    /// history and drift memory forgot at their cap.
    pub findings_excepted: u64,
    pub services_forgotten: u64,
    pub sink_queue_depth: u64,
    /// Network sinks: records the destination acknowledged, refused for
    /// good (or timed out), and dropped at the queue bound.
    pub sink_delivered: u64,
    pub sink_failed: u64,
    pub sink_queue_full: u64,
    /// Each distinct certificate is parsed once per worker: hits are
    /// certificates served from that cache, misses were parsed.
    pub certificate_cache_hits: u64,
    pub certificate_cache_misses: u64,
    pub certificate_cache_evicted: u64,
    /// Chain verdicts (trust, key and signature strength) reused per distinct
    /// chain, and computed.
    pub chain_verdicts_cached: u64,
    pub chain_verdicts_computed: u64,
    /// Certificates rendered into records from the cache, and rendered anew.
    pub certificate_renders_cached: u64,
    pub certificate_renders: u64,
    /// `--keylog`: TLS 1.3 handshakes decrypted, seen without their secrets,
    /// and key-log entries dropped at the store's cap.
    pub tls13_decrypted: u64,
    pub tls13_keys_missing: u64,
    pub keylog_entries: u64,
    pub keylog_entries_dropped: u64,
    pub handshake_rtt_us: Percentiles,
    pub packet_processing_ns: Percentiles,
    /// The memory cap (`--memcap`): bytes charged now and at most, flow
    /// creations refused at the cap, times emergency mode was entered, and
    /// handshakes dropped to stay under the cap (each still reported with
    /// `end_reason: memory_pressure`).
    pub memcap_bytes: usize,
    pub memcap_bytes_in_use: usize,
    pub memcap_peak_bytes: usize,
    pub memcap_refused_flows: u64,
    pub emergency_mode_entered: u64,
    pub emergency_mode: bool,
    pub emergency_timeouts: u64,
    pub handshakes_dropped_by_pressure: u64,
}

impl Snapshot {
    pub fn tls_sessions(&self) -> u64 {
        self.sessions_by_version.values().sum()
    }

    pub fn record(&self, timestamp: String) -> StatsRecord<'_> {
        let kernel = self.reader.kernel;
        StatsRecord {
            timestamp,
            event: StatsEvent {
                kind: "metric",
                dataset: "tlstap.stats",
            },
            tlstap: StatsBody {
                stats: StatsFields {
                    packets: self.reader.packets,
                    bytes: self.reader.bytes,
                    kernel_received: kernel.map(|k| k.received),
                    kernel_drops: kernel.map(|k| k.dropped),
                    interface_drops: kernel.map(|k| k.interface_dropped),
                    user_drops: self.reader.packets_user_dropped,
                    decode_errors: self.reader.decode.errors(),
                    packets_not_tcp: self.reader.packets_not_tcp
                        + self.reader.decode.packets_not_ip
                        + self.reader.decode.packets_not_tcp_udp,
                    packets_bypassed: self.flow.packets_bypassed,
                    payloads_withheld: self.reader.payloads_withheld,
                    withheld_untracked: self.flow.withheld_untracked,
                    duplicates: self.flow.duplicates,
                    flows_active: self.flows_active,
                    flows_created: self.flow.flows_created,
                    flows_evicted: self.flow.flows_evicted,
                    flows_timed_out: self.flow.flows_timed_out,
                    tls_sessions: self.tls_sessions(),
                    plaintext_records: self.plaintext_records,
                    sessions_by_version: &self.sessions_by_version,
                    findings_by_id: &self.output.findings_by_id,
                    handshakes_truncated: self.flow.tls.handshakes_truncated,
                    segments_out_of_order: self.flow.reassembly.segments_out_of_order,
                    segments_out_of_order_dropped: self
                        .flow
                        .reassembly
                        .segments_out_of_order_dropped,
                    segments_retransmitted: self.flow.reassembly.segments_retransmitted,
                    overlap_conflicts: self.flow.reassembly.overlap_conflicts,
                    ip_fragments: self.reader.fragments.fragments,
                    ip_fragments_reassembled: self.reader.fragments.reassembled,
                    ip_fragments_timed_out: self.reader.fragments.timed_out,
                    ip_fragments_evicted: self.reader.fragments.evicted,
                    ip_fragments_dropped: self.reader.fragments.too_large
                        + self.reader.fragments.too_many_fragments
                        + self.reader.fragments.malformed,
                    quic_packets_decrypted: self.flow.quic.packets_decrypted,
                    quic_decrypt_failures: self.flow.quic.packets_decrypt_failed,
                    dtls_records: self.flow.dtls.records_parsed,
                    worker_queue_depth: &self.reader.worker_queue_depth,
                    output_queue_depth: self.output_queue_depth,
                    records_written: self.output.records_written,
                    records_dropped: self.sink.lines_dropped,
                    inventory_records: self.archive.lines_queued,
                    inventory_refused: self.archive.lines_dropped,
                    findings_excepted: self.policy.findings_excepted,
                    services_forgotten: self.policy.services_evicted,
                    sink_queue_depth: self.sink.queue_depth,
                    sink_delivered: self.sink.lines_delivered,
                    sink_failed: self.sink.lines_failed,
                    sink_queue_full: self.sink.lines_queue_full,
                    certificate_cache_hits: self.flow.certificate_cache.hits,
                    certificate_cache_misses: self.flow.certificate_cache.misses,
                    certificate_cache_evicted: self.flow.certificate_cache.evicted,
                    chain_verdicts_cached: self.prepare.judge.chain_verdicts_cached,
                    chain_verdicts_computed: self.prepare.judge.chain_verdicts_computed,
                    certificate_renders_cached: self.prepare.rendered_certificates.hits,
                    certificate_renders: self.prepare.rendered_certificates.misses,
                    tls13_decrypted: self.flow.tls.handshakes_decrypted,
                    tls13_keys_missing: self.flow.tls.handshakes_keys_missing,
                    keylog_entries: self.keylog.entries_loaded,
                    keylog_entries_dropped: self.keylog.entries_dropped,
                    handshake_rtt_us: Percentiles::of(&self.handshake_rtt_us),
                    packet_processing_ns: Percentiles::of(&self.processing_ns),
                    memcap_bytes: self.memory.cap,
                    memcap_bytes_in_use: self.memory.in_use,
                    memcap_peak_bytes: self.memory.peak,
                    memcap_refused_flows: self.flow.memcap_refused_flows,
                    emergency_mode_entered: self.memory.emergencies,
                    emergency_mode: self.memory.emergency_now,
                    emergency_timeouts: self.flow.emergency_timeouts,
                    handshakes_dropped_by_pressure: self.flow.handshakes_dropped_by_pressure,
                },
            },
        }
    }

    /// The short human summary printed on stderr at the end of a run.
    pub fn human_summary(&self) -> String {
        let versions = if self.sessions_by_version.is_empty() {
            "none".to_string()
        } else {
            self.sessions_by_version
                .iter()
                .map(|(version, count)| format!("{version}: {count}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let reader = &self.reader;
        let mut summary = format!(
            "tlstap: {} packets ({} bytes), {} flows (TCP, QUIC, DTLS), {} TLS sessions (versions {}), {} records written; \
             {} decode errors, {} other packets skipped, {} flows evicted, {} handshakes truncated",
            reader.packets,
            reader.bytes,
            self.flow.flows_created,
            self.tls_sessions(),
            versions,
            self.output.records_written,
            reader.decode.errors(),
            reader.packets_not_tcp + reader.decode.packets_not_ip + reader.decode.packets_not_tcp_udp,
            self.flow.flows_evicted,
            self.flow.tls.handshakes_truncated,
        );
        let sink = &self.sink;
        if sink.lines_delivered + sink.lines_failed + sink.lines_queue_full > 0 {
            summary.push_str(&format!(
                "; output delivered {}, failed {}, dropped with the queue full {}",
                sink.lines_delivered, sink.lines_failed, sink.lines_queue_full
            ));
        }
        summary
    }

    /// One status line for a person watching `tlstap live`.
    pub fn status_line(&self) -> String {
        let kernel = self
            .reader
            .kernel
            .map_or(0, |k| k.dropped + k.interface_dropped);
        format!(
            "tlstap live: {} packets, {} flows active, {} TLS sessions, {} records, drops kernel {} user {} output {}",
            self.reader.packets,
            self.flows_active,
            self.tls_sessions(),
            self.output.records_written,
            kernel,
            self.reader.packets_user_dropped,
            self.sink.lines_dropped,
        )
    }
}
