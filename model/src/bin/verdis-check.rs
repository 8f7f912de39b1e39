//! `verdis-check`: runs the stateright models of the Verdis protocol core.
//!
//! - `check`: exhaustive check of one configuration (progress line, summary, exit 1 on a
//!   violated property or an unreached `sometimes`);
//! - `explore`: stateright's Explorer on 127.0.0.1:<port>;
//! - `report`: writes docs/model/ (Markdown + JSON, counterexamples as step lists and Mermaid);
//! - `traces`: exports re-validated paths as JSON for the conformance suite.
//!
//! `--model` picks the model; each model is one arm of the `match` in `main`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::process::ExitCode;
use verdis_core::cluster::PlantedBug as ClusterBug;
use verdis_core::repl::PlantedBug;
use verdis_model::election::ElectionConfig;
use verdis_model::replication::{ModelCfg, SwitchoverCfg};
use verdis_model::report;

/// The checker allocates and frees every state it explores (clones of the actors' states,
/// message queues, the visited set's entries); mimalloc's thread-local free lists make that
/// cheaper than the system allocator (docs/performance.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "verdis-check",
    about = "Model-check the Verdis replication and failover protocols"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Exhaustively check one configuration.
    Check(Opts),
    /// Serve stateright's Explorer on 127.0.0.1:<port>.
    Explore {
        #[command(flatten)]
        opts: Opts,
        #[arg(long, default_value_t = 3000)]
        port: u16,
    },
    /// Check the standard configurations and write docs/model/ (Markdown + JSON).
    Report {
        #[command(flatten)]
        opts: Opts,
        #[arg(long, default_value = "docs/model")]
        out: String,
        /// Run only the scenarios whose title contains this text (repeatable; all when none).
        #[arg(long = "scenario")]
        scenarios: Vec<String>,
    },
    /// Export re-validated paths as JSON for the conformance suite.
    Traces {
        #[command(flatten)]
        opts: Opts,
        /// Output file [default: docs/model/traces.json, or docs/model/election-traces.json
        /// for --model election].
        #[arg(long)]
        out: Option<String>,
        /// Number of traces (one per property example/counterexample, then random walks).
        #[arg(long, default_value_t = 8)]
        count: usize,
        /// Settled traces for the conformance replay (conformance/traces/*.json): one per
        /// coverage goal, then `--count` random walks; the model options are ignored.
        #[arg(long)]
        settled: bool,
        /// Seed of the settled random walks.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ModelName {
    Replication,
    Election,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Search {
    Dfs,
    Bfs,
}

/// Planted bugs: the first four are the replication model's, the last three the election's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Bug {
    NeverRetry,
    ContinueOutsideBacklog,
    AckBeyondApplied,
    FullSyncInsideBacklog,
    VoteTwice,
    NeverRetryElection,
    IgnoreOffsetProof,
}

impl Bug {
    fn model(self) -> ModelName {
        match self {
            Bug::NeverRetry
            | Bug::ContinueOutsideBacklog
            | Bug::AckBeyondApplied
            | Bug::FullSyncInsideBacklog => ModelName::Replication,
            Bug::VoteTwice | Bug::NeverRetryElection | Bug::IgnoreOffsetProof => {
                ModelName::Election
            }
        }
    }
}

