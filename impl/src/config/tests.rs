//! Unit tests of the configuration module: defaults against redis-server 7.0.15, config file
//! and command-line parsing, every error text, CONFIG GET/SET/REWRITE.

use super::directives::{Slot, DIRECTIVES};
use super::*;
use std::path::Path;

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// A fresh directory for one test's files, removed when the test is done with it.
struct TmpDir(PathBuf);

impl std::ops::Deref for TmpDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tmpdir(name: &str) -> TmpDir {
    let d = std::env::temp_dir().join(format!("verdis-config-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create temp dir");
    TmpDir(d)
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).expect("write test file");
    p
}

fn load_file(content: &str, extra: &[&str]) -> Result<Loaded, ConfigError> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = tmpdir(&format!("load-{n}"));
    let p = write(&d, "redis.conf", content);
    let mut a = vec![p.to_string_lossy().into_owned()];
    a.extend(extra.iter().map(|s| s.to_string()));
    load(&a)
}

fn get1(c: &Config, name: &str) -> String {
    let r = c.get(&[name.as_bytes()]);
    assert_eq!(r.len(), 1, "CONFIG GET {name} returns one entry");
    r[0].1.clone()
}

fn set(c: &mut Config, pairs: &[(&str, &str)]) -> Result<Vec<&'static str>, String> {
    let p: Vec<(&[u8], &[u8])> = pairs
        .iter()
        .map(|(a, b)| (a.as_bytes(), b.as_bytes()))
        .collect();
    c.set(&p)
}

fn line_problem(e: ConfigError) -> (u32, String, Problem) {
    match e {
        ConfigError::Line {
            line,
            text,
            problem,
            ..
        } => (line, text, problem),
        other => panic!("expected a line error, got {other:?}"),
    }
}

// ---- Defaults ----

#[test]
fn defaults_match_the_issue_and_redis() {
    let c = Config::default();
    assert_eq!(c.port, 6379);
    assert_eq!(
        c.bind,
        vec![
            BindAddr {
                addr: "127.0.0.1".into(),
                optional: false
            },
            BindAddr {
                addr: "::1".into(),
                optional: true
            }
        ]
    );
    assert!(c.protected_mode);
    assert!(c.save.is_empty(), "no persistence unless configured");
    assert_eq!(c.maxclients, 10000);
    assert_eq!(c.proto_max_bulk_len, 512 * 1024 * 1024);
    assert_eq!(c.client_query_buffer_limit, 1024 * 1024 * 1024);
    assert_eq!(c.timeout_secs, 0);
    assert_eq!(c.databases, 16);
    assert_eq!(c.hz, 10);
    assert_eq!(c.loglevel, LogLevel::Notice);
    assert_eq!(c.requirepass, None);
    assert_eq!(c.repl_backlog_size, 1024 * 1024);
    assert_eq!(
        c.client_output_buffer_limit.replica.hard_bytes,
        256 * 1024 * 1024
    );
    assert_eq!(c.enable_debug_command, ProtectedAction::No);
}

#[test]
fn config_get_star_lists_exactly_redis_7_0_15_names_and_default_values() {
    let expected = include_str!("../../tests/data/redis-7.0.15-config-get-defaults.tsv");
    let c = Config::default();
    let got: BTreeMap<String, String> = c.get(&[b"*"]).into_iter().collect();
    let mut names = 0;
    for line in expected.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = line.split_once('\t').unwrap_or((line, ""));
        names += 1;
        let ours = got
            .get(name)
            .unwrap_or_else(|| panic!("CONFIG GET * lacks {name}"));
        match name {
            // Deliberate differences, see the module doc.
            "bind" => assert_eq!(ours, "127.0.0.1 -::1"),
            "save" => assert_eq!(ours, ""),
            _ => assert_eq!(ours, value, "default of {name}"),
        }
    }
    // `dir` is omitted from the capture (it is the working directory); Verdis's own
    // directives are named `verdis-*`.
    assert!(got.contains_key("dir"));
    let own = got.keys().filter(|k| k.starts_with("verdis-")).count();
    assert_eq!(own, 1, "verdis-protocol-trace");
    assert_eq!(
        got.len(),
        names + 1 + own,
        "no other directive beyond Redis 7.0.15's"
    );
}

