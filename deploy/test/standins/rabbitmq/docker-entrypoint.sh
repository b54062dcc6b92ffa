#!/bin/bash
set -euo pipefail
if [ "$(id -u)" = 0 ]; then
  chown -R rabbitmq:rabbitmq /var/lib/rabbitmq
  exec gosu rabbitmq "$0" "$@"
fi
exec "$@"
