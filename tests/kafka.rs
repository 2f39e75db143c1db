//! Many sensors, one estate: `read -o kafka://…` into a real Kafka-protocol
//! broker (tansu, started by scripts/kafka-broker.sh) and `inventory ingest`
//! back out of it. Skipped, visibly, when tansu is not installed.
#![cfg(feature = "kafka")]

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use support::*;

const TOPIC: &str = "tls";

fn tlstap() -> &'static str {
    env!("CARGO_BIN_EXE_tlstap")
}

fn sample(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// A tansu broker on 127.0.0.1 with its data in a temp dir; killed on drop.
struct Broker {
    dir: tempfile::TempDir,
    port: u16,
    pid: i32,
}

impl Broker {
    fn start() -> Self {
        let dir = temp_dir();
        let (port, pid) = Self::launch(dir.path(), None);
        Self { dir, port, pid }
    }

    fn launch(dir: &Path, port: Option<u16>) -> (u16, i32) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka-broker.sh");
        let mut command = Command::new(script);
        command.arg(dir).args(["--topic", TOPIC]);
        if let Some(port) = port {
            command.args(["--port", &port.to_string()]);
        }
        let output = command.output().expect("run kafka-broker.sh");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "kafka-broker.sh: {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let value = |key: &str| -> String {
            stdout
                .split_whitespace()
                .find_map(|word| word.strip_prefix(key))
                .unwrap_or_else(|| panic!("no {key} in {stdout:?}"))
                .to_string()
        };
        (
            value("port=").parse().expect("port"),
            value("pid=").parse().expect("pid"),
        )
    }

    fn url(&self) -> String {
        format!("kafka://127.0.0.1:{}/{TOPIC}", self.port)
    }

    /// SIGKILL, as a crash would; returns once the port is closed.
    fn kill(&mut self) {
        // SAFETY: kill(2) on a pid this test started.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "broker still listening");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts again on the same port and storage.
    fn restart(&mut self) {
        let (_, pid) = Self::launch(self.dir.path(), Some(self.port));
        self.pid = pid;
    }

    /// Every message in the topic, as text, read from the beginning of each
    /// partition up to its high watermark.
    fn messages(&self) -> Vec<String> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", format!("127.0.0.1:{}", self.port))
            .set("group.id", "tlstap-test-reader")
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut list = TopicPartitionList::new();
        let mut remaining = 0i64;
        for partition in 0..3 {
            let (low, high) = consumer
                .fetch_watermarks(TOPIC, partition, Duration::from_secs(10))
                .expect("watermarks");
            remaining += high - low;
            list.add_partition_offset(TOPIC, partition, Offset::Beginning)
                .expect("partition");
        }
        consumer.assign(&list).expect("assign");
        let mut messages = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while remaining > 0 && Instant::now() < deadline {
            if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
                let payload = message.payload().unwrap_or_default();
                messages.push(String::from_utf8_lossy(payload).into_owned());
                remaining -= 1;
            }
        }
        assert_eq!(remaining, 0, "topic not read to its end");
        messages
    }

    fn produce(&self, payload: &str) {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", format!("127.0.0.1:{}", self.port))
            .create()
            .expect("producer");
        producer
            .send(BaseRecord::<(), str>::to(TOPIC).payload(payload))
            .expect("send");
        producer.flush(Duration::from_secs(10)).expect("flush");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        // SAFETY: kill(2) on a pid this test started.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
        }
    }
}

