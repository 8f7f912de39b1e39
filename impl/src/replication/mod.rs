//! Replication in the server: the tokio driver of the protocol core's [`ReplNode`].
//!
//! The decisions (PSYNC full or partial, replid and offsets, the replica table, WAIT counts,
//! timeouts) are the core's; this module only moves bytes, time and snapshots in and out of
//! it, as the core's driver contract says:
//! - inputs: commands of replica connections (`PSYNC`, `REPLCONF ACK`, a closed socket), the
//!   propagated writes of the command path ([`Replication::feed`]), and timer deadlines
//!   checked by the server cron ([`Replication::due_timers`]);
//! - outputs: [`Effect`]s executed in order by [`crate::store::Store::run_repl_effects`]:
//!   bytes queued to a replica connection, a snapshot to send, timers to arm.
//!
//! Everything here runs under the store lock, so the replication stream is totally ordered
//! with the writes that produce it. Each replica connection has an unbounded queue of
//! [`PeerOut`] messages, drained by its own task ([`link::serve_replica`]); the bytes queued
//! and not yet written are counted, so the client-output-buffer-limit for replicas can
//! disconnect a replica that cannot keep up.
//!
//! Module map: [`link`] (the master side of one replica connection: snapshot transfer with
//! `$<len>` or `$EOF:` framing, stream, ACKs), `info` rendering below.

pub mod link;
pub mod outbuf;
pub mod trace;
pub mod upstream;

use crate::config::Config;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::mpsc;
use verdis_core::repl::{
    Effect, IdSource, LinkId, NodeId, ReplConfig, ReplId, ReplNode, ReplTimer, Role, ToReplica,
};

/// Fresh replids from the operating system's randomness.
pub struct OsIds;

impl IdSource for OsIds {
    fn fresh_replid(&mut self) -> ReplId {
        use rand::RngCore;
        let mut raw = [0u8; 20];
        rand::thread_rng().fill_bytes(&mut raw);
        ReplId::from_random(raw)
    }
}

/// What a replica connection's task sends, in order.
pub enum PeerOut {
    /// Raw bytes: a status line (`+FULLRESYNC`, `+CONTINUE`) or stream bytes.
    Bytes(Bytes),
    /// A snapshot to encode and send, then report with `handle_rdb_sent`.
    Rdb(RdbJob),
    /// Close the connection.
    Close,
}

/// A snapshot transfer.
pub struct RdbJob {
    pub dbs: Vec<crate::db::Db>,
    pub replid: ReplId,
    pub offset: u64,
    /// `$EOF:<mark>` framing (diskless, the replica announced `capa eof`) or `$<len>`.
    pub eof_framing: bool,
    /// repl-diskless-sync-delay: seconds to wait (sending newline keepalives) before the
    /// transfer, as Redis does to let more replicas join one transfer.
    pub delay_secs: u32,
    pub compression: bool,
    pub checksum: bool,
}

/// What the master knows of one replica connection beyond the core's table.
pub struct Peer {
    pub tx: mpsc::UnboundedSender<PeerOut>,
    pub link: LinkId,
    pub ip: IpAddr,
    pub listening_port: u16,
    pub capa_eof: bool,
    pub capa_psync2: bool,
    /// Legacy `SYNC`: no `+FULLRESYNC` line before the payload.
    pub legacy_sync: bool,
    /// Bytes queued and not yet written to the socket (output buffer accounting).
    pub queued_bytes: Arc<outbuf::OutputAccount>,
    /// When the queue first went past the soft limit (unix ms).
    pub soft_limit_since_ms: Option<u64>,
    /// Bytes were refused because they would have taken the queue past the hard limit: the
    /// connection was killed and the core is told at the next limit check.
    pub over_hard_limit: bool,
    /// The connection's client handle: killing it ends the link task at once, even while a
    /// write to a replica that stopped reading is pending.
    pub handle: Arc<crate::client::ClientHandle>,
}

