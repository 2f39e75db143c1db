//! NSS key logs (`SSLKEYLOGFILE`): the TLS 1.3 traffic secrets that let a
//! staging sensor read a session's encrypted handshake.
//!
//! The CLI opens one [`KeyLogStore`] over every `--keylog` file; workers look
//! up a session's secrets by client random once, when its ServerHello picks
//! TLS 1.3 (see `decrypt`). A live run follows the files: a lookup that misses
//! re-reads what was appended, at most once per [`KeyLogLimits::refresh_interval`]
//! of packet time. Bounds: [`KeyLogLimits`] (entries kept, line length).
//! Secrets never leave this module except into key derivation, and `Debug`
//! prints none of them.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use crate::time::PacketTime;

/// Caps and timing of a key-log store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyLogLimits {
    /// Client randoms kept; at the cap the oldest is dropped (`entries_dropped`).
    pub max_entries: usize,
    /// Longest line read; a longer one is skipped whole (`lines_malformed`).
    pub max_line_length: usize,
    /// Live: follow the files (re-read appended lines on a lookup miss).
    pub follow: bool,
    /// Least packet time between two re-reads of the files.
    pub refresh_interval: Duration,
    /// Live: how long past its handshake a session whose secrets are not yet
    /// in the log is held before it is reported undecrypted.
    pub hold: Duration,
}

impl Default for KeyLogLimits {
    fn default() -> Self {
        Self {
            max_entries: 100_000,
            // Label (31) + 64 hex + 96 hex + spaces; generous for CRLF and future labels.
            max_line_length: 512,
            follow: false,
            refresh_interval: Duration::from_millis(200),
            hold: Duration::from_secs(3),
        }
    }
}

/// Why a key log could not be opened. Reaches a person: names the file.
#[derive(Debug, thiserror::Error)]
pub enum KeyLogError {
    #[error("cannot read key log {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Store counters (read by the stats record; updated per line or per lookup,
/// never per packet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyLogCounters {
    pub entries_loaded: u64,
    /// Oldest client randoms forgotten at `max_entries`.
    pub entries_dropped: u64,
    pub lines_malformed: u64,
    /// Labels tlstap does not use (TLS 1.2 CLIENT_RANDOM, early and exporter secrets).
    pub lines_ignored: u64,
    pub lookups_missed: u64,
    pub files_reread: u64,
}

/// A traffic secret: 32 bytes (SHA-256 suites) or 48 (SHA-384).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Secret {
    bytes: [u8; 48],
    length: u8,
}

impl Secret {
    fn from_hex(text: &[u8]) -> Option<Self> {
        if text.len() != 64 && text.len() != 96 {
            return None;
        }
        let mut bytes = [0u8; 48];
        for (slot, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
            *slot = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
        }
        Some(Self {
            bytes,
            length: (text.len() / 2) as u8,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.length)]
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes)", self.length)
    }
}

/// The TLS 1.3 secrets of one session that tlstap uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionSecrets {
    pub client_handshake: Option<Secret>,
    pub server_handshake: Option<Secret>,
    /// First application secrets: only to read an alert sent right after Finished.
    pub client_application: Option<Secret>,
    pub server_application: Option<Secret>,
}

impl SessionSecrets {
    /// Both handshake secrets: enough to read both flights.
    pub fn has_handshake(&self) -> bool {
        self.client_handshake.is_some() && self.server_handshake.is_some()
    }
}

#[derive(Default)]
struct Entries {
    map: HashMap<[u8; 32], SessionSecrets, ahash::RandomState>,
    /// Insertion order for dropping the oldest.
    order: VecDeque<[u8; 32]>,
}

struct Follower {
    path: PathBuf,
    /// Kept open: `live` drops root privileges after start-up, and a key log
    /// readable only by its owner (as it should be) could not be reopened.
    file: Option<File>,
    offset: u64,
    /// The start of a line whose newline has not been written yet.
    partial: Vec<u8>,
    /// Skipping the rest of an over-long line.
    skipping: bool,
}

/// Every `--keylog` file's secrets, shared by the workers.
pub struct KeyLogStore {
    limits: KeyLogLimits,
    entries: RwLock<Entries>,
    followers: Mutex<Vec<Follower>>,
    counters: Mutex<KeyLogCounters>,
    last_refresh: Mutex<Option<PacketTime>>,
    world_readable: Vec<PathBuf>,
}

impl std::fmt::Debug for KeyLogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyLogStore")
            .field("limits", &self.limits)
            .field("entries", &self.len())
            .finish()
    }
}

