//! # Replication: the master/replica protocol as sans-IO state machines
//!
//! One [`ReplNode`] is the whole replication state of one server: its identity (replid,
//! replid2, offsets), its backlog, its replica table when others replicate from it, its link
//! to its own master when it is a replica, and a coordinated switchover in flight. A node can
//! be master and upstream at once (a replica with sub-replicas forwards its master's stream
//! byte for byte), as in Redis.
//!
//! ## Driver contract
//! The core never does I/O and never reads a clock. A driver (the tokio server, or the
//! stateright model) owns a `ReplNode` and:
//! 1. feeds inputs through `handle_*` methods, passing `now_ms` (milliseconds, any monotonic
//!    origin) and, where a fresh replid may be minted, caller-supplied randomness
//!    ([`IdSource`]);
//! 2. executes the returned [`Effect`]s **in order**: sends on the named link, starts a snapshot,
//!    loads a received snapshot, applies a command to the data set, sets or cancels a named
//!    [`ReplTimer`] (a set replaces the previous deadline of the same timer);
//! 3. calls [`ReplNode::handle_timer`] when a timer's deadline passes;
//! 4. reports transport facts: a link closed (`handle_link_closed`), a snapshot fully written
//!    (`handle_rdb_sent`), a received snapshot fully loaded (`handle_rdb_loaded`).
//!
//! Ordering and durability: stream bytes returned for a write must be appended to the
//! connection buffers in the order returned, and the client may be answered only after the
//! write was applied locally (Redis semantics: replication is asynchronous; WAIT is the only
//! durability signal). A snapshot sent for a full resync must reflect exactly the writes up to
//! the offset given in `SendRdb` (take it before executing any later write). The replid and
//! offset are persisted with every snapshot the node writes (RDB aux `repl-id` / `repl-offset`)
//! so a restarted node can resume with PSYNC ([`ReplNode::restore`]).
//!
//! Errors: a message that does not fit the link's phase is a [`LinkError`] (the peer's fault):
//! the driver then closes the link with [`ReplNode::handle_link_closed`]. Assertions mark our
//! own bugs.
//!
//! Module map:
//! - [`ids`]: replid, replid2, offsets; promotion and demotion.
//! - [`backlog`]: the byte-bounded backlog.
//! - [`psync`]: the PSYNC decision.
//! - [`replica`]: link phases and the stream splitter.
//! - [`master`]: the replica table, WAIT and min-replicas accounting.
//! - [`switchover`]: FAILOVER states and validation.
//! - [`node`]: [`ReplNode`], the handlers that tie the pieces together.

pub mod backlog;
pub mod ids;
pub mod master;
pub mod node;
pub mod psync;
pub mod replica;
pub mod switchover;

pub use backlog::Backlog;
pub use ids::{CachedMaster, ReplId, ReplIdentity};
pub use master::{ReplicaEntry, ReplicaState, ReplicaTable, SyncKind};
pub use node::{IdSource, LinkError, ReplNode, Role, SyncStats, WriteError};
pub use psync::{FullReason, PsyncDecision, PsyncRequest};
pub use replica::{LinkPhase, ReplicaLink};
pub use switchover::{FailoverError, FailoverRequest, FailoverState};

use serde::{Deserialize, Serialize};

/// The driver's name for a server (an index in the model, a `host:port` slot in the server).
pub type NodeId = u32;

/// One replication connection. `incarnation` is the replica's restart count (connections never
/// survive a restart) and `seq` counts its connection attempts; a message is stale when its
/// link is not the current one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LinkId {
    pub replica: NodeId,
    pub incarnation: u32,
    pub seq: u32,
}

impl LinkId {
    /// True when `self` is an older connection of the same replica than `other`.
    pub fn is_older_than(&self, other: &LinkId) -> bool {
        debug_assert_eq!(self.replica, other.replica);
        (self.incarnation, self.seq) < (other.incarnation, other.seq)
    }
}

/// Replica -> master on a replication link (each is one RESP command on the wire).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ToMaster {
    /// `PING`, the first command of a link.
    Ping,
    /// `AUTH [user] password` (only with masterauth).
    Auth,
    /// `REPLCONF listening-port <port>`.
    ListeningPort(u16),
    /// `REPLCONF capa eof capa psync2`.
    Capa,
    /// `PSYNC <replid|?> <offset|-1> [FAILOVER]`.
    Psync { req: PsyncRequest, failover: bool },
    /// `REPLCONF ACK <offset>`.
    Ack { offset: u64 },
    /// The replica closed the connection (TCP FIN/RST as the master sees it).
    Closed,
}

/// Master -> replica on a replication link.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ToReplica {
    /// `+PONG`.
    Pong,
    /// `+OK` to AUTH.
    AuthOk,
    /// `-ERR ...` to AUTH: the handshake aborts.
    AuthErr,
    /// `+OK` to a REPLCONF.
    ReplconfOk,
    /// `+FULLRESYNC <replid> <offset>`; the snapshot follows (sent by the driver).
    FullResync { replid: ReplId, offset: u64 },
    /// `+CONTINUE <replid>`; backlog bytes follow as `Stream`.
    Continue { replid: ReplId },
    /// Stream bytes (RESP commands), shared by every replica they go to.
    Stream(bytes::Bytes),
    /// `-NOMASTERLINK` / `-LOADING`: try again later.
    TryLater,
    /// The master closed the connection.
    Closed,
}

