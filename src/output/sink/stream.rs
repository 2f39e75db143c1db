//! Newline-delimited JSON over a stream socket (`tcp://HOST:PORT`, `unix:PATH`),
//! the framing Logstash, Vector, Fluent Bit and rsyslog TCP inputs accept.
//!
//! The output stage never waits on the network: lines go into a bounded queue
//! and a sender thread delivers them, reconnecting with exponential backoff.
//! When the queue is full (in lines or in bytes) the oldest line is dropped
//! and counted. A line is removed from the queue only after it was written,
//! and the peer is checked for a close before each write, so a restarted
//! collector loses nothing while the queue bounds hold.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Sink, SinkCounters};
use crate::output::OutputError;

/// Where a stream sink connects.
#[derive(Debug, Clone)]
pub enum StreamTarget {
    Tcp(String),
    Unix(PathBuf),
}

impl std::fmt::Display for StreamTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamTarget::Tcp(address) => write!(f, "tcp://{address}"),
            StreamTarget::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

enum Connection {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Connection {
    fn open(target: &StreamTarget) -> std::io::Result<Self> {
        Ok(match target {
            StreamTarget::Tcp(address) => {
                let stream = TcpStream::connect(address)?;
                stream.set_nodelay(true)?;
                stream.set_write_timeout(Some(Duration::from_secs(10)))?;
                Connection::Tcp(stream)
            }
            StreamTarget::Unix(path) => {
                let stream = UnixStream::connect(path)?;
                stream.set_write_timeout(Some(Duration::from_secs(10)))?;
                Connection::Unix(stream)
            }
        })
    }

    /// False when the peer has closed or reset the connection. A collector
    /// never sends anything, so any readable state means "gone".
    fn is_alive(&mut self) -> bool {
        let mut probe = [0u8; 1];
        let result = match self {
            Connection::Tcp(s) => s.set_nonblocking(true).and_then(|_| s.read(&mut probe)),
            Connection::Unix(s) => s.set_nonblocking(true).and_then(|_| s.read(&mut probe)),
        };
        let alive = matches!(&result, Err(e) if e.kind() == ErrorKind::WouldBlock);
        let _ = match self {
            Connection::Tcp(s) => s.set_nonblocking(false),
            Connection::Unix(s) => s.set_nonblocking(false),
        };
        alive
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Connection::Tcp(s) => s.write_all(bytes),
            Connection::Unix(s) => s.write_all(bytes),
        }
    }
}

#[derive(Default)]
struct State {
    lines: VecDeque<Vec<u8>>,
    /// Bytes in `lines`.
    bytes: usize,
    closing: bool,
    counters: SinkCounters,
    /// A line is being written (still counted as queued until done).
    in_flight: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means the sender thread panicked; the queue itself is
        // still consistent (every mutation is a single push or pop).
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A network output with its own sender thread.
pub struct StreamSink {
    target: StreamTarget,
    shared: Arc<Shared>,
    capacity: usize,
    /// Bytes the queue may hold; the oldest lines go first beyond it.
    capacity_bytes: usize,
    sender: Option<JoinHandle<()>>,
    /// How long `flush` waits for the queue to drain (end of run).
    drain_timeout: Duration,
}

impl StreamSink {
    pub fn start(target: StreamTarget, capacity: usize) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let sender = {
            let shared = Arc::clone(&shared);
            let target = target.clone();
            std::thread::Builder::new()
                .name("tlstap-sink".into())
                .spawn(move || send_loop(&target, &shared))
                .ok()
        };
        Self {
            target,
            shared,
            capacity: capacity.max(1),
            capacity_bytes: usize::MAX,
            sender,
            drain_timeout: Duration::from_secs(10),
        }
    }

    /// Bounds the queue in bytes too (a line longer than the bound is still
    /// queued, alone).
    pub fn with_queue_bytes(mut self, bytes: usize) -> Self {
        self.capacity_bytes = bytes.max(1);
        self
    }

    pub fn with_drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }
}

fn send_loop(target: &StreamTarget, shared: &Shared) {
    let mut backoff = Duration::from_millis(100);
    let mut connection: Option<Connection> = None;
    loop {
        // Wait for a line (or the end).
        let line = {
            let mut state = shared.lock();
            while state.lines.is_empty() && !state.closing {
                state = shared.wake.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            match state.lines.front().cloned() {
                Some(line) => {
                    state.in_flight = true;
                    line
                }
                None => return,
            }
        };
        if connection.as_mut().is_some_and(|c| !c.is_alive()) {
            connection = None;
        }
        if connection.is_none() {
            match Connection::open(target) {
                Ok(fresh) => {
                    connection = Some(fresh);
                    backoff = Duration::from_millis(100);
                    shared.lock().counters.reconnects += 1;
                }
                Err(_) => {
                    let mut state = shared.lock();
                    state.in_flight = false;
                    if state.closing {
                        return;
                    }
                    let (state, _) = shared
                        .wake
                        .wait_timeout(state, backoff)
                        .unwrap_or_else(|p| p.into_inner());
                    drop(state);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
        }
        let written = connection
            .as_mut()
            .is_some_and(|c| c.write_all(&line).is_ok());
        let mut state = shared.lock();
        state.in_flight = false;
        if written {
            // The queue may have dropped its oldest entries meanwhile; pop the
            // line only if it is still the one at the front.
            if state.lines.front().is_some_and(|front| *front == line) {
                state.lines.pop_front();
                state.bytes = state.bytes.saturating_sub(line.len());
            }
            state.counters.lines_delivered += 1;
            shared.wake.notify_all();
        } else {
            connection = None;
        }
    }
}

impl Sink for StreamSink {
    fn write_line(&mut self, line: &[u8]) -> Result<(), OutputError> {
        let mut state = self.shared.lock();
        while state.lines.len() >= self.capacity
            || state.bytes.saturating_add(line.len()) > self.capacity_bytes
        {
            let Some(oldest) = state.lines.pop_front() else {
                break;
            };
            state.bytes = state.bytes.saturating_sub(oldest.len());
            state.counters.lines_dropped += 1;
        }
        state.bytes += line.len();
        state.lines.push_back(line.to_vec());
        state.counters.lines_queued += 1;
        self.shared.wake.notify_all();
        Ok(())
    }

    /// Waits (up to the drain timeout) until the queue is delivered; what is
    /// still queued then is counted as dropped.
    fn flush(&mut self) -> Result<(), OutputError> {
        let deadline = Instant::now() + self.drain_timeout;
        let mut state = self.shared.lock();
        while !state.lines.is_empty() {
            let now = Instant::now();
            if now >= deadline {
                let left = state.lines.len() as u64;
                return Err(OutputError::Io {
                    destination: self.target.to_string(),
                    source: std::io::Error::new(
                        ErrorKind::TimedOut,
                        format!("{left} records not delivered before the drain timeout"),
                    ),
                });
            }
            state = self
                .shared
                .wake
                .wait_timeout(state, deadline - now)
                .map(|(s, _)| s)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        Ok(())
    }

    fn counters(&self) -> SinkCounters {
        let state = self.shared.lock();
        SinkCounters {
            queue_depth: state.lines.len() as u64,
            ..state.counters.clone()
        }
    }
}

impl Drop for StreamSink {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.wake.notify_all();
        if let Some(sender) = self.sender.take() {
            let _ = sender.join();
        }
    }
}
