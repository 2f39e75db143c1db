//! The worker's half of the output: everything about a finished session that
//! needs no other session is done where the session ended, in parallel. The
//! fingerprints are computed once, the worker's [`Judge`] runs the
//! per-session rules, and the record is serialised up to its findings. The
//! output stage then only adds the cross-session findings and writes bytes.

use std::sync::Arc;

use serde_json::value::RawValue;

use super::certificate::{RenderCache, RenderCounters, RenderLimits, Rendered};
use super::community_id::community_id_v1;
use super::ecs::*;
use super::{OutputError, OutputOptions};
use crate::flow::{EmitOrder, FlowContent, FlowEvent};
use crate::policy::{
    Finding, Judge, JudgeCounters, JudgeLimits, Observation, Policy, SessionFacts,
};
use crate::time::Rfc3339Micros;
use crate::tls::fingerprint::stacks::StackMatch;
use crate::tls::fingerprint::{ja3, ja4};
use crate::tls::plaintext::{self, PlaintextFacts};
use crate::tls::{Chain, ClientHelloSummary, HandshakeSummary, ProtocolVersion};

/// A session serialised up to its findings, with what the output stage needs
/// to finish it.
pub struct PreparedRecord {
    pub order: EmitOrder,
    /// `{"@timestamp":…,"tlstap":{…` without the two closing braces.
    head: Result<Vec<u8>, OutputError>,
    /// The findings the worker judged (exceptions not yet applied).
    pub findings: Vec<Finding>,
    pub observation: Observation,
    pub kind: RecordKind,
}

/// What the stats record counts of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Tls {
        /// ECS version text, "unknown" without a ServerHello.
        version: &'static str,
        /// ClientHello → ServerHello.
        rtt_us: Option<u64>,
    },
    Plaintext,
}

impl PreparedRecord {
    /// Bytes a record waiting for the output stage holds, for the memory cap.
    pub fn footprint(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.head.as_ref().map_or(0, Vec::capacity)
            + self.findings.capacity() * std::mem::size_of::<Finding>()
    }

    /// The record's head (everything before its findings).
    pub(super) fn head(&self) -> Result<&[u8], OutputError> {
        match &self.head {
            Ok(head) => Ok(head),
            Err(error) => Err(OutputError::Record(error.to_string())),
        }
    }

    /// The rest of the record after its head: `findings` and the closing
    /// braces, newline-terminated, into `tail`.
    pub(super) fn write_tail<'a>(
        findings: impl Iterator<Item = &'a Finding>,
        tail: &mut Vec<u8>,
    ) -> Result<(), OutputError> {
        tail.clear();
        tail.extend_from_slice(b",\"findings\":[");
        for (i, finding) in findings.enumerate() {
            if i > 0 {
                tail.push(b',');
            }
            finding.write_json(tail)?;
        }
        tail.extend_from_slice(b"]}}\n");
        Ok(())
    }
}

/// Per-worker counters of the preparation (cache use).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrepareCounters {
    pub judge: JudgeCounters,
    pub rendered_certificates: RenderCounters,
}

impl PrepareCounters {
    pub fn add(&mut self, other: &Self) {
        self.judge.add(&other.judge);
        self.rendered_certificates.add(&other.rendered_certificates);
    }
}

/// Bounds of the preparer's caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrepareLimits {
    pub judge: JudgeLimits,
    pub rendered_certificates: RenderLimits,
    /// Distinct ClientHello shapes whose fingerprints are kept.
    pub client_hellos: usize,
}

impl Default for PrepareLimits {
    fn default() -> Self {
        Self {
            judge: JudgeLimits::default(),
            rendered_certificates: RenderLimits::default(),
            client_hellos: 4096,
        }
    }
}

