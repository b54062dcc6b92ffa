#!/usr/bin/env bash
# Brings up the whole system on this machine and runs its main job:
# installs what is missing, starts PostgreSQL, RabbitMQ and a Kafka-protocol
# broker (tansu) if they are not running, creates the database, applies
# migrations, builds and starts gateway, worker and persister and Adminer
# (on loopback), waits for /readyz, factors a number through the API, and
# prints the URLs and a development API key (also written to .dev/api-key).
# Safe to run twice.
source "$(dirname "$0")/lib.sh"

ensure_build_deps
ensure_postgres
ensure_rabbitmq
ensure_kafka
DB_NAME="${CRUNCH_DB_NAME:-crunch}"
ensure_database "$DB_NAME"
export DATABASE_URL="${DATABASE_URL:-$PG_ADMIN_URL/$DB_NAME}"
export CRUNCH_HTTP_ADDR="${CRUNCH_HTTP_ADDR:-127.0.0.1:8080}"
# Uploaded gene files live here (gateway and worker share the directory).
export CRUNCH_BLOB_DIR="${CRUNCH_BLOB_DIR:-$DEV_DIR/blobs}"
# The dashboard's demo traffic: on in development (off by default elsewhere).
export CRUNCH_DEMO_INTERVAL_SECS="${CRUNCH_DEMO_INTERVAL_SECS:-5}" CRUNCH_DEMO_KEY_NAME="${CRUNCH_DEMO_KEY_NAME:-dev}"
# Adminer (Debian's package, PHP's built-in server) on loopback, linked from
# the dashboard; deploy/adminer/dev.php accepts the trusted empty password.
ensure_apt adminer php-cli php-cgi php-pgsql
ADMINER_ADDR="${CRUNCH_DEV_ADMINER_ADDR:-127.0.0.1:8088}"
export CRUNCH_ADMINER_URL="${CRUNCH_ADMINER_URL:-http://$ADMINER_ADDR/?pgsql=127.0.0.1:5432&username=postgres&db=$DB_NAME&ns=public}"
# The dev profile (kernels optimised, see Cargo.toml) shares its build with
# scripts/test.sh; use --release builds for benchmarks and images.
build_bins

"$(bin_path crunch-gateway)" migrate
"$(bin_path crunch-gateway)" keys ensure --file "$DEV_DIR/api-key" --name dev
KEY="$(cat "$DEV_DIR/api-key")"

start() { # name command...
  local name="$1" pidf="$DEV_DIR/pids/$1"
  shift
  if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
    log "$name already running (pid $(cat "$pidf"))"
    return 0
  fi
  log "starting $name"
  nohup "$@" >"$DEV_DIR/logs/$name.log" 2>&1 &
  echo $! >"$pidf"
}
start gateway "$(bin_path crunch-gateway)"
start worker "$(bin_path crunch-worker)"
start persister "$(bin_path crunch-persister)"
start adminer php -S "$ADMINER_ADDR" "$ROOT/deploy/adminer/dev.php"

BASE="http://$CRUNCH_HTTP_ADDR"
for ((i = 0; i < 300; i++)); do
  curl -fs "$BASE/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "$BASE/readyz" >/dev/null || die "the gateway is not ready: see $DEV_DIR/logs/gateway.log"

log "running the main job: factorize 2^64 + 1"
JOB=$(curl -fsS -X POST "$BASE/api/v1/jobs" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -d '{"kind":"factorize","params":{"n":"18446744073709551617"}}')
ID=$(printf '%s' "$JOB" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
for ((i = 0; i < 100; i++)); do
  RES=$(curl -fsS "$BASE/api/v1/jobs/$ID" -H "Authorization: Bearer $KEY")
  case "$RES" in *'"status":"succeeded"'*|*'"status":"failed"'*) break ;; esac
  sleep 0.1
done
printf '%s\n' "$RES" | python3 -c 'import json,sys; j=json.load(sys.stdin); print("job", j["id"], j["status"], " x ".join(f["p"] + ("^%d" % f["e"] if f["e"] > 1 else "") for f in (j["result"] or {}).get("factors", [])))'

cat <<MSG

Crunch is up.
  API          $BASE/api/v1/jobs
  Swagger UI   $BASE/docs/
  OpenAPI      $BASE/api-docs/openapi.json
  Dashboard    $BASE/   (paste the API key into its key box; demo jobs every ${CRUNCH_DEMO_INTERVAL_SECS} s)
  Adminer      $CRUNCH_ADMINER_URL
               (PostgreSQL as postgres, empty password: the local server trusts loopback)
  Metrics      $BASE/metrics   (with the API key; worker and persister: 127.0.0.1:8081/metrics, :8082/metrics)
  API key      $KEY   (also in .dev/api-key)
  Logs         .dev/logs/   Stop with scripts/dev-down.sh

Try:
  curl -s -X POST $BASE/api/v1/jobs -H "Authorization: Bearer \$(cat .dev/api-key)" \\
       -H 'Content-Type: application/json' -d '{"kind":"factorize","params":{"n":"360"}}'
MSG
