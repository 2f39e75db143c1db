//! What the inventory holds, as plain values: what `tlstap inventory` prints
//! and what `report` renders. Times are RFC 3339 UTC strings (packet time of
//! the sessions, as the records carry them).

use serde::{Deserialize, Serialize};

/// A service as the inventory keys it: server address, port and SNI
/// (empty when the client sent none).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ServiceKey {
    pub ip: String,
    pub port: u16,
    pub sni: String,
}

/// Everything known about one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRow {
    pub key: ServiceKey,
    /// The policy's `[[service]]` name and owner, when a record carried them.
    pub name: Option<String>,
    pub owner: Option<String>,
    /// ECS `network.direction` of the last session ("internal", "inbound", ...).
    pub direction: String,
    /// ECS `network.protocol` of the last session ("tls", "quic", "smtp", ...).
    pub protocol: String,
    pub first_seen: String,
    pub last_seen: String,
    /// TLS sessions (records of dataset `tlstap.tls`).
    pub sessions: u64,
    /// Plaintext sessions (records of dataset `tlstap.plaintext`).
    pub plaintext_sessions: u64,
    /// One row per distinct (version, cipher).
    pub negotiations: Vec<NegotiationRow>,
    /// One row per distinct server leaf certificate.
    pub certificates: Vec<CertificateRow>,
    /// One row per distinct client stack and JA4.
    pub clients: Vec<ClientStackRow>,
    /// Finding counts by id.
    pub findings: Vec<FindingCount>,
    /// Exceptions that covered findings on this service.
    pub exceptions: Vec<ExceptionUse>,
    /// Clients that completed a handshake despite a certificate problem
    /// (`client_accepted_invalid_cert`).
    pub invalid_cert_clients: Vec<InvalidCertClient>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NegotiationRow {
    /// ECS `tls.version` ("1.3") and `tls.version_protocol` ("tls", "dtls").
    pub version: String,
    pub protocol: String,
    /// ECS `tls.cipher`.
    pub cipher: String,
    pub sessions: u64,
    pub first_seen: String,
    pub last_seen: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRow {
    /// `tls.server.hash.sha256` (upper-case hex, as the record has it).
    pub sha256: String,
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    pub not_before: String,
    pub not_after: String,
    pub sessions: u64,
    pub first_seen: String,
    pub last_seen: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientStackRow {
    /// `tlstap.client.stack` ("openssl 3.0", "unknown").
    pub stack: String,
    /// `tlstap.client.ja4`.
    pub ja4: String,
    pub sessions: u64,
    /// Distinct client addresses seen with this stack and JA4 (capped count).
    pub distinct_clients: u64,
    /// True once `max_distinct_clients_tracked` stopped the count: the real
    /// number of clients is at least `distinct_clients`.
    pub distinct_clients_capped: bool,
    pub first_seen: String,
    pub last_seen: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingCount {
    pub id: String,
    /// Highest severity seen for this id on this service.
    pub severity: String,
    pub count: u64,
    /// How many of them an exception covered.
    pub excepted: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionUse {
    pub id: String,
    pub owner: String,
    /// YYYY-MM-DD.
    pub expires: String,
    pub finding_ids: Vec<String>,
    pub count: u64,
    pub last_seen: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidCertClient {
    pub client_ip: String,
    pub stack: String,
    /// The certificate problems named in the finding's evidence.
    pub problems: Vec<String>,
    pub count: u64,
    pub last_seen: String,
}

/// A drift finding as it was raised (kept as an event for "what changed since").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftEvent {
    pub time: String,
    pub key: ServiceKey,
    pub service_name: Option<String>,
    /// `negotiation_changed`, `cert_rotated`, `cert_not_rotated`, `new_client_stack`.
    pub id: String,
    pub severity: String,
    pub message: String,
    pub evidence: serde_json::Value,
}

/// One `read`/`live` run that wrote into the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRow {
    /// Wall-clock start of the run (RFC 3339).
    pub started: String,
    /// The inputs (files or interface), as given on the command line.
    pub source: String,
    pub records: u64,
}

/// The whole inventory, for printing and reporting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventorySnapshot {
    pub services: Vec<ServiceRow>,
    pub drift: Vec<DriftEvent>,
    pub runs: Vec<RunRow>,
}

/// What earlier runs saw of one service, for the policy's drift memory. The
/// CLI turns it into `policy::drift::KnownService` (the inventory reads
/// records only and does not know the policy's types).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KnownService {
    pub server: Option<std::net::SocketAddr>,
    /// Lower-case SNI; `None` for sessions without one.
    pub sni: Option<String>,
    pub negotiations: Vec<KnownNegotiation>,
    /// Server leaves, oldest first.
    pub leaves: Vec<KnownLeaf>,
    pub stacks: Vec<String>,
    /// Day (days since 1970-01-01) of the last `cert_not_rotated` event.
    pub not_rotated_day: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct KnownNegotiation {
    pub version: String,
    pub protocol: String,
    pub cipher: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KnownLeaf {
    pub sha256: String,
    /// Unix seconds.
    pub not_after: Option<i64>,
    pub first_seen: i64,
    pub last_seen: i64,
}
