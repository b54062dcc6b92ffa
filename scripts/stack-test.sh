#!/usr/bin/env bash
# Builds the Crunch image with deploy/Dockerfile, deploys docker-stack.yml with
# scripts/deploy.sh on a one-node swarm, and checks the running stack from
# outside: every job kind end to end, Adminer, no secret in any environment,
# then faults (killed worker and persister, a PostgreSQL restart, scaling),
# and that undeploy.sh leaves nothing behind.
#
# Works on a machine without a Docker engine: it installs Debian's docker.io,
# starts dockerd with a data root of its own, and builds stand-ins for the
# Docker Hub images the stack names (Docker Hub is out of reach on the test
# machines) from Debian packages, tagged as the official images so that the
# stack and the Dockerfile run unchanged. deploy/test/stack-test.override.yml
# adds only what a kernel without IPVS needs (docs/deploy.md, "Stack test").
#   scripts/stack-test.sh            # smoke and faults
#   scripts/stack-test.sh --keep     # leave the stack running afterwards
source "$(dirname "$0")/lib.sh"
source "$ROOT/scripts/stack-lib.sh"

KEEP=0
for arg in "$@"; do
  case "$arg" in
    --keep) KEEP=1 ;;
    *) die "unknown option $arg" ;;
  esac
done
export CRUNCH_STACK="${CRUNCH_STACK_TEST_NAME:-crunchtest}"
export CRUNCH_PUBLIC_PORT="${CRUNCH_STACK_TEST_PORT:-18080}"
export CRUNCH_STACK_OVERRIDES="deploy/test/stack-test.override.yml"
export CRUNCH_WORKER_REPLICAS=1
export API_KEY_FILE="$ROOT/.deploy/admin-api-key"
TIMES="$DEV_DIR/logs/stack-test-times.txt"
: >"$TIMES"
t0=$(date +%s)
lap() { # what: seconds since the last lap, into $TIMES and the log
  local now; now=$(date +%s)
  printf '%-44s %5d s\n' "$1" "$((now - ${LAST_LAP:-$t0}))" | tee -a "$TIMES" >&2
  LAST_LAP=$now
}

ensure_build_deps
ensure_docker_engine
ensure_swarm
lap "docker engine and swarm"

ensure_base_image
RUST_IMAGE="$(dockerfile_arg RUST_IMAGE)"
RUST_VERSION="$(sed 's/^rust:\([0-9.]*\).*/\1/' <<<"$RUST_IMAGE")"
stage_kafka() { cp "$(tansu_bin)" "$1/tansu"; }
stage_minio() { cp "$(s3s_bin)" "$1/s3s-fs"; }
standin rust "$RUST_IMAGE" stage_rust
standin debian "$(dockerfile_arg RUNTIME_IMAGE)"
# The stack's other images, by the tags docker-stack.yml pins.
stack_image() { sed -n "s|^    image: \\($1:.*\\)|\\1|p" "$ROOT/docker-stack.yml" | head -1; }
standin postgres "$(stack_image postgres)"
standin rabbitmq "$(stack_image rabbitmq)"
standin kafka "$(stack_image apache/kafka)" stage_kafka "$TANSU_PACKAGE"
standin minio "$(stack_image minio/minio)" stage_minio "$S3S_VERSION"
standin adminer "$(stack_image adminer)"
standin fixtures crunch-standin/fixtures:1
lap "stand-in images"

log "building the Crunch image (deploy/Dockerfile)"
"$ROOT/scripts/build-images.sh" >"$DEV_DIR/logs/stack-build.log" 2>&1 || { tail -40 "$DEV_DIR/logs/stack-build.log" >&2; die "the image did not build"; }
lap "Crunch image build (deploy/Dockerfile)"

