//! Running the models: checks with a progress line and a summary, exact liveness, the
//! Explorer, the generated report (docs/model/) and conformance traces.
//!
//! The machinery is generic over [`Reported`] (a stateright `Model` that can name itself,
//! filter its properties and describe its steps); this file holds it and the replication
//! model's half, [`election`] the election model's half.

pub mod election;

use crate::liveness::{check_eventually, Outcome};
use crate::replication::{
    dataset_digest, fairness_class, format_action, format_msg, InnerAction, ModelCfg, ReplModel,
    ReplState, SwitchoverCfg,
};
use serde::Serialize;
use stateright::actor::ActorModelAction;
use stateright::{Checker, Expectation, Model};
use std::fmt::Debug;
use std::hash::Hash;
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

/// What the report needs from a model beyond stateright's `Model`.
pub trait Reported: Model {
    /// The model's name in summaries and file names ("replication", "election").
    const NAME: &'static str;
    type Config: Serialize;
    fn config(&self) -> &Self::Config;
    /// Keeps only the properties whose name contains one of `filters` (all when empty).
    fn only(self, filters: Vec<String>) -> Self;
    /// One step in words; `before` is the state the action is taken in.
    fn describe(&self, before: &Self::State, action: &Self::Action) -> String;
    /// Mermaid participants as (id, label), in diagram order.
    fn participants(&self) -> Vec<(String, String)>;
    /// The same step as one Mermaid line (an arrow or a note, no trailing newline).
    fn diagram_line(&self, before: &Self::State, action: &Self::Action) -> String;
}

impl Reported for ReplModel {
    const NAME: &'static str = "replication";
    type Config = ModelCfg;

    fn config(&self) -> &ModelCfg {
        &self.cfg
    }

    fn only(self, filters: Vec<String>) -> ReplModel {
        ReplModel::only(self, filters)
    }

    fn describe(&self, _: &ReplState, action: &InnerAction) -> String {
        format_action(action)
    }

    fn participants(&self) -> Vec<(String, String)> {
        let mut out: Vec<_> = (0..self.cfg.node_count())
            .map(|i| (format!("N{i}"), format!("node {i}")))
            .collect();
        out.push(("C".into(), "client".into()));
        out
    }

