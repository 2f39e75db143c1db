//! The persistent inventory: filled from the records of the sample captures
//! (tests/data/samples-records.ndjson, made by `tlstap read --policy
//! samples/policy.toml samples/*.pcap`), bounded under floods, safe across a
//! kill -9, and refusing files that are not an inventory.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use proptest::prelude::*;
use serde_json::{json, Value};
use tlstap::inventory::{
    print_table, Inventory, InventoryError, InventoryLimits, InventorySink, InventorySnapshot,
    ServiceRow,
};
use tlstap::output::Sink;

const API_LEAF: &str = "B3C2785B9B0FCDEBDD22DBB818B0C09438724375858C66EEBDBC5921493EC714";
const EXPIRED_LEAF: &str = "3D0042FCBE8C6FEAFE6698353BDAD9A741AA4E353E07A2A3C463D8CCD65270E2";
const OPENSSL_TLS12_JA4: &str = "t12d280700_d943125447b4_e7e480e5a997";

fn sample_lines() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/samples-records.ndjson");
    std::fs::read_to_string(path)
        .expect("fixture")
        .lines()
        .map(str::to_string)
        .collect()
}

fn sample_records() -> Vec<Value> {
    sample_lines()
        .iter()
        .map(|line| serde_json::from_str(line).expect("fixture line is JSON"))
        .collect()
}

fn temp_inventory() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("inventory.sqlite");
    (dir, path)
}

fn ingest_all(inventory: &mut Inventory, records: &[Value]) {
    for record in records {
        inventory.ingest(record).expect("ingest");
    }
    inventory.commit().expect("commit");
}

fn service<'a>(snapshot: &'a InventorySnapshot, ip: &str, port: u16, sni: &str) -> &'a ServiceRow {
    snapshot
        .services
        .iter()
        .find(|s| s.key.ip == ip && s.key.port == port && s.key.sni == sni)
        .unwrap_or_else(|| panic!("service {ip}:{port} {sni:?} in the inventory"))
}

/// A minimal TLS session record.
fn session(time: &str, client: &str, server: &str, port: u16, sni: &str) -> Value {
    json!({
        "@timestamp": time,
        "event": {"dataset": "tlstap.tls"},
        "source": {"ip": client},
        "destination": {"ip": server, "port": port},
        "network": {"direction": "internal", "protocol": "tls"},
        "tls": {"version": "1.3", "version_protocol": "tls", "cipher": "TLS_AES_128_GCM_SHA256",
                "client": {"server_name": sni}},
        "tlstap": {"client": {"stack": "rustls 0.23", "ja4": "t13d_test"}}
    })
}

fn total_sessions(snapshot: &InventorySnapshot) -> u64 {
    snapshot.services.iter().map(|s| s.sessions).sum()
}

