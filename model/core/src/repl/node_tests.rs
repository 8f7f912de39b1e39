//! Scenario tests of `ReplNode`: two or three nodes wired by an in-memory FIFO network.

use super::*;
use crate::repl::{Effect, ReplConfig, ToMaster, ToReplica};
use std::collections::VecDeque;

struct Counter(u8);
impl IdSource for Counter {
    fn fresh_replid(&mut self) -> ReplId {
        self.0 += 1;
        ReplId::from_random([self.0; 20])
    }
}

enum Wire {
    M(LinkId, ToMaster),
    R(LinkId, ToReplica),
    Rdb(LinkId, Vec<Vec<Vec<u8>>>),
}

/// Nodes, their data sets (applied writes) and one FIFO of (from, to, message).
struct Net {
    nodes: Vec<ReplNode>,
    data: Vec<Vec<Vec<Vec<u8>>>>,
    queue: VecDeque<(NodeId, NodeId, Wire)>,
    rdb_inbox: Vec<Option<Vec<Vec<Vec<u8>>>>>,
    acks_sent: Vec<(NodeId, u64)>,
    /// Every timer a node armed: (node, timer, at_ms, the clock when it was armed).
    timers_set: Vec<(NodeId, ReplTimer, u64, u64)>,
    cfg: ReplConfig,
    ids: Counter,
    /// The clock every input is handed (0 unless a test moves it).
    now: u64,
}

impl Net {
    fn new(nodes: Vec<ReplNode>, cfg: ReplConfig) -> Net {
        let n = nodes.len();
        Net {
            nodes,
            data: vec![vec![]; n],
            queue: VecDeque::new(),
            rdb_inbox: vec![None; n],
            acks_sent: vec![],
            timers_set: vec![],
            cfg,
            ids: Counter(100),
            now: 0,
        }
    }

    fn exec(&mut self, me: NodeId, effects: Vec<Effect>) {
        for e in effects {
            match e {
                Effect::Connect { .. } | Effect::CancelTimer(_) => {}
                Effect::SetTimer { timer, at_ms } => {
                    self.timers_set.push((me, timer, at_ms, self.now))
                }
                Effect::ToMaster { master, link, msg } => {
                    if let ToMaster::Ack { offset } = msg {
                        self.acks_sent.push((me, offset));
                    }
                    self.queue.push_back((me, master, Wire::M(link, msg)))
                }
                Effect::ToReplica { replica, link, msg } => {
                    self.queue.push_back((me, replica, Wire::R(link, msg)))
                }
                Effect::SendRdb { replica, link, .. } => {
                    let snapshot = self.data[me as usize].clone();
                    self.queue
                        .push_back((me, replica, Wire::Rdb(link, snapshot)));
                    self.nodes[me as usize].handle_rdb_sent(replica, link);
                }
                Effect::LoadRdb { .. } => {
                    self.data[me as usize] = self.rdb_inbox[me as usize]
                        .take()
                        .expect("RDB received before load");
                }
                // SELECT switches the master client's db; the data sets here hold writes only.
                Effect::Apply { args } if args[0].eq_ignore_ascii_case(b"SELECT") => {}
                Effect::Apply { args } => {
                    self.data[me as usize].push(args.iter().map(|a| a.to_vec()).collect())
                }
            }
        }
    }

    fn start(&mut self, me: NodeId) {
        let cfg = self.cfg.clone();
        let fx = self.nodes[me as usize].start(self.now, &cfg);
        self.exec(me, fx);
    }

    fn write(&mut self, me: NodeId, key: &str) -> Result<(), WriteError> {
        let args = vec![b"SET".to_vec(), key.as_bytes().to_vec(), b"v".to_vec()];
        let cfg = self.cfg.clone();
        let fx = self.nodes[me as usize].handle_write(0, &args, self.now, &cfg)?;
        self.data[me as usize].push(args);
        self.exec(me, fx);
        Ok(())
    }

    fn timer(&mut self, me: NodeId, t: ReplTimer) {
        let cfg = self.cfg.clone();
        let fx = self.nodes[me as usize].handle_timer(t, self.now, &cfg, &mut self.ids);
        self.exec(me, fx);
    }

    fn step(&mut self) -> bool {
        let Some((from, to, wire)) = self.queue.pop_front() else {
            return false;
        };
        let (cfg, now) = (self.cfg.clone(), self.now);
        let node = &mut self.nodes[to as usize];
        let fx = match wire {
            Wire::M(link, msg) => {
                node.handle_from_replica(from, link, msg, now, &cfg, &mut self.ids)
            }
            Wire::R(link, msg) => {
                match node.handle_from_master(link, msg, now, &cfg, &mut self.ids) {
                    Ok(fx) => fx,
                    Err(_) => node.handle_link_closed(link, now, &cfg),
                }
            }
            Wire::Rdb(link, snapshot) => {
                self.rdb_inbox[to as usize] = Some(snapshot);
                node.handle_rdb_loaded(link, now, &cfg)
                    .expect("RDB fits the phase")
            }
        };
        self.exec(to, fx);
        true
    }

    /// Runs to quiescence; the last PSYNC request sent on the way.
    fn run_noting_psync(&mut self) -> Option<PsyncRequest> {
        let mut psync = None;
        loop {
            if let Some((_, _, Wire::M(_, ToMaster::Psync { req, .. }))) = self.queue.front() {
                psync = Some(*req);
            }
            if !self.step() {
                return psync;
            }
        }
    }

    fn run(&mut self) {
        let mut steps = 0;
        while self.step() {
            steps += 1;
            assert!(steps < 10_000, "no quiescence");
        }
    }
}

fn id(b: u8) -> ReplId {
    ReplId::from_random([b; 20])
}

fn pair(cfg: ReplConfig) -> Net {
    let mut net = Net::new(
        vec![
            ReplNode::new_master(0, 0, id(1)),
            ReplNode::new_replica(1, 0, id(2), 0),
        ],
        cfg,
    );
    net.start(0);
    net.start(1);
    net
}

/// A master with one streaming replica and one write the replica has not acknowledged yet
/// (acks go out on the replica's timer), so a FAILOVER waits for the target to catch up.
fn pair_with_a_write() -> Net {
    let mut net = pair(ReplConfig::default());
    net.run();
    net.write(0, "a").unwrap();
    net.run();
    net
}

