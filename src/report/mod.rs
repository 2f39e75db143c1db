//! The audit report: one self-contained file (HTML, Markdown or JSON) made
//! from an [`crate::inventory::InventorySnapshot`]. Reads the inventory only.
//!
//! The report is evidence for an auditor, so it is deterministic: the same
//! snapshot and [`ReportOptions`] give a byte-identical file. Nothing inside
//! reads the wall clock; "expired" and "expires soon" are judged against
//! `options.now`, which the CLI sets to the time of the run and tests fix.
//! Every section is computed once here ([`Report`]) and the three formats
//! only lay it out, so HTML, Markdown and JSON always carry the same numbers.
//!
//! Certificate subjects, SNI, JA4 strings and stack names come from the wire
//! and are attacker-controlled: every format escapes them on the way out.

mod html;
mod markdown;
mod svg;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime};

use crate::inventory::{
    CertificateRow, ClientStackRow, DriftEvent, InvalidCertClient, InventorySnapshot, ServiceKey,
    ServiceRow,
};

/// Output format of [`render`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One HTML file with inline CSS and SVG; prints on A4.
    Html,
    /// GitHub-flavoured Markdown (no chart).
    Markdown,
    /// The summary, the derived sections and the snapshot, as pretty JSON.
    Json,
}

impl std::str::FromStr for Format {
    type Err = ReportError;

    /// `html`, `md` (or `markdown`), `json`: the values of `--format`.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.to_ascii_lowercase().as_str() {
            "html" => Ok(Self::Html),
            "md" | "markdown" => Ok(Self::Markdown),
            "json" => Ok(Self::Json),
            _ => Err(ReportError::UnknownFormat(name.to_string())),
        }
    }
}

/// Errors of this module: only the parsing of what the CLI passes in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("{0:?} is neither an RFC 3339 time nor a YYYY-MM-DD date")]
    BadTime(String),
    #[error("{0:?} is not a report format (html, md, json)")]
    UnknownFormat(String),
}

/// What the report is judged against and how it is labelled.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOptions {
    /// Printed as "generated at"; RFC 3339, set by the CLI. Never parsed.
    pub generated_at: String,
    /// The moment certificates and exceptions are judged against (expired,
    /// expires within `expiry_warning_days`). A value, not a clock read, so
    /// the report is reproducible.
    pub now: OffsetDateTime,
    /// Drift events at or after this moment are listed; `None` lists all.
    pub drift_since: Option<OffsetDateTime>,
    /// Width of the "expires soon" window, in days (the policy default is 30).
    pub expiry_warning_days: i64,
    pub title: String,
}

impl ReportOptions {
    /// Options with the default 30-day window and no drift cut-off.
    pub fn new(
        title: impl Into<String>,
        generated_at: impl Into<String>,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            generated_at: generated_at.into(),
            now,
            drift_since: None,
            expiry_warning_days: 30,
            title: title.into(),
        }
    }
}

/// Parses an RFC 3339 time or a `YYYY-MM-DD` date (midnight UTC), the two
/// forms `--drift-since` accepts.
pub fn parse_time(value: &str) -> Result<OffsetDateTime, ReportError> {
    let value = value.trim();
    if let Ok(time) = OffsetDateTime::parse(value, &Rfc3339) {
        return Ok(time);
    }
    parse_date(value)
        .map(|date| date.midnight().assume_utc())
        .ok_or_else(|| ReportError::BadTime(value.to_string()))
}

fn parse_date(value: &str) -> Option<Date> {
    Date::parse(value, format_description!("[year]-[month]-[day]")).ok()
}

