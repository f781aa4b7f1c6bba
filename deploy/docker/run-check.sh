#!/usr/bin/env bash
# Builds the MissionLink image with podman and runs it (`make image-run`): on a machine
# with only apt and the package index reachable it
#   1. installs podman, runc and debootstrap when missing and makes (or reuses) the local
#      Debian-made Python base (deploy/docker/base-image.sh; BASE_IMAGE=<image> skips it);
#   2. builds the image with deploy/docker/build.sh on that base;
#   3. creates two databases with one least-privilege login role each, as
#      deploy/compose/postgres-init.sh does (pg_trgm made by the superuser);
#   4. runs `migrate`, then `serve` and `worker` detached, each with a read-only root and a
#      tmpfs on /tmp, on the host's network, and waits for /readyz;
#   5. checks the containers run as a non-root user that can write /tmp and nothing else,
#      drives a mission flow over HTTP (deploy/docker/smoke.py) until the worker settles
#      it and its emails are written, and runs `reconcile`, which must exit 0.
# Containers, databases and roles are removed on exit, failed or not. Timeouts bound every
# step. PostgreSQL: PGHOST/PGPORT/PGUSER (127.0.0.1, 5432, postgres, a superuser); Redis:
# MISSIONLINK_IMAGE_REDIS_URL (redis://127.0.0.1:6379/13).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
START=$SECONDS
PGHOST="${PGHOST:-127.0.0.1}"
PGPORT="${PGPORT:-5432}"
PGUSER="${PGUSER:-postgres}"
export PGHOST PGPORT PGUSER PGCONNECT_TIMEOUT=5
REDIS_URL="${MISSIONLINK_IMAGE_REDIS_URL:-redis://127.0.0.1:6379/13}"
PYTHON="${MISSIONLINK_INFRA_PYTHON:-python3}"
IMAGE_NAME="${IMAGE_NAME:-missionlink}"
IMAGE_TAG="${IMAGE_TAG:-$(git rev-parse HEAD)}"
export IMAGE_NAME IMAGE_TAG
IMAGE="localhost/$IMAGE_NAME:$IMAGE_TAG"
RUN_ID="$(date +%s)_$$"
CORE_DB="ml_ci_core_$RUN_ID"
IDENTITY_DB="ml_ci_identity_$RUN_ID"
API="ml-ci-api-$RUN_ID"
WORKER="ml-ci-worker-$RUN_ID"

timings=()
phase_name=""
phase_start=$SECONDS
step() { printf '==> %s (%ss)\n' "$*" "$((SECONDS - START))"; }
phase() {
  [[ -n "$phase_name" ]] && timings+=("$(printf '%5ss  %s' "$((SECONDS - phase_start))" "$phase_name")")
  phase_name="$1"
  phase_start=$SECONDS
  step "$1"
}
fail() { echo "FAIL: $*" >&2; exit 1; }
sql() { timeout 60 psql -X -q -v ON_ERROR_STOP=1 "$@"; }

logs() {
  local name
  for name in "$API" "$WORKER"; do
    podman container exists "$name" 2>/dev/null || continue
    echo "---- podman logs $name (last 100 lines) ----" >&2
    timeout 20 podman logs --tail 100 "$name" >&2 2>&1 || true
  done
}

