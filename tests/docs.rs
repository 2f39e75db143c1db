//! The reference pages are checked against the code, so they cannot drift apart:
//! `docs/records.md` against the fields the binary writes on every capture in
//! `samples/` (and `tests/data/`), `docs/findings.md` against the finding rules
//! and against the evidence the findings write on the samples and the corpus.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Documented fields no sample capture produces, each with the reason.
const NOT_ON_SAMPLES: &[(&str, &str)] = &[
    (
        "network.vlan.id",
        "no sample is VLAN-tagged (tests/handshakes.rs covers it)",
    ),
    (
        "network.inner.vlan.id",
        "no QinQ sample (corpus, tests/mirror.rs)",
    ),
    (
        "tls.next_protocol",
        "no sample server selects ALPN in TLS 1.2",
    ),
    ("tlstap.version_variant", "no TLS 1.3 draft sample (corpus)"),
    ("tlstap.client.sslv2_format", "no SSL 2.0 sample (corpus)"),
    ("tlstap.server.dh_prime_bits", "no DHE sample"),
    (
        "tlstap.server.chain_dropped",
        "no chain over 16 certificates",
    ),
    (
        "tlstap.parse_error",
        "samples are well-formed (tests/hostile_input.rs)",
    ),
    ("tlstap.heartbeat_records", "no heartbeat sample"),
    (
        "tlstap.quic.server_version",
        "no compatible version negotiation sample",
    ),
    (
        "tlstap.quic.version_negotiation",
        "no Version Negotiation sample",
    ),
];

/// Certificate fields the sample PKI does not exercise (applied under every
/// certificate prefix): no OU/C/L/ST names, URI or e-mail SANs, unparsable DER;
/// leaves name only a CN; EC keys and IP SANs only on some sides.
const CERT_FIELDS_NOT_ON_SAMPLES: &[&str] = &[
    "subject.organization",
    "subject.organizational_unit",
    "subject.country",
    "subject.locality",
    "subject.state_or_province",
    "issuer.organizational_unit",
    "issuer.country",
    "issuer.locality",
    "issuer.state_or_province",
    "alt_names_uri",
    "alt_names_email",
    "parse_error",
    "public_key_curve",
    "alt_names_ip",
];

/// Maps whose keys are data (finding ids, versions, rule-specific evidence).
const OPAQUE: &[&str] = &[
    "tlstap.findings.evidence",
    "tlstap.stats.sessions_by_version",
    "tlstap.stats.findings_by_id",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    String,
    Number,
    Boolean,
    Object,
    Array,
    Null,
}

fn kind(value: &serde_json::Value) -> Kind {
    match value {
        serde_json::Value::String(_) => Kind::String,
        serde_json::Value::Number(_) => Kind::Number,
        serde_json::Value::Bool(_) => Kind::Boolean,
        serde_json::Value::Object(_) => Kind::Object,
        serde_json::Value::Array(_) => Kind::Array,
        serde_json::Value::Null => Kind::Null,
    }
}

/// Dotted paths of every key, array indices stripped, with the kinds seen.
fn flatten(value: &serde_json::Value, path: &str, out: &mut BTreeMap<String, BTreeSet<Kind>>) {
    if !path.is_empty() {
        out.entry(path.to_string()).or_default().insert(kind(value));
    }
    if OPAQUE.contains(&path) {
        return;
    }
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                flatten(child, &child_path, out);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items.iter().filter(|item| item.is_object()) {
                for (key, child) in item.as_object().unwrap() {
                    flatten(child, &format!("{path}.{key}"), out);
                }
            }
        }
        _ => {}
    }
}

fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            captures(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("pcap" | "pcapng")
        ) || path.to_string_lossy().ends_with(".pcap.gz")
        {
            out.push(path);
        }
    }
}

fn run(args: &[&str]) -> Vec<serde_json::Value> {
    let output = Command::new(env!("CARGO_BIN_EXE_tlstap"))
        .args(args)
        .current_dir(ROOT)
        .output()
        .expect("run tlstap");
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON line"))
        .collect()
}

