//! The HTML report: one file, inline CSS and SVG, no script and no external
//! reference of any kind (an auditor may open it offline, and a report that
//! fetched something would leak that it was opened). Prints on A4 with one
//! section per page; every table has a caption and header cells, and every
//! status or severity is written as text, not only coloured.

use std::fmt::Write as _;

use super::{percent, relative_days, short_date, svg, Escaped, Report, Validity, SEVERITIES};

const STYLE: &str = r#"
:root { --ink:#1d2430; --muted:#5b6575; --rule:#d5dae1; --band:#f4f6f8; --accent:#1f3a5f; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 13px/1.45 "Segoe UI", "Helvetica Neue", Arial, "Liberation Sans", sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 36px 48px; }
header.cover { border-bottom: 3px solid var(--accent); padding-bottom: 12px; margin-bottom: 18px; }
header.cover .kicker { text-transform: uppercase; letter-spacing: .12em; font-size: 11px; color: var(--muted); margin: 0; }
h1 { font-size: 24px; margin: 2px 0 8px; color: var(--accent); }
h2 { font-size: 17px; margin: 0 0 4px; color: var(--accent); border-bottom: 1px solid var(--rule); padding-bottom: 4px; }
h2 .number { color: var(--muted); font-weight: 400; margin-right: 6px; }
section { margin: 26px 0 0; }
section > p.lead { margin: 4px 0 10px; color: var(--muted); max-width: 80ch; }
dl.meta { display: grid; grid-template-columns: repeat(4, auto); gap: 2px 18px; margin: 0; font-size: 12px; justify-content: start; }
dl.meta dt { color: var(--muted); } dl.meta dd { margin: 0; font-weight: 600; }
dl.meta div { display: contents; }
.kpis { display: grid; grid-template-columns: repeat(5, 1fr); gap: 10px; margin: 10px 0 14px; }
.kpi { border: 1px solid var(--rule); border-left: 4px solid var(--accent); padding: 8px 10px; background: #fff; break-inside: avoid; }
.kpi.alert { border-left-color: #b42318; } .kpi.warn { border-left-color: #c4540a; } .kpi.ok { border-left-color: #2e7d5b; }
.kpi dt { font-size: 11px; color: var(--muted); text-transform: uppercase; letter-spacing: .05em; }
.kpi dd { margin: 2px 0 0; font-size: 22px; font-weight: 700; font-variant-numeric: tabular-nums; }
.kpi .detail { display: block; font-size: 11px; color: var(--muted); font-weight: 400; }
table.compact { width: auto; min-width: 55%; }
table { width: 100%; border-collapse: collapse; margin: 6px 0 4px; font-size: 12px; }
caption { caption-side: top; text-align: left; font-weight: 600; color: var(--ink); padding: 4px 0 6px; }
th, td { border-bottom: 1px solid var(--rule); padding: 4px 7px; text-align: left; vertical-align: top; }
thead th { background: var(--accent); color: #fff; font-weight: 600; border-bottom: 0; white-space: nowrap; }
tbody tr:nth-child(even) { background: var(--band); }
tbody th { font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.mono, .mono { font-family: "DejaVu Sans Mono", Consolas, "Liberation Mono", monospace; font-size: .9em; overflow-wrap: anywhere; }
td.hash { white-space: nowrap; }
td.sans { min-width: 14ch; }
td.nowrap { white-space: nowrap; }
.muted { color: var(--muted); }
.none { color: var(--muted); font-style: italic; }
.tag { display: inline-block; padding: 0 5px; border-radius: 3px; font-size: .82em; font-weight: 700; letter-spacing: .03em;
  border: 1px solid currentColor; white-space: nowrap; }
.sev-critical { color: #fff; background: #7a0019; border-color: #7a0019; }
.sev-high { color: #fff; background: #b42318; border-color: #b42318; }
.sev-medium { color: #fff; background: #c4540a; border-color: #c4540a; }
.sev-low { color: #1f3a5f; background: #dbe6f3; border-color: #9db3cf; }
.sev-info { color: #4a5565; background: #eef0f3; border-color: #c3c9d2; }
.st-expired { color: #b42318; } .st-soon { color: #c4540a; } .st-valid { color: #2e7d5b; }
.st-future { color: #5a4a8a; } .st-unknown { color: var(--muted); }
.st-none { color: #b42318; }
ul.plain { margin: 0; padding: 0; list-style: none; }
figure { margin: 8px 0 14px; border: 1px solid var(--rule); padding: 8px 8px 4px; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { font-size: 11px; color: var(--muted); padding-top: 4px; }
footer { margin-top: 30px; border-top: 1px solid var(--rule); padding-top: 8px; font-size: 11px; color: var(--muted); }
nav.toc ol { columns: 2; margin: 4px 0 0; padding-left: 20px; font-size: 12px; }
nav.toc a { color: var(--accent); text-decoration: none; }
@page { size: A4; margin: 14mm 12mm 16mm; }
@media print {
  body { font-size: 10.5px; }
  main { max-width: none; padding: 0; }
  section { break-before: page; margin-top: 0; }
  section.first { break-before: auto; }
  table { font-size: 9.5px; }
  thead { display: table-header-group; }
  tr, figure, .kpi { break-inside: avoid; }
  h2 { break-after: avoid; }
  nav.toc { display: none; }
  .kpi dd { font-size: 17px; }
  .kpi dt { font-size: 8px; letter-spacing: .02em; }
  .kpi .detail { font-size: 8.5px; }
  h1 { font-size: 20px; }
}
"#;

/// Writes to the `String` buffer; `fmt::Write` for `String` cannot fail.
macro_rules! out {
    ($buffer:expr, $($argument:tt)*) => {{ let _ = write!($buffer, $($argument)*); }};
}

pub(crate) fn render(report: &Report<'_>) -> String {
    let options = report.options;
    let summary = &report.summary;
    let mut html = String::with_capacity(64 * 1024);
    out!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"tlstap report\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        Escaped(&options.title)
    );

    out!(
        html,
        "<header class=\"cover\">\n<p class=\"kicker\">TLS estate audit report</p>\n<h1>{}</h1>\n<dl class=\"meta\">",
        Escaped(&options.title)
    );
    let drift_since = options
        .drift_since
        .map_or_else(|| "all recorded".to_string(), super::format_time);
    let runs = &report.snapshot.runs;
    let evidence = match (
        runs.iter().map(|run| &run.started).min(),
        runs.iter().map(|run| &run.started).max(),
    ) {
        (Some(first), Some(last)) => format!(
            "{}, {} to {}",
            plural(runs.len() as u64, "run"),
            short_date(first),
            short_date(last)
        ),
        _ => "no runs recorded".to_string(),
    };
    for (term, value) in [
        ("Generated", options.generated_at.clone()),
        ("Judged at", super::format_time(options.now)),
        (
            "Expiry warning",
            format!("{} days", options.expiry_warning_days),
        ),
        ("Drift since", drift_since),
        ("Evidence", evidence),
        ("Services", summary.services.to_string()),
    ] {
        out!(
            html,
            "<div><dt>{term}</dt><dd>{}</dd></div>",
            Escaped(&value)
        );
    }
    html.push_str("</dl>\n</header>\n");

    // Summary.
    html.push_str("<section id=\"summary\" class=\"first\">\n<h2><span class=\"number\">1</span>Summary</h2>\n");
    html.push_str(
        "<p class=\"lead\">Key figures from the passive inventory. East-west means services whose direction is \
         <em>internal</em>; a legacy path is a service negotiating below TLS 1.3.</p>\n<dl class=\"kpis\">",
    );
    let kpi = |html: &mut String,
               key: &str,
               class: &str,
               term: &str,
               value: String,
               detail: String| {
        out!(
            html,
            "<div class=\"kpi {class}\"><dt>{term}</dt><dd data-key=\"{key}\"><span class=\"value\">{}</span>\
             <span class=\"detail\">{}</span></dd></div>",
            Escaped(&value),
            Escaped(&detail)
        );
    };
    let flag = |bad: bool, class: &'static str| if bad { class } else { "ok" };
    kpi(
        &mut html,
        "services",
        "",
        "Services",
        summary.services.to_string(),
        format!("{} with TLS sessions", summary.tls_services),
    );
    kpi(
        &mut html,
        "sessions",
        "",
        "TLS sessions",
        summary.sessions.to_string(),
        format!("{} plaintext sessions", summary.plaintext_sessions),
    );
    kpi(
        &mut html,
        "east_west_tls13_percent",
        flag(
            summary
                .east_west_tls13_percent
                .is_some_and(|share| share < 100.0),
            "warn",
        ),
        "East-west on TLS 1.3",
        percent(summary.east_west_tls13_percent),
        format!(
            "{} of {} internal sessions",
            summary.east_west_tls13_sessions, summary.east_west_sessions
        ),
    );
    kpi(
        &mut html,
        "plaintext_services",
        flag(summary.plaintext_services > 0, "alert"),
        "Plaintext services",
        summary.plaintext_services.to_string(),
        format!("{} plaintext sessions", summary.plaintext_sessions),
    );
    kpi(
        &mut html,
        "legacy_paths",
        flag(summary.legacy_paths_without_exception > 0, "alert"),
        "Paths below TLS 1.3",
        summary.legacy_paths.to_string(),
        format!(
            "{} with exception, {} without",
            summary.legacy_paths_with_exception, summary.legacy_paths_without_exception
        ),
    );
    kpi(
        &mut html,
        "certificates_expired",
        flag(summary.certificates_expired > 0, "alert"),
        "Certificates expired",
        summary.certificates_expired.to_string(),
        format!("of {} in total", summary.certificates),
    );
    kpi(
        &mut html,
        "certificates_expiring",
        flag(summary.certificates_expiring > 0, "warn"),
        "Certificates expiring",
        summary.certificates_expiring.to_string(),
        format!("within {} days", options.expiry_warning_days),
    );
    kpi(
        &mut html,
        "exceptions_expired",
        flag(summary.exceptions_expired > 0, "alert"),
        "Exceptions expired",
        summary.exceptions_expired.to_string(),
        format!(
            "{} expiring soon, {} in total",
            summary.exceptions_expiring, summary.exceptions
        ),
    );
    kpi(
        &mut html,
        "invalid_cert_clients",
        flag(summary.invalid_cert_clients > 0, "alert"),
        "Clients accepting invalid certs",
        summary.invalid_cert_clients.to_string(),
        "handshakes completed despite invalid certificate".to_string(),
    );
    kpi(
        &mut html,
        "drift_events",
        "",
        "Drift events",
        summary.drift_events.to_string(),
        options.drift_since.map_or_else(
            || "over the whole inventory".to_string(),
            |since| format!("since {}", since.date()),
        ),
    );
    html.push_str("</dl>\n");

    html.push_str(
        "<table id=\"severity-summary\" class=\"compact\">\n<caption>Findings by severity (sessions × finding)</caption>\n\
         <thead><tr><th scope=\"col\">Severity</th><th scope=\"col\" class=\"num\">Findings</th>\
         <th scope=\"col\" class=\"num\">Covered by exception</th><th scope=\"col\" class=\"num\">Open</th></tr></thead>\n<tbody>\n",
    );
    for count in &summary.findings_by_severity {
        out!(
            html,
            "<tr data-severity=\"{0}\"><th scope=\"row\">{1}</th><td class=\"num\">{2}</td><td class=\"num\">{3}</td><td class=\"num\">{4}</td></tr>\n",
            Escaped(&count.severity),
            severity_tag(&count.severity),
            count.count,
            count.excepted,
            count.count.saturating_sub(count.excepted)
        );
    }
    html.push_str("</tbody>\n</table>\n");

    html.push_str("<nav class=\"toc\" aria-label=\"Contents\"><ol>");
    for (id, title) in SECTIONS {
        out!(html, "<li><a href=\"#{id}\">{title}</a></li>");
    }
    html.push_str("</ol></nav>\n</section>\n");

    legacy_section(&mut html, report);
    exceptions_section(&mut html, report);
    certificates_section(&mut html, report);
    plaintext_section(&mut html, report);
    clients_section(&mut html, report);
    invalid_cert_section(&mut html, report);
    drift_section(&mut html, report);
    findings_section(&mut html, report);
    services_section(&mut html, report);

    out!(
        html,
        "<footer>Generated by tlstap from a passive inventory ({} services, {} TLS sessions). \
         Judged at {}. Same inventory and options give a byte-identical report.</footer>\n</main>\n</body>\n</html>\n",
        summary.services,
        summary.sessions,
        Escaped(&super::format_time(options.now))
    );
    html
}

const SECTIONS: [(&str, &str); 10] = [
    ("summary", "Summary"),
    ("legacy", "Paths below TLS 1.3"),
    ("exceptions", "Exceptions"),
    ("certificates", "Certificates"),
    ("plaintext", "Plaintext services"),
    ("clients", "Client TLS stacks"),
    ("invalid-cert", "Clients accepting invalid certificates"),
    ("drift", "Drift"),
    ("findings", "Findings"),
    ("services", "Service inventory"),
];

fn section_start(html: &mut String, id: &str, lead: &str) {
    let (number, title) = SECTIONS
        .iter()
        .enumerate()
        .find(|(_, (section, _))| *section == id)
        .map_or((0, id), |(index, (_, title))| (index + 1, *title));
    out!(
        html,
        "<section id=\"{id}\">\n<h2><span class=\"number\">{number}</span>{title}</h2>\n<p class=\"lead\">{lead}</p>\n"
    );
}

fn table_start(html: &mut String, id: &str, caption: &str, headers: &[&str]) {
    out!(
        html,
        "<table id=\"{id}\">\n<caption>{}</caption>\n<thead><tr>",
        Escaped(caption)
    );
    for header in headers {
        // A leading '#' marks a numeric column.
        match header.strip_prefix('#') {
            Some(name) => out!(html, "<th scope=\"col\" class=\"num\">{name}</th>"),
            None => out!(html, "<th scope=\"col\">{header}</th>"),
        }
    }
    html.push_str("</tr></thead>\n<tbody>\n");
}

fn empty_row(html: &mut String, columns: usize, text: &str) {
    out!(
        html,
        "<tr><td colspan=\"{columns}\" class=\"none\">{text}</td></tr>\n"
    );
}

fn severity_tag(severity: &str) -> String {
    let lower = severity.to_ascii_lowercase();
    let class = if SEVERITIES.contains(&lower.as_str()) {
        lower.as_str()
    } else {
        "info"
    };
    format!(
        "<span class=\"tag sev-{class}\">{}</span>",
        Escaped(&lower.to_ascii_uppercase())
    )
}

fn validity_tag(validity: Validity, days_left: Option<i64>) -> String {
    let detail = match (validity, days_left) {
        (Validity::Expired | Validity::ExpiresSoon, Some(days)) => {
            format!(" <span class=\"muted\">{}</span>", relative_days(days))
        }
        _ => String::new(),
    };
    format!(
        "<span class=\"tag st-{}\">{}</span>{detail}",
        validity.css_class(),
        validity.label()
    )
}

fn optional(value: Option<&String>) -> String {
    match value {
        Some(value) if !value.is_empty() => Escaped(value).to_string(),
        _ => "<span class=\"none\">—</span>".to_string(),
    }
}

fn legacy_section(html: &mut String, report: &Report<'_>) {
    let summary = &report.summary;
    section_start(
        html,
        "legacy",
        &format!(
            "Every service that negotiated TLS 1.2 or older, with the exception that allows it (an exception whose \
             findings include a version finding) or <strong>no exception</strong>. {} paths: {} with a current exception, {} without.",
            summary.legacy_paths, summary.legacy_paths_with_exception, summary.legacy_paths_without_exception
        ),
    );
    table_start(
        html,
        "legacy-paths",
        "TLS 1.2-or-older paths and their exceptions",
        &[
            "Service",
            "Endpoint",
            "Owner",
            "Direction",
            "Version",
            "Ciphers",
            "#Sessions",
            "Last seen",
            "Exception",
        ],
    );
    if report.legacy_paths.is_empty() {
        empty_row(html, 9, "No service negotiated below TLS 1.3.");
    }
    for path in &report.legacy_paths {
        out!(
            html,
            "<tr><th scope=\"row\">{}</th><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td class=\"nowrap\">{}</td>\
             <td class=\"mono\">{}</td><td class=\"num\">{}</td><td class=\"nowrap\">{}</td><td class=\"exception\">",
            Escaped(&path.service_name),
            Escaped(&path.endpoint),
            optional(path.owner.as_ref()),
            Escaped(&path.direction),
            Escaped(&path.version),
            path.ciphers.iter().map(|cipher| Escaped(cipher).to_string()).collect::<Vec<_>>().join("<br>"),
            path.sessions,
            Escaped(&short_date(&path.last_seen))
        );
        if path.exceptions.is_empty() {
            html.push_str("<span class=\"tag st-none\">NO EXCEPTION</span>");
        } else {
            html.push_str("<ul class=\"plain\">");
            for exception in &path.exceptions {
                out!(
                    html,
                    "<li><span class=\"exception-id mono\">{}</span> · <span class=\"exception-owner\">{}</span> · \
                     until <span class=\"exception-expires\">{}</span> {}</li>",
                    Escaped(&exception.id),
                    Escaped(&exception.owner),
                    Escaped(&exception.expires),
                    validity_tag(exception.validity, exception.days_left)
                );
            }
            html.push_str("</ul>");
        }
        html.push_str("</td></tr>\n");
    }
    html.push_str("</tbody>\n</table>\n</section>\n");
}

fn exceptions_section(html: &mut String, report: &Report<'_>) {
    let summary = &report.summary;
    section_start(
        html,
        "exceptions",
        &format!(
            "Policy exceptions that covered findings, expired and soon-expiring first. {} exceptions: {} expired, \
             {} expiring within {} days. Expiry dates are inclusive.",
            summary.exceptions, summary.exceptions_expired, summary.exceptions_expiring, report.options.expiry_warning_days
        ),
    );
    table_start(
        html,
        "exceptions-table",
        "Exceptions by status and expiry",
        &[
            "Status",
            "Exception",
            "Owner",
            "Expires",
            "Allows",
            "Services",
            "#Findings covered",
            "Last used",
        ],
    );
    if report.exceptions.is_empty() {
        empty_row(html, 8, "No exception covered a finding.");
    }
    for exception in &report.exceptions {
        out!(
            html,
            "<tr data-validity=\"{}\"><td>{}</td><th scope=\"row\" class=\"mono\">{}</th><td>{}</td><td class=\"nowrap\">{}</td>\
             <td class=\"mono\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"nowrap\">{}</td></tr>\n",
            exception.validity.css_class(),
            validity_tag(exception.validity, exception.days_left),
            Escaped(&exception.id),
            Escaped(&exception.owner),
            Escaped(&exception.expires),
            Escaped(&exception.finding_ids.join(", ")),
            Escaped(&exception.services.join(", ")),
            exception.count,
            Escaped(&short_date(&exception.last_seen))
        );
    }
    html.push_str("</tbody>\n</table>\n</section>\n");
}

fn certificates_section(html: &mut String, report: &Report<'_>) {
    let summary = &report.summary;
    section_start(
        html,
        "certificates",
        &format!(
            "{} distinct server certificates: {} expired, {} expiring within {} days. Status is judged at the report \
             date, not at handshake time.",
            summary.certificates, summary.certificates_expired, summary.certificates_expiring, report.options.expiry_warning_days
        ),
    );
    out!(
        html,
        "<figure>{}<figcaption>Validity of each server certificate (notBefore → notAfter). Dashed line: report date; \
         shaded band: {}-day warning window; ‹ › mark bars cut at the axis limits.{}</figcaption></figure>\n",
        svg::timeline(report),
        report.options.expiry_warning_days,
        match report.certificates.len().saturating_sub(svg::MAX_TIMELINE_CERTIFICATES) {
            0 => String::new(),
            1 => " 1 more certificate, later to expire, is in the table below.".to_string(),
            more => format!(" {more} more certificates, all later to expire, are in the table below."),
        }
    );
    table_start(
        html,
        "certificates-table",
        "Certificate inventory with owners",
        &[
            "Status",
            "Subject",
            "Issuer",
            "SANs",
            "Not before",
            "Not after",
            "Services",
            "Owners",
            "#Sessions",
            "SHA-256",
        ],
    );
    if report.certificates.is_empty() {
        empty_row(html, 10, "No server certificate was observed.");
    }
    for entry in &report.certificates {
        let certificate = entry.certificate;
        out!(
            html,
            "<tr data-validity=\"{}\"><td>{}</td><th scope=\"row\" class=\"subject\">{}</th><td>{}</td><td class=\"mono sans\">{}</td>\
             <td class=\"nowrap\">{}</td><td class=\"nowrap\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td>\
             <td class=\"mono hash\" title=\"{}\">{}…</td></tr>\n",
            entry.validity.css_class(),
            validity_tag(entry.validity, entry.days_left),
            Escaped(&certificate.subject),
            Escaped(&certificate.issuer),
            Escaped(&certificate.sans.join(", ")),
            Escaped(&short_date(&certificate.not_before)),
            Escaped(&short_date(&certificate.not_after)),
            Escaped(&entry.services.join(", ")),
            if entry.owners.is_empty() {
                "<span class=\"none\">no owner</span>".to_string()
            } else {
                Escaped(&entry.owners.join(", ")).to_string()
            },
            entry.sessions,
            Escaped(&certificate.sha256),
            Escaped(&certificate.sha256.chars().take(12).collect::<String>())
        );
    }
    html.push_str("</tbody>\n</table>\n</section>\n");
}

fn plaintext_section(html: &mut String, report: &Report<'_>) {
    section_start(
        html,
        "plaintext",
        &format!(
            "{} carried unencrypted sessions ({}).",
            plural(report.summary.plaintext_services, "service"),
            plural(report.summary.plaintext_sessions, "session")
        ),
    );
    table_start(
        html,
        "plaintext-table",
        "Services with plaintext sessions",
        &[
            "Service",
            "Endpoint",
            "Owner",
            "Direction",
            "Protocol",
            "#Plaintext sessions",
            "#TLS sessions",
            "Findings",
            "Last seen",
        ],
    );
    if report.plaintext.is_empty() {
        empty_row(html, 9, "No plaintext session was recorded.");
    }
    for service in &report.plaintext {
        let findings = service
            .findings
            .iter()
            .map(|finding| {
                format!(
                    "{} {}",
                    severity_tag(&finding.severity),
                    Escaped(&finding.id)
                )
            })
            .collect::<Vec<_>>()
            .join("<br>");
        out!(
            html,
            "<tr><th scope=\"row\">{}</th><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td>{}</td><td class=\"nowrap\">{}</td></tr>\n",
            Escaped(&super::service_label(service)),
            Escaped(&super::endpoint(&service.key)),
            optional(service.owner.as_ref()),
            Escaped(&service.direction),
            Escaped(&service.protocol),
            service.plaintext_sessions,
            service.sessions,
            findings,
            Escaped(&short_date(&service.last_seen))
        );
    }
    html.push_str("</tbody>\n</table>\n</section>\n");
}

fn clients_section(html: &mut String, report: &Report<'_>) {
    section_start(
        html,
        "clients",
        "Client TLS stacks per service, identified by JA4 and the policy's stack catalogue.",
    );
    table_start(
        html,
        "clients-table",
        "Client TLS stacks per service",
        &[
            "Service",
            "Stack",
            "JA4",
            "#Sessions",
            "#Clients",
            "First seen",
            "Last seen",
        ],
    );
    if report.clients.is_empty() {
        empty_row(html, 7, "No client stack was recorded.");
    }
    for (service, client) in &report.clients {
        out!(
            html,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td class=\"mono\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"nowrap\">{}</td><td class=\"nowrap\">{}</td></tr>\n",
            Escaped(&super::service_label(service)),
            Escaped(&client.stack),
            Escaped(&client.ja4),
            client.sessions,
            client.distinct_clients,
            Escaped(&short_date(&client.first_seen)),
            Escaped(&short_date(&client.last_seen))
        );
    }
    html.push_str("</tbody>\n</table>\n</section>\n");
}

fn invalid_cert_section(html: &mut String, report: &Report<'_>) {
    section_start(
        html,
        "invalid-cert",
        &format!(
            "Clients that completed a TLS 1.2-or-older handshake and exchanged data although the server's certificate \
             was invalid ({}). Under TLS 1.3 this cannot be observed passively.",
            plural(report.summary.invalid_cert_clients, "client/service pair")
        ),
    );
    table_start(
        html,
        "invalid-cert-table",
        "Clients that accepted invalid certificates",
        &[
            "Service",
            "Client",
            "Stack",
            "Certificate problems",
            "#Sessions",
            "Last seen",
        ],
    );
    if report.invalid_cert_clients.is_empty() {
        empty_row(
            html,
            6,
            "No client was seen accepting an invalid certificate.",
        );
    }
    for (service, client) in &report.invalid_cert_clients {
        out!(
            html,
            "<tr><th scope=\"row\">{}</th><td class=\"mono\">{}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"num\">{}</td>\
             <td class=\"nowrap\">{}</td></tr>\n",
            Escaped(&super::service_label(service)),
            Escaped(&client.client_ip),
            Escaped(&client.stack),
            Escaped(&client.problems.join(", ")),
            client.count,
            Escaped(&short_date(&client.last_seen))
        );
    }
    html.push_str("</tbody>\n</table>\n</section>\n");
}

fn drift_section(html: &mut String, report: &Report<'_>) {
    let since = report.options.drift_since.map_or_else(
        || "over the whole inventory".to_string(),
        |since| format!("since {}", super::format_time(since)),
    );
    section_start(
        html,
        "drift",
        &format!("{} drift events {since}: negotiation changes, certificate rotations, new client stacks.", report.summary.drift_events),
    );
    table_start(
        html,
        "drift-table",
        "Drift events",
        &["Time", "Service", "Event", "Severity", "Message"],
    );
    if report.drift.is_empty() {
        empty_row(html, 5, "No drift in this period.");
    }
    for event in &report.drift {
        let service = event
            .service_name
            .clone()
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| super::endpoint(&event.key));
        out!(
            html,
            "<tr><td class=\"nowrap\">{}</td><th scope=\"row\">{}</th><td class=\"mono\">{}</td><td>{}</td><td>{}</td></tr>\n",
            Escaped(&event.time),
            Escaped(&service),
            Escaped(&event.id),
            severity_tag(&event.severity),
            Escaped(&event.message)
        );
    }
    html.push_str("</tbody>\n</table>\n</section>\n");
}

fn findings_section(html: &mut String, report: &Report<'_>) {
    section_start(
        html,
        "findings",
        "Every finding id raised in the inventory, highest severity first. Counts are sessions; covered findings \
         were allowed by an exception.",
    );
    table_start(
        html,
        "findings-table",
        "Findings by severity",
        &[
            "Severity",
            "Finding",
            "#Findings",
            "#Covered",
            "#Open",
            "#Services",
        ],
    );
    if report.findings.is_empty() {
        empty_row(html, 6, "No finding was raised.");
    }
    for total in &report.findings {
        out!(
            html,
            "<tr><td>{}</td><th scope=\"row\" class=\"mono\">{}</th><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
            severity_tag(&total.severity),
            Escaped(&total.id),
            total.count,
            total.excepted,
            total.count.saturating_sub(total.excepted),
            total.services
        );
    }
    html.push_str("</tbody>\n</table>\n</section>\n");
}

fn services_section(html: &mut String, report: &Report<'_>) {
    section_start(
        html,
        "services",
        "Every service in the inventory, with the versions it negotiated.",
    );
    table_start(
        html,
        "services-table",
        "Service inventory",
        &[
            "Service",
            "Endpoint",
            "Owner",
            "Direction",
            "Protocol",
            "Versions",
            "#TLS sessions",
            "#Plaintext",
            "First seen",
            "Last seen",
        ],
    );
    if report.services.is_empty() {
        empty_row(html, 10, "The inventory is empty.");
    }
    for service in &report.services {
        let mut versions: Vec<String> = service
            .negotiations
            .iter()
            .map(|row| format!("{} {}", row.protocol.to_ascii_uppercase(), row.version))
            .collect();
        versions.sort();
        versions.dedup();
        out!(
            html,
            "<tr><th scope=\"row\">{}</th><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"nowrap\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"nowrap\">{}</td><td class=\"nowrap\">{}</td></tr>\n",
            Escaped(&super::service_label(service)),
            Escaped(&super::endpoint(&service.key)),
            optional(service.owner.as_ref()),
            Escaped(&service.direction),
            Escaped(&service.protocol),
            Escaped(&versions.join(", ")),
            service.sessions,
            service.plaintext_sessions,
            Escaped(&short_date(&service.first_seen)),
            Escaped(&short_date(&service.last_seen))
        );
    }
    html.push_str("</tbody>\n</table>\n");
    html.push_str("<table id=\"runs-table\">\n<caption>Evidence base: runs that fed the inventory</caption>\n<thead><tr>\
                   <th scope=\"col\">Started</th><th scope=\"col\">Source</th><th scope=\"col\" class=\"num\">Records</th></tr></thead>\n<tbody>\n");
    if report.snapshot.runs.is_empty() {
        empty_row(html, 3, "No run recorded.");
    }
    let mut runs: Vec<_> = report.snapshot.runs.iter().collect();
    runs.sort_by(|a, b| {
        a.started
            .cmp(&b.started)
            .then_with(|| a.source.cmp(&b.source))
    });
    for run in runs {
        out!(
            html,
            "<tr><td class=\"nowrap\">{}</td><td class=\"mono\">{}</td><td class=\"num\">{}</td></tr>\n",
            Escaped(&run.started),
            Escaped(&run.source),
            run.records
        );
    }
    html.push_str("</tbody>\n</table>\n</section>\n");
}

/// "1 run", "3 runs".
fn plural(count: u64, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}
