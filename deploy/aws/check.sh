#!/usr/bin/env bash
# Offline checks of MissionLink's deployment code (run as `make infra-check`):
#   synthesize dev/staging/prod with cdk-nag, refuse unresolved context lookups, run the
#   pitfall guards (tests/infra), cfn-lint and checkov on every template, hadolint on the
#   Dockerfile, actionlint on the workflows and shellcheck on this script.
# Tools live in their own venvs under .cache/ (created on first run, reused after).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
AWS_DIR="$ROOT/deploy/aws"
CACHE="$ROOT/.cache"
TOOLS="$CACHE/infra-venv"
CHECKOV="$CACHE/checkov-venv"
CDK_OUT="$AWS_DIR/cdk.out"
PYTHON="${MISSIONLINK_INFRA_PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
START=$SECONDS

step() { printf '==> %s (%ss)\n' "$*" "$((SECONDS - START))"; }

# Node 20 is what this machine has; jsii works on it but prints a banner on every start.
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=20
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION=1
# checkov must not phone home for mappings or updates.
export BC_SKIP_MAPPING=TRUE CKV_SKIP_PACKAGE_UPDATE_CHECK=TRUE

# venv DIR REQUIREMENTS: create or refresh a tool venv when its requirements change.
venv() {
  local dir="$1" requirements="$2" stamp wanted
  stamp="$dir/.requirements.sha256"
  wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [[ -x "$dir/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
    return 0
  fi
  step "installing $(basename "$dir") from ${requirements#"$ROOT"/}"
  rm -rf "$dir"
  "$PYTHON" -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip \
    >"$dir.log" 2>&1 || { cat "$dir.log"; exit 1; }
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" \
    >>"$dir.log" 2>&1 || { cat "$dir.log"; exit 1; }
  echo "$wanted" >"$stamp"
}

mkdir -p "$CACHE"
step "tool venvs"
venv "$TOOLS" "$AWS_DIR/requirements-tools.txt"
venv "$CHECKOV" "$AWS_DIR/requirements-checkov.txt"
export PATH="$TOOLS/bin:$PATH"

step "synthesizing dev, staging and prod (cdk-nag AwsSolutions on)"
IMAGE_TAG="$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo 0000000000000000000000000000000000000000)"
rm -rf "$CDK_OUT"
(cd "$AWS_DIR" && MISSIONLINK_IMAGE_TAG="$IMAGE_TAG" CDK_OUTDIR="$CDK_OUT" \
  "$TOOLS/bin/python" app.py)
mapfile -t TEMPLATES < <(find "$CDK_OUT" -name '*.template.json' | sort)
echo "    ${#TEMPLATES[@]} templates"

step "refusing unresolved context lookups (missing entries in the manifests)"
"$TOOLS/bin/python" - "$CDK_OUT" <<'PY'
import json, pathlib, sys
bad = []
for manifest in pathlib.Path(sys.argv[1]).rglob("manifest.json"):
    missing = json.loads(manifest.read_text()).get("missing")
    if missing:
        bad.append(f"{manifest}: {[m.get('key') for m in missing]}")
if bad:
    sys.exit("context lookups need AWS; commit their results to deploy/aws/cdk.context.json:\n"
             + "\n".join(bad))
PY

# test_monitoring.py reads the product's metrics registry: it runs in `make test` and
# `make monitoring-check`, with the product installed, not in this tool venv.
step "pitfall guards and unit tests (tests/infra)"
(cd "$ROOT" && MISSIONLINK_CDK_OUT="$CDK_OUT" "$TOOLS/bin/python" -m pytest \
  -c deploy/aws/pytest.ini --rootdir="$ROOT" --confcutdir=tests/infra -q tests/infra \
  --ignore=tests/infra/test_monitoring.py)

step "cfn-lint on ${#TEMPLATES[@]} templates"
# W3010: the availability zones are pinned on purpose (deploy/aws/cdk.context.json).
"$TOOLS/bin/cfn-lint" --ignore-checks W3010 -- "${TEMPLATES[@]}"

step "checkov on ${#TEMPLATES[@]} templates"
CHECKOV_ARGS=()
for template in "${TEMPLATES[@]}"; do CHECKOV_ARGS+=(-f "$template"); done
"$CHECKOV/bin/checkov" --skip-download --quiet --compact --framework cloudformation \
  "${CHECKOV_ARGS[@]}"

step "hadolint deploy/docker/Dockerfile"
"$TOOLS/bin/hadolint" "$ROOT/deploy/docker/Dockerfile"

step "actionlint .github/workflows"
(cd "$ROOT" && "$TOOLS/bin/actionlint" -shellcheck="$TOOLS/bin/shellcheck" \
  .github/workflows/*.yml)

step "shellcheck on the deploy scripts"
"$TOOLS/bin/shellcheck" "$AWS_DIR/check.sh" "$AWS_DIR/release/deploy.sh"

step "infra checks passed"
