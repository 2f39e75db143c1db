//! Tunnel and carrier headers etherparse does not cover (RFC 2784/2890 GRE,
//! ERSPAN II/III, RFC 7348 VXLAN, RFC 8926 GENEVE, 3GPP TS 29.281 GTP-U,
//! RFC 3032 MPLS, RFC 2516 PPPoE, RFC 1661 PPP, Linux NFLOG). Each view checks
//! its length once in `new`; accessors cannot fail afterwards.

use super::{DecodeError, Layer};

fn be16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

fn be32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// GRE (RFC 2784 with RFC 2890 key and sequence number), version 0.
#[derive(Debug, Clone, Copy)]
pub struct GreView<'a> {
    bytes: &'a [u8],
    header_length: usize,
}

mod gre {
    pub const FLAGS: usize = 0;
    pub const PROTOCOL: usize = 2;
    pub const FIXED: usize = 4;
    pub const CHECKSUM_PRESENT: u16 = 0x8000;
    pub const KEY_PRESENT: u16 = 0x2000;
    pub const SEQUENCE_PRESENT: u16 = 0x1000;
    pub const VERSION_MASK: u16 = 0x0007;
}

impl<'a> GreView<'a> {
    pub fn new(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.len() < gre::FIXED {
            return Err(DecodeError::Truncated(Layer::Gre));
        }
        let flags = be16(bytes, gre::FLAGS);
        if flags & gre::VERSION_MASK != 0 {
            return Err(DecodeError::Malformed(Layer::Gre));
        }
        let mut header_length = gre::FIXED;
        for bit in [
            gre::CHECKSUM_PRESENT,
            gre::KEY_PRESENT,
            gre::SEQUENCE_PRESENT,
        ] {
            if flags & bit != 0 {
                header_length += 4;
            }
        }
        if bytes.len() < header_length {
            return Err(DecodeError::Truncated(Layer::Gre));
        }
        Ok(Self {
            bytes,
            header_length,
        })
    }

    pub fn protocol(&self) -> u16 {
        be16(self.bytes, gre::PROTOCOL)
    }

    pub fn has_sequence(&self) -> bool {
        be16(self.bytes, gre::FLAGS) & gre::SEQUENCE_PRESENT != 0
    }

    pub fn key(&self) -> Option<u32> {
        let flags = be16(self.bytes, gre::FLAGS);
        if flags & gre::KEY_PRESENT == 0 {
            return None;
        }
        let at = gre::FIXED
            + if flags & gre::CHECKSUM_PRESENT != 0 {
                4
            } else {
                0
            };
        Some(be32(self.bytes, at))
    }

    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[self.header_length..]
    }
}

/// ERSPAN type II (8-byte header) and III (12 bytes, plus an 8-byte platform
/// sub-header when the O flag is set), carried in GRE.
#[derive(Debug, Clone, Copy)]
pub struct ErspanView<'a> {
    bytes: &'a [u8],
    header_length: usize,
}

impl<'a> ErspanView<'a> {
    pub fn new(bytes: &'a [u8], type3: bool) -> Result<Self, DecodeError> {
        let fixed = if type3 { 12 } else { 8 };
        if bytes.len() < fixed {
            return Err(DecodeError::Truncated(Layer::Erspan));
        }
        // Type III: the O bit (optional sub-header) is the lowest bit of byte 11.
        let header_length = if type3 && bytes[11] & 0x01 != 0 {
            fixed + 8
        } else {
            fixed
        };
        if bytes.len() < header_length {
            return Err(DecodeError::Truncated(Layer::Erspan));
        }
        Ok(Self {
            bytes,
            header_length,
        })
    }

    /// Session id (10 bits).
    pub fn session(&self) -> u16 {
        be16(self.bytes, 2) & 0x03ff
    }

    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[self.header_length..]
    }
}

/// VXLAN (RFC 7348): 8 bytes, 24-bit VNI, Ethernet follows.
#[derive(Debug, Clone, Copy)]
pub struct VxlanView<'a> {
    bytes: &'a [u8],
}