    fn diagram_line(&self, _: &ReplState, action: &InnerAction) -> String {
        let who = |id: usize| {
            if id == self.cfg.client_id() {
                "C".to_string()
            } else {
                format!("N{id}")
            }
        };
        match action {
            ActorModelAction::Deliver { src, dst, msg } => format!(
                "    {}->>{}: {}",
                who(usize::from(*src)),
                who(usize::from(*dst)),
                format_msg(msg)
            ),
            ActorModelAction::Timeout(id, t) => {
                format!("    Note over {}: timer {:?}", who(usize::from(*id)), t)
            }
            ActorModelAction::Crash(id) => {
                format!("    Note over {}: CRASH", who(usize::from(*id)))
            }
            ActorModelAction::Recover(id) => {
                format!("    Note over {}: restart", who(usize::from(*id)))
            }
            other => format!("    Note over N0: {}", format_action(other)),
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
    /// The checked configuration (the model's own config type, as JSON).
    pub config: serde_json::Value,
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
    check(cfg.clone().into_model(), opts)
}

/// Checks `model` (only the properties `opts` names, all when none): DFS or BFS, a progress
/// line on stderr, every discovered path re-validated by replay.
pub fn check<M>(model: M, opts: &RunOpts) -> CheckResult
where
    M: Reported + Send + Sync + 'static,
    M::State: Clone + Debug + Hash + PartialEq + Send + Sync + 'static,
    M::Action: Clone + Debug + PartialEq,
{
    let model = model.only(opts.properties.clone());
    let start = Instant::now();
    let builder = model.checker().threads(opts.threads.max(1));
    if opts.bfs {
        finish(opts, "bfs", builder.spawn_bfs(), start)
    } else {
        finish(opts, "dfs", builder.spawn_dfs(), start)
    }
}

fn finish<M, C>(opts: &RunOpts, search: &str, checker: C, start: Instant) -> CheckResult
where
    M: Reported,
    M::State: Clone + Debug + Hash + PartialEq,
    M::Action: Clone + Debug + PartialEq,
    C: Checker<M>,
{
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
        // (state before, action) for every step of the recorded path.
        let steps: Vec<(M::State, M::Action)> = path
            .map(|p| {
                p.into_vec()
                    .into_iter()
                    .filter_map(|(s, a)| a.map(|a| (s, a)))
                    .collect()
            })
            .unwrap_or_default();
        let actions: Vec<M::Action> = steps.iter().map(|(_, a)| a.clone()).collect();
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
            steps: steps.iter().map(|(s, a)| model.describe(s, a)).collect(),
            mermaid: (!steps.is_empty()).then(|| mermaid(model, &steps)),
        });
    }
    let unique = checker.unique_state_count();
    CheckResult {
        model: M::NAME.into(),
        config: serde_json::to_value(model.config()).unwrap_or_default(),
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

/// A Mermaid sequence diagram of a path given as (state before, action) steps.
pub fn mermaid<M: Reported>(model: &M, steps: &[(M::State, M::Action)]) -> String {
    let mut out = String::from("sequenceDiagram\n");
    for (id, label) in model.participants() {
        out.push_str(&format!("    participant {id} as {label}\n"));
    }
    for (before, action) in steps {
        // Mermaid ends a statement at ';' and reads '#' as the start of an entity.
        let line = model.diagram_line(before, action);
        out.push_str(&line.replace(';', ",").replace('#', ""));
        out.push('\n');
    }
    out
}

/// Result of the exact liveness check.
#[derive(Clone, Debug, Serialize)]
pub struct LivenessResult {
    pub config: serde_json::Value,
    pub property: String,
    pub states: usize,
    pub edges: usize,
    pub seconds: f64,
    /// "holds", "violated" or "incomplete: ..."
    pub outcome: String,
    pub lasso_prefix: Vec<String>,
    pub lasso_cycle: Vec<String>,
    /// The lasso replayed through the model: the prefix reaches a state that is not
    /// converged and is a deadlock there, or the cycle returns to it without converging.
    pub revalidated: Option<bool>,
    pub mermaid: Option<String>,
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
    liveness(
        &model,
        LIVENESS_NAME,
        |s| model.converged(s),
        fairness_class,
        3_000_000,
    )
}

/// Exact liveness of `model` under weak fairness (see [`crate::liveness`]), with the lasso
/// described, drawn and re-validated by replay.
pub fn liveness<M, K>(
    model: &M,
    property: &str,
    converged: impl Fn(&M::State) -> bool,
    class: impl Fn(&M::State, &M::Action) -> Option<K>,
    max_states: usize,
) -> LivenessResult
where
    M: Reported,
    M::State: Clone + Hash + Eq,
    M::Action: Clone + PartialEq,
    K: Clone + Hash + Eq,
{
    let start = Instant::now();
    let report = check_eventually(model, &converged, class, max_states);
    let mut result = LivenessResult {
        config: serde_json::to_value(model.config()).unwrap_or_default(),
        property: property.into(),
        states: report.states,
        edges: report.edges,
        seconds: start.elapsed().as_secs_f64(),
        outcome: String::new(),
        lasso_prefix: vec![],
        lasso_cycle: vec![],
        revalidated: None,
        mermaid: None,
    };
    match &report.outcome {
        Outcome::Holds => result.outcome = "holds".into(),
        Outcome::Incomplete { reason } => result.outcome = format!("incomplete: {reason}"),
        Outcome::Violated(l) => {
            result.outcome = if l.is_deadlock() {
                "violated (deadlock)".into()
            } else {
                "violated (fair cycle)".into()
            };
            // (state before, action) for the prefix, then for the cycle.
            let mut before = l.init.clone();
            let mut steps = Vec::new();
            for (a, s) in l.prefix.iter().chain(&l.cycle) {
                steps.push((before, a.clone()));
                before = s.clone();
            }
            let (prefix, cycle) = steps.split_at(l.prefix.len());
            let describe = |v: &[(M::State, M::Action)]| -> Vec<String> {
                v.iter().map(|(s, a)| model.describe(s, a)).collect()
            };
            result.lasso_prefix = describe(prefix);
            result.lasso_cycle = describe(cycle);
            result.mermaid = Some(mermaid(model, &steps));
            result.revalidated = Some(lasso_replays(model, &converged, l));
        }
    }
    result
}

/// Whether a lasso replays: the prefix (from the initial state) ends in a state that is not
/// converged, and either nothing can happen there (deadlock) or the cycle leads back to it
/// through states that are not converged.
fn lasso_replays<M>(
    model: &M,
    converged: impl Fn(&M::State) -> bool,
    lasso: &crate::liveness::Lasso<M::State, M::Action>,
) -> bool
where
    M: Model,
    M::State: Clone + PartialEq,
    M::Action: Clone + PartialEq,
{
    let prefix: Vec<M::Action> = lasso.prefix.iter().map(|(a, _)| a.clone()).collect();
    let Some(states) = replay_path(model, &prefix) else {
        return false;
    };
    if states.iter().any(&converged) {
        return false;
    }
    let Some(stuck) = states.last() else {
        return false;
    };
    if lasso.cycle.is_empty() {
        let mut enabled = Vec::new();
        model.actions(stuck, &mut enabled);
        return enabled
            .into_iter()
            .all(|a| model.next_state(stuck, a).is_none());
    }
    let mut state = stuck.clone();
    for (a, _) in &lasso.cycle {
        match step_if_enabled(model, &state, a) {
            Some(next) if !converged(&next) => state = next,
            _ => return false,
        }
    }
    state == *stuck
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

/// Replaces each violation's path, and the example of each `sometimes` property named in
/// `examples`, with a shortest one: breadth-first, that property alone (discoveries of
/// different properties overwrite each other's paths otherwise). `make` builds the model.
pub fn minimise_counterexamples<M>(make: impl Fn() -> M, res: &mut CheckResult, examples: &[&str])
where
    M: Reported + Send + Sync + 'static,
    M::State: Clone + Debug + Hash + PartialEq + Send + Sync + 'static,
    M::Action: Clone + Debug + PartialEq,
{
    for p in res.properties.iter_mut().filter(|p| {
        p.status == Status::Violated
            || (p.status == Status::Pass && examples.contains(&p.name.as_str()))
    }) {
        // One thread: only then is breadth-first search's first path a shortest one.
        let opts = RunOpts {
            bfs: true,
            threads: 1,
            properties: vec![p.name.clone()],
            ..RunOpts::default()
        };
        let short = check(make(), &opts);
        if let Some(q) = short
            .properties
            .into_iter()
            .find(|q| q.name == p.name && q.status == p.status)
        {
            if q.revalidated == Some(true) && q.steps.len() <= p.steps.len() {
                *p = q;
            }
        }
    }
}

/// One checked scenario of a report, with what it was expected to show.
#[derive(Serialize)]
pub struct ScenarioRun {
    pub title: String,
    /// Properties expected to be violated; the first must be.
    pub expect_violated: Vec<&'static str>,
    /// `sometimes` properties whose example is itself a counterexample worth showing (the
    /// Redis-semantics WAIT loss), drawn like the violations.
    pub shown_examples: Vec<&'static str>,
    /// A deliberately broken variant (planted bug, FORCE): a `sometimes` may go unreached.
    pub broken: bool,
    /// The expected verdict of the exact liveness check, if it runs.
    pub expect_live: Option<bool>,
    pub as_expected: bool,
    pub check: CheckResult,
    pub liveness: Option<LivenessResult>,
}

impl ScenarioRun {
    /// Judges `check` and `liveness` against the expectations.
    pub fn new(
        title: &str,
        expect_violated: Vec<&'static str>,
        shown_examples: Vec<&'static str>,
        broken: bool,
        check: CheckResult,
        expect_live: Option<bool>,
        liveness: Option<LivenessResult>,
    ) -> ScenarioRun {
        // Every violation must be expected, the first expected one must occur, every shown
        // example must be found, and a `sometimes` may go unreached only in a broken variant.
        let safety_ok = check.properties.iter().all(|p| match p.status {
            Status::Violated => expect_violated.contains(&p.name.as_str()),
            Status::Unreached => broken && !shown_examples.contains(&p.name.as_str()),
            Status::Pass => true,
        }) && expect_violated.first().is_none_or(|n| check.violated(n))
            && check
                .properties
                .iter()
                .all(|p| p.revalidated != Some(false));
        let live_ok = match (&liveness, expect_live) {
            (Some(l), Some(expect)) => l.holds() == expect && l.revalidated != Some(false),
            (None, None) => true,
            _ => false,
        };
        ScenarioRun {
            title: title.into(),
            expect_violated,
            shown_examples,
            broken,
            expect_live,
            as_expected: safety_ok && live_ok,
            check,
            liveness,
        }
    }
}

/// Whether a scenario titled `title` is selected by `filters` (any of them is part of the
/// title; all are selected when there is none).
pub fn selected(title: &str, filters: &[String]) -> bool {
    filters.is_empty() || filters.iter().any(|f| title.contains(f.as_str()))
}

/// The replication scenarios selected by `filters`, each checked and its counterexamples
/// minimised.
pub fn run_replication_scenarios(opts: &RunOpts, filters: &[String]) -> Vec<ScenarioRun> {
    scenarios()
        .into_iter()
        .filter(|sc| selected(sc.title, filters))
        .map(|sc| {
            eprintln!("report: {}", sc.title);
            let mut res = check_replication(&sc.cfg, opts);
            minimise_counterexamples(|| sc.cfg.clone().into_model(), &mut res, &[]);
            let live = sc.liveness.map(|_| liveness_replication(&sc.cfg));
            let broken = !sc.expect_violated.is_empty() || sc.cfg.bug.is_some();
            ScenarioRun::new(
                sc.title,
                sc.expect_violated,
                vec![],
                broken,
                res,
                sc.liveness,
                live,
            )
        })
        .collect()
}

/// Runs the scenarios selected by `filters` and writes `<out>/replication.md` and
/// `<out>/replication.json`. Returns whether every scenario behaved as expected.
pub fn write_replication_report(
    opts: &RunOpts,
    filters: &[String],
    out: &str,
) -> std::io::Result<bool> {
    let runs = run_replication_scenarios(opts, filters);
    write_report(out, "replication", "Replication model", &runs)
}

/// Writes `<out>/<stem>.md` and `<out>/<stem>.json` for `runs`; returns whether every
/// scenario behaved as expected.
pub fn write_report(
    out: &str,
    stem: &str,
    heading: &str,
    runs: &[ScenarioRun],
) -> std::io::Result<bool> {
    std::fs::create_dir_all(out)?;
    std::fs::write(format!("{out}/{stem}.md"), render_markdown(heading, runs))?;
    std::fs::write(
        format!("{out}/{stem}.json"),
        serde_json::to_string_pretty(runs).map_err(std::io::Error::other)?,
    )?;
    Ok(runs.iter().all(|r| r.as_expected))
}

/// The Markdown report: a summary table, then per scenario its configuration, figures,
/// properties, liveness and every counterexample as steps and a Mermaid diagram.
pub fn render_markdown(heading: &str, runs: &[ScenarioRun]) -> String {
    let mut md = format!("# {heading}: generated report\n\nGenerated by `verdis-check report`; see docs/model.md for what the model and each property mean.\n\n");
    md.push_str("## Summary\n\n| scenario | as expected | unique states | max depth | time (s) | unique states/s |\n|---|---|---|---|---|---|\n");
    for r in runs {
        let res = &r.check;
        md.push_str(&format!(
            "| {} | {} | {} | {} | {:.2} | {:.0} |\n",
            r.title,
            if r.as_expected { "yes" } else { "**NO**" },
            res.unique_states,
            res.max_depth,
            res.seconds,
            res.unique_states_per_second
        ));
    }
    for r in runs {
        let res = &r.check;
        md.push_str(&format!(
            "\n## {}\n\nConfiguration: `{}`\n\n",
            r.title,
            serde_json::to_string(&res.config).unwrap_or_default()
        ));
        md.push_str(&format!(
            "{} states, {} unique, max depth {}, {:.2} s, {:.0} unique states/s ({}, {} threads). Behaved as expected: {}.\n\n| property | kind | result |\n|---|---|---|\n",
            res.states, res.unique_states, res.max_depth, res.seconds, res.unique_states_per_second, res.search, res.threads, if r.as_expected { "yes" } else { "NO" }
        ));
        for p in &res.properties {
            md.push_str(&format!("| {} | {} | {:?} |\n", p.name, p.kind, p.status));
        }
        if let Some(l) = &r.liveness {
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
                if l.lasso_cycle.is_empty() {
                    md.push_str("- nothing (deadlock: no step is enabled)\n");
                }
                md.push_str(&format!(
                    "\nRe-validated by replay: {}.\n",
                    if l.revalidated == Some(true) {
                        "yes"
                    } else {
                        "no"
                    }
                ));
                if let Some(m) = &l.mermaid {
                    md.push_str(&format!("\n```mermaid\n{m}```\n"));
                }
            }
        }
        for p in res.properties.iter().filter(|p| {
            p.status == Status::Violated
                || (p.status == Status::Pass && r.shown_examples.contains(&p.name.as_str()))
        }) {
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
    md
}

// ----- traces ----------------------------------------------------------------------------------

/// The observable replication state of one node after a step (what INFO/ROLE show).
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq, Hash)]
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
    /// The keys a client sees: write ids not deleted, nor hidden by a TTL time has passed.
    pub dataset: Vec<u8>,
    /// A digest of the node's whole data log (writes, TTLs, deletions, in order).
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

/// One exported path: the configuration, then each externally drivable step with the
/// observable state after it.
#[derive(Clone, Debug, Serialize)]
pub struct Trace<C = ModelCfg, S = TraceStep> {
    pub name: String,
    pub config: C,
    pub steps: Vec<S>,
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
                dataset: crate::replication::visible(&n.data, s.ttl_passed),
                dataset_digest: dataset_digest(&n.data),
            })
        })
        .collect()
}

