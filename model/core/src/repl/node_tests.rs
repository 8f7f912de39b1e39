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
    cfg: ReplConfig,
    ids: Counter,
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
            cfg,
            ids: Counter(100),
        }
    }

    fn exec(&mut self, me: NodeId, effects: Vec<Effect>) {
        for e in effects {
            match e {
                Effect::Connect { .. } | Effect::SetTimer { .. } | Effect::CancelTimer(_) => {}
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
        let fx = self.nodes[me as usize].start(0, &cfg);
        self.exec(me, fx);
    }

    fn write(&mut self, me: NodeId, key: &str) -> Result<(), WriteError> {
        let args = vec![b"SET".to_vec(), key.as_bytes().to_vec(), b"v".to_vec()];
        let cfg = self.cfg.clone();
        let fx = self.nodes[me as usize].handle_write(0, &args, 0, &cfg)?;
        self.data[me as usize].push(args);
        self.exec(me, fx);
        Ok(())
    }

    fn timer(&mut self, me: NodeId, t: ReplTimer) {
        let cfg = self.cfg.clone();
        let fx = self.nodes[me as usize].handle_timer(t, 0, &cfg, &mut self.ids);
        self.exec(me, fx);
    }

    fn step(&mut self) -> bool {
        let Some((from, to, wire)) = self.queue.pop_front() else {
            return false;
        };
        let cfg = self.cfg.clone();
        let node = &mut self.nodes[to as usize];
        let fx = match wire {
            Wire::M(link, msg) => node.handle_from_replica(from, link, msg, 0, &cfg, &mut self.ids),
            Wire::R(link, msg) => {
                match node.handle_from_master(link, msg, 0, &cfg, &mut self.ids) {
                    Ok(fx) => fx,
                    Err(_) => node.handle_link_closed(link, 0, &cfg),
                }
            }
            Wire::Rdb(link, snapshot) => {
                self.rdb_inbox[to as usize] = Some(snapshot);
                node.handle_rdb_loaded(link, 0, &cfg)
                    .expect("RDB fits the phase")
            }
        };
        self.exec(to, fx);
        true
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
                None => out.push((*replica, b.clone())),
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
            r.handle_from_master(link, ToReplica::Stream(bytes), 0, &cfg, &mut Counter(0))
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
    let mut net = pair(ReplConfig::default());
    net.run();
    net.write(0, "a").unwrap();
    net.run();
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
    let mut net = pair(ReplConfig::default());
    net.run();
    net.write(0, "a").unwrap();
    net.run();
    let offset = net.nodes[1].identity.master_repl_offset;
    let link = net.nodes[1].link().unwrap().link;
    let cfg = net.cfg.clone();
    let mut bad = vec![];
    crate::resp::encode_command(&["SET", "b", "v"], &mut bad);
    bad.extend_from_slice(b"*x\r\n");
    let err = net.nodes[1]
        .handle_from_master(link, ToReplica::Stream(bad), 0, &cfg, &mut Counter(50))
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
    let mut psync = None;
    loop {
        if let Some((_, _, Wire::M(_, ToMaster::Psync { req, .. }))) = net.queue.front() {
            psync = Some(*req);
        }
        if !net.step() {
            break;
        }
    }
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
    let mut net = pair(ReplConfig::default());
    net.run();
    net.write(0, "a").unwrap();
    net.run();
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