/// The headline numbers, shared by every format and by the tests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportSummary {
    pub services: u64,
    /// Services with at least one TLS (or DTLS/QUIC) session.
    pub tls_services: u64,
    /// TLS sessions over all services.
    pub sessions: u64,
    pub plaintext_sessions: u64,
    /// TLS sessions of services whose direction is "internal".
    pub east_west_sessions: u64,
    /// Of those, sessions that negotiated TLS 1.3.
    pub east_west_tls13_sessions: u64,
    /// `east_west_tls13_sessions / east_west_sessions` in percent, one
    /// decimal; `None` without east-west TLS sessions.
    pub east_west_tls13_percent: Option<f64>,
    /// Services that carried at least one plaintext session.
    pub plaintext_services: u64,
    /// (service, version) pairs below TLS 1.3.
    pub legacy_paths: u64,
    /// Legacy paths covered by an exception that has not expired.
    pub legacy_paths_with_exception: u64,
    pub legacy_paths_without_exception: u64,
    /// Distinct server certificates (by SHA-256).
    pub certificates: u64,
    pub certificates_expired: u64,
    /// Not expired, but expiring within the warning window.
    pub certificates_expiring: u64,
    /// Distinct exceptions (by id).
    pub exceptions: u64,
    pub exceptions_expired: u64,
    pub exceptions_expiring: u64,
    /// Distinct (service, client address) pairs that accepted an invalid certificate.
    pub invalid_cert_clients: u64,
    /// Drift events at or after `drift_since` (all when it is unset).
    pub drift_events: u64,
    /// Findings per severity, highest first; always all five levels.
    pub findings_by_severity: Vec<SeverityCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeverityCount {
    pub severity: String,
    pub count: u64,
    /// How many of them an exception covered.
    pub excepted: u64,
}

/// The numbers of the report for this snapshot, judged at `options.now`.
pub fn summary(snapshot: &InventorySnapshot, options: &ReportOptions) -> ReportSummary {
    Report::new(snapshot, options).summary
}

/// Renders the whole report. The result is a complete file.
pub fn render(snapshot: &InventorySnapshot, format: Format, options: &ReportOptions) -> String {
    let report = Report::new(snapshot, options);
    match format {
        Format::Html => html::render(&report),
        Format::Markdown => markdown::render(&report),
        Format::Json => render_json(&report),
    }
}

fn render_json(report: &Report<'_>) -> String {
    #[derive(Serialize)]
    struct Document<'r> {
        title: &'r str,
        generated_at: &'r str,
        judged_at: String,
        drift_since: Option<String>,
        expiry_warning_days: i64,
        summary: &'r ReportSummary,
        legacy_paths: &'r [LegacyPath<'r>],
        exceptions: &'r [ExceptionEntry],
        certificates: &'r [CertificateEntry<'r>],
        findings: &'r [FindingTotal],
        drift: &'r [&'r DriftEvent],
        snapshot: &'r InventorySnapshot,
    }
    let options = report.options;
    let document = Document {
        title: &options.title,
        generated_at: &options.generated_at,
        judged_at: format_time(options.now),
        drift_since: options.drift_since.map(format_time),
        expiry_warning_days: options.expiry_warning_days,
        summary: &report.summary,
        legacy_paths: &report.legacy_paths,
        exceptions: &report.exceptions,
        certificates: &report.certificates,
        findings: &report.findings,
        drift: &report.drift,
        snapshot: report.snapshot,
    };
    let mut text = serde_json::to_string_pretty(&document)
        .expect("report values are plain strings, numbers and JSON values");
    text.push('\n');
    text
}

fn format_time(time: OffsetDateTime) -> String {
    time.format(&Rfc3339).unwrap_or_else(|_| time.to_string())
}

/// Finding ids that speak about the negotiated version: an exception that
/// allows one of them is the exception for a TLS 1.2-or-older path.
const VERSION_FINDINGS: &[&str] = &[
    "tls_below_baseline",
    "obsolete_version",
    "downgrade",
    "version_regression",
];

pub(crate) const SEVERITIES: [&str; 5] = ["critical", "high", "medium", "low", "info"];

