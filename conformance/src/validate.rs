//! Trace validation: the protocol traces verdis-server writes (`verdis-protocol-trace`),
//! checked against the model's transition rules (CCF / etcd style).
//!
//! A trace line is one transition of a node's protocol core: the input, the effects, the
//! abstract state after (see impl/src/replication/trace.rs). Each line is checked against the
//! state the previous line left, with the rules the model's properties state:
//!
//! | rule | what the line must satisfy |
//! |---|---|
//! | `offsets-grow` | under the same replid the offset never shrinks |
//! | `stream-advances-offset` | stream bytes on the current link move offset + partial-command bytes by exactly their length |
//! | `write-feeds-replicas` | a write moves the master's offset by the bytes every replica is sent |
//! | `full-sync-loads` | an RDB loaded after `+FULLRESYNC <id> <off>` leaves the node at `<id> <off>` with no replid2 |
//! | `continue-keeps-history` | `+CONTINUE <newid>` moves the old id to replid2, valid up to the old offset |
//! | `continue-in-backlog` | a master answers `+CONTINUE` only on its history and inside its backlog |
//! | `no-full-inside-window` | ... and `+FULLRESYNC` only when it could not continue |
//! | `full-sync-at-current-position` | `+FULLRESYNC` names the master's current replid and offset |
//! | `promotion-keeps-history` | a replica that becomes a master keeps its history as replid2 |
//! | `role-changes-on-commands` | writes, RDB events, WAIT and output limits never change the role |
//! | `link-ids-grow` | a replica's link id never goes back within a process |
//!
//! Nodes' logs are then merged by causality, not by clock: a replica's `+FULLRESYNC` and
//! `+CONTINUE` must match what some master's log sent (replids are random, so they join the
//! logs), and every position (replid, offset) a replica reaches must be one a master of that
//! history reached (`replica-position-on-a-master`).

use serde_json::Value;
use std::path::{Path, PathBuf};
use verdis_tests::UNLOGGED_PEERS;

const ZERO: &str = "0000000000000000000000000000000000000000";

/// The `node*.jsonl` files of one run's trace directory.
pub fn run_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "jsonl"));
    v.sort();
    v
}

/// The outcome of validating one run.
#[derive(Debug, Default)]
pub struct Validation {
    pub errors: Vec<String>,
    pub lines: usize,
    /// Rule applications that passed or failed.
    pub checks: usize,
    /// Lines torn by a `kill -9` of the process writing them (see [`is_torn`]).
    pub torn: usize,
}

impl Validation {
    pub fn ok(&self) -> bool {
        self.errors.is_empty() && self.lines > 0
    }

    pub fn print(&self) -> bool {
        if self.lines == 0 {
            println!("  no trace lines");
        }
        for e in self.errors.iter().take(20) {
            println!("  {e}");
        }
        if self.errors.len() > 20 {
            println!("  ... {} more", self.errors.len() - 20);
        }
        println!(
            "  {} lines ({} torn by a kill), {} checks, {} violations",
            self.lines,
            self.torn,
            self.checks,
            self.errors.len()
        );
        self.ok()
    }
}

/// The abstract state of a trace line.
#[derive(Clone, Debug, PartialEq)]
struct St {
    role: String,
    link: Option<(u64, u64)>,
    phase: Option<String>,
    replid: String,
    replid2: String,
    offset: u64,
    second: i64,
    backlog: Option<(u64, u64)>,
    /// Bytes of a partial command a replica holds (read, not yet applied, not yet counted).
    pending: u64,
}

fn state(v: &Value) -> Option<St> {
    let s = v.get("state")?;
    Some(St {
        role: s.get("role")?.as_str()?.to_string(),
        link: s.get("link").and_then(link_key),
        phase: s.get("phase").and_then(|p| p.as_str()).map(String::from),
        replid: s.get("replid")?.as_str()?.to_string(),
        replid2: s.get("replid2")?.as_str()?.to_string(),
        offset: s.get("master_repl_offset")?.as_u64()?,
        second: s.get("second_repl_offset")?.as_i64()?,
        backlog: s.get("backlog").and_then(|b| {
            Some((
                b.get("first_byte_offset")?.as_u64()?,
                b.get("histlen")?.as_u64()?,
            ))
        }),
        pending: s.get("pending").and_then(Value::as_u64).unwrap_or(0),
    })
}

