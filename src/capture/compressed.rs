//! Compressed captures (gzip, zstd) and other inputs libpcap cannot open by
//! name: standard input, pipes, process substitution.
//!
//! The format is told by its magic bytes, never by the file name. A plain
//! regular file goes to libpcap as it is ([`Input::Direct`]); everything else is
//! read on a thread ([`Feeder`]), decompressed when it starts with a gzip or
//! zstd magic, and written into a pipe that libpcap reads like a file. That
//! keeps the read streaming (memory does not follow the file size) and keeps
//! libpcap's own pcap/pcapng parsing and errors. Rotated captures are often
//! concatenated gzip members, so every member is read.

use std::fs::File;
use std::io::{ErrorKind, Read, Seek, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// gzip member header (RFC 1952 §2.3.1): ID1 ID2.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// zstd frame magic number 0xFD2FB528, little-endian (RFC 8878 §3.1.1).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// Bytes read ahead to tell the format; the longest magic.
const PEEK_LENGTH: usize = 4;
/// Size of the feeder's copy buffer.
const CHUNK: usize = 64 * 1024;
/// How long [`Feeder::finish`] waits for the thread to end.
const FINISH_WAIT: std::time::Duration = std::time::Duration::from_millis(200);
/// Largest zstd window accepted: 2^27 = 128 MiB, zstd's own decoding default
/// (and what `zstd -d` accepts without `--memory`). A hostile frame cannot
/// make the decoder allocate more; gzip's window is 32 KiB by design.
const MAX_ZSTD_WINDOW_LOG: u32 = 27;

/// What the first bytes of an input say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The format the leading bytes announce.
    pub fn detect(head: &[u8]) -> Self {
        if head.starts_with(&ZSTD_MAGIC) {
            Self::Zstd
        } else if head.starts_with(&GZIP_MAGIC) {
            Self::Gzip
        } else {
            Self::None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::None => "capture",
            Self::Gzip => "gzip",
            Self::Zstd => "zstd",
        }
    }
}

/// How an input reaches libpcap.
pub enum Input {
    /// An uncompressed regular file, opened and at its start: libpcap reads it.
    Direct(File),
    /// Fed through a pipe by a thread; libpcap reads `pipe`.
    Piped { pipe: OwnedFd, feeder: Feeder },
}

/// Opens `path` (`-` is standard input) far enough to tell its format.
/// Errors are plain text for [`super::CaptureError::Open`].
pub fn open(path: &Path) -> Result<Input, String> {
    let stdin = path.as_os_str() == "-";
    let mut source: Box<dyn Read + Send> = if stdin {
        Box::new(std::io::stdin())
    } else {
        let file = File::open(path).map_err(|error| error.to_string())?;
        let regular = file.metadata().map(|m| m.is_file()).unwrap_or(false);
        if regular {
            let mut head = [0; PEEK_LENGTH];
            let length = read_up_to(&mut &file, &mut head).map_err(|e| e.to_string())?;
            if Compression::detect(&head[..length]) == Compression::None {
                (&file)
                    .seek(std::io::SeekFrom::Start(0))
                    .map_err(|e| e.to_string())?;
                return Ok(Input::Direct(file));
            }
            // Reopened rather than rewound: the feeder owns its own handle.
            Box::new(File::open(path).map_err(|error| error.to_string())?)
        } else {
            // A pipe or device: what is read to peek is gone, so the feeder
            // hands it on in front of the rest.
            Box::new(file)
        }
    };
    let mut head = [0; PEEK_LENGTH];
    let length = read_up_to(&mut source, &mut head).map_err(|e| e.to_string())?;
    let compression = Compression::detect(&head[..length]);
    let consumed = Arc::new(AtomicU64::new(0));
    let counted = Counted {
        inner: std::io::Cursor::new(head[..length].to_vec()).chain(source),
        consumed: Arc::clone(&consumed),
    };
    let (read_end, write_end) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    let pipe = File::from(write_end);
    let thread = std::thread::Builder::new()
        .name("tlstap-decompress".to_string())
        .spawn(move || match compression {
            Compression::None => feed(counted, pipe),
            Compression::Gzip => feed(flate2::read::MultiGzDecoder::new(counted), pipe),
            Compression::Zstd => {
                match zstd::stream::read::Decoder::new(counted).and_then(|mut decoder| {
                    decoder.window_log_max(MAX_ZSTD_WINDOW_LOG)?;
                    Ok(decoder)
                }) {
                    Ok(decoder) => feed(decoder, pipe),
                    Err(error) => Err(format!("zstd decoder: {error}")),
                }
            }
        })
        .map_err(|e| format!("cannot start the reader thread: {e}"))?;
    Ok(Input::Piped {
        pipe: read_end,
        feeder: Feeder {
            thread: Some(thread),
            consumed,
            compression,
        },
    })
}