const LABEL_CLIENT_HANDSHAKE: &[u8] = b"CLIENT_HANDSHAKE_TRAFFIC_SECRET";
const LABEL_SERVER_HANDSHAKE: &[u8] = b"SERVER_HANDSHAKE_TRAFFIC_SECRET";
const LABEL_CLIENT_APPLICATION: &[u8] = b"CLIENT_TRAFFIC_SECRET_0";
const LABEL_SERVER_APPLICATION: &[u8] = b"SERVER_TRAFFIC_SECRET_0";

impl KeyLogStore {
    /// Reads every file once. A missing or unreadable file is an error: a
    /// staging run without its keys would silently report nothing decrypted.
    pub fn open(paths: &[PathBuf], limits: KeyLogLimits) -> Result<Self, KeyLogError> {
        let mut followers = Vec::new();
        let mut world_readable = Vec::new();
        for path in paths {
            let metadata = std::fs::metadata(path).map_err(|source| KeyLogError::Open {
                path: path.clone(),
                source,
            })?;
            if is_world_readable(&metadata) {
                world_readable.push(path.clone());
            }
            let file = File::open(path).map_err(|source| KeyLogError::Open {
                path: path.clone(),
                source,
            })?;
            followers.push(Follower {
                path: path.clone(),
                file: Some(file),
                offset: 0,
                partial: Vec::new(),
                skipping: false,
            });
        }
        let store = Self::empty(limits, world_readable);
        for follower in &mut followers {
            store
                .read_new(follower)
                .map_err(|source| KeyLogError::Open {
                    path: follower.path.clone(),
                    source,
                })?;
        }
        *store.followers.lock().unwrap_or_else(|e| e.into_inner()) = followers;
        Ok(store)
    }

    fn empty(limits: KeyLogLimits, world_readable: Vec<PathBuf>) -> Self {
        Self {
            limits,
            entries: RwLock::new(Entries::default()),
            followers: Mutex::new(Vec::new()),
            counters: Mutex::new(KeyLogCounters::default()),
            last_refresh: Mutex::new(None),
            world_readable,
        }
    }

    /// A store over text already in memory (tests, and callers with their own source).
    pub fn from_text(text: &[u8], limits: KeyLogLimits) -> Self {
        let store = Self::empty(limits, Vec::new());
        let mut follower = Follower {
            path: PathBuf::new(),
            file: None,
            offset: 0,
            partial: Vec::new(),
            skipping: false,
        };
        store.consume(&mut follower, text);
        store.consume(&mut follower, b"\n");
        store
    }

    pub fn limits(&self) -> KeyLogLimits {
        self.limits
    }

    /// Files that anyone on the host may read (the caller warns once).
    pub fn world_readable(&self) -> &[PathBuf] {
        &self.world_readable
    }