#[test]
fn native_numeric_fields_round_trip_their_limits() {
    // The table's ranges must fit the typed fields (the setters narrow with `as`).
    for spec in DIRECTIVES {
        let (Slot::Int(get, put), Kind::Int { min, max } | Kind::Mem { min, max }) =
            (spec.slot, spec.kind)
        else {
            continue;
        };
        let mut c = Config::default();
        for v in [min, max] {
            put(&mut c, v);
            assert_eq!(get(&c), v, "{} holds {v}", spec.name);
        }
    }
}

#[test]
fn every_directive_name_and_alias_is_unique_and_lower_case() {
    let mut seen = std::collections::HashSet::new();
    for spec in DIRECTIVES {
        for n in std::iter::once(spec.name).chain(spec.alias) {
            assert!(seen.insert(n), "{n} appears twice");
            assert_eq!(n, n.to_ascii_lowercase());
        }
    }
}

// ---- Parsing ----

#[test]
fn no_arguments_gives_the_defaults_and_no_file() {
    let l = load(&[]).expect("loads");
    assert_eq!(l.config, Config::default());
    assert_eq!(l.config_file, None);
    assert!(l.warnings.is_empty());
}

#[test]
fn file_syntax_comments_quotes_and_case_insensitive_names() {
    let l = load_file(
        "# a comment\n\n   PORT 7000  \r\nrequirepass \"p\\x41ss word\"\n\tLogLevel 'warning'\nbind 127.0.0.1 \"-::1\"\n",
        &[],
    )
    .expect("loads");
    let c = &l.config;
    assert_eq!(c.port, 7000);
    assert_eq!(c.requirepass.as_deref(), Some("pAss word"));
    assert_eq!(c.loglevel, LogLevel::Warning);
    assert_eq!(get1(c, "bind"), "127.0.0.1 -::1");
    assert!(l.config_file.expect("file").is_absolute());
}

#[test]
fn later_lines_and_command_line_options_override_the_file() {
    let l = load_file(
        "port 7000\nport 7001\nmaxclients 5\n",
        &["--port", "7002", "--timeout", "30"],
    )
    .expect("loads");
    assert_eq!(l.config.port, 7002);
    assert_eq!(l.config.maxclients, 5);
    assert_eq!(l.config.timeout_secs, 30);
}

#[test]
fn save_lines_append_after_the_first_and_empty_save_resets() {
    let l = load_file("save 900 1\nsave 300 10\n", &[]).expect("loads");
    assert_eq!(get1(&l.config, "save"), "900 1 300 10");
    let l = load_file("save 900 1\nsave \"\"\nsave 60 5\n", &[]).expect("loads");
    assert_eq!(get1(&l.config, "save"), "60 5");
    let l = load_file("save 900 1\n", &["--save", ""]).expect("loads");
    assert_eq!(get1(&l.config, "save"), "");
    let l = load(&args(&["--save", "60 1", "--port", "1"])).expect("loads");
    assert_eq!(
        get1(&l.config, "save"),
        "60 1",
        "a single argument is split again"
    );
    let l = load(&args(&["--save"])).expect("loads");
    assert_eq!(get1(&l.config, "save"), "");
}

#[test]
fn include_is_relative_to_the_working_directory_and_nests() {
    let d = tmpdir("include");
    let inner = write(&d, "inner.conf", "port 7100\nhz 20\n");
    let outer = write(
        &d,
        "outer.conf",
        &format!("port 1\ninclude {}\nhz 30\n", inner.display()),
    );
    let l = load(&args(&[&outer.to_string_lossy()])).expect("loads");
    assert_eq!(
        l.config.port, 7100,
        "the included file overrides earlier lines"
    );
    assert_eq!(l.config.hz, 30, "later lines override the included file");
}

#[test]
fn include_with_a_wildcard_loads_matching_files_in_order() {
    let d = tmpdir("include-glob");
    write(&d, "a-1.conf", "port 7201\n");
    write(&d, "a-2.conf", "port 7202\n");
    write(&d, "b.conf", "port 7300\n");
    let main = write(
        &d,
        "main.conf",
        &format!(
            "include {}/a-*.conf\ninclude {}/none-*.conf\n",
            d.display(),
            d.display()
        ),
    );
    let l = load(&args(&[&main.to_string_lossy()])).expect("loads");
    assert_eq!(l.config.port, 7202);
}

