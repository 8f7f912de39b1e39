//! The replication figures: writes with two replicas attached, propagation delay, full sync
//! time and the write stall during it, partial resync after a link cut.
//!
//! Each figure builds the same topology for both servers (Verdis master and replicas, Redis
//! master and replicas), with `--repl-diskless-sync-delay 0` on every master, and alternates
//! rounds. A round that fails (a reply that is not the expected one, a wait past its deadline)
//! is reported as an error line in the report and leaves no number behind.

use crate::net::{join, paced_writer, wait_for, Proxy, Raw};
use crate::{median, selected, Opts, Row, Series, WIDE_SPREAD_ROUNDS_FACTOR};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use verdis_core::resp::{encode_command, Frame};
use verdis_tests::{Kind, Server};

/// How long a sync, a reconnection or a catch-up may take before the round is an error.
const SYNC_DEADLINE: Duration = Duration::from_secs(60);
/// How often the link state and offsets are polled while timing them.
const POLL: Duration = Duration::from_millis(5);

pub const MASTER: &[&str] = &[
    "--repl-diskless-sync",
    "yes",
    "--repl-diskless-sync-delay",
    "0",
];
/// Replicas load the snapshot from the socket into their (empty) dataset, on both servers.
pub const REPLICA: &[&str] = &["--repl-diskless-load", "on-empty-db"];

fn kinds() -> [Kind; 2] {
    [Kind::Verdis, Kind::Redis]
}

fn name(kind: Kind) -> &'static str {
    match kind {
        Kind::Verdis => "Verdis",
        Kind::Redis => "Redis",
    }
}

/// `REPLICAOF 127.0.0.1 <port>` on `replica`, then the time until its link is up and no sync
/// is in progress.
fn replicate(replica: &mut Raw, master_port: u16) -> Result<Duration, String> {
    let start = Instant::now();
    replica.ok(&["REPLICAOF", "127.0.0.1", &master_port.to_string()])?;
    wait_for(SYNC_DEADLINE, POLL, "master_link_status:up", || {
        let info = replica.info("replication")?;
        Ok(info.contains("master_link_status:up") && info.contains("master_sync_in_progress:0"))
    })?;
    Ok(start.elapsed())
}

/// Waits until every replica has processed the master's whole stream (its
/// master_repl_offset reaches the master's); returns the master's offset.
fn wait_caught_up(master: &mut Raw, replicas: &mut [Raw]) -> Result<i64, String> {
    let mut target = 0;
    wait_for(SYNC_DEADLINE, POLL, "replicas catch up", || {
        target = master.info_i64("replication", "master_repl_offset")?;
        for r in replicas.iter_mut() {
            if r.info_i64("replication", "master_repl_offset")? < target {
                return Ok(false);
            }
        }
        Ok(true)
    })?;
    Ok(target)
}

/// A master and `n` replicas of the same kind, linked and in sync.
struct Topology {
    master: Server,
    replicas: Vec<Server>,
}

impl Topology {
    fn start(kind: Kind, n: usize) -> Result<Topology, String> {
        let master = Server::start(kind, MASTER);
        let mut replicas = Vec::new();
        for _ in 0..n {
            let r = Server::start(kind, REPLICA);
            replicate(&mut Raw::connect(r.port)?, master.port)?;
            replicas.push(r);
        }
        let t = Topology { master, replicas };
        // A master may hold the stream until a replica's first ACK after the sync: wait until
        // a write has reached every replica, so rounds measure the steady state.
        let (mut m, mut rs) = t.conns()?;
        m.ok(&["SET", "warm-up", "1"])?;
        wait_caught_up(&mut m, &mut rs)?;
        Ok(t)
    }

    fn conns(&self) -> Result<(Raw, Vec<Raw>), String> {
        let m = Raw::connect(self.master.port)?;
        let rs = self
            .replicas
            .iter()
            .map(|r| Raw::connect(r.port))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((m, rs))
    }
}