/// The records of every capture in `samples/` and `tests/data/`, each read
/// on its own with the sample policy; the TLS 1.3 captures of
/// `samples/tls13/` with their key logs and `--raw-fingerprints`. Read once
/// per test binary (the tests that need them share the runs).
fn sample_records() -> &'static [serde_json::Value] {
    static RECORDS: OnceLock<Vec<serde_json::Value>> = OnceLock::new();
    RECORDS.get_or_init(|| {
        let mut files = Vec::new();
        captures(&Path::new(ROOT).join("samples"), &mut files);
        captures(&Path::new(ROOT).join("tests/data"), &mut files);
        files.sort();
        assert!(files.len() > 40, "samples missing: {files:?}");
        let mut all = Vec::new();
        for file in &files {
            let file = file.to_str().unwrap();
            let mut args = vec!["read", "-q", "--policy", "samples/policy.toml"];
            let keylog = file.replace(".pcap", ".keylog");
            if file.contains("/samples/tls13/") && Path::new(&keylog).exists() {
                args.extend(["--raw-fingerprints", "--keylog", &keylog]);
            }
            args.push(file);
            let records = run(&args);
            assert!(!records.is_empty(), "no records for {file}");
            all.extend(records);
        }
        all
    })
}

/// The fields the binary writes on the sample captures ([`sample_records`]).
fn written_fields() -> BTreeMap<String, BTreeSet<Kind>> {
    let mut fields = BTreeMap::new();
    for record in sample_records() {
        flatten(record, "", &mut fields);
    }
    fields
}

/// Documented fields and their types: table rows "| `name` | type | …" of
/// `docs/records.md`, joined to the prefixes a preceding
/// `<!-- fields under: … -->` comment names (until the next heading).
fn documented_fields() -> BTreeMap<String, Kind> {
    let text =
        std::fs::read_to_string(Path::new(ROOT).join("docs/records.md")).expect("docs/records.md");
    let mut prefixes = vec![String::new()];
    let mut fields = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') {
            prefixes = vec![String::new()];
        } else if let Some(rest) = line.strip_prefix("<!-- fields under:") {
            prefixes = rest
                .trim_end_matches("-->")
                .split_whitespace()
                .map(|p| p.to_string())
                .collect();
        } else if let Some(rest) = line.strip_prefix("| `") {
            let cells: Vec<&str> = rest.split(" | ").collect();
            let Some(name) = cells[0].strip_suffix('`') else {
                continue;
            };
            if name.contains('`') || cells.len() < 3 {
                continue; // "`a`, `b`, …": a cross-reference row, no type
            }
            let kind = match cells[1].trim() {
                "string" => Kind::String,
                "number" => Kind::Number,
                "boolean" => Kind::Boolean,
                "object" => Kind::Object,
                t if t.starts_with("array") => Kind::Array,
                "" => continue,
                other => panic!("docs/records.md: `{name}` has unknown type {other:?}"),
            };
            for prefix in &prefixes {
                let path = if prefix.is_empty() {
                    name.to_string()
                } else {
                    format!("{prefix}.{name}")
                };
                let path = path.replace("[]", "");
                if let Some(old) = fields.insert(path.clone(), kind) {
                    assert_eq!(
                        old, kind,
                        "docs/records.md: {path} documented twice, differently"
                    );
                }
            }
        }
    }
    assert!(
        fields.len() > 200,
        "docs/records.md: only {} fields parsed",
        fields.len()
    );
    fields
}

fn allowed_absent(path: &str) -> bool {
    NOT_ON_SAMPLES.iter().any(|(field, _)| *field == path)
        || [
            "tls.server.x509.",
            "tls.client.x509.",
            "tlstap.server.chain.",
            "tlstap.client.chain.",
        ]
        .iter()
        .any(|prefix| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| CERT_FIELDS_NOT_ON_SAMPLES.contains(&rest))
        })
}

