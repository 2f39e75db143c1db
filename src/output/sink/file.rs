use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::Sink;
use crate::output::OutputError;

/// A file, created or truncated at start.
pub struct FileSink {
    path: PathBuf,
    out: BufWriter<File>,
}

impl FileSink {
    pub fn create(path: impl AsRef<Path>) -> Result<Self, OutputError> {
        let path = path.as_ref().to_path_buf();
        let file = File::create(&path).map_err(|source| OutputError::Io {
            destination: path.display().to_string(),
            source,
        })?;
        Ok(Self {
            path,
            out: BufWriter::with_capacity(64 * 1024, file),
        })
    }

    fn error(&self, source: std::io::Error) -> OutputError {
        OutputError::Io {
            destination: self.path.display().to_string(),
            source,
        }
    }
}

impl Sink for FileSink {
    fn write_line(&mut self, line: &[u8]) -> Result<(), OutputError> {
        self.out.write_all(line).map_err(|e| self.error(e))
    }

    fn flush(&mut self) -> Result<(), OutputError> {
        self.out.flush().map_err(|e| self.error(e))
    }
}
