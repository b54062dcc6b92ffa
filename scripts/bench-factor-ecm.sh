#!/usr/bin/env bash
# ECM on big numbers against PARI/GP and GMP-ECM, in one run:
#  1. 100-digit numbers with a 20-digit factor (10 seeded): PARI/GP `factor`
#     (one thread, timed inside gp) against crunch on one thread and on every
#     core; factors compared with PARI's; medians.
#  2. Milliseconds per curve at B1 = 11,000 / 50,000 / 250,000 on 100-, 200-
#     and 300-digit composites without small factors, one thread, against
#     GMP-ECM's `ecm -c K B1 B2` with our B2 (100 B1): median per curve;
#     crunch both with eight curves side by side (where the CPU has AVX-512
#     IFMA) and one at a time (CRUNCH_ECM_LANES=0).
#  3. 200-digit numbers with a 25-digit factor (10 seeded): how many crunch
#     factors completely within the default 60 s budget on every core, and
#     how many GMP-ECM finds a factor of within 60 s (its recommended levels,
#     one process per core).
#  4. With --long: a 300-digit number with a 30-digit factor, budget 600 s.
#   scripts/bench-factor-ecm.sh [--long]
source "$(dirname "$0")/lib.sh"
LONG=0
[ "${1:-}" = "--long" ] && LONG=1
command -v gp >/dev/null || ensure_apt pari-gp
command -v ecm >/dev/null || ensure_apt gmp-ecm
log "building crunch-factor (release)"
cargo build --release -q -p crunch-compute --bin crunch-factor
OURS="$CARGO_TARGET_DIR/release/crunch-factor"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

SCRIPTS="$ROOT/scripts" python3 - "$WORK" <<'PY'
import os, random, sys
out = sys.argv[1]
sys.path.insert(0, os.environ['SCRIPTS'])
from primegen import is_prime, prime
rng = random.Random(23)
def digits(d):
    while True:
        p = rng.randrange(10 ** (d - 1), 10 ** d) | 1
        if is_prime(p):
            return p
with open(f"{out}/p20c100.txt", "w") as f:
    for _ in range(10):
        f.write(f"{digits(20) * digits(80)}\n")
with open(f"{out}/p25c200.txt", "w") as f:
    for _ in range(10):
        f.write(f"{digits(25) * digits(175)}\n")
with open(f"{out}/p30c300.txt", "w") as f:
    f.write(f"{digits(30) * digits(270)}\n")
for d in (100, 200, 300):
    with open(f"{out}/c{d}.txt", "w") as f:
        f.write(f"{digits(d // 2) * digits(d - d // 2)}\n")
PY

ms_of() { sed 's/.* # //; s/ ms.*//'; }
factors_of() { sed 's/ #.*//'; }

log "1. 100-digit numbers with a 20-digit factor"
pari_factor_timed "$WORK/p20c100.txt" >"$WORK/pari"
RAYON_NUM_THREADS=1 "$OURS" --time <"$WORK/p20c100.txt" >"$WORK/ours1"
"$OURS" --time <"$WORK/p20c100.txt" >"$WORK/oursN"
for f in ours1 oursN; do
  diff <(factors_of <"$WORK/pari") <(factors_of <"$WORK/$f") >/dev/null || die "factors differ from PARI's ($f)"
done
pm=$(ms_of <"$WORK/pari" | median); o1=$(ms_of <"$WORK/ours1" | median); oN=$(ms_of <"$WORK/oursN" | median)
printf '\n| set | PARI/GP median (ms) | crunch, 1 thread (ms) | speed-up | crunch, %s threads (ms) | speed-up |\n|---|---:|---:|---:|---:|---:|\n' "$(nproc)"
printf '| p20 x p80, 10 numbers | %.0f | %.0f | %.2fx | %.0f | %.2fx |\n' "$pm" "$o1" "$(echo "$pm / $o1" | bc -l)" "$oN" "$(echo "$pm / $oN" | bc -l)"
printf '\nper number (PARI / 1 thread / %s threads, ms):' "$(nproc)"
paste -d' ' <(ms_of <"$WORK/pari") <(ms_of <"$WORK/ours1") <(ms_of <"$WORK/oursN") | awk '{printf " %.0f/%.0f/%.0f", $1, $2, $3}'
echo