#[test]
fn include_loop_stops_with_a_clear_error() {
    let d = tmpdir("include-loop");
    let p = d.join("loop.conf");
    write(&d, "loop.conf", &format!("include {}\n", p.display()));
    let e = load(&args(&[&p.to_string_lossy()])).expect_err("loops");
    let (line, _, problem) = line_problem(e.clone());
    assert_eq!(line, 1);
    assert_eq!(problem, Problem::IncludeTooDeep);
    assert!(e.to_string().contains("include loop"), "{e}");
}

#[test]
fn deprecated_directives_are_accepted_like_redis() {
    load_file(
        "list-max-ziplist-entries 512\nlist-max-ziplist-value 64\n",
        &[],
    )
    .expect("loads");
    let e = load_file("list-max-ziplist-entries 1 2\n", &[]).expect_err("wrong arity");
    assert_eq!(line_problem(e).2, Problem::BadDirective);
}

// ---- Start-up errors ----

#[test]
fn unknown_directive_report_names_file_line_and_directive() {
    let e = load_file("port 7000\nfoo bar\n", &[]).expect_err("unknown");
    let text = e.to_string();
    let (line, directive, problem) = line_problem(e);
    assert_eq!(
        (line, directive.as_str(), problem),
        (2, "foo bar", Problem::BadDirective)
    );
    assert!(text.starts_with("*** FATAL CONFIG FILE ERROR ("), "{text}");
    assert!(
        text.contains(
            "redis.conf', at line 2\n>>> 'foo bar'\nBad directive or wrong number of arguments"
        ),
        "{text}"
    );
}

#[test]
fn value_errors_use_redis_texts() {
    let cases: &[(&str, &str)] = &[
        ("port abc", "argument couldn't be parsed into an integer"),
        ("port 1 2", "wrong number of arguments"),
        (
            "port 70000",
            "argument must be between 0 and 65535 inclusive",
        ),
        (
            "maxclients 0",
            "argument must be between 1 and 4294967295 inclusive",
        ),
        (
            "proto-max-bulk-len 1000",
            "argument must be between 1048576 and 9223372036854775807 inclusive",
        ),
        (
            "client-query-buffer-limit 1kb",
            "argument must be between 1048576 and 9223372036854775807 inclusive",
        ),
        (
            "timeout -1",
            "argument must be between 0 and 2147483647 inclusive",
        ),
        ("maxmemory 12x", "argument must be a memory value"),
        ("protected-mode maybe", "argument must be 'yes' or 'no'"),
        (
            "loglevel foo",
            "argument(s) must be one of the following: debug, verbose, notice, warning",
        ),
        ("save 60", "Invalid save parameters"),
        ("save 0 1", "Invalid save parameters"),
        (
            "bind 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17",
            "Too many bind addresses specified.",
        ),
        (
            "dbfilename a/b",
            "dbfilename can't be a path, just a filename",
        ),
        ("replicaof a", "wrong number of arguments"),
        ("replicaof a b", "Invalid master port"),
        (
            "unixsocketperm 8",
            "argument couldn't be parsed as an octal number",
        ),
        (
            "maxmemory-clients 5x",
            "argument must be a memory or percent value",
        ),
        (
            "client-output-buffer-limit master 1 2 3",
            "Invalid client class specified in buffer limit configuration.",
        ),
        (
            "client-output-buffer-limit normal 1 2",
            "Wrong number of arguments in buffer limit configuration.",
        ),
        (
            "client-output-buffer-limit normal 1x 2 3",
            "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
        ),
        (
            "sentinel foo",
            "sentinel directive while not in sentinel mode",
        ),
    ];
    for (line, msg) in cases {
        let e = load_file(&format!("{line}\n"), &[]).expect_err(line);
        let (n, text, problem) = line_problem(e);
        assert_eq!(n, 1);
        assert_eq!(&text, line);
        assert_eq!(problem, Problem::Invalid(msg.to_string()), "{line}");
    }
    let e = load_file("bind \"127.0.0.1\n", &[]).expect_err("quotes");
    assert_eq!(line_problem(e).2, Problem::UnbalancedQuotes);
    let e = load_file("include\n", &[]).expect_err("include arity");
    assert_eq!(line_problem(e).2, Problem::BadDirective);
}

#[test]
fn command_line_errors_name_the_option_line() {
    let e = load(&args(&["--port", "7000", "--bogus", "1"])).expect_err("bogus");
    let text = e.to_string();
    let (line, directive, problem) = line_problem(e);
    assert_eq!(
        (line, directive.as_str(), problem),
        (2, "bogus \"1\"", Problem::BadDirective)
    );
    assert!(
        text.contains("command-line options, at option line 2"),
        "{text}"
    );
}

