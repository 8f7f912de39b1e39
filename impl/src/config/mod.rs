//! Server configuration: redis.conf and command-line parsing at start-up, and the
//! CONFIG GET / SET / REWRITE semantics of Redis 7.0.
//!
//! This module owns the typed [`Config`], its defaults, the validation of every limit (done
//! once, here, whether a value comes from a file, the command line or CONFIG SET), and the
//! classification of every Redis 7.0 directive (see `directives.rs`):
//!
//! - **Native**: implemented by Verdis, or stored typed for the subsystem that will use it
//!   (the replication directives).
//! - **Ignored**: harmless to ignore (tuning, encodings, OS integration, TLS file names...).
//!   Accepted, stored, shown by CONFIG GET; a value other than the default yields a start-up
//!   warning "directive 'X' is not implemented by Verdis and is ignored".
//! - **Refused unless default**: ignoring a non-default value would change durability, safety
//!   or semantics, so start-up stops with a message saying why: `appendonly yes`, non-zero
//!   `maxmemory` / `maxmemory-clients`, `replicaof`, `min-replicas-to-write` > 0,
//!   `cluster-enabled yes`, `tls-port` / `tls-replication` / `tls-cluster`, `aclfile`, and the
//!   `user`, `rename-command` and `loadmodule` directives. CONFIG SET refuses them the same way.
//!
//! Unknown directives stop start-up with Redis's "Bad directive or wrong number of arguments",
//! naming the file and line.
//!
//! Deliberate differences from redis-server 7.0:
//! - `save` defaults to `""` (no snapshots) even without a config file: Verdis persists nothing
//!   unless configured. Redis defaults to `3600 1 300 100 60 10000`.
//! - `bind` defaults to `127.0.0.1 -::1` (the stock redis.conf value) rather than `* -::*`.
//! - `daemonize yes` is accepted with a warning: Verdis stays in the foreground (as under
//!   systemd, which is how Debian runs redis-server), still writing `pidfile` if set.
//! - `dir` is not checked or entered while loading: the server changes into it after loading;
//!   CONFIG SET dir checks that the directory exists and the server changes into it.
//! - String values must be UTF-8. Error messages name the file as well as the line.
//! - `include` guards against loops with a nesting limit; a wildcard is honoured in the last
//!   path component only.
//! - The caller handles `-v`, `--version`, `-h` and `--help`; reading the config from stdin
//!   (`-`) is not supported.

mod directives;
mod load;
mod parse;
mod rewrite;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use directives::{Kind, Slot, Spec, Support, DIRECTIVES, HIDDEN, IMMUTABLE, MULTI_ARG, PROTECTED};
use parse::Parsed;

pub use load::load;

/// CONFIG SET repl-backlog-size never goes below this (Redis `CONFIG_REPL_BACKLOG_MIN_SIZE`).
pub const REPL_BACKLOG_MIN_BYTES: u64 = 16 * 1024;

/// `loglevel`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Debug,
    Verbose,
    Notice,
    Warning,
}

/// `maxmemory-policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MaxmemoryPolicy {
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
    AllkeysLru,
    AllkeysLfu,
    AllkeysRandom,
    NoEviction,
}

/// `repl-diskless-load`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReplDisklessLoad {
    Disabled,
    OnEmptyDb,
    Swapdb,
}

/// `enable-debug-command`, `enable-protected-configs`: never, always, or from loopback only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProtectedAction {
    No,
    Yes,
    Local,
}

macro_rules! named_enum {
    ($t:ty, [$(($name:literal, $v:expr)),* $(,)?]) => {
        impl $t {
            /// The names Redis accepts, in its order.
            pub const NAMES: &'static [&'static str] = &[$($name),*];
            /// The Redis name of this value.
            pub fn name(self) -> &'static str {
                match self { $(v if v == $v => $name,)* _ => unreachable!("every variant is named") }
            }
            /// Parses a name (case-insensitive).
            pub fn from_name(s: &str) -> Option<Self> {
                $(if s.eq_ignore_ascii_case($name) { return Some($v); })*
                None
            }
        }
    };
}

