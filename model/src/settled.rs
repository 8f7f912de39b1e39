//! # Settled traces: the model's paths as a real cluster can be driven through them
//!
//! A real cluster cannot be stopped between two TCP segments, but it can be left alone until
//! it is quiet. A *settled trace* is therefore a list of **environment steps** (a client
//! write, a link cut, a kill -9, a restart, FAILOVER, WAIT), each followed by every
//! **internal** step the model allows (deliveries, reconnect retries, ACKs) until none is left.
//! The states where nothing internal is enabled are the *quiescent* states; after each
//! environment step the trace records the observable projection ([`Observed`], what INFO
//! shows) of every quiescent state the model can reach: usually one, sometimes a few when
//! timing decides (which replica reconnects first, say). A real run conforms when, after each
//! step, what it shows is one of them.
//!
//! Every settled trace is a set of model paths: [`SettledRun`] replays it through
//! [`ReplModel::next_state`] only (the same checked transitions), so a trace is re-validated
//! whenever it is read. Traces are generated two ways ([`generate`]): coverage-directed (a
//! breadth-first search over quiescent states for each goal: each `sometimes` property and each
//! named scenario of the conformance issue) and seeded random walks.
//!
//! The replay configuration differs from the default check in what a real run can drive in
//! bounded time: no timeout faults ([`ModelCfg::timeouts`] off, a real repl-timeout needs
//! seconds of silence), no master PINGs (switched off in the servers too, as Redis's own tests
//! do), and backlogs of at least 16 KiB (Redis's minimum).

use crate::replication::{
    is_fault, ttl_candidate, InnerAction, ModelCfg, ReplModel, ReplState, SwitchoverCfg, Timer,
    DEL, EV_FULL_AFTER_OVERFLOW, EV_PARTIAL_AFTER_RECONNECT, EV_PARTIAL_VIA_REPLID2,
    EV_SIBLING_VIA_REPLID2,
};
use crate::report::{observe, Observed};
use serde::{Deserialize, Serialize};
use stateright::actor::{ActorModelAction, Id};
use stateright::Model;
use std::collections::{HashSet, VecDeque};
use verdis_core::repl::{LinkPhase, ReplTimer, Role};

/// A step the environment drives (an operator, a client, the network, the machine).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum EnvStep {
    /// The client sends `SET k<id> v<id>` to node 0.
    Write { id: u8 },
    /// The replication link of `replica` is cut (both ends see the connection close).
    Cut { replica: usize },
    /// `kill -9` of a node (with persistence: after a SAVE, as if every change was saved).
    Crash { node: usize },
    /// The node starts again (from its RDB with persistence, else empty).
    Restart { node: usize },
    /// `FAILOVER TO <node 1>` on node 0.
    Failover,
    /// `FAILOVER TO <node 0>` on node 1 (switching back after a manual failover).
    FailoverBack,
    /// `WAIT` on node 0: `REPLCONF GETACK *` into the stream.
    Wait,
    /// `REPLICAOF NO ONE` on a replica.
    ReplicaofNoOne { node: usize },
    /// `REPLICAOF <master>` on a node.
    Replicaof { node: usize, master: usize },
    /// The node is cut off from every other node: its replication link closes, and no
    /// replication connection to or from it gets through until it is healed.
    Partition { node: usize },
    /// The partition of the node ends.
    Heal { node: usize },
    /// Malformed bytes (`*x`) reach `replica` in its master's stream.
    GarbleStream { replica: usize },
    /// `REPLCONF ACK <not a number>` and then malformed bytes (`*x`) reach the master of
    /// `replica` on its replication link.
    GarbleToMaster { replica: usize },
    /// `PEXPIRE k<id> <ttl>` on node 0 (propagated as `PEXPIREAT`).
    SetTtl { id: u8 },
    /// Time passes the TTLs set: masters delete those keys (`DEL` into the stream), every
    /// node hides them.
    TtlPasses,
    /// `replica` stops reading: what its master sends after its PSYNC is held back.
    Stall { replica: usize },
    /// `replica` reads again: what was held back arrives.
    Unstall { replica: usize },
    /// `SET k<id> v<id>` to node 0, larger than every replica's output-buffer limit.
    WriteOverLimit { id: u8 },
}