/// The replication state of the server.
pub struct Replication {
    pub node: ReplNode,
    pub cfg: ReplConfig,
    /// Armed timers and their deadlines (unix ms).
    timers: BTreeMap<ReplTimer, u64>,
    /// Replica connections served by this node, by the node id given to each connection.
    pub peers: HashMap<NodeId, Peer>,
    next_peer: NodeId,
    /// The master we replicate from (REPLICAOF), as configured.
    pub master: Option<(String, u16)>,
    /// The core's id for that master; a new one for every REPLICAOF, so effects meant for an
    /// earlier master never reach the new one.
    pub master_node: NodeId,
    /// The connection to our master: its link id and the queue its task sends from.
    pub upstream: Option<(LinkId, mpsc::UnboundedSender<verdis_core::repl::ToMaster>)>,
    /// A snapshot received from our master, waiting for the core's `LoadRdb`.
    pub loaded_snapshot: Option<(LinkId, Vec<crate::db::Db>)>,
    /// When we last read anything from our master (unix ms).
    pub last_master_io_ms: u64,
    /// When the link to our master went down (unix ms), for INFO.
    pub link_down_since_ms: Option<u64>,
    /// The client that applies our master's stream (its selected db persists across reads).
    pub master_client: Option<crate::client::Client>,
    /// Where the master client's (discarded) replies are written, kept across commands.
    pub master_reply_scratch: bytes::BytesMut,
    /// client-output-buffer-limit for replicas.
    pub obuf_limit: crate::config::ObufLimit,
    /// The history read from the RDB at start-up, if any.
    pub restored: Option<verdis_core::repl::ReplIdentity>,
    /// `verdis-protocol-trace`: one JSON line per core transition.
    pub trace: trace::Trace,
    /// A snapshot being received from our master: payload size (0 for `$EOF:` framing, whose
    /// size is unknown), bytes read, last read (unix ms). INFO's master_sync_* fields.
    pub transfer: Option<(u64, u64, u64)>,
}

/// The first node id given to replica connections; ids below are for the masters we follow.
const FIRST_PEER_ID: NodeId = 1000;
/// A larger reply (a big GET in the stream) is not kept for the next command.
const MASTER_REPLY_SCRATCH_BYTES: usize = 64 * 1024;

impl Replication {
    /// A master with no history yet (Redis mints a replid at start and a new one when the first
    /// replica attaches).
    pub fn new(config: &Config) -> Self {
        let cfg = repl_config(config);
        let node = ReplNode::new_master(0, 0, OsIds.fresh_replid());
        Replication {
            node,
            cfg,
            timers: BTreeMap::new(),
            peers: HashMap::new(),
            next_peer: FIRST_PEER_ID,
            master: None,
            master_node: 0,
            upstream: None,
            loaded_snapshot: None,
            last_master_io_ms: 0,
            link_down_since_ms: None,
            master_client: None,
            master_reply_scratch: bytes::BytesMut::new(),
            obuf_limit: config
                .client_output_buffer_limit
                .get(crate::config::ObufClass::Replica),
            restored: None,
            trace: trace::Trace::default(),
            transfer: None,
        }
    }

    /// Re-reads the replication settings after CONFIG SET.
    pub fn reconfigure(&mut self, config: &Config) {
        self.cfg = repl_config(config);
        self.obuf_limit = config
            .client_output_buffer_limit
            .get(crate::config::ObufClass::Replica);
    }

    /// The hard limit in force for replicas: as in Redis 7.0, one below `repl-backlog-size` is
    /// raised to it (a replica dropped before the backlog is exhausted would resume partially
    /// and be dropped again). 0: no hard limit.
    fn hard_limit_bytes(&self) -> u64 {
        match self.obuf_limit.hard_bytes {
            0 => 0,
            hard => hard.max(self.cfg.backlog_size_bytes),
        }
    }