fn link_key(l: &Value) -> Option<(u64, u64)> {
    Some((l.get("incarnation")?.as_u64()?, l.get("seq")?.as_u64()?))
}

/// A replid serialised as 20 bytes, as hex.
fn hex_id(v: &Value) -> Option<String> {
    let bytes = v.as_array()?;
    let mut s = String::new();
    for b in bytes {
        s.push_str(&format!("{:02x}", b.as_u64()?));
    }
    (s.len() == 40).then_some(s)
}

/// One line of one node's log, parsed.
struct Line {
    file: String,
    n: usize,
    v: Value,
    st: St,
}

/// What a master sent: `+FULLRESYNC` (replid, offset) and `+CONTINUE` replids; and the
/// positions masters reached.
#[derive(Default)]
struct Sent {
    full: Vec<(String, u64)>,
    cont: Vec<String>,
    /// (replid, highest offset) seen in master role, and (replid2, second offset - 1).
    positions: Vec<(String, u64)>,
}

/// Whether a line that is not a trace line was torn by a `kill -9` of its writer: it is the
/// file's last line, or the next is a `Start` (a new process). The server logs a transition
/// before its effects run, so a torn line's effects never ran and no peer saw them; what it
/// hides is the one transition the kill interrupted. Anything else unreadable is an error.
fn is_torn(after: &[Option<(Value, St)>]) -> bool {
    match after.first() {
        None => true,
        Some(Some((v, _))) => v["input"]["kind"] == "Start",
        Some(None) => false,
    }
}

pub fn validate_files(files: &[PathBuf]) -> Validation {
    validate_files_with(files, true)
}

/// Validates one run's directory. A run with a redis-server peer (marker
/// [`UNLOGGED_PEERS`]) gets the per-line rules only: the replies its Redis master sent are
/// in no log, so the cross-node rules would have nothing to join with.
pub fn validate_run(dir: &Path) -> (Validation, bool) {
    let whole = !dir.join(UNLOGGED_PEERS).exists();
    (validate_files_with(&run_files(dir), whole), whole)
}

/// Per-line rules on every file; cross-node rules too when `cross_node`.
pub fn validate_files_with(files: &[PathBuf], cross_node: bool) -> Validation {
    let mut out = Validation::default();
    let mut logs: Vec<Vec<Line>> = Vec::new();
    for f in files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                out.errors.push(format!("{}: {e}", f.display()));
                continue;
            }
        };
        let parsed: Vec<Option<(Value, St)>> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l)
                    .ok()
                    .and_then(|v| state(&v).map(|st| (v, st)))
            })
            .collect();
        let raw: Vec<&str> = text.lines().collect();
        let mut lines = Vec::new();
        for (i, p) in parsed.iter().enumerate() {
            out.lines += 1;
            match p {
                Some((v, st)) => lines.push(Line {
                    file: name.clone(),
                    n: i + 1,
                    v: v.clone(),
                    st: st.clone(),
                }),
                None if is_torn(&parsed[i + 1..]) => out.torn += 1,
                None => out.errors.push(format!(
                    "{name}:{}: not a protocol trace line ({} bytes, {} more lines): {}",
                    i + 1,
                    raw[i].len(),
                    raw.len() - i - 1,
                    raw[i].chars().take(160).collect::<String>()
                )),
            }
        }
        logs.push(lines);
    }
    let mut sent = Sent::default();
    for log in &logs {
        check_node(log, &mut out, &mut sent);
    }
    if cross_node {
        for log in &logs {
            check_links(log, &sent, &mut out);
        }
    }
    out
}