    pub fn len(&self) -> usize {
        self.entries.read().map_or(0, |entries| entries.map.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn counters(&self) -> KeyLogCounters {
        self.counters.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// The secrets logged for `client_random`; a live store re-reads its
    /// files on a miss (rate-limited on packet time).
    pub fn lookup(&self, client_random: &[u8], now: PacketTime) -> Option<SessionSecrets> {
        let key: [u8; 32] = client_random.try_into().ok()?;
        if let Some(found) = self.get(&key) {
            return Some(found);
        }
        if self.limits.follow && self.refresh_due(now) {
            self.refresh();
            if let Some(found) = self.get(&key) {
                return Some(found);
            }
        }
        if let Ok(mut counters) = self.counters.lock() {
            counters.lookups_missed += 1;
        }
        None
    }

    fn get(&self, key: &[u8; 32]) -> Option<SessionSecrets> {
        let entries = self.entries.read().ok()?;
        entries
            .map
            .get(key)
            .copied()
            .filter(SessionSecrets::has_handshake)
    }

    fn refresh_due(&self, now: PacketTime) -> bool {
        let Ok(mut last) = self.last_refresh.lock() else {
            return false;
        };
        let due = last.is_none_or(|at| now.since(at) >= self.limits.refresh_interval || now < at);
        if due {
            *last = Some(now);
        }
        due
    }

    /// Reads what was appended to every file since the last read. A file
    /// that shrank was truncated and rewritten: it is read again from the
    /// start. A file replaced by another (rotation) is not followed.
    pub fn refresh(&self) {
        // Another worker is already reading: its result serves this lookup's retry too.
        let Ok(mut followers) = self.followers.try_lock() else {
            return;
        };
        for follower in followers.iter_mut() {
            // A file that vanished mid-run (rotation) keeps what was read.
            let _ = self.read_new(follower);
        }
        if let Ok(mut counters) = self.counters.lock() {
            counters.files_reread += 1;
        }
    }

    fn read_new(&self, follower: &mut Follower) -> std::io::Result<()> {
        let Some(mut file) = follower.file.take() else {
            return Ok(());
        };
        let result = self.read_from(follower, &mut file);
        follower.file = Some(file);
        result
    }

    fn read_from(&self, follower: &mut Follower, file: &mut File) -> std::io::Result<()> {
        let length = file.metadata()?.len();
        if length < follower.offset {
            follower.offset = 0;
            follower.partial.clear();
            follower.skipping = false;
        }
        file.seek(SeekFrom::Start(follower.offset))?;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let read = file.read(&mut chunk)?;
            if read == 0 {
                break;
            }
            follower.offset += read as u64;
            self.consume(follower, &chunk[..read]);
        }
        Ok(())
    }

    /// Splits bytes into lines; an unterminated tail waits for its newline
    /// (a writer may be mid-line), bounded by `max_line_length`.
    fn consume(&self, follower: &mut Follower, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let newline = bytes.iter().position(|&b| b == b'\n');
            let (piece, rest, complete) = match newline {
                Some(at) => (&bytes[..at], &bytes[at + 1..], true),
                None => (bytes, &[][..], false),
            };
            bytes = rest;
            if !follower.skipping {
                if follower.partial.len() + piece.len() > self.limits.max_line_length {
                    follower.partial.clear();
                    follower.skipping = true;
                    self.count(|c| c.lines_malformed += 1);
                } else {
                    follower.partial.extend_from_slice(piece);
                }
            }
            if complete {
                if !follower.skipping {
                    let line = std::mem::take(&mut follower.partial);
                    self.parse_line(&line);
                    follower.partial = line;
                    follower.partial.clear();
                }
                follower.skipping = false;
            }
        }
    }

    fn count(&self, update: impl FnOnce(&mut KeyLogCounters)) {
        if let Ok(mut counters) = self.counters.lock() {
            update(&mut counters);
        }
    }

    /// `<LABEL> <client random hex> <secret hex>` (NSS key log format).
    fn parse_line(&self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() || line.starts_with(b"#") {
            return;
        }
        let mut fields = line.split(|&b| b == b' ').filter(|f| !f.is_empty());
        let (Some(label), Some(random), Some(secret), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            self.count(|c| c.lines_malformed += 1);
            return;
        };
        let slot: fn(&mut SessionSecrets) -> &mut Option<Secret> = match label {
            LABEL_CLIENT_HANDSHAKE => |s| &mut s.client_handshake,
            LABEL_SERVER_HANDSHAKE => |s| &mut s.server_handshake,
            LABEL_CLIENT_APPLICATION => |s| &mut s.client_application,
            LABEL_SERVER_APPLICATION => |s| &mut s.server_application,
            _ => {
                self.count(|c| c.lines_ignored += 1);
                return;
            }
        };
        let (Some(random), Some(secret)) = (parse_random(random), Secret::from_hex(secret)) else {
            self.count(|c| c.lines_malformed += 1);
            return;
        };
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        let mut dropped = 0;
        if !entries.map.contains_key(&random) {
            while entries.map.len() >= self.limits.max_entries.max(1) {
                let Some(oldest) = entries.order.pop_front() else {
                    break;
                };
                entries.map.remove(&oldest);
                dropped += 1;
            }
            entries.order.push_back(random);
        }
        *slot(entries.map.entry(random).or_default()) = Some(secret);
        drop(entries);
        self.count(|c| {
            c.entries_loaded += 1;
            c.entries_dropped += dropped;
        });
    }
}

fn parse_random(text: &[u8]) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *slot = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
    }
    Some(out)
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(unix)]
fn is_world_readable(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o004 != 0
}

#[cfg(not(unix))]
fn is_world_readable(_metadata: &std::fs::Metadata) -> bool {
    false
}