    /// Whether the core lets the output-buffer limit drop this replica (streaming and past
    /// its initial sync: [`verdis_core::repl::ReplicaEntry::output_limit_applies`]).
    fn output_limit_applies(replicas: &verdis_core::repl::ReplicaTable, node: NodeId) -> bool {
        replicas.get(node).is_some_and(|e| e.output_limit_applies())
    }

    /// Applies client-output-buffer-limit to the replicas it applies to (the core decides:
    /// not while a replica receives or loads its snapshot, which would send it into a
    /// full-sync loop): one whose unsent bytes pass the hard limit (checked as bytes are
    /// queued, in [`Self::send_to_peer`]), or stay past the soft limit for its seconds, is
    /// disconnected. Returns the replicas to disconnect.
    pub fn over_output_limit(&mut self, now_ms: u64) -> Vec<(NodeId, LinkId)> {
        let limit = self.obuf_limit;
        let hard_bytes = self.hard_limit_bytes();
        let mut out = Vec::new();
        let replicas = &self.node.replicas;
        for (id, peer) in self.peers.iter_mut() {
            if !Self::output_limit_applies(replicas, *id) {
                peer.soft_limit_since_ms = None;
                continue;
            }
            let queued = peer.queued_bytes.pending();
            let over_hard = peer.over_hard_limit || (hard_bytes > 0 && queued > hard_bytes);
            let over_soft = limit.soft_bytes > 0 && queued > limit.soft_bytes;
            if !over_soft {
                peer.soft_limit_since_ms = None;
            }
            let since = if over_soft {
                *peer.soft_limit_since_ms.get_or_insert(now_ms)
            } else {
                now_ms
            };
            let soft_expired = over_soft && now_ms.saturating_sub(since) >= limit.soft_secs * 1000;
            if over_hard || soft_expired {
                tracing::warn!(
                    "Client replica {id} scheduled to be closed ASAP for overcoming of output buffer limits ({queued} bytes queued)"
                );
                out.push((*id, peer.link));
            }
        }
        out
    }

    /// A new replica connection: its node id and link id.
    pub fn new_peer_id(&mut self) -> (NodeId, LinkId) {
        let id = self.next_peer;
        self.next_peer += 1;
        (
            id,
            LinkId {
                replica: id,
                incarnation: 0,
                seq: 0,
            },
        )
    }

    pub fn set_timer(&mut self, timer: ReplTimer, at_ms: u64) {
        self.timers.insert(timer, at_ms);
    }

    pub fn cancel_timer(&mut self, timer: ReplTimer) {
        self.timers.remove(&timer);
    }

    /// Removes and returns the timers whose deadline has passed.
    pub fn due_timers(&mut self, now_ms: u64) -> Vec<ReplTimer> {
        let due: Vec<ReplTimer> = self
            .timers
            .iter()
            .filter(|(_, at)| **at <= now_ms)
            .map(|(t, _)| *t)
            .collect();
        for t in &due {
            self.timers.remove(t);
        }
        due
    }

    /// The configured master's host and port (ROLE, INFO).
    pub fn master_addr(&self) -> (String, u16) {
        self.master.clone().unwrap_or_default()
    }

    pub fn is_master(&self) -> bool {
        matches!(self.node.role, Role::Master)
    }

    /// Queues bytes to a replica connection, counting them for the output buffer limit.
    pub fn send_to_peer(&mut self, node: NodeId, link: LinkId, out: PeerOut) {
        let hard_bytes = self.hard_limit_bytes();
        let applies = Self::output_limit_applies(&self.node.replicas, node);
        let Some(peer) = self.peers.get_mut(&node) else {
            return;
        };
        if peer.link != link {
            // An effect for an older connection of this id: nothing to send it on.
            return;
        }
        if let PeerOut::Bytes(b) = &out {
            // As Redis checks a replica's limit when the stream is appended: bytes that would
            // take the queue past the hard limit are not queued, the connection ends at once,
            // and the replica sees no part of them (it resumes from before them).
            if peer.over_hard_limit {
                return;
            }
            let queued = peer.queued_bytes.pending() + b.len() as u64;
            if applies && hard_bytes > 0 && queued > hard_bytes {
                peer.over_hard_limit = true;
                peer.handle.kill();
                return;
            }
            peer.queued_bytes.enqueued(b.len() as u64);
        }
        // A closed receiver means the task is ending; its exit reports the close.
        let _ = peer.tx.send(out);
    }

