//! The model checker figure: `verdis-check check` in its default configuration, timed, with
//! its unique states per second and its peak memory. Redis has no counterpart, so this is a
//! table of its own with absolute numbers.

use crate::{selected, Opts};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one checker run may take before it is stopped and reported as an error.
const CHECK_DEADLINE: Duration = Duration::from_secs(600);

/// One line of the model checker table.
pub struct CheckerLine {
    pub what: String,
    pub value: String,
    pub target: String,
    pub met: Option<bool>,
}

/// The checker's result.
pub struct CheckerFigure {
    pub command: String,
    pub lines: Vec<CheckerLine>,
}

/// `verdis-check` next to this executable (target/<profile>/).
fn checker_binary() -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var("VERDIS_CHECK_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let p = exe
        .parent()
        .map(|d| d.join("verdis-check"))
        .ok_or("the executable has no directory")?;
    if p.exists() {
        Ok(p)
    } else {
        Err(format!(
            "{} is missing: build it (`cargo build --release -p verdis-model --bin verdis-check`)",
            p.display()
        ))
    }
}

/// Peak resident memory (VmHWM) of a running process, in KiB.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

/// The summary line `model <name>: <n> states, <n> unique, max depth <n>, <t> s, <n> unique
/// states/s (...)`: (unique states, max depth, checker time in s, unique states/s).
fn parse_summary(out: &str) -> Option<(u64, u64, f64, f64)> {
    let line = out.lines().find(|l| l.starts_with("model "))?;
    let body = line.split_once(": ")?.1;
    let mut unique = None;
    let mut depth = None;
    let mut time = None;
    let mut rate = None;
    for part in body.split(", ") {
        let part = part.trim();
        if let Some(n) = part.strip_suffix(" unique") {
            unique = n.parse().ok();
        } else if let Some(n) = part.strip_prefix("max depth ") {
            depth = n.parse().ok();
        } else if let Some(n) = part.strip_suffix(" s") {
            time = n.parse().ok();
        } else if part.contains("unique states/s") {
            rate = part.split_whitespace().next()?.parse().ok();
        }
    }
    Some((unique?, depth?, time?, rate?))
}

/// Runs of the full figure: the median shows the checker, not one moment of a shared host
/// (one binary has given 241k-346k unique states/s in runs minutes apart on one machine).
const RUNS: usize = 3;

/// What one run of the checker measured.
struct Run {
    /// From spawn to exit, in seconds.
    wall: f64,
    unique: u64,
    depth: u64,
    /// The checker's own clock, in seconds.
    time: f64,
    /// Unique states per second, as the checker reports it.
    rate: f64,
    peak_kib: u64,
    /// Every property held and the process exited with success.
    ok: bool,
    /// The exit status and failed properties when not `ok`.
    verdict: String,
}

/// Runs the checker [`RUNS`] times (the default configuration; a small one, once, in smoke
/// mode) and reports medians with their range.
pub fn bench_checker(o: &Opts, errors: &mut Vec<String>) -> Option<CheckerFigure> {
    if !selected(o, "checker") {
        return None;
    }
    let (args, runs): (&[&str], usize) = if o.smoke {
        (&["check", "--replicas", "1", "--writes", "1"], 1)
    } else {
        (&["check"], RUNS)
    };
    let command = format!("verdis-check {}", args.join(" "));
    let mut done = Vec::new();
    for i in 0..runs {
        match run(args) {
            Ok(r) => done.push(r),
            Err(e) => errors.push(format!("model checker, run {}: {e}", i + 1)),
        }
    }
    if done.is_empty() {
        return None;
    }
    Some(CheckerFigure {
        command,
        lines: lines(&done),
    })
}

/// `median (min..max, n runs)` of one measure, formatted with `f`.
fn spread(runs: &[Run], get: impl Fn(&Run) -> f64, f: impl Fn(f64) -> String) -> (f64, String) {
    let v: Vec<f64> = runs.iter().map(get).collect();
    let med = crate::median(&v);
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let text = if v.len() == 1 {
        f(med)
    } else {
        format!("{} ({}..{}, {} runs)", f(med), f(lo), f(hi), v.len())
    };
    (med, text)
}

