//! The failover election: the candidate's side and the voter's rules.
//!
//! ## Candidate
//! A replica whose master is FAIL (and served slots) waits
//! `500 + random(0..500) + rank * 1000` ms; rank is the number of siblings it believes have a
//! higher replication offset. It then bumps `currentEpoch` (the new value is the election
//! epoch), persists it, and broadcasts AUTH_REQUEST. Votes (AUTH_ACK for that epoch) from a
//! majority of the masters that serve slots, received within the auth timeout
//! (`max(2 * node_timeout, 2000)` ms), win: the replica becomes a master, takes the election
//! epoch as its `configEpoch`, claims its old master's slots and broadcasts its new header.
//! Otherwise it starts a new round after the retry time (twice the auth timeout), with a new
//! epoch. A vote for an epoch other than the current round's is stale and dropped.
//!
//! ## Voter (Redis's clusterSendFailoverAuthIfNeeded, rule for rule)
//! A node grants a vote only if all hold, in this order ([`VoteRefusal`] names each):
//! 1. it is a master that serves slots;
//! 2. the request's epoch is at least its `currentEpoch`;
//! 3. it has not voted in this epoch (`lastVoteEpoch != currentEpoch`);
//! 4. the candidate is a replica (in the voter's view) and its master is known;
//! 5. the candidate's master is FAIL in the voter's view;
//! 6. it has not voted for a replica of that master within `2 * node_timeout`;
//! 7. for every claimed slot, the current owner's configEpoch is at most the request's.
//!
//! A vote sets `lastVoteEpoch` and the master's voted time, and is persisted before it is sent.
//! Rules 2-3 make at most one vote per master per epoch, so two candidates cannot both collect
//! a majority in one epoch. Rule 7 stops a replica of an already replaced master from winning
//! the slots back.
//!
//! ## Safe failover (Verdis; off by default)
//! Redis's WAIT counts acknowledgements only, and rank is a hint from gossip, so a replica
//! that lacks a WAIT-acknowledged write can win the election and the write is lost (the
//! model shows it). With `safe_failover` on, two quorums are made to intersect:
//! - **WAIT** waits for a majority of the shard's replicas, `n / 2 + 1` of `n`, whatever
//!   smaller count the client asked for ([`wait_ack_quorum`]). An acknowledged write at offset
//!   `o` is therefore held by a majority `A` of the replicas.
//! - **Candidate**: after bumping the epoch, the candidate asks its siblings for their offsets
//!   (OFFSET_QUERY). A sibling that answers is *fenced*: it stops applying the old master's
//!   stream, so its offset cannot grow past what it reported. With reports from a majority
//!   `B` (itself included), the candidate proceeds only if no report exceeds its own offset,
//!   and sends the reports as a proof in AUTH_REQUEST; otherwise it backs off (a sibling that
//!   is ahead should win).
//! - **Voter** (rule 8): the proof must name distinct replicas of the failed master, at least
//!   a majority of the replicas the voter knows for it, none above the candidate's offset.
//!
//! `A` and `B` are majorities of the same set, so some replica `r` is in both. `r` acknowledged
//! `o` before it was fenced (after, its offset does not grow), so it reported at least `o`, so
//! the candidate's offset is at least `o`: the winner holds every WAIT-acknowledged write.
//! Assumptions, stated so they can be checked: the shard's replica set is the same in every
//! view (no membership change during a failover); offsets are within one replication history;
//! nodes are not Byzantine. The price: a failover needs a majority of the replicas alive, and
//! WAIT waits for a majority.

use super::failure::majority;
use super::node::{
    auth_retry_ms, auth_timeout_ms, ClusterMsg, ClusterNode, Effect, Election, PlantedBug, Role,
    VoteRequest,
};
use super::NodeId;
use serde::{Deserialize, Serialize};

/// Why a vote was refused; one variant per rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VoteRefusal {
    /// Rule 1.
    NotAMasterWithSlots,
    /// Rule 2.
    StaleEpoch {
        request_epoch: u64,
        current_epoch: u64,
    },
    /// Rule 3.
    AlreadyVoted { epoch: u64 },
    /// Rule 4.
    CandidateIsNotAReplica,
    /// Rule 5.
    MasterNotFailed { master: NodeId },
    /// Rule 6.
    VotedRecentlyForThisMaster { master: NodeId, until_ms: u64 },
    /// Rule 7.
    SlotHeldAtHigherEpoch {
        owner_epoch: u64,
        request_epoch: u64,
    },
    /// Rule 8 (safe failover).
    InsufficientOffsetProof,
}