#[test]
fn first_sync_is_full_then_writes_stream_with_a_select() {
    let mut net = pair(ReplConfig::default());
    net.write(0, "before").unwrap(); // no backlog yet: the offset does not move
    assert_eq!(net.nodes[0].identity.master_repl_offset, 0);
    net.run();
    let (m, r) = (&net.nodes[0], &net.nodes[1]);
    assert_ne!(
        m.identity.replid,
        id(1),
        "the first replica creates the backlog under a new replid"
    );
    assert_eq!(m.backlog.as_ref().map(|b| b.first_byte_offset()), Some(1));
    assert_eq!(r.identity, m.identity);
    assert_eq!(r.link().map(|l| l.phase), Some(LinkPhase::Streaming));
    assert_eq!((m.stats.sync_full, m.stats.sync_partial_err), (1, 0));
    assert_eq!(net.data[1], net.data[0]);
    net.write(0, "k").unwrap();
    net.run();
    // SELECT 0 (23 bytes) + SET k v (27 bytes).
    assert_eq!(net.nodes[0].identity.master_repl_offset, 50);
    assert_eq!(net.nodes[1].identity.master_repl_offset, 50);
    assert_eq!(
        net.nodes[0]
            .replicas
            .get(1)
            .map(|e| (e.state, e.ack_offset)),
        Some((ReplicaState::Online, 0))
    );
    net.timer(1, ReplTimer::ReplicaAck);
    net.run();
    assert_eq!(net.nodes[0].wait_count(50), 1);
    assert_eq!(net.data[1], net.data[0]);
}

/// The stream bytes each replica is sent by `effects`, concatenated.
fn streamed(effects: &[Effect]) -> Vec<(NodeId, Vec<u8>)> {
    let mut out: Vec<(NodeId, Vec<u8>)> = vec![];
    for e in effects {
        if let Effect::ToReplica {
            replica,
            msg: ToReplica::Stream(b),
            ..
        } = e
        {
            match out.iter_mut().find(|(r, _)| r == replica) {
                Some((_, acc)) => acc.extend_from_slice(b),
                None => out.push((*replica, b.to_vec())),
            }
        }
    }
    out
}

#[test]
fn a_batch_of_writes_streams_what_the_writes_one_by_one_do() {
    let writes: Vec<(u64, Vec<Vec<u8>>)> = vec![
        (0, vec![b"SET".to_vec(), b"a".to_vec(), b"1".to_vec()]),
        (0, vec![b"SET".to_vec(), b"b".to_vec(), b"2".to_vec()]),
        (3, vec![b"DEL".to_vec(), b"a".to_vec()]),
        (0, vec![b"INCR".to_vec(), b"c".to_vec()]),
    ];
    let (mut one_by_one, mut batched) = (pair(ReplConfig::default()), pair(ReplConfig::default()));
    one_by_one.run();
    batched.run();
    let cfg = ReplConfig::default();
    let mut singly = vec![];
    for (db, args) in &writes {
        singly.extend(
            one_by_one.nodes[0]
                .handle_write(*db, args, 0, &cfg)
                .unwrap(),
        );
    }
    let batch = batched.nodes[0]
        .handle_writes(writes.iter().map(|(db, a)| (*db, a.as_slice())), 0, &cfg)
        .unwrap();
    // One message per replica instead of one per write, with the same bytes.
    assert_eq!(batch.len(), 1);
    assert_eq!(streamed(&batch), streamed(&singly));
    // SELECT 0, SET, SET, SELECT 3, DEL, SELECT 0, INCR.
    let bytes = &streamed(&batch)[0].1;
    assert_eq!(bytes.iter().filter(|&&b| b == b'*').count(), 7);
    let (a, b) = (&one_by_one.nodes[0], &batched.nodes[0]);
    assert_eq!(a.identity, b.identity);
    assert_eq!(a.backlog, b.backlog);
    assert_eq!(a.selected_db, b.selected_db);
    // A replica refuses a batch as it refuses a write.
    let cfg = ReplConfig::default();
    assert_eq!(
        batched.nodes[1].handle_writes(writes.iter().map(|(db, a)| (*db, a.as_slice())), 0, &cfg),
        Err(WriteError::ReadOnly)
    );
}

#[test]
fn handshake_sends_ping_auth_replconfs_then_psync() {
    let cfg = ReplConfig {
        masterauth: true,
        listening_port: 17004,
        ..ReplConfig::default()
    };
    let mut net = pair(cfg);
    let mut seen = vec![];
    while let Some((from, to, wire)) = net.queue.front() {
        if let Wire::M(_, m) = wire {
            seen.push(m.clone());
        }
        let _ = (from, to);
        net.step();
    }
    assert_eq!(
        seen[..5],
        [
            ToMaster::Ping,
            ToMaster::Auth,
            ToMaster::ListeningPort(17004),
            ToMaster::Capa,
            ToMaster::Psync {
                req: PsyncRequest {
                    replid: None,
                    offset: -1
                },
                failover: false
            },
        ]
    );
}

#[test]
fn getack_is_answered_with_the_offset_before_it() {
    // The captured sequence: stream offsets 23, 55, 69, 106 (GETACK), 166 -> ACKs 23, 69, 69, 166.
    let cfg = ReplConfig::default();
    let mut r = ReplNode::new_replica(1, 0, id(2), 0);
    let mut out = r.start(0, &cfg);
    let link = r.link().unwrap().link;
    for reply in [
        ToReplica::Pong,
        ToReplica::ReplconfOk,
        ToReplica::ReplconfOk,
    ] {
        out = r
            .handle_from_master(link, reply, 0, &cfg, &mut Counter(0))
            .unwrap();
    }
    assert!(matches!(
        out[1],
        Effect::ToMaster {
            msg: ToMaster::Psync { .. },
            ..
        }
    ));
    r.handle_from_master(
        link,
        ToReplica::FullResync {
            replid: id(7),
            offset: 0,
        },
        0,
        &cfg,
        &mut Counter(0),
    )
    .unwrap();
    r.handle_rdb_loaded(link, 0, &cfg).unwrap();
    let acks = |fx: Vec<Effect>| -> Vec<u64> {
        fx.into_iter()
            .filter_map(|e| match e {
                Effect::ToMaster {
                    msg: ToMaster::Ack { offset },
                    ..
                } => Some(offset),
                _ => None,
            })
            .collect()
    };
    let cmd = |args: &[&str]| {
        let mut b = vec![];
        crate::resp::encode_command(args, &mut b);
        b
    };
    let mut got = vec![];
    let feed = |r: &mut ReplNode, bytes: Vec<u8>| {
        acks(
            r.handle_from_master(
                link,
                ToReplica::Stream(bytes.into()),
                0,
                &cfg,
                &mut Counter(0),
            )
            .unwrap(),
        )
    };
    got.extend(feed(&mut r, cmd(&["SELECT", "0"])));
    assert_eq!(r.identity.master_repl_offset, 23);
    got.extend(acks(r.handle_timer(
        ReplTimer::ReplicaAck,
        1000,
        &cfg,
        &mut Counter(0),
    )));
    got.extend(feed(&mut r, cmd(&["set", "afterk", "1"])));
    assert_eq!(r.identity.master_repl_offset, 55);
    got.extend(feed(&mut r, cmd(&["ping"])));
    got.extend(acks(r.handle_timer(
        ReplTimer::ReplicaAck,
        2000,
        &cfg,
        &mut Counter(0),
    )));
    got.extend(feed(&mut r, cmd(&["REPLCONF", "GETACK", "*"])));
    assert_eq!(r.identity.master_repl_offset, 106);
    // 60 more bytes, delivered in two pieces to exercise the partial-command buffer.
    let last = cmd(&["PEXPIREAT", "afterkey123456", "1795289866996"]);
    assert_eq!(last.len(), 60);
    got.extend(feed(&mut r, last[..10].to_vec()));
    assert_eq!(
        r.identity.master_repl_offset, 106,
        "a partial command is not counted"
    );
    got.extend(feed(&mut r, last[10..].to_vec()));
    got.extend(acks(r.handle_timer(
        ReplTimer::ReplicaAck,
        3000,
        &cfg,
        &mut Counter(0),
    )));
    assert_eq!(got, vec![23, 69, 69, 166]);
}

