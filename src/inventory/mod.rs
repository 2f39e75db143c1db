//! The persistent estate inventory: what the record stream showed, per
//! service, across runs. Downstream of `output`: it reads records (as the
//! SIEM would) and never reaches back into the pipeline. At start-up it hands
//! the policy what earlier runs saw ([`crate::policy::drift::KnownService`]),
//! so drift is judged like any finding.

pub mod model;

pub use model::*;
