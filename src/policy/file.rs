//! The TOML policy file (`--policy FILE`, `tlstap policy check FILE`).
//! Every error names the file and the line.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::{
    parse_version, Baselines, Exception, ExceptionMatch, MtlsService, Networks, Policy, TrustAnchor,
};
use crate::x509;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    networks: RawNetworks,
    #[serde(default, rename = "zone")]
    zones: Vec<RawZone>,
    #[serde(default)]
    baseline: RawBaseline,
    #[serde(default)]
    tls: RawTls,
    #[serde(default)]
    certificates: RawCertificates,
    #[serde(default)]
    mtls: Vec<RawMtls>,
    #[serde(default, rename = "exception")]
    exceptions: Vec<RawException>,
    #[serde(default, rename = "service")]
    services: Vec<RawService>,
    #[serde(default)]
    sensor: RawSensor,
    /// Checked by the stack catalogue's own reader (see below).
    #[serde(default)]
    stack: Vec<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: Spanned<String>,
    owner: String,
    #[serde(rename = "match")]
    selector: RawMatch,
}

/// Settings of the sensor itself; the command line overrides them.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSensor {
    /// Byte size (`256M`), as `--memcap`.
    memcap: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNetworks {
    /// Replaces the default internal networks when given.
    internal: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZone {
    name: String,
    networks: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBaseline {
    internal: Option<Spanned<String>>,
    inbound: Option<Spanned<String>>,
    outbound: Option<Spanned<String>>,
    external: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTls {
    ports: Option<Vec<u16>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCertificates {
    trusted_ca: Option<Spanned<String>>,
    expiry_warning_days: Option<i64>,
    max_validity_days: Option<i64>,
    system_roots: Option<bool>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    server: Option<Spanned<String>>,
    client: Option<Spanned<String>>,
    port: Option<u16>,
    sni: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMtls {
    name: String,
    #[serde(rename = "match")]
    selector: RawMatch,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawException {
    id: Spanned<String>,
    owner: String,
    #[serde(default)]
    reason: String,
    expires: Spanned<toml::Value>,
    #[serde(rename = "match", default)]
    selector: RawMatch,
    allow: Vec<Spanned<String>>,
}

/// What `policy check` reports besides validity.
#[derive(Debug, Clone)]
pub struct PolicyCheck {
    pub exceptions: usize,
    pub expired: Vec<(String, String, time::Date)>,
    pub expiring_soon: Vec<(String, String, time::Date)>,
}

struct Context<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Context<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    fn invalid<T>(&self, span: std::ops::Range<usize>, message: String) -> Result<T, PolicyError> {
        Err(PolicyError::Invalid {
            path: self.path.to_path_buf(),
            line: self.line(span.start),
            message,
        })
    }

    fn network(&self, text: &Spanned<String>) -> Result<ipnet::IpNet, PolicyError> {
        Networks::parse_block(text.get_ref()).or_else(|e| self.invalid(text.span(), e.to_string()))
    }

    fn version(
        &self,
        text: &Option<Spanned<String>>,
        default: crate::tls::ProtocolVersion,
    ) -> Result<crate::tls::ProtocolVersion, PolicyError> {
        match text {
            None => Ok(default),
            Some(text) => parse_version(text.get_ref()).map_or_else(
                || {
                    self.invalid(
                        text.span(),
                        format!(
                            "{:?} is not a version (1.3, 1.2, 1.1, 1.0, ssl3)",
                            text.get_ref()
                        ),
                    )
                },
                Ok,
            ),
        }
    }

    fn selector(&self, raw: &RawMatch) -> Result<ExceptionMatch, PolicyError> {
        Ok(ExceptionMatch {
            server: raw.server.as_ref().map(|s| self.network(s)).transpose()?,
            client: raw.client.as_ref().map(|s| self.network(s)).transpose()?,
            port: raw.port,
            sni: raw.sni.clone(),
        })
    }
}

/// Trust anchors from a PEM bundle.
pub(super) fn anchors_from_pem(bytes: &[u8]) -> Result<Vec<TrustAnchor>, x509::X509Error> {
    x509::certificates_from_pem(bytes)?
        .into_iter()
        .map(|der| {
            Ok(TrustAnchor {
                subject: x509::subject_rfc4514(&der)?,
                der,
            })
        })
        .collect()
}

/// Reads and validates a policy file.
pub fn load(path: &Path) -> Result<(Policy, PolicyCheck), PolicyError> {
    let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Validates policy text; `path` names it in errors and anchors relative paths.
pub fn parse(path: &Path, text: &str) -> Result<(Policy, PolicyCheck), PolicyError> {
    let raw: RawPolicy = toml::from_str(text).map_err(|error| {
        let line = error
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        // One line: toml's messages can span several.
        let message = error
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        match line {
            Some(line) => PolicyError::Invalid {
                path: path.to_path_buf(),
                line,
                message,
            },
            None => PolicyError::Syntax {
                path: path.to_path_buf(),
                message,
            },
        }
    })?;
    let context = Context { path, text };
    let mut policy = Policy::default();

    if let Some(internal) = &raw.networks.internal {
        let mut networks = Networks::empty();
        for block in internal {
            networks.push(context.network(block)?);
        }
        policy.internal = networks;
    }
    for zone in &raw.zones {
        let mut networks = Networks::empty();
        for block in &zone.networks {
            let block = context.network(block)?;
            networks.push(block);
            policy.internal.push(block);
        }
        policy.zones.push((zone.name.clone(), networks));
    }
    let defaults = Baselines::default();
    policy.baselines = Baselines {
        internal: context.version(&raw.baseline.internal, defaults.internal)?,
        inbound: context.version(&raw.baseline.inbound, defaults.inbound)?,
        outbound: context.version(&raw.baseline.outbound, defaults.outbound)?,
        external: context.version(&raw.baseline.external, defaults.external)?,
    };
    if let Some(ports) = &raw.tls.ports {
        policy.tls_ports = ports.clone();
    }
    if let Some(memcap) = &raw.sensor.memcap {
        match crate::memory::parse_bytes(memcap.get_ref()) {
            Ok(bytes) => policy.memcap = Some(bytes),
            Err(error) => return context.invalid(memcap.span(), format!("memcap: {error}")),
        }
    }
    let certificates = &raw.certificates;
    if let Some(days) = certificates.expiry_warning_days {
        policy.certificates.expiry_warning_days = days;
    }
    if let Some(days) = certificates.max_validity_days {
        policy.certificates.max_validity_days = days;
    }
    if let Some(bundle) = &certificates.trusted_ca {
        let bundle_path = path
            .parent()
            .unwrap_or(Path::new("."))
            .join(bundle.get_ref());
        let bytes = match std::fs::read(&bundle_path) {
            Ok(bytes) => bytes,
            Err(error) => {
                return context.invalid(
                    bundle.span(),
                    format!("trusted_ca {}: {error}", bundle_path.display()),
                )
            }
        };
        policy.certificates.trusted = match anchors_from_pem(&bytes) {
            Ok(anchors) if !anchors.is_empty() => super::TrustStore::new(anchors),
            Ok(_) => {
                return context.invalid(
                    bundle.span(),
                    format!("trusted_ca {}: no certificate in it", bundle_path.display()),
                )
            }
            Err(error) => {
                return context.invalid(
                    bundle.span(),
                    format!("trusted_ca {}: {error}", bundle_path.display()),
                )
            }
        };
    }
    if certificates.system_roots.unwrap_or(true) {
        policy = policy.with_system_roots();
    }
    for service in &raw.mtls {
        policy.mtls.push(MtlsService {
            name: service.name.clone(),
            selector: context.selector(&service.selector)?,
        });
    }
    for service in &raw.services {
        if service.name.get_ref().trim().is_empty() {
            return context.invalid(service.name.span(), "service name is empty".to_string());
        }
        policy.services.push(super::Service {
            name: service.name.get_ref().clone(),
            owner: service.owner.clone(),
            selector: context.selector(&service.selector)?,
        });
    }
    if !raw.stack.is_empty() {
        use crate::tls::fingerprint::stacks::{entries_in_policy, StackError};
        match entries_in_policy(text) {
            Ok(entries) => policy.stacks.extend(entries),
            Err(error) => {
                let line = match &error {
                    StackError::Invalid { line, .. } | StackError::Duplicate { line, .. } => *line,
                    StackError::Syntax(_) => 1,
                };
                return Err(PolicyError::Invalid {
                    path: path.to_path_buf(),
                    line,
                    message: error.to_string(),
                });
            }
        }
    }
    let known: Vec<&str> = super::rules::RULES.iter().map(|rule| rule.id).collect();
    for raw in &raw.exceptions {
        let expires = match raw.expires.get_ref() {
            toml::Value::Datetime(datetime) => datetime.to_string(),
            toml::Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let expires = match time::Date::parse(expires.trim(), &format) {
            Ok(date) => date,
            Err(_) => {
                return context.invalid(
                    raw.expires.span(),
                    format!("expires {expires:?} is not a date (YYYY-MM-DD)"),
                )
            }
        };
        for id in &raw.allow {
            if !known.contains(&id.get_ref().as_str()) {
                return context.invalid(
                    id.span(),
                    format!("allow: {:?} is not a finding id", id.get_ref()),
                );
            }
        }
        if policy.exceptions.iter().any(|e| &e.id == raw.id.get_ref()) {
            return context.invalid(
                raw.id.span(),
                format!("exception id {:?} is used twice", raw.id.get_ref()),
            );
        }
        policy.exceptions.push(Exception {
            id: raw.id.get_ref().clone(),
            owner: raw.owner.clone(),
            reason: raw.reason.clone(),
            expires,
            selector: context.selector(&raw.selector)?,
            allow: raw.allow.iter().map(|id| id.get_ref().clone()).collect(),
        });
    }
    let today = time::OffsetDateTime::now_utc().date();
    let soon = today.saturating_add(time::Duration::days(30));
    let listed = |filter: &dyn Fn(&Exception) -> bool| {
        policy
            .exceptions
            .iter()
            .filter(|e| filter(e))
            .map(|e| (e.id.clone(), e.owner.clone(), e.expires))
            .collect::<Vec<_>>()
    };
    let check = PolicyCheck {
        exceptions: policy.exceptions.len(),
        expired: listed(&|e| e.expires < today),
        expiring_soon: listed(&|e| e.expires >= today && e.expires <= soon),
    };
    Ok((policy, check))
}