#[test]
fn sample_records_fill_services_versions_certificates_stacks_and_findings() {
    let (_dir, path) = temp_inventory();
    let mut inventory = Inventory::open(&path, InventoryLimits::default()).expect("open");
    inventory.begin_run("samples/*.pcap").expect("run");
    ingest_all(&mut inventory, &sample_records());
    let counters = inventory.counters();
    assert_eq!(counters.records_ingested, 61);
    assert_eq!(counters.records_ignored, 1, "the stats line");
    assert_eq!(counters.services_dropped, 0);

    let snapshot = inventory.snapshot().expect("snapshot");
    assert_eq!(snapshot.services.len(), 44);
    assert_eq!(total_sessions(&snapshot), 59);
    assert_eq!(
        snapshot
            .services
            .iter()
            .map(|s| s.plaintext_sessions)
            .sum::<u64>(),
        2
    );
    assert_eq!(snapshot.runs.len(), 1);
    assert_eq!(snapshot.runs[0].source, "samples/*.pcap");
    assert_eq!(snapshot.runs[0].records, 61);

    let mut by_version = std::collections::BTreeMap::new();
    for n in snapshot.services.iter().flat_map(|s| &s.negotiations) {
        *by_version.entry(n.version.as_str()).or_insert(0) += n.sessions;
    }
    assert_eq!(
        by_version.into_iter().collect::<Vec<_>>(),
        vec![("1.0", 1), ("1.1", 1), ("1.2", 23), ("1.3", 33)]
    );

    let api = service(&snapshot, "10.20.0.10", 443, "api.internal");
    assert_eq!(api.name.as_deref(), Some("samples-api"));
    assert_eq!(api.owner.as_deref(), Some("platform-team"));
    assert_eq!((api.sessions, api.plaintext_sessions), (17, 0));
    assert_eq!(api.direction, "internal");
    assert_eq!(api.first_seen, "2026-11-23T01:19:08.829713Z");
    assert_eq!(api.last_seen, "2026-11-23T01:19:25.813485Z");
    assert_eq!(api.negotiations.len(), 6);
    let gcm = api
        .negotiations
        .iter()
        .find(|n| n.version == "1.2" && n.cipher == "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")
        .expect("1.2 GCM row");
    assert_eq!((gcm.protocol.as_str(), gcm.sessions), ("tls", 10));

    assert_eq!(api.certificates.len(), 7);
    let leaf = api
        .certificates
        .iter()
        .find(|c| c.sha256 == API_LEAF)
        .expect("api leaf");
    assert_eq!(leaf.not_after, "2027-02-21T01:19:05Z");
    assert_eq!(leaf.not_before, "2026-11-23T01:19:05Z");
    assert_eq!(leaf.subject, "CN=api.internal");
    assert_eq!(
        leaf.issuer,
        "CN=tlstap Test Intermediate CA,O=tlstap Test PKI"
    );
    assert_eq!(leaf.sans, ["api.internal", "*.svc.internal", "10.20.0.10"]);
    assert_eq!(leaf.sessions, 8);
    let expired = api
        .certificates
        .iter()
        .find(|c| c.sha256 == EXPIRED_LEAF)
        .expect("expired leaf");
    assert_eq!(expired.not_after, "2026-10-24T01:19:06Z");

    let openssl = api
        .clients
        .iter()
        .find(|c| c.stack == "openssl 3.0" && c.ja4 == OPENSSL_TLS12_JA4)
        .expect("openssl 3.0 TLS 1.2 client");
    assert_eq!((openssl.sessions, openssl.distinct_clients), (6, 1));
    assert!(!openssl.distinct_clients_capped);
    let openssl_sessions: u64 = snapshot
        .services
        .iter()
        .flat_map(|s| &s.clients)
        .filter(|c| c.stack == "openssl 3.0")
        .map(|c| c.sessions)
        .sum();
    assert_eq!(openssl_sessions, 23);

    let finding = |id: &str| {
        api.findings
            .iter()
            .find(|f| f.id == id)
            .map(|f| (f.severity.as_str(), f.count, f.excepted))
    };
    assert_eq!(finding("tls_below_baseline"), Some(("medium", 14, 0)));
    assert_eq!(finding("cbc_cipher"), Some(("info", 3, 3)));
    assert_eq!(
        finding("client_accepted_invalid_cert"),
        Some(("high", 5, 0))
    );
    assert_eq!(finding("exception_expired"), Some(("medium", 1, 0)));
    assert_eq!(api.findings.len(), 17);

    assert_eq!(api.exceptions.len(), 1);
    let exception = &api.exceptions[0];
    assert_eq!(exception.id, "EXC-2026-014");
    assert_eq!(exception.owner, "payments-platform");
    assert_eq!(exception.expires, "2027-03-31");
    assert_eq!(exception.finding_ids, ["cbc_cipher"]);
    assert_eq!(exception.count, 3);

    assert_eq!(api.invalid_cert_clients.len(), 1);
    let invalid = &api.invalid_cert_clients[0];
    assert_eq!(
        (
            invalid.client_ip.as_str(),
            invalid.stack.as_str(),
            invalid.count
        ),
        ("10.20.0.20", "openssl 3.0", 5)
    );
    assert!(invalid.problems.iter().any(|p| p == "cert_expired"));
    assert!(invalid.problems.iter().any(|p| p == "cert_name_mismatch"));

    let plaintext = service(&snapshot, "10.20.0.10", 443, "");
    assert_eq!((plaintext.sessions, plaintext.plaintext_sessions), (0, 1));
    assert_eq!(plaintext.protocol, "http");
    let no_sni = service(&snapshot, "10.20.1.3", 443, "");
    assert_eq!(no_sni.sessions, 1);
    assert_eq!(no_sni.name, None);
}

