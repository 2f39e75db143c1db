use std::io::{BufWriter, ErrorKind, Write};

use super::Sink;
use crate::output::OutputError;

/// Buffered standard output. A broken pipe becomes [`OutputError::Closed`].
pub struct StdoutSink {
    out: BufWriter<std::io::Stdout>,
}

impl StdoutSink {
    pub fn new() -> Self {
        Self {
            out: BufWriter::with_capacity(64 * 1024, std::io::stdout()),
        }
    }
}

impl Default for StdoutSink {
    fn default() -> Self {
        Self::new()
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

impl Sink for StdoutSink {
    fn write_line(&mut self, line: &[u8]) -> Result<(), OutputError> {
        self.out.write_all(line).map_err(map)
    }

    fn write_parts(&mut self, parts: &[&[u8]], _: &mut Vec<u8>) -> Result<(), OutputError> {
        for part in parts {
            self.out.write_all(part).map_err(map)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), OutputError> {
        self.out.flush().map_err(map)
    }
}