fn severity_rank(severity: &str) -> usize {
    SEVERITIES
        .iter()
        .position(|level| level.eq_ignore_ascii_case(severity))
        .map_or(0, |index| SEVERITIES.len() - index)
}

/// Where a date stands against `now` and the warning window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Validity {
    Expired,
    ExpiresSoon,
    Valid,
    NotYetValid,
    /// The dates could not be parsed; shown, never judged.
    Unknown,
}

impl Validity {
    /// A text label, so meaning never rests on colour alone.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Expired => "EXPIRED",
            Self::ExpiresSoon => "EXPIRES SOON",
            Self::Valid => "VALID",
            Self::NotYetValid => "NOT YET VALID",
            Self::Unknown => "UNKNOWN",
        }
    }

    pub(crate) fn css_class(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::ExpiresSoon => "soon",
            Self::Valid => "valid",
            Self::NotYetValid => "future",
            Self::Unknown => "unknown",
        }
    }
}

/// A service's name for tables: the policy name, else ip:port and SNI.
pub(crate) fn service_label(service: &ServiceRow) -> String {
    match &service.name {
        Some(name) if !name.is_empty() => name.clone(),
        _ => endpoint(&service.key),
    }
}

pub(crate) fn endpoint(key: &ServiceKey) -> String {
    let address = if key.ip.contains(':') {
        format!("[{}]:{}", key.ip, key.port)
    } else {
        format!("{}:{}", key.ip, key.port)
    };
    if key.sni.is_empty() {
        address
    } else {
        format!("{address} ({})", key.sni)
    }
}

/// `YYYY-MM-DD` of an RFC 3339 string, or the string itself when it is not one.
pub(crate) fn short_date(value: &str) -> String {
    match OffsetDateTime::parse(value, &Rfc3339) {
        Ok(time) => time.date().to_string(),
        Err(_) => value.to_string(),
    }
}

/// Parses "1.2", "1.3", "1.0" into (major, minor).
fn version_number(version: &str) -> Option<(u8, u8)> {
    let (major, minor) = version.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn is_tls13_or_newer(protocol: &str, version: &str) -> bool {
    !protocol.eq_ignore_ascii_case("ssl") && version_number(version).is_some_and(|v| v >= (1, 3))
}

/// A negotiation below TLS 1.3: TLS/DTLS 1.2 and older, and any SSL.
fn is_legacy(protocol: &str, version: &str) -> bool {
    let protocol = protocol.to_ascii_lowercase();
    match protocol.as_str() {
        "ssl" => true,
        "tls" | "dtls" => version_number(version).is_some_and(|v| v < (1, 3)),
        _ => false,
    }
}

fn version_label(protocol: &str, version: &str) -> String {
    match protocol.to_ascii_lowercase().as_str() {
        "ssl" => format!("SSL {version}"),
        "dtls" => format!("DTLS {version}"),
        _ => format!("TLS {version}"),
    }
}

/// An exception as the report lists it, with its standing at `now`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ExceptionEntry {
    pub id: String,
    pub owner: String,
    pub expires: String,
    pub validity: Validity,
    /// Days from `now` to the expiry date (negative once past).
    pub days_left: Option<i64>,
    pub finding_ids: Vec<String>,
    /// Services whose findings it covered.
    pub services: Vec<String>,
    pub count: u64,
    pub last_seen: String,
}

/// A service's sessions at one version below TLS 1.3.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct LegacyPath<'a> {
    #[serde(skip)]
    pub service: &'a ServiceRow,
    pub service_name: String,
    pub endpoint: String,
    pub owner: Option<String>,
    pub direction: String,
    pub version: String,
    pub ciphers: Vec<String>,
    pub sessions: u64,
    pub last_seen: String,
    /// The service's exceptions that allow a version finding.
    pub exceptions: Vec<ExceptionEntry>,
}