/// The election delay: `500 + random(0..500) + rank * 1000` ms.
pub fn election_delay_ms(rank: u64, random: u64) -> u64 {
    500 + random % 500 + rank * 1000
}

/// The replicas a WAIT must hear from: what the client asked for, raised to a majority of the
/// shard's `replicas` under safe failover.
pub fn wait_ack_quorum(safe_failover: bool, requested: u64, replicas: u64) -> u64 {
    if safe_failover && replicas > 0 {
        requested.max(replicas / 2 + 1)
    } else {
        requested
    }
}

impl ClusterNode {
    /// The siblings: replicas of `master` other than this node, in this node's view.
    fn siblings(&self, master: NodeId) -> impl Iterator<Item = (&NodeId, u64)> {
        self.peers
            .iter()
            .filter(move |(_, p)| p.role == Role::Replica { master })
            .map(|(id, p)| (id, p.repl_offset))
    }

    /// Rank: how many siblings this node believes are ahead of it.
    pub fn rank(&self) -> u64 {
        match self.role {
            Role::Replica { master } => self
                .siblings(master)
                .filter(|&(_, offset)| offset > self.repl_offset)
                .count() as u64,
            Role::Master => 0,
        }
    }

    pub(crate) fn schedule_election(&mut self, now_ms: u64, random: u64) {
        self.election = Election::Waiting {
            start_at_ms: now_ms + election_delay_ms(self.rank(), random),
        };
    }

    pub(crate) fn on_election_timeout(&mut self, now_ms: u64, random: u64, out: &mut Vec<Effect>) {
        let nt = self.cfg.node_timeout_ms;
        let retry = self.cfg.planted_bug != Some(PlantedBug::NeverRetryElection);
        match self.election {
            Election::Waiting { start_at_ms } if now_ms >= start_at_ms => {
                self.start_election(now_ms, out)
            }
            Election::Collecting { started_ms, .. } | Election::Requested { started_ms, .. }
                if now_ms >= started_ms + auth_retry_ms(nt) =>
            {
                if retry {
                    self.schedule_election(now_ms, random)
                } else {
                    self.election = Election::Idle
                }
            }
            Election::Backoff { retry_at_ms } if now_ms >= retry_at_ms => {
                self.schedule_election(now_ms, random)
            }
            // Not due yet, or no election.
            _ => {}
        }
    }

    fn start_election(&mut self, now_ms: u64, out: &mut Vec<Effect>) {
        let master = match self.role {
            Role::Replica { master }
                if self.peers.get(&master).is_some_and(|p| p.health.fail)
                    && self.slots.serves_slots(master) =>
            {
                master
            }
            // The master came back, lost its slots, or we were promoted meanwhile.
            _ => {
                self.election = Election::Idle;
                return;
            }
        };
        self.current_epoch += 1;
        let epoch = self.current_epoch;
        out.push(Effect::Persist(self.persistent()));
        if !self.cfg.safe_failover {
            return self.request_votes(master, epoch, now_ms, Vec::new(), out);
        }
        self.election = Election::Collecting {
            epoch,
            started_ms: now_ms,
            reports: vec![(self.me, self.repl_offset)],
        };
        let siblings: Vec<NodeId> = self.siblings(master).map(|(id, _)| *id).collect();
        for to in siblings {
            out.push(Effect::Send {
                to,
                msg: ClusterMsg::OffsetQuery { epoch },
            });
        }
        self.maybe_finish_collecting(now_ms, out);
    }

    fn request_votes(
        &mut self,
        master: NodeId,
        epoch: u64,
        started_ms: u64,
        proof: Vec<(NodeId, u64)>,
        out: &mut Vec<Effect>,
    ) {
        let req = VoteRequest {
            candidate: self.me,
            master,
            epoch,
            config_epoch: self.peers.get(&master).map_or(0, |p| p.config_epoch),
            slots: self.slots.ranges_of(master),
            offset: self.repl_offset,
            proof,
        };
        self.election = Election::Requested {
            epoch,
            started_ms,
            acks: Vec::new(),
        };
        out.push(Effect::Broadcast {
            msg: ClusterMsg::AuthRequest(req),
        });
    }

    /// A sibling asks for our offset (safe failover): answer and fence.
    pub(crate) fn on_offset_query(&mut self, from: NodeId, epoch: u64, out: &mut Vec<Effect>) {
        let sibling = self.peers.get(&from).map(|p| p.role);
        match (self.role, sibling) {
            (Role::Replica { master }, Some(Role::Replica { master: theirs }))
                if master == theirs && self.cfg.safe_failover =>
            {
                if !self.fenced {
                    self.fenced = true;
                    out.push(Effect::FenceReplication { master });
                }
                out.push(Effect::Send {
                    to: from,
                    msg: ClusterMsg::OffsetReport {
                        epoch,
                        offset: self.repl_offset,
                    },
                });
            }
            // Not a sibling (any more), or safe failover is off: nothing to promise.
            _ => {}
        }
    }

