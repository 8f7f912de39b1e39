//! The PSYNC decision: may a replica continue where it stopped, or must it load a snapshot?
//!
//! A replica asks `PSYNC <replid> <offset>` where `offset` is the first byte it lacks (its
//! applied offset + 1), or `PSYNC ? -1` when it has no history. Redis 7.0 accepts a partial
//! resync when both hold:
//! 1. the id is the master's current `replid`, or it is `replid2` and the offset is at most
//!    `second_repl_offset` (the old history is shared only up to the promotion point);
//! 2. the master has a backlog and `first_byte_offset <= offset <= first_byte_offset + histlen`.
//!
//! Otherwise the answer is a full resync at the master's current offset. The edges, as seen on
//! a real 7.0 master whose backlog starts at 1 with offset 494: 495 is accepted with 0 bytes,
//! 496 is refused, 1 is accepted with all 494 bytes, 0 is refused, a wrong id is refused.

use super::backlog::Backlog;
use super::ids::{ReplId, ReplIdentity};
use serde::{Deserialize, Serialize};

/// Why a PSYNC became a full resync (counted as `sync_partial_err` unless it was `?`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FullReason {
    /// `PSYNC ? -1`: the replica has no history (not counted as a partial error).
    NoHistory,
    /// The id is neither `replid` nor `replid2`.
    UnknownReplid,
    /// The id is `replid2` but the offset lies past the promotion point.
    PastSecondOffset,
    /// The master keeps no backlog.
    NoBacklog,
    /// The offset lies before or after the bytes the backlog holds.
    OutsideBacklog,
}

/// The master's answer to PSYNC.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PsyncDecision {
    /// `+FULLRESYNC <replid> <offset>`, then a snapshot taken at `offset`.
    Full {
        replid: ReplId,
        offset: u64,
        reason: FullReason,
    },
    /// `+CONTINUE [<replid>]`, then the backlog bytes from `from_offset` on.
    Partial {
        replid: ReplId,
        from_offset: u64,
        bytes: Vec<u8>,
    },
}

/// What the replica asked for. `replid == None` is `PSYNC ? -1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PsyncRequest {
    pub replid: Option<ReplId>,
    /// The first byte the replica lacks; may be anything a peer sends.
    pub offset: i64,
}

/// Decides a PSYNC exactly as Redis 7.0 does (see the module comment).
pub fn decide(
    identity: &ReplIdentity,
    backlog: Option<&Backlog>,
    req: PsyncRequest,
) -> PsyncDecision {
    let full = |reason| PsyncDecision::Full {
        replid: identity.replid,
        offset: identity.master_repl_offset,
        reason,
    };
    let Some(req_id) = req.replid else {
        return full(FullReason::NoHistory);
    };
    if req_id != identity.replid {
        if req_id != identity.replid2 || identity.replid2 == ReplId::ZERO {
            return full(FullReason::UnknownReplid);
        }
        if req.offset > identity.second_repl_offset {
            return full(FullReason::PastSecondOffset);
        }
    }
    let Some(backlog) = backlog else {
        return full(FullReason::NoBacklog);
    };
    let Ok(from_offset) = u64::try_from(req.offset) else {
        return full(FullReason::OutsideBacklog);
    };
    match backlog.read_from(from_offset) {
        Some(bytes) => PsyncDecision::Partial {
            replid: identity.replid,
            from_offset,
            bytes,
        },
        None => full(FullReason::OutsideBacklog),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captured_master() -> (ReplIdentity, Backlog) {
        // Backlog starting at 1, master offset 494 (the psync probes capture).
        let mut id = ReplIdentity::new(ReplId::from_random([0x77; 20]));
        let mut backlog = Backlog::new(1 << 20, 0);
        backlog.append(&[b'x'; 494]);
        id.master_repl_offset = 494;
        (id, backlog)
    }

    fn ask(id: &ReplIdentity, b: &Backlog, replid: Option<ReplId>, offset: i64) -> PsyncDecision {
        decide(id, Some(b), PsyncRequest { replid, offset })
    }

    #[test]
    fn psync_edges_match_the_captured_master() {
        let (id, b) = captured_master();
        let me = Some(id.replid);
        match ask(&id, &b, me, 495) {
            PsyncDecision::Partial {
                from_offset: 495,
                bytes,
                ..
            } => assert!(bytes.is_empty()),
            other => panic!("495 must continue with 0 bytes, got {other:?}"),
        }
        match ask(&id, &b, me, 1) {
            PsyncDecision::Partial {
                from_offset: 1,
                bytes,
                ..
            } => assert_eq!(bytes.len(), 494),
            other => panic!("1 must continue with 494 bytes, got {other:?}"),
        }
        match ask(&id, &b, me, 400) {
            PsyncDecision::Partial { bytes, .. } => assert_eq!(bytes.len(), 95),
            other => panic!("400 must continue with 95 bytes, got {other:?}"),
        }
        let full = |reason| PsyncDecision::Full {
            replid: id.replid,
            offset: 494,
            reason,
        };
        assert_eq!(ask(&id, &b, me, 496), full(FullReason::OutsideBacklog));
        assert_eq!(ask(&id, &b, me, 0), full(FullReason::OutsideBacklog));
        assert_eq!(ask(&id, &b, me, -1), full(FullReason::OutsideBacklog));
        let mut wrong = [0u8; 20];
        wrong[19] = 1;
        assert_eq!(
            ask(&id, &b, Some(ReplId(wrong)), 5),
            full(FullReason::UnknownReplid)
        );
        assert_eq!(ask(&id, &b, None, -1), full(FullReason::NoHistory));
        assert_eq!(
            decide(
                &id,
                None,
                PsyncRequest {
                    replid: me,
                    offset: 495
                }
            ),
            full(FullReason::NoBacklog)
        );
    }

    #[test]
    fn replid2_is_accepted_only_up_to_second_repl_offset() {
        let (mut id, mut b) = captured_master();
        let old = id.replid;
        id.shift_replid(ReplId::from_random([0x9e; 20])); // second_repl_offset = 495
        match ask(&id, &b, Some(old), 495) {
            PsyncDecision::Partial { replid, bytes, .. } => {
                assert_eq!(replid, id.replid, "+CONTINUE names the new id");
                assert!(bytes.is_empty());
            }
            other => panic!("sibling at the promotion point must continue, got {other:?}"),
        }
        // New writes after promotion: the old id is still good up to 495 only.
        b.append(b"new");
        id.master_repl_offset = 497;
        assert!(
            matches!(ask(&id, &b, Some(old), 495), PsyncDecision::Partial { ref bytes, .. } if bytes == b"new")
        );
        assert!(matches!(
            ask(&id, &b, Some(old), 496),
            PsyncDecision::Full {
                reason: FullReason::PastSecondOffset,
                ..
            }
        ));
        // The all-zero replid2 never matches.
        assert!(matches!(
            ask(&id, &b, Some(ReplId::ZERO), 1),
            PsyncDecision::Full {
                reason: FullReason::UnknownReplid,
                ..
            }
        ));
    }
}
