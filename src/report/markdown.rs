//! The Markdown report: the same sections and numbers as the HTML one, as
//! GitHub-flavoured pipe tables, for tickets and merge requests. No chart:
//! the certificate table carries the same dates and statuses.

use std::fmt::Write as _;

use super::{percent, relative_days, short_date, Report, Validity};

/// Writes to the `String` buffer; `fmt::Write` for `String` cannot fail.
macro_rules! out {
    ($buffer:expr, $($argument:tt)*) => {{ let _ = write!($buffer, $($argument)*); }};
}

/// Text safe inside a pipe-table cell: `|` escaped, line breaks flattened,
/// and `<`, `>`, `&` as entities because most renderers pass raw HTML through.
pub(crate) fn cell(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '|' => escaped.push_str("\\|"),
            '\\' => escaped.push_str("\\\\"),
            '`' => escaped.push_str("\\`"),
            '*' => escaped.push_str("\\*"),
            '[' => escaped.push_str("\\["),
            ']' => escaped.push_str("\\]"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '&' => escaped.push_str("&amp;"),
            '\r' | '\n' => escaped.push(' '),
            other => escaped.push(other),
        }
    }
    escaped
}

fn table(markdown: &mut String, headers: &[&str], rows: &[Vec<String>], empty: &str) {
    if rows.is_empty() {
        out!(markdown, "_{empty}_\n\n");
        return;
    }
    out!(
        markdown,
        "| {} |\n|",
        headers
            .iter()
            .map(|h| h.trim_start_matches('#'))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    for header in headers {
        markdown.push_str(if header.starts_with('#') {
            "---:|"
        } else {
            "---|"
        });
    }
    markdown.push('\n');
    for row in rows {
        out!(markdown, "| {} |\n", row.join(" | "));
    }
    markdown.push('\n');
}

fn validity_text(validity: Validity, days_left: Option<i64>) -> String {
    match (validity, days_left) {
        (Validity::Expired | Validity::ExpiresSoon, Some(days)) => {
            format!("**{}** ({})", validity.label(), relative_days(days))
        }
        _ => format!("**{}**", validity.label()),
    }
}

pub(crate) fn render(report: &Report<'_>) -> String {
    let options = report.options;
    let summary = &report.summary;
    let mut markdown = String::with_capacity(16 * 1024);
    out!(markdown, "# {}\n\n", cell(&options.title));
    out!(
        markdown,
        "Generated {} · judged at {} · expiry warning {} days · drift {}\n\n",
        cell(&options.generated_at),
        super::format_time(options.now),
        options.expiry_warning_days,
        options.drift_since.map_or_else(
            || "over the whole inventory".to_string(),
            |since| format!("since {}", super::format_time(since))
        )
    );

    markdown.push_str("## 1. Summary\n\n");
    let rows = vec![
        vec!["Services".to_string(), summary.services.to_string()],
        vec!["TLS sessions".to_string(), summary.sessions.to_string()],
        vec![
            "Plaintext sessions".to_string(),
            summary.plaintext_sessions.to_string(),
        ],
        vec![
            "East-west TLS sessions".to_string(),
            summary.east_west_sessions.to_string(),
        ],
        vec![
            "East-west sessions on TLS 1.3".to_string(),
            format!(
                "{} ({})",
                percent(summary.east_west_tls13_percent),
                summary.east_west_tls13_sessions
            ),
        ],
        vec![
            "Plaintext services".to_string(),
            summary.plaintext_services.to_string(),
        ],
        vec![
            "Paths below TLS 1.3".to_string(),
            summary.legacy_paths.to_string(),
        ],
        vec![
            "… with a current exception".to_string(),
            summary.legacy_paths_with_exception.to_string(),
        ],
        vec![
            "… without".to_string(),
            summary.legacy_paths_without_exception.to_string(),
        ],
        vec!["Certificates".to_string(), summary.certificates.to_string()],
        vec![
            "Certificates expired".to_string(),
            summary.certificates_expired.to_string(),
        ],
        vec![
            format!(
                "Certificates expiring within {} days",
                options.expiry_warning_days
            ),
            summary.certificates_expiring.to_string(),
        ],
        vec!["Exceptions".to_string(), summary.exceptions.to_string()],
        vec![
            "Exceptions expired".to_string(),
            summary.exceptions_expired.to_string(),
        ],
        vec![
            "Exceptions expiring soon".to_string(),
            summary.exceptions_expiring.to_string(),
        ],
        vec![
            "Clients accepting invalid certificates".to_string(),
            summary.invalid_cert_clients.to_string(),
        ],
        vec![
            "Drift events in period".to_string(),
            summary.drift_events.to_string(),
        ],
    ];
    table(&mut markdown, &["Figure", "#Value"], &rows, "");
    let rows: Vec<Vec<String>> = summary
        .findings_by_severity
        .iter()
        .map(|count| {
            vec![
                count.severity.to_ascii_uppercase(),
                count.count.to_string(),
                count.excepted.to_string(),
                count.count.saturating_sub(count.excepted).to_string(),
            ]
        })
        .collect();
    table(
        &mut markdown,
        &["Severity", "#Findings", "#Covered", "#Open"],
        &rows,
        "",
    );

    markdown.push_str("## 2. Paths below TLS 1.3\n\n");
    let rows: Vec<Vec<String>> = report
        .legacy_paths
        .iter()
        .map(|path| {
            let exception = if path.exceptions.is_empty() {
                "**no exception**".to_string()
            } else {
                path.exceptions
                    .iter()
                    .map(|exception| {
                        format!(
                            "{} ({}, until {}, {})",
                            cell(&exception.id),
                            cell(&exception.owner),
                            cell(&exception.expires),
                            validity_text(exception.validity, exception.days_left)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            vec![
                cell(&path.service_name),
                cell(&path.endpoint),
                cell(path.owner.as_deref().unwrap_or("—")),
                cell(&path.direction),
                cell(&path.version),
                cell(&path.ciphers.join(", ")),
                path.sessions.to_string(),
                exception,
            ]
        })
        .collect();
    table(
        &mut markdown,
        &[
            "Service",
            "Endpoint",
            "Owner",
            "Direction",
            "Version",
            "Ciphers",
            "#Sessions",
            "Exception",
        ],
        &rows,
        "No service negotiated below TLS 1.3.",
    );

    markdown.push_str("## 3. Exceptions\n\n");
    let rows: Vec<Vec<String>> = report
        .exceptions
        .iter()
        .map(|exception| {
            vec![
                validity_text(exception.validity, exception.days_left),
                cell(&exception.id),
                cell(&exception.owner),
                cell(&exception.expires),
                cell(&exception.finding_ids.join(", ")),
                cell(&exception.services.join(", ")),
                exception.count.to_string(),
            ]
        })
        .collect();
    table(
        &mut markdown,
        &[
            "Status",
            "Exception",
            "Owner",
            "Expires",
            "Allows",
            "Services",
            "#Covered",
        ],
        &rows,
        "No exception covered a finding.",
    );

    markdown.push_str("## 4. Certificates\n\n");
    let rows: Vec<Vec<String>> = report
        .certificates
        .iter()
        .map(|entry| {
            vec![
                validity_text(entry.validity, entry.days_left),
                cell(&entry.certificate.subject),
                cell(&entry.certificate.issuer),
                cell(&short_date(&entry.certificate.not_before)),
                cell(&short_date(&entry.certificate.not_after)),
                cell(&entry.services.join(", ")),
                cell(&entry.owners.join(", ")),
                entry.sessions.to_string(),
            ]
        })
        .collect();
    table(
        &mut markdown,
        &[
            "Status",
            "Subject",
            "Issuer",
            "Not before",
            "Not after",
            "Services",
            "Owners",
            "#Sessions",
        ],
        &rows,
        "No server certificate was observed.",
    );

    markdown.push_str("## 5. Plaintext services\n\n");
    let rows: Vec<Vec<String>> = report
        .plaintext
        .iter()
        .map(|service| {
            vec![
                cell(&super::service_label(service)),
                cell(&super::endpoint(&service.key)),
                cell(service.owner.as_deref().unwrap_or("—")),
                cell(&service.protocol),
                service.plaintext_sessions.to_string(),
            ]
        })
        .collect();
    table(
        &mut markdown,
        &[
            "Service",
            "Endpoint",
            "Owner",
            "Protocol",
            "#Plaintext sessions",
        ],
        &rows,
        "No plaintext session was recorded.",
    );

    markdown.push_str("## 6. Client TLS stacks\n\n");
    let rows: Vec<Vec<String>> = report
        .clients
        .iter()
        .map(|(service, client)| {
            vec![
                cell(&super::service_label(service)),
                cell(&client.stack),
                // GFM splits table cells on `|` even inside a code span, unless escaped.
                format!("`{}`", client.ja4.replace('`', "'").replace('|', "\\|")),
                client.sessions.to_string(),
                client.distinct_clients.to_string(),
            ]
        })
        .collect();
    table(
        &mut markdown,
        &["Service", "Stack", "JA4", "#Sessions", "#Clients"],
        &rows,
        "No client stack was recorded.",
    );

    markdown.push_str("## 7. Clients accepting invalid certificates\n\n");
    let rows: Vec<Vec<String>> = report
        .invalid_cert_clients
        .iter()
        .map(|(service, client)| {
            vec![
                cell(&super::service_label(service)),
                cell(&client.client_ip),
                cell(&client.stack),
                cell(&client.problems.join(", ")),
                client.count.to_string(),
            ]
        })
        .collect();
    table(
        &mut markdown,
        &["Service", "Client", "Stack", "Problems", "#Sessions"],
        &rows,
        "No client was seen accepting an invalid certificate.",
    );

    markdown.push_str("## 8. Drift\n\n");
    let rows: Vec<Vec<String>> = report
        .drift
        .iter()
        .map(|event| {
            let service = event
                .service_name
                .clone()
                .filter(|name| !name.is_empty())
                .unwrap_or_else(|| super::endpoint(&event.key));
            vec![
                cell(&event.time),
                cell(&service),
                cell(&event.id),
                cell(&event.severity.to_ascii_uppercase()),
                cell(&event.message),
            ]
        })
        .collect();
    table(
        &mut markdown,
        &["Time", "Service", "Event", "Severity", "Message"],
        &rows,
        "No drift in this period.",
    );

    markdown.push_str("## 9. Findings\n\n");
    let rows: Vec<Vec<String>> = report
        .findings
        .iter()
        .map(|total| {
            vec![
                total.severity.to_ascii_uppercase(),
                cell(&total.id),
                total.count.to_string(),
                total.excepted.to_string(),
                total.count.saturating_sub(total.excepted).to_string(),
                total.services.to_string(),
            ]
        })
        .collect();
    table(
        &mut markdown,
        &[
            "Severity",
            "Finding",
            "#Findings",
            "#Covered",
            "#Open",
            "#Services",
        ],
        &rows,
        "No finding was raised.",
    );
    markdown
}
