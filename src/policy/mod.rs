//! Policy: what counts as internal, and (from the governance work) what is wrong
//! with a session. It receives tls/x509 summaries and `std::net` endpoints and
//! returns judgements; it never parses bytes and never formats output.

mod network;

pub use network::{NetworkDirection, Networks, ParseNetworkError};

/// Everything the analyzer judges by. Built from defaults and CLI flags now;
/// the TOML policy file extends it.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub internal: Networks,
}
