//! Link, network and transport decoding: bytes in, typed endpoints and payload out.
//!
//! The reader thread calls [`decode`] once per packet. It walks the headers with
//! etherparse where etherparse has a type (Ethernet, 802.1Q, Linux SLL, IPv4,
//! IPv6 with extension headers, TCP, UDP) and with the small views in this folder
//! where it does not (SLL2, BSD null/loopback). It knows nothing of flows. Every
//! failure is a `Copy` [`DecodeError`] that the caller counts by variant; the
//! walk is bounded by [`DecodeConfig::max_depth`] layers.

pub mod fragment;
mod tunnels;
mod views;

use std::net::IpAddr;

use etherparse::{EtherType, IpNumber};

use crate::capture::LinkType;
pub use tunnels::{ErspanView, GeneveView, GreView, GtpView, MplsView, PppoeView, VxlanView};
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
    Gre,
    Erspan,
    Vxlan,
    Geneve,
    Gtp,
    Mpls,
    Pppoe,
    Ppp,
    Nflog,
    Teredo,
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
    #[error("{0:?} message without a user packet")]
    Unsupported(Layer),
}

/// One step of the path a packet took before its innermost IP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encap {
    Vlan(u16),
    Mpls(u32),
    Pppoe(u16),
    Gre,
    GreKey(u32),
    Erspan(u16),
    Vxlan(u32),
    Geneve(u32),
    Gtp(u32),
    IpInIp,
    Ipv6InIpv4,
    Teredo,
}

impl std::fmt::Display for Encap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Encap::Vlan(id) => write!(f, "vlan:{id}"),
            Encap::Mpls(label) => write!(f, "mpls:label={label}"),
            Encap::Pppoe(session) => write!(f, "pppoe:session={session}"),
            Encap::GreKey(key) => write!(f, "gre:key={key}"),
            Encap::Gre => write!(f, "gre"),
            Encap::Erspan(session) => write!(f, "erspan:session={session}"),
            Encap::Vxlan(vni) => write!(f, "vxlan:vni={vni}"),
            Encap::Geneve(vni) => write!(f, "geneve:vni={vni}"),
            Encap::Gtp(teid) => write!(f, "gtp:teid={teid}"),
            Encap::IpInIp => write!(f, "ipip"),
            Encap::Ipv6InIpv4 => write!(f, "ip6in4"),
            Encap::Teredo => write!(f, "teredo"),
        }
    }
}

impl Encap {
    /// The identifier that separates flows, for the layers whose identifier is
    /// the same in both directions (VLAN id, VXLAN/GENEVE VNI, PPPoE session).
    /// MPLS labels, GTP TEIDs and GRE keys are chosen per direction (trace:
    /// misc/gtp6_gtp_0x32.pcap has one TEID uplink and another downlink), so
    /// keying on them would split every connection in two.
    fn identity(self) -> Option<u64> {
        let (kind, value): (u64, u64) = match self {
            Encap::Vlan(id) => (1, u64::from(id)),
            Encap::Pppoe(session) => (3, u64::from(session)),
            Encap::Vxlan(vni) => (6, u64::from(vni)),
            Encap::Geneve(vni) => (7, u64::from(vni)),
            _ => return None,
        };
        Some(kind << 32 | value)
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
    /// No encapsulation: the plain path, shared by reference.
    pub const EMPTY: EncapPath = EncapPath {
        layers: [None; EncapPath::CAPACITY],
        len: 0,
    };

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
        self.iter().filter_map(|layer| match layer {
            Encap::Vlan(id) => Some(id),
            _ => None,
        })
    }

