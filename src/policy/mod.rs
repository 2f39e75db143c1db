//! Policy: what is internal, what the baseline is, and what is wrong with a
//! session, in stable finding ids a security team can act on.
//!
//! The output stage builds [`SessionFacts`] for each finished session (from
//! tls/x509 summaries and `std::net` endpoints), calls [`Evaluator::evaluate`],
//! and writes the findings into the record. Rules are pure functions in
//! `rules/`, one file per family; cross-session rules read a bounded
//! [`history::History`] that the evaluator updates in packet order.
//! Exceptions from the policy file cover findings without hiding them.

pub mod drift;
mod exception;
mod file;
pub mod history;
mod name;
mod network;
pub mod rules;

use std::net::SocketAddr;

use serde::Serialize;

pub use exception::{Exception, ExceptionMatch};
pub use file::{load, parse, PolicyCheck, PolicyError};
pub use name::sni_matches;
pub use network::{NetworkDirection, Networks, ParseNetworkError};

use crate::time::PacketTime;
use crate::tls::plaintext::PlaintextFacts;
use crate::tls::{HandshakeSummary, ProtocolVersion};

/// Finding severity, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text.to_ascii_lowercase().as_str() {
            "info" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => {
                return Err(format!(
                    "{text:?} is not a severity (info, low, medium, high, critical)"
                ))
            }
        })
    }
}

/// The exception that covers a finding, as written into the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExceptionRef {
    pub id: String,
    pub owner: String,
    pub expires: String,
}

/// One thing wrong with a session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub id: &'static str,
    pub severity: Severity,
    pub message: String,
    pub evidence: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception: Option<ExceptionRef>,
}

/// What the rules look at: one finished session.
#[derive(Debug, Clone, Copy)]
pub struct SessionFacts<'a> {
    /// The handshake's packet time (ClientHello), at which certificates are judged.
    pub time: PacketTime,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub direction: NetworkDirection,
    pub tls: Option<&'a HandshakeSummary>,
    pub plaintext: Option<&'a PlaintextFacts>,
    /// What earlier sessions to the same server ip:port showed (before this one).
    pub previous: Option<history::ServiceMemory>,
}

impl SessionFacts<'_> {
    pub fn sni(&self) -> Option<&str> {
        self.tls?.client_hello.as_ref()?.server_name.as_deref()
    }

    pub fn version(&self) -> Option<ProtocolVersion> {
        self.tls?.version()?.normalized()
    }
}

/// A TLS version as policy files write it: "1.3", "1.2", "1.1", "1.0", "ssl3".
pub fn parse_version(text: &str) -> Option<ProtocolVersion> {
    Some(
        match text
            .trim()
            .to_ascii_lowercase()
            .trim_start_matches("tls")
            .trim_start_matches('v')
        {
            "1.3" => ProtocolVersion::TLS13,
            "1.2" => ProtocolVersion::TLS12,
            "1.1" => ProtocolVersion::TLS11,
            "1.0" => ProtocolVersion::TLS10,
            "ssl3" | "ssl3.0" | "3.0" => ProtocolVersion::SSL3,
            _ => return None,
        },
    )
}

/// Minimum version per direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Baselines {
    pub internal: ProtocolVersion,
    pub inbound: ProtocolVersion,
    pub outbound: ProtocolVersion,
    pub external: ProtocolVersion,
}

impl Default for Baselines {
    fn default() -> Self {
        Self {
            internal: ProtocolVersion::TLS13,
            inbound: ProtocolVersion::TLS12,
            outbound: ProtocolVersion::TLS12,
            external: ProtocolVersion::TLS12,
        }
    }
}

impl Baselines {
    pub fn for_direction(&self, direction: NetworkDirection) -> ProtocolVersion {
        match direction {
            NetworkDirection::Internal => self.internal,
            NetworkDirection::Inbound => self.inbound,
            NetworkDirection::Outbound => self.outbound,
            NetworkDirection::External => self.external,
        }
    }
}

/// A trust anchor: a CA certificate from the policy's bundle or the system store.
#[derive(Debug, Clone)]
pub struct TrustAnchor {
    pub der: Vec<u8>,
    pub subject: String,
}

/// A service that must present client certificates.
#[derive(Debug, Clone)]
pub struct MtlsService {
    pub name: String,
    pub selector: ExceptionMatch,
}

/// Certificate hygiene settings.
#[derive(Debug, Clone)]
pub struct CertificateRules {
    pub expiry_warning_days: i64,
    pub max_validity_days: i64,
    /// Internal CAs from the policy: with any, chains must verify up to one.
    pub trusted: Vec<TrustAnchor>,
    /// Public roots (system store): used only to decide whether a chain is complete.
    pub system: Vec<TrustAnchor>,
}