impl LegacyPath<'_> {
    /// Covered by at least one exception that has not expired.
    pub(crate) fn has_current_exception(&self) -> bool {
        self.exceptions
            .iter()
            .any(|exception| exception.validity != Validity::Expired)
    }
}

/// A distinct server certificate and where it was seen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct CertificateEntry<'a> {
    pub certificate: &'a CertificateRow,
    pub services: Vec<String>,
    pub owners: Vec<String>,
    pub sessions: u64,
    pub validity: Validity,
    /// Days from `now` to notAfter (negative once expired).
    pub days_left: Option<i64>,
    #[serde(skip)]
    pub not_before: Option<OffsetDateTime>,
    #[serde(skip)]
    pub not_after: Option<OffsetDateTime>,
}

/// One finding id over the whole estate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct FindingTotal {
    pub id: String,
    pub severity: String,
    pub count: u64,
    pub excepted: u64,
    pub services: u64,
}

/// Every section of the report, computed once for all formats.
pub(crate) struct Report<'a> {
    pub snapshot: &'a InventorySnapshot,
    pub options: &'a ReportOptions,
    pub summary: ReportSummary,
    /// Sorted by endpoint.
    pub services: Vec<&'a ServiceRow>,
    pub legacy_paths: Vec<LegacyPath<'a>>,
    /// Expired first, then by expiry date.
    pub exceptions: Vec<ExceptionEntry>,
    /// By notAfter, soonest first.
    pub certificates: Vec<CertificateEntry<'a>>,
    pub plaintext: Vec<&'a ServiceRow>,
    pub clients: Vec<(&'a ServiceRow, &'a ClientStackRow)>,
    pub invalid_cert_clients: Vec<(&'a ServiceRow, &'a InvalidCertClient)>,
    /// At or after `drift_since`, by time.
    pub drift: Vec<&'a DriftEvent>,
    /// Highest severity first, then by count.
    pub findings: Vec<FindingTotal>,
}