#[test]
fn stale_replies_of_an_old_link_are_dropped() {
    let cfg = ReplConfig::default();
    let mut r = ReplNode::new_replica(1, 0, id(2), 0);
    r.start(0, &cfg);
    let old = r.link().unwrap().link;
    r.handle_link_closed(old, 0, &cfg);
    r.handle_timer(ReplTimer::ConnectRetry, 1000, &cfg, &mut Counter(0));
    let new = r.link().unwrap().link;
    assert!(old.is_older_than(&new));
    assert_eq!(
        r.handle_from_master(old, ToReplica::Pong, 0, &cfg, &mut Counter(0)),
        Ok(vec![])
    );
    assert_eq!(r.link().unwrap().phase, LinkPhase::AwaitPong);
    // A reply that does not fit the phase is a typed error.
    assert!(matches!(
        r.handle_from_master(
            new,
            ToReplica::Continue { replid: id(3) },
            0,
            &cfg,
            &mut Counter(0)
        ),
        Err(LinkError::Unexpected {
            phase: LinkPhase::AwaitPong,
            ..
        })
    ));
}

#[test]
fn reconnect_inside_the_backlog_is_a_partial_resync_with_no_gap() {
    let mut net = pair_with_a_write();
    let link = net.nodes[1].link().unwrap().link;
    let fx = net.nodes[1].handle_link_closed(link, 0, &net.cfg.clone());
    net.exec(1, fx);
    net.write(0, "b").unwrap(); // sent to the dead link: dropped as stale by the replica
    net.run();
    net.timer(1, ReplTimer::ConnectRetry);
    net.run();
    assert_eq!(net.nodes[0].stats.sync_partial_ok, 1);
    assert_eq!(net.nodes[1].stats.partial_syncs_received, 1);
    assert_eq!(net.data[1], net.data[0]);
    assert_eq!(net.nodes[1].identity, net.nodes[0].identity);
}

/// Malformed bytes in the master's stream: the replica applies nothing of the bad chunk,
/// closes the link and asks `PSYNC ? -1` (a full sync), as a Redis replica frees a master
/// client with a protocol error instead of caching it. A plain disconnect keeps the history.
#[test]
fn a_malformed_stream_closes_the_link_and_the_next_sync_is_full() {
    let mut net = pair_with_a_write();
    let offset = net.nodes[1].identity.master_repl_offset;
    let link = net.nodes[1].link().unwrap().link;
    let cfg = net.cfg.clone();
    let mut bad = vec![];
    crate::resp::encode_command(&["SET", "b", "v"], &mut bad);
    bad.extend_from_slice(b"*x\r\n");
    let err = net.nodes[1]
        .handle_from_master(
            link,
            ToReplica::Stream(bad.into()),
            0,
            &cfg,
            &mut Counter(50),
        )
        .unwrap_err();
    assert!(matches!(err, LinkError::BadStream(_)), "{err:?}");
    assert_eq!(net.nodes[1].identity.master_repl_offset, offset);
    let fx = net.nodes[1].handle_link_error(link, 0, &cfg);
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::ToMaster {
            msg: ToMaster::Closed,
            ..
        }
    )));
    net.exec(1, fx);
    net.run();
    net.timer(1, ReplTimer::ConnectRetry);
    let psync = net.run_noting_psync();
    assert_eq!(
        psync,
        Some(PsyncRequest {
            replid: None,
            offset: -1
        })
    );
    assert_eq!(
        (
            net.nodes[0].stats.sync_full,
            net.nodes[0].stats.sync_partial_ok
        ),
        (2, 0)
    );
    assert_eq!(net.data[1], net.data[0]);
    assert_eq!(net.nodes[1].identity, net.nodes[0].identity);
    assert!(!net.nodes[1].link().unwrap().forget_history);
    // Then a plain disconnect resumes partially again.
    let link = net.nodes[1].link().unwrap().link;
    let fx = net.nodes[1].handle_link_closed(link, 0, &cfg);
    net.exec(1, fx);
    net.timer(1, ReplTimer::ConnectRetry);
    net.run();
    assert_eq!(net.nodes[0].stats.sync_partial_ok, 1);
}

/// CLIENT KILL TYPE master on a streaming replica: the master learns the link closed and the
/// replica resumes partially (Redis caches a master freed by a kill; a protocol error is what
/// drops it, as in the test above).
#[test]
fn an_operator_kill_of_the_master_link_keeps_the_history() {
    let mut net = pair_with_a_write();
    let cfg = net.cfg.clone();
    let link = net.nodes[1].link().unwrap().link;
    let fx = net.nodes[1].handle_link_killed(link, 0, &cfg);
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::ToMaster {
            msg: ToMaster::Closed,
            ..
        }
    )));
    assert!(!net.nodes[1].link().unwrap().forget_history);
    net.exec(1, fx);
    net.run();
    net.timer(1, ReplTimer::ConnectRetry);
    net.run();
    assert_eq!(
        (
            net.nodes[0].stats.sync_full,
            net.nodes[0].stats.sync_partial_ok
        ),
        (1, 1)
    );
    assert_eq!(net.data[1], net.data[0]);
}

#[test]
fn backlog_overflow_forces_a_full_resync() {
    let mut net = pair(ReplConfig {
        backlog_size_bytes: 40,
        ..ReplConfig::default()
    });
    net.run();
    let link = net.nodes[1].link().unwrap().link;
    let fx = net.nodes[1].handle_link_closed(link, 0, &net.cfg.clone());
    net.exec(1, fx);
    net.write(0, "a").unwrap();
    net.write(0, "b").unwrap();
    net.run();
    net.timer(1, ReplTimer::ConnectRetry);
    net.run();
    assert_eq!(
        (
            net.nodes[0].stats.sync_full,
            net.nodes[0].stats.sync_partial_err
        ),
        (2, 1)
    );
    assert_eq!(net.data[1], net.data[0]);
}

