//! Internal networks and ECS `network.direction`.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// ECS `network.direction`, judged client → server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetworkDirection {
    /// Both ends internal: east-west traffic.
    Internal,
    Inbound,
    Outbound,
    External,
}

impl NetworkDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkDirection::Internal => "internal",
            NetworkDirection::Inbound => "inbound",
            NetworkDirection::Outbound => "outbound",
            NetworkDirection::External => "external",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a network in CIDR form (e.g. 10.0.0.0/8 or fd00::/8)")]
pub struct ParseNetworkError {
    pub text: String,
}

/// A set of CIDR blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Networks {
    blocks: Vec<IpNet>,
}

impl Default for Networks {
    /// RFC 1918, RFC 6598 shared space, unique-local IPv6, loopback and link-local.
    fn default() -> Self {
        let blocks = [
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",
            "127.0.0.0/8",
            "169.254.0.0/16",
            "fc00::/7",
            "::1/128",
            "fe80::/10",
        ]
        .iter()
        .filter_map(|text| IpNet::from_str(text).ok())
        .collect();
        Self { blocks }
    }
}

impl Networks {
    pub fn empty() -> Self {
        Self { blocks: Vec::new() }
    }

    /// Parses one CIDR block; a bare address counts as a single host.
    pub fn parse_block(text: &str) -> Result<IpNet, ParseNetworkError> {
        let text = text.trim();
        IpNet::from_str(text)
            .or_else(|_| IpAddr::from_str(text).map(IpNet::from))
            .map_err(|_| ParseNetworkError {
                text: text.to_string(),
            })
    }

    pub fn push(&mut self, block: IpNet) {
        self.blocks.push(block);
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.blocks.iter().any(|block| block.contains(&ip))
    }

    pub fn direction(&self, client: IpAddr, server: IpAddr) -> NetworkDirection {
        match (self.contains(client), self.contains(server)) {
            (true, true) => NetworkDirection::Internal,
            (true, false) => NetworkDirection::Outbound,
            (false, true) => NetworkDirection::Inbound,
            (false, false) => NetworkDirection::External,
        }
    }

    pub fn blocks(&self) -> &[IpNet] {
        &self.blocks
    }
}

/// IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn default_internal_networks_give_ecs_directions() {
        let networks = Networks::default();
        assert_eq!(
            networks.direction(ip("10.1.2.3"), ip("192.168.0.9")),
            NetworkDirection::Internal
        );
        assert_eq!(
            networks.direction(ip("10.1.2.3"), ip("8.8.8.8")),
            NetworkDirection::Outbound
        );
        assert_eq!(
            networks.direction(ip("8.8.8.8"), ip("fd00::1")),
            NetworkDirection::Inbound
        );
        assert_eq!(
            networks.direction(ip("8.8.8.8"), ip("1.1.1.1")),
            NetworkDirection::External
        );
        assert!(networks.contains(ip("::ffff:10.0.0.1")));
        assert!(networks.contains(ip("100.64.0.1")));
        assert!(!networks.contains(ip("100.128.0.1")));
    }

    #[test]
    fn bare_address_is_a_host_block_and_garbage_is_an_error() {
        let block = Networks::parse_block("203.0.113.7").expect("parses");
        assert_eq!(block.to_string(), "203.0.113.7/32");
        let error = Networks::parse_block("10.0.0.0/33").expect_err("bad prefix");
        assert!(error.to_string().contains("10.0.0.0/33"));
    }
}