impl std::fmt::Display for EnvStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnvStep::Write { id } => write!(f, "SET k{id} on node 0"),
            EnvStep::Cut { replica } => write!(f, "cut the link of node {replica}"),
            EnvStep::Crash { node } => write!(f, "kill -9 node {node}"),
            EnvStep::Restart { node } => write!(f, "restart node {node}"),
            EnvStep::Failover => write!(f, "FAILOVER TO node 1 on node 0"),
            EnvStep::FailoverBack => write!(f, "FAILOVER TO node 0 on node 1"),
            EnvStep::Wait => write!(f, "WAIT on node 0"),
            EnvStep::ReplicaofNoOne { node } => write!(f, "REPLICAOF NO ONE on node {node}"),
            EnvStep::Replicaof { node, master } => {
                write!(f, "REPLICAOF node {master} on node {node}")
            }
            EnvStep::Partition { node } => write!(f, "partition node {node} away"),
            EnvStep::Heal { node } => write!(f, "heal the partition of node {node}"),
            EnvStep::GarbleStream { replica } => {
                write!(f, "malformed bytes into the stream of node {replica}")
            }
            EnvStep::GarbleToMaster { replica } => {
                write!(f, "malformed bytes from node {replica} to its master")
            }
            EnvStep::SetTtl { id } => write!(f, "PEXPIRE k{id} on node 0"),
            EnvStep::TtlPasses => write!(f, "time passes the TTLs"),
            EnvStep::Stall { replica } => write!(f, "node {replica} stops reading"),
            EnvStep::Unstall { replica } => write!(f, "node {replica} reads again"),
            EnvStep::WriteOverLimit { id } => {
                write!(
                    f,
                    "SET k{id} on node 0, past the replicas' output-buffer limit"
                )
            }
        }
    }
}

/// The environment step an action stands for, or `None` for an internal step.
pub fn env_step(model: &ReplModel, action: &InnerAction) -> Option<EnvStep> {
    let client = model.cfg.client_id();
    match action {
        ActorModelAction::Timeout(id, Timer::ClientWrite | Timer::ClientWriteOverLimit)
            if usize::from(*id) == client =>
        {
            None // the write id is read from the state, see `env_steps`
        }
        ActorModelAction::Timeout(id, Timer::Stall) => Some(EnvStep::Stall {
            replica: usize::from(*id),
        }),
        ActorModelAction::Timeout(id, Timer::Unstall) => Some(EnvStep::Unstall {
            replica: usize::from(*id),
        }),
        ActorModelAction::Timeout(id, Timer::CutLink) => Some(EnvStep::Cut {
            replica: usize::from(*id),
        }),
        ActorModelAction::Crash(id) => Some(EnvStep::Crash {
            node: usize::from(*id),
        }),
        ActorModelAction::Recover(id) => Some(EnvStep::Restart {
            node: usize::from(*id),
        }),
        ActorModelAction::Timeout(id, Timer::AdminFailover) => Some(if usize::from(*id) == 0 {
            EnvStep::Failover
        } else {
            EnvStep::FailoverBack
        }),
        ActorModelAction::Timeout(_, Timer::AdminWait) => Some(EnvStep::Wait),
        ActorModelAction::Timeout(id, Timer::AdminPromote) => Some(EnvStep::ReplicaofNoOne {
            node: usize::from(*id),
        }),
        ActorModelAction::Timeout(id, Timer::AdminFollow) => Some(EnvStep::Replicaof {
            node: usize::from(*id),
            master: 1,
        }),
        ActorModelAction::Timeout(id, Timer::Partition) => Some(EnvStep::Partition {
            node: usize::from(*id),
        }),
        ActorModelAction::Timeout(id, Timer::Heal) => Some(EnvStep::Heal {
            node: usize::from(*id),
        }),
        ActorModelAction::Timeout(id, Timer::GarbleStream) => Some(EnvStep::GarbleStream {
            replica: usize::from(*id),
        }),
        ActorModelAction::Timeout(id, Timer::GarbleToMaster) => Some(EnvStep::GarbleToMaster {
            replica: usize::from(*id),
        }),
        ActorModelAction::Timeout(_, Timer::Clock) => Some(EnvStep::TtlPasses),
        // The key is read from the state, see `env_steps`.
        ActorModelAction::Timeout(_, Timer::AdminTtl) => Some(EnvStep::SetTtl { id: 0 }),
        _ => None,
    }
}

/// Whether an action is an environment step (as opposed to an internal one).
fn is_env(model: &ReplModel, action: &InnerAction) -> bool {
    is_client_write(model, action)
        || env_step(model, action).is_some()
        || is_fault(action)
        || matches!(
            action,
            ActorModelAction::Timeout(_, Timer::Repl(ReplTimer::FailoverTimeout))
        )
}

fn is_client_write(model: &ReplModel, action: &InnerAction) -> bool {
    matches!(action, ActorModelAction::Timeout(id, Timer::ClientWrite | Timer::ClientWriteOverLimit)
        if usize::from(*id) == model.cfg.client_id())
}