#[test]
fn missing_file_and_stdin_are_errors() {
    let e = load(&args(&["/nonexistent/verdis.conf"])).expect_err("missing");
    assert_eq!(
        e.to_string(),
        "Fatal error, can't open config file '/nonexistent/verdis.conf': No such file or directory"
    );
    assert_eq!(
        load(&args(&["-"])).expect_err("stdin"),
        ConfigError::StdinUnsupported
    );
}

#[test]
fn refused_values_stop_start_up_naming_the_line_that_set_them() {
    let cases: &[(&str, &str)] = &[
        ("appendonly yes", "AOF"),
        ("maxmemory 100mb", "eviction"),
        ("maxmemory-clients 5%", "eviction"),
        ("cluster-enabled yes", "cluster"),
        ("tls-port 6380", "TLS"),
        ("aclfile /etc/redis/users.acl", "ACL"),
        ("user alice on >pw ~* +@all", "ACL"),
        ("rename-command CONFIG \"\"", "rename-command"),
        ("loadmodule /x.so", "modules"),
    ];
    for (line, why) in cases {
        let e = load_file(&format!("port 7000\n{line}\n"), &[]).expect_err(line);
        let text = e.to_string();
        let (n, directive, problem) = line_problem(e);
        assert_eq!((n, directive.as_str()), (2, *line));
        assert!(
            matches!(&problem, Problem::Refused(s) if s.contains(why)),
            "{line}: {problem}"
        );
        assert!(text.contains("Not supported by Verdis"), "{text}");
    }
}

#[test]
fn refused_value_overridden_later_is_accepted() {
    let l = load_file(
        "appendonly yes\nreplicaof a 1\n",
        &["--appendonly", "no", "--replicaof", "no", "one"],
    )
    .expect("final values are accepted");
    assert!(!l.config.appendonly);
    assert_eq!(l.config.replicaof, None);
}

#[test]
fn ignored_directives_warn_only_when_not_default() {
    let l = load_file(
        "activerehashing yes\nlazyfree-lazy-expire yes\nsupervised systemd\ndaemonize yes\n",
        &[],
    )
    .expect("loads");
    let w = l.warnings.join("\n");
    assert!(
        w.contains(
            "directive 'lazyfree-lazy-expire' is not implemented by Verdis and is ignored (value 'yes')"
        ),
        "{w}"
    );
    assert!(w.contains("'supervised'"), "{w}");
    assert!(w.contains("daemonize yes"), "{w}");
    assert!(!w.contains("activerehashing"), "{w}");
    assert_eq!(
        get1(&l.config, "lazyfree-lazy-expire"),
        "yes",
        "CONFIG GET returns the stored value"
    );
}

#[test]
fn stock_debian_redis_conf_loads() {
    let l = load(&args(&["tests/data/redis-7.0-debian.conf"])).expect("the Debian config loads");
    let c = &l.config;
    assert_eq!(c.port, 6379);
    assert_eq!(get1(c, "bind"), "127.0.0.1 -::1");
    assert!(c.daemonize);
    assert_eq!(c.pidfile.as_deref(), Some("/run/redis/redis-server.pid"));
    assert_eq!(c.logfile, "/var/log/redis/redis-server.log");
    assert_eq!(c.dir, "/var/lib/redis");
    assert!(
        c.save.is_empty(),
        "the Debian file leaves save commented out"
    );
    assert_eq!(
        get1(c, "client-output-buffer-limit"),
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
    );
    assert!(
        l.warnings.iter().any(|w| w.contains("daemonize")),
        "{:?}",
        l.warnings
    );
}

#[test]
fn redis_test_suite_default_conf_loads() {
    // The Redis test suite adds these to every server it starts.
    let l = load(&args(&[
        "tests/data/redis-7.0-test-default.conf",
        "--port",
        "21111",
        "--unixsocket",
        "/tmp/verdis-test.sock",
        "--unixsocketperm",
        "700",
    ]))
    .expect("the test-suite config loads");
    let c = &l.config;
    assert_eq!(c.port, 21111);
    assert_eq!(get1(c, "save"), "60 10000");
    assert_eq!(get1(c, "notify-keyspace-events"), "AKE");
    assert_eq!(get1(c, "unixsocketperm"), "700");
    assert_eq!(c.enable_debug_command, ProtectedAction::Yes);
    assert_eq!(c.loglevel, LogLevel::Verbose);
    assert_eq!(c.logfile, "");
    assert_eq!(c.dir, "./");
    let w = l.warnings.join("\n");
    assert!(
        w.contains("'notify-keyspace-events'") && w.contains("'unixsocket'"),
        "{w}"
    );
}