#[test]
fn ingesting_the_same_records_twice_doubles_counts_not_rows() {
    let (_dir, path) = temp_inventory();
    let mut inventory = Inventory::open(&path, InventoryLimits::default()).expect("open");
    let records = sample_records();
    ingest_all(&mut inventory, &records);
    let once = inventory.snapshot().expect("snapshot");
    ingest_all(&mut inventory, &records);
    let twice = inventory.snapshot().expect("snapshot");
    assert_eq!(twice.services.len(), once.services.len());
    assert_eq!(total_sessions(&twice), 2 * total_sessions(&once));
    for (a, b) in once.services.iter().zip(&twice.services) {
        assert_eq!(a.key, b.key);
        assert_eq!(b.sessions, 2 * a.sessions);
        assert_eq!(b.plaintext_sessions, 2 * a.plaintext_sessions);
        assert_eq!(b.negotiations.len(), a.negotiations.len());
        assert_eq!(b.certificates.len(), a.certificates.len());
        assert_eq!(b.clients.len(), a.clients.len());
        assert_eq!(b.findings.len(), a.findings.len());
        assert_eq!(b.exceptions.len(), a.exceptions.len());
        assert_eq!(b.invalid_cert_clients.len(), a.invalid_cert_clients.len());
        for (x, y) in a.negotiations.iter().zip(&b.negotiations) {
            assert_eq!(y.sessions, 2 * x.sessions);
        }
        for (x, y) in a.clients.iter().zip(&b.clients) {
            assert_eq!(y.sessions, 2 * x.sessions);
            assert_eq!(
                y.distinct_clients, x.distinct_clients,
                "same client addresses"
            );
        }
        for (x, y) in a.findings.iter().zip(&b.findings) {
            assert_eq!(y.count, 2 * x.count);
        }
        assert_eq!(b.first_seen, a.first_seen);
        assert_eq!(b.last_seen, a.last_seen);
    }
    let api = service(&twice, "10.20.0.10", 443, "api.internal");
    assert_eq!(api.exceptions[0].count, 6);
}

#[test]
fn snapshot_round_trips_through_json_and_a_read_only_reopen() {
    let (_dir, path) = temp_inventory();
    let mut inventory = Inventory::open(&path, InventoryLimits::default()).expect("open");
    inventory.begin_run("samples").expect("run");
    ingest_all(&mut inventory, &sample_records());
    let snapshot = inventory.snapshot().expect("snapshot");
    inventory.close().expect("close");

    let text = serde_json::to_string(&snapshot).expect("serialise");
    let back: InventorySnapshot = serde_json::from_str(&text).expect("deserialise");
    assert_eq!(back, snapshot);
    let value: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(value["services"].as_array().map(Vec::len), Some(44));

    let reader = Inventory::open_read_only(&path).expect("read-only");
    assert_eq!(reader.snapshot().expect("snapshot"), snapshot);
    let error = {
        let mut reader = reader;
        reader
            .ingest(&session(
                "2026-11-23T01:00:00Z",
                "10.0.0.1",
                "10.0.0.2",
                443,
                "x",
            ))
            .expect_err("read-only")
    };
    assert!(matches!(error, InventoryError::ReadOnly { .. }), "{error}");
}

#[test]
fn known_services_give_the_policy_what_was_ingested() {
    let (_dir, path) = temp_inventory();
    let mut inventory = Inventory::open(&path, InventoryLimits::default()).expect("open");
    ingest_all(&mut inventory, &sample_records());
    let known = inventory.known_services().expect("known");
    assert_eq!(known.len(), 44);
    let api = known
        .iter()
        .find(|k| {
            k.server == Some("10.20.0.10:443".parse().expect("addr"))
                && k.sni.as_deref() == Some("api.internal")
        })
        .expect("api service");
    assert_eq!(api.negotiations.len(), 6);
    assert!(api.negotiations.iter().any(|n| n.version == "1.2"
        && n.protocol == "tls"
        && n.cipher == "TLS_RSA_WITH_AES_128_CBC_SHA"));
    assert_eq!(api.stacks, ["openssl 3.0", "unknown"]);
    assert_eq!(api.leaves.len(), 7);
    // tls12-rsa-static (01:19:09.78) is the first session with a visible leaf.
    assert_eq!(api.leaves[0].sha256, API_LEAF);
    assert_eq!(api.leaves[0].not_after, Some(1_803_172_745));
    assert_eq!(api.leaves[0].first_seen, 1_795_396_749);
    let firsts: Vec<i64> = api.leaves.iter().map(|l| l.first_seen).collect();
    let mut sorted = firsts.clone();
    sorted.sort();
    assert_eq!(firsts, sorted, "leaves oldest first");
    assert_eq!(api.not_rotated_day, None);
    let no_sni = known
        .iter()
        .find(|k| k.server == Some("10.20.1.3:443".parse().expect("addr")))
        .expect("no-sni service");
    assert_eq!(no_sni.sni, None);
    assert_eq!(no_sni.stacks, ["openssl 3.0"]);
}

