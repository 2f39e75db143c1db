//! Estate evidence end to end: runs feed the inventory, later runs judge drift
//! against it, `tlstap inventory` prints it and `tlstap report` renders it.

mod support;

use std::path::{Path, PathBuf};

use scraper::{Html, Selector};
use support::*;

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(name)
}

const DRIFT: [&str; 4] = [
    "negotiation_changed",
    "cert_rotated",
    "cert_not_rotated",
    "new_client_stack",
];

/// `tlstap inventory --json` of an inventory file.
fn inventory_json(path: &Path) -> serde_json::Value {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tlstap"))
        .args(["inventory", "--json"])
        .arg(path)
        .output()
        .expect("run");
    assert!(output.status.success());
    serde_json::from_slice(&output.stdout).expect("json")
}

/// One `read --inventory` run; the drift findings of each TLS record, in order.
fn run(inventory: &Path, files: &[&str]) -> Vec<Vec<String>> {
    let policy = sample("policy.toml");
    let paths: Vec<String> = files
        .iter()
        .map(|f| sample(f).to_string_lossy().into_owned())
        .collect();
    let mut args = vec![
        "read",
        "-q",
        "--policy",
        policy.to_str().expect("p"),
        "--inventory",
        inventory.to_str().expect("p"),
    ];
    args.extend(paths.iter().map(String::as_str));
    let (code, records, stderr) = run_tlstap_all(&args);
    assert_eq!(code, 0, "{stderr}");
    // Every session record went into the inventory, none refused.
    let sessions = records
        .iter()
        .filter(|r| r["event"]["dataset"] != "tlstap.stats")
        .count();
    let stats = &records.last().expect("stats")["tlstap"]["stats"];
    assert_eq!(stats["inventory_records"], sessions as u64, "{stats}");
    assert_eq!(stats["inventory_refused"], 0);
    records
        .iter()
        .filter(|r| r["event"]["dataset"] == "tlstap.tls")
        .map(|r| {
            r["tlstap"]["findings"]
                .as_array()
                .expect("findings")
                .iter()
                .filter_map(|f| f["id"].as_str())
                .filter(|id| DRIFT.contains(id))
                .map(str::to_string)
                .collect()
        })
        .collect()
}

#[test]
fn drift_across_runs_is_raised_exactly_where_the_estate_changed() {
    let dir = temp_dir();
    let inventory = dir.path().join("estate.sqlite");
    // Run 1: the service only ever negotiates TLS 1.3 (OpenSSL's default hello).
    assert_eq!(
        run(&inventory, &["tls13.pcap", "tls13-hrr.pcap"]),
        vec![Vec::<String>::new(), vec![]]
    );
    // Run 2: a new process, the same service falls back to TLS 1.2: judged
    // against run 1 through the inventory. Same stack, first visible leaf.
    assert_eq!(
        run(&inventory, &["cert-expired.pcap"]),
        vec![vec!["negotiation_changed".to_string()]]
    );
    // Run 3: another leaf and a client stack the service never had; the
    // history is no longer uniform, so no second negotiation_changed.
    assert_eq!(
        run(&inventory, &["tls12-ecdhe.pcap"]),
        vec![vec![
            "cert_rotated".to_string(),
            "new_client_stack".to_string()
        ]]
    );
    // Run 4: the same capture again: nothing is new any more.
    assert_eq!(
        run(&inventory, &["tls12-ecdhe.pcap"]),
        vec![Vec::<String>::new()]
    );

    // The inventory remembers all four runs and the three drift events.
    let table = std::process::Command::new(env!("CARGO_BIN_EXE_tlstap"))
        .args(["inventory", inventory.to_str().expect("p")])
        .output()
        .expect("run");
    assert!(table.status.success());
    let table = String::from_utf8(table.stdout).expect("utf-8");
    assert!(
        table.starts_with("1 service(s), 3 drift event(s), 4 run(s)"),
        "{table}"
    );
    assert!(
        table.contains("samples-api  owner platform-team"),
        "{table}"
    );
    let snapshot = inventory_json(&inventory);
    assert_eq!(snapshot["runs"].as_array().expect("runs").len(), 4);
    let mut drift: Vec<&str> = snapshot["drift"]
        .as_array()
        .expect("drift")
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    drift.sort_unstable();
    assert_eq!(
        drift,
        ["cert_rotated", "negotiation_changed", "new_client_stack"]
    );
    let api = snapshot["services"]
        .as_array()
        .expect("services")
        .iter()
        .find(|s| s["key"]["sni"] == "api.internal" && s["key"]["port"] == 443)
        .expect("api service");
    assert_eq!(api["name"], "samples-api");
    assert_eq!(api["owner"], "platform-team");
    assert_eq!(api["sessions"], 5);
}

