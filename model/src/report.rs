//! Running the replication model: checks with a progress line and a summary, exact liveness,
//! the Explorer, the generated report (docs/model/) and conformance traces.

use crate::liveness::{check_eventually, Outcome};
use crate::replication::{
    dataset_digest, fairness_class, format_action, format_msg, InnerAction, ModelCfg, ReplModel,
    ReplState, SwitchoverCfg,
};
use serde::Serialize;
use stateright::actor::ActorModelAction;
use stateright::{Checker, Expectation, Model};
use std::io::Write;
use std::time::{Duration, Instant};
use verdis_core::repl::{LinkPhase, PlantedBug, Role};

/// How to run a check.
#[derive(Clone, Debug)]
pub struct RunOpts {
    pub bfs: bool,
    pub threads: usize,
    pub properties: Vec<String>,
    pub progress: bool,
}

impl Default for RunOpts {
    fn default() -> Self {
        RunOpts {
            bfs: false,
            threads: 2,
            properties: Vec::new(),
            progress: false,
        }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub enum Status {
    /// `always` held everywhere / `sometimes` was reached.
    Pass,
    /// `always` was violated (counterexample attached).
    Violated,
    /// `sometimes` was never reached.
    Unreached,
}

#[derive(Clone, Debug, Serialize)]
pub struct PropertyResult {
    pub name: String,
    pub kind: String,
    pub status: Status,
    /// Counterexample (violations) or example (sometimes), as readable steps.
    pub steps: Vec<String>,
    /// The path replayed through the model to a state that shows the verdict.
    pub revalidated: Option<bool>,
    pub mermaid: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CheckResult {
    pub model: String,
    pub config: ModelCfg,
    pub search: String,
    pub threads: usize,
    pub states: usize,
    pub unique_states: usize,
    pub max_depth: usize,
    pub seconds: f64,
    pub unique_states_per_second: f64,
    pub properties: Vec<PropertyResult>,
}

impl CheckResult {
    /// True when every property passed.
    pub fn ok(&self) -> bool {
        self.properties.iter().all(|p| p.status == Status::Pass)
    }

    pub fn violated(&self, name: &str) -> bool {
        self.properties
            .iter()
            .any(|p| p.name == name && p.status == Status::Violated)
    }

    /// Prints the summary; returns `ok()`.
    pub fn print(&self) -> bool {
        println!(
            "model {}: {} states, {} unique, max depth {}, {:.2} s, {:.0} unique states/s ({}, {} threads)",
            self.model, self.states, self.unique_states, self.max_depth, self.seconds, self.unique_states_per_second, self.search, self.threads
        );
        for p in &self.properties {
            let mark = match p.status {
                Status::Pass => "ok  ",
                Status::Violated => "FAIL",
                Status::Unreached => "FAIL (never reached)",
            };
            println!("  {mark} {} {}", p.kind, p.name);
            if p.revalidated == Some(false) {
                println!("       (the recorded path did not replay to this verdict)");
            }
            if p.status == Status::Violated {
                for (i, s) in p.steps.iter().enumerate() {
                    println!("       {:>3}. {s}", i + 1);
                }
            }
        }
        self.ok()
    }
}

/// Checks the replication model for `cfg`.
pub fn check_replication(cfg: &ModelCfg, opts: &RunOpts) -> CheckResult {
    let model = cfg.clone().into_model().only(opts.properties.clone());
    let start = Instant::now();
    let builder = model.checker().threads(opts.threads.max(1));
    if opts.bfs {
        finish(cfg, opts, "bfs", builder.spawn_bfs(), start)
    } else {
        finish(cfg, opts, "dfs", builder.spawn_dfs(), start)
    }
}

fn finish<C: Checker<ReplModel>>(
    cfg: &ModelCfg,
    opts: &RunOpts,
    search: &str,
    checker: C,
    start: Instant,
) -> CheckResult {
    let mut last_print = Instant::now();
    while !checker.is_done() {
        std::thread::sleep(Duration::from_millis(100));
        if opts.progress && last_print.elapsed() >= Duration::from_secs(2) {
            last_print = Instant::now();
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "  checking: {} states, {} unique, depth {}, {:.1} s, {:.0} unique/s",
                checker.state_count(),
                checker.unique_state_count(),
                checker.max_depth(),
                secs,
                checker.unique_state_count() as f64 / secs.max(1e-9)
            );
            let _ = std::io::stderr().flush();
        }
    }
    let checker = checker.join();
    let seconds = start.elapsed().as_secs_f64();
    let model = checker.model();
    let mut properties = Vec::new();
    for p in model.properties() {
        let path = checker.discovery(p.name);
        let (kind, status) = match (&p.expectation, &path) {
            (Expectation::Always, None) => ("always", Status::Pass),
            (Expectation::Always, Some(_)) => ("always", Status::Violated),
            (Expectation::Sometimes, Some(_)) => ("sometimes", Status::Pass),
            (Expectation::Sometimes, None) => ("sometimes", Status::Unreached),
            (Expectation::Eventually, None) => ("eventually", Status::Pass),
            (Expectation::Eventually, Some(_)) => ("eventually", Status::Violated),
        };
        let actions: Vec<InnerAction> = path.map(|p| p.into_actions()).unwrap_or_default();
        // Re-validate the path by replaying it: every step enabled and taken, and the last
        // state violates (always) or satisfies (sometimes) the property.
        let revalidated = (!actions.is_empty()).then(|| {
            replay_states(model, &actions).is_some_and(|last| {
                (p.condition)(model, &last) == (p.expectation == Expectation::Sometimes)
            })
        });
        properties.push(PropertyResult {
            name: p.name.to_string(),
            kind: kind.to_string(),
            revalidated,
            status,
            steps: actions.iter().map(format_action).collect(),
            mermaid: (!actions.is_empty()).then(|| mermaid(cfg, &actions)),
        });
    }
    let unique = checker.unique_state_count();
    CheckResult {
        model: "replication".into(),
        config: cfg.clone(),
        search: search.into(),
        threads: opts.threads.max(1),
        states: checker.state_count(),
        unique_states: unique,
        max_depth: checker.max_depth(),
        seconds,
        unique_states_per_second: unique as f64 / seconds.max(1e-9),
        properties,
    }
}

/// A Mermaid sequence diagram of a path.
pub fn mermaid(cfg: &ModelCfg, actions: &[InnerAction]) -> String {
    let mut out = String::from("sequenceDiagram\n");
    for i in 0..cfg.node_count() {
        out.push_str(&format!("    participant N{i} as node {i}\n"));
    }
    out.push_str("    participant C as client\n");
    let who = |id: usize| {
        if id == cfg.client_id() {
            "C".to_string()
        } else {
            format!("N{id}")
        }
    };
    for a in actions {
        match a {
            ActorModelAction::Deliver { src, dst, msg } => out.push_str(&format!(
                "    {}->>{}: {}\n",
                who(usize::from(*src)),
                who(usize::from(*dst)),
                format_msg(msg).replace(';', ",")
            )),
            ActorModelAction::Timeout(id, t) => out.push_str(&format!(
                "    Note over {}: timer {:?}\n",
                who(usize::from(*id)),
                t
            )),
            ActorModelAction::Crash(id) => {
                out.push_str(&format!("    Note over {}: CRASH\n", who(usize::from(*id))))
            }
            ActorModelAction::Recover(id) => out.push_str(&format!(
                "    Note over {}: restart\n",
                who(usize::from(*id))
            )),
            other => out.push_str(&format!("    Note over N0: {other:?}\n")),
        }
    }
    out
}

/// Result of the exact liveness check.
#[derive(Clone, Debug, Serialize)]
pub struct LivenessResult {
    pub config: ModelCfg,
    pub property: String,
    pub states: usize,
    pub edges: usize,
    pub seconds: f64,
    /// "holds", "violated" or "incomplete: ..."
    pub outcome: String,
    pub lasso_prefix: Vec<String>,
    pub lasso_cycle: Vec<String>,
}

impl LivenessResult {
    pub fn holds(&self) -> bool {
        self.outcome == "holds"
    }

    pub fn print(&self) -> bool {
        println!(
            "liveness \"{}\": {} ({} states, {} edges, {:.2} s)",
            self.property, self.outcome, self.states, self.edges, self.seconds
        );
        if !self.holds() {
            for (i, s) in self.lasso_prefix.iter().enumerate() {
                println!("       {:>3}. {s}", i + 1);
            }
            if !self.lasso_cycle.is_empty() {
                println!("       then forever:");
                for s in &self.lasso_cycle {
                    println!("            {s}");
                }
            }
        }
        self.holds()
    }
}

pub const LIVENESS_NAME: &str =
    "every replica reaches streaming at its master's offset (weak fairness)";

/// Exact liveness under weak fairness: every fair execution reaches `converged`.
pub fn liveness_replication(cfg: &ModelCfg) -> LivenessResult {
    let model = cfg.clone().into_model();
    let start = Instant::now();
    let report = check_eventually(&model, |s| model.converged(s), fairness_class, 3_000_000);
    let (outcome, prefix, cycle) = match &report.outcome {
        Outcome::Holds => ("holds".to_string(), vec![], vec![]),
        Outcome::Violated(l) => (
            if l.is_deadlock() {
                "violated (deadlock)".to_string()
            } else {
                "violated (fair cycle)".to_string()
            },
            l.prefix.iter().map(|(a, _)| format_action(a)).collect(),
            l.cycle.iter().map(|(a, _)| format_action(a)).collect(),
        ),
        Outcome::Incomplete { reason } => (format!("incomplete: {reason}"), vec![], vec![]),
    };
    LivenessResult {
        config: cfg.clone(),
        property: LIVENESS_NAME.into(),
        states: report.states,
        edges: report.edges,
        seconds: start.elapsed().as_secs_f64(),
        outcome,
        lasso_prefix: prefix,
        lasso_cycle: cycle,
    }
}

/// Serves the Explorer (blocks forever).
pub fn explore_replication(cfg: ModelCfg, port: u16) {
    let addr = format!("127.0.0.1:{port}");
    println!("Explorer on http://{addr}/");
    cfg.into_model().checker().threads(2).serve(addr.as_str());
    loop {
        std::thread::park();
    }
}

// ----- the report ------------------------------------------------------------------------------

/// One configuration of the report with what it is expected to show.
pub struct Scenario {
    pub title: &'static str,
    pub cfg: ModelCfg,
    /// Properties expected to be violated (planted bugs, FORCE); empty = all must pass.
    pub expect_violated: Vec<&'static str>,
    pub liveness: Option<bool>,
}

/// The configurations the report (and CI) run.
pub fn scenarios() -> Vec<Scenario> {
    use crate::replication::names::*;
    let base = ModelCfg::default();
    let small = ModelCfg {
        replicas: 1,
        switchover: None,
        ..base.clone()
    };
    vec![
        Scenario {
            title:
                "default: 1 master, 2 replicas, 2 writes, backlog 40 B, 1 fault, FAILOVER TO node 1",
            cfg: base.clone(),
            expect_violated: vec![],
            liveness: None,
        },
        Scenario {
            title: "no switchover, backlog 64 B (the longer window)",
            cfg: ModelCfg {
                switchover: None,
                backlog_bytes: 64,
                ..base.clone()
            },
            expect_violated: vec![],
            liveness: None,
        },
        Scenario {
            title: "switchover with FORCE, 1 replica (Redis semantics: may lose writes)",
            cfg: ModelCfg {
                replicas: 1,
                switchover: Some(SwitchoverCfg { force: true }),
                ..base.clone()
            },
            expect_violated: vec![SWITCHOVER_LOSES_NO_WRITE],
            liveness: None,
        },
        Scenario {
            title:
                "liveness (exact, and bounded response of 60 steps): 1 replica, switchover, 1 fault",
            cfg: ModelCfg {
                replicas: 1,
                bounded_response: Some(60),
                ..base.clone()
            },
            expect_violated: vec![],
            liveness: Some(true),
        },
        Scenario {
            title: "liveness: 1 replica, no persistence, 1 fault",
            cfg: ModelCfg {
                persistence: false,
                ..small.clone()
            },
            expect_violated: vec![],
            liveness: Some(true),
        },
        Scenario {
            title: "planted bug: replicas never retry (exact liveness and bounded response)",
            cfg: ModelCfg {
                bug: Some(PlantedBug::ReplicaNeverRetries),
                bounded_response: Some(60),
                ..small.clone()
            },
            expect_violated: vec![BOUNDED_RESPONSE],
            liveness: Some(false),
        },
        Scenario {
            title: "planted bug: +CONTINUE outside the backlog",
            cfg: ModelCfg {
                bug: Some(PlantedBug::ContinueOutsideBacklog),
                ..small.clone()
            },
            expect_violated: vec![
                CONTINUE_IN_BACKLOG,
                PREFIX_OF_HISTORY,
                SAME_POSITION_SAME_DATA,
                NO_DUPLICATE_WRITE,
            ],
            liveness: None,
        },
        Scenario {
            title: "planted bug: replica acks one byte more than it applied",
            cfg: ModelCfg {
                bug: Some(PlantedBug::AckBeyondApplied),
                ..small.clone()
            },
            expect_violated: vec![ACK_WITHIN_SENT],
            liveness: None,
        },
        Scenario {
            title: "planted bug: full sync inside the backlog window",
            cfg: ModelCfg {
                bug: Some(PlantedBug::FullSyncInsideBacklog),
                ..small.clone()
            },
            expect_violated: vec![NO_FULL_INSIDE_WINDOW],
            liveness: None,
        },
    ]
}

/// Replaces each violation's path with a shortest one: breadth-first, that property alone
/// (discoveries of different properties overwrite each other's paths otherwise).
pub fn minimise_counterexamples(cfg: &ModelCfg, res: &mut CheckResult) {
    for p in res
        .properties
        .iter_mut()
        .filter(|p| p.status == Status::Violated)
    {
        let opts = RunOpts {
            bfs: true,
            properties: vec![p.name.clone()],
            ..RunOpts::default()
        };
        let short = check_replication(cfg, &opts);
        if let Some(q) = short
            .properties
            .into_iter()
            .find(|q| q.name == p.name && q.status == Status::Violated)
        {
            if q.revalidated == Some(true) && q.steps.len() <= p.steps.len() {
                *p = q;
            }
        }
    }
}

#[derive(Serialize)]
struct ScenarioJson<'a> {
    title: &'a str,
    expect_violated: &'a [&'static str],
    as_expected: bool,
    check: &'a CheckResult,
    liveness: Option<&'a LivenessResult>,
}

