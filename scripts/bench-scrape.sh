#!/usr/bin/env bash
# Scrape speed: 10 list pages + 300 detail pages of a generated hotel site
# (every response delayed 100 ms), through the worker's scrape kernel (SSRF
# guard, robots.txt, parsing on rayon, upserts into PostgreSQL).
#   scripts/bench-scrape.sh [CONCURRENCY...]     (default: 8 32)
source "$(dirname "$0")/lib.sh"
ensure_postgres
log "building release binaries"
cargo build --release -q -p crunch-e2e --bin crunch-bench-scrape
printf '\n| concurrency | hotels | detail pages parsed | seconds |\n|---:|---:|---:|---:|\n'
"$CARGO_TARGET_DIR/release/crunch-bench-scrape" "$@"