    /// INFO replication, in Redis 7.0's field order.
    pub fn info(&self, now_ms: u64, config: &Config) -> String {
        use std::fmt::Write;
        let n = &self.node;
        let mut s = String::from("# Replication\r\n");
        match &n.role {
            Role::Master => s.push_str("role:master\r\n"),
            Role::Replica(link) => {
                let (host, port) = self.master_addr();
                let up = link.phase == verdis_core::repl::LinkPhase::Streaming;
                let io_ago = if self.last_master_io_ms == 0 {
                    -1
                } else {
                    (now_ms.saturating_sub(self.last_master_io_ms) / 1000) as i64
                };
                let syncing = matches!(link.phase, verdis_core::repl::LinkPhase::Transfer { .. });
                let offset = n.identity.master_repl_offset;
                // Bytes read include a command not complete yet; applied ones do not.
                let read_offset = offset + link.pending.len() as u64;
                let _ = write!(
                    s,
                    "role:slave\r\nmaster_host:{host}\r\nmaster_port:{port}\r\nmaster_link_status:{}\r\nmaster_last_io_seconds_ago:{}\r\nmaster_sync_in_progress:{}\r\nslave_read_repl_offset:{read_offset}\r\nslave_repl_offset:{offset}\r\n",
                    if up { "up" } else { "down" },
                    if up { io_ago } else { -1 },
                    syncing as u8,
                );
                if let (true, Some((total, read, last_io))) = (syncing, self.transfer) {
                    let perc = if total > 0 {
                        read as f64 * 100.0 / total as f64
                    } else {
                        0.0
                    };
                    let _ = write!(
                        s,
                        "master_sync_total_bytes:{total}\r\nmaster_sync_read_bytes:{read}\r\nmaster_sync_left_bytes:{}\r\nmaster_sync_perc:{perc:.2}\r\nmaster_sync_last_io_seconds_ago:{}\r\n",
                        total as i64 - read as i64,
                        now_ms.saturating_sub(last_io) / 1000,
                    );
                }
                if !up {
                    let since = self
                        .link_down_since_ms
                        .map(|d| (now_ms.saturating_sub(d) / 1000) as i64)
                        .unwrap_or(-1);
                    let _ = write!(s, "master_link_down_since_seconds:{since}\r\n");
                }
                let _ = write!(
                    s,
                    "slave_priority:{}\r\nslave_read_only:{}\r\nreplica_announced:{}\r\n",
                    config.replica_priority,
                    config.replica_read_only as u8,
                    config.replica_announced as u8
                );
            }
        }
        let online: Vec<_> = n
            .replicas
            .iter()
            .filter(|e| e.state != verdis_core::repl::ReplicaState::Handshake)
            .collect();
        let _ = write!(s, "connected_slaves:{}\r\n", online.len());
        if self.cfg.min_replicas_to_write > 0 && self.cfg.min_replicas_max_lag_ms > 0 {
            let _ = write!(
                s,
                "min_slaves_good_slaves:{}\r\n",
                n.replicas
                    .good_replicas(now_ms, self.cfg.min_replicas_max_lag_ms)
            );
        }
        for (i, e) in online.iter().enumerate() {
            let (ip, port) = self
                .peers
                .get(&e.node)
                .map(|p| (p.ip.to_string(), p.listening_port))
                .unwrap_or_default();
            let lag = now_ms.saturating_sub(e.last_ack_ms) / 1000;
            let _ = write!(
                s,
                "slave{i}:ip={ip},port={port},state={},offset={},lag={lag}\r\n",
                e.state.info_name(),
                e.ack_offset
            );
        }
        let id = &n.identity;
        let _ = write!(
            s,
            "master_failover_state:{}\r\nmaster_replid:{}\r\nmaster_replid2:{}\r\nmaster_repl_offset:{}\r\nsecond_repl_offset:{}\r\n",
            n.failover.info_name(),
            id.replid.to_hex(),
            id.replid2.to_hex(),
            id.master_repl_offset,
            id.second_repl_offset,
        );
        match &n.backlog {
            Some(b) => {
                let _ = write!(
                    s,
                    "repl_backlog_active:1\r\nrepl_backlog_size:{}\r\nrepl_backlog_first_byte_offset:{}\r\nrepl_backlog_histlen:{}\r\n",
                    self.cfg.backlog_size_bytes,
                    b.first_byte_offset(),
                    b.histlen()
                );
            }
            None => {
                let _ = write!(
                    s,
                    "repl_backlog_active:0\r\nrepl_backlog_size:{}\r\nrepl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\n",
                    self.cfg.backlog_size_bytes
                );
            }
        }
        s
    }
}

