//! `tlstap inventory ingest`: many sensors' records into one estate
//! inventory, from NDJSON files or from the Kafka topic the sensors write to.
//!
//! Kafka is read in a consumer group. Each record's partition position is
//! written in the same SQLite transaction as the record's rows, and the
//! group's offsets are committed only after that transaction: a restart
//! (or another group) resumes from SQLite, and records at or below the stored
//! position are skipped, so every record is applied exactly once. Files are
//! applied as read: ingesting a file twice counts its sessions twice.
//!
//! A line that is not a tlstap record (not JSON, another producer's
//! message, a session without time or address) is counted and reported by
//! location through the caller's callback, never an error.

use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;

use super::sink::{COMMIT_EVERY_RECORDS, COMMIT_INTERVAL};
use super::store::{Ingested, Inventory, InventoryError};

/// Longest line read from a file (a record is a few KiB); a longer one is
/// skipped to its end and reported, never held in memory.
pub const MAX_LINE_BYTES: usize = 4 << 20;

/// Where a skipped record was.
#[derive(Debug, Clone, Copy)]
pub enum Location<'a> {
    File {
        path: &'a Path,
        line: u64,
    },
    Kafka {
        topic: &'a str,
        partition: i32,
        offset: i64,
    },
}

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File { path, line } => write!(f, "{}:{line}", path.display()),
            Location::Kafka {
                topic,
                partition,
                offset,
            } => write!(f, "{topic}/{partition}/{offset}"),
        }
    }
}

/// Why a record was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Not JSON, or JSON that is not a tlstap record.
    NotTlstap,
    /// A tlstap session without a usable time, server address or port.
    Malformed,
    /// A file line longer than [`MAX_LINE_BYTES`].
    TooLong,
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Skip::NotTlstap => "not a tlstap record",
            Skip::Malformed => "a tlstap session without usable time, server address or port",
            Skip::TooLong => "line too long",
        })
    }
}

/// Called once per skipped record.
pub type OnSkip<'a> = &'a mut dyn FnMut(Location<'_>, Skip);

/// A pass over each record before it is stored: the CLI's estate-wide drift
/// judgement (the inventory itself knows no policy).
pub type Judge<'a> = &'a mut dyn FnMut(&mut Value);

/// Parses, judges and stores one line; a line that is not JSON is counted
/// as ignored by the inventory, never an error.
fn apply(
    inventory: &mut Inventory,
    line: &[u8],
    judge: &mut Judge<'_>,
) -> Result<Ingested, InventoryError> {
    match serde_json::from_slice::<Value>(line) {
        Ok(mut record) => {
            judge(&mut record);
            inventory.ingest_record(&record)
        }
        Err(_) => inventory.ingest_line_record(line),
    }
}

/// What an ingest did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IngestCounters {
    pub records_read: u64,
    /// Sessions folded into the inventory.
    pub sessions_added: u64,
    /// Sessions of new services refused at the inventory's service cap.
    pub services_dropped: u64,
    /// tlstap records that are not sessions (stats).
    pub not_sessions: u64,
    /// Records skipped and reported (not tlstap, malformed, too long).
    pub records_skipped: u64,
    /// Kafka records at or below the stored position: applied before.
    pub already_applied: u64,
}

impl IngestCounters {
    fn note(&mut self, outcome: Ingested, location: Location<'_>, on_skip: OnSkip<'_>) {
        match outcome {
            Ingested::Added => self.sessions_added += 1,
            Ingested::ServiceDropped => self.services_dropped += 1,
            Ingested::NotASession => self.not_sessions += 1,
            Ingested::NotTlstap => self.skip(location, Skip::NotTlstap, on_skip),
            Ingested::Malformed => self.skip(location, Skip::Malformed, on_skip),
        }
    }

    fn skip(&mut self, location: Location<'_>, why: Skip, on_skip: OnSkip<'_>) {
        self.records_skipped += 1;
        on_skip(location, why);
    }
}

/// Commits every [`COMMIT_EVERY_RECORDS`] records or [`COMMIT_INTERVAL`].
struct Cadence {
    uncommitted: u64,
    last: Instant,
}

impl Cadence {
    fn new() -> Self {
        Self {
            uncommitted: 0,
            last: Instant::now(),
        }
    }

    fn due(&mut self) -> bool {
        self.uncommitted >= COMMIT_EVERY_RECORDS
            || (self.uncommitted > 0 && self.last.elapsed() >= COMMIT_INTERVAL)
    }

    fn committed(&mut self) {
        self.uncommitted = 0;
        self.last = Instant::now();
    }
}

