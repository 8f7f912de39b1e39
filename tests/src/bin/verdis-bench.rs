//! `verdis-bench`: Verdis against redis-server 7.0 in the same run, on the same machine.
//!
//! Every figure starts both servers with equivalent configuration (loopback, no persistence),
//! runs the same load against each, alternating Verdis and Redis (A B A B ...) for `--rounds`
//! rounds (six times that for the -P 1 figures, three times for the full sync), and reports
//! the median ratio Verdis / Redis with its min and max: absolute numbers on a shared machine
//! are noisy, ratios measured back to back much less so.
//!
//! Options: [`usage`] (`verdis-bench --help`). `--smoke` uses tiny counts and one round unless
//! `--rounds` says otherwise (CI runs it so the harness cannot rot: it checks that every figure
//! runs and yields numbers, not that targets are met); a round that fails is listed in the
//! report and the exit status is 1; `--out` rewrites the Markdown report with the figures, the
//! commands, the method and the machine. A bad option runs nothing and exits with status 2.
//!
//! Modules: the throughput and memory figures are here; `replication` holds the replication
//! figures, `net` the raw replica links, paced writers and link-cutting proxy they use, and
//! `checker` the model checker figure.

#[path = "../bench/checker.rs"]
mod checker;
#[path = "../bench/net.rs"]
mod net;
#[path = "../bench/replication.rs"]
mod replication;

use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};
use verdis_tests::{info_field, require_program, text, Conn, Kind, Server};

struct Opts {
    rounds: usize,
    smoke: bool,
    out: Option<String>,
    only: Option<Vec<String>>,
}

/// The figures' names, as `--only` matches them (by prefix).
const FIGURES: [&str; 10] = [
    "set_get_p16_3b",
    "set_get_p16_1024b",
    "set_get_p1_3b",
    "ceiling",
    "memory",
    "repl_writes",
    "propagation",
    "full_sync",
    "partial_resync",
    "checker",
];

/// The options, for `--help` and a bad command line.
fn usage() -> String {
    format!(
        "usage: verdis-bench [--rounds N] [--smoke] [--out FILE.md] [--only NAME,...]\n\
         NAME: a prefix of {}",
        FIGURES.join(", ")
    )
}

/// What the command line asks for.
enum Invocation {
    Run(Opts),
    Help,
}

/// Reads the options (without the program name); an error names the bad option or value.
fn parse_opts(mut args: impl Iterator<Item = String>) -> Result<Invocation, String> {
    let mut o = Opts {
        rounds: 5,
        smoke: false,
        out: None,
        only: None,
    };
    let mut rounds_given = false;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--rounds" => {
                let v = value("--rounds")?;
                o.rounds = match v.parse() {
                    Ok(n) if n > 0 => n,
                    _ => return Err(format!("--rounds takes a positive integer, not {v:?}")),
                };
                rounds_given = true;
            }
            "--smoke" => o.smoke = true,
            "--out" => o.out = Some(value("--out")?),
            "--only" => {
                let names: Vec<String> = value("--only")?.split(',').map(str::to_string).collect();
                if let Some(bad) = names
                    .iter()
                    .find(|n| !FIGURES.iter().any(|f| f.starts_with(n.as_str())))
                {
                    return Err(format!("--only: no figure is named {bad:?}"));
                }
                o.only = Some(names);
            }
            "-h" | "--help" => return Ok(Invocation::Help),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if o.smoke && !rounds_given {
        o.rounds = 1;
    }
    Ok(Invocation::Run(o))
}

/// One measured quantity of one figure, per round for each server.
#[derive(Default, Clone)]
struct Series {
    verdis: Vec<f64>,
    redis: Vec<f64>,
}

impl Series {
    fn push(&mut self, kind: Kind, v: f64) {
        match kind {
            Kind::Verdis => self.verdis.push(v),
            Kind::Redis => self.redis.push(v),
        }
    }

