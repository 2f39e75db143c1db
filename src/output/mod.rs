//! Output: finished flows in, NDJSON lines out.
//!
//! Each worker's [`Preparer`] turns a finished flow into a [`PreparedRecord`]:
//! fingerprints, the per-session findings and the record serialised up to its
//! findings, in parallel. The pipeline's output stage calls
//! [`RecordWriter::write`] for each in packet order: the cross-session
//! findings are added, exceptions applied, the output filters decide, and the
//! finished line goes to a [`Sink`]. A closed stdout is not an error: it ends
//! the run quietly, as for any Unix filter.

mod certificate;
mod community_id;
pub mod ecs;
mod prepare;
pub mod sink;

pub use certificate::{RenderCounters, RenderLimits};
pub use community_id::community_id_v1;
pub use prepare::{PrepareCounters, PrepareLimits, PreparedRecord, Preparer, RecordKind};
pub use sink::{open_sink, open_sinks, Sink, SinkOptions};

use crate::policy::{Evaluator, Finding, Policy, Severity};

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
    #[error("{0:?} is not an output: use -, FILE, file:PATH, tcp://HOST:PORT, unix:PATH or kafka://BROKER[,BROKER…]/TOPIC")]
    BadDestination(String),
    #[error("record could not be serialised: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("record could not be built: {0}")]
    Record(String),
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
    /// A record's findings and closing braces; `line` joins head and tail
    /// for sinks that need the whole line at once.
    tail: Vec<u8>,
    counters: Counters,
    /// Findings written, by rule rank (`counters.findings_by_id` is filled
    /// from it when read: no id string compared per finding).
    findings_by_rank: Vec<u64>,
    /// The sink's `lines_lost` already taken out of `records_written`.
    lines_lost_counted: u64,
    /// `,"observer":{…}`, put after each record's `@timestamp`.
    observer: Vec<u8>,
}

/// A closed output: records it accepted but never delivered are not written.
fn settle(
    sink: &dyn Sink,
    lost_counted: &mut u64,
    counters: &mut Counters,
    result: Result<(), OutputError>,
) -> Result<(), OutputError> {
    if let Err(OutputError::Closed) = result {
        let lost = sink.lines_lost();
        let new = lost.saturating_sub(*lost_counted);
        *lost_counted = lost;
        counters.records_written = counters.records_written.saturating_sub(new);
    }
    result
}

/// Where a record's `@timestamp` member ends (records and stats records all
/// start with it): the observer goes there.
fn timestamp_end(line: &[u8]) -> Option<usize> {
    const START: &[u8] = b"{\"@timestamp\":\"";
    let rest = line.strip_prefix(START)?;
    let close = rest.iter().position(|&b| b == b'"')?;
    Some(START.len() + close + 1)
}

impl RecordWriter {
    pub fn new(sink: Box<dyn Sink>) -> Self {
        Self {
            sink,
            archive: None,
            line: Vec::with_capacity(4096),
            tail: Vec::with_capacity(1024),
            counters: Counters::default(),
            findings_by_rank: vec![0; crate::policy::rules::RULES.len()],
            lines_lost_counted: 0,
            observer: Vec::new(),
        }
    }

    /// Adds ECS `observer.*` to every record (sessions and stats).
    pub fn with_observer(mut self, observer: &ecs::Observer<'_>) -> Result<Self, OutputError> {
        self.observer.clear();
        self.observer.extend_from_slice(b",\"observer\":");
        serde_json::to_writer(&mut self.observer, observer)?;
        Ok(self)
    }

    /// Also hands every session record, unfiltered, to `archive`.
    pub fn with_archive(mut self, archive: Box<dyn Sink>) -> Self {
        self.archive = Some(archive);
        self
    }

    pub fn counters(&self) -> Counters {
        let mut counters = self.counters.clone();
        for (rule, &count) in crate::policy::rules::RULES
            .iter()
            .zip(&self.findings_by_rank)
        {
            if count > 0 {
                *counters.findings_by_id.entry(rule.id).or_insert(0) += count;
            }
        }
        counters
    }

