//! Where records go. A new destination is one file here and one arm in [`open_sink`].

mod file;
mod stdout;

pub use file::FileSink;
pub use stdout::StdoutSink;

use super::OutputError;

/// A destination for NDJSON lines; called only from the output stage.
pub trait Sink: Send {
    /// Writes one line, newline included.
    fn write_line(&mut self, line: &[u8]) -> Result<(), OutputError>;
    /// Delivers or persists everything written so far.
    fn flush(&mut self) -> Result<(), OutputError>;
}

/// Maps a destination to a sink: `-` is stdout, `file:PATH` or a bare path is
/// a file (created or truncated).
pub fn open_sink(destination: &str) -> Result<Box<dyn Sink>, OutputError> {
    if destination == "-" {
        return Ok(Box::new(StdoutSink::new()));
    }
    let path = destination.strip_prefix("file:").unwrap_or(destination);
    if path.is_empty() || path.contains("://") {
        return Err(OutputError::BadDestination(destination.to_string()));
    }
    Ok(Box::new(FileSink::create(path)?))
}