named_enum!(
    LogLevel,
    [
        ("debug", LogLevel::Debug),
        ("verbose", LogLevel::Verbose),
        ("notice", LogLevel::Notice),
        ("warning", LogLevel::Warning)
    ]
);
named_enum!(
    MaxmemoryPolicy,
    [
        ("volatile-lru", MaxmemoryPolicy::VolatileLru),
        ("volatile-lfu", MaxmemoryPolicy::VolatileLfu),
        ("volatile-random", MaxmemoryPolicy::VolatileRandom),
        ("volatile-ttl", MaxmemoryPolicy::VolatileTtl),
        ("allkeys-lru", MaxmemoryPolicy::AllkeysLru),
        ("allkeys-lfu", MaxmemoryPolicy::AllkeysLfu),
        ("allkeys-random", MaxmemoryPolicy::AllkeysRandom),
        ("noeviction", MaxmemoryPolicy::NoEviction)
    ]
);
named_enum!(
    ReplDisklessLoad,
    [
        ("disabled", ReplDisklessLoad::Disabled),
        ("on-empty-db", ReplDisklessLoad::OnEmptyDb),
        ("swapdb", ReplDisklessLoad::Swapdb)
    ]
);
named_enum!(
    ProtectedAction,
    [
        ("no", ProtectedAction::No),
        ("yes", ProtectedAction::Yes),
        ("local", ProtectedAction::Local)
    ]
);

/// One `save <seconds> <changes>` point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SavePoint {
    pub seconds: u64,
    pub changes: u64,
}

/// One `bind` address; `optional` (written `-addr`) means failing to bind it is not fatal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BindAddr {
    pub addr: String,
    pub optional: bool,
}

/// `replicaof <host> <port>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReplicaOf {
    pub host: String,
    pub port: u16,
}

/// Client classes of `client-output-buffer-limit` (`slave` is an alias of `replica`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObufClass {
    Normal,
    Replica,
    Pubsub,
}

impl ObufClass {
    fn from_name(s: &[u8]) -> Option<Self> {
        let eq = |n: &str| s.eq_ignore_ascii_case(n.as_bytes());
        if eq("normal") {
            Some(Self::Normal)
        } else if eq("replica") || eq("slave") {
            Some(Self::Replica)
        } else if eq("pubsub") {
            Some(Self::Pubsub)
        } else {
            None
        }
    }
}

/// An output buffer limit: disconnect at `hard_bytes`, or after `soft_secs` above
/// `soft_bytes`. Zero disables a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ObufLimit {
    pub hard_bytes: u64,
    pub soft_bytes: u64,
    pub soft_secs: u64,
}

/// `client-output-buffer-limit` for the three client classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientOutputBufferLimits {
    pub normal: ObufLimit,
    pub replica: ObufLimit,
    pub pubsub: ObufLimit,
}

impl ClientOutputBufferLimits {
    /// The limit of one class.
    pub fn get(&self, class: ObufClass) -> ObufLimit {
        match class {
            ObufClass::Normal => self.normal,
            ObufClass::Replica => self.replica,
            ObufClass::Pubsub => self.pubsub,
        }
    }

    fn set(&mut self, class: ObufClass, limit: ObufLimit) {
        match class {
            ObufClass::Normal => self.normal = limit,
            ObufClass::Replica => self.replica = limit,
            ObufClass::Pubsub => self.pubsub = limit,
        }
    }
}