// ---- CONFIG GET ----

#[test]
fn config_get_renders_like_redis() {
    let l = load_file(
        "save 3600 1 300 100 60 10000\nmaxmemory-policy allkeys-lru\nclient-output-buffer-limit replica 1mb 2mb 3\nrepl-backlog-size 10mb\nreplica-read-only no\n",
        &[],
    )
    .expect("loads");
    let c = &l.config;
    assert_eq!(get1(c, "save"), "3600 1 300 100 60 10000");
    assert_eq!(get1(c, "repl-backlog-size"), "10485760");
    assert_eq!(get1(c, "protected-mode"), "yes");
    assert_eq!(get1(c, "slave-read-only"), "no");
    assert_eq!(get1(c, "maxmemory-policy"), "allkeys-lru");
    assert_eq!(
        get1(c, "client-output-buffer-limit"),
        "normal 0 0 0 slave 1048576 2097152 3 pubsub 33554432 8388608 60"
    );
    assert_eq!(get1(c, "requirepass"), "");
    assert_eq!(get1(c, "replicaof"), "");
}

#[test]
fn config_get_patterns_aliases_hidden_and_names_as_given() {
    let c = Config::default();
    let r = c.get(&[b"BIND"]);
    assert_eq!(r, vec![("BIND".to_string(), "127.0.0.1 -::1".to_string())]);
    let names: Vec<String> = c
        .get(&[b"*slave-read*"])
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, vec!["slave-read-only"]);
    let names: Vec<String> = c
        .get(&[b"REPLICA-READ*", b"replica-read-only", b"maxclients"])
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        vec!["replica-read-only", "maxclients"],
        "each entry once"
    );
    assert!(
        c.get(&[b"key-load-*"]).is_empty(),
        "hidden configs need an exact name"
    );
    assert_eq!(c.get(&[b"key-load-delay"]).len(), 1);
    assert!(c.get(&[b"nonexistent"]).is_empty());
    let both: Vec<String> = c
        .get(&[b"lua*", b"busy-reply-threshold"])
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(both, vec!["lua-time-limit", "busy-reply-threshold"]);
}

#[test]
fn get_one_reads_any_directive_by_name_or_alias() {
    let c = Config::default();
    assert_eq!(c.get_one("appendfsync").as_deref(), Some("everysec"));
    assert_eq!(c.get_one("SLAVE-PRIORITY").as_deref(), Some("100"));
    assert_eq!(c.get_one("key-load-delay").as_deref(), Some("0"));
    assert_eq!(c.get_one("nope"), None);
}

// ---- CONFIG SET ----

#[test]
fn config_set_errors_are_redis_texts() {
    let mut c = Config::default();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("foo", "bar")], "ERR Unknown option or number of arguments for CONFIG SET - 'foo'"),
        (&[("port", "abc")], "ERR CONFIG SET failed (possibly related to argument 'port') - argument couldn't be parsed into an integer"),
        (&[("databases", "3")], "ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config"),
        (&[("replicaof", "a 1")], "ERR CONFIG SET failed (possibly related to argument 'replicaof') - can't set immutable config"),
        (&[("dir", "/tmp")], "ERR CONFIG SET failed (possibly related to argument 'dir') - can't set protected config"),
        (&[("port", "1"), ("PORT", "2")], "ERR CONFIG SET failed (possibly related to argument 'PORT') - duplicate parameter"),
        (&[("maxclients", "0")], "ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument must be between 1 and 4294967295 inclusive"),
        (&[("loglevel", "foo")], "ERR CONFIG SET failed (possibly related to argument 'loglevel') - argument(s) must be one of the following: debug, verbose, notice, warning"),
        (&[("protected-mode", "maybe")], "ERR CONFIG SET failed (possibly related to argument 'protected-mode') - argument must be 'yes' or 'no'"),
        (&[("save", "1 2 3")], "ERR CONFIG SET failed (possibly related to argument 'save') - Invalid save parameters"),
        (&[("slave-priority", "-1")], "ERR CONFIG SET failed (possibly related to argument 'slave-priority') - argument must be between 0 and 2147483647 inclusive"),
        (&[("maxmemory-clients", "200%")], "ERR CONFIG SET failed (possibly related to argument 'maxmemory-clients') - percentage argument must be less or equal to 100"),
        (&[("cluster-announce-hostname", "a b")], "ERR CONFIG SET failed (possibly related to argument 'cluster-announce-hostname') - Hostnames may only contain alphanumeric characters, hyphens or dots"),
        (&[("proc-title-template", "{title}")], "ERR CONFIG SET failed (possibly related to argument 'proc-title-template') - template format is invalid or contains unknown variables"),
        (&[("proc-title-template", "{bogus} x")], "ERR CONFIG SET failed (possibly related to argument 'proc-title-template') - template format is invalid or contains unknown variables"),
        (&[("shutdown-on-sigint", "")], "ERR CONFIG SET failed (possibly related to argument 'shutdown-on-sigint') - argument(s) must be one of the following: default, save, nosave, now, force"),
        (&[("notify-keyspace-events", "Q")], "ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'."),
    ];
    for (pairs, msg) in cases {
        assert_eq!(set(&mut c, pairs).expect_err(msg), *msg);
    }
    assert_eq!(c, Config::default(), "failed CONFIG SETs change nothing");
}

