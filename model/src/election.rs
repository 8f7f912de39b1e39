//! # The failover election model
//!
//! A stateright model of Redis Cluster's replica failover election, run over the real
//! `verdis_core::cluster` types: every protocol decision is made by `ClusterNode::handle`;
//! this module only plays the environment (network, clock, clients, replication stream,
//! faults) and records ghost state for the properties.
//!
//! ## The scenario
//! Three masters serve a third of the slots each (configEpochs 1, 2, 3; currentEpoch 3).
//! Master `n1` has `replicas` replicas (`n4`, `n5`, ...). Clients write to `n1` (up to
//! `writes` times); each write increments `n1`'s replication offset; the stream reaches each
//! replica asynchronously, one write at a time; a client's `WAIT` is acknowledged as soon as
//! enough replicas hold a write (one under Redis semantics; a majority of the replicas under
//! safe failover). Then `n1` crashes for good, and the rest must elect one of its replicas.
//!
//! ## Environment and abstractions (and why they are safe)
//! - **Nodes** are `ClusterNode`s fed through [`ElectionModel::step`], a thin adapter that
//!   turns effects into network sends and ghost records. Nothing else touches node state.
//! - **Network, delay-bounded**: messages in flight form one queue in sending order, the
//!   canonical schedule. Delivering a later message first (only if it is the oldest on its
//!   own link, which TCP keeps in order) is a *delay* and costs one unit of `fault_budget`.
//!   So every execution with at most `fault_budget` deviations from the canonical schedule is
//!   explored (delay-bounded scheduling), not every interleaving; the `free_reordering` mode
//!   makes reordering free, for cross-checks on small budgets. Messages to the crashed master
//!   vanish.
//! - **Time** is one global clock, frozen at 0 until the crash (nothing time-driven happens
//!   while the master is healthy: every PING would be answered). After the crash, a node's
//!   timer fires at its `poll_timeout` deadline, and only the earliest deadline may fire.
//!   Before the crash every node has an unanswered PING to `n1`, sent at time 0.
//!   Clocks do not drift; Redis relies on time only for liveness, so safety properties are
//!   not weakened by this, but timer races between nodes are explored only through faults.
//! - **Synchrony and faults**: by default the system is synchronous: a timer fires only when
//!   no message is in flight and no gossip is pending (messages are faster than the election
//!   delays). Each fault spends one unit of `fault_budget`: a message is delayed (above), a
//!   message is lost, or a timer fires while messages are still in flight (split votes need
//!   such a race and a delay). Once the budget is spent the system is synchronous again,
//!   which is what liveness relies on.
//! - **Gossip** (Redis's periodic PING/PONG) is modelled only when it carries news: `Gossip`
//!   from `a` to `b` is enabled iff nothing is in flight and delivering `a`'s header now would
//!   change `b` (the first such pair, one ping at a time). Pings that
//!   change nothing are left out; they cannot enable anything new when they arrive, except
//!   as stale headers, whose effect equals a header that changes nothing (claims are ordered
//!   by configEpoch, epochs by max).
//! - **Randomness**: the election delay's random part is 0; with a global clock it only
//!   orders equally ranked replicas, and both orders are explored anyway.
//! - **Not modelled**: restarts (the durable state is not exercised), the old master coming
//!   back, false suspicion of a live master, manual failover, replicas of `n2`/`n3`, slot
//!   migration. The replication stream is an offset, not bytes (the replication model checks
//!   the stream itself).
//!
//! ## Properties
//! Listed in [`ElectionModel::properties`], each with the hazard it guards against; liveness
//! ("the failed master's shard gets exactly one new master that all nodes agree on") is
//! checked exactly by [`crate::liveness`] with [`ElectionModel::fairness_class`] and
//! [`ElectionModel::converged`].

use serde::{Deserialize, Serialize};
use stateright::{Model, Property};
use std::collections::VecDeque;
use verdis_core::cluster::{
    election::wait_ack_quorum, ClusterConfig, ClusterMsg, ClusterNode, Effect, Input, NodeId,
    Persistent, PlantedBug, Role, SlotRange,
};

