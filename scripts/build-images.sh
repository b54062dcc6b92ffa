#!/usr/bin/env bash
# Builds the Crunch image (one image, three commands) from deploy/Dockerfile.
#   scripts/build-images.sh            # tags ${CRUNCH_IMAGE:-crunch}:${CRUNCH_VERSION:-<workspace version>}
# Set CRUNCH_REGISTRY=registry.example.com/team to also push it (multi-node
# swarms pull images from a registry).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
if [ -f .env ]; then set -a; . ./.env; set +a; fi
VERSION="${CRUNCH_VERSION:-$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)}"
IMAGE="${CRUNCH_IMAGE:-crunch}"
command -v docker >/dev/null || { echo "error: docker is not installed" >&2; exit 1; }
echo "==> building $IMAGE:$VERSION"
docker build -f deploy/Dockerfile -t "$IMAGE:$VERSION" .
if [ -n "${CRUNCH_REGISTRY:-}" ]; then
  docker tag "$IMAGE:$VERSION" "$CRUNCH_REGISTRY/$IMAGE:$VERSION"
  docker push "$CRUNCH_REGISTRY/$IMAGE:$VERSION"
  echo "==> pushed $CRUNCH_REGISTRY/$IMAGE:$VERSION (deploy with CRUNCH_IMAGE=$CRUNCH_REGISTRY/$IMAGE)"
fi
