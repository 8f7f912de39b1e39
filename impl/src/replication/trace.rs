//! The protocol trace (`verdis-protocol-trace <file>`): one JSON line per transition of the
//! protocol core, written as the server runs, for the conformance suite to validate against
//! the model (CCF / etcd style trace validation).
//!
//! A line is `{"t_ms", "port", "input", "effects", "state"}`:
//! - `input`: what was handed to the core ([`TraceInput`]);
//! - `effects`: what the core asked the driver to do, stream payloads summarised by length;
//! - `state`: the node after the transition: role, master, link id and phase, replid,
//!   replid2, offsets, backlog window, replica table, failover state, sync counters.
//!
//! Writing is synchronous: a line is recorded before its transition's effects run (a
//! write-ahead log), in one `write` of the whole line, so a process killed with `kill -9`
//! leaves at most its last line torn, and only if that line is long (the kernel may stop a
//! multi-page write for a fatal signal). A torn line's effects never ran. A process that opens
//! a file whose last line is torn ends that line first, so its own lines stay whole. A write
//! error disables the trace with a warning (the trace is a diagnostic, never a reason to stop
//! serving).

use serde::Serialize;
use serde_json::{json, Value};
use std::io::Write;
use verdis_core::repl::{Effect, LinkId, NodeId, ReplNode, ReplTimer, Role, ToMaster, ToReplica};

/// One input to the protocol core.
#[derive(Serialize)]
#[serde(tag = "kind")]
pub enum TraceInput<'a> {
    /// Start-up as a replica (`replicaof` in the config).
    Start,
    /// A client write appended to the stream (`handle_write`): its db and encoded length.
    Write {
        db: u64,
        command: &'a str,
    },
    /// WAIT asked every replica for an ack.
    RequestAcks,
    FromReplica {
        replica: NodeId,
        link: LinkId,
        msg: &'a ToMaster,
    },
    FromMaster {
        link: LinkId,
        msg: Value,
    },
    RdbLoaded {
        link: LinkId,
    },
    RdbSent {
        replica: NodeId,
        link: LinkId,
    },
    LinkClosed {
        link: LinkId,
    },
    LinkError {
        link: LinkId,
    },
    /// `CLIENT KILL TYPE master` closed the link to our master.
    LinkKilled {
        link: LinkId,
    },
    OutputLimit {
        replica: NodeId,
        link: LinkId,
    },
    Timer {
        timer: ReplTimer,
    },
    ReplicaOf {
        master: NodeId,
    },
    ReplicaOfNoOne,
    Failover,
    FailoverAbort,
}

/// A message from the master, with stream bytes summarised by their length.
pub fn from_master_msg(msg: &ToReplica) -> Value {
    match msg {
        ToReplica::Stream(b) => json!({ "Stream": b.len() }),
        other => serde_json::to_value(other).unwrap_or(Value::Null),
    }
}

fn effect_json(e: &Effect) -> Value {
    match e {
        Effect::ToReplica {
            replica,
            link,
            msg: ToReplica::Stream(b),
        } => json!({ "ToReplica": { "replica": replica, "link": link, "stream_bytes": b.len() } }),
        Effect::Apply { args } => json!({
            "Apply": args.first().map(|a| String::from_utf8_lossy(a).into_owned()).unwrap_or_default()
        }),
        other => serde_json::to_value(other).unwrap_or(Value::Null),
    }
}

fn state_json(node: &ReplNode) -> Value {
    let id = &node.identity;
    let (role, master, link, phase, pending) = match &node.role {
        Role::Master => ("master", None, None, None, 0),
        Role::Replica(l) => (
            "replica",
            Some(l.master),
            Some(l.link),
            Some(format!("{:?}", l.phase)),
            l.pending.len(),
        ),
    };
    let replicas: Vec<Value> = node
        .replicas
        .iter()
        .map(|e| json!({ "node": e.node, "link": e.link, "state": e.state.info_name(), "ack": e.ack_offset }))
        .collect();
    json!({
        "role": role,
        "master": master,
        "link": link,
        "phase": phase,
        "pending": pending,
        "replid": id.replid.to_hex(),
        "replid2": id.replid2.to_hex(),
        "master_repl_offset": id.master_repl_offset,
        "second_repl_offset": id.second_repl_offset,
        "backlog": node.backlog.as_ref().map(|b| json!({ "first_byte_offset": b.first_byte_offset(), "histlen": b.histlen() })),
        "replicas": replicas,
        "failover": node.failover.info_name(),
        "stats": node.stats,
    })
}

/// The open trace file, if tracing is on.
#[derive(Default)]
pub struct Trace {
    out: Option<std::fs::File>,
    /// The line being written, reused.
    line: Vec<u8>,
    port: u16,
}

impl Trace {
    /// Opens (appends to) the trace file. The operator's error is reported at start-up.
    pub fn open(path: &str, port: u16) -> Result<Trace, String> {
        let err = |e: std::io::Error| format!("Can't open the protocol trace file {path}: {e}");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(err)?;
        if ends_torn(&mut file).map_err(err)? {
            file.write_all(b"\n").map_err(err)?;
        }
        Ok(Trace {
            out: Some(file),
            line: Vec::new(),
            port,
        })
    }

    pub fn is_on(&self) -> bool {
        self.out.is_some()
    }

    /// Records one transition.
    pub fn record(&mut self, now_ms: u64, input: &TraceInput, effects: &[Effect], node: &ReplNode) {
        let Some(out) = self.out.as_mut() else {
            return;
        };
        let line = json!({
            "t_ms": now_ms,
            "port": self.port,
            "input": input,
            "effects": effects.iter().map(effect_json).collect::<Vec<_>>(),
            "state": state_json(node),
        });
        self.line.clear();
        let written = serde_json::to_writer(&mut self.line, &line)
            .map_err(std::io::Error::other)
            .and_then(|_| {
                self.line.push(b'\n');
                out.write_all(&self.line)
            });
        if let Err(e) = written {
            tracing::warn!("Protocol trace disabled after a write error: {e}");
            self.out = None;
        }
    }
}

/// Whether the file's last line lacks its newline: a line torn when the process that wrote it
/// was killed.
fn ends_torn(file: &mut std::fs::File) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    if file.metadata()?.len() == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;
    use verdis_core::repl::ReplId;

    #[test]
    fn a_line_torn_by_a_kill_is_ended_before_the_next_process_writes() {
        let path = std::env::temp_dir().join(format!("verdis-trace-{}.jsonl", std::process::id()));
        let torn = br#"{"t_ms":1,"port":7000,"input":{"kind":"Wr"#;
        std::fs::write(&path, torn).unwrap();
        let mut t = Trace::open(path.to_str().unwrap(), 7000).unwrap();
        let node = ReplNode::new_master(1, 0, ReplId([7; 20]));
        t.record(5, &TraceInput::Start, &[], &node);
        t.record(6, &TraceInput::ReplicaOfNoOne, &[], &node);
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0].as_bytes(), torn);
        for l in &lines[1..] {
            let v: Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["port"], 7000);
        }
        assert!(text.ends_with('\n'));
    }
}
