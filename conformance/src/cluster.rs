//! Real server processes for a replay: one per model node, each behind its [`Proxy`].
//!
//! Every node runs with the replay configuration: no save points, diskless sync without delay,
//! no master PINGs and no timeouts within a run (`repl-ping-replica-period` and `repl-timeout`
//! 3600), the trace's backlog size, and `replica-announce-port` set to its proxy's port. Nodes
//! keep their port and directory across restarts (the RDB of a restart with persistence).

use crate::proxy::Proxy;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use verdis_core::resp::Frame;
use verdis_model::replication::ModelCfg;
use verdis_tests::{
    answered_by, free_port, info_field, require_program, verdis_binary, Answer, Conn,
};

/// Which server a replay runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Verdis,
    Redis,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Verdis => "verdis",
            Target::Redis => "redis",
        }
    }
}

pub struct Node {
    pub port: u16,
    pub proxy: Proxy,
    pub dir: PathBuf,
    child: Option<Child>,
    /// The protocol trace file (Verdis only).
    pub trace: Option<PathBuf>,
}

pub struct Cluster {
    pub target: Target,
    pub nodes: Vec<Node>,
    backlog: u64,
}

/// What one node shows: INFO replication and stats, and its keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealNode {
    pub up: bool,
    pub role: String,
    /// The node behind `master_port` (`None` for a master; `Some(usize::MAX)` for a port that
    /// is no node's proxy).
    pub master: Option<usize>,
    pub replid: String,
    pub replid2: String,
    pub offset: u64,
    pub second_offset: i64,
    pub link_status: Option<String>,
    pub sync_full: u64,
    pub sync_partial_ok: u64,
    pub sync_partial_err: u64,
    /// Write ids of the keys `k<i>` holding the expected value.
    pub dataset: BTreeSet<u8>,
    /// Keys that are not `k<i>` with the value of write i.
    pub strays: Vec<String>,
}

impl RealNode {
    fn down() -> RealNode {
        RealNode {
            up: false,
            role: String::new(),
            master: None,
            replid: String::new(),
            replid2: String::new(),
            offset: 0,
            second_offset: 0,
            link_status: None,
            sync_full: 0,
            sync_partial_ok: 0,
            sync_partial_err: 0,
            dataset: BTreeSet::new(),
            strays: Vec::new(),
        }
    }
}

impl Cluster {
    /// Starts the nodes of `cfg` (node 0 a master, the others replicas of their configured
    /// master) in `workdir`. `trace_dir`: where Verdis nodes write their protocol traces.
    pub fn start(
        target: Target,
        cfg: &ModelCfg,
        workdir: &Path,
        trace_dir: Option<&Path>,
    ) -> Result<Cluster, String> {
        let n = cfg.node_count();
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        // Proxies first: their ports are what replicas announce.
        let proxies: Vec<Proxy> = ports
            .iter()
            .map(|&p| Proxy::start(p, HashMap::new()))
            .collect::<Result<_, _>>()?;
        let mut announce: HashMap<u16, usize> = HashMap::new();
        for (i, (&p, proxy)) in ports.iter().zip(&proxies).enumerate() {
            announce.insert(p, i);
            announce.insert(proxy.port, i);
        }
        for proxy in &proxies {
            proxy.set_nodes(announce.clone());
        }
        let mut nodes = Vec::new();
        for (i, (port, proxy)) in ports.into_iter().zip(proxies).enumerate() {
            let dir = workdir.join(format!("node{i}"));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let trace = match (target, trace_dir) {
                (Target::Verdis, Some(t)) => Some(t.join(format!("node{i}.jsonl"))),
                _ => None,
            };
            nodes.push(Node {
                port,
                proxy,
                dir,
                child: None,
                trace,
            });
        }
        let mut cluster = Cluster {
            target,
            nodes,
            backlog: cfg.backlog_bytes,
        };
        for i in 0..n {
            cluster.spawn(i, cfg.configured_master(i).map(|m| m as usize))?;
        }
        Ok(cluster)
    }