#[test]
fn config_set_is_atomic_and_reports_changed_names() {
    let mut c = Config::default();
    assert!(set(
        &mut c,
        &[("port", "7000"), ("maxclients", "5"), ("hz", "x")]
    )
    .is_err());
    assert_eq!(c, Config::default(), "all or nothing");
    let changed = set(
        &mut c,
        &[
            ("port", "7000"),
            ("maxclients", "10000"),
            ("slave-read-only", "no"),
        ],
    )
    .expect("sets");
    assert_eq!(changed, vec!["port", "replica-read-only"]);
    assert_eq!(c.port, 7000);
    assert!(!c.replica_read_only);
}

#[test]
fn config_set_values_render_back_like_redis() {
    let mut c = Config::default();
    set(
        &mut c,
        &[
            ("maxmemory-policy", "ALLKEYS-LRU"),
            ("repl-backlog-size", "1GB"),
            ("hz", "1000"),
        ],
    )
    .expect("sets");
    assert_eq!(get1(&c, "maxmemory-policy"), "allkeys-lru");
    assert_eq!(get1(&c, "repl-backlog-size"), "1073741824");
    assert_eq!(get1(&c, "hz"), "500", "hz is clamped like Redis");
    set(&mut c, &[("hz", "0")]).expect("sets");
    assert_eq!(c.hz, 1);
    set(&mut c, &[("save", "10 1 20 2")]).expect("sets");
    assert_eq!(
        c.save,
        vec![
            SavePoint {
                seconds: 10,
                changes: 1
            },
            SavePoint {
                seconds: 20,
                changes: 2
            }
        ]
    );
    set(&mut c, &[("save", "")]).expect("sets");
    assert!(c.save.is_empty());
    set(
        &mut c,
        &[("client-output-buffer-limit", "replica 1mb 2mb 3")],
    )
    .expect("sets");
    assert_eq!(
        get1(&c, "client-output-buffer-limit"),
        "normal 0 0 0 slave 1048576 2097152 3 pubsub 33554432 8388608 60"
    );
    set(&mut c, &[("bind", "0.0.0.0 -::")]).expect("sets");
    assert_eq!(
        c.bind[1],
        BindAddr {
            addr: "::".into(),
            optional: true
        }
    );
    set(&mut c, &[("requirepass", "secret")]).expect("sets");
    assert_eq!(c.requirepass.as_deref(), Some("secret"));
    set(&mut c, &[("requirepass", "")]).expect("sets");
    assert_eq!(c.requirepass, None);
    set(
        &mut c,
        &[("maxmemory-clients", "5%"), ("maxmemory-clients", "0")],
    )
    .expect_err("duplicate");
    set(
        &mut c,
        &[("latency-tracking-info-percentiles", "50.0 99.00 99.9")],
    )
    .expect("sets");
    assert_eq!(get1(&c, "latency-tracking-info-percentiles"), "50 99 99.9");
    set(&mut c, &[("repl-backlog-size", "1")]).expect("sets");
    assert_eq!(
        c.repl_backlog_size, 16384,
        "CONFIG SET resizes to at least 16kb like Redis"
    );
    set(&mut c, &[("proc-title-template", "x {title} {port}")]).expect("sets");
    set(&mut c, &[("shutdown-on-sigint", "now save")]).expect("sets");
    assert_eq!(get1(&c, "shutdown-on-sigint"), "save now");
}

