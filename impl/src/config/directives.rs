//! The table of every Redis 7.0 configuration directive: its name and alias, how its value is
//! parsed and rendered ([`Kind`]), where Verdis keeps it ([`Slot`]), its default, and whether
//! Verdis implements, ignores or refuses it ([`Support`]).
//!
//! The table is the single source of truth: `Config::default()` is built by applying every
//! default below, CONFIG GET/SET/REWRITE and the config-file loader all dispatch through it.

use super::{Config, LogLevel, MaxmemoryPolicy, ProtectedAction, ReplDisklessLoad};

/// CONFIG SET refuses these (Redis `IMMUTABLE_CONFIG`).
pub(crate) const IMMUTABLE: u8 = 1;
/// Only an exact CONFIG GET name returns these, never a pattern (Redis `HIDDEN_CONFIG`).
pub(crate) const HIDDEN: u8 = 2;
/// The directive takes several arguments; CONFIG SET splits its value on spaces.
pub(crate) const MULTI_ARG: u8 = 4;
/// CONFIG SET refuses these unless `enable-protected-configs` allows it (Redis 7.0).
pub(crate) const PROTECTED: u8 = 8;

/// How a directive's arguments are parsed, validated and rendered.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    /// `yes` / `no`.
    Bool,
    /// A decimal integer (Redis `string2ll`) within `min..=max`.
    Int { min: i128, max: i128 },
    /// An octal integer within `min..=max` (unixsocketperm).
    Octal { min: i128, max: i128 },
    /// A memory value (`1k`, `1kb`, `1gb`, ...) within `min..=max`, rendered in bytes.
    Mem { min: i128, max: i128 },
    /// A memory value or a percentage `N%` with `N <= max_percent` (maxmemory-clients).
    MemOrPercent { max_percent: i128, max: i128 },
    /// One of the names (case-insensitive), rendered in lower case.
    Enum(&'static [&'static str]),
    /// Any set of the names, given as several arguments (shutdown-on-sig*).
    Flags(&'static [&'static str]),
    /// A string, with an optional extra check.
    Str(StrCheck),
    /// `save <seconds> <changes> [...]`, `save ""`.
    Save,
    /// `bind addr [addr ...]`, `-` prefix for optional addresses.
    Bind,
    /// `client-output-buffer-limit <class> <hard> <soft> <seconds> [...]`.
    ClientOutputBufferLimit,
    /// `replicaof <host> <port>` or `replicaof no one`.
    ReplicaOf,
    /// `dir <path>`.
    Dir,
    /// `notify-keyspace-events <flags>`.
    NotifyKeyspaceEvents,
    /// `oom-score-adj-values <replica> <master> <bg-child>`.
    OomScoreAdjValues,
    /// `latency-tracking-info-percentiles <p> [...]`.
    LatencyPercentiles,
}

/// Extra validation of a string directive, with Redis's error texts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum StrCheck {
    None,
    /// Refuses values containing `/` with the message (dbfilename, appendfilename, ...).
    NoSlash(&'static str),
    /// Letters, digits, `-` and `.` only (cluster-announce-hostname).
    Hostname,
    /// A valid `proc-title-template`.
    ProcTitle,
}

/// Where Verdis keeps the value.
#[derive(Clone, Copy)]
pub(crate) enum Slot {
    /// Not used by Verdis: kept as its rendered value in `Config::other`.
    Stored,
    Bool(fn(&Config) -> bool, fn(&mut Config, bool)),
    /// Numeric fields; the table's range guarantees the value fits the field's type.
    Int(fn(&Config) -> i128, fn(&mut Config, i128)),
    /// Strings and enums (the setter receives a validated, lower-case enum name).
    Str(fn(&Config) -> String, fn(&mut Config, String)),
    /// Handled by dedicated code keyed on `Kind` (save, bind, limits, replicaof, dir).
    Special,
}