cleanup() {
  local status=$?
  trap - EXIT
  [[ $status -ne 0 ]] && logs
  phase "cleanup: containers, databases and roles"
  timeout 60 podman rm --force --time 5 "$API" "$WORKER" >/dev/null 2>&1 || true
  if [[ -n "${databases_made:-}" ]]; then
    sql -d postgres -c "DROP DATABASE IF EXISTS $CORE_DB WITH (FORCE);" \
      -c "DROP DATABASE IF EXISTS $IDENTITY_DB WITH (FORCE);" \
      -c "DROP ROLE IF EXISTS $CORE_DB;" -c "DROP ROLE IF EXISTS $IDENTITY_DB;" \
      || { echo "could not drop $CORE_DB, $IDENTITY_DB and their roles" >&2; status=1; }
  fi
  phase "done"
  echo "timings:"
  printf '  %s\n' "${timings[@]}"
  printf '%5ss  total\n' "$((SECONDS - START))" | sed 's/^/  /'
  if [[ $status -eq 0 ]]; then echo "image run check passed: $IMAGE"; else echo "image run check FAILED" >&2; fi
  exit "$status"
}
trap cleanup EXIT
# A stopped job (Ctrl-C, a CI timeout) still removes its containers, databases and roles.
trap "exit 130" INT
trap "exit 143" TERM

free_port() {
  "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# 1. podman and the base --------------------------------------------------------------
phase "podman and the local base"
# shellcheck source=podman-env.sh
source "$ROOT/deploy/docker/podman-env.sh"
podman_env
for tool in psql curl "$PYTHON"; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is needed (psql for the databases, curl and python3 for the HTTP checks)"
done
if [[ -z "${BASE_IMAGE:-}" ]]; then
  BASE_IMAGE="$(bash "$ROOT/deploy/docker/base-image.sh" | tail -n1)"
fi
export BASE_IMAGE
podman image exists "$BASE_IMAGE" || fail "no base image $BASE_IMAGE in podman's storage"

# 2. the image ------------------------------------------------------------------------
phase "build $IMAGE on $BASE_IMAGE"
timeout 900 bash "$ROOT/deploy/docker/build.sh"
podman image exists "$IMAGE" || fail "build.sh made no $IMAGE"
user="$(podman image inspect --format '{{.Config.User}}' "$IMAGE")"
[[ -n "$user" && "${user%%:*}" != 0 && "${user%%:*}" != root ]] \
  || fail "the image runs as '${user:-root}'"
[[ "$(podman image inspect --format '{{.HealthCheck}}' "$IMAGE")" == *healthz* ]] \
  || fail "the image lost the Dockerfile's HEALTHCHECK (build in Docker's image format)"

# 3. databases and roles --------------------------------------------------------------
phase "databases $CORE_DB and $IDENTITY_DB with one role each"
core_password="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
identity_password="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
databases_made=1
sql -d postgres -v core_password="$core_password" -v identity_password="$identity_password" <<SQL
CREATE ROLE $CORE_DB LOGIN PASSWORD :'core_password';
CREATE ROLE $IDENTITY_DB LOGIN PASSWORD :'identity_password';
CREATE DATABASE $CORE_DB OWNER $CORE_DB;
CREATE DATABASE $IDENTITY_DB OWNER $IDENTITY_DB;
REVOKE ALL ON DATABASE $CORE_DB FROM PUBLIC;
REVOKE ALL ON DATABASE $IDENTITY_DB FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE $CORE_DB TO $CORE_DB;
GRANT CONNECT, TEMPORARY ON DATABASE $IDENTITY_DB TO $IDENTITY_DB;
SQL
sql -d "$CORE_DB" -c 'CREATE EXTENSION IF NOT EXISTS pg_trgm;'

# Settings reach the containers by name (`-e NAME`), so the passwords stay off the
# command line.
api_port="$(free_port)"
metrics_port="$(free_port)"
export MISSIONLINK_ENV=dev
export MISSIONLINK_DATABASE_URL="postgresql://$CORE_DB@$PGHOST:$PGPORT/$CORE_DB"
export MISSIONLINK_IDENTITY_DATABASE_URL="postgresql://$IDENTITY_DB@$PGHOST:$PGPORT/$IDENTITY_DB"
export MISSIONLINK_DATABASE_PASSWORD="$core_password"
export MISSIONLINK_IDENTITY_DATABASE_PASSWORD="$identity_password"
export MISSIONLINK_BROKER_URL="$REDIS_URL"
export MISSIONLINK_PUBLIC_URL="http://127.0.0.1:$api_port"
export MISSIONLINK_METRICS_PORT="$metrics_port"
run=(podman run --read-only --tmpfs /tmp --network host --no-healthcheck
     -e MISSIONLINK_ENV -e MISSIONLINK_DATABASE_URL -e MISSIONLINK_IDENTITY_DATABASE_URL
     -e MISSIONLINK_DATABASE_PASSWORD -e MISSIONLINK_IDENTITY_DATABASE_PASSWORD
     -e MISSIONLINK_BROKER_URL -e MISSIONLINK_PUBLIC_URL -e MISSIONLINK_METRICS_PORT)

# 4. migrate, serve, worker -----------------------------------------------------------
phase "migrate (in a container)"
timeout 180 "${run[@]}" --rm "$IMAGE" migrate

phase "serve on 127.0.0.1:$api_port and worker (metrics on $metrics_port)"
timeout 60 "${run[@]}" -d --name "$API" "$IMAGE" serve --host 127.0.0.1 --port "$api_port" >/dev/null
timeout 60 "${run[@]}" -d --name "$WORKER" "$IMAGE" worker >/dev/null
base_url="http://127.0.0.1:$api_port"
ready=""
ready_by=$((SECONDS + 60))
while ((SECONDS < ready_by)); do
  for name in "$API" "$WORKER"; do
    [[ "$(podman inspect --format '{{.State.Running}}' "$name")" == true ]] \
      || fail "container $name exited: $(podman inspect --format '{{.State.ExitCode}}' "$name")"
  done
  if [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$base_url/readyz" || true)" == 200 ]] \
     && curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$metrics_port/metrics"; then
    ready=1
    break
  fi
  sleep 0.5
