//! Link, network and transport decoding: bytes in, typed endpoints and payload out.
//!
//! The reader thread calls [`decode`] once per packet. It walks the headers with
//! etherparse where etherparse has a type (Ethernet, 802.1Q, Linux SLL, IPv4,
//! IPv6 with extension headers, TCP, UDP) and with the small views in this folder
//! where it does not (SLL2, BSD null/loopback). It knows nothing of flows. Every
//! failure is a `Copy` [`DecodeError`] that the caller counts by variant; the
//! walk is bounded by [`DecodeConfig::max_depth`] layers.

mod views;

use std::net::IpAddr;

use etherparse::{EtherType, IpNumber};

use crate::capture::LinkType;
pub use views::{LinuxSll2View, NullView};

/// The layer a decode error refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    Link,
    Ethernet,
    Vlan,
    LinuxSll,
    LinuxSll2,
    Null,
    Ipv4,
    Ipv6,
    Tcp,
    Udp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{0:?} header truncated")]
    Truncated(Layer),
    #[error("{0:?} header malformed")]
    Malformed(Layer),
    #[error("link type {0} not supported")]
    UnsupportedLinkType(i32),
    #[error("ether type {0:#06x} not decoded")]
    UnsupportedEtherType(u16),
    #[error("IP protocol {0} is neither TCP nor UDP")]
    NotTcpOrUdp(u8),
    #[error("IP fragment")]
    Fragment,
    #[error("more than the allowed number of nested layers")]
    TooDeep,
}

/// One step of the path a packet took before its innermost IP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encap {
    Vlan(u16),
}

impl std::fmt::Display for Encap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Encap::Vlan(id) => write!(f, "vlan:{id}"),
        }
    }
}

/// The encapsulation path, outermost first. Fixed capacity so decoding never
/// allocates; deeper stacks are rejected by `max_depth` long before this fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EncapPath {
    layers: [Option<Encap>; EncapPath::CAPACITY],
    len: u8,
}

impl EncapPath {
    pub const CAPACITY: usize = 8;

    fn push(&mut self, layer: Encap) -> Result<(), DecodeError> {
        let slot = self
            .layers
            .get_mut(usize::from(self.len))
            .ok_or(DecodeError::TooDeep)?;
        *slot = Some(layer);
        self.len += 1;
        Ok(())
    }

    pub fn iter(&self) -> impl Iterator<Item = Encap> + '_ {
        self.layers
            .iter()
            .take(usize::from(self.len))
            .flatten()
            .copied()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// VLAN ids in path order (outermost first).
    pub fn vlan_ids(&self) -> impl Iterator<Item = u16> + '_ {
        self.iter().map(|layer| match layer {
            Encap::Vlan(id) => id,
        })
    }

    /// A value that separates flows with identical endpoints on different
    /// VLANs or tunnels (Suricata's default). Fixed mixing, not a keyed hash:
    /// the flow table hashes it again with its own key.
    pub fn flow_context(&self) -> u64 {
        self.iter().fold(0xcbf2_9ce4_8422_2325_u64, |acc, layer| {
            let value = match layer {
                Encap::Vlan(id) => 0x1_0000 | u64::from(id),
            };
            (acc ^ value).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Tcp,
    Udp,
}

/// TCP flag bits as on the wire (FIN = 0x01 … CWR = 0x80).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const ACK: u8 = 0x10;

    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
}

/// TCP facts the reassembler needs; zero for UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpSegment {
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
}

/// A decoded packet: innermost endpoints, transport facts and payload.
#[derive(Debug, Clone, Copy)]
pub struct Decoded<'a> {
    pub source: IpAddr,
    pub destination: IpAddr,
    pub source_port: u16,
    pub destination_port: u16,
    pub transport: Transport,
    pub tcp: TcpSegment,
    pub payload: &'a [u8],
    pub encap: EncapPath,
}