    /// Per-round ratios Verdis / Redis.
    fn ratios(&self) -> Vec<f64> {
        self.verdis
            .iter()
            .zip(&self.redis)
            .map(|(v, r)| if *r > 0.0 { v / r } else { f64::NAN })
            .collect()
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn min_max(v: &[f64]) -> (f64, f64) {
    let f: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    (
        f.iter().copied().fold(f64::INFINITY, f64::min),
        f.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    )
}

/// A result row of the report.
struct Row {
    figure: String,
    unit: String,
    series: Series,
    target: String,
    /// Whether the median ratio meets the target.
    pass: Option<bool>,
    command: String,
}

/// One line of redis-benchmark's CSV output.
struct BenchLine {
    test: String,
    rps: f64,
    p99_ms: f64,
}

fn redis_benchmark(port: u16, args: &[&str]) -> Result<Vec<BenchLine>, String> {
    let out = Command::new(require_program("redis-benchmark"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "--csv"])
        .args(args)
        .output()
        .map_err(|e| format!("run redis-benchmark: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "redis-benchmark failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    Ok(stdout
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<String> = l
                .split(',')
                .map(|x| x.trim_matches('"').to_string())
                .collect();
            Some(BenchLine {
                test: f.first()?.clone(),
                rps: f.get(1)?.parse().ok()?,
                p99_ms: f.get(6)?.parse().ok()?,
            })
        })
        .collect())
}

/// Resident memory of a process, from /proc.
fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// CPU time a process has used so far, all its threads, in seconds: utime + stime from
/// /proc/<pid>/stat, in the kernel's USER_HZ ticks (1/100 s).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name in parentheses may hold spaces; the fields after it start at `state`.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// Loads `n` keys `key:<i>` with `value` through a pipelined connection.
fn load_keys(port: u16, n: usize, value: &str) {
    let mut c = Conn::connect(port);
    let batch = 1000;
    let mut i = 0;
    while i < n {
        let end = (i + batch).min(n);
        let mut req = Vec::new();
        for k in i..end {
            verdis_core::resp::encode_command(&["SET", &format!("key:{k:08}"), value], &mut req);
        }
        c.send_raw(&req);
        c.read_raw_frames(end - i);
        i = end;
    }
}

fn start(kind: Kind) -> Server {
    Server::start(kind, &[])
}

fn selected(o: &Opts, name: &str) -> bool {
    o.only
        .as_ref()
        .is_none_or(|l| l.iter().any(|x| name.starts_with(x.as_str())))
}

/// The figures whose per-round ratios spread the widest run this many times `--rounds`, since
/// a median of five of them moves with the host's noise: the -P 1 figures (their rounds are
/// short, 200k requests; throughput 0.52..1.53 and p99 0.26..3.85 in one five-round run) and
/// the full sync, whose write stall is the worst of one round's latencies (0.46..1.44 in one
/// five-round run, medians of 0.82 to 1.30 over four such runs).
const WIDE_SPREAD_ROUNDS_FACTOR: usize = 3;

/// The -P 1 figures run twice as many rounds again (30 by default): both servers wait on the
/// client's round trips there, so the ratios sit near 1.00 with per-round ratios of
/// 0.84..1.21, and with 15 rounds the median of SET throughput still fell to 0.96-0.97 in two
/// of seven runs on 2026-12-08 (0.99-1.03 in the others).
const P1_ROUNDS_FACTOR: usize = 2 * WIDE_SPREAD_ROUNDS_FACTOR;

/// SET and GET throughput (and p99) with redis-benchmark at a pipeline depth and value size.
fn bench_set_get(o: &Opts, rows: &mut Vec<Row>, pipeline: u32, size: u32, target_ratio: f64) {
    let name = format!("set_get_p{pipeline}_{size}b");
    if !selected(o, &name) {
        return;
    }
    let rounds = if pipeline == 1 {
        o.rounds * P1_ROUNDS_FACTOR
    } else {
        o.rounds
    };
    let n = if o.smoke {
        20_000
    } else if pipeline > 1 {
        2_000_000
    } else {
        200_000
    };
    // With pipelining, PING from the same client measures what the client itself can do (the
    // server does next to nothing for it): no server can be seen faster than that. Each test
    // is its own redis-benchmark call there, so the server's CPU time can be read around it.
    let calls: &[&str] = if pipeline > 1 {
        &["ping_mbulk", "set", "get"]
    } else {
        &["set,get"]
    };
    let args_for = |tests: &str| -> Vec<String> {
        [
            "-t",
            tests,
            "-P",
            &pipeline.to_string(),
            "-c",
            "50",
            "-r",
            "100000",
            "-d",
            &size.to_string(),
            "-n",
            &n.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let mut set = Series::default();
    let mut get = Series::default();
    let mut set_p99 = Series::default();
    let mut get_p99 = Series::default();
    let mut ping = Series::default();
    let mut set_cpu = Series::default();
    let mut get_cpu = Series::default();
    let servers = [start(Kind::Verdis), start(Kind::Redis)];
    for round in 0..rounds {
        for s in &servers {
            for tests in calls {
                let args = args_for(tests);
                let args: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
                let cpu_before = cpu_seconds(s.pid());
                let lines = redis_benchmark(s.port, &args).unwrap_or_else(|e| panic!("{e}"));
                let cpu_us = match (cpu_before, cpu_seconds(s.pid())) {
                    (Some(b), Some(a)) => (a - b) * 1e6 / n as f64,
                    _ => f64::NAN,
                };
                for l in lines {
                    match l.test.as_str() {
                        "PING_MBULK" => ping.push(s.kind, l.rps),
                        "SET" => {
                            set.push(s.kind, l.rps);
                            set_p99.push(s.kind, l.p99_ms);
                            if *tests == "set" {
                                set_cpu.push(s.kind, cpu_us);
                            }
                        }
                        "GET" => {
                            get.push(s.kind, l.rps);
                            get_p99.push(s.kind, l.p99_ms);
                            if *tests == "get" {
                                get_cpu.push(s.kind, cpu_us);
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        eprintln!("{name}: round {} done", round + 1);
    }
    let args = args_for(&calls.join(","));
    let args: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
    let command = format!("redis-benchmark {}", args.join(" "));
    for (what, series) in [("SET", set), ("GET", get)] {
        let pass = median(&series.ratios()) >= target_ratio;
        let mut target = format!(">= {target_ratio:.2}x Redis");
        if !ping.verdis.is_empty() {
            // The best ratio this client could show: a server as fast as answering PING.
            let best: Vec<f64> = ping
                .verdis
                .iter()
                .zip(&series.redis)
                .map(|(p, r)| p / r)
                .collect();
            let _ = write!(
                target,
                " (the client's ceiling allows {:.2}x)",
                median(&best)
            );
        }
        rows.push(Row {
            figure: format!("{what} -P {pipeline}, {size}-byte values"),
            unit: "requests/s".into(),
            series,
            target,
            pass: Some(pass),
            command: command.clone(),
        });
    }
    if !ping.verdis.is_empty() {
        rows.push(Row {
            figure: format!(
                "PING -P {pipeline} in the same run: the client's ceiling ({size}-byte run)"
            ),
            unit: "requests/s".into(),
            series: ping,
            target: "(shown: no server is seen faster)".into(),
            pass: None,
            command: command.clone(),
        });
    }
    for (what, series) in [("SET", set_cpu), ("GET", get_cpu)] {
        if series.verdis.is_empty() {
            continue;
        }
        rows.push(Row {
            figure: format!("server CPU per {what} -P {pipeline}, {size}-byte values"),
            unit: "CPU µs".into(),
            series,
            target: format!(
                "(shown: {target_ratio:.2}x the throughput takes <= {:.2}x)",
                1.0 / target_ratio
            ),
            pass: None,
            command: command.clone(),
        });
    }
    if pipeline == 1 {
        for (what, series) in [("SET", set_p99), ("GET", get_p99)] {
            let pass = median(&series.ratios()) <= 1.0;
            rows.push(Row {
                figure: format!("{what} -P 1 p99 latency, {size}-byte values"),
                unit: "ms".into(),
                series,
                target: "<= Redis's".into(),
                pass: Some(pass),
                command: command.clone(),
            });
        }
    }
}

/// GET at -P 1 against Verdis as a fraction of PING at -P 1 against Verdis: the client's
/// round trip is the ceiling; a server that adds little per command gets close to it.
fn bench_ceiling(o: &Opts, rows: &mut Vec<Row>) {
    if !selected(o, "ceiling") {
        return;
    }
    let n = if o.smoke { 20_000 } else { 200_000 };
    let n_s = n.to_string();
    let args = ["-t", "ping_mbulk,get", "-P", "1", "-c", "50", "-n", &n_s];
    let mut frac = Series::default();
    let servers = [start(Kind::Verdis), start(Kind::Redis)];
    for _ in 0..o.rounds {
        for s in &servers {
            let lines = redis_benchmark(s.port, &args).unwrap_or_else(|e| panic!("{e}"));
            let ping = lines.iter().find(|l| l.test == "PING_MBULK").map(|l| l.rps);
            let get = lines.iter().find(|l| l.test == "GET").map(|l| l.rps);
            if let (Some(p), Some(g)) = (ping, get) {
                frac.push(s.kind, g / p);
            }
        }
    }
    let pass = median(&frac.verdis) >= 0.85;
    rows.push(Row {
        figure: "GET / PING throughput at -P 1 (same server)".into(),
        unit: "fraction".into(),
        series: frac,
        target: "Verdis >= 0.85".into(),
        pass: Some(pass),
        command: format!("redis-benchmark {}", args.join(" ")),
    });
}

/// RSS after loading 1M small keys, fresh servers each round.
fn bench_memory(o: &Opts, rows: &mut Vec<Row>) {
    if !selected(o, "memory") {
        return;
    }
    let n = if o.smoke { 20_000 } else { 1_000_000 };
    let mut rss = Series::default();
    for _ in 0..o.rounds {
        for kind in [Kind::Verdis, Kind::Redis] {
            let s = start(kind);
            load_keys(s.port, n, "0123456789");
            let dbsize = s.conn().cmd(&["DBSIZE"]);
            assert_eq!(text(&dbsize), n.to_string());
            std::thread::sleep(Duration::from_millis(200));
            rss.push(kind, rss_bytes(s.pid()) as f64);
        }
    }
    let pass = median(&rss.ratios()) <= 1.0;
    rows.push(Row {
        figure: format!("RSS after loading {n} keys (key:%08d, 10-byte values)"),
        unit: "bytes".into(),
        series: rss,
        target: "<= 1.0x Redis".into(),
        pass: Some(pass),
        command: "pipelined SET key:<i> 0123456789 in batches of 1000, then VmRSS".into(),
    });
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().map(|l| l.to_string()))
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cores} cores ({cpu}), {}, Linux {}",
        mem.split_whitespace().skip(1).collect::<Vec<_>>().join(" "),
        kernel.trim()
    )
}

fn fmt_value(v: f64, unit: &str) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    match unit {
        "bytes" => format!("{:.1} MiB", v / (1024.0 * 1024.0)),
        "KiB" => format!("{:.1} KiB", v / 1024.0),
        "requests/s" => format!("{:.0}", v),
        "fraction" => format!("{v:.3}"),
        "own ratio" => format!("{v:.4}"),
        "count" => format!("{v:.0}"),
        "µs" => format!("{v:.0} µs"),
        "CPU µs" => format!("{v:.3} µs"),
        "ms" => format!("{v:.3} ms"),
        "s" => format!("{v:.3} s"),
        _ => format!("{v:.3}"),
    }
}

/// Units whose rows compare each server with a target of its own, not Verdis with Redis.
fn per_server(unit: &str) -> bool {
    matches!(unit, "fraction" | "own ratio" | "count")
}

/// How each figure is measured, for the report.
const METHOD: &str = "\
- SET and GET at -P 16 run beside PING (`ping_mbulk`), one redis-benchmark call each, same \
  options, on the same server one after the other. The server replies to PING without \
  touching data: PING's rate is what this client reaches on this machine at best, so the \
  target column shows the largest ratio the client could show (Verdis's PING / Redis's SET \
  or GET, median of the rounds). The client is one process sharing the 2 cores with the \
  server. The server's CPU time (utime + stime of all its threads, from /proc/<pid>/stat) is \
  read around the SET call and the GET call and divided by the requests: what each request \
  costs the server, whatever the client's ceiling.
- Every figure starts both servers with the same options and runs the same load against each; \
  rounds alternate Verdis and Redis (A B A B ...) and a figure's ratio is the median of the \
  per-round ratios Verdis / Redis, with the smallest and largest. The full sync runs three \
  times the rounds and the -P 1 figures six times: the -P 1 rounds are short and spread the \
  widest around a ratio near 1.00, and the write stall is the worst latency of a round, an \
  extreme that moves from round to round. A round that fails (a bad reply, a wait past its \
  deadline) is listed under Errors and leaves no number behind.
- Replication figures use the same topology for both: a master with `--repl-diskless-sync yes \
  --repl-diskless-sync-delay 0`, replicas with `--repl-diskless-load on-empty-db` (both load \
  the snapshot from the socket), all on loopback.
- Writes with 2 replicas: redis-benchmark's SET figure against the master; after each run the \
  bench polls until both replicas' `master_repl_offset` reaches the master's, so a master that \
  defers its stream cannot look faster, and also reports the writes per second counted up to \
  that moment.
- Propagation delay: a writer thread sends `SET pd:<seq> <µs since start>` in pipelined batches \
  paced by the clock (50k writes/s; each batch carries the time just before it is written). \
  Instead of polling a replica (whose resolution would be a round trip), the bench opens its \
  own replica link (`REPLCONF capa eof capa psync2`, `PSYNC ? -1`, the snapshot skipped, then \
  `REPLCONF ACK` each second, starting once a probe write has arrived) and timestamps each SET \
  as it is read off the socket. Two links are measured: one to the master (what the master adds \
  between accepting a write and putting it on the replication link) and one to a real replica \
  of that master, which forwards the stream to its own replicas after applying it (master, \
  link and replica together). The first tenth of the samples is dropped as warm-up; p50 and \
  p99 of the rest are reported.
- Full sync: the master is loaded once with pipelined SETs; each round starts a fresh, empty \
  replica and times REPLICAOF until INFO replication shows `master_link_status:up` and \
  `master_sync_in_progress:0` (polled every 5 ms), then checks DBSIZE is equal on both; the \
  part until the master's `sync_full` counter moves (connect and handshake) is shown on its own. \
  Meanwhile one connection sends `SET stall <i>` one at a time to the master; its worst latency \
  between REPLICAOF and link up is the write stall. Its thread asks the kernel for a 0.1 ms \
  time slice, as Verdis's workers do, against both servers: its own wait for a core on the \
  shared machine (up to a 4 ms tick) is not the server's stall.
- Partial resync: the replica reaches its master through a TCP proxy in the bench. With a \
  writer at 10k writes/s, the proxy closes the link and refuses connections for 1 s (0.3 s in \
  smoke runs), then lets the replica back and counts the bytes the master sends after \
  `+CONTINUE`. The replica lacked (the master's final `master_repl_offset` - (its PSYNC \
  offset - 1)) bytes once the writer stops and offsets are equal; the ratio of the two is \
  1.00 when exactly the missing stream was sent. A `+FULLRESYNC` on the new link or a higher `sync_full` counts as a full \
  sync. The catch-up time runs from the link's return to the replica's offset reaching the \
  master's offset at that moment; the part of it until the proxy sees the replica's PSYNC is \
  shown on its own, since it is the replica's reconnect policy, not the resync.
- Model checker: `verdis-check check` (default configuration) run three times, one after \
  the other, as a child process; the table shows the median of each measure with its range: \
  wall time from spawn to exit and unique states per second as the checker reports it; peak \
  memory is the largest run's, from the child's VmHWM in /proc, polled every 20 ms until it \
  exits.
- `--smoke` runs every figure once with tiny counts (20k keys, 0.3 s of load, a 0.3 s cut, a \
  small checker configuration): it shows the harness works, not whether targets are met.
";

fn report(
    rows: &[Row],
    checker: Option<&checker::CheckerFigure>,
    errors: &[String],
    o: &Opts,
) -> String {
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let redis_version = {
        let s = start(Kind::Redis);
        let info = text(&s.conn().cmd(&["INFO", "server"]));
        info_field(&info, "redis_version").unwrap_or_default()
    };
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Performance: Verdis against redis-server in the same run\n"
    );
    let _ = writeln!(
        md,
        "Generated by `cargo run --release -p verdis-tests --bin verdis-bench -- --out docs/performance.md` \
         on {date}, commit `{commit}`, {} round(s) per figure ({} for the -P 1 figures, {} for the full sync), \
         servers alternated A B A B.\n",
        o.rounds,
        o.rounds * P1_ROUNDS_FACTOR,
        o.rounds * WIDE_SPREAD_ROUNDS_FACTOR
    );
    let _ = writeln!(md, "Machine: {}. Reference: redis-server {redis_version} (Debian package), started with the same options as Verdis: `--bind 127.0.0.1 --save \"\"`. Both are release builds; the load generator runs on the same machine.\n", machine());
    if o.smoke {
        let _ = writeln!(
            md,
            "**Smoke run**: tiny counts, to show the harness works; the figures below say nothing \
             about the targets.\n"
        );
    }
    let _ = writeln!(
        md,
        "| figure | Verdis (median) | Redis (median) | ratio median (min..max) | target | met |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|");
    for r in rows {
        let ratios = r.series.ratios();
        let (lo, hi) = min_max(&ratios);
        let ratio = if per_server(&r.unit) {
            "n/a".to_string()
        } else {
            format!("{:.2} ({lo:.2}..{hi:.2})", median(&ratios))
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {ratio} | {} | {} |",
            r.figure,
            fmt_value(median(&r.series.verdis), &r.unit),
            fmt_value(median(&r.series.redis), &r.unit),
            r.target,
            match r.pass {
                _ if r.series.verdis.is_empty() => "no data",
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "n/a",
            }
        );
    }
    if let Some(c) = checker {
        let _ = writeln!(md, "\n## Model checker\n");
        let _ = writeln!(md, "`{}` (no Redis counterpart).\n", c.command);
        let _ = writeln!(md, "| measure | value | target | met |");
        let _ = writeln!(md, "|---|---|---|---|");
        for l in &c.lines {
            let met = match l.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "n/a",
            };
            let _ = writeln!(md, "| {} | {} | {} | {met} |", l.what, l.value, l.target);
        }
    }
    if !errors.is_empty() {
        let _ = writeln!(md, "\n## Errors\n");
        for e in errors {
            let _ = writeln!(md, "- {e}");
        }
    }
    let _ = writeln!(md, "\n## Method\n\n{METHOD}");
    let _ = writeln!(md, "## Commands\n");
    let _ = writeln!(
        md,
        "Replication figures: masters get `{}`, replicas `{}`.\n",
        replication::MASTER.join(" "),
        replication::REPLICA.join(" ")
    );
    let mut seen = Vec::new();
    for r in rows {
        if !seen.contains(&r.command) {
            let _ = writeln!(md, "- {}: `{}`", r.figure, r.command);
            seen.push(r.command.clone());
        }
    }
    md
}

/// The heading from which a report is written by hand (the profiles behind the figures).
const HAND_WRITTEN_HEADING: &str = "## Where the time goes";

/// The hand-written part of a previous report: from [`HAND_WRITTEN_HEADING`] to the end.
fn hand_written(old: &str) -> Option<&str> {
    let at = old
        .match_indices(HAND_WRITTEN_HEADING)
        .map(|(i, _)| i)
        .find(|&i| i == 0 || old[..i].ends_with('\n'))?;
    Some(&old[at..])
}

fn main() {
    // A bad command line runs nothing: the usage text and status 2.
    let o = match parse_opts(std::env::args().skip(1)) {
        Ok(Invocation::Run(o)) => o,
        Ok(Invocation::Help) => {
            println!("{}", usage());
            return;
        }
        Err(message) => {
            eprintln!("verdis-bench: {message}\n{}", usage());
            std::process::exit(2);
        }
    };
    let t0 = Instant::now();
    let mut rows = Vec::new();
    bench_set_get(&o, &mut rows, 16, 3, 1.5);
    bench_set_get(&o, &mut rows, 16, 1024, 1.5);
    bench_set_get(&o, &mut rows, 1, 3, 0.97);
    bench_ceiling(&o, &mut rows);
    bench_memory(&o, &mut rows);
    let mut errors = Vec::new();
    replication::bench_replicated_writes(&o, &mut rows, &mut errors);
    replication::bench_propagation(&o, &mut rows, &mut errors);
    replication::bench_full_sync(&o, &mut rows, &mut errors);
    replication::bench_partial_resync(&o, &mut rows, &mut errors);
    let checker = checker::bench_checker(&o, &mut errors);
    for e in &errors {
        eprintln!("error: {e}");
    }
    let md = report(&rows, checker.as_ref(), &errors, &o);
    println!("{md}");
    eprintln!("done in {:.1} s", t0.elapsed().as_secs_f64());
    if let Some(path) = &o.out {
        // The hand-written analysis at the end of the previous report survives the rewrite.
        let old = std::fs::read_to_string(path).unwrap_or_default();
        let md = match hand_written(&old) {
            Some(kept) => format!("{md}\n{kept}"),
            None => md,
        };
        std::fs::write(path, &md).expect("write the report");
        eprintln!("wrote {path}");
    }
    if !errors.is_empty() {
        eprintln!("{} round(s) failed: see Errors in the report", errors.len());
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hand_written_part_is_found_only_as_a_heading() {
        let old = "# Performance\n| a |\nsee ## Where the time goes below\n## Where the time goes\n\nprofiles\n";
        assert_eq!(
            hand_written(old),
            Some("## Where the time goes\n\nprofiles\n")
        );
        assert_eq!(hand_written("# Performance\n| a |\n"), None);
        assert_eq!(hand_written(""), None);
    }

    fn parse(args: &[&str]) -> Result<Invocation, String> {
        parse_opts(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn options_are_read_and_bad_ones_refused() {
        let Ok(Invocation::Run(o)) = parse(&["--smoke", "--only", "full,check", "--out", "r.md"])
        else {
            panic!("a valid command line was refused");
        };
        assert_eq!(
            (o.rounds, o.smoke, o.out.as_deref()),
            (1, true, Some("r.md"))
        );
        assert_eq!(o.only, Some(vec!["full".to_string(), "check".to_string()]));
        let Ok(Invocation::Run(o)) = parse(&["--rounds", "7", "--smoke"]) else {
            panic!("a valid command line was refused");
        };
        assert_eq!(o.rounds, 7);
        assert!(matches!(parse(&["--help"]), Ok(Invocation::Help)));
        for (args, error) in [
            (
                &["--rounds", "x"][..],
                "--rounds takes a positive integer, not \"x\"",
            ),
            (
                &["--rounds", "0"],
                "--rounds takes a positive integer, not \"0\"",
            ),
            (&["--rounds"], "--rounds needs a value"),
            (&["--out"], "--out needs a value"),
            (
                &["--only", "full_sync,fulsync"],
                "--only: no figure is named \"fulsync\"",
            ),
            (&["--bogus"], "unknown option --bogus"),
        ] {
            assert_eq!(parse(args).err().as_deref(), Some(error), "{args:?}");
        }
    }
}
