//! The master side of replication: the replica table.
//!
//! Every replica connection has an entry keyed by the replica's node id and its link id. An
//! entry moves `handshake -> wait_bgsave -> send_bulk -> online` (or straight to `online` on
//! a partial resync) and records the last acknowledged offset and when it came. From the table
//! the master answers WAIT (how many replicas acknowledged at least an offset) and
//! min-replicas-to-write (how many replicas are online with a lag within the limit).
//!
//! An ack is the replica's word about what it *applied*; the table never invents one (FrogDB's
//! WAIT counted a replica at its resume position before any real ack, see the Redis 7.0
//! protocol notes' prior art). A fresh entry acks 0.

use super::{LinkId, NodeId};
use serde::{Deserialize, Serialize};

/// `slaveN:...,state=` in INFO, plus the handshake before PSYNC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ReplicaState {
    /// Connected, PING/AUTH/REPLCONF seen, no PSYNC yet (not listed in INFO).
    Handshake,
    /// Full resync accepted; the snapshot is being produced.
    WaitBgsave,
    /// The snapshot is being written to the replica; stream bytes queue behind it.
    SendBulk,
    /// Streaming.
    Online,
}

impl ReplicaState {
    /// The text INFO shows.
    pub fn info_name(self) -> &'static str {
        match self {
            ReplicaState::Handshake => "handshake",
            ReplicaState::WaitBgsave => "wait_bgsave",
            ReplicaState::SendBulk => "send_bulk",
            ReplicaState::Online => "online",
        }
    }

    /// True when stream bytes must be sent (or queued behind the snapshot) to this replica.
    pub fn receives_stream(self) -> bool {
        matches!(self, ReplicaState::SendBulk | ReplicaState::Online)
    }
}

/// How a replica's current sync was served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SyncKind {
    Full,
    Partial,
}

/// One replica connection as the master sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReplicaEntry {
    pub node: NodeId,
    pub link: LinkId,
    pub state: ReplicaState,
    /// The last `REPLCONF ACK` offset (0 before the first).
    pub ack_offset: u64,
    /// An ack arrived on this connection (the 0 above is not a position the replica reached).
    pub has_acked: bool,
    /// When that ack arrived (lag = now - this).
    pub last_ack_ms: u64,
    /// How the PSYNC on this link was answered.
    pub served: Option<SyncKind>,
    /// The first offset the replica asked for when it was served partially (for the checker).
    pub psync_from: Option<u64>,
}

impl ReplicaEntry {
    /// Whether `client-output-buffer-limit replica` may drop this replica: it streams and is
    /// past its initial sync. A replica served a snapshot is exempt until its first ACK, while
    /// it receives and then loads the snapshot: the stream that queues behind a long transfer
    /// or load is what sends Redis 7.0 replicas into an endless full-sync loop (dropped at the
    /// limit, they sync in full again, and the stream queues again).
    pub fn output_limit_applies(&self) -> bool {
        let initial_sync = self.served == Some(SyncKind::Full) && !self.has_acked;
        self.state == ReplicaState::Online && !initial_sync
    }
}

/// The replicas of one node, sorted by node id (deterministic iteration for the model).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReplicaTable {
    entries: Vec<ReplicaEntry>,
}

impl ReplicaTable {
    pub fn iter(&self) -> impl Iterator<Item = &ReplicaEntry> {
        self.entries.iter()
    }