/// Index of the master that fails.
pub const FAILING: usize = 0;
/// Masters in the cluster (a majority of them must survive).
pub const MASTERS: usize = 3;
/// The node timeout; any value gives the same graph, only the clock readings differ.
pub const NODE_TIMEOUT_MS: u64 = 1000;
/// The first slot of each master's range.
const SHARD_FIRST_SLOTS: [u16; MASTERS] = [0, 5461, 10923];

/// One configuration of the model.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ElectionConfig {
    /// Replicas of the failing master (1..=3).
    pub replicas: usize,
    /// Client writes to the failing master.
    pub writes: u64,
    /// Faults: lost messages plus timers firing while messages are in flight.
    pub fault_budget: u8,
    pub safe_failover: bool,
    pub planted_bug: Option<PlantedBug>,
    /// Cross-check mode: any message that is the oldest on its link may be delivered at no
    /// cost (every interleaving of deliveries), instead of the delay-bounded order.
    pub free_reordering: bool,
}

impl Default for ElectionConfig {
    fn default() -> Self {
        ElectionConfig {
            replicas: 2,
            writes: 1,
            fault_budget: 2,
            safe_failover: false,
            planted_bug: None,
            free_reordering: false,
        }
    }
}

/// The model.
#[derive(Clone, Debug)]
pub struct ElectionModel {
    pub cfg: ElectionConfig,
    /// Check only properties whose name contains one of these (all when empty).
    pub only: Vec<String>,
}

/// Property names, for tests and the report.
pub mod names {
    pub const ELECTION_SAFETY: &str = "Election Safety: at most one winner per epoch";
    pub const VOTE_SAFETY: &str = "Vote Safety: a master votes at most once per epoch";
    pub const SLOT_SAFETY: &str = "Slot Safety: one owner per slot per configEpoch";
    pub const ELECTED: &str = "A replica is elected";
    pub const WON_AFTER_SPLIT: &str = "An election is won after a split vote";
    pub const SAFE_FAILOVER_NO_LOSS: &str = "Safe failover: no WAIT-acknowledged write is lost";
    pub const REDIS_WAIT_LOSS: &str = "Redis semantics: a WAIT-acknowledged write is lost";
    pub const LIVENESS: &str =
        "the failed master's shard gets exactly one new master that all nodes agree on (weak fairness)";
}

/// A vote as observed on the wire: `voter` sent AUTH_ACK for `epoch` to `candidate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Vote {
    pub epoch: u64,
    pub voter: NodeId,
    pub candidate: NodeId,
}

/// An election win: `winner` promoted itself in `epoch` holding `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Win {
    pub epoch: u64,
    pub winner: NodeId,
    pub offset: u64,
}

/// The global state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ElectionState {
    pub now_ms: u64,
    pub nodes: Vec<ClusterNode>,
    pub master_failed: bool,
    /// Messages in flight, oldest first (the canonical delivery order).
    pub in_flight: VecDeque<Envelope>,
    /// Writes the failing master accepted (its replication offset).
    pub master_offset: u64,
    pub faults_left: u8,
    /// Ghost: the highest offset acknowledged to a client's WAIT.
    pub acked_offset: u64,
    /// Ghost: every vote sent, sorted.
    pub votes: Vec<Vote>,
    /// Ghost: every election won, sorted.
    pub wins: Vec<Win>,
}

/// A message in flight.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Envelope {
    pub src: usize,
    pub dst: usize,
    pub msg: ClusterMsg,
}

/// What can happen next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ElectionAction {
    /// A client writes to the failing master.
    Write,
    /// The next write reaches replica `node`.
    Replicate(usize),
    /// The failing master crashes (for good).
    Crash,
    /// The `index`-th oldest message in flight arrives; any `index` but 0 is a fault (a
    /// delay of the older messages), allowed only if it is the oldest on its link.
    Deliver { index: usize },
    /// Fault: the `index`-th oldest message in flight (the oldest on its link) is lost.
    Drop { index: usize },
    /// Periodic gossip from `src` to `dst` (only when it carries news).
    Gossip { src: usize, dst: usize },
    /// `node`'s deadline, the earliest, is reached; `early` (a fault) if messages or gossip
    /// are still pending.
    Timeout { node: usize, early: bool },
}