/// The action that drives `step`.
pub fn action_of(model: &ReplModel, step: EnvStep) -> InnerAction {
    match step {
        EnvStep::Write { .. } => {
            ActorModelAction::Timeout(Id::from(model.cfg.client_id()), Timer::ClientWrite)
        }
        EnvStep::WriteOverLimit { .. } => {
            ActorModelAction::Timeout(Id::from(model.cfg.client_id()), Timer::ClientWriteOverLimit)
        }
        EnvStep::Stall { replica } => ActorModelAction::Timeout(Id::from(replica), Timer::Stall),
        EnvStep::Unstall { replica } => {
            ActorModelAction::Timeout(Id::from(replica), Timer::Unstall)
        }
        EnvStep::Cut { replica } => ActorModelAction::Timeout(Id::from(replica), Timer::CutLink),
        EnvStep::Crash { node } => ActorModelAction::Crash(Id::from(node)),
        EnvStep::Restart { node } => ActorModelAction::Recover(Id::from(node)),
        EnvStep::Failover => ActorModelAction::Timeout(Id::from(0), Timer::AdminFailover),
        EnvStep::FailoverBack => ActorModelAction::Timeout(Id::from(1), Timer::AdminFailover),
        EnvStep::Wait => ActorModelAction::Timeout(Id::from(0), Timer::AdminWait),
        EnvStep::ReplicaofNoOne { node } => {
            ActorModelAction::Timeout(Id::from(node), Timer::AdminPromote)
        }
        // The model's operator only ever points nodes at node 1.
        EnvStep::Replicaof { node, .. } => {
            ActorModelAction::Timeout(Id::from(node), Timer::AdminFollow)
        }
        EnvStep::Partition { node } => ActorModelAction::Timeout(Id::from(node), Timer::Partition),
        EnvStep::Heal { node } => ActorModelAction::Timeout(Id::from(node), Timer::Heal),
        EnvStep::GarbleStream { replica } => {
            ActorModelAction::Timeout(Id::from(replica), Timer::GarbleStream)
        }
        EnvStep::GarbleToMaster { replica } => {
            ActorModelAction::Timeout(Id::from(replica), Timer::GarbleToMaster)
        }
        EnvStep::SetTtl { .. } => ActorModelAction::Timeout(Id::from(0), Timer::AdminTtl),
        EnvStep::TtlPasses => ActorModelAction::Timeout(Id::from(0), Timer::Clock),
    }
}

/// The environment steps enabled (and taken) in a quiescent state, with their successors.
pub fn env_steps(model: &ReplModel, s: &ReplState) -> Vec<(EnvStep, ReplState)> {
    let mut actions = Vec::new();
    model.actions(s, &mut actions);
    actions
        .into_iter()
        .filter_map(|a| {
            let step = if is_client_write(model, &a) {
                // A write to a killed node is refused by the OS, not queued.
                if s.sys.crashed[0] {
                    return None;
                }
                let id = model.client(s).next;
                match a {
                    ActorModelAction::Timeout(_, Timer::ClientWriteOverLimit) => {
                        EnvStep::WriteOverLimit { id }
                    }
                    _ => EnvStep::Write { id },
                }
            } else {
                match env_step(model, &a)? {
                    EnvStep::SetTtl { .. } => EnvStep::SetTtl {
                        id: model.node(s, 0).and_then(|n| ttl_candidate(&n.data))?,
                    },
                    step => step,
                }
            };
            let next = model.next_state(s, a)?;
            (next != *s).then_some((step, next))
        })
        .collect()
}

/// Quiescent states are reached through at most this many states per settle.
pub const SETTLE_STATE_LIMIT: usize = 200_000;

/// Every quiescent state reachable from `from` through internal steps only, each with the
/// `EV_*` events seen on the way (the first path found to it).
pub fn settle(model: &ReplModel, from: &[ReplState]) -> Result<Vec<(ReplState, u8)>, String> {
    let mut seen: HashSet<ReplState> = HashSet::new();
    let mut queue: VecDeque<(ReplState, u8)> = VecDeque::new();
    for s in from {
        if seen.insert(s.clone()) {
            queue.push_back((s.clone(), s.events));
        }
    }
    let mut quiet = Vec::new();
    while let Some((s, events)) = queue.pop_front() {
        let mut actions = Vec::new();
        model.actions(&s, &mut actions);
        let mut moved = false;
        for a in actions.into_iter().filter(|a| !is_env(model, a)) {
            let Some(next) = model.next_state(&s, a) else {
                continue;
            };
            if next == s {
                continue;
            }
            moved = true;
            let ev = events | next.events;
            if seen.insert(next.clone()) {
                if seen.len() > SETTLE_STATE_LIMIT {
                    return Err(format!(
                        "settling explored more than {SETTLE_STATE_LIMIT} states"
                    ));
                }
                queue.push_back((next, ev));
            }
        }
        if !moved {
            quiet.push((s, events));
        }
    }
    Ok(quiet)
}