/// The thread that fills the pipe, and what it has read.
pub struct Feeder {
    thread: Option<JoinHandle<Result<(), String>>>,
    consumed: Arc<AtomicU64>,
    compression: Compression,
}

impl Feeder {
    /// Input bytes read so far (compressed bytes for a compressed file), for
    /// progress against the file size.
    pub fn bytes_consumed(&self) -> u64 {
        self.consumed.load(Ordering::Relaxed)
    }

    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Waits for the thread once libpcap has seen the end of the pipe (or
    /// failed), and returns why the input could not be read to its end, if
    /// it could not: a corrupt or cut compressed stream, or a read error.
    /// Later calls return `None`.
    ///
    /// The wait is bounded: when libpcap fails on a bad record with input
    /// left, nobody reads the pipe any more and the thread is stuck writing
    /// into it until the capture (and so the read end) is dropped. Joining
    /// it then would never return. A thread that has ended closed its end
    /// just before, so the bound is only ever reached in that case, and the
    /// input then has no fault of its own to report.
    pub fn finish(&mut self) -> Option<String> {
        let deadline = std::time::Instant::now() + FINISH_WAIT;
        while !self.thread.as_ref()?.is_finished() {
            if std::time::Instant::now() >= deadline {
                // Detached: it ends on its own once the read end closes.
                drop(self.thread.take());
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let thread = self.thread.take()?;
        match thread.join() {
            Ok(Ok(())) => None,
            Ok(Err(message)) => Some(message),
            Err(_) => Some(format!(
                "{} reader thread panicked",
                self.compression.name()
            )),
        }
    }
}

impl Drop for Feeder {
    /// A run that stops early (closed output, error) drops the capture and
    /// so the pipe's read end; the thread then fails its next write and ends
    /// on its own. It is not joined: it may be waiting on a slow stdin.
    fn drop(&mut self) {
        drop(self.thread.take());
    }
}

/// Copies `reader` into the pipe. A failed write means libpcap stopped
/// reading (the run ended early), which is no fault of the input.
fn feed(mut reader: impl Read, mut pipe: File) -> Result<(), String> {
    let mut buffer = vec![0; CHUNK];
    loop {
        let length = match reader.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(length) => length,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(error) if error.kind() == ErrorKind::UnexpectedEof => {
                return Err("compressed data ends early (file cut short?)".to_string())
            }
            Err(error) => return Err(format!("compressed data is corrupt: {error}")),
        };
        let Some(chunk) = buffer.get(..length) else {
            return Ok(());
        };
        if pipe.write_all(chunk).is_err() {
            return Ok(());
        }
    }
}

/// Reads until `buffer` is full or the input ends; returns the bytes read.
fn read_up_to(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while let Some(rest) = buffer.get_mut(filled..) {
        if rest.is_empty() {
            break;
        }
        match reader.read(rest) {
            Ok(0) => break,
            Ok(length) => filled += length,
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// Counts the input bytes the decompressor takes.
struct Counted<R> {
    inner: R,
    consumed: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let length = self.inner.read(buffer)?;
        self.consumed.fetch_add(length as u64, Ordering::Relaxed);
        Ok(length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_by_their_magic_bytes() {
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        // pcap (both byte orders, micro and nano), pcapng.
        for head in [
            [0xd4, 0xc3, 0xb2, 0xa1],
            [0xa1, 0xb2, 0xc3, 0xd4],
            [0x4d, 0x3c, 0xb2, 0xa1],
            [0x0a, 0x0d, 0x0d, 0x0a],
        ] {
            assert_eq!(Compression::detect(&head), Compression::None);
        }
        assert_eq!(Compression::detect(&[0x1f]), Compression::None);
        assert_eq!(Compression::detect(&[0x28, 0xb5, 0x2f]), Compression::None);
        assert_eq!(Compression::detect(&[]), Compression::None);
    }

    #[test]
    fn feed_reports_a_corrupt_stream_and_ignores_a_closed_pipe() {
        let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
        // A gzip header followed by bytes that are no deflate stream.
        let corrupt = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff];
        let error = feed(
            flate2::read::MultiGzDecoder::new(&corrupt[..]),
            File::from(write_end),
        )
        .expect_err("corrupt");
        assert!(error.contains("corrupt"), "{error}");
        drop(read_end);
        let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
        drop(read_end);
        assert_eq!(feed(&[1u8; 300_000][..], File::from(write_end)), Ok(()));
    }
}
