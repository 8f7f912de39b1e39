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

pub mod cluster;
pub mod resp;