/// The replication aux fields of an RDB this node saves: its replid and offset, when it has a
/// history others could resume (a backlog), as Redis writes them.
pub fn save_aux(repl: &Replication) -> Option<crate::rdb::ReplAux> {
    repl.node.backlog.as_ref()?;
    Some(crate::rdb::ReplAux {
        stream_db: 0,
        repl_id: repl.node.identity.replid.to_hex(),
        repl_offset: repl.node.identity.master_repl_offset as i64,
    })
}

impl Replication {
    /// After loading an RDB that carried repl-id / repl-offset: resume that history, so
    /// replicas (or our master) can continue partially after the restart.
    pub fn restore_from(&mut self, aux: &crate::rdb::ReplAux) {
        let Some(replid) = ReplId::parse_hex(aux.repl_id.as_bytes()) else {
            tracing::warn!("Ignoring an unreadable repl-id in the RDB");
            return;
        };
        let Ok(offset) = u64::try_from(aux.repl_offset) else {
            return;
        };
        let mut identity = verdis_core::repl::ReplIdentity::new(replid);
        identity.master_repl_offset = offset;
        self.restored = Some(identity);
        self.node = ReplNode::restore_master_after_restart(0, 1, identity, &self.cfg, &mut OsIds);
        tracing::info!(
            "Resuming replication history {} at offset {offset}",
            replid.to_hex()
        );
    }
}

impl Replication {
    /// `replicaof` in the configuration: start as a replica of `addr`. Like Redis, a replica
    /// restarted from an RDB that carried its master's replid and offset resumes with
    /// `PSYNC <replid> <offset+1>`; a fresh one asks `PSYNC ? -1`.
    pub fn follow_at_start(&mut self, addr: (String, u16), now_ms: u64) -> Vec<Effect> {
        self.master = Some(addr);
        self.master_node += 1;
        let master = self.master_node;
        self.node = match self.restored {
            Some(identity) => ReplNode::restore(0, 1, identity, Some(master), &self.cfg),
            None => ReplNode::new_replica(0, 1, OsIds.fresh_replid(), master),
        };
        self.node.start(now_ms, &self.cfg)
    }
}

/// The core's settings from the server configuration.
pub fn repl_config(c: &Config) -> ReplConfig {
    ReplConfig {
        backlog_size_bytes: c.repl_backlog_size.max(1),
        backlog_ttl_ms: c.repl_backlog_ttl_secs * 1000,
        repl_timeout_ms: (c.repl_timeout_secs as u64).max(1) * 1000,
        ping_period_ms: (c.repl_ping_replica_period_secs as u64).max(1) * 1000,
        ack_period_ms: 1000,
        connect_retry_ms: 1000,
        masterauth: c.masterauth.as_deref().is_some_and(|p| !p.is_empty()),
        listening_port: if c.replica_announce_port != 0 {
            c.replica_announce_port
        } else {
            c.port
        },
        min_replicas_to_write: c.min_replicas_to_write as u64,
        min_replicas_max_lag_ms: c.min_replicas_max_lag_secs as u64 * 1000,
        max_replicas: c.maxclients as u64,
        max_commands_per_read: 1024,
        planted_bug: None,
    }
}