/// Reads one NDJSON file (`-`: standard input) into the inventory.
pub fn ingest_file(
    inventory: &mut Inventory,
    path: &Path,
    counters: &mut IngestCounters,
    on_skip: OnSkip<'_>,
    mut judge: Judge<'_>,
) -> Result<(), InventoryError> {
    let read_error = |source| InventoryError::Read {
        path: path.to_path_buf(),
        source,
    };
    let input: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(path).map_err(read_error)?)
    };
    let mut reader = BufReader::with_capacity(64 * 1024, input);
    let mut line = Vec::with_capacity(8192);
    let mut number = 0u64;
    let mut cadence = Cadence::new();
    loop {
        line.clear();
        let complete = read_line(&mut reader, &mut line).map_err(read_error)?;
        let Some(complete) = complete else { break };
        number += 1;
        let location = Location::File { path, line: number };
        counters.records_read += 1;
        if !complete {
            counters.skip(location, Skip::TooLong, on_skip);
            continue;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            counters.records_read -= 1;
            continue;
        }
        let outcome = apply(inventory, &line, &mut judge)?;
        counters.note(outcome, location, on_skip);
        cadence.uncommitted += 1;
        if cadence.due() {
            inventory.commit()?;
            cadence.committed();
        }
    }
    inventory.commit()
}

/// Reads up to a newline into `line`, keeping at most [`MAX_LINE_BYTES`].
/// None at the end of input; Some(false) when the line was cut.
fn read_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    let mut any = false;
    let mut complete = true;
    loop {
        let buffer = match reader.fill_buf() {
            Ok(buffer) => buffer,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if buffer.is_empty() {
            return Ok(any.then_some(complete));
        }
        any = true;
        let (chunk, used, end) = match buffer.iter().position(|&b| b == b'\n') {
            Some(at) => (&buffer[..at], at + 1, true),
            None => (buffer, buffer.len(), false),
        };
        if complete && line.len() + chunk.len() <= MAX_LINE_BYTES {
            line.extend_from_slice(chunk);
        } else {
            complete = false;
            line.clear();
        }
        reader.consume(used);
        if end {
            return Ok(Some(complete));
        }
    }
}

#[cfg(feature = "kafka")]
pub use self::kafka::{ingest_kafka, KafkaIngest};

#[cfg(feature = "kafka")]
mod kafka {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    use rdkafka::{Message, Offset, TopicPartitionList};

    use super::*;
    use crate::output::sink::kafka::{check_topic, client_config, KafkaTarget};

    /// How `ingest_kafka` reads a topic.
    #[derive(Debug, Clone)]
    pub struct KafkaIngest {
        pub target: KafkaTarget,
        /// The consumer group (`--group`).
        pub group: String,
        /// librdkafka properties, over the defaults.
        pub properties: Vec<(String, String)>,
        /// Stop after this long without a record (None: until `stop`).
        pub stop_when_idle: Option<Duration>,
        /// Stop after applying this many records.
        pub max_records: Option<u64>,
    }

    fn kafka_error(target: &KafkaTarget, message: String) -> InventoryError {
        InventoryError::Kafka {
            topic: target.to_string(),
            message,
        }
    }

