//! # The replication model: master, replicas and a client over an ordered, faulty network
//!
//! Every server is a [`NodeActor`], a thin adapter over [`verdis_core::repl::ReplNode`]: it
//! turns stateright deliveries and timer firings into the core's `handle_*` calls and the
//! core's [`Effect`]s back into sends, timers and saves. It makes no protocol decision of its
//! own. A [`ClientActor`] sends `SET k<i> v<i>` writes to node 0; their RESP encoding (the same
//! encoder the server uses) is what moves the replication offsets, so offsets in the model are
//! the byte offsets the server will show. A node's data set is the sequence of write ids it
//! applied, which is all the properties need.
//!
//! ## Network and faults
//! The network is stateright's ordered network: one FIFO per (source, destination), as TCP
//! gives per connection. Every message on a replication link carries its [`LinkId`]; a
//! reconnect mints a new one, so bytes of an older connection are dropped by the core (TCP
//! would never deliver them to the new connection). Messages are never lost inside a link;
//! loss is modelled where TCP loses: the whole connection. Faults, drawn from one budget
//! carried in the state ([`ReplState::faults_left`]):
//! - **link cut**: the `CutLink` timer of a replica closes its current link (the master hears
//!   of it on the same FIFO, as a FIN/RST would reach it);
//! - **repl-timeout** on either side, and **repl-backlog-ttl** expiry (they only fire after a
//!   long silence, so firing them early is a fault, not a timing);
//! - **crash** with restart, with persistence (the node restarts from its last saved data set
//!   and replid/offset, as from an RDB with `repl-id`/`repl-offset`) or without (empty, new
//!   replid), per [`ModelCfg::persistence`]. Recovery is always possible.
//!
//! ## Time
//! stateright timers have no durations: any armed timer may fire at any moment. The core is
//! driven with `now_ms = 0` and trusts the driver that a fired timer is due, so the model
//! covers every ordering of timer expiries against deliveries: a superset of real timings,
//! which is sound for safety. Timers whose early firing is impossible in reality unless the
//! network stalled (the timeouts above) are charged to the fault budget; the periodic ones
//! (ACK every second, reconnect retry, the master's PING) are free, except that PINGs are
//! bounded by [`ModelCfg::pings`] because each one grows the offset. Lag-based decisions
//! (min-replicas-max-lag) see a lag of 0; a replica that lags too long is modelled by the
//! master's repl-timeout dropping it.
//!
//! ## Retries
//! A replica's reconnect timer is enabled only while its master could serve a PSYNC (up, and a
//! master, or a replica that is itself streaming). A retry refused with `-NOMASTERLINK` ends
//! where it started, with a new link id; allowing it would make the link counter, and so the
//! state space, unbounded without adding any other behaviour. `-NOMASTERLINK` is still
//! exercised whenever the upstream's own link fails during the handshake.
//!
//! ## Checks
//! Safety properties are listed in [`properties`]. Some are *transition* properties (offsets
//! only grow; `+CONTINUE` only inside the backlog; no full sync inside the window): the
//! wrapper model evaluates them on every step and records a violation bit in the state, which
//! an `always` property then reads. Liveness ("every replica reaches streaming at its master's
//! offset once faults stop") is checked exactly with [`crate::liveness`] under weak fairness,
//! or, with [`ModelCfg::bounded_response`], as a bounded response: from any state the
//! environment may stop faults and hand over to a deterministic fair scheduler
//! ([`ReplModel::fair_choice`]) that must converge within the bound (see `docs/model.md`).
//!
//! ## The operator
//! Node 0's timers stand for an operator: `AdminFailover` runs `FAILOVER TO <node 1>` (retried
//! while node 1 is not an online replica), `AdminWait` runs one `WAIT` (a GETACK into the
//! stream). They fire at any moment, like every timer. With `manual`, `AdminPromote` runs
//! `REPLICAOF NO ONE` on node 1 and `AdminFollow` `REPLICAOF <node 1>` on the others; with
//! `switch_back` too, node 1 then arms its own `AdminFailover`: `FAILOVER TO <node 0>`.

use crate::cached::Cached;
use serde::{Deserialize, Serialize};
use stateright::actor::{
    model_timeout, Actor, ActorModel, ActorModelAction, ActorModelState, Id, Network, Out,
};
use stateright::{Model, Property};
use std::borrow::Cow;
use std::sync::Arc;
use verdis_core::repl::{
    Effect, FailoverRequest, FailoverState, IdSource, LinkId, LinkPhase, NodeId, PlantedBug,
    PsyncRequest, ReplConfig, ReplId, ReplIdentity, ReplNode, ReplTimer, Role, SyncKind, ToMaster,
    ToReplica,
};

/// The write ids a node applied, in order.
pub type Dataset = Vec<u8>;

/// The configuration of one model instance.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ModelCfg {
    /// Replicas of node 0 (nodes 1..=replicas).
    pub replicas: u8,
    /// Client writes `SET k<i> v<i>`, i = 1..=writes.
    pub writes: u8,
    /// `repl-backlog-size` in bytes.
    pub backlog_bytes: u64,
    /// Faults the environment may inject (cuts, timeouts, crashes).
    pub faults: u8,
    /// Master PINGs into the stream.
    pub pings: u8,
    /// The operator runs `FAILOVER TO <node 1>` on node 0 (with FORCE and a timeout if set).
    pub switchover: Option<SwitchoverCfg>,
    /// Crashed nodes restart from their saved data and replid/offset (else empty).
    pub persistence: bool,
    /// Allow crashes at all (they count against `faults`).
    pub crashes: bool,
    /// A deliberately broken core, to prove the properties can fail.
    pub bug: Option<PlantedBug>,
    /// The operator runs one `WAIT` on node 0: a `REPLCONF GETACK *` goes into the stream and
    /// replicas answer with the offset before it.
    pub getack: bool,
    /// Bounded-response liveness: from any state the environment may stop faults and hand
    /// over to a deterministic fair scheduler, which must converge within this many steps.
    pub bounded_response: Option<u8>,
    /// Offer the timeout faults (repl-timeout on either side, backlog TTL). The conformance
    /// replay turns them off: a real timeout takes `repl-timeout` seconds of silence.
    #[serde(default = "yes")]
    pub timeouts: bool,
    /// Node 2 replicates from node 1 instead of node 0 (a chain 0 <- 1 <- 2).
    #[serde(default)]
    pub chain: bool,
    /// The value of write 1 is padded to this many bytes (a write larger than the backlog).
    #[serde(default)]
    pub big_write: Option<u32>,
    /// An operator's manual failover: `REPLICAOF NO ONE` on node 1, and `REPLICAOF <node 1>`
    /// on every other node once node 1 is a master (each once).
    #[serde(default)]
    pub manual: bool,
    /// Network partitions: a replica may be cut off from every other node (its link closed,
    /// no connection to or from it) until healed. Charged to the fault budget. Not offered
    /// with crashes or FAILOVER (their restarts and handshakes would bypass the partition).
    #[serde(default)]
    pub partition: bool,
    /// With `manual`: once node 1 is a master, the operator switches back with `FAILOVER TO
    /// <node 0>` on node 1 (retried until node 0 is a replica it can hand over to).
    #[serde(default)]
    pub switch_back: bool,
    /// Malformed bytes on a streaming replication link (the fault proxy's doing), charged to
    /// the fault budget: into a replica's stream (`GarbleStream`: the replica closes the link
    /// and its next sync is full), or from a replica to its master (`GarbleToMaster`: a
    /// `REPLCONF ACK` with a non-numeric offset, which is ignored, then a broken frame, on
    /// which the master closes the link).
    #[serde(default)]
    pub garble: bool,
    /// Key expiry: the operator gives the oldest key node 0 holds a TTL (`PEXPIRE`, propagated
    /// as `PEXPIREAT`), then time passes it. From then on a master deletes the key and
    /// propagates `DEL` (an internal step, not while FAILOVER pauses writes), and every node
    /// hides a key whose TTL it holds. Not offered with crashes (a master restarted from its
    /// RDB drops expired keys without a `DEL`, which the model does not follow).
    #[serde(default)]
    pub expire: bool,
    /// Output-buffer limits: a replica may stop reading (`Stall`, charged to the fault
    /// budget: what its master sends it after its PSYNC is held, as TCP holds it for a reader
    /// that does not read) until it reads again (`Unstall`), and every client write is
    /// larger than every replica's output-buffer limit (`WriteOverLimit`): the master drops
    /// the replicas the core lets the limit drop, without sending them the write, and streams
    /// it to the others (a replica still receiving or loading its snapshot).
    #[serde(default)]
    pub obuf: bool,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SwitchoverCfg {
    pub force: bool,
}

impl Default for ModelCfg {
    fn default() -> Self {
        ModelCfg {
            replicas: 2,
            writes: 2,
            backlog_bytes: 40,
            faults: 1,
            pings: 0,
            switchover: Some(SwitchoverCfg { force: false }),
            persistence: true,
            crashes: true,
            bug: None,
            getack: false,
            bounded_response: None,
            timeouts: true,
            chain: false,
            big_write: None,
            manual: false,
            partition: false,
            switch_back: false,
            garble: false,
            expire: false,
            obuf: false,
        }
    }
}

impl ModelCfg {
    /// The core configuration every node runs.
    pub fn repl_config(&self) -> ReplConfig {
        ReplConfig {
            backlog_size_bytes: self.backlog_bytes,
            planted_bug: self.bug,
            ..ReplConfig::default()
        }
    }

    pub fn node_count(&self) -> usize {
        1 + usize::from(self.replicas)
    }

    /// The master node `me` is configured to follow (`replicaof`): none for node 0, node 1
    /// for node 2 in a chain, else node 0.
    pub fn configured_master(&self, me: usize) -> Option<NodeId> {
        match me {
            0 => None,
            2 if self.chain => Some(1),
            _ => Some(0),
        }
    }