/// Per-node rules: each line against the state the previous line left.
fn check_node(log: &[Line], out: &mut Validation, sent: &mut Sent) {
    let mut prev: Option<&St> = None;
    let mut pending_full: Option<((u64, u64), String, u64)> = None;
    for line in log {
        let input = &line.v["input"];
        let kind = input["kind"].as_str().unwrap_or("");
        let effects = line.v["effects"].as_array().cloned().unwrap_or_default();
        let n = &line.st;
        let at = format!("{}:{} ({kind})", line.file, line.n);
        let mut rule = |ok: bool, name: &str, detail: String| {
            out.checks += 1;
            if !ok {
                out.errors.push(format!("{at}: {name}: {detail}"));
            }
        };
        // What this node sent, for the cross-node checks.
        for e in &effects {
            if let Some(m) = e.get("ToReplica").and_then(|t| t.get("msg")) {
                if let Some(f) = m.get("FullResync") {
                    if let (Some(id), Some(off)) = (hex_id(&f["replid"]), f["offset"].as_u64()) {
                        sent.full.push((id, off));
                    }
                }
                if let Some(id) = m.get("Continue").and_then(|c| hex_id(&c["replid"])) {
                    sent.cont.push(id);
                }
            }
        }
        if n.role == "master" {
            sent.positions.push((n.replid.clone(), n.offset));
            if n.replid2 != ZERO && n.second > 0 {
                sent.positions
                    .push((n.replid2.clone(), n.second as u64 - 1));
            }
        }
        if kind == "Start" {
            prev = Some(n);
            pending_full = None;
            continue;
        }
        let Some(p) = prev else {
            rule(
                false,
                "starts-with-start",
                "the first line of a process is not Start".into(),
            );
            prev = Some(n);
            continue;
        };
        if p.replid == n.replid {
            rule(
                n.offset >= p.offset,
                "offsets-grow",
                format!("{} -> {} under {}", p.offset, n.offset, n.replid),
            );
        }
        if let (Some(a), Some(b)) = (p.link, n.link) {
            rule(b >= a, "link-ids-grow", format!("{a:?} -> {b:?}"));
        }
        if matches!(
            kind,
            "Write" | "RdbSent" | "RdbLoaded" | "RequestAcks" | "OutputLimit"
        ) {
            rule(
                p.role == n.role,
                "role-changes-on-commands",
                format!("{} -> {}", p.role, n.role),
            );
        }
        if p.role == "replica" && n.role == "master" {
            rule(
                n.replid2 == p.replid && n.second == p.offset as i64 + 1,
                "promotion-keeps-history",
                format!(
                    "was {} at {}, now replid2 {} second_repl_offset {}",
                    p.replid, p.offset, n.replid2, n.second
                ),
            );
        }
        let on_link = link_key(&input["link"]).is_some_and(|l| p.link == Some(l));
        match kind {
            "Write" => {
                let delta = n.offset - p.offset.min(n.offset);
                for e in &effects {
                    if let Some(b) = e
                        .get("ToReplica")
                        .and_then(|t| t.get("stream_bytes"))
                        .and_then(Value::as_u64)
                    {
                        rule(
                            b == delta,
                            "write-feeds-replicas",
                            format!("offset moved {delta}, a replica was sent {b}"),
                        );
                    }
                }
                rule(
                    n.replid == p.replid,
                    "write-feeds-replicas",
                    "a write changed the replid".into(),
                );
            }
            "FromMaster" => {
                let msg = &input["msg"];
                if let (Some(len), true) = (msg.get("Stream").and_then(Value::as_u64), on_link) {
                    if p.phase.as_deref() == Some("Streaming") {
                        // Only whole commands count (as Redis's reploff); a partial one waits
                        // in `pending`.
                        rule(
                            n.offset + n.pending == p.offset + p.pending + len
                                && n.replid == p.replid,
                            "stream-advances-offset",
                            format!(
                                "{} (+{} pending) + {len} -> {} (+{} pending)",
                                p.offset, p.pending, n.offset, n.pending
                            ),
                        );
                    }
                }
                if let (Some(f), true) = (msg.get("FullResync"), on_link) {
                    if let (Some(id), Some(off), Some(l)) =
                        (hex_id(&f["replid"]), f["offset"].as_u64(), p.link)
                    {
                        pending_full = Some((l, id, off));
                    }
                }
                if let (Some(id), true) = (
                    msg.get("Continue").and_then(|c| hex_id(&c["replid"])),
                    on_link,
                ) {
                    if id != p.replid {
                        rule(
                            n.replid == id
                                && n.replid2 == p.replid
                                && n.second == p.offset as i64 + 1,
                            "continue-keeps-history",
                            format!(
                                "{} at {} -> {} / replid2 {} second {}",
                                p.replid, p.offset, n.replid, n.replid2, n.second
                            ),
                        );
                    } else {
                        rule(
                            n.replid == p.replid && n.offset == p.offset,
                            "continue-keeps-history",
                            "a +CONTINUE under the same id moved the position".into(),
                        );
                    }
                }
            }
            "RdbLoaded" => {
                if let (Some((l, id, off)), true) = (&pending_full, on_link) {
                    if p.link == Some(*l) {
                        rule(
                            n.replid == *id && n.offset == *off && n.replid2 == ZERO,
                            "full-sync-loads",
                            format!(
                                "+FULLRESYNC {id} {off}, then {} {} replid2 {}",
                                n.replid, n.offset, n.replid2
                            ),
                        );
                    }
                }
                pending_full = None;
            }
            "FromReplica" => {
                if let Some(ps) = input["msg"].get("Psync") {
                    check_psync(ps, p, n, &effects, &mut rule);
                }
            }
            _ => {}
        }
        prev = Some(n);
    }
}

