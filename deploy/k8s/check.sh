#!/usr/bin/env bash
# Offline checks of the Kubernetes manifests (run as `make k8s-check`): render every
# overlay with `kubectl kustomize`, validate it with `kubernetes-validate --strict`
# against KUBERNETES_VERSION, then run the pitfall guards (tests/infra/test_k8s_manifests.py).
# kubernetes-validate has no schema for the External Secrets CRDs; it warns and passes
# them, so any other kind without a schema fails here, and the guards check their shape.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
K8S_DIR="$ROOT/deploy/k8s"
VENV="$ROOT/.cache/k8s-venv"
KUBERNETES_VERSION="${KUBERNETES_VERSION:-1.30.0}"
CRD_KINDS="ExternalSecret|SecretStore"
KUBECTL="${KUBECTL:-kubectl}"
PYTHON="${MISSIONLINK_INFRA_PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
START=$SECONDS

step() { printf '==> %s (%ss)\n' "$*" "$((SECONDS - START))"; }

command -v "$KUBECTL" >/dev/null 2>&1 || { echo "k8s-check needs kubectl (1.27 or later)" >&2; exit 1; }

# shellcheck source=/dev/null
source "$ROOT/deploy/tool-venv.sh"
tool_venv "$VENV" "$K8S_DIR/requirements-tools.txt"

RENDERED="$(mktemp -d)"
trap 'rm -rf "$RENDERED"' EXIT
for env in dev staging prod; do
  step "rendering overlays/$env"
  "$KUBECTL" kustomize "$K8S_DIR/overlays/$env" >"$RENDERED/$env.yaml"
  step "kubernetes-validate --strict -k $KUBERNETES_VERSION overlays/$env"
  if ! "$VENV/bin/kubernetes-validate" --strict --quiet -k "$KUBERNETES_VERSION" - \
      <"$RENDERED/$env.yaml" >"$RENDERED/$env.out" 2>&1; then
    cat "$RENDERED/$env.out"
    exit 1
  fi
  unknown="$(grep "Couldn't find schema" "$RENDERED/$env.out" \
    | grep -Ev "for kind ($CRD_KINDS) with api version external-secrets.io/" || true)"
  if [[ -n "$unknown" ]]; then
    echo "overlays/$env: kinds with no schema and no guard:" >&2
    echo "$unknown" >&2
    exit 1
  fi
done

# deploy/monitoring's files as ConfigMaps for the monitoring namespace (they live outside
# deploy/k8s, hence the load restrictor).
step "rendering and validating monitoring"
"$KUBECTL" kustomize --load-restrictor LoadRestrictionsNone "$K8S_DIR/monitoring" \
  >"$RENDERED/monitoring.yaml"
"$VENV/bin/kubernetes-validate" --strict --quiet -k "$KUBERNETES_VERSION" - \
  <"$RENDERED/monitoring.yaml"

step "pitfall guards (tests/infra/test_k8s_manifests.py)"
(cd "$ROOT" && KUBECTL="$(command -v "$KUBECTL")" "$VENV/bin/python" -m pytest \
  -c deploy/k8s/pytest.ini --rootdir="$ROOT" --confcutdir=tests/infra -q \
  tests/infra/test_k8s_manifests.py)

step "kubernetes checks passed"