    /// The client's actor index (after the nodes).
    pub fn client_id(&self) -> usize {
        self.node_count()
    }

    /// Combinations the model does not support: a partition is not routed through restarts
    /// or FAILOVER's handshake (see [`ModelCfg::partition`]).
    pub fn check(&self) -> Result<(), String> {
        if self.partition && (self.crashes || self.switchover.is_some()) {
            return Err("--partition needs --no-crashes and --no-switchover (restarts and FAILOVER's handshake are not partitioned in the model)".to_string());
        }
        if self.expire && self.crashes {
            return Err("--expire needs --no-crashes (a master restarted from its RDB drops expired keys without a DEL, which the model does not follow)".to_string());
        }
        if self.obuf && self.partition {
            return Err("--obuf does not go with --partition (both hold back deliveries; the model routes neither through the other)".to_string());
        }
        if self.switch_back && (!self.manual || self.partition) {
            return Err("--switch-back needs --manual and no --partition (it switches back after the manual failover; FAILOVER's handshake is not partitioned in the model)".to_string());
        }
        Ok(())
    }

    /// Builds the checkable model.
    pub fn into_model(self) -> ReplModel {
        self.check().expect("a supported model configuration");
        let repl = self.repl_config();
        repl.validate()
            .expect("model configuration must be a valid replication configuration");
        // Crashes are offered for every actor; the wrapper charges them to the fault budget
        // and never crashes the client.
        let mut inner = ActorModel::new((), ())
            .init_network(Network::new_ordered([]))
            .max_crashes(self.node_count());
        for me in 0..self.node_count() {
            let master = self.configured_master(me);
            inner = inner.actor(ReplActor::Node(NodeActor {
                me: me as NodeId,
                master,
                repl: repl.clone(),
                persistence: self.persistence,
                switchover: if me == 0 { self.switchover } else { None },
                getack: me == 0 && self.getack,
                big_write: self.big_write,
                manual: self.manual,
                partition: self.partition && me != 0,
                switch_back: self.switch_back && me == 1,
                garble: self.garble,
                expire: self.expire,
                obuf: self.obuf && me != 0,
            }));
        }
        inner = inner.actor(ReplActor::Client(ClientActor {
            target: Id::from(0),
            writes: self.writes,
            obuf: self.obuf,
        }));
        ReplModel {
            cfg: self,
            inner,
            only: Vec::new(),
        }
    }
}

// ----- messages, timers, states ------------------------------------------------------------

/// Everything that travels between actors.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Msg {
    /// Replica -> master on a replication link.
    ToMaster(LinkId, ToMaster),
    /// Master -> replica on a replication link.
    ToReplica(LinkId, ToReplica),
    /// The snapshot of a full resync (its bytes abstracted to the write ids it holds).
    Rdb(LinkId, Dataset),
    /// Client -> node: `SET k<i> v<i>`.
    Write(u8),
    /// Node -> client: `+OK` (true) or an error (false).
    WriteReply(u8, bool),
    /// Replica -> master on a replication link: bytes the master cannot parse
    /// ([`ModelCfg::garble`]).
    Garbage(LinkId),
    /// Client -> node: `SET k<i> v<i>`, a write larger than every replica's output-buffer
    /// limit ([`ModelCfg::obuf`]).
    WriteOverLimit(u8),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Timer {
    /// A named timer of the core.
    Repl(ReplTimer),
    /// Fault: cut this replica's current link.
    CutLink,
    /// The client sends its next write.
    ClientWrite,
    /// The operator issues FAILOVER on node 0.
    AdminFailover,
    /// The operator issues WAIT on node 0 (GETACK into the stream).
    AdminWait,
    /// The operator issues `REPLICAOF NO ONE` on node 1.
    AdminPromote,
    /// The operator issues `REPLICAOF <node 1>` on this node.
    AdminFollow,
    /// Fault: this node is cut off from the others (see [`ModelCfg::partition`]).
    Partition,
    /// The partition of this node ends.
    Heal,
    /// Fault: malformed bytes reach this replica in its master's stream.
    GarbleStream,
    /// Fault: malformed bytes from this replica reach its master.
    GarbleToMaster,
    /// The operator gives the oldest key on node 0 a TTL ([`ModelCfg::expire`]).
    AdminTtl,
    /// Time passes every TTL set (the wrapper records it: [`ReplState::ttl_passed`]).
    Clock,
    /// A master deletes a key whose TTL passed and propagates `DEL`.
    ActiveExpire,
    /// Fault: this replica stops reading ([`ModelCfg::obuf`]; the wrapper records it:
    /// [`ReplState::stalled`]).
    Stall,
    /// The replica reads again.
    Unstall,
    /// The client sends its next write, past every replica's output-buffer limit
    /// ([`ModelCfg::obuf`]: instead of `ClientWrite`).
    ClientWriteOverLimit,
}

/// A server: the core's state plus the data set the driver keeps.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeState {
    pub repl: ReplNode,
    pub data: Dataset,
    /// Replids minted in this incarnation (the model's deterministic randomness).
    pub minted: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClientState {
    /// The next write id to send.
    pub next: u8,
    /// Bit i set: write i was acknowledged with +OK.
    pub acked: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)] // one client beside a few nodes; boxing costs more
pub enum ActorState {
    /// With its hash kept (see [`Cached`]): most of a state's fingerprint is its nodes.
    Node(Cached<NodeState>),
    Client(ClientState),
}

/// What survives a crash: the restart count always (connections never survive a restart);
/// data and replication identity only with persistence.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Storage {
    pub incarnation: u32,
    /// What an RDB's `repl-id` / `repl-offset` aux fields carry: the replid and offset only
    /// (never replid2), and nothing when the node had no backlog (as Redis and the server
    /// save them). The conformance replay caught the model persisting the whole identity.
    pub identity: Option<(ReplId, u64)>,
    pub data: Dataset,
    pub master: Option<NodeId>,
}

/// A node's storage as the checker keeps it: shared between states (a step that saves nothing
/// clones a pointer) and hashed once.
pub type Saved = Arc<Cached<Storage>>;

// ----- the actors --------------------------------------------------------------------------

/// The one actor type of the model.
#[derive(Clone, Debug)]
pub enum ReplActor {
    Node(NodeActor),
    Client(ClientActor),
}

#[derive(Clone, Debug)]
pub struct NodeActor {
    pub me: NodeId,
    /// The configured master (`replicaof`), `None` for the initial master.
    pub master: Option<NodeId>,
    pub repl: ReplConfig,
    pub persistence: bool,
    pub switchover: Option<SwitchoverCfg>,
    /// Node 0 runs one WAIT (GETACK into the stream).
    pub getack: bool,
    /// See [`ModelCfg::big_write`].
    pub big_write: Option<u32>,
    /// See [`ModelCfg::manual`].
    pub manual: bool,
    /// See [`ModelCfg::partition`].
    pub partition: bool,
    /// Node 1 runs `FAILOVER TO <node 0>` once it is a master ([`ModelCfg::switch_back`]).
    pub switch_back: bool,
    /// See [`ModelCfg::garble`].
    pub garble: bool,
    /// See [`ModelCfg::expire`].
    pub expire: bool,
    /// A replica that may stall ([`ModelCfg::obuf`]).
    pub obuf: bool,
}

#[derive(Clone, Debug)]
pub struct ClientActor {
    pub target: Id,
    pub writes: u8,
    /// Every write is past every output-buffer limit ([`ModelCfg::obuf`]).
    pub obuf: bool,
}

impl ClientActor {
    /// The timer that sends the next write.
    fn write_timer(&self) -> Timer {
        if self.obuf {
            Timer::ClientWriteOverLimit
        } else {
            Timer::ClientWrite
        }
    }
}

/// The identity an RDB's aux fields restore: replid and offset, no replid2.
fn saved_identity(replid: ReplId, offset: u64) -> ReplIdentity {
    let mut id = ReplIdentity::new(replid);
    id.master_repl_offset = offset;
    id
}

/// The master a restart should follow: the current one, except that a switchover still in
/// progress is not yet durable (the configuration is rewritten when FAILOVER completes), so a
/// node that crashes mid-switchover restarts as the master it was. Persisting the demotion
/// early leaves two nodes replicating from each other after a crash, with no master: the
/// liveness check found that cycle.
fn settled_master(s: &NodeState) -> Option<NodeId> {
    match s.repl.failover {
        FailoverState::InProgress { .. } => None,
        _ => s.repl.link().map(|l| l.master),
    }
}

/// Deterministic replids: distinct per (node, incarnation, mint count), never all-zero.
struct ModelIds<'a> {
    me: NodeId,
    incarnation: u32,
    minted: &'a mut u16,
}

impl IdSource for ModelIds<'_> {
    fn fresh_replid(&mut self) -> ReplId {
        *self.minted += 1;
        let mut raw = [0u8; 20];
        raw[0] = 0xa0 | (self.me as u8 & 0x0f);
        raw[1..5].copy_from_slice(&self.incarnation.to_be_bytes());
        raw[5..7].copy_from_slice(&self.minted.to_be_bytes());
        ReplId::from_random(raw)
    }
}

/// The malformed frame of [`Timer::GarbleStream`] (and the broken frame the replay sends for
/// [`Timer::GarbleToMaster`]): a multibulk length that is not a number.
pub const GARBAGE: &[u8] = b"*x\r\n";

/// The model's clock: see "Time" in the module comment.
const NOW_MS: u64 = 0;

/// A node's data set is the log of the data events it applied: write `i` (`SET k<i> v<i>`) is
/// `i`; `TTL | i` is `PEXPIREAT k<i> ...` and `DEL | i` is `DEL k<i>` ([`ModelCfg::expire`]).
pub const TTL: u8 = 0x40;
pub const DEL: u8 = 0x80;

