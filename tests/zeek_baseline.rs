//! Differential test against Zeek's own `ssl.log` / `x509.log` baselines.
//!
//! For every Zeek btest listed in the corpus's `zeek-baselines/manifest.json`
//! (`TLSTAP_CORPUS`, see docs/testing.md; without it the test skips)
//! whose traces are all in the corpus, tlstap reads the trace(s) and each Zeek
//! `ssl.log` row is matched to a tlstap record by
//! (id.orig_h, id.orig_p, id.resp_h, id.resp_p) = (source.ip, source.port,
//! destination.ip, destination.port). Compared: negotiated version, cipher,
//! SNI, key exchange group (`curve`), server and client certificate chain
//! fingerprints, the leaf's subject and issuer, and every `x509.log` row (by
//! fingerprint) against the certificate tlstap extracted. The `.pcap.gz` trace
//! is decompressed with `gzip -dc` into a temporary file.
//!
//! Every difference must be explained by an entry of [`JUSTIFIED`] (Zeek sees
//! something a wire-level parser cannot or does not yet) or
//! [`KNOWN_TLSTAP_BUGS`] (tlstap is wrong; remove the entry with the fix). An
//! entry that no longer matches any difference fails the test too, so both
//! tables can only shrink.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

mod support;

/// Zeek rows matched to a tlstap record and compared field by field.
/// Pinned exactly: update it (and the tables) when tlstap learns to see more.
const EXPECTED_COMPARED_CONNECTIONS: usize = 85;
/// `x509.log` rows whose certificate tlstap extracted and compared.
const EXPECTED_COMPARED_CERTIFICATES: usize = 44;
/// Compared connections whose leaf subject/issuer Zeek logged (ssl.log
/// `subject`/`issuer`, or the `x509.log` row of the first `cert_chain_fps`).
const EXPECTED_COMPARED_LEAVES: usize = 30;
/// btests with at least one compared connection or certificate.
const EXPECTED_COMPARED_TESTS: usize = 42;

/// Differences that are not tlstap's fault.
/// `(test, target, reason)`; `target` is `*` (the whole test), a connection
/// (`orig_h:orig_p>resp_h:resp_p`, or `x509 <sha256>` for an `x509.log` row),
/// a field name (every connection of the test), or `"<connection> <field>"`.
const JUSTIFIED: &[(&str, &str, &str)] = &[
    (
        "scripts.base.protocols.ftp.gridftp",
        "192.168.57.103:60108>192.168.57.101:2811",
        "the GSI handshake on the GridFTP control channel is base64 inside FTP ADAT commands: Zeek decodes it, a wire-level TLS parser cannot (corpus README)",
    ),
    (
        "scripts.base.protocols.ftp.gridftp",
        "x509 5d3015916579d36adff0d813c94ab4354cd9ed3d23646b40e4d137b79c77c860",
        "only on the control channel: the GSI handshake on the GridFTP control channel is base64 inside FTP ADAT commands: Zeek decodes it, a wire-level TLS parser cannot (corpus README)",
    ),
    (
        "scripts.base.protocols.ssl.dtls-stun-dpd",
        "192.168.6.82:51462>74.201.205.9:43044",
        "roles: Zeek names the UDP connection by who sent the first packet (a STUN binding request from 192.168.6.82); the DTLS ClientHello comes from 74.201.205.9 (tshark: dtls.handshake.type == 1), which tlstap reports as the client. Version, cipher and curve agree with the roles swapped",
    ),
    (
        "scripts.base.protocols.ssl.fragment",
        "192.168.6.86:61454>104.236.167.107:4433 curve",
        "a cap: the server Certificate message (~330 kB) exceeds --max-handshake-bytes (default 65536); tlstap reports tlstap.truncated with end_reason truncated and no chain",
    ),
    (
        "scripts.base.protocols.ssl.fragment",
        "192.168.6.86:61454>104.236.167.107:4433 cert_chain_fps",
        "a cap: the server Certificate message (~330 kB) exceeds --max-handshake-bytes (default 65536); tlstap reports tlstap.truncated with end_reason truncated and no chain",
    ),
    (
        "scripts.base.protocols.ssl.fragment",
        "192.168.6.86:61454>104.236.167.107:4433 leaf.subject (tls.server.x509.subject.distinguished_name)",
        "a cap: the server Certificate message (~330 kB) exceeds --max-handshake-bytes (default 65536); tlstap reports tlstap.truncated with end_reason truncated and no chain",
    ),
    (
        "scripts.base.protocols.ssl.fragment",
        "192.168.6.86:61454>104.236.167.107:4433 leaf.subject (tls.server.subject)",
        "a cap: the server Certificate message (~330 kB) exceeds --max-handshake-bytes (default 65536); tlstap reports tlstap.truncated with end_reason truncated and no chain",
    ),
    (
        "scripts.base.protocols.ssl.fragment",
        "192.168.6.86:61454>104.236.167.107:4433 leaf.issuer (tls.server.x509.issuer.distinguished_name)",
        "a cap: the server Certificate message (~330 kB) exceeds --max-handshake-bytes (default 65536); tlstap reports tlstap.truncated with end_reason truncated and no chain",
    ),
    (
        "scripts.base.protocols.ssl.fragment",
        "192.168.6.86:61454>104.236.167.107:4433 leaf.issuer (tls.server.issuer)",
        "a cap: the server Certificate message (~330 kB) exceeds --max-handshake-bytes (default 65536); tlstap reports tlstap.truncated with end_reason truncated and no chain",
    ),
];

