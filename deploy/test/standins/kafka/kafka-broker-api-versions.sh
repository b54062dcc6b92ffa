#!/bin/bash
# Sends one Kafka ApiVersions (v0) request and succeeds when the broker answers
# it without an error, like the official script does for the healthcheck.
#   kafka-broker-api-versions.sh --bootstrap-server HOST:PORT
set -euo pipefail
server="localhost:9092"
while [ $# -gt 0 ]; do
  case "$1" in --bootstrap-server) server="$2"; shift 2 ;; *) shift ;; esac
done
host="${server%:*}" port="${server##*:}"
exec 3<>"/dev/tcp/$host/$port"
# size 16: api_key 18, api_version 0, correlation_id 7, client_id "health" (6)
printf '\x00\x00\x00\x10\x00\x12\x00\x00\x00\x00\x00\x07\x00\x06health' >&3
reply="$(timeout 5 head -c 10 <&3 | od -An -tx1 | tr -d ' \n')"
# size (4 bytes), correlation_id 7, error_code 0
[ "${reply:8:8}" = "00000007" ] && [ "${reply:16:4}" = "0000" ] || { echo "no ApiVersions answer from $server: $reply" >&2; exit 1; }
echo "$server: ApiVersions answered"
