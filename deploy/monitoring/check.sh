#!/usr/bin/env bash
# Offline checks of the monitoring files (run as `make monitoring-check`):
#   promtool check config   prometheus/prometheus.yml (and the rule files it loads)
#   promtool check rules    prometheus/alerts.yml
#   promtool test rules     prometheus/alerts_test.yml (each alert firing and quiet)
#   amtool check-config     alertmanager/alertmanager.yml (with its message template)
#   amtool config routes    pages and warnings reach their own receiver
#   pytest                  tests/infra/test_monitoring.py: every dashboard and alert query
#                           parses and names only metrics the service exports, every alert
#                           has a runbook entry (docs/runbook.md)
# promtool and amtool come from Debian's `prometheus` and `prometheus-alertmanager`
# packages, installed here when missing (nothing is started). No server is needed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
MON="$ROOT/deploy/monitoring"
PYTHON="${MISSIONLINK_PYTHON:-$ROOT/.venv/bin/python}"
START=$SECONDS

step() { printf '==> %s (%ss)\n' "$*" "$((SECONDS - START))"; }

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v amtool >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
if ((${#missing[@]})); then
  step "installing ${missing[*]} (Debian packages, for promtool and amtool)"
  SUDO=()
  [[ $(id -u) -eq 0 ]] || SUDO=(sudo)
  # The packages' services are not started: there is no init system here, and none is
  # wanted; only the command-line tools are used.
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
[[ -x "$PYTHON" ]] || { echo "monitoring-check needs the project's venv ($PYTHON): make install" >&2; exit 1; }

step "promtool check config prometheus/prometheus.yml"
promtool check config "$MON/prometheus/prometheus.yml"

step "promtool check rules prometheus/alerts.yml"
promtool check rules "$MON/prometheus/alerts.yml"

step "promtool test rules prometheus/alerts_test.yml"
(cd "$MON/prometheus" && promtool test rules alerts_test.yml)

step "amtool check-config alertmanager/alertmanager.yml"
amtool check-config "$MON/alertmanager/alertmanager.yml"

step "amtool: pages and warnings go to their own receiver; the message template renders"
route() {
  local want="$1"; shift
  amtool config routes test --config.file="$MON/alertmanager/alertmanager.yml" \
    --verify.receivers="$want" "$@" >/dev/null 2>&1 \
    || { echo "alert $* is not routed to $want" >&2; exit 1; }
}
route slack-pages severity=page alertname=MissionLinkReconcileFailed job=missionlink-worker
route slack-warnings severity=warning alertname=MissionLinkDeadLetters job=missionlink-worker
route slack-warnings alertname=SomethingWithoutASeverity
rendered="$(amtool template render --template.glob="$MON/alertmanager/missionlink.tmpl" \
  --template.text='{{ template "missionlink.title" . }}{{ template "missionlink.text" . }}')"
[[ "$rendered" == *Runbook:* ]] || { echo "missionlink.tmpl does not render: $rendered" >&2; exit 1; }

step "dashboards, alerts and runbook against the exported metrics (tests/infra/test_monitoring.py)"
(cd "$ROOT" && "$PYTHON" -m pytest -q -p no:cacheprovider tests/infra/test_monitoring.py)

step "monitoring checks passed"