/// The observable projection of a state, plus the client's view (acknowledged writes).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Projection {
    pub nodes: Vec<Observed>,
    /// Bit i: write i was answered `+OK`.
    pub acked: u32,
}

pub fn project(model: &ReplModel, s: &ReplState) -> Projection {
    Projection {
        nodes: observe(model, s),
        acked: model.client(s).acked,
    }
}

/// The distinct projections of a set of states, in a stable order.
pub fn projections(model: &ReplModel, states: &[ReplState]) -> Vec<Projection> {
    let mut out: Vec<Projection> = Vec::new();
    for s in states {
        let p = project(model, s);
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// The model side of a replay: the set of quiescent states consistent with the steps so far
/// (and, when the runner filters it, with what the real run showed).
pub struct SettledRun {
    pub model: ReplModel,
    pub states: Vec<ReplState>,
}

impl SettledRun {
    /// The quiescent states after start-up (replicas connected and synced).
    pub fn start(cfg: &ModelCfg) -> Result<SettledRun, String> {
        let model = cfg.clone().into_model();
        let init = model.init_states();
        let states = settle(&model, &init)?.into_iter().map(|(s, _)| s).collect();
        Ok(SettledRun { model, states })
    }

    /// Drives `step` from every current state where it is enabled, then settles. An error if
    /// it is enabled in none (the trace is not a model path).
    pub fn step(&mut self, step: EnvStep) -> Result<(), String> {
        let mut next = Vec::new();
        for s in &self.states {
            if let Some((_, n)) = env_steps(&self.model, s)
                .into_iter()
                .find(|(e, _)| same_step(*e, step))
            {
                next.push(n);
            }
        }
        if next.is_empty() {
            return Err(format!("step `{step}` is not enabled in the model"));
        }
        self.states = settle(&self.model, &next)?
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        Ok(())
    }

    pub fn projections(&self) -> Vec<Projection> {
        projections(&self.model, &self.states)
    }

    /// Keeps only the states whose projection satisfies `keep`.
    pub fn retain(&mut self, keep: impl Fn(&Projection) -> bool) {
        let model = &self.model;
        self.states.retain(|s| keep(&project(model, s)));
    }

    /// Whether `node` accepted the FAILOVER of the last step in every state (the operator's
    /// timer is no longer armed), refused it in every state, or it depends.
    pub fn failover_accepted(&self, node: usize) -> Option<bool> {
        let armed: Vec<bool> = self
            .states
            .iter()
            .map(|s| {
                s.sys.timers_set[node]
                    .iter()
                    .any(|t| *t == Timer::AdminFailover)
            })
            .collect();
        if armed.iter().all(|a| !a) {
            Some(true)
        } else if armed.iter().all(|a| *a) {
            Some(false)
        } else {
            None
        }
    }

    /// The master node `node` follows after a restart with its saved data (its configured
    /// master without persistence): what the restart's `replicaof` must say.
    pub fn restart_master(&self, node: usize) -> Option<usize> {
        let s = self.states.first()?;
        if self.model.cfg.persistence {
            s.sys.actor_storages[node]
                .as_ref()
                .and_then(|st| st.master)
                .map(|m| m as usize)
        } else {
            self.model.cfg.configured_master(node).map(|m| m as usize)
        }
    }
}

/// Steps match on kind and target (a write's id is fixed by the state, not by the step).
fn same_step(a: EnvStep, b: EnvStep) -> bool {
    match (a, b) {
        (EnvStep::Write { .. }, EnvStep::Write { .. }) => true,
        (EnvStep::WriteOverLimit { .. }, EnvStep::WriteOverLimit { .. }) => true,
        (EnvStep::SetTtl { .. }, EnvStep::SetTtl { .. }) => true,
        _ => a == b,
    }
}

// ----- traces ------------------------------------------------------------------------------

/// One step of a settled trace with what may be observed after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettledStep {
    #[serde(flatten)]
    pub step: EnvStep,
    /// The observable states the model allows once the cluster is quiet (any one of them).
    pub expect: Vec<Projection>,
}

/// A settled trace: a configuration, the state after start-up, and the steps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettledTrace {
    pub name: String,
    /// Why it is in the set: `goal: <name>` (coverage) or `random: <seed>`.
    pub origin: String,
    pub config: ModelCfg,
    pub start: Vec<Projection>,
    pub steps: Vec<SettledStep>,
}

