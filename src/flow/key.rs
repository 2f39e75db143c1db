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
///
/// The key carries its own hash, computed once where the packet is decoded:
/// the reader shards on it and the worker's table looks it up without
/// hashing the endpoints again (hashing twice was 2 % of the CPU time on
/// handshake-heavy traffic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowKey {
    /// Compared first: unequal keys almost always differ here. 32 bits keep
    /// the key at its old size (a flow table slot is charged per flow).
    hash: u32,
    low: Endpoint,
    high: Endpoint,
    transport: Transport,
    /// VLAN/tunnel identity (see `EncapPath::flow_context`); 0 when not keyed on it.
    context: u64,
}

/// Keyed per process because attackers choose the endpoints and could
/// otherwise pile every flow onto one worker or one bucket.
fn flow_hasher() -> &'static ahash::RandomState {
    static HASHER: std::sync::OnceLock<ahash::RandomState> = std::sync::OnceLock::new();
    HASHER.get_or_init(ahash::RandomState::new)
}

/// The key as machine words: hashing these is several times cheaper than
/// hashing the `IpAddr` enums field by field (the reader does it per packet).
fn words(low: Endpoint, high: Endpoint, transport: Transport, context: u64) -> [u64; 6] {
    let ip = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => (u64::from(u32::from(v4)), 0, 0),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            ((bits >> 64) as u64, bits as u64, 1)
        }
    };
    let (low_a, low_b, low_v6) = ip(low.ip);
    let (high_a, high_b, high_v6) = ip(high.ip);
    let ports = u64::from(low.port) << 32
        | u64::from(high.port) << 16
        | low_v6 << 2
        | high_v6 << 1
        | transport as u64;
    [low_a, low_b, high_a, high_b, ports, context]
}

impl std::hash::Hash for FlowKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash_value());
    }
}

impl FlowKey {
    pub fn new(a: Endpoint, b: Endpoint, transport: Transport, context: u64) -> Self {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        Self {
            hash: {
                use std::hash::{BuildHasher, Hasher};
                // Word by word: `write_u64` is one multiply each, where
                // hashing the array as a slice took several times longer.
                let mut state = flow_hasher().build_hasher();
                for word in words(low, high, transport, context) {
                    state.write_u64(word);
                }
                state.finish() as u32
            },
            low,
            high,
            transport,
            context,
        }
    }

    /// The worker this flow belongs to, symmetric by construction.
    pub fn shard(&self, workers: usize) -> usize {
        ((u64::from(self.hash) * workers as u64) >> 32) as usize
    }

    /// A hash that is the same in every run (not keyed): for decisions that
    /// must not depend on the process's random seed, where a collision only
    /// costs caution (see `bypass`).
    pub fn stable_hash(&self) -> u64 {
        words(self.low, self.high, self.transport, self.context)
            .iter()
            .fold(0u64, |acc, &word| {
                (acc.rotate_left(23) ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            })
    }

    /// The key's hash spread over 64 bits, for tables that index flows by it:
    /// the multiplication mixes every bit of the hash into the top bits (a
    /// table's tags), so keys of one worker, which share their shard bits,
    /// still spread over the whole table.
    pub fn hash_value(&self) -> u64 {
        u64::from(self.hash).wrapping_mul(0x9e37_79b9_7f4a_7c15)
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
        assert_eq!(forward.shard(3), backward.shard(3));
        assert!(forward.shard(3) < 3);
    }

    #[test]
    fn flows_spread_over_workers() {
        let server = endpoint("10.0.0.2", 443);
        let mut counts = [0usize; 3];
        for port in 0..3000u16 {
            let key = FlowKey::new(
                endpoint("10.0.0.1", 20000 + port),
                server,
                Transport::Tcp,
                0,
            );
            counts[key.shard(3)] += 1;
        }
        assert!(counts.iter().all(|&n| n > 800), "{counts:?}");
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
