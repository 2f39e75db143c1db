//! The SQLite store: one writer (`read`/`live` with `--inventory`), any number
//! of readers (`tlstap inventory`, `report`). Records are folded in inside a
//! transaction that the caller ends with [`Inventory::commit`]; a kill -9
//! loses at most the open transaction, never the file (SQLite WAL).
//!
//! Bounded by [`InventoryLimits`]: a row per distinct value up to
//! `max_rows_per_service` per table, at most `max_services` services, and
//! counters otherwise. Each cap that bites moves an [`InventoryCounters`] field.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::Serialize;
use serde_json::Value;

use super::model::*;
use super::record::{self, Finding, Refusal, SessionFacts, SessionKind};
use super::schema::{APPLICATION, SCHEMA_INGEST_POSITIONS, SCHEMA_V1, SCHEMA_VERSION};

/// A writer that never calls [`Inventory::commit`] still holds at most this
/// many records in one transaction: the WAL file stays bounded.
pub const MAX_PENDING_RECORDS: u64 = 4096;
/// Exception finding ids kept per exception row.
const MAX_EXCEPTION_FINDING_IDS: usize = 16;
/// How long a writer waits for a reader's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Caps on what the inventory keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryLimits {
    /// Services (ip, port, sni). A record of a new service beyond it is
    /// dropped and counted (`services_dropped`).
    pub max_services: usize,
    /// Rows per service in each of: negotiations, certificates, client
    /// stacks, findings, exceptions, invalid-cert clients, drift events.
    pub max_rows_per_service: usize,
    /// Distinct client addresses remembered per service, stack and JA4;
    /// beyond it the count stops and the row says `distinct_clients_capped`.
    pub max_distinct_clients_tracked: usize,
    /// Rows and events last seen longer ago than this, measured back from the
    /// newest record time in the store, are deleted at open and close.
    pub retention_days: Option<u32>,
}

impl Default for InventoryLimits {
    fn default() -> Self {
        Self {
            max_services: 50_000,
            max_rows_per_service: 256,
            max_distinct_clients_tracked: 1024,
            retention_days: None,
        }
    }
}

/// What this process did to the inventory (not persisted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InventoryCounters {
    /// Session records folded in.
    pub records_ingested: u64,
    /// Lines or records that were not sessions, or were malformed.
    pub records_ignored: u64,
    /// Session records of a new service refused at `max_services` (the
    /// refused services are deliberately not remembered, so this counts records).
    pub services_dropped: u64,
    /// Rows not added (or drift events evicted) at `max_rows_per_service`.
    pub rows_dropped: u64,
    /// Client addresses not counted at `max_distinct_clients_tracked`.
    pub clients_untracked: u64,
    /// Rows and events deleted by retention.
    pub rows_expired: u64,
}

/// What [`Inventory::ingest_record`] did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// A session, folded in.
    Added,
    /// A session of a new service past `max_services`, refused.
    ServiceDropped,
    /// A tlstap record that is not a session (stats).
    NotASession,
    /// Not JSON, or not a tlstap record.
    NotTlstap,
    /// A tlstap session without a usable time, server address or port.
    Malformed,
}

/// Errors of the inventory. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The file could not be opened or created.
    #[error("cannot open inventory {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// `open_read_only` on a file that is not there.
    #[error("inventory {path} does not exist")]
    Missing { path: PathBuf },
    /// The file is not an SQLite database at all.
    #[error("{path} is not a tlstap inventory (not an SQLite database)")]
    NotSqlite { path: PathBuf },
    /// An SQLite database made by something else; it is left untouched.
    #[error("{path} is an SQLite database but not a tlstap inventory; refusing to use it")]
    ForeignDatabase { path: PathBuf },
    /// Written by a newer tlstap.
    #[error("inventory {path} has schema version {found}; this tlstap knows up to {supported}")]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    /// A write on an inventory opened with `open_read_only`.
    #[error("inventory {path} is open read-only")]
    ReadOnly { path: PathBuf },
    /// `inventory ingest`: a records file could not be read.
    #[error("{path}: cannot read records")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `inventory ingest`: the Kafka topic could not be read (the message
    /// names the broker and says why).
    #[error("{topic}: {message}")]
    Kafka { topic: String, message: String },
    /// An SQLite statement failed.
    #[error("inventory {path}: {operation} failed")]
    Sqlite {
        path: PathBuf,
        operation: &'static str,
        #[source]
        source: rusqlite::Error,
    },
}

/// The persistent inventory. One writer at a time (SQLite's lock enforces it;
/// a second writer waits [`BUSY_TIMEOUT`] and then fails).
pub struct Inventory {
    connection: Connection,
    path: PathBuf,
    limits: InventoryLimits,
    read_only: bool,
    run_id: Option<i64>,
    pending_records: u64,
    pending_run_records: u64,
    service_count: usize,
    counters: InventoryCounters,
}

enum Contents {
    Empty,
    Inventory(i64),
}

fn inspect(connection: &Connection, path: &Path) -> Result<Contents, InventoryError> {
    let tables: Vec<String> = connection
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .and_then(|mut statement| {
            statement
                .query_map([], |row| row.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|source| match source.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase) => InventoryError::NotSqlite {
                path: path.to_path_buf(),
            },
            _ => InventoryError::Open {
                path: path.to_path_buf(),
                source,
            },
        })?;
    if tables.is_empty() {
        return Ok(Contents::Empty);
    }
    if !tables.iter().any(|t| t == "tlstap_meta") {
        return Err(InventoryError::ForeignDatabase {
            path: path.to_path_buf(),
        });
    }
    let meta = |key: &str| -> Option<String> {
        connection
            .query_row(
                "SELECT value FROM tlstap_meta WHERE key = ?1",
                [key],
                |row| row.get::<_, String>(0),
            )
            .ok()
    };
    if meta("application").as_deref() != Some(APPLICATION) {
        return Err(InventoryError::ForeignDatabase {
            path: path.to_path_buf(),
        });
    }
    let version = meta("schema_version")
        .and_then(|v| v.parse::<i64>().ok())
        .ok_or_else(|| InventoryError::ForeignDatabase {
            path: path.to_path_buf(),
        })?;
    Ok(Contents::Inventory(version))
}