/// Builds the trace of `steps` under `cfg`, re-validating every step against the model.
pub fn trace_of(
    name: &str,
    origin: &str,
    cfg: &ModelCfg,
    steps: &[EnvStep],
) -> Result<SettledTrace, String> {
    let mut run = SettledRun::start(cfg)?;
    let start = run.projections();
    let mut out = Vec::new();
    for (i, &step) in steps.iter().enumerate() {
        // A write's id is the client's next one (the same in every state of the set).
        let step = match (step, run.states.first()) {
            (EnvStep::Write { .. }, Some(s)) => EnvStep::Write {
                id: run.model.client(s).next,
            },
            (EnvStep::WriteOverLimit { .. }, Some(s)) => EnvStep::WriteOverLimit {
                id: run.model.client(s).next,
            },
            (other, _) => other,
        };
        run.step(step)
            .map_err(|e| format!("{name}: step {}: {e}", i + 1))?;
        out.push(SettledStep {
            step,
            expect: run.projections(),
        });
    }
    Ok(SettledTrace {
        name: name.to_string(),
        origin: origin.to_string(),
        config: cfg.clone(),
        start,
        steps: out,
    })
}

/// A goal of the coverage-directed search: a predicate on (events of the last step, state,
/// steps so far).
pub struct Goal {
    pub name: &'static str,
    pub cfg: ModelCfg,
    pub reached: fn(&ReplModel, u8, &ReplState, &[EnvStep]) -> bool,
}

/// The replay base configuration: 1 master, 2 replicas, 16 KiB backlog, link cuts and crashes,
/// no timeouts, no PINGs.
pub fn replay_base() -> ModelCfg {
    ModelCfg {
        writes: 3,
        backlog_bytes: 16_384,
        faults: 2,
        timeouts: false,
        ..ModelCfg::default()
    }
}

/// A manual failover (REPLICAOF NO ONE, REPLICAOF) with partitions, no crashes, no FAILOVER.
fn manual_base() -> ModelCfg {
    ModelCfg {
        manual: true,
        partition: true,
        crashes: false,
        switchover: None,
        ..replay_base()
    }
}

/// Key expiry with partitions, no crashes or FAILOVER.
fn expire_base() -> ModelCfg {
    ModelCfg {
        expire: true,
        partition: true,
        crashes: false,
        switchover: None,
        ..replay_base()
    }
}

/// Malformed bytes on the links, and no crashes or FAILOVER.
fn garble_base() -> ModelCfg {
    ModelCfg {
        garble: true,
        crashes: false,
        switchover: None,
        ..replay_base()
    }
}

fn follows(m: &ReplModel, s: &ReplState, node: usize, master: usize) -> bool {
    m.node(s, node)
        .and_then(|n| n.repl.link())
        .is_some_and(|l| l.master as usize == master && l.phase == LinkPhase::Streaming)
}

fn converged_after(m: &ReplModel, s: &ReplState) -> bool {
    m.nodes(s).count() == m.cfg.node_count()
        && m.nodes(s).all(|(_, n)| match n.repl.link() {
            None => true,
            Some(l) => l.phase == LinkPhase::Streaming,
        })
}

fn count(steps: &[EnvStep], f: impl Fn(&EnvStep) -> bool) -> usize {
    steps.iter().filter(|s| f(s)).count()
}

/// Output-buffer limits: stalls and a write past every replica's limit, with crashes and no
/// persistence (a restarted replica syncs in full), no FAILOVER, one replica. Write 1 is
/// larger than the backlog, as Redis needs a write of at least the backlog's size to pass a
/// replica's limit (it raises a smaller limit to `repl-backlog-size`). One replica: a second
/// one, dropped by that write, would resync in full on Verdis (the write is past the backlog)
/// and partially on Redis (whose backlog keeps the blocks a replica in its initial sync still
/// needs), the difference listed for a value larger than the backlog.
pub fn obuf_base() -> ModelCfg {
    ModelCfg {
        obuf: true,
        persistence: false,
        switchover: None,
        big_write: Some(20_000),
        replicas: 1,
        writes: 2,
        ..replay_base()
    }
}

