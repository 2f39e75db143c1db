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
