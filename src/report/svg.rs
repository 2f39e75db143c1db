//! The certificate expiry timeline: one bar per distinct server certificate
//! from notBefore to notAfter, a "today" line and the warning window shaded.
//! Inline SVG with its own fills and fonts, so it reads the same on screen,
//! on paper and when copied out of the page. Status is written as text at
//! the end of each row: colour is never the only carrier of meaning.

use std::fmt::Write as _;

use time::{Duration, Month, OffsetDateTime};

use super::{CertificateEntry, Escaped, Report, Validity};

const WIDTH: f64 = 900.0;
const LABEL_RIGHT: f64 = 236.0;
const CHART_LEFT: f64 = 246.0;
const CHART_RIGHT: f64 = 770.0;
const STATUS_LEFT: f64 = 778.0;
const TOP: f64 = 40.0;
const ROW: f64 = 32.0;
const BAR: f64 = 12.0;
/// Bars drawn at most; the rest (later to expire, since certificates come
/// sorted by notAfter) stay in the table. Keeps the chart on one printed page.
pub(crate) const MAX_TIMELINE_CERTIFICATES: usize = 40;
/// The axis never spans more than this either side of today, so one
/// ten-year root does not squash every other bar into a sliver.
const MAX_SPAN_DAYS: i64 = 800;

pub(crate) fn timeline(report: &Report<'_>) -> String {
    let now = report.options.now;
    let window_end = now + Duration::days(report.options.expiry_warning_days.max(0));
    let dated: Vec<&CertificateEntry<'_>> = report
        .certificates
        .iter()
        .take(MAX_TIMELINE_CERTIFICATES)
        .collect();

    let mut start = now - Duration::days(30);
    let mut end = window_end + Duration::days(30);
    for entry in &dated {
        if let Some(before) = entry.not_before {
            start = start.min(before);
        }
        if let Some(after) = entry.not_after {
            end = end.max(after);
        }
    }
    start = start.max(now - Duration::days(MAX_SPAN_DAYS));
    end = end.min(now + Duration::days(MAX_SPAN_DAYS));
    let span = (end - start).as_seconds_f64().max(1.0);
    let x = |time: OffsetDateTime| {
        let offset = (time - start).as_seconds_f64().clamp(0.0, span);
        CHART_LEFT + offset / span * (CHART_RIGHT - CHART_LEFT)
    };

    let rows = dated.len().max(1) as f64;
    let height = TOP + rows * ROW + 14.0;
    let chart_bottom = TOP + rows * ROW;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"timeline\" viewBox=\"0 0 {WIDTH} {height:.0}\" \
         role=\"img\" aria-labelledby=\"timeline-title timeline-desc\" \
         font-family=\"'Segoe UI', 'Helvetica Neue', Arial, sans-serif\" font-size=\"11.5\">"
    );
    let _ = write!(
        svg,
        "<title id=\"timeline-title\">Certificate validity timeline</title>\
         <desc id=\"timeline-desc\">{} server certificates, each a bar from notBefore to notAfter; \
         the dashed line is {}, the shaded band the {}-day expiry warning window.</desc>",
        dated.len(),
        now.date(),
        report.options.expiry_warning_days
    );

    // Warning window, then grid and axis labels, so bars draw on top.
    let _ = write!(
        svg,
        "<rect class=\"window\" x=\"{:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#fdecc8\"/>",
        x(now),
        (x(window_end) - x(now)).max(1.0),
        chart_bottom - TOP
    );
    let today_x = x(now);
    for (tick, label) in ticks(start, end) {
        let tick_x = x(tick);
        // The "today" label sits above the tick labels; keep them apart.
        if (tick_x - today_x).abs() < 24.0 {
            continue;
        }
        let _ = write!(
            svg,
            "<line x1=\"{tick_x:.1}\" y1=\"{TOP}\" x2=\"{tick_x:.1}\" y2=\"{chart_bottom:.1}\" stroke=\"#d5dae1\" stroke-width=\"0.6\"/>\
             <text x=\"{tick_x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#4a5565\">{label}</text>",
            TOP - 6.0
        );
    }
    let _ = write!(
        svg,
        "<line x1=\"{CHART_LEFT}\" y1=\"{chart_bottom:.1}\" x2=\"{CHART_RIGHT}\" y2=\"{chart_bottom:.1}\" stroke=\"#8a94a3\" stroke-width=\"0.8\"/>"
    );

    for (index, entry) in dated.iter().enumerate() {
        let y = TOP + index as f64 * ROW;
        let certificate = entry.certificate;
        let colour = match entry.validity {
            Validity::Expired => "#b42318",
            Validity::ExpiresSoon => "#c4540a",
            Validity::Valid => "#2f6f8f",
            Validity::NotYetValid => "#7a6aa8",
            Validity::Unknown => "#8a94a3",
        };
        if index % 2 == 1 {
            let _ = write!(
                svg,
                "<rect x=\"0\" y=\"{y:.1}\" width=\"{WIDTH}\" height=\"{ROW}\" fill=\"#f4f6f8\" fill-opacity=\"0.6\"/>"
            );
        }
        let _ = write!(
            svg,
            "<g class=\"cert {}\"><title>{} — {} to {} — {}</title>",
            entry.validity.css_class(),
            Escaped(&certificate.subject),
            Escaped(&certificate.not_before),
            Escaped(&certificate.not_after),
            Escaped(&entry.services.join(", "))
        );
        let _ = write!(
            svg,
            "<text x=\"{LABEL_RIGHT}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#1d2430\" font-weight=\"600\">{}</text>\
             <text x=\"{LABEL_RIGHT}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#5b6575\" font-size=\"10.5\">{}</text>",
            y + 14.0,
            Escaped(&truncate(&common_name(&certificate.subject), 34)),
            y + 27.0,
            Escaped(&truncate(&entry.services.join(", "), 40))
        );
        match (entry.not_before, entry.not_after) {
            (Some(before), Some(after)) => {
                let left = x(before);
                let right = x(after).max(left + 2.0);
                let _ = write!(
                    svg,
                    "<rect class=\"bar {}\" x=\"{left:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{BAR}\" rx=\"2\" fill=\"{colour}\"/>",
                    entry.validity.css_class(),
                    y + (ROW - BAR) / 2.0,
                    right - left
                );
                // A bar cut by the axis limits says so with a chevron.
                if before < start {
                    let _ = write!(
                        svg,
                        "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#ffffff\" font-size=\"10\">&#x2039;</text>",
                        left + 2.0,
                        y + 20.0
                    );
                }
                if after > end {
                    let _ = write!(
                        svg,
                        "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#ffffff\" font-size=\"10\" text-anchor=\"end\">&#x203a;</text>",
                        right - 2.0,
                        y + 20.0
                    );
                }
            }
            _ => {
                let _ = write!(
                    svg,
                    "<text x=\"{CHART_LEFT}\" y=\"{:.1}\" fill=\"#5b6575\" font-style=\"italic\">validity dates not readable</text>",
                    y + 20.0
                );
            }
        }
        let status = match entry.days_left {
            Some(days) if entry.validity == Validity::Expired => {
                format!("{} {}d ago", entry.validity.label(), -days)
            }
            Some(days) if entry.validity == Validity::ExpiresSoon => {
                format!("{} {days}d", entry.validity.label())
            }
            _ => entry.validity.label().to_string(),
        };
        let _ = write!(
            svg,
            "<text x=\"{STATUS_LEFT}\" y=\"{:.1}\" fill=\"{colour}\" font-weight=\"700\" font-size=\"11\">{}</text></g>",
            y + 20.0,
            Escaped(&status)
        );
    }
    if dated.is_empty() {
        let _ = write!(
            svg,
            "<text x=\"{CHART_LEFT}\" y=\"{:.1}\" fill=\"#5b6575\">No server certificates in the inventory.</text>",
            TOP + 20.0
        );
    }

    // Today on top of everything.
    let _ = write!(
        svg,
        "<line class=\"today\" x1=\"{today_x:.1}\" y1=\"{:.1}\" x2=\"{today_x:.1}\" y2=\"{chart_bottom:.1}\" stroke=\"#1d2430\" stroke-width=\"1.2\" stroke-dasharray=\"4 3\"/>\
         <text x=\"{today_x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#1d2430\" font-weight=\"700\">today {}</text>",
        TOP - 18.0,
        TOP - 22.0,
        now.date()
    );
    svg.push_str("</svg>");
    svg
}