/// The data event of a command; other commands (SELECT) do not change the data set.
fn data_event<A: AsRef<[u8]>>(args: &[A]) -> Option<u8> {
    let key = |k: &A| -> Option<u8> {
        let k = k.as_ref();
        let i: u8 = std::str::from_utf8(k.strip_prefix(b"k")?)
            .ok()?
            .parse()
            .ok()?;
        (i < TTL).then_some(i)
    };
    match args {
        [cmd, k, _] if cmd.as_ref().eq_ignore_ascii_case(b"SET") => key(k),
        [cmd, k, _] if cmd.as_ref().eq_ignore_ascii_case(b"PEXPIREAT") => Some(TTL | key(k)?),
        [cmd, k] if cmd.as_ref().eq_ignore_ascii_case(b"DEL") => Some(DEL | key(k)?),
        _ => None,
    }
}

/// The keys a client sees in a data log: written, not deleted, and not holding a TTL once
/// time has passed it (a replica hides such a key until its master's `DEL` arrives).
pub fn visible(data: &[u8], ttl_passed: bool) -> Vec<u8> {
    data.iter()
        .copied()
        .filter(|&i| i < TTL)
        .filter(|&i| {
            let deleted = data.contains(&(DEL | i));
            let hidden = ttl_passed && data.contains(&(TTL | i));
            !deleted && !hidden
        })
        .collect()
}

/// The key a TTL is set on: the oldest write in `data` with none yet.
pub fn ttl_candidate(data: &[u8]) -> Option<u8> {
    data.iter()
        .copied()
        .find(|&i| i < TTL && !data.contains(&(TTL | i)))
}

/// The key a master deletes once time passed its TTL.
fn expired_key(data: &[u8]) -> Option<u8> {
    data.iter()
        .copied()
        .filter(|&e| e & TTL != 0 && e & DEL == 0)
        .map(|e| e & !TTL)
        .find(|&i| !data.contains(&(DEL | i)))
}

/// The absolute time `PEXPIRE k<i> <ttl>` propagates as (`PEXPIREAT`): a unix time in ms,
/// 13 digits like every real one until the year 2286, so the offsets match the servers'.
pub const TTL_AT_MS: &str = "1800000000000";

/// The arguments of write `i`: `SET k<i> v<i>`, the value of write 1 padded with `x` to
/// `big_write` bytes when set.
pub fn write_args(i: u8, big_write: Option<u32>) -> Vec<Vec<u8>> {
    let mut value = format!("v{i}").into_bytes();
    if let (1, Some(n)) = (i, big_write) {
        value.resize((n as usize).max(value.len()), b'x');
    }
    vec![b"SET".to_vec(), format!("k{i}").into_bytes(), value]
}

impl NodeActor {
    fn start(&self, saved: &Option<Saved>, o: &mut Out<ReplActor>) -> NodeState {
        let storage = &saved.as_ref().map(|s| &***s);
        let incarnation = storage.as_ref().map_or(0, |s| s.incarnation + 1);
        let mut minted = 0u16;
        let (repl, data) = match storage {
            // A master restarted from its RDB keeps the saved history as replid2 under a new
            // replid, as Redis 7.0 and the server do (the conformance replay caught the model
            // restoring the replid itself).
            Some(Storage {
                identity: Some((replid, offset)),
                master: None,
                data,
                ..
            }) if self.persistence => {
                let mut ids = ModelIds {
                    me: self.me,
                    incarnation,
                    minted: &mut minted,
                };
                (
                    ReplNode::restore_master_after_restart(
                        self.me,
                        incarnation,
                        saved_identity(*replid, *offset),
                        &self.repl,
                        &mut ids,
                    ),
                    data.clone(),
                )
            }
            Some(Storage {
                identity: Some((replid, offset)),
                master: Some(m),
                data,
                ..
            }) if self.persistence => (
                ReplNode::restore(
                    self.me,
                    incarnation,
                    saved_identity(*replid, *offset),
                    Some(*m),
                    &self.repl,
                ),
                data.clone(),
            ),
            _ => {
                let replid = ModelIds {
                    me: self.me,
                    incarnation,
                    minted: &mut minted,
                }
                .fresh_replid();
                // An RDB without replication aux fields: its data, a fresh history.
                let (master, data) = match storage {
                    Some(s) if self.persistence => (s.master, s.data.clone()),
                    _ => (self.master, Vec::new()),
                };
                let node = match master {
                    None => ReplNode::new_master(self.me, incarnation, replid),
                    Some(m) => ReplNode::new_replica(self.me, incarnation, replid, m),
                };
                (node, data)
            }
        };
        let mut state = NodeState { repl, data, minted };
        let fx = state.repl.start(NOW_MS, &self.repl);
        self.exec(&mut state, fx, None, o);
        o.set_timer(Timer::CutLink, model_timeout());
        if self.switchover.is_some() && incarnation == 0 {
            o.set_timer(Timer::AdminFailover, model_timeout());
        }
        if self.getack && incarnation == 0 {
            o.set_timer(Timer::AdminWait, model_timeout());
        }
        if self.manual && incarnation == 0 {
            let t = if self.me == 1 {
                Timer::AdminPromote
            } else {
                Timer::AdminFollow
            };
            o.set_timer(t, model_timeout());
        }
        if self.expire {
            if self.me == 0 && incarnation == 0 {
                o.set_timer(Timer::AdminTtl, model_timeout());
                o.set_timer(Timer::Clock, model_timeout());
            }
            // Always armed; the wrapper offers it once time has passed a TTL.
            o.set_timer(Timer::ActiveExpire, model_timeout());
        }
        if self.garble {
            // Always armed; they break nothing unless the link is streaming.
            o.set_timer(Timer::GarbleStream, model_timeout());
            o.set_timer(Timer::GarbleToMaster, model_timeout());
        }
        if self.partition {
            // Always armed; the wrapper offers each only when it applies.
            o.set_timer(Timer::Partition, model_timeout());
            o.set_timer(Timer::Heal, model_timeout());
        }
        if self.obuf {
            // Always armed; the wrapper offers each only when it applies.
            o.set_timer(Timer::Stall, model_timeout());
            o.set_timer(Timer::Unstall, model_timeout());
        }
        o.save(Arc::new(Cached::new(self.storage(&state, incarnation))));
        state
    }

    fn storage(&self, s: &NodeState, incarnation: u32) -> Storage {
        Storage {
            incarnation,
            identity: s
                .repl
                .backlog
                .as_ref()
                .map(|_| (s.repl.identity.replid, s.repl.identity.master_repl_offset)),
            data: s.data.clone(),
            master: settled_master(s),
        }
    }

    /// Saves what a restart would find when the data set, the replication identity or the
    /// configured master changed (every change is persisted, as with appendfsync always).
    fn persist_if_changed(&self, before: &NodeState, after: &NodeState, o: &mut Out<ReplActor>) {
        if before.repl.identity != after.repl.identity
            || before.data != after.data
            || settled_master(before) != settled_master(after)
        {
            o.save(Arc::new(Cached::new(
                self.storage(after, after.repl.incarnation),
            )));
        }
    }

    /// Executes the core's effects in order. `rdb` is the snapshot just received, if any.
    fn exec(
        &self,
        s: &mut NodeState,
        effects: Vec<Effect>,
        rdb: Option<&Dataset>,
        o: &mut Out<ReplActor>,
    ) {
        for e in effects {
            match e {
                // The ordered network needs no connection set-up: the PING that follows opens it.
                Effect::Connect { .. } => {}
                Effect::ToMaster { master, link, msg } => {
                    o.send(Id::from(master as usize), Msg::ToMaster(link, msg))
                }
                Effect::ToReplica { replica, link, msg } => {
                    o.send(Id::from(replica as usize), Msg::ToReplica(link, msg))
                }
                Effect::SendRdb { replica, link, .. } => {
                    o.send(Id::from(replica as usize), Msg::Rdb(link, s.data.clone()));
                    s.repl.handle_rdb_sent(replica, link);
                }
                Effect::LoadRdb { .. } => {
                    s.data = rdb
                        .expect("the core asks to load an RDB only when one arrived")
                        .clone();
                }
                Effect::Apply { args } => {
                    if let Some(e) = data_event(&args) {
                        s.data.push(e);
                    }
                }
                Effect::SetTimer { timer, .. } => o.set_timer(Timer::Repl(timer), model_timeout()),
                Effect::CancelTimer(timer) => o.cancel_timer(Timer::Repl(timer)),
            }
        }
    }

    fn on_msg(&self, s: &mut NodeState, src: Id, msg: Msg, o: &mut Out<ReplActor>) {
        let cfg = &self.repl;
        let incarnation = s.repl.incarnation;
        match msg {
            Msg::ToMaster(link, m) => {
                let mut ids = ModelIds {
                    me: self.me,
                    incarnation,
                    minted: &mut s.minted,
                };
                let fx = s.repl.handle_from_replica(
                    usize::from(src) as NodeId,
                    link,
                    m,
                    NOW_MS,
                    cfg,
                    &mut ids,
                );
                self.exec(s, fx, None, o);
            }
            Msg::ToReplica(link, m) => {
                let mut ids = ModelIds {
                    me: self.me,
                    incarnation,
                    minted: &mut s.minted,
                };
                let fx = match s.repl.handle_from_master(link, m, NOW_MS, cfg, &mut ids) {
                    Ok(fx) => fx,
                    // The master misbehaved: close the link (the core tells the master).
                    Err(_) => s.repl.handle_link_error(link, NOW_MS, cfg),
                };
                self.exec(s, fx, None, o);
            }
            Msg::Rdb(link, snapshot) => {
                let fx = match s.repl.handle_rdb_loaded(link, NOW_MS, cfg) {
                    Ok(fx) => fx,
                    Err(_) => s.repl.handle_link_error(link, NOW_MS, cfg),
                };
                self.exec(s, fx, Some(&snapshot), o);
            }
            Msg::Write(i) => self.client_write(s, src, i, false, o),
            Msg::WriteOverLimit(i) => self.client_write(s, src, i, true, o),
            Msg::Garbage(link) => {
                // The driver cannot parse what the replica sent: it closes the connection, as
                // if the replica had (the core hears `Closed`), and the replica sees it close.
                let mut ids = ModelIds {
                    me: self.me,
                    incarnation,
                    minted: &mut s.minted,
                };
                let replica = usize::from(src) as NodeId;
                let known = s.repl.replicas.get(replica).is_some_and(|e| e.link == link);
                let fx = s.repl.handle_from_replica(
                    replica,
                    link,
                    ToMaster::Closed,
                    NOW_MS,
                    cfg,
                    &mut ids,
                );
                self.exec(s, fx, None, o);
                if known {
                    o.send(src, Msg::ToReplica(link, ToReplica::Closed));
                }
            }
            // Not addressed to servers.
            Msg::WriteReply(..) => {}
        }
    }