/// Figure: SET throughput with redis-benchmark against a master with 2 replicas attached;
/// after each run the replicas must have caught up, and the writes per second counted until
/// they did are reported next to redis-benchmark's own figure.
pub fn bench_replicated_writes(o: &Opts, rows: &mut Vec<Row>, errors: &mut Vec<String>) {
    if !selected(o, "repl_writes") {
        return;
    }
    let n: u64 = if o.smoke { 20_000 } else { 2_000_000 };
    let n_s = n.to_string();
    let args = [
        "-t", "set", "-P", "16", "-c", "50", "-r", "100000", "-d", "3", "-n", &n_s,
    ];
    let mut rps = Series::default();
    let mut end_to_end = Series::default();
    let mut topos = Vec::new();
    for kind in kinds() {
        match Topology::start(kind, 2) {
            Ok(t) => topos.push(t),
            Err(e) => {
                errors.push(format!("writes with 2 replicas, {}: {e}", name(kind)));
                return;
            }
        }
    }
    for round in 0..o.rounds {
        for t in &topos {
            let kind = t.master.kind;
            let run = || -> Result<(f64, f64), String> {
                let (mut m, mut rs) = t.conns()?;
                let start = Instant::now();
                let lines = crate::redis_benchmark(t.master.port, &args)?;
                let set = lines
                    .iter()
                    .find(|l| l.test == "SET")
                    .ok_or("no SET line from redis-benchmark")?;
                wait_caught_up(&mut m, &mut rs)?;
                Ok((set.rps, n as f64 / start.elapsed().as_secs_f64()))
            };
            match run() {
                Ok((r, e)) => {
                    rps.push(kind, r);
                    end_to_end.push(kind, e);
                }
                Err(e) => errors.push(format!(
                    "writes with 2 replicas, {} round {}: {e}",
                    name(kind),
                    round + 1
                )),
            }
        }
        eprintln!("repl_writes: round {} done", round + 1);
    }
    let command = format!("redis-benchmark {}", args.join(" "));
    let pass = median(&rps.ratios()) >= 1.2;
    rows.push(Row {
        figure: "SET -P 16 with 2 replicas attached".into(),
        unit: "requests/s".into(),
        series: rps,
        target: ">= 1.20x Redis".into(),
        pass: Some(pass),
        command: command.clone(),
    });
    rows.push(Row {
        figure: "SET -P 16 with 2 replicas, counted until both replicas caught up".into(),
        unit: "requests/s".into(),
        series: end_to_end,
        target: "(shown for honesty)".into(),
        pass: None,
        command,
    });
}

/// p50 and p99 of a set of samples.
fn percentiles(mut v: Vec<u64>) -> Option<(f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize] as f64;
    Some((at(0.50), at(0.99)))
}

/// The tool of the propagation figure: a replica connection (`PSYNC ? -1`, snapshot skipped)
/// that parses the stream and, for every `SET pd:<seq> <sent µs>`, records arrival - sent.
fn observe_stream(
    mut r: Raw,
    base_offset: i64,
    t0: Instant,
    expected: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
) -> Result<Vec<u64>, String> {
    let mut delays = Vec::new();
    let mut seen = 0u64;
    let mut offset_bytes = base_offset;
    let mut last_ack = Instant::now();
    r.set_read_timeout(Duration::from_millis(100));
    // Once the writer is done, the rest of its writes must arrive within this long.
    let mut done_at: Option<Instant> = None;
    loop {
        r.fill_or_timeout()?;
        if done.load(Ordering::SeqCst) {
            let d = *done_at.get_or_insert_with(Instant::now);
            if d.elapsed() > Duration::from_secs(10) {
                return Err(format!(
                    "the stream stopped after {seen} of {} writes",
                    expected.load(Ordering::SeqCst)
                ));
            }
        }
        let arrival = t0.elapsed().as_micros() as u64;
        while let Some(f) = r.take_frame()? {
            let Frame::Array(args) = &f else { continue };
            let mut enc = Vec::new();
            encode_frame_len(&f, &mut enc);
            offset_bytes += enc.len() as i64;
            let bulk = |i: usize| match args.get(i) {
                Some(Frame::Bulk(b)) => Some(b.clone()),
                _ => None,
            };
            let (Some(cmd), Some(key), Some(val)) = (bulk(0), bulk(1), bulk(2)) else {
                continue;
            };
            if !cmd.eq_ignore_ascii_case(b"SET") || !key.starts_with(b"pd:") {
                continue;
            }
            let sent: u64 = std::str::from_utf8(&val)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or("a SET pd: value that is not a timestamp")?;
            delays.push(arrival.saturating_sub(sent));
            seen += 1;
        }
        if last_ack.elapsed() > Duration::from_secs(1) {
            r.ack(offset_bytes)?;
            last_ack = Instant::now();
        }
        if done.load(Ordering::SeqCst) && seen >= expected.load(Ordering::SeqCst) {
            return Ok(delays);
        }
    }
}