#[test]
fn coordinated_failover_promotes_the_target_and_resumes_through_replid2() {
    let cfg = ReplConfig::default();
    let nodes = vec![
        ReplNode::new_master(0, 0, id(1)),
        ReplNode::new_replica(1, 0, id(2), 0),
        ReplNode::new_replica(2, 0, id(3), 0),
    ];
    let mut net = Net::new(nodes, cfg.clone());
    for n in 0..3 {
        net.start(n);
    }
    net.run();
    net.write(0, "a").unwrap();
    net.run();
    let old_id = net.nodes[0].identity.replid;
    let fx = net.nodes[0]
        .handle_failover(
            FailoverRequest {
                target: Some(1),
                timeout_ms: 0,
                force: false,
            },
            0,
            &cfg,
        )
        .unwrap();
    net.exec(0, fx);
    assert_eq!(net.nodes[0].failover.info_name(), "waiting-for-sync");
    assert_eq!(net.write(0, "paused"), Err(WriteError::Paused));
    net.timer(1, ReplTimer::ReplicaAck);
    net.run();
    // The old master demoted, the target promoted and answered +CONTINUE <newid>.
    assert_eq!(net.nodes[0].failover, FailoverState::NoFailover);
    assert!(matches!(net.nodes[1].role, Role::Master));
    assert_eq!(net.nodes[1].identity.replid2, old_id);
    assert_eq!(net.nodes[1].identity.second_repl_offset, 50 + 1);
    assert_eq!(net.nodes[0].identity.replid, net.nodes[1].identity.replid);
    assert_eq!(net.nodes[0].stats.partial_syncs_received, 1);
    // The sibling was disconnected by the old master's id switch and resumes through replid2.
    net.timer(2, ReplTimer::ConnectRetry);
    net.run();
    assert_eq!(
        net.nodes[0].stats.sync_partial_ok, 1,
        "sibling partial resync via replid2"
    );
    assert_eq!(net.write(0, "x"), Err(WriteError::ReadOnly));
    net.write(1, "after").unwrap();
    net.run();
    assert_eq!(net.data[0], net.data[1]);
    assert_eq!(net.data[2], net.data[1]);
    assert_eq!(
        net.nodes[2].identity.master_repl_offset,
        net.nodes[1].identity.master_repl_offset
    );
    assert_eq!(
        net.nodes.iter().map(|n| n.stats.sync_full).sum::<u64>(),
        2,
        "only the two first syncs"
    );
}

#[test]
fn failover_without_force_aborts_at_timeout_and_with_force_demotes() {
    let cfg = ReplConfig::default();
    let mut net = pair(cfg.clone());
    net.run();
    net.write(0, "a").unwrap();
    let req = FailoverRequest {
        target: Some(1),
        timeout_ms: 100,
        force: false,
    };
    let fx = net.nodes[0].handle_failover(req, 0, &cfg).unwrap();
    net.exec(0, fx);
    net.timer(0, ReplTimer::FailoverTimeout);
    assert_eq!(net.nodes[0].failover, FailoverState::NoFailover);
    assert!(net.write(0, "b").is_ok());
    let req = FailoverRequest {
        target: Some(1),
        timeout_ms: 100,
        force: true,
    };
    let fx = net.nodes[0].handle_failover(req, 0, &cfg).unwrap();
    net.exec(0, fx);
    net.timer(0, ReplTimer::FailoverTimeout);
    assert!(matches!(
        net.nodes[0].failover,
        FailoverState::InProgress { target: 1 }
    ));
    assert_eq!(
        net.nodes[0].handle_failover(req, 0, &cfg),
        Err(FailoverError::IsReplica)
    );
}

#[test]
fn min_replicas_to_write_refuses_writes_without_good_replicas() {
    let cfg = ReplConfig {
        min_replicas_to_write: 1,
        ..ReplConfig::default()
    };
    let mut net = pair(cfg);
    assert_eq!(net.write(0, "a"), Err(WriteError::NoReplicas));
    net.run();
    assert!(net.write(0, "a").is_ok());
}

#[test]
fn backlog_ttl_frees_the_backlog_and_changes_replid() {
    let mut net = pair(ReplConfig::default());
    net.run();
    let before = net.nodes[0].identity.replid;
    net.timer(1, ReplTimer::ReplicaTimeout); // replica closes its link
    net.run();
    assert!(net.nodes[0].replicas.is_empty());
    net.timer(0, ReplTimer::BacklogTtl);
    assert!(net.nodes[0].backlog.is_none());
    assert_ne!(net.nodes[0].identity.replid, before);
    assert_eq!(net.nodes[0].identity.second_repl_offset, -1);
}

/// WAIT's side of the master: no replica, no backlog, nothing recorded and no GETACK; once a
/// replica streams, it is counted for WAIT up to the offset it acknowledged, and a WAIT that
/// must block puts `REPLCONF GETACK *` into its stream (a replica never does).
#[test]
fn wait_counts_replicas_up_to_their_ack_and_getack_goes_into_the_stream() {
    let mut net = pair(ReplConfig::default());
    assert!(net.nodes[0].replicas.is_empty());
    assert_eq!(net.nodes[0].replicas.len(), 0);
    assert!(!net.nodes[0].records_writes());
    assert!(net.nodes[0].request_acks().is_empty());
    assert_eq!(
        net.nodes[0].identity.master_repl_offset, 0,
        "no backlog, no GETACK"
    );
    net.run();
    assert_eq!(net.nodes[0].replicas.len(), 1);
    assert!(!net.nodes[0].replicas.is_empty());
    assert!(net.nodes[0].records_writes());
    assert!(net.nodes[1].backlog.is_some());
    assert!(
        !net.nodes[1].records_writes(),
        "a replica records only its master's stream"
    );
    net.write(0, "k").unwrap();
    net.run();
    net.timer(1, ReplTimer::ReplicaAck);
    net.run();
    let offset = net.nodes[0].identity.master_repl_offset;
    assert_eq!(net.nodes[0].wait_count(offset), 1);
    assert_eq!(net.nodes[0].wait_count(offset + 1), 0);

    let fx = net.nodes[0].request_acks();
    let mut getack = Vec::new();
    crate::resp::encode_command(&["REPLCONF", "GETACK", "*"], &mut getack);
    assert_eq!(streamed(&fx), vec![(1, getack.clone())]);
    assert_eq!(
        net.nodes[0].identity.master_repl_offset,
        offset + getack.len() as u64
    );
    let replica_offset = net.nodes[1].identity.master_repl_offset;
    assert!(net.nodes[1].request_acks().is_empty());
    assert_eq!(net.nodes[1].identity.master_repl_offset, replica_offset);
    // The GETACK is answered with the offset before it; then WAIT counts the replica again.
    net.exec(0, fx);
    net.run();
    assert_eq!(net.nodes[0].wait_count(offset), 1);
}

