#!/usr/bin/env bash
# Removes the Crunch stack. Data volumes and secrets are kept unless asked:
#   scripts/undeploy.sh                       # services and network only
#   scripts/undeploy.sh --volumes             # also the data volumes (PostgreSQL, RabbitMQ, Kafka, MinIO): data loss!
#   scripts/undeploy.sh --volumes --secrets   # also the secrets: the next deploy starts from scratch
# --secrets alone is refused: PostgreSQL and RabbitMQ keep their passwords in
# their volumes, and new random secrets would not open them.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
if [ -f .env ]; then set -a; . ./.env; set +a; fi
STACK="${CRUNCH_STACK:-crunch}"
volumes=0 secrets=0
for arg in "$@"; do
  case "$arg" in
    --volumes) volumes=1 ;;
    --secrets) secrets=1 ;;
    *) echo "unknown option $arg" >&2; exit 2 ;;
  esac
done
if [ "$secrets" = 1 ] && [ "$volumes" = 0 ]; then
  echo "error: --secrets needs --volumes (the data volumes were initialised with these passwords)" >&2
  exit 2
fi
docker stack rm "$STACK" >/dev/null 2>&1 || true
# Services, containers and the network go asynchronously; volumes can only
# be removed once no container uses them.
for _ in $(seq 120); do
  if [ -z "$(docker service ls -q --filter "label=com.docker.stack.namespace=$STACK")" ] \
     && [ -z "$(docker ps -aq --filter "label=com.docker.stack.namespace=$STACK")" ] \
     && [ -z "$(docker network ls -q --filter "label=com.docker.stack.namespace=$STACK")" ]; then
    break
  fi
  sleep 1
done
if [ "$volumes" = 1 ]; then
  docker volume ls -q --filter "label=com.docker.stack.namespace=$STACK" | xargs -r docker volume rm >/dev/null
  rm -f .deploy/kafka-cluster-id
fi
if [ "$secrets" = 1 ]; then
  docker secret ls -q --filter "name=crunch_" | xargs -r docker secret rm >/dev/null
  rm -f .deploy/admin-api-key
fi
echo "stack $STACK removed"