/// Runs tlstap; (exit code, stderr).
fn run(args: &[&str]) -> (i32, String) {
    let output = Command::new(tlstap()).args(args).output().expect("run");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Per service key: (TLS sessions, plaintext sessions), from `inventory --json`.
fn sessions(inventory: &Path) -> BTreeMap<String, (u64, u64)> {
    let output = Command::new(tlstap())
        .args(["inventory", "--json", inventory.to_str().expect("path")])
        .output()
        .expect("run");
    assert!(output.status.success());
    let snapshot: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let mut found = BTreeMap::new();
    for service in snapshot["services"].as_array().expect("services") {
        let entry = found
            .entry(service["key"].to_string())
            .or_insert((0u64, 0u64));
        entry.0 += service["sessions"].as_u64().expect("sessions");
        entry.1 += service["plaintext_sessions"].as_u64().expect("plaintext");
    }
    found
}

fn union(
    a: &BTreeMap<String, (u64, u64)>,
    b: &BTreeMap<String, (u64, u64)>,
) -> BTreeMap<String, (u64, u64)> {
    let mut total = a.clone();
    for (key, (tls, plain)) in b {
        let entry = total.entry(key.clone()).or_insert((0, 0));
        entry.0 += tls;
        entry.1 += plain;
    }
    total
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn ingest(broker: &Broker, inventory: &Path, extra: &[&str]) -> String {
    let url = broker.url();
    let mut args = vec![
        "inventory",
        "ingest",
        url.as_str(),
        "--inventory",
        path_str(inventory),
        "--stop-when-idle",
        "6",
    ];
    args.extend(extra);
    let (code, stderr) = run(&args);
    assert_eq!(code, 0, "{stderr}");
    stderr
}

#[test]
fn two_sensors_write_one_topic_and_ingest_builds_the_union_of_their_inventories() {
    if tansu_or_skip("two_sensors_write_one_topic_and_ingest_builds_the_union_of_their_inventories")
        .is_none()
    {
        return;
    }
    let broker = Broker::start();
    let dir = temp_dir();
    let url = broker.url();
    let sensors: [(&str, Vec<String>); 2] = [
        (
            "sensor-a",
            vec![sample("stacks.pcap"), sample("tls13.pcap")],
        ),
        (
            "sensor-b",
            vec![
                sample("tls12-client-cert.pcap"),
                sample("tls10.pcap"),
                sample("plaintext-http-443.pcap"),
                sample("tls13.pcap"),
            ],
        ),
    ];
    let mut local = Vec::new();
    let mut records = 0;
    for (name, files) in &sensors {
        let inventory = dir.path().join(format!("{name}.sqlite"));
        let copy = dir.path().join(format!("{name}.ndjson"));
        let mut args = vec![
            "read",
            "-q",
            "--sensor-name",
            name,
            "-o",
            url.as_str(),
            "-o",
            path_str(&copy),
            "--inventory",
            path_str(&inventory),
        ];
        args.extend(files.iter().map(String::as_str));
        let (code, stderr) = run(&args);
        assert_eq!(code, 0, "{stderr}");
        records += std::fs::read_to_string(&copy)
            .expect("copy")
            .lines()
            .count();
        local.push(sessions(&inventory));
    }

    // One topic holds both sensors' records, each once, told apart by observer.name.
    let messages = broker.messages();
    assert_eq!(messages.len(), records);
    let mut by_sensor = BTreeMap::new();
    for message in &messages {
        let record: serde_json::Value = serde_json::from_str(message).expect("record JSON");
        *by_sensor
            .entry(string(&record, "observer.name"))
            .or_insert(0) += 1;
    }
    for (name, _) in &sensors {
        let copy = dir.path().join(format!("{name}.ndjson"));
        let lines = std::fs::read_to_string(&copy)
            .expect("copy")
            .lines()
            .count();
        assert_eq!(by_sensor[*name], lines, "{name}");
    }

    let estate = dir.path().join("estate.sqlite");
    let stderr = ingest(&broker, &estate, &[]);
    assert!(stderr.contains("0 skipped"), "{stderr}");
    assert_eq!(sessions(&estate), union(&local[0], &local[1]));
}

#[test]
fn broker_killed_and_restarted_within_the_queue_bound_loses_nothing() {
    if tansu_or_skip("broker_killed_and_restarted_within_the_queue_bound_loses_nothing").is_none() {
        return;
    }
    let mut broker = Broker::start();
    let dir = temp_dir();
    let copy = dir.path().join("copy.ndjson");
    let url = broker.url();
    // Kafka first: once the file output exists, the producer has met the broker.
    let mut child = Command::new(tlstap())
        .args(["read", "-q", "-o", &url, "-o"])
        .arg(format!("file:{}", copy.display()))
        .arg("-")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !copy.exists() {
        assert!(Instant::now() < deadline, "tlstap did not open its outputs");
        std::thread::sleep(Duration::from_millis(20));
    }
    broker.kill();
    // Every record is produced while the broker is away.
    let capture = std::fs::read(sample("stacks.pcap")).expect("sample");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(&capture).expect("feed");
    drop(stdin);
    std::thread::sleep(Duration::from_secs(3));
    broker.restart();
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");

    let written: Vec<String> = std::fs::read_to_string(&copy)
        .expect("copy")
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(written.len(), 40);
    let mut delivered = broker.messages();
    let mut expected = written;
    delivered.sort();
    expected.sort();
    assert_eq!(delivered, expected, "each record exactly once");
}

#[test]
fn records_beyond_the_queue_bound_are_counted_and_fail_the_run() {
    if tansu_or_skip("records_beyond_the_queue_bound_are_counted_and_fail_the_run").is_none() {
        return;
    }
    let mut broker = Broker::start();
    let dir = temp_dir();
    let copy = dir.path().join("copy.ndjson");
    let url = broker.url();
    let mut child = Command::new(tlstap())
        .args([
            "read",
            "-q",
            "--output-queue",
            "5",
            "--kafka-property",
            "message.timeout.ms=2000",
            "-o",
            &url,
            "-o",
        ])
        .arg(format!("file:{}", copy.display()))
        .arg("-")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !copy.exists() {
        assert!(Instant::now() < deadline, "tlstap did not open its outputs");
        std::thread::sleep(Duration::from_millis(20));
    }
    broker.kill();
    let capture = std::fs::read(sample("stacks.pcap")).expect("sample");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(&capture).expect("feed");
    drop(stdin);
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&url), "{stderr}");
    assert!(stderr.contains("records not delivered"), "{stderr}");
    assert!(stderr.contains("5 failed"), "{stderr}");
    // The stats record (in the file copy) counts the drops at the bound.
    let text = std::fs::read_to_string(&copy).expect("copy");
    let stats: serde_json::Value =
        serde_json::from_str(text.lines().last().expect("stats line")).expect("json");
    let full = field(&stats, "tlstap.stats.sink_queue_full")
        .as_u64()
        .expect("sink_queue_full");
    assert!(full >= 30, "{stats}");
}

