//! Replaying a settled trace on real processes.
//!
//! For each trace: start the cluster ([`Cluster::start`]), wait until it shows one of the
//! start-up states the model allows, then for each step drive it (a client command, a proxy
//! cut, `kill -9`, a restart) and wait, within [`SETTLE_DEADLINE`], until the cluster shows one
//! of the quiescent states the model allows after it, twice in a row [`STABLE_GAP`] apart.
//! The model side is recomputed from the trace's steps ([`SettledRun`]), so every trace is
//! re-validated as it is replayed, and it is narrowed after each step to the states that agree
//! with what was observed.

use crate::cluster::{Cluster, RealNode, Target};
use crate::compare::{matching, Binding};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{Duration, Instant};
use verdis_core::resp::Frame;
use verdis_model::replication::GARBAGE;
use verdis_model::settled::{EnvStep, Projection, SettledRun, SettledTrace};

/// How long the cluster may take to become quiet after a step (Redis reconnects from its
/// once-a-second cron, full syncs take a moment).
pub const SETTLE_DEADLINE: Duration = Duration::from_secs(10);
/// A match must hold on two observations this far apart.
pub const STABLE_GAP: Duration = Duration::from_millis(120);

/// The outcome of one trace.
#[derive(Clone, Debug, Serialize)]
pub struct TraceResult {
    pub name: String,
    pub target: String,
    pub passed: bool,
    /// The first step that differed (0: start-up), with expected and observed.
    pub failure: Option<Failure>,
    pub millis: u128,
}

#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    pub step: usize,
    pub what: String,
    pub differences: Vec<String>,
    pub expected: Vec<Projection>,
    pub observed: String,
}

/// A known disagreement, read from conformance/differences.json: a trace (by name) on a target
/// that is expected to differ, with the reason.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KnownDifference {
    pub trace: String,
    pub target: String,
    /// `model bug`, `Verdis difference` or `Redis bug`.
    pub kind: String,
    pub reason: String,
}

pub fn load_differences(path: &Path) -> Result<Vec<KnownDifference>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Replays `trace` on `target`. `trace_dir`: where Verdis nodes write protocol traces.
pub fn replay(
    trace: &SettledTrace,
    target: Target,
    workdir: &Path,
    trace_dir: Option<&Path>,
) -> TraceResult {
    let started = Instant::now();
    let failure = run(trace, target, workdir, trace_dir).err();
    TraceResult {
        name: trace.name.clone(),
        target: target.name().to_string(),
        passed: failure.is_none(),
        failure,
        millis: started.elapsed().as_millis(),
    }
}

fn fail(step: usize, what: impl Into<String>) -> Failure {
    Failure {
        step,
        what: what.into(),
        differences: Vec::new(),
        expected: Vec::new(),
        observed: String::new(),
    }
}

fn run(
    trace: &SettledTrace,
    target: Target,
    workdir: &Path,
    trace_dir: Option<&Path>,
) -> Result<(), Failure> {
    let cfg = &trace.config;
    let mut model = SettledRun::start(cfg).map_err(|e| fail(0, e))?;
    if model.projections() != trace.start {
        return Err(fail(0, "the trace file's start-up states are not the model's (stale trace file: regenerate it)"));
    }
    let mut cluster = Cluster::start(target, cfg, workdir, trace_dir).map_err(|e| fail(0, e))?;
    let mut binding = Binding::default();
    // When the last `SetTtl` step ran (its TTL runs from then).
    let mut ttl_set_at: Option<Instant> = None;
    settle(
        &cluster,
        &mut model,
        &mut binding,
        0,
        "start-up",
        cfg.big_write,
    )?;
    for (i, st) in trace.steps.iter().enumerate() {
        let n = i + 1;
        let what = st.step.to_string();
        let restart_master = match st.step {
            EnvStep::Restart { node } => model.restart_master(node),
            _ => None,
        };
        model.step(st.step).map_err(|e| fail(n, e))?;
        if model.projections() != st.expect {
            return Err(fail(
                n,
                format!("{what}: the trace file's states are not the model's (stale trace file: regenerate it)"),
            ));
        }
        drive(
            &mut cluster,
            &model,
            st.step,
            restart_master,
            cfg,
            &mut ttl_set_at,
        )
        .map_err(|e| fail(n, format!("{what}: {e}")))?;
        settle(&cluster, &mut model, &mut binding, n, &what, cfg.big_write)?;
    }
    Ok(())
}

