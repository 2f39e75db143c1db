//! The report against a hand-built estate whose numbers are known: four
//! services (internal TLS 1.3, internal TLS 1.2 with an exception, inbound
//! TLS 1.2/1.0 without one, internal plaintext SMTP), three certificates
//! (expired, expiring in 12 days, fine), one client that accepted an expired
//! certificate, and drift before and after the cut-off.

use scraper::{Html, Selector};
use serde_json::json;
use time::macros::datetime;

use super::*;
use crate::inventory::{
    CertificateRow, ClientStackRow, DriftEvent, ExceptionUse, FindingCount, InvalidCertClient,
    NegotiationRow, RunRow, ServiceKey, ServiceRow,
};

const HOSTILE_SUBJECT: &str = "CN=portal.example.com,O=<script>alert(1)</script> | Evil & Co";

fn key(ip: &str, port: u16, sni: &str) -> ServiceKey {
    ServiceKey {
        ip: ip.to_string(),
        port,
        sni: sni.to_string(),
    }
}

fn negotiation(version: &str, cipher: &str, sessions: u64) -> NegotiationRow {
    NegotiationRow {
        version: version.to_string(),
        protocol: "tls".to_string(),
        cipher: cipher.to_string(),
        sessions,
        first_seen: "2026-09-01T08:00:00Z".to_string(),
        last_seen: "2026-11-20T17:30:00Z".to_string(),
    }
}

fn certificate(
    sha256: &str,
    subject: &str,
    not_before: &str,
    not_after: &str,
    sessions: u64,
) -> CertificateRow {
    CertificateRow {
        sha256: sha256.to_string(),
        subject: subject.to_string(),
        issuer: "CN=Example Internal CA,O=Example".to_string(),
        sans: vec![subject
            .trim_start_matches("CN=")
            .split(',')
            .next()
            .unwrap_or("")
            .to_string()],
        not_before: not_before.to_string(),
        not_after: not_after.to_string(),
        sessions,
        first_seen: "2026-09-01T08:00:00Z".to_string(),
        last_seen: "2026-11-20T17:30:00Z".to_string(),
    }
}

fn finding(id: &str, severity: &str, count: u64, excepted: u64) -> FindingCount {
    FindingCount {
        id: id.to_string(),
        severity: severity.to_string(),
        count,
        excepted,
    }
}

fn exception(
    id: &str,
    owner: &str,
    expires: &str,
    finding_ids: &[&str],
    count: u64,
) -> ExceptionUse {
    ExceptionUse {
        id: id.to_string(),
        owner: owner.to_string(),
        expires: expires.to_string(),
        finding_ids: finding_ids.iter().map(|id| id.to_string()).collect(),
        count,
        last_seen: "2026-11-20T17:30:00Z".to_string(),
    }
}

fn client(stack: &str, ja4: &str, sessions: u64, distinct_clients: u64) -> ClientStackRow {
    ClientStackRow {
        stack: stack.to_string(),
        ja4: ja4.to_string(),
        sessions,
        distinct_clients,
        distinct_clients_capped: false,
        first_seen: "2026-09-01T08:00:00Z".to_string(),
        last_seen: "2026-11-20T17:30:00Z".to_string(),
    }
}

fn service(
    key: ServiceKey,
    name: &str,
    owner: &str,
    direction: &str,
    protocol: &str,
) -> ServiceRow {
    ServiceRow {
        key,
        name: Some(name.to_string()),
        owner: Some(owner.to_string()),
        direction: direction.to_string(),
        protocol: protocol.to_string(),
        first_seen: "2026-09-01T08:00:00Z".to_string(),
        last_seen: "2026-11-20T17:30:00Z".to_string(),
        sessions: 0,
        plaintext_sessions: 0,
        negotiations: Vec::new(),
        certificates: Vec::new(),
        clients: Vec::new(),
        findings: Vec::new(),
        exceptions: Vec::new(),
        invalid_cert_clients: Vec::new(),
    }
}

fn drift(time: &str, service: &ServiceRow, id: &str, message: &str) -> DriftEvent {
    DriftEvent {
        time: time.to_string(),
        key: service.key.clone(),
        service_name: service.name.clone(),
        id: id.to_string(),
        severity: "info".to_string(),
        message: message.to_string(),
        evidence: json!({"service": service.key.ip}),
    }
}

