//! # verdis: the Verdis server
//!
//! A Redis 7.0 compatible key-value server. Module map, in the order a request meets them:
//! - [`net`]: the tokio driver: listeners, one task per connection, the server cron.
//! - `verdis_core::resp` (in the core crate): request parsing and the command encoder.
//! - [`store`]: the state behind the one lock ([`store::Store`]) and the executor
//!   ([`store::Store::execute`]): lookup, arity, auth, MULTI queueing, propagation.
//! - [`cmd`]: the command table and one module per command family.
//! - [`db`]: the keyspace: databases, expiry, WATCH bookkeeping, the propagated stream.
//! - [`reply`]: RESP2/RESP3 reply encoding; [`error`]: typed errors and their Redis texts.
//! - [`client`]: per-connection state and the client registry.
//! - [`config`]: redis.conf parsing, CONFIG GET/SET/REWRITE; [`glob`]: Redis glob patterns.
//! - [`rdb`]: the RDB snapshot format (reader, writer) and persistence (SAVE, BGSAVE, load).
//! - [`info`]: INFO sections; [`alloc`]: the counting allocator behind used_memory;
//!   [`sbytes`]: the compact byte string keys and values are stored as; [`table`]: the hash
//!   table of a keyspace shard; [`sched`]: the short time slice the workers ask for.

pub mod alloc;
pub mod client;
pub mod cmd;
pub mod config;
pub mod db;
pub mod error;
pub mod glob;
pub mod info;
pub mod net;
pub mod rdb;
pub mod replication;
pub mod reply;
pub mod sbytes;
pub mod sched;
pub mod store;
pub mod table;

/// The Redis version whose behaviour Verdis implements, reported as `redis_version`.
pub const REDIS_VERSION: &str = "7.0.15";
/// Verdis's own version.
pub const VERDIS_VERSION: &str = env!("CARGO_PKG_VERSION");

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;
