#!/usr/bin/env bash
# Makes the local Python base for builders with no container registry, from Debian's
# packages only (apt's mirror), and reuses it when podman already has it:
#   1. localhost/debian-base:bookworm    debootstrap --variant=minbase bookworm, imported
#   2. localhost/missionlink-python-base:3.11-bookworm   Dockerfile.python-base on it
# Prints the base's name last; pass it on as BASE_IMAGE to build.sh. PYTHON_BASE and
# DEBIAN_BASE override the names, DEBIAN_MIRROR the mirror. Unlike the product's build, no
# CA bundle is mounted: apt fetches signed packages over plain HTTP, and the bundle's
# path is where the ca-certificates package writes its own.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON_BASE="${PYTHON_BASE:-localhost/missionlink-python-base:3.11-bookworm}"
DEBIAN_BASE="${DEBIAN_BASE:-localhost/debian-base:bookworm}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
START=$SECONDS

step() { printf '==> %s (%ss)\n' "$*" "$((SECONDS - START))" >&2; }

# shellcheck source=podman-env.sh
source "$ROOT/deploy/docker/podman-env.sh"
podman_env

if podman image exists "$PYTHON_BASE"; then
  step "reusing $PYTHON_BASE"
  echo "$PYTHON_BASE"
  exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/missionlink-base.XXXXXX")"
trap 'rm -rf "$work"' EXIT

if ! podman image exists "$DEBIAN_BASE"; then
  step "debootstrap --variant=minbase bookworm ($DEBIAN_MIRROR)"
  timeout 900 debootstrap --variant=minbase bookworm "$work/rootfs" "$DEBIAN_MIRROR" \
    >"$work/debootstrap.log" 2>&1 || { tail -n 40 "$work/debootstrap.log" >&2; exit 1; }
  step "podman import -> $DEBIAN_BASE"
  tar -C "$work/rootfs" -c . | timeout 300 podman import - "$DEBIAN_BASE" >/dev/null
  rm -rf "$work/rootfs"
fi

step "podman build $PYTHON_BASE (Debian's python3, python3-venv, ca-certificates)"
args=(--network host --isolation chroot --pull=never
      -f "$ROOT/deploy/docker/Dockerfile.python-base"
      --build-arg "DEBIAN_BASE=$DEBIAN_BASE" -t "$PYTHON_BASE")
mkdir -p "$work/context"
timeout 900 podman build "${args[@]}" "$work/context" >&2
echo "$PYTHON_BASE"