#[test]
fn ingest_restarted_mid_topic_applies_each_record_once() {
    if tansu_or_skip("ingest_restarted_mid_topic_applies_each_record_once").is_none() {
        return;
    }
    let broker = Broker::start();
    let dir = temp_dir();
    let url = broker.url();
    let copy = dir.path().join("copy.ndjson");
    let (code, stderr) = run(&[
        "read",
        "-q",
        "-o",
        &url,
        "-o",
        path_str(&copy),
        &sample("stacks.pcap"),
    ]);
    assert_eq!(code, 0, "{stderr}");
    broker.produce("this is not a tlstap record");

    // The same records from the file: what one clean pass gives.
    let reference = dir.path().join("reference.sqlite");
    let (code, stderr) = run(&[
        "inventory",
        "ingest",
        path_str(&copy),
        "--inventory",
        path_str(&reference),
    ]);
    assert_eq!(code, 0, "{stderr}");

    let estate = dir.path().join("estate.sqlite");
    ingest(&broker, &estate, &["--max-records", "12"]);
    let partial = sessions(&estate).values().map(|(t, p)| t + p).sum::<u64>();
    assert!(partial > 0 && partial <= 12, "{partial}");
    let stderr = ingest(&broker, &estate, &[]);
    assert!(
        stderr.contains("skipped tls/") && stderr.contains(": not a tlstap record"),
        "{stderr}"
    );
    assert_eq!(sessions(&estate), sessions(&reference));
    // Another group starts from the beginning of the topic: SQLite knows
    // every record was applied (and the reader skips ahead to its position).
    let stderr = ingest(&broker, &estate, &["--group", "another"]);
    assert!(
        stderr.contains(" 0 sessions added, 0 other tlstap records, 0 skipped,"),
        "{stderr}"
    );
    assert!(!stderr.contains(" 0 applied before"), "{stderr}");
    assert_eq!(sessions(&estate), sessions(&reference));
}

#[test]
fn an_absent_broker_is_one_clear_error_and_a_failed_exit() {
    // Nothing listens on a port just closed; no tansu needed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("port")
        .port();
    let url = format!("kafka://127.0.0.1:{port}/{TOPIC}");
    let (code, stderr) = run(&["read", "-q", "-o", &url, &sample("tls13.pcap")]);
    assert_eq!(code, 1);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("no Kafka broker answered at 127.0.0.1:{port}")),
        "{stderr}"
    );
    let dir = temp_dir();
    let estate: PathBuf = dir.path().join("estate.sqlite");
    let (code, stderr) = run(&[
        "inventory",
        "ingest",
        &url,
        "--inventory",
        path_str(&estate),
    ]);
    assert_eq!(code, 1);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&url), "{stderr}");
}