    pub(crate) fn on_offset_report(
        &mut self,
        from: NodeId,
        epoch: u64,
        offset: u64,
        now_ms: u64,
        out: &mut Vec<Effect>,
    ) {
        match &mut self.election {
            Election::Collecting {
                epoch: current,
                reports,
                ..
            } if *current == epoch => {
                if let Err(i) = reports.binary_search_by_key(&from, |r| r.0) {
                    reports.insert(i, (from, offset));
                }
                self.maybe_finish_collecting(now_ms, out);
            }
            // A report for an older round, or after we moved on: stale, dropped.
            _ => {}
        }
    }

    fn maybe_finish_collecting(&mut self, now_ms: u64, out: &mut Vec<Effect>) {
        let Role::Replica { master } = self.role else {
            return;
        };
        let replicas = self.siblings(master).count() as u64 + 1;
        let (epoch, started_ms, reports) = match &self.election {
            Election::Collecting {
                epoch,
                started_ms,
                reports,
            } if reports.len() as u64 >= majority(replicas) => {
                (*epoch, *started_ms, reports.clone())
            }
            // Still waiting for a majority of the siblings.
            _ => return,
        };
        let ignore_proof = self.cfg.planted_bug == Some(PlantedBug::IgnoreOffsetProof);
        if ignore_proof || reports.iter().all(|&(_, o)| o <= self.repl_offset) {
            self.request_votes(master, epoch, started_ms, reports, out);
        } else {
            let _ = now_ms;
            self.election = Election::Backoff {
                retry_at_ms: started_ms + auth_retry_ms(self.cfg.node_timeout_ms),
            };
        }
    }

    /// A vote arrived.
    pub(crate) fn on_vote(&mut self, from: NodeId, epoch: u64, now_ms: u64, out: &mut Vec<Effect>) {
        let nt = self.cfg.node_timeout_ms;
        let voter_serves = self.slots.serves_slots(from);
        let needed = majority(self.slots.masters_with_slots().len() as u64);
        let won = match &mut self.election {
            Election::Requested {
                epoch: current,
                started_ms,
                acks,
            } if *current == epoch
                && voter_serves
                && now_ms < *started_ms + auth_timeout_ms(nt) =>
            {
                if let Err(i) = acks.binary_search(&from) {
                    acks.insert(i, from);
                }
                acks.len() as u64 >= needed
            }
            // A vote for an abandoned round, after the auth timeout, from a master without
            // slots, or after the election ended: stale, dropped.
            _ => false,
        };
        if won {
            self.promote(epoch, out);
        }
    }

    fn promote(&mut self, epoch: u64, out: &mut Vec<Effect>) {
        let Role::Replica { master } = self.role else {
            unreachable!("only a replica runs an election");
        };
        self.role = Role::Master;
        self.election = Election::Idle;
        self.config_epoch = self.config_epoch.max(epoch);
        for range in self.slots.ranges_of(master) {
            self.slots.claim(range, self.me, self.config_epoch);
        }
        debug_assert!(!self.slots.serves_slots(master));
        out.push(Effect::Persist(self.persistent()));
        out.push(Effect::BecameMaster {
            epoch,
            offset: self.repl_offset,
        });
        out.push(Effect::Broadcast {
            msg: ClusterMsg::Ping(self.header()),
        });
    }

    pub(crate) fn on_vote_request(&mut self, req: VoteRequest, now_ms: u64, out: &mut Vec<Effect>) {
        match self.vote_decision(&req, now_ms) {
            Ok(()) => {
                self.last_vote_epoch = self.current_epoch;
                if let Some(p) = self.peers.get_mut(&req.master) {
                    p.voted_time_ms = Some(now_ms);
                }
                out.push(Effect::Persist(self.persistent()));
                out.push(Effect::Send {
                    to: req.candidate,
                    msg: ClusterMsg::AuthAck { epoch: req.epoch },
                });
            }
            Err(reason) => out.push(Effect::VoteRefused {
                candidate: req.candidate,
                reason,
            }),
        }
    }

