//! Certificates as records show them, rendered to JSON once per distinct
//! certificate (by SHA-256) and copied into every record that carries it.
//! Per worker, bounded by entries and bytes.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use serde::ser::SerializeMap;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::x509::{Certificate, CertificateSummary, DistinguishedName};

/// One certificate's record fragments.
#[derive(Debug)]
pub struct Rendered {
    /// `tls.{client,server}.*` leaf fields; None when the DER did not parse
    /// (such a leaf has no ECS fields, only its chain entry).
    pub leaf: Option<Leaf>,
    /// The `tlstap.{client,server}.chain[]` entry.
    pub chain_entry: Box<RawValue>,
}

#[derive(Debug)]
pub struct Leaf {
    hash: Box<RawValue>,
    subject: String,
    issuer: String,
    not_before: String,
    not_after: String,
    x509: Box<RawValue>,
}

impl Leaf {
    /// Writes the ECS leaf fields into the enclosing `tls.client`/`tls.server` object.
    pub fn serialize_entries<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        map.serialize_entry("hash", &self.hash)?;
        map.serialize_entry("subject", &self.subject)?;
        map.serialize_entry("issuer", &self.issuer)?;
        map.serialize_entry("not_before", &self.not_before)?;
        map.serialize_entry("not_after", &self.not_after)?;
        map.serialize_entry("x509", &self.x509)
    }
}

/// Bounds of one worker's rendered-certificate cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderLimits {
    pub max_entries: usize,
    pub max_bytes: usize,
}

