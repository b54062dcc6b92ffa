# Shared by stack-test.sh: a Docker engine of its own when the machine has
# none, and stand-in images for what Docker Hub would provide.
# Source it after lib.sh.

# Where the engine started here keeps its images and containers (cached
# between runs: the stand-ins and the image's dependency layer are built once).
CRUNCH_DOCKER_ROOT="${CRUNCH_DOCKER_ROOT:-$HOME/.cache/crunch-docker}"
CRUNCH_DOCKER_RUN="${CRUNCH_DOCKER_RUN:-/run/crunch-docker}"
STANDINS="$ROOT/deploy/test/standins"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

# A Docker engine: the machine's if one answers, else dockerd (Debian's
# docker.io) started here with its own data root and socket.
ensure_docker_engine() {
  if docker info >/dev/null 2>&1; then return 0; fi
  export DOCKER_HOST="unix://$CRUNCH_DOCKER_RUN/docker.sock"
  if docker info >/dev/null 2>&1; then return 0; fi
  ensure_apt docker.io debootstrap
  command -v docker >/dev/null || die "no docker client"
  log "starting dockerd (data root $CRUNCH_DOCKER_ROOT/data)"
  $SUDO mkdir -p "$CRUNCH_DOCKER_ROOT/data" "$CRUNCH_DOCKER_RUN"
  $SUDO sh -c "nohup dockerd --data-root '$CRUNCH_DOCKER_ROOT/data' --exec-root '$CRUNCH_DOCKER_RUN/exec' \
    -H '$DOCKER_HOST' -p '$CRUNCH_DOCKER_RUN/docker.pid' >'$DEV_DIR/logs/dockerd.log' 2>&1 &"
  local i
  for ((i = 0; i < 120; i++)); do docker info >/dev/null 2>&1 && return 0; sleep 0.5; done
  die "dockerd did not start (see $DEV_DIR/logs/dockerd.log)"
}

# A one-node swarm on loopback.
ensure_swarm() {
  if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" != "active" ]; then
    log "initialising a one-node swarm"
    docker swarm init --advertise-addr 127.0.0.1 >/dev/null
  fi
}

# Content hash of a stand-in's definition (and of anything else named), so a
# tag is rebuilt exactly when its definition changes.
definition_hash() { # paths...
  (cd "$ROOT" && find "$@" -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16
}

image_hash() { # tag
  docker image inspect --format '{{index .Config.Labels "crunch.standin.hash"}}' "$1" 2>/dev/null || true
}

# Debian bookworm, minbase, made with debootstrap: the root of every stand-in.
BASE_IMAGE=crunch-standin/bookworm:base
ensure_base_image() {
  docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return 0
  ensure_apt debootstrap
  local rootfs="$CRUNCH_DOCKER_ROOT/rootfs/bookworm"
  log "debootstrap bookworm (minbase) for the stand-in images"
  $SUDO rm -rf "$rootfs"
  $SUDO debootstrap --variant=minbase bookworm "$rootfs" "$DEBIAN_MIRROR" >"$DEV_DIR/logs/debootstrap.log" 2>&1 \
    || die "debootstrap failed (see $DEV_DIR/logs/debootstrap.log)"
  $SUDO rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  $SUDO tar -C "$rootfs" -c . | docker import - "$BASE_IMAGE" >/dev/null
  $SUDO rm -rf "$rootfs"
}

# Builds deploy/test/standins/NAME as TAG unless TAG already holds that
# definition. Extra files for the build context come from a staging function.
standin() { # name tag [stage-function [version of what it stages]]
  local name="$1" tag="$2" stage="${3:-}" dir="$STANDINS/$1" hash
  hash="$(definition_hash "deploy/test/standins/$name")-$(printf '%s' "${4:-}" | sha256sum | cut -c1-8)"
  [ "$(image_hash "$tag")" = "$hash" ] && return 0
  log "building stand-in $tag"
  local ctx="$CRUNCH_DOCKER_ROOT/context/$name"
  rm -rf "$ctx" && mkdir -p "$ctx" && cp -a "$dir/." "$ctx/"
  [ -z "$stage" ] || "$stage" "$ctx"
  DOCKER_BUILDKIT=0 docker build -q --build-arg BASE="$BASE_IMAGE" --label "crunch.standin.hash=$hash" \
    -t "$tag" "$ctx" >"$DEV_DIR/logs/standin-$name.log" 2>&1 || { cat "$DEV_DIR/logs/standin-$name.log" >&2; die "stand-in $tag failed"; }
  rm -rf "$ctx"
}

# The machine's toolchain of the pinned version (hard links when possible)
# and its CA bundle.
stage_rust() {
  local sysroot; sysroot="$(rustc +"$RUST_VERSION" --print sysroot 2>/dev/null || rustc --print sysroot)"
  [ "$(rustc --version | cut -d' ' -f2)" = "$RUST_VERSION" ] || [ -x "$sysroot/bin/rustc" ] || die "rust $RUST_VERSION not installed"
  mkdir -p "$1/toolchain"
  cp -al "$sysroot/bin" "$sysroot/lib" "$1/toolchain/" 2>/dev/null || cp -a "$sysroot/bin" "$sysroot/lib" "$1/toolchain/"
  cp /etc/ssl/certs/ca-certificates.crt "$1/machine-ca.crt"
}

# The base images deploy/Dockerfile names (its ARG defaults).
dockerfile_arg() { sed -n "s/^ARG $1=//p" "$ROOT/deploy/Dockerfile"; }