/// Runs every scenario and writes `<out>/replication.md` and `<out>/replication.json`.
/// Returns whether every scenario behaved as expected.
pub fn write_replication_report(opts: &RunOpts, out: &str) -> std::io::Result<bool> {
    std::fs::create_dir_all(out)?;
    let mut md = String::from("# Replication model: generated report\n\nGenerated by `verdis-check report`; see docs/model.md for what the model and each property mean.\n\n");
    let mut json = Vec::new();
    let mut results = Vec::new();
    let mut all = true;
    for sc in scenarios() {
        eprintln!("report: {}", sc.title);
        let mut res = check_replication(
            &sc.cfg,
            &RunOpts {
                progress: opts.progress,
                ..opts.clone()
            },
        );
        minimise_counterexamples(&sc.cfg, &mut res);
        let live = sc.liveness.map(|_| liveness_replication(&sc.cfg));
        // Every violation must be expected, the first expected one must occur, and a
        // `sometimes` may go unreached only in a broken variant.
        let safety_ok = res.properties.iter().all(|p| match p.status {
            Status::Violated => sc.expect_violated.contains(&p.name.as_str()),
            Status::Unreached => !sc.expect_violated.is_empty() || sc.cfg.bug.is_some(),
            Status::Pass => true,
        }) && sc.expect_violated.first().is_none_or(|n| res.violated(n));
        let live_ok = match (&live, sc.liveness) {
            (Some(l), Some(expect)) => l.holds() == expect,
            _ => true,
        };
        let as_expected = safety_ok && live_ok;
        all &= as_expected;
        results.push((sc, res, live, as_expected));
    }
    md.push_str("## Summary\n\n| scenario | as expected | unique states | max depth | time (s) | unique states/s |\n|---|---|---|---|---|---|\n");
    for (sc, res, _, ok) in &results {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {:.2} | {:.0} |\n",
            sc.title,
            if *ok { "yes" } else { "**NO**" },
            res.unique_states,
            res.max_depth,
            res.seconds,
            res.unique_states_per_second
        ));
    }
    for (sc, res, live, ok) in &results {
        md.push_str(&format!(
            "\n## {}\n\nConfiguration: `{}`\n\n",
            sc.title,
            serde_json::to_string(&sc.cfg).unwrap_or_default()
        ));
        md.push_str(&format!(
            "{} states, {} unique, max depth {}, {:.2} s ({}, {} threads). Behaved as expected: {}.\n\n| property | kind | result |\n|---|---|---|\n",
            res.states, res.unique_states, res.max_depth, res.seconds, res.search, res.threads, if *ok { "yes" } else { "NO" }
        ));
        for p in &res.properties {
            md.push_str(&format!("| {} | {} | {:?} |\n", p.name, p.kind, p.status));
        }
        if let Some(l) = live {
            md.push_str(&format!(
                "\nLiveness ({}): **{}** ({} states, {} edges, {:.2} s)\n",
                l.property, l.outcome, l.states, l.edges, l.seconds
            ));
            if !l.holds() {
                md.push_str("\nLasso prefix:\n\n");
                for (i, s) in l.lasso_prefix.iter().enumerate() {
                    md.push_str(&format!("{}. `{}`\n", i + 1, s));
                }
                md.push_str("\nthen forever:\n\n");
                for s in &l.lasso_cycle {
                    md.push_str(&format!("- `{s}`\n"));
                }
            }
        }
        for p in res
            .properties
            .iter()
            .filter(|p| p.status == Status::Violated)
        {
            md.push_str(&format!("\n### Counterexample: {}\n\n", p.name));
            for (i, s) in p.steps.iter().enumerate() {
                md.push_str(&format!("{}. `{}`\n", i + 1, s));
            }
            md.push_str(&format!(
                "\nShortest path (breadth-first, this property alone), re-validated by replay: {}.\n",
                if p.revalidated == Some(true) { "yes" } else { "no" }
            ));
            if let Some(m) = &p.mermaid {
                md.push_str(&format!("\n```mermaid\n{m}```\n"));
            }
        }
    }
    for (sc, res, live, ok) in &results {
        json.push(ScenarioJson {
            title: sc.title,
            expect_violated: &sc.expect_violated,
            as_expected: *ok,
            check: res,
            liveness: live.as_ref(),
        });
    }
    std::fs::write(format!("{out}/replication.md"), md)?;
    std::fs::write(
        format!("{out}/replication.json"),
        serde_json::to_string_pretty(&json).map_err(std::io::Error::other)?,
    )?;
    Ok(all)
}