/// The server configuration. Every field is validated against Redis's limits; build one with
/// [`load`] or `Config::default()` and change it with [`Config::set`].
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub port: u16,
    pub bind: Vec<BindAddr>,
    pub protected_mode: bool,
    /// `None` when no password is required.
    pub requirepass: Option<String>,
    pub maxclients: u32,
    pub proto_max_bulk_len: u64,
    pub client_query_buffer_limit: u64,
    /// Idle client timeout; 0 disables it.
    pub timeout_secs: u32,
    pub tcp_keepalive_secs: u32,
    pub tcp_backlog: u32,
    pub client_output_buffer_limit: ClientOutputBufferLimits,
    pub databases: u32,
    /// Background task frequency, clamped to 1..=500 like Redis.
    pub hz: u32,
    /// 1..=10.
    pub active_expire_effort: u8,
    pub enable_debug_command: ProtectedAction,
    pub enable_protected_configs: ProtectedAction,
    pub loglevel: LogLevel,
    /// Empty means standard output.
    pub logfile: String,
    /// `verdis-protocol-trace`: where the replication trace goes ("" = off).
    pub protocol_trace_file: String,
    pub pidfile: Option<String>,
    /// Accepted, but Verdis never detaches (see the module doc).
    pub daemonize: bool,
    /// The working directory requested by `dir`; empty means "where the server started".
    /// The server changes into it after loading and after CONFIG SET dir.
    pub dir: String,
    pub dbfilename: String,
    pub save: Vec<SavePoint>,
    pub rdbcompression: bool,
    pub rdbchecksum: bool,
    /// Always false once validated (AOF is not implemented).
    pub appendonly: bool,
    /// Always 0 once validated (eviction is not implemented).
    pub maxmemory: u64,
    pub maxmemory_policy: MaxmemoryPolicy,
    /// Always `None` once validated, until replication lands.
    pub replicaof: Option<ReplicaOf>,
    pub masterauth: Option<String>,
    pub masteruser: Option<String>,
    pub repl_backlog_size: u64,
    pub repl_backlog_ttl_secs: u64,
    pub repl_timeout_secs: u32,
    pub repl_ping_replica_period_secs: u32,
    pub repl_diskless_sync: bool,
    pub repl_diskless_sync_delay_secs: u32,
    pub repl_diskless_sync_max_replicas: u32,
    pub repl_diskless_load: ReplDisklessLoad,
    pub repl_disable_tcp_nodelay: bool,
    pub min_replicas_to_write: u32,
    pub min_replicas_max_lag_secs: u32,
    pub replica_read_only: bool,
    pub replica_serve_stale_data: bool,
    pub replica_priority: u32,
    pub replica_announce_ip: Option<String>,
    pub replica_announce_port: u16,
    pub replica_announced: bool,
    /// Always false once validated.
    pub cluster_enabled: bool,
    /// Directives Verdis accepts but does not use, by canonical name, as CONFIG GET renders them.
    other: BTreeMap<&'static str, String>,
}

impl Default for Config {
    /// Redis 7.0's defaults, except `save ""` and `bind 127.0.0.1 -::1` (see the module doc).
    fn default() -> Self {
        let zero = ObufLimit {
            hard_bytes: 0,
            soft_bytes: 0,
            soft_secs: 0,
        };
        let mut c = Config {
            port: 0,
            bind: Vec::new(),
            protected_mode: false,
            requirepass: None,
            maxclients: 0,
            proto_max_bulk_len: 0,
            client_query_buffer_limit: 0,
            timeout_secs: 0,
            tcp_keepalive_secs: 0,
            tcp_backlog: 0,
            client_output_buffer_limit: ClientOutputBufferLimits {
                normal: zero,
                replica: zero,
                pubsub: zero,
            },
            databases: 0,
            hz: 0,
            active_expire_effort: 0,
            enable_debug_command: ProtectedAction::No,
            enable_protected_configs: ProtectedAction::No,
            loglevel: LogLevel::Notice,
            logfile: String::new(),
            protocol_trace_file: String::new(),
            pidfile: None,
            daemonize: false,
            dir: String::new(),
            dbfilename: String::new(),
            save: Vec::new(),
            rdbcompression: false,
            rdbchecksum: false,
            appendonly: false,
            maxmemory: 0,
            maxmemory_policy: MaxmemoryPolicy::NoEviction,
            replicaof: None,
            masterauth: None,
            masteruser: None,
            repl_backlog_size: 0,
            repl_backlog_ttl_secs: 0,
            repl_timeout_secs: 0,
            repl_ping_replica_period_secs: 0,
            repl_diskless_sync: false,
            repl_diskless_sync_delay_secs: 0,
            repl_diskless_sync_max_replicas: 0,
            repl_diskless_load: ReplDisklessLoad::Disabled,
            repl_disable_tcp_nodelay: false,
            min_replicas_to_write: 0,
            min_replicas_max_lag_secs: 0,
            replica_read_only: false,
            replica_serve_stale_data: false,
            replica_priority: 0,
            replica_announce_ip: None,
            replica_announce_port: 0,
            replica_announced: false,
            cluster_enabled: false,
            other: BTreeMap::new(),
        };
        // The table is the single source of defaults; a default it cannot parse is a bug in
        // the table, caught by every test.
        for spec in DIRECTIVES {
            let words: Vec<&[u8]> = default_words(spec);
            let parsed = parse::parse_value(spec.kind, &words);
            match parsed {
                Ok(v) => c.store(spec, v, StoreMode::Replace),
                Err(e) => panic!("bad default for {}: {e}", spec.name),
            }
        }
        c
    }
}