impl Default for RenderLimits {
    fn default() -> Self {
        Self {
            max_entries: 8192,
            max_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Rendered-certificate cache counters (per worker).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenderCounters {
    pub hits: u64,
    pub misses: u64,
    pub evicted: u64,
}

impl RenderCounters {
    pub fn add(&mut self, other: &Self) {
        self.hits += other.hits;
        self.misses += other.misses;
        self.evicted += other.evicted;
    }
}

/// SHA-256 → rendered fragments.
pub struct RenderCache {
    entries: HashMap<[u8; 32], (Arc<Rendered>, usize), ahash::RandomState>,
    order: VecDeque<[u8; 32]>,
    bytes: usize,
    limits: RenderLimits,
    counters: RenderCounters,
}

impl Default for RenderCache {
    fn default() -> Self {
        Self::new(RenderLimits::default())
    }
}

impl RenderCache {
    pub fn new(limits: RenderLimits) -> Self {
        Self {
            entries: HashMap::with_hasher(ahash::RandomState::new()),
            order: VecDeque::new(),
            bytes: 0,
            limits,
            counters: RenderCounters::default(),
        }
    }

    pub fn counters(&self) -> &RenderCounters {
        &self.counters
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn get(&mut self, certificate: &Certificate) -> Arc<Rendered> {
        if let Some((rendered, _)) = self.entries.get(&certificate.sha256) {
            self.counters.hits += 1;
            return Arc::clone(rendered);
        }
        self.counters.misses += 1;
        let rendered = Arc::new(render(certificate));
        let bytes = 128
            + rendered.chain_entry.get().len()
            + rendered.leaf.as_ref().map_or(0, |leaf| {
                leaf.hash.get().len()
                    + leaf.subject.len()
                    + leaf.issuer.len()
                    + leaf.not_before.len()
                    + leaf.not_after.len()
                    + leaf.x509.get().len()
            });
        if self.limits.max_entries == 0 || bytes > self.limits.max_bytes {
            return rendered;
        }
        while self.entries.len() >= self.limits.max_entries
            || self.bytes + bytes > self.limits.max_bytes
        {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some((_, old)) = self.entries.remove(&oldest) {
                self.bytes -= old;
                self.counters.evicted += 1;
            }
        }
        self.bytes += bytes;
        self.order.push_back(certificate.sha256);
        self.entries
            .insert(certificate.sha256, (Arc::clone(&rendered), bytes));
        rendered
    }
}

#[derive(Serialize)]
struct Hashes {
    sha256: String,
    sha1: String,
}

#[derive(Serialize)]
struct X509 {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    alternative_names: Vec<String>,
    subject: X509Name,
    issuer: X509Name,
    not_before: String,
    not_after: String,
    serial_number: String,
    public_key_algorithm: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_key_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_key_curve: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_key_exponent: Option<u64>,
    signature_algorithm: String,
    version_number: String,
}

#[derive(Serialize, Default)]
struct X509Name {
    distinguished_name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    common_name: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    organization: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    organizational_unit: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    country: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    locality: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    state_or_province: Vec<String>,
}

/// One certificate of a chain, with every fact x509 extracted.
#[derive(Serialize)]
struct ChainCertificate {
    sha256: String,
    sha1: String,
    #[serde(flatten)]
    x509: X509,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    alt_names_ip: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    alt_names_uri: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    alt_names_email: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_ca: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    key_usage: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    extended_key_usage: Vec<String>,
    self_issued: bool,
    self_signed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    parse_error: Option<String>,
}

fn name(dn: &DistinguishedName) -> X509Name {
    X509Name {
        distinguished_name: dn.rfc4514.clone(),
        common_name: dn.common_name.iter().cloned().collect(),
        organization: dn.organization.clone(),
        organizational_unit: dn.organizational_unit.clone(),
        country: dn.country.clone(),
        locality: dn.locality.clone(),
        state_or_province: dn.state_or_province.clone(),
    }
}

fn x509(summary: &CertificateSummary) -> X509 {
    X509 {
        // ECS: "commonly contain IP addresses, DNS names (and wildcards), and email addresses".
        alternative_names: summary
            .alt_names
            .dns
            .iter()
            .cloned()
            .chain(summary.alt_names.ip.iter().map(ToString::to_string))
            .chain(summary.alt_names.uri.iter().cloned())
            .chain(summary.alt_names.email.iter().cloned())
            .collect(),
        subject: name(&summary.subject),
        issuer: name(&summary.issuer),
        not_before: summary.not_before.to_rfc3339(),
        not_after: summary.not_after.to_rfc3339(),
        serial_number: summary.serial_hex.clone(),
        public_key_algorithm: summary.public_key_algorithm.as_str().to_string(),
        public_key_size: summary.public_key_size,
        public_key_curve: summary.public_key_curve.clone(),
        public_key_exponent: summary.public_key_exponent,
        signature_algorithm: summary.signature_algorithm.clone(),
        version_number: summary.version.to_string(),
    }
}

fn raw<T: Serialize>(value: &T) -> Box<RawValue> {
    // Plain structs of strings and numbers always serialise.
    serde_json::value::to_raw_value(value).unwrap_or_else(|_| {
        RawValue::from_string("null".to_string()).expect("\"null\" is valid JSON")
    })
}

fn render(certificate: &Certificate) -> Rendered {
    use sha1::Digest;
    let sha256 = crate::x509::hex_upper(&certificate.sha256);
    let sha1 = crate::x509::hex_upper(&sha1::Sha1::digest(&certificate.der));
    match &certificate.summary {
        Ok(summary) => {
            let entry = ChainCertificate {
                sha256: sha256.clone(),
                sha1: sha1.clone(),
                x509: x509(summary),
                alt_names_ip: summary
                    .alt_names
                    .ip
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                alt_names_uri: summary.alt_names.uri.clone(),
                alt_names_email: summary.alt_names.email.clone(),
                is_ca: summary.is_ca,
                key_usage: summary.key_usage.clone(),
                extended_key_usage: summary.extended_key_usage.clone(),
                self_issued: summary.self_issued,
                self_signed: summary.self_signed,
                parse_error: None,
            };
            let leaf = Leaf {
                hash: raw(&Hashes { sha256, sha1 }),
                subject: summary.subject.rfc4514.clone(),
                issuer: summary.issuer.rfc4514.clone(),
                not_before: summary.not_before.to_rfc3339(),
                not_after: summary.not_after.to_rfc3339(),
                x509: raw(&entry.x509),
            };
            Rendered {
                leaf: Some(leaf),
                chain_entry: raw(&entry),
            }
        }
        Err(error) => {
            let entry = ChainCertificate {
                sha256,
                sha1,
                x509: X509 {
                    alternative_names: Vec::new(),
                    subject: X509Name::default(),
                    issuer: X509Name::default(),
                    not_before: String::new(),
                    not_after: String::new(),
                    serial_number: String::new(),
                    public_key_algorithm: String::new(),
                    public_key_size: None,
                    public_key_curve: None,
                    public_key_exponent: None,
                    signature_algorithm: String::new(),
                    version_number: String::new(),
                },
                alt_names_ip: Vec::new(),
                alt_names_uri: Vec::new(),
                alt_names_email: Vec::new(),
                is_ca: None,
                key_usage: Vec::new(),
                extended_key_usage: Vec::new(),
                self_issued: false,
                self_signed: false,
                parse_error: Some(error.to_string()),
            };
            Rendered {
                leaf: None,
                chain_entry: raw(&entry),
            }
        }
    }
}