#[derive(Args, Clone, Debug)]
struct Opts {
    /// Which model to run.
    #[arg(long, value_enum, default_value_t = ModelName::Replication)]
    model: ModelName,
    /// Replicas of the master.
    #[arg(long, default_value_t = 2)]
    replicas: u8,
    /// Client writes.
    #[arg(long, default_value_t = 2)]
    writes: u8,
    /// repl-backlog-size in bytes (a SET k<i> v<i> is 27 bytes, the first SELECT 23).
    #[arg(long, default_value_t = 40)]
    backlog: u64,
    /// Fault budget (link cuts, timeouts, crashes).
    #[arg(long, default_value_t = 1)]
    faults: u8,
    /// Master PINGs into the stream.
    #[arg(long, default_value_t = 0)]
    pings: u8,
    /// Do not run the coordinated switchover (FAILOVER TO node 1 on node 0), which the default
    /// configuration includes.
    #[arg(long)]
    no_switchover: bool,
    /// ... with FORCE (expected to lose writes).
    #[arg(long)]
    force: bool,
    /// Crashed nodes restart empty (no RDB).
    #[arg(long)]
    no_persistence: bool,
    /// No crashes (only cuts and timeouts use the fault budget).
    #[arg(long)]
    no_crashes: bool,
    /// Node 0 runs one WAIT: `REPLCONF GETACK *` into the stream.
    #[arg(long)]
    getack: bool,
    /// No timeout faults (repl-timeout, backlog TTL): only cuts and crashes.
    #[arg(long)]
    no_timeouts: bool,
    /// Node 2 replicates from node 1 (a chain 0 <- 1 <- 2).
    #[arg(long)]
    chain: bool,
    /// Pad the value of write 1 to this many bytes.
    #[arg(long, value_name = "BYTES")]
    big_write: Option<u32>,
    /// An operator's manual failover: REPLICAOF NO ONE on node 1, REPLICAOF node 1 on the others.
    #[arg(long)]
    manual: bool,
    /// Network partitions of a replica (charged to the fault budget); use with --no-crashes
    /// and --no-switchover.
    #[arg(long)]
    partition: bool,
    /// With --manual: node 1, once a master, switches back with FAILOVER TO node 0.
    #[arg(long)]
    switch_back: bool,
    /// Malformed bytes on streaming replication links (charged to the fault budget): into a
    /// replica's stream, or from a replica to its master.
    #[arg(long)]
    garble: bool,
    /// Key expiry: PEXPIRE on node 0's oldest key, then time passes its TTL (masters delete
    /// it with a DEL into the stream, every node hides it); use with --no-crashes.
    #[arg(long)]
    expire: bool,
    /// Output-buffer limits: a replica may stop reading and read again (charged to the fault
    /// budget), and a client write may be past every replica's output-buffer limit; not
    /// with --partition.
    #[arg(long)]
    obuf: bool,
    /// Plant a known bug (the check must then fail).
    #[arg(long, value_enum)]
    bug: Option<Bug>,
    /// Check only properties whose name contains this text (repeatable).
    #[arg(long = "property")]
    properties: Vec<String>,
    /// Also check liveness exactly under weak fairness (graph held in memory).
    #[arg(long)]
    liveness: bool,
    /// Also check liveness as bounded response: from any state faults may stop and a fair
    /// scheduler must converge within this many steps.
    #[arg(long, value_name = "STEPS")]
    bounded_response: Option<u8>,
    /// Election model: Verdis safe failover (votes need proof of every WAIT-acked write).
    #[arg(long)]
    safe_failover: bool,
    /// Search order.
    #[arg(long, value_enum, default_value_t = Search::Dfs)]
    search: Search,
    /// Checker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

impl Opts {
    fn repl_cfg(&self) -> ModelCfg {
        ModelCfg {
            replicas: self.replicas,
            writes: self.writes,
            backlog_bytes: self.backlog,
            faults: self.faults,
            pings: self.pings,
            switchover: (!self.no_switchover || self.force)
                .then_some(SwitchoverCfg { force: self.force }),
            persistence: !self.no_persistence,
            bounded_response: self.bounded_response,
            getack: self.getack,
            crashes: !self.no_crashes,
            timeouts: !self.no_timeouts,
            chain: self.chain,
            big_write: self.big_write,
            manual: self.manual,
            partition: self.partition,
            switch_back: self.switch_back,
            garble: self.garble,
            expire: self.expire,
            obuf: self.obuf,
            // `main` has refused a bug of the other model.
            bug: self.bug.and_then(|b| match b {
                Bug::NeverRetry => Some(PlantedBug::ReplicaNeverRetries),
                Bug::ContinueOutsideBacklog => Some(PlantedBug::ContinueOutsideBacklog),
                Bug::AckBeyondApplied => Some(PlantedBug::AckBeyondApplied),
                Bug::FullSyncInsideBacklog => Some(PlantedBug::FullSyncInsideBacklog),
                Bug::VoteTwice | Bug::NeverRetryElection | Bug::IgnoreOffsetProof => None,
            }),
        }
    }

