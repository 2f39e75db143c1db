//! Server identity checks (RFC 6125 §6.4): does a certificate cover the SNI?

use crate::x509::CertificateSummary;

/// True when `sni` is covered by the certificate's DNS SANs, or, when it has
/// none, by its subject CN (RFC 6125 §6.4.4 fallback). A wildcard stands for
/// exactly one whole left-most label (§6.4.3; no partial-label wildcards).
pub fn sni_matches(sni: &str, certificate: &CertificateSummary) -> bool {
    let sni = normalize(sni);
    let candidates: Vec<&str> = if certificate.alt_names.dns.is_empty() {
        certificate
            .subject
            .common_name
            .iter()
            .map(String::as_str)
            .collect()
    } else {
        certificate
            .alt_names
            .dns
            .iter()
            .map(String::as_str)
            .collect()
    };
    candidates
        .iter()
        .any(|pattern| matches(&normalize(pattern), &sni))
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => match name.split_once('.') {
            Some((label, rest)) => !label.is_empty() && rest == suffix && suffix.contains('.'),
            None => false,
        },
        None => pattern == name,
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn wildcards_cover_exactly_one_label() {
        assert!(matches("*.svc.internal", "api.svc.internal"));
        assert!(!matches("*.svc.internal", "a.b.svc.internal"));
        assert!(!matches("*.svc.internal", "svc.internal"));
        assert!(
            !matches("*.internal", "api.internal"),
            "wildcard over a single-label suffix"
        );
        assert!(matches("api.internal", "api.internal"));
        assert!(!matches("api.internal", "api.internal.evil"));
        assert!(
            !matches("a*.svc.internal", "ab.svc.internal"),
            "partial-label wildcards are refused"
        );
    }
}
