//! Drift against what earlier sessions and earlier runs showed: a service's
//! negotiation changing, its leaf rotating (or not), a client stack it never
//! had. The inventory supplies earlier runs as [`KnownService`] values at
//! start-up; within a run the same memory grows session by session.

use std::net::SocketAddr;

/// What earlier runs saw of one service (server address and SNI).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KnownService {
    pub server: Option<SocketAddr>,
    /// Lower-case SNI; `None` for sessions without one.
    pub sni: Option<String>,
    /// Every (version, cipher) negotiated, as records write them.
    pub negotiations: Vec<KnownNegotiation>,
    /// Server leaves served, oldest first.
    pub leaves: Vec<KnownLeaf>,
    /// `tlstap.client.stack` values seen from clients of this service.
    pub stacks: Vec<String>,
    /// Day (days since 1970-01-01, packet time) of the last `cert_not_rotated`.
    pub not_rotated_day: Option<i64>,
}

/// ECS `tls.version`, `tls.version_protocol` and `tls.cipher` of a session.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct KnownNegotiation {
    pub version: String,
    pub protocol: String,
    pub cipher: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KnownLeaf {
    /// Upper-case hex SHA-256 of the DER, as `tls.server.hash.sha256`.
    pub sha256: String,
    /// Unix seconds.
    pub not_after: Option<i64>,
    pub first_seen: i64,
    pub last_seen: i64,
}

use std::collections::{HashMap, VecDeque};

use super::rules::drift::{CERT_NOT_ROTATED, CERT_ROTATED, NEGOTIATION_CHANGED, NEW_CLIENT_STACK};
use super::rules::Rule;
use super::{Evidence, Finding, Observation, Policy, Severity};
use crate::addr::AddrText;
use crate::tls::names;
use crate::x509::CertificateTime;

