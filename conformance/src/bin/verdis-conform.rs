//! `verdis-conform`: generate settled traces, replay them on real servers, validate protocol
//! traces. See docs/conformance.md.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use verdis_conformance::cluster::Target;
use verdis_conformance::replay::{load_differences, replay, KnownDifference, TraceResult};
use verdis_conformance::validate;
use verdis_model::settled::SettledTrace;

#[derive(Parser)]
#[command(
    about = "Conformance: the model's traces on real servers, and server traces against the model"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum TargetArg {
    Verdis,
    Redis,
    Both,
}

#[derive(Subcommand)]
enum Cmd {
    /// Writes the trace set: one trace per coverage goal, then seeded random walks, each
    /// re-validated against the model.
    Generate {
        #[arg(long, default_value = "conformance/traces/ci.json")]
        out: PathBuf,
        /// Random walks after the coverage goals.
        #[arg(long, default_value_t = 40)]
        walks: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Replays traces on real processes and compares with the model after every step.
    Replay {
        #[arg(long, value_enum, default_value_t = TargetArg::Both)]
        target: TargetArg,
        #[arg(long, default_value = "conformance/traces/ci.json")]
        traces: PathBuf,
        /// Known disagreements (each with its reason).
        #[arg(long, default_value = "conformance/differences.json")]
        differences: PathBuf,
        /// Only traces whose name contains this text.
        #[arg(long)]
        only: Option<String>,
        /// Working directory for the servers' data and logs.
        #[arg(long, default_value = "target/conformance")]
        workdir: PathBuf,
        /// Also validate the protocol traces the Verdis nodes wrote.
        #[arg(long)]
        validate: bool,
        /// Write the results as JSON here.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Validates protocol trace files (one per node of one run) against the model.
    Validate {
        /// Trace files of one run; several runs: use --runs.
        files: Vec<PathBuf>,
        /// Directories, each holding the node*.jsonl files of one run.
        #[arg(long)]
        runs: Vec<PathBuf>,
        /// A directory whose every subdirectory is one run (the test suite's traces, written
        /// with VERDIS_TEST_TRACE_DIR); runs whose servers logged nothing are counted apart.
        #[arg(long)]
        runs_under: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    match Cli::parse().cmd {
        Cmd::Generate { out, walks, seed } => {
            match verdis_model::settled::generate(walks, seed).and_then(|t| {
                verdis_model::report::write_json(&out.display().to_string(), &t).map(|_| t.len())
            }) {
                Ok(n) => {
                    println!("wrote {n} re-validated settled traces to {}", out.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("generate: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Replay {
            target,
            traces,
            differences,
            only,
            workdir,
            validate,
            report,
        } => {
            let loaded = std::fs::read_to_string(&traces)
                .map_err(|e| format!("{}: {e}", traces.display()))
                .and_then(|t| {
                    serde_json::from_str::<Vec<SettledTrace>>(&t)
                        .map_err(|e| format!("{}: {e}", traces.display()))
                })
                .and_then(|t| load_differences(&differences).map(|d| (t, d)));
            let (set, known) = match loaded {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("replay: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let targets = match target {
                TargetArg::Verdis => vec![Target::Verdis],
                TargetArg::Redis => vec![Target::Redis],
                TargetArg::Both => vec![Target::Verdis, Target::Redis],
            };
            run_replays(
                &set,
                &known,
                &targets,
                only.as_deref(),
                &workdir,
                validate,
                report,
            )
        }
        Cmd::Validate {
            files,
            runs,
            runs_under,
        } => {
            let mut all = Vec::new();
            if !files.is_empty() {
                all.push(files);
            }
            for dir in runs {
                all.push(validate::run_files(&dir));
            }
            let mut ok = true;
            for run in all {
                let res = validate::validate_files(&run);
                ok &= res.print();
            }
            if let Some(root) = runs_under {
                ok &= validate_runs_under(&root);
            }
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Validates every run directory under `root`; prints only the failing ones, then totals.
fn validate_runs_under(root: &std::path::Path) -> bool {
    let mut dirs: Vec<PathBuf> = match std::fs::read_dir(root) {
        Ok(d) => d
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect(),
        Err(e) => {
            eprintln!("{}: {e}", root.display());
            return false;
        }
    };
    dirs.sort();
    let (mut runs, mut empty, mut partial, mut bad) = (0, 0, 0, 0);
    let (mut lines, mut torn, mut checks) = (0, 0, 0);
    for dir in &dirs {
        let (res, whole) = validate::validate_run(dir);
        if res.lines == 0 && res.errors.is_empty() {
            empty += 1; // no replication activity in this test
            continue;
        }
        runs += 1;
        partial += usize::from(!whole);
        lines += res.lines;
        torn += res.torn;
        checks += res.checks;
        if !res.errors.is_empty() {
            bad += 1;
            println!("{}:", dir.display());
            res.print();
        }
    }
    println!(
        "validated the protocol traces of {runs} test runs ({partial} with an unlogged peer, redis-server or a scripted master: \
         per-line rules only; {empty} without replication activity): {lines} lines ({torn} torn by \
         a kill), {checks} checks, {bad} invalid"
    );
    bad == 0 && runs > 0
}

fn run_replays(
    set: &[SettledTrace],
    known: &[KnownDifference],
    targets: &[Target],
    only: Option<&str>,
    workdir: &std::path::Path,
    validate_logs: bool,
    report: Option<PathBuf>,
) -> ExitCode {
    // Servers chdir into their --dir: every path handed to them must be absolute.
    let _ = std::fs::create_dir_all(workdir);
    let workdir = &match std::fs::canonicalize(workdir) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("replay: {}: {e}", workdir.display());
            return ExitCode::FAILURE;
        }
    };
    let mut results: Vec<TraceResult> = Vec::new();
    let mut unexpected = 0;
    let mut stale = 0;
    let mut validated = 0;
    let mut invalid = 0;
    let mut torn = 0;
    for &target in targets {
        let mut passed = 0;
        let mut known_count = 0;
        let mut ran = 0;
        for (i, trace) in set.iter().enumerate() {
            if only.is_some_and(|o| !trace.name.contains(o)) {
                continue;
            }
            ran += 1;
            let dir = workdir.join(format!("{}-{i:03}", target.name()));
            let logs = dir.join("logs");
            let _ = std::fs::remove_dir_all(&dir);
            let _ = std::fs::create_dir_all(&logs);
            let res = replay(trace, target, &dir, Some(&logs));
            let entry = known
                .iter()
                .find(|k| k.trace == trace.name && k.target == target.name());
            match (&res.failure, entry) {
                (None, None) => {
                    passed += 1;
                    println!(
                        "pass   {:>6} ms  {}  {}",
                        res.millis,
                        target.name(),
                        trace.name
                    );
                }
                (None, Some(k)) => {
                    stale += 1;
                    println!(
                        "STALE  {:>6} ms  {}  {}: passes, but differences.json lists it ({})",
                        res.millis,
                        target.name(),
                        trace.name,
                        k.reason
                    );
                }
                (Some(f), Some(k)) => {
                    known_count += 1;
                    println!(
                        "known  {:>6} ms  {}  {}: step {} ({}): {} [{}: {}]",
                        res.millis,
                        target.name(),
                        trace.name,
                        f.step,
                        f.what,
                        f.differences.join("; "),
                        k.kind,
                        k.reason
                    );
                }
                (Some(f), None) => {
                    unexpected += 1;
                    println!(
                        "DIFF   {:>6} ms  {}  {}: step {} ({})",
                        res.millis,
                        target.name(),
                        trace.name,
                        f.step,
                        f.what
                    );
                    for d in &f.differences {
                        println!("         {d}");
                    }
                }
            }
            if validate_logs && target == Target::Verdis {
                let files = verdis_conformance::validate::run_files(&logs);
                let v = verdis_conformance::validate::validate_files(&files);
                validated += 1;
                torn += v.torn;
                if !v.ok() {
                    invalid += 1;
                    println!("INVALID protocol trace of {}:", trace.name);
                    v.print();
                }
            }
            results.push(res);
        }
        println!(
            "{}: {ran} traces, {passed} pass, {known_count} known differences",
            target.name()
        );
    }
    if validate_logs {
        println!(
            "validated the protocol traces of {validated} Verdis runs: {invalid} invalid \
             ({torn} lines torn by a kill)"
        );
    }
    if let Some(path) = report {
        let _ = verdis_model::report::write_json(&path.display().to_string(), &results);
    }
    if unexpected == 0 && stale == 0 && invalid == 0 {
        ExitCode::SUCCESS
    } else {
        println!(
            "{unexpected} unexpected differences, {stale} stale entries, {invalid} invalid traces"
        );
        ExitCode::FAILURE
    }
}