/// Fairness classes for the liveness checker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FairClass {
    Replicate(usize),
    Crash,
    Deliver,
    DeliverOnLink(usize, usize),
    Gossip(usize, usize),
    Timeout(usize),
}

fn id(index: usize) -> NodeId {
    NodeId::from_index(index as u16 + 1)
}

impl ElectionModel {
    pub fn new(cfg: ElectionConfig) -> ElectionModel {
        assert!((1..=3).contains(&cfg.replicas), "1 to 3 replicas");
        ElectionModel {
            cfg,
            only: Vec::new(),
        }
    }

    /// Restricts the checked properties to those whose name contains one of `filters`.
    pub fn only(mut self, filters: Vec<String>) -> ElectionModel {
        self.only = filters;
        self
    }

    pub fn node_count(&self) -> usize {
        MASTERS + self.cfg.replicas
    }

    fn is_original_replica(&self, i: usize) -> bool {
        i >= MASTERS
    }

    fn alive(&self, s: &ElectionState, i: usize) -> bool {
        i != FAILING || !s.master_failed
    }

    /// The initial cluster, as each node's nodes.conf would describe it.
    fn initial_node(&self, me: usize) -> ClusterNode {
        let mut cfg = ClusterConfig::new(NODE_TIMEOUT_MS);
        cfg.safe_failover = self.cfg.safe_failover;
        cfg.planted_bug = self.cfg.planted_bug;
        let role = |i: usize| match i < MASTERS {
            true => Role::Master,
            false => Role::Replica {
                master: id(FAILING),
            },
        };
        let config_epoch = |i: usize| if i < MASTERS { i as u64 + 1 } else { 1 };
        let durable = Persistent {
            current_epoch: MASTERS as u64,
            last_vote_epoch: 0,
            config_epoch: config_epoch(me),
        };
        let mut node = ClusterNode::new(cfg, id(me), role(me), durable);
        for i in (0..self.node_count()).filter(|&i| i != me) {
            node.add_peer(id(i), role(i), config_epoch(i));
        }
        for (m, &first) in SHARD_FIRST_SLOTS.iter().enumerate() {
            let end = SHARD_FIRST_SLOTS.get(m + 1).map_or(16383, |next| next - 1);
            node.assign_slots(SlotRange::new(first, end), id(m), config_epoch(m));
        }
        if me != FAILING {
            node.handle(Input::PingSent { peer: id(FAILING) }, 0, 0);
        }
        node
    }

    /// The thin adapter: feed one input to node `i` and carry out its effects.
    pub fn step(&self, s: &mut ElectionState, i: usize, input: Input) {
        let now = s.now_ms;
        let effects = s.nodes[i].handle(input, now, 0);
        let n = self.node_count();
        for effect in effects {
            match effect {
                Effect::Send { to, msg } => {
                    if let Some(dst) = (0..n).find(|&d| id(d) == to) {
                        if let ClusterMsg::AuthAck { epoch } = msg {
                            let vote = Vote {
                                epoch,
                                voter: id(i),
                                candidate: to,
                            };
                            if let Err(at) = s.votes.binary_search(&vote) {
                                s.votes.insert(at, vote);
                            }
                        }
                        if self.alive(s, dst) {
                            s.in_flight.push_back(Envelope { src: i, dst, msg });
                        }
                    }
                }
                Effect::Broadcast { msg } => {
                    let failed = s.master_failed;
                    for dst in (0..n).filter(|&d| d != i && (d != FAILING || !failed)) {
                        s.in_flight.push_back(Envelope {
                            src: i,
                            dst,
                            msg: msg.clone(),
                        });
                    }
                }
                Effect::BecameMaster { epoch, offset } => {
                    let win = Win {
                        epoch,
                        winner: id(i),
                        offset,
                    };
                    if let Err(at) = s.wins.binary_search(&win) {
                        s.wins.insert(at, win);
                    }
                }
                // No restarts are modelled, so durability is not exercised; the replication
                // layer's reactions are read back from the node (`is_fenced`, `role`).
                Effect::Persist(_)
                | Effect::FollowMaster { .. }
                | Effect::FenceReplication { .. }
                | Effect::VoteRefused { .. } => {}
            }
        }
    }