/// Replays `actions` from the initial state and returns the trace, or an error if any step is
/// not enabled or not taken (the re-validation every exported path goes through).
pub fn replay(model: &ReplModel, name: &str, actions: &[InnerAction]) -> Result<Trace, String> {
    let steps = replay_steps(model, name, actions, |_, a, after| {
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
        TraceStep {
            action: format_action(a),
            kind: kind.into(),
            src,
            dst,
            msg,
            timer,
            after: observe(model, after),
        }
    })?;
    Ok(Trace {
        name: name.into(),
        config: model.cfg.clone(),
        steps,
    })
}

/// Replays `actions` from the initial state, turning each step into `step(before, action,
/// after)`; an error names the first step that is not enabled or is ignored.
pub fn replay_steps<M, T>(
    model: &M,
    name: &str,
    actions: &[M::Action],
    mut step: impl FnMut(&M::State, &M::Action, &M::State) -> T,
) -> Result<Vec<T>, String>
where
    M: Reported,
    M::Action: Clone + PartialEq,
{
    let mut state = model
        .init_states()
        .into_iter()
        .next()
        .ok_or("no initial state")?;
    let mut steps = Vec::new();
    for (i, a) in actions.iter().enumerate() {
        let Some(next) = step_if_enabled(model, &state, a) else {
            return Err(format!(
                "{name}: step {} ({}) is not enabled or is ignored",
                i + 1,
                model.describe(&state, a)
            ));
        };
        steps.push(step(&state, a, &next));
        state = next;
    }
    Ok(steps)
}

