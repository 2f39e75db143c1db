//! The SQLite schema of the inventory and its version. A database is a tlstap
//! inventory when `tlstap_meta` says so; anything else is refused, so
//! `--inventory` pointed at the wrong file never alters it.

/// Marks a database as ours (`tlstap_meta.application`).
pub const APPLICATION: &str = "tlstap-inventory";

/// The schema this build writes. A newer file is refused (its rows may mean
/// something we do not know); an older one is migrated in [`super::store`].
pub const SCHEMA_VERSION: i64 = 1;

/// Version 1. Every per-service table is keyed by its distinct value, so a
/// repeated value only moves counters; `ON DELETE CASCADE` lets retention drop
/// a service with one statement. Times are fixed-width RFC 3339 UTC text
/// (`2026-11-23T01:19:19.497797Z`), so text order is time order.
pub const SCHEMA_V1: &str = "
CREATE TABLE tlstap_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    started TEXT NOT NULL,
    source TEXT NOT NULL,
    records INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE services (
    id INTEGER PRIMARY KEY,
    ip TEXT NOT NULL,
    port INTEGER NOT NULL,
    sni TEXT NOT NULL,
    name TEXT,
    owner TEXT,
    direction TEXT NOT NULL,
    protocol TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    sessions INTEGER NOT NULL DEFAULT 0,
    plaintext_sessions INTEGER NOT NULL DEFAULT 0,
    UNIQUE (ip, port, sni)
);
CREATE TABLE negotiations (
    service_id INTEGER NOT NULL REFERENCES services(id) ON DELETE CASCADE,
    version TEXT NOT NULL,
    protocol TEXT NOT NULL,
    cipher TEXT NOT NULL,
    sessions INTEGER NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (service_id, version, protocol, cipher)
);
CREATE TABLE certificates (
    service_id INTEGER NOT NULL REFERENCES services(id) ON DELETE CASCADE,
    sha256 TEXT NOT NULL,
    subject TEXT NOT NULL,
    issuer TEXT NOT NULL,
    sans TEXT NOT NULL,
    not_before TEXT NOT NULL,
    not_after TEXT NOT NULL,
    sessions INTEGER NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (service_id, sha256)
);
CREATE TABLE client_stacks (
    id INTEGER PRIMARY KEY,
    service_id INTEGER NOT NULL REFERENCES services(id) ON DELETE CASCADE,
    stack TEXT NOT NULL,
    ja4 TEXT NOT NULL,
    sessions INTEGER NOT NULL,
    distinct_clients INTEGER NOT NULL DEFAULT 0,
    distinct_clients_capped INTEGER NOT NULL DEFAULT 0,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    UNIQUE (service_id, stack, ja4)
);
CREATE TABLE stack_clients (
    client_stack_id INTEGER NOT NULL REFERENCES client_stacks(id) ON DELETE CASCADE,
    client_ip TEXT NOT NULL,
    PRIMARY KEY (client_stack_id, client_ip)
) WITHOUT ROWID;
CREATE TABLE findings (
    service_id INTEGER NOT NULL REFERENCES services(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    severity TEXT NOT NULL,
    count INTEGER NOT NULL,
    excepted INTEGER NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (service_id, id)
);
CREATE TABLE exceptions (
    service_id INTEGER NOT NULL REFERENCES services(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    owner TEXT NOT NULL,
    expires TEXT NOT NULL,
    finding_ids TEXT NOT NULL,
    count INTEGER NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (service_id, id)
);
CREATE TABLE invalid_cert_clients (
    service_id INTEGER NOT NULL REFERENCES services(id) ON DELETE CASCADE,
    client_ip TEXT NOT NULL,
    stack TEXT NOT NULL,
    problems TEXT NOT NULL,
    count INTEGER NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (service_id, client_ip, stack)
);
CREATE TABLE drift_events (
    id INTEGER PRIMARY KEY,
    service_id INTEGER NOT NULL REFERENCES services(id) ON DELETE CASCADE,
    time TEXT NOT NULL,
    service_name TEXT,
    finding_id TEXT NOT NULL,
    severity TEXT NOT NULL,
    message TEXT NOT NULL,
    evidence TEXT NOT NULL,
    UNIQUE (service_id, time, finding_id)
);
CREATE INDEX services_last_seen ON services (last_seen);
CREATE INDEX drift_events_time ON drift_events (time);
";

/// Where `inventory ingest` stopped in each Kafka partition: the offset of
/// the next record to apply, written in the transaction that applies the
/// record, so a restart neither skips nor repeats one. Created when a
/// writable inventory opens (IF NOT EXISTS): a version-1 reader ignores it.
pub const SCHEMA_INGEST_POSITIONS: &str = "
CREATE TABLE IF NOT EXISTS ingest_positions (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
);
";
