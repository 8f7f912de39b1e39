//! Replica output-buffer limits, compared with redis-server 7.0: a replica that stops reading
//! is disconnected once its unsent stream passes the hard limit (never below
//! `repl-backlog-size`), reconnects when it reads again, and catches up without falling into
//! a full-sync loop; a replica that loads its snapshot is spared (tests/tests/replication.rs).

use std::process::Command;
use std::time::{Duration, Instant};
use verdis_tests::{info_field, text, Conn, Kind, Server};

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

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "kill {sig} {pid}");
}

/// What a master did with a replica that stopped reading while `writes` SETs of 10 KB went
/// in: whether it dropped it, and its sync counters once the replica caught up again.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    dropped: bool,
    sync_full: String,
    sync_partial_ok: String,
}

fn stall_and_flood(master: &Server, writes: usize) -> Outcome {
    let replica = Server::redis(&["--replicaof", "127.0.0.1", &master.port.to_string()]);
    assert!(wait_until(Duration::from_secs(10), || {
        info_field(&info(&replica, "replication"), "master_link_status").as_deref() == Some("up")
    }));
    // The replica stops reading: its socket buffers fill, then the master's queue grows.
    signal(replica.pid(), "-STOP");
    let mut c = master.conn();
    let value = "x".repeat(10_000);
    for i in 0..writes {
        c.cmd(&["SET", &format!("k{i}"), &value]);
    }
    let dropped = wait_until(Duration::from_secs(3), || {
        info_field(&info(master, "replication"), "connected_slaves").as_deref() == Some("0")
    });
    signal(replica.pid(), "-CONT");
    // It comes back (or never left) and catches up.
    assert!(wait_until(Duration::from_secs(20), || {
        let m = info(master, "replication");
        let r = info(&replica, "replication");
        info_field(&r, "master_link_status").as_deref() == Some("up")
            && info_field(&m, "master_repl_offset") == info_field(&r, "master_repl_offset")
    }));
    let d1 = text(&master.conn().cmd(&["DEBUG", "DIGEST"]));
    let d2 = text(&replica.conn().cmd(&["DEBUG", "DIGEST"]));
    assert_eq!(d1, d2);
    let stats = info(master, "stats");
    Outcome {
        dropped,
        sync_full: info_field(&stats, "sync_full").unwrap_or_default(),
        sync_partial_ok: info_field(&stats, "sync_partial_ok").unwrap_or_default(),
    }
}

fn both(args: &[&str], writes: usize) -> (Outcome, Outcome) {
    let mut all = vec!["--repl-diskless-sync-delay", "0"];
    all.extend_from_slice(args);
    let redis = stall_and_flood(&Server::redis(&all), writes);
    let verdis = stall_and_flood(&Server::verdis(&all), writes);
    (redis, verdis)
}

#[test]
fn a_stalled_replica_past_the_hard_limit_is_dropped_and_syncs_once_more_like_redis() {
    // 6 MB queued against a 1 MB limit (the backlog no larger): dropped; the gap is past the
    // backlog, so one more full sync, and then no loop (the replica catches up and stays).
    let (redis, verdis) = both(
        &[
            "--client-output-buffer-limit",
            "replica 1mb 0 0",
            "--repl-backlog-size",
            "1mb",
        ],
        600,
    );
    assert!(redis.dropped, "{redis:?}");
    assert_eq!(redis.sync_full, "2", "{redis:?}");
    assert_eq!(verdis, redis);
}

#[test]
fn a_replica_hard_limit_below_the_backlog_size_is_raised_to_it_like_redis() {
    // Redis 7.0 ignores a replica hard limit smaller than repl-backlog-size (the backlog's
    // size is used): 6 MB queued against "1 MB" with a 16 MB backlog drops nobody.
    let (redis, verdis) = both(
        &[
            "--client-output-buffer-limit",
            "replica 1mb 0 0",
            "--repl-backlog-size",
            "16mb",
        ],
        600,
    );
    assert!(!redis.dropped, "{redis:?}");
    assert_eq!(
        (redis.sync_full.as_str(), redis.sync_partial_ok.as_str()),
        ("1", "0")
    );
    assert_eq!(verdis, redis);
}