impl<'a> Report<'a> {
    pub(crate) fn new(snapshot: &'a InventorySnapshot, options: &'a ReportOptions) -> Self {
        let mut services: Vec<&ServiceRow> = snapshot.services.iter().collect();
        services.sort_by(|a, b| a.key.cmp(&b.key));

        let exceptions = exception_entries(&services, options);
        let legacy_paths = legacy_paths(&services, &exceptions);
        let certificates = certificate_entries(&services, options);
        let plaintext: Vec<&ServiceRow> = services
            .iter()
            .copied()
            .filter(|service| service.plaintext_sessions > 0)
            .collect();

        let mut clients = Vec::new();
        let mut invalid_cert_clients = Vec::new();
        for &service in &services {
            let mut rows: Vec<&ClientStackRow> = service.clients.iter().collect();
            rows.sort_by(|a, b| {
                b.sessions
                    .cmp(&a.sessions)
                    .then_with(|| a.stack.cmp(&b.stack))
                    .then_with(|| a.ja4.cmp(&b.ja4))
            });
            clients.extend(rows.into_iter().map(|row| (service, row)));
            let mut rows: Vec<&InvalidCertClient> = service.invalid_cert_clients.iter().collect();
            rows.sort_by(|a, b| {
                a.client_ip
                    .cmp(&b.client_ip)
                    .then_with(|| a.stack.cmp(&b.stack))
            });
            invalid_cert_clients.extend(rows.into_iter().map(|row| (service, row)));
        }

        let mut drift: Vec<&DriftEvent> = snapshot
            .drift
            .iter()
            .filter(|event| match options.drift_since {
                None => true,
                // An event whose time cannot be read is shown rather than hidden.
                Some(since) => {
                    OffsetDateTime::parse(&event.time, &Rfc3339).map_or(true, |time| time >= since)
                }
            })
            .collect();
        drift.sort_by(|a, b| {
            let time = |event: &DriftEvent| OffsetDateTime::parse(&event.time, &Rfc3339).ok();
            time(a)
                .cmp(&time(b))
                .then_with(|| a.time.cmp(&b.time))
                .then_with(|| a.key.cmp(&b.key))
                .then_with(|| a.id.cmp(&b.id))
        });

        let findings = finding_totals(&services);

        let mut east_west_sessions = 0;
        let mut east_west_tls13_sessions = 0;
        let mut sessions = 0;
        let mut plaintext_sessions = 0;
        let mut tls_services = 0;
        for service in &services {
            sessions += service.sessions;
            plaintext_sessions += service.plaintext_sessions;
            if service.sessions > 0 {
                tls_services += 1;
            }
            if service.direction == "internal" {
                east_west_sessions += service.sessions;
                east_west_tls13_sessions += service
                    .negotiations
                    .iter()
                    .filter(|row| is_tls13_or_newer(&row.protocol, &row.version))
                    .map(|row| row.sessions)
                    .sum::<u64>();
            }
        }
        let east_west_tls13_percent = (east_west_sessions > 0).then(|| {
            let share = east_west_tls13_sessions as f64 * 100.0 / east_west_sessions as f64;
            (share * 10.0).round() / 10.0
        });

        let findings_by_severity = SEVERITIES
            .iter()
            .map(|&level| {
                let (count, excepted) = findings
                    .iter()
                    .filter(|total| total.severity == level)
                    .fold((0, 0), |(count, excepted), total| {
                        (count + total.count, excepted + total.excepted)
                    });
                SeverityCount {
                    severity: level.to_string(),
                    count,
                    excepted,
                }
            })
            .collect();

        let invalid_cert_clients_distinct: BTreeSet<(&ServiceKey, &str)> = invalid_cert_clients
            .iter()
            .map(|(service, client)| (&service.key, client.client_ip.as_str()))
            .collect();
        let legacy_with = legacy_paths
            .iter()
            .filter(|path| path.has_current_exception())
            .count() as u64;
        let count_validity = |validity: Validity, entries: &mut dyn Iterator<Item = Validity>| {
            entries.filter(|&entry| entry == validity).count() as u64
        };

        let summary = ReportSummary {
            services: services.len() as u64,
            tls_services,
            sessions,
            plaintext_sessions,
            east_west_sessions,
            east_west_tls13_sessions,
            east_west_tls13_percent,
            plaintext_services: plaintext.len() as u64,
            legacy_paths: legacy_paths.len() as u64,
            legacy_paths_with_exception: legacy_with,
            legacy_paths_without_exception: legacy_paths.len() as u64 - legacy_with,
            certificates: certificates.len() as u64,
            certificates_expired: count_validity(
                Validity::Expired,
                &mut certificates.iter().map(|c| c.validity),
            ),
            certificates_expiring: count_validity(
                Validity::ExpiresSoon,
                &mut certificates.iter().map(|c| c.validity),
            ),
            exceptions: exceptions.len() as u64,
            exceptions_expired: count_validity(
                Validity::Expired,
                &mut exceptions.iter().map(|e| e.validity),
            ),
            exceptions_expiring: count_validity(
                Validity::ExpiresSoon,
                &mut exceptions.iter().map(|e| e.validity),
            ),
            invalid_cert_clients: invalid_cert_clients_distinct.len() as u64,
            drift_events: drift.len() as u64,
            findings_by_severity,
        };

        Self {
            snapshot,
            options,
            summary,
            services,
            legacy_paths,
            exceptions,
            certificates,
            plaintext,
            clients,
            invalid_cert_clients,
            drift,
            findings,
        }
    }
}