/// Settings that bound decoding.
#[derive(Debug, Clone, Copy)]
pub struct DecodeConfig {
    /// Most link/tunnel layers walked before the packet is refused.
    pub max_depth: usize,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        Self { max_depth: 8 }
    }
}

/// Per-thread decode counters, one field per reason a packet was not decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub packets_decoded: u64,
    pub packets_truncated: u64,
    pub packets_malformed: u64,
    pub packets_unsupported_link: u64,
    pub packets_not_ip: u64,
    pub packets_not_tcp_udp: u64,
    pub packets_fragmented: u64,
    pub packets_too_deep: u64,
}

impl Counters {
    pub fn count(&mut self, result: &Result<Decoded<'_>, DecodeError>) {
        match result {
            Ok(_) => self.packets_decoded += 1,
            Err(DecodeError::Truncated(_)) => self.packets_truncated += 1,
            Err(DecodeError::Malformed(_)) => self.packets_malformed += 1,
            Err(DecodeError::UnsupportedLinkType(_)) => self.packets_unsupported_link += 1,
            Err(DecodeError::UnsupportedEtherType(_)) => self.packets_not_ip += 1,
            Err(DecodeError::NotTcpOrUdp(_)) => self.packets_not_tcp_udp += 1,
            Err(DecodeError::Fragment) => self.packets_fragmented += 1,
            Err(DecodeError::TooDeep) => self.packets_too_deep += 1,
        }
    }

    pub fn add(&mut self, other: &Counters) {
        self.packets_decoded += other.packets_decoded;
        self.packets_truncated += other.packets_truncated;
        self.packets_malformed += other.packets_malformed;
        self.packets_unsupported_link += other.packets_unsupported_link;
        self.packets_not_ip += other.packets_not_ip;
        self.packets_not_tcp_udp += other.packets_not_tcp_udp;
        self.packets_fragmented += other.packets_fragmented;
        self.packets_too_deep += other.packets_too_deep;
    }

    pub fn errors(&self) -> u64 {
        self.packets_truncated + self.packets_malformed
    }
}

/// What the walk has to look at next.
enum Next<'a> {
    Ethernet(&'a [u8]),
    EtherType(EtherType, &'a [u8]),
    Ip(&'a [u8]),
}

/// Decodes one frame of link type `link`.
pub fn decode<'a>(
    link: LinkType,
    data: &'a [u8],
    config: &DecodeConfig,
) -> Result<Decoded<'a>, DecodeError> {
    let mut encap = EncapPath::default();
    let mut next = match link {
        LinkType::ETHERNET => Next::Ethernet(data),
        LinkType::RAW | LinkType::RAW_OPENBSD | LinkType::RAW_BSDOS => Next::Ip(data),
        LinkType::IPV4 => Next::EtherType(EtherType::IPV4, data),
        LinkType::IPV6 => Next::EtherType(EtherType::IPV6, data),
        LinkType::NULL | LinkType::LOOP => {
            let view = NullView::new(data)?;
            match view.ip_version() {
                Some(4) => Next::EtherType(EtherType::IPV4, view.payload()),
                Some(_) => Next::EtherType(EtherType::IPV6, view.payload()),
                None => return Err(DecodeError::UnsupportedEtherType(0)),
            }
        }
        LinkType::LINUX_SLL => {
            let sll = etherparse::LinuxSllSlice::from_slice(data)
                .map_err(|_| DecodeError::Truncated(Layer::LinuxSll))?;
            match sll.protocol_type() {
                etherparse::LinuxSllProtocolType::EtherType(ether_type) => {
                    Next::EtherType(ether_type, sll.payload_slice())
                }
                _ => return Err(DecodeError::UnsupportedEtherType(0)),
            }
        }
        LinkType::LINUX_SLL2 => {
            let view = LinuxSll2View::new(data)?;
            Next::EtherType(EtherType(view.protocol_type()), view.payload())
        }
        other => return Err(DecodeError::UnsupportedLinkType(other.0)),
    };

    for _ in 0..config.max_depth {
        next = match next {
            Next::Ethernet(bytes) => {
                let ethernet = etherparse::Ethernet2Slice::from_slice_without_fcs(bytes)
                    .map_err(|_| DecodeError::Truncated(Layer::Ethernet))?;
                Next::EtherType(ethernet.ether_type(), ethernet.payload_slice())
            }
            Next::EtherType(ether_type, bytes) => match ether_type {
                EtherType::IPV4 | EtherType::IPV6 => Next::Ip(bytes),
                EtherType::VLAN_TAGGED_FRAME
                | EtherType::PROVIDER_BRIDGING
                | EtherType::VLAN_DOUBLE_TAGGED_FRAME => {
                    let vlan = etherparse::SingleVlanSlice::from_slice(bytes)
                        .map_err(|_| DecodeError::Truncated(Layer::Vlan))?;
                    encap.push(Encap::Vlan(vlan.vlan_identifier().value()))?;
                    Next::EtherType(vlan.ether_type(), vlan.payload_slice())
                }
                other => return Err(DecodeError::UnsupportedEtherType(other.0)),
            },
            Next::Ip(bytes) => return decode_ip(bytes, encap),
        };
    }
    Err(DecodeError::TooDeep)
}

