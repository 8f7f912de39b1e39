//! Per-connection state ([`Client`]) and the registry of connected clients that CLIENT LIST,
//! CLIENT KILL and INFO read ([`ClientHandle`], [`Clients`]).
//!
//! The connection task owns its `Client`; what other tasks need to see (name, db, last
//! command, idle time) is copied into the shared `ClientHandle` once per batch of commands.

use crate::db::ClientId;
use crate::reply::Protocol;
use crate::sbytes::SBytes;
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Notify;

/// The state of one connection, owned by its task.
pub struct Client {
    pub id: ClientId,
    pub db: u32,
    pub proto: Protocol,
    pub authenticated: bool,
    pub name: Option<Bytes>,
    /// Inside MULTI: the queued commands.
    pub multi: Option<Vec<Vec<Bytes>>>,
    /// A command was refused while queueing: EXEC will answer EXECABORT.
    pub multi_error: bool,
    /// WATCHed keys.
    pub watched: Vec<(u32, SBytes)>,
    /// Close the connection once the replies written so far are sent (QUIT, protocol error).
    pub close_after_reply: bool,
    /// The last command's name, for CLIENT LIST's `cmd=`.
    pub last_cmd: &'static str,
    pub handle: Arc<ClientHandle>,
    /// What the client announced with REPLCONF, and a pending PSYNC/SYNC.
    pub repl: ReplClientState,
    /// The replication offset after this client's last write (what WAIT waits for).
    pub woff: u64,
    /// A command that waits (WAIT): the connection answers it later.
    pub blocked: Option<Blocked>,
    /// EXEC is running this client's queued commands (WAIT answers at once there).
    pub multi_exec_running: bool,
    /// The client applying our master's stream: it may write on a read-only replica.
    pub is_master_link: bool,
}

/// Replication facts of a connection that may become a replica link.
#[derive(Debug, Default)]
pub struct ReplClientState {
    pub listening_port: u16,
    pub announced_ip: Option<String>,
    pub capa_eof: bool,
    pub capa_psync2: bool,
    /// Set by PSYNC/SYNC: the connection becomes a replica link after this batch.
    pub psync: Option<PsyncStart>,
    pub is_replica_link: bool,
}

/// A PSYNC (or legacy SYNC) to serve.
#[derive(Debug, Clone, Copy)]
pub struct PsyncStart {
    pub req: verdis_core::repl::PsyncRequest,
    pub failover: bool,
    /// Legacy `SYNC`: the payload comes without a `+FULLRESYNC` line.
    pub legacy: bool,
}

/// Why a client waits.
#[derive(Debug, Clone, Copy)]
pub enum Blocked {
    /// WAIT: until `numreplicas` acknowledged `offset`, or `deadline_ms` (unix ms) passed.
    Wait {
        numreplicas: i64,
        offset: u64,
        deadline_ms: Option<i64>,
    },
    /// A write while FAILOVER pauses writes: it runs when the pause ends.
    Paused,
}

impl Client {
    pub fn new(handle: Arc<ClientHandle>, authenticated: bool) -> Self {
        Client {
            id: handle.id,
            db: 0,
            proto: Protocol::Resp2,
            authenticated,
            name: None,
            multi: None,
            multi_error: false,
            watched: Vec::new(),
            close_after_reply: false,
            last_cmd: "NULL",
            handle,
            repl: ReplClientState::default(),
            woff: 0,
            blocked: None,
            multi_exec_running: false,
            is_master_link: false,
        }
    }

    /// Copies what other tasks may read into the shared handle.
    pub fn publish(&self) {
        let mut m = self.handle.meta.lock();
        m.db = self.db;
        m.name = self.name.clone();
        m.last_cmd = self.last_cmd;
        m.last_interaction = Instant::now();
        m.multi = self.multi.as_ref().map(|q| q.len() as i64).unwrap_or(-1);
        m.resp = self.proto.number();
        m.flag_multi = self.multi.is_some();
    }
}

/// What CLIENT LIST shows of a client that another task owns.
#[derive(Clone, Debug)]
pub struct ClientMeta {
    pub db: u32,
    pub name: Option<Bytes>,
    pub last_cmd: &'static str,
    pub last_interaction: Instant,
    pub multi: i64,
    pub resp: i64,
    pub flag_multi: bool,
}

/// The shared view of one connected client.
pub struct ClientHandle {
    pub id: ClientId,
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    pub fd: i64,
    pub created: Instant,
    pub meta: Mutex<ClientMeta>,
    killed: AtomicBool,
    kill_notify: Notify,
    /// The connection became a replica link (CLIENT LIST flags=S, CLIENT KILL TYPE replica).
    replica: AtomicBool,
    /// Our link to the master we replicate from (CLIENT LIST flags=M).
    master: AtomicBool,
}

impl ClientHandle {
    pub fn new(id: ClientId, addr: SocketAddr, laddr: SocketAddr, fd: i64) -> Self {
        ClientHandle {
            id,
            addr,
            laddr,
            fd,
            created: Instant::now(),
            meta: Mutex::new(ClientMeta {
                db: 0,
                name: None,
                last_cmd: "NULL",
                last_interaction: Instant::now(),
                multi: -1,
                resp: 2,
                flag_multi: false,
            }),
            killed: AtomicBool::new(false),
            kill_notify: Notify::new(),
            replica: AtomicBool::new(false),
            master: AtomicBool::new(false),
        }
    }

    /// Asks the connection to close (CLIENT KILL, SHUTDOWN).
    pub fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        self.kill_notify.notify_one();
    }

    pub fn mark_replica(&self) {
        self.replica.store(true, Ordering::SeqCst);
    }

    pub fn mark_master(&self) {
        self.master.store(true, Ordering::SeqCst);
    }

    pub fn is_master(&self) -> bool {
        self.master.load(Ordering::SeqCst)
    }

    pub fn is_replica(&self) -> bool {
        self.replica.load(Ordering::SeqCst)
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    /// Resolves when [`ClientHandle::kill`] was called.
    pub async fn killed(&self) {
        if self.is_killed() {
            return;
        }
        self.kill_notify.notified().await;
    }

    /// One CLIENT LIST line (without the trailing newline), in Redis 7.0's field order.
    pub fn info_line(&self, now: Instant) -> String {
        let m = self.meta.lock().clone();
        let name = m
            .name
            .as_ref()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default();
        let flags = if self.is_master() {
            "M"
        } else if self.is_replica() {
            "S"
        } else if m.flag_multi {
            "x"
        } else {
            "N"
        };
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub=0 psub=0 ssub=0 multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            name,
            now.duration_since(self.created).as_secs(),
            now.duration_since(m.last_interaction).as_secs(),
            flags,
            m.db,
            m.multi,
            m.last_cmd,
            m.resp
        )
    }
}

/// All connected clients, by id.
#[derive(Default)]
pub struct Clients {
    map: Mutex<BTreeMap<ClientId, Arc<ClientHandle>>>,
}

impl Clients {
    pub fn insert(&self, h: Arc<ClientHandle>) {
        self.map.lock().insert(h.id, h);
    }

    pub fn remove(&self, id: ClientId) {
        self.map.lock().remove(&id);
    }

    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn all(&self) -> Vec<Arc<ClientHandle>> {
        self.map.lock().values().cloned().collect()
    }

    pub fn get(&self, id: ClientId) -> Option<Arc<ClientHandle>> {
        self.map.lock().get(&id).cloned()
    }
}