fn exception_entries(services: &[&ServiceRow], options: &ReportOptions) -> Vec<ExceptionEntry> {
    let today = options.now.date();
    let mut by_id: BTreeMap<&str, ExceptionEntry> = BTreeMap::new();
    for service in services {
        for exception in &service.exceptions {
            let entry = by_id.entry(exception.id.as_str()).or_insert_with(|| {
                let expires = parse_date(&exception.expires);
                let days_left = expires.map(|date| (date - today).whole_days());
                let validity = match days_left {
                    None => Validity::Unknown,
                    // The expiry date is inclusive: the exception covers that whole day.
                    Some(days) if days < 0 => Validity::Expired,
                    Some(days) if days <= options.expiry_warning_days => Validity::ExpiresSoon,
                    Some(_) => Validity::Valid,
                };
                ExceptionEntry {
                    id: exception.id.clone(),
                    owner: exception.owner.clone(),
                    expires: exception.expires.clone(),
                    validity,
                    days_left,
                    finding_ids: Vec::new(),
                    services: Vec::new(),
                    count: 0,
                    last_seen: String::new(),
                }
            });
            for id in &exception.finding_ids {
                if !entry.finding_ids.contains(id) {
                    entry.finding_ids.push(id.clone());
                }
            }
            let label = service_label(service);
            if !entry.services.contains(&label) {
                entry.services.push(label);
            }
            entry.count += exception.count;
            if exception.last_seen > entry.last_seen {
                entry.last_seen = exception.last_seen.clone();
            }
        }
    }
    let mut entries: Vec<ExceptionEntry> = by_id.into_values().collect();
    for entry in &mut entries {
        entry.finding_ids.sort();
        entry.services.sort();
    }
    entries.sort_by(|a, b| {
        let rank = |entry: &ExceptionEntry| match entry.validity {
            Validity::Expired => 0,
            Validity::ExpiresSoon => 1,
            _ => 2,
        };
        rank(a)
            .cmp(&rank(b))
            .then_with(|| a.expires.cmp(&b.expires))
            .then_with(|| a.id.cmp(&b.id))
    });
    entries
}

fn legacy_paths<'a>(
    services: &[&'a ServiceRow],
    exceptions: &[ExceptionEntry],
) -> Vec<LegacyPath<'a>> {
    let mut paths = Vec::new();
    for &service in services {
        // Group the service's legacy negotiations by version.
        let mut by_version: BTreeMap<String, (Vec<String>, u64, String)> = BTreeMap::new();
        for row in &service.negotiations {
            if !is_legacy(&row.protocol, &row.version) {
                continue;
            }
            let entry = by_version
                .entry(version_label(&row.protocol, &row.version))
                .or_default();
            if !entry.0.contains(&row.cipher) {
                entry.0.push(row.cipher.clone());
            }
            entry.1 += row.sessions;
            if row.last_seen > entry.2 {
                entry.2 = row.last_seen.clone();
            }
        }
        if by_version.is_empty() {
            continue;
        }
        let service_exceptions: Vec<ExceptionEntry> = service
            .exceptions
            .iter()
            .filter(|exception| {
                exception
                    .finding_ids
                    .iter()
                    .any(|id| VERSION_FINDINGS.contains(&id.as_str()))
            })
            .filter_map(|exception| exceptions.iter().find(|entry| entry.id == exception.id))
            .cloned()
            .collect();
        // Newest version first (TLS 1.2 before TLS 1.0).
        for (version, (mut ciphers, sessions, last_seen)) in by_version.into_iter().rev() {
            ciphers.sort();
            paths.push(LegacyPath {
                service,
                service_name: service_label(service),
                endpoint: endpoint(&service.key),
                owner: service.owner.clone(),
                direction: service.direction.clone(),
                version,
                ciphers,
                sessions,
                last_seen,
                exceptions: service_exceptions.clone(),
            });
        }
    }
    paths
}