/// The default of a directive as arguments.
fn default_words(spec: &Spec) -> Vec<&'static [u8]> {
    if spec.has(MULTI_ARG) && !spec.default.is_empty() {
        spec.default.split(' ').map(str::as_bytes).collect()
    } else {
        vec![spec.default.as_bytes()]
    }
}

/// How a multi-argument value combines with the current one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StoreMode {
    /// CONFIG SET and defaults: the new value replaces the old one.
    Replace,
    /// A `save` line after the first one in config files appends to it (Redis 7.0).
    AppendSave,
}

/// One CONFIG SET target: the directive, the name its errors use, the new value.
type SetTarget<'a> = (&'static Spec, &'static str, &'a [u8]);

/// Where a configuration line came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    CommandLine,
}

/// Why a configuration line was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Not a Redis directive, or a special directive with the wrong number of arguments.
    BadDirective,
    UnbalancedQuotes,
    /// The value does not validate; the text is Redis's.
    Invalid(String),
    /// A Redis directive or value Verdis refuses; the text says why.
    Refused(String),
    /// `include` nested deeper than [`load::INCLUDE_DEPTH_MAX`].
    IncludeTooDeep,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::BadDirective => f.write_str("Bad directive or wrong number of arguments"),
            Problem::UnbalancedQuotes => f.write_str("Unbalanced quotes in configuration line"),
            Problem::Invalid(s) => f.write_str(s),
            Problem::Refused(s) => write!(f, "Not supported by Verdis: {s}"),
            Problem::IncludeTooDeep => write!(
                f,
                "include nested more than {} levels deep (is there an include loop?)",
                load::INCLUDE_DEPTH_MAX
            ),
        }
    }
}