#[test]
fn the_report_shows_the_inventorys_numbers() {
    let dir = temp_dir();
    let inventory = dir.path().join("estate.sqlite");
    let all: Vec<String> = std::fs::read_dir(sample(""))
        .expect("samples")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pcap"))
        .collect();
    let files: Vec<&str> = all.iter().map(String::as_str).collect();
    run(&inventory, &files);
    let inv = inventory.to_str().expect("p");
    let snapshot = inventory_json(&inventory);
    let services = snapshot["services"].as_array().expect("services");
    let sessions: u64 = services
        .iter()
        .map(|s| s["sessions"].as_u64().expect("n"))
        .sum();
    let internal_13: u64 = services
        .iter()
        .filter(|s| s["direction"] == "internal")
        .flat_map(|s| s["negotiations"].as_array().cloned().unwrap_or_default())
        .filter(|n| n["version"] == "1.3")
        .map(|n| n["sessions"].as_u64().expect("n"))
        .sum();
    let internal: u64 = services
        .iter()
        .filter(|s| s["direction"] == "internal")
        .map(|s| s["sessions"].as_u64().expect("n"))
        .sum();

    // JSON summary.
    let json = std::process::Command::new(env!("CARGO_BIN_EXE_tlstap"))
        .args(["report", "--format", "json", inv])
        .output()
        .expect("run");
    assert!(json.status.success());
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    let summary = &report["summary"];
    assert_eq!(summary["services"], services.len());
    assert_eq!(summary["sessions"], sessions);
    assert_eq!(summary["east_west_sessions"], internal);
    assert_eq!(summary["east_west_tls13_sessions"], internal_13);

    // HTML: the same numbers in the summary cards; one file, nothing fetched.
    let html_path = dir.path().join("report.html");
    let (code, _, stderr) = run_tlstap(&["report", inv, "-o", html_path.to_str().expect("p")]);
    assert_eq!(code, 0, "{stderr}");
    let html = std::fs::read_to_string(&html_path).expect("html");
    assert!(!html.contains("http://") && !html.contains("https://"));
    let document = Html::parse_document(&html);
    let card = |key: &str| {
        let selector = Selector::parse(&format!("dd[data-key=\"{key}\"] .value")).expect("css");
        document
            .select(&selector)
            .next()
            .map(|e| e.text().collect::<String>().trim().to_string())
            .unwrap_or_default()
    };
    assert_eq!(card("services"), services.len().to_string());
    assert_eq!(card("sessions"), sessions.to_string());
    let percent = format!("{:.1}%", 100.0 * internal_13 as f64 / internal as f64);
    assert_eq!(card("east_west_tls13_percent"), percent);
    // The SVG timeline marks every certificate the inventory holds (≤ 40).
    let certificates: std::collections::BTreeSet<&str> = services
        .iter()
        .flat_map(|s| s["certificates"].as_array().into_iter().flatten())
        .filter_map(|c| c["sha256"].as_str())
        .collect();
    let bars = Selector::parse("svg rect.bar").expect("css");
    assert_eq!(document.select(&bars).count(), certificates.len().min(40));
}