#[test]
fn drift_findings_become_events_once_and_set_not_rotated_day() {
    let (_dir, path) = temp_inventory();
    let mut inventory = Inventory::open(&path, InventoryLimits::default()).expect("open");
    let mut record = session(
        "2026-12-01T10:00:00Z",
        "10.0.0.1",
        "10.0.0.9",
        443,
        "Pay.Internal",
    );
    record["tlstap"]["findings"] = json!([
        {"id": "cert_not_rotated", "severity": "medium", "message": "leaf not rotated",
         "evidence": {"sha256": "AA", "days_left": 10}},
        {"id": "new_client_stack", "severity": "low", "message": "new stack",
         "evidence": {"stack": "rustls 0.23"}},
        {"id": "weak_cipher", "severity": "high", "message": "not drift", "evidence": {}}
    ]);
    inventory.ingest(&record).expect("ingest");
    inventory.ingest(&record).expect("ingest again");
    inventory.commit().expect("commit");
    let snapshot = inventory.snapshot().expect("snapshot");
    let ids: Vec<&str> = snapshot.drift.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), 2, "one event per finding and time: {ids:?}");
    assert!(ids.contains(&"cert_not_rotated") && ids.contains(&"new_client_stack"));
    let event = snapshot
        .drift
        .iter()
        .find(|e| e.id == "cert_not_rotated")
        .expect("event");
    assert_eq!(event.time, "2026-12-01T10:00:00.000000Z");
    assert_eq!(event.key.sni, "pay.internal");
    assert_eq!(event.evidence, json!({"sha256": "AA", "days_left": 10}));
    let known = inventory.known_services().expect("known");
    // 2026-12-01 is day 20788 since the epoch.
    assert_eq!(known[0].not_rotated_day, Some(20_788));
    assert_eq!(known[0].sni.as_deref(), Some("pay.internal"));
}

#[test]
fn a_flood_of_distinct_services_keeps_exactly_the_cap_and_counts_the_rest() {
    let (_dir, path) = temp_inventory();
    let limits = InventoryLimits {
        max_services: 1000,
        ..InventoryLimits::default()
    };
    let mut inventory = Inventory::open(&path, limits).expect("open");
    for i in 0u32..100_000 {
        let server = std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string();
        inventory
            .ingest(&session(
                "2026-11-23T00:00:00Z",
                "192.0.2.1",
                &server,
                443,
                "",
            ))
            .expect("ingest");
        if i % 256 == 255 {
            inventory.commit().expect("commit");
        }
    }
    inventory.commit().expect("commit");
    let counters = inventory.counters();
    assert_eq!(counters.records_ingested, 1000);
    assert_eq!(counters.services_dropped, 99_000);
    let snapshot = inventory.snapshot().expect("snapshot");
    assert_eq!(snapshot.services.len(), 1000);
    // The first thousand arrived first and stayed.
    assert!(snapshot.services.iter().any(|s| s.key.ip == "10.0.3.231"));
    assert!(!snapshot.services.iter().any(|s| s.key.ip == "10.0.3.232"));
    inventory.close().expect("close");
    let reopened = Inventory::open(
        &path,
        InventoryLimits {
            max_services: 1000,
            ..InventoryLimits::default()
        },
    )
    .expect("reopen");
    let mut reopened = reopened;
    reopened
        .ingest(&session(
            "2026-11-23T00:00:00Z",
            "192.0.2.1",
            "10.99.0.1",
            443,
            "",
        ))
        .expect("ingest");
    assert_eq!(
        reopened.counters().services_dropped,
        1,
        "cap survives reopening"
    );
}

