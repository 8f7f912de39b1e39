//! Replica output-buffer limits: a replica that stops reading is disconnected once its unsent
//! stream passes the limit, reconnects when it reads again, and catches up without falling
//! into a full-sync loop.

use std::process::Command;
use std::time::{Duration, Instant};
use verdis_tests::{info_field, text, Server};

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

#[test]
fn a_stalled_replica_is_dropped_at_the_limit_and_recovers_without_a_sync_loop() {
    let master = Server::verdis(&[
        "--repl-diskless-sync-delay",
        "0",
        "--client-output-buffer-limit",
        "replica 1mb 0 0",
        "--repl-backlog-size",
        "16mb",
    ]);
    let replica = Server::redis(&["--replicaof", "127.0.0.1", &master.port.to_string()]);
    assert!(wait_until(Duration::from_secs(10), || {
        info_field(&info(&replica, "replication"), "master_link_status").as_deref() == Some("up")
    }));
    // The replica stops reading: its socket buffers fill, then the master's queue grows.
    signal(replica.pid(), "-STOP");
    let mut c = master.conn();
    let value = "x".repeat(10_000);
    for i in 0..600 {
        c.cmd(&["SET", &format!("k{i}"), &value]);
    }
    let dropped = wait_until(Duration::from_secs(10), || {
        info_field(&info(&master, "replication"), "connected_slaves").as_deref() == Some("0")
    });
    signal(replica.pid(), "-CONT");
    assert!(dropped, "the stalled replica was not disconnected");
    // It comes back and catches up; the backlog covers the gap, so no second full sync.
    assert!(wait_until(Duration::from_secs(15), || {
        let m = info(&master, "replication");
        let r = info(&replica, "replication");
        info_field(&r, "master_link_status").as_deref() == Some("up")
            && info_field(&m, "master_repl_offset") == info_field(&r, "master_repl_offset")
    }));
    let stats = info(&master, "stats");
    assert_eq!(
        info_field(&stats, "sync_full").as_deref(),
        Some("1"),
        "{stats}"
    );
    assert_eq!(
        info_field(&stats, "sync_partial_ok").as_deref(),
        Some("1"),
        "{stats}"
    );
    let d1 = text(&master.conn().cmd(&["DEBUG", "DIGEST"]));
    let d2 = text(&replica.conn().cmd(&["DEBUG", "DIGEST"]));
    assert_eq!(d1, d2);
}