/// Rows kept per service; beyond them the oldest row goes (a flood of
/// distinct leaves or stacks cannot grow one service without bound).
const MAX_ROWS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ServiceId {
    server: SocketAddr,
    sni: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct ServiceState {
    negotiations: Vec<KnownNegotiation>,
    leaves: Vec<KnownLeaf>,
    stacks: Vec<String>,
    not_rotated_day: Option<i64>,
}

/// The drift memory: earlier runs (from the inventory) plus this run.
pub struct Drift {
    services: HashMap<ServiceId, ServiceState, ahash::RandomState>,
    order: VecDeque<ServiceId>,
    max_services: usize,
    evicted: u64,
}

fn push_capped<T>(rows: &mut Vec<T>, row: T) {
    if rows.len() >= MAX_ROWS {
        rows.remove(0);
    }
    rows.push(row);
}

impl Drift {
    pub fn new(max_services: usize, known: Vec<KnownService>) -> Self {
        let mut drift = Self {
            services: HashMap::with_hasher(ahash::RandomState::new()),
            order: VecDeque::new(),
            max_services: max_services.max(1),
            evicted: 0,
        };
        for service in known {
            let Some(server) = service.server else {
                continue;
            };
            let id = ServiceId {
                server,
                sni: service.sni.map(|s| s.to_ascii_lowercase()),
            };
            let state = drift.entry(id);
            for negotiation in service.negotiations {
                if !state.negotiations.contains(&negotiation) {
                    push_capped(&mut state.negotiations, negotiation);
                }
            }
            for leaf in service.leaves {
                push_capped(&mut state.leaves, leaf);
            }
            for stack in service.stacks {
                if !state.stacks.contains(&stack) {
                    push_capped(&mut state.stacks, stack.to_string());
                }
            }
            state.not_rotated_day = service.not_rotated_day;
        }
        drift
    }

    /// Services forgotten at the cap.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    fn entry(&mut self, id: ServiceId) -> &mut ServiceState {
        if !self.services.contains_key(&id) {
            while self.services.len() >= self.max_services {
                match self.order.pop_front() {
                    Some(oldest) => {
                        if self.services.remove(&oldest).is_some() {
                            self.evicted += 1;
                        }
                    }
                    None => break,
                }
            }
            self.order.push_back(id.clone());
        }
        self.services.entry(id).or_default()
    }

    /// Appends this session's drift findings, then remembers the session.
    pub fn check(&mut self, session: &Observation, policy: &Policy, out: &mut Vec<Finding>) {
        let Some(tls) = session.tls.as_ref() else {
            return;
        };
        let Some((wire, cipher_suite)) = tls.negotiated else {
            return;
        };
        let Some(version) = wire.normalized() else {
            return;
        };
        let now = session.time.as_secs();
        let sni = session.sni.as_deref();
        let id = ServiceId {
            server: session.server,
            sni: sni.map(str::to_ascii_lowercase),
        };
        // Built only when a finding needs them: most sessions change nothing.
        let service = || {
            let server = AddrText::socket(session.server);
            match sni {
                Some(sni) => format!("{server} ({sni})"),
                None => server.to_string(),
            }
        };
        let version_text = wire.ecs_version().unwrap_or("unknown");
        let protocol_text = wire.ecs_protocol().unwrap_or("tls");
        let mut hex = [0u8; 6];
        let cipher_text = match names::cipher_suite_name(cipher_suite) {
            Some(name) => name,
            None => hex_label(cipher_suite, &mut hex),
        };
        let stack = tls.client_stack.as_deref();
        let leaf = tls
            .server_leaf
            .as_ref()
            .map(|leaf| (leaf.sha256.as_str(), leaf.not_after));
        let warning_days = policy.certificates.expiry_warning_days;
        let state = self.entry(id);
        let add =
            |out: &mut Vec<Finding>, rule: &Rule, severity, message: String, evidence: Evidence| {
                out.push(Finding::new(rule, severity, message, evidence));
            };

        let is_this = |known: &KnownNegotiation| {
            known.version == version_text
                && known.protocol == protocol_text
                && known.cipher == cipher_text
        };
        // negotiation_changed: one (version, cipher) for all of history, now another.
        if let [previous] = state.negotiations.as_slice() {
            if !is_this(previous) {
                let before = super::parse_version(&previous.version);
                let severity = match before {
                    Some(before) if version < before => Severity::High,
                    Some(before) if version > before => Severity::Info,
                    _ => Severity::Low,
                };
                let change = match before {
                    Some(before) if version < before => "downgrade",
                    Some(before) if version > before => "upgrade",
                    _ => "cipher change",
                };
                add(
                    out,
                    &NEGOTIATION_CHANGED,
                    severity,
                    format!(
                        "{} negotiated {} {} {} for all its history; now {protocol_text} {version_text} {cipher_text} ({change})",
                        service(), previous.protocol, previous.version, previous.cipher,
                    ),
                    crate::evidence! {server: AddrText::socket(session.server), sni: sni, change: change, previous: crate::fields! {version: &previous.version, protocol: &previous.protocol, cipher: &previous.cipher}, now: crate::fields! {version: version_text, protocol: protocol_text, cipher: cipher_text}},
                );
            }
        }
        if !state.negotiations.iter().any(is_this) {
            push_capped(
                &mut state.negotiations,
                KnownNegotiation {
                    version: version_text.to_string(),
                    protocol: protocol_text.to_string(),
                    cipher: cipher_text.to_string(),
                },
            );
        }

        // cert_rotated / cert_not_rotated: TLS ≤ 1.2 shows the leaf in the clear.
        if let Some((sha256, not_after)) = leaf {
            let known = state.leaves.iter().position(|l| l.sha256 == sha256);
            match known {
                Some(index) => {
                    if let Some(row) = state.leaves.get_mut(index) {
                        row.last_seen = row.last_seen.max(now);
                    }
                }
                None => {
                    if let Some(old) = state.leaves.iter().max_by_key(|l| l.last_seen) {
                        let days_left = old.not_after.map(|t| (t - now).div_euclid(86_400));
                        add(
                            out,
                            &CERT_ROTATED,
                            CERT_ROTATED.severity,
                            format!(
                                "{} presents a new leaf {}…; the previous one {}… {}",
                                service(),
                                &sha256[..sha256.len().min(16)],
                                &old.sha256[..old.sha256.len().min(16)],
                                days_left.map_or_else(
                                    || "had no expiry".to_string(),
                                    |d| format!("had {d} days left")
                                )
                            ),
                            crate::evidence! {server: AddrText::socket(session.server), sni: sni, rotated_at: crate::time::Rfc3339Micros(session.time), old: crate::fields! {sha256: &old.sha256, not_after: old.not_after.map(CertificateTime)}, new: crate::fields! {sha256: sha256, not_after: CertificateTime(not_after)}, days_before_old_expiry: days_left},
                        );
                    }
                    push_capped(
                        &mut state.leaves,
                        KnownLeaf {
                            sha256: sha256.to_string(),
                            not_after: Some(not_after),
                            first_seen: now,
                            last_seen: now,
                        },
                    );
                }
            }
            let remaining = not_after - now;
            let day = now.div_euclid(86_400);
            if remaining > 0
                && remaining <= warning_days.saturating_mul(86_400)
                && state.not_rotated_day != Some(day)
            {
                state.not_rotated_day = Some(day);
                add(
                    out,
                    &CERT_NOT_ROTATED,
                    CERT_NOT_ROTATED.severity,
                    format!(
                        "{} still serves a leaf that expires in {} days (warning window {warning_days} days)",
                        service(),
                        remaining.div_euclid(86_400)
                    ),
                    crate::evidence! {server: AddrText::socket(session.server), sni: sni, sha256: sha256, not_after: CertificateTime(not_after), days_left: remaining.div_euclid(86_400), day: CertificateTime(day * 86_400)},
                );
            }
        }

        // new_client_stack: a stack this service has never seen (once it has history).
        if let Some(stack) = stack {
            if !state.stacks.iter().any(|known| known == stack) {
                if !state.stacks.is_empty() {
                    add(
                        out,
                        &NEW_CLIENT_STACK,
                        NEW_CLIENT_STACK.severity,
                        format!(
                            "{}: a client stack never seen for it before: {stack}",
                            service()
                        ),
                        crate::evidence! {server: AddrText::socket(session.server), sni: sni, client: AddrText::ip(session.client.ip()), stack: stack, known_stacks: &state.stacks},
                    );
                }
                push_capped(&mut state.stacks, stack.to_string());
            }
        }
    }
}

/// `0x%04x` of an unnamed cipher suite, as records write it.
fn hex_label(value: u16, buffer: &mut [u8; 6]) -> &str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    *buffer = *b"0x0000";
    for (i, shift) in [12, 8, 4, 0].into_iter().enumerate() {
        buffer[2 + i] = DIGITS[usize::from((value >> shift) & 0xf)];
    }
    std::str::from_utf8(buffer).unwrap_or("0x????")
}
