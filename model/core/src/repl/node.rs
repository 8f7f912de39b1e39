//! [`ReplNode`]: one server's replication state and every handler that changes it.
//!
//! Each handler is one guarded `match` over (state, input). Handlers append [`Effect`]s to a
//! vector the caller executes in order (see the driver contract in the module above). A node's
//! role is explicit: [`Role::Master`] or [`Role::Replica`] with its link; either role may have
//! replicas of its own (a replica forwards its master's stream to them byte for byte).

use super::backlog::Backlog;
use super::ids::{ReplId, ReplIdentity};
use super::master::{ReplicaEntry, ReplicaState, ReplicaTable, SyncKind};
use super::psync::{decide, FullReason, PsyncDecision, PsyncRequest};
use super::replica::{parse_stream, LinkPhase, ReplicaLink, StreamKind};
use super::switchover::{FailoverError, FailoverRequest, FailoverState};
use super::{Effect, LinkId, NodeId, PlantedBug, ReplConfig, ReplTimer, ToMaster, ToReplica};
use crate::resp::encode_command;
use serde::{Deserialize, Serialize};

/// Caller-supplied randomness for new replids (OS RNG in the server, a counter in the model).
pub trait IdSource {
    fn fresh_replid(&mut self) -> ReplId;
}

/// Master, or replica of a named master (with the link's state).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    Master,
    Replica(ReplicaLink),
}

/// INFO stats counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SyncStats {
    /// Master side: full resyncs served (`sync_full`).
    pub sync_full: u64,
    /// Master side: partial resyncs accepted (`sync_partial_ok`).
    pub sync_partial_ok: u64,
    /// Master side: PSYNCs with a history that had to become full (`sync_partial_err`).
    pub sync_partial_err: u64,
    /// Replica side: snapshots loaded.
    pub full_syncs_received: u64,
    /// Replica side: `+CONTINUE`s accepted.
    pub partial_syncs_received: u64,
}

/// Why a client write was refused; `Display` is Redis's error text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WriteError {
    ReadOnly,
    /// Paused by FAILOVER (Redis blocks the client; the caller may queue it instead).
    Paused,
    NoReplicas,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WriteError::ReadOnly => "READONLY You can't write against a read only replica.",
            WriteError::Paused => "writes are paused by FAILOVER",
            WriteError::NoReplicas => "NOREPLICAS Not enough good replicas to write.",
        })
    }
}

/// The master sent something that does not fit the link's phase: close the link.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LinkError {
    Unexpected { phase: LinkPhase, got: &'static str },
    BadStream(String),
    NotAReplica,
}

/// One server's replication state. See the driver contract on the parent module.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReplNode {
    pub me: NodeId,
    /// Restart count, part of every link id this node opens.
    pub incarnation: u32,
    next_link_seq: u32,
    pub identity: ReplIdentity,
    pub backlog: Option<Backlog>,
    pub role: Role,
    pub replicas: ReplicaTable,
    pub failover: FailoverState,
    /// The db of the last SELECT put into the stream (`None`: the next write emits one).
    selected_db: Option<u64>,
    pub stats: SyncStats,
}

fn name(msg: &ToReplica) -> &'static str {
    match msg {
        ToReplica::Pong => "+PONG",
        ToReplica::AuthOk => "AUTH +OK",
        ToReplica::AuthErr => "AUTH -ERR",
        ToReplica::ReplconfOk => "REPLCONF +OK",
        ToReplica::FullResync { .. } => "+FULLRESYNC",
        ToReplica::Continue { .. } => "+CONTINUE",
        ToReplica::Stream(_) => "stream bytes",
        ToReplica::TryLater => "-NOMASTERLINK/-LOADING",
        ToReplica::Closed => "close",
    }
}

impl ReplNode {
    /// A master that never replicated.
    pub fn new_master(me: NodeId, incarnation: u32, replid: ReplId) -> ReplNode {
        ReplNode {
            me,
            incarnation,
            next_link_seq: 0,
            identity: ReplIdentity::new(replid),
            backlog: None,
            role: Role::Master,
            replicas: ReplicaTable::default(),
            failover: FailoverState::NoFailover,
            selected_db: None,
            stats: SyncStats::default(),
        }
    }

    /// A replica with no history (it will ask `PSYNC ? -1`).
    pub fn new_replica(me: NodeId, incarnation: u32, replid: ReplId, master: NodeId) -> ReplNode {
        let mut node = ReplNode::new_master(me, incarnation, replid);
        node.role = Role::Replica(ReplicaLink {
            master,
            link: LinkId {
                replica: me,
                incarnation,
                seq: 0,
            },
            phase: LinkPhase::Down,
            cached: None,
            failover_psync: false,
            pending: Vec::new(),
            forget_history: false,
        });
        node
    }

    /// A node restarted from a snapshot that carried `identity` (RDB aux repl-id/repl-offset):
    /// it keeps its history and a backlog starting after it, so peers can partially resync.
    pub fn restore(
        me: NodeId,
        incarnation: u32,
        identity: ReplIdentity,
        master: Option<NodeId>,
        cfg: &ReplConfig,
    ) -> ReplNode {
        let mut node = match master {
            None => ReplNode::new_master(me, incarnation, identity.replid),
            Some(m) => ReplNode::new_replica(me, incarnation, identity.replid, m),
        };
        node.identity = identity;
        node.backlog = Some(Backlog::new(
            cfg.backlog_size_bytes,
            identity.master_repl_offset,
        ));
        if let Role::Replica(link) = &mut node.role {
            link.cached = Some(identity.cached_master());
        }
        node
    }

