//! The election model's half of the report: readable steps and Mermaid lines for
//! [`ElectionAction`]s, the report's scenarios, the Explorer and conformance traces.
//!
//! Nodes are named as the model names them: `n1` (the master that fails), `n2`, `n3` (the
//! other masters), `n4`, ... (the replicas of `n1`). Trace JSON uses 0-based indexes
//! (`node`, `src`, `dst`) as the replication traces do, plus the names.

use super::{
    check, collect_traces, liveness, minimise_counterexamples, replay_steps, selected, write_json,
    write_report, Reported, RunOpts, ScenarioRun, Trace,
};
use crate::election::names::*;
use crate::election::{
    ElectionAction, ElectionConfig, ElectionModel, ElectionState, FAILING, MASTERS, NODE_TIMEOUT_MS,
};
use serde::Serialize;
use stateright::Model;
use verdis_core::cluster::node::auth_retry_ms;
use verdis_core::cluster::{ClusterMsg, Election, NodeId, PlantedBug, Role, SlotRange};

/// The model's name of node index `i`.
fn name(i: usize) -> String {
    format!("n{}", i + 1)
}

/// The Mermaid participant of node index `i`.
fn who(i: usize) -> String {
    format!("N{}", i + 1)
}

fn slots(ranges: &[SlotRange]) -> String {
    let parts: Vec<String> = ranges
        .iter()
        .map(|r| format!("{}-{}", r.start, r.end))
        .collect();
    parts.join(",")
}

/// A cluster bus message in a line (Redis's message names).
pub fn format_msg(msg: &ClusterMsg) -> String {
    match msg {
        ClusterMsg::Ping(h) => {
            let mut text = format!(
                "PING currentEpoch {} configEpoch {} offset {}",
                h.current_epoch, h.config_epoch, h.repl_offset
            );
            if let Role::Master = h.role {
                if !h.slots.is_empty() {
                    text.push_str(&format!(" slots {}", slots(&h.slots)));
                }
            }
            if !h.suspects.is_empty() {
                let s: Vec<String> = h.suspects.iter().map(|n| format!("{n:?}")).collect();
                text.push_str(&format!(" suspects {}", s.join(",")));
            }
            text
        }
        ClusterMsg::Fail { about } => format!("FAIL {about:?}"),
        ClusterMsg::AuthRequest(r) => {
            let mut text = format!(
                "AUTH_REQUEST epoch {} offset {} for {:?} slots {}",
                r.epoch,
                r.offset,
                r.master,
                slots(&r.slots)
            );
            if !r.proof.is_empty() {
                let p: Vec<String> = r.proof.iter().map(|(n, o)| format!("{n:?}@{o}")).collect();
                text.push_str(&format!(" proof {}", p.join(",")));
            }
            text
        }
        ClusterMsg::AuthAck { epoch } => format!("AUTH_ACK epoch {epoch}"),
        ClusterMsg::Update {
            owner,
            config_epoch,
            slots: s,
        } => format!(
            "UPDATE {owner:?} configEpoch {config_epoch} slots {}",
            slots(s)
        ),
        ClusterMsg::OffsetQuery { epoch } => format!("OFFSET_QUERY epoch {epoch}"),
        ClusterMsg::OffsetReport { epoch, offset } => {
            format!("OFFSET_REPORT epoch {epoch} offset {offset}")
        }
    }
}

/// What a node's timer is for, from its state before it fires: its election's deadline, or
/// else an unanswered PING's (PFAIL) deadline.
fn timer_purpose(s: &ElectionState, node: usize) -> &'static str {
    let n = &s.nodes[node];
    let retry = |started_ms: u64| started_ms + auth_retry_ms(NODE_TIMEOUT_MS);
    let (deadline, purpose) = match *n.election() {
        Election::Idle => (None, ""),
        Election::Waiting { start_at_ms } => (Some(start_at_ms), "start the election"),
        Election::Collecting { started_ms, .. } => {
            (Some(retry(started_ms)), "offset collection timed out")
        }
        Election::Requested { started_ms, .. } => {
            (Some(retry(started_ms)), "the election timed out")
        }
        Election::Backoff { retry_at_ms } => (Some(retry_at_ms), "retry the election"),
    };
    if deadline.is_some() && deadline == n.poll_timeout() {
        purpose
    } else {
        "PING unanswered: failure detection"
    }
}

