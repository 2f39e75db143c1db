//! Views for capture headers etherparse does not cover. Each constructor checks
//! the length once; after that no accessor can fail.

use super::{DecodeError, Layer};

fn read_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

/// Linux cooked capture v2 header (LINKTYPE_LINUX_SLL2, 20 bytes).
#[derive(Debug, Clone, Copy)]
pub struct LinuxSll2View<'a> {
    bytes: &'a [u8],
}

mod sll2 {
    pub const PROTOCOL_TYPE: usize = 0;
    pub const LENGTH: usize = 20;
}

impl<'a> LinuxSll2View<'a> {
    pub fn new(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.len() < sll2::LENGTH {
            return Err(DecodeError::Truncated(Layer::LinuxSll2));
        }
        Ok(Self { bytes })
    }

    /// EtherType of the payload.
    pub fn protocol_type(&self) -> u16 {
        read_u16(self.bytes, sll2::PROTOCOL_TYPE)
    }

    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[sll2::LENGTH..]
    }
}

/// BSD null/loopback header (LINKTYPE_NULL, LINKTYPE_LOOP): a 4-byte address
/// family, in the capturing host's byte order for NULL and big-endian for LOOP.
#[derive(Debug, Clone, Copy)]
pub struct NullView<'a> {
    bytes: &'a [u8],
}

mod null {
    pub const LENGTH: usize = 4;
    pub const AF_INET: u32 = 2;
    /// AF_INET6 differs between BSDs: NetBSD/OpenBSD 24, FreeBSD 28, Darwin 30; Linux 10.
    pub const AF_INET6: [u32; 4] = [24, 28, 30, 10];
}

impl<'a> NullView<'a> {
    pub fn new(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.len() < null::LENGTH {
            return Err(DecodeError::Truncated(Layer::Null));
        }
        Ok(Self { bytes })
    }

    /// 4 or 6, trying both byte orders because the writer's order is unknown.
    pub fn ip_version(&self) -> Option<u8> {
        let raw = [self.bytes[0], self.bytes[1], self.bytes[2], self.bytes[3]];
        for family in [u32::from_le_bytes(raw), u32::from_be_bytes(raw)] {
            if family == null::AF_INET {
                return Some(4);
            }
            if null::AF_INET6.contains(&family) {
                return Some(6);
            }
        }
        None
    }

    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[null::LENGTH..]
    }
}
