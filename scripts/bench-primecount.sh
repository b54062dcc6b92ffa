#!/usr/bin/env bash
# pi(x) against primecount (Debian package), same machine, one run:
# pi(10^12), pi(10^14), pi(10^16) on 1 and 2 threads, seconds and peak RSS,
# answers compared. --long adds 10^18; --max adds 2^64 - 1 (2 threads).
#   scripts/bench-primecount.sh [--long] [--max]
source "$(dirname "$0")/lib.sh"
RUNS="${RUNS:-3}"
POINTS="1e12 1e14 1e16"
for a in "$@"; do
  case "$a" in
    --long) POINTS="$POINTS 1e18" ;;
    --max) MAX=1 ;;
    *) die "usage: scripts/bench-primecount.sh [--long] [--max]" ;;
  esac
done
command -v primecount >/dev/null || ensure_apt primecount
command -v bc >/dev/null || ensure_apt bc
log "building crunch-primes (release)"
cargo build --release -q -p crunch-compute --bin crunch-primes
OURS="$CARGO_TARGET_DIR/release/crunch-primes"

# run: prints "answer seconds peak-KiB" of the best of RUNS runs (one run above 10^16).
run() {
  local runs=$RUNS best="" line
  case "$1" in 1e18 | 18446744073709551615) runs=1 ;; esac
  shift
  local s e rss
  for ((i = 0; i < runs; i++)); do
    s=$(date +%s.%N)
    rss=$( { /usr/bin/time -f 'T %M' "$@" >"$WORK/out"; } 2>&1 | grep '^T ')
    e=$(date +%s.%N)
    line="$(tail -1 "$WORK/out") $(echo "$e - $s" | bc -l) ${rss#T }"
    if [ -z "$best" ] || (($(echo "$(echo "$line" | cut -d' ' -f2) < $(echo "$best" | cut -d' ' -f2)" | bc -l))); then best=$line; fi
  done
  echo "$best"
}
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

printf '\n| x | threads | pi(x) | primecount (s) | crunch (s) | crunch / primecount | primecount peak RSS (MiB) | crunch peak RSS (MiB) |\n|---|---:|---:|---:|---:|---:|---:|---:|\n'
point() { # x threads
  local pc ours
  pc=$(run "$1" primecount "$1" -t"$2")
  ours=$(run "$1" "$OURS" pi "$1" "$2")
  set -- "$1" "$2" $pc $ours
  [ "$3" = "$6" ] || die "pi($1): primecount says $3, crunch $6"
  printf '| %s | %s | %s | %.3f | %.3f | %.2fx | %.0f | %.0f |\n' "$1" "$2" "$3" "$4" "$7" "$(echo "$7 / $4" | bc -l)" "$(echo "$5 / 1024" | bc -l)" "$(echo "$8 / 1024" | bc -l)"
}
for x in $POINTS; do
  for t in 1 2; do point "$x" "$t"; done
done
[ -n "${MAX:-}" ] && point 18446744073709551615 2
printf '\n(primecount %s; %s)\n' "$(primecount --version | head -1 | awk '{print $2}' | tr -d ,)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