    /// Whether the message at `index` is the oldest in flight on its link (TCP order).
    fn oldest_on_link(&self, s: &ElectionState, index: usize) -> bool {
        let e = &s.in_flight[index];
        !s.in_flight
            .iter()
            .take(index)
            .any(|o| o.src == e.src && o.dst == e.dst)
    }

    /// Whether gossip from `src` would change `dst` now.
    fn gossip_is_news(&self, s: &ElectionState, src: usize, dst: usize) -> bool {
        let mut probe = s.nodes[dst].clone();
        probe.handle(
            Input::Message {
                from: id(src),
                msg: ClusterMsg::Ping(s.nodes[src].header()),
            },
            s.now_ms,
            0,
        );
        probe != s.nodes[dst]
    }

    /// The first (src, dst) pair, in index order, whose gossip would be news. Gossip is sent
    /// only when nothing is in flight, one ping at a time.
    fn pending_gossip(&self, s: &ElectionState) -> Option<(usize, usize)> {
        if !s.in_flight.is_empty() {
            return None;
        }
        let n = self.node_count();
        let live = |i: usize| self.alive(s, i);
        (0..n)
            .filter(|&a| live(a))
            .flat_map(|a| (0..n).map(move |b| (a, b)))
            .find(|&(a, b)| a != b && live(b) && self.gossip_is_news(s, a, b))
    }

    /// The earliest deadline among live nodes, once the master has failed.
    fn earliest_deadline(&self, s: &ElectionState) -> Option<u64> {
        if !s.master_failed {
            return None;
        }
        (0..self.node_count())
            .filter(|&i| self.alive(s, i))
            .filter_map(|i| s.nodes[i].poll_timeout())
            .min()
    }

    fn can_replicate(&self, s: &ElectionState, r: usize) -> bool {
        let node = &s.nodes[r];
        self.is_original_replica(r)
            && node.role()
                == (Role::Replica {
                    master: id(FAILING),
                })
            && !node.is_fenced()
            && node.repl_offset() < s.master_offset
    }

    /// The offset a WAIT acknowledges right now: the highest offset held by the quorum.
    fn waitable_offset(&self, s: &ElectionState) -> u64 {
        let mut offsets: Vec<u64> = (MASTERS..self.node_count())
            .map(|r| s.nodes[r].repl_offset())
            .collect();
        offsets.sort_unstable_by(|a, b| b.cmp(a));
        let quorum = wait_ack_quorum(self.cfg.safe_failover, 1, self.cfg.replicas as u64);
        offsets.get(quorum as usize - 1).copied().unwrap_or(0)
    }

    /// Liveness goal: the failed master's slots have one new owner, a live master, and every
    /// live node's slot table agrees on it.
    pub fn converged(&self, s: &ElectionState) -> bool {
        if !s.master_failed {
            return false;
        }
        let owner = s.nodes[1].slots().owner_of(0).clone();
        let Some(new_master) = owner.owner else {
            return false;
        };
        let Some(m) = (0..self.node_count()).find(|&i| id(i) == new_master) else {
            return false;
        };
        m != FAILING
            && s.nodes[m].role() == Role::Master
            && (1..self.node_count()).all(|i| s.nodes[i].slots().owner_of(0) == &owner)
    }

    /// Weak-fairness class of an action; faults and client writes get none.
    pub fn fairness_class(&self, s: &ElectionState, a: &ElectionAction) -> Option<FairClass> {
        match *a {
            ElectionAction::Deliver { index } if self.cfg.free_reordering => s
                .in_flight
                .get(index)
                .map(|e| FairClass::DeliverOnLink(e.src, e.dst)),
            ElectionAction::Write | ElectionAction::Drop { .. } => None,
            ElectionAction::Replicate(r) => Some(FairClass::Replicate(r)),
            ElectionAction::Crash => Some(FairClass::Crash),
            ElectionAction::Deliver { index: 0 } => Some(FairClass::Deliver),
            ElectionAction::Deliver { .. } => None,
            ElectionAction::Gossip { src, dst } => Some(FairClass::Gossip(src, dst)),
            // A timer racing in-flight messages is a fault; in a quiet network it is due.
            ElectionAction::Timeout { node, early: false } => Some(FairClass::Timeout(node)),
            ElectionAction::Timeout { early: true, .. } => None,
        }
    }
}

