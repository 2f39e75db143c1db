//! Drift finding ids: raised by `policy::drift`, which judges a service
//! against its own history (earlier sessions, earlier runs).

use super::{Check, Rule};
use crate::policy::Severity;

pub const NEGOTIATION_CHANGED: Rule = Rule {
    id: "negotiation_changed",
    severity: Severity::Medium,
    summary: "A service that negotiated one version and cipher for all its history (earlier runs in the inventory included) negotiates another: high for a lower version, info for a higher one, low for another cipher.",
    check: Check::Raised,
};

pub const CERT_ROTATED: Rule = Rule {
    id: "cert_rotated",
    severity: Severity::Info,
    summary: "A service presents a leaf certificate it never presented before; evidence gives both fingerprints and expiries and how many days before the old one's expiry the rotation happened.",
    check: Check::Raised,
};

pub const CERT_NOT_ROTATED: Rule = Rule {
    id: "cert_not_rotated",
    severity: Severity::Medium,
    summary: "A service still serves a leaf inside the expiry warning window; raised once per service per day, not per session.",
    check: Check::Raised,
};

pub const NEW_CLIENT_STACK: Rule = Rule {
    id: "new_client_stack",
    severity: Severity::Low,
    summary: "A client TLS stack (library and version, from the JA4 catalogue) never seen before for this service, once the service has a history.",
    check: Check::Raised,
};