    /// The client's write `i`; `over_limit`: its bytes would take every replica's queue past
    /// its output-buffer limit ([`ModelCfg::obuf`]). As the server's driver does, they are then
    /// not sent to a replica the limit applies to, and the core drops that replica.
    fn client_write(
        &self,
        s: &mut NodeState,
        src: Id,
        i: u8,
        over_limit: bool,
        o: &mut Out<ReplActor>,
    ) {
        let cfg = &self.repl;
        let fx = match s
            .repl
            .handle_write(0, &write_args(i, self.big_write), NOW_MS, cfg)
        {
            Ok(fx) => fx,
            Err(_) => return o.send(src, Msg::WriteReply(i, false)),
        };
        s.data.push(i);
        let over: Vec<(NodeId, LinkId)> = if over_limit {
            s.repl
                .replicas
                .iter()
                .filter(|e| e.output_limit_applies())
                .map(|e| (e.node, e.link))
                .collect()
        } else {
            Vec::new()
        };
        let fx = fx
            .into_iter()
            .filter(|e| {
                !matches!(e, Effect::ToReplica { replica, link, .. }
                    if over.contains(&(*replica, *link)))
            })
            .collect();
        self.exec(s, fx, None, o);
        for (replica, link) in over {
            let mut ids = ModelIds {
                me: self.me,
                incarnation: s.repl.incarnation,
                minted: &mut s.minted,
            };
            let fx = s
                .repl
                .handle_output_limit(replica, link, NOW_MS, cfg, &mut ids);
            self.exec(s, fx, None, o);
        }
        o.send(src, Msg::WriteReply(i, true));
    }

    fn on_timeout(&self, s: &mut NodeState, timer: Timer, o: &mut Out<ReplActor>) {
        let cfg = &self.repl;
        match timer {
            Timer::Repl(t) => {
                let mut ids = ModelIds {
                    me: self.me,
                    incarnation: s.repl.incarnation,
                    minted: &mut s.minted,
                };
                let fx = s.repl.handle_timer(t, NOW_MS, cfg, &mut ids);
                self.exec(s, fx, None, o);
            }
            Timer::CutLink | Timer::Partition => {
                if let Some(l) = s.repl.link().filter(|l| l.phase != LinkPhase::Down) {
                    let (master, link) = (l.master, l.link);
                    // The cut, as both ends see it: our side closes, the master's side hears a
                    // reset on the same connection.
                    let fx = s.repl.handle_link_closed(link, NOW_MS, cfg);
                    self.exec(s, fx, None, o);
                    o.send(
                        Id::from(master as usize),
                        Msg::ToMaster(link, ToMaster::Closed),
                    );
                }
                // Re-armed either way; with no link up a cut is a no-op and is ignored (a
                // partition still takes effect: the wrapper records it).
                o.set_timer(timer, model_timeout());
            }
            // The wrapper records the end of the partition; the replica's next retry connects.
            // It records a stall and its end too: deliveries to a stalled replica wait.
            Timer::Heal | Timer::Stall | Timer::Unstall => o.set_timer(timer, model_timeout()),
            Timer::GarbleStream => {
                if let Some(l) = s.repl.link().filter(|l| l.phase == LinkPhase::Streaming) {
                    let link = l.link;
                    let mut ids = ModelIds {
                        me: self.me,
                        incarnation: s.repl.incarnation,
                        minted: &mut s.minted,
                    };
                    let bytes = GARBAGE.to_vec();
                    let fx = match s.repl.handle_from_master(
                        link,
                        ToReplica::Stream(bytes.into()),
                        NOW_MS,
                        cfg,
                        &mut ids,
                    ) {
                        Ok(fx) => fx,
                        Err(_) => s.repl.handle_link_error(link, NOW_MS, cfg),
                    };
                    self.exec(s, fx, None, o);
                }
                o.set_timer(timer, model_timeout());
            }
            Timer::AdminTtl => {
                let args = ttl_candidate(&s.data).map(|i| {
                    vec![
                        b"PEXPIREAT".to_vec(),
                        format!("k{i}").into_bytes(),
                        TTL_AT_MS.as_bytes().to_vec(),
                    ]
                });
                match args.map(|a| (s.repl.handle_write(0, &a, NOW_MS, cfg), a)) {
                    Some((Ok(fx), a)) => {
                        s.data.extend(data_event(&a));
                        self.exec(s, fx, None, o);
                    }
                    // No key yet, or node 0 is not a master: the operator tries later.
                    _ => o.set_timer(Timer::AdminTtl, model_timeout()),
                }
            }
            // The wrapper records that time passed.
            Timer::Clock => {}
            Timer::ActiveExpire => {
                if let Some(i) = expired_key(&s.data) {
                    let args = vec![b"DEL".to_vec(), format!("k{i}").into_bytes()];
                    // A replica, or a master whose writes FAILOVER paused, deletes nothing.
                    if let Ok(fx) = s.repl.handle_write(0, &args, NOW_MS, cfg) {
                        s.data.push(DEL | i);
                        self.exec(s, fx, None, o);
                    }
                }
                o.set_timer(Timer::ActiveExpire, model_timeout());
            }
            Timer::GarbleToMaster => {
                if let Some(l) = s.repl.link().filter(|l| l.phase == LinkPhase::Streaming) {
                    o.send(Id::from(l.master as usize), Msg::Garbage(l.link));
                }
                o.set_timer(timer, model_timeout());
            }
            Timer::AdminPromote => {
                let mut ids = ModelIds {
                    me: self.me,
                    incarnation: s.repl.incarnation,
                    minted: &mut s.minted,
                };
                let fx = s.repl.handle_replicaof_no_one(NOW_MS, cfg, &mut ids);
                self.exec(s, fx, None, o);
                if self.switch_back {
                    o.set_timer(Timer::AdminFailover, model_timeout());
                }
            }
            Timer::AdminFollow => {
                let fx = s.repl.handle_replicaof(1, NOW_MS, cfg);
                self.exec(s, fx, None, o);
            }
            Timer::AdminFailover => {
                let force = self.switchover.is_some_and(|sw| sw.force);
                let req = FailoverRequest {
                    // Node 0 hands over to node 1; node 1 (switching back) to node 0.
                    target: Some(if self.me == 0 { 1 } else { 0 }),
                    timeout_ms: if force { 1_000 } else { 0 },
                    force,
                };
                match s.repl.handle_failover(req, NOW_MS, cfg) {
                    Ok(fx) => self.exec(s, fx, None, o),
                    // Target not online yet: the operator tries again later.
                    Err(_) => o.set_timer(Timer::AdminFailover, model_timeout()),
                }
            }
            Timer::AdminWait => {
                let fx = s.repl.request_acks();
                if fx.is_empty() && s.repl.identity.master_repl_offset == 0 {
                    // No replica stream yet: WAIT would return at once; try later (a no-op).
                    o.set_timer(Timer::AdminWait, model_timeout());
                }
                self.exec(s, fx, None, o);
            }
            Timer::ClientWrite | Timer::ClientWriteOverLimit => {}
        }
    }
}

impl Actor for ReplActor {
    type Msg = Msg;
    type Timer = Timer;
    type State = ActorState;
    type Storage = Saved;
    type Random = ();

    fn on_start(&self, _id: Id, storage: &Option<Saved>, o: &mut Out<Self>) -> ActorState {
        match self {
            ReplActor::Node(n) => ActorState::Node(Cached::new(n.start(storage, o))),
            ReplActor::Client(c) => {
                if c.writes > 0 {
                    o.set_timer(c.write_timer(), model_timeout());
                }
                ActorState::Client(ClientState { next: 1, acked: 0 })
            }
        }
    }

    fn on_msg(&self, _id: Id, state: &mut Cow<ActorState>, src: Id, msg: Msg, o: &mut Out<Self>) {
        match (self, &**state, msg) {
            (ReplActor::Node(n), ActorState::Node(s), msg) => {
                // The core runs on a clone; the state is replaced only if it changed.
                let mut next = NodeState::clone(s);
                n.on_msg(&mut next, src, msg, o);
                if next != **s {
                    n.persist_if_changed(s, &next, o);
                    *state.to_mut() = ActorState::Node(Cached::new(next));
                }
            }
            (ReplActor::Client(_), ActorState::Client(c), Msg::WriteReply(i, true)) => {
                let mut next = c.clone();
                next.acked |= 1 << i;
                *state.to_mut() = ActorState::Client(next);
            }
            // A refused write is simply not acknowledged.
            (ReplActor::Client(_), ActorState::Client(_), _) => {}
            (_, _, _) => unreachable!("actor and state kinds always match"),
        }
    }