    /// A value that separates flows with identical endpoints on different
    /// VLANs or tunnels (Suricata's default). Fixed mixing, not a keyed hash:
    /// the flow table hashes it again with its own key.
    pub fn flow_context(&self) -> u64 {
        if self.len == 0 {
            return 0;
        }
        self.iter()
            .filter_map(Encap::identity)
            .fold(0xcbf2_9ce4_8422_2325_u64, |acc, identity| {
                (acc ^ identity).wrapping_mul(0x0000_0100_0000_01b3)
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

/// TCP facts the reassembler needs; zero for UDP except `ident`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpSegment {
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    /// IPv4 identification and transport checksum: with seq/ack/length they
    /// tell a mirrored copy (identical) from a retransmission (new IP id,
    /// new timestamp option, so a new checksum).
    pub ident: u32,
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
}

/// Settings that bound decoding and name the tunnel ports.
#[derive(Debug, Clone)]
pub struct DecodeConfig {
    /// Most link/tunnel layers walked before the packet is refused.
    pub max_depth: usize,
    pub vxlan_ports: Vec<u16>,
    pub geneve_ports: Vec<u16>,
    pub gtp_ports: Vec<u16>,
    pub teredo_ports: Vec<u16>,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        Self {
            max_depth: 8,
            vxlan_ports: vec![4789],
            geneve_ports: vec![6081],
            gtp_ports: vec![2152],
            teredo_ports: vec![3544],
        }
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
    /// Datagrams put back together from fragments and decoded.
    pub packets_reassembled: u64,
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
            Err(DecodeError::Unsupported(_)) => self.packets_not_tcp_udp += 1,
        }
    }

    /// Counts a [`decode_packet`] result; a fragment counts as fragmented.
    pub fn count_packet(&mut self, result: &Result<Packet<'_>, DecodeError>) {
        match result {
            Ok(Packet::Whole(_)) => self.packets_decoded += 1,
            Ok(Packet::Fragment(_)) => self.packets_fragmented += 1,
            Err(error) => self.count(&Err(*error)),
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
        self.packets_reassembled += other.packets_reassembled;
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
    Mpls(&'a [u8]),
}

const ETHER_TYPE_MPLS: u16 = 0x8847;
const ETHER_TYPE_MPLS_MULTICAST: u16 = 0x8848;
const ETHER_TYPE_PPPOE_SESSION: u16 = 0x8864;
const ETHER_TYPE_TRANSPARENT_BRIDGING: u16 = 0x6558;
const ETHER_TYPE_ERSPAN_2: u16 = 0x88be;
const ETHER_TYPE_ERSPAN_3: u16 = 0x22eb;
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;

/// IPv4 or IPv6 by the version nibble, for carriers that do not say which.
fn ip_by_version(bytes: &[u8]) -> Option<EtherType> {
    match bytes.first().map(|b| b >> 4) {
        Some(4) => Some(EtherType::IPV4),
        Some(6) => Some(EtherType::IPV6),
        _ => None,
    }
}

fn ppp_next(protocol: u16, payload: &[u8]) -> Result<Next<'_>, DecodeError> {
    match protocol {
        PPP_IPV4 => Ok(Next::EtherType(EtherType::IPV4, payload)),
        PPP_IPV6 => Ok(Next::EtherType(EtherType::IPV6, payload)),
        other => Err(DecodeError::UnsupportedEtherType(other)),
    }
}

/// One IP fragment, for the reader's fragment table; what follows the IP
/// header of the whole datagram is decoded by [`decode_reassembled`].
#[derive(Debug, Clone, Copy)]
pub struct IpFragment<'a> {
    pub source: IpAddr,
    pub destination: IpAddr,
    /// IPv4 identification or IPv6 Fragment header identification.
    pub id: u32,
    /// The protocol of the whole datagram's payload.
    pub protocol: u8,
    /// Byte offset of this fragment in the datagram's payload.
    pub offset: usize,
    pub more: bool,
    pub payload: &'a [u8],
}

/// A decoded frame: a whole packet, or one fragment of one.
#[derive(Debug, Clone, Copy)]
pub enum Packet<'a> {
    Whole(Decoded<'a>),
    Fragment(IpFragment<'a>),
}

/// Decodes one frame of link type `link`; a fragment is an error here and
/// the tunnel path is not kept (see [`decode_packet`]).
pub fn decode<'a>(
    link: LinkType,
    data: &'a [u8],
    config: &DecodeConfig,
) -> Result<Decoded<'a>, DecodeError> {
    let mut encap = EncapPath::EMPTY;
    match decode_packet(link, data, config, &mut encap)? {
        Packet::Whole(decoded) => Ok(decoded),
        Packet::Fragment(_) => Err(DecodeError::Fragment),
    }
}

/// Decodes the payload of a reassembled datagram (transport header onward)
/// whose fragments [`decode_packet`] returned; `encap` holds the fragments'
/// path and is extended by any tunnel inside.
pub fn decode_reassembled<'a>(
    fragment: &IpFragment<'_>,
    payload: &'a [u8],
    config: &DecodeConfig,
    encap: &mut EncapPath,
) -> Result<Packet<'a>, DecodeError> {
    let ip = IpFacts {
        source: fragment.source,
        destination: fragment.destination,
        ident: fragment.id << 16,
    };
    match decode_transport(IpNumber(fragment.protocol), ip, payload, encap, config)? {
        Step::Done(packet) => Ok(packet),
        Step::Inner(next) => walk(next, encap, config),
    }
}