#[test]
fn records_reference_matches_the_fields_written() {
    let written = written_fields();
    let documented = documented_fields();
    let mut problems = Vec::new();
    for (path, kinds) in &written {
        match documented.get(path) {
            Some(doc) => {
                for seen in kinds {
                    if seen != doc && *seen != Kind::Null {
                        problems.push(format!(
                            "{path}: written as {seen:?}, documented as {doc:?}"
                        ));
                    }
                }
            }
            // Intermediate objects need no row of their own.
            None if kinds.iter().all(|k| *k == Kind::Object) => {}
            None => problems.push(format!(
                "{path} ({kinds:?}) is written but not in docs/records.md"
            )),
        }
    }
    for path in documented.keys() {
        let seen = written.contains_key(path);
        if !seen && !allowed_absent(path) {
            problems.push(format!(
                "{path} is in docs/records.md but no sample writes it (remove it, or allow-list it with a reason in tests/docs.rs)"
            ));
        }
        if seen && NOT_ON_SAMPLES.iter().any(|(field, _)| field == path) {
            problems.push(format!(
                "{path} is allow-listed but the samples write it: drop the entry"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "records reference and code drifted apart:\n{}",
        problems.join("\n")
    );
}

/// Ids in `docs/findings.md`: rows "| `id` | severity | …" of its table
/// (the id may link to its section: "| [`id`](#id) | …").
fn documented_finding_ids() -> BTreeSet<String> {
    let text = std::fs::read_to_string(Path::new(ROOT).join("docs/findings.md"))
        .expect("docs/findings.md");
    let severities = ["info", "low", "medium", "high", "critical"];
    text.lines()
        .filter_map(|line| {
            let rest = line
                .strip_prefix("| `")
                .or_else(|| line.strip_prefix("| [`"))?;
            let (id, rest) = rest.split_once('`')?;
            let rest = rest
                .strip_prefix(" | ")
                .or_else(|| rest.strip_prefix(&format!("](#{id}) | ")))?;
            let severity = rest.split(" | ").next()?;
            severities
                .iter()
                .any(|s| severity.starts_with(s))
                .then(|| id.to_string())
        })
        .collect()
}

/// Ids in the rule sources (`id: "…"` in `src/policy/rules/*.rs`).
fn source_finding_ids() -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for entry in std::fs::read_dir(Path::new(ROOT).join("src/policy/rules")).expect("rules dir") {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            if let Some(rest) = line.trim().strip_prefix("id: \"") {
                ids.insert(rest.split('"').next().unwrap().to_string());
            }
        }
    }
    ids
}

#[test]
fn findings_reference_matches_the_rules() {
    let rules: BTreeSet<String> = tlstap::policy::rules::RULES
        .iter()
        .map(|rule| rule.id.to_string())
        .collect();
    assert_eq!(
        rules.len(),
        tlstap::policy::rules::RULES.len(),
        "duplicate rule ids"
    );
    assert_eq!(
        source_finding_ids(),
        rules,
        "a rule in src/policy/rules/ is missing from RULES (or the other way round)"
    );
    let documented = documented_finding_ids();
    let undocumented: Vec<_> = rules.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&rules).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "docs/findings.md and the rules drifted apart: not documented {undocumented:?}; documented but not in the code {unknown:?}"
    );
}

/// Finding ids no capture of this test raises, each with the reason and the
/// test that covers it instead. When a capture starts raising one, the test
/// asks for its entry to go, so its evidence is then checked here.
const NOT_RAISED: &[(&str, &str)] = &[
    (
        "tls13_handshake_aborted",
        "OpenSSL 3.0's s_client alerts in the clear before its handshake keys \
         (samples/tls13/*-reject); rustls-made captures in tests/keylog.rs",
    ),
    (
        "cert_eku_mismatch",
        "no sample or corpus leaf lacks serverAuth; rcgen-made capture in tests/findings.rs",
    ),
];