    /// A master restarted from a snapshot that carried its replid and offset, as Redis 7.0
    /// restarts one: the saved history becomes replid2 (valid up to the saved offset) under a
    /// new replid, so replicas that held exactly that history continue partially, while a
    /// replica that got further than the snapshot (writes the master lost) must sync in full.
    pub fn restore_master_after_restart(
        me: NodeId,
        incarnation: u32,
        identity: ReplIdentity,
        cfg: &ReplConfig,
        ids: &mut dyn IdSource,
    ) -> ReplNode {
        let mut node = ReplNode::restore(me, incarnation, identity, None, cfg);
        node.identity.shift_replid(ids.fresh_replid());
        node
    }

    /// Arms the role's timers and, for a replica, opens the first link.
    pub fn start(&mut self, now_ms: u64, cfg: &ReplConfig) -> Vec<Effect> {
        let mut out = Vec::new();
        match self.role {
            Role::Master => out.push(Effect::SetTimer {
                timer: ReplTimer::MasterPing,
                at_ms: now_ms + cfg.ping_period_ms,
            }),
            Role::Replica(_) => self.connect(now_ms, cfg, &mut out),
        }
        out
    }

    /// The link to our master, if we are a replica.
    pub fn link(&self) -> Option<&ReplicaLink> {
        match &self.role {
            Role::Master => None,
            Role::Replica(link) => Some(link),
        }
    }

    // ----- client-facing --------------------------------------------------------------

    /// A client write to db `db`. On success the caller applies it, executes the effects (the
    /// stream bytes for replicas) and replies.
    pub fn handle_write<A: AsRef<[u8]>>(
        &mut self,
        db: u64,
        args: &[A],
        now_ms: u64,
        cfg: &ReplConfig,
    ) -> Result<Vec<Effect>, WriteError> {
        self.handle_writes([(db, args)], now_ms, cfg)
    }