/// The goals: every `sometimes` property of the replication model and every scenario of the
/// conformance issue that the model can express.
pub fn goals() -> Vec<Goal> {
    let base = replay_base();
    vec![
        Goal {
            name: "sometimes: a replica resumes partially after a cut",
            cfg: base.clone(),
            reached: |_, ev, _, steps| {
                steps.iter().any(|s| matches!(s, EnvStep::Cut { .. }))
                    && ev & EV_PARTIAL_AFTER_RECONNECT != 0
            },
        },
        Goal {
            name: "sometimes: a value larger than the backlog forces a full sync",
            cfg: ModelCfg {
                big_write: Some(20_000),
                switchover: None,
                ..base.clone()
            },
            reached: |_, ev, _, _| ev & EV_FULL_AFTER_OVERFLOW != 0,
        },
        Goal {
            name: "sometimes: switchover completes (FAILOVER TO node 1)",
            cfg: base.clone(),
            reached: |m, _, s, steps| {
                steps.contains(&EnvStep::Failover)
                    && m.node(s, 1).is_some_and(|n| n.repl.role == Role::Master)
                    && converged_after(m, s)
            },
        },
        Goal {
            name: "sometimes: the old master resumes through replid2 after the switchover",
            cfg: base.clone(),
            reached: |_, ev, _, steps| {
                steps.contains(&EnvStep::Failover) && ev & EV_PARTIAL_VIA_REPLID2 != 0
            },
        },
        Goal {
            name: "scenario: the promoted replica keeps its backlog, a sibling continues partially",
            cfg: base.clone(),
            reached: |_, ev, _, _| ev & EV_SIBLING_VIA_REPLID2 != 0,
        },
        Goal {
            name: "scenario: a write, a cut and another write, then converged",
            cfg: base.clone(),
            reached: |m, _, s, steps| {
                count(steps, |s| matches!(s, EnvStep::Write { .. })) >= 2
                    && count(steps, |s| matches!(s, EnvStep::Cut { .. })) >= 1
                    && converged_after(m, s)
            },
        },
        Goal {
            name: "scenario: a three-node chain under repeated link kills",
            cfg: ModelCfg {
                chain: true,
                switchover: None,
                faults: 3,
                ..base.clone()
            },
            reached: |m, _, s, steps| {
                count(steps, |s| matches!(s, EnvStep::Cut { .. })) >= 3
                    && count(steps, |s| matches!(s, EnvStep::Write { .. })) >= 2
                    && converged_after(m, s)
            },
        },
        Goal {
            name: "scenario: the master restarts empty with persistence off",
            cfg: ModelCfg {
                persistence: false,
                switchover: None,
                ..base.clone()
            },
            reached: |m, _, s, steps| {
                steps.contains(&EnvStep::Restart { node: 0 })
                    && count(steps, |s| matches!(s, EnvStep::Write { .. })) >= 1
                    && converged_after(m, s)
            },
        },
        Goal {
            name: "scenario: the master restarts from its RDB (repl aux fields)",
            cfg: ModelCfg {
                switchover: None,
                ..base.clone()
            },
            reached: |m, _, s, steps| {
                steps.contains(&EnvStep::Restart { node: 0 })
                    && count(steps, |s| matches!(s, EnvStep::Write { .. })) >= 2
                    && converged_after(m, s)
            },
        },
        Goal {
            name: "scenario: a replica restarts from its RDB and resumes partially",
            cfg: ModelCfg {
                switchover: None,
                ..base.clone()
            },
            reached: |_, ev, _, steps| {
                steps.contains(&EnvStep::Restart { node: 1 })
                    && ev & EV_PARTIAL_AFTER_RECONNECT != 0
            },
        },
        Goal {
            name: "scenario: a replica restarts empty with persistence off",
            cfg: ModelCfg {
                persistence: false,
                switchover: None,
                ..base.clone()
            },
            reached: |m, _, s, steps| {
                steps.contains(&EnvStep::Restart { node: 1 })
                    && count(steps, |s| matches!(s, EnvStep::Write { .. })) >= 1
                    && converged_after(m, s)
            },
        },
        Goal {
            name: "scenario: WAIT across a reconnect",
            cfg: ModelCfg {
                getack: true,
                switchover: None,
                ..base.clone()
            },
            reached: |_, _, _, steps| {
                let cut = steps.iter().position(|s| matches!(s, EnvStep::Cut { .. }));
                let wait = steps.iter().position(|s| *s == EnvStep::Wait);
                matches!((cut, wait), (Some(c), Some(w)) if c < w)
                    && count(steps, |s| matches!(s, EnvStep::Write { .. })) >= 1
            },
        },
        Goal {
            name: "scenario: manual failover (REPLICAOF NO ONE, then REPLICAOF), no full sync",
            cfg: ModelCfg {
                partition: false,
                ..manual_base()
            },
            reached: |m, _, s, steps| {
                count(steps, |s| matches!(s, EnvStep::Write { .. })) >= 1
                    && follows(m, s, 0, 1)
                    && follows(m, s, 2, 1)
                    && converged_after(m, s)
                    && observe(m, s).get(1).is_some_and(|o| o.sync_full == 0)
            },
        },
        Goal {
            name: "scenario: manual failover, then a switchover back (FAILOVER), no full sync",
            cfg: ModelCfg {
                partition: false,
                switch_back: true,
                ..manual_base()
            },
            reached: |m, _, s, steps| {
                let full = |node: usize| observe(m, s).get(node).map(|o| o.sync_full);
                let at = |want: EnvStep| steps.iter().position(|s| *s == want);
                let first_write = steps
                    .iter()
                    .position(|s| matches!(s, EnvStep::Write { .. }));
                // A write before the failover, every replica moved to node 1, then FAILOVER.
                matches!(
                    (first_write, at(EnvStep::ReplicaofNoOne { node: 1 })),
                    (Some(w), Some(p)) if w < p
                )
                    && at(EnvStep::Replicaof { node: 2, master: 1 }).is_some()
                    && steps.contains(&EnvStep::FailoverBack)
                    && m.node(s, 0).is_some_and(|n| n.repl.role == Role::Master)
                    && follows(m, s, 1, 0)
                    && converged_after(m, s)
                    // Node 0's full syncs are the first ones of its replicas; node 1's none.
                    && full(0) == Some(u64::from(m.cfg.replicas))
                    && full(1) == Some(0)
            },
        },
        Goal {
            name: "scenario: the old master is ahead of the promoted replica (its writes lost)",
            cfg: ModelCfg {
                faults: 1,
                ..manual_base()
            },
            reached: |m, _, s, steps| {
                steps.contains(&EnvStep::Partition { node: 1 })
                    && follows(m, s, 0, 1)
                    && m.node(s, 0).is_some_and(|n| {
                        (1..=m.cfg.writes)
                            .any(|i| m.client(s).acked & (1 << i) != 0 && !n.data.contains(&i))
                    })
            },
        },
        Goal {
            name: "scenario: malformed bytes in a replica's stream: it drops the link and syncs in full",
            cfg: garble_base(),
            reached: |m, _, s, steps| {
                count(steps, |s| matches!(s, EnvStep::Write { .. })) >= 1
                    && steps.last().is_some_and(|s| matches!(s, EnvStep::GarbleStream { .. }))
                    && m.node(s, 0).is_some_and(|n| n.repl.stats.sync_full == 3)
                    && converged_after(m, s)
            },
        },
        Goal {
            name: "scenario: malformed REPLCONF input from a replica: the master drops the link, the replica continues partially",
            cfg: garble_base(),
            reached: |m, ev, s, steps| {
                count(steps, |s| matches!(s, EnvStep::Write { .. })) >= 1
                    && steps.last().is_some_and(|s| matches!(s, EnvStep::GarbleToMaster { .. }))
                    && ev & EV_PARTIAL_AFTER_RECONNECT != 0
                    && converged_after(m, s)
            },
        },
        Goal {
            name: "scenario: expired keys on replicas: a partitioned replica hides the key until the master's DEL arrives",
            cfg: expire_base(),
            reached: |m, _, s, steps| {
                let Some(t) = steps.iter().position(|s| *s == EnvStep::TtlPasses) else {
                    return false;
                };
                let Some(&EnvStep::Heal { node }) = steps.last() else {
                    return false;
                };
                // The TTL reached the node before the partition: it held the key with its
                // TTL when time passed, and the master's DEL came only after the heal.
                let ttl = steps.iter().position(|s| matches!(s, EnvStep::SetTtl { .. }));
                let cut = steps.iter().position(|s| *s == EnvStep::Partition { node });
                matches!((ttl, cut), (Some(a), Some(b)) if a < b && b < t)
                    && converged_after(m, s)
                    && m.node(s, node).is_some_and(|n| n.data.iter().any(|e| e & DEL != 0))
            },
        },
        Goal {
            name: "scenario: the full-sync loop of the output-buffer limit: a replica loading its snapshot is spared",
            cfg: obuf_base(),
            reached: |m, _, s, steps| {
                let at = |want: &dyn Fn(&EnvStep) -> bool| steps.iter().position(want);
                let stall = at(&|s| matches!(s, EnvStep::Stall { replica: 1 }));
                let restart = at(&|s| *s == EnvStep::Restart { node: 1 });
                let over = at(&|s| matches!(s, EnvStep::WriteOverLimit { .. }));
                // Node 1 stopped reading, restarted empty (its full sync held back), the
                // write past the limit came, then node 1 read again. Node 1 was spared: its
                // first sync and the one after the restart are all (no third).
                matches!((stall, restart, over), (Some(a), Some(b), Some(c)) if a < b && b < c)
                    && steps.last() == Some(&EnvStep::Unstall { replica: 1 })
                    && converged_after(m, s)
                    && m.node(s, 0).is_some_and(|n| n.repl.stats.sync_full == 2)
            },
        },
        Goal {
            name: "scenario: FAILOVER FORCE with one replica",
            cfg: ModelCfg {
                replicas: 1,
                switchover: Some(SwitchoverCfg { force: true }),
                ..base.clone()
            },
            reached: |m, _, s, steps| {
                steps.contains(&EnvStep::Failover)
                    && m.node(s, 1).is_some_and(|n| n.repl.role == Role::Master)
                    && count(steps, |s| matches!(s, EnvStep::Write { .. })) >= 1
            },
        },
    ]
}

