//! QUIC Initial packets: UDP payloads in, the TLS handshake bytes they carry out.
//!
//! QUIC (RFC 9000) carries TLS 1.3 handshake messages in CRYPTO frames instead
//! of TLS records. At the Initial level those frames are encrypted with keys
//! anyone can derive from the client's first Destination Connection ID
//! (RFC 9001 §5.2), so a passive observer can read the ClientHello and the
//! ServerHello. `flow` owns one [`QuicConnection`] per UDP flow and feeds it
//! every datagram with its direction; the connection walks coalesced packets,
//! removes header protection, decrypts Initial packets (QUIC v1, v2 per
//! RFC 9369, drafts 29 to 34), reassembles each direction's CRYPTO stream and
//! hands the in-order bytes back through [`QuicConnection::take_crypto`], for
//! the caller to feed to the TLS [`Session`](super::Session) as if they were
//! the payload of handshake records. Retry and Version Negotiation packets are
//! recognised, never decrypted; Handshake and 1-RTT packets are only noticed.
//!
//! Bounds: [`QuicLimits`] (CRYPTO bytes and out-of-order pieces per
//! direction), plus small fixed caps on connection IDs, key sets and packets
//! per datagram. Every cap that bites raises a [`QuicCounters`] field.

mod crypto_stream;
pub mod frame;
pub mod keys;
pub mod packet;
mod version;

#[cfg(test)]
mod tests;

pub use crypto_stream::CryptoStream;
pub use frame::{Frame, Frames};
pub use keys::{derive_initial_secrets, hkdf_expand_label, InitialSecrets, PacketKeys};
pub use packet::{
    decode_packet_number, open_long_packet, parse_long_header, read_varint, LongPacket, Opened,
};
pub use version::{Labels, LongPacketType, QuicVersion};

use super::summary::Direction;

/// Caps on what one QUIC connection may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuicLimits {
    /// CRYPTO stream bytes accepted per direction (in order and pending alike);
    /// the rest is dropped and counted. A ClientHello with post-quantum key
    /// shares is under 2 KiB, a server's Initial flight far less.
    pub max_crypto_bytes: usize,
    /// Out-of-order CRYPTO pieces held per direction while a gap is open.
    /// Chromium scatters its ClientHello over a dozen frames on purpose.
    pub max_pending_frames: usize,
}

impl Default for QuicLimits {
    fn default() -> Self {
        Self {
            max_crypto_bytes: 64 * 1024,
            max_pending_frames: 64,
        }
    }
}

/// Why a packet or frame was not used. Counted, never logged per packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum QuicError {
    #[error("packet shorter than its header or length field says")]
    Truncated,
    #[error("length field impossible")]
    BadLength,
    #[error("not a long-header packet")]
    NotLongHeader,
    #[error("fixed bit clear in a long header")]
    FixedBitClear,
    #[error("AEAD tag did not verify with any Initial key set")]
    DecryptFailed,
    #[error("frame runs past the payload")]
    BadFrame,
    #[error("frame type not allowed in an Initial packet")]
    UnexpectedFrame,
}

/// Per-worker QUIC counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuicCounters {
    /// First packet of a datagram was neither a long header nor a short
    /// header of a connection already seen.
    pub datagrams_not_quic: u64,
    pub packets_decrypted: u64,
    pub packets_decrypt_failed: u64,
    /// Long headers of a version whose keys we cannot derive (Google QUIC, old drafts).
    pub packets_version_unsupported: u64,
    pub packets_retry: u64,
    pub packets_version_negotiation: u64,
    pub packets_handshake: u64,
    pub packets_short_header: u64,
    /// Header that does not parse, or too short to sample.
    pub packets_malformed: u64,
    /// Datagrams holding more coalesced packets than we walk.
    pub packets_coalesced_over_cap: u64,
    /// A frame ran past its payload.
    pub frames_malformed: u64,
    /// A frame type an Initial may not carry ended the walk.
    pub frames_unexpected: u64,
    pub crypto_frames_out_of_order: u64,
    /// Out-of-order pieces refused by `max_pending_frames` or the byte cap.
    pub crypto_frames_dropped_over_cap: u64,
    /// Stream bytes beyond `max_crypto_bytes`.
    pub crypto_bytes_dropped_over_cap: u64,
    /// Client connection IDs not remembered because the list was full.
    pub connection_ids_dropped: u64,
}

