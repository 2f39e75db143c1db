//! Live capture from an interface through libpcap.

use super::{CaptureError, KernelStats, LinkType, Next, Packet, PacketSource};
use crate::time::PacketTime;

/// How the interface is opened.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    pub interface: String,
    pub filter: Option<String>,
    pub snaplen: i32,
    pub buffer_bytes: i32,
    pub promiscuous: bool,
    /// Read timeout: how long a quiet link may hold the reader before it
    /// flushes timers anyway.
    pub timeout_ms: i32,
}

impl Default for LiveOptions {
    fn default() -> Self {
        Self {
            interface: String::new(),
            filter: None,
            snaplen: 262_144,
            buffer_bytes: 64 << 20,
            promiscuous: true,
            timeout_ms: 100,
        }
    }
}

/// An open interface.
pub struct LiveSource {
    capture: pcap::Capture<pcap::Active>,
    interface: String,
    link: LinkType,
}

impl LiveSource {
    pub fn open(options: &LiveOptions) -> Result<Self, CaptureError> {
        let error = |message: String| CaptureError::Live {
            interface: options.interface.clone(),
            message,
        };
        let capture = pcap::Capture::from_device(options.interface.as_str())
            .map_err(|e| error(e.to_string()))?
            .snaplen(options.snaplen)
            .buffer_size(options.buffer_bytes)
            .promisc(options.promiscuous)
            .timeout(options.timeout_ms)
            // Immediate mode: packets are delivered as they come instead of
            // when a kernel block fills, so a quiet link is not late.
            .immediate_mode(true)
            .precision(pcap::Precision::Nano);
        let mut capture = capture.open().map_err(|e| error(e.to_string()))?;
        if let Some(filter) = &options.filter {
            capture
                .filter(filter, true)
                .map_err(|e| error(format!("bad capture filter {filter:?}: {e}")))?;
        }
        let link = LinkType(capture.get_datalink().0);
        Ok(Self {
            capture,
            interface: options.interface.clone(),
            link,
        })
    }
}

impl PacketSource for LiveSource {
    fn next_packet(&mut self) -> Result<Next<'_>, CaptureError> {
        match self.capture.next_packet() {
            Ok(packet) => Ok(Next::Packet(Packet {
                time: PacketTime::from_secs_nanos(
                    packet.header.ts.tv_sec,
                    packet.header.ts.tv_usec,
                ),
                link: self.link,
                data: packet.data,
                wire_length: packet.header.len,
            })),
            Err(pcap::Error::TimeoutExpired) => Ok(Next::Idle),
            Err(pcap::Error::NoMorePackets) => Ok(Next::End),
            Err(e) => Err(CaptureError::Live {
                interface: self.interface.clone(),
                message: e.to_string(),
            }),
        }
    }

    fn kernel_stats(&mut self) -> Option<KernelStats> {
        self.capture.stats().ok().map(|stat| KernelStats {
            received: u64::from(stat.received),
            dropped: u64::from(stat.dropped),
            interface_dropped: u64::from(stat.if_dropped),
        })
    }

    fn is_live(&self) -> bool {
        true
    }
}
