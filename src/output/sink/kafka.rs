//! Records into a Kafka topic (`kafka://BROKER[,BROKER…]/TOPIC`), the
//! transport many sensors share with the SIEM; `tlstap inventory ingest`
//! reads the topic back into one estate inventory.
//!
//! librdkafka (bundled, built by `rdkafka-sys`) does the work: the producer
//! is idempotent with `acks=all`, so a retried batch is never written twice,
//! and each record is keyed by its `network.community_id`, so one
//! connection's records stay in one partition. Its queue holds at most
//! `--output-queue` records and `--output-queue-bytes` bytes: a broker
//! outage shorter than that (and than `message.timeout.ms`, 5 minutes by
//! default) loses nothing. While the queue
//! is full and the broker still takes records, the output stage waits; once
//! it stops taking them, new records are dropped and counted
//! (`sink_queue_full`). Deliveries that fail for good count as
//! `sink_failed`, and [`Sink::close`] fails the run if anything was not
//! delivered.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use super::{Sink, SinkCounters};
use crate::output::OutputError;

/// How long opening waits for a broker to answer (one line of error after).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the end of a run waits for the queue to be delivered.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);
/// With the queue full, how long the output stage waits for the broker to
/// take a record before it drops the new one.
const QUEUE_FULL_PATIENCE: Duration = Duration::from_secs(2);

/// `kafka://BROKER[,BROKER…]/TOPIC`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaTarget {
    /// `host:port` list, as librdkafka's `bootstrap.servers` takes it.
    pub brokers: String,
    pub topic: String,
}

impl KafkaTarget {
    /// None unless the destination is a well-formed `kafka://` URL.
    pub fn parse(destination: &str) -> Option<Self> {
        let rest = destination.strip_prefix("kafka://")?;
        let (brokers, topic) = rest.split_once('/')?;
        // Kafka topic names: 1-249 of [a-zA-Z0-9._-].
        let topic_ok = !topic.is_empty()
            && topic.len() <= 249
            && topic
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        let brokers_ok = !brokers.is_empty()
            && brokers.split(',').all(|broker| {
                broker
                    .rsplit_once(':')
                    .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
            });
        (topic_ok && brokers_ok).then(|| Self {
            brokers: brokers.to_string(),
            topic: topic.to_string(),
        })
    }
}

impl fmt::Display for KafkaTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "kafka://{}/{}", self.brokers, self.topic)
    }
}

/// What the delivery reports said, shared with librdkafka's poll thread.
#[derive(Default)]
struct Deliveries {
    delivered: AtomicU64,
    failed: AtomicU64,
    /// The latest failure, for the message at the end of the run.
    last_failure: Mutex<Option<String>>,
}

impl Deliveries {
    fn settled(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed)
    }

    fn note_failure(&self, error: &KafkaError) {
        let mut last = self
            .last_failure
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *last = Some(error.to_string());
    }
}

struct DeliveryContext(Arc<Deliveries>);

// librdkafka's own log lines (a broker away, retries) go to the `log` crate,
// which tlstap does not route anywhere: the counters and the final error say
// what matters, once, instead of a line per retry.
impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.0.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((error, _)) => {
                self.0.failed.fetch_add(1, Ordering::Relaxed);
                self.0.note_failure(error);
            }
        }
    }
}

/// Producer settings tlstap chooses; `--kafka-property` may override any.
pub fn producer_defaults(
    queue_records: usize,
    queue_bytes: usize,
    client_id: &str,
) -> Vec<(String, String)> {
    // librdkafka's range: 1 KiB to 2^31 - 1 KiB.
    let kbytes = (queue_bytes / 1024).clamp(1, i32::MAX as usize);
    [
        ("enable.idempotence", "true".to_string()),
        ("acks", "all".to_string()),
        ("client.id", client_id.to_string()),
        (
            "queue.buffering.max.messages",
            queue_records.max(1).to_string(),
        ),
        // Records grow with their certificate chains: the count alone does
        // not bound the memory (librdkafka's default is 1 GiB).
        ("queue.buffering.max.kbytes", kbytes.to_string()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_string(), value))
    .collect()
}

