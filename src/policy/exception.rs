//! Owned, expiring exceptions: a finding covered by a live exception stays in
//! the record, severity `info`, with the exception named; an exception past its
//! expiry covers nothing and is itself reported (`exception_expired`).

use std::net::IpAddr;

use ipnet::IpNet;

use std::net::SocketAddr;

use super::{ExceptionRef, Finding, Observation, SessionFacts, Severity};
use crate::time::PacketTime;

/// Which sessions an exception (or an mTLS requirement) applies to; every
/// field given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExceptionMatch {
    pub server: Option<IpNet>,
    pub client: Option<IpNet>,
    pub port: Option<u16>,
    /// Exact name or `*.suffix` (any name under suffix).
    pub sni: Option<String>,
}

impl ExceptionMatch {
    pub fn matches_session(&self, facts: &SessionFacts<'_>) -> bool {
        self.matches(facts.client, facts.server, facts.sni())
    }

    pub fn matches(&self, client: SocketAddr, server: SocketAddr, sni: Option<&str>) -> bool {
        let in_net = |net: &Option<IpNet>, ip: IpAddr| net.is_none_or(|n| n.contains(&ip));
        if !in_net(&self.server, server.ip()) || !in_net(&self.client, client.ip()) {
            return false;
        }
        if self.port.is_some_and(|port| port != server.port()) {
            return false;
        }
        match (&self.sni, sni) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(pattern), Some(sni)) => {
                let (pattern, sni) = (pattern.to_ascii_lowercase(), sni.to_ascii_lowercase());
                match pattern.strip_prefix("*.") {
                    Some(suffix) => sni.ends_with(&format!(".{suffix}")),
                    None => pattern == sni,
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    pub id: String,
    pub owner: String,
    pub reason: String,
    /// Last day covered (UTC, inclusive).
    pub expires: time::Date,
    pub selector: ExceptionMatch,
    pub allow: Vec<String>,
}

impl Exception {
    /// Live until the end of its expiry day, judged at packet time.
    pub fn is_live_at(&self, at: PacketTime) -> bool {
        let end = self.expires.midnight().assume_utc().unix_timestamp() + 86_400;
        at.as_secs() < end
    }

    fn reference(&self) -> ExceptionRef {
        ExceptionRef {
            id: self.id.clone(),
            owner: self.owner.clone(),
            expires: self.expires.to_string(),
        }
    }
}

pub(super) fn apply(session: &Observation, policy: &super::Policy, findings: &mut Vec<Finding>) {
    let mut expired_hits: Vec<&Exception> = Vec::new();
    for finding in findings.iter_mut() {
        for exception in &policy.exceptions {
            if !exception.allow.iter().any(|id| id == finding.id)
                || !exception.selector.matches(
                    session.client,
                    session.server,
                    session.sni.as_deref(),
                )
            {
                continue;
            }
            if exception.is_live_at(session.time) {
                finding.exception = Some(exception.reference());
                finding.severity = Severity::Info;
                break;
            }
            if !expired_hits.iter().any(|e| e.id == exception.id) {
                expired_hits.push(exception);
            }
        }
    }
    for exception in expired_hits {
        let rule = &super::rules::EXCEPTION_EXPIRED;
        findings.push(Finding::new(
            rule,
            rule.severity,
            format!(
                "exception {} (owner {}) expired on {} and no longer covers this session",
                exception.id, exception.owner, exception.expires
            ),
            crate::evidence! {exception_id: &exception.id, owner: &exception.owner, expired: super::Shown(&exception.expires), allowed: &exception.allow},
        ));
    }
}
