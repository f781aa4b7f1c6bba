#!/usr/bin/env bash
# Builds the MissionLink image with podman (run as `make image`), tagged with the commit:
#   missionlink:<git sha>   (IMAGE_NAME, IMAGE_TAG and BASE_IMAGE override)
# The base is never pulled (--pull=never): have it locally first, either the default
# (`podman pull` of the Dockerfile's BASE_IMAGE) or your own, e.g.
#   BASE_IMAGE=localhost/python-base:3.11 make image
# The machine's CA bundle is mounted for the build only, so pip reaches the package index
# through whatever TLS-inspecting proxy the machine trusts; it does not enter the image.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
command -v podman >/dev/null 2>&1 || { echo "make image needs podman" >&2; exit 1; }
cd "$ROOT"

revision="$(git rev-parse HEAD)"
if [[ -n "$(git status --porcelain -- src pyproject.toml README.md deploy/docker)" ]]; then
  echo "note: uncommitted changes in the image's files; the tag still names $revision" >&2
fi
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -n1)"
name="${IMAGE_NAME:-missionlink}"
tag="${IMAGE_TAG:-$revision}"
ca_bundle="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"

# Docker's image format: the OCI format has no HEALTHCHECK, and podman would drop the
# Dockerfile's.
args=(--network host --isolation chroot --pull=never --format docker
      -f deploy/docker/Dockerfile -t "$name:$tag"
      --build-arg "VERSION=$version" --build-arg "REVISION=$revision"
      --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)")
source_url="$(git remote get-url origin 2>/dev/null || true)"
[[ -n "$source_url" ]] && args+=(--build-arg "SOURCE=$source_url")
[[ -n "${BASE_IMAGE:-}" ]] && args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
[[ -f "$ca_bundle" ]] && args+=(-v "$ca_bundle:/etc/ssl/certs/ca-certificates.crt:ro")

podman build "${args[@]}" .
echo "built $name:$tag"