impl QuicCounters {
    pub fn add(&mut self, other: &Self) {
        self.datagrams_not_quic += other.datagrams_not_quic;
        self.packets_decrypted += other.packets_decrypted;
        self.packets_decrypt_failed += other.packets_decrypt_failed;
        self.packets_version_unsupported += other.packets_version_unsupported;
        self.packets_retry += other.packets_retry;
        self.packets_version_negotiation += other.packets_version_negotiation;
        self.packets_handshake += other.packets_handshake;
        self.packets_short_header += other.packets_short_header;
        self.packets_malformed += other.packets_malformed;
        self.packets_coalesced_over_cap += other.packets_coalesced_over_cap;
        self.frames_malformed += other.frames_malformed;
        self.frames_unexpected += other.frames_unexpected;
        self.crypto_frames_out_of_order += other.crypto_frames_out_of_order;
        self.crypto_frames_dropped_over_cap += other.crypto_frames_dropped_over_cap;
        self.crypto_bytes_dropped_over_cap += other.crypto_bytes_dropped_over_cap;
        self.connection_ids_dropped += other.connection_ids_dropped;
    }
}

/// Client DCIDs remembered: the first one and one per Retry is plenty; a
/// client that keeps changing beyond that is not a real handshake.
const MAX_CLIENT_DCIDS: usize = 4;
/// Derived key sets kept (per version and DCID); the oldest is rebuilt if needed.
const MAX_KEY_SETS: usize = 8;
/// Real datagrams coalesce at most Initial + 0-RTT/Handshake + 1-RTT.
const MAX_PACKETS_PER_DATAGRAM: usize = 8;
/// Versions kept from one Version Negotiation packet.
const MAX_NEGOTIATION_VERSIONS: usize = 32;

/// A connection ID, stored inline (at most 20 bytes in v1 and v2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ConnectionId {
    bytes: [u8; packet::MAX_CONNECTION_ID_LENGTH],
    length: u8,
}

impl ConnectionId {
    /// `None` if longer than 20 bytes (parse_long_header refuses those for
    /// supported versions, so this does not happen for Initials).
    fn new(id: &[u8]) -> Option<Self> {
        let mut bytes = [0; packet::MAX_CONNECTION_ID_LENGTH];
        bytes.get_mut(..id.len())?.copy_from_slice(id);
        Some(Self {
            bytes,
            length: id.len() as u8,
        })
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.length)]
    }
}

#[derive(Debug)]
struct KeySet {
    version: QuicVersion,
    dcid: ConnectionId,
    client: PacketKeys,
    server: PacketKeys,
}

/// QUIC state of one UDP flow, up to the end of the Initial exchange.
#[derive(Debug)]
pub struct QuicConnection {
    limits: QuicLimits,
    /// DCIDs chosen by the client that may key Initials, oldest first.
    client_dcids: Vec<ConnectionId>,
    key_sets: Vec<KeySet>,
    streams: [CryptoStream; 2],
    largest_packet_number: [Option<u64>; 2],
    client_version: Option<QuicVersion>,
    server_version: Option<QuicVersion>,
    retry_seen: bool,
    negotiation_versions: Option<Vec<QuicVersion>>,
    beyond_initial: [bool; 2],
}

impl QuicConnection {
    /// Heap bytes held (key schedules, crypto streams, buffers), for the
    /// memory cap.
    pub fn heap_bytes(&self) -> usize {
        self.key_sets.capacity() * std::mem::size_of::<KeySet>()
            + self.client_dcids.capacity() * std::mem::size_of::<ConnectionId>()
            + self
                .streams
                .iter()
                .map(CryptoStream::heap_bytes)
                .sum::<usize>()
            + self
                .negotiation_versions
                .as_ref()
                .map_or(0, |v| v.capacity() * 4)
    }

    pub fn new(limits: QuicLimits) -> Self {
        Self {
            limits,
            client_dcids: Vec::new(),
            key_sets: Vec::new(),
            streams: Default::default(),
            largest_packet_number: [None; 2],
            client_version: None,
            server_version: None,
            retry_seen: false,
            negotiation_versions: None,
            beyond_initial: [false; 2],
        }
    }