/// Performs one step on the real cluster, checking the replies the model predicts.
fn drive(
    cluster: &mut Cluster,
    model: &SettledRun,
    step: EnvStep,
    restart_master: Option<usize>,
    cfg: &verdis_model::replication::ModelCfg,
    ttl_set_at: &mut Option<Instant>,
) -> Result<(), String> {
    match step {
        EnvStep::Write { id } => client_write(cluster, model, id, cfg)?,
        EnvStep::WriteOverLimit { id } => {
            // The smallest hard limit for replicas: both servers raise it to the backlog's
            // size, which the write (`big_write`) is larger than; the default comes back
            // right after the write.
            let set = |limit: &str| {
                cluster
                    .cmd(0, &["CONFIG", "SET", "client-output-buffer-limit", limit])
                    .and_then(|r| expect_ok(r, "CONFIG SET client-output-buffer-limit"))
            };
            set("replica 1 0 0")?;
            let wrote = client_write(cluster, model, id, cfg);
            set(REPLICA_OBUF_DEFAULT)?;
            wrote?
        }
        EnvStep::Stall { replica } => cluster.stall(replica, true),
        EnvStep::Unstall { replica } => cluster.stall(replica, false),
        EnvStep::Cut { replica } => {
            for n in &cluster.nodes {
                n.proxy.cut(replica);
            }
        }
        EnvStep::Crash { node } => {
            if cfg.persistence {
                // Every change is saved in the model; a quiet node's SAVE is the same.
                cluster.cmd(node, &["SAVE"])?;
            }
            cluster.kill9(node);
        }
        EnvStep::Restart { node } => {
            if !cfg.persistence {
                let _ = std::fs::remove_file(cluster.nodes[node].dir.join("dump.rdb"));
            }
            cluster.spawn(node, restart_master)?;
        }
        EnvStep::Failover | EnvStep::FailoverBack => {
            // Node 0 hands over to node 1; node 1, switching back, to node 0.
            let (from, to) = if step == EnvStep::Failover {
                (0, 1)
            } else {
                (1, 0)
            };
            let port = cluster.nodes[to].proxy.port.to_string();
            let mut argv = vec!["FAILOVER", "TO", "127.0.0.1", &port];
            if step == EnvStep::Failover && cfg.switchover.is_some_and(|s| s.force) {
                argv.extend(["TIMEOUT", "1000", "FORCE"]);
            }
            let ok = matches!(cluster.cmd(from, &argv)?, Frame::Simple(_));
            match model.failover_accepted(from) {
                Some(accepted) if accepted != ok => {
                    return Err(format!(
                        "FAILOVER was {}, the model {} it",
                        if ok { "accepted" } else { "refused" },
                        if accepted { "accepts" } else { "refuses" }
                    ))
                }
                _ => {}
            }
        }
        EnvStep::Wait => {
            // More replicas than exist: WAIT always asks for acks (GETACK into the stream).
            let n = (cfg.node_count()).to_string();
            let _ = cluster.cmd(0, &["WAIT", &n, "100"]);
        }
        EnvStep::ReplicaofNoOne { node } => {
            expect_ok(
                cluster.cmd(node, &["REPLICAOF", "NO", "ONE"])?,
                "REPLICAOF NO ONE",
            )?;
        }
        EnvStep::Replicaof { node, master } => {
            let port = cluster.nodes[master].proxy.port.to_string();
            let reply = cluster.cmd(node, &["REPLICAOF", "127.0.0.1", &port])?;
            expect_ok(reply, "REPLICAOF")?;
        }
        EnvStep::Partition { node } => cluster.partition(node, true),
        EnvStep::Heal { node } => cluster.partition(node, false),
        EnvStep::SetTtl { id } => {
            let key = format!("k{id}");
            let ttl = TTL.as_millis().to_string();
            match cluster.cmd(0, &["PEXPIRE", &key, &ttl])? {
                Frame::Integer(1) => *ttl_set_at = Some(Instant::now()),
                other => return Err(format!("PEXPIRE answered {other:?}, the model says 1")),
            }
        }
        EnvStep::TtlPasses => {
            // Past the TTL by a margin; the master deletes the key when its expiry cycle
            // samples it (or a read touches it), which `settle` waits for.
            let set = ttl_set_at.ok_or("time passes, but no TTL was set")?;
            let due = set + TTL + Duration::from_millis(50);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        EnvStep::GarbleStream { replica } => inject(cluster, replica, true, GARBAGE)?,
        EnvStep::GarbleToMaster { replica } => {
            // A malformed REPLCONF first (both servers ignore an ACK that is not a number),
            // then the broken frame, on which the master closes the link.
            let mut bytes = Vec::new();
            verdis_core::resp::encode_command(&["REPLCONF", "ACK", "not-a-number"], &mut bytes);
            bytes.extend_from_slice(GARBAGE);
            inject(cluster, replica, false, &bytes)?
        }
    }
    Ok(())
}

/// `client-output-buffer-limit replica` as both servers start with.
const REPLICA_OBUF_DEFAULT: &str = "replica 268435456 67108864 60";

/// `SET k<id> v<id>` on node 0; its reply must be the one the model's client got.
fn client_write(
    cluster: &Cluster,
    model: &SettledRun,
    id: u8,
    cfg: &verdis_model::replication::ModelCfg,
) -> Result<(), String> {
    let args = verdis_model::replication::write_args(id, cfg.big_write);
    let args: Vec<String> = args
        .iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let ok = matches!(cluster.cmd(0, &argv), Ok(Frame::Simple(_)));
    // The model's client records +OK per write id.
    let acked: Vec<bool> = model
        .projections()
        .iter()
        .map(|p| p.acked & (1 << id) != 0)
        .collect();
    if !acked.contains(&ok) {
        return Err(format!(
            "the write was answered {}, the model says {}",
            if ok { "+OK" } else { "with an error" },
            if ok { "error" } else { "+OK" }
        ));
    }
    Ok(())
}

/// The TTL of `SetTtl`: long enough that no key expires while the steps before `TtlPasses`
/// settle.
const TTL: Duration = Duration::from_millis(2000);

/// Slips `bytes` into the replication link of `replica` (through whichever proxy carries it).
fn inject(
    cluster: &Cluster,
    replica: usize,
    toward_replica: bool,
    bytes: &[u8],
) -> Result<(), String> {
    let sent: usize = cluster
        .nodes
        .iter()
        .map(|n| n.proxy.inject(replica, toward_replica, bytes))
        .sum();
    if sent == 1 {
        Ok(())
    } else {
        Err(format!(
            "node {replica} has {sent} open replication links, the model says 1"
        ))
    }
}

/// The model's operator commands always succeed: anything but `+OK...` is a difference.
fn expect_ok(reply: Frame, what: &str) -> Result<(), String> {
    match reply {
        Frame::Simple(_) => Ok(()),
        other => Err(format!("{what} answered {other:?}, the model says +OK")),
    }
}

/// Waits until the cluster shows one of the model's quiescent states (stable across
/// [`STABLE_GAP`]), then narrows the model to the states that agree and fixes the binding.
fn settle(
    cluster: &Cluster,
    model: &mut SettledRun,
    binding: &mut Binding,
    step: usize,
    what: &str,
    big_write: Option<u32>,
) -> Result<(), Failure> {
    let expected = model.projections();
    let deadline = Instant::now() + SETTLE_DEADLINE;
    let mut last: Vec<RealNode>;
    let mut diffs;
    loop {
        last = cluster.observe(big_write);
        match matching(&expected, &last, binding) {
            Ok((_, b)) => {
                std::thread::sleep(STABLE_GAP);
                let again = cluster.observe(big_write);
                if again == last {
                    *binding = b;
                    let binding = binding.clone();
                    model.retain(|p| crate::compare::compare(p, &again, &binding).is_ok());
                    return Ok(());
                }
                diffs = vec!["the cluster moved on after a match".to_string()];
            }
            Err(d) => diffs = d,
        }
        if Instant::now() > deadline {
            return Err(Failure {
                step,
                what: what.to_string(),
                differences: diffs,
                expected,
                observed: format!("{last:#?}"),
            });
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}