impl Model for ElectionModel {
    type State = ElectionState;
    type Action = ElectionAction;

    fn init_states(&self) -> Vec<ElectionState> {
        let n = self.node_count();
        vec![ElectionState {
            now_ms: 0,
            nodes: (0..n).map(|i| self.initial_node(i)).collect(),
            master_failed: false,
            in_flight: VecDeque::new(),
            master_offset: 0,
            faults_left: self.cfg.fault_budget,
            acked_offset: 0,
            votes: Vec::new(),
            wins: Vec::new(),
        }]
    }

    fn actions(&self, s: &ElectionState, actions: &mut Vec<ElectionAction>) {
        let n = self.node_count();
        if !s.master_failed {
            if s.master_offset < self.cfg.writes {
                actions.push(ElectionAction::Write);
            }
            actions.push(ElectionAction::Crash);
        }
        for r in MASTERS..n {
            if self.can_replicate(s, r) {
                actions.push(ElectionAction::Replicate(r));
            }
        }
        if !s.in_flight.is_empty() {
            actions.push(ElectionAction::Deliver { index: 0 });
        }
        let reorder = s.faults_left > 0 || self.cfg.free_reordering;
        for index in (1..s.in_flight.len()).filter(|&i| reorder && self.oldest_on_link(s, i)) {
            actions.push(ElectionAction::Deliver { index });
        }
        if s.faults_left > 0 {
            for index in (0..s.in_flight.len()).filter(|&i| self.oldest_on_link(s, i)) {
                actions.push(ElectionAction::Drop { index });
            }
        }
        let gossip = self.pending_gossip(s);
        if let Some((src, dst)) = gossip {
            actions.push(ElectionAction::Gossip { src, dst });
        }
        if let Some(deadline) = self.earliest_deadline(s) {
            let early = !s.in_flight.is_empty() || gossip.is_some();
            if s.faults_left > 0 || !early {
                for node in (0..n).filter(|&i| self.alive(s, i)) {
                    if s.nodes[node].poll_timeout() == Some(deadline) {
                        actions.push(ElectionAction::Timeout { node, early });
                    }
                }
            }
        }
    }

