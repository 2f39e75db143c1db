//! Community ID flow hashing, version 1 (https://github.com/corelight/community-id-spec).

use std::net::IpAddr;

use base64::Engine;
use sha1::{Digest, Sha1};

const IP_PROTOCOL_TCP: u8 = 6;
const IP_PROTOCOL_UDP: u8 = 17;

/// A Community ID: `1:` and 28 base64 characters, held inline (one per record).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CommunityId {
    text: [u8; 30],
}

impl CommunityId {
    pub fn as_str(&self) -> &str {
        // Written only with "1:" and base64's ASCII alphabet.
        std::str::from_utf8(&self.text).unwrap_or("1:")
    }
}

impl std::fmt::Display for CommunityId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for CommunityId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for CommunityId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl serde::Serialize for CommunityId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// `1:<base64(sha1(seed, ordered endpoints, protocol, 0, ports))>` with seed 0.
pub fn community_id_v1(
    source: (IpAddr, u16),
    destination: (IpAddr, u16),
    tcp: bool,
) -> CommunityId {
    let protocol = if tcp {
        IP_PROTOCOL_TCP
    } else {
        IP_PROTOCOL_UDP
    };
    // The spec orders the pair so that the smaller address (then port) comes first.
    let (first, second) = if is_less(source, destination) {
        (source, destination)
    } else {
        (destination, source)
    };
    let mut hasher = Sha1::new();
    hasher.update(0u16.to_be_bytes());
    hasher.update(octets(&first.0));
    hasher.update(octets(&second.0));
    hasher.update([protocol, 0]);
    hasher.update(first.1.to_be_bytes());
    hasher.update(second.1.to_be_bytes());
    let digest = hasher.finalize();
    let mut text = [b'='; 30];
    text[..2].copy_from_slice(b"1:");
    // 20 bytes encode to exactly 28 characters: the slice always fits.
    let _ = base64::engine::general_purpose::STANDARD.encode_slice(digest, &mut text[2..]);
    CommunityId { text }
}

/// The address bytes, as the spec hashes and orders them.
fn octets(ip: &IpAddr) -> Octets {
    match ip {
        IpAddr::V4(v4) => Octets::V4(v4.octets()),
        IpAddr::V6(v6) => Octets::V6(v6.octets()),
    }
}

enum Octets {
    V4([u8; 4]),
    V6([u8; 16]),
}

impl AsRef<[u8]> for Octets {
    fn as_ref(&self) -> &[u8] {
        match self {
            Octets::V4(bytes) => bytes,
            Octets::V6(bytes) => bytes,
        }
    }
}

fn is_less(a: (IpAddr, u16), b: (IpAddr, u16)) -> bool {
    let (ao, bo) = (octets(&a.0), octets(&b.0));
    let (ao, bo) = (ao.as_ref(), bo.as_ref());
    ao < bo || (ao == bo && a.1 < b.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Values from the specification's baseline (community-id-spec baseline/baseline_deflt.json).
    #[test]
    fn matches_the_specification_baselines() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert_eq!(
            community_id_v1(
                (ip("128.232.110.120"), 34855),
                (ip("66.35.250.204"), 80),
                true
            ),
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
        );
        assert_eq!(
            community_id_v1(
                (ip("66.35.250.204"), 80),
                (ip("128.232.110.120"), 34855),
                true
            ),
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
        );
        assert_eq!(
            community_id_v1((ip("192.168.1.52"), 54585), (ip("8.8.8.8"), 53), false),
            "1:d/FP5EW3wiY1vCndhwleRRKHowQ="
        );
    }
}
