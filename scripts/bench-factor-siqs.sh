#!/usr/bin/env bash
# Large semiprimes against PARI/GP (`factor`, MPQS) and GNU coreutils `factor`,
# same seeded balanced semiprimes in one run, one thread, median per size; then
# a 200-bit semiprime on every core. Factors are compared with PARI's.
#   scripts/bench-factor-siqs.sh [SIZES...]      (default: 100 120 140 160 180 200)
source "$(dirname "$0")/lib.sh"
SIZES=("${@:-100 120 140 160 180 200}")
read -r -a SIZES <<<"${SIZES[*]}"
command -v gp >/dev/null || ensure_apt pari-gp
log "building crunch-factor (release)"
cargo build --release -q -p crunch-compute --bin crunch-factor
OURS="$CARGO_TARGET_DIR/release/crunch-factor"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# N balanced semiprimes per size (fewer for the slow sizes), seeded.
SCRIPTS="$ROOT/scripts" python3 - "$WORK" "${SIZES[@]}" <<'PY'
import os, random, sys
out, sizes = sys.argv[1], [int(s) for s in sys.argv[2:]]
rng = random.Random(8)
sys.path.insert(0, os.environ['SCRIPTS'])
from primegen import prime as _prime
prime = lambda bits: _prime(rng, bits)
for bits in sizes:
    count = 9 if bits <= 160 else (5 if bits <= 180 else 3)
    with open(f"{out}/s{bits}.txt", "w") as f:
        for _ in range(count):
            f.write(f"{prime(bits // 2) * prime(bits - bits // 2)}\n")
PY

printf '\n| bits | numbers | PARI/GP median (ms) | crunch median (ms) | speed-up | GNU factor (ms) | crunch methods |\n|---:|---:|---:|---:|---:|---:|---|\n'
for bits in "${SIZES[@]}"; do
  f="$WORK/s$bits.txt"
  pari_factor_timed "$f" >"$WORK/pari$bits"
  RAYON_NUM_THREADS=1 "$OURS" --time <"$f" >"$WORK/ours$bits"
  diff <(sed 's/ #.*//' "$WORK/pari$bits") <(sed 's/ #.*//' "$WORK/ours$bits") >/dev/null || die "factors differ from PARI's at $bits bits"
  pm=$(sed 's/.* # //' "$WORK/pari$bits" | median)
  cm=$(sed 's/.* # //; s/ ms.*//' "$WORK/ours$bits" | median)
  methods=$(sed 's/.* ms //' "$WORK/ours$bits" | tr ',' '\n' | sort | uniq -c | awk '{printf "%s%s x%s", (NR > 1 ? ", " : ""), $2, $1}')
  gnu="-"
  if [ "$bits" -le 100 ]; then
    n=$(head -1 "$f"); s=$(date +%s.%N); timeout 120 factor "$n" >/dev/null && e=$(date +%s.%N) && gnu=$(echo "($e - $s) * 1000" | bc -l | xargs printf '%.0f')
  fi
  printf '| %s | %s | %.1f | %.1f | %.2fx | %s | %s |\n' "$bits" "$(wc -l <"$f")" "$pm" "$cm" "$(echo "$pm / $cm" | bc -l)" "$gnu" "$methods"
done
if [ -f "$WORK/s200.txt" ]; then
  n=$(head -1 "$WORK/s200.txt")
  RAYON_NUM_THREADS="$(nproc)" "$OURS" --time "$n" >"$WORK/ours200all"
  printf '\n200 bits on %s cores: %s ms (%s)\n' "$(nproc)" "$(sed 's/.* # //; s/ ms.*//' "$WORK/ours200all")" "$n"
fi
printf '\n(one thread unless stated; PARI/GP %s; %s)\n' "$(pari_version)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