/// What Verdis does with the directive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Support {
    /// Implemented, or stored typed for the subsystem that will use it.
    Native,
    /// Accepted and stored; a non-default value logs a warning at start.
    Ignored,
    /// Only the rendered value `.0` is accepted; any other value is refused because
    /// ignoring it would change durability, safety or semantics (`.1` says why).
    OnlyValue(&'static str, &'static str),
}

/// One configuration directive.
pub(crate) struct Spec {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    pub flags: u8,
    pub kind: Kind,
    pub slot: Slot,
    /// The default, in config-file syntax (one argument; multi-argument kinds split on spaces).
    pub default: &'static str,
    pub support: Support,
}

impl Spec {
    pub(crate) fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

const INT_MAX: i128 = i32::MAX as i128;
const INT_MIN: i128 = i32::MIN as i128;
const UINT_MAX: i128 = u32::MAX as i128;
const LONG_MAX: i128 = i64::MAX as i128;
const ULLONG_MAX: i128 = u64::MAX as i128;
const MB: i128 = 1024 * 1024;

const YES_NO_LOCAL: &[&str] = &["no", "yes", "local"];

const AOF: &str = "AOF persistence is not implemented by Verdis yet, so it cannot give \
                   the durability that appendonly yes asks for";
const NO_EVICTION: &str = "memory limits and eviction are not implemented by Verdis yet, \
                           so it cannot enforce the memory bound this setting asks for";
const NO_CLUSTER: &str = "cluster mode is not implemented by Verdis";
const NO_TLS: &str = "TLS is not implemented by Verdis, and ignoring this setting would send \
                      in clear text what it asks to encrypt";
const NO_ACL: &str = "ACL users and ACL files are not implemented by Verdis yet, and \
                      ignoring them would accept clients without the configured access rules";

macro_rules! bool_field {
    ($f:ident) => {
        Slot::Bool(|c| c.$f, |c, v| c.$f = v)
    };
}
// The setter's `as` is safe: the table's range for the directive fits the field's type,
// and `native_numeric_fields_round_trip_their_limits` checks it.
macro_rules! int_field {
    ($f:ident, $t:ty) => {
        Slot::Int(|c| c.$f as i128, |c, v| c.$f = v as $t)
    };
}
macro_rules! str_field {
    ($f:ident) => {
        Slot::Str(|c| c.$f.clone(), |c, v| c.$f = v)
    };
}
macro_rules! opt_str_field {
    ($f:ident) => {
        Slot::Str(
            |c| c.$f.clone().unwrap_or_default(),
            |c, v| c.$f = if v.is_empty() { None } else { Some(v) },
        )
    };
}
macro_rules! enum_field {
    ($f:ident, $t:ty) => {
        Slot::Str(
            |c| c.$f.name().to_string(),
            |c, v| {
                if let Some(e) = <$t>::from_name(&v) {
                    c.$f = e;
                }
            },
        )
    };
}

macro_rules! spec {
    ($name:expr, $alias:expr, $flags:expr, $kind:expr, $slot:expr, $default:expr, $support:expr) => {
        Spec {
            name: $name,
            alias: $alias,
            flags: $flags,
            kind: $kind,
            slot: $slot,
            default: $default,
            support: $support,
        }
    };
}

use Kind::*;
use Support::*;

const fn int(min: i128, max: i128) -> Kind {
    Int { min, max }
}
const fn mem(min: i128, max: i128) -> Kind {
    Mem { min, max }
}
const STR: Kind = Str(StrCheck::None);

/// Every Redis 7.0.15 directive (as `CONFIG GET *` lists them, plus the hidden ones).
#[rustfmt::skip]
pub(crate) static DIRECTIVES: &[Spec] = &[
    // ---- Network and clients (implemented).
    spec!("port", None, 0, int(0, 65535), int_field!(port, u16), "6379", Native),
    spec!("bind", None, MULTI_ARG, Bind, Slot::Special, "127.0.0.1 -::1", Native),
    spec!("protected-mode", None, 0, Bool, bool_field!(protected_mode), "yes", Native),
    spec!("requirepass", None, 0, STR, opt_str_field!(requirepass), "", Native),
    spec!("maxclients", None, 0, int(1, UINT_MAX), int_field!(maxclients, u32), "10000", Native),
    spec!("proto-max-bulk-len", None, 0, mem(MB, LONG_MAX), int_field!(proto_max_bulk_len, u64), "536870912", Native),
    spec!("client-query-buffer-limit", None, 0, mem(MB, LONG_MAX), int_field!(client_query_buffer_limit, u64), "1073741824", Native),
    spec!("timeout", None, 0, int(0, INT_MAX), int_field!(timeout_secs, u32), "0", Native),
    spec!("tcp-keepalive", None, 0, int(0, INT_MAX), int_field!(tcp_keepalive_secs, u32), "300", Native),
    spec!("tcp-backlog", None, IMMUTABLE, int(0, INT_MAX), int_field!(tcp_backlog, u32), "511", Native),
    spec!("client-output-buffer-limit", None, MULTI_ARG, ClientOutputBufferLimit, Slot::Special, "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60", Native),
    spec!("databases", None, IMMUTABLE, int(1, INT_MAX), int_field!(databases, u32), "16", Native),
    spec!("hz", None, 0, int(0, INT_MAX), int_field!(hz, u32), "10", Native),
    spec!("active-expire-effort", None, 0, int(1, 10), int_field!(active_expire_effort, u8), "1", Native),
    spec!("enable-debug-command", None, IMMUTABLE, Enum(YES_NO_LOCAL), enum_field!(enable_debug_command, ProtectedAction), "no", Native),
    spec!("enable-protected-configs", None, IMMUTABLE, Enum(YES_NO_LOCAL), enum_field!(enable_protected_configs, ProtectedAction), "no", Native),
    // ---- Logging and process (implemented; daemonize yes stays in the foreground).
    spec!("loglevel", None, 0, Enum(&["debug", "verbose", "notice", "warning"]), enum_field!(loglevel, LogLevel), "notice", Native),
    spec!("logfile", None, IMMUTABLE, STR, str_field!(logfile), "", Native),
    // Verdis's own: one JSON line per replication protocol transition, for conformance checks.
    spec!("verdis-protocol-trace", None, IMMUTABLE, STR, str_field!(protocol_trace_file), "", Native),
    spec!("pidfile", None, IMMUTABLE, STR, opt_str_field!(pidfile), "", Native),
    spec!("daemonize", None, IMMUTABLE, Bool, bool_field!(daemonize), "no", Native),
    // ---- Persistence (RDB settings stored for the persistence code; AOF refused).
    spec!("dir", None, PROTECTED, Dir, Slot::Special, "", Native),
    spec!("dbfilename", None, PROTECTED, Str(StrCheck::NoSlash("dbfilename can't be a path, just a filename")), str_field!(dbfilename), "dump.rdb", Native),
    spec!("save", None, MULTI_ARG, Save, Slot::Special, "", Native),
    spec!("rdbcompression", None, 0, Bool, bool_field!(rdbcompression), "yes", Native),
    spec!("rdbchecksum", None, IMMUTABLE, Bool, bool_field!(rdbchecksum), "yes", Native),
    spec!("appendonly", None, 0, Bool, bool_field!(appendonly), "no", OnlyValue("no", AOF)),
    // ---- Memory (no eviction yet: only the unlimited setting is accepted).
    spec!("maxmemory", None, 0, mem(0, ULLONG_MAX), int_field!(maxmemory, u64), "0", OnlyValue("0", NO_EVICTION)),
    spec!("maxmemory-policy", None, 0, Enum(MaxmemoryPolicy::NAMES), enum_field!(maxmemory_policy, MaxmemoryPolicy), "noeviction", Native),
    spec!("maxmemory-clients", None, 0, MemOrPercent { max_percent: 100, max: i64::MAX as i128 }, Slot::Stored, "0", OnlyValue("0", NO_EVICTION)),
    // ---- Replication (stored typed for the replication code).
    spec!("replicaof", Some("slaveof"), IMMUTABLE | MULTI_ARG, ReplicaOf, Slot::Special, "no one", Native),
    spec!("masterauth", None, 0, STR, opt_str_field!(masterauth), "", Native),
    spec!("masteruser", None, 0, STR, opt_str_field!(masteruser), "", Native),
    spec!("repl-backlog-size", None, 0, mem(1, LONG_MAX), int_field!(repl_backlog_size, u64), "1048576", Native),
    spec!("repl-backlog-ttl", None, 0, int(0, LONG_MAX), int_field!(repl_backlog_ttl_secs, u64), "3600", Native),
    spec!("repl-timeout", None, 0, int(1, INT_MAX), int_field!(repl_timeout_secs, u32), "60", Native),
    spec!("repl-ping-replica-period", Some("repl-ping-slave-period"), 0, int(1, INT_MAX), int_field!(repl_ping_replica_period_secs, u32), "10", Native),
    spec!("repl-diskless-sync", None, 0, Bool, bool_field!(repl_diskless_sync), "yes", Native),
    spec!("repl-diskless-sync-delay", None, 0, int(0, INT_MAX), int_field!(repl_diskless_sync_delay_secs, u32), "5", Native),
    spec!("repl-diskless-sync-max-replicas", None, 0, int(0, INT_MAX), int_field!(repl_diskless_sync_max_replicas, u32), "0", Native),
    spec!("repl-diskless-load", None, 0, Enum(ReplDisklessLoad::NAMES), enum_field!(repl_diskless_load, ReplDisklessLoad), "disabled", Native),
    spec!("repl-disable-tcp-nodelay", None, 0, Bool, bool_field!(repl_disable_tcp_nodelay), "no", Native),
    spec!("min-replicas-to-write", Some("min-slaves-to-write"), 0, int(0, INT_MAX), int_field!(min_replicas_to_write, u32), "0", Native),
    spec!("min-replicas-max-lag", Some("min-slaves-max-lag"), 0, int(0, INT_MAX), int_field!(min_replicas_max_lag_secs, u32), "10", Native),
    spec!("replica-read-only", Some("slave-read-only"), 0, Bool, bool_field!(replica_read_only), "yes", Native),
    spec!("replica-serve-stale-data", Some("slave-serve-stale-data"), 0, Bool, bool_field!(replica_serve_stale_data), "yes", Native),
    spec!("replica-priority", Some("slave-priority"), 0, int(0, INT_MAX), int_field!(replica_priority, u32), "100", Native),
    spec!("replica-announce-ip", Some("slave-announce-ip"), 0, STR, opt_str_field!(replica_announce_ip), "", Native),
    spec!("replica-announce-port", Some("slave-announce-port"), 0, int(0, 65535), int_field!(replica_announce_port, u16), "0", Native),
    spec!("replica-announced", None, 0, Bool, bool_field!(replica_announced), "yes", Native),
    spec!("replica-lazy-flush", Some("slave-lazy-flush"), 0, Bool, Slot::Stored, "no", Ignored),
    spec!("replica-ignore-maxmemory", Some("slave-ignore-maxmemory"), 0, Bool, Slot::Stored, "yes", Ignored),
    spec!("replica-ignore-disk-write-errors", None, 0, Bool, Slot::Stored, "no", Ignored),
    spec!("bind-source-addr", None, 0, STR, Slot::Stored, "", Ignored),
    // ---- Cluster (not implemented: only cluster-enabled no).
    spec!("cluster-enabled", None, IMMUTABLE, Bool, bool_field!(cluster_enabled), "no", OnlyValue("no", NO_CLUSTER)),
    spec!("cluster-config-file", None, IMMUTABLE, STR, Slot::Stored, "nodes.conf", Ignored),
    spec!("cluster-node-timeout", None, 0, int(0, LONG_MAX), Slot::Stored, "15000", Ignored),
    spec!("cluster-port", None, IMMUTABLE, int(0, 65535), Slot::Stored, "0", Ignored),
    spec!("cluster-announce-ip", None, 0, STR, Slot::Stored, "", Ignored),
    spec!("cluster-announce-hostname", None, 0, Str(StrCheck::Hostname), Slot::Stored, "", Ignored),
    spec!("cluster-announce-port", None, 0, int(0, 65535), Slot::Stored, "0", Ignored),
    spec!("cluster-announce-bus-port", None, 0, int(0, 65535), Slot::Stored, "0", Ignored),
    spec!("cluster-announce-tls-port", None, 0, int(0, 65535), Slot::Stored, "0", Ignored),
    spec!("cluster-replica-validity-factor", Some("cluster-slave-validity-factor"), 0, int(0, INT_MAX), Slot::Stored, "10", Ignored),
    spec!("cluster-replica-no-failover", Some("cluster-slave-no-failover"), 0, Bool, Slot::Stored, "no", Ignored),
    spec!("cluster-migration-barrier", None, 0, int(0, INT_MAX), Slot::Stored, "1", Ignored),
    spec!("cluster-allow-replica-migration", None, 0, Bool, Slot::Stored, "yes", Ignored),
    spec!("cluster-require-full-coverage", None, 0, Bool, Slot::Stored, "yes", Ignored),
    spec!("cluster-allow-reads-when-down", None, 0, Bool, Slot::Stored, "no", Ignored),
    spec!("cluster-allow-pubsubshard-when-down", None, 0, Bool, Slot::Stored, "yes", Ignored),
    spec!("cluster-link-sendbuf-limit", None, 0, mem(0, ULLONG_MAX), Slot::Stored, "0", Ignored),
    spec!("cluster-preferred-endpoint-type", None, 0, Enum(&["ip", "hostname", "unknown-endpoint"]), Slot::Stored, "ip", Ignored),
    // ---- Security.
    spec!("aclfile", None, IMMUTABLE, STR, Slot::Stored, "", OnlyValue("", NO_ACL)),
    spec!("acllog-max-len", None, 0, int(0, LONG_MAX), Slot::Stored, "128", Ignored),
    spec!("acl-pubsub-default", None, 0, Enum(&["allchannels", "resetchannels"]), Slot::Stored, "resetchannels", Ignored),
    spec!("enable-module-command", None, IMMUTABLE, Enum(YES_NO_LOCAL), Slot::Stored, "no", Ignored),
    // ---- TLS (not implemented: no TLS listener, no TLS links).
    spec!("tls-port", None, 0, int(0, 65535), Slot::Stored, "0", OnlyValue("0", NO_TLS)),
    spec!("tls-replication", None, 0, Bool, Slot::Stored, "no", OnlyValue("no", NO_TLS)),
    spec!("tls-cluster", None, 0, Bool, Slot::Stored, "no", OnlyValue("no", NO_TLS)),
    spec!("tls-auth-clients", None, 0, Enum(&["no", "yes", "optional"]), Slot::Stored, "yes", Ignored),
    spec!("tls-prefer-server-ciphers", None, 0, Bool, Slot::Stored, "no", Ignored),
    spec!("tls-session-caching", None, 0, Bool, Slot::Stored, "yes", Ignored),
    spec!("tls-session-cache-size", None, 0, int(0, INT_MAX), Slot::Stored, "20480", Ignored),
    spec!("tls-session-cache-timeout", None, 0, int(0, INT_MAX), Slot::Stored, "300", Ignored),
    spec!("tls-cert-file", None, 0, STR, Slot::Stored, "", Ignored),
    spec!("tls-key-file", None, 0, STR, Slot::Stored, "", Ignored),
    spec!("tls-key-file-pass", None, 0, STR, Slot::Stored, "", Ignored),
    spec!("tls-client-cert-file", None, 0, STR, Slot::Stored, "", Ignored),
    spec!("tls-client-key-file", None, 0, STR, Slot::Stored, "", Ignored),
    spec!("tls-client-key-file-pass", None, 0, STR, Slot::Stored, "", Ignored),
    spec!("tls-dh-params-file", None, 0, STR, Slot::Stored, "", Ignored),
    spec!("tls-ca-cert-file", None, 0, STR, Slot::Stored, "", Ignored),
    spec!("tls-ca-cert-dir", None, 0, STR, Slot::Stored, "", Ignored),
    spec!("tls-protocols", None, 0, STR, Slot::Stored, "", Ignored),
    spec!("tls-ciphers", None, 0, STR, Slot::Stored, "", Ignored),
    spec!("tls-ciphersuites", None, 0, STR, Slot::Stored, "", Ignored),
    // ---- Process, logging and OS integration (ignored).
    spec!("supervised", None, IMMUTABLE, Enum(&["upstart", "systemd", "auto", "no"]), Slot::Stored, "no", Ignored),
    spec!("always-show-logo", None, IMMUTABLE, Bool, Slot::Stored, "no", Ignored),
    spec!("set-proc-title", None, IMMUTABLE, Bool, Slot::Stored, "yes", Ignored),
    spec!("proc-title-template", None, 0, Str(StrCheck::ProcTitle), Slot::Stored, "{title} {listen-addr} {server-mode}", Ignored),
    spec!("syslog-enabled", None, IMMUTABLE, Bool, Slot::Stored, "no", Ignored),
    spec!("syslog-ident", None, IMMUTABLE, STR, Slot::Stored, "redis", Ignored),
    spec!("syslog-facility", None, IMMUTABLE, Enum(&["user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"]), Slot::Stored, "local0", Ignored),
    spec!("unixsocket", None, IMMUTABLE, STR, Slot::Stored, "", Ignored),
    spec!("unixsocketperm", None, IMMUTABLE, Octal { min: 0, max: 0o777 }, Slot::Stored, "0", Ignored),
    spec!("socket-mark-id", None, IMMUTABLE, int(0, UINT_MAX), Slot::Stored, "0", Ignored),
    spec!("oom-score-adj", None, 0, Enum(&["no", "yes", "relative", "absolute"]), Slot::Stored, "no", Ignored),
    spec!("oom-score-adj-values", None, MULTI_ARG, OomScoreAdjValues, Slot::Stored, "0 200 800", Ignored),
    spec!("disable-thp", None, IMMUTABLE, Bool, Slot::Stored, "yes", Ignored),
    spec!("jemalloc-bg-thread", None, 0, Bool, Slot::Stored, "yes", Ignored),
    spec!("crash-log-enabled", None, 0, Bool, Slot::Stored, "yes", Ignored),
    spec!("crash-memcheck-enabled", None, 0, Bool, Slot::Stored, "yes", Ignored),
    // The number of threads that serve connections (the tokio workers).
    spec!("io-threads", None, IMMUTABLE, int(1, 128), Slot::Stored, "1", Native),
    spec!("io-threads-do-reads", None, IMMUTABLE, Bool, Slot::Stored, "no", Ignored),
    spec!("server_cpulist", None, IMMUTABLE, STR, Slot::Stored, "", Ignored),
    spec!("bio_cpulist", None, IMMUTABLE, STR, Slot::Stored, "", Ignored),
    spec!("aof_rewrite_cpulist", None, IMMUTABLE, STR, Slot::Stored, "", Ignored),
    spec!("bgsave_cpulist", None, IMMUTABLE, STR, Slot::Stored, "", Ignored),
    spec!("ignore-warnings", None, 0, STR, Slot::Stored, "", Ignored),
    spec!("shutdown-on-sigint", None, MULTI_ARG, Flags(&["default", "save", "nosave", "now", "force"]), Slot::Stored, "default", Ignored),
    spec!("shutdown-on-sigterm", None, MULTI_ARG, Flags(&["default", "save", "nosave", "now", "force"]), Slot::Stored, "default", Ignored),
    spec!("shutdown-timeout", None, 0, int(0, INT_MAX), Slot::Stored, "10", Ignored),
    spec!("dynamic-hz", None, 0, Bool, Slot::Stored, "yes", Ignored),
    spec!("activerehashing", None, 0, Bool, Slot::Stored, "yes", Ignored),
    spec!("activedefrag", None, 0, Bool, Slot::Stored, "no", Ignored),
    spec!("active-defrag-cycle-min", None, 0, int(1, 99), Slot::Stored, "1", Ignored),
    spec!("active-defrag-cycle-max", None, 0, int(1, 99), Slot::Stored, "25", Ignored),
    spec!("active-defrag-threshold-lower", None, 0, int(0, 1000), Slot::Stored, "10", Ignored),
    spec!("active-defrag-threshold-upper", None, 0, int(0, 1000), Slot::Stored, "100", Ignored),
    spec!("active-defrag-ignore-bytes", None, 0, mem(1, LONG_MAX), Slot::Stored, "104857600", Ignored),
    spec!("active-defrag-max-scan-fields", None, 0, int(1, LONG_MAX), Slot::Stored, "1000", Ignored),
    // ---- Persistence details (ignored: RDB/AOF tuning).
    spec!("stop-writes-on-bgsave-error", None, 0, Bool, Slot::Stored, "yes", Ignored),
    spec!("rdb-del-sync-files", None, 0, Bool, Slot::Stored, "no", Ignored),
    spec!("rdb-save-incremental-fsync", None, 0, Bool, Slot::Stored, "yes", Ignored),
    spec!("appendfilename", None, IMMUTABLE, Str(StrCheck::NoSlash("appendfilename can't be a path, just a filename")), Slot::Stored, "appendonly.aof", Ignored),
    spec!("appenddirname", None, IMMUTABLE, Str(StrCheck::NoSlash("appenddirname can't be a path, just a dirname")), Slot::Stored, "appendonlydir", Ignored),
    spec!("appendfsync", None, 0, Enum(&["everysec", "always", "no"]), Slot::Stored, "everysec", Ignored),
    spec!("no-appendfsync-on-rewrite", None, 0, Bool, Slot::Stored, "no", Ignored),
    spec!("auto-aof-rewrite-percentage", None, 0, int(0, INT_MAX), Slot::Stored, "100", Ignored),
    spec!("auto-aof-rewrite-min-size", None, 0, mem(0, LONG_MAX), Slot::Stored, "67108864", Ignored),
    spec!("aof-load-truncated", None, 0, Bool, Slot::Stored, "yes", Ignored),
    spec!("aof-use-rdb-preamble", None, 0, Bool, Slot::Stored, "yes", Ignored),
    spec!("aof-timestamp-enabled", None, 0, Bool, Slot::Stored, "no", Ignored),
    spec!("aof-rewrite-incremental-fsync", None, 0, Bool, Slot::Stored, "yes", Ignored),
    spec!("aof-disable-auto-gc", None, 0, Bool, Slot::Stored, "no", Ignored),
    spec!("sanitize-dump-payload", None, 0, Enum(&["no", "yes", "clients"]), Slot::Stored, "no", Ignored),
    // ---- Memory tuning and encodings (ignored).
    spec!("maxmemory-samples", None, 0, int(1, INT_MAX), Slot::Stored, "5", Ignored),
    spec!("maxmemory-eviction-tenacity", None, 0, int(0, 100), Slot::Stored, "10", Ignored),
    spec!("lazyfree-lazy-eviction", None, 0, Bool, Slot::Stored, "no", Ignored),
    spec!("lazyfree-lazy-expire", None, 0, Bool, Slot::Stored, "no", Ignored),
    spec!("lazyfree-lazy-server-del", None, 0, Bool, Slot::Stored, "no", Ignored),
    spec!("lazyfree-lazy-user-del", None, 0, Bool, Slot::Stored, "no", Ignored),
    spec!("lazyfree-lazy-user-flush", None, 0, Bool, Slot::Stored, "no", Ignored),
    spec!("lfu-log-factor", None, 0, int(0, INT_MAX), Slot::Stored, "10", Ignored),
    spec!("lfu-decay-time", None, 0, int(0, INT_MAX), Slot::Stored, "1", Ignored),
    spec!("hash-max-listpack-entries", Some("hash-max-ziplist-entries"), 0, int(0, LONG_MAX), Slot::Stored, "512", Ignored),
    spec!("hash-max-listpack-value", Some("hash-max-ziplist-value"), 0, mem(0, LONG_MAX), Slot::Stored, "64", Ignored),
    spec!("list-max-listpack-size", Some("list-max-ziplist-size"), 0, int(INT_MIN, INT_MAX), Slot::Stored, "-2", Ignored),
    spec!("list-compress-depth", None, 0, int(0, INT_MAX), Slot::Stored, "0", Ignored),
    spec!("set-max-intset-entries", None, 0, int(0, LONG_MAX), Slot::Stored, "512", Ignored),
    spec!("zset-max-listpack-entries", Some("zset-max-ziplist-entries"), 0, int(0, LONG_MAX), Slot::Stored, "128", Ignored),
    spec!("zset-max-listpack-value", Some("zset-max-ziplist-value"), 0, mem(0, LONG_MAX), Slot::Stored, "64", Ignored),
    spec!("hll-sparse-max-bytes", None, 0, mem(0, LONG_MAX), Slot::Stored, "3000", Ignored),
    spec!("stream-node-max-bytes", None, 0, mem(0, LONG_MAX), Slot::Stored, "4096", Ignored),
    spec!("stream-node-max-entries", None, 0, int(0, LONG_MAX), Slot::Stored, "100", Ignored),
    spec!("tracking-table-max-keys", None, 0, int(0, LONG_MAX), Slot::Stored, "1000000", Ignored),
    // ---- Diagnostics and scripting (ignored).
    spec!("notify-keyspace-events", None, 0, NotifyKeyspaceEvents, Slot::Stored, "", Ignored),
    spec!("slowlog-log-slower-than", None, 0, int(-1, LONG_MAX), Slot::Stored, "10000", Ignored),
    spec!("slowlog-max-len", None, 0, int(0, LONG_MAX), Slot::Stored, "128", Ignored),
    spec!("latency-monitor-threshold", None, 0, int(0, LONG_MAX), Slot::Stored, "0", Ignored),
    spec!("latency-tracking", None, 0, Bool, Slot::Stored, "yes", Ignored),
    spec!("latency-tracking-info-percentiles", None, MULTI_ARG, LatencyPercentiles, Slot::Stored, "50 99 99.9", Ignored),
    spec!("busy-reply-threshold", Some("lua-time-limit"), 0, int(0, LONG_MAX), Slot::Stored, "5000", Ignored),
    spec!("propagation-error-behavior", None, 0, Enum(&["ignore", "panic", "panic-on-replicas"]), Slot::Stored, "ignore", Ignored),
    // ---- Hidden (test and debugging knobs, exact-name CONFIG GET only).
    spec!("key-load-delay", None, HIDDEN, int(INT_MIN, INT_MAX), Slot::Stored, "0", Ignored),
    spec!("rdb-key-save-delay", None, HIDDEN, int(INT_MIN, INT_MAX), Slot::Stored, "0", Ignored),
    spec!("loading-process-events-interval-bytes", None, HIDDEN, int(1024, INT_MAX), Slot::Stored, "2097152", Ignored),
    spec!("watchdog-period", None, HIDDEN, int(0, INT_MAX), Slot::Stored, "0", Ignored),
    spec!("use-exit-on-panic", None, HIDDEN, Bool, Slot::Stored, "no", Ignored),
];

/// Redis 7.0 accepts these with exactly `argc` words (directive included) and discards them.
pub(crate) const DEPRECATED: &[(&str, usize)] = &[
    ("list-max-ziplist-entries", 2),
    ("list-max-ziplist-value", 2),
    ("lua-replicate-commands", 2),
];

/// Looks a directive up by name or alias (case-insensitive). The bool is true for an alias.
pub(crate) fn lookup(name: &[u8]) -> Option<(&'static Spec, bool)> {
    DIRECTIVES.iter().find_map(|s| {
        if s.name.as_bytes().eq_ignore_ascii_case(name) {
            Some((s, false))
        } else if s
            .alias
            .is_some_and(|a| a.as_bytes().eq_ignore_ascii_case(name))
        {
            Some((s, true))
        } else {
            None
        }
    })
}