impl Default for CertificateRules {
    fn default() -> Self {
        Self {
            expiry_warning_days: 30,
            max_validity_days: 398,
            trusted: Vec::new(),
            system: Vec::new(),
        }
    }
}

/// The TCP ports policy treats as TLS-only.
pub const DEFAULT_TLS_PORTS: [u16; 14] = [
    443, 8443, 6443, 2379, 2380, 10250, 636, 993, 995, 465, 5671, 8883, 9093, 3269,
];

/// Everything the analyzer judges by.
#[derive(Debug, Clone)]
pub struct Policy {
    pub internal: Networks,
    /// Named internal zones (also part of `internal`).
    pub zones: Vec<(String, Networks)>,
    pub baselines: Baselines,
    pub tls_ports: Vec<u16>,
    pub certificates: CertificateRules,
    pub mtls: Vec<MtlsService>,
    pub exceptions: Vec<Exception>,
    /// Bound on the cross-session service history.
    pub max_services: usize,
    /// Named services with owners (`[[service]]`), first match wins.
    pub services: Vec<Service>,
    /// Client TLS stacks by JA4 b/c: the built-in catalogue plus `[[stack]]`.
    pub stacks: crate::tls::fingerprint::stacks::StackCatalog,
}

/// A service the policy names, with its owner: records carry both, and the
/// inventory groups by them.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub owner: String,
    pub selector: ExceptionMatch,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            internal: Networks::default(),
            zones: Vec::new(),
            baselines: Baselines::default(),
            tls_ports: DEFAULT_TLS_PORTS.to_vec(),
            certificates: CertificateRules::default(),
            mtls: Vec::new(),
            exceptions: Vec::new(),
            max_services: 100_000,
            services: Vec::new(),
            stacks: crate::tls::fingerprint::stacks::StackCatalog::builtin(),
        }
    }
}

impl Policy {
    /// The `[[service]]` a session belongs to.
    pub fn service(&self, facts: &SessionFacts<'_>) -> Option<&Service> {
        self.services
            .iter()
            .find(|service| service.selector.matches(facts))
    }

    /// The zone name of an address, if it is in a named zone.
    pub fn zone(&self, ip: std::net::IpAddr) -> Option<&str> {
        self.zones
            .iter()
            .find(|(_, networks)| networks.contains(ip))
            .map(|(name, _)| name.as_str())
    }

    /// Loads the system CA bundle (Debian's ca-certificates) for chain-completeness checks.
    pub fn with_system_roots(mut self) -> Self {
        for path in [
            "/etc/ssl/certs/ca-certificates.crt",
            "/etc/pki/tls/certs/ca-bundle.crt",
        ] {
            if let Ok(bytes) = std::fs::read(path) {
                self.certificates.system = file::anchors_from_pem(&bytes).unwrap_or_default();
                break;
            }
        }
        self
    }
}

/// Policy counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub sessions_evaluated: u64,
    pub findings: u64,
    pub findings_excepted: u64,
    pub services_evicted: u64,
}

/// Applies the rules and exceptions in packet order; owns the service history.
pub struct Evaluator {
    history: history::History,
    drift: drift::Drift,
    counters: Counters,
}

impl Evaluator {
    pub fn new(policy: &Policy) -> Self {
        Self::with_known(policy, Vec::new())
    }

    /// An evaluator that judges drift against what earlier runs saw (the inventory).
    pub fn with_known(policy: &Policy, known: Vec<drift::KnownService>) -> Self {
        Self {
            history: history::History::new(policy.max_services),
            drift: drift::Drift::new(policy.max_services, known),
            counters: Counters::default(),
        }
    }

    pub fn counters(&self) -> Counters {
        let mut counters = self.counters.clone();
        counters.services_evicted = self.history.evicted() + self.drift.evicted();
        counters
    }

    /// Findings for one session, exceptions applied. Call in packet order.
    pub fn evaluate(&mut self, mut facts: SessionFacts<'_>, policy: &Policy) -> Vec<Finding> {
        facts.previous = self.history.get(facts.server);
        let mut findings = Vec::new();
        for rule in rules::RULES {
            (rule.check)(
                &facts,
                policy,
                &mut rules::Findings::new(rule, &mut findings),
            );
        }
        rules::derive(&facts, policy, &mut findings);
        self.drift.check(&facts, policy, &mut findings);
        exception::apply(&facts, policy, &mut findings);
        self.history.observe(&facts);
        self.counters.sessions_evaluated += 1;
        self.counters.findings += findings.len() as u64;
        self.counters.findings_excepted +=
            findings.iter().filter(|f| f.exception.is_some()).count() as u64;
        findings
    }
}
