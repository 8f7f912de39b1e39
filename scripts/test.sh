#!/usr/bin/env bash
# Sets up a fresh machine and runs every test: the one test command of the README, and what
# CI runs. Installs Debian's redis-server / redis-tools 7.0.15 if missing (tests that need them
# fail, never skip, without them), builds the workspace in release mode (the model checker and
# the end-to-end tests run on optimised code), then runs all tests.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== build (release)"
cargo build --release --workspace --bins --locked

echo "== tests (every verdis-server they start writes its protocol trace, validated below)"
rm -rf target/test-traces
VERDIS_TEST_TRACE_DIR="$PWD/target/test-traces" cargo test --release --workspace --locked -- --test-threads=2

echo "== conformance: the protocol traces of the end-to-end and interop tests against the model's rules"
./target/release/verdis-conform validate --runs-under target/test-traces

echo "== loom: the replica link's output-buffer accounting under every interleaving"
RUSTFLAGS="--cfg verdis_loom" CARGO_TARGET_DIR=target/loom cargo test --release -p verdis --lib --locked loom

echo "== model checker: the default configuration, exhaustive (docs/model.md)"
./target/release/verdis-check check

echo "== conformance: the model's settled traces on verdis-server and redis-server 7.0, server traces validated (docs/conformance.md)"
./target/release/verdis-conform replay --target both --validate

echo "== benchmark harness smoke run (tiny counts; the full run is documented in docs/performance.md)"
./target/release/verdis-bench --smoke > /dev/null