    fn election_cfg(&self) -> ElectionConfig {
        ElectionConfig {
            replicas: usize::from(self.replicas),
            writes: u64::from(self.writes),
            fault_budget: self.faults,
            safe_failover: self.safe_failover,
            planted_bug: self.bug.and_then(|b| match b {
                Bug::VoteTwice => Some(ClusterBug::VoteTwicePerEpoch),
                Bug::NeverRetryElection => Some(ClusterBug::NeverRetryElection),
                Bug::IgnoreOffsetProof => Some(ClusterBug::IgnoreOffsetProof),
                _ => None,
            }),
            free_reordering: false,
        }
    }

    fn run_opts(&self) -> report::RunOpts {
        report::RunOpts {
            bfs: self.search == Search::Bfs,
            threads: self.threads,
            properties: self.properties.clone(),
            progress: true,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (Cmd::Check(opts)
    | Cmd::Explore { opts, .. }
    | Cmd::Report { opts, .. }
    | Cmd::Traces { opts, .. }) = &cli.cmd;
    if let Some(bug) = opts.bug.filter(|b| b.model() != opts.model) {
        eprintln!("--bug {bug:?} belongs to --model {:?}", bug.model());
        return ExitCode::FAILURE;
    }
    if opts.model == ModelName::Replication {
        if let Err(e) = opts.repl_cfg().check() {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    }
    match cli.cmd {
        Cmd::Check(opts) => match opts.model {
            ModelName::Replication => {
                let cfg = opts.repl_cfg();
                let mut ok = report::check_replication(&cfg, &opts.run_opts()).print();
                if opts.liveness {
                    ok &= report::liveness_replication(&cfg).print();
                }
                if ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            ModelName::Election => {
                let cfg = opts.election_cfg();
                let run = verdis_model::election::CheckOpts {
                    threads: opts.threads,
                    bfs: opts.search == Search::Bfs,
                    liveness: opts.liveness,
                };
                if verdis_model::election::run_check(&cfg, &run) {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
        },
        Cmd::Explore { opts, port } => match opts.model {
            ModelName::Replication => {
                report::explore_replication(opts.repl_cfg(), port);
                ExitCode::SUCCESS
            }
            ModelName::Election => {
                report::election::explore(opts.election_cfg(), port);
                ExitCode::SUCCESS
            }
        },
        Cmd::Report {
            opts,
            out,
            scenarios,
        } => match opts.model {
            ModelName::Replication => {
                match report::write_replication_report(&opts.run_opts(), &scenarios, &out) {
                    Ok(all_pass) => {
                        println!("wrote {out}/replication.md and {out}/replication.json");
                        verdict(all_pass)
                    }
                    Err(e) => {
                        eprintln!("report: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
            ModelName::Election => {
                match report::election::write_report_files(&opts.run_opts(), &scenarios, &out) {
                    Ok(all_pass) => {
                        println!(
                            "wrote {out}/election.md, {out}/election.json and {out}/election-traces.json"
                        );
                        verdict(all_pass)
                    }
                    Err(e) => {
                        eprintln!("report: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
        },
        Cmd::Traces {
            out,
            count,
            settled: true,
            seed,
            ..
        } => {
            let out = out.unwrap_or_else(|| "conformance/traces/ci.json".into());
            let written = verdis_model::settled::generate(count, seed)
                .and_then(|t| report::write_json(&out, &t).map(|_| t.len()));
            match written {
                Ok(n) => {
                    println!("wrote {n} re-validated settled traces to {out}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("traces: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Traces {
            opts, out, count, ..
        } => {
            let written = match opts.model {
                ModelName::Replication => {
                    let out = out.unwrap_or_else(|| "docs/model/traces.json".into());
                    report::write_replication_traces(&opts.repl_cfg(), count, &out)
                        .map(|n| (n, out))
                }
                ModelName::Election => {
                    let out = out.unwrap_or_else(|| "docs/model/election-traces.json".into());
                    report::election::write_traces(&opts.election_cfg(), count, &out)
                        .map(|n| (n, out))
                }
            };
            match written {
                Ok((n, out)) => {
                    println!("wrote {n} re-validated traces to {out}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("traces: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn verdict(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
