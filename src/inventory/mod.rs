//! The persistent estate inventory: what the record stream showed, per
//! service, across runs. Downstream of `output`: it reads records (as the
//! SIEM would) and never reaches back into the pipeline. At start-up it hands
//! the CLI what earlier runs saw ([`KnownService`]), which the CLI gives the
//! policy, so drift is judged like any finding.
//!
//! `store` keeps it in SQLite (bounded by [`InventoryLimits`]), `sink` feeds it
//! from the output stage, `ingest` from record files and Kafka (many
//! sensors, one estate), `table` prints it for people.

pub mod ingest;
pub mod model;
pub mod record;
mod schema;
mod sink;
mod store;
mod table;

pub use model::*;
pub use schema::SCHEMA_VERSION;
pub use sink::InventorySink;
pub use store::{
    Ingested, Inventory, InventoryCounters, InventoryError, InventoryLimits, MAX_PENDING_RECORDS,
};
pub use table::print_table;
