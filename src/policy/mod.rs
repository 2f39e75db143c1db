//! Policy: what is internal, what the baseline is, and what is wrong with a
//! session, in stable finding ids a security team can act on.
//!
//! Judgement happens in two places. Each worker builds [`SessionFacts`] for a
//! finished session (tls/x509 summaries, `std::net` endpoints) and its
//! [`Judge`] runs every rule that needs only that session, with certificate
//! verdicts cached per distinct chain. The output stage, which sees sessions in
//! packet order, hands each session's [`Observation`] to the [`Evaluator`]: the
//! rules that need earlier sessions (a bounded [`history::History`] and the
//! [`drift::Drift`] memory), then the exceptions, which cover findings without
//! hiding them. Rules are pure functions in `rules/`, one file per family.

pub mod drift;
mod exception;
mod file;
pub mod history;
mod judge;
mod name;
mod network;
pub mod rules;

use std::net::SocketAddr;

use serde::Serialize;

pub use exception::{Exception, ExceptionMatch};
pub use file::{load, parse, PolicyCheck, PolicyError};
pub use judge::{Judge, JudgeCounters, JudgeLimits};
pub use name::sni_matches;
pub use network::{NetworkDirection, Networks, ParseNetworkError};

use crate::time::PacketTime;
use crate::tls::plaintext::{PlaintextFacts, PlaintextProtocol};
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

/// Which certificate chain a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainRole {
    Server,
    Client,
}

impl ChainRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ChainRole::Server => "server",
            ChainRole::Client => "client",
        }
    }
}

/// One thing wrong with a session.
#[derive(Debug, Clone)]
pub struct Finding {
    pub id: &'static str,
    /// Position of the rule in [`rules::RULES`]: findings sort and are
    /// counted by it without comparing id strings.
    rank: u8,
    pub severity: Severity,
    /// Message and evidence, built once (in a worker) and shared: a cached
    /// chain verdict is copied into every session that repeats it without
    /// copying its text.
    text: std::sync::Arc<FindingText>,
    pub exception: Option<ExceptionRef>,
    /// The chain the finding is about (its evidence's `chain`), if any.
    pub chain: Option<ChainRole>,
}

#[derive(Debug)]
struct FindingText {
    message: String,
    evidence: Evidence,
    /// The severity the finding was judged with (an exception may lower the
    /// finding's own).
    severity: Severity,
    /// The whole finding as written when no exception changed it: serialised
    /// once, where it was judged (a worker, for most), not in the output
    /// stage every session waits for, and once per cached chain verdict.
    rendered: Box<str>,
}

/// The finding as written, field by field; without its evidence and
/// exception when `whole` is false (the head a rendering starts from).
struct FindingFields<'a> {
    finding: &'a Finding,
    whole: bool,
}

impl Serialize for FindingFields<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let finding = self.finding;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", finding.id)?;
        map.serialize_entry("severity", &finding.severity)?;
        map.serialize_entry("message", &finding.text.message)?;
        if self.whole {
            map.serialize_entry("evidence", &finding.text.evidence.raw())?;
            if let Some(exception) = &finding.exception {
                map.serialize_entry("exception", exception)?;
            }
        }
        map.end()
    }
}

impl Finding {
    pub fn new(
        rule: &rules::Rule,
        severity: Severity,
        message: String,
        evidence: Evidence,
    ) -> Self {
        let mut finding = Self {
            id: rule.id,
            rank: u8::try_from(rules::rank(rule.id)).unwrap_or(u8::MAX),
            severity,
            text: std::sync::Arc::new(FindingText {
                message,
                evidence,
                severity,
                rendered: Box::default(),
            }),
            exception: None,
            chain: None,
        };
        let rendered = render(|out| {
            // The fields but the evidence, then the evidence as it was
            // rendered: `{"id":…,"message":…` + `,"evidence":{…}}`.
            serde_json::to_writer(
                &mut *out,
                &FindingFields {
                    finding: &finding,
                    whole: false,
                },
            )?;
            out.pop();
            out.extend_from_slice(b",\"evidence\":");
            out.extend_from_slice(finding.text.evidence.0.as_bytes());
            out.push(b'}');
            Ok(())
        })
        .unwrap_or_else(|| "{}".into());
        if let Some(text) = std::sync::Arc::get_mut(&mut finding.text) {
            text.rendered = rendered;
        }
        finding
    }

    /// The finding as records write it: its pre-rendered JSON unless an
    /// exception changed it, else rendered now.
    pub fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        if self.severity == self.text.severity && self.exception.is_none() {
            out.extend_from_slice(self.text.rendered.as_bytes());
            Ok(())
        } else {
            serde_json::to_writer(
                out,
                &FindingFields {
                    finding: self,
                    whole: true,
                },
            )
        }
    }

    /// The same finding, about `chain`.
    pub fn on(mut self, chain: ChainRole) -> Self {
        self.chain = Some(chain);
        self
    }

    /// Position of the finding's rule in [`rules::RULES`].
    pub fn rank(&self) -> usize {
        usize::from(self.rank)
    }

    pub fn message(&self) -> &str {
        &self.text.message
    }

    /// The evidence as serialised JSON (an object).
    pub fn evidence(&self) -> &str {
        &self.text.evidence.0
    }

    /// Heap bytes of the text, for cache accounting.
    pub fn text_bytes(&self) -> usize {
        self.text.message.capacity() + self.text.evidence.0.len() + self.text.rendered.len()
    }
}

