//! The cluster node: one node's view of the cluster and its part in failover.
//!
//! [`ClusterNode::handle`] takes one [`Input`] with `now_ms` and a random number, changes the
//! node, and returns the [`Effect`]s in the order the driver must carry them out (see the
//! driver contract in the module above). Every handler is one guarded `match`; a message that
//! arrives too late to matter (an AUTH_ACK for an abandoned epoch, an offset report for an old
//! round) has an explicit arm that drops it.
//!
//! What the node knows:
//! - its own role, `currentEpoch`, `configEpoch`, `lastVoteEpoch` (the durable three), and the
//!   replication offset the replication layer reported;
//! - per peer: role, configEpoch and offset as last gossiped, health ([`PeerHealth`]) and when
//!   this node last voted for a replica of that peer;
//! - the slot table: who owns each slot under which configEpoch;
//! - the state of its own election, if it is a replica whose master failed.

use super::election::VoteRefusal;
use super::failure::{majority, PeerHealth};
use super::slots::{SlotRange, SlotTable};
use super::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Deliberately broken variants, used only to prove that the model checker catches them.
/// [`ClusterConfig::validate`] refuses them, so a server cannot be started with one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PlantedBug {
    /// A master forgets `lastVoteEpoch` and votes for every request.
    VoteTwicePerEpoch,
    /// A replica whose election timed out gives up instead of retrying.
    NeverRetryElection,
    /// Safe failover without its election half: WAIT waits for a majority, but candidates
    /// do not back off for a sibling that is ahead and voters do not check the proof.
    IgnoreOffsetProof,
}

/// Cluster settings that matter to failover.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClusterConfig {
    /// `cluster-node-timeout`.
    pub node_timeout_ms: u64,
    /// Verdis safe failover: votes only for a replica holding every WAIT-acknowledged write.
    pub safe_failover: bool,
    /// Only for the model's planted-bug tests.
    pub planted_bug: Option<PlantedBug>,
}

/// A rejected [`ClusterConfig`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    NodeTimeoutOutOfRange { node_timeout_ms: u64 },
    PlantedBugInProduction,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::NodeTimeoutOutOfRange { node_timeout_ms } => write!(
                f,
                "cluster-node-timeout {node_timeout_ms} must be between 1 and {NODE_TIMEOUT_MAX_MS} ms"
            ),
            ConfigError::PlantedBugInProduction => f.write_str("planted bugs are for the model only"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The longest accepted node timeout (one day); longer is an operator mistake.
pub const NODE_TIMEOUT_MAX_MS: u64 = 24 * 3600 * 1000;

impl ClusterConfig {
    /// Redis's default: 15 s node timeout, safe failover off.
    pub fn new(node_timeout_ms: u64) -> ClusterConfig {
        ClusterConfig {
            node_timeout_ms,
            safe_failover: false,
            planted_bug: None,
        }
    }

    /// Rejects limits a server must not start with.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.node_timeout_ms == 0 || self.node_timeout_ms > NODE_TIMEOUT_MAX_MS {
            return Err(ConfigError::NodeTimeoutOutOfRange {
                node_timeout_ms: self.node_timeout_ms,
            });
        }
        if self.planted_bug.is_some() {
            return Err(ConfigError::PlantedBugInProduction);
        }
        Ok(())
    }
}

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    Master,
    Replica { master: NodeId },
}

/// The header every gossip message carries (Redis's clusterMsg header plus gossip section).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Header {
    pub sender: NodeId,
    pub role: Role,
    pub current_epoch: u64,
    /// The sender's configEpoch (a replica sends its master's, as Redis does).
    pub config_epoch: u64,
    /// The slots the sender serves (a replica sends its master's).
    pub slots: Vec<SlotRange>,
    pub repl_offset: u64,
    /// Nodes the sender considers PFAIL or FAIL; from a master, each is a failure report.
    pub suspects: Vec<NodeId>,
}