/// `tlstap.client` of a ClientHello with its prints.
fn tlstap_client<'a>(
    h: &'a ClientHelloSummary,
    p: &'a ClientPrints,
    raw: bool,
    chain: &'a [&'a RawValue],
) -> TlstapClient<'a> {
    TlstapClient {
        ja3_full: &p.ja3.full,
        ja4: &p.ja4.fingerprint,
        ja4_r: raw.then_some(p.ja4.raw.as_str()),
        stack: &p.stack,
        stack_basis: p.stack_basis,
        legacy_version: VersionLabel(h.legacy_version),
        offered_versions: p.offered_versions.as_deref(),
        alpn: &h.alpn,
        cipher_ids: p.cipher_ids.as_deref(),
        supported_groups: p.supported_groups.as_deref(),
        key_share_groups: GroupNames(&h.key_share_groups),
        signature_algorithms: p.signature_algorithms.as_deref(),
        extensions: &h.extensions,
        session_ticket: h.session_ticket,
        psk: h.psk,
        early_data: h.early_data,
        ech: h.ech,
        fallback_scsv: h.fallback_scsv,
        sslv2_format: h.sslv2_format,
        chain,
    }
}

/// One worker's preparer: owns the judge and the rendered-certificate cache.
pub struct Preparer<'p> {
    policy: &'p Policy,
    options: OutputOptions,
    judge: Judge,
    rendered: RenderCache,
    prints: PrintCache,
    /// Records are serialised here, then copied out at their exact size: a
    /// record grown in place was reallocated (and copied) three times.
    scratch: Vec<u8>,
}

/// The client's fingerprints and its offer lists as records write them,
/// computed once per distinct ClientHello shape.
struct ClientPrints {
    ja3: ja3::Ja3,
    ja4: ja4::Ja4,
    stack: String,
    stack_basis: Option<&'static str>,
    supported_ciphers: Option<Box<RawValue>>,
    offered_versions: Option<Box<RawValue>>,
    cipher_ids: Option<Box<RawValue>>,
    supported_groups: Option<Box<RawValue>>,
    signature_algorithms: Option<Box<RawValue>>,
    /// All of `tlstap.client` for a client without certificates: every
    /// field of it is in the shape.
    client: Option<Box<RawValue>>,
}

/// A list rendered once; None when it has no element.
fn rendered<T: serde::Serialize>(empty: bool, list: T) -> Option<Box<RawValue>> {
    if empty {
        return None;
    }
    serde_json::value::to_raw_value(&list).ok()
}

impl ClientPrints {
    fn new(
        hello: &ClientHelloSummary,
        summary: &HandshakeSummary,
        policy: &Policy,
        raw: bool,
    ) -> Self {
        let mut prints = Self::fields(hello, summary, policy);
        prints.client =
            serde_json::value::to_raw_value(&tlstap_client(hello, &prints, raw, &[])).ok();
        prints
    }

    fn fields(hello: &ClientHelloSummary, summary: &HandshakeSummary, policy: &Policy) -> Self {
        let ja4 = ja4::client(hello, summary.carrier);
        let found = policy.stacks.identify_hello(hello, summary.carrier);
        let ciphers = CipherNames(&hello.cipher_suites);
        Self {
            ja3: ja3::client(hello),
            stack: found.label(),
            stack_basis: match found {
                StackMatch::Known { basis, .. } => Some(basis.as_str()),
                StackMatch::Unknown => None,
            },
            ja4,
            supported_ciphers: rendered(ciphers.is_empty(), ciphers),
            offered_versions: rendered(
                hello.supported_versions.is_empty(),
                VersionLabels(&hello.supported_versions),
            ),
            cipher_ids: rendered(
                hello.cipher_suites.is_empty(),
                HexList(&hello.cipher_suites),
            ),
            supported_groups: rendered(
                hello.supported_groups.is_empty(),
                GroupNames(&hello.supported_groups),
            ),
            signature_algorithms: rendered(
                hello.signature_algorithms.is_empty(),
                HexList(&hello.signature_algorithms),
            ),
            client: None,
        }
    }
}

