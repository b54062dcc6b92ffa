#!/usr/bin/env bash
# Retention at scale: a scratch database holding JOBS finished factorize jobs
# (default 200,000) with an event each, 1,000 finished prime-list jobs with
# CHUNKS prime chunks each (default 50), and a finished gene file of
# SEQUENCES sequences of 300 bases (default 1,000,000) with an uploaded blob
# of BLOB_MB (default 256); everything finished a day ago. Then a worker runs
# only its retention sweeper (retention 1 h, default batch of 500) until all of
# it is gone. Prints how long the sweep took, and the disk: the tables with
# their indexes before, after the sweep, after VACUUM and after VACUUM FULL,
# and the blob directory before and after.
#   scripts/bench-retention.sh
#   JOBS=50000 SEQUENCES=200000 scripts/bench-retention.sh
source "$(dirname "$0")/lib.sh"
ensure_postgres
ensure_rabbitmq
DB=crunch_bench_retention
JOBS="${JOBS:-200000}" CHUNKS="${CHUNKS:-50}" SEQUENCES="${SEQUENCES:-1000000}" BLOB_MB="${BLOB_MB:-256}"
psql "$PG_ADMIN_URL/postgres" -qc "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
URL="$PG_ADMIN_URL/$DB"
BLOBS="$(mktemp -d)"
cargo build -q -p crunch-gateway -p crunch-worker
DATABASE_URL="$URL" "$(bin_path crunch-gateway)" migrate >/dev/null

log "writing $JOBS jobs, 1,000 prime jobs with $CHUNKS chunks each, a gene file of $SEQUENCES sequences"
psql "$URL" -q -v ON_ERROR_STOP=1 -v jobs="$JOBS" -v chunks="$CHUNKS" -v seqs="$SEQUENCES" <<'SQL'
INSERT INTO api_keys (id, name, key_hash) VALUES ('00000000-0000-0000-0000-00000000000a', 'bench', '\x00');
INSERT INTO jobs (id, owner_id, kind, params, dedup_key, status, progress, result, created_at, started_at, finished_at)
SELECT gen_random_uuid(), '00000000-0000-0000-0000-00000000000a', 'factorize', jsonb_build_object('n', g::text),
       decode(md5(g::text), 'hex'), 'succeeded', 1, jsonb_build_object('factors', jsonb_build_array(jsonb_build_object('p', g::text, 'e', 1))),
       now() - interval '1 day', now() - interval '1 day', now() - interval '1 day'
FROM generate_series(1, :jobs) AS g;
INSERT INTO job_events (job_id, event, published) SELECT id, jsonb_build_object('type', 'succeeded', 'job_id', id), true FROM jobs;
INSERT INTO jobs (id, owner_id, kind, params, dedup_key, status, progress, created_at, started_at, finished_at)
SELECT ('00000000-0000-0000-0001-' || lpad(g::text, 12, '0'))::uuid, '00000000-0000-0000-0000-00000000000a', 'primes',
       jsonb_build_object('from', '0', 'to', g::text, 'mode', 'list'), decode(md5('p' || g), 'hex'), 'succeeded', 1,
       now() - interval '1 day', now() - interval '1 day', now() - interval '1 day'
FROM generate_series(1, 1000) AS g;
INSERT INTO prime_chunks (job_id, start_index, first_prime, count, data)
SELECT ('00000000-0000-0000-0001-' || lpad(j::text, 12, '0'))::uuid, c * 10000, c * 104729 + 2, 10000, decode(repeat('01', 2500), 'hex')
FROM generate_series(1, 1000) AS j, generate_series(0, :chunks - 1) AS c;
INSERT INTO jobs (id, owner_id, kind, params, dedup_key, status, progress, created_at, started_at, finished_at)
VALUES ('00000000-0000-0000-0002-000000000001', '00000000-0000-0000-0000-00000000000a', 'genes',
        '{"file_id": "00000000-0000-0000-0003-000000000001"}', '\x01', 'succeeded', 1,
        now() - interval '1 day', now() - interval '1 day', now() - interval '1 day');