/// Whether `path` is a file anyone may read (for callers that check before opening).
pub fn world_readable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| is_world_readable(&m))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RANDOM: &str = "0101010101010101010101010101010101010101010101010101010101010101";

    fn line(label: &str, random: &str, byte: u8) -> String {
        format!("{label} {random} {}\n", format!("{byte:02x}").repeat(32))
    }

    #[test]
    fn handshake_secrets_are_found_by_client_random() {
        let text = line("CLIENT_HANDSHAKE_TRAFFIC_SECRET", RANDOM, 1)
            + &line("SERVER_HANDSHAKE_TRAFFIC_SECRET", RANDOM, 2)
            + "# comment\nCLIENT_RANDOM "
            + RANDOM
            + " "
            + &"00".repeat(48)
            + "\n";
        let store = KeyLogStore::from_text(text.as_bytes(), KeyLogLimits::default());
        let secrets = store.lookup(&[1u8; 32], PacketTime::ZERO).expect("secrets");
        assert_eq!(
            secrets.client_handshake.expect("client").as_bytes(),
            &[1u8; 32]
        );
        assert_eq!(
            secrets.server_handshake.expect("server").as_bytes(),
            &[2u8; 32]
        );
        assert_eq!(store.counters().lines_ignored, 1);
        assert!(store.lookup(&[2u8; 32], PacketTime::ZERO).is_none());
    }

    #[test]
    fn one_secret_alone_is_not_enough() {
        let text = line("CLIENT_HANDSHAKE_TRAFFIC_SECRET", RANDOM, 1);
        let store = KeyLogStore::from_text(text.as_bytes(), KeyLogLimits::default());
        assert!(store.lookup(&[1u8; 32], PacketTime::ZERO).is_none());
    }

    #[test]
    fn entry_cap_drops_the_oldest_and_counts_it() {
        let limits = KeyLogLimits {
            max_entries: 2,
            ..KeyLogLimits::default()
        };
        let mut text = String::new();
        for byte in 1..=3u8 {
            let random = format!("{byte:02x}").repeat(32);
            text += &line("CLIENT_HANDSHAKE_TRAFFIC_SECRET", &random, byte);
            text += &line("SERVER_HANDSHAKE_TRAFFIC_SECRET", &random, byte);
        }
        let store = KeyLogStore::from_text(text.as_bytes(), limits);
        assert_eq!(store.len(), 2);
        assert_eq!(store.counters().entries_dropped, 1);
        assert!(store.lookup(&[1u8; 32], PacketTime::ZERO).is_none());
        assert!(store.lookup(&[3u8; 32], PacketTime::ZERO).is_some());
    }

    #[test]
    fn long_and_malformed_lines_are_skipped_and_counted() {
        let mut text = "x".repeat(5000);
        text += "\nCLIENT_HANDSHAKE_TRAFFIC_SECRET zz 00\nSERVER_HANDSHAKE_TRAFFIC_SECRET\n";
        text += &line("CLIENT_HANDSHAKE_TRAFFIC_SECRET", RANDOM, 1);
        let store = KeyLogStore::from_text(text.as_bytes(), KeyLogLimits::default());
        assert_eq!(store.counters().lines_malformed, 3);
        assert_eq!(store.counters().entries_loaded, 1);
    }

    #[test]
    fn debug_output_shows_no_secret() {
        let text = line("CLIENT_HANDSHAKE_TRAFFIC_SECRET", RANDOM, 0xab)
            + &line("SERVER_HANDSHAKE_TRAFFIC_SECRET", RANDOM, 0xab);
        let store = KeyLogStore::from_text(text.as_bytes(), KeyLogLimits::default());
        let secrets = store.lookup(&[1u8; 32], PacketTime::ZERO).expect("secrets");
        let shown = format!("{store:?} {secrets:?}");
        assert!(!shown.contains("abab") && !shown.contains("171"), "{shown}");
    }

    #[test]
    fn a_followed_file_is_reread_on_a_miss() {
        use std::io::Write;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("keys.log");
        std::fs::write(&path, "").expect("write");
        let limits = KeyLogLimits {
            follow: true,
            ..KeyLogLimits::default()
        };
        let store = KeyLogStore::open(std::slice::from_ref(&path), limits).expect("open");
        assert!(store.lookup(&[1u8; 32], PacketTime::ZERO).is_none());
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("append");
        // Half a line first: it must wait for its newline.
        let whole = line("CLIENT_HANDSHAKE_TRAFFIC_SECRET", RANDOM, 1)
            + &line("SERVER_HANDSHAKE_TRAFFIC_SECRET", RANDOM, 2);
        let (head, tail) = whole.split_at(100);
        file.write_all(head.as_bytes()).expect("write");
        file.flush().expect("flush");
        let later = PacketTime::from_secs_nanos(1, 0);
        assert!(store.lookup(&[1u8; 32], later).is_none());
        file.write_all(tail.as_bytes()).expect("write");
        file.flush().expect("flush");
        let later = PacketTime::from_secs_nanos(2, 0);
        assert!(store.lookup(&[1u8; 32], later).is_some());
        assert_eq!(store.counters().lines_malformed, 0);
    }
}
