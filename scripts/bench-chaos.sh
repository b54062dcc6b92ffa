#!/usr/bin/env bash
# Crash safety, the long variant (the test command runs small versions):
#  1. JOBS factorization jobs (default 10000) submitted while one of two
#     release workers is SIGKILLed at KILLS random moments (default 20) and
#     restarted: every job must succeed with one result, at most one terminal
#     event in the outbox (quick jobs write none) and exactly one `succeeded`
#     event on a WebSocket client;
#  2. SELECTIONS selections (default 100000) through Kafka while the persister
#     is SIGKILLed PKILLS times (default 5): every one stored exactly once.
#   JOBS=10000 KILLS=20 SELECTIONS=100000 PKILLS=5 scripts/bench-chaos.sh
source "$(dirname "$0")/lib.sh"
ensure_postgres
ensure_rabbitmq
ensure_kafka
drop_test_databases
log "building release binaries"
cargo build --release -q -p crunch-gateway -p crunch-worker -p crunch-persister -p crunch-e2e \
  --bin crunch-gateway --bin crunch-worker --bin crunch-persister --bin crunch-bench-load --bin crunch-bench-selections
export CRUNCH_BIN_DIR="$CARGO_TARGET_DIR/release"
printf '\n| jobs | worker SIGKILLs | seconds | succeeded | without a result | more than one outbox event | one `succeeded` on the WebSocket | more than one |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n'
"$CRUNCH_BIN_DIR/crunch-bench-load" chaos "${JOBS:-10000}" "${KILLS:-20}"
printf '\n| messages | persister kills | total (s) | start-up until the first row (s) | stored/s overall | stored/s after the first row |\n|---:|---:|---:|---:|---:|---:|\n'
"$CRUNCH_BIN_DIR/crunch-bench-selections" "${SELECTIONS:-100000}" "$CRUNCH_BIN_DIR/crunch-persister" "${PKILLS:-5}"