impl Reported for ElectionModel {
    const NAME: &'static str = "election";
    type Config = ElectionConfig;

    fn config(&self) -> &ElectionConfig {
        &self.cfg
    }

    fn only(self, filters: Vec<String>) -> ElectionModel {
        ElectionModel::only(self, filters)
    }

    fn describe(&self, s: &ElectionState, action: &ElectionAction) -> String {
        match *action {
            ElectionAction::Write => format!(
                "client -> {}: write (offset {})",
                name(FAILING),
                s.master_offset + 1
            ),
            ElectionAction::Replicate(r) => format!(
                "{} -> {}: replication stream to offset {} (REPLCONF ACK back)",
                name(FAILING),
                name(r),
                s.nodes[r].repl_offset() + 1
            ),
            ElectionAction::Crash => format!("{}: crashes for good", name(FAILING)),
            ElectionAction::Deliver { index } => match s.in_flight.get(index) {
                Some(e) if index == 0 => {
                    format!("{} -> {}: {}", name(e.src), name(e.dst), format_msg(&e.msg))
                }
                Some(e) => format!(
                    "{} -> {}: {} (fault: delivered before {index} older messages)",
                    name(e.src),
                    name(e.dst),
                    format_msg(&e.msg)
                ),
                None => format!("{action:?}"),
            },
            ElectionAction::Drop { index } => match s.in_flight.get(index) {
                Some(e) => format!(
                    "{} -> {}: {} LOST (fault)",
                    name(e.src),
                    name(e.dst),
                    format_msg(&e.msg)
                ),
                None => format!("{action:?}"),
            },
            ElectionAction::Gossip { src, dst } => {
                format!("{}: gossip to {} is due", name(src), name(dst))
            }
            ElectionAction::Timeout { node, early } => format!(
                "t={} ms: {} timer ({}){}",
                s.nodes[node].poll_timeout().unwrap_or(s.now_ms),
                name(node),
                timer_purpose(s, node),
                if early {
                    " while messages are in flight (fault)"
                } else {
                    ""
                }
            ),
        }
    }

    fn participants(&self) -> Vec<(String, String)> {
        let mut out = vec![("C".to_string(), "client".to_string())];
        for i in 0..self.node_count() {
            let label = if i < MASTERS {
                format!("{} (master)", name(i))
            } else {
                format!("{} (replica of {})", name(i), name(FAILING))
            };
            out.push((who(i), label));
        }
        out
    }

    fn diagram_line(&self, s: &ElectionState, action: &ElectionAction) -> String {
        let text = match *action {
            ElectionAction::Write => format!(
                "C->>{}: write (offset {})",
                who(FAILING),
                s.master_offset + 1
            ),
            ElectionAction::Replicate(r) => format!(
                "{}->>{}: stream to offset {}",
                who(FAILING),
                who(r),
                s.nodes[r].repl_offset() + 1
            ),
            ElectionAction::Crash => format!("Note over {}: CRASH", who(FAILING)),
            ElectionAction::Deliver { index } => match s.in_flight.get(index) {
                Some(e) => format!(
                    "{}->>{}: {}{}",
                    who(e.src),
                    who(e.dst),
                    format_msg(&e.msg),
                    if index > 0 {
                        " (delayed others: fault)"
                    } else {
                        ""
                    }
                ),
                None => format!("Note over C: {action:?}"),
            },
            ElectionAction::Drop { index } => match s.in_flight.get(index) {
                Some(e) => format!(
                    "{}--x{}: {} LOST (fault)",
                    who(e.src),
                    who(e.dst),
                    format_msg(&e.msg)
                ),
                None => format!("Note over C: {action:?}"),
            },
            ElectionAction::Gossip { src, dst } => {
                format!("Note over {}: gossip to {} due", who(src), name(dst))
            }
            ElectionAction::Timeout { node, early } => format!(
                "Note over {}: t={} {}{}",
                who(node),
                s.nodes[node].poll_timeout().unwrap_or(s.now_ms),
                timer_purpose(s, node),
                if early { " (early: fault)" } else { "" }
            ),
        };
        format!("    {text}")
    }
}

