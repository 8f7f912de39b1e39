//! `verdis-check` exits 0 when every property holds and 1 on a violation.

use std::process::Command;

fn check(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_verdis-check"))
        .arg("check")
        .args(args)
        .output()
        .expect("verdis-check runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
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
