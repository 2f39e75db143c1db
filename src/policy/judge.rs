//! The worker's share of the judgement: every rule that needs only the
//! session at hand. Rules that read nothing but the certificate chains and the
//! policy ([`Check::Chain`]: signatures, trust, key and signature strength…)
//! are judged once per distinct pair of chains and their findings reused; the
//! rules that depend on packet time or names (expired, expiring, name
//! mismatch) run for every session, on the cached certificate summaries.

use std::collections::{HashMap, VecDeque};

use super::rules::{self, Check, Findings, RULES};
use super::{Finding, NetworkDirection, Policy, SessionFacts};
use crate::tls::{DowngradeSentinel, HandshakeSummary, ProtocolVersion};

/// Bounds of one worker's chain-verdict cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JudgeLimits {
    pub max_chains: usize,
    pub max_bytes: usize,
}

impl Default for JudgeLimits {
    fn default() -> Self {
        Self {
            max_chains: 4096,
            max_bytes: 4 * 1024 * 1024,
        }
    }
}

/// Per-worker judgement counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JudgeCounters {
    pub sessions_judged: u64,
    /// Chain verdicts reused from the cache.
    pub chain_verdicts_cached: u64,
    /// Chain verdicts computed (each distinct chain pair once, unless evicted).
    pub chain_verdicts_computed: u64,
    pub chain_verdicts_evicted: u64,
}

impl JudgeCounters {
    pub fn add(&mut self, other: &Self) {
        self.sessions_judged += other.sessions_judged;
        self.chain_verdicts_cached += other.chain_verdicts_cached;
        self.chain_verdicts_computed += other.chain_verdicts_computed;
        self.chain_verdicts_evicted += other.chain_verdicts_evicted;
    }
}

struct Verdicts {
    findings: Vec<Finding>,
    bytes: usize,
    /// The dated rules' findings for the last session, under its date signature.
    dated: Option<(Vec<i64>, Vec<Finding>)>,
}

/// Everything the [`Check::Negotiated`] rules read of a session. Sessions of
/// one service negotiate the same way again and again: their findings are
/// made once per distinct key (on hs-heavy a third of all findings).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct NegotiationKey {
    version: Option<ProtocolVersion>,
    direction: NetworkDirection,
    /// The client's highest offered version and TLS_FALLBACK_SCSV.
    hello: Option<(ProtocolVersion, bool)>,
    /// The suite, whether it is an SSL 2.0 spec, and the downgrade sentinel.
    server: Option<(u16, bool, Option<DowngradeSentinel>)>,
}

fn negotiation_key(facts: &SessionFacts<'_>) -> NegotiationKey {
    let tls = facts.tls;
    NegotiationKey {
        version: facts.version(),
        direction: facts.direction,
        hello: tls
            .and_then(|t| t.client_hello.as_ref())
            .map(|h| (h.highest_offered(), h.fallback_scsv)),
        server: tls.and_then(|t| t.server_hello.as_ref()).map(|s| {
            (
                s.cipher_suite,
                s.sslv2_cipher_spec.is_some(),
                s.downgrade_sentinel,
            )
        }),
    }
}

/// Distinct negotiations kept per worker (a handful in practice); at the
/// bound the cache starts over.
const MAX_NEGOTIATIONS: usize = 256;

/// Judges sessions in a worker; owns the chain-verdict cache.
pub struct Judge {
    negotiated: HashMap<NegotiationKey, Vec<Finding>, ahash::RandomState>,
    negotiated_bytes: usize,
    chains: HashMap<ChainKey, Verdicts, ahash::RandomState>,
    order: VecDeque<ChainKey>,
    /// The session's chain key, built here to look up without allocating.
    scratch: Vec<[u8; 32]>,
    bytes: usize,
    limits: JudgeLimits,
    counters: JudgeCounters,
}

impl Default for Judge {
    fn default() -> Self {
        Self::new(JudgeLimits::default())
    }
}

impl Judge {
    pub fn new(limits: JudgeLimits) -> Self {
        Self {
            negotiated: HashMap::with_hasher(ahash::RandomState::new()),
            negotiated_bytes: 0,
            chains: HashMap::with_hasher(ahash::RandomState::new()),
            order: VecDeque::new(),
            scratch: Vec::new(),
            bytes: 0,
            limits,
            counters: JudgeCounters::default(),
        }
    }

    pub fn counters(&self) -> &JudgeCounters {
        &self.counters
    }

    /// Bytes held by the cache, for memory accounting.
    pub fn bytes(&self) -> usize {
        self.bytes + self.negotiated_bytes
    }

    /// Every finding this session raises on its own (cross-session rules and
    /// exceptions are the output stage's).
    pub fn judge(&mut self, facts: &SessionFacts<'_>, policy: &Policy) -> Vec<Finding> {
        self.counters.sessions_judged += 1;
        let mut findings = Vec::new();
        for rule in RULES {
            if let Check::Session(check) = rule.check {
                check(facts, policy, &mut Findings::new(rule, &mut findings));
            }
        }
        if facts.tls.is_some() {
            self.negotiation_verdicts(facts, policy, &mut findings);
        }
        if let Some(tls) = facts.tls {
            if !tls.server_chain.is_empty() || !tls.client_chain.is_empty() {
                self.chain_verdicts(tls, facts, policy, &mut findings);
            }
        }
        // Derived findings list their causes in rule order.
        rules::sort(&mut findings);
        rules::derive(facts, policy, &mut findings);
        findings
    }