/// The master's PSYNC decision against its state before the request.
fn check_psync(
    ps: &Value,
    p: &St,
    n: &St,
    effects: &[Value],
    rule: &mut impl FnMut(bool, &str, String),
) {
    let req_id = hex_id(&ps["req"]["replid"]);
    let Some(req_off) = ps["req"]["offset"].as_i64() else {
        return;
    };
    let on_history = req_id.as_deref() == Some(p.replid.as_str())
        || (req_id.as_deref() == Some(p.replid2.as_str())
            && p.replid2 != ZERO
            && req_off <= p.second);
    let in_window = u64::try_from(req_off).ok().is_some_and(|off| {
        p.backlog
            .is_some_and(|(first, histlen)| off >= first && off <= first + histlen)
    });
    for e in effects {
        let Some(m) = e.get("ToReplica").and_then(|t| t.get("msg")) else {
            continue;
        };
        if m.get("Continue").is_some() {
            rule(
                on_history && in_window,
                "continue-in-backlog",
                format!(
                    "PSYNC {req_id:?} {req_off} answered +CONTINUE with {} / {} {} and backlog {:?}",
                    p.replid, p.replid2, p.second, p.backlog
                ),
            );
        }
        if let Some(f) = m.get("FullResync") {
            // A backlog created for this very PSYNC covers nothing yet.
            rule(
                !(on_history && in_window),
                "no-full-inside-window",
                format!(
                    "PSYNC {req_id:?} {req_off} was inside the backlog {:?}",
                    p.backlog
                ),
            );
            rule(
                hex_id(&f["replid"]).as_deref() == Some(n.replid.as_str())
                    && f["offset"].as_u64() == Some(n.offset),
                "full-sync-at-current-position",
                format!("+FULLRESYNC {f} while at {} {}", n.replid, n.offset),
            );
        }
    }
}

