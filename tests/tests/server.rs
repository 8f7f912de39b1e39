//! End-to-end tests of verdis-server with real clients: the `redis` crate, Debian's redis-cli
//! and redis-benchmark, and raw sockets for limits and bad input.

use std::process::Command;
use std::time::{Duration, Instant};
use verdis_core::resp::Frame;
use verdis_tests::{info_field, require_program, text, Conn, Server};

fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new(require_program("redis-cli"))
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .expect("run redis-cli");
    assert!(out.status.success(), "redis-cli {args:?} failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

#[test]
fn the_redis_crate_works_against_verdis() {
    let s = Server::verdis(&[]);
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", s.port)).unwrap();
    let mut con = client.get_connection().unwrap();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
    let v: String = redis::cmd("GET").arg("k").query(&mut con).unwrap();
    assert_eq!(v, "v");
    let n: i64 = redis::cmd("INCRBY")
        .arg("n")
        .arg(5)
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 5);
    let _: () = redis::cmd("MSET")
        .arg("a")
        .arg("1")
        .arg("b")
        .arg("2")
        .query(&mut con)
        .unwrap();
    let vals: Vec<Option<String>> = redis::cmd("MGET")
        .arg("a")
        .arg("b")
        .arg("c")
        .query(&mut con)
        .unwrap();
    assert_eq!(vals, vec![Some("1".into()), Some("2".into()), None]);
    // Pipelining and transactions through the library.
    let (x, y): (i64, i64) = redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg("p")
        .cmd("INCR")
        .arg("p")
        .query(&mut con)
        .unwrap();
    assert_eq!((x, y), (1, 2));
    let _: () = redis::cmd("EXPIRE")
        .arg("k")
        .arg(100)
        .query(&mut con)
        .unwrap();
    let ttl: i64 = redis::cmd("TTL").arg("k").query(&mut con).unwrap();
    assert!((99..=100).contains(&ttl));
    let err = redis::cmd("INCR")
        .arg("k")
        .query::<i64>(&mut con)
        .unwrap_err();
    assert!(err.to_string().contains("not an integer"), "{err}");
}

#[test]
fn redis_cli_answers_every_command_family() {
    let s = Server::verdis(&[]);
    let p = s.port;
    assert_eq!(redis_cli(p, &["PING"]), "PONG");
    assert_eq!(redis_cli(p, &["SET", "k", "v", "EX", "100"]), "OK");
    assert_eq!(redis_cli(p, &["GET", "k"]), "v");
    assert_eq!(redis_cli(p, &["TTL", "k"]), "100");
    assert_eq!(redis_cli(p, &["INCR", "c"]), "1");
    assert_eq!(redis_cli(p, &["DBSIZE"]), "2");
    assert_eq!(redis_cli(p, &["TYPE", "k"]), "string");
    assert_eq!(redis_cli(p, &["OBJECT", "ENCODING", "c"]), "int");
    assert_eq!(
        redis_cli(p, &["CONFIG", "GET", "maxclients"]),
        "maxclients\n10000"
    );
    assert!(redis_cli(p, &["INFO", "server"]).contains("redis_version:7.0.15"));
    assert!(redis_cli(p, &["CLIENT", "LIST"]).contains("cmd=client|list"));
    assert_eq!(redis_cli(p, &["CLIENT", "SETNAME", "x"]), "OK");
    assert!(redis_cli(p, &["COMMAND", "COUNT"]).parse::<u32>().unwrap() > 50);
    assert_eq!(redis_cli(p, &["DEBUG", "DIGEST"]).len(), 40);
    assert_eq!(redis_cli(p, &["TIME"]).lines().count(), 2);
    assert!(redis_cli(p, &["LASTSAVE"]).parse::<i64>().is_ok());
    assert_eq!(redis_cli(p, &["FLUSHALL"]), "OK");
    assert_eq!(redis_cli(p, &["DBSIZE"]), "0");
    // A transaction typed interactively, as redis-cli sends it.
    let out = Command::new(require_program("redis-cli"))
        .args(["-p", &p.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(b"MULTI\nSET a 1\nINCR a\nEXEC\n")?;
            c.wait_with_output()
        })
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    // Without a terminal redis-cli prints raw replies: the EXEC array as its elements.
    assert_eq!(out, "OK\nQUEUED\nQUEUED\nOK\n2\n");
}