/// Decodes one frame of link type `link`, fragments included. The layers it
/// went through are written to `encap` (cleared first): the caller owns the
/// path, so the plain path moves no 68-byte array through every return.
pub fn decode_packet<'a>(
    link: LinkType,
    data: &'a [u8],
    config: &DecodeConfig,
    encap: &mut EncapPath,
) -> Result<Packet<'a>, DecodeError> {
    encap.len = 0;
    let next = match link {
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
        LinkType::PPP => {
            let (protocol, payload) = tunnels::ppp(data)?;
            ppp_next(protocol, payload)?
        }
        LinkType::NFLOG => {
            let payload = tunnels::nflog_payload(data)?;
            Next::EtherType(
                ip_by_version(payload).ok_or(DecodeError::Malformed(Layer::Nflog))?,
                payload,
            )
        }
        other => return Err(DecodeError::UnsupportedLinkType(other.0)),
    };
    walk(next, encap, config)
}

/// Walks link and tunnel layers down to the innermost transport.
fn walk<'a>(
    mut next: Next<'a>,
    encap: &mut EncapPath,
    config: &DecodeConfig,
) -> Result<Packet<'a>, DecodeError> {
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
                EtherType(ETHER_TYPE_MPLS | ETHER_TYPE_MPLS_MULTICAST) => Next::Mpls(bytes),
                EtherType(ETHER_TYPE_PPPOE_SESSION) => {
                    let pppoe = PppoeView::new(bytes)?;
                    encap.push(Encap::Pppoe(pppoe.session()))?;
                    ppp_next(pppoe.ppp_protocol(), pppoe.payload())?
                }
                other => return Err(DecodeError::UnsupportedEtherType(other.0)),
            },
            Next::Mpls(bytes) => {
                let mpls = MplsView::new(bytes, config.max_depth)?;
                encap.push(Encap::Mpls(mpls.label()))?;
                let payload = mpls.payload();
                match payload.first().map(|b| b >> 4) {
                    Some(4 | 6) => Next::Ip(payload),
                    // RFC 4385 pseudowire control word (first nibble 0), then Ethernet.
                    Some(0) => Next::Ethernet(
                        payload
                            .get(4..)
                            .ok_or(DecodeError::Truncated(Layer::Mpls))?,
                    ),
                    _ => Next::Ethernet(payload),
                }
            }
            Next::Ip(bytes) => match decode_ip(bytes, encap, config)? {
                Step::Done(packet) => return Ok(packet),
                Step::Inner(inner) => inner,
            },
        };
    }
    Err(DecodeError::TooDeep)
}