/// Cross-node rules: replicas' sync replies and positions against what masters sent.
fn check_links(log: &[Line], sent: &Sent, out: &mut Validation) {
    for line in log {
        let input = &line.v["input"];
        let at = format!("{}:{}", line.file, line.n);
        if input["kind"].as_str() == Some("FromMaster") {
            let msg = &input["msg"];
            if let Some(f) = msg.get("FullResync") {
                let key = (
                    hex_id(&f["replid"]).unwrap_or_default(),
                    f["offset"].as_u64().unwrap_or(0),
                );
                out.checks += 1;
                if !sent.full.contains(&key) {
                    out.errors.push(format!(
                        "{at}: full-sync-was-sent: no master log sent +FULLRESYNC {} {}",
                        key.0, key.1
                    ));
                }
            }
            if let Some(id) = msg.get("Continue").and_then(|c| hex_id(&c["replid"])) {
                out.checks += 1;
                if !sent.cont.contains(&id) {
                    out.errors.push(format!(
                        "{at}: continue-was-sent: no master log sent +CONTINUE {id}"
                    ));
                }
            }
        }
        let st = &line.st;
        if st.role == "replica" && st.offset > 0 && st.phase.as_deref() == Some("Streaming") {
            out.checks += 1;
            let reached = sent
                .positions
                .iter()
                .any(|(id, off)| *id == st.replid && *off >= st.offset);
            if !reached {
                out.errors.push(format!(
                    "{at}: replica-position-on-a-master: {} {} was never a master's position",
                    st.replid, st.offset
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(
        input: &str,
        effects: &str,
        role: &str,
        replid: &str,
        offset: u64,
        link: Option<u64>,
    ) -> String {
        let link = link.map_or("null".to_string(), |s| {
            format!(r#"{{"incarnation":0,"replica":0,"seq":{s}}}"#)
        });
        let phase = if role == "replica" {
            r#""Streaming""#
        } else {
            "null"
        };
        format!(
            r#"{{"t_ms":0,"port":1,"input":{input},"effects":{effects},"state":{{"role":"{role}","master":null,"link":{link},"phase":{phase},"replid":"{replid}","replid2":"{ZERO}","master_repl_offset":{offset},"second_repl_offset":-1,"backlog":{{"first_byte_offset":1,"histlen":{offset}}},"replicas":[],"failover":"no-failover","stats":{{}}}}}}"#
        )
    }

    fn run(master: &[String], replica: &[String]) -> Validation {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let k = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("verdis-validate-{}-{k}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        std::fs::write(dir.join("node0.jsonl"), master.join("\n")).expect("write");
        std::fs::write(dir.join("node1.jsonl"), replica.join("\n")).expect("write");
        let v = validate_files(&run_files(&dir));
        let _ = std::fs::remove_dir_all(&dir);
        v
    }

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const LINK: &str = r#"{"incarnation":0,"replica":0,"seq":0}"#;

    fn good() -> (Vec<String>, Vec<String>) {
        let master = vec![
            line(r#"{"kind":"Start"}"#, "[]", "master", A, 0, None),
            line(
                r#"{"kind":"Write","db":0,"command":"SET"}"#,
                r#"[{"ToReplica":{"replica":1,"link":{},"stream_bytes":50}}]"#,
                "master",
                A,
                50,
                None,
            ),
        ];
        let replica = vec![
            line(r#"{"kind":"Start"}"#, "[]", "replica", A, 0, Some(0)),
            line(
                &format!(r#"{{"kind":"FromMaster","link":{LINK},"msg":{{"Stream":50}}}}"#),
                "[]",
                "replica",
                A,
                50,
                Some(0),
            ),
        ];
        (master, replica)
    }

    #[test]
    fn a_consistent_pair_of_logs_validates() {
        let (m, r) = good();
        let v = run(&m, &r);
        assert!(v.ok(), "{:?}", v.errors);
        assert!(v.checks >= 4, "{} checks", v.checks);
    }

    #[test]
    fn a_line_torn_by_a_kill_is_counted_only_at_the_end_or_before_a_restart() {
        let (mut m, r) = good();
        let torn = m[1][..40].to_string();
        // The master killed while writing its last line.
        m.push(torn.clone());
        let v = run(&m, &r);
        assert!(v.ok(), "{:?}", v.errors);
        assert_eq!(v.torn, 1);
        // Killed, then restarted: the new process's first line is a Start.
        m.push(line(r#"{"kind":"Start"}"#, "[]", "master", A, 50, None));
        let v = run(&m, &r);
        assert!(v.ok(), "{:?}", v.errors);
        assert_eq!(v.torn, 1);
        // Anything else unreadable is an error: here a torn line the same process went on from.
        let (mut m, r) = good();
        m.insert(1, torn);
        let v = run(&m, &r);
        assert_eq!(v.torn, 0);
        assert!(
            v.errors
                .iter()
                .any(|e| e.contains("not a protocol trace line")),
            "{:?}",
            v.errors
        );
    }

    #[test]
    fn a_stream_that_moves_the_offset_wrongly_is_caught() {
        let (m, mut r) = good();
        r[1] = r[1].replace(r#""master_repl_offset":50"#, r#""master_repl_offset":49"#);
        let v = run(&m, &r);
        assert!(
            v.errors
                .iter()
                .any(|e| e.contains("stream-advances-offset")),
            "{:?}",
            v.errors
        );
    }

    #[test]
    fn a_replica_ahead_of_every_master_is_caught() {
        let (mut m, r) = good();
        m[1] = m[1].replace(r#""master_repl_offset":50"#, r#""master_repl_offset":40"#);
        let v = run(&m, &r);
        assert!(
            v.errors
                .iter()
                .any(|e| e.contains("replica-position-on-a-master")),
            "{:?}",
            v.errors
        );
        assert!(
            v.errors.iter().any(|e| e.contains("write-feeds-replicas")),
            "{:?}",
            v.errors
        );
    }

    #[test]
    fn offsets_that_shrink_are_caught() {
        let (mut m, r) = good();
        m.push(line(
            r#"{"kind":"Timer","timer":"MasterPing"}"#,
            "[]",
            "master",
            A,
            10,
            None,
        ));
        let v = run(&m, &r);
        assert!(
            v.errors.iter().any(|e| e.contains("offsets-grow")),
            "{:?}",
            v.errors
        );
    }
}