#[test]
fn config_set_refuses_what_verdis_cannot_honour() {
    let mut c = Config::default();
    let e = set(&mut c, &[("appendonly", "yes")]).expect_err("refused");
    assert!(e.starts_with("ERR CONFIG SET failed (possibly related to argument 'appendonly') - not supported by Verdis: AOF"), "{e}");
    let e = set(&mut c, &[("port", "7000"), ("maxmemory", "1gb")]).expect_err("refused");
    assert!(e.contains("'maxmemory'"), "{e}");
    assert_eq!(c, Config::default());
    set(&mut c, &[("maxmemory", "0"), ("appendonly", "no")]).expect("default values are fine");
}

#[test]
fn config_set_dir_requires_protected_configs_and_an_existing_directory() {
    let mut c = Config {
        enable_protected_configs: ProtectedAction::Local,
        ..Config::default()
    };
    let d = tmpdir("set-dir");
    let ds = d.to_string_lossy().into_owned();
    let p: &[(&[u8], &[u8])] = &[(b"dir", ds.as_bytes())];
    assert!(c.set_from(p, false).is_err(), "local only");
    assert_eq!(c.set_from(p, true), Ok(vec!["dir"]));
    assert_eq!(c.dir, ds);
    let missing = format!("{ds}/missing");
    let e = c
        .set_from(&[(b"dir", missing.as_bytes())], true)
        .expect_err("missing");
    assert_eq!(
        e,
        "ERR CONFIG SET failed (possibly related to argument 'dir') - No such file or directory"
    );
}

// ---- CONFIG REWRITE ----

#[test]
fn rewrite_updates_in_place_keeps_comments_and_appends_new_directives() {
    let d = tmpdir("rewrite");
    let original = "port 17780\nsave 60 1\nsave 300 2\n# comment\n\n\nslave-read-only no\nlua-time-limit 100\ninclude /dev/null\nbind 127.0.0.1\nrequirepass \"a b\"\nlist-max-ziplist-entries 5\n   maxclients 100   \nclient-output-buffer-limit pubsub 1 2 3\n";
    let path = write(&d, "redis.conf", original);
    let l = load(&args(&[&path.to_string_lossy()])).expect("loads");
    let mut c = l.config;
    set(
        &mut c,
        &[
            ("client-output-buffer-limit", "replica 1mb 2mb 3"),
            ("notify-keyspace-events", "KEA"),
            ("maxclients", "10000"),
            ("requirepass", ""),
            ("save", "60 1"),
        ],
    )
    .expect("sets");
    c.rewrite(&path).expect("rewrites");
    let cwd = std::env::current_dir()
        .expect("cwd")
        .to_string_lossy()
        .into_owned();
    let expected = format!(
        "port 17780\nsave 60 1\n\n# comment\n\nreplica-read-only no\nbusy-reply-threshold 100\n\
         include /dev/null\nbind 127.0.0.1\n\n# ??? list-max-ziplist-entries 5\nmaxclients 10000\n\
         client-output-buffer-limit normal 0 0 0\n\n# Generated by CONFIG REWRITE\n\
         client-output-buffer-limit replica 1mb 2mb 3\nclient-output-buffer-limit pubsub 1 2 3\n\
         dir \"{cwd}\"\nnotify-keyspace-events \"AKE\"\nlatency-tracking-info-percentiles 50 99 99.9\n"
    );
    let got = std::fs::read_to_string(&path).expect("read back");
    assert_eq!(got, expected);

    // The rewritten file loads back to the same configuration (dir aside, it is the cwd).
    let again = load(&args(&[&path.to_string_lossy()]))
        .expect("reloads")
        .config;
    let mut c2 = c.clone();
    c2.dir = again.dir.clone();
    assert_eq!(again, c2);

    // Like Redis, the second rewrite keeps the old final newline as a blank line; from then
    // on the file is stable.
    again.rewrite(&path).expect("rewrites");
    assert_eq!(
        std::fs::read_to_string(&path).expect("read back"),
        format!("{expected}\n")
    );
    again.rewrite(&path).expect("rewrites");
    assert_eq!(
        std::fs::read_to_string(&path).expect("read back"),
        format!("{expected}\n")
    );
}