/// A vote request (Redis's FAILOVER_AUTH_REQUEST with the fields the voter checks).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VoteRequest {
    pub candidate: NodeId,
    /// The failed master the candidate replicates.
    pub master: NodeId,
    /// The election epoch (the candidate's bumped currentEpoch).
    pub epoch: u64,
    /// The configEpoch of the candidate's master, under which the claimed slots are held.
    pub config_epoch: u64,
    pub slots: Vec<SlotRange>,
    pub offset: u64,
    /// Safe failover only: (replica, offset) reports from a majority of the master's replicas,
    /// the candidate included, each fenced from the old master when it answered.
    pub proof: Vec<(NodeId, u64)>,
}

/// Cluster bus messages.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClusterMsg {
    /// PING/PONG: the sender's header (config, offset, failure opinions).
    Ping(Header),
    /// The sender marked `about` as FAIL.
    Fail {
        about: NodeId,
    },
    AuthRequest(VoteRequest),
    /// A vote for the receiver in `epoch`.
    AuthAck {
        epoch: u64,
    },
    /// The receiver's claim is stale: `owner` holds these slots under `config_epoch`.
    Update {
        owner: NodeId,
        config_epoch: u64,
        slots: Vec<SlotRange>,
    },
    /// Safe failover: a candidate asks a sibling for its offset in election `epoch`.
    OffsetQuery {
        epoch: u64,
    },
    /// Safe failover: the sibling's offset; it has stopped applying the old master's stream.
    OffsetReport {
        epoch: u64,
        offset: u64,
    },
}

/// Inputs from the driver.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Input {
    Message {
        from: NodeId,
        msg: ClusterMsg,
    },
    /// `now_ms` reached [`ClusterNode::poll_timeout`].
    Timeout,
    /// A PING went to `peer`.
    PingSent {
        peer: NodeId,
    },
    /// `peer` answered a PING.
    Pong {
        peer: NodeId,
    },
    /// The replication layer's offset changed.
    ReplOffset {
        offset: u64,
    },
    /// Time for periodic gossip to `peer`.
    GossipTo {
        peer: NodeId,
    },
}

/// The durable part of a node (nodes.conf `vars currentEpoch .. lastVoteEpoch ..`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Persistent {
    pub current_epoch: u64,
    pub last_vote_epoch: u64,
    pub config_epoch: u64,
}

/// Outputs to the driver, to be carried out in order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Effect {
    Send {
        to: NodeId,
        msg: ClusterMsg,
    },
    /// To every known peer.
    Broadcast {
        msg: ClusterMsg,
    },
    /// Durable before any later Send/Broadcast.
    Persist(Persistent),
    /// This replica won the election of `epoch`: promote the replication layer.
    BecameMaster {
        epoch: u64,
        offset: u64,
    },
    /// Re-point the replica link at `master`.
    FollowMaster {
        master: NodeId,
    },
    /// Safe failover: stop applying the stream of `master` (it is being failed over).
    FenceReplication {
        master: NodeId,
    },
    /// A vote was refused; for the log.
    VoteRefused {
        candidate: NodeId,
        reason: VoteRefusal,
    },
}

/// This node's own election, as a replica.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Election {
    Idle,
    /// The master is FAIL; the election starts at `start_at_ms` (the rank delay).
    Waiting {
        start_at_ms: u64,
    },
    /// Safe failover: collecting sibling offsets for `epoch`, started at `started_ms`.
    Collecting {
        epoch: u64,
        started_ms: u64,
        reports: Vec<(NodeId, u64)>,
    },
    /// AUTH_REQUEST sent for `epoch` at `started_ms`; votes so far.
    Requested {
        epoch: u64,
        started_ms: u64,
        acks: Vec<NodeId>,
    },
    /// Gave up this round (safe failover: a sibling is ahead); retry at `retry_at_ms`.
    Backoff {
        retry_at_ms: u64,
    },
}

