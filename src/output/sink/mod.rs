//! Where records go. A new destination is one file here and one arm in [`open_sink`].

mod file;
#[cfg(feature = "kafka")]
pub mod kafka;
mod multi;
mod stdout;
mod stream;

pub use file::FileSink;
pub use multi::MultiSink;
pub use stdout::StdoutSink;
pub use stream::{StreamSink, StreamTarget};

use super::OutputError;

/// What a sink has delivered and dropped, for the stats record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkCounters {
    pub lines_queued: u64,
    pub lines_dropped: u64,
    pub queue_depth: u64,
    pub reconnects: u64,
    /// Network sinks: lines the destination acknowledged, lines it finally
    /// refused (or that timed out), lines dropped at the queue bound.
    pub lines_delivered: u64,
    pub lines_failed: u64,
    pub lines_queue_full: u64,
}

impl SinkCounters {
    pub fn add(&mut self, other: &SinkCounters) {
        self.lines_queued += other.lines_queued;
        self.lines_dropped += other.lines_dropped;
        self.queue_depth += other.queue_depth;
        self.reconnects += other.reconnects;
        self.lines_delivered += other.lines_delivered;
        self.lines_failed += other.lines_failed;
        self.lines_queue_full += other.lines_queue_full;
    }
}

/// A destination for NDJSON lines; called only from the output stage.
pub trait Sink: Send {
    /// Writes one line, newline included.
    fn write_line(&mut self, line: &[u8]) -> Result<(), OutputError>;
    /// Writes one line given in parts (the record's head, then its findings).
    /// Buffered sinks copy the parts straight in; the others get the line
    /// joined in `scratch`.
    fn write_parts(&mut self, parts: &[&[u8]], scratch: &mut Vec<u8>) -> Result<(), OutputError> {
        scratch.clear();
        for part in parts {
            scratch.extend_from_slice(part);
        }
        self.write_line(scratch)
    }
    /// Delivers or persists everything written so far.
    fn flush(&mut self) -> Result<(), OutputError>;
    /// Reopens file outputs (SIGHUP, after logrotate moved the file).
    fn reopen(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
    /// Counters of network sinks (queue depth, drops); zero elsewhere.
    fn counters(&self) -> SinkCounters {
        SinkCounters::default()
    }
    /// Lines `write_line` accepted that never reached the destination because
    /// its reader went away ([`OutputError::Closed`]), e.g. stdout's buffer
    /// when `| head` exits. The writer takes them back out of "written".
    fn lines_lost(&self) -> u64 {
        0
    }
    /// Ends the destination at the end of a run: flushes, and the inventory
    /// also applies retention and checkpoints its log.
    fn close(&mut self) -> Result<(), OutputError> {
        self.flush()
    }
}

/// Options that apply to file and network sinks.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// fsync a file sink after this many records (0: never).
    pub fsync_every: u64,
    /// Lines a network sink holds while its peer is away; beyond it the
    /// oldest (Kafka: the newest) are dropped and counted.
    pub queue_lines: usize,
    /// Bytes a network sink holds, the same way (records grow with their
    /// certificate chains: a count alone does not bound the memory).
    pub queue_bytes: usize,
    /// Kafka: librdkafka properties (`--kafka-property`), over tlstap's defaults.
    pub kafka_properties: Vec<(String, String)>,
    /// Kafka: the producer's `client.id` (the sensor's name).
    pub client_id: String,
}

/// Maps a destination to a sink:
/// `-` stdout; `file:PATH` append; a bare `PATH` create/truncate;
/// `tcp://HOST:PORT` and `unix:PATH` newline-delimited JSON streams;
/// `kafka://BROKER[,BROKER…]/TOPIC` a Kafka topic.
pub fn open_sink(destination: &str, options: &SinkOptions) -> Result<Box<dyn Sink>, OutputError> {
    if destination == "-" {
        return Ok(Box::new(StdoutSink::new()));
    }
    if destination.starts_with("kafka://") {
        return open_kafka(destination, options);
    }
    if let Some(address) = destination.strip_prefix("tcp://") {
        if address.is_empty() || !address.contains(':') {
            return Err(OutputError::BadDestination(destination.to_string()));
        }
        return Ok(Box::new(
            StreamSink::start(StreamTarget::Tcp(address.to_string()), options.queue_lines)
                .with_queue_bytes(options.queue_bytes),
        ));
    }
    if let Some(path) = destination.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(OutputError::BadDestination(destination.to_string()));
        }
        return Ok(Box::new(
            StreamSink::start(StreamTarget::Unix(path.into()), options.queue_lines)
                .with_queue_bytes(options.queue_bytes),
        ));
    }
    if let Some(path) = destination.strip_prefix("file:") {
        if path.is_empty() {
            return Err(OutputError::BadDestination(destination.to_string()));
        }
        return Ok(Box::new(FileSink::append(path, options.fsync_every)?));
    }
    if destination.is_empty() || destination.contains("://") {
        return Err(OutputError::BadDestination(destination.to_string()));
    }
    Ok(Box::new(FileSink::create(destination)?))
}

#[cfg(feature = "kafka")]
fn open_kafka(destination: &str, options: &SinkOptions) -> Result<Box<dyn Sink>, OutputError> {
    let target = kafka::KafkaTarget::parse(destination)
        .ok_or_else(|| OutputError::BadDestination(destination.to_string()))?;
    Ok(Box::new(kafka::KafkaSink::open(
        target,
        options.queue_lines,
        options.queue_bytes,
        &options.client_id,
        &options.kafka_properties,
    )?))
}

#[cfg(not(feature = "kafka"))]
fn open_kafka(destination: &str, _: &SinkOptions) -> Result<Box<dyn Sink>, OutputError> {
    Err(OutputError::Io {
        destination: destination.to_string(),
        source: std::io::Error::other("this tlstap was built without the kafka feature"),
    })
}

/// Opens every destination; one sink is returned as is, several fan out.
pub fn open_sinks(
    destinations: &[String],
    options: &SinkOptions,
) -> Result<Box<dyn Sink>, OutputError> {
    let mut sinks = Vec::with_capacity(destinations.len());
    for destination in destinations {
        sinks.push(open_sink(destination, options)?);
    }
    if sinks.len() == 1 {
        if let Some(sink) = sinks.pop() {
            return Ok(sink);
        }
    }
    Ok(Box::new(MultiSink::new(sinks)))
}