#[test]
fn rewrite_of_a_missing_file_creates_it_and_errors_are_system_texts() {
    let d = tmpdir("rewrite-new");
    let p = d.join("new.conf");
    let mut c = Config::default();
    set(&mut c, &[("port", "7001")]).expect("sets");
    c.rewrite(&p).expect("creates");
    let got = std::fs::read_to_string(&p).expect("read");
    assert!(
        got.starts_with("# Generated by CONFIG REWRITE\nport 7001\n"),
        "{got}"
    );
    let e = c
        .rewrite(Path::new("/nonexistent-dir/x.conf"))
        .expect_err("no dir");
    assert_eq!(e, "No such file or directory");
}

// ---- Robustness ----

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn line_strategy() -> impl Strategy<Value = String> {
        let names: Vec<&'static str> = DIRECTIVES.iter().map(|s| s.name).collect();
        prop_oneof![
            (proptest::sample::select(names), "[ -~]{0,30}").prop_map(|(n, v)| format!("{n} {v}")),
            "[ -~\t\"'\\\\]{0,40}",
        ]
    }

    proptest! {
        /// Any config file either loads or is rejected with an error: never a panic.
        #[test]
        fn arbitrary_config_files_never_panic(lines in proptest::collection::vec(line_strategy(), 0..8)) {
            let _ = load_file(&lines.join("\n"), &[]);
        }

        /// CONFIG SET with arbitrary values either applies or changes nothing.
        #[test]
        fn config_set_is_all_or_nothing(
            picks in proptest::collection::vec((0..DIRECTIVES.len(), "[ -~]{0,20}"), 1..4),
        ) {
            let mut c = Config::default();
            let pairs: Vec<(&[u8], &[u8])> = picks
                .iter()
                .map(|(i, v)| (DIRECTIVES[*i].name.as_bytes(), v.as_bytes()))
                .collect();
            let before = c.clone();
            if c.set(&pairs).is_err() {
                prop_assert_eq!(c, before);
            }
        }

        /// Every value CONFIG GET renders is accepted back by CONFIG SET (when mutable).
        #[test]
        fn rendered_values_parse_back(i in 0..DIRECTIVES.len()) {
            let spec = &DIRECTIVES[i];
            prop_assume!(!spec.has(super::super::directives::IMMUTABLE)
                && !spec.has(super::super::directives::PROTECTED));
            let mut c = Config::default();
            let v = c.value(spec);
            let r = c.set(&[(spec.name.as_bytes(), v.as_bytes())]);
            prop_assert!(r.is_ok(), "{}: {:?}", spec.name, r);
            prop_assert_eq!(c, Config::default());
        }
    }
}

#[test]
fn fatal_error_report_is_exact() {
    let e = ConfigError::Line {
        origin: Origin::File(PathBuf::from("/etc/verdis/verdis.conf")),
        line: 12,
        text: "foo bar".to_string(),
        problem: Problem::BadDirective,
    };
    assert_eq!(
        e.to_string(),
        format!(
            "*** FATAL CONFIG FILE ERROR (Verdis {}, Redis 7.0.15) ***\n\
             Reading the configuration file '/etc/verdis/verdis.conf', at line 12\n\
             >>> 'foo bar'\n\
             Bad directive or wrong number of arguments",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn errors_in_an_included_file_name_that_file_and_its_line() {
    let d = tmpdir("include-error");
    let inner = write(&d, "inner.conf", "# inner\nhz 10\nbogus-directive yes\n");
    let outer = write(
        &d,
        "outer.conf",
        &format!("port 7000\ninclude {}\n", inner.display()),
    );
    let e = load(&args(&[&outer.to_string_lossy()])).expect_err("bogus");
    match e {
        ConfigError::Line {
            origin,
            line,
            text,
            problem,
        } => {
            assert_eq!(origin, Origin::File(inner));
            assert_eq!((line, text.as_str()), (3, "bogus-directive yes"));
            assert_eq!(problem, Problem::BadDirective);
        }
        other => panic!("expected a line error, got {other:?}"),
    }
    let missing = write(&d, "missing.conf", "include /nonexistent/x.conf\n");
    let e = load(&args(&[&missing.to_string_lossy()])).expect_err("missing include");
    assert!(
        matches!(e, ConfigError::Open { ref path, .. } if path == Path::new("/nonexistent/x.conf")),
        "{e:?}"
    );
}