    fn on_timeout(&self, _id: Id, state: &mut Cow<ActorState>, timer: &Timer, o: &mut Out<Self>) {
        match (self, &**state) {
            (ReplActor::Node(n), ActorState::Node(s)) => {
                let mut next = NodeState::clone(s);
                n.on_timeout(&mut next, *timer, o);
                if next != **s {
                    n.persist_if_changed(s, &next, o);
                    *state.to_mut() = ActorState::Node(Cached::new(next));
                }
            }
            (ReplActor::Client(c), ActorState::Client(cs))
                if matches!(timer, Timer::ClientWrite | Timer::ClientWriteOverLimit) =>
            {
                let mut next = cs.clone();
                o.send(
                    c.target,
                    if *timer == Timer::ClientWrite {
                        Msg::Write(next.next)
                    } else {
                        Msg::WriteOverLimit(next.next)
                    },
                );
                next.next += 1;
                if next.next <= c.writes {
                    o.set_timer(*timer, model_timeout());
                }
                *state.to_mut() = ActorState::Client(next);
            }
            (_, _) => {}
        }
    }
}

// ----- the wrapper model: fault budget and step monitors -------------------------------------

/// The model checked: stateright's actor model plus the fault budget and step monitors.
pub struct ReplModel {
    pub cfg: ModelCfg,
    pub inner: ActorModel<ReplActor, (), ()>,
    /// Check only properties whose name contains one of these (all when empty).
    pub only: Vec<String>,
}

impl ReplModel {
    /// Restricts the checked properties to those whose name contains one of `filters`.
    pub fn only(mut self, filters: Vec<String>) -> ReplModel {
        self.only = filters;
        self
    }
}

pub type InnerAction = ActorModelAction<Msg, Timer, ()>;

/// One state of the checked system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplState {
    pub sys: ActorModelState<ReplActor, ()>,
    /// Faults the environment may still inject.
    pub faults_left: u8,
    /// PINGs the master may still put into the stream.
    pub pings_left: u8,
    /// Events of the step that produced this state (bits `EV_*`), for `sometimes` properties.
    pub events: u8,
    /// Transition properties violated so far (bits `VIOL_*`); sticky.
    pub violations: u8,
    /// Bounded-response mode only: faults have stopped and the fair scheduler runs.
    pub fair: bool,
    /// Steps taken by the fair scheduler (saturates at the bound).
    pub stable_steps: u8,
    /// The last timer the fair scheduler fired (round robin over (actor, timer)).
    pub last_timer: Option<(usize, Timer)>,
    /// Bit i: node i is partitioned away (see [`ModelCfg::partition`]).
    pub isolated: u8,
    /// Time has passed the TTLs set so far ([`ModelCfg::expire`]).
    pub ttl_passed: bool,
    /// Bit i: replica i stopped reading ([`ModelCfg::obuf`]).
    pub stalled: u8,
}

/// The checker fingerprints every state it generates (3.5 per unique state in the default
/// configuration). The derived hash would hash each actor's timer set as stateright does, one
/// fresh hasher per timer then a sort (a set has no order), and `crashed` one bool at a time;
/// here a timer set is one bitmask and `crashed` another. Equal states hash equally: every
/// field is hashed (the destructuring fails to compile when stateright or this struct gains
/// one), and a set's bitmask is the same whatever the set's order.
impl std::hash::Hash for ReplState {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let ReplState {
            sys,
            faults_left,
            pings_left,
            events,
            violations,
            fair,
            stable_steps,
            last_timer,
            isolated,
            ttl_passed,
            stalled,
        } = self;
        let ActorModelState {
            actor_states,
            network,
            timers_set,
            random_choices,
            crashed,
            history: (),
            actor_storages,
        } = sys;
        actor_states.hash(h);
        for timers in timers_set {
            let mut bits = 0u64;
            let small = timers.iter().all(|t| {
                let bit = timer_bit(t);
                bits |= 1u64.checked_shl(bit).unwrap_or(0);
                bit < 64
            });
            if small {
                h.write_u64(bits);
            } else {
                // A node id too large for the bitmask: the set hashed as stateright does.
                h.write_u64(u64::MAX);
                timers.hash(h);
            }
        }
        for choices in random_choices {
            // The model asks for no random choices; hash them in full if it ever does.
            h.write_usize(choices.map.len());
            if !choices.map.is_empty() {
                choices.hash(h);
            }
        }
        network.hash(h);
        h.write_usize(crashed.len());
        for chunk in crashed.chunks(64) {
            h.write_u64(
                chunk
                    .iter()
                    .enumerate()
                    .fold(0, |bits, (i, &c)| bits | u64::from(c) << i),
            );
        }
        actor_storages.hash(h);
        (
            faults_left,
            pings_left,
            events,
            violations,
            fair,
            stable_steps,
        )
            .hash(h);
        (last_timer, isolated, ttl_passed, stalled).hash(h);
    }
}

/// A timer's bit in a timer set's bitmask (see `Hash for ReplState`); distinct timers have
/// distinct bits, and a bit of 64 or more does not fit the mask.
fn timer_bit(t: &Timer) -> u32 {
    match t {
        Timer::Repl(r) => match r {
            ReplTimer::ConnectRetry => 0,
            ReplTimer::ReplicaAck => 1,
            ReplTimer::ReplicaTimeout => 2,
            ReplTimer::MasterPing => 3,
            ReplTimer::BacklogTtl => 4,
            ReplTimer::FailoverTimeout => 5,
            ReplTimer::MasterTimeout(replica) => 22u32.saturating_add(*replica),
        },
        Timer::CutLink => 6,
        Timer::ClientWrite => 7,
        Timer::AdminFailover => 8,
        Timer::AdminWait => 9,
        Timer::AdminPromote => 10,
        Timer::AdminFollow => 11,
        Timer::Partition => 12,
        Timer::Heal => 13,
        Timer::GarbleStream => 14,
        Timer::GarbleToMaster => 15,
        Timer::AdminTtl => 16,
        Timer::Clock => 17,
        Timer::ActiveExpire => 18,
        Timer::Stall => 19,
        Timer::Unstall => 20,
        Timer::ClientWriteOverLimit => 21,
    }
}

pub const EV_PARTIAL_AFTER_RECONNECT: u8 = 1;
pub const EV_FULL_AFTER_OVERFLOW: u8 = 2;
pub const EV_PARTIAL_VIA_REPLID2: u8 = 4;
pub const EV_SIBLING_VIA_REPLID2: u8 = 8;

pub const VIOL_OFFSET_SHRANK: u8 = 1;
pub const VIOL_CONTINUE_OUTSIDE_BACKLOG: u8 = 2;
pub const VIOL_FULL_INSIDE_BACKLOG: u8 = 4;

/// Every message in flight as (source, destination, message). stateright 0.31's
/// `Network::iter_all` never advances inside an ordered channel (it loops forever), so the
/// channels are walked here directly.
pub fn queued(net: &Network<Msg>) -> Box<dyn Iterator<Item = (Id, Id, &Msg)> + '_> {
    match net {
        Network::Ordered(channels) => Box::new(
            channels
                .iter()
                .flat_map(|(&(src, dst), q)| q.iter().map(move |m| (src, dst, m))),
        ),
        other => Box::new(other.iter_deliverable().map(|e| (e.src, e.dst, e.msg))),
    }
}

/// Is this action a fault (charged to the budget)?
pub fn is_fault(action: &InnerAction) -> bool {
    matches!(
        action,
        ActorModelAction::Crash(_)
            | ActorModelAction::Timeout(
                _,
                Timer::CutLink
                    | Timer::Partition
                    | Timer::GarbleStream
                    | Timer::GarbleToMaster
                    | Timer::Stall
            )
    ) || is_timeout_fault(action)
}

/// Is this action a timeout fault (repl-timeout on either side, backlog TTL)?
pub fn is_timeout_fault(action: &InnerAction) -> bool {
    matches!(
        action,
        ActorModelAction::Timeout(
            _,
            Timer::Repl(
                ReplTimer::ReplicaTimeout | ReplTimer::MasterTimeout(_) | ReplTimer::BacklogTtl
            )
        )
    )
}

