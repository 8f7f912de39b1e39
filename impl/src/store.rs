//! The server's state and the command executor.
//!
//! [`Store`] is everything commands read and write: the keyspace, the configuration, the
//! counters. It lives behind one mutex in [`Shared`]. A connection takes the lock once per
//! batch of pipelined commands, executes them all, and releases it: commands are atomic and
//! totally ordered, as in Redis, and the replication stream gets them in that order, while
//! reading, parsing and writing sockets run in parallel on all cores.
//!
//! [`Store::execute`] is the one entry point for a command: lookup, arity, authentication,
//! MULTI queueing, the handler, error rendering, and the propagation decision.

use crate::client::{Client, Clients};
use crate::cmd::{self, flags, Ctx};
use crate::config::Config;
use crate::db::Keyspace;
use crate::error::CmdError;
use crate::reply::ReplyWriter;
use bytes::Bytes;
use parking_lot::Mutex;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Counters for INFO stats that commands and connections update.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub total_commands_processed: u64,
    pub total_error_replies: u64,
    pub total_connections_received: u64,
    pub rejected_connections: u64,
    pub total_net_input_bytes: u64,
    pub total_net_output_bytes: u64,
    pub total_reads_processed: u64,
    pub total_writes_processed: u64,
    pub sync_full: u64,
    pub sync_partial_ok: u64,
    pub sync_partial_err: u64,
    /// Per-command calls and errors, for INFO commandstats-like views and tests.
    pub errors_by_prefix: std::collections::BTreeMap<String, u64>,
}

/// Samples for instantaneous_ops_per_sec.
#[derive(Clone, Debug, Default)]
pub struct OpsSampler {
    last_ms: i64,
    last_commands: u64,
    samples: [u64; 16],
    idx: usize,
}

impl OpsSampler {
    /// Called by the cron at hz: records commands per second since the last sample.
    pub fn sample(&mut self, now_ms: i64, commands: u64) {
        let dt = now_ms - self.last_ms;
        if dt >= 100 {
            let ops = (commands - self.last_commands) * 1000 / dt as u64;
            self.samples[self.idx % 16] = ops;
            self.idx += 1;
            self.last_ms = now_ms;
            self.last_commands = commands;
        }
    }

    pub fn ops_per_sec(&self) -> u64 {
        let n = self.idx.clamp(1, 16) as u64;
        self.samples.iter().sum::<u64>() / n
    }
}

/// Everything commands read and write, behind the one lock.
pub struct Store {
    pub ks: Keyspace,
    pub config: Config,
    pub stats: Stats,
    pub ops: OpsSampler,
    /// Unix seconds of the last successful save (LASTSAVE); start time until then.
    pub lastsave_unix: i64,
    /// DEBUG SET-ACTIVE-EXPIRE.
    pub active_expire_enabled: bool,
    /// Every propagated write handed to replication, kept for the propagation tests.
    #[cfg(test)]
    pub propagation_log: Vec<crate::db::Propagated>,
    /// Replication: the protocol core's node and the driver's view of its links.
    pub repl: crate::replication::Replication,
    /// SAVE/BGSAVE state and load statistics (INFO persistence).
    pub persist: crate::rdb::save::PersistState,
}

impl Store {
    pub fn new(config: Config) -> Self {
        let databases = config.databases;
        let repl = crate::replication::Replication::new(&config);
        Store {
            ks: Keyspace::new(databases),
            config,
            stats: Stats::default(),
            ops: OpsSampler::default(),
            lastsave_unix: unix_ms() / 1000,
            active_expire_enabled: true,
            repl,
            persist: Default::default(),
            #[cfg(test)]
            propagation_log: Vec::new(),
        }
    }