/// Turns a client connection that sent PSYNC/SYNC into a replica link and serves it.
pub async fn attach_replica(
    shared: &Arc<crate::store::Shared>,
    client: crate::client::Client,
    start: crate::client::PsyncStart,
    rd: tokio::net::tcp::OwnedReadHalf,
    wr: tokio::net::tcp::OwnedWriteHalf,
    rbuf: bytes::BytesMut,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(outbuf::OutputAccount::new());
    client.handle.mark_replica();
    let handle = client.handle.clone();
    let (node, link) = {
        let mut store = shared.store.lock();
        let now = crate::store::unix_ms() as u64;
        let (node, link) = store.repl.new_peer_id();
        let ip = client
            .repl
            .announced_ip
            .as_deref()
            .and_then(|ip| ip.parse().ok())
            .unwrap_or(client.handle.addr.ip());
        store.repl.peers.insert(
            node,
            Peer {
                tx,
                link,
                ip,
                listening_port: client.repl.listening_port,
                capa_eof: client.repl.capa_eof,
                capa_psync2: client.repl.capa_psync2,
                legacy_sync: start.legacy,
                queued_bytes: queued.clone(),
                soft_limit_since_ms: None,
                over_hard_limit: false,
                handle: client.handle.clone(),
            },
        );
        tracing::info!(
            "Replica {ip}:{} asks for synchronization",
            client.repl.listening_port
        );
        let cfg = store.repl.cfg.clone();
        // A new replication connection, then its PSYNC.
        let mut effects = store.repl.node.handle_from_replica(
            node,
            link,
            verdis_core::repl::ToMaster::Ping,
            now,
            &cfg,
            &mut OsIds,
        );
        effects.extend(store.repl.node.handle_from_replica(
            node,
            link,
            verdis_core::repl::ToMaster::Psync {
                req: start.req,
                failover: start.failover,
            },
            now,
            &cfg,
            &mut OsIds,
        ));
        let psync = verdis_core::repl::ToMaster::Psync {
            req: start.req,
            failover: start.failover,
        };
        store.repl_step(
            shared,
            trace::TraceInput::FromReplica {
                replica: node,
                link,
                msg: &psync,
            },
            effects,
            now,
        );
        (node, link)
    };
    link::serve_replica(shared.clone(), rd, wr, rbuf, node, link, rx, queued, handle).await;
}