#[test]
fn redis_benchmark_runs_without_errors() {
    let s = Server::verdis(&[]);
    let out = Command::new(require_program("redis-benchmark"))
        .args([
            "-p",
            &s.port.to_string(),
            "-q",
            "-n",
            "100000",
            "-t",
            "set,get,incr,mset",
        ])
        .output()
        .expect("run redis-benchmark");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    for t in ["SET", "GET", "INCR", "MSET"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.contains(t) && l.contains("requests per second")),
            "no {t} result in: {stdout}"
        );
    }
    assert!(
        !stdout.contains("ERR") && !stderr.contains("ERR"),
        "{stdout}{stderr}"
    );
    let info = text(&s.conn().cmd(&["INFO", "stats"]));
    let processed: u64 = info_field(&info, "total_commands_processed")
        .unwrap()
        .parse()
        .unwrap();
    assert!(processed >= 400_000, "{processed}");
}

#[test]
fn expired_keys_are_reclaimed_without_being_touched() {
    let s = Server::verdis(&[]);
    let mut c = s.conn();
    for i in 0..200 {
        c.cmd(&["SET", &format!("k{i}"), "v", "PX", "100"]);
    }
    c.cmd(&["SET", "keep", "v"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if c.cmd(&["DBSIZE"]) == Frame::Integer(1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "active expiry did not reclaim the keys"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let info = text(&c.cmd(&["INFO", "stats"]));
    assert_eq!(info_field(&info, "expired_keys").as_deref(), Some("200"));
}

#[test]
fn lazy_expiry_hides_a_key_at_its_time() {
    let s = Server::verdis(&[]);
    let mut c = s.conn();
    c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    c.cmd(&["SET", "k", "v", "PX", "50"]);
    std::thread::sleep(Duration::from_millis(120));
    // Still stored (no active cycle) but gone for readers.
    assert_eq!(c.cmd(&["DBSIZE"]), Frame::Integer(1));
    assert_eq!(c.cmd(&["GET", "k"]), Frame::Null);
    assert_eq!(c.cmd(&["DBSIZE"]), Frame::Integer(0));
}

#[test]
fn info_has_redis_sections_and_fields() {
    let s = Server::verdis(&[]);
    let mut c = s.conn();
    c.cmd(&["SET", "a", "1"]);
    c.cmd(&["SET", "b", "2", "EX", "100"]);
    let info = text(&c.cmd(&["INFO"]));
    for section in [
        "# Server",
        "# Clients",
        "# Memory",
        "# Persistence",
        "# Stats",
        "# Replication",
        "# CPU",
        "# Keyspace",
    ] {
        assert!(info.contains(section), "missing {section}");
    }
    assert_eq!(info_field(&info, "tcp_port"), Some(s.port.to_string()));
    assert_eq!(info_field(&info, "process_id"), Some(s.pid().to_string()));
    assert_eq!(info_field(&info, "role").as_deref(), Some("master"));
    assert_eq!(info_field(&info, "connected_clients").as_deref(), Some("1"));
    assert_eq!(
        info_field(&info, "master_replid").map(|r| r.len()),
        Some(40)
    );
    assert_eq!(
        info_field(&info, "rdb_changes_since_last_save").as_deref(),
        Some("3")
    );
    assert_eq!(
        info_field(&info, "db0").as_deref(),
        Some("keys=2,expires=1,avg_ttl=0")
    );
    let used: u64 = info_field(&info, "used_memory").unwrap().parse().unwrap();
    assert!(used > 0);
    // One section only.
    let only = text(&c.cmd(&["INFO", "keyspace"]));
    assert!(only.starts_with("# Keyspace") && !only.contains("# Server"));
}

#[test]
fn client_list_shows_and_client_kill_closes_connections() {
    let s = Server::verdis(&[]);
    let mut a = s.conn();
    let mut b = s.conn();
    b.cmd(&["CLIENT", "SETNAME", "victim"]);
    let Frame::Integer(b_id) = b.cmd(&["CLIENT", "ID"]) else {
        panic!()
    };
    let list = text(&a.cmd(&["CLIENT", "LIST"]));
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(
        list.contains(&format!("id={b_id} ")) && list.contains("name=victim"),
        "{list}"
    );
    assert_eq!(
        a.cmd(&["CLIENT", "KILL", "ID", &b_id.to_string()]),
        Frame::Integer(1)
    );
    assert!(b.is_closed(Duration::from_secs(2)));
    let list = text(&a.cmd(&["CLIENT", "LIST"]));
    assert_eq!(list.lines().count(), 1, "{list}");
}

#[test]
fn requirepass_demands_auth() {
    let s = Server::verdis(&["--requirepass", "secret"]);
    let mut c = s.conn();
    assert_eq!(
        text(&c.cmd(&["GET", "k"])),
        "NOAUTH Authentication required."
    );
    assert!(text(&c.cmd(&["AUTH", "wrong"])).starts_with("WRONGPASS"));
    assert_eq!(text(&c.cmd(&["AUTH", "secret"])), "OK");
    assert_eq!(c.cmd(&["GET", "k"]), Frame::Null);
    let mut d = s.conn();
    let Frame::Map(m) = d.cmd(&["HELLO", "3", "AUTH", "default", "secret"]) else {
        panic!()
    };
    assert!(!m.is_empty());
    assert_eq!(d.cmd(&["GET", "k"]), Frame::Null);
    // Before AUTH, large requests are refused as in Redis.
    let mut e = s.conn();
    let reply = e.raw_exchange(b"*20\r\n", Duration::from_millis(300));
    assert_eq!(
        reply,
        b"-ERR Protocol error: unauthenticated multibulk length\r\n"
    );
}

#[test]
fn maxclients_refuses_extra_connections() {
    let s = Server::verdis(&["--maxclients", "2"]);
    let _a = s.conn();
    let mut b = s.conn();
    b.cmd(&["PING"]);
    let mut c = s.conn();
    let got = c.read_until_closed();
    assert_eq!(got, b"-ERR max number of clients reached\r\n");
}

#[test]
fn query_buffer_and_bulk_limits_close_the_offender_only() {
    let s = Server::verdis(&[
        "--client-query-buffer-limit",
        "1mb",
        "--proto-max-bulk-len",
        "1mb",
    ]);
    let mut other = s.conn();
    // A bulk over proto-max-bulk-len: protocol error.
    let mut c = s.conn();
    let reply = c.raw_exchange(
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n",
        Duration::from_millis(300),
    );
    assert_eq!(reply, b"-ERR Protocol error: invalid bulk length\r\n");
    assert!(c.is_closed(Duration::from_secs(2)));
    // A bulk within proto-max-bulk-len but past the query buffer limit: closed, no reply.
    let s2 = Server::verdis(&["--client-query-buffer-limit", "1mb"]);
    let mut d = s2.conn();
    d.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3000000\r\n");
    let chunk = vec![b'a'; 64 * 1024];
    for _ in 0..24 {
        if std::io::Write::write_all(&mut TcpHandle(&mut d), &chunk).is_err() {
            break;
        }
    }
    assert!(d.read_until_closed().is_empty());
    assert_eq!(text(&s2.conn().cmd(&["PING"])), "PONG");
    // An inline request that never ends: a protocol error past 64 KiB.
    let mut e = s.conn();
    let _ = std::io::Write::write_all(&mut TcpHandle(&mut e), &vec![b'a'; 70 * 1024]);
    assert_eq!(
        e.read_until_closed(),
        b"-ERR Protocol error: too big inline request\r\n"
    );
    assert_eq!(text(&other.cmd(&["PING"])), "PONG");
}

/// Lets a test write raw bytes without panicking on a closed socket.
struct TcpHandle<'a>(&'a mut Conn);

impl std::io::Write for TcpHandle<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.0.send_raw(buf)));
        match r {
            Ok(()) => Ok(buf.len()),
            Err(_) => Err(std::io::Error::other("closed")),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn idle_clients_are_closed_after_timeout() {
    let s = Server::verdis(&["--timeout", "1"]);
    let mut c = s.conn();
    c.cmd(&["PING"]);
    let start = Instant::now();
    assert!(c.is_closed(Duration::from_secs(5)));
    assert!(start.elapsed() >= Duration::from_millis(900));
}

#[test]
fn a_deep_pipeline_gets_every_reply_in_order() {
    let s = Server::verdis(&[]);
    let mut c = s.conn();
    let mut req = Vec::new();
    for i in 0..10_000 {
        verdis_core::resp::encode_command(&["SET", &format!("k{i}"), &i.to_string()], &mut req);
        verdis_core::resp::encode_command(&["GET", &format!("k{i}")], &mut req);
    }
    c.send_raw(&req);
    for i in 0..10_000 {
        assert_eq!(c.read_frame(), Frame::Simple("OK".into()));
        assert_eq!(c.read_frame(), Frame::Bulk(i.to_string().into()));
    }
}

#[test]
fn scan_and_keys_return_every_key() {
    let s = Server::verdis(&[]);
    let mut c = s.conn();
    for i in 0..1000 {
        c.cmd(&["SET", &format!("key:{i}"), "v"]);
    }
    c.cmd(&["SET", "other", "v"]);
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    let mut rounds = 0;
    loop {
        let Frame::Array(parts) = c.cmd(&["SCAN", &cursor, "MATCH", "key:*", "COUNT", "50"]) else {
            panic!()
        };
        cursor = text(&parts[0]);
        let Frame::Array(keys) = &parts[1] else {
            panic!()
        };
        seen.extend(keys.iter().map(text));
        rounds += 1;
        assert!(rounds < 1000);
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 1000);
    let Frame::Array(keys) = c.cmd(&["KEYS", "key:1*"]) else {
        panic!()
    };
    assert_eq!(keys.len(), 111);
    let Frame::Bulk(_) = c.cmd(&["RANDOMKEY"]) else {
        panic!()
    };
}

#[test]
fn watch_sees_writes_from_other_connections() {
    let s = Server::verdis(&[]);
    let mut a = s.conn();
    let mut b = s.conn();
    a.cmd(&["WATCH", "k"]);
    b.cmd(&["SET", "k", "1"]);
    a.cmd(&["MULTI"]);
    a.cmd(&["SET", "k", "2"]);
    assert_eq!(a.cmd(&["EXEC"]), Frame::Null);
    assert_eq!(text(&a.cmd(&["GET", "k"])), "1");
}

#[test]
fn binary_garbage_is_refused_and_the_server_keeps_serving() {
    use rand::{Rng, SeedableRng};
    let s = Server::verdis(&[]);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..30 {
        let len = rng.gen_range(1..2000);
        let garbage: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        let mut c = s.conn();
        let _ = c.raw_exchange(&garbage, Duration::from_millis(30));
    }
    let mut c = s.conn();
    c.cmd(&["SET", "still", "here"]);
    assert_eq!(text(&c.cmd(&["GET", "still"])), "here");
}

#[test]
fn debug_sleep_and_shutdown() {
    let mut s = Server::verdis(&[]);
    let mut c = s.conn();
    let t = Instant::now();
    assert_eq!(text(&c.cmd(&["DEBUG", "SLEEP", "0.2"])), "OK");
    assert!(t.elapsed() >= Duration::from_millis(190));
    c.send(&["SHUTDOWN"]);
    assert!(s.wait_exit(Duration::from_secs(5)), "server did not exit");
}

#[test]
fn start_up_log_names_version_pid_port_and_readiness() {
    let s = Server::verdis(&[]);
    let log = s.log();
    assert!(log.contains(&format!("PID: {}", s.pid())), "{log}");
    assert!(log.contains(&format!("port={}", s.port)), "{log}");
    assert!(log.contains("Ready to accept connections"), "{log}");
    assert!(log.contains("Verdis version="), "{log}");
}

fn run_verdis(args: &[&str]) -> (bool, String) {
    let mut child = Command::new(verdis_tests::verdis_binary())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn verdis-server");
    // A config error exits at once; a server that starts is killed after a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("wait");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn a_bad_config_file_stops_start_up_naming_file_line_and_directive() {
    let dir = std::env::temp_dir().join(format!("verdis-conf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("bad.conf");
    std::fs::write(&conf, "port 7000\n# comment\nnosuchdirective 1\n").unwrap();
    let (ok, out) = run_verdis(&[conf.to_str().unwrap()]);
    assert!(!ok);
    assert!(out.contains("line 3"), "{out}");
    assert!(out.contains("nosuchdirective"), "{out}");
    assert!(out.contains("bad.conf"), "{out}");
    let (ok, out) = run_verdis(&["--port", "0", "--appendonly", "yes"]);
    assert!(!ok);
    assert!(out.to_lowercase().contains("appendonly"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_stock_debian_redis_conf_starts_verdis() {
    let stock = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../impl/tests/data/redis-7.0-debian.conf"
    );
    let dir = std::env::temp_dir().join(format!("verdis-stock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = verdis_tests::free_port();
    let log = dir.join("verdis.log");
    let pid = dir.join("verdis.pid");
    let (_, out) = run_verdis(&[
        stock,
        "--port",
        &port.to_string(),
        "--dir",
        dir.to_str().unwrap(),
        "--logfile",
        log.to_str().unwrap(),
        "--pidfile",
        pid.to_str().unwrap(),
    ]);
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        logged.contains("Ready to accept connections"),
        "{out}\n{logged}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn config_set_port_moves_the_listener_or_fails_cleanly() {
    let s = Server::verdis(&[]);
    let mut c = s.conn();
    // A port in use: an error, and nothing changes.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port().to_string();
    let reply = text(&c.cmd(&["CONFIG", "SET", "port", &busy_port]));
    assert!(
        reply.starts_with("ERR CONFIG SET failed (possibly related to argument 'port')"),
        "{reply}"
    );
    let Frame::Array(v) = c.cmd(&["CONFIG", "GET", "port"]) else {
        panic!()
    };
    assert_eq!(text(&v[1]), s.port.to_string());
    // A free port: the server listens there, and no longer on the old one.
    let new_port = verdis_tests::free_port();
    assert_eq!(
        text(&c.cmd(&["CONFIG", "SET", "port", &new_port.to_string()])),
        "OK"
    );
    assert_eq!(text(&Conn::connect(new_port).cmd(&["PING"])), "PONG");
    assert!(Conn::try_connect(s.port).is_err());
    // The existing connection keeps working.
    assert_eq!(text(&c.cmd(&["PING"])), "PONG");
}

#[test]
fn config_rewrite_updates_the_config_file() {
    let dir = std::env::temp_dir().join(format!("verdis-rewrite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("verdis.conf");
    std::fs::write(&conf, "# my settings\nmaxclients 500\ntimeout 0\n").unwrap();
    let s = Server::verdis(&[conf.to_str().unwrap()]);
    let mut c = s.conn();
    assert_eq!(
        text(&c.cmd(&["CONFIG", "SET", "maxclients", "123", "timeout", "7"])),
        "OK"
    );
    assert_eq!(text(&c.cmd(&["CONFIG", "REWRITE"])), "OK");
    let written = std::fs::read_to_string(&conf).unwrap();
    assert!(written.contains("# my settings"), "{written}");
    assert!(written.contains("maxclients 123"), "{written}");
    assert!(written.contains("timeout 7"), "{written}");
    assert!(!written.contains("maxclients 500"), "{written}");
    // Without a config file, REWRITE is an error.
    let bare = Server::verdis(&[]);
    let reply = text(&bare.conn().cmd(&["CONFIG", "REWRITE"]));
    assert_eq!(reply, "ERR The server is running without a config file");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_redis_test_suite_config_starts_verdis() {
    let conf = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../impl/tests/data/redis-7.0-test-default.conf"
    );
    let s = Server::verdis(&[conf]);
    assert_eq!(text(&s.conn().cmd(&["PING"])), "PONG");
}

/// Every thread that serves clients runs with the short time slice of `verdis::sched`, so a
/// request that wakes it may preempt a busy thread at once (docs/performance.md, write stall).
#[test]
fn the_workers_ask_for_a_short_time_slice() {
    let s = Server::verdis(&["--io-threads", "2"]);
    // The server answers only once its runtime, and so its workers, run.
    assert_eq!(text(&s.conn().cmd(&["PING"])), "PONG");
    let mut slices = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{}/task", s.pid())).expect("the server's tasks") {
        let dir = task.expect("a task").path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() != "verdis-worker" {
            continue;
        }
        slices.push(verdis::sched::reported_slice(&dir));
    }
    assert!(slices.len() >= 2, "two io-threads, found {slices:?}");
    if verdis::sched::kernel_keeps_custom_slices() {
        for slice in &slices {
            assert_eq!(*slice, Some(verdis::sched::WORKER_SLICE_NS), "{slices:?}");
        }
    }
}