/// Serves the Explorer for the election model (blocks forever).
pub fn explore(cfg: ElectionConfig, port: u16) {
    let addr = format!("127.0.0.1:{port}");
    println!("Explorer on http://{addr}/");
    ElectionModel::new(cfg)
        .checker()
        .threads(2)
        .serve(addr.as_str());
    loop {
        std::thread::park();
    }
}

// ----- the report ------------------------------------------------------------------------------

/// One configuration of the election report with what it is expected to show.
pub struct Scenario {
    pub title: &'static str,
    pub cfg: ElectionConfig,
    /// Properties expected to be violated; empty = all must pass.
    pub expect_violated: Vec<&'static str>,
    /// `sometimes` examples to draw as counterexamples.
    pub shown_examples: Vec<&'static str>,
    /// The expected verdict of the exact liveness check, if it runs.
    pub liveness: Option<bool>,
}

/// The configurations of the election report: the reference configuration (docs/model.md
/// section 7) with and without safe failover, and the planted bugs.
pub fn scenarios() -> Vec<Scenario> {
    let reference = ElectionConfig::default();
    let budget_1 = ElectionConfig {
        fault_budget: 1,
        ..reference.clone()
    };
    vec![
        Scenario {
            title:
                "reference: 3 masters, n1 with 2 replicas, 1 write, fault budget 2, Redis semantics",
            cfg: reference.clone(),
            expect_violated: vec![],
            shown_examples: vec![REDIS_WAIT_LOSS],
            liveness: Some(true),
        },
        Scenario {
            title: "reference with safe failover",
            cfg: ElectionConfig {
                safe_failover: true,
                ..reference.clone()
            },
            expect_violated: vec![],
            shown_examples: vec![],
            liveness: Some(true),
        },
        Scenario {
            title: "planted bug: a master votes twice per epoch (fault budget 1)",
            cfg: ElectionConfig {
                planted_bug: Some(PlantedBug::VoteTwicePerEpoch),
                ..budget_1.clone()
            },
            expect_violated: vec![VOTE_SAFETY, ELECTION_SAFETY, SLOT_SAFETY],
            shown_examples: vec![],
            liveness: None,
        },
        Scenario {
            title: "planted bug: replicas never retry a failed election (fault budget 1)",
            cfg: ElectionConfig {
                planted_bug: Some(PlantedBug::NeverRetryElection),
                ..budget_1.clone()
            },
            expect_violated: vec![],
            shown_examples: vec![],
            liveness: Some(false),
        },
        Scenario {
            title:
                "planted bug: safe failover without the offset proof, 3 replicas (fault budget 1)",
            cfg: ElectionConfig {
                replicas: 3,
                safe_failover: true,
                planted_bug: Some(PlantedBug::IgnoreOffsetProof),
                ..budget_1
            },
            expect_violated: vec![SAFE_FAILOVER_NO_LOSS],
            shown_examples: vec![],
            liveness: None,
        },
    ]
}

/// Exact liveness of the election model for `cfg`.
pub fn liveness_election(cfg: &ElectionConfig) -> super::LivenessResult {
    let model = ElectionModel::new(cfg.clone());
    liveness(
        &model,
        LIVENESS,
        |s| model.converged(s),
        |s, a| model.fairness_class(s, a),
        5_000_000,
    )
}

