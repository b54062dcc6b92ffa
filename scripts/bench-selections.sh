#!/usr/bin/env bash
# Persister throughput: N selection messages (default 200,000) produced to a
# fresh topic on the local Kafka-protocol broker (tansu), then the release
# persister started on it; timed until every selection is in PostgreSQL.
# With KILLS=k the persister is SIGKILLed and restarted k times while it
# works; the run fails unless every selection is stored exactly once.
#   N=200000 scripts/bench-selections.sh
#   N=100000 KILLS=5 scripts/bench-selections.sh
source "$(dirname "$0")/lib.sh"
ensure_postgres
ensure_kafka
log "building release binaries"
cargo build --release -q -p crunch-persister -p crunch-e2e --bin crunch-persister --bin crunch-bench-selections
printf '\n| messages | persister kills | total (s) | start-up until the first row (s) | stored/s overall | stored/s after the first row |\n|---:|---:|---:|---:|---:|---:|\n'
"$CARGO_TARGET_DIR/release/crunch-bench-selections" "${N:-200000}" "$CARGO_TARGET_DIR/release/crunch-persister" "${KILLS:-0}"