#[test]
fn the_inventory_sees_every_session_whatever_the_output_filters_drop() {
    let dir = temp_dir();
    let policy = sample("policy.toml");
    let files: Vec<String> = [
        "tls13.pcap",
        "cert-expired.pcap",
        "tls12-ecdhe.pcap",
        "plaintext-http-443.pcap",
    ]
    .iter()
    .map(|f| sample(f).to_string_lossy().into_owned())
    .collect();
    let read = |extra: &[&str], inventory: &Path| {
        let mut args = vec!["read", "-q", "--policy", policy.to_str().expect("p")];
        args.extend_from_slice(extra);
        args.extend(["--inventory", inventory.to_str().expect("p")]);
        args.extend(files.iter().map(String::as_str));
        let (code, records, stderr) = run_tlstap_all(&args);
        assert_eq!(code, 0, "{stderr}");
        records
    };
    let all = read(&[], &dir.path().join("a.sqlite"));
    let sessions = all.len() as u64 - 1;
    let filtered = read(
        &["--only-findings", "--min-severity", "critical"],
        &dir.path().join("b.sqlite"),
    );
    // Nothing is critical: no session is written, yet all went to the inventory.
    assert_eq!(filtered.len(), 1);
    let stats = &filtered[0]["tlstap"]["stats"];
    assert_eq!(stats["inventory_records"], sessions);
    // And the two inventories hold the same findings.
    let snapshot = |name: &str| -> serde_json::Value {
        let snapshot = inventory_json(&dir.path().join(name));
        snapshot["services"]
            .as_array()
            .expect("services")
            .iter()
            .map(|s| s["findings"].clone())
            .collect()
    };
    assert_eq!(snapshot("a.sqlite"), snapshot("b.sqlite"));
    assert_ne!(snapshot("a.sqlite"), serde_json::json!([]));
}

/// Issue #12: the CLI closes the inventory at the end of every run, so
/// retention also counts the run's own records. A service last seen 151 days
/// before the newest record is gone after the run that brought the newer
/// record, not only after the next run opens the inventory.
#[test]
fn regression_retention_applies_at_the_end_of_the_run_that_aged_the_rows() {
    let dir = temp_dir();
    let pki = Pki::new(&["old.internal", "new.internal"]);
    let capture = |name: &str, sni: &str, server: [u8; 4], start_seconds: u32| {
        let options = HandshakeOptions {
            server_name: sni.to_string(),
            ..HandshakeOptions::default()
        };
        let framing = Framing {
            server: (server.into(), 443),
            start_seconds,
            ..Framing::default()
        };
        handshake_pcap(dir.path(), name, &pki, &options, &framing)
    };
    let old = capture("old.pcap", "old.internal", [10, 1, 0, 10], 1_767_225_600); // 2026-01-01
    let new = capture("new.pcap", "new.internal", [10, 1, 0, 11], 1_780_272_000); // 2026-06-01
    let inventory = dir.path().join("inventory.sqlite");
    for capture in [&old, &new] {
        let (code, _, stderr) = run_tlstap(&[
            "read",
            "-q",
            "--inventory",
            inventory.to_str().expect("p"),
            "--inventory-retention-days",
            "30",
            capture.to_str().expect("p"),
        ]);
        assert_eq!(code, 0, "{stderr}");
    }
    let snapshot = inventory_json(&inventory);
    let services: Vec<&str> = snapshot["services"]
        .as_array()
        .expect("services")
        .iter()
        .filter_map(|s| s["key"]["sni"].as_str())
        .collect();
    assert_eq!(services, ["new.internal"]);
    // The log was checkpointed into the database (TRUNCATE leaves it empty).
    let wal = dir.path().join("inventory.sqlite-wal");
    assert_eq!(std::fs::metadata(&wal).map_or(0, |m| m.len()), 0);
}