/// Checks the election scenarios selected by `filters`, counterexamples minimised and
/// re-validated.
pub fn run_scenarios(opts: &RunOpts, filters: &[String]) -> Vec<ScenarioRun> {
    scenarios()
        .into_iter()
        .filter(|sc| selected(sc.title, filters))
        .map(|sc| {
            eprintln!("report: {}", sc.title);
            let mut res = check(ElectionModel::new(sc.cfg.clone()), opts);
            minimise_counterexamples(
                || ElectionModel::new(sc.cfg.clone()),
                &mut res,
                &sc.shown_examples,
            );
            let live = sc.liveness.map(|_| liveness_election(&sc.cfg));
            ScenarioRun::new(
                sc.title,
                sc.expect_violated,
                sc.shown_examples,
                sc.cfg.planted_bug.is_some(),
                res,
                sc.liveness,
                live,
            )
        })
        .collect()
}

/// Runs the scenarios selected by `filters` and writes `<out>/election.md`,
/// `<out>/election.json` and `<out>/election-traces.json` (the reference configuration's
/// traces). Returns whether every scenario behaved as expected.
pub fn write_report_files(opts: &RunOpts, filters: &[String], out: &str) -> Result<bool, String> {
    let runs = run_scenarios(opts, filters);
    let ok = write_report(out, "election", "Election model", &runs).map_err(|e| e.to_string())?;
    write_traces(
        &ElectionConfig::default(),
        8,
        &format!("{out}/election-traces.json"),
    )?;
    Ok(ok)
}

// ----- traces ----------------------------------------------------------------------------------

/// One run of slots as a node's slot table has it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SlotsView {
    pub first: u16,
    pub last: u16,
    /// Index of the owner (`None`: unowned).
    pub owner: Option<usize>,
    pub owner_name: Option<String>,
    pub config_epoch: u64,
}

/// The observable cluster state of one node after a step (what CLUSTER NODES / INFO show).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct NodeView {
    pub node: usize,
    pub name: String,
    /// The 40-hex node id.
    pub node_id: String,
    pub up: bool,
    pub role: String,
    /// Index of the master a replica follows.
    pub master: Option<usize>,
    pub current_epoch: u64,
    pub config_epoch: u64,
    pub last_vote_epoch: u64,
    pub repl_offset: u64,
    pub slots: Vec<SlotsView>,
}

/// One externally drivable step and the state after it.
#[derive(Clone, Debug, Serialize)]
pub struct TraceStep {
    pub action: String,
    /// write / replicate / crash / deliver / drop / gossip / timer.
    pub kind: String,
    pub src: Option<usize>,
    pub dst: Option<usize>,
    /// The delivered or lost message, structured.
    pub msg: Option<ClusterMsg>,
    /// The clock (ms) after the step; timers fire at their node's deadline.
    pub now_ms: u64,
    /// The highest offset acknowledged to a client's WAIT so far.
    pub wait_acked_offset: u64,
    pub after: Vec<NodeView>,
}

pub type ElectionTrace = Trace<ElectionConfig, TraceStep>;

fn index_of(s: &ElectionState, id: NodeId) -> Option<usize> {
    s.nodes.iter().position(|n| n.id() == id)
}

/// Every node's observable state.
pub fn observe(s: &ElectionState) -> Vec<NodeView> {
    s.nodes
        .iter()
        .enumerate()
        .map(|(i, n)| NodeView {
            node: i,
            name: name(i),
            node_id: n.id().to_string(),
            up: i != FAILING || !s.master_failed,
            role: match n.role() {
                Role::Master => "master".into(),
                Role::Replica { .. } => "slave".into(),
            },
            master: match n.role() {
                Role::Master => None,
                Role::Replica { master } => index_of(s, master),
            },
            current_epoch: n.current_epoch(),
            config_epoch: n.config_epoch(),
            last_vote_epoch: n.last_vote_epoch(),
            repl_offset: n.repl_offset(),
            slots: n
                .slots()
                .runs()
                .iter()
                .map(|run| SlotsView {
                    first: run.range.start,
                    last: run.range.end,
                    owner: run.owner.and_then(|o| index_of(s, o)),
                    owner_name: run.owner.map(|o| format!("{o:?}")),
                    config_epoch: run.config_epoch,
                })
                .collect(),
        })
        .collect()
}

