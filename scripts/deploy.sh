#!/usr/bin/env bash
# Deploys Crunch as a Docker Swarm stack on this host:
# initialises a single-node swarm if needed, labels this node for the stateful
# services, creates missing secrets with random values, builds the image,
# deploys docker-stack.yml, waits until every service is healthy and prints the
# URLs. Running it again updates the stack (rolling, start-first gateway).
#   scripts/deploy.sh                  # stack name: ${CRUNCH_STACK:-crunch}
# CRUNCH_STACK_OVERRIDES names compose files merged over docker-stack.yml
# (scripts/stack-test.sh uses deploy/test/stack-test.override.yml).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
if [ -f .env ]; then set -a; . ./.env; set +a; fi
STACK="${CRUNCH_STACK:-crunch}"
export CRUNCH_VERSION="${CRUNCH_VERSION:-$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)}"
SECRETS_DIR="$ROOT/.deploy"   # the generated admin API key is kept here (mode 600)
log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

command -v docker >/dev/null || die "docker is not installed (https://docs.docker.com/engine/install/)"
docker info >/dev/null 2>&1 || die "the Docker engine is not running"

if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" != "active" ]; then
  log "initialising a single-node swarm"
  docker swarm init ${SWARM_ADVERTISE_ADDR:+--advertise-addr "$SWARM_ADVERTISE_ADDR"} >/dev/null
fi
NODE="$(docker info --format '{{.Swarm.NodeID}}')"
docker node update --label-add crunch.db=true "$NODE" >/dev/null

rand() { openssl rand -hex "${1:-24}" 2>/dev/null || head -c "${1:-24}" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
has_secret() { docker secret inspect "$1" >/dev/null 2>&1; }
put_secret() { # name value
  printf '%s' "$2" | docker secret create "$1" - >/dev/null
  log "created secret $1"
}

has_volume() { docker volume inspect "${STACK}_$1" >/dev/null 2>&1; }
# A password lives twice: in its secret and in the data volume the server
# initialised with it. A new password would not open an old volume.
for pair in crunch_postgres_password:pgdata crunch_rabbitmq_conf:rabbitmq; do
  if ! has_secret "${pair%%:*}" && has_volume "${pair##*:}"; then
    die "secret ${pair%%:*} is missing but volume ${STACK}_${pair##*:} holds data initialised with the old one: restore the secret, or remove the data with scripts/undeploy.sh --volumes --secrets"
  fi
done
if [ "${CRUNCH_BLOB_PRESIGN:-false}" = true ] && [ -z "${S3_PUBLIC_ENDPOINT:-}" ]; then
  die "CRUNCH_BLOB_PRESIGN=true needs S3_PUBLIC_ENDPOINT, the S3 address clients reach (docs/deploy.md)"
fi

mkdir -p "$SECRETS_DIR" && chmod 700 "$SECRETS_DIR"
# The KRaft cluster id is written into the kafka volume at its first start:
# made once (as `kafka-storage random-uuid` makes it) and kept.
if [ -z "${KAFKA_CLUSTER_ID:-}" ]; then
  if [ ! -s "$SECRETS_DIR/kafka-cluster-id" ]; then
    head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >"$SECRETS_DIR/kafka-cluster-id"
  fi
  KAFKA_CLUSTER_ID="$(cat "$SECRETS_DIR/kafka-cluster-id")"
fi
export KAFKA_CLUSTER_ID
if ! has_secret crunch_postgres_password; then
  PG_PASS="$(rand 24)"
  put_secret crunch_postgres_password "$PG_PASS"
  has_secret crunch_database_url && docker secret rm crunch_database_url >/dev/null
  put_secret crunch_database_url "postgres://crunch:$PG_PASS@postgres:5432/crunch"
fi
if ! has_secret crunch_rabbitmq_conf; then
  MQ_PASS="$(rand 24)"
  put_secret crunch_rabbitmq_conf "$(printf 'default_user = crunch\ndefault_pass = %s\n' "$MQ_PASS")"
  has_secret crunch_amqp_url && docker secret rm crunch_amqp_url >/dev/null
  put_secret crunch_amqp_url "amqp://crunch:$MQ_PASS@rabbitmq:5672/%2f"
fi
has_secret crunch_minio_root_user || put_secret crunch_minio_root_user "crunch-$(rand 4)"
has_secret crunch_minio_root_password || put_secret crunch_minio_root_password "$(rand 24)"
if ! has_secret crunch_admin_api_key; then
  KEY="crk_$(rand 32)"
  put_secret crunch_admin_api_key "$KEY"
  (umask 077; printf '%s\n' "$KEY" >"$SECRETS_DIR/admin-api-key")
  log "the admin API key is in .deploy/admin-api-key (shown once; Docker secrets cannot be read back)"
fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  "$ROOT/scripts/build-images.sh"
fi

log "deploying stack $STACK"
files=(-c docker-stack.yml)
for f in ${CRUNCH_STACK_OVERRIDES:-}; do files+=(-c "$f"); done
docker stack deploy --prune --with-registry-auth "${files[@]}" "$STACK"

log "waiting for every service to be running and healthy (up to ${DEPLOY_TIMEOUT:-300} s)"
deadline=$(( $(date +%s) + ${DEPLOY_TIMEOUT:-300} ))
while :; do
  pending=$(docker stack services "$STACK" --format '{{.Name}} {{.Replicas}}' | awk '{ split($2, r, "/"); if (r[1] != r[2]) print $1 }')
  unhealthy=$(docker ps --filter "label=com.docker.stack.namespace=$STACK" --format '{{.Names}} {{.Status}}' | grep -v '(healthy)' || true)
  [ -z "$pending" ] && [ -z "$unhealthy" ] && break
  [ "$(date +%s)" -lt "$deadline" ] || die "not healthy in time: ${pending:-} ${unhealthy:-} (see: docker stack ps $STACK --no-trunc)"
  sleep 3
done
PORT="${CRUNCH_PUBLIC_PORT:-8080}"
# Healthy means alive; ready means its database (migrated), broker and
# admin key are in place too.
until curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; do
  [ "$(date +%s)" -lt "$deadline" ] || die "the gateway does not answer /readyz on port $PORT: $(curl -sS "http://127.0.0.1:$PORT/readyz" 2>&1)"
  sleep 1
done

cat <<MSG

Crunch is deployed (stack $STACK, version $CRUNCH_VERSION).
  API          http://<this host>:$PORT/api/v1/jobs
  Swagger UI   http://<this host>:$PORT/docs/
  Dashboard    http://<this host>:$PORT/
  Metrics      http://<this host>:$PORT/metrics   (with an API key)
  Admin key    .deploy/admin-api-key (if this run created it)
  Services     docker stack services $STACK
  Adminer      not published; scripts/adminer.sh opens it while it runs (docs/deploy.md, "Adminer")
MSG
