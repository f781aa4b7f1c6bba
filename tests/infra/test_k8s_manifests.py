"""The Kubernetes overlays, rendered with ``kubectl kustomize``: every guard in
deploy/k8s/guards.py passes on dev, staging and prod, and each guard catches a broken
variant (the rendered prod manifests with one thing changed)."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra import load_guards

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
ENVIRONMENTS = ("dev", "staging", "prod")
Docs = list[dict[str, Any]]


guards = load_guards(K8S / "guards.py", "missionlink_k8s_guards")


def _kubectl() -> str:
    found = os.environ.get("KUBECTL") or shutil.which("kubectl")
    if not found:
        if os.environ.get("CI") == "true":
            pytest.fail("kubectl is not on PATH under CI=true: the Kubernetes overlays must render")
        pytest.skip("rendering the Kubernetes overlays needs kubectl (1.27 or later)")
    return found


@pytest.fixture(scope="module")
def rendered() -> dict[str, Docs]:
    kubectl = _kubectl()
    out = {}
    for env in ENVIRONMENTS:
        result = subprocess.run(
            [kubectl, "kustomize", str(K8S / "overlays" / env)],
            capture_output=True, text=True, timeout=60, check=False,
        )
        assert result.returncode == 0, f"kubectl kustomize overlays/{env}:\n{result.stderr}"
        out[env] = [d for d in yaml.safe_load_all(result.stdout) if d]
    return out


@pytest.fixture
def prod(rendered: dict[str, Docs]) -> Docs:
    return copy.deepcopy(rendered["prod"])


def one(docs: Docs, kind: str, name: str = "") -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and name in d["metadata"]["name"]]
    assert found, f"no {kind} {name}"
    return found[0]


def container(docs: Docs, deployment: str) -> dict[str, Any]:
    return one(docs, "Deployment", deployment)["spec"]["template"]["spec"]["containers"][0]


def settings(docs: Docs) -> dict[str, str]:
    data: dict[str, str] = one(docs, "ConfigMap", "missionlink-settings")["data"]
    return data


def caught(pitfall: str, problems: list[str], needle: str = "") -> None:
    assert problems, f"{pitfall} guard missed the broken variant"
    assert all(p.startswith(pitfall) for p in problems), problems
    if needle:
        assert any(needle in p for p in problems), problems


# every overlay passes ----------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_guard_passes_on_the_overlay(rendered: dict[str, Docs], env: str) -> None:
    docs = rendered[env]
    problems = [p for check in guards.GUARDS.values() for p in check(docs)]
    problems += guards.check_p6(docs, env)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_staging_and_prod_set_their_cors_origins_themselves(env: str) -> None:
    overlay = (K8S / "overlays" / env / "kustomization.yaml").read_text()
    base = (K8S / "base" / "kustomization.yaml").read_text()
    assert "MISSIONLINK_CORS_ORIGINS=https://" in overlay, f"P6 overlays/{env} sets no origins"
    assert "MISSIONLINK_CORS_ORIGINS=" not in base, "P6 the base must not choose origins"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_environment_runs_as_itself(rendered: dict[str, Docs], env: str) -> None:
    docs = rendered[env]
    assert settings(docs)["MISSIONLINK_ENV"] == env
    account = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}[env]
    role = one(docs, "ServiceAccount")["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert re.fullmatch(rf"arn:aws:iam::{account}:role/missionlink-{env}-pods", role)
    keys = [d["remoteRef"]["key"] for d in one(docs, "ExternalSecret")["spec"]["data"]]
    assert all(k.startswith(f"missionlink-{env}/") for k in keys), keys
    assert container(docs, "api")["image"].startswith(f"{account}.dkr.ecr.")
    labels = one(docs, "Namespace")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {
        "missionlink"
    }


def test_the_migration_job_runs_a_command_the_cli_offers(rendered: dict[str, Docs]) -> None:
    cli = (ROOT / "src" / "missionlink" / "cli.py").read_text()
    for docs in rendered.values():
        job = one(docs, "Job", "migrate")["spec"]["template"]["spec"]
        (command,) = job["containers"][0]["args"]
        assert f'sub.add_parser("{command}"' in cli
        assert job["restartPolicy"] == "Never"


def test_the_api_scales_on_the_request_rate_the_app_exports(rendered: dict[str, Docs]) -> None:
    rules = yaml.safe_load((K8S / "monitoring" / "prometheus-adapter-rules.yaml").read_text())
    (rule,) = rules["rules"]["custom"]
    series = re.match(r"(\w+)\{", rule["seriesQuery"])
    assert series and series.group(1).endswith("_count")
    histogram = series.group(1).removesuffix("_count")
    metrics = (ROOT / "src" / "missionlink" / "observability" / "metrics.py").read_text()
    assert re.search(rf'Histogram\(\s*"{histogram}"', metrics), f"{histogram} not in metrics.py"
    for docs in rendered.values():
        hpa = one(docs, "HorizontalPodAutoscaler")["spec"]
        kinds = {m["type"]: m for m in hpa["metrics"]}
        assert kinds["Resource"]["resource"]["name"] == "cpu"
        assert kinds["Pods"]["pods"]["metric"]["name"] == rule["name"]["as"]
        assert hpa["minReplicas"] <= hpa["maxReplicas"]


def _ingress_peers(docs: Docs, component: str) -> list[dict[str, Any]]:
    peers = []
    for policy in (d for d in docs if d["kind"] == "NetworkPolicy"):
        selector = policy["spec"]["podSelector"].get("matchLabels", {})
        if selector.get("app.kubernetes.io/component", component) != component:
            continue
        for rule in policy["spec"].get("ingress", []):
            peers += rule.get("from", [{}])
    return peers


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_only_the_balancer_and_the_scraper_get_in(rendered: dict[str, Docs], env: str) -> None:
    docs = rendered[env]
    deny = one(docs, "NetworkPolicy", "default-deny-ingress")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}
    deny = one(docs, "NetworkPolicy", "default-deny-egress")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Egress"]}
    scraper = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
    }
    assert _ingress_peers(docs, "worker") == [scraper]
    api = _ingress_peers(docs, "api")
    assert scraper in api and len(api) == 2
    (balancer,) = [p for p in api if p != scraper]
    assert set(balancer) == {"ipBlock"}


def _policy(docs: Docs, name: str) -> dict[str, Any]:
    return one(docs, "NetworkPolicy", name)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_scraper_reaches_only_the_metrics_ports(rendered: dict[str, Docs], env: str) -> None:
    docs = rendered[env]
    scraped = {}
    for name in ("api-metrics-from-prometheus", "worker-metrics-from-prometheus"):
        spec = _policy(docs, name)["spec"]
        (rule,) = spec["ingress"]
        scraped[spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"]] = [
            p["port"] for p in rule["ports"]]
    data = settings(docs)
    assert scraped == {"api": [int(data["MISSIONLINK_API_METRICS_PORT"])],
                       "worker": [int(data["MISSIONLINK_METRICS_PORT"])]}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_data_stores_are_reached_in_the_environments_vpc(
    rendered: dict[str, Docs], env: str,
) -> None:
    aws = (ROOT / "deploy" / "aws" / "missionlink_infra" / "config.py").read_text()
    match = re.search(rf'name="{env}",.*?vpc_cidr="([^"]+)"', aws, re.S)
    assert match, f"no VPC range for {env} in deploy/aws"
    for name in ("egress-postgres", "egress-broker"):
        (rule,) = _policy(rendered[env], name)["spec"]["egress"]
        assert rule["to"] == [{"ipBlock": {"cidr": match.group(1)}}], name


def test_the_scrape_jobs_are_valid_and_named_as_the_alerts_select(tmp_path: Path) -> None:
    scrape = K8S / "monitoring" / "prometheus-scrape.yaml"
    jobs = {j["job_name"]: j for j in yaml.safe_load(scrape.read_text())["scrape_configs"]}
    alerts = (ROOT / "deploy" / "monitoring" / "prometheus" / "alerts.yml").read_text()
    for job in jobs:
        assert f'job="{job}"' in alerts, f"no alert selects {job}"
    for component, job in (("api", "missionlink-api"), ("worker", "missionlink-worker")):
        keeps = {r["source_labels"][0]: r["regex"] for r in jobs[job]["relabel_configs"]
                 if r.get("action") == "keep"}
        assert keeps["__meta_kubernetes_pod_label_app_kubernetes_io_component"] == component
        assert keeps["__meta_kubernetes_pod_container_port_name"] == "metrics"
    promtool = shutil.which("promtool")
    if not promtool:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is not on PATH under CI=true")
        pytest.skip("checking the scrape jobs needs promtool (Debian package prometheus)")
    # Debian's promtool is built without Kubernetes discovery: the jobs are checked with
    # a static target in its place (the relabelling, regexes included, is what is checked).
    checked = yaml.safe_load(scrape.read_text())
    for job in checked["scrape_configs"]:
        assert job.pop("kubernetes_sd_configs")[0]["role"] == "pod"
        job["static_configs"] = [{"targets": ["127.0.0.1:9101"]}]
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(checked))
    result = subprocess.run([promtool, "check", "config", "--syntax-only", str(config)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# each guard catches its broken variant -------------------------------------------------------


Mutation = Callable[[Docs], None]


def _set_probe(probe: str, field: str, value: Any) -> Mutation:
    return lambda d: container(d, "api")[probe]["httpGet"].__setitem__(field, value)


def _annotate(key: str, value: str) -> Mutation:
    return lambda d: one(d, "Ingress")["metadata"]["annotations"].__setitem__(
        "alb.ingress.kubernetes.io/" + key, value
    )


P4_BREAKS: dict[str, tuple[Mutation, str]] = {
    "readiness probe on an undeclared port": (_set_probe("readinessProbe", "port", 8080), "8080"),
    "liveness probe on a path the app lacks": (_set_probe("livenessProbe", "path", "/health"), "/health"),
    "readiness probe on liveness": (_set_probe("readinessProbe", "path", "/healthz"), "readinessProbe"),
    "serve on another port": (
        lambda d: container(d, "api").__setitem__("args", ["serve", "--host", "0.0.0.0", "--port", "9000"]),
        "9000",
    ),
    "Service to the wrong port": (
        lambda d: one(d, "Service")["spec"]["ports"][0].__setitem__("targetPort", 8080),
        "targetPort",
    ),
    "ALB health check on another path": (_annotate("healthcheck-path", "/"), "healthcheck-path"),
    "ALB health check on the listener port": (_annotate("healthcheck-port", "80"), "healthcheck-port"),
    "Ingress to a port the Service lacks": (
        lambda d: one(d, "Ingress")["spec"]["rules"][0]["http"]["paths"][1]["backend"]["service"]
        .__setitem__("port", {"number": 8000}),
        "backend port",
    ),
    "worker probe off METRICS_PORT": (
        lambda d: container(d, "worker")["livenessProbe"]["httpGet"].__setitem__("port", 8000),
        "METRICS_PORT",
    ),
    "worker liveness on /metrics": (
        lambda d: container(d, "worker")["livenessProbe"]["httpGet"].__setitem__("path", "/metrics"),
        "worker's /healthz",
    ),
    "worker readiness on liveness": (
        lambda d: container(d, "worker")["readinessProbe"]["httpGet"].__setitem__("path", "/healthz"),
        "worker's /readyz",
    ),
    "worker without a readiness probe": (
        lambda d: container(d, "worker").pop("readinessProbe"), "no readinessProbe",
    ),
    "API scraped on its public port": (
        lambda d: _pod_annotations(d, "api").__setitem__("prometheus.io/port", "8000"),
        "API_METRICS_PORT 9101",
    ),
    "API metrics port not declared": (
        lambda d: container(d, "api").__setitem__("ports", container(d, "api")["ports"][:1]),
        "no containerPort for API_METRICS_PORT",
    ),
    "API_METRICS_PORT moved, annotation left": (
        lambda d: settings(d).__setitem__("MISSIONLINK_API_METRICS_PORT", "9200"), "9200",
    ),
    "API metrics listener off": (
        lambda d: settings(d).__setitem__("MISSIONLINK_API_METRICS_PORT", "0"), "nothing to scrape",
    ),
    "metrics port not named metrics": (
        lambda d: container(d, "worker")["ports"][0].__setitem__("name", "prom"),
        "not named metrics",
    ),
    "worker scraped on the wrong port": (
        lambda d: _pod_annotations(d, "worker").__setitem__("prometheus.io/port", "9101"),
        "METRICS_PORT 9100",
    ),
}


def _pod_annotations(docs: Docs, deployment: str) -> dict[str, str]:
    notes: dict[str, str] = one(docs, "Deployment", deployment)["spec"]["template"]["metadata"][
        "annotations"]
    return notes


@pytest.mark.parametrize("case", list(P4_BREAKS))
def test_p4_guard_catches(prod: Docs, case: str) -> None:
    mutate, needle = P4_BREAKS[case]
    mutate(prod)
    caught("P4", guards.check_p4(prod), needle)


@pytest.mark.parametrize(
    ("origins", "needle"),
    [(None, "not set"), ("*", "any origin"), ("http://missionlink.example", "non-HTTPS"),
     ("https://missionlink.example,http://localhost:8000", "local"),
     ("https://other.example", "PUBLIC_URL")],
)
def test_p6_guard_catches(prod: Docs, origins: str | None, needle: str) -> None:
    data = settings(prod)
    if origins is None:
        del data["MISSIONLINK_CORS_ORIGINS"]
    else:
        data["MISSIONLINK_CORS_ORIGINS"] = origins
    caught("P6", guards.check_p6(prod, "prod"), needle)


@pytest.mark.parametrize(
    ("image", "needle"),
    [("", "empty"), ("repo/missionlink", "no tag"), ("repo/missionlink:latest", "mutable"),
     ("registry:5000/missionlink", "no tag"), ("repo/missionlink:", "mutable"),
     ("repo/missionlink:main", "neither"), ("repo/missionlink@sha256:abc", "digest")],
)
def test_p14_guard_catches(prod: Docs, image: str, needle: str) -> None:
    one(prod, "Job")["spec"]["template"]["spec"]["containers"][0]["image"] = image
    caught("P14", guards.check_p14(prod), needle)


def test_p14_guard_accepts_a_digest(prod: Docs) -> None:
    container(prod, "api")["image"] = "repo/missionlink@sha256:" + "a" * 64
    assert guards.check_p14(prod) == []


def _add_env(name: str, value: str) -> Mutation:
    return lambda d: container(d, "worker").setdefault("env", []).append({"name": name, "value": value})


def _drop_external(secret_key: str) -> Mutation:
    def drop(d: Docs) -> None:
        data = one(d, "ExternalSecret")["spec"]["data"]
        kept = [item for item in data if item["secretKey"] != secret_key]
        assert len(kept) == len(data) - 1, f"no ExternalSecret entry {secret_key}"
        data[:] = kept

    return drop


P16_BREAKS: dict[str, tuple[Mutation, str]] = {
    "a password as a plain value": (_add_env("MISSIONLINK_DATABASE_PASSWORD", "hunter2"), "plain value"),
    "a database URL as a plain value": (
        _add_env("MISSIONLINK_DATABASE_URL", "postgresql://u:p@db/core"), "plain value"
    ),
    "a secret in the ConfigMap": (
        lambda d: settings(d).__setitem__("MISSIONLINK_JWT_PRIVATE_KEY", "-----BEGIN"), "ConfigMap"
    ),
    "a Secret with values": (
        lambda d: d.append({"apiVersion": "v1", "kind": "Secret",
                            "metadata": {"name": "x"}, "stringData": {"k": "v"}}),
        "secret values",
    ),
    "a Secret nothing fills": (
        lambda d: container(d, "api")["envFrom"].append({"secretRef": {"name": "hand-made"}}),
        "hand-made",
    ),
    "a secret setting with no source": (
        lambda d: _drop_external("MISSIONLINK_PAYMENT_WEBHOOK_SECRET")(d), "PAYMENT_WEBHOOK_SECRET"
    ),
    "a SecretStr setting with no source": (
        lambda d: _drop_external("MISSIONLINK_PAYOUT_ACCOUNT_KEYS")(d), "PAYOUT_ACCOUNT_KEYS"
    ),
    "a SecretStr setting in the ConfigMap": (
        lambda d: settings(d).__setitem__("MISSIONLINK_PAYOUT_ACCOUNT_KEYS", "k1:AAAA"),
        "PAYOUT_ACCOUNT_KEYS is a secret in a ConfigMap",
    ),
    "a SecretStr setting as a plain value": (
        _add_env("MISSIONLINK_PAYOUT_ACCOUNT_KEYS", "k1:AAAA"), "PAYOUT_ACCOUNT_KEYS has a plain"
    ),
    "a templated target": (
        lambda d: one(d, "ExternalSecret")["spec"]["target"].__setitem__(
            "template", {"data": {"MISSIONLINK_SMTP_PASSWORD": "literal"}}
        ),
        "template",
    ),
    "a store with static keys": (
        lambda d: one(d, "SecretStore")["spec"]["provider"]["aws"].__setitem__(
            "auth", {"secretRef": {"accessKeyIDSecretRef": {"name": "k", "key": "id"}}}
        ),
        "static access keys",
    ),
}


@pytest.mark.parametrize("case", list(P16_BREAKS))
def test_p16_guard_catches(prod: Docs, case: str) -> None:
    mutate, needle = P16_BREAKS[case]
    mutate(prod)
    caught("P16", guards.check_p16(prod), needle)


def test_every_secret_setting_in_config_is_known_to_the_guard() -> None:
    names = guards.secret_settings()
    for expected in ("DATABASE_URL", "IDENTITY_DATABASE_URL", "BROKER_URL", "JWT_PRIVATE_KEY",
                     "SMTP_PASSWORD", "PAYMENT_WEBHOOK_SECRET", "PORTONE_API_SECRET",
                     "PORTONE_WEBHOOK_SECRET", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET",
                     "PAYOUT_ACCOUNT_KEYS"):
        assert f"MISSIONLINK_{expected}" in names, names


def test_every_secret_setting_comes_from_the_external_secret(rendered: dict[str, Docs]) -> None:
    for env, docs in rendered.items():
        provided = {item["secretKey"] for item in one(docs, "ExternalSecret")["spec"]["data"]}
        assert set(guards.secret_settings()) <= provided, env
        assert "MISSIONLINK_PAYOUT_ACCOUNT_KEYS" in provided, env


def test_a_setting_typed_secretstr_is_a_secret_whatever_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import product_facts

    config = (ROOT / "src" / "missionlink" / "config.py").read_text().replace(
        "    payout_minimum: int", '    bank_pepper: SecretStr = SecretStr("")\n'
        "    payout_minimum: int", 1)
    assert "bank_pepper" in config
    (tmp_path / "config.py").write_text(config)
    monkeypatch.setattr(product_facts, "SRC", tmp_path)
    monkeypatch.setattr(guards, "SRC", tmp_path)
    assert "MISSIONLINK_BANK_PEPPER" in guards.secret_settings()
    assert guards.is_secret("MISSIONLINK_BANK_PEPPER")
    assert not guards.is_secret("MISSIONLINK_PAYOUT_MINIMUM")


def _security(field: str, value: Any) -> Mutation:
    return lambda d: container(d, "api")["securityContext"].__setitem__(field, value)


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [(_security("readOnlyRootFilesystem", False), "writable"),
     (_security("allowPrivilegeEscalation", True), "escalation"),
     (_security("capabilities", {"drop": ["NET_RAW"]}), "drop ALL"),
     (lambda d: one(d, "Job")["spec"]["template"]["spec"]["securityContext"].pop("runAsNonRoot"),
      "root"),
     (lambda d: container(d, "worker").__setitem__("volumeMounts", []), "/tmp")],
)
def test_pod_security_guard_catches(prod: Docs, mutate: Mutation, needle: str) -> None:
    mutate(prod)
    caught("PSS", guards.check_pod_security(prod), needle)


def _egress(name: str) -> Callable[[Docs], list[dict[str, Any]]]:
    return lambda d: one(d, "NetworkPolicy", name)["spec"]["egress"]


NET_BREAKS: dict[str, tuple[Mutation, str]] = {
    "no default-deny egress": (
        lambda d: d.remove(one(d, "NetworkPolicy", "default-deny-egress")), "default-deny egress",
    ),
    "an egress rule on every port": (
        lambda d: _egress("egress-postgres")(d)[0].pop("ports"), "every port",
    ),
    "an egress rule to everywhere": (
        lambda d: _egress("egress-broker")(d)[0].pop("to"), "every destination",
    ),
    "HTTPS to the internet": (
        lambda d: _egress("egress-smtp")(d)[0]["ports"].append({"protocol": "TCP", "port": 443}),
        "port 443",
    ),
    "PostgreSQL from any address": (
        lambda d: _egress("egress-postgres")(d)[0]["to"][0]["ipBlock"].__setitem__(
            "cidr", "0.0.0.0/0"),
        "any address",
    ),
    "DNS over UDP only": (
        lambda d: _egress("egress-dns")(d)[0]["ports"].pop(), "TCP 53",
    ),
    "worker cut off from the broker": (
        lambda d: _policy(d, "egress-broker")["spec"]["podSelector"]["matchExpressions"][0]
        .__setitem__("values", ["api"]),
        "missionlink-worker: no egress to TCP 6379",
    ),
    "migration Job cut off from PostgreSQL": (
        lambda d: _policy(d, "egress-postgres")["spec"]["podSelector"]["matchExpressions"][0]
        .__setitem__("values", ["api", "worker"]),
        "missionlink-migrate: no egress to TCP 5432",
    ),
    "SMTP on a port the app does not use": (
        lambda d: settings(d).__setitem__("MISSIONLINK_SMTP_PORT", "465"), "port 587",
    ),
    "API metrics open to the balancer": (
        lambda d: _policy(d, "api-from-load-balancer")["spec"]["ingress"][0]["ports"].append(
            {"protocol": "TCP", "port": 9101}),
        "not only the scraper",
    ),
    "worker metrics open to every pod": (
        lambda d: _policy(d, "worker-metrics-from-prometheus")["spec"]["ingress"][0].pop("from"),
        "not only the scraper",
    ),
    "scraper kept off the API's metrics port": (
        lambda d: _policy(d, "api-metrics-from-prometheus")["spec"]["ingress"][0]["ports"][0]
        .__setitem__("port", 8000),
        "may not reach metrics port 9101",
    ),
}


@pytest.mark.parametrize("case", list(NET_BREAKS))
def test_network_guard_catches(prod: Docs, case: str) -> None:
    mutate, needle = NET_BREAKS[case]
    mutate(prod)
    caught("NET", guards.check_network(prod), needle)


MONITORING = ROOT / "deploy" / "monitoring"


def monitoring_files() -> set[str]:
    """The files deploy/monitoring gives the monitoring stack (not its check script, nor
    the compose-only Prometheus configuration and Grafana file provider)."""
    wanted = [MONITORING / "prometheus" / "alerts.yml",
              *(MONITORING / "alertmanager").iterdir(),
              *(MONITORING / "grafana" / "dashboards").glob("*.json"),
              *(MONITORING / "grafana" / "provisioning" / "datasources").iterdir()]
    return {p.name for p in wanted}


def configmap_files(docs: Docs) -> dict[str, set[str]]:
    return {d["metadata"]["name"].rsplit("-", 1)[0]: set(d.get("data", {}))
            for d in docs if d["kind"] == "ConfigMap"}


def monitoring_problems(docs: Docs) -> list[str]:
    """Every monitoring file is in a ConfigMap of the namespace monitoring, each under
    Kubernetes's 1 MiB, and the Grafana ones carry the sidecar's labels."""
    problems = []
    carried = set().union(*configmap_files(docs).values()) if docs else set()
    problems += [f"{name}: in deploy/monitoring, in no ConfigMap"
                 for name in sorted(monitoring_files() - carried)]
    for d in docs:
        name = d["metadata"]["name"]
        if d["metadata"].get("namespace") != "monitoring":
            problems.append(f"{name}: not in the namespace monitoring")
        size = sum(len(v.encode()) for v in d.get("data", {}).values())
        if size > 1_000_000:
            problems.append(f"{name}: {size} bytes, over a ConfigMap's limit")
        labels = d["metadata"].get("labels", {})
        if "grafana-dashboards" in name and labels.get("grafana_dashboard") != "1":
            problems.append(f"{name}: no grafana_dashboard label for the sidecar")
    return problems


@pytest.fixture(scope="module")
def monitoring_docs() -> Docs:
    result = subprocess.run(
        [_kubectl(), "kustomize", "--load-restrictor", "LoadRestrictionsNone",
         str(K8S / "monitoring")], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def test_the_monitoring_stack_gets_every_file_of_deploy_monitoring(
        monitoring_docs: Docs) -> None:
    assert monitoring_problems(monitoring_docs) == []
    assert "prometheus-scrape.yaml" in configmap_files(monitoring_docs)["missionlink-prometheus"]


def test_a_dashboard_left_out_or_unlabelled_is_caught(monitoring_docs: Docs) -> None:
    docs = copy.deepcopy(monitoring_docs)
    dashboards = next(d for d in docs if "grafana-dashboards" in d["metadata"]["name"])
    dashboards["data"].pop("missionlink-money.json")
    dashboards["metadata"]["labels"].pop("grafana_dashboard")
    problems = monitoring_problems(docs)
    assert any("missionlink-money.json" in p for p in problems), problems
    assert any("grafana_dashboard" in p for p in problems), problems
