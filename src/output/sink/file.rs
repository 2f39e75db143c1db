use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::Sink;
use crate::output::OutputError;

enum Mode {
    /// `-o PATH`: created or truncated, buffered (an offline result file).
    Create(BufWriter<File>),
    /// `-o file:PATH`: appended, one `write` per whole line so a reader (or a
    /// shipper tailing the file) never sees half a record; reopened on SIGHUP.
    Append(File),
}

/// A file output.
pub struct FileSink {
    path: PathBuf,
    mode: Mode,
    fsync_every: u64,
    since_sync: u64,
}

fn io(path: &Path, source: std::io::Error) -> OutputError {
    OutputError::Io {
        destination: path.display().to_string(),
        source,
    }
}

impl FileSink {
    pub fn create(path: impl AsRef<Path>) -> Result<Self, OutputError> {
        let path = path.as_ref().to_path_buf();
        let file = File::create(&path).map_err(|e| io(&path, e))?;
        Ok(Self {
            mode: Mode::Create(BufWriter::with_capacity(64 * 1024, file)),
            path,
            fsync_every: 0,
            since_sync: 0,
        })
    }

    pub fn append(path: impl AsRef<Path>, fsync_every: u64) -> Result<Self, OutputError> {
        let path = path.as_ref().to_path_buf();
        let file = Self::open_append(&path)?;
        Ok(Self {
            mode: Mode::Append(file),
            path,
            fsync_every,
            since_sync: 0,
        })
    }

    fn open_append(path: &Path) -> Result<File, OutputError> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| io(path, e))
    }
}

impl Sink for FileSink {
    fn write_parts(&mut self, parts: &[&[u8]], scratch: &mut Vec<u8>) -> Result<(), OutputError> {
        if let Mode::Create(out) = &mut self.mode {
            for part in parts {
                out.write_all(part).map_err(|e| io(&self.path, e))?;
            }
            return Ok(());
        }
        // Append: one write of the whole line (see write_line).
        scratch.clear();
        for part in parts {
            scratch.extend_from_slice(part);
        }
        self.write_line(scratch)
    }

    fn write_line(&mut self, line: &[u8]) -> Result<(), OutputError> {
        match &mut self.mode {
            Mode::Create(out) => out.write_all(line).map_err(|e| io(&self.path, e))?,
            Mode::Append(file) => {
                // O_APPEND and one write_all of the whole line: on a local
                // file system the line lands whole or not at all.
                file.write_all(line).map_err(|e| io(&self.path, e))?;
                if self.fsync_every > 0 {
                    self.since_sync += 1;
                    if self.since_sync >= self.fsync_every {
                        self.since_sync = 0;
                        file.sync_data().map_err(|e| io(&self.path, e))?;
                    }
                }
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), OutputError> {
        match &mut self.mode {
            Mode::Create(out) => out.flush().map_err(|e| io(&self.path, e)),
            Mode::Append(file) => {
                if self.fsync_every > 0 {
                    file.sync_data().map_err(|e| io(&self.path, e))?;
                }
                Ok(())
            }
        }
    }

    fn reopen(&mut self) -> Result<(), OutputError> {
        if let Mode::Append(_) = self.mode {
            self.mode = Mode::Append(Self::open_append(&self.path)?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_mode_reopens_after_the_file_was_moved() {
        let dir = std::env::temp_dir().join(format!("tlstap-file-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("out.ndjson");
        let _ = std::fs::remove_file(&path);
        let mut sink = FileSink::append(&path, 1).expect("open");
        sink.write_line(b"{\"a\":1}\n").expect("write");
        let rotated = dir.join("out.ndjson.1");
        std::fs::rename(&path, &rotated).expect("rotate");
        sink.write_line(b"{\"a\":2}\n")
            .expect("write to the moved file");
        sink.reopen().expect("reopen");
        sink.write_line(b"{\"a\":3}\n").expect("write");
        sink.flush().expect("flush");
        assert_eq!(
            std::fs::read_to_string(&rotated).expect("read"),
            "{\"a\":1}\n{\"a\":2}\n"
        );
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "{\"a\":3}\n");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