INSERT INTO gene_files (id, owner_id, file_name, format, object_key, size_bytes, uploaded_at, job_id, created_at)
VALUES ('00000000-0000-0000-0003-000000000001', '00000000-0000-0000-0000-00000000000a', 'bench.fasta', 'fasta',
        'gene-files/bench.fasta', 0, now() - interval '1 day', '00000000-0000-0000-0002-000000000001', now() - interval '1 day');
INSERT INTO gene_sequences (file_id, record_index, line_number, name, sequence, length, gc)
SELECT '00000000-0000-0000-0003-000000000001', g, 2 * g + 1, 'seq' || g, repeat('ACGTTGCA', 38), 304, 0.5
FROM generate_series(0, :seqs - 1) AS g;
VACUUM ANALYZE;
SQL
mkdir -p "$BLOBS/gene-files"
dd if=/dev/zero of="$BLOBS/gene-files/bench.fasta" bs=1M count="$BLOB_MB" status=none

SIZES="SELECT string_agg(format('%s %s', t, pg_size_pretty(pg_total_relation_size(t))), ', ' ORDER BY t)
         FROM unnest(ARRAY['jobs', 'job_events', 'prime_chunks', 'gene_sequences']) t"
TOTAL="SELECT pg_size_pretty(sum(pg_total_relation_size(t))) FROM unnest(ARRAY['jobs', 'job_events', 'prime_chunks', 'gene_sequences']) t"
before="$(psql "$URL" -Atc "$SIZES")"; before_total="$(psql "$URL" -Atc "$TOTAL")"
blobs_before="$(du -sh "$BLOBS" | cut -f1)"

log "sweeping"
HEALTH=127.0.0.1:18391
start=$(date +%s.%N)
env CRUNCH_ENV_FILE=/nonexistent DATABASE_URL="$URL" AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}" \
  CRUNCH_AMQP_NAMESPACE="bench-retention-$$" CRUNCH_QUEUE_EXPIRES_MS=600000 CRUNCH_WORKER_HEALTH_ADDR=$HEALTH \
  CRUNCH_BLOB_DIR="$BLOBS" CRUNCH_RETENTION_DEFAULT=1h CRUNCH_RETENTION_INTERVAL_MS=1000 RUST_LOG=warn \
  "$(bin_path crunch-worker)" &
WORKER=$!
trap 'kill $WORKER 2>/dev/null; rm -rf "$BLOBS"' EXIT
until [ "$(psql "$URL" -Atc "SELECT (SELECT count(*) FROM jobs) + (SELECT count(*) FROM gene_files)")" = 0 ]; do sleep 0.5; done
end=$(date +%s.%N)
metrics="$(curl -fs "http://$HEALTH/metrics" | grep '^crunch_worker_retention_removed_total' | sed 's/crunch_worker_retention_removed_total//' | tr '\n' ' ')"
kill $WORKER; wait $WORKER 2>/dev/null || true
after="$(psql "$URL" -Atc "$SIZES")"; after_total="$(psql "$URL" -Atc "$TOTAL")"
psql "$URL" -qc "VACUUM"
vacuumed="$(psql "$URL" -Atc "$TOTAL")"
psql "$URL" -qc "VACUUM FULL"
full="$(psql "$URL" -Atc "$TOTAL")"

printf '\nswept in %.1f s (the first sweep starts 1 s after the worker); removed: %s\n' "$(echo "$end - $start" | bc -l)" "$metrics"
printf '| | tables and indexes | blob directory |\n|---|---|---|\n'
printf '| before | %s (%s) | %s |\n' "$before_total" "$before" "$blobs_before"
printf '| after the sweep | %s (%s) | %s |\n' "$after_total" "$after" "$(du -sh "$BLOBS" | cut -f1)"
printf '| after VACUUM | %s | |\n' "$vacuumed"
printf '| after VACUUM FULL | %s | |\n' "$full"
psql "$PG_ADMIN_URL/postgres" -qc "DROP DATABASE $DB"