impl<'a> VxlanView<'a> {
    pub fn new(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.len() < 8 {
            return Err(DecodeError::Truncated(Layer::Vxlan));
        }
        // The I flag says the VNI is valid; without it this is not VXLAN.
        if bytes[0] & 0x08 == 0 {
            return Err(DecodeError::Malformed(Layer::Vxlan));
        }
        Ok(Self { bytes })
    }

    pub fn vni(&self) -> u32 {
        be32(self.bytes, 4) >> 8
    }

    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[8..]
    }
}

/// GENEVE (RFC 8926 §3.4): 8 bytes plus options, protocol type, 24-bit VNI.
#[derive(Debug, Clone, Copy)]
pub struct GeneveView<'a> {
    bytes: &'a [u8],
}

impl<'a> GeneveView<'a> {
    pub fn new(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.len() < 8 {
            return Err(DecodeError::Truncated(Layer::Geneve));
        }
        let view = Self { bytes };
        if bytes[0] >> 6 != 0 {
            return Err(DecodeError::Malformed(Layer::Geneve));
        }
        if bytes.len() < view.header_length() {
            return Err(DecodeError::Truncated(Layer::Geneve));
        }
        Ok(view)
    }

    fn header_length(&self) -> usize {
        8 + usize::from(self.bytes[0] & 0x3f) * 4
    }

    pub fn protocol_type(&self) -> u16 {
        be16(self.bytes, 2)
    }

    pub fn vni(&self) -> u32 {
        be32(self.bytes, 4) >> 8
    }

    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[self.header_length()..]
    }
}

/// GTP-U (3GPP TS 29.281 §5): G-PDU messages carry a user IP packet.
#[derive(Debug, Clone, Copy)]
pub struct GtpView<'a> {
    bytes: &'a [u8],
    header_length: usize,
}

impl<'a> GtpView<'a> {
    pub fn new(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.len() < 8 {
            return Err(DecodeError::Truncated(Layer::Gtp));
        }
        let flags = bytes[0];
        if flags >> 5 != 1 || flags & 0x10 == 0 {
            return Err(DecodeError::Malformed(Layer::Gtp));
        }
        if bytes[1] != 0xff {
            // Echo, error indication and the like carry no user packet.
            return Err(DecodeError::Unsupported(Layer::Gtp));
        }
        let mut header_length = 8;
        if flags & 0x07 != 0 {
            // Sequence number, N-PDU number and next-extension type.
            header_length = 12;
            let mut next = *bytes.get(11).ok_or(DecodeError::Truncated(Layer::Gtp))?;
            let mut hops = 0;
            while next != 0 {
                hops += 1;
                let units = usize::from(
                    *bytes
                        .get(header_length)
                        .ok_or(DecodeError::Truncated(Layer::Gtp))?,
                );
                if units == 0 || hops > 8 {
                    return Err(DecodeError::Malformed(Layer::Gtp));
                }
                header_length += units * 4;
                next = *bytes
                    .get(header_length - 1)
                    .ok_or(DecodeError::Truncated(Layer::Gtp))?;
            }
        }
        if bytes.len() < header_length {
            return Err(DecodeError::Truncated(Layer::Gtp));
        }
        Ok(Self {
            bytes,
            header_length,
        })
    }

    pub fn teid(&self) -> u32 {
        be32(self.bytes, 4)
    }

    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[self.header_length..]
    }
}

/// An MPLS label stack (RFC 3032); `payload` starts after the bottom label.
#[derive(Debug, Clone, Copy)]
pub struct MplsView<'a> {
    bytes: &'a [u8],
    labels: usize,
}

impl<'a> MplsView<'a> {
    pub fn new(bytes: &'a [u8], max_labels: usize) -> Result<Self, DecodeError> {
        let mut labels = 0;
        loop {
            let at = labels * 4;
            if bytes.len() < at + 4 {
                return Err(DecodeError::Truncated(Layer::Mpls));
            }
            labels += 1;
            if bytes[at + 2] & 0x01 != 0 {
                return Ok(Self { bytes, labels });
            }
            if labels >= max_labels {
                return Err(DecodeError::TooDeep);
            }
        }
    }