/// The result of looking at one IP header: the packet (or fragment), or a
/// tunnel to enter.
enum Step<'a> {
    Done(Packet<'a>),
    Inner(Next<'a>),
}

/// What the transport layer keeps of the IP header.
#[derive(Clone, Copy)]
struct IpFacts {
    source: IpAddr,
    destination: IpAddr,
    /// IPv4 identification in the high 16 bits (0 for IPv6).
    ident: u32,
}

fn decode_ip<'a>(
    bytes: &'a [u8],
    encap: &mut EncapPath,
    config: &DecodeConfig,
) -> Result<Step<'a>, DecodeError> {
    let layer = match bytes.first().map(|b| b >> 4) {
        Some(6) => Layer::Ipv6,
        _ => Layer::Ipv4,
    };
    let ip = etherparse::IpSlice::from_slice(bytes).map_err(|error| match error {
        etherparse::err::ip::SliceError::Len(_) => DecodeError::Truncated(layer),
        etherparse::err::ip::SliceError::IpHeaders(_) => DecodeError::Malformed(layer),
    })?;
    let payload = ip.payload();
    let facts = IpFacts {
        source: ip.source_addr(),
        destination: ip.destination_addr(),
        ident: match &ip {
            etherparse::IpSlice::Ipv4(v4) => u32::from(v4.header().identification()) << 16,
            etherparse::IpSlice::Ipv6(_) => 0,
        },
    };
    if payload.fragmented {
        return fragment(&ip, payload, facts);
    }
    decode_transport(payload.ip_number, facts, payload.payload, encap, config)
}

/// The fragment facts of a fragmented IP packet (etherparse has already
/// walked IPv6 extension headers up to the Fragment header).
fn fragment<'a>(
    ip: &etherparse::IpSlice<'a>,
    payload: &etherparse::IpPayloadSlice<'a>,
    facts: IpFacts,
) -> Result<Step<'a>, DecodeError> {
    let (id, offset, more) = match ip {
        etherparse::IpSlice::Ipv4(v4) => {
            let header = v4.header();
            (
                u32::from(header.identification()),
                usize::from(header.fragments_offset().value()) * 8,
                header.more_fragments(),
            )
        }
        etherparse::IpSlice::Ipv6(v6) => {
            ipv6_fragment_header(v6).ok_or(DecodeError::Malformed(Layer::Ipv6))?
        }
    };
    Ok(Step::Done(Packet::Fragment(IpFragment {
        source: facts.source,
        destination: facts.destination,
        id,
        protocol: payload.ip_number.0,
        offset,
        more,
        payload: payload.payload,
    })))
}

fn ipv6_fragment_header(v6: &etherparse::Ipv6Slice<'_>) -> Option<(u32, usize, bool)> {
    v6.extensions()
        .clone()
        .into_iter()
        .find_map(|ext| match ext {
            etherparse::Ipv6ExtensionSlice::Fragment(fragment) => {
                let header = fragment.to_header();
                Some((
                    header.identification,
                    usize::from(header.fragment_offset.value()) * 8,
                    header.more_fragments,
                ))
            }
            _ => None,
        })
}