fn decode_ip(bytes: &[u8], encap: EncapPath) -> Result<Decoded<'_>, DecodeError> {
    let layer = match bytes.first().map(|b| b >> 4) {
        Some(6) => Layer::Ipv6,
        _ => Layer::Ipv4,
    };
    let ip = etherparse::IpSlice::from_slice(bytes).map_err(|error| match error {
        etherparse::err::ip::SliceError::Len(_) => DecodeError::Truncated(layer),
        etherparse::err::ip::SliceError::IpHeaders(_) => DecodeError::Malformed(layer),
    })?;
    let payload = ip.payload();
    if payload.fragmented {
        return Err(DecodeError::Fragment);
    }
    let source = ip.source_addr();
    let destination = ip.destination_addr();
    match payload.ip_number {
        IpNumber::TCP => {
            let tcp =
                etherparse::TcpSlice::from_slice(payload.payload).map_err(|error| match error {
                    etherparse::err::tcp::HeaderSliceError::Len(_) => {
                        DecodeError::Truncated(Layer::Tcp)
                    }
                    etherparse::err::tcp::HeaderSliceError::Content(_) => {
                        DecodeError::Malformed(Layer::Tcp)
                    }
                })?;
            let mut flags = 0u8;
            for (set, bit) in [
                (tcp.fin(), TcpFlags::FIN),
                (tcp.syn(), TcpFlags::SYN),
                (tcp.rst(), TcpFlags::RST),
                (tcp.ack(), TcpFlags::ACK),
            ] {
                if set {
                    flags |= bit;
                }
            }
            Ok(Decoded {
                source,
                destination,
                source_port: tcp.source_port(),
                destination_port: tcp.destination_port(),
                transport: Transport::Tcp,
                tcp: TcpSegment {
                    seq: tcp.sequence_number(),
                    ack: tcp.acknowledgment_number(),
                    flags: TcpFlags(flags),
                },
                payload: tcp.payload(),
                encap,
            })
        }
        IpNumber::UDP => {
            let udp = etherparse::UdpSlice::from_slice(payload.payload)
                .map_err(|_| DecodeError::Truncated(Layer::Udp))?;
            Ok(Decoded {
                source,
                destination,
                source_port: udp.source_port(),
                destination_port: udp.destination_port(),
                transport: Transport::Udp,
                tcp: TcpSegment::default(),
                payload: udp.payload(),
                encap,
            })
        }
        other => Err(DecodeError::NotTcpOrUdp(other.0)),
    }
}

#[cfg(test)]
mod tests;
