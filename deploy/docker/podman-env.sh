# shellcheck shell=bash
# Sourced by deploy/docker/base-image.sh and run-check.sh: `podman_env` installs podman,
# runc and debootstrap from apt when one is missing, then points CONTAINERS_CONF at a
# config under .cache/podman (unless CONTAINERS_CONF is already set): runc with the
# cgroupfs manager (crun refuses hybrid cgroup hierarchies) and no default ulimits (a
# sandboxed builder may not raise its hard limit on open files). /etc is left alone.
# Needs ROOT and a `step` function from the caller.
podman_env() {
  local tool missing=() sudo=()
  for tool in podman runc debootstrap; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if ((${#missing[@]})); then
    step "installing ${missing[*]} (apt)"
    [[ "$(id -u)" -eq 0 ]] || sudo=(sudo)
    timeout 300 "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive timeout 600 "${sudo[@]}" \
      apt-get install -y -qq podman runc debootstrap >/dev/null
  fi
  if [[ -z "${CONTAINERS_CONF:-}" ]]; then
    mkdir -p "$ROOT/.cache/podman"
    cat >"$ROOT/.cache/podman/containers.conf" <<'CONF'
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
CONF
    export CONTAINERS_CONF="$ROOT/.cache/podman/containers.conf"
  fi
}