/// One peer, as this node sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Peer {
    pub role: Role,
    pub config_epoch: u64,
    pub repl_offset: u64,
    pub health: PeerHealth,
    /// When this node last voted for a replica of this peer.
    pub voted_time_ms: Option<u64>,
}

/// A cluster node's failover state.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClusterNode {
    pub(crate) cfg: ClusterConfig,
    pub(crate) me: NodeId,
    pub(crate) role: Role,
    pub(crate) current_epoch: u64,
    pub(crate) config_epoch: u64,
    pub(crate) last_vote_epoch: u64,
    pub(crate) repl_offset: u64,
    pub(crate) peers: BTreeMap<NodeId, Peer>,
    pub(crate) slots: SlotTable,
    pub(crate) election: Election,
    /// Safe failover: this replica answered an offset query and applies no more of its
    /// master's stream.
    pub(crate) fenced: bool,
}

impl ClusterNode {
    /// A node that knows only itself; add peers and slots before feeding inputs.
    pub fn new(cfg: ClusterConfig, me: NodeId, role: Role, durable: Persistent) -> ClusterNode {
        ClusterNode {
            cfg,
            me,
            role,
            current_epoch: durable.current_epoch,
            config_epoch: durable.config_epoch,
            last_vote_epoch: durable.last_vote_epoch,
            repl_offset: 0,
            peers: BTreeMap::new(),
            slots: SlotTable::new(),
            election: Election::Idle,
            fenced: false,
        }
    }

    /// Learns a peer (from nodes.conf or CLUSTER MEET).
    pub fn add_peer(&mut self, id: NodeId, role: Role, config_epoch: u64) {
        assert_ne!(id, self.me, "a node is not its own peer");
        self.peers.insert(
            id,
            Peer {
                role,
                config_epoch,
                repl_offset: 0,
                health: PeerHealth::default(),
                voted_time_ms: None,
            },
        );
    }

    /// Sets slot ownership at start-up (nodes.conf, CLUSTER ADDSLOTS).
    pub fn assign_slots(&mut self, range: SlotRange, owner: NodeId, config_epoch: u64) {
        self.slots.assign(range, owner, config_epoch);
    }