    fn negotiation_verdicts(
        &mut self,
        facts: &SessionFacts<'_>,
        policy: &Policy,
        out: &mut Vec<Finding>,
    ) {
        let key = negotiation_key(facts);
        if let Some(findings) = self.negotiated.get(&key) {
            out.extend(findings.iter().cloned());
            return;
        }
        let findings = run(Kind::Negotiated, facts, policy);
        out.extend(findings.iter().cloned());
        if self.negotiated.len() >= MAX_NEGOTIATIONS {
            self.negotiated.clear();
            self.negotiated_bytes = 0;
        }
        self.negotiated_bytes += 64 + findings_bytes(&findings);
        self.negotiated.insert(key, findings);
    }

    fn chain_verdicts(
        &mut self,
        tls: &HandshakeSummary,
        facts: &SessionFacts<'_>,
        policy: &Policy,
        out: &mut Vec<Finding>,
    ) {
        chain_key(tls, &mut self.scratch);
        let signature = date_signature(tls, facts, policy);
        if let Some(verdicts) = self.chains.get_mut(self.scratch.as_slice()) {
            self.counters.chain_verdicts_cached += 1;
            out.extend(verdicts.findings.iter().cloned());
            match &verdicts.dated {
                Some((cached, findings)) if *cached == signature => {
                    out.extend(findings.iter().cloned());
                }
                _ => {
                    let findings = run(Kind::Dated, facts, policy);
                    out.extend(findings.iter().cloned());
                    verdicts.dated = Some((signature, findings));
                }
            }
            return;
        }
        self.counters.chain_verdicts_computed += 1;
        let findings = run(Kind::Chain, facts, policy);
        let dated = run(Kind::Dated, facts, policy);
        out.extend(findings.iter().cloned());
        out.extend(dated.iter().cloned());
        let bytes = 96
            + 2 * 32 * self.scratch.len()
            + 2 * findings_bytes(&findings)
            + 2 * findings_bytes(&dated);
        if self.limits.max_chains == 0 || bytes > self.limits.max_bytes {
            return;
        }
        while self.chains.len() >= self.limits.max_chains
            || self.bytes + bytes > self.limits.max_bytes
        {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(old) = self.chains.remove(&oldest) {
                self.bytes -= old.bytes;
                self.counters.chain_verdicts_evicted += 1;
            }
        }
        self.bytes += bytes;
        let key: ChainKey = self.scratch.as_slice().into();
        self.order.push_back(key.clone());
        self.chains.insert(
            key,
            Verdicts {
                findings,
                bytes,
                dated: Some((signature, dated)),
            },
        );
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Negotiated,
    Chain,
    Dated,
}

fn run(kind: Kind, facts: &SessionFacts<'_>, policy: &Policy) -> Vec<Finding> {
    let mut findings = Vec::new();
    for rule in RULES {
        let check = match (kind, rule.check) {
            (Kind::Negotiated, Check::Negotiated(check))
            | (Kind::Chain, Check::Chain(check))
            | (Kind::Dated, Check::Dated(check)) => check,
            _ => continue,
        };
        check(facts, policy, &mut Findings::new(rule, &mut findings));
    }
    findings
}

fn findings_bytes(findings: &[Finding]) -> usize {
    findings.iter().map(|f| 96 + f.text_bytes()).sum()
}

const DAY: i64 = 86_400;

/// Everything the dated rules derive from the packet time, per certificate:
/// days since expiry, whether not yet valid, days left inside the warning
/// window. Equal signatures give equal findings for the same chains.
fn date_signature(tls: &HandshakeSummary, facts: &SessionFacts<'_>, policy: &Policy) -> Vec<i64> {
    let now = facts.time.as_secs();
    let window = policy.certificates.expiry_warning_days.saturating_mul(DAY);
    let mut signature = Vec::with_capacity(
        3 * (tls.server_chain.certificates.len() + tls.client_chain.certificates.len()),
    );
    for chain in [&tls.server_chain, &tls.client_chain] {
        for certificate in &chain.certificates {
            let Ok(summary) = certificate.summary.as_ref() else {
                signature.extend([i64::MIN; 3]);
                continue;
            };
            let (not_before, not_after) = (summary.not_before.0, summary.not_after.0);
            let left = not_after.saturating_sub(now);
            signature.push(if not_after < now {
                now.saturating_sub(not_after) / DAY
            } else {
                -1
            });
            signature.push(i64::from(not_before > now));
            signature.push(if (0..window).contains(&left) {
                left / DAY
            } else {
                -1
            });
        }
    }
    signature
}

/// The pair of chains: the certificates' SHA-256 in order, after a first
/// entry that holds the two chains' lengths. Exact, not a digest of them: a
/// collision would hand one chain another's verdicts.
type ChainKey = Box<[[u8; 32]]>;

fn chain_key(tls: &HandshakeSummary, key: &mut Vec<[u8; 32]>) {
    key.clear();
    let mut lengths = [0u8; 32];
    let server = tls.server_chain.certificates.len() as u64;
    let client = tls.client_chain.certificates.len() as u64;
    lengths[..8].copy_from_slice(&server.to_le_bytes());
    lengths[8..16].copy_from_slice(&client.to_le_bytes());
    key.push(lengths);
    for chain in [&tls.server_chain, &tls.client_chain] {
        key.extend(chain.certificates.iter().map(|c| c.sha256));
    }
}
