#!/usr/bin/env bash
# Offline checks of the container image and the Compose stack (run as `make image-check`):
# hadolint on deploy/docker/Dockerfile, the Compose specification's schema on compose.yaml
# (check-jsonschema), shellcheck on the scripts, then the pitfall guards and the linters'
# broken variants (tests/infra/test_container.py). Nothing is built or pulled.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DOCKER_DIR="$ROOT/deploy/docker"
VENV="$ROOT/.cache/image-venv"
PYTHON="${MISSIONLINK_INFRA_PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
START=$SECONDS

step() { printf '==> %s (%ss)\n' "$*" "$((SECONDS - START))"; }

# shellcheck source=/dev/null
source "$ROOT/deploy/tool-venv.sh"
tool_venv "$VENV" "$DOCKER_DIR/requirements-tools.txt"

step "hadolint deploy/docker/Dockerfile and Dockerfile.python-base"
"$VENV/bin/hadolint" "$DOCKER_DIR/Dockerfile" "$DOCKER_DIR/Dockerfile.python-base"

step "check-jsonschema --builtin-schema vendor.compose-spec compose.yaml"
(cd "$ROOT" && "$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec compose.yaml)

step "shellcheck on the image and Compose scripts"
"$VENV/bin/shellcheck" -x -P SCRIPTDIR \
  "$DOCKER_DIR/entrypoint.sh" "$DOCKER_DIR/check.sh" "$DOCKER_DIR/build.sh" \
  "$DOCKER_DIR/base-image.sh" "$DOCKER_DIR/podman-env.sh" "$DOCKER_DIR/run-check.sh" \
  "$ROOT/deploy/tool-venv.sh" \
  "$ROOT/deploy/compose/postgres-init.sh" "$ROOT/deploy/compose/make-secrets.sh"

step "pitfall guards (tests/infra/test_container.py)"
(cd "$ROOT" && MISSIONLINK_IMAGE_TOOLS="$VENV/bin" "$VENV/bin/python" -m pytest \
  -c deploy/docker/pytest.ini --rootdir="$ROOT" --confcutdir=tests/infra -q \
  tests/infra/test_container.py)

step "image and compose checks passed"
