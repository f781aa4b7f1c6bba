# shellcheck shell=bash
# Sourced by the deploy checks: `tool_venv VENV REQUIREMENTS` makes (or remakes, when the
# requirements file changed) a tool venv under .cache/, apart from the product's .venv.
# Needs ROOT, PYTHON and a `step` function from the caller.
tool_venv() {
  local venv="$1" requirements="$2" wanted
  wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [[ ! -x "$venv/bin/python" || "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$wanted" ]]; then
    step "installing ${venv#"$ROOT"/} from ${requirements#"$ROOT"/}"
    rm -rf "$venv"
    mkdir -p "$ROOT/.cache"
    "$PYTHON" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" \
      >"$venv.log" 2>&1 || { cat "$venv.log"; exit 1; }
    echo "$wanted" >"$venv/.requirements.sha256"
  fi
}