/// Executes the core's effects in order (see the driver contract in `verdis_core::repl`).
pub fn run_effects(
    store: &mut crate::store::Store,
    shared: &Arc<crate::store::Shared>,
    effects: Vec<Effect>,
    now_ms: u64,
) {
    // A read of the master's stream applies its commands in a row: their keys are looked up
    // a window at a time before they run, as for a client's pipelined batch (`Db::prefetch`).
    let mut effects = effects.into_iter();
    let mut until_prefetch = 0;
    loop {
        if until_prefetch == 0 {
            prefetch_applied_keys(store, effects.as_slice());
            until_prefetch = crate::db::PREFETCH_WINDOW;
        }
        until_prefetch -= 1;
        let Some(e) = effects.next() else {
            break;
        };
        match e {
            Effect::ToReplica { replica, link, msg } => {
                let Some(peer) = store.repl.peers.get(&replica) else {
                    continue;
                };
                let out = match msg {
                    // The connection's own command path already answered the handshake.
                    ToReplica::Pong
                    | ToReplica::AuthOk
                    | ToReplica::AuthErr
                    | ToReplica::ReplconfOk => continue,
                    ToReplica::FullResync { replid, offset } => {
                        if peer.legacy_sync {
                            continue;
                        }
                        PeerOut::Bytes(Bytes::from(format!(
                            "+FULLRESYNC {} {offset}\r\n",
                            replid.to_hex()
                        )))
                    }
                    ToReplica::Continue { replid } => {
                        if peer.capa_psync2 {
                            PeerOut::Bytes(Bytes::from(format!(
                                "+CONTINUE {}\r\n",
                                replid.to_hex()
                            )))
                        } else {
                            PeerOut::Bytes(Bytes::from_static(b"+CONTINUE\r\n"))
                        }
                    }
                    ToReplica::Stream(bytes) => PeerOut::Bytes(bytes),
                    ToReplica::TryLater => {
                        store.repl.send_to_peer(
                            replica,
                            link,
                            PeerOut::Bytes(Bytes::from_static(
                                b"-NOMASTERLINK Can't SYNC while not connected with my master\r\n",
                            )),
                        );
                        PeerOut::Close
                    }
                    ToReplica::Closed => PeerOut::Close,
                };
                store.repl.send_to_peer(replica, link, out);
            }
            Effect::SendRdb {
                replica,
                link,
                replid,
                offset,
            } => {
                let Some(peer) = store.repl.peers.get(&replica) else {
                    continue;
                };
                let eof_framing = peer.capa_eof && store.config.repl_diskless_sync;
                let job = RdbJob {
                    dbs: store.ks.snapshot(),
                    replid,
                    offset,
                    eof_framing,
                    delay_secs: if eof_framing {
                        store.config.repl_diskless_sync_delay_secs
                    } else {
                        0
                    },
                    compression: store.config.rdbcompression,
                    checksum: store.config.rdbchecksum,
                };
                store.repl.send_to_peer(replica, link, PeerOut::Rdb(job));
            }
            Effect::SetTimer { timer, at_ms } => store.repl.set_timer(timer, at_ms),
            Effect::CancelTimer(timer) => store.repl.cancel_timer(timer),
            Effect::Connect { master, link } => {
                // Our configured master, or (a coordinated switchover) one of our replicas.
                if master != store.repl.master_node {
                    let Some(peer) = store.repl.peers.get(&master) else {
                        continue;
                    };
                    store.repl.master = Some((peer.ip.to_string(), peer.listening_port));
                    store.repl.master_node = master;
                }
                let Some(addr) = store.repl.master.clone() else {
                    continue;
                };
                let (tx, rx) = mpsc::unbounded_channel();
                store.repl.upstream = Some((link, tx));
                tokio::spawn(upstream::run(shared.clone(), addr, link, rx));
            }
            Effect::ToMaster { link, msg, .. } => {
                let closing = msg == verdis_core::repl::ToMaster::Closed;
                if let Some((current, tx)) = &store.repl.upstream {
                    if *current == link {
                        // A closed receiver means the task already ended.
                        let _ = tx.send(msg);
                    }
                }
                if closing {
                    store.repl.upstream = None;
                    let st = store.repl.node.stats;
                    // Only the loss of a link that once synced counts (Redis's repl_down_since).
                    if st.full_syncs_received + st.partial_syncs_received > 0 {
                        store.repl.link_down_since_ms = Some(now_ms);
                    }
                }
            }
            Effect::LoadRdb { link } => match store.repl.loaded_snapshot.take() {
                Some((l, dbs)) if l == link && dbs.len() == store.ks.db_count() as usize => {
                    store.ks.replace_all(dbs);
                    store.ks.dirty = 0;
                    store.repl.link_down_since_ms = None;
                    if let Some(c) = store.repl.master_client.as_mut() {
                        c.db = 0;
                    }
                }
                other => {
                    debug_assert!(
                        false,
                        "LoadRdb without its snapshot: {:?}",
                        other.map(|o| o.0)
                    );
                }
            },
            Effect::Apply { args } => apply_from_master(store, shared, args, now_ms),
        }
    }
    // Keys past their time are deleted (and DEL propagated) only by a master whose writes are
    // not paused; a replica, or a master handing over, hides them instead.
    store.ks.policy = if store.repl.is_master() && !store.repl.node.failover.pauses_writes() {
        crate::db::ExpiryPolicy::Delete
    } else {
        crate::db::ExpiryPolicy::Hide
    };
}