    /// Executes one command for `client`, writing its reply to `out`.
    pub fn execute(
        &mut self,
        shared: &Arc<Shared>,
        client: &mut Client,
        args: &[Bytes],
        now_ms: i64,
        out: &mut ReplyWriter,
    ) {
        debug_assert!(!args.is_empty());
        self.stats.total_commands_processed += 1;
        let errors_before = out.errors;
        let spec = match cmd::resolve(args) {
            Ok(spec) => spec,
            Err(e) => {
                if client.multi.is_some() {
                    client.multi_error = true;
                }
                out.error(&e);
                self.count_errors(out, errors_before);
                return;
            }
        };
        client.last_cmd = spec.name;
        // A batch's consecutive writes reach the core together, at the end of the batch
        // ([`Store::flush_replication`]); any other command first hands over those before it,
        // so what it observes (WAIT's offset, INFO, ROLE, a snapshot, a PSYNC) includes them.
        if !spec.is_write() && !self.ks.propagated.is_empty() {
            self.flush_replication(shared, client, now_ms);
        }
        if !client.authenticated && spec.flags & flags::NO_AUTH == 0 {
            if client.multi.is_some() {
                client.multi_error = true;
            }
            out.error(&CmdError::NoAuth);
            self.count_errors(out, errors_before);
            return;
        }
        if let Err(e) = self.replica_allows(client, spec, now_ms) {
            if client.multi.is_some() {
                client.multi_error = true;
            }
            out.error(&e);
            self.count_errors(out, errors_before);
            return;
        }
        // Inside MULTI every command but the transaction's own is queued.
        if client.multi.is_some()
            && !matches!(
                spec.name,
                "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
            )
        {
            if let Some(q) = client.multi.as_mut() {
                q.push(args.to_vec());
            }
            out.simple("QUEUED");
            return;
        }
        self.ks.master_access = client.is_master_link;
        self.call(shared, client, spec, args, now_ms, out);
        self.ks.master_access = false;
        self.count_errors(out, errors_before);
    }

    /// Hands the writes propagated so far to replication (one stream message per replica for
    /// all of them) and records the client's write offset for WAIT. The connection calls it
    /// at the end of each batch; [`Store::execute`] before any command that is not a write.
    /// The master link's writes are forwarded by the core as they came, not fed again.
    pub fn flush_replication(&mut self, shared: &Arc<Shared>, client: &mut Client, now_ms: i64) {
        if self.ks.propagated.is_empty() || client.is_master_link {
            return;
        }
        self.feed_replication(shared, now_ms);
        client.woff = self.repl.node.identity.master_repl_offset;
    }

    /// Runs a resolved command and decides its propagation. EXEC calls this for each queued
    /// command, so the wrapping rule sees all of a transaction's writes.
    pub fn call(
        &mut self,
        shared: &Arc<Shared>,
        client: &mut Client,
        spec: &'static cmd::CommandSpec,
        args: &[Bytes],
        now_ms: i64,
        out: &mut ReplyWriter,
    ) {
        let Some(handler) = spec.handler else {
            // resolve() never returns a container.
            debug_assert!(false, "container command {} has no handler", spec.name);
            return;
        };
        let dirty_before = self.ks.dirty;
        let db = client.db;
        let mut ctx = Ctx {
            store: self,
            shared,
            client,
            out,
            now_ms,
            rewrite: None,
            force_propagate: false,
        };
        let result = handler(&mut ctx, args);
        let rewrite = ctx.rewrite.take();
        let force = ctx.force_propagate;
        if let Err(e) = result {
            out.error(&e);
        }
        let changed = self.ks.dirty != dirty_before;
        // The master link's writes are forwarded as they came (by the core), so no form is
        // built for them; nor while no stream records writes (see `stream_records_writes`).
        if ((changed && spec.is_write()) || force)
            && !client.is_master_link
            && self.stream_records_writes()
        {
            let form = rewrite.unwrap_or_else(|| args.to_vec());
            self.ks.propagate(db, form);
        }
    }

    /// Whether a client's write can reach a replication stream: on a master with a backlog,
    /// or whose protocol trace records every write. Otherwise `feed_replication` would drop
    /// the write's propagation form, so `call` builds none (an allocation and a copy of the
    /// arguments per write). Unit tests build them always: they check the forms.
    fn stream_records_writes(&self) -> bool {
        cfg!(test)
            || (self.repl.is_master()
                && (self.repl.node.records_writes() || self.repl.trace.is_on()))
    }

    fn count_errors(&mut self, out: &ReplyWriter, before: u64) {
        self.stats.total_error_replies += out.errors - before;
    }

    /// Whether clients must AUTH first (requirepass is set).
    pub fn requires_auth(&self) -> bool {
        self.config
            .requirepass
            .as_deref()
            .is_some_and(|p| !p.is_empty())
    }

    /// FAILOVER has paused writes: a write (or an EXEC) must wait.
    pub fn write_paused(&self, args: &[Bytes]) -> bool {
        if !self.repl.node.failover.pauses_writes() {
            return false;
        }
        match cmd::resolve(args) {
            Ok(spec) => spec.is_write() || spec.name == "exec",
            Err(_) => false,
        }
    }

    /// Whether this server is a replica.
    pub fn is_replica(&self) -> bool {
        !self.repl.is_master()
    }