    /// Reads the topic into the inventory until `stop`, the idle time or the
    /// record count says to stop.
    pub fn ingest_kafka(
        inventory: &mut Inventory,
        options: &KafkaIngest,
        stop: &AtomicBool,
        counters: &mut IngestCounters,
        on_skip: OnSkip<'_>,
        mut judge: Judge<'_>,
    ) -> Result<(), InventoryError> {
        let target = &options.target;
        let defaults: Vec<(String, String)> = [
            ("group.id", options.group.as_str()),
            ("client.id", "tlstap-inventory-ingest"),
            // Offsets are committed by hand, after SQLite has the rows.
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
        let consumer: BaseConsumer = client_config(target, &defaults, &options.properties)
            .create()
            .map_err(|error| kafka_error(target, format!("Kafka consumer: {error}")))?;
        check_topic(consumer.client(), target).map_err(|message| kafka_error(target, message))?;
        consumer
            .subscribe(&[&target.topic])
            .map_err(|error| kafka_error(target, format!("subscribing: {error}")))?;

        let mut positions: BTreeMap<i32, i64> = inventory
            .ingest_positions(&target.topic)?
            .into_iter()
            .collect();
        // Partitions whose position moved since the group's last commit.
        let mut moved: BTreeSet<i32> = BTreeSet::new();
        // Partitions sought past what was applied already (once each).
        let mut sought: BTreeSet<i32> = BTreeSet::new();
        let mut cadence = Cadence::new();
        let mut last_record = Instant::now();
        let mut applied = 0u64;
        let commit = |inventory: &mut Inventory,
                      moved: &mut BTreeSet<i32>,
                      positions: &BTreeMap<i32, i64>,
                      mode: CommitMode|
         -> Result<(), InventoryError> {
            inventory.commit()?;
            let mut list = TopicPartitionList::new();
            for partition in moved.iter() {
                if let Some(next) = positions.get(partition) {
                    let _ =
                        list.add_partition_offset(&target.topic, *partition, Offset::Offset(*next));
                }
            }
            if list.count() > 0 {
                // SQLite holds the truth; a failed group commit only means
                // a restart re-reads (and skips) a few records.
                let _ = consumer.commit(&list, mode);
            }
            moved.clear();
            Ok(())
        };
        while !stop.load(Ordering::Relaxed) && options.max_records.is_none_or(|max| applied < max) {
            let message = match consumer.poll(Duration::from_millis(200)) {
                None => {
                    if cadence.due() || (cadence.uncommitted > 0 && !moved.is_empty()) {
                        commit(inventory, &mut moved, &positions, CommitMode::Async)?;
                        cadence.committed();
                    }
                    if options
                        .stop_when_idle
                        .is_some_and(|idle| last_record.elapsed() >= idle)
                    {
                        break;
                    }
                    continue;
                }
                // Broker errors (a broker away, a rebalance) are retried by
                // librdkafka; the loop goes on.
                Some(Err(_)) => continue,
                Some(Ok(message)) => message,
            };
            last_record = Instant::now();
            let partition = message.partition();
            let offset = message.offset();
            counters.records_read += 1;
            if positions.get(&partition).is_some_and(|next| offset < *next) {
                counters.already_applied += 1;
                if sought.insert(partition) {
                    if let Some(next) = positions.get(&partition) {
                        let _ = consumer.seek(
                            &target.topic,
                            partition,
                            Offset::Offset(*next),
                            Duration::from_secs(5),
                        );
                    }
                }
                continue;
            }
            inventory.set_ingest_position(&target.topic, partition, offset + 1)?;
            positions.insert(partition, offset + 1);
            moved.insert(partition);
            let payload = message.payload().unwrap_or_default();
            let outcome = apply(inventory, payload, &mut judge)?;
            let location = Location::Kafka {
                topic: &target.topic,
                partition,
                offset,
            };
            counters.note(outcome, location, on_skip);
            applied += 1;
            cadence.uncommitted += 1;
            if cadence.due() {
                commit(inventory, &mut moved, &positions, CommitMode::Async)?;
                cadence.committed();
            }
        }
        commit(inventory, &mut moved, &positions, CommitMode::Sync)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<(Vec<u8>, bool)> {
        let mut reader = BufReader::with_capacity(16, input);
        let mut out = Vec::new();
        let mut line = Vec::new();
        while let Some(complete) = read_line(&mut reader, &mut line).expect("read") {
            out.push((std::mem::take(&mut line), complete));
        }
        out
    }

    #[test]
    fn lines_are_split_at_newlines_across_buffer_refills() {
        let long = vec![b'x'; 40];
        let mut input = long.clone();
        input.extend_from_slice(b"\n{}\nlast");
        assert_eq!(
            lines(&input),
            vec![
                (long, true),
                (b"{}".to_vec(), true),
                (b"last".to_vec(), true)
            ]
        );
    }

    #[test]
    fn a_line_over_the_cap_is_cut_and_flagged() {
        let mut input = vec![b'x'; MAX_LINE_BYTES + 10];
        input.extend_from_slice(b"\n{}\n");
        let found = lines(&input);
        assert_eq!(found.len(), 2);
        assert!(!found[0].1);
        assert!(found[0].0.is_empty());
        assert_eq!(found[1], (b"{}".to_vec(), true));
    }

    #[test]
    fn files_skip_foreign_lines_by_line_number_and_count_stats_apart() {
        let dir = std::env::temp_dir().join(format!("tlstap-ingest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let records = dir.join("records.ndjson");
        std::fs::write(
            &records,
            "{\"event\":{\"dataset\":\"tlstap.stats\"}}\nnot json\n\n{\"other\":1}\n",
        )
        .expect("write");
        let mut inventory =
            Inventory::open(&dir.join("inventory.sqlite"), Default::default()).expect("open");
        let mut counters = IngestCounters::default();
        let mut skipped = Vec::new();
        ingest_file(
            &mut inventory,
            &records,
            &mut counters,
            &mut |location, why| skipped.push(format!("{location}: {why}")),
            &mut |_| {},
        )
        .expect("ingest");
        let name = records.display();
        assert_eq!(
            skipped,
            vec![
                format!("{name}:2: not a tlstap record"),
                format!("{name}:4: not a tlstap record"),
            ]
        );
        assert_eq!(counters.records_read, 3);
        assert_eq!(counters.not_sessions, 1);
        assert_eq!(counters.records_skipped, 2);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