/// Re-encodes a stream command to count its bytes for the ACK offset (an estimate is enough:
/// the ACK only keeps the link alive here).
fn encode_frame_len(f: &Frame, out: &mut Vec<u8>) {
    if let Frame::Array(args) = f {
        let parts: Vec<&[u8]> = args
            .iter()
            .filter_map(|a| match a {
                Frame::Bulk(b) => Some(b.as_ref()),
                _ => None,
            })
            .collect();
        encode_command(&parts, out);
    }
}

/// One propagation round: writes paced at `rate` on the master at `write_port` for `run_for`,
/// observed on a replica link attached to `observe_port` (the master itself, or a replica
/// that forwards the stream once it has applied it); p50 and p99 in µs.
fn propagation_round(
    write_port: u16,
    observe_port: u16,
    rate: u64,
    run_for: Duration,
    smoke: bool,
) -> Result<(f64, f64), String> {
    Raw::connect(write_port)?.ok(&["FLUSHALL"])?;
    let mut r = Raw::connect(observe_port)?;
    let base = r.become_replica()?;
    r.wait_streaming(&mut Raw::connect(write_port)?, base)?;
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let expected = Arc::new(AtomicU64::new(u64::MAX));
    let (e2, d2) = (expected.clone(), stop.clone());
    let observer = std::thread::spawn(move || observe_stream(r, base, t0, e2, d2));
    let writer = paced_writer(write_port, rate, "pd:", t0, stop.clone());
    std::thread::sleep(run_for);
    stop.store(true, Ordering::SeqCst);
    let w = join(writer);
    expected.store(w.as_ref().map(|w| w.sent).unwrap_or(0), Ordering::SeqCst);
    let delays = join(observer)?;
    let w = w?;
    let achieved = w.sent as f64 / w.elapsed.as_secs_f64();
    // A loaded machine may not keep the pace; smoke runs only check the tool works.
    if !smoke && achieved < rate as f64 * 0.9 {
        return Err(format!("the writer reached only {achieved:.0} writes/s"));
    }
    // The first tenth warms up the connections.
    let warm = delays.len() / 10;
    percentiles(delays[warm..].to_vec()).ok_or_else(|| "no samples".to_string())
}

/// Figure: delay from a write on the master to its arrival at a paced 50k writes/s, seen two
/// ways: on a replica link of the master (what the master adds), and on a link of a real
/// replica, which forwards the stream only after applying it (master, network and replica).
pub fn bench_propagation(o: &Opts, rows: &mut Vec<Row>, errors: &mut Vec<String>) {
    if !selected(o, "propagation") {
        return;
    }
    let rate: u64 = 50_000;
    let run_for = if o.smoke {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(5)
    };
    // [master link, through a replica] x [p50, p99]
    let mut series: [[Series; 2]; 2] = Default::default();
    let mut pairs = Vec::new();
    for kind in kinds() {
        let master = Server::start(kind, MASTER);
        let replica = Server::start(kind, &[MASTER, REPLICA].concat());
        let linked = Raw::connect(replica.port).and_then(|mut c| replicate(&mut c, master.port));
        if let Err(e) = linked {
            errors.push(format!("propagation delay, {}: {e}", name(kind)));
            return;
        }
        pairs.push((master, replica));
    }
    for round in 0..o.rounds {
        for (m, r) in &pairs {
            for (path, observe) in [(0, m.port), (1, r.port)] {
                match propagation_round(m.port, observe, rate, run_for, o.smoke) {
                    Ok((a, b)) => {
                        series[path][0].push(m.kind, a);
                        series[path][1].push(m.kind, b);
                    }
                    Err(e) => errors.push(format!(
                        "propagation delay ({}), {} round {}: {e}",
                        ["master link", "through a replica"][path],
                        name(m.kind),
                        round + 1
                    )),
                }
            }
        }
        eprintln!("propagation: round {} done", round + 1);
    }
    let command = format!(
        "verdis-bench --only propagation (built in: {rate} writes/s for {:.1} s)",
        run_for.as_secs_f64()
    );
    let [direct, through] = series;
    for (what, [p50, p99]) in [
        ("master -> its replica link", direct),
        (
            "master -> replica -> its replica link (applied on the replica)",
            through,
        ),
    ] {
        rows.push(Row {
            figure: format!("propagation delay {what} at {rate} writes/s, p50"),
            unit: "µs".into(),
            series: p50,
            target: "(shown with p99)".into(),
            pass: None,
            command: command.clone(),
        });
        let pass = median(&p99.ratios()) <= 1.0;
        rows.push(Row {
            figure: format!("propagation delay {what} at {rate} writes/s, p99"),
            unit: "µs".into(),
            series: p99,
            target: "<= Redis's".into(),
            pass: Some(pass),
            command: command.clone(),
        });
    }
}