/// Breadth-first over quiescent states for the shortest step sequence reaching `goal`.
pub fn search(goal: &Goal, max_depth: usize) -> Result<Option<Vec<EnvStep>>, String> {
    let model = goal.cfg.clone().into_model();
    let mut seen: HashSet<ReplState> = HashSet::new();
    let mut queue: VecDeque<(ReplState, Vec<EnvStep>)> = VecDeque::new();
    for (s, _) in settle(&model, &model.init_states())? {
        if seen.insert(s.clone()) {
            queue.push_back((s, Vec::new()));
        }
    }
    while let Some((s, path)) = queue.pop_front() {
        if path.len() >= max_depth {
            continue;
        }
        for (step, next) in env_steps(&model, &s) {
            let mut p = path.clone();
            p.push(step);
            for (q, ev) in settle(&model, &[next])? {
                if (goal.reached)(&model, ev, &q, &p) {
                    return Ok(Some(p));
                }
                if seen.insert(q.clone()) {
                    queue.push_back((q, p.clone()));
                }
            }
        }
        if seen.len() > 50_000 {
            break;
        }
    }
    Ok(None)
}

/// The configurations random walks draw from.
pub fn walk_configs() -> Vec<ModelCfg> {
    let base = replay_base();
    vec![
        base.clone(),
        ModelCfg {
            persistence: false,
            ..base.clone()
        },
        ModelCfg {
            chain: true,
            switchover: None,
            ..base.clone()
        },
        ModelCfg {
            getack: true,
            switchover: None,
            faults: 3,
            ..base.clone()
        },
        ModelCfg {
            replicas: 1,
            switchover: Some(SwitchoverCfg { force: true }),
            ..base.clone()
        },
        manual_base(),
    ]
}