/// A master arms its PING timer one period after it starts (not at a multiple of the start).
#[test]
fn a_master_arms_its_ping_one_period_after_start() {
    let cfg = ReplConfig::default();
    let mut m = ReplNode::new_master(0, 0, id(1));
    let fx = m.start(1_000, &cfg);
    assert_eq!(
        fx,
        vec![Effect::SetTimer {
            timer: ReplTimer::MasterPing,
            at_ms: 1_000 + cfg.ping_period_ms
        }]
    );
}

/// The refusals of a write carry Redis's texts (`-READONLY`, `-NOREPLICAS`), and a reply that
/// does not fit the link's phase names what arrived.
#[test]
fn write_errors_and_unexpected_replies_say_what_happened() {
    assert_eq!(
        WriteError::ReadOnly.to_string(),
        "READONLY You can't write against a read only replica."
    );
    assert_eq!(
        WriteError::NoReplicas.to_string(),
        "NOREPLICAS Not enough good replicas to write."
    );
    assert_eq!(
        WriteError::Paused.to_string(),
        "writes are paused by FAILOVER"
    );
    let mut net = pair(ReplConfig::default());
    net.run();
    let cfg = net.cfg.clone();
    let link = net.nodes[1].link().unwrap().link;
    for (msg, got) in [
        (ToReplica::Continue { replid: id(9) }, "+CONTINUE"),
        (ToReplica::Pong, "+PONG"),
        (ToReplica::AuthOk, "AUTH +OK"),
        (ToReplica::ReplconfOk, "REPLCONF +OK"),
    ] {
        let err = net.nodes[1]
            .handle_from_master(link, msg, 0, &cfg, &mut Counter(70))
            .unwrap_err();
        assert_eq!(
            err,
            LinkError::Unexpected {
                phase: LinkPhase::Streaming,
                got
            }
        );
    }
}

fn failover(
    net: &mut Net,
    target: Option<NodeId>,
    timeout_ms: u64,
    now_ms: u64,
) -> Result<Vec<Effect>, FailoverError> {
    let cfg = net.cfg.clone();
    net.nodes[0].handle_failover(
        FailoverRequest {
            target,
            timeout_ms,
            force: false,
        },
        now_ms,
        &cfg,
    )
}

/// FAILOVER's refusals and its choices, as Redis 7.0's: a second FAILOVER while one waits,
/// a target that is not an online replica, no target with no online replica; without a
/// target the first online replica is chosen; a timeout arms the timer `timeout` after now,
/// no timeout arms none; FAILOVER ABORT cancels the timer and accepts writes again.
#[test]
fn failover_refuses_what_redis_refuses_and_chooses_an_online_replica() {
    // Replica 1 is registered but still syncing: not a target.
    let mut net = pair(ReplConfig::default());
    while net.nodes[0].replicas.get(1).is_none() {
        assert!(net.step(), "the replica never reached the master");
    }
    assert_ne!(
        net.nodes[0].replicas.get(1).unwrap().state,
        ReplicaState::Online
    );
    assert_eq!(
        failover(&mut net, Some(1), 0, 0),
        Err(FailoverError::TargetNotReplica)
    );
    assert_eq!(failover(&mut net, None, 0, 0), Err(FailoverError::NoTarget));
    assert_eq!(
        failover(&mut net, Some(7), 0, 0),
        Err(FailoverError::TargetNotReplica)
    );

    let mut net = pair_with_a_write();
    let fx = failover(&mut net, None, 500, 1_000).unwrap();
    assert_eq!(
        net.nodes[0].failover,
        FailoverState::WaitingForSync {
            target: 1,
            force: false
        }
    );
    assert!(fx.contains(&Effect::SetTimer {
        timer: ReplTimer::FailoverTimeout,
        at_ms: 1_500
    }));
    assert_eq!(
        failover(&mut net, Some(1), 0, 0),
        Err(FailoverError::AlreadyInProgress)
    );
    assert_eq!(
        net.nodes[0].handle_failover_abort(),
        Ok(vec![Effect::CancelTimer(ReplTimer::FailoverTimeout)])
    );
    assert_eq!(net.nodes[0].failover, FailoverState::NoFailover);
    assert_eq!(
        net.nodes[0].handle_failover_abort(),
        Err(FailoverError::NoFailoverInProgress)
    );
    assert!(net.write(0, "b").is_ok());

    let fx = failover(&mut net, Some(1), 0, 1_000).unwrap();
    assert!(
        !fx.iter().any(|e| matches!(
            e,
            Effect::SetTimer {
                timer: ReplTimer::FailoverTimeout,
                ..
            }
        )),
        "no timeout, no timer: {fx:?}"
    );
}

/// The timers of both sides: a master PINGs its replicas in the stream (`ping`, 14 bytes) and
/// re-arms, but not while FAILOVER pauses writes; a replica's retry timer does nothing while
/// its link is up; a replica's ack deadline passing on the master drops that replica.
#[test]
fn timers_ping_the_stream_retry_only_when_down_and_drop_a_silent_replica() {
    let mut net = pair_with_a_write();
    let cfg = net.cfg.clone();
    let offset = net.nodes[0].identity.master_repl_offset;
    let fx = net.nodes[0].handle_timer(ReplTimer::MasterPing, 2_000, &cfg, &mut Counter(80));
    let mut ping = Vec::new();
    crate::resp::encode_command(&["ping"], &mut ping);
    assert_eq!(streamed(&fx), vec![(1, ping.clone())]);
    assert!(fx.contains(&Effect::SetTimer {
        timer: ReplTimer::MasterPing,
        at_ms: 2_000 + cfg.ping_period_ms
    }));
    assert_eq!(
        net.nodes[0].identity.master_repl_offset,
        offset + ping.len() as u64
    );
    net.exec(0, fx);
    net.run();

    let link = net.nodes[1].link().unwrap().link;
    let fx = net.nodes[1].handle_timer(ReplTimer::ConnectRetry, 0, &cfg, &mut Counter(81));
    assert!(fx.is_empty(), "a retry while streaming: {fx:?}");
    assert_eq!(net.nodes[1].link().unwrap().link, link);
    assert_eq!(net.nodes[1].link().unwrap().phase, LinkPhase::Streaming);

    failover(&mut net, Some(1), 1_000, 0).unwrap();
    let offset = net.nodes[0].identity.master_repl_offset;
    let fx = net.nodes[0].handle_timer(ReplTimer::MasterPing, 3_000, &cfg, &mut Counter(82));
    assert!(streamed(&fx).is_empty(), "no PING while writes are paused");
    assert_eq!(net.nodes[0].identity.master_repl_offset, offset);
    net.nodes[0].handle_failover_abort().unwrap();

    let replica_link = net.nodes[0].replicas.get(1).unwrap().link;
    let fx = net.nodes[0].handle_timer(ReplTimer::MasterTimeout(1), 0, &cfg, &mut Counter(83));
    assert!(fx.contains(&Effect::ToReplica {
        replica: 1,
        link: replica_link,
        msg: ToReplica::Closed
    }));
    assert!(net.nodes[0].replicas.get(1).is_none());
}

