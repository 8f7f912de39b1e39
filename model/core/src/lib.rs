//! # verdis-core: the sans-IO protocol core of Verdis
//!
//! Everything here is plain data and pure functions: no tokio, no sockets, no clock, no
//! stateright. Time comes in as an argument. The stateright model (`verdis-model`) checks these
//! types and the server (`verdis`) runs them, so what is checked is what runs.
//!
//! Module map:
//! - [`resp`]: RESP request parsing, reply frames, and the command encoder that defines
//!   replication offsets.
//! - [`cluster`]: Redis Cluster hash slots, failure detection and the replica failover
//!   election (with Verdis's optional safe failover).
//! - [`repl`]: replication as sans-IO state machines: replid/offsets, the backlog, the PSYNC
//!   decision, the replica link, the master's replica table, heartbeats and the FAILOVER
//!   switchover, tied together in `repl::ReplNode`.

pub mod cluster;
pub mod repl;
pub mod resp;