    /// A replica refuses writes from clients (`replica-read-only`) and, with
    /// `replica-serve-stale-data no`, most commands while its link is down.
    fn replica_allows(
        &self,
        client: &Client,
        spec: &cmd::CommandSpec,
        now_ms: i64,
    ) -> Result<(), CmdError> {
        if client.is_master_link {
            return Ok(());
        }
        if self.repl.is_master() {
            // min-replicas-to-write: a master without enough good replicas refuses writes.
            let cfg = &self.repl.cfg;
            if spec.is_write()
                && cfg.min_replicas_to_write > 0
                && cfg.min_replicas_max_lag_ms > 0
                && self
                    .repl
                    .node
                    .replicas
                    .good_replicas(now_ms as u64, cfg.min_replicas_max_lag_ms)
                    < cfg.min_replicas_to_write
            {
                return Err(CmdError::Coded(
                    "NOREPLICAS Not enough good replicas to write.".into(),
                ));
            }
            return Ok(());
        }
        if spec.is_write() && self.config.replica_read_only {
            return Err(CmdError::Coded(
                "READONLY You can't write against a read only replica.".into(),
            ));
        }
        let link_up = self
            .repl
            .node
            .link()
            .is_some_and(|l| l.phase == verdis_core::repl::LinkPhase::Streaming);
        if !link_up && !self.config.replica_serve_stale_data && spec.flags & flags::STALE == 0 {
            return Err(CmdError::Coded(
                "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."
                    .into(),
            ));
        }
        Ok(())
    }

    /// Whether keys past their time are deleted here (a master) rather than hidden.
    pub fn policy_is_master(&self) -> bool {
        self.ks.policy == crate::db::ExpiryPolicy::Delete
    }