/// Finding ids only the external corpus raises (no sample does): when the
/// corpus is absent they are not checked, and the test says so.
const CORPUS_ONLY: &[(&str, &str)] = &[(
    "weak_cipher",
    "no sample negotiates a weak suite (corpus: RC4, NULL)",
)];

/// One documented evidence key: its JSON kinds (Null when "or null") and
/// whether only some findings of the id write it (`key?`).
#[derive(Debug, Clone)]
struct EvidenceKey {
    kinds: BTreeSet<Kind>,
    optional: bool,
}

/// A finding id's section of "Evidence and fixes".
#[derive(Debug, Default)]
struct DocumentedEvidence {
    keys: BTreeMap<String, EvidenceKey>,
    /// Its rows include the certificate keys.
    certificate_keys: bool,
    /// It has a "**Fix:**" paragraph.
    fix: bool,
}

/// "string", "number or null", "array of strings", …
fn evidence_kinds(cell: &str, key: &str) -> BTreeSet<Kind> {
    cell.split(" or ")
        .map(|part| match part.trim() {
            "string" => Kind::String,
            "number" => Kind::Number,
            "boolean" => Kind::Boolean,
            "object" => Kind::Object,
            "null" => Kind::Null,
            t if t.starts_with("array") => Kind::Array,
            other => panic!("docs/findings.md: evidence key `{key}` has unknown type {other:?}"),
        })
        .collect()
}

/// The evidence keys `docs/findings.md` documents, by finding id: the
/// "| `key` | type | meaning |" rows under each "### `id`" heading, a
/// trailing `?` marking a key only some findings write, and a row linking
/// to "#certificate-keys" standing for the rows under "### Certificate keys".
fn documented_evidence() -> BTreeMap<String, DocumentedEvidence> {
    enum Section {
        Other,
        CertificateKeys,
        Finding(String),
    }
    let text = std::fs::read_to_string(Path::new(ROOT).join("docs/findings.md"))
        .expect("docs/findings.md");
    let mut certificate_keys = BTreeMap::new();
    let mut documented: BTreeMap<String, DocumentedEvidence> = BTreeMap::new();
    let mut section = Section::Other;
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("### ") {
            section = if heading == "Certificate keys" {
                Section::CertificateKeys
            } else if let Some(id) = heading.strip_prefix('`').and_then(|h| h.strip_suffix('`')) {
                assert!(
                    !documented.contains_key(id),
                    "docs/findings.md: two sections for {id}"
                );
                documented.insert(id.to_string(), DocumentedEvidence::default());
                Section::Finding(id.to_string())
            } else {
                Section::Other
            };
            continue;
        }
        if line.starts_with('#') {
            section = Section::Other;
            continue;
        }
        let keys = match &section {
            Section::Other => continue,
            Section::CertificateKeys => &mut certificate_keys,
            Section::Finding(id) => {
                let entry = documented.get_mut(id).expect("section inserted");
                if line.starts_with("**Fix:**") {
                    entry.fix = true;
                }
                if line.starts_with("| [") && line.contains("](#certificate-keys)") {
                    entry.certificate_keys = true;
                }
                &mut entry.keys
            }
        };
        let Some(rest) = line.strip_prefix("| `") else {
            continue;
        };
        let cells: Vec<&str> = rest.split(" | ").collect();
        let key = cells[0].trim_end_matches('`');
        assert!(
            cells.len() >= 3,
            "docs/findings.md: evidence row for `{key}` needs a type and a meaning"
        );
        let (key, optional) = match key.strip_suffix('?') {
            Some(key) => (key, true),
            None => (key, false),
        };
        let kinds = evidence_kinds(cells[1], key);
        let old = keys.insert(key.to_string(), EvidenceKey { kinds, optional });
        assert!(
            old.is_none(),
            "docs/findings.md: evidence key `{key}` twice"
        );
    }
    assert!(
        certificate_keys.len() >= 7,
        "docs/findings.md: no certificate keys parsed"
    );
    for evidence in documented.values_mut() {
        if evidence.certificate_keys {
            for (key, documented) in &certificate_keys {
                let old = evidence.keys.insert(key.clone(), documented.clone());
                assert!(
                    old.is_none(),
                    "docs/findings.md: `{key}` is a certificate key and listed again"
                );
            }
        }
    }
    documented
}

