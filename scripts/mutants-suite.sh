#!/usr/bin/env bash
# Runs the whole suite against chosen cargo-mutants mutants of verdis-core: the ones the
# core's own tests miss (cargo-mutants' missed.txt), so the mutation score in
# docs/conformance.md counts the model, the model checker, the conformance replay and the
# end-to-end tests too, not the core's unit tests alone.
#
#   scripts/mutants-suite.sh MISSED_FILE [OUT_FILE]
#
# MISSED_FILE: mutant names, one per line, as cargo-mutants prints them
#   (`model/core/src/repl/node.rs:834:9: replace ReplNode::send_stream with ()`).
# OUT_FILE (default target/mutants-suite.md): one Markdown row per mutant: the first stage
#   that failed (the mutant is caught there) or "missed". Every stage's whole output is kept
#   beside it, in OUT_FILE's name without `.md`, plus `-logs/<mutant number>-<stage>.log`.
#
# Each mutant is applied to a scratch worktree of HEAD (the work tree is never touched), then
# the stages run cheapest first and stop at the first failure:
#   1. core      cargo test -p verdis-core
#   2. checker   verdis-check check (the default configuration, exhaustive)
#   3. model     cargo test -p verdis-model
#   4. replay    verdis-conform replay --target verdis --validate (the CI trace set)
#   5. e2e       the replication end-to-end tests (tests/tests/replication*.rs)
# Every stage has a time limit; a stage that runs past it counts as catching the mutant (as
# cargo-mutants counts a timeout). Needs cargo-mutants (`cargo install cargo-mutants
# --locked`), jq, and what scripts/setup.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."

missed=${1:?usage: scripts/mutants-suite.sh MISSED_FILE [OUT_FILE]}
out=${2:-target/mutants-suite.md}
root=$PWD
case $out in /*) ;; *) out="$root/$out" ;; esac
scratch=$(mktemp -d)
tree="$scratch/tree"
logs="${out%.md}-logs"
rm -rf "$logs"
mkdir -p "$logs"
trap 'git -C "$root" worktree remove --force "$tree" >/dev/null 2>&1 || true; rm -rf "$scratch"' EXIT

git worktree add --detach "$tree" HEAD >/dev/null
# The trace set and the redis reference come from the work tree as they are at HEAD.
export CARGO_TARGET_DIR="$root/target/mutants-suite"

echo "== listing mutants with their diffs"
(cd "$tree" && cargo mutants -p verdis-core -f 'model/core/src/repl/*.rs' \
    -f 'model/core/src/cluster/*.rs' --list --json --diff) > "$scratch/all.json"

run_stage() { # name, seconds, command...
  local name=$1 limit=$2
  local log="$logs/$total-$name.log"
  shift 2
  if (cd "$tree" && timeout "$limit" "$@") > "$log" 2>&1; then
    return 0
  fi
  caught_by=$name
  echo "   caught by $name (the lines that say why, then the last ones; all in $log):"
  grep -m 8 -E 'INVALID|DIFF|FAILED|panicked|violat|error' "$log" | sed 's/^/     /' || true
  tail -n 3 "$log" | sed 's/^/     /'
  return 1
}

suite() {
  run_stage core 600 cargo test --release -p verdis-core --locked &&
    run_stage checker 900 bash -c "cargo build --release --locked -p verdis-model --bin verdis-check &&
      $CARGO_TARGET_DIR/release/verdis-check check" &&
    run_stage model 1200 cargo test --release -p verdis-model --locked &&
    run_stage replay 1500 bash -c "cargo build --release --locked --workspace --bins &&
      $CARGO_TARGET_DIR/release/verdis-conform replay --target verdis --validate" &&
    run_stage e2e 1500 cargo test --release --locked -p verdis-tests --test replication \
      --test replication_failover --test replication_limits -- --test-threads=2
}

{
  echo "| mutant | caught by |"
  echo "|---|---|"
} > "$out"
caught=0
total=0
caught_by=""
while IFS= read -r name; do
  [ -n "$name" ] || continue
  total=$((total + 1))
  cell=${name//|/\\|} # a table cell: `|` escaped
  echo "== [$total] $name"
  diff=$(jq -r --arg n "$name" '.[] | select(.name == $n) | .diff' "$scratch/all.json")
  if [ -z "$diff" ]; then
    echo "   not among today's mutants (the source moved): listed as such"
    echo "| \`$cell\` | not found |" >> "$out"
    continue
  fi
  file=$(jq -r --arg n "$name" '.[] | select(.name == $n) | .file' "$scratch/all.json")
  # cargo-mutants names the new side after the mutant; git apply wants the path on both.
  printf '%s\n' "$diff" | sed "1s|^--- .*|--- a/$file|; 2s|^+++ .*|+++ b/$file|" \
    | git -C "$tree" apply
  if suite; then
    echo "   missed by every stage"
    echo "| \`$cell\` | missed |" >> "$out"
  else
    caught=$((caught + 1))
    echo "| \`$cell\` | $caught_by |" >> "$out"
  fi
  git -C "$tree" checkout -- .
done < "$missed"
echo "== $caught of $total caught by the whole suite; table in $out"