/// Loads `n` keys `key:<i>` with `value` through a pipelined connection.
fn load(port: u16, n: u64, value: &str) -> Result<(), String> {
    let mut c = Raw::connect(port)?;
    let mut i = 0;
    while i < n {
        let end = (i + 1000).min(n);
        let mut req = Vec::new();
        for k in i..end {
            encode_command(&["SET", &format!("key:{k:08}"), value], &mut req);
        }
        c.send(&req)?;
        for _ in i..end {
            if let Frame::Error(e) = c.frame()? {
                return Err(format!("SET: -{}", String::from_utf8_lossy(&e)));
            }
        }
        i = end;
    }
    Ok(())
}

/// `REPLICAOF` on a fresh replica until its link is up, like [`replicate`], also noting when the
/// master's `sync_full` counter moves (it has accepted the PSYNC as a full sync): (total,
/// REPLICAOF to that moment).
fn full_sync_timed(
    replica: &mut Raw,
    master: &mut Raw,
    master_port: u16,
) -> Result<(Duration, Duration), String> {
    let before = master.info_i64("stats", "sync_full")?;
    let start = Instant::now();
    let mut accepted = None;
    replica.ok(&["REPLICAOF", "127.0.0.1", &master_port.to_string()])?;
    wait_for(SYNC_DEADLINE, POLL, "master_link_status:up", || {
        if accepted.is_none() && master.info_i64("stats", "sync_full")? > before {
            accepted = Some(start.elapsed());
        }
        let info = replica.info("replication")?;
        Ok(info.contains("master_link_status:up") && info.contains("master_sync_in_progress:0"))
    })?;
    let total = start.elapsed();
    Ok((total, accepted.unwrap_or(total)))
}