#[test]
fn per_service_caps_bound_rows_and_distinct_clients() {
    let (_dir, path) = temp_inventory();
    let limits = InventoryLimits {
        max_rows_per_service: 2,
        max_distinct_clients_tracked: 3,
        ..InventoryLimits::default()
    };
    let mut inventory = Inventory::open(&path, limits).expect("open");
    for (i, cipher) in ["A", "B", "C", "D"].iter().enumerate() {
        let mut record = session(
            "2026-11-23T00:00:00Z",
            &format!("10.1.0.{i}"),
            "10.0.0.1",
            443,
            "svc",
        );
        record["tls"]["cipher"] = json!(cipher);
        record["tls"]["server"] = json!({"hash": {"sha256": format!("LEAF{i}")}});
        inventory.ingest(&record).expect("ingest");
    }
    inventory
        .ingest(&session(
            "2026-11-23T00:00:01Z",
            "10.1.0.9",
            "10.0.0.1",
            443,
            "svc",
        ))
        .expect("ingest");
    inventory.commit().expect("commit");
    let snapshot = inventory.snapshot().expect("snapshot");
    let svc = service(&snapshot, "10.0.0.1", 443, "svc");
    assert_eq!(svc.sessions, 5);
    assert_eq!(svc.negotiations.len(), 2);
    assert_eq!(svc.certificates.len(), 2);
    assert_eq!(svc.clients.len(), 1);
    assert_eq!(svc.clients[0].sessions, 5);
    assert_eq!(svc.clients[0].distinct_clients, 3);
    assert!(svc.clients[0].distinct_clients_capped);
    let counters = inventory.counters();
    // Negotiations C, D and the fifth record's cipher; certificates LEAF2, LEAF3.
    assert_eq!(counters.rows_dropped, 5);
    assert_eq!(counters.clients_untracked, 2);
}

#[test]
fn drift_events_beyond_the_row_cap_evict_the_oldest() {
    let (_dir, path) = temp_inventory();
    let limits = InventoryLimits {
        max_rows_per_service: 2,
        ..InventoryLimits::default()
    };
    let mut inventory = Inventory::open(&path, limits).expect("open");
    for day in ["01", "02", "03"] {
        let mut record = session(
            &format!("2026-12-{day}T00:00:00Z"),
            "10.1.0.1",
            "10.0.0.1",
            443,
            "svc",
        );
        record["tlstap"]["findings"] = json!([{"id": "cert_rotated", "severity": "info",
            "message": "rotated", "evidence": {}}]);
        inventory.ingest(&record).expect("ingest");
    }
    inventory.commit().expect("commit");
    let times: Vec<String> = inventory
        .snapshot()
        .expect("snapshot")
        .drift
        .into_iter()
        .map(|e| e.time)
        .collect();
    assert_eq!(
        times,
        ["2026-12-02T00:00:00.000000Z", "2026-12-03T00:00:00.000000Z"]
    );
    assert_eq!(inventory.counters().rows_dropped, 1);
}

#[test]
fn a_writer_that_never_commits_still_commits_every_max_pending_records() {
    let (_dir, path) = temp_inventory();
    let mut inventory = Inventory::open(&path, InventoryLimits::default()).expect("open");
    let pending = usize::try_from(tlstap::inventory::MAX_PENDING_RECORDS).expect("small");
    for _ in 0..pending + 10 {
        inventory
            .ingest(&session(
                "2026-11-23T00:00:00Z",
                "10.1.0.1",
                "10.0.0.1",
                443,
                "svc",
            ))
            .expect("ingest");
    }
    let reader = Inventory::open_read_only(&path).expect("reader");
    let seen = total_sessions(&reader.snapshot().expect("snapshot"));
    assert_eq!(seen, tlstap::inventory::MAX_PENDING_RECORDS);
    drop(inventory);
    let seen = total_sessions(&reader.snapshot().expect("snapshot"));
    assert_eq!(
        seen,
        tlstap::inventory::MAX_PENDING_RECORDS + 10,
        "drop commits"
    );
}