/// Replays `actions` and returns the trace, or an error naming the first step that is not
/// enabled or is ignored (the re-validation every exported path goes through).
pub fn replay(
    model: &ElectionModel,
    name: &str,
    actions: &[ElectionAction],
) -> Result<ElectionTrace, String> {
    let steps = replay_steps(model, name, actions, |before, a, after| {
        let envelope = |index: usize| before.in_flight.get(index);
        let (kind, src, dst, msg) = match *a {
            ElectionAction::Write => ("write", None, Some(FAILING), None),
            ElectionAction::Replicate(r) => ("replicate", Some(FAILING), Some(r), None),
            ElectionAction::Crash => ("crash", None, Some(FAILING), None),
            ElectionAction::Deliver { index } => {
                let e = envelope(index);
                (
                    "deliver",
                    e.map(|e| e.src),
                    e.map(|e| e.dst),
                    e.map(|e| e.msg.clone()),
                )
            }
            ElectionAction::Drop { index } => {
                let e = envelope(index);
                (
                    "drop",
                    e.map(|e| e.src),
                    e.map(|e| e.dst),
                    e.map(|e| e.msg.clone()),
                )
            }
            ElectionAction::Gossip { src, dst } => ("gossip", Some(src), Some(dst), None),
            ElectionAction::Timeout { node, .. } => ("timer", None, Some(node), None),
        };
        TraceStep {
            action: model.describe(before, a),
            kind: kind.into(),
            src,
            dst,
            msg,
            now_ms: after.now_ms,
            wait_acked_offset: after.acked_offset,
            after: observe(after),
        }
    })?;
    Ok(Trace {
        name: name.into(),
        config: model.cfg.clone(),
        steps,
    })
}

/// Exports up to `count` re-validated traces of `cfg` (an example of each `sometimes`
/// property, then random walks) to `out`.
pub fn write_traces(cfg: &ElectionConfig, count: usize, out: &str) -> Result<usize, String> {
    let model = ElectionModel::new(cfg.clone());
    let traces = collect_traces(&model, model.clone(), count, |name, actions| {
        replay(&model, name, actions)
    })?;
    write_json(out, &traces)?;
    Ok(traces.len())
}

/// The model action that an exported step describes in state `s` (the inverse of
/// [`replay`]'s step mapping, for drivers that replay traces): the first enabled action of
/// that kind with the same nodes and, for deliveries and losses, the same message.
pub fn action_for(
    model: &ElectionModel,
    s: &ElectionState,
    kind: &str,
    src: Option<usize>,
    dst: Option<usize>,
    msg: Option<&ClusterMsg>,
) -> Option<ElectionAction> {
    let mut enabled = Vec::new();
    model.actions(s, &mut enabled);
    let envelope_matches = |index: usize| {
        s.in_flight
            .get(index)
            .is_some_and(|e| Some(e.src) == src && Some(e.dst) == dst && Some(&e.msg) == msg)
    };
    enabled.into_iter().find(|a| match (kind, *a) {
        ("write", ElectionAction::Write) | ("crash", ElectionAction::Crash) => true,
        ("replicate", ElectionAction::Replicate(r)) => Some(r) == dst,
        ("deliver", ElectionAction::Deliver { index }) => envelope_matches(index),
        ("drop", ElectionAction::Drop { index }) => envelope_matches(index),
        ("gossip", ElectionAction::Gossip { src: a, dst: b }) => Some(a) == src && Some(b) == dst,
        ("timer", ElectionAction::Timeout { node, .. }) => Some(node) == dst,
        _ => false,
    })
}