/// The evidence the findings of one id wrote.
#[derive(Debug, Default)]
struct WrittenEvidence {
    findings: usize,
    /// Key -> (findings that wrote it, kinds of its values).
    keys: BTreeMap<String, (usize, BTreeSet<Kind>)>,
    /// Raised by a sample capture (not only by the corpus).
    on_samples: bool,
}

fn collect_evidence(
    records: &[serde_json::Value],
    on_samples: bool,
    out: &mut BTreeMap<String, WrittenEvidence>,
) {
    for record in records {
        let Some(findings) = record
            .pointer("/tlstap/findings")
            .and_then(|f| f.as_array())
        else {
            continue;
        };
        for finding in findings {
            let id = finding["id"].as_str().expect("finding id");
            let evidence = finding["evidence"]
                .as_object()
                .unwrap_or_else(|| panic!("{id}: evidence is not an object: {finding}"));
            let written = out.entry(id.to_string()).or_default();
            written.findings += 1;
            written.on_samples |= on_samples;
            for (key, value) in evidence {
                let (count, kinds) = written.keys.entry(key.clone()).or_default();
                *count += 1;
                kinds.insert(kind(value));
            }
        }
    }
}

/// Samples beyond [`sample_records`]: the top-level captures read as one
/// capture (the cross-session and drift findings need a history: the same
/// server over several files), and each with its key log from
/// `samples/keylog/` (TLS 1.3 read with keys: `mtls_missing`).
fn sample_records_with_history_and_keys() -> Vec<serde_json::Value> {
    let samples = Path::new(ROOT).join("samples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&samples)
        .expect("samples/")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "pcap"))
        .collect();
    files.sort();
    let mut args = vec!["read", "-q", "--policy", "samples/policy.toml"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let mut records = run(&args);
    let mut keyed = 0;
    for file in &files {
        let stem = file.file_stem().unwrap().to_str().unwrap();
        let keylog = samples.join("keylog").join(format!("{stem}.keylog"));
        if keylog.exists() {
            keyed += 1;
            records.extend(run(&[
                "read",
                "-q",
                "--policy",
                "samples/policy.toml",
                "--keylog",
                keylog.to_str().unwrap(),
                file.to_str().unwrap(),
            ]));
        }
    }
    assert!(keyed > 10, "samples/keylog/ missing");
    records
}