impl Serialize for Finding {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        FindingFields {
            finding: self,
            whole: true,
        }
        .serialize(serializer)
    }
}

/// A finding's evidence: a JSON object serialised once, straight from its
/// fields (see [`evidence!`]), and copied into records as it is.
#[derive(Debug)]
pub struct Evidence(Box<str>);

impl Evidence {
    pub fn new(fields: &impl Serialize) -> Self {
        let text = render(|out| serde_json::to_writer(out, fields));
        Self(text.unwrap_or_else(|| "{}".into()))
    }

    /// As a JSON value, for serialising a finding field by field (only when
    /// an exception changed it). serde_json wrote it, so it parses.
    fn raw(&self) -> Option<&serde_json::value::RawValue> {
        serde_json::from_str(&self.0).ok()
    }
}

/// JSON text that `write` produces, in a buffer of its exact size. Written
/// into a per-thread scratch buffer first: growing each finding's buffer from
/// nothing reallocated it three or four times. None if serialising failed
/// (plain fields never do).
fn render(write: impl FnOnce(&mut Vec<u8>) -> Result<(), serde_json::Error>) -> Option<Box<str>> {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(4096));
    }
    SCRATCH.with(|scratch| {
        let mut own = Vec::new();
        // Re-entered from inside a serialisation: a buffer of its own.
        let mut shared = scratch.try_borrow_mut().ok();
        let buffer = shared.as_deref_mut().unwrap_or(&mut own);
        buffer.clear();
        let text = write(buffer)
            .ok()
            .and_then(|()| std::str::from_utf8(buffer).ok())
            .map(Box::from);
        if buffer.capacity() > 64 * 1024 {
            *buffer = Vec::with_capacity(4096);
        }
        text
    })
}

/// Serialises with `Display` (through `collect_str`): evidence fields such as
/// addresses and times without an intermediate `String`.
pub struct Shown<T>(pub T);

impl<T: std::fmt::Display> Serialize for Shown<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// The fields of a JSON object, as a value that serialises in the order
/// written: `fields!{negotiated: "tls1.2", days: 3}`; `..base;` first
/// flattens another such value (or any map-like `Serialize`) in front.
#[macro_export]
macro_rules! fields {
    (..$base:expr; $($key:ident : $value:expr),* $(,)?) => {{
        // A module of its own: the field names double as type parameters,
        // and the lint allowance must cover the derived impl too.
        mod fields {
            #![allow(non_camel_case_types)]
            #[derive(serde::Serialize)]
            pub struct Fields<__Base, $($key),*> {
                #[serde(flatten)]
                pub base: __Base,
                $(pub $key: $key),*
            }
        }
        fields::Fields { base: $base, $($key: $value),* }
    }};
    ($($key:ident : $value:expr),* $(,)?) => {{
        mod fields {
            #![allow(non_camel_case_types)]
            #[derive(serde::Serialize)]
            pub struct Fields<$($key),*> { $(pub $key: $key),* }
        }
        fields::Fields { $($key: $value),* }
    }};
}

/// A finding's [`Evidence`] from its fields, serialised at once without a
/// `serde_json::Value` in between (the `json!` this replaced was a fifth of
/// the allocations on handshake-heavy traffic).
#[macro_export]
macro_rules! evidence {
    ($($tokens:tt)*) => {
        $crate::policy::Evidence::new(&$crate::fields!($($tokens)*))
    };
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
    /// The client's JA4 and the TLS stack it names, computed once per session.
    pub client_ja4: Option<&'a str>,
    pub client_stack: Option<&'a str>,
}

impl SessionFacts<'_> {
    pub fn sni(&self) -> Option<&str> {
        self.tls?.client_hello.as_ref()?.server_name.as_deref()
    }

    pub fn version(&self) -> Option<ProtocolVersion> {
        self.tls?.version()?.normalized()
    }

    /// What the output stage's judgement needs of this session.
    pub fn observation(&self) -> Observation {
        let tls = self.tls.map(|tls| TlsObservation {
            client_hello: tls.client_hello.is_some(),
            negotiated: tls
                .server_hello
                .as_ref()
                .map(|hello| (hello.version(), hello.cipher_suite)),
            client_stack: self.client_stack.map(str::to_string),
            server_leaf: tls.server_chain.leaf().map(|leaf| ServerLeaf {
                sha256: leaf.sha256_hex(),
                not_after: leaf.not_after.0,
            }),
        });
        Observation {
            time: self.time,
            client: self.client,
            server: self.server,
            sni: self.sni().map(str::to_string),
            tls,
            plaintext: self.plaintext.map(|p| p.protocol),
        }
    }
}

