//! QUIC packet headers (RFC 9000 §17) and Initial packet unprotection
//! (RFC 9001 §5.3, §5.4). `parse_long_header` checks every length once, so
//! the returned [`LongPacket`] slices are always in bounds.

use super::keys::PacketKeys;
use super::version::{LongPacketType, QuicVersion};
use super::QuicError;

/// Longest connection ID QUIC v1 and v2 allow (RFC 9000 §17.2).
pub const MAX_CONNECTION_ID_LENGTH: usize = 20;
/// AEAD tag length of AES-128-GCM.
const TAG_LENGTH: usize = 16;
/// Header protection samples 16 bytes, starting 4 bytes after the packet
/// number field begins (RFC 9001 §5.4.2).
const SAMPLE_OFFSET: usize = 4;
const SAMPLE_LENGTH: usize = 16;

/// Reads a variable-length integer (RFC 9000 §16) at `*position` and moves past it.
pub fn read_varint(bytes: &[u8], position: &mut usize) -> Option<u64> {
    let first = *bytes.get(*position)?;
    let length = 1usize << (first >> 6);
    let end = position.checked_add(length)?;
    let encoded = bytes.get(*position..end)?;
    let value = encoded
        .iter()
        .skip(1)
        .fold(u64::from(first & 0x3f), |value, byte| {
            (value << 8) | u64::from(*byte)
        });
    *position = end;
    Some(value)
}

/// One long-header packet cut out of a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongPacket<'a> {
    pub first_byte: u8,
    pub version: QuicVersion,
    pub dcid: &'a [u8],
    pub scid: &'a [u8],
    /// `None` for Version Negotiation and for versions we cannot read past the
    /// connection IDs (their Length field is version-specific).
    pub packet_type: Option<LongPacketType>,
    /// Initial only: the address validation token.
    pub token: &'a [u8],
    /// This packet's bytes, header included; for Version Negotiation, Retry
    /// and unknown versions, the rest of the datagram.
    pub packet: &'a [u8],
    /// Offset in `packet` of the (protected) packet number, for Initial,
    /// 0-RTT and Handshake packets.
    pub packet_number_offset: usize,
    /// Datagram bytes after this packet: the next coalesced packet, if any.
    pub rest: &'a [u8],
}

impl<'a> LongPacket<'a> {
    /// Versions offered by a Version Negotiation packet, 4 bytes each.
    pub fn negotiation_versions(&self) -> impl Iterator<Item = QuicVersion> + 'a {
        let list: &'a [u8] = if self.version == QuicVersion::NEGOTIATION {
            let start = 7 + self.dcid.len() + self.scid.len();
            self.packet.get(start..).unwrap_or_default()
        } else {
            &[]
        };
        list.chunks_exact(4)
            .map(|chunk| QuicVersion(u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]])))
    }
}

/// Whether the first byte announces a long header (RFC 9000 §17.2).
pub fn is_long_header(first_byte: u8) -> bool {
    first_byte & 0x80 != 0
}

/// Cuts the long-header packet at the start of `datagram`.
pub fn parse_long_header(datagram: &[u8]) -> Result<LongPacket<'_>, QuicError> {
    let first_byte = *datagram.first().ok_or(QuicError::Truncated)?;
    if !is_long_header(first_byte) {
        return Err(QuicError::NotLongHeader);
    }
    let version_bytes = datagram.get(1..5).ok_or(QuicError::Truncated)?;
    let version = QuicVersion(u32::from_be_bytes([
        version_bytes[0],
        version_bytes[1],
        version_bytes[2],
        version_bytes[3],
    ]));
    // Invariant fields (RFC 8999 §5.1): any version, lengths up to 255.
    let mut position = 5;
    let dcid = read_length_prefixed(datagram, &mut position)?;
    let scid = read_length_prefixed(datagram, &mut position)?;
    let mut packet = LongPacket {
        first_byte,
        version,
        dcid,
        scid,
        packet_type: None,
        token: &[],
        packet: datagram,
        packet_number_offset: 0,
        rest: &[],
    };
    if version == QuicVersion::NEGOTIATION || !version.is_supported() {
        return Ok(packet);
    }
    if dcid.len() > MAX_CONNECTION_ID_LENGTH || scid.len() > MAX_CONNECTION_ID_LENGTH {
        return Err(QuicError::BadLength);
    }
    // The fixed bit must be set in v1/v2 (RFC 9000 §17.2); RFC 9287 greasing
    // is only allowed after the peer asked for it, never in a first Initial.
    if first_byte & 0x40 == 0 {
        return Err(QuicError::FixedBitClear);
    }
    let packet_type = version.packet_type(first_byte);
    packet.packet_type = Some(packet_type);
    match packet_type {
        LongPacketType::Retry => return Ok(packet),
        LongPacketType::Initial => {
            let token_length = read_varint(datagram, &mut position).ok_or(QuicError::Truncated)?;
            let token_end = usize::try_from(token_length)
                .ok()
                .and_then(|length| position.checked_add(length))
                .ok_or(QuicError::BadLength)?;
            packet.token = datagram
                .get(position..token_end)
                .ok_or(QuicError::Truncated)?;
            position = token_end;
        }
        LongPacketType::ZeroRtt | LongPacketType::Handshake => {}
    }
    let length = read_varint(datagram, &mut position).ok_or(QuicError::Truncated)?;
    let end = usize::try_from(length)
        .ok()
        .and_then(|length| position.checked_add(length))
        .ok_or(QuicError::BadLength)?;
    if end > datagram.len() {
        return Err(QuicError::BadLength);
    }
    packet.packet = &datagram[..end];
    packet.rest = &datagram[end..];
    packet.packet_number_offset = position;
    Ok(packet)
}