    /// The top label.
    pub fn label(&self) -> u32 {
        be32(self.bytes, 0) >> 12
    }

    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[self.labels * 4..]
    }
}

/// PPPoE session header (RFC 2516 §4) and the PPP protocol field after it.
#[derive(Debug, Clone, Copy)]
pub struct PppoeView<'a> {
    bytes: &'a [u8],
}

impl<'a> PppoeView<'a> {
    pub fn new(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.len() < 8 {
            return Err(DecodeError::Truncated(Layer::Pppoe));
        }
        if bytes[0] != 0x11 || bytes[1] != 0x00 {
            return Err(DecodeError::Malformed(Layer::Pppoe));
        }
        Ok(Self { bytes })
    }

    pub fn session(&self) -> u16 {
        be16(self.bytes, 2)
    }

    pub fn ppp_protocol(&self) -> u16 {
        be16(self.bytes, 6)
    }

    /// Everything after the PPP protocol field. The PPPoE length is not used
    /// to cut it: real traces carry lengths shorter than the IP packet inside
    /// (misc/pppoe-over-qinq.pcap, 6 frames), and the IP total length trims
    /// Ethernet padding anyway.
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[8..]
    }
}

/// PPP with optional HDLC-like framing (RFC 1662): returns (protocol, payload).
pub fn ppp(bytes: &[u8]) -> Result<(u16, &[u8]), DecodeError> {
    let rest = match bytes {
        [0xff, 0x03, rest @ ..] => rest,
        _ => bytes,
    };
    match rest {
        // A protocol field compressed to one byte has its low bit set.
        [first, tail @ ..] if first & 0x01 == 1 => Ok((u16::from(*first), tail)),
        [high, low, tail @ ..] => Ok((u16::from_be_bytes([*high, *low]), tail)),
        _ => Err(DecodeError::Truncated(Layer::Ppp)),
    }
}