log "2. milliseconds per curve, one thread"
# crunch runs eight curves side by side where the CPU has AVX-512 IFMA (its
# time per curve is a batch's over eight) and one at a time elsewhere, which
# CRUNCH_ECM_LANES=0 forces: both are timed.
printf '\n| digits | B1 | B2 | GMP-ECM (ms/curve) | crunch (ms/curve) | ratio | crunch, one at a time (ms/curve) | ratio |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for d in 100 200 300; do
  n=$(cat "$WORK/c$d.txt")
  for b1 in 11000 50000 250000; do
    case $b1 in 11000) k=5 ;; 50000) k=3 ;; *) k=1 ;; esac
    b2=$((b1 * 100))
    # GMP-ECM prints "Step 1 took Xms" and "Step 2 took Yms" per curve.
    em=$(echo "$n" | ecm -c "$k" "$b1" "$b2" 2>&1 | awk '/Step 1 took/ {s = $4} /Step 2 took/ {sub("ms", "", s); t = $4; sub("ms", "", t); print s + t}' | median)
    cm=$(RAYON_NUM_THREADS=1 "$OURS" --ecm-curve "$b1" "$((k < 8 ? 8 : k))" "$n" | awk '{print $1}')
    c1=$(CRUNCH_ECM_LANES=0 RAYON_NUM_THREADS=1 "$OURS" --ecm-curve "$b1" "$k" "$n" | awk '{print $1}')
    printf '| %s | %s | %s | %.0f | %.1f | %.2fx | %.0f | %.2fx |\n' "$d" "$b1" "$b2" "$em" "$cm" "$(echo "$cm / $em" | bc -l)" "$c1" "$(echo "$c1 / $em" | bc -l)"
  done
done

check_complete() { # file: every line complete, product and primality checked by gp
  local ok=0
  while read -r line; do
    case "$line" in *stopped*) continue ;; esac
    n=${line%%:*}; fs=$(echo "$line" | sed 's/^[0-9]*://; s/ #.*//' | xargs | tr ' ' '*')
    # isprime proves primality (APRCL): a 270-digit prime needs a big stack.
    r=$(echo "print(($fs) == $n && vecprod(apply(isprime, [${fs//\*/,}])))" | gp -q -f --default parisize=400000000 2>/dev/null)
    [ "$r" = "1" ] || die "wrong factorization: $line"
    ok=$((ok + 1))
  done <"$1"
  echo "$ok"
}

log "3. 200-digit numbers with a 25-digit factor, 60 s budget, every core"
"$OURS" --time --budget 60 <"$WORK/p25c200.txt" >"$WORK/p25"
done25=$(check_complete "$WORK/p25")
printf '\n200 digits with a 25-digit factor: %s of 10 factored within 60 s on %s cores; seconds:' "$done25" "$(nproc)"
ms_of <"$WORK/p25" | awk '{printf " %.1f", $1 / 1000}'
echo

log "3b. the same numbers with GMP-ECM, 60 s, one process per core"
# GMP-ECM as its README has a person run it: per factor size its B1 and
# curve count (p15 2,000 x 25, p20 11,000 x 90, p25 50,000 x 300, p30 250,000
# x 700) with its default B2, each process taking its share of the curves;
# the first process to find a factor ends the number.
gmp_ecm_levels() { # on $N, this process's share of $SHARE
  local lv
  for lv in "2000 25" "11000 90" "50000 300" "250000 700"; do
    set -- $lv
    echo "$N" | ecm -q -one -c "$(( ($2 + SHARE - 1) / SHARE ))" "$1" >/dev/null 2>&1
    # Exit status: bit 1 set when a factor was found, 8 when the input was.
    local rc=$?
    if [ $((rc & 2)) -ne 0 ] || [ "$rc" = 8 ]; then return 0; fi
  done
  return 1
}
gmp_found=0
gmp_secs=""
while read -r N; do
  export N SHARE="$(nproc)"
  t0=$(date +%s%N)
  set +e
  timeout 60 bash -c "$(declare -f gmp_ecm_levels)"'
    for _ in $(seq "$SHARE"); do gmp_ecm_levels & done
    while true; do
      wait -n; rc=$?
      # The others stop (timeout signals the whole group, the others are
      # stopped here and their ecm below).
      if [ "$rc" = 0 ]; then kill $(jobs -p) 2>/dev/null; exit 0; fi
      [ "$rc" = 127 ] && exit 1  # every process ended without a factor
    done' </dev/null
  rc=$?
  set -e
  pkill -x ecm 2>/dev/null || true
  secs=$(echo "($(date +%s%N) - $t0) / 1000000000" | bc -l)
  if [ "$rc" = 0 ]; then gmp_found=$((gmp_found + 1)); gmp_secs+=$(printf ' %.1f' "$secs"); else gmp_secs+=" stopped"; fi
done <"$WORK/p25c200.txt"
printf '\nGMP-ECM on the same numbers: %s of 10 within 60 s on %s processes; seconds:%s\n' "$gmp_found" "$(nproc)" "$gmp_secs"

if [ "$LONG" = 1 ]; then
  log "4. a 300-digit number with a 30-digit factor, 600 s budget"
  "$OURS" --time --budget 600 <"$WORK/p30c300.txt" >"$WORK/p30"
  printf '\n300 digits with a 30-digit factor: %s in %.1f s\n' "$(if [ "$(check_complete "$WORK/p30")" = 1 ]; then echo factored; else echo "not factored"; fi)" "$(ms_of <"$WORK/p30" | awk '{print $1 / 1000}')"
fi
printf '\n(PARI/GP %s; GMP-ECM %s; %s)\n' "$(pari_version)" "$(echo 1 | ecm -c 1 10 2>&1 | head -1 | awk '{print $2}')" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
