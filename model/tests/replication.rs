//! The replication model: pinned state counts, every property on small configurations, each
//! planted bug caught, FORCE losing a write, exact liveness, and trace export by replay.

use stateright::{Checker, Model};
use verdis_core::repl::PlantedBug;
use verdis_model::replication::names::*;
use verdis_model::replication::{ModelCfg, SwitchoverCfg};
use verdis_model::report::{
    check_replication, liveness_replication, random_walk, replay, RunOpts, Status,
};

fn small() -> ModelCfg {
    ModelCfg {
        replicas: 1,
        switchover: None,
        ..ModelCfg::default()
    }
}

fn run(cfg: &ModelCfg) -> verdis_model::report::CheckResult {
    check_replication(cfg, &RunOpts::default())
}

#[test]
fn small_configuration_passes_every_property_with_a_pinned_state_count() {
    let res = run(&small());
    for p in &res.properties {
        assert_eq!(p.status, Status::Pass, "{} ({})", p.name, p.kind);
    }
    // Pinned: a change here means the model (or the core it runs) changed behaviour.
    assert_eq!(res.unique_states, 6970);
}

#[test]
fn small_switchover_passes_every_property_with_a_pinned_state_count() {
    let res = run(&ModelCfg {
        replicas: 1,
        ..ModelCfg::default()
    });
    for p in &res.properties {
        assert_eq!(p.status, Status::Pass, "{} ({})", p.name, p.kind);
    }
    assert!(res
        .properties
        .iter()
        .any(|p| p.name == SWITCHOVER_LOSES_NO_WRITE));
    assert!(res.properties.iter().any(|p| p.name == SOMETIMES_REPLID2));
    assert_eq!(res.unique_states, 37173);
}

#[test]
fn small_configuration_without_persistence_passes() {
    let res = run(&ModelCfg {
        persistence: false,
        ..small()
    });
    assert!(res.ok(), "{:?}", res.properties);
    assert_eq!(res.unique_states, 6687);
}

#[test]
fn planted_continue_outside_backlog_is_caught() {
    let res = run(&ModelCfg {
        bug: Some(PlantedBug::ContinueOutsideBacklog),
        ..small()
    });
    assert!(res.violated(CONTINUE_IN_BACKLOG));
    assert!(
        res.violated(PREFIX_OF_HISTORY),
        "the gap shows in the data too"
    );
}

#[test]
fn planted_ack_beyond_applied_is_caught() {
    let res = run(&ModelCfg {
        bug: Some(PlantedBug::AckBeyondApplied),
        ..small()
    });
    assert!(res.violated(ACK_WITHIN_SENT));
}

#[test]
fn planted_full_sync_inside_window_is_caught() {
    let res = run(&ModelCfg {
        bug: Some(PlantedBug::FullSyncInsideBacklog),
        ..small()
    });
    assert!(res.violated(NO_FULL_INSIDE_WINDOW));
}

#[test]
fn forced_switchover_loses_an_acknowledged_write() {
    let cfg = ModelCfg {
        replicas: 1,
        switchover: Some(SwitchoverCfg { force: true }),
        ..ModelCfg::default()
    };
    let res = check_replication(
        &cfg,
        &RunOpts {
            properties: vec![SWITCHOVER_LOSES_NO_WRITE.into()],
            ..RunOpts::default()
        },
    );
    assert!(
        res.violated(SWITCHOVER_LOSES_NO_WRITE),
        "FAILOVER FORCE must be shown to lose a write"
    );
}

#[test]
fn liveness_holds_on_small_configurations() {
    let live = liveness_replication(&small());
    assert!(live.holds(), "{}: {:?}", live.outcome, live.lasso_prefix);
    let live = liveness_replication(&ModelCfg {
        replicas: 1,
        ..ModelCfg::default()
    });
    assert!(live.holds(), "{}: {:?}", live.outcome, live.lasso_prefix);
}

#[test]
fn planted_never_retry_fails_liveness() {
    let live = liveness_replication(&ModelCfg {
        bug: Some(PlantedBug::ReplicaNeverRetries),
        ..small()
    });
    assert!(
        !live.holds(),
        "a replica that never retries must be reported"
    );
}

#[test]
fn exported_paths_replay_to_the_same_states() {
    let cfg = ModelCfg {
        replicas: 1,
        ..ModelCfg::default()
    };
    let model = cfg.clone().into_model();
    let walk = random_walk(&model, 42, 80);
    assert!(!walk.is_empty());
    let trace = replay(&model, "walk", &walk).expect("a walk replays");
    assert_eq!(trace.steps.len(), walk.len());
    // A discovery path from the checker replays too.
    let checker = cfg.into_model().checker().spawn_bfs().join();
    let path = checker
        .discovery(SOMETIMES_SWITCHOVER)
        .expect("switchover reachable");
    let trace =
        replay(&model, SOMETIMES_SWITCHOVER, &path.into_actions()).expect("discovery replays");
    let last = trace.steps.last().expect("non-empty");
    assert!(last.after.iter().any(|o| o.node == 1 && o.role == "master"));
    // A tampered path is rejected.
    let mut bad = walk.clone();
    bad.swap(0, walk.len() - 1);
    assert!(replay(&model, "bad", &bad).is_err() || walk.len() < 2 || bad == walk);
}

#[test]
fn model_properties_have_unique_names() {
    let model = ModelCfg::default().into_model();
    let mut names: Vec<_> = model.properties().iter().map(|p| p.name).collect();
    let n = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), n);
}

#[test]
fn bounded_response_holds_and_catches_a_replica_that_never_retries() {
    let cfg = ModelCfg {
        bounded_response: Some(60),
        ..small()
    };
    let res = check_replication(
        &cfg,
        &RunOpts {
            properties: vec![BOUNDED_RESPONSE.into()],
            ..RunOpts::default()
        },
    );
    assert!(
        res.properties.iter().all(|p| p.status == Status::Pass),
        "{:?}",
        res.properties
    );
    assert_eq!(res.unique_states, 36937);
    let broken = ModelCfg {
        bug: Some(PlantedBug::ReplicaNeverRetries),
        ..cfg
    };
    let res = check_replication(
        &broken,
        &RunOpts {
            properties: vec![BOUNDED_RESPONSE.into()],
            ..RunOpts::default()
        },
    );
    assert!(res.violated(BOUNDED_RESPONSE));
}

#[test]
fn wait_with_getack_in_the_stream_passes_and_an_over_ack_is_caught() {
    let cfg = ModelCfg {
        replicas: 1,
        getack: true,
        ..ModelCfg::default()
    };
    let res = run(&cfg);
    assert!(res.ok(), "{:?}", res.properties);
    assert_eq!(res.unique_states, 125667);
    let res = run(&ModelCfg {
        bug: Some(PlantedBug::AckBeyondApplied),
        switchover: None,
        ..cfg
    });
    assert!(res.violated(ACK_WITHIN_SENT));
}
