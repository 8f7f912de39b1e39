//! Failure detection: what one node believes about the health of one peer.
//!
//! Redis Cluster detects failures in two steps:
//! 1. PFAIL ("possibly failing"): this node sent a PING that has gone unanswered for more than
//!    `node_timeout`. It is a local opinion and is gossiped to everyone.
//! 2. FAIL: a node that holds PFAIL for a peer and has failure reports about that peer from
//!    enough masters (its own opinion counts when it is a master itself) promotes it to FAIL and
//!    broadcasts a FAIL message, which every receiver adopts. Only FAIL starts a failover.
//!
//! A report counts for `2 * node_timeout` after it was received; older reports are pruned before
//! counting, so a quorum made of opinions spread over a long time does not fail a node.
//! The quorum is `masters_with_slots / 2 + 1`, the same majority that elects a replica.

use super::NodeId;
use serde::{Deserialize, Serialize};

/// This node's view of one peer's health.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PeerHealth {
    /// When the outstanding PING was sent; `None` once it is answered.
    pub ping_sent_ms: Option<u64>,
    /// No PONG for longer than the node timeout.
    pub pfail: bool,
    /// A majority of masters agreed (or a FAIL message said so).
    pub fail: bool,
    /// Failure reports from masters: (reporter, when received), sorted by reporter.
    pub reports: Vec<(NodeId, u64)>,
}

impl PeerHealth {
    /// A PING went out at `now_ms`; an earlier outstanding one keeps its (older) time.
    pub fn on_ping_sent(&mut self, now_ms: u64) {
        if self.ping_sent_ms.is_none() {
            self.ping_sent_ms = Some(now_ms);
        }
    }

    /// The peer answered: it is reachable again, so PFAIL clears. FAIL is sticky here (Redis
    /// clears it only under conditions that need the failover outcome; not modelled).
    pub fn on_pong(&mut self) {
        self.ping_sent_ms = None;
        self.pfail = false;
    }

    /// When the peer becomes PFAIL if nothing is heard; `None` if no PING is outstanding or it
    /// is already suspected.
    pub fn pfail_deadline_ms(&self, node_timeout_ms: u64) -> Option<u64> {
        match (self.pfail, self.ping_sent_ms) {
            (false, Some(sent)) => Some(sent + node_timeout_ms + 1),
            _ => None,
        }
    }

    /// Marks PFAIL once the PING is older than the node timeout; true if it changed now.
    pub fn check_timeout(&mut self, now_ms: u64, node_timeout_ms: u64) -> bool {
        match self.pfail_deadline_ms(node_timeout_ms) {
            Some(deadline) if now_ms >= deadline => {
                self.pfail = true;
                true
            }
            _ => false,
        }
    }

    /// Records (or refreshes) a master's report that the peer is failing.
    pub fn add_report(&mut self, reporter: NodeId, now_ms: u64) {
        match self.reports.binary_search_by_key(&reporter, |r| r.0) {
            Ok(i) => self.reports[i].1 = now_ms,
            Err(i) => self.reports.insert(i, (reporter, now_ms)),
        }
    }

    /// Drops reports older than `2 * node_timeout` and returns how many remain.
    pub fn live_reports(&mut self, now_ms: u64, node_timeout_ms: u64) -> u64 {
        let validity_ms = 2 * node_timeout_ms;
        self.reports
            .retain(|&(_, at)| now_ms.saturating_sub(at) <= validity_ms);
        self.reports.len() as u64
    }
}

/// Votes needed, out of `masters_with_slots`, to mark FAIL or to win an election.
pub fn majority(masters_with_slots: u64) -> u64 {
    masters_with_slots / 2 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pfail_needs_a_ping_unanswered_for_more_than_the_node_timeout() {
        let mut h = PeerHealth::default();
        assert!(!h.check_timeout(10_000, 1000), "no ping outstanding");
        h.on_ping_sent(100);
        h.on_ping_sent(500);
        assert_eq!(h.pfail_deadline_ms(1000), Some(1101));
        assert!(!h.check_timeout(1100, 1000));
        assert!(h.check_timeout(1101, 1000));
        h.on_pong();
        assert!(!h.pfail);
    }

    #[test]
    fn failure_reports_expire_after_twice_the_node_timeout() {
        let mut h = PeerHealth::default();
        h.add_report(NodeId::from_index(2), 0);
        h.add_report(NodeId::from_index(1), 1500);
        assert_eq!(h.live_reports(2000, 1000), 2);
        assert_eq!(h.live_reports(2001, 1000), 1);
        assert_eq!(h.reports[0].0, NodeId::from_index(1));
    }

    #[test]
    fn the_fail_quorum_is_a_strict_majority_of_masters_with_slots() {
        assert_eq!(majority(3), 2);
        assert_eq!(majority(4), 3);
        assert_eq!(majority(1), 1);
    }
}