    /// Feeds one UDP payload. `direction` is as the flow sees it:
    /// [`Direction::ToServer`] for datagrams from the flow's initiator (the
    /// client). Returns false, and counts `datagrams_not_quic`, when the
    /// datagram does not start with a QUIC packet.
    pub fn on_datagram(
        &mut self,
        direction: Direction,
        datagram: &[u8],
        counters: &mut QuicCounters,
    ) -> bool {
        let mut rest = datagram;
        let mut walked = 0;
        while let Some(&first_byte) = rest.first() {
            if walked == MAX_PACKETS_PER_DATAGRAM {
                counters.packets_coalesced_over_cap += 1;
                break;
            }
            walked += 1;
            if !packet::is_long_header(first_byte) {
                // A short header runs to the end of the datagram. Zero bytes
                // after coalesced packets are padding, not a packet: a short
                // header has the fixed bit set.
                let known = self.client_version.is_some() || walked > 1;
                if first_byte & 0x40 != 0 && known {
                    counters.packets_short_header += 1;
                    self.beyond_initial[direction.index()] = true;
                } else if walked == 1 {
                    counters.datagrams_not_quic += 1;
                    return false;
                }
                break;
            }
            let packet = match parse_long_header(rest) {
                Ok(packet) => packet,
                Err(_) if walked == 1 => {
                    counters.datagrams_not_quic += 1;
                    return false;
                }
                Err(_) => {
                    counters.packets_malformed += 1;
                    break;
                }
            };
            rest = packet.rest;
            match packet.packet_type {
                None if packet.version == QuicVersion::NEGOTIATION => {
                    counters.packets_version_negotiation += 1;
                    if direction == Direction::ToClient {
                        self.negotiation_versions = Some(
                            packet
                                .negotiation_versions()
                                .take(MAX_NEGOTIATION_VERSIONS)
                                .collect(),
                        );
                    }
                }
                None => counters.packets_version_unsupported += 1,
                Some(LongPacketType::Retry) => {
                    counters.packets_retry += 1;
                    if direction == Direction::ToClient {
                        self.retry_seen = true;
                    }
                }
                Some(LongPacketType::Handshake) => {
                    counters.packets_handshake += 1;
                    self.beyond_initial[direction.index()] = true;
                }
                Some(LongPacketType::ZeroRtt) => {}
                Some(LongPacketType::Initial) => self.on_initial(direction, &packet, counters),
            }
        }
        true
    }

    fn on_initial(
        &mut self,
        direction: Direction,
        packet: &LongPacket<'_>,
        counters: &mut QuicCounters,
    ) {
        let Some(own_dcid) = ConnectionId::new(packet.dcid) else {
            counters.packets_malformed += 1;
            return;
        };
        // Newest client DCID first: after a Retry both sides key Initials on
        // the DCID of the client's next Initial (RFC 9001 §5.2). A client
        // Initial may also bring a DCID we have not seen (the first one, the
        // one after a Retry); it is tried last, because later client Initials
        // carry the server's chosen ID and are still keyed on the old one.
        let known = self.client_dcids.len();
        let try_own = direction == Direction::ToServer && !self.client_dcids.contains(&own_dcid);
        // One decryption buffer per datagram, reused across key attempts and
        // not kept: a flood of stalled Initials would hold 1.2 KB per flow.
        let mut scratch = Vec::new();
        let largest = self.largest_packet_number[direction.index()];
        let mut opened = None;
        let mut truncated = false;
        for attempt in 0..known + usize::from(try_own) {
            let (dcid, is_new) = match known.checked_sub(attempt + 1) {
                Some(index) => (self.client_dcids[index], false),
                None => (own_dcid, true),
            };
            let Some(keys) = self.key_set(packet.version, dcid) else {
                break;
            };
            let keys = match direction {
                Direction::ToServer => &keys.client,
                Direction::ToClient => &keys.server,
            };
            match open_long_packet(packet, keys, largest, &mut scratch) {
                Ok(result) => {
                    opened = Some(result);
                    if is_new {
                        self.remember_client_dcid(dcid, counters);
                    }
                    break;
                }
                Err(QuicError::Truncated) => {
                    truncated = true;
                    break;
                }
                Err(_) => {}
            }
        }
        match opened {
            Some(opened) => {
                counters.packets_decrypted += 1;
                let slot = &mut self.largest_packet_number[direction.index()];
                *slot = Some(slot.map_or(opened.packet_number, |largest| {
                    largest.max(opened.packet_number)
                }));
                let version = match direction {
                    Direction::ToServer => &mut self.client_version,
                    Direction::ToClient => &mut self.server_version,
                };
                version.get_or_insert(packet.version);
                let payload = scratch.get(opened.payload).unwrap_or_default();
                self.read_frames(direction, payload, counters);
            }
            None if truncated => counters.packets_malformed += 1,
            None => counters.packets_decrypt_failed += 1,
        }
    }