/// Timers that must do nothing in the wrong state: the backlog TTL while a replica is
/// attached, a master PING once the last replica left (the backlog stays, the offset must
/// not move), a replica's read timeout or ack timer while its link is already down; and the
/// replica's ack timer re-arms one period later.
#[test]
fn timers_leave_state_alone_outside_their_conditions() {
    let mut net = pair_with_a_write();
    let cfg = net.cfg.clone();
    let replid = net.nodes[0].identity.replid;
    let fx = net.nodes[0].handle_timer(ReplTimer::BacklogTtl, 0, &cfg, &mut Counter(90));
    assert!(fx.is_empty());
    assert!(net.nodes[0].backlog.is_some(), "a replica is attached");
    assert_eq!(net.nodes[0].identity.replid, replid);

    let fx = net.nodes[1].handle_timer(ReplTimer::ReplicaAck, 5_000, &cfg, &mut Counter(91));
    assert!(fx.contains(&Effect::SetTimer {
        timer: ReplTimer::ReplicaAck,
        at_ms: 5_000 + cfg.ack_period_ms
    }));

    net.timer(1, ReplTimer::ReplicaTimeout); // the replica gives up its link
    assert_eq!(net.nodes[1].link().unwrap().phase, LinkPhase::Down);
    let fx = net.nodes[1].handle_timer(ReplTimer::ReplicaTimeout, 0, &cfg, &mut Counter(92));
    assert!(fx.is_empty(), "already down: {fx:?}");
    let fx = net.nodes[1].handle_timer(ReplTimer::ReplicaAck, 0, &cfg, &mut Counter(94));
    assert!(fx.is_empty(), "no ack on a link that is down: {fx:?}");
    net.run();
    assert!(net.nodes[0].replicas.is_empty());
    let offset = net.nodes[0].identity.master_repl_offset;
    let fx = net.nodes[0].handle_timer(ReplTimer::MasterPing, 0, &cfg, &mut Counter(93));
    assert!(streamed(&fx).is_empty());
    assert_eq!(net.nodes[0].identity.master_repl_offset, offset);
    assert!(net.nodes[0].backlog.is_some());
}

/// Every timer either side arms is due one configured period after the moment it is armed:
/// a first sync, writes, acks, PINGs, a link that times out (the master arms its backlog TTL)
/// and comes back, a promotion, checked with the
/// clock away from zero (a deadline of `now * period` or `now - period` would show).
#[test]
fn every_timer_is_due_its_period_after_it_was_armed() {
    let cfg = ReplConfig::default();
    let mut net = Net::new(
        vec![
            ReplNode::new_master(0, 0, id(1)),
            ReplNode::new_replica(1, 0, id(2), 0),
        ],
        cfg.clone(),
    );
    net.now = 10_000;
    net.start(0);
    net.start(1);
    net.run();
    net.now = 20_000;
    net.write(0, "a").unwrap();
    net.run();
    net.timer(1, ReplTimer::ReplicaAck);
    net.timer(0, ReplTimer::MasterPing);
    net.run();
    net.now = 30_000;
    net.timer(1, ReplTimer::ReplicaTimeout);
    net.run();
    net.now = 40_000;
    net.timer(1, ReplTimer::ConnectRetry);
    net.run();
    assert_eq!(net.nodes[0].stats.sync_partial_ok, 1);
    net.now = 50_000;
    let fx = net.nodes[1].handle_replicaof_no_one(net.now, &cfg, &mut Counter(95));
    net.exec(1, fx);
    assert!(net
        .timers_set
        .iter()
        .any(|&(n, t, _, at)| (n, t, at) == (1, ReplTimer::MasterPing, 50_000)));
    let period = |t: ReplTimer| match t {
        ReplTimer::ConnectRetry => cfg.connect_retry_ms,
        ReplTimer::ReplicaAck => cfg.ack_period_ms,
        ReplTimer::ReplicaTimeout | ReplTimer::MasterTimeout(_) => cfg.repl_timeout_ms,
        ReplTimer::MasterPing => cfg.ping_period_ms,
        ReplTimer::BacklogTtl => cfg.backlog_ttl_ms,
        other => panic!("{other:?} is not armed in this scenario"),
    };
    let kinds: std::collections::BTreeSet<String> = net
        .timers_set
        .iter()
        .map(|(_, t, _, _)| format!("{t:?}").split('(').next().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        [
            "BacklogTtl",
            "ConnectRetry",
            "MasterPing",
            "MasterTimeout",
            "ReplicaAck",
            "ReplicaTimeout"
        ]
    );
    for &(node, timer, at_ms, armed_at) in &net.timers_set {
        assert_eq!(
            at_ms,
            armed_at + period(timer),
            "node {node} armed {timer:?} at {armed_at}"
        );
    }
}

/// Inputs of an older or unknown connection change nothing on either side: a close or an RDB
/// of a replica's previous link, a PING on a master from a replica's superseded link. A
/// replica that reconnects before its master noticed the old link is tracked on the new one.
#[test]
fn old_connections_are_ignored_and_a_reconnect_supersedes_the_old_link() {
    let mut net = pair_with_a_write();
    let cfg = net.cfg.clone();
    assert_eq!(net.nodes[1].stats.full_syncs_received, 1);
    let old = net.nodes[1].link().unwrap().link;
    // The replica drops its link without telling the master and reconnects.
    let fx = net.nodes[1].handle_link_closed(old, 0, &cfg);
    net.exec(1, fx);
    net.timer(1, ReplTimer::ConnectRetry);
    let new = net.nodes[1].link().unwrap().link;
    assert!(old.is_older_than(&new));
    net.run();
    assert_eq!(net.nodes[0].replicas.get(1).map(|e| e.link), Some(new));
    assert_eq!(net.nodes[0].replicas.len(), 1);
    assert_eq!(net.nodes[1].link().unwrap().phase, LinkPhase::Streaming);
    // Leftovers of the old link.
    assert!(net.nodes[1].handle_link_closed(old, 0, &cfg).is_empty());
    assert_eq!(net.nodes[1].link().unwrap().phase, LinkPhase::Streaming);
    assert_eq!(net.nodes[1].handle_rdb_loaded(old, 0, &cfg), Ok(vec![]));
    assert_eq!(net.nodes[1].stats.full_syncs_received, 1);
    let fx = net.nodes[0].handle_from_replica(1, old, ToMaster::Ping, 0, &cfg, &mut Counter(60));
    assert!(fx.is_empty(), "{fx:?}");
    assert_eq!(net.nodes[0].replicas.get(1).map(|e| e.link), Some(new));
}