done
[[ -n "$ready" ]] || fail "no /readyz 200 from $API and /metrics from $WORKER within 60 s"

# 5. checks, the mission flow, reconcile ----------------------------------------------
phase "non-root user and read-only root"
for name in "$API" "$WORKER"; do
  uid="$(timeout 20 podman exec "$name" id -u)"
  [[ "$uid" != 0 ]] || fail "$name runs as root"
  timeout 20 podman exec "$name" sh -c 'echo x >/tmp/.write-check && rm /tmp/.write-check' \
    || fail "$name cannot write its /tmp"
  for path in /opt/venv/.write-check /.write-check /etc/.write-check; do
    if timeout 20 podman exec "$name" sh -c "echo x >$path" 2>/dev/null; then
      fail "$name could write $path (the root filesystem is not read-only)"
    fi
  done
  echo "ok  $name: uid $uid, /tmp writable, /, /etc and /opt/venv not"
done
# Not even root gets past a read-only root filesystem.
if timeout 20 podman exec --user 0 "$API" sh -c 'echo x >/opt/venv/.write-check' 2>/dev/null; then
  fail "root in $API could write /opt/venv (the root filesystem is not read-only)"
fi

phase "mission flow over HTTP (deploy/docker/smoke.py)"
timeout 120 "$PYTHON" "$ROOT/deploy/docker/smoke.py" "$base_url" --settle-timeout 60

phase "result emails written by the worker"
emails=0
emails_by=$((SECONDS + 20))
while ((SECONDS < emails_by)); do
  emails="$(timeout 20 podman exec "$WORKER" sh -c 'ls /tmp/missionlink/mail 2>/dev/null | grep -c "\.eml$"' || true)"
  [[ "${emails:-0}" -ge 2 ]] && break
  sleep 0.5
done
[[ "${emails:-0}" -eq 2 ]] || fail "the worker wrote ${emails:-0} result emails, want 2 (fan and streamer) within 20 s"
echo "ok  2 result emails under the worker's /tmp/missionlink/mail"

phase "reconcile (in a container)"
timeout 120 "${run[@]}" --rm "$IMAGE" reconcile
