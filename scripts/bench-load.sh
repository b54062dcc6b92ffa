#!/usr/bin/env bash
# Load and scale-out (release gateway and workers as processes, on the local
# PostgreSQL and RabbitMQ):
#  1. sustained open-loop submission: RATE jobs/s for SECS s (default 2000, 60),
#     latency percentiles and errors; once with no worker (the submission
#     path alone: jobs queue up) and once with one worker running beside it;
#  2. end-to-end drain of JOBS trivial jobs (default 20000) with 1, 2 and 4
#     worker processes;
#  3. the same drain on Celery + RabbitMQ (Celery, sympy and redis-py installed
#     from PyPI into $HOME/.cache/crunch-tools/celery-venv), printed as a ratio.
#   RATE=2000 SECS=60 JOBS=20000 scripts/bench-load.sh
source "$(dirname "$0")/lib.sh"
RATE="${RATE:-2000}" SECS="${SECS:-60}" JOBS="${JOBS:-20000}"
ensure_postgres
ensure_rabbitmq
ensure_kafka
drop_test_databases
log "building release binaries"
cargo build --release -q -p crunch-gateway -p crunch-worker -p crunch-e2e --bin crunch-gateway --bin crunch-worker --bin crunch-bench-load
export CRUNCH_BIN_DIR="$CARGO_TARGET_DIR/release"
LOAD="$CRUNCH_BIN_DIR/crunch-bench-load"
VENV="$CRUNCH_TOOLS/celery-venv"
if ! "$VENV/bin/python" -c 'import celery, sympy, redis' 2>/dev/null; then
  log "installing Celery, sympy and redis-py from PyPI"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "celery==5.5.3" "sympy==1.14.0" "redis==6.4.0"
fi

printf '\n| target jobs/s | seconds | workers | requests | accepted/s | p50 (ms) | p99 (ms) | p99 from send (ms) | max (ms) | errors |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n'
"$LOAD" submit "$RATE" "$SECS" 0
"$LOAD" submit "$RATE" "$SECS" 1

printf '\n| workers | jobs | seconds | jobs/s end to end |\n|---|---:|---:|---:|\n'
rows=()
for w in 1 2 4; do
  row="$("$LOAD" drain "$JOBS" "$w")"; echo "$row"; rows+=("$row")
done
celery_row="$(cd "$ROOT/scripts" && "$VENV/bin/python" bench_celery.py "$JOBS")"; echo "$celery_row"
best="$(printf '%s\n' "${rows[@]}" | awk -F'|' '{gsub(/ /, "", $5); if ($5 > m) m = $5} END {print m}')"
theirs="$(echo "$celery_row" | awk -F'|' '{gsub(/ /, "", $5); print $5}')"
printf '\nbest crunch %s jobs/s / celery %s jobs/s = %.1fx\n' "$best" "$theirs" "$(echo "$best / $theirs" | bc -l)"
printf '(%s, %s cores)\n' "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" "$(nproc)"