fn read_length_prefixed<'a>(bytes: &'a [u8], position: &mut usize) -> Result<&'a [u8], QuicError> {
    let length = usize::from(*bytes.get(*position).ok_or(QuicError::Truncated)?);
    let start = *position + 1;
    let field = bytes
        .get(start..start + length)
        .ok_or(QuicError::Truncated)?;
    *position = start + length;
    Ok(field)
}

/// Full packet number from its truncated encoding (RFC 9000 Appendix A.3).
pub fn decode_packet_number(largest: Option<u64>, truncated: u64, length_bits: u32) -> u64 {
    let expected = largest.map_or(0, |largest| largest.saturating_add(1));
    let window = 1u64 << length_bits;
    let half_window = window / 2;
    let mask = window - 1;
    let candidate = (expected & !mask) | truncated;
    if candidate.saturating_add(half_window) <= expected && candidate < (1u64 << 62) - window {
        candidate + window
    } else if candidate > expected.saturating_add(half_window) && candidate >= window {
        candidate - window
    } else {
        candidate
    }
}

/// A decrypted packet: where its frames lie in the caller's scratch buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub packet_number: u64,
    pub payload: std::ops::Range<usize>,
}

/// Removes header protection and decrypts `packet` (an Initial, 0-RTT or
/// Handshake packet from [`parse_long_header`]) into `scratch`. The input is
/// left untouched so another key set can be tried on failure.
pub fn open_long_packet(
    packet: &LongPacket<'_>,
    keys: &PacketKeys,
    largest_packet_number: Option<u64>,
    scratch: &mut Vec<u8>,
) -> Result<Opened, QuicError> {
    let pn_offset = packet.packet_number_offset;
    let sample_start = pn_offset + SAMPLE_OFFSET;
    let sample: &[u8; SAMPLE_LENGTH] = packet
        .packet
        .get(sample_start..sample_start + SAMPLE_LENGTH)
        .and_then(|sample| sample.try_into().ok())
        .ok_or(QuicError::Truncated)?;
    let mask = keys.header_mask(sample);
    scratch.clear();
    scratch.extend_from_slice(packet.packet);
    // Long header: the low 4 bits of the first byte are protected (RFC 9001 §5.4.1).
    scratch[0] ^= mask[0] & 0x0f;
    let pn_length = usize::from(scratch[0] & 0x03) + 1;
    let header_length = pn_offset + pn_length;
    // The sample check above proves pn_offset + 20 <= len, so the packet
    // number (at most 4 bytes) is in bounds; the tag still has to fit.
    if scratch.len() < header_length + TAG_LENGTH {
        return Err(QuicError::Truncated);
    }
    let mut truncated = 0u64;
    for (byte, mask) in scratch[pn_offset..header_length].iter_mut().zip(&mask[1..]) {
        *byte ^= mask;
        truncated = (truncated << 8) | u64::from(*byte);
    }
    let packet_number =
        decode_packet_number(largest_packet_number, truncated, 8 * pn_length as u32);
    let tag_start = scratch.len() - TAG_LENGTH;
    let (header_and_payload, tag) = scratch.split_at_mut(tag_start);
    let tag: &[u8; TAG_LENGTH] = (&*tag).try_into().map_err(|_| QuicError::Truncated)?;
    let (header, payload) = header_and_payload.split_at_mut(header_length);
    if !keys.open(packet_number, header, payload, tag) {
        return Err(QuicError::DecryptFailed);
    }
    Ok(Opened {
        packet_number,
        payload: header_length..tag_start,
    })
}
