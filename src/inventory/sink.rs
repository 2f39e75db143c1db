//! The inventory as an output destination: the output stage writes each
//! finished record to it like to any sink, so the inventory sees exactly what
//! the SIEM sees. Commits every [`COMMIT_EVERY_RECORDS`] lines or
//! [`COMMIT_INTERVAL`], whichever comes first, and on `flush`.

use std::time::{Duration, Instant};

use super::store::{Inventory, InventoryCounters, InventoryError};
use crate::output::sink::Sink;
use crate::output::OutputError;

/// Lines per transaction: large enough that SQLite's per-commit fsync is
/// rare, small enough that a kill loses little.
pub const COMMIT_EVERY_RECORDS: u64 = 256;
/// Longest a line waits uncommitted while lines keep coming (wall clock).
pub const COMMIT_INTERVAL: Duration = Duration::from_secs(1);

/// A [`Sink`] that ingests every line into an [`Inventory`]. A line that is
/// not a session record (stats, broken JSON) is counted, not an error.
#[derive(Debug)]
pub struct InventorySink {
    inventory: Inventory,
    uncommitted: u64,
    last_commit: Instant,
}

impl InventorySink {
    pub fn new(inventory: Inventory) -> Self {
        Self {
            inventory,
            uncommitted: 0,
            last_commit: Instant::now(),
        }
    }

    pub fn counters(&self) -> InventoryCounters {
        self.inventory.counters()
    }

    /// Commits and hands the inventory back (to `close` it, or read it).
    pub fn into_inventory(mut self) -> Result<Inventory, InventoryError> {
        self.inventory.commit()?;
        Ok(self.inventory)
    }

    fn commit(&mut self) -> Result<(), OutputError> {
        self.inventory.commit().map_err(to_output_error)?;
        self.uncommitted = 0;
        self.last_commit = Instant::now();
        Ok(())
    }
}

fn to_output_error(error: InventoryError) -> OutputError {
    let destination = match &error {
        InventoryError::Sqlite { path, .. }
        | InventoryError::Open { path, .. }
        | InventoryError::ReadOnly { path } => format!("inventory {}", path.display()),
        _ => "inventory".to_string(),
    };
    OutputError::Io {
        destination,
        source: std::io::Error::other(error),
    }
}

impl Sink for InventorySink {
    fn write_line(&mut self, line: &[u8]) -> Result<(), OutputError> {
        self.inventory.ingest_line(line).map_err(to_output_error)?;
        self.uncommitted += 1;
        if self.uncommitted >= COMMIT_EVERY_RECORDS || self.last_commit.elapsed() >= COMMIT_INTERVAL
        {
            self.commit()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), OutputError> {
        self.commit()
    }

    /// Commits, applies retention (the run's own records count as the
    /// newest) and checkpoints the log into the database file.
    fn close(&mut self) -> Result<(), OutputError> {
        self.commit()?;
        self.inventory.finish().map_err(to_output_error)
    }

    /// Records added, and records refused (malformed, or a new service past the cap).
    fn counters(&self) -> crate::output::sink::SinkCounters {
        let counters = self.inventory.counters();
        crate::output::sink::SinkCounters {
            lines_queued: counters.records_ingested,
            lines_dropped: counters.records_ignored + counters.services_dropped,
            ..Default::default()
        }
    }
}