    fn read_frames(&mut self, direction: Direction, payload: &[u8], counters: &mut QuicCounters) {
        let stream = &mut self.streams[direction.index()];
        for frame in Frames::new(payload) {
            match frame {
                Ok(Frame::Crypto { offset, data }) => {
                    stream.insert(offset, data, &self.limits, counters)
                }
                Ok(_) => {}
                Err(QuicError::UnexpectedFrame) => counters.frames_unexpected += 1,
                Err(_) => counters.frames_malformed += 1,
            }
        }
    }

    fn remember_client_dcid(&mut self, dcid: ConnectionId, counters: &mut QuicCounters) {
        if self.client_dcids.len() < MAX_CLIENT_DCIDS {
            self.client_dcids.push(dcid);
        } else {
            counters.connection_ids_dropped += 1;
        }
    }

    /// Cached or freshly derived keys for (version, client DCID).
    fn key_set(&mut self, version: QuicVersion, dcid: ConnectionId) -> Option<&KeySet> {
        let found = self
            .key_sets
            .iter()
            .position(|set| set.version == version && set.dcid == dcid);
        let index = match found {
            Some(index) => index,
            None => {
                let (client, server) = derive_initial_secrets(version, dcid.as_bytes())?;
                if self.key_sets.len() >= MAX_KEY_SETS {
                    self.key_sets.remove(0);
                }
                self.key_sets.push(KeySet {
                    version,
                    dcid,
                    client: PacketKeys::new(&client),
                    server: PacketKeys::new(&server),
                });
                self.key_sets.len() - 1
            }
        };
        self.key_sets.get(index)
    }

    /// New in-order CRYPTO bytes (Initial level) of `direction` since the last
    /// call; the bytes are handed over, not kept.
    pub fn take_crypto(&mut self, direction: Direction) -> Vec<u8> {
        self.streams[direction.index()].take()
    }

    /// The CRYPTO stream of `direction`, to look at without draining.
    pub fn crypto_stream(&self, direction: Direction) -> &CryptoStream {
        &self.streams[direction.index()]
    }

    /// Whether a cap dropped CRYPTO bytes of `direction` (report the session truncated).
    pub fn crypto_truncated(&self, direction: Direction) -> bool {
        self.streams[direction.index()].is_truncated()
    }

    /// Version of the client's first decrypted Initial.
    pub fn version(&self) -> Option<QuicVersion> {
        self.client_version
    }

    /// Version of the server's first decrypted Initial: differs from
    /// [`version`](Self::version) after compatible version negotiation (v1 to v2).
    pub fn server_version(&self) -> Option<QuicVersion> {
        self.server_version
    }

    /// Whether the server sent a Retry.
    pub fn retry_seen(&self) -> bool {
        self.retry_seen
    }

    /// Versions the server offered in a Version Negotiation packet, if it sent one.
    pub fn version_negotiation(&self) -> Option<&[QuicVersion]> {
        self.negotiation_versions.as_deref()
    }

    /// Whether `direction` sent a Handshake or 1-RTT (short header) packet:
    /// the Initial exchange is over and the handshake went on.
    pub fn handshake_or_short_seen(&self, direction: Direction) -> bool {
        self.beyond_initial[direction.index()]
    }
}

/// Version of the QUIC Initial a datagram starts with, if it looks like one a
/// client sends first: long header, fixed bit, a version whose keys we can
/// derive, Initial type, a DCID of 8 to 20 bytes (RFC 9000 §7.2) and room for
/// the header protection sample. Content, not the port, says a flow is QUIC.
pub fn initial_version(datagram: &[u8]) -> Option<QuicVersion> {
    let packet = parse_long_header(datagram).ok()?;
    let fits_sample = packet.packet.len() >= packet.packet_number_offset + 20;
    (packet.packet_type == Some(LongPacketType::Initial)
        && (8..=packet::MAX_CONNECTION_ID_LENGTH).contains(&packet.dcid.len())
        && fits_sample)
        .then_some(packet.version)
}

/// Content test for the first datagram of a UDP flow; see [`initial_version`].
pub fn looks_like_initial(datagram: &[u8]) -> bool {
    initial_version(datagram).is_some()
}

/// "1", "2", "draft-29", or the hex value for versions without a name.
pub fn version_name(version: u32) -> String {
    QuicVersion(version).to_string()
}
