//! QUIC version numbers and what each one changes in the Initial packet:
//! salt, HKDF labels and the long-header packet type codes.

use std::fmt;

/// A QUIC version as on the wire (RFC 9000 §15); unknown values survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuicVersion(pub u32);

/// Long-header packet types, named the same whatever bits a version uses for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LongPacketType {
    Initial,
    ZeroRtt,
    Handshake,
    Retry,
}

/// RFC 9001 §5.2 (v1 and draft-33/34).
const SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
/// RFC 9369 §3.3.1.
const SALT_V2: [u8; 20] = [
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb,
    0xf9, 0xbd, 0x2e, 0xd9,
];
/// draft-ietf-quic-tls-29 §5.2, also used by drafts 30 to 32.
const SALT_DRAFT_29: [u8; 20] = [
    0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97, 0x86, 0xf1, 0x9c, 0x61, 0x11, 0xe0,
    0x43, 0x90, 0xa8, 0x99,
];

/// The HKDF labels that derive packet protection from a traffic secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Labels {
    pub key: &'static [u8],
    pub iv: &'static [u8],
    pub hp: &'static [u8],
}

const LABELS_V1: Labels = Labels {
    key: b"quic key",
    iv: b"quic iv",
    hp: b"quic hp",
};
/// RFC 9369 §3.3.2: full key separation from v1.
const LABELS_V2: Labels = Labels {
    key: b"quicv2 key",
    iv: b"quicv2 iv",
    hp: b"quicv2 hp",
};

impl QuicVersion {
    pub const NEGOTIATION: Self = Self(0);
    pub const V1: Self = Self(0x0000_0001);
    /// RFC 9369 §3.1.
    pub const V2: Self = Self(0x6b33_43cf);
    pub const DRAFT_29: Self = Self(0xff00_001d);
    pub const DRAFT_34: Self = Self(0xff00_0022);

    /// Drafts 29 to 34 share v1's packet format; only the salt moved at draft-33.
    fn draft(self) -> Option<u32> {
        (Self::DRAFT_29.0..=Self::DRAFT_34.0)
            .contains(&self.0)
            .then_some(self.0 & 0xff)
    }

    /// Whether tlstap can derive this version's Initial keys.
    pub fn is_supported(self) -> bool {
        self == Self::V1 || self == Self::V2 || self.draft().is_some()
    }

    /// Initial salt, or `None` for a version whose keys we cannot derive.
    pub fn initial_salt(self) -> Option<&'static [u8; 20]> {
        match self {
            Self::V1 => Some(&SALT_V1),
            Self::V2 => Some(&SALT_V2),
            _ => match self.draft()? {
                29..=32 => Some(&SALT_DRAFT_29),
                _ => Some(&SALT_V1),
            },
        }
    }

    pub fn labels(self) -> Labels {
        if self == Self::V2 {
            LABELS_V2
        } else {
            LABELS_V1
        }
    }

    /// Long-header type from the two type bits of the first byte (RFC 9000
    /// §17.2, RFC 9369 §3.2: v2 rotates the codes so Initial is 0b01).
    pub fn packet_type(self, first_byte: u8) -> LongPacketType {
        let bits = (first_byte >> 4) & 0x03;
        let bits = if self == Self::V2 {
            bits.wrapping_add(3) & 0x03
        } else {
            bits
        };
        match bits {
            0 => LongPacketType::Initial,
            1 => LongPacketType::ZeroRtt,
            2 => LongPacketType::Handshake,
            _ => LongPacketType::Retry,
        }
    }
}

impl fmt::Display for QuicVersion {
    /// "1", "2", "draft-29", or the hex value ("0x51303530" for Google's Q050).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::V1 => f.write_str("1"),
            Self::V2 => f.write_str("2"),
            other => match other.draft() {
                Some(number) => write!(f, "draft-{number}"),
                None => write!(f, "{:#010x}", other.0),
            },
        }
    }
}