pub(crate) fn estate() -> InventorySnapshot {
    let mut payments = service(
        key("10.20.0.10", 443, "api.payments.internal"),
        "payments-api",
        "payments-platform",
        "internal",
        "tls",
    );
    payments.sessions = 8;
    payments.negotiations = vec![negotiation("1.3", "TLS_AES_128_GCM_SHA256", 8)];
    payments.certificates = vec![certificate(
        "AA11AA11AA11AA11AA11AA11AA11AA11AA11AA11AA11AA11AA11AA11AA11AA11",
        "CN=api.payments.internal,O=Example",
        "2026-06-01T00:00:00Z",
        "2027-06-01T00:00:00Z",
        8,
    )];
    payments.clients = vec![client(
        "openssl 3.0",
        "t13d1516h2_8daaf6152771_02713d6af862",
        8,
        3,
    )];
    payments.findings = vec![finding("cert_long_validity", "low", 8, 8)];
    payments.exceptions = vec![exception(
        "EXC-2026-077",
        "payments-platform",
        "2026-12-10",
        &["cert_long_validity"],
        8,
    )];

    let mut ledger = service(
        key("10.20.0.11", 8443, "ledger.internal"),
        "ledger",
        "finance-it",
        "internal",
        "tls",
    );
    ledger.sessions = 4;
    ledger.negotiations = vec![negotiation(
        "1.2",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        4,
    )];
    ledger.certificates = vec![certificate(
        "BB22BB22BB22BB22BB22BB22BB22BB22BB22BB22BB22BB22BB22BB22BB22BB22",
        "CN=ledger.internal,O=Example",
        "2025-12-05T00:00:00Z",
        "2026-12-05T00:00:00Z",
        4,
    )];
    ledger.clients = vec![client(
        "java 17",
        "t12d1209h2_d34a8e72043a_b39be8c56a14",
        4,
        2,
    )];
    ledger.findings = vec![
        finding("tls_below_baseline", "medium", 4, 4),
        finding("cert_expiring_soon", "medium", 4, 0),
    ];
    ledger.exceptions = vec![exception(
        "EXC-2026-014",
        "finance-it",
        "2027-03-31",
        &["tls_below_baseline"],
        4,
    )];

    let mut portal = service(
        key("203.0.113.5", 443, "portal.example.com"),
        "customer-portal",
        "web-team",
        "inbound",
        "tls",
    );
    portal.sessions = 4;
    portal.negotiations = vec![
        negotiation("1.2", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", 3),
        negotiation("1.0", "TLS_RSA_WITH_AES_128_CBC_SHA", 1),
    ];
    portal.certificates = vec![certificate(
        "CC33CC33CC33CC33CC33CC33CC33CC33CC33CC33CC33CC33CC33CC33CC33CC33",
        HOSTILE_SUBJECT,
        "2025-10-01T00:00:00Z",
        "2026-10-01T00:00:00Z",
        4,
    )];
    portal.clients = vec![
        client(
            "curl 7.88 | openssl",
            "t12d1311h1_e8f1e7e78f70_6bebaf5329ac",
            3,
            5,
        ),
        client("unknown", "t10d0405h1_2b1a0c0d3e4f_aa00bb11cc22", 1, 1),
    ];
    portal.findings = vec![
        finding("obsolete_version", "high", 1, 0),
        finding("cert_expired", "high", 4, 0),
        finding("client_accepted_invalid_cert", "high", 2, 0),
        finding("cbc_cipher", "low", 1, 0),
        finding("exception_expired", "medium", 1, 0),
    ];
    portal.exceptions = vec![exception(
        "EXC-2025-101",
        "identity-team",
        "2026-01-31",
        &["cbc_cipher"],
        1,
    )];
    portal.invalid_cert_clients = vec![InvalidCertClient {
        client_ip: "198.51.100.7".to_string(),
        stack: "curl 7.88 | openssl".to_string(),
        problems: vec!["cert_expired".to_string()],
        count: 2,
        last_seen: "2026-11-20T17:30:00Z".to_string(),
    }];

    let mut mail = service(
        key("10.20.0.30", 25, ""),
        "legacy-mail",
        "messaging",
        "internal",
        "smtp",
    );
    mail.plaintext_sessions = 5;
    mail.findings = vec![finding("starttls_not_used", "medium", 5, 0)];

    let drift_events = vec![
        drift(
            "2026-10-15T09:00:00Z",
            &payments,
            "cert_rotated",
            "certificate rotated before the audit period",
        ),
        drift(
            "2026-11-10T10:00:00Z",
            &ledger,
            "negotiation_changed",
            "TLS 1.3 → TLS 1.2",
        ),
        drift(
            "2026-11-20T11:00:00Z",
            &portal,
            "new_client_stack",
            "new client stack unknown",
        ),
    ];

    InventorySnapshot {
        services: vec![portal, mail, payments, ledger],
        drift: drift_events,
        runs: vec![RunRow {
            started: "2026-11-20T18:00:00Z".to_string(),
            source: "samples/tls13.pcap".to_string(),
            records: 21,
        }],
    }
}

pub(crate) fn options() -> ReportOptions {
    let mut options = ReportOptions::new(
        "Example estate audit",
        "2026-11-23T12:00:00Z",
        datetime!(2026-11-23 12:00 UTC),
    );
    options.drift_since = Some(datetime!(2026-11-01 0:00 UTC));
    options
}

fn select<'d>(document: &'d Html, css: &str) -> Vec<scraper::ElementRef<'d>> {
    let selector = Selector::parse(css).expect("test selectors are valid CSS");
    document.select(&selector).collect()
}