/// Clients of one stack send the same ClientHello shape again and again:
/// the fingerprints of a shape are computed once. Keyed by a hash of every
/// field JA3, JA4 and the stack match read, and checked field by field on a
/// hit, so a collision costs a recomputation, never a wrong fingerprint.
struct PrintCache {
    entries: std::collections::HashMap<u64, (Shape, Arc<ClientPrints>), ahash::RandomState>,
    order: std::collections::VecDeque<u64>,
    hasher: ahash::RandomState,
    max_entries: usize,
    /// `--raw-fingerprints`: the rendered client includes `ja4_r`.
    raw: bool,
}

/// The fingerprinted fields of a ClientHello (not SNI, random or session id;
/// only whether SNI was sent, through the extension list).
struct Shape {
    carrier: crate::tls::fingerprint::Carrier,
    legacy_version: u16,
    cipher_suites: Vec<u16>,
    extensions: Vec<u16>,
    supported_groups: Vec<u16>,
    ec_point_formats: Vec<u8>,
    signature_algorithms: Vec<u16>,
    supported_versions: Vec<u16>,
    alpn: Vec<String>,
    key_share_groups: Vec<u16>,
    /// session_ticket, psk, early_data, ech, fallback_scsv, sslv2_format.
    flags: [bool; 6],
}

fn flags(hello: &ClientHelloSummary) -> [bool; 6] {
    [
        hello.session_ticket,
        hello.psk,
        hello.early_data,
        hello.ech,
        hello.fallback_scsv,
        hello.sslv2_format,
    ]
}

impl Shape {
    fn matches(
        &self,
        hello: &ClientHelloSummary,
        carrier: crate::tls::fingerprint::Carrier,
    ) -> bool {
        self.carrier == carrier
            && self.legacy_version == hello.legacy_version
            && self.cipher_suites == hello.cipher_suites
            && self.extensions == hello.extensions
            && self.supported_groups == hello.supported_groups
            && self.ec_point_formats == hello.ec_point_formats
            && self.signature_algorithms == hello.signature_algorithms
            && self.supported_versions == hello.supported_versions
            && self.alpn == hello.alpn
            && self.key_share_groups == hello.key_share_groups
            && self.flags == flags(hello)
    }

    fn of(hello: &ClientHelloSummary, carrier: crate::tls::fingerprint::Carrier) -> Self {
        Self {
            carrier,
            legacy_version: hello.legacy_version,
            cipher_suites: hello.cipher_suites.clone(),
            extensions: hello.extensions.clone(),
            supported_groups: hello.supported_groups.clone(),
            ec_point_formats: hello.ec_point_formats.clone(),
            signature_algorithms: hello.signature_algorithms.clone(),
            supported_versions: hello.supported_versions.clone(),
            alpn: hello.alpn.clone(),
            key_share_groups: hello.key_share_groups.clone(),
            flags: flags(hello),
        }
    }
}

impl PrintCache {
    fn new(max_entries: usize, raw: bool) -> Self {
        Self {
            entries: Default::default(),
            order: Default::default(),
            hasher: ahash::RandomState::new(),
            max_entries,
            raw,
        }
    }

    fn get(
        &mut self,
        hello: &ClientHelloSummary,
        summary: &HandshakeSummary,
        policy: &Policy,
    ) -> Arc<ClientPrints> {
        use std::hash::{BuildHasher, Hash, Hasher};
        let carrier = summary.carrier;
        let mut state = self.hasher.build_hasher();
        carrier.hash(&mut state);
        hello.legacy_version.hash(&mut state);
        hello.cipher_suites.hash(&mut state);
        hello.extensions.hash(&mut state);
        hello.supported_groups.hash(&mut state);
        hello.ec_point_formats.hash(&mut state);
        hello.signature_algorithms.hash(&mut state);
        hello.supported_versions.hash(&mut state);
        hello.alpn.hash(&mut state);
        hello.key_share_groups.hash(&mut state);
        flags(hello).hash(&mut state);
        let key = state.finish();
        match self.entries.get(&key) {
            Some((shape, prints)) if shape.matches(hello, carrier) => return Arc::clone(prints),
            Some(_) => return Arc::new(ClientPrints::new(hello, summary, policy, self.raw)),
            None => {}
        }
        let prints = Arc::new(ClientPrints::new(hello, summary, policy, self.raw));
        if self.max_entries == 0 {
            return prints;
        }
        while self.entries.len() >= self.max_entries {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.entries.remove(&oldest);
        }
        self.order.push_back(key);
        self.entries
            .insert(key, (Shape::of(hello, carrier), Arc::clone(&prints)));
        prints
    }
}