    /// Redis's vote rules (plus rule 8 under safe failover); see the module docs.
    pub fn vote_decision(&self, req: &VoteRequest, now_ms: u64) -> Result<(), VoteRefusal> {
        let nt = self.cfg.node_timeout_ms;
        if self.role != Role::Master || !self.slots.serves_slots(self.me) {
            return Err(VoteRefusal::NotAMasterWithSlots);
        }
        if req.epoch < self.current_epoch {
            return Err(VoteRefusal::StaleEpoch {
                request_epoch: req.epoch,
                current_epoch: self.current_epoch,
            });
        }
        let vote_twice = self.cfg.planted_bug == Some(PlantedBug::VoteTwicePerEpoch);
        if self.last_vote_epoch == self.current_epoch && !vote_twice {
            return Err(VoteRefusal::AlreadyVoted {
                epoch: self.current_epoch,
            });
        }
        let master = match self.peers.get(&req.candidate).map(|p| p.role) {
            Some(Role::Replica { master }) if master == req.master => self
                .peers
                .get(&master)
                .ok_or(VoteRefusal::CandidateIsNotAReplica)?,
            _ => return Err(VoteRefusal::CandidateIsNotAReplica),
        };
        if !master.health.fail {
            return Err(VoteRefusal::MasterNotFailed { master: req.master });
        }
        if let Some(voted) = master.voted_time_ms {
            if now_ms.saturating_sub(voted) < 2 * nt && !vote_twice {
                return Err(VoteRefusal::VotedRecentlyForThisMaster {
                    master: req.master,
                    until_ms: voted + 2 * nt,
                });
            }
        }
        for &range in &req.slots {
            let owner_epoch = self.slots.max_epoch_within(range);
            if owner_epoch > req.config_epoch {
                return Err(VoteRefusal::SlotHeldAtHigherEpoch {
                    owner_epoch,
                    request_epoch: req.config_epoch,
                });
            }
        }
        let ignore_proof = self.cfg.planted_bug == Some(PlantedBug::IgnoreOffsetProof);
        if self.cfg.safe_failover && !ignore_proof && !self.proof_is_sufficient(req) {
            return Err(VoteRefusal::InsufficientOffsetProof);
        }
        Ok(())
    }

