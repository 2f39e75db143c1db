use std::io::{ErrorKind, Write};

use super::Sink;
use crate::output::OutputError;

/// Bytes of whole lines held before they are written.
const CAPACITY: usize = 64 * 1024;

/// Buffered standard output. A broken pipe becomes [`OutputError::Closed`],
/// and the buffered lines it kept from the reader are counted
/// ([`Sink::lines_lost`]): `| head -1` must not report records as written
/// that were still in this buffer.
pub struct StdoutSink<W: Write = std::io::Stdout> {
    out: W,
    buffer: Vec<u8>,
    /// Where each buffered line ends in `buffer`.
    line_ends: Vec<usize>,
    lost: u64,
}

impl StdoutSink {
    pub fn new() -> Self {
        Self::with_writer(std::io::stdout())
    }
}

impl Default for StdoutSink {
    fn default() -> Self {
        Self::new()
    }
}

impl<W: Write> StdoutSink<W> {
    /// A sink on any writer (tests use one that closes).
    pub fn with_writer(out: W) -> Self {
        Self {
            out,
            buffer: Vec::with_capacity(CAPACITY),
            line_ends: Vec::new(),
            lost: 0,
        }
    }

    /// Writes the buffer out. On an error, the lines not written whole are lost.
    fn drain(&mut self) -> Result<(), OutputError> {
        let mut written = 0;
        let mut failure = None;
        while let Some(rest) = self.buffer.get(written..).filter(|rest| !rest.is_empty()) {
            match self.out.write(rest) {
                Ok(0) => {
                    failure = Some(std::io::Error::from(ErrorKind::WriteZero));
                    break;
                }
                Ok(length) => written += length,
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        if failure.is_some() {
            let delivered = self.line_ends.partition_point(|&end| end <= written);
            self.lost += (self.line_ends.len() - delivered) as u64;
        }
        self.buffer.clear();
        self.line_ends.clear();
        failure.map_or(Ok(()), |error| Err(map(error)))
    }
}

fn map(error: std::io::Error) -> OutputError {
    if error.kind() == ErrorKind::BrokenPipe {
        OutputError::Closed
    } else {
        OutputError::Io {
            destination: "stdout".to_string(),
            source: error,
        }
    }
}

impl<W: Write + Send> Sink for StdoutSink<W> {
    /// Accepts the line into the buffer; an error means it was not accepted.
    fn write_line(&mut self, line: &[u8]) -> Result<(), OutputError> {
        if !self.buffer.is_empty() && self.buffer.len() + line.len() > CAPACITY {
            self.drain()?;
        }
        self.buffer.extend_from_slice(line);
        self.line_ends.push(self.buffer.len());
        Ok(())
    }

    /// The parts go straight into the buffer, as one line: written through
    /// `Stdout` (a `LineWriter`) they would cost a `write(2)` per record and
    /// escape the lost-line count.
    fn write_parts(&mut self, parts: &[&[u8]], _: &mut Vec<u8>) -> Result<(), OutputError> {
        let length: usize = parts.iter().map(|part| part.len()).sum();
        if !self.buffer.is_empty() && self.buffer.len() + length > CAPACITY {
            self.drain()?;
        }
        for part in parts {
            self.buffer.extend_from_slice(part);
        }
        self.line_ends.push(self.buffer.len());
        Ok(())
    }

    fn flush(&mut self) -> Result<(), OutputError> {
        self.drain()?;
        self.out.flush().map_err(map)
    }

    fn lines_lost(&self) -> u64 {
        self.lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes `room` bytes, then fails like a pipe whose reader exited.
    struct ClosingPipe {
        taken: Vec<u8>,
        room: usize,
    }

    impl Write for ClosingPipe {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let free = self.room - self.taken.len();
            if free == 0 {
                return Err(ErrorKind::BrokenPipe.into());
            }
            let length = bytes.len().min(free).min(7);
            self.taken.extend_from_slice(&bytes[..length]);
            Ok(length)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_buffered_when_the_reader_leaves_are_lost_not_written() {
        // Room for two 10-byte lines and half of the third.
        let mut sink = StdoutSink::with_writer(ClosingPipe {
            taken: Vec::new(),
            room: 25,
        });
        for n in 0..5u8 {
            sink.write_line(
                &[b'0' + n; 9]
                    .iter()
                    .chain(b"\n")
                    .copied()
                    .collect::<Vec<_>>(),
            )
            .expect("buffered");
        }
        assert_eq!(sink.lines_lost(), 0);
        assert!(matches!(sink.flush(), Err(OutputError::Closed)));
        assert_eq!(
            sink.lines_lost(),
            3,
            "the cut third line and the two after it"
        );
        assert_eq!(sink.out.taken.len(), 25);
        // Nothing is left to lose once the buffer is gone.
        assert!(sink.flush().is_ok());
        assert_eq!(sink.lines_lost(), 3);
    }

    #[test]
    fn lines_in_parts_are_buffered_and_counted_like_whole_lines() {
        let mut sink = StdoutSink::with_writer(ClosingPipe {
            taken: Vec::new(),
            room: 25,
        });
        let mut scratch = Vec::new();
        for n in 0..5u8 {
            sink.write_parts(&[&[b'0' + n; 4], &[b'0' + n; 5], b"\n"], &mut scratch)
                .expect("buffered");
        }
        assert!(sink.out.taken.is_empty(), "nothing written before a flush");
        assert!(matches!(sink.flush(), Err(OutputError::Closed)));
        assert_eq!(sink.lines_lost(), 3);
        assert_eq!(&sink.out.taken[..10], b"000000000\n");
    }

    #[test]
    fn a_full_buffer_is_written_before_the_next_line() {
        let mut sink = StdoutSink::with_writer(Vec::new());
        let line = vec![b'x'; 1000];
        for _ in 0..70 {
            sink.write_line(&line).expect("write");
        }
        assert_eq!(sink.out.len(), 65_000, "65 lines fit the 64 KiB buffer");
        sink.flush().expect("flush");
        assert_eq!(sink.out.len(), 70_000);
        assert_eq!(sink.lines_lost(), 0);
    }
}