    /// Client writes executed one after the other (a client's pipelined batch): the same
    /// offsets, backlog and stream bytes as [`Self::handle_write`] for each in turn, except that
    /// each replica gets the batch's bytes as one message instead of one per write.
    pub fn handle_writes<'a, A: AsRef<[u8]> + 'a>(
        &mut self,
        writes: impl IntoIterator<Item = (u64, &'a [A])>,
        now_ms: u64,
        cfg: &ReplConfig,
    ) -> Result<Vec<Effect>, WriteError> {
        match (&self.role, self.failover) {
            (Role::Replica(_), _) => Err(WriteError::ReadOnly),
            (Role::Master, f) if f.pauses_writes() => Err(WriteError::Paused),
            (Role::Master, _)
                if cfg.min_replicas_to_write > 0
                    && self
                        .replicas
                        .good_replicas(now_ms, cfg.min_replicas_max_lag_ms)
                        < cfg.min_replicas_to_write =>
            {
                Err(WriteError::NoReplicas)
            }
            (Role::Master, _) => {
                let mut out = Vec::new();
                if self.backlog.is_some() {
                    let mut bytes = Vec::new();
                    for (db, args) in writes {
                        if self.selected_db != Some(db) {
                            encode_command(
                                &[b"SELECT".as_slice(), db.to_string().as_bytes()],
                                &mut bytes,
                            );
                            self.selected_db = Some(db);
                        }
                        encode_command(args, &mut bytes);
                    }
                    if !bytes.is_empty() {
                        self.feed(&bytes, &mut out);
                    }
                }
                // Without a backlog there is no replica and Redis does not advance the offset.
                Ok(out)
            }
        }
    }

    /// Whether client writes go into a replication stream: a master with a backlog. Without
    /// one (no replica ever attached) `handle_write` records nothing, as a Redis master
    /// without a backlog keeps its offset; drivers may skip encoding writes then.
    pub fn records_writes(&self) -> bool {
        matches!(self.role, Role::Master) && self.backlog.is_some()
    }

    /// WAIT's count: replicas that acknowledged at least `offset`.
    pub fn wait_count(&self, offset: u64) -> u64 {
        self.replicas.acked_at_least(offset)
    }

    /// WAIT that must block: ask every replica for an ack (`REPLCONF GETACK *` in the stream).
    pub fn request_acks(&mut self) -> Vec<Effect> {
        let mut out = Vec::new();
        if matches!(self.role, Role::Master) && self.backlog.is_some() {
            let mut bytes = Vec::new();
            encode_command(&["REPLCONF", "GETACK", "*"], &mut bytes);
            self.feed(&bytes, &mut out);
        }
        out
    }

    /// `FAILOVER [TO ..] [TIMEOUT ms] [FORCE]`.
    pub fn handle_failover(
        &mut self,
        req: FailoverRequest,
        now_ms: u64,
        cfg: &ReplConfig,
    ) -> Result<Vec<Effect>, FailoverError> {
        req.validate()?;
        let target = match (&self.role, self.failover, req.target) {
            (Role::Replica(_), _, _) => return Err(FailoverError::IsReplica),
            (Role::Master, f, _) if f != FailoverState::NoFailover => {
                return Err(FailoverError::AlreadyInProgress)
            }
            (Role::Master, _, Some(t)) => match self.replicas.get(t) {
                Some(e) if e.state == ReplicaState::Online => t,
                _ => return Err(FailoverError::TargetNotReplica),
            },
            (Role::Master, _, None) => match self
                .replicas
                .iter()
                .find(|e| e.state == ReplicaState::Online)
            {
                Some(e) => e.node,
                None => return Err(FailoverError::NoTarget),
            },
        };
        let mut out = Vec::new();
        self.failover = FailoverState::WaitingForSync {
            target,
            force: req.force,
        };
        if req.timeout_ms > 0 {
            out.push(Effect::SetTimer {
                timer: ReplTimer::FailoverTimeout,
                at_ms: now_ms + req.timeout_ms,
            });
        }
        self.check_failover_sync(now_ms, cfg, &mut out);
        Ok(out)
    }

    /// `FAILOVER ABORT` while waiting for the target to catch up.
    pub fn handle_failover_abort(&mut self) -> Result<Vec<Effect>, FailoverError> {
        match self.failover {
            FailoverState::WaitingForSync { .. } => {
                self.failover = FailoverState::NoFailover;
                Ok(vec![Effect::CancelTimer(ReplTimer::FailoverTimeout)])
            }
            // Once demoted the PSYNC is on the wire; Verdis lets it finish (see docs/model.md).
            FailoverState::InProgress { .. } | FailoverState::NoFailover => {
                Err(FailoverError::NoFailoverInProgress)
            }
        }
    }

    // ----- timers ---------------------------------------------------------------------

    /// A named timer's deadline passed.
    pub fn handle_timer(
        &mut self,
        timer: ReplTimer,
        now_ms: u64,
        cfg: &ReplConfig,
        ids: &mut dyn IdSource,
    ) -> Vec<Effect> {
        let mut out = Vec::new();
        match (timer, &self.role) {
            (ReplTimer::ConnectRetry, Role::Replica(link)) if link.phase == LinkPhase::Down => {
                self.connect(now_ms, cfg, &mut out)
            }
            (ReplTimer::ReplicaAck, Role::Replica(link)) if link.phase == LinkPhase::Streaming => {
                out.push(self.ack_to_master(self.identity.master_repl_offset, cfg));
                out.push(Effect::SetTimer {
                    timer: ReplTimer::ReplicaAck,
                    at_ms: now_ms + cfg.ack_period_ms,
                });
            }
            (ReplTimer::ReplicaTimeout, Role::Replica(link)) if link.phase != LinkPhase::Down => {
                self.link_down(true, now_ms, cfg, &mut out)
            }
            (ReplTimer::MasterPing, Role::Master) => {
                // No PING while writes are paused: it would move the offset the target must reach.
                if !self.replicas.is_empty()
                    && self.backlog.is_some()
                    && !self.failover.pauses_writes()
                {
                    let mut bytes = Vec::new();
                    // Lower case, byte for byte as Redis 7.0 streams it.
                    encode_command(&["ping"], &mut bytes);
                    self.feed(&bytes, &mut out);
                }
                out.push(Effect::SetTimer {
                    timer: ReplTimer::MasterPing,
                    at_ms: now_ms + cfg.ping_period_ms,
                });
            }
            (ReplTimer::MasterTimeout(r), _) => {
                if let Some(e) = self.replicas.remove(r) {
                    out.push(Effect::ToReplica {
                        replica: r,
                        link: e.link,
                        msg: ToReplica::Closed,
                    });
                    self.after_replica_left(now_ms, cfg, &mut out);
                }
            }
            (ReplTimer::BacklogTtl, Role::Master)
                if self.replicas.is_empty() && self.backlog.is_some() =>
            {
                // repl-backlog-ttl: free the backlog and start a new history.
                self.backlog = None;
                self.identity.replid = ids.fresh_replid();
                self.identity.clear_replid2();
            }
            (ReplTimer::FailoverTimeout, Role::Master) => match self.failover {
                FailoverState::WaitingForSync {
                    target,
                    force: true,
                } => self.demote_for_failover(target, now_ms, cfg, &mut out),
                FailoverState::WaitingForSync { force: false, .. } => {
                    self.failover = FailoverState::NoFailover
                }
                FailoverState::InProgress { .. } | FailoverState::NoFailover => {}
            },
            // A timer of a role or phase we left: nothing to do.
            _ => {}
        }
        out
    }

    // ----- replica side ---------------------------------------------------------------

    /// A message from our master on `link`.
    pub fn handle_from_master(
        &mut self,
        link: LinkId,
        msg: ToReplica,
        now_ms: u64,
        cfg: &ReplConfig,
        ids: &mut dyn IdSource,
    ) -> Result<Vec<Effect>, LinkError> {
        let mut out = Vec::new();
        let Role::Replica(l) = &mut self.role else {
            // We were promoted since: the old connection's bytes are stale.
            return Ok(out);
        };
        if l.link != link {
            // Stale: a reply or stream bytes of an older connection.
            return Ok(out);
        }
        let (master, phase) = (l.master, l.phase);
        if !matches!(msg, ToReplica::Closed) && phase != LinkPhase::Down {
            out.push(Effect::SetTimer {
                timer: ReplTimer::ReplicaTimeout,
                at_ms: now_ms + cfg.repl_timeout_ms,
            });
        }
        match (phase, msg) {
            (LinkPhase::Down, _) => {}
            (_, ToReplica::Closed) => self.link_down(false, now_ms, cfg, &mut out),
            (LinkPhase::AwaitPong, ToReplica::Pong) => {
                let mut replies_left = 2u8;
                if cfg.masterauth {
                    out.push(Effect::ToMaster {
                        master,
                        link,
                        msg: ToMaster::Auth,
                    });
                    replies_left += 1;
                }
                out.push(Effect::ToMaster {
                    master,
                    link,
                    msg: ToMaster::ListeningPort(cfg.listening_port),
                });
                out.push(Effect::ToMaster {
                    master,
                    link,
                    msg: ToMaster::Capa,
                });
                self.set_phase(LinkPhase::AwaitReplconf { replies_left });
            }
            (LinkPhase::AwaitReplconf { .. }, ToReplica::AuthErr) => {
                self.link_down(true, now_ms, cfg, &mut out)
            }
            (
                LinkPhase::AwaitReplconf { replies_left },
                ToReplica::AuthOk | ToReplica::ReplconfOk,
            ) => {
                if replies_left > 1 {
                    self.set_phase(LinkPhase::AwaitReplconf {
                        replies_left: replies_left - 1,
                    });
                } else {
                    out.push(self.psync_request());
                    self.set_phase(LinkPhase::AwaitPsyncReply);
                }
            }
            (LinkPhase::AwaitPsyncReply, ToReplica::FullResync { replid, offset }) => {
                self.end_failover_psync();
                self.set_phase(LinkPhase::Transfer { replid, offset });
            }
            (LinkPhase::AwaitPsyncReply, ToReplica::Continue { replid }) => {
                self.end_failover_psync();
                if replid != self.identity.replid {
                    // +CONTINUE <newid>: our master was promoted; its new id takes over and our
                    // sub-replicas must hear of the switch.
                    self.identity.shift_replid(replid);
                    self.disconnect_replicas(now_ms, cfg, None, &mut out);
                }
                if self.backlog.is_none() {
                    self.backlog = Some(Backlog::new(
                        cfg.backlog_size_bytes,
                        self.identity.master_repl_offset,
                    ));
                }
                self.stats.partial_syncs_received += 1;
                self.set_phase(LinkPhase::Streaming);
                out.push(Effect::SetTimer {
                    timer: ReplTimer::ReplicaAck,
                    at_ms: now_ms + cfg.ack_period_ms,
                });
            }
            (LinkPhase::AwaitPsyncReply, ToReplica::TryLater)
                if matches!(self.failover, FailoverState::InProgress { .. }) =>
            {
                // The target refused `PSYNC ... FAILOVER` (it is not in sync with us): abort the
                // switchover and serve as master again, as Redis does.
                self.failover = FailoverState::NoFailover;
                self.revert_to_master(now_ms, cfg, ids, &mut out);
            }
            (LinkPhase::AwaitPsyncReply, ToReplica::TryLater) => {
                // -NOMASTERLINK / -LOADING: the master cannot serve us yet; retry later.
                self.link_down(true, now_ms, cfg, &mut out)
            }
            (LinkPhase::Streaming, ToReplica::Stream(bytes)) => {
                self.apply_stream(&bytes, cfg, &mut out)?
            }
            (phase, msg) => {
                return Err(LinkError::Unexpected {
                    phase,
                    got: name(&msg),
                })
            }
        }
        Ok(out)
    }

    /// The snapshot announced by `+FULLRESYNC` on `link` has been received and loaded by the
    /// driver: the data set is now the master's as of the announced offset.
    pub fn handle_rdb_loaded(
        &mut self,
        link: LinkId,
        now_ms: u64,
        cfg: &ReplConfig,
    ) -> Result<Vec<Effect>, LinkError> {
        let mut out = Vec::new();
        let (replid, offset) = match &self.role {
            Role::Replica(l) if l.link != link => return Ok(out), // stale: an older connection's RDB
            Role::Replica(l) => match l.phase {
                LinkPhase::Transfer { replid, offset } => (replid, offset),
                phase => {
                    return Err(LinkError::Unexpected {
                        phase,
                        got: "RDB payload",
                    })
                }
            },
            Role::Master => return Err(LinkError::NotAReplica),
        };
        out.push(Effect::LoadRdb { link });
        self.identity = ReplIdentity {
            replid,
            replid2: ReplId::ZERO,
            second_repl_offset: -1,
            master_repl_offset: offset,
        };
        self.backlog = Some(Backlog::new(cfg.backlog_size_bytes, offset));
        // A new history: our own replicas must full-sync from us again.
        self.disconnect_replicas(now_ms, cfg, None, &mut out);
        self.stats.full_syncs_received += 1;
        self.set_phase(LinkPhase::Streaming);
        out.push(self.ack_to_master(offset, cfg));
        out.push(Effect::SetTimer {
            timer: ReplTimer::ReplicaAck,
            at_ms: now_ms + cfg.ack_period_ms,
        });
        Ok(out)
    }

    /// The transport closed `link` (connect failure, reset, EOF). Stale links are ignored.
    pub fn handle_link_closed(
        &mut self,
        link: LinkId,
        now_ms: u64,
        cfg: &ReplConfig,
    ) -> Vec<Effect> {
        self.close_current_link(link, false, now_ms, cfg)
    }

    /// Takes our current link down (notifying the master if `notify`); stale links and a link
    /// already down change nothing.
    fn close_current_link(
        &mut self,
        link: LinkId,
        notify: bool,
        now_ms: u64,
        cfg: &ReplConfig,
    ) -> Vec<Effect> {
        let mut out = Vec::new();
        match &self.role {
            Role::Replica(l) if l.link == link && l.phase != LinkPhase::Down => {
                self.link_down(notify, now_ms, cfg, &mut out)
            }
            // Stale or already down.
            _ => {}
        }
        out
    }

    // ----- master side ----------------------------------------------------------------

    /// A message from replica `replica` on `link`.
    pub fn handle_from_replica(
        &mut self,
        replica: NodeId,
        link: LinkId,
        msg: ToMaster,
        now_ms: u64,
        cfg: &ReplConfig,
        ids: &mut dyn IdSource,
    ) -> Vec<Effect> {
        let mut out = Vec::new();
        let current = self.replicas.get(replica).map(|e| e.link);
        match (current, &msg) {
            // Stale: an older connection of this replica, superseded by a newer one.
            (Some(cur), _) if link.is_older_than(&cur) => return out,
            (Some(cur), _) if cur == link => {}
            // A new connection starts with PING; table full means we refuse it.
            (_, ToMaster::Ping) if current.is_some() || self.replicas.len() < cfg.max_replicas => {
                self.replicas.insert(ReplicaEntry {
                    node: replica,
                    link,
                    state: ReplicaState::Handshake,
                    ack_offset: 0,
                    has_acked: false,
                    last_ack_ms: now_ms,
                    served: None,
                    psync_from: None,
                });
            }
            // A connection we do not know and not a new one: we closed it (repl-timeout) or it
            // died with our restart. The peer learns that from the transport (FIN/RST), so the
            // bytes are dropped here.
            _ => return out,
        }
        out.push(Effect::SetTimer {
            timer: ReplTimer::MasterTimeout(replica),
            at_ms: now_ms + cfg.repl_timeout_ms,
        });
        let reply = |msg| Effect::ToReplica { replica, link, msg };
        match msg {
            ToMaster::Ping => out.push(reply(ToReplica::Pong)),
            ToMaster::Auth => out.push(reply(ToReplica::AuthOk)),
            ToMaster::ListeningPort(_) | ToMaster::Capa => out.push(reply(ToReplica::ReplconfOk)),
            ToMaster::Psync { req, failover } => {
                self.serve_psync(replica, link, req, failover, now_ms, cfg, ids, &mut out)
            }
            ToMaster::Ack { offset } => {
                if let Some(e) = self.replicas.get_mut(replica) {
                    e.ack_offset = e.ack_offset.max(offset);
                    e.has_acked = true;
                    e.last_ack_ms = now_ms;
                }
                self.check_failover_sync(now_ms, cfg, &mut out);
            }
            ToMaster::Closed => {
                self.replicas.remove(replica);
                out.retain(|e| {
                    !matches!(
                        e,
                        Effect::SetTimer {
                            timer: ReplTimer::MasterTimeout(_),
                            ..
                        }
                    )
                });
                out.push(Effect::CancelTimer(ReplTimer::MasterTimeout(replica)));
                self.after_replica_left(now_ms, cfg, &mut out);
            }
        }
        out
    }

    /// The snapshot for a full resync was completely written to `replica`: it is online.
    pub fn handle_rdb_sent(&mut self, replica: NodeId, link: LinkId) {
        match self.replicas.get_mut(replica) {
            Some(e) if e.link == link && e.state == ReplicaState::SendBulk => {
                e.state = ReplicaState::Online
            }
            // The connection was replaced or dropped meanwhile.
            _ => {}
        }
    }

    /// The driver found `replica`'s unsent stream past its output-buffer limit. The master
    /// drops the replica, unless the limit does not apply to it yet
    /// ([`ReplicaEntry::output_limit_applies`]): the replica is told its connection closed
    /// (the driver closes it at once, without sending what is queued, as Redis frees such a
    /// client) and the master forgets it, as if it had closed. Returns no effect when the
    /// replica stays.
    pub fn handle_output_limit(
        &mut self,
        replica: NodeId,
        link: LinkId,
        now_ms: u64,
        cfg: &ReplConfig,
        ids: &mut dyn IdSource,
    ) -> Vec<Effect> {
        match self.replicas.get(replica) {
            Some(e) if e.link == link && e.output_limit_applies() => {}
            // Exempt, or a connection already replaced or gone.
            _ => return Vec::new(),
        }
        let mut out = vec![Effect::ToReplica {
            replica,
            link,
            msg: ToReplica::Closed,
        }];
        out.extend(self.handle_from_replica(replica, link, ToMaster::Closed, now_ms, cfg, ids));
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn serve_psync(
        &mut self,
        replica: NodeId,
        link: LinkId,
        req: PsyncRequest,
        failover: bool,
        now_ms: u64,
        cfg: &ReplConfig,
        ids: &mut dyn IdSource,
        out: &mut Vec<Effect>,
    ) {
        let reply = |msg| Effect::ToReplica { replica, link, msg };
        match (&self.role, self.failover) {
            // PSYNC ... FAILOVER naming our own history: the old master hands over to us.
            (Role::Replica(_), _) if failover && req.replid == Some(self.identity.replid) => {
                self.promote(Some(replica), now_ms, cfg, ids, out)
            }
            (Role::Replica(l), _) if l.phase != LinkPhase::Streaming => {
                out.push(reply(ToReplica::TryLater));
                return;
            }
            (Role::Replica(_), FailoverState::InProgress { .. }) => {
                out.push(reply(ToReplica::TryLater));
                return;
            }
            _ => {}
        }
        if self.backlog.is_none() {
            // First replica of a master: a new history starts here.
            assert!(
                matches!(self.role, Role::Master),
                "a streaming replica always has a backlog"
            );
            self.identity.replid = ids.fresh_replid();
            self.identity.clear_replid2();
            self.backlog = Some(Backlog::new(
                cfg.backlog_size_bytes,
                self.identity.master_repl_offset,
            ));
        }
        out.push(Effect::CancelTimer(ReplTimer::BacklogTtl));
        match planted_psync(
            cfg,
            decide(&self.identity, self.backlog.as_ref(), req),
            req,
            self.backlog.as_ref(),
        ) {
            PsyncDecision::Partial {
                replid,
                from_offset,
                bytes,
            } => {
                self.stats.sync_partial_ok += 1;
                if let Some(e) = self.replicas.get_mut(replica) {
                    e.state = ReplicaState::Online;
                    e.served = Some(SyncKind::Partial);
                    e.psync_from = Some(from_offset);
                }
                out.push(reply(ToReplica::Continue { replid }));
                if !bytes.is_empty() {
                    out.push(reply(ToReplica::Stream(bytes.into())));
                }
            }
            PsyncDecision::Full {
                replid,
                offset,
                reason,
            } => {
                self.stats.sync_full += 1;
                if reason != FullReason::NoHistory {
                    self.stats.sync_partial_err += 1;
                }
                if let Some(e) = self.replicas.get_mut(replica) {
                    // The snapshot starts at once: wait_bgsave is passed through to send_bulk.
                    e.state = ReplicaState::SendBulk;
                    e.served = Some(SyncKind::Full);
                    e.psync_from = None;
                    e.ack_offset = 0;
                    e.has_acked = false;
                }
                // The first write after a snapshot always carries a SELECT.
                self.selected_db = None;
                out.push(reply(ToReplica::FullResync { replid, offset }));
                out.push(Effect::SendRdb {
                    replica,
                    link,
                    replid,
                    offset,
                });
            }
        }
    }

    // ----- internals ------------------------------------------------------------------

    /// Appends stream bytes to our offset and backlog and sends them to our replicas.
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<Effect>) {
        self.identity.master_repl_offset += bytes.len() as u64;
        if let Some(b) = &mut self.backlog {
            b.append(bytes);
            debug_assert_eq!(b.end_offset(), self.identity.master_repl_offset);
        }
        self.send_stream(bytes, out);
    }

    fn apply_stream(
        &mut self,
        bytes: &[u8],
        cfg: &ReplConfig,
        out: &mut Vec<Effect>,
    ) -> Result<(), LinkError> {
        let Role::Replica(l) = &mut self.role else {
            unreachable!("apply_stream on a master")
        };
        l.pending.extend_from_slice(bytes);
        let (cmds, consumed) =
            parse_stream(&l.pending, usize::MAX).map_err(|e| LinkError::BadStream(e.0))?;
        for cmd in cmds {
            match cmd.kind {
                // The GETACK answer is the offset before the GETACK itself.
                StreamKind::GetAck => {
                    out.push(self.ack_to_master(self.identity.master_repl_offset, cfg))
                }
                StreamKind::Write(args) => out.push(Effect::Apply { args }),
                StreamKind::Ping | StreamKind::OtherReplconf => {}
            }
            self.identity.master_repl_offset += cmd.wire_bytes;
        }
        if consumed > 0 {
            let Role::Replica(l) = &mut self.role else {
                unreachable!("apply_stream on a master")
            };
            // Sub-replicas get our master's stream byte for byte: offsets are equal down a chain.
            let fed = &l.pending[..consumed];
            if let Some(b) = &mut self.backlog {
                b.append(fed);
            }
            let fed = fed.to_vec();
            l.pending.drain(..consumed);
            self.send_stream(&fed, out);
        }
        Ok(())
    }

    /// Sends stream bytes to every replica that receives the stream: one copy, shared.
    fn send_stream(&self, bytes: &[u8], out: &mut Vec<Effect>) {
        let mut shared = None;
        for e in self.replicas.iter().filter(|e| e.state.receives_stream()) {
            let b = shared.get_or_insert_with(|| bytes::Bytes::copy_from_slice(bytes));
            out.push(Effect::ToReplica {
                replica: e.node,
                link: e.link,
                msg: ToReplica::Stream(b.clone()),
            });
        }
    }

    fn ack_to_master(&self, offset: u64, cfg: &ReplConfig) -> Effect {
        let l = self.link().expect("acks are sent by replicas");
        let offset = match cfg.planted_bug {
            Some(PlantedBug::AckBeyondApplied) => offset + 1,
            _ => offset,
        };
        Effect::ToMaster {
            master: l.master,
            link: l.link,
            msg: ToMaster::Ack { offset },
        }
    }

    fn psync_request(&self) -> Effect {
        let l = self.link().expect("PSYNC is sent by replicas");
        let req = match l.cached {
            Some(c) => PsyncRequest {
                replid: Some(c.replid),
                offset: super::ids::offset_i64(c.offset) + 1,
            },
            None => PsyncRequest {
                replid: None,
                offset: -1,
            },
        };
        Effect::ToMaster {
            master: l.master,
            link: l.link,
            msg: ToMaster::Psync {
                req,
                failover: l.failover_psync,
            },
        }
    }

    fn set_phase(&mut self, phase: LinkPhase) {
        let Role::Replica(l) = &mut self.role else {
            unreachable!("link phase on a master")
        };
        l.phase = phase;
        if phase == LinkPhase::Streaming {
            // From now on we hold history worth resuming.
            l.cached = None;
            l.forget_history = false;
        }
    }

    fn end_failover_psync(&mut self) {
        if let Role::Replica(l) = &mut self.role {
            l.failover_psync = false;
        }
        if matches!(self.failover, FailoverState::InProgress { .. }) {
            self.failover = FailoverState::NoFailover;
        }
    }

    /// Opens a new link (new link id) to our master and sends PING.
    fn connect(&mut self, now_ms: u64, cfg: &ReplConfig, out: &mut Vec<Effect>) {
        self.next_link_seq += 1;
        let (me, incarnation, seq) = (self.me, self.incarnation, self.next_link_seq);
        let identity = self.identity;
        let Role::Replica(l) = &mut self.role else {
            unreachable!("connect on a master")
        };
        l.link = LinkId {
            replica: me,
            incarnation,
            seq,
        };
        l.phase = LinkPhase::AwaitPong;
        l.pending.clear();
        if l.forget_history {
            l.cached = None;
        } else if l.cached.is_none() && self.backlog.is_some() {
            // We hold a history (synced before, or a demoted master): resume it.
            l.cached = Some(identity.cached_master());
        }
        out.push(Effect::Connect {
            master: l.master,
            link: l.link,
        });
        out.push(Effect::ToMaster {
            master: l.master,
            link: l.link,
            msg: ToMaster::Ping,
        });
        out.push(Effect::SetTimer {
            timer: ReplTimer::ReplicaTimeout,
            at_ms: now_ms + cfg.repl_timeout_ms,
        });
    }

    /// Our link to the master is gone; `notify` tells the master (we are the side closing it).
    fn link_down(&mut self, notify: bool, now_ms: u64, cfg: &ReplConfig, out: &mut Vec<Effect>) {
        let Role::Replica(l) = &mut self.role else {
            unreachable!("link_down on a master")
        };
        if notify {
            out.push(Effect::ToMaster {
                master: l.master,
                link: l.link,
                msg: ToMaster::Closed,
            });
        }
        l.phase = LinkPhase::Down;
        l.pending.clear();
        out.push(Effect::CancelTimer(ReplTimer::ReplicaAck));
        out.push(Effect::CancelTimer(ReplTimer::ReplicaTimeout));
        if cfg.planted_bug == Some(PlantedBug::ReplicaNeverRetries) {
            return;
        }
        out.push(Effect::SetTimer {
            timer: ReplTimer::ConnectRetry,
            at_ms: now_ms + cfg.connect_retry_ms,
        });
    }

    /// Closes every replica connection except `keep` (they reconnect and learn our new id).
    fn disconnect_replicas(
        &mut self,
        now_ms: u64,
        cfg: &ReplConfig,
        keep: Option<NodeId>,
        out: &mut Vec<Effect>,
    ) {
        for e in self.replicas.clear() {
            if Some(e.node) == keep {
                self.replicas.insert(e);
                continue;
            }
            out.push(Effect::ToReplica {
                replica: e.node,
                link: e.link,
                msg: ToReplica::Closed,
            });
            out.push(Effect::CancelTimer(ReplTimer::MasterTimeout(e.node)));
        }
        self.after_replica_left(now_ms, cfg, out);
    }

    fn after_replica_left(&mut self, now_ms: u64, cfg: &ReplConfig, out: &mut Vec<Effect>) {
        if self.replicas.is_empty() && matches!(self.role, Role::Master) && self.backlog.is_some() {
            out.push(Effect::SetTimer {
                timer: ReplTimer::BacklogTtl,
                at_ms: now_ms + cfg.backlog_ttl_ms,
            });
        }
    }

    /// The driver closes `link` because the master misbehaved (a [`LinkError`]); the master is
    /// told the connection closed. A malformed stream (the link was streaming) also drops our
    /// history: the next sync is full, as Redis's (see [`ReplicaLink::forget_history`]); an
    /// unexpected handshake reply keeps it, as Redis keeps its cached master then.
    pub fn handle_link_error(
        &mut self,
        link: LinkId,
        now_ms: u64,
        cfg: &ReplConfig,
    ) -> Vec<Effect> {
        if let Role::Replica(l) = &mut self.role {
            if l.link == link && l.phase == LinkPhase::Streaming {
                l.forget_history = true;
            }
        }
        self.close_current_link(link, true, now_ms, cfg)
    }

    /// The operator closed `link` (`CLIENT KILL TYPE master`): the master is told the
    /// connection closed, and our history is kept, so the next sync resumes it partially, as a
    /// Redis replica caches its master when a client kill frees it (only a protocol error
    /// drops it: [`Self::handle_link_error`]).
    pub fn handle_link_killed(
        &mut self,
        link: LinkId,
        now_ms: u64,
        cfg: &ReplConfig,
    ) -> Vec<Effect> {
        self.close_current_link(link, true, now_ms, cfg)
    }

    /// `REPLICAOF <host> <port>`: follow `master` from now on. Our own replicas are
    /// disconnected (they reconnect and learn of the change), and a node that holds a history
    /// resumes it with `PSYNC <replid> <offset+1>` (a master turned replica synthesizes its
    /// cached master from its own replid and offset), as Redis does. Following the master we
    /// already follow changes nothing.
    pub fn handle_replicaof(
        &mut self,
        master: NodeId,
        now_ms: u64,
        cfg: &ReplConfig,
    ) -> Vec<Effect> {
        let mut out = Vec::new();
        match &self.role {
            Role::Replica(l) if l.master == master => return out,
            Role::Replica(l) => {
                if l.phase != LinkPhase::Down {
                    out.push(Effect::ToMaster {
                        master: l.master,
                        link: l.link,
                        msg: ToMaster::Closed,
                    });
                }
                out.push(Effect::CancelTimer(ReplTimer::ReplicaAck));
                out.push(Effect::CancelTimer(ReplTimer::ReplicaTimeout));
                out.push(Effect::CancelTimer(ReplTimer::ConnectRetry));
            }
            Role::Master => {
                out.push(Effect::CancelTimer(ReplTimer::MasterPing));
                out.push(Effect::CancelTimer(ReplTimer::BacklogTtl));
                out.push(Effect::CancelTimer(ReplTimer::FailoverTimeout));
                self.failover = FailoverState::NoFailover;
            }
        }
        // A master turned replica offers its own history (`PSYNC <replid> <offset+1>`), even
        // with no backlog, exactly as Redis's replicationCacheMasterUsingMyself.
        let cached = match &self.role {
            Role::Master => Some(self.identity.cached_master()),
            Role::Replica(_) => None,
        };
        self.disconnect_replicas(now_ms, cfg, None, &mut out);
        self.role = Role::Replica(ReplicaLink {
            master,
            link: LinkId {
                replica: self.me,
                incarnation: self.incarnation,
                seq: self.next_link_seq,
            },
            phase: LinkPhase::Down,
            cached,
            failover_psync: false,
            pending: Vec::new(),
            forget_history: false,
        });
        // connect() caches our own history when we have one.
        self.connect(now_ms, cfg, &mut out);
        out
    }

    /// `REPLICAOF NO ONE`: a replica becomes a master under a new replid, its old history
    /// reachable as replid2, so its former siblings can continue partially. A master is left
    /// as it is.
    pub fn handle_replicaof_no_one(
        &mut self,
        now_ms: u64,
        cfg: &ReplConfig,
        ids: &mut dyn IdSource,
    ) -> Vec<Effect> {
        let mut out = Vec::new();
        if matches!(self.role, Role::Replica(_)) {
            self.promote(None, now_ms, cfg, ids, &mut out);
        }
        out
    }

    /// An aborted switchover: the demoted master takes its role back under a new replid
    /// (its old history stays reachable as replid2), like REPLICAOF NO ONE.
    fn revert_to_master(
        &mut self,
        now_ms: u64,
        cfg: &ReplConfig,
        ids: &mut dyn IdSource,
        out: &mut Vec<Effect>,
    ) {
        // promote() closes our link to the target.
        self.promote(None, now_ms, cfg, ids, out);
    }

    /// Replica -> master (the target of a coordinated switchover; also REPLICAOF NO ONE).
    fn promote(
        &mut self,
        keep: Option<NodeId>,
        now_ms: u64,
        cfg: &ReplConfig,
        ids: &mut dyn IdSource,
        out: &mut Vec<Effect>,
    ) {
        let Role::Replica(l) = &self.role else {
            unreachable!("promote a master")
        };
        if l.phase != LinkPhase::Down {
            out.push(Effect::ToMaster {
                master: l.master,
                link: l.link,
                msg: ToMaster::Closed,
            });
        }
        out.push(Effect::CancelTimer(ReplTimer::ReplicaAck));
        out.push(Effect::CancelTimer(ReplTimer::ReplicaTimeout));
        out.push(Effect::CancelTimer(ReplTimer::ConnectRetry));
        self.role = Role::Master;
        self.identity.shift_replid(ids.fresh_replid());
        // A replica that never synced has no backlog and gets none here, as in Redis: its first
        // replica then starts a new history (new replid, replid2 cleared) in serve_psync.
        self.selected_db = None;
        self.disconnect_replicas(now_ms, cfg, keep, out);
        out.push(Effect::SetTimer {
            timer: ReplTimer::MasterPing,
            at_ms: now_ms + cfg.ping_period_ms,
        });
    }

    /// waiting-for-sync -> failover-in-progress once the target holds our whole stream.
    fn check_failover_sync(&mut self, now_ms: u64, cfg: &ReplConfig, out: &mut Vec<Effect>) {
        if let FailoverState::WaitingForSync { target, .. } = self.failover {
            let caught_up = self.replicas.get(target).is_some_and(|e| {
                // A real ack, not the 0 a fresh entry starts with (FrogDB's seeded-ack bug).
                e.state == ReplicaState::Online
                    && e.has_acked
                    && e.ack_offset == self.identity.master_repl_offset
            });
            if caught_up {
                self.demote_for_failover(target, now_ms, cfg, out);
            }
        }
    }

    /// Master -> replica of `target`, resuming our own history with `PSYNC ... FAILOVER`.
    fn demote_for_failover(
        &mut self,
        target: NodeId,
        now_ms: u64,
        cfg: &ReplConfig,
        out: &mut Vec<Effect>,
    ) {
        assert!(
            matches!(self.role, Role::Master),
            "only a master fails over"
        );
        self.failover = FailoverState::InProgress { target };
        out.push(Effect::CancelTimer(ReplTimer::FailoverTimeout));
        out.push(Effect::CancelTimer(ReplTimer::MasterPing));
        out.push(Effect::CancelTimer(ReplTimer::BacklogTtl));
        let cached = self.identity.cached_master();
        self.role = Role::Replica(ReplicaLink {
            master: target,
            link: LinkId {
                replica: self.me,
                incarnation: self.incarnation,
                seq: self.next_link_seq,
            },
            phase: LinkPhase::Down,
            cached: Some(cached),
            failover_psync: true,
            pending: Vec::new(),
            forget_history: false,
        });
        self.connect(now_ms, cfg, out);
    }
}

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;

/// Applies a PSYNC-related planted bug to an honest decision (identity when none is planted).
fn planted_psync(
    cfg: &ReplConfig,
    honest: PsyncDecision,
    req: PsyncRequest,
    backlog: Option<&Backlog>,
) -> PsyncDecision {
    match (cfg.planted_bug, honest, backlog) {
        (
            Some(PlantedBug::ContinueOutsideBacklog),
            PsyncDecision::Full {
                replid,
                reason: FullReason::OutsideBacklog,
                ..
            },
            Some(b),
        ) => PsyncDecision::Partial {
            replid,
            from_offset: u64::try_from(req.offset).unwrap_or(0),
            bytes: b.read_from(b.first_byte_offset()).unwrap_or_default(),
        },
        (
            Some(PlantedBug::FullSyncInsideBacklog),
            PsyncDecision::Partial { replid, .. },
            Some(b),
        ) => PsyncDecision::Full {
            replid,
            offset: b.end_offset(),
            reason: FullReason::OutsideBacklog,
        },
        (_, honest, _) => honest,
    }
}
