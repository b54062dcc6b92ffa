#!/bin/bash
# KAFKA_LISTENERS / KAFKA_ADVERTISED_LISTENERS (PLAINTEXT://host:port) and
# CLUSTER_ID, as the official image takes them.
set -euo pipefail
plaintext() { tr ',' '\n' <<<"$1" | sed -n 's|^PLAINTEXT://||p' | head -1; }
listen="$(plaintext "${KAFKA_LISTENERS:-PLAINTEXT://:9092}")"
advertised="$(plaintext "${KAFKA_ADVERTISED_LISTENERS:-PLAINTEXT://localhost:9092}")"
[ "${listen%%:*}" != "" ] || listen="0.0.0.0$listen"
exec tansu broker --cluster-id "${CLUSTER_ID:-tansu_cluster}" --listener-url "tcp://$listen" \
  --advertised-listener-url "tcp://$advertised" --storage-engine memory://tansu/