    pub fn id(&self) -> NodeId {
        self.me
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn current_epoch(&self) -> u64 {
        self.current_epoch
    }
    pub fn config_epoch(&self) -> u64 {
        self.config_epoch
    }
    pub fn last_vote_epoch(&self) -> u64 {
        self.last_vote_epoch
    }
    pub fn repl_offset(&self) -> u64 {
        self.repl_offset
    }
    pub fn slots(&self) -> &SlotTable {
        &self.slots
    }
    pub fn election(&self) -> &Election {
        &self.election
    }
    pub fn peer(&self, id: NodeId) -> Option<&Peer> {
        self.peers.get(&id)
    }
    /// Safe failover: whether the replication layer must stop applying the master's stream.
    pub fn is_fenced(&self) -> bool {
        self.fenced
    }
    pub fn persistent(&self) -> Persistent {
        Persistent {
            current_epoch: self.current_epoch,
            last_vote_epoch: self.last_vote_epoch,
            config_epoch: self.config_epoch,
        }
    }

    /// The earliest time at which [`Input::Timeout`] has work to do.
    pub fn poll_timeout(&self) -> Option<u64> {
        let nt = self.cfg.node_timeout_ms;
        let pfail = self
            .peers
            .values()
            .filter_map(|p| p.health.pfail_deadline_ms(nt))
            .min();
        let election = match self.election {
            Election::Idle => None,
            Election::Waiting { start_at_ms } => Some(start_at_ms),
            Election::Collecting { started_ms, .. } | Election::Requested { started_ms, .. } => {
                Some(started_ms + auth_retry_ms(nt))
            }
            Election::Backoff { retry_at_ms } => Some(retry_at_ms),
        };
        [pfail, election].into_iter().flatten().min()
    }

    /// Feeds one input; returns the effects in the order they must be carried out.
    pub fn handle(&mut self, input: Input, now_ms: u64, random: u64) -> Vec<Effect> {
        let mut out = Vec::new();
        match input {
            Input::Message { from, msg } => self.on_message(from, msg, now_ms, random, &mut out),
            Input::Timeout => self.on_timeout(now_ms, random, &mut out),
            Input::PingSent { peer } => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.health.on_ping_sent(now_ms);
                }
            }
            Input::Pong { peer } => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.health.on_pong();
                }
            }
            Input::ReplOffset { offset } => self.repl_offset = offset,
            Input::GossipTo { peer } => out.push(Effect::Send {
                to: peer,
                msg: ClusterMsg::Ping(self.header()),
            }),
        }
        out
    }

    /// This node's gossip header.
    pub fn header(&self) -> Header {
        let (config_epoch, slots) = match self.role {
            Role::Master => (self.config_epoch, self.slots.ranges_of(self.me)),
            Role::Replica { master } => (
                self.peers.get(&master).map_or(0, |p| p.config_epoch),
                self.slots.ranges_of(master),
            ),
        };
        Header {
            sender: self.me,
            role: self.role,
            current_epoch: self.current_epoch,
            config_epoch,
            slots,
            repl_offset: self.repl_offset,
            suspects: self
                .peers
                .iter()
                .filter(|(_, p)| p.health.pfail || p.health.fail)
                .map(|(id, _)| *id)
                .collect(),
        }
    }

    fn on_timeout(&mut self, now_ms: u64, random: u64, out: &mut Vec<Effect>) {
        let nt = self.cfg.node_timeout_ms;
        let newly_suspected: Vec<NodeId> = self
            .peers
            .iter_mut()
            .filter_map(|(id, p)| p.health.check_timeout(now_ms, nt).then_some(*id))
            .collect();
        if !newly_suspected.is_empty() && self.role == Role::Master {
            // Redis gossips PFAIL from every node, but only a master's opinion counts as a
            // failure report, so a replica's would change nothing and is not sent.
            out.push(Effect::Broadcast {
                msg: ClusterMsg::Ping(self.header()),
            });
        }
        for peer in newly_suspected {
            self.maybe_mark_fail(peer, now_ms, random, out);
        }
        self.on_election_timeout(now_ms, random, out);
    }

    fn on_message(
        &mut self,
        from: NodeId,
        msg: ClusterMsg,
        now_ms: u64,
        random: u64,
        out: &mut Vec<Effect>,
    ) {
        match msg {
            ClusterMsg::Ping(header) if header.sender == from && from != self.me => {
                self.on_header(header, now_ms, random, out)
            }
            // A header that names someone else as its sender is a driver bug or a forgery.
            ClusterMsg::Ping(_) => {}
            ClusterMsg::Fail { about } if about != self.me => {
                let newly = match self.peers.get_mut(&about) {
                    Some(p) if !p.health.fail => {
                        p.health.fail = true;
                        true
                    }
                    _ => false,
                };
                if newly {
                    self.on_peer_failed(about, now_ms, random);
                }
            }
            // Somebody thinks we failed; the next PONG will tell them otherwise.
            ClusterMsg::Fail { .. } => {}
            ClusterMsg::AuthRequest(req) if req.candidate == from => {
                self.observe_epoch(req.epoch);
                self.on_vote_request(req, now_ms, out)
            }
            ClusterMsg::AuthRequest(_) => {}
            ClusterMsg::AuthAck { epoch } => self.on_vote(from, epoch, now_ms, out),
            ClusterMsg::Update {
                owner,
                config_epoch,
                slots,
            } => self.apply_claims(owner, config_epoch, &slots, out),
            ClusterMsg::OffsetQuery { epoch } => self.on_offset_query(from, epoch, out),
            ClusterMsg::OffsetReport { epoch, offset } => {
                self.on_offset_report(from, epoch, offset, now_ms, out)
            }
        }
    }

    /// Gossip: epochs, the sender's config and offset, failure reports, slot claims, collisions.
    fn on_header(&mut self, h: Header, now_ms: u64, random: u64, out: &mut Vec<Effect>) {
        self.observe_epoch(h.current_epoch);
        let sender = h.sender;
        let peer = self.peers.entry(sender).or_insert_with(|| Peer {
            role: h.role,
            config_epoch: 0,
            repl_offset: 0,
            health: PeerHealth::default(),
            voted_time_ms: None,
        });
        // Only siblings' offsets matter to failover (they decide the rank); recording the
        // others would make every offset change news to every node.
        if matches!(self.role, Role::Replica { master } if h.role == Role::Replica { master }) {
            peer.repl_offset = h.repl_offset;
        }
        if h.role == Role::Master {
            peer.role = Role::Master;
            peer.config_epoch = peer.config_epoch.max(h.config_epoch);
            // Failure reports: add the sender's opinions, withdraw the ones it dropped. A
            // FAIL peer needs no more reports (FAIL is sticky here), so none are kept.
            let mut suspects = Vec::new();
            for (id, p) in self
                .peers
                .iter_mut()
                .filter(|(id, p)| **id != sender && !p.health.fail)
            {
                if h.suspects.contains(id) {
                    p.health.add_report(sender, now_ms);
                    suspects.push(*id);
                } else if let Ok(i) = p.health.reports.binary_search_by_key(&sender, |r| r.0) {
                    p.health.reports.remove(i);
                }
            }
            for id in suspects {
                self.maybe_mark_fail(id, now_ms, random, out);
            }
            self.handle_collision(sender, h.config_epoch, out);
            if !h.slots.is_empty() {
                self.apply_claims(sender, h.config_epoch, &h.slots, out);
            }
        } else if peer.role != h.role && !self.slots.serves_slots(sender) {
            peer.role = h.role;
        }
    }

    fn observe_epoch(&mut self, epoch: u64) {
        self.current_epoch = self.current_epoch.max(epoch);
    }

    /// Redis's clusterHandleConfigEpochCollision: two masters with the same configEpoch; the
    /// one with the smaller node id takes a fresh epoch, so every slot ends with one owner.
    fn handle_collision(
        &mut self,
        sender: NodeId,
        sender_config_epoch: u64,
        out: &mut Vec<Effect>,
    ) {
        match self.role {
            Role::Master if sender_config_epoch == self.config_epoch && self.me < sender => {
                self.current_epoch += 1;
                self.config_epoch = self.current_epoch;
                for range in self.slots.ranges_of(self.me) {
                    self.slots.assign(range, self.me, self.config_epoch);
                }
                out.push(Effect::Persist(self.persistent()));
            }
            // No collision, or the sender is the one that must bump.
            _ => {}
        }
    }

    /// A claim (from gossip or UPDATE): the higher configEpoch wins every slot; a stale
    /// claimer gets an UPDATE; a node whose master (or itself) lost every slot follows the
    /// winner.
    fn apply_claims(
        &mut self,
        owner: NodeId,
        config_epoch: u64,
        ranges: &[SlotRange],
        out: &mut Vec<Effect>,
    ) {
        let mut changed = false;
        for &range in ranges {
            let outcome = self.slots.claim(range, owner, config_epoch);
            changed |= outcome.changed;
            // A stale claim of our own needs no UPDATE: the slots moved on under a higher
            // epoch and this table already says so.
            if let (Some(run), false) = (outcome.stale_against, owner == self.me) {
                out.push(Effect::Send {
                    to: owner,
                    msg: ClusterMsg::Update {
                        owner: run.owner.unwrap_or(owner),
                        config_epoch: run.config_epoch,
                        slots: vec![run.range],
                    },
                });
            }
        }
        if !changed {
            return;
        }
        if let Some(p) = self.peers.get_mut(&owner) {
            p.role = Role::Master;
            p.config_epoch = p.config_epoch.max(config_epoch);
        }
        match self.role {
            Role::Replica { master } if master != owner && !self.slots.serves_slots(master) => {
                self.follow(owner, out)
            }
            Role::Master if owner != self.me && !self.slots.serves_slots(self.me) => {
                self.follow(owner, out)
            }
            // Still serving, or still following a master that serves.
            _ => {}
        }
    }

    fn follow(&mut self, master: NodeId, out: &mut Vec<Effect>) {
        self.role = Role::Replica { master };
        self.election = Election::Idle;
        out.push(Effect::FollowMaster { master });
    }

    /// Promotes PFAIL to FAIL when enough masters agree (Redis's markNodeAsFailingIfNeeded).
    fn maybe_mark_fail(&mut self, about: NodeId, now_ms: u64, random: u64, out: &mut Vec<Effect>) {
        let nt = self.cfg.node_timeout_ms;
        let needed = majority(self.slots.masters_with_slots().len() as u64);
        let me_counts = u64::from(self.role == Role::Master);
        let reached = match self.peers.get_mut(&about) {
            Some(p) if p.health.pfail && !p.health.fail => {
                p.health.live_reports(now_ms, nt) + me_counts >= needed
            }
            // Not suspected by us, or already failed.
            _ => false,
        };
        if reached {
            if let Some(p) = self.peers.get_mut(&about) {
                p.health.fail = true;
            }
            out.push(Effect::Broadcast {
                msg: ClusterMsg::Fail { about },
            });
            self.on_peer_failed(about, now_ms, random);
        }
    }

    /// A peer became FAIL; if it is our master and serves slots, schedule our election.
    fn on_peer_failed(&mut self, about: NodeId, now_ms: u64, random: u64) {
        match (self.role, &self.election) {
            (Role::Replica { master }, Election::Idle)
                if master == about && self.slots.serves_slots(master) =>
            {
                self.schedule_election(now_ms, random)
            }
            // Not our master, or an election is already under way.
            _ => {}
        }
    }
}

