//! Packet sources: pcap/pcapng files (plain, gzip or zstd; also stdin) and
//! live interfaces.
//!
//! A source yields borrowed packets (timestamp, link type, bytes) one at a time;
//! the pipeline's reader thread copies what it needs into batches. Nothing here
//! knows about protocols. Errors name the file or interface and keep libpcap's
//! own words, because a truncated or foreign file is something a person must fix.

mod compressed;
mod live;
mod stream;

use std::path::{Path, PathBuf};

pub use compressed::Compression;
pub use live::{LiveOptions, LiveSource};

use crate::time::PacketTime;

/// What a source yields next.
#[derive(Debug, Clone, Copy)]
pub enum Next<'a> {
    Packet(Packet<'a>),
    /// A live source had nothing within its read timeout (time to flush timers).
    Idle,
    End,
}

/// Kernel-side capture counters (libpcap `pcap_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelStats {
    pub received: u64,
    /// Dropped because the capture buffer was full (`ps_drop`).
    pub dropped: u64,
    /// Dropped by the interface or driver (`ps_ifdrop`).
    pub interface_dropped: u64,
}

/// A packet source: a file or a live interface.
pub trait PacketSource: Send {
    fn next_packet(&mut self) -> Result<Next<'_>, CaptureError>;
    /// Bytes consumed so far, for progress (files only).
    fn bytes_read(&self) -> u64 {
        0
    }
    fn kernel_stats(&mut self) -> Option<KernelStats> {
        None
    }
    /// True for live interfaces: time is the wall clock, overload may drop.
    fn is_live(&self) -> bool {
        false
    }
}

/// Link-layer header type of a capture (a `LINKTYPE_*` value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkType(pub i32);

impl LinkType {
    pub const NULL: Self = Self(0);
    pub const ETHERNET: Self = Self(1);
    pub const PPP: Self = Self(9);
    pub const RAW_OPENBSD: Self = Self(12);
    pub const RAW_BSDOS: Self = Self(14);
    pub const RAW: Self = Self(101);
    pub const LOOP: Self = Self(108);
    pub const LINUX_SLL: Self = Self(113);
    pub const NFLOG: Self = Self(239);
    pub const IPV4: Self = Self(228);
    pub const IPV6: Self = Self(229);
    pub const LINUX_SLL2: Self = Self(276);
}

/// One captured frame, borrowed from the source until the next call.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    pub time: PacketTime,
    pub link: LinkType,
    pub data: &'a [u8],
    /// Length on the wire; larger than `data.len()` when the snaplen cut it.
    pub wire_length: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{interface}: cannot capture: {message}")]
    Live { interface: String, message: String },
    #[error("{path}: cannot open: {message}")]
    Open { path: PathBuf, message: String },
    #[error("{path}: bad capture filter {filter:?}: {message}")]
    Filter {
        path: PathBuf,
        filter: String,
        message: String,
    },
    #[error("{path}: read failed after {packets} packets: {message}")]
    Read {
        path: PathBuf,
        packets: u64,
        message: String,
    },
}

/// A pcap or pcapng file read through libpcap; `-` reads standard input. A
/// gzip or zstd file (told by its first bytes) is decompressed as it is read.
pub struct FileSource {
    /// libpcap's handle and the stdio buffer it reads through.
    stream: stream::Stream,
    path: PathBuf,
    link: LinkType,
    packets: u64,
    bytes: u64,
    /// Set when the bytes come through a pipe (stdin, compressed files).
    feeder: Option<compressed::Feeder>,
}