/// Replays `actions` from the initial state; the last state, or `None` if a step is not
/// enabled or is ignored.
pub fn replay_states<M>(model: &M, actions: &[M::Action]) -> Option<M::State>
where
    M: Model,
    M::Action: Clone + PartialEq,
{
    replay_path(model, actions)?.pop()
}

/// Replays `actions` from the initial state; every state on the way (the initial one first),
/// or `None` if a step is not enabled or is ignored.
pub fn replay_path<M>(model: &M, actions: &[M::Action]) -> Option<Vec<M::State>>
where
    M: Model,
    M::Action: Clone + PartialEq,
{
    let mut states = vec![model.init_states().into_iter().next()?];
    for a in actions {
        let next = step_if_enabled(model, states.last()?, a)?;
        states.push(next);
    }
    Some(states)
}

/// The state after `action`, if it is enabled in `state` and not ignored.
fn step_if_enabled<M>(model: &M, state: &M::State, action: &M::Action) -> Option<M::State>
where
    M: Model,
    M::Action: Clone + PartialEq,
{
    let mut enabled = Vec::new();
    model.actions(state, &mut enabled);
    if !enabled.contains(action) {
        return None;
    }
    model.next_state(state, action.clone())
}

/// Deterministic pseudo-random walk (xorshift) of at most `max_steps` taken actions.
pub fn random_walk<M>(model: &M, seed: u64, max_steps: usize) -> Vec<M::Action>
where
    M: Model,
    M::State: Clone,
    M::Action: Clone,
{
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

/// Up to `count` paths of `model`: an example of each `sometimes` property (depth-first on
/// `fresh`, a copy of `model`, until every one has an example), then random walks. Each goes
/// through `to_trace`, which must re-validate it by replay.
pub fn collect_traces<M, T>(
    model: &M,
    fresh: M,
    count: usize,
    to_trace: impl Fn(&str, &[M::Action]) -> Result<T, String>,
) -> Result<Vec<T>, String>
where
    M: Reported + Send + Sync + 'static,
    M::State: Clone + Debug + Hash + PartialEq + Send + Sync + 'static,
    M::Action: Clone + Debug + PartialEq,
{
    let sometimes: std::collections::BTreeSet<&'static str> = model
        .properties()
        .iter()
        .filter(|p| p.expectation == Expectation::Sometimes)
        .map(|p| p.name)
        .collect();
    // Depth-first until every `sometimes` has an example (no need to finish the space).
    let checker = fresh
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
            traces.push(to_trace(name, &path.into_actions())?);
        }
    }
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    while traces.len() < count {
        seed = seed.wrapping_add(0x9e37_79b9);
        let walk = random_walk(model, seed, 60);
        traces.push(to_trace(&format!("random walk {seed:x}"), &walk)?);
    }
    Ok(traces)
}

/// Writes `value` as pretty JSON to `out`, creating its directory.
pub fn write_json(out: &str, value: &impl Serialize) -> Result<(), String> {
    if let Some(dir) = std::path::Path::new(out).parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let json = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    std::fs::write(out, json).map_err(|e| e.to_string())
}

/// Exports the `sometimes` examples of `cfg` plus random walks, each re-validated by replay
/// against a fresh model before it is written.
pub fn write_replication_traces(cfg: &ModelCfg, count: usize, out: &str) -> Result<usize, String> {
    let model = cfg.clone().into_model();
    let traces = collect_traces(&model, cfg.clone().into_model(), count, |name, actions| {
        replay(&model, name, actions)
    })?;
    write_json(out, &traces)?;
    Ok(traces.len())
}