/// A start-up configuration error. Display renders Redis's fatal config error report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// A line of a config file or of the command-line options was rejected.
    Line {
        origin: Origin,
        line: u32,
        text: String,
        problem: Problem,
    },
    /// A config file (or included file) could not be read.
    Open { path: PathBuf, reason: String },
    /// `-` (read the config from stdin) was given.
    StdinUnsupported,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Line {
                origin,
                line,
                text,
                problem,
            } => {
                writeln!(
                    f,
                    "*** FATAL CONFIG FILE ERROR (Verdis {}, Redis {}) ***",
                    crate::VERDIS_VERSION,
                    crate::REDIS_VERSION
                )?;
                match origin {
                    Origin::File(p) => writeln!(
                        f,
                        "Reading the configuration file '{}', at line {line}",
                        p.display()
                    )?,
                    Origin::CommandLine => {
                        writeln!(f, "Reading the command-line options, at option line {line}")?
                    }
                }
                writeln!(f, ">>> '{text}'")?;
                write!(f, "{problem}")
            }
            ConfigError::Open { path, reason } => {
                write!(
                    f,
                    "Fatal error, can't open config file '{}': {reason}",
                    path.display()
                )
            }
            ConfigError::StdinUnsupported => {
                f.write_str("Reading the configuration from standard input ('-') is not supported")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// The result of [`load`].
#[derive(Clone, Debug)]
pub struct Loaded {
    pub config: Config,
    /// The config file, made absolute (CONFIG REWRITE needs it after the server changes `dir`).
    pub config_file: Option<PathBuf>,
    /// Start-up warnings to log (ignored directives, `daemonize yes`).
    pub warnings: Vec<String>,
}

impl Config {
    /// CONFIG GET with one or more glob patterns (Redis 7.0): `(name, value)` pairs rendered as
    /// Redis renders them. A name without `*`, `?` or `[` is looked up exactly
    /// (case-insensitive, hidden directives included) and answered under the name as given;
    /// patterns match names and aliases case-insensitively. Each entry appears once.
    pub fn get(&self, patterns: &[&[u8]]) -> Vec<(String, String)> {
        let mut seen: Vec<(*const Spec, bool)> = Vec::new();
        let mut out = Vec::new();
        for pattern in patterns {
            if !pattern.iter().any(|c| matches!(c, b'*' | b'?' | b'[')) {
                if let Some((spec, alias)) = directives::lookup(pattern) {
                    if !seen.contains(&(spec as *const Spec, alias)) {
                        seen.push((spec, alias));
                        out.push((
                            String::from_utf8_lossy(pattern).into_owned(),
                            self.value(spec),
                        ));
                    }
                }
                continue;
            }
            for spec in DIRECTIVES.iter().filter(|s| !s.has(HIDDEN)) {
                let names =
                    std::iter::once((spec.name, false)).chain(spec.alias.map(|a| (a, true)));
                for (name, alias) in names {
                    let key = (spec as *const Spec, alias);
                    if !seen.contains(&key)
                        && crate::glob::glob_match(pattern, name.as_bytes(), true)
                    {
                        seen.push(key);
                        out.push((name.to_string(), self.value(spec)));
                    }
                }
            }
        }
        out
    }

    /// The CONFIG GET rendering of one directive by exact name or alias (case-insensitive),
    /// hidden ones included; for INFO fields and for directives without a typed field.
    pub fn get_one(&self, name: &str) -> Option<String> {
        directives::lookup(name.as_bytes()).map(|(spec, _)| self.value(spec))
    }

    /// CONFIG SET from a client that is not on a loopback connection; see [`Config::set_from`].
    pub fn set(&mut self, pairs: &[(&[u8], &[u8])]) -> Result<Vec<&'static str>, String> {
        self.set_from(pairs, false)
    }

    /// CONFIG SET name value [name value ...], atomic like Redis 7.0: every value is validated
    /// and applied to a copy, which replaces `self` only if all succeed. `local` says whether
    /// the client is on a loopback connection (for `enable-protected-configs local`).
    /// Returns the canonical names whose value changed, for the server to react to (`port`,
    /// `bind`, `maxclients`, `dir`, `loglevel`, ...). Errors are Redis's texts with `ERR `.
    pub fn set_from(
        &mut self,
        pairs: &[(&[u8], &[u8])],
        local: bool,
    ) -> Result<Vec<&'static str>, String> {
        if pairs.is_empty() {
            return Err("ERR wrong number of arguments for 'config|set' command".to_string());
        }
        let chosen = self.resolve_set_names(pairs, local)?;
        let mut next = self.clone();
        for (spec, entry_name, value) in &chosen {
            next.set_one(spec, value).map_err(|why| {
                format!(
                    "ERR CONFIG SET failed (possibly related to argument '{entry_name}') - {why}"
                )
            })?;
        }
        let changed = chosen
            .iter()
            .filter(|(spec, _, _)| match spec.kind {
                // `dir` renders as the working directory, which only the server changes.
                Kind::Dir => self.dir != next.dir,
                _ => self.value(spec) != next.value(spec),
            })
            .map(|(spec, _, _)| spec.name)
            .collect();
        *self = next;
        Ok(changed)
    }

    /// CONFIG SET's first pass, as in Redis: every name must exist, be mutable (and allowed if
    /// protected) and appear once. Returns each directive with the name its errors will use
    /// (the canonical name or the alias given) and its value.
    fn resolve_set_names<'a>(
        &self,
        pairs: &[(&[u8], &'a [u8])],
        local: bool,
    ) -> Result<Vec<SetTarget<'a>>, String> {
        let protected_ok = match self.enable_protected_configs {
            ProtectedAction::Yes => true,
            ProtectedAction::Local => local,
            ProtectedAction::No => false,
        };
        let mut chosen: Vec<SetTarget<'a>> = Vec::with_capacity(pairs.len());
        for (name, value) in pairs {
            let shown = String::from_utf8_lossy(name);
            let Some((spec, alias)) = directives::lookup(name) else {
                return Err(format!(
                    "ERR Unknown option or number of arguments for CONFIG SET - '{shown}'"
                ));
            };
            let fail = |why: &str| {
                format!("ERR CONFIG SET failed (possibly related to argument '{shown}') - {why}")
            };
            if spec.has(IMMUTABLE) {
                return Err(fail("can't set immutable config"));
            }
            if spec.has(PROTECTED) && !protected_ok {
                return Err(fail("can't set protected config"));
            }
            if chosen.iter().any(|(s, _, _)| std::ptr::eq(*s, spec)) {
                return Err(fail("duplicate parameter"));
            }
            let entry_name = match (alias, spec.alias) {
                (true, Some(a)) => a,
                _ => spec.name,
            };
            chosen.push((spec, entry_name, value));
        }
        Ok(chosen)
    }

    /// CONFIG SET's second pass for one directive: parse, check and store the value.
    fn set_one(&mut self, spec: &Spec, value: &[u8]) -> Result<(), String> {
        // Multi-argument values are split on single spaces, like Redis's sdssplitlen.
        let words: Vec<&[u8]> = match (spec.has(MULTI_ARG), value.is_empty()) {
            (true, true) => Vec::new(),
            (true, false) => value.split(|c| *c == b' ').collect(),
            (false, _) => vec![value],
        };
        let parsed = parse::parse_value(spec.kind, &words)?;
        if let Parsed::Dir(d) = &parsed {
            check_dir(d)?;
        }
        self.store(spec, parsed, StoreMode::Replace);
        // Redis resizes the backlog to at least 16kb when it is set at run time.
        if spec.name == "repl-backlog-size" {
            self.repl_backlog_size = self.repl_backlog_size.max(REPL_BACKLOG_MIN_BYTES);
        }
        match self.refusal(spec) {
            Some(why) => Err(format!("not supported by Verdis: {why}")),
            None => Ok(()),
        }
    }

    /// CONFIG REWRITE into `path` (the config file in use), like Redis 7.0: comments, unknown
    /// lines and `include` lines stay, directive lines are updated in place, removed values
    /// blank their lines, and new directives are appended after "# Generated by CONFIG REWRITE".
    /// Values equal to Verdis's defaults are only written where the file already had them.
    /// The file is replaced atomically. The error is the system's text (`Permission denied`),
    /// which Redis's reply wraps as `ERR Rewriting config file: <text>`.
    pub fn rewrite(&self, path: &std::path::Path) -> Result<(), String> {
        rewrite::rewrite(self, path)
    }

    /// The value of one directive as CONFIG GET renders it.
    fn value(&self, spec: &Spec) -> String {
        match spec.slot {
            Slot::Stored => self.other.get(spec.name).cloned().unwrap_or_default(),
            Slot::Bool(get, _) => yes_no(get(self)).to_string(),
            Slot::Int(get, _) => match spec.kind {
                Kind::Octal { .. } => format!("{:o}", get(self)),
                _ => get(self).to_string(),
            },
            Slot::Str(get, _) => get(self),
            Slot::Special => self.special_value(spec.kind),
        }
    }

    fn special_value(&self, kind: Kind) -> String {
        match kind {
            Kind::Save => {
                let words: Vec<String> = self
                    .save
                    .iter()
                    .map(|p| format!("{} {}", p.seconds, p.changes))
                    .collect();
                words.join(" ")
            }
            Kind::Bind => {
                let words: Vec<String> = self
                    .bind
                    .iter()
                    .map(|b| {
                        if b.optional {
                            format!("-{}", b.addr)
                        } else {
                            b.addr.clone()
                        }
                    })
                    .collect();
                words.join(" ")
            }
            Kind::ClientOutputBufferLimit => {
                let l = &self.client_output_buffer_limit;
                let words: Vec<String> = [
                    ("normal", l.normal),
                    ("slave", l.replica),
                    ("pubsub", l.pubsub),
                ]
                .iter()
                .map(|(n, x)| format!("{n} {} {} {}", x.hard_bytes, x.soft_bytes, x.soft_secs))
                .collect();
                words.join(" ")
            }
            Kind::ReplicaOf => match &self.replicaof {
                Some(r) => format!("{} {}", r.host, r.port),
                None => String::new(),
            },
            // Like Redis, the working directory itself: the server has changed into `dir`.
            Kind::Dir => std::env::current_dir()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|_| self.dir.clone()),
            _ => unreachable!("only special kinds use Slot::Special"),
        }
    }

    /// Stores a validated value.
    fn store(&mut self, spec: &Spec, v: Parsed, mode: StoreMode) {
        match (spec.slot, v) {
            (Slot::Stored, v) => {
                let rendered = match (spec.kind, v) {
                    (_, Parsed::Bool(b)) => yes_no(b).to_string(),
                    (Kind::Octal { .. }, Parsed::Int(n)) => format!("{n:o}"),
                    (Kind::MemOrPercent { .. }, Parsed::Int(n)) if n < 0 => format!("{}%", -n),
                    (_, Parsed::Int(n)) => n.to_string(),
                    (_, Parsed::Str(s)) => s,
                    (_, other) => unreachable!("stored directive {} got {other:?}", spec.name),
                };
                self.other.insert(spec.name, rendered);
            }
            (Slot::Bool(_, set), Parsed::Bool(b)) => set(self, b),
            (Slot::Int(_, set), Parsed::Int(n)) => {
                // Redis clamps hz rather than refusing out-of-range values.
                let n = if spec.name == "hz" {
                    n.clamp(1, 500)
                } else {
                    n
                };
                set(self, n)
            }
            (Slot::Str(_, set), Parsed::Str(s)) => set(self, s),
            (Slot::Special, Parsed::Save(points)) => match mode {
                StoreMode::Replace => self.save = points,
                StoreMode::AppendSave => self.save.extend(points),
            },
            (Slot::Special, Parsed::Bind(addrs)) => self.bind = addrs,
            (Slot::Special, Parsed::Obuf(limits)) => {
                for (class, limit) in limits {
                    self.client_output_buffer_limit.set(class, limit);
                }
            }
            (Slot::Special, Parsed::ReplicaOf(r)) => self.replicaof = r,
            (Slot::Special, Parsed::Dir(d)) => self.dir = d,
            (_, v) => unreachable!("directive {} cannot hold {v:?}", spec.name),
        }
    }

    /// Why the current value of `spec` is refused, if it is.
    fn refusal(&self, spec: &Spec) -> Option<&'static str> {
        match spec.support {
            Support::OnlyValue(accepted, why) if self.value(spec) != accepted => Some(why),
            _ => None,
        }
    }

    /// Start-up warnings for the current values.
    fn warnings(&self) -> Vec<String> {
        let defaults = Config::default();
        let mut out = Vec::new();
        if self.daemonize {
            out.push(
                "daemonize yes: Verdis does not detach and stays in the foreground (run it under \
                 systemd or another supervisor); the pid file is still written"
                    .to_string(),
            );
        }
        for spec in DIRECTIVES.iter().filter(|s| s.support == Support::Ignored) {
            let v = self.value(spec);
            if v != defaults.value(spec) {
                out.push(format!(
                    "directive '{}' is not implemented by Verdis and is ignored (value '{v}')",
                    spec.name
                ));
            }
        }
        out
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// CONFIG SET dir: the directory must exist (the server then changes into it). The error is
/// the C library's text, as Redis reports `chdir`'s errno.
fn check_dir(d: &str) -> Result<(), String> {
    match std::fs::metadata(d) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err("Not a directory".to_string()),
        Err(e) => Err(io_error_text(&e)),
    }
}

/// The `strerror` text of an I/O error, without Rust's " (os error N)" suffix.
pub(crate) fn io_error_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests;
