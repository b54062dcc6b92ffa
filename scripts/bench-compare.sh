#!/usr/bin/env bash
# Before and after a change, in one run: the job path's figures of the
# release build of REV (default: the parent of HEAD) beside those of the
# working tree, in alternating rounds so that both see the same machine:
#  1. drain of JOBS quick jobs (default 20000) with 1 and 2 worker processes
#     (crunch-bench-load drain: submission, queue, batched run, store, events);
#  2. the primes below 1e8 as a list job through the API: submit, sieve and
#     store 5,761,455 primes in chunks, then stream them as text (the
#     per-delivery path, shard-free);
#  3. the kernels alone (crunch-factor on 100,000 random 64-bit numbers,
#     crunch-primes count below 1e10, one thread): a control, for changes
#     that do not touch crunch-compute.
#   scripts/bench-compare.sh [REV]      # ROUNDS=2 JOBS=20000 by default
source "$(dirname "$0")/lib.sh"
REV="${1:-HEAD~1}" ROUNDS="${ROUNDS:-2}" JOBS="${JOBS:-20000}"
ensure_postgres
ensure_rabbitmq
ensure_kafka
command -v bc >/dev/null || ensure_apt bc
BINS=(--bin crunch-gateway --bin crunch-worker --bin crunch-bench-load --bin crunch-factor --bin crunch-primes)
PKGS=(-p crunch-gateway -p crunch-worker -p crunch-e2e -p crunch-compute)

# REV's sources (a worktree, reused when it is already at REV) and build.
BEFORE_SRC="${BEFORE_SRC:-$CRUNCH_TOOLS/compare-src}" BEFORE_TARGET="${BEFORE_TARGET:-$CRUNCH_TOOLS/compare-target}"
log "building $REV (release) in $BEFORE_SRC"
if [ "$(git -C "$BEFORE_SRC" rev-parse HEAD 2>/dev/null)" != "$(git -C "$ROOT" rev-parse "$REV")" ]; then
  git -C "$ROOT" worktree remove -f "$BEFORE_SRC" 2>/dev/null || rm -rf "$BEFORE_SRC"
  git -C "$ROOT" worktree prune
  git -C "$ROOT" worktree add -f --detach "$BEFORE_SRC" "$REV" >/dev/null
fi
(cd "$BEFORE_SRC" && CARGO_TARGET_DIR="$BEFORE_TARGET" cargo build --release -q "${PKGS[@]}" "${BINS[@]}")
log "building the working tree (release)"
cargo build --release -q "${PKGS[@]}" "${BINS[@]}"
declare -A REL=([before]="$BEFORE_TARGET/release" [after]="$CARGO_TARGET_DIR/release")
WORK="$(mktemp -d)"
cleanup() { kill ${GW:-} ${WK:-} 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
python3 -c 'import random; r = random.Random(20261125); print("".join(f"{r.getrandbits(64)}\n" for _ in range(100000)), end="")' >"$WORK/random64.txt"

drain() { # side workers -> jobs/s
  CRUNCH_BIN_DIR="${REL[$1]}" "${REL[$1]}/crunch-bench-load" drain "$JOBS" "$2" | awk -F'|' '{gsub(/ /, "", $5); print $5}'
}

primes_api() { # side -> "job seconds, stream seconds"
  local rel="${REL[$1]}" db="crunch_compare" key id s e job
  psql "$PG_ADMIN_URL/postgres" -qc "DROP DATABASE IF EXISTS $db" >/dev/null
  psql "$PG_ADMIN_URL/postgres" -qc "CREATE DATABASE $db" >/dev/null
  export DATABASE_URL="$PG_ADMIN_URL/$db" CRUNCH_AMQP_NAMESPACE="compare$$$1" CRUNCH_QUEUE_EXPIRES_MS=600000 \
    CRUNCH_HTTP_ADDR=127.0.0.1:18190 CRUNCH_WORKER_HEALTH_ADDR=127.0.0.1:18191 RUST_LOG=warn CRUNCH_ENV_FILE=/nonexistent
  key=$("$rel/crunch-gateway" keys create --name compare 2>/dev/null)
  "$rel/crunch-gateway" >"$WORK/gw.log" 2>&1 & GW=$!
  "$rel/crunch-worker" >"$WORK/wk.log" 2>&1 & WK=$!
  for ((i = 0; i < 300; i++)); do curl -fs http://127.0.0.1:18190/readyz >/dev/null && break; sleep 0.1; done
  s=$(date +%s.%N)
  id=$(curl -fsS -X POST http://127.0.0.1:18190/api/v1/jobs -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -d '{"kind":"primes","params":{"from":"0","to":"100000000","mode":"list"}}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  until curl -fsS "http://127.0.0.1:18190/api/v1/jobs/$id" -H "Authorization: Bearer $key" | grep -q '"status":"succeeded"'; do sleep 0.02; done
  e=$(date +%s.%N); job=$(echo "$e - $s" | bc -l)
  s=$(date +%s.%N)
  curl -fsS "http://127.0.0.1:18190/api/v1/jobs/$id/result" -H "Authorization: Bearer $key" -H 'Accept: text/plain' >"$WORK/api.txt"
  e=$(date +%s.%N)
  [ "$(wc -l <"$WORK/api.txt")" = 5761455 ] || die "$1: the stream has $(wc -l <"$WORK/api.txt") primes, not 5761455"
  kill "$GW" "$WK"; wait "$GW" "$WK" 2>/dev/null; GW= WK=
  printf '%.2f, %.2f' "$job" "$(echo "$e - $s" | bc -l)"
}

timed() { local s e; s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); printf '%.2f' "$(echo "$e - $s" | bc -l)"; }

printf '\n| round | side | drain, 1 worker (jobs/s) | drain, 2 workers (jobs/s) | primes < 1e8 via API: job, stream (s) | crunch-factor 100k (s) | count < 1e10, 1 thread (s) |\n|---:|---|---:|---:|---:|---:|---:|\n'
for ((r = 1; r <= ROUNDS; r++)); do
  for side in before after; do
    d1=$(drain "$side" 1); d2=$(drain "$side" 2); p=$(primes_api "$side")
    f=$(timed "${REL[$side]}/crunch-factor" <"$WORK/random64.txt")
    c=$(timed "${REL[$side]}/crunch-primes" count 0 10000000000 1)
    printf '| %d | %s (%s) | %s | %s | %s | %s | %s |\n' "$r" "$side" "$([ "$side" = before ] && git -C "$ROOT" rev-parse --short "$REV" || echo "working tree")" "$d1" "$d2" "$p" "$f" "$c"
  done
done
printf '(%s, %s cores)\n' "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" "$(nproc)"