impl<'p> Preparer<'p> {
    pub fn new(policy: &'p Policy, options: OutputOptions, limits: PrepareLimits) -> Self {
        Self {
            policy,
            options,
            judge: Judge::new(limits.judge),
            rendered: RenderCache::new(limits.rendered_certificates),
            prints: PrintCache::new(limits.client_hellos, options.raw_fingerprints),
            scratch: Vec::with_capacity(16 * 1024),
        }
    }

    pub fn counters(&self) -> PrepareCounters {
        PrepareCounters {
            judge: self.judge.counters().clone(),
            rendered_certificates: self.rendered.counters().clone(),
        }
    }

    /// Bytes held by the caches, for memory accounting.
    pub fn cache_bytes(&self) -> usize {
        self.judge.bytes() + self.rendered.bytes()
    }

    pub fn prepare(&mut self, event: FlowEvent) -> PreparedRecord {
        let policy = self.policy;
        let (tls, plaintext) = match &event.content {
            FlowContent::Tls(summary) => (Some(summary.as_ref()), None),
            FlowContent::Plaintext {
                client_head,
                server_head,
            } => (None, Some(plaintext::classify(client_head, server_head))),
        };
        let hello = tls.and_then(|t| t.client_hello.as_ref());
        let prints = tls.zip(hello).map(|(t, h)| self.prints.get(h, t, policy));
        let time = hello.map_or(event.first_seen, |hello| hello.time);
        let facts = SessionFacts {
            time,
            client: std::net::SocketAddr::new(event.client.ip, event.client.port),
            server: std::net::SocketAddr::new(event.server.ip, event.server.port),
            direction: policy.internal.direction(event.client.ip, event.server.ip),
            tls,
            plaintext: plaintext.as_ref(),
            client_ja4: prints.as_ref().map(|p| p.ja4.fingerprint.as_str()),
            client_stack: prints.as_ref().map(|p| p.stack.as_str()),
        };
        let findings = self.judge.judge(&facts, policy);
        let observation = facts.observation();
        let kind = match tls {
            Some(summary) => RecordKind::Tls {
                version: summary
                    .version()
                    .and_then(ProtocolVersion::ecs_version)
                    .unwrap_or("unknown"),
                rtt_us: summary
                    .client_hello
                    .as_ref()
                    .zip(summary.server_hello.as_ref())
                    .map(|(client, server)| server.time.since(client.time).as_micros() as u64),
            },
            None => RecordKind::Plaintext,
        };
        let head = self.head(&event, &facts, plaintext.as_ref(), prints.as_deref());
        PreparedRecord {
            order: event.order,
            head,
            findings,
            observation,
            kind,
        }
    }

    fn render(&mut self, chain: &Chain) -> Vec<Arc<Rendered>> {
        chain
            .certificates
            .iter()
            .map(|certificate| self.rendered.get(certificate))
            .collect()
    }