/// A writer on one connection, one `SET` at a time, recording its worst latency while
/// `measuring` is set.
fn stall_writer(
    port: u16,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Result<Duration, String>> {
    std::thread::spawn(move || {
        // The probe asks for the short time slice the server's workers run with, so that
        // its own wait for a turn on the shared cores (up to a 4 ms tick) does not pass for
        // the server's stall; it does the same for both servers.
        verdis::sched::prefer_short_slice();
        let mut c = Raw::connect(port)?;
        let mut worst = Duration::ZERO;
        let mut i = 0u64;
        while !stop.load(Ordering::SeqCst) {
            let on = measuring.load(Ordering::SeqCst);
            let start = Instant::now();
            c.ok(&["SET", "stall", &i.to_string()])?;
            if on || measuring.load(Ordering::SeqCst) {
                worst = worst.max(start.elapsed());
            }
            i += 1;
        }
        Ok(worst)
    })
}

/// Figures: full sync of a large dataset (REPLICAOF to master_link_status:up, diskless) and
/// the worst latency of a concurrent writer on the master meanwhile. A fresh replica each
/// round; three times `--rounds` of them (see [`WIDE_SPREAD_ROUNDS_FACTOR`]).
pub fn bench_full_sync(o: &Opts, rows: &mut Vec<Row>, errors: &mut Vec<String>) {
    if !selected(o, "full_sync") {
        return;
    }
    let n: u64 = if o.smoke { 20_000 } else { 1_000_000 };
    let value = "v".repeat(100);
    let mut sync = Series::default();
    let mut to_accept = Series::default();
    let mut stall = Series::default();
    let mut masters = Vec::new();
    for kind in kinds() {
        let m = Server::start(kind, MASTER);
        if let Err(e) = load(m.port, n, &value) {
            errors.push(format!("full sync, loading {}: {e}", name(kind)));
            return;
        }
        masters.push(m);
    }
    for round in 0..o.rounds * WIDE_SPREAD_ROUNDS_FACTOR {
        for m in &masters {
            let run = || -> Result<(f64, f64, f64), String> {
                let replica = Server::start(m.kind, REPLICA);
                let mut rc = Raw::connect(replica.port)?;
                let mut mc = Raw::connect(m.port)?;
                let measuring = Arc::new(AtomicBool::new(false));
                let stop = Arc::new(AtomicBool::new(false));
                let writer = stall_writer(m.port, measuring.clone(), stop.clone());
                std::thread::sleep(Duration::from_millis(100));
                measuring.store(true, Ordering::SeqCst);
                let took = full_sync_timed(&mut rc, &mut mc, m.port);
                measuring.store(false, Ordering::SeqCst);
                stop.store(true, Ordering::SeqCst);
                let worst = join(writer)?;
                let (took, accepted) = took?;
                wait_caught_up(&mut mc, std::slice::from_mut(&mut rc))?;
                let (md, rd) = (mc.int(&["DBSIZE"])?, rc.int(&["DBSIZE"])?);
                if md != rd {
                    return Err(format!("DBSIZE {rd} on the replica, {md} on the master"));
                }
                let ms = worst.as_secs_f64() * 1000.0;
                Ok((took.as_secs_f64(), accepted.as_secs_f64(), ms))
            };
            match run() {
                Ok((t, a, w)) => {
                    sync.push(m.kind, t);
                    to_accept.push(m.kind, a);
                    stall.push(m.kind, w);
                }
                Err(e) => errors.push(format!(
                    "full sync, {} round {}: {e}",
                    name(m.kind),
                    round + 1
                )),
            }
        }
        eprintln!("full_sync: round {} done", round + 1);
    }
    let command = format!(
        "verdis-bench --only full_sync (built in: {n} keys, REPLICAOF 127.0.0.1 <master port> on a fresh replica)"
    );
    let pass = median(&sync.ratios()) <= 0.7;
    rows.push(Row {
        figure: format!("full sync of {n} keys (100-byte values), diskless"),
        unit: "s".into(),
        series: sync,
        target: "<= 0.70x Redis".into(),
        pass: Some(pass),
        command: command.clone(),
    });
    rows.push(Row {
        figure: "of which: REPLICAOF to the master's sync_full moving (connect and handshake)"
            .into(),
        unit: "s".into(),
        series: to_accept,
        target: "(shown)".into(),
        pass: None,
        command: command.clone(),
    });
    let pass = median(&stall.ratios()) <= 1.0;
    rows.push(Row {
        figure: "worst SET latency on the master during that full sync".into(),
        unit: "ms".into(),
        series: stall,
        target: "<= Redis's".into(),
        pass: Some(pass),
        command,
    });
}

/// One partial-resync round's measurements.
struct Resync {
    /// Stream bytes the master sent on the new link / bytes the replica lacked.
    ratio: f64,
    /// Stream bytes the replica lacked when the link came back.
    missed_bytes: f64,
    /// From the link's return to the replica holding the master's offset of that moment.
    catch_up_s: f64,
    /// From the link's return to the replica's PSYNC (its reconnect policy).
    reconnect_s: f64,
    full_syncs: f64,
}

fn resync_round(kind: Kind, rate: u64, cut_for: Duration) -> Result<Resync, String> {
    let master = Server::start(kind, MASTER);
    let replica = Server::start(kind, REPLICA);
    let proxy = Proxy::start(master.port)?;
    let (mut mc, mut rc) = (Raw::connect(master.port)?, Raw::connect(replica.port)?);
    replicate(&mut rc, proxy.port)?;
    mc.ok(&["SET", "warm-up", "1"])?;
    wait_caught_up(&mut mc, std::slice::from_mut(&mut rc))?;
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = paced_writer(master.port, rate, "pr:", t0, stop.clone());
    let result = (|| {
        std::thread::sleep(Duration::from_millis(500));
        let full_before = mc.info_i64("stats", "sync_full")?;
        proxy.cut();
        std::thread::sleep(cut_for);
        let at_reopen = mc.info_i64("replication", "master_repl_offset")?;
        proxy.reopen();
        let reopened = Instant::now();
        // Caught up once it has resynced (a stalled writer could leave nothing to catch up
        // on) and holds what the master held when the link came back.
        let catch_up = wait_for(SYNC_DEADLINE, POLL, "the replica catches up", || {
            Ok(proxy.psync_at().is_some()
                && rc.info_i64("replication", "master_repl_offset")? >= at_reopen)
        })?;
        std::thread::sleep(Duration::from_millis(300));
        let reconnect = proxy
            .psync_at()
            .map(|p| p.saturating_duration_since(reopened))
            .ok_or("no PSYNC seen after the cut")?;
        Ok::<_, String>((full_before, at_reopen, catch_up, reconnect))
    })();
    stop.store(true, Ordering::SeqCst);
    let w = join(writer);
    let (full_before, at_reopen, catch_up, reconnect) = result?;
    w?;
    // Settle: the replica holds the master's whole stream and the proxy saw all of it.
    let mut end = (0, (0, false, -1));
    wait_for(SYNC_DEADLINE, POLL, "offsets settle", || {
        let c1 = proxy.counted();
        let m = mc.info_i64("replication", "master_repl_offset")?;
        let r = rc.info_i64("replication", "master_repl_offset")?;
        let c2 = proxy.counted();
        end = (m, c2);
        Ok(m == r && c1 == c2)
    })?;
    let (m_end, (sent, full_link, psync)) = end;
    if psync < 0 {
        return Err("no PSYNC seen after the cut".into());
    }
    let lacked = m_end - (psync - 1);
    if lacked <= 0 {
        return Err(format!(
            "the replica asked for offset {psync}, the master ends at {m_end}"
        ));
    }
    let full_after = mc.info_i64("stats", "sync_full")?;
    Ok(Resync {
        ratio: sent as f64 / lacked as f64,
        missed_bytes: (at_reopen - (psync - 1)) as f64,
        catch_up_s: catch_up.as_secs_f64(),
        reconnect_s: reconnect.as_secs_f64(),
        full_syncs: (full_after - full_before).max(i64::from(full_link)) as f64,
    })
}

/// Figure: partial resync after the replica's link is cut for 1 s while the master takes
/// 10k writes/s.
pub fn bench_partial_resync(o: &Opts, rows: &mut Vec<Row>, errors: &mut Vec<String>) {
    if !selected(o, "partial_resync") {
        return;
    }
    let rate: u64 = 10_000;
    let cut_for = if o.smoke {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(1)
    };
    let mut ratio = Series::default();
    let mut missed = Series::default();
    let mut catch_up = Series::default();
    let mut reconnect = Series::default();
    let mut full = Series::default();
    for round in 0..o.rounds {
        for kind in kinds() {
            match resync_round(kind, rate, cut_for) {
                Ok(r) => {
                    ratio.push(kind, r.ratio);
                    missed.push(kind, r.missed_bytes);
                    catch_up.push(kind, r.catch_up_s);
                    reconnect.push(kind, r.reconnect_s);
                    full.push(kind, r.full_syncs);
                }
                Err(e) => errors.push(format!(
                    "partial resync, {} round {}: {e}",
                    name(kind),
                    round + 1
                )),
            }
        }
        eprintln!("partial_resync: round {} done", round + 1);
    }
    let command = format!(
        "verdis-bench --only partial_resync (built in: {rate} writes/s, the link cut for {:.1} s)",
        cut_for.as_secs_f64()
    );
    let one = |s: &Series| {
        let m = median(&s.verdis);
        (m - 1.0).abs() < 0.005
    };
    let pass = one(&ratio);
    rows.push(Row {
        figure: format!(
            "partial resync after a {:.1} s link cut at {rate} writes/s: bytes sent / bytes lacked",
            cut_for.as_secs_f64()
        ),
        unit: "own ratio".into(),
        series: ratio,
        target: "1.00".into(),
        pass: Some(pass),
        command: command.clone(),
    });
    let pass = full.verdis.iter().all(|&f| f == 0.0) && !full.verdis.is_empty();
    rows.push(Row {
        figure: "full syncs during that resync (sync_full increase)".into(),
        unit: "count".into(),
        series: full,
        target: "0".into(),
        pass: Some(pass),
        command: command.clone(),
    });
    rows.push(Row {
        figure: "stream bytes the replica lacked when the link came back".into(),
        unit: "KiB".into(),
        series: missed,
        target: "(shown for scale)".into(),
        pass: None,
        command: command.clone(),
    });
    rows.push(Row {
        figure: "time from the link's return to the replica caught up".into(),
        unit: "s".into(),
        series: catch_up,
        target: "(shown)".into(),
        pass: None,
        command: command.clone(),
    });
    rows.push(Row {
        figure: "of which: from the link's return to the replica's PSYNC (its reconnect delay)"
            .into(),
        unit: "s".into(),
        series: reconnect,
        target: "(shown)".into(),
        pass: None,
        command,
    });
}

#[cfg(test)]
mod tests {
    /// p50 and p99 pick the nearest-rank samples of the sorted set.
    #[test]
    fn percentiles_of_a_hundred_and_one_samples() {
        let v: Vec<u64> = (0..=100).rev().collect();
        assert_eq!(super::percentiles(v), Some((50.0, 99.0)));
        assert_eq!(super::percentiles(Vec::new()), None);
    }
}