/// Builds a librdkafka configuration: `defaults`, then the user's properties.
pub fn client_config(
    target: &KafkaTarget,
    defaults: &[(String, String)],
    properties: &[(String, String)],
) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &target.brokers);
    for (key, value) in defaults.iter().chain(properties) {
        config.set(key, value);
    }
    config
}

fn kafka_error(target: &KafkaTarget, message: String) -> OutputError {
    OutputError::Io {
        destination: target.to_string(),
        source: std::io::Error::other(message),
    }
}

/// Asks the brokers for the topic: no answer, or no such topic, is one
/// clear error instead of records queueing for a broker that is not there.
pub fn check_topic<C: ClientContext>(
    client: &rdkafka::client::Client<C>,
    target: &KafkaTarget,
) -> Result<usize, String> {
    let metadata = client
        .fetch_metadata(Some(&target.topic), CONNECT_TIMEOUT)
        .map_err(|error| match error.rdkafka_error_code() {
            Some(
                RDKafkaErrorCode::OperationTimedOut | RDKafkaErrorCode::BrokerTransportFailure,
            )
            | Some(RDKafkaErrorCode::AllBrokersDown) => format!(
                "no Kafka broker answered at {} within {} s",
                target.brokers,
                CONNECT_TIMEOUT.as_secs()
            ),
            _ => format!("Kafka metadata from {}: {error}", target.brokers),
        })?;
    let topic = metadata
        .topics()
        .iter()
        .find(|topic| topic.name() == target.topic);
    match topic {
        Some(topic) if topic.error().is_none() && !topic.partitions().is_empty() => {
            Ok(topic.partitions().len())
        }
        Some(topic) => Err(format!(
            "topic {} is not available on {}: {}",
            target.topic,
            target.brokers,
            topic
                .error()
                .map(|code| RDKafkaErrorCode::from(code).to_string())
                .unwrap_or_else(|| "no partitions".to_string())
        )),
        None => Err(format!(
            "topic {} does not exist on {}",
            target.topic, target.brokers
        )),
    }
}

/// A Kafka output.
pub struct KafkaSink {
    target: KafkaTarget,
    producer: ThreadedProducer<DeliveryContext>,
    deliveries: Arc<Deliveries>,
    queued: u64,
    queue_full: u64,
    /// Send errors other than a full queue (e.g. a record over
    /// `message.max.bytes`), counted with the failed deliveries.
    rejected: u64,
    /// The queue was full and the broker took nothing for
    /// [`QUEUE_FULL_PATIENCE`]: drop at once until it moves again.
    stalled_at: Option<u64>,
    close_timeout: Duration,
}

impl KafkaSink {
    /// Connects (waiting at most [`CONNECT_TIMEOUT`] for the topic's
    /// metadata) and starts the producer.
    pub fn open(
        target: KafkaTarget,
        queue_records: usize,
        queue_bytes: usize,
        client_id: &str,
        properties: &[(String, String)],
    ) -> Result<Self, OutputError> {
        let deliveries = Arc::new(Deliveries::default());
        let config = client_config(
            &target,
            &producer_defaults(queue_records, queue_bytes, client_id),
            properties,
        );
        let producer: ThreadedProducer<DeliveryContext> = config
            .create_with_context(DeliveryContext(Arc::clone(&deliveries)))
            .map_err(|error| kafka_error(&target, format!("Kafka producer: {error}")))?;
        check_topic(producer.client(), &target).map_err(|message| kafka_error(&target, message))?;
        Ok(Self {
            target,
            producer,
            deliveries,
            queued: 0,
            queue_full: 0,
            rejected: 0,
            stalled_at: None,
            close_timeout: CLOSE_TIMEOUT,
        })
    }

    pub fn with_close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    fn failed(&self) -> u64 {
        self.deliveries.failed.load(Ordering::Relaxed) + self.rejected
    }

    /// Waits for the broker to settle a record while the queue is full.
    /// False when it settled none within the patience: the broker is away.
    fn wait_for_room(&mut self) -> bool {
        let before = self.deliveries.settled();
        if self.stalled_at.is_some_and(|at| at == before) {
            return false;
        }
        let deadline = Instant::now() + QUEUE_FULL_PATIENCE;
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
            if self.deliveries.settled() != before {
                self.stalled_at = None;
                return true;
            }
        }
        self.stalled_at = Some(before);
        false
    }
}