    fn head(
        &mut self,
        event: &FlowEvent,
        facts: &SessionFacts<'_>,
        plaintext: Option<&PlaintextFacts>,
        prints: Option<&ClientPrints>,
    ) -> Result<Vec<u8>, OutputError> {
        let policy = self.policy;
        let (server_chain, client_chain) = match facts.tls {
            Some(summary) => (
                self.render(&summary.server_chain),
                self.render(&summary.client_chain),
            ),
            None => (Vec::new(), Vec::new()),
        };
        let server_entries = chain_entries(&server_chain);
        let client_entries = chain_entries(&client_chain);
        let server_ja3 = facts
            .tls
            .and_then(|t| t.server_hello.as_ref())
            .and_then(|sh| sh.sslv2_cipher_spec.is_none().then(|| ja3::server(sh)));
        let raw = self.options.raw_fingerprints;
        let tcp = matches!(event.transport, crate::decode::Transport::Tcp);
        let mut vlans = event.encap.vlan_ids();
        let outer = vlans.next();
        let inner = vlans.next();
        let service = policy.service(facts);
        let (tls, mut tlstap, protocol, start) = match facts.tls {
            Some(summary) => {
                let hello = summary.client_hello.as_ref();
                let server_hello = summary.server_hello.as_ref();
                let version = summary.version();
                // A leaf that did not parse has no ECS fields (it is in the chain).
                let tls = Tls {
                    version: version.and_then(ProtocolVersion::ecs_version),
                    version_protocol: version.and_then(ProtocolVersion::ecs_protocol),
                    cipher: server_hello.map(|sh| match sh.sslv2_cipher_spec {
                        Some(spec) => Label::sslv2_cipher(spec),
                        None => Label::cipher(sh.cipher_suite),
                    }),
                    curve: summary.curve().map(Label::group),
                    established: summary.established,
                    resumed: summary.resumed,
                    next_protocol: server_hello.and_then(|sh| sh.alpn.as_deref()),
                    client: TlsClient {
                        ja3: prints.map(|p| p.ja3.hash.as_str()),
                        server_name: hello.and_then(|h| h.server_name.as_deref()),
                        supported_ciphers: prints.and_then(|p| p.supported_ciphers.as_deref()),
                        certificate: leaf(&client_chain),
                    },
                    server: server_hello.map(|_| TlsServer {
                        ja3s: server_ja3.as_ref().map(|j| j.hash.as_str()),
                        certificate: leaf(&server_chain),
                    }),
                };
                let tlstap = Tlstap {
                    dtls_cookie_exchange: summary.hello_verify,
                    cipher_id: server_hello.map(|sh| match sh.sslv2_cipher_spec {
                        Some(spec) => Label::Hex24(spec),
                        None => Label::Hex16(sh.cipher_suite),
                    }),
                    version_variant: server_hello.and_then(|sh| sh.version().variant()),
                    client: hello.zip(prints).map(|(h, p)| match &p.client {
                        Some(rendered) if client_entries.is_empty() => {
                            ClientFields::Rendered(rendered)
                        }
                        _ => ClientFields::Fields(tlstap_client(h, p, raw, &client_entries)),
                    }),
                    server: server_hello.map(|sh| TlstapServer {
                        selected_version: sh.selected_version.map(VersionLabel),
                        compression_method: sh.compression_method,
                        extensions: &sh.extensions,
                        ja3s_full: server_ja3.as_ref().map(|j| j.full.as_str()),
                        downgrade_sentinel: sh.downgrade_sentinel,
                        certificates_encrypted: summary.certificates_encrypted,
                        certificate_requested: summary.certificate_requested,
                        session_ticket_issued: summary.session_ticket_issued,
                        dh_prime_bits: summary.dh_prime_bits,
                        chain: &server_entries,
                        chain_dropped: summary.server_chain.dropped,
                    }),
                    alerts: &summary.alerts,
                    hello_retry: summary.hello_retry,
                    hello_retry_group: summary.hello_retry_group.map(Label::group),
                    handshake_rtt_us: hello
                        .zip(server_hello)
                        .map(|(ch, sh)| (sh.time.as_nanos() - ch.time.as_nanos()) / 1000),
                    truncated: summary.truncated,
                    decrypted: summary.decrypted,
                    parse_error: summary.parse_error,
                    heartbeat_records: {
                        let total = summary.heartbeat_records[0] + summary.heartbeat_records[1];
                        (total > 0).then_some(total)
                    },
                    ..Tlstap::default()
                };
                let start = hello.map_or(event.first_seen, |hello| hello.time);
                let protocol = match (&event.datagram, event.starttls) {
                    (Some(datagram), _) => datagram.protocol.as_str(),
                    (None, Some(preamble)) => preamble.as_str(),
                    // PostgreSQL 17's direct TLS (no SSLRequest) is told by its ALPN.
                    (None, None)
                        if hello.is_some_and(|h| h.alpn.iter().any(|p| p == "postgresql")) =>
                    {
                        "postgresql"
                    }
                    (None, None) => "tls",
                };
                (Some(tls), tlstap, protocol, start)
            }
            None => {
                let protocol = plaintext.map_or("unknown", |p| p.protocol.as_str());
                (None, Tlstap::default(), protocol, event.first_seen)
            }
        };
        tlstap.service = service.map(|s| TlstapService { owner: &s.owner });
        tlstap.starttls = event.starttls.map(|p| p.as_str());
        tlstap.client_zone = policy.zone(event.client.ip);
        tlstap.server_zone = policy.zone(event.server.ip);
        tlstap.plaintext = plaintext.map(Plaintext::new);
        tlstap.end_reason = event.end.as_str();
        tlstap.midstream = tcp && !event.syn_seen;
        tlstap.encap = (!event.encap.is_empty()).then_some(Encap(&event.encap));
        tlstap.quic = event.datagram.as_ref().and_then(|datagram| {
            let name = crate::tls::quic::version_name;
            Some(Quic {
                version: name(datagram.quic_version?),
                server_version: datagram.quic_server_version.map(name),
                retry: datagram.quic_retry,
                version_negotiation: datagram
                    .quic_version_negotiation
                    .as_ref()
                    .map(|versions| versions.iter().map(|&v| name(v)).collect()),
            })
        });
        let outcome = match &tls {
            Some(tls) if tls.established => "success",
            Some(_) => "failure",
            None => "unknown",
        };
        let dataset = if tls.is_some() {
            "tlstap.tls"
        } else {
            "tlstap.plaintext"
        };
        let record = EcsRecord {
            timestamp: Rfc3339Micros(start),
            event: Event {
                kind: "event",
                category: ["network"],
                kind_type: ["connection"],
                dataset,
                outcome,
                start: Rfc3339Micros(event.first_seen),
                end: Rfc3339Micros(event.last_seen),
                duration: event
                    .last_seen
                    .as_nanos()
                    .saturating_sub(event.first_seen.as_nanos()),
            },
            source: Host {
                ip: event.client.ip,
                port: event.client.port,
                packets: event.packets[0],
                bytes: event.bytes[0],
            },
            destination: Host {
                ip: event.server.ip,
                port: event.server.port,
                packets: event.packets[1],
                bytes: event.bytes[1],
            },
            network: Network {
                transport: if tcp { "tcp" } else { "udp" },
                protocol,
                direction: facts.direction.as_str(),
                community_id: community_id_v1(
                    (event.client.ip, event.client.port),
                    (event.server.ip, event.server.port),
                    tcp,
                ),
                vlan: outer.map(|id| Vlan { id }),
                inner: inner.map(|id| InnerVlan { vlan: Vlan { id } }),
            },
            service: service.map(|s| EcsService {
                target: ServiceTarget { name: &s.name },
            }),
            tls,
            tlstap,
        };
        let head = &mut self.scratch;
        head.clear();
        serde_json::to_writer(&mut *head, &record)?;
        // The record ends with the tlstap object (never empty) and its own
        // brace: drop both, the findings go in before them.
        if !head.ends_with(b"}}") {
            return Err(OutputError::Record(
                "record does not end with its tlstap object".to_string(),
            ));
        }
        let kept = head.len() - 2;
        let out = head[..kept].to_vec();
        if head.capacity() > 256 * 1024 {
            // One huge record does not pin its buffer for the whole run.
            *head = Vec::with_capacity(16 * 1024);
        }
        Ok(out)
    }
}

fn chain_entries(chain: &[Arc<Rendered>]) -> Vec<&RawValue> {
    chain.iter().map(|r| r.chain_entry.as_ref()).collect()
}

/// A leaf that did not parse has no ECS fields (it is in the chain).
fn leaf(chain: &[Arc<Rendered>]) -> Option<&super::certificate::Leaf> {
    chain.first().and_then(|r| r.leaf.as_ref())
}