# The image run as a new user would: a bad setting ends each service at
# once, non-zero, with the reason logged; with only the defaults the gateway
# starts as its unprivileged user and waits for its database.
IMAGE="${CRUNCH_IMAGE:-crunch}:$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
for case in "crunch-gateway CRUNCH_HTTP_ADDR=not-an-address" "crunch-worker CRUNCH_SSRF_ALLOWLIST=not-a-cidr" \
            "crunch-persister CRUNCH_PERSISTER_HEALTH_ADDR=not-an-address"; do
  set -- $case
  started=$(date +%s)
  out="$(timeout 30 docker run --rm --network none -e "$2" "$IMAGE" "$1" 2>&1)" && rc=0 || rc=$?
  { [ "$rc" != 0 ] && [ "$rc" != 124 ] && grep -q '"level":"ERROR"' <<<"$out"; } \
    || die "$1 with $2: exit $rc after $(( $(date +%s) - started )) s, output: $out"
done
cid="$(docker run -d --network none "$IMAGE" crunch-gateway)"
sleep 5
running="$(docker inspect --format '{{.State.Running}}' "$cid")"
logs="$(docker logs "$cid" 2>&1)"
docker rm -f "$cid" >/dev/null
[ "$running" = true ] && ! grep -q "Permission denied" <<<"$logs" && grep -q "migrations not applied yet" <<<"$logs" \
  || die "the gateway with default settings: running=$running, logs: $logs"
echo "ok   the image: bad settings end each service at once with the reason logged; defaults start and wait for the database" >&2
lap "image checks"

log "removing an earlier test stack, its volumes and secrets"
"$ROOT/scripts/undeploy.sh" --volumes --secrets >/dev/null
lap "clean slate"

dangling_before="$(docker volume ls -q --filter dangling=true | sort)"
SKIP_BUILD=1 "$ROOT/scripts/deploy.sh"
lap "deploy.sh until every service is healthy"

cleanup() {
  local status=$?
  if [ "$status" != 0 ]; then
    log "the stack test failed; the last log lines of each service:"
    for s in $(docker stack services "$CRUNCH_STACK" --format '{{.Name}}' 2>/dev/null); do
      echo "--- $s" >&2
      docker service logs --tail 15 --no-task-ids "$s" 2>&1 | cut -c1-400 >&2 || true
    done
    docker stack ps "$CRUNCH_STACK" --no-trunc --format '{{.Name}} {{.CurrentState}} {{.Error}}' 2>/dev/null | head -30 >&2 || true
  fi
  if [ "$KEEP" = 0 ]; then "$ROOT/scripts/undeploy.sh" --volumes --secrets >/dev/null 2>&1 || true; fi
  exit "$status"
}
trap cleanup EXIT

python3 "$ROOT/scripts/stack_checks.py" smoke
lap "smoke checks"
python3 "$ROOT/scripts/stack_checks.py" faults
lap "fault checks"

if [ "$KEEP" = 0 ]; then
  "$ROOT/scripts/undeploy.sh" --volumes --secrets
  left() {
    for what in service volume network; do
      docker "$what" ls --format "$what {{.Name}}" --filter "label=com.docker.stack.namespace=$CRUNCH_STACK"
    done
    docker secret ls --format 'secret {{.Name}}' --filter name=crunch_
  }
  [ -z "$(left)" ] || die "undeploy.sh --volumes --secrets left something behind: $(left | tr '\n' ' ')"
  # Anonymous volumes of the stack's containers carry no stack label.
  new_dangling="$(comm -13 <(echo "$dangling_before") <(docker volume ls -q --filter dangling=true | sort))"
  [ -z "$new_dangling" ] || die "anonymous volumes left behind: $new_dangling"
  echo "ok   undeploy.sh --volumes --secrets leaves no service, volume, secret or network" >&2
  lap "undeploy"
fi
trap - EXIT
printf '%-44s %5d s\n' "stack test in all" "$(( $(date +%s) - t0 ))" | tee -a "$TIMES" >&2
log "stack test passed (times in $TIMES)"