impl ReplModel {
    /// The node states (with their index), skipping crashed nodes.
    pub fn nodes<'a>(
        &'a self,
        s: &'a ReplState,
    ) -> impl Iterator<Item = (usize, &'a NodeState)> + 'a {
        (0..self.cfg.node_count())
            .filter(|&i| !s.sys.crashed[i])
            .filter_map(move |i| match &*s.sys.actor_states[i] {
                ActorState::Node(n) => Some((i, &**n)),
                ActorState::Client(_) => None,
            })
    }

    pub fn node<'a>(&self, s: &'a ReplState, i: usize) -> Option<&'a NodeState> {
        match &*s.sys.actor_states[i] {
            ActorState::Node(n) if !s.sys.crashed[i] => Some(&**n),
            _ => None,
        }
    }

    pub fn client<'a>(&self, s: &'a ReplState) -> &'a ClientState {
        match &*s.sys.actor_states[self.cfg.client_id()] {
            ActorState::Client(c) => c,
            ActorState::Node(_) => unreachable!("the last actor is the client"),
        }
    }

    /// Every replica streams from a live master, on its history, at its offset, and nothing
    /// is left to do (all writes sent and answered, no switchover pending).
    pub fn converged(&self, s: &ReplState) -> bool {
        let client = self.client(s);
        if client.next <= self.cfg.writes || s.sys.crashed.iter().any(|&c| c) {
            return false;
        }
        if queued(&s.sys.network)
            .any(|(_, _, m)| !matches!(m, Msg::ToMaster(_, ToMaster::Ack { .. })))
        {
            return false;
        }
        if self.cfg.switchover.is_some()
            && s.sys.timers_set[0]
                .iter()
                .any(|t| *t == Timer::AdminFailover)
        {
            return false;
        }
        if self.cfg.switch_back
            && s.sys.timers_set[1]
                .iter()
                .any(|t| *t == Timer::AdminFailover)
        {
            return false;
        }
        self.nodes(s).all(|(_, n)| {
            if n.repl.failover != FailoverState::NoFailover {
                return false;
            }
            match n.repl.link() {
                None => true,
                Some(l) => {
                    l.phase == LinkPhase::Streaming
                        && self.node(s, l.master as usize).is_some_and(|m| {
                            m.repl.identity.replid == n.repl.identity.replid
                                && m.repl.identity.master_repl_offset
                                    == n.repl.identity.master_repl_offset
                        })
                }
            }
        })
    }

    /// Whether node `r`'s master would accept a PSYNC now (is up, and is a master not in the
    /// middle of a switchover, or a replica streaming from its own master; for the old
    /// master's `PSYNC ... FAILOVER`, merely up).
    pub fn can_serve(&self, s: &ReplState, r: usize) -> bool {
        let Some(link) = self.node(s, r).and_then(|n| n.repl.link()) else {
            return true;
        };
        let master = link.master as usize;
        if link.failover_psync {
            // `PSYNC ... FAILOVER` promotes a replica target whatever its own link does.
            return self.node(s, master).is_some();
        }
        self.node(s, master).is_some_and(|m| match m.repl.link() {
            None => !matches!(m.repl.failover, FailoverState::InProgress { .. }),
            Some(l) => l.phase == LinkPhase::Streaming,
        })
    }

    /// Whether a partition separates node `r` from its master (either side cut off).
    pub fn cut_off(&self, s: &ReplState, r: usize) -> bool {
        let master = self
            .node(s, r)
            .and_then(|n| n.repl.link())
            .map(|l| l.master as usize);
        s.isolated & (1 << r) != 0 || master.is_some_and(|m| s.isolated & (1 << m) != 0)
    }

    /// An ACK that would tell the master what it already recorded for this connection: its
    /// delivery changes nothing (ack offsets only grow, the model's clock does not move).
    fn ack_is_redundant(&self, s: &ReplState, r: usize) -> bool {
        let Some(n) = self.node(s, r) else {
            return false;
        };
        let Some(l) = n.repl.link() else { return false };
        self.node(s, l.master as usize)
            .and_then(|m| m.repl.replicas.get(r as NodeId))
            .is_some_and(|e| {
                e.link == l.link
                    && e.has_acked
                    && e.ack_offset == n.repl.identity.master_repl_offset
            })
    }

    /// A crashed process's TCP connections are reset: each peer hears `Closed` on its link,
    /// after what was already in flight (the transport's doing, not the protocol's).
    fn reset_connections(&self, last: &ReplState, crashed: usize, next: &mut ReplState) {
        let Some(n) = self.node(last, crashed) else {
            return;
        };
        let Network::Ordered(channels) = &mut next.sys.network else {
            unreachable!("the replication model uses the ordered network")
        };
        let mut push = |dst: NodeId, msg: Msg| {
            channels
                .entry((Id::from(crashed), Id::from(dst as usize)))
                .or_default()
                .push_back(msg);
        };
        if let Some(l) = n.repl.link().filter(|l| l.phase != LinkPhase::Down) {
            push(l.master, Msg::ToMaster(l.link, ToMaster::Closed));
        }
        for e in n.repl.replicas.iter() {
            push(e.node, Msg::ToReplica(e.link, ToReplica::Closed));
        }
    }

    /// Evaluates the transition monitors for one step.
    fn monitor(&self, last: &ReplState, action: &InnerAction, next: &mut ReplState) {
        next.events = 0;
        // Offsets only grow within a replid (a restart is a new process: not compared).
        for i in 0..self.cfg.node_count() {
            let restarted =
                matches!(action, ActorModelAction::Recover(id) if usize::from(*id) == i);
            if let (Some(a), Some(b), false) = (self.node(last, i), self.node(next, i), restarted) {
                if a.repl.identity.replid == b.repl.identity.replid
                    && b.repl.identity.master_repl_offset < a.repl.identity.master_repl_offset
                {
                    next.violations |= VIOL_OFFSET_SHRANK;
                }
            }
        }
        // PSYNC served in this step.
        let ActorModelAction::Deliver {
            src,
            dst,
            msg: Msg::ToMaster(link, ToMaster::Psync { req, failover }),
        } = action
        else {
            return;
        };
        let (Some(before), Some(after)) = (
            self.node(last, usize::from(*dst)),
            self.node(next, usize::from(*dst)),
        ) else {
            return;
        };
        let Some(entry) = after
            .repl
            .replicas
            .get(usize::from(*src) as NodeId)
            .filter(|e| e.link == *link)
        else {
            return;
        };
        let (events, violations) = self.monitor_psync(
            before,
            after,
            entry.served,
            entry.psync_from,
            *req,
            *failover,
        );
        next.events |= events;
        next.violations |= violations;
    }

    fn monitor_psync(
        &self,
        before: &NodeState,
        after: &NodeState,
        served: Option<SyncKind>,
        psync_from: Option<u64>,
        req: PsyncRequest,
        failover: bool,
    ) -> (u8, u8) {
        let (mut events, mut violations) = (0u8, 0u8);
        let window = after.repl.backlog.as_ref();
        let id = &after.repl.identity;
        let on_history = req.replid == Some(id.replid)
            || (req.replid == Some(id.replid2)
                && id.replid2 != ReplId::ZERO
                && req.offset <= id.second_repl_offset);
        let in_window = u64::try_from(req.offset)
            .ok()
            .is_some_and(|off| window.is_some_and(|b| b.covers(off)));
        match served {
            Some(SyncKind::Partial) => {
                if !psync_from.is_some_and(|off| window.is_some_and(|b| b.covers(off)))
                    || !on_history
                {
                    violations |= VIOL_CONTINUE_OUTSIDE_BACKLOG;
                }
                if !failover {
                    events |= EV_PARTIAL_AFTER_RECONNECT;
                }
                if req.replid.is_some() && req.replid != Some(before.repl.identity.replid)
                    || req.replid == Some(id.replid2)
                {
                    events |= EV_PARTIAL_VIA_REPLID2;
                }
                if !failover && id.replid2 != ReplId::ZERO && req.replid == Some(id.replid2) {
                    // Not the old master's own PSYNC: a former sibling on the old history.
                    events |= EV_SIBLING_VIA_REPLID2;
                }
            }
            Some(SyncKind::Full) => {
                // The backlog existed before this PSYNC (a backlog created for it is empty and
                // under a new id, so it cannot cover anything).
                if on_history && in_window && before.repl.backlog.is_some() {
                    violations |= VIOL_FULL_INSIDE_BACKLOG;
                }
                if req.replid == Some(id.replid) && !in_window {
                    events |= EV_FULL_AFTER_OVERFLOW;
                }
            }
            None => {}
        }
        (events, violations)
    }
}

impl Model for ReplModel {
    type State = ReplState;
    type Action = InnerAction;

    fn init_states(&self) -> Vec<ReplState> {
        self.inner
            .init_states()
            .into_iter()
            .map(|sys| ReplState {
                sys,
                faults_left: self.cfg.faults,
                pings_left: self.cfg.pings,
                events: 0,
                violations: 0,
                fair: false,
                stable_steps: 0,
                last_timer: None,
                isolated: 0,
                ttl_passed: false,
                stalled: 0,
            })
            .collect()
    }

    fn actions(&self, s: &ReplState, actions: &mut Vec<InnerAction>) {
        if s.fair {
            actions.extend(self.fair_choice(s));
            return;
        }
        self.environment_actions(s, actions);
        if self.cfg.bounded_response.is_some() && !s.fair {
            actions.push(quiesce_action());
        }
    }

    fn next_state(&self, last: &ReplState, action: InnerAction) -> Option<ReplState> {
        if is_quiesce(&action) {
            let mut next = last.clone();
            next.fair = true;
            next.faults_left = 0;
            next.events = 0;
            return Some(next);
        }
        let mut next = self.step(last, action.clone())?;
        if last.fair {
            next.stable_steps = last
                .stable_steps
                .saturating_add(1)
                .min(self.cfg.bounded_response.unwrap_or(0));
            if let ActorModelAction::Timeout(id, t) = action {
                next.last_timer = Some((usize::from(id), t));
            }
        }
        Some(next)
    }

    fn format_action(&self, action: &InnerAction) -> String {
        format_action(action)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        properties()
            .into_iter()
            .filter(|p| applicable(&self.cfg, p.name))
            .filter(|p| {
                self.only.is_empty() || self.only.iter().any(|o| p.name.contains(o.as_str()))
            })
            .collect()
    }
}

/// The wrapper's own action in bounded-response mode: "faults stop, the fair scheduler takes
/// over". Encoded as the actor model's (otherwise unused) random-choice action.
pub fn quiesce_action() -> InnerAction {
    ActorModelAction::SelectRandom {
        actor: Id::from(0),
        key: "quiesce".to_string(),
        random: (),
    }
}

/// `action == quiesce_action()` without building one (the check runs on every step).
pub fn is_quiesce(action: &InnerAction) -> bool {
    matches!(action, ActorModelAction::SelectRandom { key, .. } if key == "quiesce")
}

impl ReplModel {
    /// The deterministic fair scheduler of bounded-response mode: nothing once converged;
    /// else a restart, else the first delivery that is taken, else the next timer after the
    /// last one fired (round robin). Faults are never chosen.
    pub fn fair_choice(&self, s: &ReplState) -> Option<InnerAction> {
        if self.converged(s) {
            return None;
        }
        let mut all = Vec::new();
        self.environment_actions(s, &mut all);
        let taken = |a: &InnerAction| !is_fault(a) && self.step(s, a.clone()).is_some();
        let pick =
            |f: &dyn Fn(&InnerAction) -> bool| all.iter().find(|a| f(a) && taken(a)).cloned();
        if let Some(a) = pick(&|a| matches!(a, ActorModelAction::Recover(_))) {
            return Some(a);
        }
        if let Some(a) = pick(&|a| matches!(a, ActorModelAction::Deliver { .. })) {
            return Some(a);
        }
        let mut timers: Vec<(usize, Timer)> = all
            .iter()
            .filter(|a| taken(a))
            .filter_map(|a| match a {
                ActorModelAction::Timeout(id, t) => Some((usize::from(*id), *t)),
                _ => None,
            })
            .collect();
        timers.sort();
        let next = timers
            .iter()
            .find(|k| s.last_timer.is_none_or(|last| **k > last))
            .or_else(|| timers.first())?;
        Some(ActorModelAction::Timeout(Id::from(next.0), next.1))
    }