fn decode_transport<'a>(
    ip_number: IpNumber,
    ip: IpFacts,
    bytes: &'a [u8],
    encap: &mut EncapPath,
    config: &DecodeConfig,
) -> Result<Step<'a>, DecodeError> {
    let IpFacts {
        source,
        destination,
        ident: ip_id,
    } = ip;
    match ip_number {
        IpNumber::TCP => {
            let tcp = etherparse::TcpSlice::from_slice(bytes).map_err(|error| match error {
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
            Ok(Step::Done(Packet::Whole(Decoded {
                source,
                destination,
                source_port: tcp.source_port(),
                destination_port: tcp.destination_port(),
                transport: Transport::Tcp,
                tcp: TcpSegment {
                    seq: tcp.sequence_number(),
                    ack: tcp.acknowledgment_number(),
                    flags: TcpFlags(flags),
                    ident: ip_id | u32::from(tcp.checksum()),
                },
                payload: tcp.payload(),
            })))
        }
        IpNumber::UDP => {
            let udp = etherparse::UdpSlice::from_slice(bytes)
                .map_err(|_| DecodeError::Truncated(Layer::Udp))?;
            let ports = [udp.destination_port(), udp.source_port()];
            let on = |list: &[u16]| ports.iter().any(|port| list.contains(port));
            let inner = udp.payload();
            if on(&config.vxlan_ports) {
                if let Ok(vxlan) = VxlanView::new(inner) {
                    encap.push(Encap::Vxlan(vxlan.vni()))?;
                    return Ok(Step::Inner(Next::Ethernet(vxlan.payload())));
                }
            }
            if on(&config.geneve_ports) {
                if let Ok(geneve) = GeneveView::new(inner) {
                    encap.push(Encap::Geneve(geneve.vni()))?;
                    let next = match geneve.protocol_type() {
                        ETHER_TYPE_TRANSPARENT_BRIDGING => Next::Ethernet(geneve.payload()),
                        other => Next::EtherType(EtherType(other), geneve.payload()),
                    };
                    return Ok(Step::Inner(next));
                }
            }
            if on(&config.gtp_ports) {
                match GtpView::new(inner) {
                    Ok(gtp) => {
                        encap.push(Encap::Gtp(gtp.teid()))?;
                        return Ok(Step::Inner(Next::Ip(gtp.payload())));
                    }
                    Err(DecodeError::Unsupported(layer)) => {
                        return Err(DecodeError::Unsupported(layer))
                    }
                    Err(_) => {}
                }
            }
            if on(&config.teredo_ports) {
                // Teredo (RFC 4380): IPv6 in UDP, optionally after an 8-byte origin indication.
                let ipv6 = match inner {
                    [0x00, 0x00, ..] => inner.get(8..),
                    _ => Some(inner),
                };
                if let Some(ipv6) =
                    ipv6.filter(|b| b.first().is_some_and(|v| v >> 4 == 6) && b.len() >= 40)
                {
                    encap.push(Encap::Teredo)?;
                    return Ok(Step::Inner(Next::Ip(ipv6)));
                }
            }
            Ok(Step::Done(Packet::Whole(Decoded {
                source,
                destination,
                source_port: udp.source_port(),
                destination_port: udp.destination_port(),
                transport: Transport::Udp,
                tcp: TcpSegment {
                    ident: ip_id | u32::from(udp.checksum()),
                    ..TcpSegment::default()
                },
                payload: inner,
            })))
        }
        IpNumber::IPV4 => {
            encap.push(Encap::IpInIp)?;
            Ok(Step::Inner(Next::Ip(bytes)))
        }
        IpNumber::IPV6 => {
            encap.push(Encap::Ipv6InIpv4)?;
            Ok(Step::Inner(Next::Ip(bytes)))
        }
        IpNumber::GRE => {
            let gre = GreView::new(bytes)?;
            encap.push(gre.key().map_or(Encap::Gre, Encap::GreKey))?;
            let inner = gre.payload();
            let next = match gre.protocol() {
                ETHER_TYPE_TRANSPARENT_BRIDGING => Next::Ethernet(inner),
                // ERSPAN type I has no header (and no GRE sequence number).
                ETHER_TYPE_ERSPAN_2 if !gre.has_sequence() => Next::Ethernet(inner),
                kind @ (ETHER_TYPE_ERSPAN_2 | ETHER_TYPE_ERSPAN_3) => {
                    let erspan = ErspanView::new(inner, kind == ETHER_TYPE_ERSPAN_3)?;
                    encap.push(Encap::Erspan(erspan.session()))?;
                    Next::Ethernet(erspan.payload())
                }
                other => Next::EtherType(EtherType(other), inner),
            };
            Ok(Step::Inner(next))
        }
        other => Err(DecodeError::NotTcpOrUdp(other.0)),
    }
}

#[cfg(test)]
mod tests;