    fn next_state(&self, last: &ElectionState, action: ElectionAction) -> Option<ElectionState> {
        let mut s = last.clone();
        match action {
            ElectionAction::Write => {
                s.master_offset += 1;
                let offset = s.master_offset;
                self.step(&mut s, FAILING, Input::ReplOffset { offset });
            }
            ElectionAction::Replicate(r) => {
                let offset = s.nodes[r].repl_offset() + 1;
                self.step(&mut s, r, Input::ReplOffset { offset });
                if !s.master_failed {
                    // The replica's REPLCONF ACK reaches the live master, which answers WAIT.
                    s.acked_offset = s.acked_offset.max(self.waitable_offset(&s));
                }
            }
            ElectionAction::Crash => {
                s.master_failed = true;
                s.in_flight.retain(|e| e.dst != FAILING);
            }
            ElectionAction::Deliver { index } => {
                if index > 0 && !self.cfg.free_reordering {
                    s.faults_left = s.faults_left.checked_sub(1)?;
                }
                let e = s.in_flight.remove(index)?;
                self.step(
                    &mut s,
                    e.dst,
                    Input::Message {
                        from: id(e.src),
                        msg: e.msg,
                    },
                );
            }
            ElectionAction::Drop { index } => {
                s.in_flight.remove(index)?;
                s.faults_left = s.faults_left.checked_sub(1)?;
            }
            ElectionAction::Gossip { src, dst } => {
                self.step(&mut s, src, Input::GossipTo { peer: id(dst) });
            }
            ElectionAction::Timeout { node, early } => {
                if early {
                    s.faults_left = s.faults_left.checked_sub(1)?;
                }
                s.now_ms = s.now_ms.max(last.nodes[node].poll_timeout()?);
                self.step(&mut s, node, Input::Timeout);
            }
        }
        Some(s)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let mut properties = vec![
            // Two winners in one epoch would both claim the slots with the same configEpoch:
            // split brain (the reason for lastVoteEpoch and majority votes).
            Property::always(names::ELECTION_SAFETY, |_, s: &ElectionState| {
                s.wins.windows(2).all(|w| w[0].epoch != w[1].epoch)
            }),
            // A master that forgets its vote (not persisted before AUTH_ACK, or a missing
            // lastVoteEpoch check) lets two candidates reach a majority in one epoch.
            Property::always(names::VOTE_SAFETY, |_, s: &ElectionState| {
                s.votes
                    .windows(2)
                    .all(|w| (w[0].epoch, w[0].voter) != (w[1].epoch, w[1].voter))
            }),
            // Every node's slot table must agree on who holds a slot under a given configEpoch,
            // or two masters serve the same slot (the configEpoch collision hazard).
            Property::always(names::SLOT_SAFETY, |m: &ElectionModel, s| {
                m.one_owner_per_slot_epoch(s)
            }),
            // Non-vacuity: the scenario does reach an election.
            Property::sometimes(names::ELECTED, |_, s: &ElectionState| !s.wins.is_empty()),
        ];
        if self.cfg.fault_budget >= 2 {
            // Non-vacuity: the retry path after a split vote is exercised. A split needs two
            // faults (a timer firing early and a delayed request), so smaller budgets skip it.
            properties.push(Property::sometimes(
                names::WON_AFTER_SPLIT,
                |_, s: &ElectionState| won_after_split_vote(s),
            ));
        }
        if self.cfg.safe_failover {
            // Redis's WAIT counts acks only, so a replica that lacks an acknowledged write
            // can win (valkey#743); safe failover must close that hole.
            properties.push(Property::always(
                names::SAFE_FAILOVER_NO_LOSS,
                |_, s: &ElectionState| s.wins.iter().all(|w| w.offset >= s.acked_offset),
            ));
        } else {
            // Redis semantics: the hole exists; this example is the counterexample that
            // motivates safe failover (a stale replica wins, as in valkey#885 and valkey#743).
            properties.push(Property::sometimes(
                names::REDIS_WAIT_LOSS,
                |_, s: &ElectionState| s.wins.iter().any(|w| w.offset < s.acked_offset),
            ));
        }
        properties.retain(|p| {
            self.only.is_empty() || self.only.iter().any(|o| p.name.contains(o.as_str()))
        });
        properties
    }
}

impl ElectionModel {
    fn one_owner_per_slot_epoch(&self, s: &ElectionState) -> bool {
        SHARD_FIRST_SLOTS.iter().all(|&slot| {
            let mut seen: Vec<(u64, Option<NodeId>)> = s
                .nodes
                .iter()
                .map(|node| {
                    let run = node.slots().owner_of(slot);
                    (run.config_epoch, run.owner)
                })
                .collect();
            seen.sort();
            seen.dedup();
            seen.windows(2).all(|w| w[0].0 != w[1].0)
        })
    }
}

/// Some epoch's votes went to two candidates, and a later epoch was won.
fn won_after_split_vote(s: &ElectionState) -> bool {
    s.votes.iter().enumerate().any(|(i, a)| {
        s.votes[i + 1..]
            .iter()
            .take_while(|b| b.epoch == a.epoch)
            .any(|b| b.candidate != a.candidate)
            && s.wins.iter().any(|win| win.epoch > a.epoch)
    })
}

/// What `verdis-check check --model election` prints and decides.
pub struct CheckOpts {
    pub threads: usize,
    pub bfs: bool,
    pub liveness: bool,
}