    /// Starts node `i` (again), following `master` if set, and waits until it answers.
    pub fn spawn(&mut self, i: usize, master: Option<usize>) -> Result<(), String> {
        let master_proxy = master.map(|m| self.nodes[m].proxy.port);
        let node = &mut self.nodes[i];
        let bin = match self.target {
            Target::Verdis => verdis_binary(),
            Target::Redis => require_program("redis-server"),
        };
        let mut cmd = Command::new(bin);
        let s = |v: &dyn ToString| v.to_string();
        let mut args: Vec<String> = vec![
            s(&"--port"),
            s(&node.port),
            s(&"--bind"),
            s(&"127.0.0.1"),
            s(&"--dir"),
            node.dir.display().to_string(),
            s(&"--dbfilename"),
            s(&"dump.rdb"),
            s(&"--save"),
            String::new(),
            s(&"--appendonly"),
            s(&"no"),
            s(&"--daemonize"),
            s(&"no"),
            s(&"--repl-diskless-sync"),
            s(&"yes"),
            s(&"--repl-diskless-sync-delay"),
            s(&"0"),
            s(&"--repl-ping-replica-period"),
            s(&"3600"),
            s(&"--repl-timeout"),
            s(&"3600"),
            s(&"--repl-backlog-size"),
            s(&self.backlog),
            s(&"--replica-announce-port"),
            s(&node.proxy.port),
            s(&"--enable-debug-command"),
            s(&"yes"),
        ];
        if let Some(p) = master_proxy {
            args.extend([s(&"--replicaof"), s(&"127.0.0.1"), s(&p)]);
        }
        if let Some(t) = &node.trace {
            args.extend([s(&"--verdis-protocol-trace"), t.display().to_string()]);
        }
        let log = |name: &str| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(node.dir.join(name))
                .map(Stdio::from)
                .map_err(|e| format!("log file: {e}"))
        };
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(log("stdout.log")?)
            .stderr(log("stderr.log")?);
        let child = cmd.spawn().map_err(|e| format!("spawn node {i}: {e}"))?;
        node.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pid = self.nodes[i].child.as_ref().map_or(0, |c| c.id());
            match answered_by(self.nodes[i].port, pid) {
                Answer::Ours => return Ok(()),
                // Another listener on the port (a proxy or another test took the released
                // port): this node failed to bind; observing it would observe someone else.
                Answer::Other(who) => {
                    return Err(format!(
                        "node {i}: port {} is held by another process ({who})",
                        self.nodes[i].port
                    ))
                }
                Answer::Nothing => {}
            }
            let exited = self.nodes[i]
                .child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
            if exited {
                self.nodes[i].child = None;
                let log = std::fs::read_to_string(self.nodes[i].dir.join("stdout.log"))
                    .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(3).collect();
                return Err(format!("node {i} exited at start: {}", tail.join(" | ")));
            }
            if Instant::now() > deadline {
                return Err(format!("node {i} did not answer PING within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `kill -9` of node `i`, waiting for the process to be gone.
    pub fn kill9(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
    }

    /// Starts (or ends) a partition of node `node`: no replication link to or from it.
    pub fn partition(&self, node: usize, on: bool) {
        for n in &self.nodes {
            n.proxy.block(node, on);
        }
        self.nodes[node].proxy.refuse(on);
    }

    /// Node `node` stops reading its replication links (or reads again): every proxy holds
    /// (or releases) what masters send it after its PSYNC.
    pub fn stall(&self, node: usize, on: bool) {
        for n in &self.nodes {
            n.proxy.stall(node, on);
        }
    }

    pub fn is_up(&self, i: usize) -> bool {
        self.nodes[i].child.is_some()
    }

    /// One command on node `i`'s own port (not through the proxy).
    pub fn cmd(&self, i: usize, args: &[&str]) -> Result<Frame, String> {
        let mut c = Conn::try_connect(self.nodes[i].port).map_err(|e| e.to_string())?;
        c.try_cmd(args).map_err(|e| e.to_string())
    }

    /// The node whose proxy listens on `port`.
    fn node_of_proxy(&self, port: u16) -> usize {
        self.nodes
            .iter()
            .position(|n| n.proxy.port == port)
            .unwrap_or(usize::MAX)
    }

    /// What every node shows now (a node that does not answer counts as down).
    pub fn observe(&self, big_write: Option<u32>) -> Vec<RealNode> {
        (0..self.nodes.len())
            .map(|i| {
                if !self.is_up(i) {
                    return RealNode::down();
                }
                self.observe_node(i, big_write)
                    .unwrap_or_else(|_| RealNode::down())
            })
            .collect()
    }

    fn observe_node(&self, i: usize, big_write: Option<u32>) -> Result<RealNode, String> {
        let mut c = Conn::try_connect(self.nodes[i].port).map_err(|e| e.to_string())?;
        let info = match c.try_cmd(&["INFO", "all"]).map_err(|e| e.to_string())? {
            Frame::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
            other => return Err(format!("INFO: {other:?}")),
        };
        let field = |name: &str| info_field(&info, name);
        let num = |name: &str| field(name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let role = field("role").unwrap_or_default();
        let master = if role == "slave" {
            field("master_port")
                .and_then(|p| p.parse().ok())
                .map(|p| self.node_of_proxy(p))
        } else {
            None
        };
        let mut node = RealNode {
            up: true,
            link_status: (role == "slave").then(|| field("master_link_status").unwrap_or_default()),
            role,
            master,
            replid: field("master_replid").unwrap_or_default(),
            replid2: field("master_replid2").unwrap_or_default(),
            offset: num("master_repl_offset"),
            second_offset: field("second_repl_offset")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            sync_full: num("sync_full"),
            sync_partial_ok: num("sync_partial_ok"),
            sync_partial_err: num("sync_partial_err"),
            dataset: BTreeSet::new(),
            strays: Vec::new(),
        };
        let keys = match c.try_cmd(&["KEYS", "*"]).map_err(|e| e.to_string())? {
            Frame::Array(items) => items,
            other => return Err(format!("KEYS: {other:?}")),
        };
        for k in keys {
            let Frame::Bulk(k) = k else { continue };
            let name = String::from_utf8_lossy(&k).into_owned();
            let id = name.strip_prefix('k').and_then(|n| n.parse::<u8>().ok());
            let value = c.try_cmd(&["GET", &name]).map_err(|e| e.to_string())?;
            match (id, value) {
                (Some(id), Frame::Bulk(v))
                    if v[..] == verdis_model::replication::write_args(id, big_write)[2][..] =>
                {
                    node.dataset.insert(id);
                }
                _ => node.strays.push(name),
            }
        }
        Ok(node)
    }
}

impl Drop for Cluster {
    /// Every node gets its SIGKILL before any is waited for: killed one after another, a
    /// replica would log its master's death while its own kill comes, and a kill that lands
    /// in the middle of a line's write leaves that line torn (docs/conformance.md, section 3).
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(c) = n.child.as_mut() {
                let _ = c.kill();
            }
        }
        for i in 0..self.nodes.len() {
            self.kill9(i);
        }
    }
}