/// How long a candidate waits for votes: max(2 * node_timeout, 2 s).
pub fn auth_timeout_ms(node_timeout_ms: u64) -> u64 {
    (2 * node_timeout_ms).max(2000)
}

/// When a candidate that did not win starts over: twice the auth timeout.
pub fn auth_retry_ms(node_timeout_ms: u64) -> u64 {
    2 * auth_timeout_ms(node_timeout_ms)
}

#[cfg(test)]
mod tests {
    use super::super::election::tests::{cluster_node, id, request, NT};
    use super::*;

    fn ping_unanswered(node: &mut ClusterNode, peer: u16) {
        node.handle(Input::PingSent { peer: id(peer) }, 0, 0);
    }

    fn gossip(node: &mut ClusterNode, from: u16, suspects: &[u16], now_ms: u64) -> Vec<Effect> {
        let mut h = cluster_node(from, false).header();
        h.suspects = suspects.iter().map(|&i| id(i)).collect();
        node.handle(
            Input::Message {
                from: id(from),
                msg: ClusterMsg::Ping(h),
            },
            now_ms,
            0,
        )
    }

    fn fail_broadcast(out: &[Effect], about: u16) -> bool {
        out.contains(&Effect::Broadcast {
            msg: ClusterMsg::Fail { about: id(about) },
        })
    }

