#!/usr/bin/env bash
# Opens the stack's Adminer for as long as this command runs, on the swarm
# manager: publishes its port on this node, waits until Adminer answers,
# prints the address and the login, and closes the port again when stopped
# (Ctrl-C or SIGTERM), so it is never left open.
#   scripts/adminer.sh                          # port ${CRUNCH_ADMINER_PORT:-8088}
#   ssh -L 8088:127.0.0.1:8088 manager-host     # from your machine, while it runs
# A host-mode port binds every interface of the node: keep the port closed to
# the outside in the host's firewall (docs/deploy.md, "Adminer").
set -euo pipefail
STACK="${CRUNCH_STACK:-crunch}"
PORT="${CRUNCH_ADMINER_PORT:-8088}"
SVC="${STACK}_adminer"
# The removal must name the port exactly as it was added.
SPEC="published=$PORT,target=8080,mode=host"
log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

docker service inspect "$SVC" >/dev/null 2>&1 || die "no service $SVC: deploy the stack first (scripts/deploy.sh)"
published=""
close() {
  jobs -p | xargs -r kill 2>/dev/null || true
  [ -n "$published" ] || return 0
  docker service update --quiet --detach=false --publish-rm "$SPEC" "$SVC" >/dev/null
  published=""
  log "Adminer's port $PORT is closed again"
}
trap close EXIT
trap 'exit 0' INT TERM

log "publishing Adminer on port $PORT of this node"
published=1
docker service update --quiet --detach=false --publish-add "$SPEC" "$SVC" >/dev/null
for ((i = 0; i < 120; i++)); do
  curl -fs -o /dev/null "http://127.0.0.1:$PORT/" && break
  sleep 0.5
done
curl -fs -o /dev/null "http://127.0.0.1:$PORT/" || die "Adminer does not answer on port $PORT"
cat <<MSG
Adminer is at http://127.0.0.1:$PORT/?pgsql=postgres&username=crunch&db=crunch&ns=public
  System PostgreSQL, server postgres, user crunch, database crunch; the password:
  docker exec \$(docker ps -qf name=${STACK}_postgres) cat /run/secrets/crunch_postgres_password
Stop with Ctrl-C: the port is closed again.
MSG
while true; do
  sleep 3600 &
  wait $! || true
done
