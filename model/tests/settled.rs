//! Settled traces: the operator steps (REPLICAOF NO ONE, REPLICAOF) and partitions give the
//! outcomes the conformance scenarios are about.

use verdis_model::replication::ModelCfg;
use verdis_model::report::observe;
use verdis_model::settled::{obuf_base, replay_base, trace_of, EnvStep, SettledRun};

fn manual_cfg(partition: bool) -> ModelCfg {
    ModelCfg {
        manual: true,
        partition,
        crashes: false,
        switchover: None,
        ..replay_base()
    }
}

fn run(cfg: &ModelCfg, steps: &[EnvStep]) -> SettledRun {
    let mut run = SettledRun::start(cfg).expect("start-up settles");
    for &s in steps {
        run.step(s).unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    assert!(trace_of("t", "t", cfg, steps).is_ok());
    run
}

#[test]
fn the_old_master_ahead_of_the_promoted_replica_loses_its_acknowledged_write() {
    let steps = [
        EnvStep::Partition { node: 1 },
        EnvStep::Write { id: 1 },
        EnvStep::ReplicaofNoOne { node: 1 },
        EnvStep::Heal { node: 1 },
        EnvStep::Replicaof { node: 0, master: 1 },
    ];
    let run = run(&manual_cfg(true), &steps);
    assert!(!run.states.is_empty());
    for s in &run.states {
        let o = observe(&run.model, s);
        assert_eq!(
            run.model.client(s).acked,
            1 << 1,
            "write 1 was acknowledged"
        );
        assert_eq!((o[0].role.as_str(), o[0].master), ("slave", Some(1)));
        assert_eq!(o[0].link_status.as_deref(), Some("up"));
        // The old master's history is past the promoted replica's: a full sync, write lost.
        assert!(!o[0].dataset.contains(&1), "{o:?}");
        assert_eq!(o[1].sync_full, 1, "{o:?}");
    }
}

#[test]
fn a_partitioned_replica_stays_down_until_healed_then_resumes_partially() {
    let cfg = manual_cfg(true);
    let cut = run(
        &cfg,
        &[EnvStep::Partition { node: 2 }, EnvStep::Write { id: 1 }],
    );
    for s in &cut.states {
        let o = observe(&cut.model, s);
        assert_eq!(o[2].link_status.as_deref(), Some("down"));
        assert!(o[2].dataset.is_empty());
    }
    let healed = run(
        &cfg,
        &[
            EnvStep::Partition { node: 2 },
            EnvStep::Write { id: 1 },
            EnvStep::Heal { node: 2 },
        ],
    );
    for s in &healed.states {
        let o = observe(&healed.model, s);
        assert_eq!(o[2].link_status.as_deref(), Some("up"));
        assert_eq!(o[2].dataset, vec![1]);
        assert_eq!((o[0].sync_partial_ok, o[0].sync_full), (1, 2), "{o:?}");
    }
}

#[test]
fn a_manual_failover_moves_every_node_to_the_promoted_replica_without_a_full_sync() {
    let steps = [
        EnvStep::Write { id: 1 },
        EnvStep::ReplicaofNoOne { node: 1 },
        EnvStep::Replicaof { node: 2, master: 1 },
        EnvStep::Replicaof { node: 0, master: 1 },
        EnvStep::Write { id: 2 },
    ];
    let run = run(&manual_cfg(false), &steps);
    for s in &run.states {
        let o = observe(&run.model, s);
        assert_eq!(o[1].role, "master");
        assert_eq!((o[1].sync_full, o[1].sync_partial_ok), (0, 2), "{o:?}");
        // The write sent to the old master after it became a replica is refused.
        assert_eq!(run.model.client(s).acked, 1 << 1);
        for n in [0, 2] {
            assert_eq!(o[n].master, Some(1));
            assert_eq!(o[n].dataset, vec![1]);
        }
    }
}

#[test]
fn a_manual_failover_then_a_switchover_back_needs_no_full_sync() {
    // Why: the prior-art scenario "failover then switchover without a full sync": node 1 is
    // promoted by hand, node 0 follows it, then FAILOVER on node 1 hands mastership back.
    let cfg = ModelCfg {
        switch_back: true,
        ..manual_cfg(false)
    };
    let steps = [
        EnvStep::Write { id: 1 },
        EnvStep::ReplicaofNoOne { node: 1 },
        EnvStep::Replicaof { node: 0, master: 1 },
        EnvStep::Replicaof { node: 2, master: 1 },
        EnvStep::FailoverBack,
    ];
    let run = run(&cfg, &steps);
    assert!(!run.states.is_empty());
    assert_eq!(run.failover_accepted(1), Some(true));
    for s in &run.states {
        let o = observe(&run.model, s);
        assert_eq!(o[0].role, "master", "{o:?}");
        assert_eq!((o[1].role.as_str(), o[1].master), ("slave", Some(0)));
        assert_eq!(o[1].link_status.as_deref(), Some("up"));
        // Only the two first syncs of the replicas of node 0 were full.
        assert_eq!((o[0].sync_full, o[1].sync_full), (2, 0), "{o:?}");
        for node in &o {
            assert_eq!(node.dataset, vec![1], "{o:?}");
        }
    }
    // Without --manual, switching back is refused as a configuration.
    let bad = ModelCfg {
        switch_back: true,
        ..replay_base()
    };
    assert!(bad.check().is_err());
}

fn garble_cfg() -> ModelCfg {
    ModelCfg {
        garble: true,
        crashes: false,
        switchover: None,
        ..replay_base()
    }
}

#[test]
fn malformed_stream_bytes_make_the_replica_sync_in_full_and_replconf_garbage_only_reconnects() {
    let cfg = garble_cfg();
    let stream = run(
        &cfg,
        &[
            EnvStep::Write { id: 1 },
            EnvStep::GarbleStream { replica: 1 },
        ],
    );
    assert!(!stream.states.is_empty());
    for s in &stream.states {
        let o = observe(&stream.model, s);
        // Two first syncs, then node 1's again: Redis drops its cached master on a protocol
        // error from the master.
        assert_eq!((o[0].sync_full, o[0].sync_partial_ok), (3, 0), "{o:?}");
        assert_eq!(o[1].link_status.as_deref(), Some("up"));
        assert_eq!(o[1].master_repl_offset, o[0].master_repl_offset);
        assert_eq!(o[1].dataset, vec![1]);
    }
    let to_master = run(
        &cfg,
        &[
            EnvStep::Write { id: 1 },
            EnvStep::GarbleToMaster { replica: 2 },
        ],
    );
    assert!(!to_master.states.is_empty());
    for s in &to_master.states {
        let o = observe(&to_master.model, s);
        // The master drops the link; the replica resumes where it was.
        assert_eq!((o[0].sync_full, o[0].sync_partial_ok), (2, 1), "{o:?}");
        assert_eq!(o[2].link_status.as_deref(), Some("up"));
        assert_eq!(o[2].dataset, vec![1]);
    }
}

#[test]
fn a_partitioned_replica_hides_an_expired_key_until_the_masters_del_arrives() {
    let cfg = ModelCfg {
        expire: true,
        partition: true,
        crashes: false,
        switchover: None,
        ..replay_base()
    };
    let steps = [
        EnvStep::Write { id: 1 },
        EnvStep::SetTtl { id: 1 },
        EnvStep::Partition { node: 1 },
        EnvStep::TtlPasses,
    ];
    let expired = run(&cfg, &steps);
    assert!(!expired.states.is_empty());
    for s in &expired.states {
        let o = observe(&expired.model, s);
        // SET k1 v1 with its SELECT (52 bytes), PEXPIREAT k1 <13 digits> (47), DEL k1 (21).
        assert_eq!(o[0].master_repl_offset, 52 + 47 + 21, "{o:?}");
        assert_eq!(o[2].master_repl_offset, 52 + 47 + 21, "{o:?}");
        // Node 1 has the TTL but not the DEL: it hides the key all the same.
        assert_eq!(o[1].master_repl_offset, 52 + 47, "{o:?}");
        assert!(o.iter().all(|n| n.dataset.is_empty()), "{o:?}");
    }
    let mut all = steps.to_vec();
    all.push(EnvStep::Heal { node: 1 });
    let healed = run(&cfg, &all);
    for s in &healed.states {
        let o = observe(&healed.model, s);
        assert_eq!(o[1].master_repl_offset, 52 + 47 + 21, "{o:?}");
        assert_eq!((o[0].sync_full, o[0].sync_partial_ok), (2, 1), "{o:?}");
    }
}

#[test]
fn the_output_limit_drops_streaming_replicas_and_spares_one_loading_its_snapshot() {
    let cfg = ModelCfg {
        replicas: 2,
        ..obuf_base()
    };
    let sync_full = |run: &SettledRun| -> Vec<u64> {
        run.states
            .iter()
            .map(|s| observe(&run.model, s)[0].sync_full)
            .collect()
    };
    // Both replicas stream: the write past the limit drops both; each resyncs in full (the
    // write is larger than the backlog). 2 first syncs, node 1's restart, 2 drops.
    let both = run(
        &cfg,
        &[
            EnvStep::Crash { node: 1 },
            EnvStep::Restart { node: 1 },
            EnvStep::WriteOverLimit { id: 1 },
        ],
    );
    assert_eq!(sync_full(&both), vec![5]);
    // Node 1 stopped reading before its restart: its snapshot waits unread when the write
    // comes, so the limit spares it; node 2 is dropped and syncs again.
    let steps = [
        EnvStep::Stall { replica: 1 },
        EnvStep::Crash { node: 1 },
        EnvStep::Restart { node: 1 },
        EnvStep::WriteOverLimit { id: 1 },
    ];
    let held = run(&cfg, &steps);
    assert_eq!(sync_full(&held), vec![4]);
    for s in &held.states {
        let o = observe(&held.model, s);
        assert_eq!(o[1].link_status.as_deref(), Some("down"), "{o:?}");
        assert_eq!(o[2].link_status.as_deref(), Some("up"), "{o:?}");
    }
    // Reading again, node 1 loads the snapshot and streams the write: no second full sync.
    let mut all = steps.to_vec();
    all.push(EnvStep::Unstall { replica: 1 });
    let done = run(&cfg, &all);
    assert_eq!(sync_full(&done), vec![4]);
    for s in &done.states {
        let o = observe(&done.model, s);
        assert_eq!(o[1].link_status.as_deref(), Some("up"), "{o:?}");
        assert_eq!(o[1].master_repl_offset, o[0].master_repl_offset, "{o:?}");
        assert!(o[1].dataset.contains(&1), "{o:?}");
    }
}
