//! The memcap under floods (issue 16): generated captures of connections that
//! open and stall, legitimate TLS 1.3 sessions interleaved. With a small cap
//! tlstap must shed the flood, report every legitimate session, count what it
//! shed and say so in `end_reason`; with the default cap the same capture
//! sheds nothing.

mod support;

use support::flood::{write_flood, Flood};
use support::*;

const CAP: &str = "2M";
const CAP_BYTES: u64 = 2 << 20;
/// Records waiting for the output stage are charged but not refused (they
/// are finished work); the channel bounds them.
const RECORD_QUEUE_ALLOWANCE: u64 = 8 << 20;

struct Run {
    legit_established: usize,
    pressure_records: usize,
    stats: serde_json::Value,
}

fn run(path: &std::path::Path, memcap: Option<&str>) -> Run {
    let path = path.to_str().expect("utf-8 path");
    let mut args = vec!["read", "-w", "2", "-q", path];
    if let Some(cap) = memcap {
        args.extend(["--memcap", cap]);
    }
    let (code, records, stderr) = run_tlstap_all(&args);
    assert_eq!(code, 0, "{stderr}");
    let stats = records
        .iter()
        .find(|r| r["event"]["kind"] == "metric")
        .map(|r| r["tlstap"]["stats"].clone())
        .expect("stats record");
    Run {
        legit_established: records
            .iter()
            .filter(|r| {
                r["tls"]["client"]["server_name"] == "legit.internal"
                    && r["tls"]["established"] == true
            })
            .count(),
        pressure_records: records
            .iter()
            .filter(|r| r["tlstap"]["end_reason"] == "memory_pressure")
            .count(),
        stats,
    }
}

fn number(stats: &serde_json::Value, name: &str) -> u64 {
    stats[name]
        .as_u64()
        .unwrap_or_else(|| panic!("stats field {name}: {stats}"))
}

/// Floods `flows` flows, one legitimate session per 250; returns the capped
/// and the default run.
fn flood(kind: Flood, flows: u64, spacing_us: u64) -> (Run, Run, u64) {
    let dir = temp_dir();
    let path = dir.path().join("flood.pcap");
    let made = write_flood(kind, flows, &path, 250, spacing_us);
    let capped = run(&path, Some(CAP));
    let roomy = run(&path, None);
    (capped, roomy, made.legit_sessions)
}

fn assert_shed_and_bounded(kind: &str, capped: &Run, roomy: &Run, legit: u64) {
    let s = &capped.stats;
    assert_eq!(
        capped.legit_established as u64, legit,
        "{kind}: legit sessions lost: {s}"
    );
    assert_eq!(roomy.legit_established as u64, legit, "{kind}");
    assert_eq!(number(s, "memcap_bytes"), CAP_BYTES);
    assert!(number(s, "emergency_mode_entered") >= 1, "{kind}: {s}");
    let peak = number(s, "memcap_peak_bytes");
    assert!(
        peak <= CAP_BYTES + RECORD_QUEUE_ALLOWANCE,
        "{kind}: peak {peak}"
    );
    let roomy_peak = number(&roomy.stats, "memcap_peak_bytes");
    assert!(
        roomy_peak > 4 * CAP_BYTES,
        "{kind}: the flood is too small to test the cap ({roomy_peak})"
    );
    assert_eq!(number(&roomy.stats, "emergency_mode_entered"), 0, "{kind}");
    assert_eq!(roomy.pressure_records, 0, "{kind}");
    // At the end every flow has been released; what remains is idle credit.
    assert!(number(s, "memcap_bytes_in_use") <= 1 << 20, "{kind}: {s}");
}

#[test]
fn syn_flood_is_shed_and_legitimate_sessions_survive() {
    let (capped, roomy, legit) = flood(Flood::Syn, 40_000, 100);
    assert_shed_and_bounded("syn", &capped, &roomy, legit);
    // Half-open flows carry no TLS: shed without a record, counted as evicted.
    assert!(
        number(&capped.stats, "flows_evicted") > 10_000,
        "{}",
        capped.stats
    );
    assert_eq!(number(&roomy.stats, "flows_evicted"), 0);
}

#[test]
fn stalled_large_client_hellos_are_shed_with_memory_pressure() {
    let (capped, roomy, legit) = flood(Flood::Hello, 10_000, 100);
    assert_shed_and_bounded("hello", &capped, &roomy, legit);
    let dropped = number(&capped.stats, "handshakes_dropped_by_pressure");
    assert!(dropped > 5_000, "{}", capped.stats);
    // Each shed handshake is still reported, saying why it ended.
    assert_eq!(capped.pressure_records as u64, dropped);
}

#[test]
fn half_sent_certificate_chains_are_shed_with_memory_pressure() {
    let (capped, roomy, legit) = flood(Flood::Certs, 10_000, 100);
    assert_shed_and_bounded("certs", &capped, &roomy, legit);
    assert!(
        number(&capped.stats, "handshakes_dropped_by_pressure") > 5_000,
        "{}",
        capped.stats
    );
    assert!(capped.pressure_records > 5_000);
}

#[test]
fn stalled_quic_initials_are_shed_with_memory_pressure() {
    // One datagram per flow: spaced so the cap holds more than the 50 ms a
    // handshake must be idle before it may be shed.
    let (capped, roomy, legit) = flood(Flood::Quic, 6_000, 500);
    assert_shed_and_bounded("quic", &capped, &roomy, legit);
    assert!(
        number(&capped.stats, "handshakes_dropped_by_pressure") > 3_000,
        "{}",
        capped.stats
    );
    assert!(capped.pressure_records > 3_000);
}