/// Two sensors each see one side of a change: behind tap-a the service
/// negotiates TLS 1.3, behind tap-b TLS 1.2 (rustls handshakes). Each
/// sensor's records in a file; neither raises drift on its own.
fn two_sensor_outputs(dir: &Path) -> Vec<PathBuf> {
    let pki = Pki::new(&["api.internal"]);
    let framing = Framing::default();
    let mut outputs = Vec::new();
    for (sensor, versions) in [
        ("tap-a", vec![&rustls::version::TLS13]),
        ("tap-b", vec![&rustls::version::TLS12]),
    ] {
        let options = HandshakeOptions {
            server_name: "api.internal".into(),
            client_versions: versions,
            ..HandshakeOptions::default()
        };
        let capture = handshake_pcap(dir, &format!("{sensor}.pcap"), &pki, &options, &framing);
        let output = dir.join(format!("{sensor}.ndjson"));
        let (code, records, stderr) = run_tlstap_all(&[
            "read",
            "-q",
            "--sensor-name",
            sensor,
            capture.to_str().expect("p"),
        ]);
        assert_eq!(code, 0, "{stderr}");
        let sessions: Vec<_> = records.iter().filter(|r| r["tls"].is_object()).collect();
        assert_eq!(sessions.len(), 1);
        assert!(
            !serde_json::to_string(&sessions[0])
                .unwrap()
                .contains("negotiation_changed"),
            "{sensor} alone sees no change"
        );
        let lines: Vec<String> = records.iter().map(|r| r.to_string()).collect();
        std::fs::write(&output, lines.join("\n") + "\n").expect("write");
        outputs.push(output);
    }
    outputs
}

/// `inventory ingest` of both sensors' record files raises the drift.
#[test]
fn ingest_judges_drift_across_sensors() {
    let dir = temp_dir();
    let outputs = two_sensor_outputs(dir.path());
    let estate = dir.path().join("estate.sqlite");
    let (code, stdout, stderr) = {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_tlstap"))
            .args(["inventory", "ingest", "--inventory"])
            .arg(&estate)
            .args(&outputs)
            .output()
            .expect("run");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("drift findings judged across sensors") && !stderr.contains("; 0 drift"),
        "{stderr}"
    );
    let inventory = inventory_json(&estate);
    let text = inventory.to_string();
    assert!(text.contains("negotiation_changed"), "{text}");
    assert!(text.contains("downgrade"), "{text}");
}

/// The policy given to `ingest` covers estate findings with its exceptions,
/// as a sensor's policy covers its own: the estate's negotiation_changed is
/// info and names the exception, and the service's exceptions list it.
#[test]
fn ingest_applies_the_policys_exceptions_to_estate_findings() {
    let dir = temp_dir();
    let outputs = two_sensor_outputs(dir.path());
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        r#"
[[exception]]
id = "EXC-TEST-7"
owner = "api-team"
reason = "TLS 1.2 clients behind tap-b until their migration"
expires = 2099-12-31
match = { server = "10.1.0.10", port = 443 }
allow = ["negotiation_changed"]
"#,
    )
    .expect("policy");
    let estate = dir.path().join("estate.sqlite");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tlstap"))
        .args(["inventory", "ingest", "--policy"])
        .arg(&policy)
        .arg("--inventory")
        .arg(&estate)
        .args(&outputs)
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let inventory = inventory_json(&estate);
    let drift: Vec<&serde_json::Value> = inventory["drift"]
        .as_array()
        .expect("drift")
        .iter()
        .filter(|e| e["id"] == "negotiation_changed")
        .collect();
    assert_eq!(drift.len(), 1, "{inventory}");
    assert_eq!(drift[0]["severity"], "info", "{inventory}");
    let exceptions: Vec<&serde_json::Value> = inventory["services"]
        .as_array()
        .expect("services")
        .iter()
        .flat_map(|s| s["exceptions"].as_array().into_iter().flatten())
        .collect();
    assert_eq!(exceptions.len(), 1, "{inventory}");
    assert_eq!(exceptions[0]["id"], "EXC-TEST-7");
    assert_eq!(exceptions[0]["owner"], "api-team");
    assert_eq!(
        exceptions[0]["finding_ids"],
        serde_json::json!(["negotiation_changed"])
    );
}
