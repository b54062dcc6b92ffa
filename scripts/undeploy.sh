#!/usr/bin/env bash
# Removes the Crunch stack. Data volumes and secrets are kept unless asked:
#   scripts/undeploy.sh                 # services and network only
#   scripts/undeploy.sh --volumes       # also the data volumes (PostgreSQL, RabbitMQ, Kafka, MinIO): data loss!
#   scripts/undeploy.sh --secrets       # also the secrets (new passwords on the next deploy)
set -euo pipefail
STACK="${CRUNCH_STACK:-crunch}"
docker stack rm "$STACK"
# Wait for the stack's containers and network to go before removing volumes.
for _ in $(seq 60); do
  [ -z "$(docker ps -q --filter "label=com.docker.stack.namespace=$STACK")" ] && break
  sleep 1
done
for arg in "$@"; do
  case "$arg" in
    --volumes) docker volume ls -q --filter "label=com.docker.stack.namespace=$STACK" | xargs -r docker volume rm ;;
    --secrets) docker secret ls -q --filter "name=crunch_" | xargs -r docker secret rm ;;
    *) echo "unknown option $arg" >&2; exit 2 ;;
  esac
done
echo "stack $STACK removed"
