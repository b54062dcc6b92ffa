#!/usr/bin/env bash
# Runs every test. Does the same idempotent set-up as dev-up.sh first
# (packages, PostgreSQL, RabbitMQ, tansu), so it works on a fresh machine.
# Extra arguments go to `cargo test` (e.g. scripts/test.sh -p crunch-e2e).
source "$(dirname "$0")/lib.sh"

ensure_build_deps
ensure_apt primesieve primecount pari-gp bc
ensure_postgres
ensure_rabbitmq
ensure_kafka
export TANSU_BIN="$(tansu_bin)"
ensure_s3
ensure_docker_cli
ensure_hadolint
ensure_browser_test_deps
ensure_schemathesis

drop_test_databases

export TEST_DATABASE_SERVER="${TEST_DATABASE_SERVER:-$PG_ADMIN_URL}"
export AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
export TEST_S3_ENDPOINT="${TEST_S3_ENDPOINT:-$S3_DEV_ENDPOINT}" TEST_S3_ACCESS_KEY="${TEST_S3_ACCESS_KEY:-$S3_DEV_ACCESS_KEY}" TEST_S3_SECRET_KEY="${TEST_S3_SECRET_KEY:-$S3_DEV_SECRET_KEY}"
build_bins
log "running the tests"
OUT="$DEV_DIR/logs/test-output.log"
set +e
[ $# -gt 0 ] || set -- --workspace
cargo test --no-fail-fast "$@" 2>&1 | tee "$OUT"
STATUS=${PIPESTATUS[0]}
set -e
# One closing line for the whole run (cargo prints one per test binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "\ntests: %d passed, %d failed\n", p, f }' "$OUT"
exit "$STATUS"
