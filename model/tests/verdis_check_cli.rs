//! `verdis-check` exits 0 when every property holds and 1 on a violation; its election
//! report and traces are written, re-validated and replayable.

use stateright::Model;
use std::process::Command;
use verdis_core::cluster::ClusterMsg;
use verdis_model::election::{ElectionConfig, ElectionModel};
use verdis_model::report::election::{action_for, observe};

/// Runs `verdis-check <args>`; (exit code, stdout + stderr).
fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_verdis-check"))
        .args(args)
        .output()
        .expect("verdis-check runs");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// A fresh directory under cargo's scratch space for integration tests.
fn scratch(name: &str) -> String {
    let dir = format!("{}/{name}", env!("CARGO_TARGET_TMPDIR"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

fn check(args: &[&str]) -> (i32, String) {
    run(&[&["check"], args].concat())
}

#[test]
fn cli_exit_code_reflects_the_verdict() {
    let (code, stdout) = check(&["--replicas", "1", "--no-switchover"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("unique states/s"), "{stdout}");
    let (code, stdout) = check(&[
        "--replicas",
        "1",
        "--no-switchover",
        "--bug",
        "ack-beyond-applied",
    ]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("FAIL always an ack never exceeds what was sent and applied"),
        "{stdout}"
    );
    let (code, stdout) = check(&[
        "--replicas",
        "1",
        "--no-switchover",
        "--bug",
        "never-retry",
        "--liveness",
    ]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("violated (deadlock)"), "{stdout}");
}

#[test]
fn election_check_fails_on_a_planted_bug_and_refuses_a_bug_of_the_other_model() {
    let election = ["--model", "election", "--writes", "1", "--faults", "1"];
    let (code, text) = check(&election);
    assert_eq!(code, 0, "{text}");
    let (code, text) = check(&[&election[..], &["--bug", "vote-twice"]].concat());
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("[FAIL] Vote Safety: a master votes at most once per epoch: VIOLATED"),
        "{text}"
    );
    let (code, text) = check(
        &[
            &election[..],
            &["--bug", "never-retry-election", "--liveness"],
        ]
        .concat(),
    );
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("deadlock"), "{text}");
    let (code, text) = check(&[&election[..], &["--bug", "never-retry"]].concat());
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("belongs to --model Replication"), "{text}");
}

#[test]
fn election_report_shows_the_redis_wait_loss_and_a_planted_bug_as_replayed_counterexamples() {
    let out = scratch("election-report");
    let (code, text) = run(&[
        "report",
        "--model",
        "election",
        "--scenario",
        "reference: ",
        "--scenario",
        "votes twice",
        "--out",
        &out,
    ]);
    assert_eq!(code, 0, "{text}");
    let md = std::fs::read_to_string(format!("{out}/election.md")).expect("election.md");
    let wait_loss = md
        .split("### Counterexample: ")
        .find(|s| s.starts_with("Redis semantics: a WAIT-acknowledged write is lost"))
        .expect("the WAIT-loss counterexample");
    assert!(
        wait_loss.contains("1. `client -> n1: write (offset 1)`"),
        "{wait_loss}"
    );
    assert!(wait_loss.contains("AUTH_ACK"), "{wait_loss}");
    assert!(
        wait_loss.contains("re-validated by replay: yes"),
        "{wait_loss}"
    );
    assert!(
        wait_loss.contains("```mermaid\nsequenceDiagram"),
        "{wait_loss}"
    );
    assert!(md.contains("### Counterexample: Vote Safety: a master votes at most once per epoch"));

    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{out}/election.json")).expect("election.json"),
    )
    .expect("election.json parses");
    let runs = json.as_array().expect("a list of scenarios");
    assert_eq!(runs.len(), 2);
    for run in runs {
        assert_eq!(run["as_expected"], true, "{}", run["title"]);
        assert!(run["check"]["unique_states"].as_u64() > Some(0));
        assert!(run["check"]["unique_states_per_second"].as_f64() > Some(0.0));
    }
    assert_eq!(runs[0]["liveness"]["outcome"], "holds");
    assert!(std::path::Path::new(&format!("{out}/election-traces.json")).exists());
}

#[test]
fn election_traces_parse_and_replay_step_by_step_to_the_recorded_observations() {
    let out = format!("{}/election-traces.json", scratch("election-traces"));
    let (code, text) = run(&[
        "traces", "--model", "election", "--writes", "1", "--faults", "2", "--count", "5", "--out",
        &out,
    ]);
    assert_eq!(code, 0, "{text}");
    let traces: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("traces written"))
            .expect("traces parse");
    let traces = traces.as_array().expect("a list of traces");
    assert_eq!(traces.len(), 5);
    let mut elected = 0;
    for trace in traces {
        let cfg: ElectionConfig =
            serde_json::from_value(trace["config"].clone()).expect("the configuration");
        let model = ElectionModel::new(cfg);
        let mut state = model.init_states().remove(0);
        let steps = trace["steps"].as_array().expect("steps");
        assert!(!steps.is_empty(), "{}", trace["name"]);
        for (i, step) in steps.iter().enumerate() {
            let node = |key: &str| step[key].as_u64().map(|n| n as usize);
            let msg: Option<ClusterMsg> =
                serde_json::from_value(step["msg"].clone()).expect("a message or null");
            let action = action_for(
                &model,
                &state,
                step["kind"].as_str().expect("kind"),
                node("src"),
                node("dst"),
                msg.as_ref(),
            )
            .unwrap_or_else(|| panic!("{} step {}: not enabled", trace["name"], i + 1));
            state = model.next_state(&state, action).expect("taken");
            assert_eq!(
                serde_json::to_value(observe(&state)).expect("serializes"),
                step["after"],
                "{} step {}",
                trace["name"],
                i + 1
            );
            assert_eq!(step["now_ms"].as_u64(), Some(state.now_ms));
        }
        let last = &steps[steps.len() - 1]["after"];
        let new_master = last.as_array().expect("nodes").iter().any(|n| {
            n["role"] == "master"
                && n["node"].as_u64() >= Some(3)
                && n["current_epoch"].as_u64() > Some(3)
        });
        elected += usize::from(new_master);
    }
    assert!(elected > 0, "some exported trace elects a replica");
}