    /// Rule 8: reports from a majority of the master's replicas, none above the candidate.
    /// Only a master votes (rule 1 comes first), so the replicas are all peers.
    fn proof_is_sufficient(&self, req: &VoteRequest) -> bool {
        let replicas = self.siblings(req.master).count() as u64;
        let mut named: Vec<NodeId> = req.proof.iter().map(|r| r.0).collect();
        named.sort();
        named.dedup();
        let all_replicas = named.iter().all(|id| {
            self.peers
                .get(id)
                .is_some_and(|p| p.role == Role::Replica { master: req.master })
        });
        let candidate_reported = req.proof.contains(&(req.candidate, req.offset));
        named.len() == req.proof.len()
            && all_replicas
            && candidate_reported
            && named.len() as u64 >= majority(replicas)
            && req.proof.iter().all(|&(_, o)| o <= req.offset)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::node::{ClusterConfig, Input, Persistent};
    use super::super::slots::SlotRange;
    use super::*;

    pub(crate) const NT: u64 = 1000;

    pub(crate) fn id(i: u16) -> NodeId {
        NodeId::from_index(i)
    }

    /// Masters 1, 2, 3 (configEpochs 1, 2, 3) own a third of the slots each; replicas 4, 5
    /// replicate master 1. Returns node `who`'s view at currentEpoch 3.
    pub(crate) fn cluster_node(who: u16, safe: bool) -> ClusterNode {
        let mut cfg = ClusterConfig::new(NT);
        cfg.safe_failover = safe;
        let role_of = |i: u16| match i {
            1..=3 => Role::Master,
            _ => Role::Replica { master: id(1) },
        };
        let epoch_of = |i: u16| if i <= 3 { u64::from(i) } else { 1 };
        let durable = Persistent {
            current_epoch: 3,
            last_vote_epoch: 0,
            config_epoch: epoch_of(who),
        };
        let mut node = ClusterNode::new(cfg, id(who), role_of(who), durable);
        for i in (1..=5).filter(|&i| i != who) {
            node.add_peer(id(i), role_of(i), epoch_of(i));
        }
        node.assign_slots(SlotRange::new(0, 5460), id(1), 1);
        node.assign_slots(SlotRange::new(5461, 10922), id(2), 2);
        node.assign_slots(SlotRange::new(10923, 16383), id(3), 3);
        node
    }

    pub(crate) fn request(candidate: u16, epoch: u64) -> VoteRequest {
        VoteRequest {
            candidate: id(candidate),
            master: id(1),
            epoch,
            config_epoch: 1,
            slots: vec![SlotRange::new(0, 5460)],
            offset: 0,
            proof: Vec::new(),
        }
    }

    fn fail_master_one(node: &mut ClusterNode) {
        node.handle(
            Input::Message {
                from: id(3),
                msg: ClusterMsg::Fail { about: id(1) },
            },
            0,
            0,
        );
    }

    #[test]
    fn a_master_votes_once_per_epoch_and_not_again_for_the_same_shard_within_two_node_timeouts() {
        let mut voter = cluster_node(2, false);
        fail_master_one(&mut voter);
        let deliver = |voter: &mut ClusterNode, candidate: u16, epoch: u64, now: u64| {
            voter.handle(
                Input::Message {
                    from: id(candidate),
                    msg: ClusterMsg::AuthRequest(request(candidate, epoch)),
                },
                now,
                0,
            )
        };
        let first = deliver(&mut voter, 4, 4, 100);
        assert!(first.contains(&Effect::Send {
            to: id(4),
            msg: ClusterMsg::AuthAck { epoch: 4 }
        }));
        assert!(matches!(first[0], Effect::Persist(p) if p.last_vote_epoch == 4));
        let second = deliver(&mut voter, 5, 4, 100);
        assert!(matches!(
            second[..],
            [Effect::VoteRefused {
                reason: VoteRefusal::AlreadyVoted { epoch: 4 },
                ..
            }]
        ));
        assert_eq!(voter.last_vote_epoch(), 4);
        let soon = deliver(&mut voter, 5, 5, 100 + 2 * NT - 1);
        assert_eq!(
            soon,
            vec![Effect::VoteRefused {
                candidate: id(5),
                reason: VoteRefusal::VotedRecentlyForThisMaster {
                    master: id(1),
                    until_ms: 100 + 2 * NT
                },
            }]
        );
        let later = deliver(&mut voter, 5, 6, 100 + 2 * NT);
        assert!(matches!(later[1], Effect::Send { .. }));
    }

    #[test]
    fn votes_are_refused_for_stale_epochs_live_masters_and_slots_held_at_higher_epochs() {
        let mut voter = cluster_node(2, false);
        assert_eq!(
            voter.vote_decision(&request(4, 4), 0),
            Err(VoteRefusal::MasterNotFailed { master: id(1) })
        );
        fail_master_one(&mut voter);
        assert_eq!(
            voter.vote_decision(&request(4, 2), 0),
            Err(VoteRefusal::StaleEpoch {
                request_epoch: 2,
                current_epoch: 3
            })
        );
        assert_eq!(
            voter.vote_decision(&request(2, 4), 0),
            Err(VoteRefusal::CandidateIsNotAReplica)
        );
        voter.assign_slots(SlotRange::new(0, 10), id(3), 7);
        assert_eq!(
            voter.vote_decision(&request(4, 8), 0),
            Err(VoteRefusal::SlotHeldAtHigherEpoch {
                owner_epoch: 7,
                request_epoch: 1
            })
        );
        let replica = cluster_node(5, false);
        assert_eq!(
            replica.vote_decision(&request(4, 4), 0),
            Err(VoteRefusal::NotAMasterWithSlots)
        );
        let mut no_slots = cluster_node(2, false);
        fail_master_one(&mut no_slots);
        no_slots.assign_slots(SlotRange::new(5461, 10922), id(3), 9);
        assert_eq!(
            no_slots.vote_decision(&request(4, 4), 0),
            Err(VoteRefusal::NotAMasterWithSlots),
            "a master without slots does not vote"
        );
        let mut wrong_master = request(4, 4);
        wrong_master.master = id(2);
        assert_eq!(
            voter.vote_decision(&wrong_master, 0),
            Err(VoteRefusal::CandidateIsNotAReplica),
            "node 4 replicates node 1, not node 2"
        );
    }

    #[test]
    fn votes_count_only_from_masters_with_slots_within_the_auth_timeout() {
        let ack = |from: u16| Input::Message {
            from: id(from),
            msg: ClusterMsg::AuthAck { epoch: 4 },
        };
        let mut late = cluster_node(4, false);
        fail_master_one(&mut late);
        let t = late.poll_timeout().unwrap();
        late.handle(Input::Timeout, t, 0);
        late.handle(ack(2), t, 0);
        late.handle(ack(3), t + auth_timeout_ms(NT), 0);
        assert_eq!(late.role(), Role::Replica { master: id(1) }, "late vote");
        late.handle(ack(3), t + auth_timeout_ms(NT) - 1, 0);
        assert_eq!(late.role(), Role::Master, "in time");

        let mut slotless = cluster_node(4, false);
        fail_master_one(&mut slotless);
        let t = slotless.poll_timeout().unwrap();
        slotless.handle(Input::Timeout, t, 0);
        slotless.handle(ack(2), t, 0);
        slotless.handle(ack(5), t, 0);
        assert_eq!(
            slotless.role(),
            Role::Replica { master: id(1) },
            "node 5 serves no slots: its vote does not count"
        );
    }

    #[test]
    fn rank_counts_siblings_with_a_higher_offset_and_sets_the_election_delay() {
        let mut replica = cluster_node(4, false);
        replica.handle(Input::ReplOffset { offset: 10 }, 0, 0);
        assert_eq!(replica.repl_offset(), 10);
        assert!(replica.peer(id(5)).is_some() && replica.peer(id(4)).is_none());
        assert_eq!(replica.rank(), 0);
        let mut header = cluster_node(5, false).header();
        header.repl_offset = 11;
        replica.handle(
            Input::Message {
                from: id(5),
                msg: ClusterMsg::Ping(header),
            },
            0,
            0,
        );
        assert_eq!(replica.rank(), 1);
        fail_master_one(&mut replica);
        assert_eq!(
            replica.election(),
            &Election::Waiting {
                start_at_ms: 500 + 1000
            }
        );
        assert_eq!(election_delay_ms(0, 499), 999);
    }

    #[test]
    fn a_replica_with_a_majority_of_votes_wins_takes_the_slots_at_the_election_epoch() {
        let mut replica = cluster_node(4, false);
        replica.handle(
            Input::Message {
                from: id(2),
                msg: ClusterMsg::Fail { about: id(1) },
            },
            0,
            0,
        );
        let start = replica.poll_timeout().unwrap();
        let out = replica.handle(Input::Timeout, start, 0);
        assert_eq!(replica.current_epoch(), 4);
        assert!(matches!(
            out[..],
            [Effect::Persist(_), Effect::Broadcast { .. }]
        ));
        let ack = |from: u16, epoch: u64| Input::Message {
            from: id(from),
            msg: ClusterMsg::AuthAck { epoch },
        };
        assert!(replica.handle(ack(2, 3), start, 0).is_empty(), "stale vote");
        assert!(replica.handle(ack(2, 4), start, 0).is_empty());
        assert!(
            replica.handle(ack(2, 4), start, 0).is_empty(),
            "same voter twice"
        );
        let won = replica.handle(ack(3, 4), start + 1, 0);
        assert!(won.contains(&Effect::BecameMaster {
            epoch: 4,
            offset: 0
        }));
        assert_eq!(replica.role(), Role::Master);
        assert_eq!(replica.config_epoch(), 4);
        assert_eq!(replica.slots().owner_of(0).owner, Some(id(4)));
        assert_eq!(replica.slots().owner_of(0).config_epoch, 4);
    }

    #[test]
    fn a_candidate_without_a_majority_retries_at_a_new_epoch_after_the_retry_time() {
        let mut replica = cluster_node(4, false);
        fail_master_one(&mut replica);
        let start = replica.poll_timeout().unwrap();
        replica.handle(Input::Timeout, start, 0);
        let retry = replica.poll_timeout().unwrap();
        assert_eq!(retry, start + 4 * NT.max(1000));
        replica.handle(Input::Timeout, retry, 0);
        let again = replica.poll_timeout().unwrap();
        replica.handle(Input::Timeout, again, 0);
        assert_eq!(replica.current_epoch(), 5);
    }

    #[test]
    fn a_sibling_follows_the_winner_when_its_master_loses_every_slot() {
        let mut winner = cluster_node(4, false);
        fail_master_one(&mut winner);
        let t = winner.poll_timeout().unwrap();
        winner.handle(Input::Timeout, t, 0);
        for voter in [2, 3] {
            winner.handle(
                Input::Message {
                    from: id(voter),
                    msg: ClusterMsg::AuthAck { epoch: 4 },
                },
                t,
                0,
            );
        }
        let mut sibling = cluster_node(5, false);
        let out = sibling.handle(
            Input::Message {
                from: id(4),
                msg: ClusterMsg::Ping(winner.header()),
            },
            t,
            0,
        );
        assert!(out.contains(&Effect::FollowMaster { master: id(4) }));
        assert_eq!(sibling.role(), Role::Replica { master: id(4) });
        assert_eq!(sibling.current_epoch(), 4);
    }

    #[test]
    fn on_an_equal_config_epoch_the_smaller_node_id_bumps_to_a_new_epoch() {
        let mut small = cluster_node(2, false);
        let mut big_header = cluster_node(3, false).header();
        big_header.config_epoch = 2;
        let out = small.handle(
            Input::Message {
                from: id(3),
                msg: ClusterMsg::Ping(big_header),
            },
            0,
            0,
        );
        assert_eq!(small.config_epoch(), 4);
        assert!(out.contains(&Effect::Persist(small.persistent())));
        let mut big = cluster_node(3, false);
        let mut small_header = cluster_node(2, false).header();
        small_header.config_epoch = 3;
        big.handle(
            Input::Message {
                from: id(2),
                msg: ClusterMsg::Ping(small_header),
            },
            0,
            0,
        );
        assert_eq!(big.config_epoch(), 3, "the bigger id keeps its epoch");
    }

    #[test]
    fn a_stale_claim_is_answered_with_an_update_naming_the_current_owner() {
        let mut node = cluster_node(2, false);
        node.assign_slots(SlotRange::new(0, 5460), id(4), 9);
        let out = node.handle(
            Input::Message {
                from: id(1),
                msg: ClusterMsg::Ping(cluster_node(1, false).header()),
            },
            0,
            0,
        );
        assert!(out.contains(&Effect::Send {
            to: id(1),
            msg: ClusterMsg::Update {
                owner: id(4),
                config_epoch: 9,
                slots: vec![SlotRange::new(0, 5460)]
            }
        }));
    }

    #[test]
    fn safe_failover_votes_need_a_majority_proof_with_no_sibling_ahead() {
        let mut voter = cluster_node(2, true);
        fail_master_one(&mut voter);
        let mut req = request(4, 4);
        req.offset = 5;
        req.proof = vec![(id(4), 5)];
        assert_eq!(
            voter.vote_decision(&req, 0),
            Err(VoteRefusal::InsufficientOffsetProof),
            "one of two replicas is not a majority"
        );
        req.proof = vec![(id(4), 5), (id(5), 6)];
        assert_eq!(
            voter.vote_decision(&req, 0),
            Err(VoteRefusal::InsufficientOffsetProof)
        );
        req.proof = vec![(id(4), 5), (id(5), 5)];
        assert_eq!(voter.vote_decision(&req, 0), Ok(()));
        assert_eq!(wait_ack_quorum(true, 1, 2), 2);
        assert_eq!(wait_ack_quorum(false, 1, 2), 1);
    }

    #[test]
    fn auth_timeouts_are_twice_the_node_timeout_with_a_two_second_floor() {
        assert_eq!(auth_timeout_ms(5_000), 10_000);
        assert_eq!(auth_timeout_ms(500), 2_000);
        assert_eq!(auth_retry_ms(5_000), 20_000);
    }

    #[test]
    fn only_the_failure_of_our_own_master_with_slots_schedules_an_election() {
        let fail = |about: u16| Input::Message {
            from: id(3),
            msg: ClusterMsg::Fail { about: id(about) },
        };
        let mut other = cluster_node(4, false);
        other.handle(fail(2), 0, 0);
        assert_eq!(
            other.election(),
            &Election::Idle,
            "node 2 is not our master"
        );
        let mut slotless = cluster_node(4, false);
        slotless.assign_slots(SlotRange::new(0, 5460), id(2), 9);
        slotless.handle(fail(1), 0, 0);
        assert_eq!(
            slotless.election(),
            &Election::Idle,
            "master 1 serves no slots"
        );
        let mut ours = cluster_node(4, false);
        ours.handle(fail(1), 0, 0);
        assert!(matches!(ours.election(), Election::Waiting { .. }));
    }

    #[test]
    fn a_sibling_at_the_same_offset_does_not_outrank() {
        let mut replica = cluster_node(4, false);
        replica.handle(Input::ReplOffset { offset: 10 }, 0, 0);
        let mut header = cluster_node(5, false).header();
        header.repl_offset = 10;
        replica.handle(
            Input::Message {
                from: id(5),
                msg: ClusterMsg::Ping(header),
            },
            0,
            0,
        );
        assert_eq!(replica.rank(), 0);
    }

    #[test]
    fn the_wait_quorum_is_a_majority_of_the_replicas_only_under_safe_failover() {
        assert_eq!(wait_ack_quorum(true, 1, 3), 2);
        assert_eq!(wait_ack_quorum(true, 3, 3), 3);
        assert_eq!(
            wait_ack_quorum(true, 0, 0),
            0,
            "no replicas: nothing to wait for"
        );
        assert_eq!(wait_ack_quorum(false, 0, 3), 0);
    }

    #[test]
    fn election_timers_act_only_when_due() {
        let mut replica = cluster_node(4, false);
        fail_master_one(&mut replica);
        let start = replica.poll_timeout().unwrap();
        // Early: nothing starts.
        assert!(replica.handle(Input::Timeout, start - 1, 0).is_empty());
        assert_eq!(replica.current_epoch(), 3);
        assert!(matches!(replica.election(), Election::Waiting { .. }));
        replica.handle(Input::Timeout, start, 0);
        assert_eq!(replica.current_epoch(), 4);
        // A round in progress is not abandoned before the retry time.
        replica.handle(Input::Timeout, start + 1, 0);
        assert!(matches!(
            replica.election(),
            Election::Requested { epoch: 4, .. }
        ));
        let retry = start + auth_retry_ms(NT);
        replica.handle(Input::Timeout, retry - 1, 0);
        assert!(matches!(replica.election(), Election::Requested { .. }));
        replica.handle(Input::Timeout, retry, 0);
        assert!(matches!(replica.election(), Election::Waiting { .. }));
    }

    #[test]
    fn a_backoff_ends_exactly_at_its_retry_time() {
        let mut replica = cluster_node(4, false);
        replica.election = Election::Backoff { retry_at_ms: 5000 };
        replica.handle(Input::Timeout, 4999, 0);
        assert_eq!(replica.election(), &Election::Backoff { retry_at_ms: 5000 });
        replica.handle(Input::Timeout, 5000, 0);
        assert!(matches!(replica.election(), Election::Waiting { .. }));
    }

    #[test]
    fn no_election_starts_for_a_live_master_or_one_that_lost_its_slots() {
        let mut live = cluster_node(4, false);
        live.schedule_election(0, 0);
        let at = live.poll_timeout().unwrap();
        live.handle(Input::Timeout, at, 0);
        assert_eq!(live.election(), &Election::Idle);
        assert_eq!(live.current_epoch(), 3);

        let mut orphan = cluster_node(4, false);
        fail_master_one(&mut orphan);
        orphan.assign_slots(SlotRange::new(0, 5460), id(2), 9);
        let at = orphan.poll_timeout().unwrap();
        orphan.handle(Input::Timeout, at, 0);
        assert_eq!(orphan.election(), &Election::Idle);
        assert_eq!(orphan.current_epoch(), 3);
    }

    #[test]
    fn offset_queries_are_answered_only_by_siblings_under_safe_failover() {
        let query = |from: u16| Input::Message {
            from: id(from),
            msg: ClusterMsg::OffsetQuery { epoch: 4 },
        };
        let mut off = cluster_node(5, false);
        assert!(off.handle(query(4), 0, 0).is_empty());
        assert!(!off.is_fenced());
        let mut safe = cluster_node(5, true);
        assert!(safe.handle(query(2), 0, 0).is_empty(), "node 2 is a master");
        assert!(!safe.is_fenced());
    }

    #[test]
    fn a_report_for_another_round_is_not_counted() {
        let mut cand = cluster_node(4, true);
        fail_master_one(&mut cand);
        let t = cand.poll_timeout().unwrap();
        cand.handle(Input::Timeout, t, 0);
        let report = |epoch: u64| Input::Message {
            from: id(5),
            msg: ClusterMsg::OffsetReport { epoch, offset: 0 },
        };
        cand.handle(report(3), t, 0);
        assert!(matches!(
            cand.election(),
            Election::Collecting { epoch: 4, .. }
        ));
        // The round's own report, at the candidate's offset: it asks for votes.
        cand.handle(report(4), t, 0);
        assert!(matches!(
            cand.election(),
            Election::Requested { epoch: 4, .. }
        ));
    }

    #[test]
    fn safe_failover_candidate_backs_off_when_a_fenced_sibling_is_ahead() {
        let mut cand = cluster_node(4, true);
        let mut sib = cluster_node(5, true);
        cand.handle(Input::ReplOffset { offset: 1 }, 0, 0);
        sib.handle(Input::ReplOffset { offset: 2 }, 0, 0);
        fail_master_one(&mut cand);
        let t = cand.poll_timeout().unwrap();
        let out = cand.handle(Input::Timeout, t, 0);
        assert!(out.contains(&Effect::Send {
            to: id(5),
            msg: ClusterMsg::OffsetQuery { epoch: 4 }
        }));
        let reply = sib.handle(
            Input::Message {
                from: id(4),
                msg: ClusterMsg::OffsetQuery { epoch: 4 },
            },
            t,
            0,
        );
        assert!(sib.is_fenced());
        assert_eq!(
            reply,
            vec![
                Effect::FenceReplication { master: id(1) },
                Effect::Send {
                    to: id(4),
                    msg: ClusterMsg::OffsetReport {
                        epoch: 4,
                        offset: 2
                    }
                }
            ]
        );
        cand.handle(
            Input::Message {
                from: id(5),
                msg: ClusterMsg::OffsetReport {
                    epoch: 4,
                    offset: 2,
                },
            },
            t,
            0,
        );
        assert_eq!(
            cand.election(),
            &Election::Backoff {
                retry_at_ms: t + auth_retry_ms(NT)
            }
        );
    }
}