/// `maxclients` for replicas: a master whose replica table is full answers a new replica's
/// PING with nothing (the connection is refused); a known replica still reconnects.
#[test]
fn a_full_replica_table_refuses_a_new_replica() {
    let cfg = ReplConfig {
        max_replicas: 1,
        ..ReplConfig::default()
    };
    let mut net = Net::new(
        vec![
            ReplNode::new_master(0, 0, id(1)),
            ReplNode::new_replica(1, 0, id(2), 0),
            ReplNode::new_replica(2, 0, id(3), 0),
        ],
        cfg.clone(),
    );
    for n in 0..3 {
        net.start(n);
    }
    net.run();
    assert_eq!(net.nodes[0].replicas.len(), 1);
    assert!(net.nodes[0].replicas.get(1).is_some());
    assert_eq!(net.nodes[2].link().unwrap().phase, LinkPhase::AwaitPong);
}

/// `-NOMASTERLINK` / `-LOADING` to PSYNC: a plain replica retries later and stays a replica;
/// a master that demoted itself for FAILOVER serves as master again (the target refused).
#[test]
fn try_later_retries_a_replica_and_aborts_a_failover() {
    let cfg = ReplConfig::default();
    let mut r = ReplNode::new_replica(1, 0, id(2), 0);
    r.start(0, &cfg);
    let link = r.link().unwrap().link;
    for reply in [
        ToReplica::Pong,
        ToReplica::ReplconfOk,
        ToReplica::ReplconfOk,
    ] {
        r.handle_from_master(link, reply, 0, &cfg, &mut Counter(0))
            .unwrap();
    }
    assert_eq!(r.link().unwrap().phase, LinkPhase::AwaitPsyncReply);
    let fx = r
        .handle_from_master(link, ToReplica::TryLater, 0, &cfg, &mut Counter(0))
        .unwrap();
    assert!(matches!(r.role, Role::Replica(_)));
    assert_eq!(r.link().unwrap().phase, LinkPhase::Down);
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::SetTimer {
            timer: ReplTimer::ConnectRetry,
            ..
        }
    )));

    let mut net = pair_with_a_write();
    let cfg = net.cfg.clone();
    let req = FailoverRequest {
        target: Some(1),
        timeout_ms: 100,
        force: true,
    };
    let fx = net.nodes[0].handle_failover(req, 0, &cfg).unwrap();
    net.exec(0, fx);
    net.timer(0, ReplTimer::FailoverTimeout); // FORCE: demoted without the ack
    while net.nodes[0]
        .link()
        .is_none_or(|l| l.phase != LinkPhase::AwaitPsyncReply)
    {
        assert!(net.step(), "node 0 never sent its PSYNC");
    }
    let link = net.nodes[0].link().unwrap().link;
    let fx = net.nodes[0]
        .handle_from_master(link, ToReplica::TryLater, 0, &cfg, &mut Counter(61))
        .unwrap();
    net.exec(0, fx);
    assert!(matches!(net.nodes[0].role, Role::Master));
    assert_eq!(net.nodes[0].failover, FailoverState::NoFailover);
    assert!(net.write(0, "again").is_ok());
}

/// A replica `from` on `link` says PING, REPLCONF and PSYNC `req` to `node`; the replies.
fn handshake_into(
    node: &mut ReplNode,
    from: NodeId,
    link: LinkId,
    req: PsyncRequest,
    failover: bool,
) -> Vec<Effect> {
    let cfg = ReplConfig::default();
    let mut last = vec![];
    for msg in [
        ToMaster::Ping,
        ToMaster::ListeningPort(7000),
        ToMaster::Capa,
        ToMaster::Psync { req, failover },
    ] {
        last = node.handle_from_replica(from, link, msg, 0, &cfg, &mut Counter(40));
    }
    last
}

fn replies(effects: &[Effect]) -> Vec<ToReplica> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::ToReplica { msg, .. } => Some(msg.clone()),
            _ => None,
        })
        .collect()
}

/// A replica goes online only when its own link's snapshot was sent: a snapshot of a
/// replaced link, or a call before the full sync started, leaves it as it was.
#[test]
fn a_replica_goes_online_when_its_own_snapshot_was_sent() {
    let mut m = ReplNode::new_master(0, 0, id(1));
    let link = LinkId {
        replica: 1,
        incarnation: 0,
        seq: 1,
    };
    let other = LinkId { seq: 2, ..link };
    m.handle_from_replica(
        1,
        link,
        ToMaster::Ping,
        0,
        &ReplConfig::default(),
        &mut Counter(41),
    );
    m.handle_rdb_sent(1, link);
    assert_eq!(m.replicas.get(1).unwrap().state, ReplicaState::Handshake);
    let req = PsyncRequest {
        replid: None,
        offset: -1,
    };
    let fx = handshake_into(&mut m, 1, link, req, false);
    assert!(fx.iter().any(|e| matches!(e, Effect::SendRdb { .. })));
    assert_eq!(m.replicas.get(1).unwrap().state, ReplicaState::SendBulk);
    m.handle_rdb_sent(1, other);
    assert_eq!(m.replicas.get(1).unwrap().state, ReplicaState::SendBulk);
    m.handle_rdb_sent(1, link);
    assert_eq!(m.replicas.get(1).unwrap().state, ReplicaState::Online);
}

/// A replica serves PSYNC from its own replicas only while it streams from its master
/// (`-NOMASTERLINK` otherwise, as Redis), and a plain PSYNC naming its replid is a sub-replica
/// resuming, not a FAILOVER handover: it stays a replica and continues.
#[test]
fn a_replica_serves_sub_replicas_only_while_streaming_and_is_not_promoted_by_them() {
    let cfg = ReplConfig::default();
    let mut r = ReplNode::new_replica(1, 0, id(2), 0);
    r.start(0, &cfg);
    let sub = LinkId {
        replica: 2,
        incarnation: 0,
        seq: 1,
    };
    let req = PsyncRequest {
        replid: None,
        offset: -1,
    };
    let fx = handshake_into(&mut r, 2, sub, req, false);
    assert_eq!(replies(&fx), vec![ToReplica::TryLater]);

    let mut net = pair_with_a_write();
    let replid = net.nodes[1].identity.replid;
    let offset = net.nodes[1].identity.master_repl_offset;
    let fx = handshake_into(
        &mut net.nodes[1],
        2,
        sub,
        PsyncRequest {
            replid: Some(replid),
            offset: offset as i64 + 1,
        },
        false,
    );
    assert_eq!(replies(&fx), vec![ToReplica::Continue { replid }]);
    assert!(matches!(net.nodes[1].role, Role::Replica(_)));
}