/// A scripted replica: handshake, `PSYNC ? -1`, the `+FULLRESYNC` offset and the `$EOF:`
/// snapshot read, then nothing more (as while it loads the snapshot).
fn take_snapshot_and_stall(master: &Server) -> (Conn, u64) {
    let mut r = Conn::connect(master.port);
    assert_eq!(text(&r.cmd(&["PING"])), "PONG");
    assert_eq!(text(&r.cmd(&["REPLCONF", "listening-port", "1"])), "OK");
    assert_eq!(
        text(&r.cmd(&["REPLCONF", "capa", "eof", "capa", "psync2"])),
        "OK"
    );
    r.send(&["PSYNC", "?", "-1"]);
    let full = text(&r.read_frame());
    let offset: u64 = full
        .rsplit(' ')
        .next()
        .and_then(|o| o.parse().ok())
        .unwrap_or_else(|| panic!("not a +FULLRESYNC: {full}"));
    // `$EOF:<40-byte mark>\r\n`, the payload, the mark again (keepalive newlines may lead).
    let mut head = r.read_bytes(1);
    while head == b"\n" {
        head = r.read_bytes(1);
    }
    head.extend(r.read_bytes(46));
    assert!(head.starts_with(b"$EOF:"), "{head:?}");
    let mark = head[5..45].to_vec();
    let mut payload = Vec::new();
    while !payload.ends_with(&mark) {
        payload.extend(r.read_bytes(1));
        assert!(payload.len() < 1 << 20, "no end mark");
    }
    (r, offset)
}

#[test]
fn a_replica_loading_its_snapshot_is_spared_by_the_limit_where_redis_drops_it() {
    let args = [
        "--repl-diskless-sync",
        "yes",
        "--repl-diskless-sync-delay",
        "0",
        "--client-output-buffer-limit",
        "replica 1mb 0 0",
        "--repl-backlog-size",
        "1mb",
    ];
    let value = "x".repeat(10_000);
    for kind in [Kind::Redis, Kind::Verdis] {
        let master = Server::start(kind, &args);
        let (mut replica, offset) = take_snapshot_and_stall(&master);
        // 3 MB of writes while the replica has not acknowledged its snapshot.
        let mut c = master.conn();
        for i in 0..300 {
            c.cmd(&["SET", &format!("k{i}"), &value]);
        }
        let dropped = wait_until(Duration::from_secs(3), || {
            info_field(&info(&master, "replication"), "connected_slaves").as_deref() == Some("0")
        });
        if kind == Kind::Redis {
            // Redis 7.0 counts the stream queued behind the snapshot against the limit: the
            // cause of its full-sync loop (docs/replication.md).
            assert!(dropped, "redis-server kept the replica");
            continue;
        }
        assert!(
            !dropped,
            "verdis-server dropped a replica loading its snapshot"
        );
        // Loaded: the first ACK releases the stream, all of it, and the replica streams on.
        replica.send(&["REPLCONF", "ACK", &offset.to_string()]);
        let end: u64 = info_field(&info(&master, "replication"), "master_repl_offset")
            .and_then(|o| o.parse().ok())
            .expect("master_repl_offset");
        let stream = replica.read_bytes((end - offset) as usize);
        let last = format!("$4\r\nk299\r\n$10000\r\n{value}\r\n");
        assert!(stream.ends_with(last.as_bytes()), "the stream is cut short");
        replica.send(&["REPLCONF", "ACK", &end.to_string()]);
        // The master takes the ACK on the link's task, not in order with this connection's
        // INFO: wait for it (reading INFO at once failed 2 runs in 6).
        let online = format!("state=online,offset={end}");
        wait_until(Duration::from_secs(3), || {
            info(&master, "replication").contains(&online)
        });
        let m = info(&master, "replication");
        assert_eq!(
            info_field(&m, "connected_slaves").as_deref(),
            Some("1"),
            "{m}"
        );
        assert!(m.contains(&online), "{m}");
        let stats = info(&master, "stats");
        assert_eq!(info_field(&stats, "sync_full").as_deref(), Some("1"));
    }
}