/// Month starts between `start` and `end`, thinned to at most ~10 ticks.
fn ticks(start: OffsetDateTime, end: OffsetDateTime) -> Vec<(OffsetDateTime, String)> {
    let months = ((end - start).whole_days() / 30).max(1);
    let step = [1, 2, 3, 6, 12, 24]
        .into_iter()
        .find(|step| months / step <= 10)
        .unwrap_or(24);
    let mut ticks = Vec::new();
    let mut year = start.year();
    let mut month = u8::from(start.month());
    loop {
        month += 1;
        if month > 12 {
            month = 1;
            year += 1;
        }
        let Ok(month_value) = Month::try_from(month) else {
            break;
        };
        let Ok(date) = time::Date::from_calendar_date(year, month_value, 1) else {
            break;
        };
        let tick = date.midnight().assume_utc();
        if tick > end {
            break;
        }
        let index = i64::from(year) * 12 + i64::from(month) - 1;
        if index % step == 0 {
            let label = if step >= 12 {
                format!("{year}")
            } else {
                format!("{year}-{month:02}")
            };
            ticks.push((tick, label));
        }
    }
    ticks
}

/// The CN of a distinguished name ("CN=api.internal,O=Example" → "api.internal"),
/// or the whole name when it has none.
pub(crate) fn common_name(subject: &str) -> String {
    subject
        .split(',')
        .map(str::trim)
        .find_map(|part| {
            part.strip_prefix("CN=")
                .or_else(|| part.strip_prefix("cn="))
        })
        .unwrap_or(subject)
        .to_string()
}

/// At most `max` characters, with an ellipsis when cut (by char, never
/// inside a UTF-8 sequence).
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}
