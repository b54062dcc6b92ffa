#!/usr/bin/env bash
# Factorization speed against GNU coreutils `factor`, one thread, same inputs,
# one run: 100,000 random 64-bit integers and 10,000 semiprimes of two 32-bit
# primes (seeded, so every run sees the same numbers). Both outputs are
# compared line by line; the best of RUNS timings of each tool is reported.
#   scripts/bench-factor.sh            # RUNS=3 by default
source "$(dirname "$0")/lib.sh"
RUNS="${RUNS:-3}"
command -v factor >/dev/null || ensure_apt coreutils
command -v bc >/dev/null || ensure_apt bc
log "building crunch-factor (release)"
cargo build --release -q -p crunch-compute --bin crunch-factor
OURS="$CARGO_TARGET_DIR/release/crunch-factor"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

SCRIPTS="$ROOT/scripts" python3 - "$WORK" <<'PY'
import os, random, sys
out = sys.argv[1]
rng = random.Random(20261125)
sys.path.insert(0, os.environ['SCRIPTS'])
from primegen import prime as _prime
prime = lambda bits: _prime(rng, bits)
with open(f"{out}/random64.txt", "w") as f:
    f.write("".join(f"{rng.getrandbits(64)}\n" for _ in range(100_000)))
with open(f"{out}/semiprimes32x32.txt", "w") as f:
    f.write("".join(f"{prime(32) * prime(32)}\n" for _ in range(10_000)))
PY

best() { # command input output -> best seconds over RUNS
  local b="" t s e i
  for ((i = 0; i < RUNS; i++)); do
    s=$(date +%s.%N); "$1" <"$2" >"$3"; e=$(date +%s.%N)
    t=$(echo "$e - $s" | bc -l)
    if [ -z "$b" ] || (( $(echo "$t < $b" | bc -l) )); then b=$t; fi
  done
  printf '%.3f' "$b"
}

printf '\n| input | GNU factor (s) | crunch (s) | speed-up |\n|---|---:|---:|---:|\n'
for set in random64 semiprimes32x32; do
  g=$(best factor "$WORK/$set.txt" "$WORK/$set.gnu")
  c=$(best "$OURS" "$WORK/$set.txt" "$WORK/$set.ours")
  cmp -s "$WORK/$set.gnu" "$WORK/$set.ours" || die "outputs differ on $set"
  printf '| %s (%d numbers) | %s | %s | %.1fx |\n' "$set" "$(wc -l <"$WORK/$set.txt")" "$g" "$c" "$(echo "$g / $c" | bc -l)"
done
printf '\n(outputs identical; best of %d runs each; %s)\n' "$RUNS" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
