//! # verdis-model: the stateright model of the Verdis protocol core
//!
//! (Filled by the protocol-core issue.)
//!
//! - [`replication`]: the master/replica replication model (thin actors over
//!   `verdis_core::repl::ReplNode`, fault budget, properties).
//! - [`election`]: the cluster failover election model (a plain `Model` over
//!   `verdis_core::cluster::ClusterNode`, delay-bounded network, fault budget, properties).
//! - [`liveness`]: exact liveness under weak fairness for any `Model` (SCCs of the explored graph).
//! - [`report`]: running the models for the `verdis-check` CLI: checks, liveness, the generated
//!   report (docs/model/) and traces, generic over [`report::Reported`];
//!   [`report::election`] is the election model's half.
//! - [`settled`]: settled traces for the conformance replay (environment steps, each followed
//!   by every quiescent state the model can reach).

pub mod cached;
pub mod election;
pub mod liveness;
pub mod replication;
pub mod report;
pub mod settled;
