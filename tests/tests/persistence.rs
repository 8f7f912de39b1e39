//! End-to-end persistence tests: SAVE / BGSAVE / SHUTDOWN / save points on verdis-server,
//! restarts that load the file, and RDB files exchanged with Debian's redis-server 7.0.15 in
//! both directions, compared with DEBUG DIGEST.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use verdis_core::resp::Frame;
use verdis_tests::{free_port, info_field, text, verdis_binary, Conn, Server};

/// A data directory that outlives the servers of one test (the harness's own is removed when
/// its server stops).
struct DataDir(PathBuf);

impl DataDir {
    fn new(name: &str) -> DataDir {
        let p = std::env::temp_dir().join(format!(
            "verdis-persist-{}-{name}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&p).expect("create data dir");
        DataDir(p)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ok(c: &mut Conn, args: &[&str]) {
    let r = c.cmd(args);
    assert_eq!(r, Frame::Simple("OK".into()), "{args:?}: {}", text(&r));
}

fn digest(c: &mut Conn) -> String {
    text(&c.cmd(&["DEBUG", "DIGEST"]))
}

fn info(c: &mut Conn, field: &str) -> String {
    let all = text(&c.cmd(&["INFO", "persistence"]));
    info_field(&all, field).unwrap_or_else(|| panic!("no {field} in INFO: {all}"))
}

/// A dataset of strings in several dbs, with and without TTLs, with values of every RDB
/// string encoding (small ints, 16/32-bit ints, big ints, compressible and binary strings).
fn populate(c: &mut Conn) {
    ok(c, &["SET", "plain", "value"]);
    ok(c, &["SET", "int8", "100"]);
    ok(c, &["SET", "int16", "-12345"]);
    ok(c, &["SET", "int32", "1000000"]);
    ok(c, &["SET", "bigint", "12345678901"]);
    ok(c, &["SET", "notint", "007"]);
    ok(c, &["SET", "empty", ""]);
    ok(c, &["SET", "lzf", &"abc".repeat(200)]);
    ok(c, &["SET", "bin\u{1}key", "\u{0}\u{ff}\u{7f}"]);
    ok(c, &["SET", "ttl", "v", "PX", "3600000"]);
    ok(c, &["SET", "12345", "integer key"]);
    ok(c, &["SELECT", "3"]);
    ok(c, &["SET", "db3", "three", "EX", "7200"]);
    ok(c, &["SET", "db3b", &"x".repeat(5000)]);
    ok(c, &["SELECT", "15"]);
    ok(c, &["SET", "db15", "fifteen"]);
    ok(c, &["SELECT", "0"]);
}

/// Runs verdis-server without the harness (for start-ups that must fail); returns whether it
/// exited with failure within the deadline, and its output.
fn verdis_start_fails(dir: &Path, dbfilename: &str) -> (bool, String) {
    let port = free_port();
    let log = dir.join(format!("start-{port}.log"));
    let mut child = Command::new(verdis_binary())
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .arg("--dir")
        .arg(dir)
        .args(["--dbfilename", dbfilename])
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::fs::File::create(&log).expect("log")))
        .stderr(Stdio::from(
            std::fs::File::create(dir.join(format!("start-{port}.err"))).expect("log"),
        ))
        .spawn()
        .expect("spawn verdis-server");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut failed = false;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            failed = !status.success();
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = std::fs::read_to_string(&log).unwrap_or_default()
        + &std::fs::read_to_string(dir.join(format!("start-{port}.err"))).unwrap_or_default();
    (failed, out)
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn save_then_restart_loads_the_same_dataset() {
    let dir = DataDir::new("save");
    let args = ["--dir", dir.path(), "--dbfilename", "dump.rdb"];
    let before = {
        let s = Server::verdis(&args);
        let mut c = s.conn();
        populate(&mut c);
        let d = digest(&mut c);
        assert_ne!(d, "0".repeat(40));
        assert_ne!(info(&mut c, "rdb_changes_since_last_save"), "0");
        let last = c.cmd(&["LASTSAVE"]);
        std::thread::sleep(Duration::from_millis(1100));
        ok(&mut c, &["SAVE"]);
        assert_ne!(c.cmd(&["LASTSAVE"]), last, "LASTSAVE moves on SAVE");
        assert_eq!(info(&mut c, "rdb_changes_since_last_save"), "0");
        assert_eq!(info(&mut c, "rdb_last_bgsave_status"), "ok");
        d
    };
    assert!(dir.file("dump.rdb").exists());
    let s = Server::verdis(&args);
    let mut c = s.conn();
    assert_eq!(digest(&mut c), before);
    assert_eq!(info(&mut c, "rdb_last_load_keys_loaded"), "14");
    assert_eq!(text(&c.cmd(&["GET", "int16"])), "-12345");
    let ttl = c.cmd(&["PTTL", "ttl"]);
    assert!(matches!(ttl, Frame::Integer(n) if n > 3_000_000), "{ttl:?}");
    ok(&mut c, &["SELECT", "3"]);
    assert!(matches!(c.cmd(&["TTL", "db3"]), Frame::Integer(n) if n > 7000));
}

/// Loads 20 000 keys in one pipeline, enough that a background write takes a while.
fn fill(c: &mut Conn) {
    let mut pipeline = Vec::new();
    for i in 0..20_000 {
        verdis_core::resp::encode_command(
            &["SET", &format!("key:{i}"), &format!("value:{i}")],
            &mut pipeline,
        );
    }
    c.send_raw(&pipeline);
    for _ in 0..20_000 {
        c.read_frame();
    }
}

/// Sends `cmds` in one write (so they run in one batch) and returns their replies' texts.
fn batch(c: &mut Conn, cmds: &[&[&str]]) -> Vec<String> {
    let mut out = Vec::new();
    for cmd in cmds {
        verdis_core::resp::encode_command(cmd, &mut out);
    }
    c.send_raw(&out);
    cmds.iter().map(|_| text(&c.read_frame())).collect()
}

#[test]
fn bgsave_file_holds_exactly_the_data_at_the_bgsave_moment() {
    let dir = DataDir::new("bgsave");
    let args = ["--dir", dir.path(), "--dbfilename", "bg.rdb"];
    let at_bgsave = {
        let s = Server::verdis(&args);
        let mut c = s.conn();
        fill(&mut c);
        let d = digest(&mut c);
        let replies = batch(
            &mut c,
            &[
                &["BGSAVE"],
                &["SET", "marker", "after"],
                &["SET", "key:1", "changed"],
                &["DEL", "key:2"],
            ],
        );
        assert_eq!(replies[0], "Background saving started");
        wait_for("the BGSAVE to finish", || {
            info(&mut c, "rdb_bgsave_in_progress") == "0"
        });
        assert_eq!(info(&mut c, "rdb_last_bgsave_status"), "ok");
        // The three writes after BGSAVE are still unsaved changes.
        assert_eq!(info(&mut c, "rdb_changes_since_last_save"), "3");
        d
    };
    let s = Server::verdis(&args);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["GET", "marker"]), Frame::Null);
    assert_eq!(text(&c.cmd(&["GET", "key:1"])), "value:1");
    assert_eq!(text(&c.cmd(&["GET", "key:2"])), "value:2");
    assert_eq!(digest(&mut c), at_bgsave);
    assert_eq!(info(&mut c, "rdb_last_load_keys_loaded"), "20000");
}

#[test]
fn bgsave_refuses_a_second_one_and_reports_in_info() {
    let dir = DataDir::new("bgsave-info");
    let s = Server::verdis(&["--dir", dir.path()]);
    let mut c = s.conn();
    fill(&mut c);
    assert_eq!(info(&mut c, "rdb_last_bgsave_time_sec"), "-1");
    let replies = batch(&mut c, &[&["BGSAVE"], &["BGSAVE"], &["SAVE"]]);
    assert_eq!(
        replies,
        [
            "Background saving started",
            "ERR Background save already in progress",
            "ERR Background save already in progress"
        ]
    );
    wait_for("the BGSAVE to finish", || {
        info(&mut c, "rdb_bgsave_in_progress") == "0"
    });
    assert_eq!(info(&mut c, "rdb_current_bgsave_time_sec"), "-1");
    assert_eq!(info(&mut c, "rdb_last_bgsave_time_sec"), "0");
    assert_eq!(info(&mut c, "rdb_saves"), "1");
    assert_eq!(
        text(&c.cmd(&["BGSAVE", "SCHEDULE"])),
        "Background saving started"
    );
    assert_eq!(text(&c.cmd(&["BGSAVE", "NOW"])), "ERR syntax error");
    wait_for("the scheduled BGSAVE", || {
        info(&mut c, "rdb_bgsave_in_progress") == "0"
    });
    assert!(dir.file("dump.rdb").exists());
    // No temp file is left behind.
    let temps: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("temp-"))
        .collect();
    assert!(temps.is_empty(), "{temps:?}");
}