    pub fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, node: NodeId) -> Option<&ReplicaEntry> {
        self.entries.iter().find(|e| e.node == node)
    }

    pub fn get_mut(&mut self, node: NodeId) -> Option<&mut ReplicaEntry> {
        self.entries.iter_mut().find(|e| e.node == node)
    }

    /// Replaces any entry of the same replica (a newer connection supersedes the old one).
    pub fn insert(&mut self, entry: ReplicaEntry) {
        self.remove(entry.node);
        let at = self.entries.partition_point(|e| e.node < entry.node);
        self.entries.insert(at, entry);
    }

    pub fn remove(&mut self, node: NodeId) -> Option<ReplicaEntry> {
        let at = self.entries.iter().position(|e| e.node == node)?;
        Some(self.entries.remove(at))
    }

    /// Drops every entry, returning them (to tell each replica its link closed).
    pub fn clear(&mut self) -> Vec<ReplicaEntry> {
        std::mem::take(&mut self.entries)
    }

    /// WAIT: online replicas whose acknowledged offset is at least `offset`.
    pub fn acked_at_least(&self, offset: u64) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.state == ReplicaState::Online && e.ack_offset >= offset)
            .count() as u64
    }

    /// INFO's `lag` of one replica, in milliseconds (`None` before its first ack).
    pub fn lag_ms(&self, node: NodeId, now_ms: u64) -> Option<u64> {
        self.get(node)
            .filter(|e| e.has_acked)
            .map(|e| now_ms.saturating_sub(e.last_ack_ms))
    }

    /// min-replicas-to-write: online replicas whose last ack is at most `max_lag_ms` old.
    pub fn good_replicas(&self, now_ms: u64, max_lag_ms: u64) -> u64 {
        self.entries
            .iter()
            .filter(|e| {
                e.state == ReplicaState::Online
                    && now_ms.saturating_sub(e.last_ack_ms) <= max_lag_ms
            })
            .count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_states_name_themselves_as_info_does_and_only_syncing_ones_get_the_stream() {
        let all = [
            (ReplicaState::Handshake, "handshake", false),
            (ReplicaState::WaitBgsave, "wait_bgsave", false),
            (ReplicaState::SendBulk, "send_bulk", true),
            (ReplicaState::Online, "online", true),
        ];
        for (state, name, stream) in all {
            assert_eq!(state.info_name(), name);
            assert_eq!(state.receives_stream(), stream, "{name}");
        }
    }

    fn entry(node: NodeId, state: ReplicaState, ack_offset: u64, last_ack_ms: u64) -> ReplicaEntry {
        ReplicaEntry {
            node,
            link: LinkId {
                replica: node,
                incarnation: 0,
                seq: 1,
            },
            state,
            ack_offset,
            has_acked: false,
            last_ack_ms,
            served: None,
            psync_from: None,
        }
    }

    #[test]
    fn wait_counts_only_online_replicas_acked_at_or_past_the_offset() {
        let mut t = ReplicaTable::default();
        t.insert(entry(2, ReplicaState::Online, 100, 0));
        t.insert(entry(1, ReplicaState::Online, 99, 0));
        t.insert(entry(3, ReplicaState::SendBulk, 500, 0));
        assert_eq!(t.acked_at_least(100), 1);
        assert_eq!(t.acked_at_least(99), 2);
        assert_eq!(t.acked_at_least(0), 2);
        assert_eq!(t.iter().map(|e| e.node).collect::<Vec<_>>(), vec![1, 2, 3]);
    }

    #[test]
    fn good_replicas_respect_max_lag() {
        let mut t = ReplicaTable::default();
        t.insert(entry(1, ReplicaState::Online, 0, 1_000));
        t.insert(entry(2, ReplicaState::Online, 0, 9_000));
        t.insert(entry(3, ReplicaState::WaitBgsave, 0, 10_000));
        assert_eq!(t.good_replicas(10_000, 10_000), 2);
        assert_eq!(t.good_replicas(12_000, 10_000), 1);
        assert_eq!(t.lag_ms(1, 12_000), None, "no ack yet: no lag to show");
        t.get_mut(1).unwrap().has_acked = true;
        assert_eq!(t.lag_ms(1, 12_000), Some(11_000));
    }

    #[test]
    fn a_newer_connection_replaces_the_entry() {
        let mut t = ReplicaTable::default();
        t.insert(entry(1, ReplicaState::Online, 50, 0));
        t.insert(entry(1, ReplicaState::Handshake, 0, 0));
        assert_eq!(t.len(), 1);
        assert_eq!(t.get(1).map(|e| e.state), Some(ReplicaState::Handshake));
    }
}
