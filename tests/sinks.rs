//! Network sinks against a real listener process: order, reconnection, drops.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tlstap::output::sink::{Sink, StreamSink, StreamTarget};

/// A collector: a separate python3 process appending every received line to
/// a file. Port 0 lets the kernel choose (no race between parallel tests);
/// the chosen port is returned.
fn listener(port: u16, file: &std::path::Path) -> (Child, u16) {
    let script = r#"
import socket, sys
port, path = int(sys.argv[1]), sys.argv[2]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(5)
print("ready", s.getsockname()[1], flush=True)
with open(path, "ab", buffering=0) as out:
    while True:
        conn, _ = s.accept()
        while True:
            data = conn.recv(65536)
            if not data:
                break
            out.write(data)
        conn.close()
"#;
    let mut child = Command::new("python3")
        .args([
            "-c",
            script,
            &port.to_string(),
            file.to_str().expect("path"),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 listener");
    // Wait for "ready PORT".
    let stdout = child.stdout.take().expect("stdout");
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut first).expect("read");
    let port = first
        .trim()
        .strip_prefix("ready ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("collector did not start: {first:?}"));
    (child, port)
}

fn wait_for_lines(file: &std::path::Path, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= count || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A directory for a python3 collector's file, or None (skipped, said) when
/// python3 is missing.
fn collector_dir() -> Option<(tempfile::TempDir, std::path::PathBuf)> {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("skipped: python3 not available");
        return None;
    }
    let dir = tempfile::tempdir().expect("dir");
    let received = dir.path().join("received.ndjson");
    Some((dir, received))
}

/// A port reserved, then released: nobody listens there yet.
fn unused_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn line(n: usize) -> Vec<u8> {
    format!("{{\"n\":{n}}}\n").into_bytes()
}

#[test]
fn tcp_sink_survives_a_collector_restart_without_losing_records() {
    let Some((_dir, received)) = collector_dir() else {
        return;
    };
    let (mut collector, port) = listener(0, &received);
    let mut sink = StreamSink::start(StreamTarget::Tcp(format!("127.0.0.1:{port}")), 1000);
    for n in 0..100 {
        sink.write_line(&line(n)).expect("queue");
    }
    assert_eq!(wait_for_lines(&received, 100).len(), 100);

    // The collector dies; records keep coming and wait in the queue.
    collector.kill().expect("kill");
    collector.wait().expect("wait");
    std::thread::sleep(Duration::from_millis(200));
    for n in 100..300 {
        sink.write_line(&line(n)).expect("queue");
        if n % 50 == 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let (mut collector, _) = listener(port, &received);
    for n in 300..400 {
        sink.write_line(&line(n)).expect("queue");
    }
    sink.flush().expect("drained");
    let lines = wait_for_lines(&received, 400);
    let expected: Vec<String> = (0..400).map(|n| format!("{{\"n\":{n}}}")).collect();
    assert_eq!(lines, expected, "every record, once, in order");
    let counters = sink.counters();
    assert_eq!(counters.lines_dropped, 0);
    assert_eq!(counters.queue_depth, 0);
    assert!(counters.reconnects >= 2, "{counters:?}");
    drop(sink);
    collector.kill().expect("kill");
    let _ = collector.wait();
}

#[test]
fn full_queue_drops_the_oldest_and_counts_exactly_what_is_missing() {
    let Some((_dir, received)) = collector_dir() else {
        return;
    };
    let port = unused_port();
    // No collector yet: 250 records into a queue of 100.
    let mut sink = StreamSink::start(StreamTarget::Tcp(format!("127.0.0.1:{port}")), 100);
    for n in 0..250 {
        sink.write_line(&line(n)).expect("queue");
    }
    let counters = sink.counters();
    let (mut collector, _) = listener(port, &received);
    sink.flush().expect("drained");
    let lines = wait_for_lines(&received, 100);
    // The sender may have held one line in flight while the queue overflowed;
    // whatever it is, delivered + dropped accounts for every record.
    assert_eq!(
        lines.len() as u64 + sink.counters().lines_dropped,
        250,
        "{counters:?}"
    );
    assert!(sink.counters().lines_dropped >= 150);
    let last: Vec<String> = (150..250).map(|n| format!("{{\"n\":{n}}}")).collect();
    assert!(
        lines.ends_with(&last),
        "the newest records survive: {:?}",
        &lines[..3.min(lines.len())]
    );
    drop(sink);
    collector.kill().expect("kill");
    let _ = collector.wait();
}

/// The byte bound bites before the line bound when lines are long: a queue
/// of 1,000 lines but 2,000 bytes keeps only the newest lines that fit.
#[test]
fn full_queue_in_bytes_drops_the_oldest_and_counts_them() {
    let Some((_dir, received)) = collector_dir() else {
        return;
    };
    let port = unused_port();
    // 100-byte lines (a record with its padding), none delivered yet.
    let long = |n: usize| {
        let mut text = format!("{{\"n\":{n},\"pad\":\"");
        text.push_str(&"x".repeat(100 - text.len() - 3));
        text.push_str("\"}\n");
        text.into_bytes()
    };
    assert_eq!(long(7).len(), 100);
    let mut sink = StreamSink::start(StreamTarget::Tcp(format!("127.0.0.1:{port}")), 1000)
        .with_queue_bytes(2_000);
    for n in 0..250 {
        sink.write_line(&long(n)).expect("queue");
    }
    let queued = sink.counters();
    assert!(queued.queue_depth <= 20, "{queued:?}");
    let (mut collector, _) = listener(port, &received);
    sink.flush().expect("drained");
    let lines = wait_for_lines(&received, queued.queue_depth as usize);
    assert_eq!(
        lines.len() as u64 + sink.counters().lines_dropped,
        250,
        "{queued:?}"
    );
    assert!(sink.counters().lines_dropped >= 230);
    let newest = String::from_utf8(long(249)).expect("utf-8");
    assert_eq!(lines.last().map(String::as_str), Some(newest.trim_end()));
    drop(sink);
    collector.kill().expect("kill");
    let _ = collector.wait();
}

#[test]
fn unix_socket_sink_delivers_lines() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("collector.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let (mut stream, _) = listener.accept().expect("accept");
        let mut text = String::new();
        stream.read_to_string(&mut text).expect("read");
        text
    });
    let mut sink = StreamSink::start(StreamTarget::Unix(path), 10);
    sink.write_line(b"{\"a\":1}\n").expect("queue");
    sink.write_line(b"{\"a\":2}\n").expect("queue");
    sink.flush().expect("drained");
    drop(sink);
    assert_eq!(reader.join().expect("reader"), "{\"a\":1}\n{\"a\":2}\n");
    let _ = std::io::stdout().flush();
}
