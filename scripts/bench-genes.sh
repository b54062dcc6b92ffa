#!/usr/bin/env bash
# Gene-file speed and memory, on the same generated FASTA in one run:
#  1. parse + validate (IUPAC) + per-sequence length and GC on one thread:
#     `crunch-genes stats FILE fasta 1` against seqkit 1 thread (`seqkit stats`,
#     which only counts lengths, and `seqkit fx2tab -n -l -g`, length and GC);
#  2. the raw ceiling: the file's rows written by plain COPY (FORMAT binary)
#     from 1 and from WRITERS connections into a primary-key-only table;
#  3. upload to all stored: a release gateway and worker, the file streamed to
#     PUT /api/v1/gene-files/{id}/content, until every sequence is in
#     PostgreSQL; the worker's peak RSS; the result downloaded, plain and gzip;
#  4. with KILLS > 0: the same ingest with the worker SIGKILLed KILLS times,
#     its stored set checked against step 3's (count and checksum);
#  5. the same for 10 million tiny records (>r<i>\nACGT\n), unless TINY=0.
#   scripts/bench-genes.sh [MIB]      (default 1024: a 1 GiB FASTA)
#   environment: WRITERS (default 2), KILLS (default 10), TINY (default 10000000)
source "$(dirname "$0")/lib.sh"
MIB="${1:-1024}"
WRITERS="${WRITERS:-2}"
KILLS="${KILLS:-10}"
TINY="${TINY:-10000000}"
ensure_apt seqkit
ensure_postgres
ensure_rabbitmq
log "building release binaries"
cargo build --release -q -p crunch-compute --bin crunch-genes
cargo build --release -q -p crunch-worker -p crunch-e2e --bin crunch-worker --bin crunch-bench-genes
BIN="$CARGO_TARGET_DIR/release"
mkdir -p "$DEV_DIR/bench"
FILE="$DEV_DIR/bench/genes-${MIB}m.fasta"
[ -s "$FILE" ] || { log "generating $FILE"; "$BIN/crunch-genes" generate "$FILE" "$MIB" 7; }
SIZE=$(stat -c %s "$FILE")
cat "$FILE" >/dev/null   # page cache

T_SEQKIT=$(best seqkit stats -j 1 "$FILE")
T_FX2TAB=$(best seqkit fx2tab -j 1 -n -l -g "$FILE")
T_CRUNCH=$(best "$BIN/crunch-genes" stats "$FILE" fasta 1)
"$BIN/crunch-genes" stats "$FILE" fasta 1
rate() { awk -v s="$SIZE" -v t="$1" 'BEGIN { printf "%.2f GB/s", s / t / 1e9 }'; }
printf '\n| %s FASTA, 1 thread | seconds | throughput |\n|---|---:|---:|\n' "$(awk -v s="$SIZE" 'BEGIN{printf "%.2f GB", s/1e9}')"
printf '| seqkit stats -j 1 (lengths only) | %s | %s |\n' "$T_SEQKIT" "$(rate "$T_SEQKIT")"
printf '| seqkit fx2tab -j 1 -n -l -g (length, GC) | %s | %s |\n' "$T_FX2TAB" "$(rate "$T_FX2TAB")"
printf '| crunch-genes stats (parse, IUPAC check, length, GC) | %s | %s |\n' "$T_CRUNCH" "$(rate "$T_CRUNCH")"
awk -v a="$T_SEQKIT" -v b="$T_CRUNCH" -v c="$T_FX2TAB" 'BEGIN { printf "\nspeed-up: %.2fx seqkit stats, %.2fx seqkit fx2tab\n", a / b, c / b }'

log "raw COPY ceiling, then upload to all stored (release gateway + one worker, local blob storage), download, $KILLS kills"
echo
"$BIN/crunch-bench-genes" "$FILE" "$WRITERS" --kills "$KILLS"
if [ "$TINY" -gt 0 ]; then
  TINY_FILE="$DEV_DIR/bench/tiny-$TINY.fasta"
  [ -s "$TINY_FILE" ] || { log "generating $TINY_FILE"; python3 -c "
import sys
with open(sys.argv[1], 'w') as f:
    for i in range(int(sys.argv[2])):
        f.write(f'>r{i}\nACGT\n')" "$TINY_FILE" "$TINY"; }
  log "$TINY tiny records: raw COPY ceiling, then upload to all stored"
  echo
  "$BIN/crunch-bench-genes" "$TINY_FILE" "$WRITERS"
fi
