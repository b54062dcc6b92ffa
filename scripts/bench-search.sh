#!/usr/bin/env bash
# Hotel search at scale: N hotels (default 1,000,000) with names and
# descriptions made of common and rare words, in a scratch database migrated
# as the services migrate theirs; then the statements of a hotel search (the
# count, the first page by name and by rating) for queries from very common
# to matching nothing, each timed with the search indexes (trigram, and the
# two orders) and again without them (dropped in the same run). Best of RUNS (default 3), milliseconds, as
# PostgreSQL's EXPLAIN ANALYZE reports the execution.
#   scripts/bench-search.sh
#   N=200000 scripts/bench-search.sh
source "$(dirname "$0")/lib.sh"
ensure_postgres
DB=crunch_bench_search
N="${N:-1000000}"
psql "$PG_ADMIN_URL/postgres" -qc "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
URL="$PG_ADMIN_URL/$DB"
cargo build -q -p crunch-gateway
DATABASE_URL="$URL" "$(bin_path crunch-gateway)" migrate >/dev/null

log "writing $N hotels"
fill_start=$(date +%s.%N)
psql "$URL" -q -v ON_ERROR_STOP=1 -v n="$N" <<'SQL'
\o /dev/null
SELECT setseed(0.42);
\o
-- 60 common words and 20,000 rare ones (r00000 .. r19999): a description is
-- 24 common words and 2 rare ones, a name two common words and a rare one.
CREATE TEMP TABLE vocab AS SELECT string_to_array(
  'grand royal palace river garden plaza central harbor sunset park view inn suites lodge boutique historic modern quiet '
  'spacious breakfast pool spa terrace rooftop beach mountain old town station airport family friendly walk minutes '
  'museum square market cathedral bridge lake forest stylish elegant cosy bright renovated parking wifi fitness '
  'restaurant bar lounge balcony kitchen laundry shuttle reception gallery courtyard vintage', ' ') AS c;
INSERT INTO hotels (source, source_id, city_id, name, description, rating, reviews, rank)
SELECT 'bench', g::text, 1 + g % 80,
       initcap(c[1 + (g * 7) % 60]) || ' ' || initcap(c[1 + (g * 13 + 5) % 60]) || ' R' || lpad(((g * 7919) % 20000)::text, 5, '0'),
       (SELECT string_agg(CASE WHEN k IN (5, 17) THEN 'r' || lpad(((g * 31 + k * 104729) % 20000)::text, 5, '0')
                               ELSE c[1 + floor(random() * 60)::int] END, ' ')
          FROM generate_series(1, 26 + g * 0) AS k),
       round((random() * 4 + 1)::numeric, 1), (random() * 5000)::int, g
FROM generate_series(1::bigint, :n) AS g, vocab;
ANALYZE hotels;
SQL
fill_end=$(date +%s.%N)
log "written in $(printf '%.1f' "$(echo "$fill_end - $fill_start" | bc -l)") s"

# ms of the statement's execution, best of RUNS.
ms() {
  local best="" t i
  for ((i = 0; i < ${RUNS:-3}; i++)); do
    t=$(psql "$URL" -Atc "EXPLAIN (ANALYZE, TIMING OFF) $1" | sed -n 's/^Execution Time: \([0-9.]*\) ms$/\1/p')
    if [ -z "$best" ] || (( $(echo "$t < $best" | bc -l) )); then best=$t; fi
  done
  printf '%.1f' "$best"
}
# The statements of GET /api/v1/hotels?q=... (crates/store/src/hotels.rs):
# the count (exact up to 10,000) and the first page by name and by rating.
cond() { printf "(name ILIKE '%%%s%%' OR description ILIKE '%%%s%%')" "$1" "$1"; }
count_sql() { echo "SELECT count(*) FROM (SELECT id FROM hotels WHERE $(cond "$1") LIMIT 10001) s"; }
# With at most 10,000 matches the page is ordered by an expression no index
# holds (matches found first, then sorted), as the store does.
few() { [ "${matches[$1]}" -le 10000 ]; }
name_sql() { local o="name, id"; few "$1" && o="name || '', id"; echo "SELECT * FROM hotels WHERE $(cond "$1") ORDER BY $o LIMIT 20"; }
rating_sql() { local o="rating DESC NULLS LAST, id"; few "$1" && o="rating + 0 DESC NULLS LAST, id"; echo "SELECT * FROM hotels WHERE $(cond "$1") ORDER BY $o LIMIT 20"; }
STATEMENTS=(count_sql name_sql rating_sql)

QUERIES=(breakfast rooftop "spa terrace" r01234 R07777 ab qqxqq)
declare -A matches indexed
for q in "${QUERIES[@]}"; do matches[$q]=$(psql "$URL" -Atc "SELECT count(*) FROM hotels WHERE $(cond "$q")"); done
for q in "${QUERIES[@]}"; do
  for st in "${STATEMENTS[@]}"; do indexed[$q/$st]=$(ms "$($st "$q")"); done
done
size=$(psql "$URL" -Atc "SELECT pg_size_pretty(sum(pg_relation_size(i))) FROM unnest(ARRAY['hotels_name_trgm', 'hotels_description_trgm', 'hotels_by_name', 'hotels_by_rating']::regclass[]) i")
table=$(psql "$URL" -Atc "SELECT pg_size_pretty(pg_relation_size('hotels'))")
psql "$URL" -qc "DROP INDEX hotels_name_trgm, hotels_description_trgm, hotels_by_name, hotels_by_rating"

printf '\n%s hotels (table %s, the search indexes %s); ms, best of %s; indexed / without the indexes\n\n' "$N" "$table" "$size" "${RUNS:-3}"
printf '| q | matches | count (exact to 10,000) | first page by name | first page by rating |\n|---|---:|---:|---:|---:|\n'
for q in "${QUERIES[@]}"; do
  row="| \`$q\` | ${matches[$q]}"
  for st in "${STATEMENTS[@]}"; do row="$row | ${indexed[$q/$st]} / $(ms "$($st "$q")")"; done
  echo "$row |"
done
psql "$PG_ADMIN_URL/postgres" -qc "DROP DATABASE $DB"