#[test]
fn retention_deletes_rows_last_seen_before_the_window() {
    let (_dir, path) = temp_inventory();
    let mut inventory = Inventory::open(&path, InventoryLimits::default()).expect("open");
    inventory
        .ingest(&session(
            "2026-01-01T00:00:00Z",
            "10.1.0.1",
            "10.0.0.1",
            443,
            "old",
        ))
        .expect("ingest");
    let mut early = session("2026-01-01T00:00:00Z", "10.1.0.1", "10.0.0.2", 443, "kept");
    early["tls"]["cipher"] = json!("OLD_CIPHER");
    inventory.ingest(&early).expect("ingest");
    inventory
        .ingest(&session(
            "2026-06-01T00:00:00Z",
            "10.1.0.1",
            "10.0.0.2",
            443,
            "kept",
        ))
        .expect("ingest");
    inventory.close().expect("close");

    let limits = InventoryLimits {
        retention_days: Some(30),
        ..InventoryLimits::default()
    };
    let inventory = Inventory::open(&path, limits).expect("open with retention");
    // Service "old" with its negotiation and client-stack rows, and the
    // OLD_CIPHER negotiation row of "kept".
    assert_eq!(inventory.counters().rows_expired, 4);
    let snapshot = inventory.snapshot().expect("snapshot");
    assert_eq!(snapshot.services.len(), 1);
    let kept = service(&snapshot, "10.0.0.2", 443, "kept");
    assert_eq!(kept.sessions, 2, "counters stay");
    assert_eq!(kept.negotiations.len(), 1);
    assert_eq!(kept.negotiations[0].cipher, "TLS_AES_128_GCM_SHA256");
}