    /// Actions the environment offers (faults within the budget).
    fn environment_actions(&self, s: &ReplState, actions: &mut Vec<InnerAction>) {
        let offered = actions.len();
        self.inner.actions(&s.sys, actions);
        let mut i = 0;
        actions.retain(|a| {
            i += 1;
            i <= offered
                || match a {
                    ActorModelAction::Crash(id) => {
                        self.cfg.crashes
                            && s.faults_left > 0
                            && usize::from(*id) != self.cfg.client_id()
                    }
                    // A partition starts on a replica not yet cut off, and
                    // ends only where one started.
                    ActorModelAction::Timeout(id, Timer::Partition) => {
                        s.faults_left > 0
                            && s.isolated & (1 << usize::from(*id)) == 0
                            && self
                                .node(s, usize::from(*id))
                                .is_some_and(|n| n.repl.link().is_some())
                    }
                    // A replica stops reading (once at a time).
                    ActorModelAction::Timeout(id, Timer::Stall) => {
                        s.faults_left > 0
                            && s.stalled & (1 << usize::from(*id)) == 0
                            && self
                                .node(s, usize::from(*id))
                                .is_some_and(|n| n.repl.link().is_some())
                    }
                    a if is_timeout_fault(a) => self.cfg.timeouts && s.faults_left > 0,
                    a if is_fault(a) => s.faults_left > 0,
                    ActorModelAction::Timeout(_, Timer::Repl(ReplTimer::MasterPing)) => {
                        s.pings_left > 0
                    }
                    // A replica retries when its master can serve it (see "Retries" in the module
                    // comment): a retry refused with -NOMASTERLINK changes nothing but the link id.
                    ActorModelAction::Timeout(id, Timer::Repl(ReplTimer::ConnectRetry)) => {
                        self.can_serve(s, usize::from(*id)) && !self.cut_off(s, usize::from(*id))
                    }
                    ActorModelAction::Timeout(id, Timer::Heal) => {
                        s.isolated & (1 << usize::from(*id)) != 0
                    }
                    // It reads again.
                    ActorModelAction::Timeout(id, Timer::Unstall) => {
                        s.stalled & (1 << usize::from(*id)) != 0
                    }
                    // What a master sends a stalled replica after its PSYNC waits (the
                    // handshake's replies came before it stopped reading).
                    ActorModelAction::Deliver {
                        dst,
                        msg: Msg::ToReplica(..) | Msg::Rdb(..),
                        ..
                    } if s.stalled & (1 << usize::from(*dst)) != 0 => {
                        !self.node(s, usize::from(*dst)).is_some_and(|n| {
                            n.repl.link().is_some_and(|l| {
                                matches!(
                                    l.phase,
                                    LinkPhase::AwaitPsyncReply
                                        | LinkPhase::Transfer { .. }
                                        | LinkPhase::Streaming
                                )
                            })
                        })
                    }
                    // Time passes once, after a TTL was set; then masters delete what expired.
                    ActorModelAction::Timeout(_, Timer::Clock) => {
                        !s.ttl_passed
                            && self
                                .nodes(s)
                                .any(|(_, n)| n.data.iter().any(|e| e & TTL != 0))
                    }
                    ActorModelAction::Timeout(id, Timer::ActiveExpire) => {
                        s.ttl_passed
                            && self.node(s, usize::from(*id)).is_some_and(|n| {
                                n.repl.role == Role::Master
                                    && !n.repl.failover.pauses_writes()
                                    && expired_key(&n.data).is_some()
                            })
                    }
                    // REPLICAOF <node 1> once node 1 is a master, between nodes that can reach it.
                    ActorModelAction::Timeout(id, Timer::AdminFollow) => {
                        self.node(s, 1).is_some_and(|n| n.repl.link().is_none())
                            && s.isolated & (1 << usize::from(*id) | 1 << 1) == 0
                    }
                    // The once-a-second ACK fires only when it carries news and after the previous one
                    // was delivered: acks are idempotent and monotone, so a queue of them, or a repeat
                    // of what the master recorded, adds no behaviour, only states.
                    ActorModelAction::Timeout(id, Timer::Repl(ReplTimer::ReplicaAck)) => {
                        !self.ack_is_redundant(s, usize::from(*id))
                            && !queued(&s.sys.network).any(|(src, _, m)| {
                                src == *id && matches!(m, Msg::ToMaster(_, ToMaster::Ack { .. }))
                            })
                    }
                    _ => true,
                }
        });
    }

    /// One step of the actor system with the budget and monitor bookkeeping.
    fn step(&self, last: &ReplState, action: InnerAction) -> Option<ReplState> {
        let sys = match self.inner.next_state(&last.sys, action.clone()) {
            Some(sys) => sys,
            // A partition of a replica whose link is already down, and every heal, change
            // only the wrapper's `isolated` (stateright calls the actor's firing a no-op).
            None if matches!(
                action,
                ActorModelAction::Timeout(
                    _,
                    Timer::Partition | Timer::Heal | Timer::Clock | Timer::Stall | Timer::Unstall
                )
            ) =>
            {
                last.sys.clone()
            }
            None => return None,
        };
        if is_fault(&action)
            && !matches!(
                action,
                ActorModelAction::Crash(_)
                    | ActorModelAction::Timeout(_, Timer::Partition | Timer::Stall)
            )
            && sys.actor_states == last.sys.actor_states
            && sys.network == last.sys.network
        {
            // A fault timer with nothing to break (a stale timeout): not a step.
            return None;
        }
        let mut next = ReplState {
            sys,
            faults_left: last.faults_left,
            pings_left: last.pings_left,
            events: 0,
            violations: last.violations,
            fair: last.fair,
            stable_steps: last.stable_steps,
            last_timer: last.last_timer,
            isolated: last.isolated,
            ttl_passed: last.ttl_passed,
            stalled: last.stalled,
        };
        match action {
            ActorModelAction::Crash(id) => self.reset_connections(last, usize::from(id), &mut next),
            ActorModelAction::Timeout(id, Timer::Partition) => {
                next.isolated |= 1 << usize::from(id)
            }
            ActorModelAction::Timeout(id, Timer::Heal) => next.isolated &= !(1 << usize::from(id)),
            ActorModelAction::Timeout(_, Timer::Clock) => next.ttl_passed = true,
            ActorModelAction::Timeout(id, Timer::Stall) => next.stalled |= 1 << usize::from(id),
            ActorModelAction::Timeout(id, Timer::Unstall) => {
                next.stalled &= !(1 << usize::from(id))
            }
            _ => {}
        }
        if is_fault(&action) {
            next.faults_left -= 1;
        }
        if matches!(
            action,
            ActorModelAction::Timeout(_, Timer::Repl(ReplTimer::MasterPing))
        ) {
            next.pings_left -= 1;
        }
        self.monitor(last, &action, &mut next);
        Some(next)
    }
}

/// A short human-readable form of an action (also used in reports).
pub fn format_action(action: &InnerAction) -> String {
    match action {
        ActorModelAction::Deliver { src, dst, msg } => format!(
            "{} -> {}: {}",
            usize::from(*src),
            usize::from(*dst),
            format_msg(msg)
        ),
        ActorModelAction::Timeout(id, t) => format!("{}: timer {:?}", usize::from(*id), t),
        ActorModelAction::Crash(id) => format!("{}: crash", usize::from(*id)),
        ActorModelAction::Recover(id) => format!("{}: restart", usize::from(*id)),
        a if is_quiesce(a) => "environment: faults stop; the fair scheduler runs".to_string(),
        other => format!("{other:?}"),
    }
}

pub fn format_msg(msg: &Msg) -> String {
    let link = |l: &LinkId| format!("[link {}.{}]", l.incarnation, l.seq);
    match msg {
        Msg::ToMaster(l, ToMaster::Psync { req, failover }) => format!(
            "{} PSYNC {} {}{}",
            link(l),
            req.replid
                .map_or("?".to_string(), |r| r.to_hex()[..8].to_string()),
            req.offset,
            if *failover { " FAILOVER" } else { "" }
        ),
        Msg::ToMaster(l, m) => format!("{} {:?}", link(l), m),
        Msg::ToReplica(l, ToReplica::FullResync { replid, offset }) => {
            format!(
                "{} +FULLRESYNC {} {}",
                link(l),
                &replid.to_hex()[..8],
                offset
            )
        }
        Msg::ToReplica(l, ToReplica::Continue { replid }) => {
            format!("{} +CONTINUE {}", link(l), &replid.to_hex()[..8])
        }
        Msg::ToReplica(l, ToReplica::Stream(b)) => format!("{} stream {} bytes", link(l), b.len()),
        Msg::ToReplica(l, m) => format!("{} {:?}", link(l), m),
        Msg::Rdb(l, d) => format!("{} RDB {:?}", link(l), d),
        Msg::Garbage(l) => format!("{} malformed bytes", link(l)),
        Msg::Write(i) => format!("SET k{i} v{i}"),
        Msg::WriteOverLimit(i) => format!("SET k{i} v{i}, past every output-buffer limit"),
        Msg::WriteReply(i, ok) => {
            format!("reply to write {i}: {}", if *ok { "+OK" } else { "error" })
        }
    }
}

// ----- properties --------------------------------------------------------------------------