/// Differences where tlstap is wrong. Every reason starts with "TLSTAP BUG:";
/// delete the entry together with the fix.
const KNOWN_TLSTAP_BUGS: &[(&str, &str, &str)] = &[];

// ---------------------------------------------------------------------------
// Zeek TSV logs

#[derive(Debug, Default)]
struct Block {
    fields: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Block {
    fn column(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|field| field == name)
    }
}

/// Zeek TSV: one `#fields` header per block (multi-run logs are
/// concatenations). `btest-diff-cut` output has a plain (un-`#`ed) header line.
fn parse_zeek_log(text: &str, plain_header: bool) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with("###") {
            continue;
        }
        if let Some(fields) = line.strip_prefix("#fields\t") {
            blocks.push(Block {
                fields: fields.split('\t').map(str::to_string).collect(),
                rows: Vec::new(),
            });
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let cells: Vec<String> = line.split('\t').map(str::to_string).collect();
        match blocks.last_mut() {
            None if plain_header => blocks.push(Block {
                fields: cells,
                rows: Vec::new(),
            }),
            None => panic!("Zeek log row before any #fields header: {line:?}"),
            Some(block) => {
                assert_eq!(
                    cells.len(),
                    block.fields.len(),
                    "Zeek log row has {} cells for {} fields: {line:?}",
                    cells.len(),
                    block.fields.len()
                );
                block.rows.push(cells);
            }
        }
    }
    blocks
}

/// A Zeek cell as an optional string: `-` is unset, `(empty)` is empty.
fn zeek_value(cell: &str) -> Option<&str> {
    match cell {
        "-" => None,
        "(empty)" => Some(""),
        other => Some(other),
    }
}

/// A Zeek vector cell (comma separated) as a list; unset and empty are both [].
fn zeek_list(cell: &str) -> Vec<String> {
    match zeek_value(cell) {
        None | Some("") => Vec::new(),
        Some(list) => list.split(',').map(str::to_ascii_lowercase).collect(),
    }
}

// ---------------------------------------------------------------------------
// tlstap records

fn field<'a>(record: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(record, |value, key| value.get(key))
}

