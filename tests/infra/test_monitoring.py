"""Monitoring as code (deploy/monitoring/), checked without servers: every PromQL
expression of the Grafana dashboards and the alert rules parses (``promtool``) and names
only metrics, and label names, that the service really exports
(``missionlink.observability.metrics`` in prometheus_client's default registry); every
alert has a severity, a summary, a description and a runbook entry that exists in
docs/runbook.md; ``alerts_test.yml`` fires and clears every alert; the Prometheus,
Alertmanager and Grafana files agree with each other. Each check is a function, and the
last tests feed them broken variants to show they catch what they are for.

``promtool`` comes from Debian's ``prometheus`` package (deploy/monitoring/check.sh
installs it); without it the parse check skips, and fails under ``CI=true``."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
PROMETHEUS_CONFIG = MONITORING / "prometheus" / "prometheus.yml"
ALERTS = MONITORING / "prometheus" / "alerts.yml"
ALERT_TESTS = MONITORING / "prometheus" / "alerts_test.yml"
ALERTMANAGER_CONFIG = MONITORING / "alertmanager" / "alertmanager.yml"
DASHBOARDS = MONITORING / "grafana" / "dashboards"
DATASOURCES = MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDER = MONITORING / "grafana" / "provisioning" / "dashboards" / "provider.yml"
RUNBOOK = ROOT / "docs" / "runbook.md"

EXPECTED_DASHBOARDS = {
    "missionlink-overview.json",
    "missionlink-money.json",
    "missionlink-workers.json",
    "missionlink-database.json",
}
# What the issue asks an alert for, by the alert's name.
EXPECTED_ALERTS = {
    "MissionLinkAPIErrorRatio",
    "MissionLinkAPILatencyP99",
    "MissionLinkOutboxAge",
    "MissionLinkDeadLetters",
    "MissionLinkSettlementLag",
    "MissionLinkEmailsDead",
    "MissionLinkEmailRetries",
    "MissionLinkReconcileFailed",
    "MissionLinkReconcileNotRun",
    "MissionLinkInstanceDown",
    "MissionLinkSSESaturation",
}
SEVERITIES = {"warning", "page"}
RUNBOOK_URL = re.compile(r"docs/runbook\.md#([a-z0-9_-]+)")
# Labels Prometheus adds to every scraped series (the target's), and the histogram bucket.
TARGET_LABELS = {"job", "instance", "__name__"}
# Grafana's macros, replaced by a duration of the same kind before promtool reads a query.
GRAFANA_MACROS = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}

Expression = tuple[str, str]  # (where it comes from, the PromQL)
Exported = dict[str, frozenset[str]]  # series name -> its label names


# -- what the service exports -------------------------------------------------------------


@cache
def exported_series() -> Exported:
    """Every series name the service's metrics module exports, with its label names.

    A counter family ``missionlink_x`` is exposed as ``missionlink_x_total`` (and
    ``_created``), a histogram as ``_bucket`` (with ``le``), ``_sum``, ``_count``, a gauge
    under its own name."""
    from prometheus_client import REGISTRY

    import missionlink.observability.metrics  # noqa: F401  (registers the metrics)

    labels_of: dict[str, frozenset[str]] = {}
    collectors = getattr(REGISTRY, "_collector_to_names", {})
    for collector, names in collectors.items():
        for name in names:
            labels_of[name] = frozenset(getattr(collector, "_labelnames", ()))
    exported: Exported = {}
    for family in REGISTRY.collect():
        if not family.name.startswith("missionlink_"):
            continue
        suffixes = {
            "counter": ("_total", "_created"),
            "histogram": ("_bucket", "_sum", "_count", "_created"),
            "summary": ("", "_sum", "_count", "_created"),
            "info": ("_info",),
        }.get(family.type, ("",))
        labels = next(
            (labels_of[family.name + s] for s in ("", *suffixes) if family.name + s in labels_of),
            frozenset(),
        )
        for suffix in suffixes:
            extra = {"le"} if suffix == "_bucket" else set()
            exported[family.name + suffix] = labels | extra
    return exported


# -- where the expressions are -------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_dashboards() -> dict[str, dict[str, Any]]:
    return {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(DASHBOARDS.glob("*.json"))
    }


def panels_of(container: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside rows included."""
    for panel in container.get("panels", []):
        yield panel
        yield from panels_of(panel)


