//! Replication identity: who a history belongs to and how far it goes.
//!
//! A node's data set is named by a replication id (`replid`, 40 hex characters on the wire) and
//! measured by `master_repl_offset`, the number of stream bytes produced (on a master) or applied
//! (on a replica) under that id. Two nodes that report the same `(replid, offset)` must hold the
//! same data: that is the promise PSYNC relies on.
//!
//! PSYNC2 adds a second name. When a replica is promoted it keeps its old history reachable:
//! `replid2` is the id it followed until now and `second_repl_offset` is the first offset that
//! is *not* shared with that old history (the promotion offset + 1). A former sibling asking
//! `PSYNC <old replid> <off>` with `off <= second_repl_offset` is still on the shared history.
//!
//! Nothing here generates randomness: a fresh id is an argument ([`ReplId::from_random`]), so
//! the server passes OS randomness and the model passes deterministic bytes.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Bytes of a replication id before hex encoding (40 hex characters on the wire).
pub const REPLID_RAW_BYTES: usize = 20;

/// A replication id. Stored raw; rendered as 40 lowercase hex characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ReplId(pub [u8; REPLID_RAW_BYTES]);

impl ReplId {
    /// The all-zero id Redis shows as `master_replid2` when there is no second id.
    pub const ZERO: ReplId = ReplId([0; REPLID_RAW_BYTES]);

    /// A fresh id from caller-supplied randomness (OS RNG in the server, a counter in the model).
    pub fn from_random(bytes: [u8; REPLID_RAW_BYTES]) -> ReplId {
        ReplId(bytes)
    }

    /// The 40 hex characters sent in `+FULLRESYNC`, `+CONTINUE` and `PSYNC`.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(2 * REPLID_RAW_BYTES);
        for b in self.0 {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        s
    }

    /// Parses 40 hex characters from a peer. `None` for anything else (the peer's error).
    pub fn parse_hex(text: &[u8]) -> Option<ReplId> {
        if text.len() != 2 * REPLID_RAW_BYTES {
            return None;
        }
        let mut raw = [0u8; REPLID_RAW_BYTES];
        for (i, pair) in text.chunks(2).enumerate() {
            raw[i] = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
        }
        Some(ReplId(raw))
    }
}

impl fmt::Display for ReplId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The four INFO fields that name and measure a node's history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReplIdentity {
    /// `master_replid`: the history this node is on.
    pub replid: ReplId,
    /// `master_replid2`: the history it was on before its last promotion or id switch.
    pub replid2: ReplId,
    /// `second_repl_offset`: first offset not shared with `replid2`; -1 when there is none.
    pub second_repl_offset: i64,
    /// `master_repl_offset`: stream bytes produced (master) or applied (replica).
    pub master_repl_offset: u64,
}

impl ReplIdentity {
    /// A node that has never replicated: fresh id, offset 0, no second id.
    pub fn new(replid: ReplId) -> ReplIdentity {
        ReplIdentity {
            replid,
            replid2: ReplId::ZERO,
            second_repl_offset: -1,
            master_repl_offset: 0,
        }
    }

    /// Promotion (REPLICAOF NO ONE, FAILOVER, election) and `+CONTINUE <newid>`: the current id
    /// becomes `replid2`, shared up to and including the current offset, and `new_id` takes over.
    pub fn shift_replid(&mut self, new_id: ReplId) {
        assert_ne!(
            new_id, self.replid,
            "shifting to the same replid would merge two histories"
        );
        self.replid2 = self.replid;
        self.second_repl_offset = offset_i64(self.master_repl_offset) + 1;
        self.replid = new_id;
    }

    /// A brand new history (backlog creation, backlog TTL expiry, full resync as master).
    pub fn clear_replid2(&mut self) {
        self.replid2 = ReplId::ZERO;
        self.second_repl_offset = -1;
    }

    /// Demotion: the cached master a former master synthesizes from its own history so that it
    /// can `PSYNC <replid> <offset+1>` to its new master.
    pub fn cached_master(&self) -> CachedMaster {
        CachedMaster {
            replid: self.replid,
            offset: self.master_repl_offset,
        }
    }
}

/// Where a replica stands on its master's history when it (re)connects: it asks PSYNC for the
/// byte after `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CachedMaster {
    pub replid: ReplId,
    pub offset: u64,
}

/// Offsets are u64 in the core; INFO shows some as i64 (-1 = none). Offsets past i64::MAX are a
/// programmer error (a stream of 8 EiB).
pub fn offset_i64(offset: u64) -> i64 {
    i64::try_from(offset).expect("replication offset beyond i64::MAX")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replid_parses_upper_case_hex_and_displays_as_lower_case() {
        let id = ReplId::from_random([0xab; 20]);
        assert_eq!(ReplId::parse_hex("AB".repeat(20).as_bytes()), Some(id));
        assert_eq!(ReplId::parse_hex("aB".repeat(20).as_bytes()), Some(id));
        assert_eq!(id.to_string(), "ab".repeat(20));
    }

    #[test]
    fn replid_renders_and_parses_as_40_hex() {
        let id = ReplId::from_random([0xab; 20]);
        let hex = id.to_hex();
        assert_eq!(hex.len(), 40);
        assert_eq!(hex, "ab".repeat(20));
        assert_eq!(ReplId::parse_hex(hex.as_bytes()), Some(id));
        assert_eq!(
            ReplId::parse_hex(b"77cdbdd21862bb9e49fec50d21bd9ef02d731e04").map(|i| i.to_hex()),
            Some("77cdbdd21862bb9e49fec50d21bd9ef02d731e04".to_string())
        );
        assert_eq!(ReplId::parse_hex(b"xyz"), None);
        assert_eq!(ReplId::parse_hex(&[b'g'; 40]), None);
        assert_eq!(ReplId::ZERO.to_hex(), "0".repeat(40));
    }

    #[test]
    fn promotion_keeps_the_old_history_reachable_up_to_offset_plus_one() {
        // The captured promotion: offset 600 -> second_repl_offset 601, old id as replid2.
        let old = ReplId::from_random([1; 20]);
        let new = ReplId::from_random([2; 20]);
        let mut id = ReplIdentity::new(old);
        id.master_repl_offset = 600;
        id.shift_replid(new);
        assert_eq!(id.replid, new);
        assert_eq!(id.replid2, old);
        assert_eq!(id.second_repl_offset, 601);
        assert_eq!(id.master_repl_offset, 600);
        id.clear_replid2();
        assert_eq!((id.replid2, id.second_repl_offset), (ReplId::ZERO, -1));
    }

    #[test]
    fn demotion_caches_own_history() {
        let mut id = ReplIdentity::new(ReplId::from_random([3; 20]));
        id.master_repl_offset = 166;
        let cached = id.cached_master();
        assert_eq!((cached.replid, cached.offset), (id.replid, 166));
    }
}