/// Linux NFLOG (LINKTYPE_NFLOG): a 4-byte header, then TLVs with
/// little-endian length and type; type 9 (NFULA_PAYLOAD) is the packet.
pub fn nflog_payload(bytes: &[u8]) -> Result<&[u8], DecodeError> {
    let mut rest = bytes.get(4..).ok_or(DecodeError::Truncated(Layer::Nflog))?;
    while rest.len() >= 4 {
        let length = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let kind = u16::from_le_bytes([rest[2], rest[3]]);
        if length < 4 || rest.len() < length {
            return Err(DecodeError::Malformed(Layer::Nflog));
        }
        if kind == 9 {
            return Ok(&rest[4..length]);
        }
        let padded = (length + 3) & !3;
        rest = rest.get(padded..).unwrap_or(&[]);
    }
    Err(DecodeError::Truncated(Layer::Nflog))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gre_with_key_and_sequence_is_skipped_to_its_payload() {
        // K and S set, protocol 0x6558, key 0x0000002a, sequence 7, then payload.
        let bytes = [
            0x30, 0x00, 0x65, 0x58, 0, 0, 0, 0x2a, 0, 0, 0, 7, 0xde, 0xad,
        ];
        let gre = GreView::new(&bytes).expect("gre");
        assert_eq!(gre.protocol(), 0x6558);
        assert_eq!(gre.key(), Some(42));
        assert!(gre.has_sequence());
        assert_eq!(gre.payload(), &[0xde, 0xad]);
        assert!(GreView::new(&bytes[..10]).is_err());
    }

    #[test]
    fn vxlan_and_geneve_give_their_vni() {
        let vxlan = [0x08, 0, 0, 0, 0x00, 0x10, 0x92, 0x00, 0xaa];
        let view = VxlanView::new(&vxlan).expect("vxlan");
        assert_eq!(view.vni(), 4242);
        assert_eq!(view.payload(), &[0xaa]);
        assert!(VxlanView::new(&[0u8; 8]).is_err(), "I flag missing");
        // One 4-byte option, protocol 0x6558, VNI 7.
        let geneve = [0x01, 0, 0x65, 0x58, 0, 0, 7, 0, 1, 2, 3, 4, 0xbb];
        let view = GeneveView::new(&geneve).expect("geneve");
        assert_eq!(view.vni(), 7);
        assert_eq!(view.protocol_type(), 0x6558);
        assert_eq!(view.payload(), &[0xbb]);
        assert!(GeneveView::new(&geneve[..11]).is_err(), "options cut short");
    }

    #[test]
    fn gtp_with_an_extension_header_is_skipped() {
        // Version 1, PT, E flag; G-PDU; TEID 0x01020304; seq, npdu, next ext 0x85;
        // extension: 1 unit (4 bytes) ending with next type 0; then payload.
        let bytes = [
            0x34, 0xff, 0, 12, 1, 2, 3, 4, 0, 0, 0, 0x85, 1, 0xaa, 0xbb, 0, 0x45,
        ];
        let gtp = GtpView::new(&bytes).expect("gtp");
        assert_eq!(gtp.teid(), 0x0102_0304);
        assert_eq!(gtp.payload(), &[0x45]);
        let mut echo = bytes;
        echo[1] = 1;
        assert_eq!(
            GtpView::new(&echo).err(),
            Some(DecodeError::Unsupported(Layer::Gtp))
        );
    }

    #[test]
    fn mpls_stack_ends_at_the_bottom_of_stack_bit() {
        // Label 16, then label 17 with S set, then an IPv4 nibble.
        let bytes = [0x00, 0x01, 0x00, 0x40, 0x00, 0x01, 0x11, 0x40, 0x45];
        let mpls = MplsView::new(&bytes, 8).expect("mpls");
        assert_eq!(mpls.label(), 16);
        assert_eq!(mpls.payload(), &[0x45]);
        assert_eq!(
            MplsView::new(&bytes[..4], 8).err(),
            Some(DecodeError::Truncated(Layer::Mpls))
        );
        assert_eq!(
            MplsView::new(&[0u8; 40], 3).err(),
            Some(DecodeError::TooDeep)
        );
    }

    #[test]
    fn pppoe_session_and_ppp_framing() {
        let bytes = [
            0x11, 0x00, 0x12, 0x34, 0x00, 0x03, 0x00, 0x21, 0x45, 0xff, 0xff,
        ];
        let pppoe = PppoeView::new(&bytes).expect("pppoe");
        assert_eq!(pppoe.session(), 0x1234);
        assert_eq!(pppoe.ppp_protocol(), 0x0021);
        assert_eq!(
            pppoe.payload(),
            &[0x45, 0xff, 0xff],
            "IP's total length, not PPPoE's, trims padding"
        );
        assert_eq!(
            ppp(&[0xff, 0x03, 0x00, 0x21, 0x45]).expect("ppp"),
            (0x21, &[0x45][..])
        );
        assert_eq!(ppp(&[0x21, 0x45]).expect("compressed"), (0x21, &[0x45][..]));
    }

    #[test]
    fn nflog_payload_tlv_is_found_after_padding() {
        // header, TLV type 1 length 5 (padded to 8), TLV type 9 length 6.
        let bytes = [
            2, 0, 0, 0, 5, 0, 1, 0, 0xaa, 0, 0, 0, 6, 0, 9, 0, 0x45, 0x00,
        ];
        assert_eq!(nflog_payload(&bytes).expect("payload"), &[0x45, 0x00]);
        assert!(
            nflog_payload(&[2, 0, 0, 0, 2, 0, 9, 0]).is_err(),
            "a length under 4 is refused"
        );
    }

    #[test]
    fn erspan_three_with_subheader() {
        let mut bytes = vec![0x20, 0x00, 0x00, 0x05, 0, 0, 0, 0, 0, 0, 0, 0x01];
        bytes.extend([0u8; 8]);
        bytes.push(0xee);
        let view = ErspanView::new(&bytes, true).expect("erspan");
        assert_eq!(view.session(), 5);
        assert_eq!(view.payload(), &[0xee]);
    }
}