    /// Reacts to CONFIG SET of directives that need more than the new value stored.
    pub fn apply_config_change(&mut self, changed: &[&'static str]) {
        self.repl.reconfigure(&self.config);
        for name in changed {
            tracing::debug!("config {name} changed");
            // Like Redis, CONFIG SET dir changes the working directory, where the RDB lives.
            if *name == "dir" {
                if let Err(e) = crate::rdb::save::enter_dir(&self.config.dir) {
                    tracing::warn!("{e}");
                }
            }
        }
    }

    /// The replication layer's intake: hands the propagated writes of the last batch to the
    /// protocol core, which appends them to the backlog and queues them for every replica.
    /// Without a backlog (no replica ever attached) the core drops them and the offset stays
    /// put, exactly like a Redis master.
    pub fn feed_replication(&mut self, shared: &Arc<Shared>, now_ms: i64) {
        if self.ks.propagated.is_empty() {
            return;
        }
        if !self.repl.is_master() {
            // A replica's data changes only through its master's stream, which the core
            // forwards to our own replicas byte for byte.
            self.ks.propagated.clear();
            return;
        }
        if !self.repl.node.records_writes() && !self.repl.trace.is_on() {
            // No replica ever attached: the core would record nothing.
            #[cfg(test)]
            self.propagation_log
                .extend(self.ks.propagated.iter().cloned());
            self.ks.propagated.clear();
            return;
        }
        let now = now_ms as u64;
        let cfg = self.repl.cfg.clone();
        let batch = self.ks.take_propagated();
        #[cfg(test)]
        self.propagation_log.extend(batch.iter().cloned());
        if self.repl.trace.is_on() {
            // Traced, each write is its own transition, as the model takes them.
            for p in &batch {
                let result = self.repl.node.handle_write(p.db as u64, &p.args, now, &cfg);
                let name = String::from_utf8_lossy(&p.args[0]).into_owned();
                self.after_writes(shared, result, Some((p.db as u64, &name)), now);
            }
        } else {
            // The whole batch reaches each replica as one message.
            let writes = batch.iter().map(|p| (p.db as u64, p.args.as_slice()));
            let result = self.repl.node.handle_writes(writes, now, &cfg);
            self.after_writes(shared, result, None, now);
        }
    }

    /// Executes the effects of writes handed to the core (recording the write in the trace
    /// when `traced` names it) and enforces the replicas' output buffer limits.
    fn after_writes(
        &mut self,
        shared: &Arc<Shared>,
        result: Result<Vec<verdis_core::repl::Effect>, verdis_core::repl::WriteError>,
        traced: Option<(u64, &str)>,
        now: u64,
    ) {
        match result {
            Ok(effects) => {
                match traced {
                    Some((db, command)) => self.repl_step(
                        shared,
                        crate::replication::trace::TraceInput::Write { db, command },
                        effects,
                        now,
                    ),
                    None => self.run_repl_effects(shared, effects, now),
                }
                if !self.repl.peers.is_empty() {
                    crate::replication::enforce_output_limits(self, shared, now);
                }
            }
            // The command path checks these before executing a write; reaching here is a
            // bug that would let replicas diverge, so it is loud.
            Err(e) => {
                tracing::error!("BUG: a write was executed and then refused for replication: {e}")
            }
        }
    }

    /// Records a transition of the protocol core in the trace (when on), then executes its
    /// effects. Every call into the core goes through here.
    pub fn repl_step(
        &mut self,
        shared: &Arc<Shared>,
        input: crate::replication::trace::TraceInput,
        effects: Vec<verdis_core::repl::Effect>,
        now_ms: u64,
    ) {
        if self.repl.trace.is_on() {
            let repl = &mut self.repl;
            repl.trace.record(now_ms, &input, &effects, &repl.node);
        }
        self.run_repl_effects(shared, effects, now_ms);
    }

    /// Executes the protocol core's effects, in order.
    pub fn run_repl_effects(
        &mut self,
        shared: &Arc<Shared>,
        effects: Vec<verdis_core::repl::Effect>,
        now_ms: u64,
    ) {
        crate::replication::run_effects(self, shared, effects, now_ms)
    }
}

/// Applies a log level to the running logger.
pub type LogLevelSetter = Box<dyn Fn(crate::config::LogLevel) + Send + Sync>;

/// State shared by all tasks: the locked store, the client registry, identity.
pub struct Shared {
    pub store: Mutex<Store>,
    pub clients: Clients,
    next_client_id: AtomicU64,
    pub started: Instant,
    pub started_unix_ms: i64,
    pub run_id: String,
    pub config_file: Option<PathBuf>,
    pub executable: String,
    /// The port actually bound (CONFIG may say 0 = pick one).
    pub port: AtomicU64,
    pub shutdown: tokio::sync::Notify,
    /// The accept tasks of the current listeners (replaced by CONFIG SET port/bind).
    pub listeners: Mutex<Vec<tokio::task::AbortHandle>>,
    /// Applies a new log level (CONFIG SET loglevel); set by main once logging is up.
    pub set_log_level: Mutex<Option<LogLevelSetter>>,
    /// Woken whenever a replica acknowledges (WAIT re-checks its count).
    pub repl_acks: tokio::sync::Notify,
}

impl Shared {
    pub fn new(config: Config, config_file: Option<PathBuf>) -> Self {
        let port = config.port as u64;
        Shared {
            store: Mutex::new(Store::new(config)),
            clients: Clients::default(),
            next_client_id: AtomicU64::new(1),
            started: Instant::now(),
            started_unix_ms: unix_ms(),
            run_id: random_hex40(),
            config_file,
            executable: std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            port: AtomicU64::new(port),
            shutdown: tokio::sync::Notify::new(),
            listeners: Mutex::new(Vec::new()),
            set_log_level: Mutex::new(None),
            repl_acks: tokio::sync::Notify::new(),
        }
    }

    pub fn next_client_id(&self) -> u64 {
        self.next_client_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// Unix time in milliseconds. The one place the server reads the wall clock for commands.
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Unix time in microseconds.
pub fn unix_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// 40 random hex characters (run_id, replid).
pub fn random_hex40() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..40)
        .map(|_| char::from(b"0123456789abcdef"[rng.gen_range(0..16)]))
        .collect()
}

#[cfg(test)]
mod tests {
    //! The propagation seam: what each write hands to the replication layer.
    use super::*;
    use crate::client::ClientHandle;
    use crate::db::Propagated;
    use crate::reply::Protocol;
    use bytes::BytesMut;

    struct Harness {
        shared: Arc<Shared>,
        client: Client,
    }

    impl Harness {
        fn new() -> Self {
            let shared = Arc::new(Shared::new(Config::default(), None));
            let addr = "127.0.0.1:1".parse().unwrap();
            let client = Client::new(Arc::new(ClientHandle::new(1, addr, addr, 0)), true);
            Harness { shared, client }
        }

        /// Runs one inline command at `now_ms`; returns the reply bytes.
        fn run(&mut self, line: &str, now_ms: i64) -> String {
            let args: Vec<Bytes> = verdis_core::resp::split_args(line.as_bytes())
                .unwrap()
                .into_iter()
                .map(Bytes::from)
                .collect();
            let mut buf = BytesMut::new();
            let mut out = ReplyWriter::new(&mut buf, Protocol::Resp2);
            let mut store = self.shared.store.lock();
            store.execute(&self.shared, &mut self.client, &args, now_ms, &mut out);
            store.flush_replication(&self.shared, &mut self.client, now_ms);
            String::from_utf8_lossy(&buf).into_owned()
        }

