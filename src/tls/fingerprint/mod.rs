//! Fingerprints: pure functions of the hello summaries, computed once per
//! session (never per packet). JA3/JA3S (Salesforce, BSD-3) and JA4 (FoxIO,
//! BSD-3). JA4S/JA4X and the rest of JA4+ are under FoxIO's own licence and are
//! deliberately not implemented.

pub mod ja3;
pub mod ja4;
pub mod stacks;

/// Where a ClientHello travelled, for JA4's first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Carrier {
    #[default]
    Tcp,
    Quic,
    Dtls,
}

const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

/// Appends `bytes` as lowercase hex (fingerprint hashes are printed so).
fn push_hex(out: &mut String, bytes: &[u8]) {
    for &byte in bytes {
        out.push(char::from(HEX_LOWER[usize::from(byte >> 4)]));
        out.push(char::from(HEX_LOWER[usize::from(byte & 0x0f)]));
    }
}