fn certificate_entries<'a>(
    services: &[&'a ServiceRow],
    options: &ReportOptions,
) -> Vec<CertificateEntry<'a>> {
    let mut by_hash: BTreeMap<&str, CertificateEntry<'a>> = BTreeMap::new();
    let warning = Duration::days(options.expiry_warning_days);
    for service in services {
        for certificate in &service.certificates {
            let entry = by_hash
                .entry(certificate.sha256.as_str())
                .or_insert_with(|| {
                    let not_before = OffsetDateTime::parse(&certificate.not_before, &Rfc3339).ok();
                    let not_after = OffsetDateTime::parse(&certificate.not_after, &Rfc3339).ok();
                    let validity = match (not_before, not_after) {
                        (_, Some(after)) if after < options.now => Validity::Expired,
                        (Some(before), Some(_)) if before > options.now => Validity::NotYetValid,
                        (_, Some(after)) if after <= options.now + warning => Validity::ExpiresSoon,
                        (Some(_), Some(_)) => Validity::Valid,
                        _ => Validity::Unknown,
                    };
                    CertificateEntry {
                        certificate,
                        services: Vec::new(),
                        owners: Vec::new(),
                        sessions: 0,
                        validity,
                        days_left: not_after.map(|after| (after - options.now).whole_days()),
                        not_before,
                        not_after,
                    }
                });
            let label = service_label(service);
            if !entry.services.contains(&label) {
                entry.services.push(label);
            }
            if let Some(owner) = &service.owner {
                if !entry.owners.contains(owner) {
                    entry.owners.push(owner.clone());
                }
            }
            entry.sessions += certificate.sessions;
        }
    }
    let mut entries: Vec<CertificateEntry<'a>> = by_hash.into_values().collect();
    for entry in &mut entries {
        entry.services.sort();
        entry.owners.sort();
    }
    entries.sort_by(|a, b| {
        a.not_after
            .cmp(&b.not_after)
            .then_with(|| a.certificate.subject.cmp(&b.certificate.subject))
            .then_with(|| a.certificate.sha256.cmp(&b.certificate.sha256))
    });
    entries
}

fn finding_totals(services: &[&ServiceRow]) -> Vec<FindingTotal> {
    let mut by_id: BTreeMap<&str, FindingTotal> = BTreeMap::new();
    for service in services {
        for finding in &service.findings {
            let total = by_id
                .entry(finding.id.as_str())
                .or_insert_with(|| FindingTotal {
                    id: finding.id.clone(),
                    severity: finding.severity.to_ascii_lowercase(),
                    count: 0,
                    excepted: 0,
                    services: 0,
                });
            if severity_rank(&finding.severity) > severity_rank(&total.severity) {
                total.severity = finding.severity.to_ascii_lowercase();
            }
            total.count += finding.count;
            total.excepted += finding.excepted;
            total.services += 1;
        }
    }
    let mut totals: Vec<FindingTotal> = by_id.into_values().collect();
    totals.sort_by(|a, b| {
        severity_rank(&b.severity)
            .cmp(&severity_rank(&a.severity))
            .then_with(|| b.count.cmp(&a.count))
            .then_with(|| a.id.cmp(&b.id))
    });
    totals
}

/// `Display` that writes its text escaped for HTML and SVG (text and
/// attribute values alike).
pub(crate) struct Escaped<'s>(pub &'s str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(position) = rest.find(['&', '<', '>', '"', '\'']) {
            formatter.write_str(&rest[..position])?;
            let replacement = match rest.as_bytes()[position] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            };
            formatter.write_str(replacement)?;
            rest = &rest[position + 1..];
        }
        formatter.write_str(rest)
    }
}

/// A percentage as the report prints it: "66.7%", or "n/a".
pub(crate) fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_string(), |value| format!("{value:.1}%"))
}

/// "in 9 days", "3 days ago", "today".
pub(crate) fn relative_days(days: i64) -> String {
    match days {
        0 => "today".to_string(),
        1 => "in 1 day".to_string(),
        -1 => "1 day ago".to_string(),
        days if days > 0 => format!("in {days} days"),
        days => format!("{} days ago", -days),
    }
}

#[cfg(test)]
mod tests;