        /// The propagated commands since the last call, as `db:ARGS` strings.
        fn propagated(&mut self) -> Vec<String> {
            let mut store = self.shared.store.lock();
            std::mem::take(&mut store.propagation_log)
                .into_iter()
                .map(|Propagated { db, args }| {
                    let words: Vec<String> = args
                        .iter()
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect();
                    format!("{db}:{}", words.join(" "))
                })
                .collect()
        }
    }

    #[test]
    fn relative_expiry_is_propagated_as_absolute_time() {
        let mut h = Harness::new();
        h.run("SET k v PX 100", 1000);
        h.run("SET k v EX 10", 1000);
        h.run("SET k v EXAT 5", 1000);
        h.run("SET k v PXAT 7777", 1000);
        h.run("SETEX k 2 v", 1000);
        h.run("PSETEX k 20 v", 1000);
        h.run("EXPIRE k 10", 1000);
        h.run("PEXPIRE k 10 GT", 1000);
        h.run("EXPIREAT k 100", 1000);
        assert_eq!(
            h.propagated(),
            vec![
                "0:SET k v PXAT 1100",
                "0:SET k v PXAT 11000",
                "0:SET k v PXAT 5000",
                "0:SET k v PXAT 7777",
                "0:SET k v PXAT 3000",
                "0:SET k v PXAT 1020",
                "0:PEXPIREAT k 11000",
                "0:PEXPIREAT k 100000",
            ]
        );
    }

    #[test]
    fn writes_that_change_nothing_are_not_propagated() {
        let mut h = Harness::new();
        h.run("DEL nokey", 0);
        h.run("SET k v", 0);
        h.run("SET k v NX", 0);
        h.run("EXPIRE nokey 10", 0);
        h.run("PERSIST k", 0);
        h.run("INCR k", 0); // wrong type: an error
        assert_eq!(h.propagated(), vec!["0:SET k v"]);
    }

    #[test]
    fn rewritten_forms_match_redis() {
        let mut h = Harness::new();
        h.run("SET k v EX 100", 0);
        h.run("GETEX k PERSIST", 0);
        h.run("GETEX k PX 50", 0);
        h.run("GETSET k w", 0);
        h.run("GETDEL k", 0);
        h.run("INCRBYFLOAT f 1.5", 0);
        h.run("SET e v", 0);
        h.run("EXPIRE e -1", 0);
        h.run("FLUSHALL", 0);
        h.run("FLUSHDB", 0);
        assert_eq!(
            h.propagated(),
            vec![
                "0:SET k v PXAT 100000",
                "0:PERSIST k",
                "0:PEXPIREAT k 50",
                "0:SET k w",
                "0:DEL k",
                "0:SET f 1.5 KEEPTTL",
                "0:SET e v",
                "0:DEL e",
                "0:FLUSHALL",
                "0:FLUSHDB",
            ]
        );
    }

    #[test]
    fn lazy_expiry_propagates_del_before_the_command() {
        let mut h = Harness::new();
        h.run("SET k v PXAT 100", 0);
        h.propagated();
        assert_eq!(h.run("GET k", 200), "$-1\r\n");
        h.run("SET k w", 200);
        assert_eq!(h.propagated(), vec!["0:DEL k", "0:SET k w"]);
    }

    #[test]
    fn transactions_propagate_wrapped_and_in_their_db() {
        let mut h = Harness::new();
        h.run("SELECT 3", 0);
        h.run("MULTI", 0);
        h.run("SET a 1", 0);
        h.run("GET a", 0);
        h.run("INCR a", 0);
        assert_eq!(h.run("EXEC", 0), "*3\r\n+OK\r\n$1\r\n1\r\n:2\r\n");
        h.run("MULTI", 0);
        h.run("INCR c", 0);
        h.run("EXEC", 0);
        assert_eq!(
            h.propagated(),
            vec!["3:MULTI", "3:SET a 1", "3:INCR a", "3:EXEC", "3:INCR c"]
        );
    }

    #[test]
    fn an_aborted_transaction_propagates_nothing() {
        let mut h = Harness::new();
        h.run("MULTI", 0);
        h.run("SET a 1", 0);
        h.run("NOSUCH", 0);
        assert!(h.run("EXEC", 0).starts_with("-EXECABORT"));
        assert!(h.propagated().is_empty());
    }
}
