//! # verdis-model: the stateright model of the Verdis protocol core
//!
//! (Filled by the protocol-core issue.)
//!
//! - [`replication`]: the master/replica replication model (thin actors over
//!   `verdis_core::repl::ReplNode`, fault budget, properties).
//! - [`report`]: running the replication model: checks, liveness, report and traces for the
//!   `verdis-check` CLI.

pub mod election;
pub mod liveness;
pub mod replication;
pub mod report;