impl FileSource {
    /// Opens `path` and applies the optional BPF `filter` (libpcap syntax).
    pub fn open(path: &Path, filter: Option<&str>) -> Result<Self, CaptureError> {
        let open_error = |message: String| CaptureError::Open {
            path: path.to_path_buf(),
            message,
        };
        if path.as_os_str() != "-" && !path.exists() {
            return Err(open_error("no such file".to_string()));
        }
        let (opened, mut feeder) = match compressed::open(path).map_err(open_error)? {
            compressed::Input::Direct(file) => (stream::open(file.into()), None),
            compressed::Input::Piped { pipe, feeder } => (stream::open(pipe), Some(feeder)),
        };
        let mut stream = match opened {
            Ok(stream) => stream,
            Err(error) => {
                // A stream that broke before the file header explains the
                // failure better than libpcap's view of the short pipe.
                let broken = feeder.as_mut().and_then(compressed::Feeder::finish);
                let compression = feeder.as_ref().map(compressed::Feeder::compression);
                return Err(open_error(
                    broken.unwrap_or_else(|| describe_open_error(path, &error, compression)),
                ));
            }
        };
        if let Some(filter) = filter {
            stream
                .capture
                .filter(filter, true)
                .map_err(|error| CaptureError::Filter {
                    path: path.to_path_buf(),
                    filter: filter.to_string(),
                    message: error.to_string(),
                })?;
        }
        let link = LinkType(stream.capture.get_datalink().0);
        Ok(Self {
            stream,
            path: path.to_path_buf(),
            link,
            packets: 0,
            bytes: 0,
            feeder,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn link_type(&self) -> LinkType {
        self.link
    }

    /// Approximate file bytes consumed so far (record headers included; for a
    /// compressed file, compressed bytes), for progress against the file size.
    pub fn bytes_read(&self) -> u64 {
        match &self.feeder {
            Some(feeder) if feeder.compression() != Compression::None => feeder.bytes_consumed(),
            _ => self.bytes,
        }
    }

    pub fn packets_read(&self) -> u64 {
        self.packets
    }

    /// The next packet, `Ok(None)` at a clean end of file.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        match self.stream.capture.next_packet() {
            Ok(packet) => {
                self.packets += 1;
                self.bytes += 16 + u64::from(packet.header.caplen);
                let time = PacketTime::from_secs_nanos(
                    packet.header.ts.tv_sec,
                    // Opened with nanosecond precision: tv_usec holds nanoseconds.
                    packet.header.ts.tv_usec,
                );
                Ok(Some(Packet {
                    time,
                    link: self.link,
                    data: packet.data,
                    wire_length: packet.header.len,
                }))
            }
            Err(pcap::Error::NoMorePackets) => {
                // The end of the pipe is also where a broken stream shows.
                let broken = self.feeder.as_mut().and_then(compressed::Feeder::finish);
                match broken {
                    Some(message) => Err(read_error(&self.path, self.packets, message)),
                    None => Ok(None),
                }
            }
            Err(error) => {
                // A cut pcap record is often the symptom of a broken stream.
                let broken = self.feeder.as_mut().and_then(compressed::Feeder::finish);
                let message = broken.unwrap_or_else(|| error.to_string());
                Err(read_error(&self.path, self.packets, message))
            }
        }
    }
}

fn read_error(path: &Path, packets: u64, message: String) -> CaptureError {
    CaptureError::Read {
        path: path.to_path_buf(),
        packets,
        message,
    }
}

fn describe_open_error(
    path: &Path,
    error: &pcap::Error,
    compression: Option<Compression>,
) -> String {
    // libpcap's "unknown file format" is accurate but unhelpful to a person who
    // passed a text file by mistake.
    let text = error.to_string();
    if path.as_os_str() != "-" && !path.exists() {
        return "no such file".to_string();
    }
    if text.contains("unknown file format") {
        return match compression {
            Some(Compression::Gzip) => format!("gzip data is not a pcap or pcapng file ({text})"),
            Some(Compression::Zstd) => format!("zstd data is not a pcap or pcapng file ({text})"),
            _ => format!("not a pcap or pcapng file ({text})"),
        };
    }
    text
}

impl PacketSource for FileSource {
    fn next_packet(&mut self) -> Result<Next<'_>, CaptureError> {
        Ok(match FileSource::next_packet(self)? {
            Some(packet) => Next::Packet(packet),
            None => Next::End,
        })
    }

    fn bytes_read(&self) -> u64 {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_named_in_the_error() {
        let error = FileSource::open(Path::new("/nonexistent/x.pcap"), None)
            .err()
            .expect("opening a missing file fails");
        let text = error.to_string();
        assert!(
            text.starts_with("/nonexistent/x.pcap: cannot open: no such file"),
            "{text}"
        );
    }

    #[test]
    fn text_file_is_reported_as_not_pcap() {
        let dir = std::env::temp_dir().join(format!("tlstap-capture-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("notes.txt");
        std::fs::write(&path, b"this is not a capture file at all\n").expect("write");
        let text = FileSource::open(&path, None)
            .err()
            .expect("fails")
            .to_string();
        assert!(text.contains("not a pcap or pcapng file"), "{text}");
    }
}
