//! Switchover, min-replicas-to-write and restart resume: FAILOVER hands the master role to a
//! replica without losing a write or doing a full sync; a master without enough good replicas
//! refuses writes; a restarted master resumes its history from the RDB aux fields.

use std::time::{Duration, Instant};
use verdis_core::resp::Frame;
use verdis_tests::{info_field, text, Kind, Server};

fn wait_until(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn info(s: &Server, section: &str) -> String {
    text(&s.conn().cmd(&["INFO", section]))
}

fn field(s: &Server, section: &str, name: &str) -> Option<String> {
    info_field(&info(s, section), name)
}

fn link_up(s: &Server) -> bool {
    field(s, "replication", "master_link_status").as_deref() == Some("up")
}

const FAST: &[&str] = &["--repl-diskless-sync-delay", "0"];

#[test]
fn failover_swaps_roles_without_losing_writes_or_a_full_sync() {
    let a = Server::verdis(FAST);
    let port = a.port.to_string();
    let b = Server::verdis(&[
        "--repl-diskless-sync-delay",
        "0",
        "--replicaof",
        "127.0.0.1",
        &port,
    ]);
    assert!(wait_until(Duration::from_secs(10), || link_up(&b)));
    let mut c = a.conn();
    for i in 0..100 {
        c.cmd(&["SET", &format!("k{i}"), &i.to_string()]);
    }
    assert_eq!(text(&c.cmd(&["FAILOVER", "TIMEOUT", "5000"])), "OK");
    assert!(wait_until(Duration::from_secs(10), || {
        field(&a, "replication", "role").as_deref() == Some("slave")
            && field(&b, "replication", "role").as_deref() == Some("master")
            && link_up(&a)
    }));
    // The new master continues the history (replid2) and the old one followed partially.
    let bi = info(&b, "replication");
    let ai = info(&a, "replication");
    assert_eq!(
        info_field(&bi, "master_replid2"),
        info_field(&ai, "master_replid2")
    );
    assert_eq!(field(&b, "stats", "sync_full").as_deref(), Some("0"));
    assert_eq!(field(&b, "stats", "sync_partial_ok").as_deref(), Some("1"));
    // Writes go to the new master and reach the old one; nothing was lost.
    assert_eq!(text(&b.conn().cmd(&["SET", "after", "1"])), "OK");
    assert!(wait_until(Duration::from_secs(5), || {
        text(&a.conn().cmd(&["GET", "after"])) == "1"
    }));
    assert_eq!(text(&a.conn().cmd(&["DBSIZE"])), "101");
    assert_eq!(
        text(&a.conn().cmd(&["DEBUG", "DIGEST"])),
        text(&b.conn().cmd(&["DEBUG", "DIGEST"]))
    );
    assert!(text(&a.conn().cmd(&["SET", "x", "1"])).starts_with("READONLY"));
}

#[test]
fn failover_errors_match_redis() {
    let a = Server::verdis(FAST);
    let mut c = a.conn();
    assert_eq!(
        text(&c.cmd(&["FAILOVER"])),
        "ERR FAILOVER requires connected replicas."
    );
    assert_eq!(
        text(&c.cmd(&["FAILOVER", "ABORT"])),
        "ERR No failover in progress."
    );
    assert_eq!(
        text(&c.cmd(&["FAILOVER", "TO", "127.0.0.1", "1", "FORCE"])),
        "ERR FAILOVER with force option requires both a timeout and target HOST and IP."
    );
    assert_eq!(
        text(&c.cmd(&["FAILOVER", "TO", "127.0.0.1", "1"])),
        "ERR FAILOVER target HOST and PORT is not a replica."
    );
    let b = Server::verdis(&["--replicaof", "127.0.0.1", &a.port.to_string()]);
    assert!(wait_until(Duration::from_secs(10), || link_up(&b)));
    assert_eq!(
        text(&b.conn().cmd(&["FAILOVER"])),
        "ERR FAILOVER is not valid when server is a replica."
    );
}

#[test]
fn min_replicas_to_write_refuses_writes_without_good_replicas() {
    let a = Server::verdis(&[
        "--repl-diskless-sync-delay",
        "0",
        "--min-replicas-to-write",
        "1",
        "--min-replicas-max-lag",
        "10",
    ]);
    let mut c = a.conn();
    assert_eq!(
        text(&c.cmd(&["SET", "k", "v"])),
        "NOREPLICAS Not enough good replicas to write."
    );
    assert_eq!(c.cmd(&["GET", "k"]), Frame::Null);
    let b = Server::redis(&["--replicaof", "127.0.0.1", &a.port.to_string()]);
    assert!(wait_until(Duration::from_secs(10), || {
        text(&a.conn().cmd(&["SET", "k", "v"])) == "OK"
    }));
    assert_eq!(
        field(&a, "replication", "min_slaves_good_slaves").as_deref(),
        Some("1")
    );
    drop(b);
    assert!(wait_until(Duration::from_secs(20), || {
        text(&a.conn().cmd(&["SET", "k", "v2"])).starts_with("NOREPLICAS")
    }));
}

#[test]
fn a_restarted_master_resumes_its_history_and_its_replica_continues_partially() {
    let dir = std::env::temp_dir().join(format!("verdis-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.to_str().unwrap().to_string();
    let port_n = verdis_tests::free_port();
    let port = port_n.to_string();
    let args = ["--dir", d.as_str(), "--repl-diskless-sync-delay", "0"];
    let a = Server::start_on(Kind::Verdis, Some(port_n), &args);
    let b = Server::verdis(&["--replicaof", "127.0.0.1", &port]);
    assert!(wait_until(Duration::from_secs(10), || link_up(&b)));
    let mut c = a.conn();
    for i in 0..50 {
        c.cmd(&["SET", &format!("k{i}"), "v"]);
    }
    assert!(wait_until(Duration::from_secs(5), || {
        field(&a, "replication", "master_repl_offset")
            == field(&b, "replication", "master_repl_offset")
    }));
    let replid = field(&a, "replication", "master_replid");
    assert_eq!(text(&c.cmd(&["SAVE"])), "OK");
    drop(c);
    drop(a);
    // Same port, same dir: the RDB's repl-id / repl-offset bring the history back.
    let a2 = Server::start_on(Kind::Verdis, Some(port_n), &args);
    // As Redis 7.0: the saved history continues as replid2 under a new replid.
    assert_eq!(field(&a2, "replication", "master_replid2"), replid);
    assert!(wait_until(Duration::from_secs(10), || {
        link_up(&b) && field(&a2, "stats", "sync_partial_ok").as_deref() == Some("1")
    }));
    assert_eq!(field(&a2, "stats", "sync_full").as_deref(), Some("0"));
    a2.conn().cmd(&["SET", "after", "restart"]);
    assert!(wait_until(Duration::from_secs(5), || {
        text(&b.conn().cmd(&["GET", "after"])) == "restart"
    }));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_protocol_trace_records_every_core_transition_as_json_lines() {
    let dir = std::env::temp_dir().join(format!("verdis-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("master.trace");
    let a = Server::verdis(&[
        "--repl-diskless-sync-delay",
        "0",
        "--verdis-protocol-trace",
        trace.to_str().unwrap(),
    ]);
    let b = Server::verdis(&["--replicaof", "127.0.0.1", &a.port.to_string()]);
    assert!(wait_until(Duration::from_secs(10), || link_up(&b)));
    a.conn().cmd(&["SET", "k", "v"]);
    assert!(wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(&trace).is_ok_and(|t| t.contains("\"Write\"") && t.contains("Ack"))
    }));
    let text = std::fs::read_to_string(&trace).unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    for line in text.lines() {
        // Every line is a JSON object with the input and the resulting state.
        assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
        assert!(
            line.contains("\"state\":{") && line.contains("\"master_repl_offset\""),
            "{line}"
        );
        if let Some(i) = line.find("\"kind\":\"") {
            let rest = &line[i + 8..];
            kinds.insert(rest[..rest.find('"').unwrap()].to_string());
        }
    }
    for k in ["FromReplica", "RdbSent", "Write"] {
        assert!(kinds.contains(k), "no {k} in {kinds:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