    /// Finishes a prepared session (in packet order) and writes its record if
    /// it is wanted: every TLS session, and plaintext sessions only when they
    /// raise a finding.
    pub fn write(
        &mut self,
        mut record: PreparedRecord,
        policy: &Policy,
        evaluator: &mut Evaluator,
        options: &OutputOptions,
    ) -> Result<(), OutputError> {
        let plaintext = record.kind == RecordKind::Plaintext;
        let mut findings = std::mem::take(&mut record.findings);
        evaluator.evaluate(&record.observation, policy, &mut findings);
        let kept = |finding: &&Finding| {
            finding.severity >= options.min_severity || finding.exception.is_some()
        };
        let wanted = findings.iter().filter(kept).count();
        let filtered = wanted == 0 && (options.only_findings || plaintext);
        // The archive sees every session with every finding; plaintext
        // sessions without a finding are not records anywhere.
        let archived = self.archive.is_some() && !(findings.is_empty() && plaintext);
        let same = wanted == findings.len();
        // Otherwise the archive gets the output line itself, below.
        let head = match record.head() {
            Ok(head) => head,
            Err(error) => {
                self.counters.records_failed += 1;
                return Err(error);
            }
        };
        let split = match self.observer.is_empty() {
            true => None,
            false => timestamp_end(head),
        };
        let (before, after) = head.split_at(split.unwrap_or(0));
        let observer: &[u8] = if split.is_some() { &self.observer } else { &[] };
        if archived && (filtered || !same) {
            let result = PreparedRecord::write_tail(findings.iter(), &mut self.tail);
            if result.is_err() {
                self.counters.records_failed += 1;
            }
            result?;
            if let Some(archive) = self.archive.as_mut() {
                archive.write_parts(&[before, observer, after, &self.tail], &mut self.line)?;
            }
        }
        if filtered {
            self.counters.records_filtered += 1;
            return Ok(());
        }
        for finding in findings.iter().filter(kept) {
            match self.findings_by_rank.get_mut(finding.rank()) {
                Some(count) => *count += 1,
                None => *self.counters.findings_by_id.entry(finding.id).or_insert(0) += 1,
            }
        }
        let result = PreparedRecord::write_tail(findings.iter().filter(kept), &mut self.tail);
        if result.is_err() {
            self.counters.records_failed += 1;
        }
        result?;
        let parts = [before, observer, after, &self.tail];
        let written = self.sink.write_parts(&parts, &mut self.line);
        settle(
            self.sink.as_ref(),
            &mut self.lines_lost_counted,
            &mut self.counters,
            written,
        )?;
        self.counters.records_written += 1;
        if archived && same {
            // The output record is the archive's: built once.
            if let Some(archive) = self.archive.as_mut() {
                archive.write_parts(&parts, &mut self.line)?;
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
        if let (false, Some(at)) = (self.observer.is_empty(), timestamp_end(&self.line)) {
            self.line.splice(at..at, self.observer.iter().copied());
        }
        self.line.push(b'\n');
        let written = self.sink.write_line(&self.line);
        self.settle(written)?;
        self.counters.records_written += 1;
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), OutputError> {
        if let Some(archive) = self.archive.as_mut() {
            archive.flush()?;
        }
        let flushed = self.sink.flush();
        self.settle(flushed)
    }

    fn settle(&mut self, result: Result<(), OutputError>) -> Result<(), OutputError> {
        settle(
            self.sink.as_ref(),
            &mut self.lines_lost_counted,
            &mut self.counters,
            result,
        )
    }

    /// Ends the output at the end of a run (after the pipeline's last flush):
    /// a Kafka sink waits for its deliveries here and fails if any is lost.
    pub fn close_output(&mut self) -> Result<(), OutputError> {
        let closed = self.sink.close();
        self.settle(closed)
    }

    /// Closes the archive (the inventory: retention, log checkpoint) at the
    /// end of a run; the output itself was flushed by the run.
    pub fn close_archive(&mut self) -> Result<(), OutputError> {
        match self.archive.as_mut() {
            Some(archive) => archive.close(),
            None => Ok(()),
        }
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Sink for Capture {
        fn write_line(&mut self, line: &[u8]) -> Result<(), OutputError> {
            self.0.lock().expect("lock").extend_from_slice(line);
            Ok(())
        }
        fn flush(&mut self) -> Result<(), OutputError> {
            Ok(())
        }
    }

    #[test]
    fn the_observer_follows_the_timestamp_and_records_without_one_are_left_alone() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let observer = ecs::Observer {
            name: "dc1 \"core\"",
            hostname: "tap01",
        };
        let mut writer = RecordWriter::new(Box::new(Capture(Arc::clone(&lines))))
            .with_observer(&observer)
            .expect("observer");
        writer
            .write_value(&serde_json::json!({"@timestamp": "2026-01-01T00:00:00Z", "a": 1}))
            .expect("write");
        writer
            .write_value(&serde_json::json!({"b": 2}))
            .expect("write");
        assert_eq!(
            String::from_utf8(lines.lock().expect("lock").clone()).expect("utf-8"),
            "{\"@timestamp\":\"2026-01-01T00:00:00Z\",\"observer\":{\"name\":\"dc1 \\\"core\\\"\",\
             \"hostname\":\"tap01\"},\"a\":1}\n{\"b\":2}\n"
        );
        assert_eq!(timestamp_end(b"{\"@timestamp\":\"unterminated"), None);
    }
}