fn text(record: &Value, path: &str) -> Option<String> {
    field(record, path)
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn port(record: &Value, path: &str) -> Option<String> {
    field(record, path)
        .and_then(Value::as_u64)
        .map(|port| port.to_string())
}

fn chain(record: &Value, path: &str) -> Vec<Value> {
    field(record, path)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn chain_fps(record: &Value, path: &str) -> Vec<String> {
    chain(record, path)
        .iter()
        .map(|cert| {
            text(cert, "sha256")
                .unwrap_or_default()
                .to_ascii_lowercase()
        })
        .collect()
}

fn show(value: Option<&str>) -> String {
    value.map_or_else(|| "<unset>".to_string(), |value| format!("{value:?}"))
}

/// Runs tlstap once per trace (cached); `.gz` traces go through `gzip -dc`.
struct Tlstap {
    corpus: PathBuf,
    cache: HashMap<String, Result<Vec<Value>, String>>,
}

impl Tlstap {
    fn records(&mut self, trace: &str) -> Result<Vec<Value>, String> {
        if let Some(cached) = self.cache.get(trace) {
            return cached.clone();
        }
        let result = self.run(trace);
        self.cache.insert(trace.to_string(), result.clone());
        result
    }

    fn run(&self, trace: &str) -> Result<Vec<Value>, String> {
        let path = self.corpus.join(trace);
        let scratch = tempfile::tempdir().unwrap();
        let input = if trace.ends_with(".gz") {
            let plain = scratch.path().join("trace.pcap");
            let output = Command::new("gzip")
                .arg("-dc")
                .arg(&path)
                .output()
                .map_err(|error| format!("cannot run gzip -dc {}: {error}", path.display()))?;
            if !output.status.success() {
                return Err(format!(
                    "gzip -dc {} failed: {}",
                    path.display(),
                    output.status
                ));
            }
            std::fs::write(&plain, output.stdout).unwrap();
            plain
        } else {
            path
        };
        let output = Command::new(env!("CARGO_BIN_EXE_tlstap"))
            .args(["read", "-q", "-w", "2"])
            .arg(&input)
            .output()
            .map_err(|error| format!("cannot run tlstap: {error}"))?;
        if !output.status.success() {
            return Err(format!(
                "tlstap read {trace} exited with {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        let stdout = String::from_utf8(output.stdout)
            .map_err(|error| format!("tlstap output is not UTF-8: {error}"))?;
        let mut records: Vec<Value> = stdout
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                serde_json::from_str(line)
                    .map_err(|error| format!("bad NDJSON line {line:?}: {error}"))
            })
            .collect::<Result<_, _>>()?;
        records.sort_by_key(|record| text(record, "event.start").unwrap_or_default());
        Ok(records)
    }
}

// ---------------------------------------------------------------------------
// Version / cipher mapping

/// Zeek's version string as tlstap's (`tls.version`, `tls.version_protocol`,
/// `tlstap.version_variant`).
fn expected_version(zeek: &str) -> (Option<String>, Option<String>, Option<String>) {
    let plain = |version: &str, protocol: &str| {
        (Some(version.to_string()), Some(protocol.to_string()), None)
    };
    match zeek {
        "-" => (None, None, None),
        "SSLv2" => plain("2.0", "ssl"),
        "SSLv3" => plain("3.0", "ssl"),
        "TLSv10" => plain("1.0", "tls"),
        "TLSv11" => plain("1.1", "tls"),
        "TLSv12" => plain("1.2", "tls"),
        "TLSv13" => plain("1.3", "tls"),
        "DTLSv10" => plain("1.0", "dtls"),
        "DTLSv12" => plain("1.2", "dtls"),
        "DTLSv13" => plain("1.3", "dtls"),
        other => {
            if let Some(draft) = other.strip_prefix("TLSv13-draft") {
                return (
                    Some("1.3".into()),
                    Some("tls".into()),
                    Some(format!("draft-{draft}")),
                );
            }
            if let Some(number) = other
                .strip_prefix("unknown-")
                .and_then(|n| n.parse::<u16>().ok())
            {
                if number >> 8 == 0x7e {
                    return (
                        Some("1.3".into()),
                        Some("tls".into()),
                        Some(format!("experiment-{number:#06x}")),
                    );
                }
            }
            // DTLS and anything else: tlstap has no equivalent; compare verbatim
            (Some(other.to_string()), None, None)
        }
    }
}

// ---------------------------------------------------------------------------
// Differences

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Difference {
    test: String,
    conn: String,
    field: String,
    zeek: String,
    tlstap: String,
}

#[derive(Default)]
struct Outcome {
    differences: Vec<Difference>,
    compared_connections: usize,
    compared_certificates: usize,
    compared_leaves: usize,
    compared_tests: BTreeSet<String>,
    skipped: Vec<String>,
    extra_tlstap_sessions: Vec<String>,
}

impl Outcome {
    fn differ(&mut self, test: &str, conn: &str, field: &str, zeek: String, tlstap: String) {
        self.differences.push(Difference {
            test: test.to_string(),
            conn: conn.to_string(),
            field: field.to_string(),
            zeek,
            tlstap,
        });
    }

    fn check(
        &mut self,
        test: &str,
        conn: &str,
        field: &str,
        zeek: Option<&str>,
        tlstap: Option<&str>,
    ) {
        if zeek != tlstap {
            self.differ(test, conn, field, show(zeek), show(tlstap));
        }
    }
}

fn entry_matches(entry: &(&str, &str, &str), difference: &Difference) -> bool {
    let (test, target, _) = *entry;
    test == difference.test
        && (target == "*"
            || target == difference.conn
            || target == difference.field
            || target == format!("{} {}", difference.conn, difference.field))
}

// ---------------------------------------------------------------------------
// The comparison

#[derive(Clone)]
struct ZeekCert {
    subject: Option<String>,
    issuer: Option<String>,
}

/// Names of every certificate in every `x509.log` of every test, by
/// fingerprint: a certificate's names do not depend on the test that logged
/// it, so a leaf in a test without an `x509.log` can still be checked.
fn all_x509_names(
    baselines: &Path,
    tests: &serde_json::Map<String, Value>,
) -> BTreeMap<String, ZeekCert> {
    let mut names = BTreeMap::new();
    for (name, spec) in tests {
        for file in spec["files"].as_object().expect("manifest: files").keys() {
            if !file.starts_with("x509") {
                continue;
            }
            let log = std::fs::read_to_string(baselines.join(name).join(file)).unwrap();
            for block in parse_zeek_log(&log, false) {
                let fingerprint = block
                    .column("fingerprint")
                    .expect("x509.log without fingerprint");
                let subject = block.column("certificate.subject");
                let issuer = block.column("certificate.issuer");
                for row in &block.rows {
                    let cell = |column: Option<usize>| {
                        column.and_then(|c| zeek_value(&row[c])).map(str::to_string)
                    };
                    names.insert(
                        row[fingerprint].to_ascii_lowercase(),
                        ZeekCert {
                            subject: cell(subject),
                            issuer: cell(issuer),
                        },
                    );
                }
            }
        }
    }
    names
}

fn compare_test(
    name: &str,
    spec: &Value,
    tlstap: &mut Tlstap,
    baselines: &Path,
    all_certs: &BTreeMap<String, ZeekCert>,
    outcome: &mut Outcome,
) {
    let missing = spec["traces_not_in_corpus"].as_array().map_or(0, Vec::len);
    if missing > 0 {
        outcome
            .skipped
            .push(format!("{name}: {missing} trace(s) not in the corpus"));
        return;
    }
    let runs = spec["runs"].as_array().expect("manifest: runs");
    let files = spec["files"].as_object().expect("manifest: files");

    // x509.log rows of every run, by fingerprint
    let mut certs: BTreeMap<String, (ZeekCert, BTreeSet<String>)> = BTreeMap::new();
    for (file, how) in files {
        if !file.starts_with("x509") {
            continue;
        }
        let log = std::fs::read_to_string(baselines.join(name).join(file)).unwrap();
        let traces: BTreeSet<String> = trace_list(&how["traces"]);
        for block in parse_zeek_log(&log, false) {
            let fingerprint = block
                .column("fingerprint")
                .expect("x509.log without fingerprint");
            let subject = block.column("certificate.subject");
            let issuer = block.column("certificate.issuer");
            for row in &block.rows {
                let cert = ZeekCert {
                    subject: subject
                        .and_then(|c| zeek_value(&row[c]))
                        .map(str::to_string),
                    issuer: issuer.and_then(|c| zeek_value(&row[c])).map(str::to_string),
                };
                let entry = certs
                    .entry(row[fingerprint].to_ascii_lowercase())
                    .or_insert((cert, BTreeSet::new()));
                entry.1.extend(traces.iter().cloned());
            }
        }
    }

    let mut compared_any = false;
    for (file, how) in files {
        if !file.starts_with("ssl") {
            continue;
        }
        let how_text = how["how"].as_str().unwrap_or("direct");
        if how_text.starts_with("zeek-cut") {
            outcome.skipped.push(format!(
                "{name}/{file}: `{how_text}` keeps no connection id or compared column"
            ));
            continue;
        }
        let log = std::fs::read_to_string(baselines.join(name).join(file)).unwrap();
        let blocks = parse_zeek_log(&log, how_text.starts_with("btest-diff-cut"));
        let file_runs: Vec<usize> = how["runs"]
            .as_array()
            .expect("manifest: files.runs")
            .iter()
            .map(|run| run.as_u64().unwrap() as usize)
            .collect();
        let all_traces: Vec<String> = trace_list(&how["traces"]).into_iter().collect();
        for (index, block) in blocks.iter().enumerate() {
            // block i of a concatenation is run i; otherwise look in every trace
            let traces: Vec<String> = if blocks.len() == file_runs.len() {
                vec![runs[file_runs[index]]["trace"]
                    .as_str()
                    .unwrap()
                    .to_string()]
            } else {
                all_traces.clone()
            };
            if compare_block(name, block, &traces, &certs, all_certs, tlstap, outcome) {
                compared_any = true;
            }
        }
    }

    // every x509.log certificate: did tlstap extract it, with the same names?
    for (fingerprint, (cert, traces)) in &certs {
        let conn = format!("x509 {fingerprint}");
        let mut found: Option<Value> = None;
        for trace in traces {
            match tlstap.records(trace) {
                Err(error) => outcome.differ(name, &conn, "tlstap", "runs".into(), error),
                Ok(records) => {
                    for record in &records {
                        for path in ["tlstap.server.chain", "tlstap.client.chain"] {
                            for candidate in chain(record, path) {
                                let sha = text(&candidate, "sha256")
                                    .unwrap_or_default()
                                    .to_ascii_lowercase();
                                if found.is_none() && sha == *fingerprint {
                                    found = Some(candidate);
                                }
                            }
                        }
                    }
                }
            }
        }
        match found {
            None => outcome.differ(
                name,
                &conn,
                "certificate",
                "logged".into(),
                format!(
                    "in no chain of {}",
                    traces.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            ),
            Some(candidate) => {
                outcome.compared_certificates += 1;
                compared_any = true;
                let subject = text(&candidate, "subject.distinguished_name");
                let issuer = text(&candidate, "issuer.distinguished_name");
                outcome.check(
                    name,
                    &conn,
                    "x509.subject",
                    cert.subject.as_deref(),
                    subject.as_deref(),
                );
                outcome.check(
                    name,
                    &conn,
                    "x509.issuer",
                    cert.issuer.as_deref(),
                    issuer.as_deref(),
                );
            }
        }
    }
    if compared_any {
        outcome.compared_tests.insert(name.to_string());
    }
}

fn trace_list(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .map(|traces| {
            traces
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Compares one block of an ssl.log; true when at least one row was compared.
fn compare_block(
    name: &str,
    block: &Block,
    traces: &[String],
    certs: &BTreeMap<String, (ZeekCert, BTreeSet<String>)>,
    all_certs: &BTreeMap<String, ZeekCert>,
    tlstap: &mut Tlstap,
    outcome: &mut Outcome,
) -> bool {
    let col = |field: &str| block.column(field);
    let orig_h = col("id.orig_h").expect("ssl.log without id.orig_h");
    let resp_h = col("id.resp_h").expect("ssl.log without id.resp_h");
    let resp_p = col("id.resp_p").expect("ssl.log without id.resp_p");
    let orig_p = col("id.orig_p");

    let mut records: Vec<Value> = Vec::new();
    for trace in traces {
        match tlstap.records(trace) {
            Ok(found) => records.extend(found),
            Err(error) => outcome.differ(name, "*", "tlstap", "runs".into(), error),
        }
    }
    let mut used = vec![false; records.len()];
    let mut compared = false;

    for row in &block.rows {
        let orig_port = orig_p.map(|c| row[c].clone());
        let conn = format!(
            "{}:{}>{}:{}",
            row[orig_h],
            orig_port.as_deref().unwrap_or("*"),
            row[resp_h],
            row[resp_p]
        );
        let same_key = |record: &Value, reversed: bool| {
            let (src, dst) = if reversed {
                ("destination", "source")
            } else {
                ("source", "destination")
            };
            text(record, &format!("{src}.ip")).as_deref() == Some(row[orig_h].as_str())
                && text(record, &format!("{dst}.ip")).as_deref() == Some(row[resp_h].as_str())
                && port(record, &format!("{dst}.port")).as_deref() == Some(row[resp_p].as_str())
                && orig_port
                    .as_deref()
                    .is_none_or(|p| port(record, &format!("{src}.port")).as_deref() == Some(p))
        };
        let Some(index) = (0..records.len()).find(|&i| !used[i] && same_key(&records[i], false))
        else {
            let reversed = records.iter().any(|record| same_key(record, true));
            outcome.differ(
                name,
                &conn,
                "session",
                "logged".into(),
                if reversed {
                    "only with client and server swapped".into()
                } else {
                    "no record".into()
                },
            );
            continue;
        };
        used[index] = true;
        let record = &records[index];
        compared = true;
        outcome.compared_connections += 1;

        let cell = |field: &str| col(field).map(|c| row[c].as_str());

        if let Some(version) = cell("version") {
            let (want_version, want_protocol, want_variant) = expected_version(version);
            let got = (
                text(record, "tls.version"),
                text(record, "tls.version_protocol"),
                text(record, "tlstap.version_variant"),
            );
            let want_protocol = if want_version.is_some() && want_protocol.is_none() {
                got.1.clone() // DTLS etc.: the version text alone decides
            } else {
                want_protocol
            };
            if (want_version.clone(), want_protocol, want_variant.clone()) != got {
                let describe = |v: &Option<String>, p: &Option<String>, x: &Option<String>| {
                    format!(
                        "{} {} {}",
                        show(v.as_deref()),
                        show(p.as_deref()),
                        x.as_deref().map_or(String::new(), |x| format!("({x})"))
                    )
                    .trim()
                    .to_string()
                };
                outcome.differ(
                    name,
                    &conn,
                    "version",
                    format!(
                        "{version} = {}",
                        describe(&want_version, &None, &want_variant)
                    ),
                    describe(&got.0, &got.1, &got.2),
                );
            }
        }

        if let Some(cipher) = cell("cipher") {
            let got_name = text(record, "tls.cipher");
            let got_id = text(record, "tlstap.cipher_id");
            let unknown_id = cipher
                .strip_prefix("unknown-")
                .and_then(|n| n.parse::<u32>().ok())
                .map(|n| format!("0x{n:04x}"));
            let agrees = match (zeek_value(cipher), &unknown_id) {
                (_, Some(id)) => got_id.as_deref() == Some(id.as_str()),
                (want, None) => want == got_name.as_deref(),
            };
            if !agrees {
                outcome.differ(
                    name,
                    &conn,
                    "cipher",
                    show(zeek_value(cipher)),
                    format!(
                        "{} ({})",
                        show(got_name.as_deref()),
                        show(got_id.as_deref())
                    ),
                );
            }
        }

        if let Some(sni) = cell("server_name") {
            let got = text(record, "tls.client.server_name");
            outcome.check(name, &conn, "server_name", zeek_value(sni), got.as_deref());
        }

        // not asked for by the brief's minimum, but the same kind of fact:
        // ServerHello key_share group (TLS 1.3) or ServerKeyExchange curve
        if let Some(curve) = cell("curve") {
            let got = text(record, "tls.curve");
            outcome.check(name, &conn, "curve", zeek_value(curve), got.as_deref());
        }

        let zeek_chain = cell("cert_chain_fps").map(zeek_list);
        if let Some(want) = &zeek_chain {
            let got = chain_fps(record, "tlstap.server.chain");
            if *want != got {
                outcome.differ(name, &conn, "cert_chain_fps", want.join(","), got.join(","));
            }
        }
        if let Some(want) = cell("client_cert_chain_fps").map(zeek_list) {
            let got = chain_fps(record, "tlstap.client.chain");
            if want != got {
                outcome.differ(
                    name,
                    &conn,
                    "client_cert_chain_fps",
                    want.join(","),
                    got.join(","),
                );
            }
        }

        // the leaf's names: ssl.log subject/issuer columns, or the x509.log row
        // (of this test, else of any test) of the first cert_chain_fps entry
        let leaf = zeek_chain
            .as_ref()
            .and_then(|fps| fps.first())
            .and_then(|fp| {
                certs
                    .get(fp)
                    .map(|(cert, _)| cert)
                    .or_else(|| all_certs.get(fp))
            });
        let want_subject = match cell("subject") {
            Some(subject) => Some(zeek_value(subject).map(str::to_string)),
            None => leaf.map(|cert| cert.subject.clone()),
        };
        let want_issuer = match cell("issuer") {
            Some(issuer) => Some(zeek_value(issuer).map(str::to_string)),
            None => leaf.map(|cert| cert.issuer.clone()),
        };
        if want_subject.is_some() || want_issuer.is_some() {
            outcome.compared_leaves += 1;
        }
        for (label, want, paths) in [
            (
                "leaf.subject",
                want_subject,
                [
                    "tls.server.x509.subject.distinguished_name",
                    "tls.server.subject",
                ],
            ),
            (
                "leaf.issuer",
                want_issuer,
                [
                    "tls.server.x509.issuer.distinguished_name",
                    "tls.server.issuer",
                ],
            ),
        ] {
            let Some(want) = want else { continue };
            for path in paths {
                let got = text(record, path);
                outcome.check(
                    name,
                    &conn,
                    &format!("{label} ({path})"),
                    want.as_deref(),
                    got.as_deref(),
                );
            }
        }
    }

    for (record, used) in records.iter().zip(&used) {
        if !used && block.rows.is_empty() {
            continue;
        }
        if !used {
            outcome.extra_tlstap_sessions.push(format!(
                "{name}: {}:{}>{}:{} ({})",
                text(record, "source.ip").unwrap_or_default(),
                port(record, "source.port").unwrap_or_default(),
                text(record, "destination.ip").unwrap_or_default(),
                port(record, "destination.port").unwrap_or_default(),
                traces.join(", ")
            ));
        }
    }
    compared
}

#[test]
fn every_zeek_tls_baseline_agrees_on_version_cipher_sni_and_certificates() {
    let Some(corpus) = support::corpus_or_skip(
        "every_zeek_tls_baseline_agrees_on_version_cipher_sni_and_certificates",
    ) else {
        return;
    };
    let baselines = corpus.join("zeek-baselines");
    let manifest_path = baselines.join("manifest.json");
    for (_, _, reason) in KNOWN_TLSTAP_BUGS {
        assert!(
            reason.starts_with("TLSTAP BUG:"),
            "known-bug reason must start with TLSTAP BUG: {reason}"
        );
    }

    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    let tests = manifest["tests"].as_object().expect("manifest: tests");
    let all_certs = all_x509_names(&baselines, tests);
    let mut tlstap = Tlstap {
        corpus: corpus.clone(),
        cache: HashMap::new(),
    };
    let mut outcome = Outcome::default();
    for (name, spec) in tests {
        compare_test(
            name,
            spec,
            &mut tlstap,
            &baselines,
            &all_certs,
            &mut outcome,
        );
    }
    outcome.differences.sort();
    outcome.differences.dedup();

    let mut report = String::new();
    let mut unexplained = Vec::new();
    let mut used_justified = vec![false; JUSTIFIED.len()];
    let mut used_bugs = vec![false; KNOWN_TLSTAP_BUGS.len()];
    for difference in &outcome.differences {
        let line = format!(
            "{} {} {}: zeek {} / tlstap {}",
            difference.test, difference.conn, difference.field, difference.zeek, difference.tlstap
        );
        let justified = JUSTIFIED
            .iter()
            .position(|entry| entry_matches(entry, difference));
        let bug = KNOWN_TLSTAP_BUGS
            .iter()
            .position(|entry| entry_matches(entry, difference));
        if let Some(i) = justified {
            used_justified[i] = true;
            writeln!(
                report,
                "  justified   {line}\n              -> {}",
                JUSTIFIED[i].2
            )
            .unwrap();
        } else if let Some(i) = bug {
            used_bugs[i] = true;
            writeln!(
                report,
                "  known bug   {line}\n              -> {}",
                KNOWN_TLSTAP_BUGS[i].2
            )
            .unwrap();
        } else {
            writeln!(report, "  UNEXPLAINED {line}").unwrap();
            unexplained.push(line);
        }
    }
    let stale: Vec<String> = JUSTIFIED
        .iter()
        .zip(&used_justified)
        .chain(KNOWN_TLSTAP_BUGS.iter().zip(&used_bugs))
        .filter(|(_, used)| !**used)
        .map(|((test, target, reason), _)| format!("{test} {target}: {reason}"))
        .collect();

    println!("zeek baseline comparison:");
    println!("  tests compared:        {}", outcome.compared_tests.len());
    println!("  connections compared:  {}", outcome.compared_connections);
    println!("  certificates compared: {}", outcome.compared_certificates);
    println!("  leaf names compared:   {}", outcome.compared_leaves);
    for skipped in &outcome.skipped {
        println!("  skipped {skipped}");
    }
    for extra in &outcome.extra_tlstap_sessions {
        println!("  tlstap session Zeek did not log: {extra}");
    }
    print!("{report}");

    let mut failures = Vec::new();
    if !unexplained.is_empty() {
        failures.push(format!(
            "{} difference(s) with Zeek not listed in JUSTIFIED or KNOWN_TLSTAP_BUGS:\n  {}",
            unexplained.len(),
            unexplained.join("\n  ")
        ));
    }
    if !stale.is_empty() {
        failures.push(format!(
            "{} JUSTIFIED/KNOWN_TLSTAP_BUGS entr(ies) no longer match any difference; remove them:\n  {}",
            stale.len(),
            stale.join("\n  ")
        ));
    }
    for (what, got, want) in [
        (
            "connections compared",
            outcome.compared_connections,
            EXPECTED_COMPARED_CONNECTIONS,
        ),
        (
            "certificates compared",
            outcome.compared_certificates,
            EXPECTED_COMPARED_CERTIFICATES,
        ),
        (
            "leaf names compared",
            outcome.compared_leaves,
            EXPECTED_COMPARED_LEAVES,
        ),
        (
            "tests compared",
            outcome.compared_tests.len(),
            EXPECTED_COMPARED_TESTS,
        ),
    ] {
        if got != want {
            failures.push(format!(
                "{what}: {got}, pinned at {want} (update the constant if this is progress)"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
