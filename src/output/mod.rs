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
pub use sink::{open_sink, Sink};

use crate::flow::FlowEvent;
use crate::policy::Policy;

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
}

/// Turns finished flows into lines on a sink.
pub struct RecordWriter {
    sink: Box<dyn Sink>,
    line: Vec<u8>,
    counters: Counters,
}

impl RecordWriter {
    pub fn new(sink: Box<dyn Sink>) -> Self {
        Self {
            sink,
            line: Vec::with_capacity(4096),
            counters: Counters::default(),
        }
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Writes the record for `event`.
    pub fn write(&mut self, event: &FlowEvent, policy: &Policy) -> Result<(), OutputError> {
        let record = ecs::build(event, policy);
        self.write_value(&record)
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
        self.sink.flush()
    }
}
