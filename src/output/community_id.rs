//! Community ID flow hashing, version 1 (https://github.com/corelight/community-id-spec).

use std::net::IpAddr;

use base64::Engine;
use sha1::{Digest, Sha1};

const IP_PROTOCOL_TCP: u8 = 6;
const IP_PROTOCOL_UDP: u8 = 17;

/// `1:<base64(sha1(seed, ordered endpoints, protocol, 0, ports))>` with seed 0.
pub fn community_id_v1(source: (IpAddr, u16), destination: (IpAddr, u16), tcp: bool) -> String {
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
    push_ip(&mut hasher, first.0);
    push_ip(&mut hasher, second.0);
    hasher.update([protocol, 0]);
    hasher.update(first.1.to_be_bytes());
    hasher.update(second.1.to_be_bytes());
    let digest = hasher.finalize();
    format!(
        "1:{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

fn octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

fn push_ip(hasher: &mut Sha1, ip: IpAddr) {
    hasher.update(octets(ip));
}

fn is_less(a: (IpAddr, u16), b: (IpAddr, u16)) -> bool {
    let (ao, bo) = (octets(a.0), octets(b.0));
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
