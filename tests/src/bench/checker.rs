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

/// Runs the checker once (the default configuration; a small one in smoke mode).
pub fn bench_checker(o: &Opts, errors: &mut Vec<String>) -> Option<CheckerFigure> {
    if !selected(o, "checker") {
        return None;
    }
    let args: &[&str] = if o.smoke {
        &["check", "--replicas", "1", "--writes", "1"]
    } else {
        &["check"]
    };
    let command = format!("verdis-check {}", args.join(" "));
    match run(args) {
        Ok(lines) => Some(CheckerFigure { command, lines }),
        Err(e) => {
            errors.push(format!("model checker: {e}"));
            None
        }
    }
}

fn run(args: &[&str]) -> Result<Vec<CheckerLine>, String> {
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
    Ok(vec![
        CheckerLine {
            what: "wall time (the process, start to exit)".into(),
            value: format!("{wall:.1} s"),
            target: "<= 60 s".into(),
            met: Some(wall <= 60.0),
        },
        CheckerLine {
            what: "unique states per second (the checker's own clock)".into(),
            value: format!("{rate:.0} ({unique} unique states in {time:.2} s, max depth {depth})"),
            target: ">= 300000".into(),
            met: Some(rate >= 300_000.0),
        },
        CheckerLine {
            what: "peak memory (VmHWM of the process)".into(),
            value: format!("{:.1} MiB", peak_kib as f64 / 1024.0),
            target: "(shown)".into(),
            met: None,
        },
        CheckerLine {
            what: "properties".into(),
            value: if status.success() && failed == 0 {
                "all hold".into()
            } else {
                format!("exit {status}, {failed} property line(s) FAIL")
            },
            target: "all hold".into(),
            met: Some(status.success() && failed == 0),
        },
    ])
}

#[cfg(test)]
mod tests {
    /// The summary line of `verdis-check check` parses into its four numbers.
    #[test]
    fn parses_the_summary_line() {
        let out = "model replication: 109 states, 64 unique, max depth 17, 0.10 s, 635 unique states/s (dfs, 2 threads)\n  ok   always x\n";
        assert_eq!(super::parse_summary(out), Some((64, 17, 0.10, 635.0)));
    }
}