    #[test]
    fn a_master_gossips_a_new_suspicion_a_replica_does_not() {
        let mut master = cluster_node(2, false);
        ping_unanswered(&mut master, 1);
        assert!(master.handle(Input::Timeout, NT, 0).is_empty(), "not yet");
        let out = master.handle(Input::Timeout, NT + 1, 0);
        assert!(
            matches!(&out[..], [Effect::Broadcast { msg: ClusterMsg::Ping(h) }]
            if h.suspects == vec![id(1)])
        );
        assert!(
            master.handle(Input::Timeout, NT + 2, 0).is_empty(),
            "not new"
        );
        let mut replica = cluster_node(4, false);
        ping_unanswered(&mut replica, 1);
        assert!(replica.handle(Input::Timeout, NT + 1, 0).is_empty());
        assert_eq!(
            replica.header().suspects,
            vec![id(1)],
            "PFAIL is in the header"
        );
    }

    #[test]
    fn fail_needs_a_majority_of_masters_counting_a_master_itself_but_not_a_replica() {
        // Master 2 suspects 1; master 3's report makes 2 of 3.
        let mut master = cluster_node(2, false);
        ping_unanswered(&mut master, 1);
        master.handle(Input::Timeout, NT + 1, 0);
        let out = gossip(&mut master, 3, &[1], NT + 2);
        assert!(fail_broadcast(&out, 1));
        // FAIL is settled: reports about node 1 are no longer kept up to date; and a sender
        // never reports about itself.
        gossip(&mut master, 3, &[3], NT + 3);
        let reports =
            |n: &ClusterNode, about: u16| n.peer(id(about)).map(|p| p.health.reports.len());
        assert_eq!(reports(&master, 1), Some(1));
        assert_eq!(reports(&master, 3), Some(0));
        // A replica's own suspicion does not count: one report is not enough, two are.
        let mut replica = cluster_node(4, false);
        ping_unanswered(&mut replica, 1);
        replica.handle(Input::Timeout, NT + 1, 0);
        assert!(!fail_broadcast(&gossip(&mut replica, 3, &[1], NT + 2), 1));
        let out = gossip(&mut replica, 2, &[1], NT + 3);
        assert!(fail_broadcast(&out, 1));
        assert!(matches!(replica.election(), Election::Waiting { .. }));
        // Reports older than twice the node timeout no longer count.
        let mut late = cluster_node(4, false);
        ping_unanswered(&mut late, 1);
        late.handle(Input::Timeout, NT + 1, 0);
        gossip(&mut late, 3, &[1], NT + 2);
        let out = gossip(&mut late, 2, &[1], NT + 2 + 2 * NT + 1);
        assert!(!fail_broadcast(&out, 1));
        // Reports about a peer we do not suspect ourselves never make FAIL.
        let mut trusting = cluster_node(4, false);
        gossip(&mut trusting, 3, &[1], 0);
        assert!(!fail_broadcast(&gossip(&mut trusting, 2, &[1], 0), 1));
    }