/// What the driver must do, in order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Effect {
    /// Open a connection to `master` for `link` (then send the `ToMaster`s that follow on it).
    Connect {
        master: NodeId,
        link: LinkId,
    },
    /// Send to our master.
    ToMaster {
        master: NodeId,
        link: LinkId,
        msg: ToMaster,
    },
    /// Send to a replica.
    ToReplica {
        replica: NodeId,
        link: LinkId,
        msg: ToReplica,
    },
    /// Write a snapshot of the data set as of `offset` (under `replid`) to the replica, after
    /// the `+FULLRESYNC` and before any later stream bytes; then call `handle_rdb_sent`.
    SendRdb {
        replica: NodeId,
        link: LinkId,
        replid: ReplId,
        offset: u64,
    },
    /// Replace the data set with the snapshot received on `link`.
    LoadRdb {
        link: LinkId,
    },
    /// Apply one write received from the master.
    Apply {
        args: Vec<bytes::Bytes>,
    },
    /// Arm (or re-arm) a named timer for the absolute time `at_ms`.
    SetTimer {
        timer: ReplTimer,
        at_ms: u64,
    },
    CancelTimer(ReplTimer),
}

/// The named timers of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ReplTimer {
    /// Replica: retry connecting to the master.
    ConnectRetry,
    /// Replica: send `REPLCONF ACK` (every second).
    ReplicaAck,
    /// Replica: nothing heard from the master for repl-timeout.
    ReplicaTimeout,
    /// Master: `PING` into the stream every repl-ping-replica-period.
    MasterPing,
    /// Master: nothing heard from this replica for repl-timeout.
    MasterTimeout(NodeId),
    /// Master: no replica for repl-backlog-ttl; free the backlog.
    BacklogTtl,
    /// Master: the FAILOVER TIMEOUT.
    FailoverTimeout,
}

/// Replication settings, validated once at start ([`ReplConfig::validate`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReplConfig {
    pub backlog_size_bytes: u64,
    pub backlog_ttl_ms: u64,
    pub repl_timeout_ms: u64,
    pub ping_period_ms: u64,
    pub ack_period_ms: u64,
    pub connect_retry_ms: u64,
    /// Send AUTH in the handshake.
    pub masterauth: bool,
    pub listening_port: u16,
    pub min_replicas_to_write: u64,
    pub min_replicas_max_lag_ms: u64,
    /// Upper bound on the replica table.
    pub max_replicas: u64,
    /// Upper bound on commands split from one stream read.
    pub max_commands_per_read: u64,
    /// A deliberate protocol bug, for the model checker's self-test only (it proves each
    /// property can fail). The server's configuration never sets it.
    pub planted_bug: Option<PlantedBug>,
}

/// Deliberately broken variants the checker must catch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PlantedBug {
    /// A replica whose link failed never arms its retry timer.
    ReplicaNeverRetries,
    /// A master answers `+CONTINUE` (from its first backlog byte) when the requested offset is
    /// outside its backlog.
    ContinueOutsideBacklog,
    /// A replica acknowledges one byte more than it applied.
    AckBeyondApplied,
    /// A master answers every PSYNC with a full resync, even inside its backlog.
    FullSyncInsideBacklog,
}

impl Default for ReplConfig {
    fn default() -> Self {
        ReplConfig {
            backlog_size_bytes: 1024 * 1024,
            backlog_ttl_ms: 3_600_000,
            repl_timeout_ms: 60_000,
            ping_period_ms: 10_000,
            ack_period_ms: 1_000,
            connect_retry_ms: 1_000,
            masterauth: false,
            listening_port: 6379,
            min_replicas_to_write: 0,
            min_replicas_max_lag_ms: 10_000,
            max_replicas: 10_000,
            max_commands_per_read: 1_024,
            planted_bug: None,
        }
    }
}

impl ReplConfig {
    /// Rejects limits that would make the protocol misbehave (the operator's error).
    pub fn validate(&self) -> Result<(), String> {
        if self.backlog_size_bytes == 0 {
            return Err("repl-backlog-size must be positive".into());
        }
        if self.repl_timeout_ms == 0 || self.ping_period_ms == 0 || self.ack_period_ms == 0 {
            return Err(
                "repl-timeout, repl-ping-replica-period and the ack period must be positive".into(),
            );
        }
        if self.repl_timeout_ms <= self.ping_period_ms {
            return Err("repl-timeout must exceed repl-ping-replica-period".into());
        }
        if self.max_replicas == 0 || self.max_commands_per_read == 0 {
            return Err("replica and command limits must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::ReplConfig;

    #[test]
    fn validate_accepts_the_defaults_and_rejects_each_bad_limit() {
        assert_eq!(ReplConfig::default().validate(), Ok(()));
        let bad: [fn(&mut ReplConfig); 7] = [
            |c| c.backlog_size_bytes = 0,
            |c| c.repl_timeout_ms = 0,
            |c| c.ping_period_ms = 0,
            |c| c.ack_period_ms = 0,
            |c| c.repl_timeout_ms = c.ping_period_ms,
            |c| c.max_replicas = 0,
            |c| c.max_commands_per_read = 0,
        ];
        for (i, make_bad) in bad.iter().enumerate() {
            let mut c = ReplConfig::default();
            make_bad(&mut c);
            assert!(c.validate().is_err(), "bad limit {i} accepted");
        }
        // Just above the ping period is fine.
        let c = ReplConfig {
            repl_timeout_ms: 10_001,
            ..ReplConfig::default()
        };
        assert_eq!(c.validate(), Ok(()));
    }
}
