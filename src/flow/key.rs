//! Flow identity: a direction-free key so both halves of a connection meet.

use std::net::IpAddr;

use crate::decode::Transport;

/// One end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.ip {
            IpAddr::V4(ip) => write!(f, "{ip}:{}", self.port),
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}", self.port),
        }
    }
}

/// Canonical key: the lower endpoint first, so A→B and B→A are one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    low: Endpoint,
    high: Endpoint,
    transport: Transport,
    /// VLAN/tunnel identity (see `EncapPath::flow_context`); 0 when not keyed on it.
    context: u64,
}

impl FlowKey {
    pub fn new(a: Endpoint, b: Endpoint, transport: Transport, context: u64) -> Self {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        Self {
            low,
            high,
            transport,
            context,
        }
    }

    /// Symmetric by construction; keyed per run because attackers choose the
    /// endpoints and could otherwise pile every flow onto one worker.
    pub fn shard_hash(&self, state: &ahash::RandomState) -> u64 {
        state.hash_one(self)
    }

    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Deterministic order between flows, for output tie-breaks.
    pub fn sort_key(&self) -> (Endpoint, Endpoint, u64) {
        (self.low, self.high, self.context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(text: &str, port: u16) -> Endpoint {
        Endpoint {
            ip: text.parse().expect("ip"),
            port,
        }
    }

    #[test]
    fn both_directions_give_the_same_key_and_shard() {
        let client = endpoint("10.0.0.1", 51000);
        let server = endpoint("10.0.0.2", 443);
        let forward = FlowKey::new(client, server, Transport::Tcp, 0);
        let backward = FlowKey::new(server, client, Transport::Tcp, 0);
        assert_eq!(forward, backward);
        let state = ahash::RandomState::new();
        assert_eq!(forward.shard_hash(&state), backward.shard_hash(&state));
    }

    #[test]
    fn context_and_transport_separate_flows() {
        let a = endpoint("10.0.0.1", 51000);
        let b = endpoint("10.0.0.2", 443);
        assert_ne!(
            FlowKey::new(a, b, Transport::Tcp, 0),
            FlowKey::new(a, b, Transport::Tcp, 7)
        );
        assert_ne!(
            FlowKey::new(a, b, Transport::Tcp, 0),
            FlowKey::new(a, b, Transport::Udp, 0)
        );
    }
}
