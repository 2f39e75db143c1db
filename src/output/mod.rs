//! Output: finished flows in, NDJSON lines out.
//!
//! The pipeline's output stage calls [`RecordWriter::write`] for each finished
//! session in packet order. Records are built from flow/tls/x509 summaries plus
//! policy judgements ([`ecs::build`]), serialised into one reused buffer and
//! handed to a [`Sink`] as whole lines. A closed stdout is not an error: it
//! ends the run quietly, as for any Unix filter.

mod community_id;
pub mod ecs;
pub mod sink;

pub use community_id::community_id_v1;
pub use sink::{open_sink, open_sinks, Sink, SinkOptions};

use crate::flow::{FlowContent, FlowEvent};
use crate::policy::{Evaluator, Policy, SessionFacts, Severity};
use crate::tls::plaintext;

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{destination}")]
    Io {
        destination: String,
        #[source]
        source: std::io::Error,
    },
    /// The reader went away (e.g. `| head`): stop writing, exit cleanly.
    #[error("output closed by the reader")]
    Closed,
    #[error("{0:?} is not an output: use -, FILE, or file:PATH")]
    BadDestination(String),
    #[error("record could not be serialised: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// Output counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub records_written: u64,
    pub records_failed: u64,
    /// Sessions not written because of `--only-findings`.
    pub records_filtered: u64,
    /// Findings written, by id.
    pub findings_by_id: std::collections::BTreeMap<&'static str, u64>,
}

/// Which records and findings are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputOptions {
    /// Write only sessions with at least one finding (after `min_severity`).
    pub only_findings: bool,
    /// Findings below this severity are left out of records.
    pub min_severity: Severity,
    /// Also write JA4's raw form (`tlstap.client.ja4_r`).
    pub raw_fingerprints: bool,
}

impl Default for OutputOptions {
    fn default() -> Self {
        Self {
            only_findings: false,
            min_severity: Severity::Info,
            raw_fingerprints: false,
        }
    }
}

/// Turns finished flows into lines on a sink.
pub struct RecordWriter {
    sink: Box<dyn Sink>,
    /// Sees every session record with every finding, whatever the output
    /// filters drop (the inventory).
    archive: Option<Box<dyn Sink>>,
    line: Vec<u8>,
    counters: Counters,
}

impl RecordWriter {
    pub fn new(sink: Box<dyn Sink>) -> Self {
        Self {
            sink,
            archive: None,
            line: Vec::with_capacity(4096),
            counters: Counters::default(),
        }
    }

    /// Also hands every session record, unfiltered, to `archive`.
    pub fn with_archive(mut self, archive: Box<dyn Sink>) -> Self {
        self.archive = Some(archive);
        self
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Judges `event` (in packet order) and writes its record if it is wanted:
    /// every TLS session, and plaintext sessions only when they raise a finding.
    pub fn write(
        &mut self,
        event: &FlowEvent,
        policy: &Policy,
        evaluator: &mut Evaluator,
        options: &OutputOptions,
    ) -> Result<(), OutputError> {
        let (tls, plaintext) = match &event.content {
            FlowContent::Tls(summary) => (Some(summary.as_ref()), None),
            FlowContent::Plaintext {
                client_head,
                server_head,
            } => (None, Some(plaintext::classify(client_head, server_head))),
        };
        let time = tls
            .and_then(|t| t.client_hello.as_ref())
            .map_or(event.first_seen, |hello| hello.time);
        let facts = SessionFacts {
            time,
            client: std::net::SocketAddr::new(event.client.ip, event.client.port),
            server: std::net::SocketAddr::new(event.server.ip, event.server.port),
            direction: policy.internal.direction(event.client.ip, event.server.ip),
            tls,
            plaintext: plaintext.as_ref(),
            previous: None,
        };
        let service = policy.service(&facts);
        let mut findings = evaluator.evaluate(facts, policy);
        let all = self.archive.as_ref().map(|_| findings.clone());
        findings.retain(|finding| {
            finding.severity >= options.min_severity || finding.exception.is_some()
        });
        let filtered = findings.is_empty() && (options.only_findings || plaintext.is_some());
        // The archive sees every session with every finding; plaintext
        // sessions without a finding are not records anywhere.
        let archived = all
            .filter(|all| !(all.is_empty() && plaintext.is_some()))
            .map(|all| (all.len() == findings.len(), all));
        let mut archive_output_line = false;
        if let Some((same, all)) = archived {
            if same && !filtered {
                // The output record is the archive's: build and serialise once.
                archive_output_line = true;
            } else {
                let record = ecs::build(event, policy, service, plaintext.as_ref(), all, options);
                self.line.clear();
                serde_json::to_writer(&mut self.line, &record)?;
                self.line.push(b'\n');
                if let Some(archive) = self.archive.as_mut() {
                    archive.write_line(&self.line)?;
                }
            }
        }
        if filtered {
            self.counters.records_filtered += 1;
            return Ok(());
        }
        for finding in &findings {
            *self.counters.findings_by_id.entry(finding.id).or_insert(0) += 1;
        }
        let record = ecs::build(
            event,
            policy,
            service,
            plaintext.as_ref(),
            findings,
            options,
        );
        self.write_value(&record)?;
        if archive_output_line {
            if let Some(archive) = self.archive.as_mut() {
                archive.write_line(&self.line)?;
            }
        }
        Ok(())
    }

    /// Serialises any record (sessions, stats) as one line.
    pub fn write_value<T: serde::Serialize>(&mut self, value: &T) -> Result<(), OutputError> {
        self.line.clear();
        if let Err(error) = serde_json::to_writer(&mut self.line, value) {
            self.counters.records_failed += 1;
            return Err(error.into());
        }
        self.line.push(b'\n');
        self.sink.write_line(&self.line)?;
        self.counters.records_written += 1;
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), OutputError> {
        if let Some(archive) = self.archive.as_mut() {
            archive.flush()?;
        }
        self.sink.flush()
    }

    /// Reopens file outputs (SIGHUP).
    pub fn reopen(&mut self) -> Result<(), OutputError> {
        self.sink.reopen()
    }

    pub fn sink_counters(&self) -> sink::SinkCounters {
        self.sink.counters()
    }

    /// The archive's (inventory's) counters; zero without one.
    pub fn archive_counters(&self) -> sink::SinkCounters {
        self.archive
            .as_ref()
            .map(|archive| archive.counters())
            .unwrap_or_default()
    }
}