impl Inventory {
    /// Opens or creates a writable inventory: creates the schema in an empty
    /// file, switches to WAL, applies retention. A file that is not a tlstap
    /// inventory is refused before anything is written to it.
    pub fn open(path: &Path, limits: InventoryLimits) -> Result<Self, InventoryError> {
        let connection = Connection::open(path).map_err(|source| InventoryError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let mut inventory = Self::new(connection, path, limits, false)?;
        match inspect(&inventory.connection, path)? {
            Contents::Empty => inventory.create_schema()?,
            Contents::Inventory(found) if found > SCHEMA_VERSION => {
                return Err(InventoryError::SchemaTooNew {
                    path: path.to_path_buf(),
                    found,
                    supported: SCHEMA_VERSION,
                })
            }
            // Version 1 is the first: no migrations yet. A later version adds
            // `found < SCHEMA_VERSION` steps here, each in one transaction.
            Contents::Inventory(_) => {}
        }
        // WAL: readers never block the writer, and a killed writer leaves a
        // log that the next open replays. synchronous=NORMAL keeps every
        // commit across a process kill (only power loss can lose the last).
        // The answer is the mode in force; a file system without shared
        // memory keeps its rollback journal, which is still crash-safe.
        let _mode: String = inventory
            .connection
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(inventory.sql("set journal_mode"))?;
        inventory
            .connection
            .execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(inventory.sql("set pragmas"))?;
        // Added after version 1 without a version bump: a new table that
        // older readers never look at (`inventory ingest` positions).
        inventory
            .connection
            .execute_batch(SCHEMA_INGEST_POSITIONS)
            .map_err(inventory.sql("create ingest positions"))?;
        inventory.refresh_service_count()?;
        inventory.apply_retention()?;
        Ok(inventory)
    }

    /// Opens an existing inventory for reading (`tlstap inventory`, `report`).
    pub fn open_read_only(path: &Path) -> Result<Self, InventoryError> {
        if !path.exists() {
            return Err(InventoryError::Missing {
                path: path.to_path_buf(),
            });
        }
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| InventoryError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let mut inventory = Self::new(connection, path, InventoryLimits::default(), true)?;
        match inspect(&inventory.connection, path)? {
            Contents::Empty => {
                return Err(InventoryError::ForeignDatabase {
                    path: path.to_path_buf(),
                })
            }
            Contents::Inventory(found) if found > SCHEMA_VERSION => {
                return Err(InventoryError::SchemaTooNew {
                    path: path.to_path_buf(),
                    found,
                    supported: SCHEMA_VERSION,
                })
            }
            Contents::Inventory(_) => {}
        }
        inventory.refresh_service_count()?;
        Ok(inventory)
    }

    fn new(
        connection: Connection,
        path: &Path,
        limits: InventoryLimits,
        read_only: bool,
    ) -> Result<Self, InventoryError> {
        connection
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|source| InventoryError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        connection.set_prepared_statement_cache_capacity(64);
        Ok(Self {
            connection,
            path: path.to_path_buf(),
            limits,
            read_only,
            run_id: None,
            pending_records: 0,
            pending_run_records: 0,
            service_count: 0,
            counters: InventoryCounters::default(),
        })
    }

    fn sql(&self, operation: &'static str) -> impl Fn(rusqlite::Error) -> InventoryError + '_ {
        move |source| InventoryError::Sqlite {
            path: self.path.clone(),
            operation,
            source,
        }
    }

    fn create_schema(&mut self) -> Result<(), InventoryError> {
        let batch = format!(
            "BEGIN IMMEDIATE; {SCHEMA_V1}
             INSERT INTO tlstap_meta (key, value) VALUES ('application', '{APPLICATION}');
             INSERT INTO tlstap_meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');
             COMMIT;"
        );
        self.connection
            .execute_batch(&batch)
            .map_err(self.sql("create schema"))
    }

    fn refresh_service_count(&mut self) -> Result<(), InventoryError> {
        let count: i64 = self
            .connection
            .query_row("SELECT COUNT(*) FROM services", [], |row| row.get(0))
            .map_err(self.sql("count services"))?;
        self.service_count = usize::try_from(count).unwrap_or(usize::MAX);
        Ok(())
    }

    fn writable(&self) -> Result<(), InventoryError> {
        if self.read_only {
            return Err(InventoryError::ReadOnly {
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    fn begin_if_needed(&mut self) -> Result<(), InventoryError> {
        if self.connection.is_autocommit() {
            self.connection
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(self.sql("begin transaction"))?;
        }
        Ok(())
    }

    /// Records a run (wall-clock start, the inputs as given); the records
    /// ingested after it are counted on it.
    pub fn begin_run(&mut self, source: &str) -> Result<(), InventoryError> {
        self.writable()?;
        self.commit()?;
        let started = record::format_time(time::OffsetDateTime::now_utc()).unwrap_or_default();
        let id: i64 = self
            .connection
            .query_row(
                "INSERT INTO runs (started, source, records) VALUES (?1, ?2, 0) RETURNING id",
                params![started, record::cap_text(source)],
                |row| row.get(0),
            )
            .map_err(self.sql("insert run"))?;
        self.run_id = Some(id);
        Ok(())
    }

    /// Folds one record in. Records that are not sessions, or lack a time,
    /// server address or port, are counted (`records_ignored`) and skipped;
    /// only a failing database is an error.
    pub fn ingest(&mut self, record: &Value) -> Result<(), InventoryError> {
        self.ingest_record(record).map(|_| ())
    }

    /// [`Self::ingest`], saying what became of the record.
    pub fn ingest_record(&mut self, record: &Value) -> Result<Ingested, InventoryError> {
        self.writable()?;
        let facts = match record::session_facts(record) {
            Ok(facts) => facts,
            Err(refusal) => {
                self.counters.records_ignored += 1;
                let tlstap = record
                    .get("event")
                    .and_then(|event| event.get("dataset"))
                    .and_then(Value::as_str)
                    .is_some_and(|dataset| dataset.starts_with("tlstap."));
                return Ok(match refusal {
                    Refusal::NotASession if tlstap => Ingested::NotASession,
                    Refusal::NotASession => Ingested::NotTlstap,
                    Refusal::Malformed => Ingested::Malformed,
                });
            }
        };
        self.begin_if_needed()?;
        // A savepoint per record: a statement failing halfway leaves none of
        // the record behind.
        self.connection
            .execute_batch("SAVEPOINT record")
            .map_err(self.sql("savepoint"))?;
        let outcome = match self.store(&facts) {
            Ok(stored) => {
                self.connection
                    .execute_batch("RELEASE record")
                    .map_err(self.sql("release savepoint"))?;
                if stored {
                    self.counters.records_ingested += 1;
                    if self.run_id.is_some() {
                        self.pending_run_records += 1;
                    }
                    Ingested::Added
                } else {
                    self.counters.services_dropped += 1;
                    Ingested::ServiceDropped
                }
            }
            Err(error) => {
                let _ = self
                    .connection
                    .execute_batch("ROLLBACK TO record; RELEASE record");
                self.refresh_service_count()?;
                return Err(error);
            }
        };
        self.pending_records += 1;
        if self.pending_records >= MAX_PENDING_RECORDS {
            self.commit()?;
        }
        Ok(outcome)
    }

    /// Parses one NDJSON line and ingests it; a line that is not JSON is
    /// counted as ignored, never an error.
    pub fn ingest_line(&mut self, line: &[u8]) -> Result<(), InventoryError> {
        self.ingest_line_record(line).map(|_| ())
    }

    /// [`Self::ingest_line`], saying what became of the line.
    pub fn ingest_line_record(&mut self, line: &[u8]) -> Result<Ingested, InventoryError> {
        match serde_json::from_slice::<Value>(line) {
            Ok(value) => self.ingest_record(&value),
            Err(_) => {
                self.writable()?;
                self.counters.records_ignored += 1;
                Ok(Ingested::NotTlstap)
            }
        }
    }

    /// Where `inventory ingest` stopped reading each partition of `topic`:
    /// the offset of the next record to apply.
    pub fn ingest_positions(&self, topic: &str) -> Result<Vec<(i32, i64)>, InventoryError> {
        let mut statement = self
            .connection
            .prepare_cached("SELECT partition, next_offset FROM ingest_positions WHERE topic = ?1")
            .map_err(self.sql("read ingest positions"))?;
        let rows = statement
            .query_map([topic], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.sql("read ingest positions"))?;
        Ok(rows)
    }

    /// Moves a partition's position in the open transaction, so the record
    /// and the position become durable together (call it before ingesting
    /// the record: [`Self::ingest`] may commit).
    pub fn set_ingest_position(
        &mut self,
        topic: &str,
        partition: i32,
        next_offset: i64,
    ) -> Result<(), InventoryError> {
        self.writable()?;
        self.begin_if_needed()?;
        self.connection
            .prepare_cached(
                "INSERT INTO ingest_positions (topic, partition, next_offset) VALUES (?1, ?2, ?3)
                 ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
            )
            .and_then(|mut statement| statement.execute(params![topic, partition, next_offset]))
            .map_err(self.sql("store ingest position"))?;
        Ok(())
    }

    /// Ends the current transaction, making everything ingested so far durable.
    pub fn commit(&mut self) -> Result<(), InventoryError> {
        if self.read_only || self.connection.is_autocommit() {
            return Ok(());
        }
        if let (Some(id), true) = (self.run_id, self.pending_run_records > 0) {
            self.connection
                .execute(
                    "UPDATE runs SET records = records + ?1 WHERE id = ?2",
                    params![
                        i64::try_from(self.pending_run_records).unwrap_or(i64::MAX),
                        id
                    ],
                )
                .map_err(self.sql("count run records"))?;
        }
        self.connection
            .execute_batch("COMMIT")
            .map_err(self.sql("commit"))?;
        self.pending_records = 0;
        self.pending_run_records = 0;
        Ok(())
    }

    /// Commits, applies retention and checkpoints the WAL into the file.
    pub fn close(mut self) -> Result<(), InventoryError> {
        self.finish()
    }

    /// What [`Self::close`] does, for an owner that cannot give the
    /// inventory up (the output sink); it stays usable.
    pub fn finish(&mut self) -> Result<(), InventoryError> {
        if self.read_only {
            return Ok(());
        }
        self.commit()?;
        self.apply_retention()?;
        self.connection
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .map_err(self.sql("checkpoint"))
    }

    /// What this process did: records ingested and ignored, caps that bit.
    pub fn counters(&self) -> InventoryCounters {
        self.counters.clone()
    }

    /// Deletes rows and events last seen, and runs started, more than
    /// `retention_days` before the newest record time in the store. Packet
    /// time, not the wall clock: an old capture read today keeps its rows.
    fn apply_retention(&mut self) -> Result<(), InventoryError> {
        let Some(days) = self.limits.retention_days else {
            return Ok(());
        };
        if self.read_only {
            return Ok(());
        }
        self.commit()?;
        let newest: Option<String> = self
            .connection
            .query_row("SELECT max(last_seen) FROM services", [], |row| row.get(0))
            .map_err(self.sql("find newest record"))?;
        let Some(newest) = newest.as_deref().and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        }) else {
            return Ok(());
        };
        let Some(cutoff) = newest
            .checked_sub(time::Duration::days(i64::from(days)))
            .and_then(record::format_time)
        else {
            return Ok(());
        };
        const STATEMENTS: [&str; 8] = [
            "DELETE FROM drift_events WHERE time < ?1",
            "DELETE FROM negotiations WHERE last_seen < ?1",
            "DELETE FROM certificates WHERE last_seen < ?1",
            "DELETE FROM client_stacks WHERE last_seen < ?1",
            "DELETE FROM findings WHERE last_seen < ?1",
            "DELETE FROM exceptions WHERE last_seen < ?1",
            "DELETE FROM invalid_cert_clients WHERE last_seen < ?1",
            "DELETE FROM services WHERE last_seen < ?1",
        ];
        self.begin_if_needed()?;
        let mut deleted = 0u64;
        for statement in STATEMENTS {
            let changed = self
                .connection
                .execute(statement, [&cutoff])
                .map_err(self.sql("apply retention"))?;
            deleted += changed as u64;
        }
        // Runs by their (wall-clock) start; never the run in progress.
        let changed = self
            .connection
            .execute(
                "DELETE FROM runs WHERE started < ?1 AND id IS NOT ?2",
                params![&cutoff, self.run_id],
            )
            .map_err(self.sql("apply retention"))?;
        deleted += changed as u64;
        self.commit()?;
        self.counters.rows_expired += deleted;
        self.refresh_service_count()
    }

    /// Whether a per-service table has room for one more row; counts the drop
    /// when it has not.
    fn room(&mut self, count_sql: &'static str, service_id: i64) -> Result<bool, InventoryError> {
        let count: i64 = self
            .connection
            .prepare_cached(count_sql)
            .and_then(|mut statement| statement.query_row([service_id], |row| row.get(0)))
            .map_err(self.sql("count rows"))?;
        if usize::try_from(count).unwrap_or(usize::MAX) >= self.limits.max_rows_per_service {
            self.counters.rows_dropped += 1;
            return Ok(false);
        }
        Ok(true)
    }

    /// Returns false when the record's service did not fit.
    fn store(&mut self, facts: &SessionFacts) -> Result<bool, InventoryError> {
        let Some(service_id) = self.service(facts)? else {
            return Ok(false);
        };
        if let Some(negotiation) = &facts.negotiation {
            self.negotiation(service_id, facts, negotiation)?;
        }
        if let Some(certificate) = &facts.certificate {
            self.certificate(service_id, facts, certificate)?;
        }
        if facts.stack.is_some() || facts.ja4.is_some() {
            self.client_stack(service_id, facts)?;
        }
        for finding in &facts.findings {
            self.finding(service_id, facts, finding)?;
        }
        Ok(true)
    }

    fn service(&mut self, facts: &SessionFacts) -> Result<Option<i64>, InventoryError> {
        let (tls, plaintext) = match facts.kind {
            SessionKind::Tls => (1, 0),
            SessionKind::Plaintext => (0, 1),
        };
        let existing: Option<i64> = self
            .connection
            .prepare_cached(
                "UPDATE services SET
                    direction = CASE WHEN ?4 >= last_seen THEN ?5 ELSE direction END,
                    protocol = CASE WHEN ?4 >= last_seen THEN ?6 ELSE protocol END,
                    name = coalesce(?7, name), owner = coalesce(?8, owner),
                    first_seen = min(first_seen, ?4), last_seen = max(last_seen, ?4),
                    sessions = sessions + ?9, plaintext_sessions = plaintext_sessions + ?10
                 WHERE ip = ?1 AND port = ?2 AND sni = ?3 RETURNING id",
            )
            .and_then(|mut statement| {
                statement
                    .query_row(
                        params![
                            facts.server_ip,
                            facts.port,
                            facts.sni,
                            facts.time,
                            facts.direction,
                            facts.protocol,
                            facts.name,
                            facts.owner,
                            tls,
                            plaintext
                        ],
                        |row| row.get(0),
                    )
                    .optional()
            })
            .map_err(self.sql("update service"))?;
        if existing.is_some() {
            return Ok(existing);
        }
        if self.service_count >= self.limits.max_services {
            return Ok(None);
        }
        let id: i64 = self
            .connection
            .prepare_cached(
                "INSERT INTO services (ip, port, sni, name, owner, direction, protocol,
                    first_seen, last_seen, sessions, plaintext_sessions)
                 VALUES (?1, ?2, ?3, ?7, ?8, ?5, ?6, ?4, ?4, ?9, ?10) RETURNING id",
            )
            .and_then(|mut statement| {
                statement.query_row(
                    params![
                        facts.server_ip,
                        facts.port,
                        facts.sni,
                        facts.time,
                        facts.direction,
                        facts.protocol,
                        facts.name,
                        facts.owner,
                        tls,
                        plaintext
                    ],
                    |row| row.get(0),
                )
            })
            .map_err(self.sql("insert service"))?;
        self.service_count += 1;
        Ok(Some(id))
    }

    fn negotiation(
        &mut self,
        service_id: i64,
        facts: &SessionFacts,
        negotiation: &record::Negotiation,
    ) -> Result<(), InventoryError> {
        let values = params![
            service_id,
            negotiation.version,
            negotiation.protocol,
            negotiation.cipher,
            facts.time
        ];
        let updated = self
            .connection
            .prepare_cached(
                "UPDATE negotiations SET sessions = sessions + 1,
                    first_seen = min(first_seen, ?5), last_seen = max(last_seen, ?5)
                 WHERE service_id = ?1 AND version = ?2 AND protocol = ?3 AND cipher = ?4",
            )
            .and_then(|mut statement| statement.execute(values))
            .map_err(self.sql("update negotiation"))?;
        if updated == 0
            && self.room(
                "SELECT COUNT(*) FROM negotiations WHERE service_id = ?1",
                service_id,
            )?
        {
            self.connection
                .prepare_cached(
                    "INSERT INTO negotiations (service_id, version, protocol, cipher, sessions,
                        first_seen, last_seen) VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5)",
                )
                .and_then(|mut statement| statement.execute(values))
                .map_err(self.sql("insert negotiation"))?;
        }
        Ok(())
    }

    fn certificate(
        &mut self,
        service_id: i64,
        facts: &SessionFacts,
        certificate: &record::Certificate,
    ) -> Result<(), InventoryError> {
        let updated = self
            .connection
            .prepare_cached(
                "UPDATE certificates SET sessions = sessions + 1,
                    first_seen = min(first_seen, ?3), last_seen = max(last_seen, ?3)
                 WHERE service_id = ?1 AND sha256 = ?2",
            )
            .and_then(|mut statement| {
                statement.execute(params![service_id, certificate.sha256, facts.time])
            })
            .map_err(self.sql("update certificate"))?;
        if updated == 0
            && self.room(
                "SELECT COUNT(*) FROM certificates WHERE service_id = ?1",
                service_id,
            )?
        {
            let sans = serde_json::to_string(&certificate.sans).unwrap_or_else(|_| "[]".into());
            self.connection
                .prepare_cached(
                    "INSERT INTO certificates (service_id, sha256, subject, issuer, sans,
                        not_before, not_after, sessions, first_seen, last_seen)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, ?8)",
                )
                .and_then(|mut statement| {
                    statement.execute(params![
                        service_id,
                        certificate.sha256,
                        certificate.subject,
                        certificate.issuer,
                        sans,
                        certificate.not_before,
                        certificate.not_after,
                        facts.time
                    ])
                })
                .map_err(self.sql("insert certificate"))?;
        }
        Ok(())
    }

    fn client_stack(
        &mut self,
        service_id: i64,
        facts: &SessionFacts,
    ) -> Result<(), InventoryError> {
        let stack = facts.stack.clone().unwrap_or_default();
        let ja4 = facts.ja4.clone().unwrap_or_default();
        let existing: Option<(i64, i64)> = self
            .connection
            .prepare_cached(
                "UPDATE client_stacks SET sessions = sessions + 1,
                    first_seen = min(first_seen, ?4), last_seen = max(last_seen, ?4)
                 WHERE service_id = ?1 AND stack = ?2 AND ja4 = ?3
                 RETURNING id, distinct_clients",
            )
            .and_then(|mut statement| {
                statement
                    .query_row(params![service_id, stack, ja4, facts.time], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })
                    .optional()
            })
            .map_err(self.sql("update client stack"))?;
        let (row_id, distinct) = match existing {
            Some(found) => found,
            None => {
                if !self.room(
                    "SELECT COUNT(*) FROM client_stacks WHERE service_id = ?1",
                    service_id,
                )? {
                    return Ok(());
                }
                let id: i64 = self
                    .connection
                    .prepare_cached(
                        "INSERT INTO client_stacks (service_id, stack, ja4, sessions,
                            first_seen, last_seen) VALUES (?1, ?2, ?3, 1, ?4, ?4) RETURNING id",
                    )
                    .and_then(|mut statement| {
                        statement.query_row(params![service_id, stack, ja4, facts.time], |row| {
                            row.get(0)
                        })
                    })
                    .map_err(self.sql("insert client stack"))?;
                (id, 0)
            }
        };
        let Some(client_ip) = &facts.client_ip else {
            return Ok(());
        };
        let known: Option<i64> = self
            .connection
            .prepare_cached(
                "SELECT 1 FROM stack_clients WHERE client_stack_id = ?1 AND client_ip = ?2",
            )
            .and_then(|mut statement| {
                statement
                    .query_row(params![row_id, client_ip], |row| row.get(0))
                    .optional()
            })
            .map_err(self.sql("look up client"))?;
        if known.is_some() {
            return Ok(());
        }
        if usize::try_from(distinct).unwrap_or(usize::MAX)
            >= self.limits.max_distinct_clients_tracked
        {
            self.counters.clients_untracked += 1;
            self.connection
                .prepare_cached(
                    "UPDATE client_stacks SET distinct_clients_capped = 1 WHERE id = ?1",
                )
                .and_then(|mut statement| statement.execute([row_id]))
                .map_err(self.sql("mark client cap"))?;
            return Ok(());
        }
        self.connection
            .prepare_cached(
                "INSERT INTO stack_clients (client_stack_id, client_ip) VALUES (?1, ?2)",
            )
            .and_then(|mut statement| statement.execute(params![row_id, client_ip]))
            .map_err(self.sql("insert client"))?;
        self.connection
            .prepare_cached(
                "UPDATE client_stacks SET distinct_clients = distinct_clients + 1 WHERE id = ?1",
            )
            .and_then(|mut statement| statement.execute([row_id]))
            .map_err(self.sql("count client"))?;
        Ok(())
    }

    fn finding(
        &mut self,
        service_id: i64,
        facts: &SessionFacts,
        finding: &Finding,
    ) -> Result<(), InventoryError> {
        let excepted = i64::from(finding.exception.is_some());
        let old_severity: Option<String> = self
            .connection
            .prepare_cached("SELECT severity FROM findings WHERE service_id = ?1 AND id = ?2")
            .and_then(|mut statement| {
                statement
                    .query_row(params![service_id, finding.id], |row| row.get(0))
                    .optional()
            })
            .map_err(self.sql("look up finding"))?;
        match old_severity {
            Some(old) => {
                let severity =
                    if record::severity_rank(&finding.severity) > record::severity_rank(&old) {
                        finding.severity.clone()
                    } else {
                        old
                    };
                self.connection
                    .prepare_cached(
                        "UPDATE findings SET count = count + 1, excepted = excepted + ?3,
                            severity = ?4, last_seen = max(last_seen, ?5)
                         WHERE service_id = ?1 AND id = ?2",
                    )
                    .and_then(|mut statement| {
                        statement.execute(params![
                            service_id, finding.id, excepted, severity, facts.time
                        ])
                    })
                    .map_err(self.sql("update finding"))?;
            }
            None => {
                if self.room(
                    "SELECT COUNT(*) FROM findings WHERE service_id = ?1",
                    service_id,
                )? {
                    self.connection
                        .prepare_cached(
                            "INSERT INTO findings (service_id, id, severity, count, excepted,
                                last_seen) VALUES (?1, ?2, ?3, 1, ?4, ?5)",
                        )
                        .and_then(|mut statement| {
                            statement.execute(params![
                                service_id,
                                finding.id,
                                finding.severity,
                                excepted,
                                facts.time
                            ])
                        })
                        .map_err(self.sql("insert finding"))?;
                }
            }
        }
        if let Some(exception) = &finding.exception {
            self.exception(service_id, facts, finding, exception)?;
        }
        if finding.id == "client_accepted_invalid_cert" {
            self.invalid_cert_client(service_id, facts, finding)?;
        }
        if record::DRIFT_IDS.contains(&finding.id.as_str()) {
            self.drift_event(service_id, facts, finding)?;
        }
        Ok(())
    }

    fn exception(
        &mut self,
        service_id: i64,
        facts: &SessionFacts,
        finding: &Finding,
        exception: &record::ExceptionRef,
    ) -> Result<(), InventoryError> {
        let old_ids: Option<String> = self
            .connection
            .prepare_cached("SELECT finding_ids FROM exceptions WHERE service_id = ?1 AND id = ?2")
            .and_then(|mut statement| {
                statement
                    .query_row(params![service_id, exception.id], |row| row.get(0))
                    .optional()
            })
            .map_err(self.sql("look up exception"))?;
        let existed = old_ids.is_some();
        let mut ids: Vec<String> = old_ids
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        if !ids.contains(&finding.id) && ids.len() < MAX_EXCEPTION_FINDING_IDS {
            ids.push(finding.id.clone());
            ids.sort();
        }
        let ids = serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into());
        if existed {
            self.connection
                .prepare_cached(
                    "UPDATE exceptions SET count = count + 1, owner = ?3, expires = ?4,
                        finding_ids = ?5, last_seen = max(last_seen, ?6)
                     WHERE service_id = ?1 AND id = ?2",
                )
                .and_then(|mut statement| {
                    statement.execute(params![
                        service_id,
                        exception.id,
                        exception.owner,
                        exception.expires,
                        ids,
                        facts.time
                    ])
                })
                .map_err(self.sql("update exception"))?;
        } else if self.room(
            "SELECT COUNT(*) FROM exceptions WHERE service_id = ?1",
            service_id,
        )? {
            self.connection
                .prepare_cached(
                    "INSERT INTO exceptions (service_id, id, owner, expires, finding_ids, count,
                        last_seen) VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6)",
                )
                .and_then(|mut statement| {
                    statement.execute(params![
                        service_id,
                        exception.id,
                        exception.owner,
                        exception.expires,
                        ids,
                        facts.time
                    ])
                })
                .map_err(self.sql("insert exception"))?;
        }
        Ok(())
    }

    fn invalid_cert_client(
        &mut self,
        service_id: i64,
        facts: &SessionFacts,
        finding: &Finding,
    ) -> Result<(), InventoryError> {
        let client_ip = finding
            .evidence
            .get("client")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<IpAddr>().ok())
            .map(|ip| ip.to_string())
            .or_else(|| facts.client_ip.clone())
            .unwrap_or_default();
        let stack = facts.stack.clone().unwrap_or_default();
        let old: Option<String> = self
            .connection
            .prepare_cached(
                "SELECT problems FROM invalid_cert_clients
                 WHERE service_id = ?1 AND client_ip = ?2 AND stack = ?3",
            )
            .and_then(|mut statement| {
                statement
                    .query_row(params![service_id, client_ip, stack], |row| row.get(0))
                    .optional()
            })
            .map_err(self.sql("look up invalid-cert client"))?;
        let existed = old.is_some();
        let mut problems: Vec<String> = old
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        for problem in record::certificate_problems(&finding.evidence) {
            if !problems.contains(&problem) && problems.len() < record::MAX_PROBLEMS {
                problems.push(problem);
            }
        }
        problems.sort();
        let problems = serde_json::to_string(&problems).unwrap_or_else(|_| "[]".into());
        if existed {
            self.connection
                .prepare_cached(
                    "UPDATE invalid_cert_clients SET count = count + 1, problems = ?4,
                        last_seen = max(last_seen, ?5)
                     WHERE service_id = ?1 AND client_ip = ?2 AND stack = ?3",
                )
                .and_then(|mut statement| {
                    statement.execute(params![service_id, client_ip, stack, problems, facts.time])
                })
                .map_err(self.sql("update invalid-cert client"))?;
        } else if self.room(
            "SELECT COUNT(*) FROM invalid_cert_clients WHERE service_id = ?1",
            service_id,
        )? {
            self.connection
                .prepare_cached(
                    "INSERT INTO invalid_cert_clients (service_id, client_ip, stack, problems,
                        count, last_seen) VALUES (?1, ?2, ?3, ?4, 1, ?5)",
                )
                .and_then(|mut statement| {
                    statement.execute(params![service_id, client_ip, stack, problems, facts.time])
                })
                .map_err(self.sql("insert invalid-cert client"))?;
        }
        Ok(())
    }

    /// One row per drift finding; the same finding at the same time (a record
    /// ingested twice) is one row. Beyond the cap the oldest event goes: the
    /// report asks what changed recently.
    fn drift_event(
        &mut self,
        service_id: i64,
        facts: &SessionFacts,
        finding: &Finding,
    ) -> Result<(), InventoryError> {
        let inserted = self
            .connection
            .prepare_cached(
                "INSERT OR IGNORE INTO drift_events (service_id, time, service_name, finding_id,
                    severity, message, evidence) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    service_id,
                    facts.time,
                    facts.name,
                    finding.id,
                    finding.severity,
                    finding.message,
                    record::evidence_text(&finding.evidence)
                ])
            })
            .map_err(self.sql("insert drift event"))?;
        if inserted == 0 {
            return Ok(());
        }
        let count: i64 = self
            .connection
            .prepare_cached("SELECT COUNT(*) FROM drift_events WHERE service_id = ?1")
            .and_then(|mut statement| statement.query_row([service_id], |row| row.get(0)))
            .map_err(self.sql("count drift events"))?;
        if usize::try_from(count).unwrap_or(usize::MAX) > self.limits.max_rows_per_service {
            self.connection
                .prepare_cached(
                    "DELETE FROM drift_events WHERE id = (SELECT id FROM drift_events
                        WHERE service_id = ?1 ORDER BY time, id LIMIT 1)",
                )
                .and_then(|mut statement| statement.execute([service_id]))
                .map_err(self.sql("evict drift event"))?;
            self.counters.rows_dropped += 1;
        }
        Ok(())
    }

    /// Everything stored, services ordered by address, port and SNI.
    pub fn snapshot(&self) -> Result<InventorySnapshot, InventoryError> {
        let services = self.service_rows()?;
        let drift = self.drift_events()?;
        let runs = self.runs()?;
        Ok(InventorySnapshot {
            services,
            drift,
            runs,
        })
    }

    fn service_rows(&self) -> Result<Vec<ServiceRow>, InventoryError> {
        let mut statement = self
            .connection
            .prepare(
                "SELECT id, ip, port, sni, name, owner, direction, protocol, first_seen,
                    last_seen, sessions, plaintext_sessions FROM services ORDER BY ip, port, sni",
            )
            .map_err(self.sql("read services"))?;
        let heads = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    ServiceRow {
                        key: ServiceKey {
                            ip: row.get(1)?,
                            port: row.get(2)?,
                            sni: row.get(3)?,
                        },
                        name: row.get(4)?,
                        owner: row.get(5)?,
                        direction: row.get(6)?,
                        protocol: row.get(7)?,
                        first_seen: row.get(8)?,
                        last_seen: row.get(9)?,
                        sessions: count(row.get(10)?),
                        plaintext_sessions: count(row.get(11)?),
                        negotiations: Vec::new(),
                        certificates: Vec::new(),
                        clients: Vec::new(),
                        findings: Vec::new(),
                        exceptions: Vec::new(),
                        invalid_cert_clients: Vec::new(),
                    },
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.sql("read services"))?;
        let mut services = Vec::with_capacity(heads.len());
        for (id, mut service) in heads {
            self.fill_service(id, &mut service)
                .map_err(self.sql("read service rows"))?;
            services.push(service);
        }
        Ok(services)
    }

    fn fill_service(&self, id: i64, service: &mut ServiceRow) -> Result<(), rusqlite::Error> {
        let c = &self.connection;
        service.negotiations = c
            .prepare_cached(
                "SELECT version, protocol, cipher, sessions, first_seen, last_seen
                 FROM negotiations WHERE service_id = ?1 ORDER BY first_seen, version, cipher",
            )?
            .query_map([id], |row| {
                Ok(NegotiationRow {
                    version: row.get(0)?,
                    protocol: row.get(1)?,
                    cipher: row.get(2)?,
                    sessions: count(row.get(3)?),
                    first_seen: row.get(4)?,
                    last_seen: row.get(5)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        service.certificates = c
            .prepare_cached(
                "SELECT sha256, subject, issuer, sans, not_before, not_after, sessions,
                    first_seen, last_seen
                 FROM certificates WHERE service_id = ?1 ORDER BY first_seen, sha256",
            )?
            .query_map([id], |row| {
                Ok(CertificateRow {
                    sha256: row.get(0)?,
                    subject: row.get(1)?,
                    issuer: row.get(2)?,
                    sans: json_list(&row.get::<_, String>(3)?),
                    not_before: row.get(4)?,
                    not_after: row.get(5)?,
                    sessions: count(row.get(6)?),
                    first_seen: row.get(7)?,
                    last_seen: row.get(8)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        service.clients = c
            .prepare_cached(
                "SELECT stack, ja4, sessions, distinct_clients, distinct_clients_capped,
                    first_seen, last_seen
                 FROM client_stacks WHERE service_id = ?1 ORDER BY stack, ja4",
            )?
            .query_map([id], |row| {
                Ok(ClientStackRow {
                    stack: row.get(0)?,
                    ja4: row.get(1)?,
                    sessions: count(row.get(2)?),
                    distinct_clients: count(row.get(3)?),
                    distinct_clients_capped: row.get::<_, i64>(4)? != 0,
                    first_seen: row.get(5)?,
                    last_seen: row.get(6)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        service.findings = c
            .prepare_cached(
                "SELECT id, severity, count, excepted FROM findings
                 WHERE service_id = ?1 ORDER BY id",
            )?
            .query_map([id], |row| {
                Ok(FindingCount {
                    id: row.get(0)?,
                    severity: row.get(1)?,
                    count: count(row.get(2)?),
                    excepted: count(row.get(3)?),
                })
            })?
            .collect::<Result<_, _>>()?;
        service.exceptions = c
            .prepare_cached(
                "SELECT id, owner, expires, finding_ids, count, last_seen FROM exceptions
                 WHERE service_id = ?1 ORDER BY id",
            )?
            .query_map([id], |row| {
                Ok(ExceptionUse {
                    id: row.get(0)?,
                    owner: row.get(1)?,
                    expires: row.get(2)?,
                    finding_ids: json_list(&row.get::<_, String>(3)?),
                    count: count(row.get(4)?),
                    last_seen: row.get(5)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        service.invalid_cert_clients = c
            .prepare_cached(
                "SELECT client_ip, stack, problems, count, last_seen FROM invalid_cert_clients
                 WHERE service_id = ?1 ORDER BY client_ip, stack",
            )?
            .query_map([id], |row| {
                Ok(InvalidCertClient {
                    client_ip: row.get(0)?,
                    stack: row.get(1)?,
                    problems: json_list(&row.get::<_, String>(2)?),
                    count: count(row.get(3)?),
                    last_seen: row.get(4)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(())
    }

    fn drift_events(&self) -> Result<Vec<DriftEvent>, InventoryError> {
        self.connection
            .prepare(
                "SELECT d.time, s.ip, s.port, s.sni, d.service_name, d.finding_id, d.severity,
                    d.message, d.evidence
                 FROM drift_events d JOIN services s ON s.id = d.service_id
                 ORDER BY d.time, d.id",
            )
            .and_then(|mut statement| {
                statement
                    .query_map([], |row| {
                        Ok(DriftEvent {
                            time: row.get(0)?,
                            key: ServiceKey {
                                ip: row.get(1)?,
                                port: row.get(2)?,
                                sni: row.get(3)?,
                            },
                            service_name: row.get(4)?,
                            id: row.get(5)?,
                            severity: row.get(6)?,
                            message: row.get(7)?,
                            evidence: serde_json::from_str(&row.get::<_, String>(8)?)
                                .unwrap_or(Value::Null),
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(self.sql("read drift events"))
    }

    fn runs(&self) -> Result<Vec<RunRow>, InventoryError> {
        self.connection
            .prepare("SELECT started, source, records FROM runs ORDER BY id")
            .and_then(|mut statement| {
                statement
                    .query_map([], |row| {
                        Ok(RunRow {
                            started: row.get(0)?,
                            source: row.get(1)?,
                            records: count(row.get(2)?),
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(self.sql("read runs"))
    }

    /// What earlier runs saw, in the form the policy's drift memory takes.
    pub fn known_services(&self) -> Result<Vec<KnownService>, InventoryError> {
        let snapshot = self.snapshot()?;
        let mut not_rotated: std::collections::HashMap<&ServiceKey, i64> =
            std::collections::HashMap::new();
        for event in &snapshot.drift {
            if event.id != "cert_not_rotated" {
                continue;
            }
            if let Some(seconds) = record::unix_seconds(&event.time) {
                let latest = not_rotated.entry(&event.key).or_insert(seconds);
                *latest = (*latest).max(seconds);
            }
        }
        let mut known = Vec::with_capacity(snapshot.services.len());
        for service in &snapshot.services {
            let not_rotated_day = not_rotated
                .get(&service.key)
                .map(|seconds| seconds.div_euclid(86_400));
            let mut stacks: Vec<String> = service
                .clients
                .iter()
                .map(|client| client.stack.clone())
                .filter(|stack| !stack.is_empty())
                .collect();
            stacks.sort();
            stacks.dedup();
            known.push(KnownService {
                server: service
                    .key
                    .ip
                    .parse::<IpAddr>()
                    .ok()
                    .map(|ip| SocketAddr::new(ip, service.key.port)),
                sni: (!service.key.sni.is_empty()).then(|| service.key.sni.to_ascii_lowercase()),
                negotiations: service
                    .negotiations
                    .iter()
                    .map(|n| KnownNegotiation {
                        version: n.version.clone(),
                        protocol: n.protocol.clone(),
                        cipher: n.cipher.clone(),
                    })
                    .collect(),
                // Certificates are read ordered by first_seen.
                leaves: service
                    .certificates
                    .iter()
                    .map(|c| KnownLeaf {
                        sha256: c.sha256.clone(),
                        not_after: record::unix_seconds(&c.not_after),
                        first_seen: record::unix_seconds(&c.first_seen).unwrap_or(0),
                        last_seen: record::unix_seconds(&c.last_seen).unwrap_or(0),
                    })
                    .collect(),
                stacks,
                not_rotated_day,
            });
        }
        Ok(known)
    }
}

impl std::fmt::Debug for Inventory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inventory")
            .field("path", &self.path)
            .field("read_only", &self.read_only)
            .field("limits", &self.limits)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Drop for Inventory {
    /// Commits what was ingested when the owner forgot to; errors cannot be
    /// reported here, and the data is at worst lost, never corrupt.
    fn drop(&mut self) {
        if !self.read_only && !self.connection.is_autocommit() {
            let _ = self.commit();
        }
    }
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn json_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}