#[test]
fn a_file_that_is_not_sqlite_is_refused() {
    let (_dir, path) = temp_inventory();
    std::fs::write(&path, b"this is a pcap, honest\n".repeat(100)).expect("write");
    let error = Inventory::open(&path, InventoryLimits::default()).expect_err("refused");
    assert!(
        matches!(error, InventoryError::NotSqlite { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("not a tlstap inventory"));
    assert!(error.to_string().contains("inventory.sqlite"));
    assert_eq!(
        std::fs::read(&path).expect("read"),
        b"this is a pcap, honest\n".repeat(100),
        "left untouched"
    );
    let error = Inventory::open_read_only(&path).expect_err("refused");
    assert!(
        matches!(error, InventoryError::NotSqlite { .. }),
        "{error:?}"
    );
}

#[test]
fn a_foreign_sqlite_database_is_refused_and_left_alone() {
    let (_dir, path) = temp_inventory();
    {
        let connection = rusqlite::Connection::open(&path).expect("sqlite");
        connection
            .execute_batch("CREATE TABLE accounts (name TEXT); INSERT INTO accounts VALUES ('x');")
            .expect("create");
    }
    let error = Inventory::open(&path, InventoryLimits::default()).expect_err("refused");
    assert!(
        matches!(error, InventoryError::ForeignDatabase { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("not a tlstap inventory"));
    let connection = rusqlite::Connection::open(&path).expect("sqlite");
    let tables: i64 = connection
        .query_row("SELECT COUNT(*) FROM sqlite_master", [], |row| row.get(0))
        .expect("count");
    assert_eq!(tables, 1, "no tables added");
    let mode: String = connection
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .expect("mode");
    assert_eq!(mode, "delete", "journal mode not switched");
}

#[test]
fn a_newer_schema_and_a_missing_file_are_clear_errors() {
    let (dir, path) = temp_inventory();
    Inventory::open(&path, InventoryLimits::default())
        .expect("create")
        .close()
        .expect("close");
    {
        let connection = rusqlite::Connection::open(&path).expect("sqlite");
        connection
            .execute(
                "UPDATE tlstap_meta SET value = '99' WHERE key = 'schema_version'",
                [],
            )
            .expect("bump");
    }
    let error = Inventory::open(&path, InventoryLimits::default()).expect_err("too new");
    assert!(
        matches!(
            error,
            InventoryError::SchemaTooNew {
                found: 99,
                supported: 1,
                ..
            }
        ),
        "{error:?}"
    );
    let missing = dir.path().join("nope.sqlite");
    let error = Inventory::open_read_only(&missing).expect_err("missing");
    assert!(matches!(error, InventoryError::Missing { .. }), "{error:?}");
    assert!(!missing.exists(), "read-only open creates nothing");
}

#[test]
fn inventory_sink_ingests_lines_and_counts_broken_ones() {
    let (_dir, path) = temp_inventory();
    let inventory = Inventory::open(&path, InventoryLimits::default()).expect("open");
    let mut sink = InventorySink::new(inventory);
    for line in sample_lines() {
        sink.write_line(format!("{line}\n").as_bytes())
            .expect("write");
    }
    sink.write_line(b"{\"event\": {\"dataset\": \"tlstap.tls\"\n")
        .expect("broken line is not fatal");
    sink.write_line(b"\xff\xfe not json\n").expect("not fatal");
    sink.flush().expect("flush");
    let counters = sink.counters();
    assert_eq!(counters.records_ingested, 61);
    assert_eq!(counters.records_ignored, 3);
    let reader = Inventory::open_read_only(&path).expect("reader");
    let snapshot = reader.snapshot().expect("snapshot");
    assert_eq!(total_sessions(&snapshot), 59, "flushed lines are committed");
}

#[test]
fn print_table_shows_one_block_per_service() {
    let (_dir, path) = temp_inventory();
    let mut inventory = Inventory::open(&path, InventoryLimits::default()).expect("open");
    ingest_all(&mut inventory, &sample_records());
    let mut out = Vec::new();
    print_table(&inventory.snapshot().expect("snapshot"), &mut out).expect("print");
    let text = String::from_utf8(out).expect("utf-8");
    assert!(text.starts_with("44 service(s), 0 drift event(s), 0 run(s)\n"));
    assert!(text.contains(
        "\nsamples-api  owner platform-team\n  10.20.0.10:443  sni api.internal  internal tls\n"
    ));
    assert!(text.contains(&format!(
        "    {API_LEAF}  CN=api.internal  not_after 2027-02-21T01:19:05Z  sessions 8\n"
    )));
    assert!(text.contains("  exception EXC-2026-014 (owner payments-platform, expires 2027-03-31) covered cbc_cipher x3\n"));
    assert!(text.contains("10.20.1.3:443  sni (no sni)"));
    assert_eq!(text.matches("\n  seen ").count(), 44);
}

// --- kill -9 -------------------------------------------------------------

const CHILD_ENV: &str = "TLSTAP_INVENTORY_KILL_CHILD";
const CHILD_BATCH: u64 = 50;

/// The child half of `kill_9_mid_run_leaves_a_consistent_committed_prefix`:
/// ingests forever, committing every CHILD_BATCH records and saying so.
#[test]
#[ignore = "child process of kill_9_mid_run_leaves_a_consistent_committed_prefix"]
fn kill_9_child_ingest_loop() {
    let path = PathBuf::from(std::env::var(CHILD_ENV).expect("run by the parent test"));
    let mut inventory = Inventory::open(&path, InventoryLimits::default()).expect("open");
    inventory.begin_run("kill-9 child").expect("run");
    let mut stdout = std::io::stdout();
    for i in 0u64.. {
        let client = std::net::Ipv4Addr::from(0x0a00_0000 + (i % 4096) as u32).to_string();
        let mut record = session("2026-11-23T00:00:00Z", &client, "10.0.0.1", 443, "svc");
        record["tls"]["server"] = json!({"hash": {"sha256": format!("LEAF{}", i % 7)}});
        inventory.ingest(&record).expect("ingest");
        if (i + 1) % CHILD_BATCH == 0 {
            inventory.commit().expect("commit");
            writeln!(stdout, "committed {}", i + 1).expect("stdout");
            stdout.flush().expect("flush");
        }
    }
}

#[test]
fn kill_9_mid_run_leaves_a_consistent_committed_prefix() {
    let (_dir, path) = temp_inventory();
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--ignored",
            "--exact",
            "kill_9_child_ingest_loop",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("piped");
    let mut last_committed = 0u64;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        if let Some(n) = line.strip_prefix("committed ") {
            last_committed = n.parse().expect("number");
            if last_committed >= 600 {
                break;
            }
        }
    }
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("wait");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status:?}");
    assert!(last_committed >= 600, "child committed before the kill");

    {
        let connection = rusqlite::Connection::open(&path).expect("sqlite");
        let check: String = connection
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .expect("integrity_check");
        assert_eq!(check, "ok");
    }
    let inventory = Inventory::open(&path, InventoryLimits::default()).expect("reopen");
    let snapshot = inventory.snapshot().expect("snapshot");
    let sessions = total_sessions(&snapshot);
    assert!(sessions >= last_committed, "{sessions} < {last_committed}");
    assert_eq!(sessions % CHILD_BATCH, 0, "a committed prefix: {sessions}");
    assert_eq!(snapshot.runs.len(), 1);
    assert_eq!(
        snapshot.runs[0].records, sessions,
        "run count in the same transaction"
    );
    let svc = service(&snapshot, "10.0.0.1", 443, "svc");
    assert_eq!(
        svc.certificates.iter().map(|c| c.sessions).sum::<u64>(),
        sessions
    );
    assert_eq!(svc.clients[0].sessions, sessions);
    assert_eq!(svc.clients[0].distinct_clients, sessions.min(1024));
}

// --- hostile input --------------------------------------------------------

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::from),
        Just(json!("tlstap.tls")),
        Just(json!("2026-11-23T01:19:19Z")),
        Just(json!("10.0.0.1")),
        Just(json!(443)),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("event".to_string()),
                    Just("dataset".to_string()),
                    Just("@timestamp".to_string()),
                    Just("destination".to_string()),
                    Just("ip".to_string()),
                    Just("port".to_string()),
                    Just("tls".to_string()),
                    Just("tlstap".to_string()),
                    Just("findings".to_string()),
                    "[a-z]{1,8}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Sample record paths a fuzzed value replaces.
const FIELD_PATHS: [&[&str]; 10] = [
    &["@timestamp"],
    &["destination", "port"],
    &["destination", "ip"],
    &["tls", "client", "server_name"],
    &["tls", "server"],
    &["tls", "server", "x509", "alternative_names"],
    &["tlstap", "findings"],
    &["tlstap", "client"],
    &["service", "target", "name"],
    &["source", "ip"],
];

fn replace_at(record: &mut Value, path: &[&str], value: Value) {
    let mut target = record;
    for key in path {
        if !target.is_object() {
            *target = json!({});
        }
        target = &mut target[*key];
    }
    *target = value;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_records_and_bytes_never_panic_or_fail(
        value in arbitrary_json(),
        field in 0usize..FIELD_PATHS.len(),
        sample in 0usize..61,
        bytes in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let (_dir, path) = temp_inventory();
        let mut inventory = Inventory::open(&path, InventoryLimits::default()).expect("open");
        inventory.ingest(&value).expect("arbitrary JSON is not an error");
        let mut record = sample_records().swap_remove(sample);
        replace_at(&mut record, FIELD_PATHS[field], value);
        inventory.ingest(&record).expect("a mutated record is not an error");
        inventory.ingest_line(&bytes).expect("bytes are not an error");
        inventory.commit().expect("commit");
        let counters = inventory.counters();
        prop_assert_eq!(counters.records_ingested + counters.records_ignored, 3);
        let snapshot = inventory.snapshot().expect("snapshot");
        prop_assert!(snapshot.services.len() <= 2);
        inventory.known_services().expect("known services");
    }
}

/// Issue #12: retention trims the `runs` table too (by each run's start),
/// never the run in progress.
#[test]
fn regression_retention_trims_runs_started_before_the_window() {
    let (_dir, path) = temp_inventory();
    let mut inventory = Inventory::open(&path, InventoryLimits::default()).expect("open");
    inventory.begin_run("old.pcap").expect("run");
    inventory
        .ingest(&session(
            "2026-01-01T00:00:00Z",
            "10.1.0.1",
            "10.0.0.1",
            443,
            "kept",
        ))
        .expect("ingest");
    inventory.close().expect("close");
    // The run was made long ago (its start is the wall clock of that day).
    let connection = rusqlite::Connection::open(&path).expect("sqlite");
    connection
        .execute(
            "UPDATE runs SET started = '2020-01-01T00:00:00.000000Z'",
            [],
        )
        .expect("age the run");
    drop(connection);
    let limits = InventoryLimits {
        retention_days: Some(30),
        ..InventoryLimits::default()
    };
    let mut inventory = Inventory::open(&path, limits).expect("open with retention");
    assert_eq!(inventory.counters().rows_expired, 1, "the old run");
    inventory.begin_run("new.pcap").expect("run");
    inventory.close().expect("close");
    let inventory = Inventory::open_read_only(&path).expect("reopen");
    let snapshot = inventory.snapshot().expect("snapshot");
    let runs: Vec<&str> = snapshot.runs.iter().map(|r| r.source.as_str()).collect();
    assert_eq!(
        runs,
        ["new.pcap"],
        "the run in progress survives its own retention"
    );
    assert_eq!(snapshot.services.len(), 1);
}
