//! Byte-exact replies, with redis-server 7.0.15 as the oracle: every script below is sent to
//! a fresh Verdis and a fresh redis-server, and the reply bytes must be identical. Scripts are
//! deterministic (no TIME, INFO, ids, random keys, unordered key lists); the families cover
//! every command of the server foundation, their error texts, RESP3, and inline requests.

use std::time::Duration;
use verdis_tests::Server;

/// (name, commands). Each command is an inline line; `\r\n` is added.
const SCRIPTS: &[(&str, &[&str])] = &[
    (
        "connection",
        &[
            "PING",
            "PING hello",
            "PING a b",
            "ECHO hi",
            "ECHO",
            "SELECT 1",
            "SELECT 16",
            "SELECT -1",
            "SELECT abc",
            "SELECT 0",
            "AUTH x",
            "AUTH a b",
            "AUTH default anything",
            "HELLO 4",
            "HELLO abc",
            "HELLO 2 SETNAME",
            "HELLO 2 FOO",
            "CLIENT SETNAME my-name",
            "CLIENT GETNAME",
            "CLIENT SETNAME \"a b\"",
            "CLIENT SETNAME \"\"",
            "CLIENT GETNAME",
            "CLIENT FOO",
            "CLIENT",
            "RESET",
            "NOSUCHCMD a b",
            "nosuchcmd",
        ],
    ),
    (
        "strings-set-get",
        &[
            "SET k v",
            "GET k",
            "GET nokey",
            "GET",
            "GET a b",
            "SET k",
            "SET k v XX",
            "SET k2 v XX",
            "GET k2",
            "SET k v NX",
            "SET k2 v2 NX",
            "SET k v NX XX",
            "SET k v EX 0",
            "SET k v EX -1",
            "SET k v EX abc",
            "SET k v PX 9223372036854775807",
            "SET k v EX 100 PX 100",
            "SET k v KEEPTTL EX 10",
            "SET k v BADOPT",
            "SET k v GET",
            "SET k w GET",
            "GET k",
            "SET k x NX GET",
            "SET nk x XX GET",
            "SETNX k v",
            "SETNX fresh v",
            "GET fresh",
            "SETEX k 0 v",
            "SETEX k abc v",
            "SETEX k 100 v",
            "PSETEX k 0 v",
            "PSETEX k 100000 v2",
            "GET k",
            "GETSET k new",
            "GETSET nokey2 x",
            "GETDEL k",
            "GETDEL k",
            "GET k",
            "MSET a 1 b 2 c 3",
            "MGET a b c nokey",
            "MSET a",
            "MSET a 1 b",
            "MSETNX a 1 z 2",
            "MSETNX y 1 z 2",
            "MGET y z",
            "STRLEN a",
            "STRLEN nokey",
            "APPEND a 23",
            "APPEND newk hello",
            "GET a",
            "GET newk",
            "APPEND",
        ],
    ),
    (
        "strings-counters",
        &[
            "INCR c",
            "INCR c",
            "DECR c",
            "INCRBY c 10",
            "DECRBY c 3",
            "INCRBY c abc",
            "INCRBY c 1.5",
            "GET c",
            "SET big 9223372036854775807",
            "INCR big",
            "SET small -9223372036854775808",
            "DECR small",
            "DECRBY c -9223372036854775808",
            "SET s hello",
            "INCR s",
            "SET sp \" 1\"",
            "INCR sp",
            "INCRBYFLOAT f 10.5",
            "INCRBYFLOAT f 0.25",
            "INCRBYFLOAT f -1.75",
            "GET f",
            "INCRBYFLOAT f abc",
            "INCRBYFLOAT s 1",
            "SET f2 3.0",
            "INCRBYFLOAT f2 2",
            "INCRBYFLOAT f3 5.0e3",
            "INCR n1",
            "OBJECT ENCODING n1",
        ],
    ),
    (
        "strings-ranges",
        &[
            "SET s \"Hello World\"",
            "GETRANGE s 0 4",
            "GETRANGE s -5 -1",
            "GETRANGE s 0 -1",
            "GETRANGE s 5 2",
            "GETRANGE s -1 -5",
            "GETRANGE s 0 100",
            "GETRANGE s 100 200",
            "GETRANGE nokey 0 1",
            "GETRANGE s a b",
            "SUBSTR s 0 2",
            "SETRANGE s 6 Redis",
            "GET s",
            "SETRANGE s -1 x",
            "SETRANGE nokey 0 \"\"",
            "EXISTS nokey",
            "SETRANGE pad 5 x",
            "GET pad",
            "SETRANGE s 536870912 x",
            "SETRANGE s 1 \"\"",
            "LCS s pad",
            "SET a ohmytext",
            "SET b mynewtext",
            "LCS a b",
            "LCS a b LEN",
            "LCS a b FOO",
        ],
    ),
    (
        "keys",
        &[
            "SET a 1",
            "SET b 2",
            "DEL a b nokey",
            "DEL a",
            "SET a 1",
            "UNLINK a",
            "SET a 1",
            "EXISTS a a nokey",
            "TYPE a",
            "TYPE nokey",
            "RENAME a b",
            "GET b",
            "RENAME nokey x",
            "RENAME b b",
            "SET c 3",
            "RENAMENX b c",
            "RENAMENX b d",
            "RENAMENX nokey d",
            "GET d",
            "DBSIZE",
            "DBSIZE x",
            "FLUSHDB",
            "DBSIZE",
            "FLUSHDB x",
            "FLUSHDB ASYNC",
            "FLUSHALL SYNC",
            "FLUSHALL x",
            "RANDOMKEY",
            "KEYS",
            "KEYS *",
            "SET only 1",
            "KEYS *",
            "KEYS on*",
            "KEYS x*",
            "RANDOMKEY",
            "SCAN abc",
            "SCAN 0 COUNT 0",
            "SCAN 0 COUNT x",
            "SCAN 0 TYPE",
            "SCAN 0 MATCH",
            "SCAN 0 FOO bar",
            "SCAN 0",
            "SCAN 0 TYPE string",
            "SCAN 0 TYPE list",
            "SCAN 0 MATCH o*",
            "OBJECT ENCODING only",
            "OBJECT ENCODING nokey",
            "SET long 123456789012345678901",
            "OBJECT ENCODING long",
            "SET emb aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "OBJECT ENCODING emb",
            "SET raw aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "OBJECT ENCODING raw",
            "OBJECT FOO",
            "OBJECT",
            "OBJECT REFCOUNT only",
            "TOUCH only nokey",
            "COPY only only2",
            "GET only2",
            "COPY only only2",
            "COPY only only2 REPLACE",
            "COPY only only DB 0",
            "COPY only x DB 99",
            "MOVE only 1",
            "MOVE only 1",
            "SELECT 1",
            "GET only",
            "MOVE only 1",
            "MOVE only 99",
            "SELECT 0",
            "SWAPDB 0 1",
            "GET only",
            "SWAPDB 0 99",
            "SWAPDB a 1",
        ],
    ),
    (
        "expiry",
        &[
            "SET k v",
            "TTL k",
            "PTTL k",
            "EXPIRETIME k",
            "PEXPIRETIME k",
            "TTL nokey",
            "PTTL nokey",
            "EXPIRETIME nokey",
            "EXPIRE nokey 10",
            "EXPIRE k abc",
            "EXPIRE k 10 nx xx",
            "EXPIRE k 10 gt lt",
            "EXPIRE k 10 foo",
            "EXPIRE k 100 XX",
            "EXPIRE k 100 GT",
            "EXPIRE k 100 LT",
            "TTL k",
            "EXPIRE k 50 NX",
            "EXPIRE k 200 GT",
            "TTL k",
            "EXPIRE k 300 LT",
            "EXPIRE k 100 LT",
            "TTL k",
            "PERSIST k",
            "PERSIST k",
            "PERSIST nokey",
            "TTL k",
            "EXPIREAT k 4102444800",
            "EXPIRETIME k",
            "PEXPIREAT k 4102444800000",
            "PEXPIRETIME k",
            "EXPIRE k 9223372036854775807",
            "PEXPIRE k 9223372036854775807",
            "EXPIRE k -1",
            "EXISTS k",
            "SET k v",
            "PEXPIRE k 0",
            "EXISTS k",
            "SET k v EX 100",
            "TTL k",
            "SET k v KEEPTTL",
            "TTL k",
            "SET k v",
            "TTL k",
            "SET k v PXAT 4102444800000",
            "PEXPIRETIME k",
            "SET k v EXAT 4102444800",
            "EXPIRETIME k",
            "GETEX k",
            "GETEX k PERSIST",
            "TTL k",
            "GETEX k EX 100",
            "TTL k",
            "GETEX k PX 0",
            "GETEX k EXAT 4102444800 PERSIST",
            "GETEX nokey PERSIST",
            "GETEX k EX 1 PX 1",
            "GETEX k FOO",
            "GETEX k EXAT 1",
            "EXISTS k",
        ],
    ),
    (
        "transactions",
        &[
            "MULTI",
            "MULTI",
            "SET a 1",
            "INCR a",
            "GET a",
            "EXEC",
            "EXEC",
            "DISCARD",
            "MULTI",
            "WATCH x",
            "EXEC",
            "MULTI",
            "GET",
            "SET a 2",
            "EXEC",
            "GET a",
            "MULTI",
            "SET a b",
            "INCR a",
            "EXEC",
            "MULTI",
            "DISCARD",
            "WATCH a",
            "SET a changed",
            "MULTI",
            "GET a",
            "EXEC",
            "WATCH a",
            "UNWATCH",
            "SET a again",
            "MULTI",
            "GET a",
            "EXEC",
            "WATCH a b",
            "MULTI",
            "PING",
            "EXEC",
            "MULTI",
            "NOSUCH",
            "EXEC",
            "WATCH",
            "UNWATCH x",
        ],
    ),
    (
        "resp3",
        &[
            "HELLO 3",
            "GET nokey",
            "SET a 1",
            "MGET a nokey",
            "CONFIG GET maxclients",
            "INCRBYFLOAT f 1.5",
            "MULTI",
            "SET w 1",
            "EXEC",
            "WATCH w",
            "SET w 2",
            "MULTI",
            "EXEC",
            "HELLO 2",
            "GET nokey",
        ],
    ),
    (
        "config",
        &[
            "CONFIG GET maxclients",
            "CONFIG GET timeout",
            "CONFIG GET databases",
            "CONFIG GET save",
            "CONFIG GET appendonly",
            "CONFIG GET proto-max-bulk-len",
            "CONFIG GET nosuch",
            "CONFIG GET",
            "CONFIG SET foo bar",
            "CONFIG SET timeout abc",
            "CONFIG SET timeout 10",
            "CONFIG GET timeout",
            "CONFIG SET timeout 0",
            "CONFIG SET databases 4",
            "CONFIG SET timeout",
            "CONFIG RESETSTAT",
            "CONFIG FOO",
        ],
    ),
    (
        "server",
        &[
            "LASTSAVE x",
            "TIME x",
            "DEBUG FOO",
            "DEBUG",
            "SHUTDOWN FOO",
            "SET foo bar",
            "DEBUG DIGEST",
            "DEBUG DIGEST-VALUE foo nokey",
            "EXPIRE foo 1000",
            "DEBUG DIGEST",
            "SELECT 5",
            "SET other 12",
            "DEBUG DIGEST",
            "FLUSHALL",
            "DEBUG DIGEST",
            "COMMAND FOO",
            "INFO nosuchsection",
        ],
    ),
];