/// Names of the properties, as reports and the CLI show them.
pub mod names {
    pub const SAME_POSITION_SAME_DATA: &str = "same (replid, offset) means same data";
    pub const PREFIX_OF_HISTORY: &str = "applied stream is a prefix of the master's history";
    pub const NO_DUPLICATE_WRITE: &str = "partial resync leaves no gap or duplicate";
    pub const OFFSETS_GROW: &str = "offsets only grow within a replid";
    pub const ACK_WITHIN_SENT: &str = "an ack never exceeds what was sent and applied";
    pub const CONTINUE_IN_BACKLOG: &str = "+CONTINUE only for a range still in the backlog";
    pub const NO_FULL_INSIDE_WINDOW: &str =
        "a reconnect inside the backlog window never causes a full sync";
    pub const SWITCHOVER_LOSES_NO_WRITE: &str =
        "a coordinated switchover loses no acknowledged write";
    pub const SOMETIMES_PARTIAL_AFTER_CUT: &str = "sometimes: partial resync after a reconnect";
    pub const SOMETIMES_FULL_AFTER_OVERFLOW: &str = "sometimes: full resync after backlog overflow";
    pub const SOMETIMES_REPLID2: &str =
        "sometimes: partial resync through replid2 after a promotion";
    pub const SOMETIMES_SWITCHOVER: &str = "sometimes: switchover completes";
    pub const BOUNDED_RESPONSE: &str =
        "after faults stop, a fair scheduler converges within the bound";
    pub const SOMETIMES_SIBLING_REPLID2: &str =
        "sometimes: a sibling resumes through replid2 after the switchover";
    pub const SOMETIMES_CONVERGED: &str =
        "sometimes: all replicas streaming at the master's offset";
}

/// Pairs (a, b) of live nodes where `a` is on `b`'s history at or below `b`'s offset:
/// the same replid, or `b`'s replid2 up to the promotion point.
fn shares_history(a: &ReplIdentity, b: &ReplIdentity) -> bool {
    (a.replid == b.replid && a.master_repl_offset <= b.master_repl_offset)
        || (b.replid2 != ReplId::ZERO
            && a.replid == b.replid2
            && (a.master_repl_offset as i64) < b.second_repl_offset)
}

fn is_prefix(a: &[u8], b: &[u8]) -> bool {
    a.len() <= b.len() && a == &b[..a.len()]
}

/// Every property of the replication model.
pub fn properties() -> Vec<Property<ReplModel>> {
    use names::*;
    vec![
        // Hazard: PSYNC2 backlog corruption / chained replicas at equal offsets with different
        // data (redis#3899, #7306): equal positions must mean equal data sets.
        // (Properties run on every state: they walk the nodes without allocating.)
        Property::<ReplModel>::always(SAME_POSITION_SAME_DATA, |m, s| {
            m.nodes(s).all(|(_, a)| {
                m.nodes(s).all(|(_, b)| {
                    a.repl.identity.replid != b.repl.identity.replid
                        || a.repl.identity.master_repl_offset != b.repl.identity.master_repl_offset
                        || a.data == b.data
                })
            })
        }),
        // Hazard: a replica resuming at the wrong point of an old history (redis#7320 made
        // second_repl_offset the "real meaningful offset"); covers the replid2 window too.
        Property::<ReplModel>::always(PREFIX_OF_HISTORY, |m, s| {
            m.nodes(s).all(|(_, a)| {
                m.nodes(s).all(|(_, b)| {
                    !shares_history(&a.repl.identity, &b.repl.identity)
                        || is_prefix(&a.data, &b.data)
                })
            })
        }),
        // Hazard: replaying part of the backlog twice or skipping bytes on +CONTINUE: the
        // writes a node applied are strictly increasing (the client writes in order).
        Property::<ReplModel>::always(NO_DUPLICATE_WRITE, |m, s| {
            m.nodes(s).all(|(_, n)| {
                let mut prev: Option<u8> = None;
                n.data.iter().copied().filter(|&e| e < TTL).all(|w| {
                    let increasing = prev.is_none_or(|p| p < w);
                    prev = Some(w);
                    increasing
                })
            })
        }),
        // Hazard: an offset moving backwards under the same id makes two histories share a
        // name (the invariant every PSYNC decision relies on).
        Property::<ReplModel>::always(OFFSETS_GROW, |_, s| s.violations & VIOL_OFFSET_SHRANK == 0),
        // Hazard: WAIT counting a replica at a position it never reached (FrogDB's seeded-ack
        // bug): an ack is at most the master's offset and the replica's applied offset.
        Property::<ReplModel>::always(ACK_WITHIN_SENT, |m, s| {
            m.nodes(s).all(|(_, master)| {
                master.repl.replicas.iter().all(|e| {
                    e.ack_offset <= master.repl.identity.master_repl_offset
                        && m.node(s, e.node as usize).is_none_or(|r| {
                            r.repl.link().is_none_or(|l| l.link != e.link)
                                || r.repl.identity.replid != master.repl.identity.replid
                                || e.ack_offset <= r.repl.identity.master_repl_offset
                        })
                })
            })
        }),
        // Hazard: +CONTINUE for bytes the backlog no longer holds leaves a silent gap.
        Property::<ReplModel>::always(CONTINUE_IN_BACKLOG, |_, s| {
            s.violations & VIOL_CONTINUE_OUTSIDE_BACKLOG == 0
        }),
        // Hazard: needless full syncs after a short link drop (the full-sync loops of
        // redis#4268, #4607): inside the window and on the history, PSYNC must continue.
        Property::<ReplModel>::always(NO_FULL_INSIDE_WINDOW, |_, s| {
            s.violations & VIOL_FULL_INSIDE_BACKLOG == 0
        }),
        // Hazard: Sentinel/manual failover losing acknowledged writes (redis#4819, #12113):
        // after FAILOVER (without FORCE) the promoted node holds every write node 0 acked.
        Property::<ReplModel>::always(SWITCHOVER_LOSES_NO_WRITE, |m, s| {
            if m.cfg.switchover.is_none() || s.sys.crashed[0] {
                return true;
            }
            let Some(n0) = m.node(s, 0) else { return true };
            if n0.repl.incarnation > 0 {
                return true; // node 0 restarted: its writes are subject to persistence, not FAILOVER
            }
            let acked = m.client(s).acked;
            m.nodes(s)
                .filter(|(i, n)| *i != 0 && matches!(n.repl.role, Role::Master))
                .all(|(_, n)| {
                    (1..=m.cfg.writes)
                        .filter(|i| acked & (1 << i) != 0)
                        .all(|i| n.data.contains(&i))
                })
        }),
        // Liveness as bounded response: once faults stop, the fair scheduler converges within
        // the bound (a non-converged state with nothing fair to do is a deadlock).
        Property::<ReplModel>::always(BOUNDED_RESPONSE, |m, s| {
            let Some(bound) = m.cfg.bounded_response else {
                return true;
            };
            !s.fair || m.converged(s) || (s.stable_steps < bound && m.fair_choice(s).is_some())
        }),
        Property::<ReplModel>::sometimes(SOMETIMES_PARTIAL_AFTER_CUT, |_, s| {
            s.events & EV_PARTIAL_AFTER_RECONNECT != 0
        }),
        Property::<ReplModel>::sometimes(SOMETIMES_FULL_AFTER_OVERFLOW, |_, s| {
            s.events & EV_FULL_AFTER_OVERFLOW != 0
        }),
        Property::<ReplModel>::sometimes(SOMETIMES_REPLID2, |_, s| {
            s.events & EV_PARTIAL_VIA_REPLID2 != 0
        }),
        Property::<ReplModel>::sometimes(SOMETIMES_SIBLING_REPLID2, |_, s| {
            s.events & EV_SIBLING_VIA_REPLID2 != 0
        }),
        Property::<ReplModel>::sometimes(SOMETIMES_SWITCHOVER, |m, s| {
            m.cfg.switchover.is_some()
                && m.node(s, 1)
                    .is_some_and(|n| matches!(n.repl.role, Role::Master))
                && m.node(s, 0)
                    .and_then(|n| n.repl.link())
                    .is_some_and(|l| l.master == 1 && l.phase == LinkPhase::Streaming)
        }),
        Property::<ReplModel>::sometimes(SOMETIMES_CONVERGED, |m, s| m.converged(s)),
    ]
}

/// Which properties a configuration can exercise (the others would be vacuous there).
pub fn applicable(cfg: &ModelCfg, name: &str) -> bool {
    use names::*;
    match name {
        SOMETIMES_SWITCHOVER | SOMETIMES_REPLID2 | SWITCHOVER_LOSES_NO_WRITE => {
            cfg.switchover.is_some()
        }
        SOMETIMES_SIBLING_REPLID2 => cfg.switchover.is_some() && cfg.replicas >= 2,
        BOUNDED_RESPONSE => cfg.bounded_response.is_some(),
        SOMETIMES_PARTIAL_AFTER_CUT | SOMETIMES_FULL_AFTER_OVERFLOW => cfg.faults > 0,
        _ => true,
    }
}

/// Liveness fairness classes for [`crate::liveness::check_eventually`]: deliveries per
/// channel, each node's non-fault timers, restarts; faults are never forced (`None`).
pub fn fairness_class(
    _s: &ReplState,
    action: &InnerAction,
) -> Option<(u8, usize, usize, Option<Timer>)> {
    if is_fault(action) {
        return None;
    }
    match action {
        ActorModelAction::Deliver { src, dst, .. } => {
            Some((0, usize::from(*src), usize::from(*dst), None))
        }
        ActorModelAction::Timeout(id, t) => Some((1, usize::from(*id), 0, Some(*t))),
        ActorModelAction::Recover(id) => Some((2, usize::from(*id), 0, None)),
        _ => None,
    }
}

/// Whether a dataset digest is needed for traces: a short stable hash of the write ids.
pub fn dataset_digest(data: &[u8]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}