fn text(element: &scraper::ElementRef<'_>) -> String {
    element
        .text()
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The cells of each body row of a table, whitespace-normalised.
fn rows(document: &Html, table: &str) -> Vec<Vec<String>> {
    select(document, &format!("table#{table} tbody tr"))
        .iter()
        .map(|row| {
            let cell = Selector::parse("th, td").expect("valid selector");
            row.select(&cell).map(|cell| text(&cell)).collect()
        })
        .collect()
}

#[test]
fn summary_counts_the_hand_built_estate() {
    let summary = summary(&estate(), &options());
    let severity = |level: &str, count, excepted| SeverityCount {
        severity: level.to_string(),
        count,
        excepted,
    };
    assert_eq!(
        summary,
        ReportSummary {
            services: 4,
            tls_services: 3,
            sessions: 16,
            plaintext_sessions: 5,
            east_west_sessions: 12,
            east_west_tls13_sessions: 8,
            east_west_tls13_percent: Some(66.7),
            plaintext_services: 1,
            legacy_paths: 3,
            legacy_paths_with_exception: 1,
            legacy_paths_without_exception: 2,
            certificates: 3,
            certificates_expired: 1,
            certificates_expiring: 1,
            exceptions: 3,
            exceptions_expired: 1,
            exceptions_expiring: 1,
            invalid_cert_clients: 1,
            drift_events: 2,
            findings_by_severity: vec![
                severity("critical", 0, 0),
                severity("high", 7, 0),
                severity("medium", 14, 4),
                severity("low", 9, 8),
                severity("info", 0, 0),
            ],
        }
    );
}

#[test]
fn html_summary_cards_show_the_summary_numbers() {
    let html = render(&estate(), Format::Html, &options());
    let document = Html::parse_document(&html);
    let card = |key: &str| {
        let value = select(&document, &format!("dd[data-key=\"{key}\"] .value"));
        let detail = select(&document, &format!("dd[data-key=\"{key}\"] .detail"));
        assert_eq!((value.len(), detail.len()), (1, 1), "one card for {key}");
        (text(&value[0]), text(&detail[0]))
    };
    assert_eq!(
        card("services"),
        ("4".to_string(), "3 with TLS sessions".to_string())
    );
    assert_eq!(
        card("sessions"),
        ("16".to_string(), "5 plaintext sessions".to_string())
    );
    assert_eq!(
        card("east_west_tls13_percent"),
        ("66.7%".to_string(), "8 of 12 internal sessions".to_string())
    );
    assert_eq!(
        card("plaintext_services"),
        ("1".to_string(), "5 plaintext sessions".to_string())
    );
    assert_eq!(
        card("legacy_paths"),
        ("3".to_string(), "1 with exception, 2 without".to_string())
    );
    assert_eq!(
        card("certificates_expired"),
        ("1".to_string(), "of 3 in total".to_string())
    );
    assert_eq!(
        card("certificates_expiring"),
        ("1".to_string(), "within 30 days".to_string())
    );
    assert_eq!(
        card("drift_events"),
        ("2".to_string(), "since 2026-11-01".to_string())
    );
    assert_eq!(
        card("exceptions_expired"),
        ("1".to_string(), "1 expiring soon, 3 in total".to_string())
    );
    assert_eq!(
        card("invalid_cert_clients"),
        (
            "1".to_string(),
            "handshakes completed despite invalid certificate".to_string()
        )
    );

    assert_eq!(
        rows(&document, "severity-summary"),
        vec![
            vec!["CRITICAL", "0", "0", "0"],
            vec!["HIGH", "7", "0", "7"],
            vec!["MEDIUM", "14", "4", "10"],
            vec!["LOW", "9", "8", "1"],
            vec!["INFO", "0", "0", "0"],
        ]
    );
}

#[test]
fn html_legacy_paths_carry_their_exception_or_no_exception() {
    let document = Html::parse_document(&render(&estate(), Format::Html, &options()));
    let legacy = rows(&document, "legacy-paths");
    assert_eq!(
        legacy,
        vec![
            vec![
                "ledger",
                "10.20.0.11:8443 (ledger.internal)",
                "finance-it",
                "internal",
                "TLS 1.2",
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                "4",
                "2026-11-20",
                "EXC-2026-014 · finance-it · until 2027-03-31 VALID",
            ],
            vec![
                "customer-portal",
                "203.0.113.5:443 (portal.example.com)",
                "web-team",
                "inbound",
                "TLS 1.2",
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                "3",
                "2026-11-20",
                "NO EXCEPTION",
            ],
            vec![
                "customer-portal",
                "203.0.113.5:443 (portal.example.com)",
                "web-team",
                "inbound",
                "TLS 1.0",
                "TLS_RSA_WITH_AES_128_CBC_SHA",
                "1",
                "2026-11-20",
                "NO EXCEPTION",
            ],
        ]
    );
    let ids: Vec<String> = select(&document, "#legacy-paths .exception-id")
        .iter()
        .map(text)
        .collect();
    let owners: Vec<String> = select(&document, "#legacy-paths .exception-owner")
        .iter()
        .map(text)
        .collect();
    let expiries: Vec<String> = select(&document, "#legacy-paths .exception-expires")
        .iter()
        .map(text)
        .collect();
    assert_eq!(
        (ids, owners, expiries),
        (
            vec!["EXC-2026-014".to_string()],
            vec!["finance-it".to_string()],
            vec!["2027-03-31".to_string()]
        )
    );
}

#[test]
fn html_exceptions_list_expired_then_expiring_with_text_labels() {
    let document = Html::parse_document(&render(&estate(), Format::Html, &options()));
    let exceptions = rows(&document, "exceptions-table");
    let heads: Vec<(String, String, String, String)> = exceptions
        .iter()
        .map(|row| {
            (
                row[0].clone(),
                row[1].clone(),
                row[2].clone(),
                row[3].clone(),
            )
        })
        .collect();
    assert_eq!(
        heads,
        vec![
            (
                "EXPIRED 296 days ago".into(),
                "EXC-2025-101".into(),
                "identity-team".into(),
                "2026-01-31".into()
            ),
            (
                "EXPIRES SOON in 17 days".into(),
                "EXC-2026-077".into(),
                "payments-platform".into(),
                "2026-12-10".into()
            ),
            (
                "VALID".into(),
                "EXC-2026-014".into(),
                "finance-it".into(),
                "2027-03-31".into()
            ),
        ]
    );
}

#[test]
fn svg_timeline_has_one_bar_per_certificate_a_today_line_and_the_window() {
    let mut snapshot = estate();
    // The payments certificate also served by the ledger: still one certificate, one bar.
    let shared = snapshot.services[2].certificates[0].clone();
    snapshot.services[3].certificates.push(shared);
    let options = options();
    let report = Report::new(&snapshot, &options);
    assert_eq!(report.certificates.len(), 3);
    assert_eq!(
        report.certificates[2].services,
        vec!["ledger".to_string(), "payments-api".to_string()]
    );
    assert_eq!(report.certificates[2].sessions, 16);

    let document = Html::parse_document(&render(&snapshot, Format::Html, &options));
    let bars = select(&document, "svg.timeline rect.bar");
    let classes: Vec<&str> = bars
        .iter()
        .map(|bar| bar.value().attr("class").unwrap_or(""))
        .collect();
    assert_eq!(classes, vec!["bar expired", "bar soon", "bar valid"]);
    assert_eq!(select(&document, "svg.timeline line.today").len(), 1);
    assert_eq!(select(&document, "svg.timeline rect.window").len(), 1);
    let statuses: Vec<String> = select(&document, "svg.timeline g.cert > text:last-child")
        .iter()
        .map(text)
        .collect();
    assert_eq!(
        statuses,
        vec!["EXPIRED 53d ago", "EXPIRES SOON 11d", "VALID"]
    );
    // The certificate table agrees with the chart, soonest notAfter first.
    let table: Vec<(String, String)> = rows(&document, "certificates-table")
        .into_iter()
        .map(|row| (row[0].clone(), row[5].clone()))
        .collect();
    assert_eq!(
        table,
        vec![
            ("EXPIRED 53 days ago".into(), "2026-10-01".into()),
            ("EXPIRES SOON in 11 days".into(), "2026-12-05".into()),
            ("VALID".into(), "2027-06-01".into()),
        ]
    );
}

#[test]
fn hostile_subject_is_escaped_in_html_and_svg() {
    let html = render(&estate(), Format::Html, &options());
    assert!(!html.contains("<script"), "no raw script tag anywhere");
    assert!(html.contains("O=&lt;script&gt;alert(1)&lt;/script&gt; | Evil &amp; Co"));
    let document = Html::parse_document(&html);
    assert_eq!(select(&document, "script").len(), 0);
    let subject = select(&document, "#certificates-table th.subject");
    assert_eq!(text(&subject[0]), HOSTILE_SUBJECT);
    let svg_titles: Vec<String> = select(&document, "svg.timeline g.cert > title")
        .iter()
        .map(text)
        .collect();
    assert!(
        svg_titles[0].starts_with(HOSTILE_SUBJECT),
        "{:?}",
        svg_titles[0]
    );
}

#[test]
fn html_references_nothing_outside_the_file() {
    let html = render(&estate(), Format::Html, &options());
    for forbidden in [
        "http://", "https://", "//cdn", "@import", "url(", "<link", "<script", "<img", "<iframe",
        "src=",
    ] {
        assert!(!html.contains(forbidden), "report contains {forbidden:?}");
    }
    let document = Html::parse_document(&html);
    let hrefs: Vec<&str> = select(&document, "[href]")
        .iter()
        .filter_map(|e| e.value().attr("href"))
        .collect();
    assert_eq!(hrefs.len(), 10);
    assert!(hrefs.iter().all(|href| href.starts_with('#')), "{hrefs:?}");
}

#[test]
fn html_tables_have_captions_and_column_headers() {
    let document = Html::parse_document(&render(&estate(), Format::Html, &options()));
    let tables = select(&document, "table");
    assert_eq!(tables.len(), 11);
    let caption = Selector::parse("caption").expect("valid selector");
    let header = Selector::parse("thead th[scope=col]").expect("valid selector");
    for table in &tables {
        assert_eq!(
            table.select(&caption).count(),
            1,
            "{:?}",
            table.value().attr("id")
        );
        assert!(
            table.select(&header).count() >= 3,
            "{:?}",
            table.value().attr("id")
        );
    }
    assert_eq!(select(&document, "section").len(), 10);
}

#[test]
fn markdown_has_the_same_numbers_and_escapes_pipes() {
    let markdown = render(&estate(), Format::Markdown, &options());
    for line in [
        "| Services | 4 |",
        "| East-west sessions on TLS 1.3 | 66.7% (8) |",
        "| Plaintext services | 1 |",
        "| Paths below TLS 1.3 | 3 |",
        "| … with a current exception | 1 |",
        "| … without | 2 |",
        "| Certificates expired | 1 |",
        "| Certificates expiring within 30 days | 1 |",
        "| Clients accepting invalid certificates | 1 |",
        "| Drift events in period | 2 |",
        "| MEDIUM | 14 | 4 | 10 |",
        "| ledger | 10.20.0.11:8443 (ledger.internal) | finance-it | internal | TLS 1.2 | TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 | 4 | EXC-2026-014 (finance-it, until 2027-03-31, **VALID**) |",
        "| customer-portal | 203.0.113.5:443 (portal.example.com) | web-team | inbound | TLS 1.0 | TLS_RSA_WITH_AES_128_CBC_SHA | 1 | **no exception** |",
        "| customer-portal | 198.51.100.7 | curl 7.88 \\| openssl | cert_expired | 2 |",
    ] {
        assert!(markdown.contains(line), "missing {line:?} in\n{markdown}");
    }
    assert!(markdown.contains("O=&lt;script&gt;alert(1)&lt;/script&gt; \\| Evil &amp; Co"));
    assert!(!markdown.contains("<script"));
    // Every table row has as many cells as its header once escaped pipes are ignored.
    for line in markdown
        .lines()
        .filter(|line| line.starts_with("| customer-portal"))
    {
        let cells = line.replace("\\|", "").matches('|').count();
        assert!(cells == 6 || cells == 9 || cells == 10, "{cells} in {line}");
    }
}

#[test]
fn json_carries_the_summary_and_the_snapshot() {
    let snapshot = estate();
    let value: serde_json::Value =
        serde_json::from_str(&render(&snapshot, Format::Json, &options()))
            .expect("the JSON format is JSON");
    assert_eq!(value["summary"]["east_west_tls13_percent"], json!(66.7));
    assert_eq!(value["summary"]["legacy_paths_without_exception"], json!(2));
    assert_eq!(value["judged_at"], json!("2026-11-23T12:00:00Z"));
    assert_eq!(value["drift_since"], json!("2026-11-01T00:00:00Z"));
    assert_eq!(
        value["legacy_paths"][0]["exceptions"][0]["id"],
        json!("EXC-2026-014")
    );
    assert_eq!(value["exceptions"][0]["validity"], json!("expired"));
    assert_eq!(value["drift"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        value["snapshot"],
        serde_json::to_value(&snapshot).expect("snapshot serialises")
    );
}

#[test]
fn same_snapshot_in_any_order_gives_byte_identical_output() {
    let snapshot = estate();
    let mut shuffled = snapshot.clone();
    shuffled.services.reverse();
    shuffled.drift.reverse();
    for format in [Format::Html, Format::Markdown, Format::Json] {
        let first = render(&snapshot, format, &options());
        assert_eq!(first, render(&snapshot, format, &options()));
        if format != Format::Json {
            // JSON embeds the snapshot as given, so only the derived formats are order-free.
            assert_eq!(first, render(&shuffled, format, &options()), "{format:?}");
        }
    }
}

#[test]
fn drift_since_filters_events_and_none_keeps_all() {
    let snapshot = estate();
    let mut options = options();
    let ids = |options: &ReportOptions| -> Vec<String> {
        Report::new(&snapshot, options)
            .drift
            .iter()
            .map(|event| event.id.clone())
            .collect()
    };
    assert_eq!(
        ids(&options),
        vec!["negotiation_changed", "new_client_stack"]
    );
    options.drift_since = Some(datetime!(2026-11-20 11:00 UTC));
    assert_eq!(
        ids(&options),
        vec!["new_client_stack"],
        "the cut-off is inclusive"
    );
    options.drift_since = None;
    assert_eq!(
        ids(&options),
        vec!["cert_rotated", "negotiation_changed", "new_client_stack"]
    );
    assert_eq!(summary(&snapshot, &options).drift_events, 3);
}

#[test]
fn parse_time_accepts_rfc3339_and_dates_only() {
    assert_eq!(parse_time("2026-11-01"), Ok(datetime!(2026-11-01 0:00 UTC)));
    assert_eq!(
        parse_time("2026-11-01T10:30:00+02:00"),
        Ok(datetime!(2026-11-01 8:30 UTC))
    );
    assert_eq!(
        parse_time("last tuesday"),
        Err(ReportError::BadTime("last tuesday".to_string()))
    );
}

#[test]
fn format_names_parse_as_the_cli_spells_them() {
    assert_eq!("html".parse(), Ok(Format::Html));
    assert_eq!("MD".parse(), Ok(Format::Markdown));
    assert_eq!("markdown".parse(), Ok(Format::Markdown));
    assert_eq!("json".parse(), Ok(Format::Json));
    assert_eq!(
        "pdf".parse::<Format>(),
        Err(ReportError::UnknownFormat("pdf".to_string()))
    );
}

#[test]
fn exception_expiring_today_is_still_valid_for_that_day() {
    let mut options = options();
    options.now = datetime!(2027-03-31 23:59 UTC);
    let snapshot = estate();
    let report = Report::new(&snapshot, &options);
    let ledger = report
        .legacy_paths
        .iter()
        .find(|path| path.service_name == "ledger")
        .expect("ledger path");
    assert_eq!(ledger.exceptions[0].validity, Validity::ExpiresSoon);
    assert_eq!(ledger.exceptions[0].days_left, Some(0));
    options.now = datetime!(2027-04-01 0:00 UTC);
    let summary = summary(&estate(), &options);
    assert_eq!(
        (
            summary.legacy_paths_with_exception,
            summary.legacy_paths_without_exception
        ),
        (0, 3)
    );
}

#[test]
fn empty_inventory_renders_with_placeholders() {
    let empty = InventorySnapshot {
        services: Vec::new(),
        drift: Vec::new(),
        runs: Vec::new(),
    };
    let summary = summary(&empty, &options());
    assert_eq!(
        (summary.services, summary.east_west_tls13_percent),
        (0, None)
    );
    let document = Html::parse_document(&render(&empty, Format::Html, &options()));
    let card = select(&document, "dd[data-key=\"east_west_tls13_percent\"]");
    assert_eq!(text(&card[0]), "n/a0 of 0 internal sessions");
    assert_eq!(
        rows(&document, "legacy-paths"),
        vec![vec!["No service negotiated below TLS 1.3."]]
    );
    assert_eq!(select(&document, "svg.timeline rect.bar").len(), 0);
    let markdown = render(&empty, Format::Markdown, &options());
    assert!(markdown.contains("_No service negotiated below TLS 1.3._"));
}

#[test]
fn escaping_covers_markup_quotes_and_table_pipes() {
    assert_eq!(
        Escaped("<a href='x' title=\"y\">R&D</a>").to_string(),
        "&lt;a href=&#39;x&#39; title=&quot;y&quot;&gt;R&amp;D&lt;/a&gt;"
    );
    assert_eq!(
        markdown::cell("a|b <i>`c`</i>\nd [e](f)"),
        "a\\|b &lt;i&gt;\\`c\\`&lt;/i&gt; d \\[e\\](f)"
    );
}

/// Writes the demo report for the screenshot: `cargo test --lib report::tests::write_demo_report -- --ignored`.
#[test]
#[ignore = "writes target/report-demo.html for scripts/report-screenshot.sh --demo"]
fn write_demo_report() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/report-demo.html");
    std::fs::write(&path, render(&estate(), Format::Html, &options()))
        .expect("target/ is writable");
}

#[test]
fn timeline_stops_at_its_cap_and_says_how_many_it_left_out() {
    let mut snapshot = estate();
    let extra = svg::MAX_TIMELINE_CERTIFICATES + 2; // 3 certificates already
    for index in 0..extra {
        snapshot.services[2].certificates.push(certificate(
            &format!("{index:064X}"),
            &format!("CN=host{index}.internal"),
            "2026-01-01T00:00:00Z",
            "2027-09-01T00:00:00Z",
            1,
        ));
    }
    let document = Html::parse_document(&render(&snapshot, Format::Html, &options()));
    assert_eq!(
        select(&document, "svg.timeline rect.bar").len(),
        svg::MAX_TIMELINE_CERTIFICATES
    );
    let caption = text(&select(&document, "#certificates figcaption")[0]);
    assert!(
        caption.ends_with("5 more certificates, all later to expire, are in the table below."),
        "{caption}"
    );
    assert_eq!(
        rows(&document, "certificates-table").len(),
        svg::MAX_TIMELINE_CERTIFICATES + 5
    );
}
