#!/usr/bin/env bash
# Stops what scripts/dev-up.sh started (gateway, worker, persister, Adminer,
# and tansu if dev-up started it) and nothing else. PostgreSQL and RabbitMQ keep running.
source "$(dirname "$0")/lib.sh"
for name in gateway worker persister adminer tansu; do
  pidf="$DEV_DIR/pids/$name"
  [ -f "$pidf" ] || continue
  pid="$(cat "$pidf")"
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid"
    for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$pidf"
done
log "stopped"
