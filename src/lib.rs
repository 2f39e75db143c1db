//! tlstap: a passive TLS handshake analyzer.
//!
//! The modules follow the data's path: `capture` (sources) → `decode` (link, IP,
//! TCP/UDP) → `flow` (table, reassembly) → `tls` (records, handshake) → `x509`
//! (certificate summaries) → `policy` (direction, findings) → `output` (ECS
//! records, sinks). `addr` and `time` are the text of addresses and times all
//! stages share. `pipeline` wires them onto threads and `stats` merges counters.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![deny(unsafe_code)]

pub mod addr;
pub mod capture;
pub mod decode;
pub mod estate;
pub mod flow;
pub mod inventory;
pub mod memory;
pub mod output;
pub mod pipeline;
pub mod policy;
pub mod prehashed;
pub mod report;
pub mod stats;
pub mod time;
pub mod tls;
pub mod x509;