    #[test]
    fn forged_or_self_addressed_messages_are_ignored() {
        let mut voter = cluster_node(2, false);
        let forged = Input::Message {
            from: id(5),
            msg: ClusterMsg::AuthRequest(request(4, 4)),
        };
        voter.handle(
            Input::Message {
                from: id(3),
                msg: ClusterMsg::Fail { about: id(1) },
            },
            0,
            0,
        );
        assert!(
            voter.handle(forged, 0, 0).is_empty(),
            "candidate is not the sender"
        );
        let before = voter.clone();
        let mut h = cluster_node(1, false).header();
        h.config_epoch = 50;
        let other_sender = Input::Message {
            from: id(3),
            msg: ClusterMsg::Ping(h.clone()),
        };
        assert!(voter.handle(other_sender, 0, 0).is_empty());
        assert_eq!(
            voter, before,
            "a header naming another sender changes nothing"
        );
        let mut me = cluster_node(2, false).header();
        me.current_epoch = 50;
        voter.handle(
            Input::Message {
                from: id(2),
                msg: ClusterMsg::Ping(me),
            },
            0,
            0,
        );
        assert_eq!(voter, before, "our own header changes nothing");
    }

    #[test]
    fn a_second_fail_message_about_a_failed_peer_changes_nothing() {
        let fail = Input::Message {
            from: id(3),
            msg: ClusterMsg::Fail { about: id(1) },
        };
        let mut replica = cluster_node(4, false);
        replica.handle(fail.clone(), 0, 0);
        replica.election = Election::Idle;
        replica.handle(fail, 0, 0);
        assert_eq!(replica.election(), &Election::Idle);
    }