/// A seeded random walk of at most `max_steps` environment steps under `cfg`.
pub fn random_steps(cfg: &ModelCfg, seed: u64, max_steps: usize) -> Result<Vec<EnvStep>, String> {
    let mut rng = seed.max(1);
    let mut run = SettledRun::start(cfg)?;
    let mut steps = Vec::new();
    for _ in 0..max_steps {
        let Some(s) = run.states.first().cloned() else {
            break;
        };
        let options: Vec<EnvStep> = env_steps(&run.model, &s)
            .into_iter()
            .map(|(e, _)| e)
            .collect();
        if options.is_empty() {
            break;
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let step = options[(rng % options.len() as u64) as usize];
        // Follow one quiescent state (the walk is one path; the trace keeps the set).
        run.states.truncate(1);
        run.step(step)?;
        steps.push(step);
    }
    Ok(steps)
}

/// The trace set: one trace per reachable goal, then `walks` random walks over
/// [`walk_configs`].
pub fn generate(walks: usize, seed: u64) -> Result<Vec<SettledTrace>, String> {
    let mut traces = Vec::new();
    for goal in goals() {
        match search(&goal, 7)? {
            Some(steps) => traces.push(trace_of(
                goal.name,
                &format!("goal: {}", goal.name),
                &goal.cfg,
                &steps,
            )?),
            None => return Err(format!("goal not reached in the model: {}", goal.name)),
        }
    }
    let configs = walk_configs();
    let mut rng = seed.max(1);
    for i in 0..walks {
        rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let cfg = &configs[i % configs.len()];
        let steps = random_steps(cfg, rng, 6)?;
        traces.push(trace_of(
            &format!("random walk {} ({} steps)", i + 1, steps.len()),
            &format!("random: seed {rng:x}, config {}", i % configs.len()),
            cfg,
            &steps,
        )?);
    }
    Ok(traces)
}