/// REPLICAOF and REPLICAOF NO ONE on the core alone: following the master already followed
/// changes nothing; following another closes the current link (the master is told) and
/// connects to the new one; a master turned replica offers its own history; REPLICAOF NO ONE
/// promotes a streaming replica under a new replid with the old history as replid2 (and
/// tells its master the link closed), and leaves a master as it is.
#[test]
fn replicaof_and_replicaof_no_one_as_redis() {
    let cfg = ReplConfig::default();
    // Node 2: another master, never started (it answers what reaches it).
    let mut net = Net::new(
        vec![
            ReplNode::new_master(0, 0, id(1)),
            ReplNode::new_replica(1, 0, id(2), 0),
            ReplNode::new_master(2, 0, id(3)),
        ],
        cfg.clone(),
    );
    net.start(0);
    net.start(1);
    net.run();
    net.write(0, "a").unwrap();
    net.run();
    let link = net.nodes[1].link().unwrap().link;
    assert!(net.nodes[1].handle_replicaof(0, 0, &cfg).is_empty());
    assert_eq!(net.nodes[1].link().unwrap().link, link);
    assert_eq!(net.nodes[1].link().unwrap().phase, LinkPhase::Streaming);

    let fx = net.nodes[1].handle_replicaof(2, 0, &cfg);
    assert!(fx.contains(&Effect::ToMaster {
        master: 0,
        link,
        msg: ToMaster::Closed
    }));
    let l = net.nodes[1].link().unwrap();
    assert_eq!(l.master, 2);
    assert_ne!(l.link, link);
    assert!(fx
        .iter()
        .any(|e| matches!(e, Effect::Connect { master: 2, .. })));
    net.exec(1, fx);
    net.run();

    // Back to node 0, streaming again; then promoted.
    let fx = net.nodes[1].handle_replicaof(0, 0, &cfg);
    net.exec(1, fx);
    net.run();
    assert_eq!(net.nodes[1].link().unwrap().phase, LinkPhase::Streaming);
    let old = net.nodes[1].identity;
    let link = net.nodes[1].link().unwrap().link;
    let fx = net.nodes[1].handle_replicaof_no_one(0, &cfg, &mut Counter(30));
    assert!(fx.contains(&Effect::ToMaster {
        master: 0,
        link,
        msg: ToMaster::Closed
    }));
    assert!(matches!(net.nodes[1].role, Role::Master));
    assert_ne!(net.nodes[1].identity.replid, old.replid);
    assert_eq!(net.nodes[1].identity.replid2, old.replid);
    assert_eq!(
        net.nodes[1].identity.second_repl_offset,
        old.master_repl_offset as i64 + 1
    );
    let promoted = net.nodes[1].identity;
    assert!(net.nodes[1]
        .handle_replicaof_no_one(0, &cfg, &mut Counter(31))
        .is_empty());
    assert_eq!(net.nodes[1].identity, promoted);

    // The old master follows the promoted node with its own history.
    let fx = net.nodes[0].handle_replicaof(1, 0, &cfg);
    net.exec(0, fx);
    let psync = net.run_noting_psync();
    assert_eq!(
        psync,
        Some(PsyncRequest {
            replid: Some(old.replid),
            offset: old.master_repl_offset as i64 + 1
        })
    );
    assert_eq!(net.nodes[1].stats.sync_partial_ok, 1);
}

/// A reply that does not fit the handshake (a link error before streaming) keeps the history,
/// as Redis keeps its cached master then: the next PSYNC still offers it. (A malformed
/// stream is what drops it, tested above.)
#[test]
fn a_handshake_error_keeps_the_history_for_the_next_psync() {
    let mut net = pair_with_a_write();
    let cfg = net.cfg.clone();
    let identity = net.nodes[1].identity;
    let link = net.nodes[1].link().unwrap().link;
    let fx = net.nodes[1].handle_link_closed(link, 0, &cfg);
    net.exec(1, fx);
    net.timer(1, ReplTimer::ConnectRetry);
    let link = net.nodes[1].link().unwrap().link;
    assert_eq!(net.nodes[1].link().unwrap().phase, LinkPhase::AwaitPong);
    let err = net.nodes[1]
        .handle_from_master(link, ToReplica::ReplconfOk, 0, &cfg, &mut Counter(20))
        .unwrap_err();
    assert!(matches!(err, LinkError::Unexpected { .. }));
    let fx = net.nodes[1].handle_link_error(link, 0, &cfg);
    net.exec(1, fx);
    assert!(!net.nodes[1].link().unwrap().forget_history);
    net.queue.clear();
    net.timer(1, ReplTimer::ConnectRetry);
    let psync = net.run_noting_psync();
    assert_eq!(
        psync,
        Some(PsyncRequest {
            replid: Some(identity.replid),
            offset: identity.master_repl_offset as i64 + 1
        })
    );
}

#[test]
fn the_output_limit_spares_a_replica_until_it_acks_its_snapshot_then_drops_it() {
    let mut net = pair(ReplConfig::default());
    let cfg = net.cfg.clone();
    // Up to the snapshot written to the replica (online on the master), not yet loaded.
    let online = |net: &Net| {
        net.nodes[0]
            .replicas
            .get(1)
            .is_some_and(|e| e.state == ReplicaState::Online)
    };
    while !online(&net) {
        assert!(net.step(), "the master never sent its snapshot");
    }
    let link = net.nodes[0].replicas.get(1).unwrap().link;
    assert!(!net.nodes[0].replicas.get(1).unwrap().output_limit_applies());
    let fx = net.nodes[0].handle_output_limit(1, link, 0, &cfg, &mut Counter(1));
    assert!(
        fx.is_empty(),
        "a replica loading its snapshot was dropped: {fx:?}"
    );
    assert!(net.nodes[0].replicas.get(1).is_some());
    // Loaded and acknowledged: the limit applies; the replica is told and forgotten.
    net.run();
    assert!(net.nodes[0].replicas.get(1).unwrap().output_limit_applies());
    let stale = LinkId {
        seq: link.seq + 1,
        ..link
    };
    assert!(net.nodes[0]
        .handle_output_limit(1, stale, 0, &cfg, &mut Counter(1))
        .is_empty());
    let fx = net.nodes[0].handle_output_limit(1, link, 0, &cfg, &mut Counter(1));
    assert!(matches!(
        fx.first(),
        Some(Effect::ToReplica {
            replica: 1,
            msg: ToReplica::Closed,
            ..
        })
    ));
    assert!(net.nodes[0].replicas.get(1).is_none());
    // The replica hears the close and, inside the backlog, resumes partially.
    net.exec(0, fx);
    net.run();
    net.timer(1, ReplTimer::ConnectRetry);
    net.run();
    assert_eq!(
        (
            net.nodes[0].stats.sync_full,
            net.nodes[0].stats.sync_partial_ok
        ),
        (1, 1)
    );
}