def _variable_query(variable: dict[str, Any]) -> str | None:
    """The PromQL inside a query variable: ``label_values(<expr>, label)`` or
    ``query_result(<expr>)``; ``None`` for variables that name no series."""
    query = variable.get("query")
    if isinstance(query, dict):
        query = query.get("query")
    if variable.get("type") != "query" or not isinstance(query, str):
        return None
    match = re.fullmatch(r"\s*label_values\((.+),\s*\w+\)\s*", query, re.S)
    if match:
        return match.group(1)
    match = re.fullmatch(r"\s*query_result\((.+)\)\s*", query, re.S)
    if match:
        return match.group(1)
    return None


def dashboard_expressions(name: str, dashboard: dict[str, Any]) -> list[Expression]:
    found: list[Expression] = []
    for panel in panels_of(dashboard):
        for target in panel.get("targets", []):
            if target.get("expr"):
                found.append(
                    (f"{name}: panel {panel.get('title')!r} {target.get('refId')}", target["expr"])
                )
    for variable in dashboard.get("templating", {}).get("list", []):
        query = _variable_query(variable)
        if query:
            found.append((f"{name}: variable {variable.get('name')!r}", query))
    return found


def alert_rules(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def alert_expressions(rules: Iterable[dict[str, Any]]) -> list[Expression]:
    return [
        (f"alert {rule['alert']} ({rule.get('labels', {}).get('severity')})", rule["expr"])
        for rule in rules
    ]


def all_expressions() -> list[Expression]:
    found = alert_expressions(alert_rules(load_yaml(ALERTS)))
    for name, dashboard in load_dashboards().items():
        found += dashboard_expressions(name, dashboard)
    return found


# -- the checks ----------------------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_METRIC = re.compile(r"\bmissionlink_[A-Za-z0-9_]+")
_SELECTOR = re.compile(r"\b(missionlink_[A-Za-z0-9_]+)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)\s*(\"(?:[^\"\\]|\\.)*\")")


def metric_names(expr: str) -> set[str]:
    """The ``missionlink_*`` series an expression reads (string literals left out)."""
    return set(_METRIC.findall(_STRING.sub('""', expr)))


def unknown_metrics(expressions: Iterable[Expression], exported: Exported) -> list[str]:
    return [
        f"{where}: {name} is not exported by the service"
        for where, expr in expressions
        for name in sorted(metric_names(expr))
        if name not in exported
    ]


def unknown_labels(expressions: Iterable[Expression], exported: Exported) -> list[str]:
    """Label names in a ``missionlink_*{...}`` selector that the series does not have."""
    problems = []
    for where, expr in expressions:
        for name, matchers in _SELECTOR.findall(expr):
            if name not in exported:
                continue  # unknown_metrics reports it
            for label, _ in _MATCHER.findall(matchers):
                if label not in exported[name] | TARGET_LABELS:
                    problems.append(f"{where}: {name} has no label {label!r}")
    return problems


def scraped_jobs(prometheus_config: dict[str, Any]) -> set[str]:
    return {job["job_name"] for job in prometheus_config["scrape_configs"]}


def unknown_jobs(expressions: Iterable[Expression], jobs: set[str]) -> list[str]:
    """``job`` matchers naming a job Prometheus does not scrape."""
    problems = []
    for where, expr in expressions:
        for op, value in re.findall(r'\bjob\s*(=~|=)\s*"([^"]*)"', expr):
            names = value.split("|") if op == "=~" else [value]
            problems += [f"{where}: job {n!r} is not scraped" for n in names if n not in jobs]
    return problems


def for_promtool(expr: str) -> str:
    for macro, value in GRAFANA_MACROS.items():
        expr = expr.replace(macro, value)
    return expr


def _promtool_error(promtool: str, expr: str) -> str | None:
    rule_file = {"groups": [{"name": "parse", "rules": [{"record": "parse:check", "expr": expr}]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as handle:
        yaml.safe_dump(rule_file, handle)
    try:
        result = subprocess.run(
            [promtool, "check", "rules", handle.name],
            capture_output=True, text=True, timeout=60, check=False,
        )
    finally:
        os.unlink(handle.name)
    if result.returncode == 0:
        return None
    return (result.stderr or result.stdout).strip().replace(handle.name, "<expr>")


def promql_problems(expressions: Iterable[Expression], promtool: str) -> list[str]:
    """Each expression in a rule file of its own, read by ``promtool check rules``."""
    listed = list(expressions)
    with ThreadPoolExecutor(max_workers=8) as pool:
        errors = list(pool.map(lambda e: _promtool_error(promtool, for_promtool(e[1])), listed))
    return [f"{where}: {error}" for (where, _), error in zip(listed, errors, strict=True) if error]


def markdown_anchors(text: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    in_code = False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_code = not in_code
            continue
        match = re.match(r"#{1,6}\s+(.+?)\s*#*\s*$", line)
        if in_code or not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def alert_problems(rules: Iterable[dict[str, Any]], anchors: set[str]) -> list[str]:
    problems = []
    for rule in rules:
        name = rule["alert"]
        severity = rule.get("labels", {}).get("severity")
        if severity not in SEVERITIES:
            problems.append(f"{name}: severity {severity!r} is not one of {sorted(SEVERITIES)}")
        annotations = rule.get("annotations", {})
        for key in ("summary", "description", "runbook_url"):
            if not str(annotations.get(key, "")).strip():
                problems.append(f"{name} ({severity}): no {key} annotation")
        url = str(annotations.get("runbook_url", ""))
        match = RUNBOOK_URL.fullmatch(url)
        if url and not match:
            problems.append(f"{name}: runbook_url {url!r} is not docs/runbook.md#<anchor>")
        elif match and match.group(1) not in anchors:
            problems.append(f"{name}: docs/runbook.md has no heading with anchor #{match.group(1)}")
    return problems


def untested_alerts(rules: Iterable[dict[str, Any]], tests_doc: dict[str, Any]) -> list[str]:
    """Alerts (per severity) that no ``promtool`` test expects to fire, and alerts that no
    test expects to stay quiet."""
    fired: set[tuple[str, str]] = set()
    quiet: set[str] = set()
    for test in tests_doc.get("tests", []):
        for case in test.get("alert_rule_test", []):
            expected = case.get("exp_alerts") or []
            if not expected:
                quiet.add(case["alertname"])
            for alert in expected:
                fired.add((case["alertname"], str(alert.get("exp_labels", {}).get("severity"))))
    problems = []
    for rule in rules:
        name, severity = rule["alert"], str(rule.get("labels", {}).get("severity"))
        if (name, severity) not in fired:
            problems.append(f"{name} ({severity}): no promtool test expects it to fire")
        if name not in quiet:
            problems.append(f"{name}: no promtool test expects it to stay quiet")
    return sorted(set(problems))


def dashboard_problems(name: str, dashboard: dict[str, Any], datasource_uid: str) -> list[str]:
    problems = []
    if not dashboard.get("uid") or not dashboard.get("title"):
        problems.append(f"{name}: no uid or title")
    ids = [panel.get("id") for panel in panels_of(dashboard)]
    if len(ids) != len(set(ids)):
        problems.append(f"{name}: panel ids repeat")
    for panel in panels_of(dashboard):
        if panel.get("type") == "row":
            continue
        title = panel.get("title")
        targets = panel.get("targets") or []
        if not targets or not all(t.get("expr", "").strip() for t in targets):
            problems.append(f"{name}: panel {title!r} has a target with no query")
        for item in [panel, *targets]:
            uid = (item.get("datasource") or {}).get("uid")
            if uid != datasource_uid:
                problems.append(f"{name}: panel {title!r} uses data source {uid!r}")
    return problems


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is not on PATH under CI=true: the PromQL of the dashboards "
                        "and alerts must be parsed (apt-get install prometheus)")
        pytest.skip("parsing PromQL needs promtool (Debian package prometheus; "
                    "deploy/monitoring/check.sh installs it)")
    return found


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    return alert_rules(load_yaml(ALERTS))


@pytest.fixture(scope="module")
def anchors() -> set[str]:
    return markdown_anchors(RUNBOOK.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def datasource_uid() -> str:
    sources = load_yaml(DATASOURCES)["datasources"]
    assert len(sources) == 1, "the dashboards expect one Prometheus data source"
    uid: str = sources[0]["uid"]
    return uid


# -- the files as they are ---------------------------------------------------------------


def test_every_expression_parses(promtool: str) -> None:
    expressions = all_expressions()
    assert len(expressions) > 50
    assert promql_problems(expressions, promtool) == []


def test_every_metric_is_one_the_service_exports() -> None:
    expressions = all_expressions()
    used = set().union(*(metric_names(expr) for _, expr in expressions))
    assert len(used) > 30, used
    missing = sorted(set(unknown_metrics(expressions, exported_series())))
    assert missing == [], "\n".join(missing)


def test_every_label_selected_is_one_the_series_has() -> None:
    assert unknown_labels(all_expressions(), exported_series()) == []


def test_every_job_selected_is_scraped() -> None:
    jobs = scraped_jobs(load_yaml(PROMETHEUS_CONFIG))
    assert {"missionlink-api", "missionlink-worker"} <= jobs
    assert unknown_jobs(all_expressions(), jobs) == []


def test_the_alerts_the_issue_asks_for_exist(rules: list[dict[str, Any]]) -> None:
    assert {rule["alert"] for rule in rules} == EXPECTED_ALERTS
    assert {rule["labels"]["severity"] for rule in rules} == SEVERITIES


def test_every_alert_has_severity_annotations_and_a_runbook_entry(
    rules: list[dict[str, Any]], anchors: set[str]
) -> None:
    assert alert_problems(rules, anchors) == []


def test_every_alert_is_unit_tested_firing_and_quiet(rules: list[dict[str, Any]]) -> None:
    tests_doc = load_yaml(ALERT_TESTS)
    assert tests_doc["rule_files"] == ["alerts.yml"]
    assert untested_alerts(rules, tests_doc) == []


def test_prometheus_loads_the_rules_and_sends_to_alertmanager() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    for rule_file in config["rule_files"]:
        assert (PROMETHEUS_CONFIG.parent / rule_file).is_file(), rule_file
    assert "alerts.yml" in config["rule_files"]
    targets = [
        target
        for manager in config["alerting"]["alertmanagers"]
        for static in manager["static_configs"]
        for target in static["targets"]
    ]
    assert targets and all(t.endswith(":9093") for t in targets)


def test_dashboards_are_provisioned_and_well_formed(datasource_uid: str) -> None:
    dashboards = load_dashboards()
    assert set(dashboards) == EXPECTED_DASHBOARDS
    uids = [d["uid"] for d in dashboards.values()]
    assert len(uids) == len(set(uids))
    problems = [p for n, d in dashboards.items() for p in dashboard_problems(n, d, datasource_uid)]
    assert problems == []
    provider = load_yaml(DASHBOARD_PROVIDER)["providers"]
    assert [p["type"] for p in provider] == ["file"]


def test_money_flow_shows_every_kind_of_money() -> None:
    dashboard = load_dashboards()["missionlink-money.json"]
    used = set().union(*(metric_names(e) for _, e in dashboard_expressions("money", dashboard)))
    assert {
        "missionlink_pledged_krw_total",
        "missionlink_escrow_krw",
        "missionlink_paid_out_krw_total",
        "missionlink_refunded_krw_total",
        "missionlink_fees_krw_total",
    } <= used


def test_alertmanager_routes_pages_and_warnings_to_their_own_slack_channel() -> None:
    config = load_yaml(ALERTMANAGER_CONFIG)
    route = config["route"]
    assert {"alertname", "job"} <= set(route["group_by"])
    for key in ("group_wait", "group_interval", "repeat_interval"):
        assert key in route
    by_severity = {}
    for child in route["routes"]:
        (matcher,) = child["matchers"]
        by_severity[matcher.replace(" ", "")] = child["receiver"]
    assert set(by_severity) == {'severity="page"', 'severity="warning"'}
    assert by_severity['severity="page"'] != by_severity['severity="warning"']
    receivers = {r["name"]: r for r in config["receivers"]}
    webhook_files = set()
    for name in by_severity.values():
        (slack,) = receivers[name]["slack_configs"]
        assert "api_url" not in slack, "the webhook URL is a secret: api_url_file only"
        assert slack["api_url_file"].startswith("/run/secrets/")
        webhook_files.add(slack["api_url_file"])
    assert len(webhook_files) == 2, "each channel has its own webhook"
    (inhibit,) = config["inhibit_rules"]
    assert inhibit["source_matchers"] == ['severity="page"']
    assert inhibit["target_matchers"] == ['severity="warning"']
    assert set(inhibit["equal"]) == {"alertname", "job"}
    for template in config["templates"]:
        assert (ALERTMANAGER_CONFIG.parent / template).is_file(), template


# -- the checks catch broken variants -------------------------------------------------------


def test_an_unknown_metric_or_label_is_caught() -> None:
    exported = exported_series()
    broken = [("broken", 'sum(rate(missionlink_pledges_made_total{job="missionlink-api"}[5m]))')]
    assert unknown_metrics(broken, exported) == [
        "broken: missionlink_pledges_made_total is not exported by the service"
    ]
    # A counter is exported with _total; the bare family name is not a series.
    assert unknown_metrics([("bare", "rate(missionlink_outbox_events[5m])")], exported)
    assert unknown_labels([("label", 'missionlink_emails_total{reason="dead"}')], exported) == [
        "label: missionlink_emails_total has no label 'reason'"
    ]
    # A metric name inside a string literal is not a series read.
    assert metric_names('up{job="missionlink_api"}') == set()


def test_a_dashboard_panel_with_an_unknown_metric_is_caught(datasource_uid: str) -> None:
    dashboard = copy.deepcopy(load_dashboards()["missionlink-workers.json"])
    panel = next(p for p in panels_of(dashboard) if p.get("targets"))
    panel["targets"][0]["expr"] = "max(missionlink_outbox_lag_seconds)"
    panel["datasource"] = {"type": "prometheus", "uid": "some-other"}
    problems = unknown_metrics(dashboard_expressions("workers", dashboard), exported_series())
    assert len(problems) == 1 and "missionlink_outbox_lag_seconds" in problems[0]
    assert any("some-other" in p for p in dashboard_problems("workers", dashboard, datasource_uid))


def test_an_unparsable_expression_is_caught(promtool: str) -> None:
    problems = promql_problems(
        [("good", "sum(rate(missionlink_emails_total[$__rate_interval]))"),
         ("bad", "sum(rate(missionlink_emails_total[5m])")],
        promtool,
    )
    assert len(problems) == 1 and problems[0].startswith("bad: ")


def test_a_missing_runbook_anchor_or_annotation_is_caught(
    rules: list[dict[str, Any]], anchors: set[str]
) -> None:
    broken = copy.deepcopy(rules[0])
    broken["annotations"]["runbook_url"] = "docs/runbook.md#no-such-section"
    assert alert_problems([broken], anchors) == [
        f"{broken['alert']}: docs/runbook.md has no heading with anchor #no-such-section"
    ]
    bare = {"alert": "Bare", "expr": "vector(1)", "labels": {"severity": "critical"}}
    assert alert_problems([bare], anchors) == [
        "Bare: severity 'critical' is not one of ['page', 'warning']",
        "Bare (critical): no summary annotation",
        "Bare (critical): no description annotation",
        "Bare (critical): no runbook_url annotation",
    ]
    assert markdown_anchors("# A, b & C\n```\n# not a heading\n```\n## A, b & C") == {
        "a-b--c", "a-b--c-1"
    }


def test_an_alert_without_a_unit_test_is_caught(rules: list[dict[str, Any]]) -> None:
    tests_doc = load_yaml(ALERT_TESTS)
    extra = {"alert": "MissionLinkNew", "expr": "vector(1)", "labels": {"severity": "page"}}
    assert untested_alerts([*rules, extra], tests_doc) == [
        "MissionLinkNew (page): no promtool test expects it to fire",
        "MissionLinkNew: no promtool test expects it to stay quiet",
    ]


def test_a_job_that_is_not_scraped_is_caught() -> None:
    jobs = scraped_jobs(load_yaml(PROMETHEUS_CONFIG))
    assert unknown_jobs([("x", 'up{job=~"missionlink-api|missionlink-web"}')], jobs) == [
        "x: job 'missionlink-web' is not scraped"
    ]