/// Runs the safety check (and optionally the exact liveness check) of one configuration,
/// printing a progress line, a summary and every discovery as a step list. Returns whether
/// every property held as expected.
pub fn run_check(cfg: &ElectionConfig, opts: &CheckOpts) -> bool {
    let model = ElectionModel::new(cfg.clone());
    println!("election model: {cfg:?}");
    let started = std::time::Instant::now();
    let builder = model.clone().checker().threads(opts.threads.max(1));
    if opts.bfs {
        summarize(&model, builder.spawn_bfs(), started, opts)
    } else {
        summarize(&model, builder.spawn_dfs(), started, opts)
    }
}

fn summarize(
    model: &ElectionModel,
    checker: impl stateright::Checker<ElectionModel>,
    started: std::time::Instant,
    opts: &CheckOpts,
) -> bool {
    use crate::report::Reported;
    use stateright::Expectation;
    use std::time::{Duration, Instant};
    while !checker.is_done() {
        std::thread::sleep(Duration::from_millis(500));
        eprint!(
            "\r  {} unique states, {} s   ",
            checker.unique_state_count(),
            started.elapsed().as_secs()
        );
    }
    let checker = checker.join();
    let secs = started.elapsed().as_secs_f64();
    eprintln!();
    println!(
        "states {} unique {} depth {} time {:.2} s ({:.0} unique states/s)",
        checker.state_count(),
        checker.unique_state_count(),
        checker.max_depth(),
        secs,
        checker.unique_state_count() as f64 / secs.max(1e-9)
    );
    let mut ok = true;
    for property in model.properties() {
        let found = checker.discovery(property.name);
        let (pass, verdict) = match (&property.expectation, &found) {
            (Expectation::Sometimes, Some(_)) => (true, "example found"),
            (Expectation::Sometimes, None) => (false, "NO EXAMPLE"),
            (_, None) => (true, "holds"),
            (_, Some(_)) => (false, "VIOLATED"),
        };
        ok &= pass;
        println!(
            "  [{}] {}: {verdict}",
            if pass { "ok" } else { "FAIL" },
            property.name
        );
        if let (Some(path), false) | (Some(path), true) = (found, pass) {
            if !pass || property.name.starts_with("Redis semantics") {
                let steps = path.into_vec().into_iter();
                let steps = steps.filter_map(|(state, action)| Some((state, action?)));
                for (i, (state, action)) in steps.enumerate() {
                    println!("      {:>3}. {}", i + 1, model.describe(&state, &action));
                }
            }
        }
    }
    if opts.liveness {
        let started = Instant::now();
        let report = crate::liveness::check_eventually(
            model,
            |s| model.converged(s),
            |s, a| model.fairness_class(s, a),
            5_000_000,
        );
        println!(
            "liveness (one agreed new master, weak fairness): {} states, {} edges, {} non-trivial SCCs, {:.2} s",
            report.states,
            report.edges,
            report.components,
            started.elapsed().as_secs_f64()
        );
        match &report.outcome {
            crate::liveness::Outcome::Holds => println!("  [ok] every fair execution converges"),
            crate::liveness::Outcome::Incomplete { reason } => {
                ok = false;
                println!("  [FAIL] incomplete: {reason}");
            }
            crate::liveness::Outcome::Violated(lasso) => {
                ok = false;
                let kind = if lasso.is_deadlock() {
                    "deadlock"
                } else {
                    "fair cycle"
                };
                println!("  [FAIL] {kind} that never converges; prefix:");
                let mut before = &lasso.init;
                for (i, (action, after)) in lasso.prefix.iter().enumerate() {
                    println!("      {:>3}. {}", i + 1, model.describe(before, action));
                    before = after;
                }
                for (i, (action, after)) in lasso.cycle.iter().enumerate() {
                    println!("    cycle {:>3}. {}", i + 1, model.describe(before, action));
                    before = after;
                }
            }
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::liveness::{check_eventually, LivenessReport};
    use stateright::Checker;

    fn cfg(
        fault_budget: u8,
        safe_failover: bool,
        planted_bug: Option<PlantedBug>,
    ) -> ElectionConfig {
        ElectionConfig {
            fault_budget,
            safe_failover,
            planted_bug,
            ..ElectionConfig::default()
        }
    }

    fn check(cfg: ElectionConfig) -> impl Checker<ElectionModel> {
        ElectionModel::new(cfg)
            .checker()
            .threads(2)
            .spawn_dfs()
            .join()
    }

    fn liveness(cfg: ElectionConfig) -> LivenessReport<ElectionState, ElectionAction> {
        let model = ElectionModel::new(cfg);
        check_eventually(
            &model,
            |s| model.converged(s),
            |s, a| model.fairness_class(s, a),
            2_000_000,
        )
    }

    #[test]
    fn unique_state_counts_are_pinned_so_model_drift_is_noticed() {
        for (budget, safe, expected) in [(0, false, 2_729), (1, false, 37_222), (1, true, 32_181)] {
            let checker = check(cfg(budget, safe, None));
            assert_eq!(
                checker.unique_state_count(),
                expected,
                "budget {budget}, safe {safe}"
            );
        }
    }

    #[test]
    fn default_configuration_passes_every_property_and_shows_the_redis_wait_loss() {
        let checker = check(ElectionConfig::default());
        checker.assert_properties();
        assert_eq!(checker.unique_state_count(), 344_907);
        let path = checker
            .discovery("Redis semantics: a WAIT-acknowledged write is lost")
            .expect("Redis semantics lose a WAIT-acknowledged write");
        let last = path.last_state();
        assert!(last.wins.iter().any(|w| w.offset < last.acked_offset));
    }

    #[test]
    fn safe_failover_loses_no_wait_acknowledged_write() {
        let checker = check(cfg(2, true, None));
        checker.assert_properties();
        assert_eq!(checker.unique_state_count(), 296_857);
    }

    #[test]
    fn a_master_that_votes_twice_per_epoch_is_caught() {
        let checker = check(cfg(1, false, Some(PlantedBug::VoteTwicePerEpoch)));
        assert!(checker
            .discovery("Vote Safety: a master votes at most once per epoch")
            .is_some());
    }

    #[test]
    fn safe_failover_without_its_election_half_loses_a_write_with_three_replicas() {
        // With two replicas a majority is both, so WAIT alone protects the write; three are
        // needed to show that the offset proof is what makes safe failover safe.
        let checker = ElectionModel::new(ElectionConfig {
            replicas: 3,
            fault_budget: 1,
            safe_failover: true,
            planted_bug: Some(PlantedBug::IgnoreOffsetProof),
            ..ElectionConfig::default()
        })
        .checker()
        .threads(2)
        .finish_when(stateright::HasDiscoveries::AnyFailures)
        .spawn_dfs()
        .join();
        let path = checker
            .discovery("Safe failover: no WAIT-acknowledged write is lost")
            .expect("a lagging replica wins without the proof");
        let last = path.last_state();
        assert!(last.wins.iter().any(|w| w.offset < last.acked_offset));
    }

    #[test]
    fn after_the_fault_budget_the_failed_shard_gets_one_agreed_master() {
        for safe_failover in [false, true] {
            let report = liveness(cfg(1, safe_failover, None));
            assert!(report.holds(), "{:?}", report.outcome);
        }
    }

    #[test]
    fn replicas_that_never_retry_a_failed_election_are_caught_by_liveness() {
        let report = liveness(cfg(1, false, Some(PlantedBug::NeverRetryElection)));
        let lasso = report
            .violation()
            .expect("an election that is never retried");
        assert!(lasso.is_deadlock());
        let last = lasso
            .prefix
            .last()
            .map(|step| &step.1)
            .expect("a non-empty prefix");
        assert!(last.wins.is_empty() && last.master_failed);
    }
}

#[cfg(test)]
mod measure {
    use super::*;

    /// Cross-check: every interleaving of deliveries, no faults (release: about 10 s each).
    #[test]
    fn cross_check_with_free_reordering() {
        for safe_failover in [false, true] {
            let cfg = ElectionConfig {
                fault_budget: 0,
                safe_failover,
                free_reordering: true,
                ..ElectionConfig::default()
            };
            let opts = CheckOpts {
                threads: 2,
                bfs: false,
                liveness: true,
            };
            run_check(&cfg, &opts);
        }
    }
}