/// [`crate::db::Db::prefetch`] for the keys of the next commands of our master's stream.
fn prefetch_applied_keys(store: &crate::store::Store, ahead: &[Effect]) {
    if ahead.len() < 2 {
        return;
    }
    let db = store.repl.master_client.as_ref().map_or(0, |c| c.db);
    let window = &ahead[..crate::db::PREFETCH_WINDOW.min(ahead.len())];
    store
        .ks
        .db(db)
        .prefetch(window.iter().filter_map(|e| match e {
            Effect::Apply { args } => Some(&args[..]),
            _ => None,
        }));
}

/// Applies one write of our master's stream to the data set, as the master's client: it may
/// write on a read-only replica and sees keys that are logically expired.
fn apply_from_master(
    store: &mut crate::store::Store,
    shared: &Arc<crate::store::Shared>,
    args: Vec<Bytes>,
    now_ms: u64,
) {
    if args.is_empty() {
        return;
    }
    let mut client = match store.repl.master_client.take() {
        Some(c) => c,
        None => {
            let addr = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
            let handle = Arc::new(crate::client::ClientHandle::new(0, addr, addr, -1));
            let mut c = crate::client::Client::new(handle, true);
            c.is_master_link = true;
            c
        }
    };
    // The replies are discarded; one buffer serves every command of the link.
    let mut scratch = std::mem::take(&mut store.repl.master_reply_scratch);
    scratch.clear();
    let mut out = crate::reply::ReplyWriter::new(&mut scratch, client.proto);
    store.execute(shared, &mut client, &args, now_ms as i64, &mut out);
    if scratch.capacity() <= MASTER_REPLY_SCRATCH_BYTES {
        store.repl.master_reply_scratch = scratch;
    }
    // A replica forwards its master's stream as it came (the core did); what the command
    // would propagate itself is not sent again.
    store.ks.propagated.clear();
    store.repl.master_client = Some(client);
}

/// Disconnects replicas past their output buffer limit (see `over_output_limit`).
pub fn enforce_output_limits(
    store: &mut crate::store::Store,
    shared: &Arc<crate::store::Shared>,
    now_ms: u64,
) {
    for (node, link) in store.repl.over_output_limit(now_ms) {
        // Ended at once, without what is queued (as Redis frees such a client); the core's
        // `Closed` effect below only confirms it.
        if let Some(peer) = store.repl.peers.get(&node) {
            peer.handle.kill();
        }
        let cfg = store.repl.cfg.clone();
        let effects = store
            .repl
            .node
            .handle_output_limit(node, link, now_ms, &cfg, &mut OsIds);
        store.repl_step(
            shared,
            trace::TraceInput::OutputLimit {
                replica: node,
                link,
            },
            effects,
            now_ms,
        );
    }
}

/// Fires the replication timers that are due (called by the server cron).
pub fn run_timers(
    store: &mut crate::store::Store,
    shared: &Arc<crate::store::Shared>,
    now_ms: u64,
) {
    for timer in store.repl.due_timers(now_ms) {
        let cfg = store.repl.cfg.clone();
        let effects = store
            .repl
            .node
            .handle_timer(timer, now_ms, &cfg, &mut OsIds);
        store.repl_step(shared, trace::TraceInput::Timer { timer }, effects, now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_replids_differ() {
        let a = OsIds.fresh_replid();
        let b = OsIds.fresh_replid();
        assert_ne!(a, b, "{} {}", a.to_hex(), b.to_hex());
    }
}
