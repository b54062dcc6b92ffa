#!/usr/bin/env bash
# Runs every test. Does the same idempotent set-up as dev-up.sh first
# (packages, PostgreSQL, RabbitMQ, tansu), so it works on a fresh machine.
# Extra arguments go to `cargo test` (e.g. scripts/test.sh -p crunch-e2e).
source "$(dirname "$0")/lib.sh"

ensure_build_deps
ensure_postgres
ensure_rabbitmq
ensure_kafka

# Databases left behind by earlier (crashed) test runs.
for db in $(psql "$PG_ADMIN_URL/postgres" -tAc "SELECT datname FROM pg_database WHERE datname LIKE 'crunch_test_%'"); do
  psql "$PG_ADMIN_URL/postgres" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
done

export TEST_DATABASE_SERVER="${TEST_DATABASE_SERVER:-$PG_ADMIN_URL}"
export AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
build_bins
log "running the tests"
cargo test --workspace "$@"