// ----- traces ----------------------------------------------------------------------------------

/// The observable replication state of one node after a step (what INFO/ROLE show).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Observed {
    pub node: usize,
    pub up: bool,
    pub role: String,
    pub master: Option<u32>,
    pub master_replid: String,
    pub master_replid2: String,
    pub master_repl_offset: u64,
    pub second_repl_offset: i64,
    pub link_status: Option<String>,
    pub sync_full: u64,
    pub sync_partial_ok: u64,
    pub sync_partial_err: u64,
    pub dataset: Vec<u8>,
    pub dataset_digest: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct TraceStep {
    /// The externally drivable step (deliver / timer / crash / restart / client write).
    pub action: String,
    pub kind: String,
    pub src: Option<usize>,
    pub dst: Option<usize>,
    /// The delivered message (deliveries) or the fired timer (timers), structured.
    pub msg: Option<crate::replication::Msg>,
    pub timer: Option<crate::replication::Timer>,
    pub after: Vec<Observed>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Trace {
    pub name: String,
    pub config: ModelCfg,
    pub steps: Vec<TraceStep>,
}

pub fn observe(model: &ReplModel, s: &ReplState) -> Vec<Observed> {
    (0..model.cfg.node_count())
        .filter_map(|i| {
            let crate::replication::ActorState::Node(n) = &*s.sys.actor_states[i] else {
                return None;
            };
            let r = &n.repl;
            Some(Observed {
                node: i,
                up: !s.sys.crashed[i],
                role: match r.role {
                    Role::Master => "master".into(),
                    Role::Replica(_) => "slave".into(),
                },
                master: r.link().map(|l| l.master),
                master_replid: r.identity.replid.to_hex(),
                master_replid2: r.identity.replid2.to_hex(),
                master_repl_offset: r.identity.master_repl_offset,
                second_repl_offset: r.identity.second_repl_offset,
                link_status: r.link().map(|l| {
                    if l.phase == LinkPhase::Streaming {
                        "up".into()
                    } else {
                        "down".into()
                    }
                }),
                sync_full: r.stats.sync_full,
                sync_partial_ok: r.stats.sync_partial_ok,
                sync_partial_err: r.stats.sync_partial_err,
                dataset: n.data.clone(),
                dataset_digest: dataset_digest(&n.data),
            })
        })
        .collect()
}

/// Replays `actions` from the initial state and returns the trace, or an error if any step is
/// not enabled or not taken (the re-validation every exported path goes through).
pub fn replay(model: &ReplModel, name: &str, actions: &[InnerAction]) -> Result<Trace, String> {
    let mut state = model
        .init_states()
        .into_iter()
        .next()
        .ok_or("no initial state")?;
    let mut steps = Vec::new();
    for (i, a) in actions.iter().enumerate() {
        let mut enabled = Vec::new();
        model.actions(&state, &mut enabled);
        if !enabled.contains(a) {
            return Err(format!(
                "{name}: step {} ({}) is not enabled",
                i + 1,
                format_action(a)
            ));
        }
        state = model
            .next_state(&state, a.clone())
            .ok_or_else(|| format!("{name}: step {} ({}) is ignored", i + 1, format_action(a)))?;
        let (msg, timer) = match a {
            ActorModelAction::Deliver { msg, .. } => (Some(msg.clone()), None),
            ActorModelAction::Timeout(_, t) => (None, Some(*t)),
            _ => (None, None),
        };
        let (kind, src, dst) = match a {
            ActorModelAction::Deliver { src, dst, .. } => {
                ("deliver", Some(usize::from(*src)), Some(usize::from(*dst)))
            }
            ActorModelAction::Timeout(id, _) => ("timer", None, Some(usize::from(*id))),
            ActorModelAction::Crash(id) => ("crash", None, Some(usize::from(*id))),
            ActorModelAction::Recover(id) => ("restart", None, Some(usize::from(*id))),
            _ => ("other", None, None),
        };
        steps.push(TraceStep {
            action: format_action(a),
            kind: kind.into(),
            src,
            dst,
            msg,
            timer,
            after: observe(model, &state),
        });
    }
    Ok(Trace {
        name: name.into(),
        config: model.cfg.clone(),
        steps,
    })
}

/// Replays `actions` from the initial state; the last state, or `None` if a step is not
/// enabled or is ignored.
pub fn replay_states(model: &ReplModel, actions: &[InnerAction]) -> Option<ReplState> {
    let mut state = model.init_states().into_iter().next()?;
    for a in actions {
        let mut enabled = Vec::new();
        model.actions(&state, &mut enabled);
        if !enabled.contains(a) {
            return None;
        }
        state = model.next_state(&state, a.clone())?;
    }
    Some(state)
}

/// Deterministic pseudo-random walk (xorshift) of at most `max_steps` taken actions.
pub fn random_walk(model: &ReplModel, seed: u64, max_steps: usize) -> Vec<InnerAction> {
    let mut rng = seed.max(1);
    let mut state = match model.init_states().into_iter().next() {
        Some(s) => s,
        None => return vec![],
    };
    let mut path = Vec::new();
    for _ in 0..max_steps {
        let mut enabled = Vec::new();
        model.actions(&state, &mut enabled);
        let steps: Vec<_> = enabled
            .into_iter()
            .filter_map(|a| model.next_state(&state, a.clone()).map(|s| (a, s)))
            .collect();
        if steps.is_empty() {
            break;
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let (a, s) = steps[(rng % steps.len() as u64) as usize].clone();
        path.push(a);
        state = s;
    }
    path
}

/// Exports the `sometimes` examples of `cfg` plus random walks, each re-validated by replay
/// against a fresh model before it is written.
pub fn write_replication_traces(cfg: &ModelCfg, count: usize, out: &str) -> Result<usize, String> {
    let model = cfg.clone().into_model();
    let sometimes: std::collections::BTreeSet<&'static str> = model
        .properties()
        .iter()
        .filter(|p| p.expectation == Expectation::Sometimes)
        .map(|p| p.name)
        .collect();
    // Depth-first until every `sometimes` has an example (no need to finish the space).
    let checker = cfg
        .clone()
        .into_model()
        .checker()
        .threads(2)
        .finish_when(stateright::HasDiscoveries::AllOf(sometimes.clone()))
        .spawn_dfs()
        .join();
    let mut traces = Vec::new();
    for name in &sometimes {
        if traces.len() >= count {
            break;
        }
        if let Some(path) = checker.discovery(name) {
            traces.push(replay(&model, name, &path.into_actions())?);
        }
    }
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    while traces.len() < count {
        seed = seed.wrapping_add(0x9e37_79b9);
        let walk = random_walk(&model, seed, 60);
        traces.push(replay(&model, &format!("random walk {seed:x}"), &walk)?);
    }
    if let Some(dir) = std::path::Path::new(out).parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let json = serde_json::to_string_pretty(&traces).map_err(|e| e.to_string())?;
    std::fs::write(out, json).map_err(|e| e.to_string())?;
    Ok(traces.len())
}