fn run(server: &Server, lines: &[&str]) -> Vec<u8> {
    let mut c = server.conn();
    let mut input = Vec::new();
    for l in lines {
        input.extend_from_slice(l.as_bytes());
        input.extend_from_slice(b"\r\n");
    }
    c.send_raw(&input);
    c.read_raw_frames(lines.len())
}

/// Replaces the client id in a HELLO reply (`$2 id :<n>`), which differs between servers.
fn normalize(mut b: Vec<u8>) -> Vec<u8> {
    let pat = b"$2\r\nid\r\n:";
    let mut i = 0;
    while i + pat.len() <= b.len() {
        if &b[i..i + pat.len()] == pat {
            let start = i + pat.len();
            let mut end = start;
            while end < b.len() && b[end].is_ascii_digit() {
                end += 1;
            }
            b.splice(start..end, *b"N");
        }
        i += 1;
    }
    b
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace("\r\n", "\\r\\n\n")
}

#[test]
fn every_script_gets_the_same_reply_bytes_as_redis_7_0() {
    let verdis = Server::verdis(&[]);
    let redis = Server::redis(&[]);
    let mut failures = Vec::new();
    for (name, lines) in SCRIPTS {
        for s in [&verdis, &redis] {
            s.conn().cmd(&["FLUSHALL"]);
        }
        let got = normalize(run(&verdis, lines));
        let want = normalize(run(&redis, lines));
        if got != want {
            // Find the first differing reply for the message.
            let mut at = 0;
            while at < got.len().min(want.len()) && got[at] == want[at] {
                at += 1;
            }
            let from = at.saturating_sub(200);
            failures.push(format!(
                "script {name}: replies differ at byte {at}\n--- verdis:\n{}\n--- redis:\n{}",
                show(&got[from..got.len().min(at + 200)]),
                show(&want[from..want.len().min(at + 200)])
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Malformed requests: the same error bytes as Redis, and the connection closed after them.
#[test]
fn malformed_requests_get_redis_errors_and_close_the_connection() {
    let verdis = Server::verdis(&[]);
    let redis = Server::redis(&[]);
    let cases: &[&[u8]] = &[
        b"*abc\r\n",
        b"*3000000000\r\n",
        b"*1\r\n+foo\r\n",
        b"*1\r\n$-5\r\n",
        b"*1\r\n$x\r\n",
        b"*1\r\n$600000000\r\n",
        b"SET \"a b\r\n",
        b"PING\r\n*1\r\n$4\r\nPING\r\n*2\r\n:1\r\n",
        b"*2\r\n$4\r\nECHO\r\n$3\r\nabc\r\n*x\r\n",
    ];
    for case in cases {
        let mut got = verdis.conn();
        let mut want = redis.conn();
        let g = got.raw_exchange(case, Duration::from_millis(300));
        let w = want.raw_exchange(case, Duration::from_millis(300));
        assert_eq!(
            show(&g),
            show(&w),
            "input {:?}",
            String::from_utf8_lossy(case)
        );
        assert!(
            got.is_closed(Duration::from_secs(2)),
            "verdis kept the connection open"
        );
        assert!(want.is_closed(Duration::from_secs(2)));
    }
    // And the server keeps serving others.
    assert_eq!(verdis_tests::text(&verdis.conn().cmd(&["PING"])), "PONG");
}
