//! # Redis Cluster failure detection and failover election, sans-IO
//!
//! A Redis Cluster splits the keyspace into 16384 hash slots ([`slots`]). Each slot is served by
//! one master; a master may have replicas. When a master dies, its replicas notice, and one of
//! them is elected by a majority of the slot-serving masters to take over the dead master's
//! slots. This module is that protocol, written once as a pure state machine
//! ([`node::ClusterNode`]) that the server drives and the stateright model checks.
//!
//! ## The protocol in one page
//! - **Failure detection** ([`failure`]): a PING unanswered for `node_timeout` makes the peer
//!   PFAIL in this node's eyes; masters gossip their PFAIL opinions; a node that itself holds
//!   PFAIL and has reports from a majority of masters (counting itself if it is a master) marks
//!   the peer FAIL and broadcasts FAIL.
//! - **Election** ([`election`]): a replica whose master is FAIL waits
//!   `500 + random(0..500) + rank * 1000` ms, where rank is the number of siblings it knows to
//!   have a higher replication offset (so the most up-to-date replica usually goes first). It
//!   then bumps `currentEpoch`, and asks every master for a vote (AUTH_REQUEST) in that epoch.
//!   A master grants at most one vote per epoch and only under Redis's rules. A replica with
//!   votes from a majority of the masters that serve slots wins: it becomes a master, sets its
//!   `configEpoch` to the election epoch, claims its old master's slots and broadcasts that.
//!   Without a majority within the auth timeout it retries later, at a new epoch.
//! - **Epochs**: `currentEpoch` is the highest epoch seen anywhere (every header carries it).
//!   A slot belongs to whoever claimed it with the highest `configEpoch`; a node that claims
//!   a slot with a stale epoch is sent an UPDATE. Two masters with the same `configEpoch`
//!   resolve the collision by the one with the smaller node id bumping to a new epoch.
//! - **Safe failover** (a Verdis option, off by default): votes only go to a replica that
//!   provably holds every write acknowledged to a WAIT; see [`election`] for the design.
//!
//! ## Driver contract
//! The driver owns sockets, the clock, durable storage and the random source. It feeds
//! [`node::Input`]s to [`node::ClusterNode::handle`] together with `now_ms` (a monotonic
//! millisecond clock) and a random number, and carries out the returned [`node::Effect`]s
//! **in order**:
//! - `Persist` must be durable (written and fsynced) before any later `Send`/`Broadcast` of the
//!   same batch leaves the node: a vote (AUTH_ACK) must never be sent before `lastVoteEpoch`
//!   is on disk, or a restarted master could vote twice in one epoch.
//! - `Send`/`Broadcast` go on the cluster bus (ordered per peer, as TCP is). A message may be
//!   lost when a link breaks; the protocol recovers through periodic gossip (`Input::GossipTo`).
//! - `BecameMaster` / `FollowMaster` / `FenceReplication` are instructions to the replication
//!   layer (promote, re-point the replica link, stop applying the old master's stream).
//!
//! After every call the driver asks [`node::ClusterNode::poll_timeout`] for the next deadline
//! and feeds `Input::Timeout` once `now_ms` reaches it (earlier calls are harmless). It reports
//! each PING it sends and each PONG it receives (`Input::PingSent` / `Input::Pong`), sends
//! periodic gossip (`Input::GossipTo`), and tells the core the replication offset whenever it
//! changes (`Input::ReplOffset`).
//!
//! Module map:
//! - [`slots`]: CRC16 key hashing, hash tags, and the slot table (owner + configEpoch per slot).
//! - [`failure`]: per-peer PFAIL / FAIL state and failure reports.
//! - [`node`]: the cluster node state machine: messages, inputs, effects, handlers.
//! - [`election`]: the replica side of the election (rank, delay) and the vote rules.

pub mod election;
pub mod failure;
pub mod node;
pub mod slots;

use serde::{Deserialize, Serialize};
use std::fmt;

pub use election::VoteRefusal;
pub use node::{
    ClusterConfig, ClusterMsg, ClusterNode, Effect, Election, Header, Input, Persistent,
    PlantedBug, Role, VoteRequest,
};
pub use slots::{key_hash_slot, SlotRange, SlotTable};

/// A cluster node's name: 160 random bits, shown as 40 hex characters. Ordered by bytes, which
/// is the lexicographic order of the hex names that Redis compares on a configEpoch collision.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(pub [u8; 20]);

/// A node name that is not 40 hex characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeIdError;

impl fmt::Display for NodeIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a node name is 40 hexadecimal characters")
    }
}

impl std::error::Error for NodeIdError {}

impl NodeId {
    /// A readable name for tests and the model: zeros followed by `index` in big-endian.
    pub fn from_index(index: u16) -> NodeId {
        let mut bytes = [0u8; 20];
        bytes[18..].copy_from_slice(&index.to_be_bytes());
        NodeId(bytes)
    }

    /// Parses a 40-hex-character name (as in CLUSTER NODES and nodes.conf).
    pub fn parse_hex(text: &[u8]) -> Result<NodeId, NodeIdError> {
        if text.len() != 40 {
            return Err(NodeIdError);
        }
        let mut bytes = [0u8; 20];
        for (i, pair) in text.chunks_exact(2).enumerate() {
            let hi = hex_digit(pair[0]).ok_or(NodeIdError)?;
            let lo = hex_digit(pair[1]).ok_or(NodeIdError)?;
            bytes[i] = hi << 4 | lo;
        }
        Ok(NodeId(bytes))
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for NodeId {
    /// Short form for traces: model names like `n3`, else the first 8 hex characters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0[..18].iter().all(|&b| b == 0) {
            write!(f, "n{}", u16::from_be_bytes([self.0[18], self.0[19]]))
        } else {
            write!(f, "{}", &self.to_string()[..8])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_round_trip_through_hex_and_reject_bad_input() {
        let name = b"32c51f1449e509f9216cca80b6d58e34e59a3af6";
        let id = NodeId::parse_hex(name).unwrap();
        assert_eq!(id.to_string().as_bytes(), name);
        assert_eq!(NodeId::parse_hex(b"32c5"), Err(NodeIdError));
        assert_eq!(
            NodeId::parse_hex(b"z2c51f1449e509f9216cca80b6d58e34e59a3af6"),
            Err(NodeIdError)
        );
        assert!(NodeId::from_index(1) < NodeId::from_index(2));
        assert_eq!(format!("{:?}", NodeId::from_index(7)), "n7");
    }

    #[test]
    fn upper_case_names_parse_like_lower_case_ones_and_the_error_says_what_a_name_is() {
        let lower = NodeId::parse_hex(b"32c51f1449e509f9216cca80b6d58e34e59a3af6").unwrap();
        let upper = NodeId::parse_hex(b"32C51F1449E509F9216CCA80B6D58E34E59A3AF6").unwrap();
        assert_eq!(lower, upper);
        assert_eq!(
            NodeIdError.to_string(),
            "a node name is 40 hexadecimal characters"
        );
    }
}