#[test]
fn findings_reference_documents_the_evidence_written() {
    let documented = documented_evidence();
    let rules: BTreeSet<&str> = tlstap::policy::rules::RULES
        .iter()
        .map(|rule| rule.id)
        .collect();
    let mut problems = Vec::new();
    for id in &rules {
        match documented.get(*id) {
            None => problems.push(format!(
                "{id}: no \"### `{id}`\" section under \"Evidence and fixes\""
            )),
            Some(evidence) if !evidence.fix => {
                problems.push(format!("{id}: its section has no **Fix:** paragraph"))
            }
            Some(_) => {}
        }
    }
    for id in documented.keys() {
        if !rules.contains(id.as_str()) {
            problems.push(format!("{id}: documented, but no rule has this id"));
        }
    }

    let mut written = BTreeMap::new();
    collect_evidence(sample_records(), true, &mut written);
    collect_evidence(&sample_records_with_history_and_keys(), true, &mut written);
    let corpus_only: Vec<&str> = CORPUS_ONLY.iter().map(|(id, _)| *id).collect();
    let corpus = support::corpus_or_skip(&format!(
        "findings_reference_documents_the_evidence_written on the corpus (unchecked: {})",
        corpus_only.join(", ")
    ));
    if let Some(corpus) = &corpus {
        let mut files = Vec::new();
        captures(corpus, &mut files);
        files.sort();
        assert!(
            files.len() > 100,
            "corpus incomplete: {} captures",
            files.len()
        );
        for file in &files {
            let file = file.to_str().unwrap();
            let records = run(&["read", "-q", "--policy", "samples/policy.toml", file]);
            collect_evidence(&records, false, &mut written);
        }
    }

    for (id, evidence) in &written {
        let Some(doc) = documented.get(id) else {
            continue; // reported above
        };
        for (key, (_, kinds)) in &evidence.keys {
            match doc.keys.get(key) {
                None => problems.push(format!(
                    "{id}: writes evidence `{key}` ({kinds:?}), not in docs/findings.md"
                )),
                Some(documented) => {
                    for kind in kinds.difference(&documented.kinds) {
                        problems.push(format!(
                            "{id}: evidence `{key}` written as {kind:?}, documented as {:?}",
                            documented.kinds
                        ));
                    }
                }
            }
        }
        for (key, documented) in &doc.keys {
            let count = evidence.keys.get(key).map_or(0, |(count, _)| *count);
            if !documented.optional && count < evidence.findings {
                problems.push(format!(
                    "{id}: evidence `{key}` is documented as always written, but {} of {} findings lack it (mark it `{key}?` if only some write it)",
                    evidence.findings - count,
                    evidence.findings
                ));
            }
        }
    }

    let listed = |list: &[(&str, &str)], id: &str| list.iter().any(|(listed, _)| *listed == id);
    for id in &rules {
        let seen = written.get(*id);
        let not_raised = listed(NOT_RAISED, id);
        let corpus_only = listed(CORPUS_ONLY, id);
        match seen {
            Some(_) if not_raised => problems.push(format!(
                "{id} is raised now: drop it from NOT_RAISED in tests/docs.rs"
            )),
            Some(evidence) if corpus_only && evidence.on_samples => problems.push(format!(
                "{id} is raised by a sample now: drop it from CORPUS_ONLY in tests/docs.rs"
            )),
            Some(_) => {}
            None if not_raised => {}
            None if corpus_only && corpus.is_none() => {}
            None => problems.push(format!(
                "{id}: no capture raises it, so its evidence is not checked: add a capture, or list it in NOT_RAISED (or CORPUS_ONLY) with the reason"
            )),
        }
    }
    assert!(
        problems.is_empty(),
        "docs/findings.md and the evidence the findings write drifted apart:\n{}",
        problems.join("\n")
    );
}

/// The committed pages under `man/`: (file name, contents), sorted by name.
fn committed_man_pages() -> Vec<(String, Vec<u8>)> {
    let mut pages: Vec<(String, Vec<u8>)> = std::fs::read_dir(Path::new(ROOT).join("man"))
        .expect("man/")
        .map(|entry| entry.expect("dir entry").path())
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).expect("read man page"))
        })
        .collect();
    pages.sort();
    pages
}

#[test]
fn committed_man_pages_are_what_the_cli_generates() {
    let regenerate = "regenerate them with `cargo run --release -- man --dir man/`";
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_tlstap"))
        .args(["man", "--dir"])
        .arg(dir.path())
        .output()
        .expect("run tlstap man --dir");
    assert!(output.status.success(), "{output:?}");
    let mut generated: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    generated.sort();
    let committed = committed_man_pages();
    let names = |pages: &[(String, Vec<u8>)]| -> Vec<String> {
        pages.iter().map(|(name, _)| name.clone()).collect()
    };
    assert_eq!(
        names(&committed),
        names(&generated),
        "man/ holds other pages than the CLI generates: {regenerate} (and delete the stale ones)"
    );
    for ((name, committed), (_, generated)) in committed.iter().zip(&generated) {
        assert!(committed == generated, "man/{name} is stale: {regenerate}");
    }
    // `tlstap man` alone prints the top page.
    let output = Command::new(env!("CARGO_BIN_EXE_tlstap"))
        .arg("man")
        .output()
        .expect("run tlstap man");
    assert!(output.status.success());
    assert!(
        std::fs::read(Path::new(ROOT).join("man/tlstap.1")).unwrap() == output.stdout,
        "`tlstap man` differs from man/tlstap.1"
    );
}