/// One session as the output stage's cross-session judgement sees it: small,
/// owned, built in the worker (the summaries stay there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub time: PacketTime,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub sni: Option<String>,
    pub tls: Option<TlsObservation>,
    /// The session was not TLS: what it spoke instead.
    pub plaintext: Option<PlaintextProtocol>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsObservation {
    pub client_hello: bool,
    /// The ServerHello's version (wire value) and cipher suite.
    pub negotiated: Option<(ProtocolVersion, u16)>,
    pub client_stack: Option<String>,
    pub server_leaf: Option<ServerLeaf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLeaf {
    /// Upper-case hex, as `tls.server.hash.sha256`.
    pub sha256: String,
    /// Unix seconds.
    pub not_after: i64,
}

impl Observation {
    /// The negotiated version, normalised (drafts as 1.3, DTLS as its TLS twin).
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.tls.as_ref()?.negotiated?.0.normalized()
    }
}

/// Applies the policy's exceptions to findings raised outside a sensor (the
/// estate drift at ingest), as the output stage applies them to a session's
/// own: covered findings become info and name the exception; an expired one
/// adds `exception_expired`.
pub fn apply_exceptions(session: &Observation, policy: &Policy, findings: &mut Vec<Finding>) {
    exception::apply(session, policy, findings);
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

/// Trust anchors indexed by subject, loaded once at start-up: chain checks
/// look up the anchors that could have issued a certificate instead of trying
/// them all.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    anchors: Vec<TrustAnchor>,
    by_subject: std::collections::HashMap<String, Vec<usize>>,
}

impl TrustStore {
    pub fn new(anchors: Vec<TrustAnchor>) -> Self {
        let mut by_subject: std::collections::HashMap<String, Vec<usize>> = Default::default();
        for (index, anchor) in anchors.iter().enumerate() {
            by_subject
                .entry(anchor.subject.clone())
                .or_default()
                .push(index);
        }
        Self {
            anchors,
            by_subject,
        }
    }

    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &TrustAnchor> {
        self.anchors.iter()
    }

    /// Anchors whose subject is `subject` (RFC 4514, as x509 prints it).
    pub fn with_subject<'a>(&'a self, subject: &str) -> impl Iterator<Item = &'a TrustAnchor> + 'a {
        self.by_subject
            .get(subject)
            .into_iter()
            .flatten()
            .filter_map(|&index| self.anchors.get(index))
    }

    pub fn has_subject(&self, subject: &str) -> bool {
        self.by_subject.contains_key(subject)
    }
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
    pub trusted: TrustStore,
    /// Public roots (system store): used only to decide whether a chain is complete.
    pub system: TrustStore,
}

impl Default for CertificateRules {
    fn default() -> Self {
        Self {
            expiry_warning_days: 30,
            max_validity_days: 398,
            trusted: TrustStore::default(),
            system: TrustStore::default(),
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
    /// `[sensor] memcap`: the memory cap when `--memcap` is not given.
    pub memcap: Option<usize>,
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
            memcap: None,
        }
    }
}

impl Policy {
    /// The `[[service]]` a session belongs to.
    pub fn service(&self, facts: &SessionFacts<'_>) -> Option<&Service> {
        self.services
            .iter()
            .find(|service| service.selector.matches_session(facts))
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
                self.certificates.system =
                    TrustStore::new(file::anchors_from_pem(&bytes).unwrap_or_default());
                break;
            }
        }
        self
    }
}

/// Policy counters (the output stage's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub sessions_evaluated: u64,
    pub findings: u64,
    pub findings_excepted: u64,
    pub services_evicted: u64,
}

/// The output stage's judgement, in packet order: the rules that need earlier
/// sessions, drift, then exceptions over every finding of the session. Owns
/// the service history and the drift memory.
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

    /// Adds the cross-session findings of one session to those its worker
    /// found, applies exceptions, and puts them in [`rules::RULES`] order.
    /// Call in packet order.
    pub fn evaluate(
        &mut self,
        session: &Observation,
        policy: &Policy,
        findings: &mut Vec<Finding>,
    ) {
        if let Some(previous) = self.history.get(session.server) {
            for rule in rules::RULES {
                if let rules::Check::History(check) = rule.check {
                    check(
                        session,
                        &previous,
                        &mut rules::Findings::new(rule, findings),
                    );
                }
            }
        }
        self.drift.check(session, policy, findings);
        exception::apply(session, policy, findings);
        rules::sort(findings);
        self.history.observe(session);
        self.counters.sessions_evaluated += 1;
        self.counters.findings += findings.len() as u64;
        self.counters.findings_excepted +=
            findings.iter().filter(|f| f.exception.is_some()).count() as u64;
    }
}