#[test]
fn sigterm_saves_when_save_points_are_configured() {
    let dir = DataDir::new("sigterm");
    let mut s = Server::verdis(&["--dir", dir.path(), "--save", "3600 1"]);
    let mut c = s.conn();
    ok(&mut c, &["SET", "k", "v"]);
    let status = Command::new("kill")
        .args(["-TERM", &s.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    assert!(s.wait_exit(Duration::from_secs(10)));
    let s = Server::verdis(&["--dir", dir.path()]);
    let mut c = s.conn();
    assert_eq!(text(&c.cmd(&["GET", "k"])), "v");
}

#[test]
fn a_file_written_by_redis_loads_into_verdis_with_the_same_digest() {
    let dir = DataDir::new("from-redis");
    let args = ["--dir", dir.path(), "--dbfilename", "redis.rdb"];
    let want = {
        let r = Server::redis(&args);
        let mut c = r.conn();
        populate(&mut c);
        ok(&mut c, &["SAVE"]);
        digest(&mut c)
    };
    let s = Server::verdis(&args);
    let mut c = s.conn();
    assert_eq!(digest(&mut c), want);
    assert_eq!(info(&mut c, "rdb_last_load_keys_loaded"), "14");
}

#[test]
fn a_file_written_by_verdis_loads_into_redis_with_the_same_digest() {
    for compression in ["yes", "no"] {
        let dir = DataDir::new("to-redis");
        let args = ["--dir", dir.path(), "--dbfilename", "verdis.rdb"];
        let want = {
            let s = Server::verdis(&[&args[..], &["--rdbcompression", compression]].concat());
            let mut c = s.conn();
            populate(&mut c);
            ok(&mut c, &["SAVE"]);
            digest(&mut c)
        };
        let r = Server::redis(&args);
        let mut c = r.conn();
        assert_eq!(digest(&mut c), want, "rdbcompression {compression}");
    }
}

#[test]
fn shutdown_saves_with_save_points_or_save_and_not_with_nosave() {
    let dir = DataDir::new("shutdown");
    let file = dir.file("dump.rdb");
    // No save points: SHUTDOWN does not save, SHUTDOWN SAVE does.
    let mut s = Server::verdis(&["--dir", dir.path()]);
    let mut c = s.conn();
    ok(&mut c, &["SET", "k", "v"]);
    c.send(&["SHUTDOWN"]);
    assert!(s.wait_exit(Duration::from_secs(10)));
    assert!(!file.exists());
    let mut s = Server::verdis(&["--dir", dir.path()]);
    let mut c = s.conn();
    ok(&mut c, &["SET", "k", "v"]);
    assert_eq!(
        text(&c.cmd(&["SHUTDOWN", "SAVE", "NOSAVE"])),
        "ERR syntax error"
    );
    c.send(&["SHUTDOWN", "SAVE"]);
    assert!(s.wait_exit(Duration::from_secs(10)));
    assert!(file.exists());
    // Save points configured: SHUTDOWN saves, SHUTDOWN NOSAVE does not.
    let mut s = Server::verdis(&["--dir", dir.path(), "--save", "3600 1"]);
    let mut c = s.conn();
    assert_eq!(text(&c.cmd(&["GET", "k"])), "v");
    ok(&mut c, &["SET", "k2", "v2"]);
    c.send(&["SHUTDOWN"]);
    assert!(s.wait_exit(Duration::from_secs(10)));
    let mut s = Server::verdis(&["--dir", dir.path(), "--save", "3600 1"]);
    let mut c = s.conn();
    assert_eq!(text(&c.cmd(&["GET", "k2"])), "v2");
    ok(&mut c, &["SET", "k3", "v3"]);
    c.send(&["SHUTDOWN", "NOSAVE"]);
    assert!(s.wait_exit(Duration::from_secs(10)));
    let s = Server::verdis(&["--dir", dir.path()]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["GET", "k3"]), Frame::Null);
}

#[test]
fn a_save_point_triggers_a_background_save() {
    let dir = DataDir::new("savepoint");
    let s = Server::verdis(&["--dir", dir.path(), "--save", "1 2"]);
    let mut c = s.conn();
    ok(&mut c, &["SET", "a", "1"]);
    std::thread::sleep(Duration::from_millis(2500));
    // One change is below the point's two: nothing saved.
    assert!(!dir.file("dump.rdb").exists());
    ok(&mut c, &["SET", "b", "2"]);
    wait_for("the save point's BGSAVE", || {
        info(&mut c, "rdb_changes_since_last_save") == "0"
    });
    assert!(dir.file("dump.rdb").exists());
    assert_eq!(info(&mut c, "rdb_saves"), "1");
}

#[test]
fn a_corrupt_or_truncated_file_stops_start_up_naming_the_file() {
    let dir = DataDir::new("corrupt");
    {
        let s = Server::verdis(&["--dir", dir.path(), "--dbfilename", "good.rdb"]);
        let mut c = s.conn();
        populate(&mut c);
        ok(&mut c, &["SAVE"]);
    }
    let good = std::fs::read(dir.file("good.rdb")).expect("saved file");
    std::fs::write(dir.file("cut.rdb"), &good[..good.len() / 2]).unwrap();
    let mut flipped = good.clone();
    let i = good
        .windows(5)
        .position(|w| w == b"value")
        .expect("a value");
    flipped[i] = b'V';
    std::fs::write(dir.file("flipped.rdb"), &flipped).unwrap();
    std::fs::write(dir.file("garbage.rdb"), b"not an rdb file at all").unwrap();
    for (name, why) in [
        ("cut.rdb", "Short read"),
        ("flipped.rdb", "Wrong RDB checksum"),
        ("garbage.rdb", "Wrong signature"),
    ] {
        let (failed, out) = verdis_start_fails(&dir.0, name);
        assert!(failed, "{name}: start-up did not fail: {out}");
        assert!(
            out.contains("Fatal error loading the DB from") && out.contains(name),
            "{name}: {out}"
        );
        assert!(out.contains(why), "{name}: {out}");
    }
}

#[test]
fn a_redis_file_with_a_list_is_refused_naming_the_type_and_key() {
    let dir = DataDir::new("list");
    let args = ["--dir", dir.path(), "--dbfilename", "withlist.rdb"];
    {
        let r = Server::redis(&args);
        let mut c = r.conn();
        ok(&mut c, &["SET", "s", "v"]);
        assert_eq!(c.cmd(&["RPUSH", "mylist", "a", "b"]), Frame::Integer(2));
        ok(&mut c, &["SAVE"]);
    }
    let (failed, out) = verdis_start_fails(&dir.0, "withlist.rdb");
    assert!(failed, "start-up did not fail: {out}");
    assert!(
        out.contains("Unsupported RDB value type 18 (list (quicklist v2))")
            && out.contains("key 'mylist'")
            && out.contains("withlist.rdb"),
        "{out}"
    );
}

#[test]
fn strings_encode_to_the_bytes_redis_dumps() {
    // Why: Verdis compresses with its own LZF encoder (a table reused across strings); a
    // snapshot must hold the very bytes Redis 7.0 writes for the same value, compressed or not.
    // `DUMP` is rdbSaveObject's output: type byte, the string record, RDB version, CRC64.
    use rand::{Rng, SeedableRng};
    use verdis::rdb::{lzf::Lzf, write::put_string};
    let r = Server::redis(&[]);
    let mut c = r.conn();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut values: Vec<Vec<u8>> = vec![
        b"12345".to_vec(),
        b"-2147483648".to_vec(),
        vec![b'a'; 21],
        vec![b'a'; 100],
        b"abc".repeat(300),
        (0..=255u8).collect(),
        vec![0; 70_000],
    ];
    for _ in 0..300 {
        let len = rng.gen_range(1..4000);
        let alphabet = rng.gen_range(1..10u8);
        values.push(
            (0..len)
                .map(|_| b'a' + rng.gen_range(0..alphabet))
                .collect(),
        );
    }
    for _ in 0..20 {
        let len = rng.gen_range(1..20_000);
        values.push((0..len).map(|_| rng.gen::<u8>()).collect());
    }
    let mut z = Lzf::new();
    let mut compressed = 0;
    for (i, v) in values.iter().enumerate() {
        let mut set = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n".to_vec();
        set.extend_from_slice(format!("${}\r\n", v.len()).as_bytes());
        set.extend_from_slice(v);
        set.extend_from_slice(b"\r\n");
        c.send_raw(&set);
        assert_eq!(c.read_frame(), Frame::Simple("OK".into()), "value {i}");
        let dumped = match c.cmd(&["DUMP", "k"]) {
            Frame::Bulk(b) => b.to_vec(),
            other => panic!("DUMP of value {i}: {}", text(&other)),
        };
        assert!(dumped.len() > 11 && dumped[0] == 0, "value {i}: {dumped:?}");
        let record = &dumped[1..dumped.len() - 10];
        let mut ours = Vec::new();
        put_string(&mut ours, v, Some(&mut z));
        if ours != record {
            let at = ours.iter().zip(record).position(|(a, b)| a != b);
            let at = at.unwrap_or(ours.len().min(record.len()));
            let lo = at.saturating_sub(12);
            panic!(
                "value {i} ({} bytes) differs at byte {at}: ours {:?}, Redis's {:?}",
                v.len(),
                &ours[lo..(at + 12).min(ours.len())],
                &record[lo..(at + 12).min(record.len())]
            );
        }
        compressed += usize::from(ours.first() == Some(&0xC3));
    }
    assert!(compressed > 200, "only {compressed} values were compressed");
}