fn lines(runs: &[Run]) -> Vec<CheckerLine> {
    let (wall, wall_text) = spread(runs, |r| r.wall, |x| format!("{x:.1} s"));
    let (rate, rate_text) = spread(runs, |r| r.rate, |x| format!("{x:.0}"));
    let (_, time_text) = spread(runs, |r| r.time, |x| format!("{x:.2} s"));
    let unique: Vec<u64> = runs.iter().map(|r| r.unique).collect();
    let depth = runs.iter().map(|r| r.depth).max().unwrap_or(0);
    let same_states = unique.windows(2).all(|w| w[0] == w[1]);
    let states_text = if same_states {
        format!("{} unique states", unique[0])
    } else {
        format!("unique states differ between runs: {unique:?}")
    };
    let peak = runs.iter().map(|r| r.peak_kib).max().unwrap_or(0);
    let ok = runs.iter().all(|r| r.ok) && same_states;
    let verdicts: Vec<&str> = runs
        .iter()
        .filter(|r| !r.ok)
        .map(|r| r.verdict.as_str())
        .collect();
    vec![
        CheckerLine {
            what: "wall time (the process, start to exit; median)".into(),
            value: wall_text,
            target: "<= 60 s".into(),
            met: Some(wall <= 60.0),
        },
        CheckerLine {
            what: "unique states per second (the checker's own clock; median)".into(),
            value: format!("{rate_text}; {states_text} in {time_text}, max depth {depth}"),
            target: ">= 300000".into(),
            met: Some(rate >= 300_000.0),
        },
        CheckerLine {
            what: "peak memory (VmHWM of the process; the largest run)".into(),
            value: format!("{:.1} MiB", peak as f64 / 1024.0),
            target: "(shown)".into(),
            met: None,
        },
        CheckerLine {
            what: "properties".into(),
            value: if ok {
                "all hold".into()
            } else if verdicts.is_empty() {
                states_text
            } else {
                verdicts.join("; ")
            },
            target: "all hold".into(),
            met: Some(ok),
        },
    ]
}

fn run(args: &[&str]) -> Result<Run, String> {
    let bin = checker_binary()?;
    let start = Instant::now();
    let mut child = Command::new(&bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("start {}: {e}", bin.display()))?;
    let pid = child.id();
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    // VmHWM only grows: the last reading before the process exits is its peak.
    let mut peak_kib = 0;
    let status = loop {
        if let Some(k) = vm_hwm_kib(pid) {
            peak_kib = peak_kib.max(k);
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(format!("wait for the checker: {e}")),
        }
        if start.elapsed() > CHECK_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("no result within {CHECK_DEADLINE:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let wall = start.elapsed().as_secs_f64();
    let out = reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    let (unique, depth, time, rate) = parse_summary(&out).ok_or_else(|| {
        format!(
            "no summary line in its output (exit {status}): {}{}",
            out.lines().take(5).collect::<Vec<_>>().join(" / "),
            err.lines().take(5).collect::<Vec<_>>().join(" / ")
        )
    })?;
    let failed = out
        .lines()
        .filter(|l| l.trim_start().starts_with("FAIL"))
        .count();
    let ok = status.success() && failed == 0;
    Ok(Run {
        wall,
        unique,
        depth,
        time,
        rate,
        peak_kib,
        ok,
        verdict: format!("exit {status}, {failed} property line(s) FAIL"),
    })
}

#[cfg(test)]
mod tests {
    /// The summary line of `verdis-check check` parses into its four numbers.
    #[test]
    fn parses_the_summary_line() {
        let out = "model replication: 109 states, 64 unique, max depth 17, 0.10 s, 635 unique states/s (dfs, 2 threads)\n  ok   always x\n";
        assert_eq!(super::parse_summary(out), Some((64, 17, 0.10, 635.0)));
    }

    fn run(rate: f64, unique: u64, ok: bool) -> super::Run {
        super::Run {
            wall: 2_392_134.0 / rate + 0.1,
            unique,
            depth: 93,
            time: 2_392_134.0 / rate,
            rate,
            peak_kib: 60 * 1024,
            ok,
            verdict: if ok {
                String::new()
            } else {
                "exit 1, 1 property line(s) FAIL".into()
            },
        }
    }

    /// The verdict follows the median run, and the range shows the others.
    #[test]
    fn the_rate_is_the_median_of_the_runs() {
        let lines = super::lines(&[
            run(250_000.0, 2_392_134, true),
            run(310_000.0, 2_392_134, true),
            run(340_000.0, 2_392_134, true),
        ]);
        assert!(lines[1]
            .value
            .starts_with("310000 (250000..340000, 3 runs)"));
        assert_eq!(lines[1].met, Some(true));
        assert_eq!(lines[3].met, Some(true));
        let lines = super::lines(&[
            run(250_000.0, 2_392_134, true),
            run(290_000.0, 2_392_134, true),
            run(340_000.0, 2_392_134, true),
        ]);
        assert_eq!(lines[1].met, Some(false));
    }

    /// A failed property in any run, or runs that disagree on the state count, fail the
    /// properties line.
    #[test]
    fn one_bad_run_fails_the_properties() {
        let lines = super::lines(&[
            run(300_000.0, 2_392_134, true),
            run(300_000.0, 2_392_134, false),
        ]);
        assert_eq!(lines[3].met, Some(false));
        assert!(lines[3].value.contains("FAIL"));
        let lines = super::lines(&[
            run(300_000.0, 2_392_134, true),
            run(300_000.0, 2_392_135, true),
        ]);
        assert_eq!(lines[3].met, Some(false));
        assert!(lines[3].value.contains("differ"));
    }
}