/// The value of `"community_id":"…"` in a record: the message key. Stats
/// records have none and go to any partition.
fn community_id(line: &[u8]) -> Option<&[u8]> {
    const NEEDLE: &[u8] = b"\"community_id\":\"";
    let start = line
        .windows(NEEDLE.len())
        .position(|window| window == NEEDLE)?
        + NEEDLE.len();
    let length = line.get(start..)?.iter().position(|&b| b == b'"')?;
    line.get(start..start + length)
}

impl Sink for KafkaSink {
    fn write_line(&mut self, line: &[u8]) -> Result<(), OutputError> {
        // One record per message: the NDJSON newline is framing, not data.
        let payload = line.strip_suffix(b"\n").unwrap_or(line);
        let key = community_id(payload);
        loop {
            let mut record = BaseRecord::<[u8], [u8]>::to(&self.target.topic).payload(payload);
            if let Some(key) = key {
                record = record.key(key);
            }
            match self.producer.send(record) {
                Ok(()) => {
                    self.queued += 1;
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    if !self.wait_for_room() {
                        self.queue_full += 1;
                        return Ok(());
                    }
                }
                Err((error, _)) => {
                    self.rejected += 1;
                    self.deliveries.note_failure(&error);
                    return Ok(());
                }
            }
        }
    }

    /// Mid-run: librdkafka delivers on its own (`linger.ms`), so nothing to
    /// wait for; losses are counted and reported by [`Sink::close`].
    fn flush(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    /// Waits up to the close timeout for every queued record; any record not
    /// delivered (dropped at the queue bound, failed, or still queued) makes
    /// the run fail with one line that counts them.
    fn close(&mut self) -> Result<(), OutputError> {
        let _ = self.producer.flush(self.close_timeout);
        let queued = u64::try_from(self.producer.in_flight_count().max(0)).unwrap_or(0);
        let failed = self.failed();
        if queued + failed + self.queue_full == 0 {
            return Ok(());
        }
        let mut message = format!(
            "{} records not delivered ({failed} failed, {} dropped with the queue full, \
             {queued} still queued after {} s)",
            queued + failed + self.queue_full,
            self.queue_full,
            self.close_timeout.as_secs()
        );
        let last = self
            .deliveries
            .last_failure
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        if let Some(last) = last {
            message.push_str("; last error: ");
            message.push_str(&last);
        }
        Err(kafka_error(&self.target, message))
    }

    fn counters(&self) -> SinkCounters {
        let failed = self.failed();
        SinkCounters {
            lines_queued: self.queued,
            lines_dropped: failed + self.queue_full,
            queue_depth: u64::try_from(self.producer.in_flight_count().max(0)).unwrap_or(0),
            lines_delivered: self.deliveries.delivered.load(Ordering::Relaxed),
            lines_failed: failed,
            lines_queue_full: self.queue_full,
            ..SinkCounters::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_destinations_parse_brokers_and_topic() {
        let target = KafkaTarget::parse("kafka://a:9092,b.example:9093/tls.sessions").expect("ok");
        assert_eq!(target.brokers, "a:9092,b.example:9093");
        assert_eq!(target.topic, "tls.sessions");
        assert_eq!(
            target.to_string(),
            "kafka://a:9092,b.example:9093/tls.sessions"
        );
        for bad in [
            "kafka://a:9092",
            "kafka://a:9092/",
            "kafka:///t",
            "kafka://a/t",
            "kafka://a:x/t",
            "kafka://a:9092/t/u",
            "kafka://a:9092,/t",
            "tcp://a:9092/t",
        ] {
            assert_eq!(KafkaTarget::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_key_is_the_community_id() {
        let line = br#"{"network":{"transport":"tcp","community_id":"1:abc+/="},"x":1}"#;
        assert_eq!(community_id(line), Some(&b"1:abc+/="[..]));
        assert_eq!(
            community_id(br#"{"event":{"dataset":"tlstap.stats"}}"#),
            None
        );
        assert_eq!(community_id(br#"{"community_id":"unterminated"#), None);
    }
}