    #[test]
    fn a_node_follows_a_claimer_only_once_it_or_its_master_lost_every_slot() {
        let update = |ranges: Vec<SlotRange>| Input::Message {
            from: id(4),
            msg: ClusterMsg::Update {
                owner: id(4),
                config_epoch: 9,
                slots: ranges,
            },
        };
        let mut master = cluster_node(1, false);
        master.handle(update(vec![SlotRange::new(0, 100)]), 0, 0);
        assert_eq!(master.role(), Role::Master, "still serves 101..5460");
        let out = master.handle(update(vec![SlotRange::new(101, 5460)]), 0, 0);
        assert!(out.contains(&Effect::FollowMaster { master: id(4) }));
        assert_eq!(master.role(), Role::Replica { master: id(4) });

        let mut sibling = cluster_node(5, false);
        sibling.handle(update(vec![SlotRange::new(0, 100)]), 0, 0);
        assert_eq!(sibling.role(), Role::Replica { master: id(1) });
        sibling.handle(update(vec![SlotRange::new(101, 5460)]), 0, 0);
        assert_eq!(sibling.role(), Role::Replica { master: id(4) });

        let mut other = cluster_node(2, false);
        other.handle(update(vec![SlotRange::new(0, 5460)]), 0, 0);
        assert_eq!(other.role(), Role::Master, "node 2 keeps its own slots");
    }

    #[test]
    fn a_replica_header_changes_the_role_only_of_a_node_without_slots() {
        let mut node = cluster_node(2, false);
        let mut h = cluster_node(1, false).header();
        h.role = Role::Replica { master: id(3) };
        node.handle(
            Input::Message {
                from: id(1),
                msg: ClusterMsg::Ping(h),
            },
            0,
            0,
        );
        assert_eq!(node.peer(id(1)).map(|p| p.role), Some(Role::Master));
        let mut h = cluster_node(5, false).header();
        h.role = Role::Replica { master: id(2) };
        node.handle(
            Input::Message {
                from: id(5),
                msg: ClusterMsg::Ping(h),
            },
            0,
            0,
        );
        assert_eq!(
            node.peer(id(5)).map(|p| p.role),
            Some(Role::Replica { master: id(2) })
        );
    }

    #[test]
    fn the_node_timeout_must_be_between_one_ms_and_one_day() {
        assert_eq!(NODE_TIMEOUT_MAX_MS, 86_400_000);
        assert_eq!(
            ClusterConfig::new(0).validate(),
            Err(ConfigError::NodeTimeoutOutOfRange { node_timeout_ms: 0 })
        );
        assert_eq!(ClusterConfig::new(1).validate(), Ok(()));
        assert_eq!(ClusterConfig::new(NODE_TIMEOUT_MAX_MS).validate(), Ok(()));
        assert!(ClusterConfig::new(NODE_TIMEOUT_MAX_MS + 1)
            .validate()
            .is_err());
        assert_eq!(
            ConfigError::NodeTimeoutOutOfRange { node_timeout_ms: 0 }.to_string(),
            "cluster-node-timeout 0 must be between 1 and 86400000 ms"
        );
        let mut bugged = ClusterConfig::new(15_000);
        bugged.planted_bug = Some(PlantedBug::VoteTwicePerEpoch);
        assert_eq!(bugged.validate(), Err(ConfigError::PlantedBugInProduction));
    }
}
