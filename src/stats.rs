//! Run statistics: per-thread counters summed into one snapshot.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{decode, flow, output};

/// Everything counted during a run, summed over threads.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub packets_read: u64,
    pub bytes_read: u64,
    pub packets_skipped_non_tcp: u64,
    pub decode: decode::Counters,
    pub flow: flow::Counters,
    pub output: output::Counters,
    pub flows_active: u64,
    /// TLS records written, by ECS version text ("1.3", "1.2", …, "unknown").
    pub sessions_by_version: BTreeMap<String, u64>,
    pub plaintext_records: u64,
}

/// The `tlstap.stats` record (one at the end of an offline run).
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
    pub decode_errors: u64,
    pub packets_not_tcp: u64,
    pub packets_bypassed: u64,
    pub flows_created: u64,
    pub flows_active: u64,
    pub flows_evicted: u64,
    pub flows_timed_out: u64,
    pub tls_sessions: u64,
    pub sessions_by_version: &'a BTreeMap<String, u64>,
    pub handshakes_truncated: u64,
    pub segments_out_of_order: u64,
    pub segments_retransmitted: u64,
    pub overlap_conflicts: u64,
    pub records_written: u64,
}

impl Snapshot {
    pub fn tls_sessions(&self) -> u64 {
        self.sessions_by_version.values().sum()
    }

    pub fn record(&self, timestamp: String) -> StatsRecord<'_> {
        StatsRecord {
            timestamp,
            event: StatsEvent {
                kind: "metric",
                dataset: "tlstap.stats",
            },
            tlstap: StatsBody {
                stats: StatsFields {
                    packets: self.packets_read,
                    bytes: self.bytes_read,
                    decode_errors: self.decode.errors(),
                    packets_not_tcp: self.packets_skipped_non_tcp,
                    packets_bypassed: self.flow.packets_bypassed,
                    flows_created: self.flow.flows_created,
                    flows_active: self.flows_active,
                    flows_evicted: self.flow.flows_evicted,
                    flows_timed_out: self.flow.flows_timed_out,
                    tls_sessions: self.tls_sessions(),
                    sessions_by_version: &self.sessions_by_version,
                    handshakes_truncated: self.flow.tls.handshakes_truncated,
                    segments_out_of_order: self.flow.reassembly.segments_out_of_order,
                    segments_retransmitted: self.flow.reassembly.segments_retransmitted,
                    overlap_conflicts: self.flow.reassembly.overlap_conflicts,
                    records_written: self.output.records_written,
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
        format!(
            "tlstap: {} packets ({} bytes), {} TCP flows, {} TLS sessions (versions {}), {} records written; \
             {} decode errors, {} non-TCP packets skipped, {} flows evicted, {} handshakes truncated",
            self.packets_read,
            self.bytes_read,
            self.flow.flows_created,
            self.tls_sessions(),
            versions,
            self.output.records_written,
            self.decode.errors(),
            self.packets_skipped_non_tcp + self.decode.packets_not_ip + self.decode.packets_not_tcp_udp,
            self.flow.flows_evicted,
            self.flow.tls.handshakes_truncated,
        )
    }
}