/// Each `name(1)` a page names (SUBCOMMANDS, SEE ALSO) is a page in `man/`:
/// clap_mangen lists `tlstap-read(1)` and the like, which must exist.
#[test]
fn man_pages_name_only_pages_that_are_shipped() {
    let pages = committed_man_pages();
    assert!(
        pages.len() > 5 && pages.iter().any(|(name, _)| name == "tlstap.1"),
        "man/ is incomplete: {:?}",
        pages.iter().map(|(name, _)| name).collect::<Vec<_>>()
    );
    let shipped: BTreeSet<&str> = pages.iter().map(|(name, _)| name.as_str()).collect();
    let mut missing = Vec::new();
    let mut references = 0;
    for (name, page) in &pages {
        let text = String::from_utf8(page.clone()).expect("ASCII page");
        for (at, _) in text.match_indices("(1)") {
            let start = text[..at]
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '\\'))
                .map_or(0, |i| i + 1);
            let reference = text[start..at].replace("\\-", "-");
            if reference.is_empty() {
                continue;
            }
            references += 1;
            if !shipped.contains(format!("{reference}.1").as_str()) {
                missing.push(format!("man/{name} names {reference}(1)"));
            }
        }
    }
    assert!(
        references >= pages.len(),
        "only {references} page references"
    );
    assert!(
        missing.is_empty(),
        "pages not shipped:\n{}",
        missing.join("\n")
    );
}

#[test]
fn man_pages_render() {
    for (name, _) in committed_man_pages() {
        let page = Path::new(ROOT).join("man").join(&name);
        let groff = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(&page)
            .output();
        match groff {
            Ok(output) => {
                assert!(output.status.success(), "groff failed on man/{name}");
                let warnings = String::from_utf8_lossy(&output.stderr);
                assert!(
                    warnings.trim().is_empty(),
                    "groff warns on man/{name}:\n{warnings}"
                );
            }
            Err(_) => {
                eprintln!("tlstap tests: skipped man_pages_render: groff not found");
                return;
            }
        }
    }
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let output = Command::new(env!("CARGO_BIN_EXE_tlstap"))
            .args(["completions", shell])
            .output()
            .expect("run tlstap completions");
        assert!(output.status.success(), "{shell}");
        let script = String::from_utf8(output.stdout).expect("utf-8");
        assert!(
            script.contains("tlstap") && script.contains("policy"),
            "{shell}: {script}"
        );
    }
}

/// GitHub's anchor for a heading: lowercase, punctuation but `-` and `_` dropped, spaces to `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn relative_links_in_readme_and_docs_resolve() {
    let root = Path::new(ROOT);
    let mut pages = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    let mut broken = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        for (start, _) in text.match_indices("](") {
            let rest = &text[start + 2..];
            let Some(end) = rest.find(')') else { continue };
            let link = &rest[..end];
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let (file, fragment) = link.split_once('#').unwrap_or((link, ""));
            let target = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            if !target.exists() {
                broken.push(format!("{}: {link}: no such file", page.display()));
                continue;
            }
            if !fragment.is_empty() {
                let target_text = std::fs::read_to_string(&target).unwrap_or_default();
                let found = target_text
                    .lines()
                    .filter_map(|line| line.strip_prefix('#'))
                    .any(|heading| anchor(heading.trim_start_matches('#')) == fragment);
                if !found {
                    broken.push(format!("{}: {link}: no such heading", page.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}
