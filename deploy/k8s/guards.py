"""Pitfall guards for the rendered Kubernetes manifests (``kubectl kustomize overlays/<env>``).

Each guard takes the rendered objects and returns problems, each starting with the id of
the pitfall it prevents (P4, P6, P14, P16 in the deployment pitfall list), ``PSS`` for
the restricted Pod Security profile, or ``NET`` for the NetworkPolicies (who gets in, what
gets out). The product's own files are the reference (deploy/product_facts.py): probe
paths come from ``api/routers/health.py`` and ``workers/health.py``, the ``serve`` port
default from ``cli.py``, the metrics ports from ``config.py``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from product_facts import (
    SRC,
    api_metrics_default_port,
    health_paths,
    metrics_default_port,
    secret_typed_settings,
    serve_default_port,
    worker_health_paths,
)

Doc = dict[str, Any]

POD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}
SECRET_NAME = re.compile(
    r"PASSWORD|SECRET|PRIVATE_KEY|AUTH_TOKEN|ACCESS_KEY|API_KEY|DATABASE_URL|BROKER_URL"
)
SEMVER = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")
GIT_SHA = re.compile(r"^[0-9a-f]{7,40}$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
INGRESS_ANNOTATION = "alb.ingress.kubernetes.io/"


def is_secret(name: str) -> bool:
    """A credential: by its name, or a setting config.py types ``SecretStr``."""
    upper = name.upper()
    return bool(SECRET_NAME.search(upper)) or upper in secret_typed_settings()


def secret_settings() -> list[str]:
    """MISSIONLINK_<NAME> of every setting in config.py that holds a credential."""
    text = (SRC / "config.py").read_text()
    names = re.findall(r"^    ([a-z_]+): ", text, re.M)
    return sorted(f"MISSIONLINK_{n.upper()}" for n in names if is_secret(f"MISSIONLINK_{n}"))


# helpers ---------------------------------------------------------------------------------


def objects(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d.get("kind") == kind]


def name_of(doc: Doc) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def pod_spec(doc: Doc) -> Doc:
    spec = doc["spec"]
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return dict(spec["template"]["spec"])


def pod_labels(doc: Doc) -> dict[str, str]:
    return dict(doc["spec"]["template"]["metadata"].get("labels", {}))


def containers(doc: Doc) -> Iterator[Doc]:
    spec = pod_spec(doc)
    yield from spec.get("initContainers", [])
    yield from spec.get("containers", [])


def workloads(docs: list[Doc]) -> list[Doc]:
    return [d for d in docs if d.get("kind") in POD_KINDS]


def resolve_port(container: Doc, port: int | str) -> int | None:
    """The declared containerPort a probe or Service port means, or None."""
    for declared in container.get("ports", []):
        if port in (declared["containerPort"], declared.get("name")):
            return int(declared["containerPort"])
    return None


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def config_data(docs: list[Doc]) -> dict[str, str]:
    data: dict[str, str] = {}
    for cm in objects(docs, "ConfigMap"):
        data.update(cm.get("data", {}))
    return data


def api_container(docs: list[Doc]) -> tuple[Doc, Doc] | None:
    for doc in objects(docs, "Deployment"):
        for c in pod_spec(doc)["containers"]:
            if c.get("args", [None])[0] == "serve" or c.get("command", [None])[-1:] == ["serve"]:
                return doc, c
    return None


# P4: probes, Service, Ingress health check on the container's real port and path ------------


def check_p4(docs: list[Doc]) -> list[str]:
    problems: list[str] = []
    paths = health_paths()
    found = api_container(docs)
    if found is None:
        return ["P4 no Deployment runs `missionlink serve`"]
    api, c = found
    args = c.get("args", [])
    listen = int(args[args.index("--port") + 1]) if "--port" in args else serve_default_port()
    if resolve_port(c, listen) is None:
        problems.append(f"P4 {name_of(api)}: serve listens on {listen}, no containerPort has it")
    wanted = {
        "startupProbe": paths["liveness"],
        "livenessProbe": paths["liveness"],
        "readinessProbe": paths["readiness"],
    }
    for probe, path in wanted.items():
        get = c.get(probe, {}).get("httpGet")
        if not get:
            problems.append(f"P4 {name_of(api)}: no {probe} (httpGet {path})")
            continue
        if get.get("path") != path:
            problems.append(f"P4 {name_of(api)}: {probe} path {get.get('path')} is not {path}")
        if resolve_port(c, get["port"]) != listen:
            problems.append(
                f"P4 {name_of(api)}: {probe} port {get['port']} is not the serve port {listen}"
            )
    problems += _check_workers_metrics_port(docs)
    services = [
        s for s in objects(docs, "Service")
        if selects(s["spec"].get("selector", {}), pod_labels(api))
    ]
    if not services:
        problems.append(f"P4 no Service selects the pods of {name_of(api)}")
    for svc in services:
        for port in svc["spec"]["ports"]:
            if resolve_port(c, port.get("targetPort", port["port"])) != listen:
                problems.append(
                    f"P4 {name_of(svc)}: targetPort {port.get('targetPort')} is not {listen}"
                )
    problems += _check_ingress(docs, services, c, listen, paths["readiness"])
    return problems


def _check_workers_metrics_port(docs: list[Doc]) -> list[str]:
    """The worker's probes on METRICS_PORT and its health routes; the scraper on the
    metrics ports of both (the API's internal API_METRICS_PORT, the worker's METRICS_PORT)."""
    problems = []
    data = config_data(docs)
    metrics_port = data.get("MISSIONLINK_METRICS_PORT", str(metrics_default_port()))
    paths = worker_health_paths()
    wanted = {"startupProbe": paths["liveness"], "livenessProbe": paths["liveness"],
              "readinessProbe": paths["readiness"]}
    for doc in objects(docs, "Deployment"):
        for c in pod_spec(doc)["containers"]:
            if c.get("args", [None])[0] != "worker":
                continue
            for probe, path in wanted.items():
                get = c.get(probe, {}).get("httpGet")
                if not get:
                    problems.append(f"P4 {name_of(doc)}: no {probe} (httpGet {path})")
                    continue
                if str(resolve_port(c, get["port"])) != metrics_port:
                    problems.append(
                        f"P4 {name_of(doc)}: {probe} port {get['port']} is not METRICS_PORT "
                        f"{metrics_port}"
                    )
                if get.get("path") != path:
                    problems.append(
                        f"P4 {name_of(doc)}: {probe} path {get.get('path')} is not the "
                        f"worker's {path}"
                    )
            problems += _check_scrape_port(doc, c, metrics_port, "METRICS_PORT")
    found = api_container(docs)
    if found is not None:
        api, c = found
        port = data.get("MISSIONLINK_API_METRICS_PORT", str(api_metrics_default_port()))
        if port == "0":
            problems.append(f"P4 {name_of(api)}: API_METRICS_PORT is 0, nothing to scrape")
        else:
            problems += _check_scrape_port(api, c, port, "API_METRICS_PORT")
    return problems


def _check_scrape_port(doc: Doc, c: Doc, port: str, setting: str) -> list[str]:
    problems = []
    declared = [p for p in c.get("ports", []) if str(p["containerPort"]) == port]
    if not declared:
        problems.append(f"P4 {name_of(doc)}: no containerPort for {setting} {port}")
    elif declared[0].get("name") != "metrics":
        # deploy/k8s/monitoring/prometheus-scrape.yaml keeps the port named metrics.
        problems.append(f"P4 {name_of(doc)}: the {setting} containerPort is not named metrics")
    notes = doc["spec"]["template"]["metadata"].get("annotations", {})
    if notes.get("prometheus.io/scrape") != "true":
        problems.append(f"P4 {name_of(doc)}: pods not marked for scraping (prometheus.io/scrape)")
    if notes.get("prometheus.io/port") != port:
        problems.append(
            f"P4 {name_of(doc)}: scraped on port {notes.get('prometheus.io/port')}, not "
            f"{setting} {port}"
        )
    if notes.get("prometheus.io/path", "/metrics") != "/metrics":
        problems.append(
            f"P4 {name_of(doc)}: scraped on {notes['prometheus.io/path']}, not /metrics"
        )
    return problems


def _check_ingress(
    docs: list[Doc], services: list[Doc], c: Doc, listen: int, ready: str
) -> list[str]:
    problems = []
    by_name = {s["metadata"]["name"]: s for s in services}
    ingresses = objects(docs, "Ingress")
    if not ingresses:
        problems.append("P4 no Ingress reaches the API")
    for ing in ingresses:
        notes = ing["metadata"].get("annotations", {})
        if notes.get(INGRESS_ANNOTATION + "healthcheck-path") != ready:
            problems.append(
                f"P4 {name_of(ing)}: healthcheck-path "
                f"{notes.get(INGRESS_ANNOTATION + 'healthcheck-path')} is not {ready}"
            )
        hc_port = notes.get(INGRESS_ANNOTATION + "healthcheck-port", "traffic-port")
        if hc_port != "traffic-port" and hc_port != str(listen):
            problems.append(f"P4 {name_of(ing)}: healthcheck-port {hc_port} is not {listen}")
        for rule in ing["spec"].get("rules", []):
            for path in rule.get("http", {}).get("paths", []):
                backend = path["backend"]["service"]
                if backend["port"].get("name") == "use-annotation":
                    continue
                svc = by_name.get(backend["name"])
                if svc is None:
                    problems.append(
                        f"P4 {name_of(ing)}: backend {backend['name']} is not the API's Service"
                    )
                    continue
                ports = [
                    p for p in svc["spec"]["ports"]
                    if backend["port"] in ({"name": p.get("name")}, {"number": p["port"]})
                ]
                if not ports:
                    problems.append(
                        f"P4 {name_of(ing)}: backend port {backend['port']} is not on "
                        f"{name_of(svc)}"
                    )
    return problems


# P6: browsers' origins set per environment ------------------------------------------------


def check_p6(docs: list[Doc], env: str) -> list[str]:
    data = config_data(docs)
    origins = [o.strip() for o in data.get("MISSIONLINK_CORS_ORIGINS", "").split(",") if o.strip()]
    public = data.get("MISSIONLINK_PUBLIC_URL", "")
    problems = []
    if not origins:
        return [f"P6 {env}: MISSIONLINK_CORS_ORIGINS is not set: browsers would be refused"]
    if "*" in origins:
        problems.append(f"P6 {env}: MISSIONLINK_CORS_ORIGINS allows any origin (*)")
    if public and public not in origins:
        problems.append(f"P6 {env}: PUBLIC_URL {public} is not among the CORS origins")
    if env != "dev":
        plain = [o for o in origins if not o.startswith("https://") or "localhost" in o]
        if plain:
            problems.append(f"P6 {env}: non-HTTPS or local CORS origins {plain}")
    return problems


# P14: immutable image references -----------------------------------------------------------


def image_problem(image: str) -> str | None:
    if not image:
        return "empty image"
    if "@" in image:
        return None if DIGEST.match(image.split("@", 1)[1]) else f"{image}: malformed digest"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"{image}: no tag (means latest)"
    tag = last.split(":", 1)[1]
    if not tag or tag == "latest":
        return f"{image}: tag {tag!r} is mutable"
    if not (SEMVER.match(tag) or GIT_SHA.match(tag)):
        return f"{image}: tag {tag!r} is neither a release version nor a git SHA"
    return None


def check_p14(docs: list[Doc]) -> list[str]:
    problems = []
    for doc in workloads(docs):
        for c in containers(doc):
            problem = image_problem(c.get("image", ""))
            if problem:
                problems.append(f"P14 {name_of(doc)}/{c['name']}: {problem}")
    return problems


# P16: secrets by reference only ------------------------------------------------------------


def check_p16(docs: list[Doc]) -> list[str]:
    problems = []
    for secret in objects(docs, "Secret"):
        if secret.get("data") or secret.get("stringData"):
            problems.append(f"P16 {name_of(secret)}: secret values in a manifest")
    for cm in objects(docs, "ConfigMap"):
        for key in cm.get("data", {}):
            if is_secret(key):
                problems.append(f"P16 {name_of(cm)}: {key} is a secret in a ConfigMap")
    targets = {e["spec"]["target"]["name"] for e in objects(docs, "ExternalSecret")}
    for doc in workloads(docs):
        for c in containers(doc):
            for var in c.get("env", []):
                if "value" in var and is_secret(var["name"]):
                    problems.append(
                        f"P16 {name_of(doc)}/{c['name']}: {var['name']} has a plain value"
                    )
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref and ref["name"] not in targets:
                    problems.append(
                        f"P16 {name_of(doc)}/{c['name']}: {var['name']} reads Secret "
                        f"{ref['name']}, which no ExternalSecret fills"
                    )
            for source in c.get("envFrom", []):
                ref = source.get("secretRef")
                if ref and ref["name"] not in targets:
                    problems.append(
                        f"P16 {name_of(doc)}/{c['name']}: envFrom Secret {ref['name']}, "
                        "which no ExternalSecret fills"
                    )
    problems += check_external_secrets(docs)
    return problems


def check_external_secrets(docs: list[Doc]) -> list[str]:
    """The shape of the CRD objects kubernetes-validate has no schema for."""
    problems = []
    stores = {s["metadata"]["name"] for s in objects(docs, "SecretStore")}
    externals = objects(docs, "ExternalSecret")
    if not externals:
        return ["P16 no ExternalSecret: the pods' secrets would have no source"]
    provided: set[str] = set()
    for ext in externals:
        spec = ext.get("spec", {})
        if ext.get("apiVersion") != "external-secrets.io/v1":
            problems.append(f"P16 {name_of(ext)}: apiVersion {ext.get('apiVersion')}")
        if spec.get("secretStoreRef", {}).get("name") not in stores:
            problems.append(f"P16 {name_of(ext)}: secretStoreRef names no SecretStore here")
        if not spec.get("target", {}).get("name"):
            problems.append(f"P16 {name_of(ext)}: no target Secret name")
        if "template" in spec.get("target", {}):
            problems.append(f"P16 {name_of(ext)}: a target template could hold literal values")
        for item in spec.get("data", []):
            key = item.get("remoteRef", {}).get("key", "")
            if not item.get("secretKey") or not key or set(item) != {"secretKey", "remoteRef"}:
                problems.append(f"P16 {name_of(ext)}: malformed data entry {item}")
            provided.add(item.get("secretKey", ""))
    for store in objects(docs, "SecretStore"):
        aws = store.get("spec", {}).get("provider", {}).get("aws", {})
        if not aws.get("auth", {}).get("jwt", {}).get("serviceAccountRef"):
            problems.append(f"P16 {name_of(store)}: not authenticated by a ServiceAccount (IRSA)")
        if "secretRef" in aws.get("auth", {}):
            problems.append(f"P16 {name_of(store)}: static access keys")
    missing = sorted(set(secret_settings()) - provided)
    if missing:
        problems.append(f"P16 secret settings no ExternalSecret provides: {missing}")
    return problems


# restricted Pod Security ------------------------------------------------------------------


def check_pod_security(docs: list[Doc]) -> list[str]:
    problems = []
    for doc in workloads(docs):
        spec = pod_spec(doc)
        pod_sc = spec.get("securityContext", {})
        mounts_tmp = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        if not pod_sc.get("runAsNonRoot"):
            problems.append(f"PSS {name_of(doc)}: pod may run as root")
        if pod_sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"PSS {name_of(doc)}: pod seccomp is not RuntimeDefault")
        for c in containers(doc):
            sc = c.get("securityContext", {})
            where = f"PSS {name_of(doc)}/{c['name']}"
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: privilege escalation allowed")
            if sc.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{where}: capabilities not dropped (drop ALL)")
            if sc.get("privileged"):
                problems.append(f"{where}: privileged")
            if not sc.get("readOnlyRootFilesystem"):
                problems.append(f"{where}: root filesystem is writable")
            tmp = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/tmp"]  # noqa: S108
            if not tmp or tmp[0]["name"] not in mounts_tmp:
                problems.append(f"{where}: no emptyDir at /tmp for a read-only root")
            if not c.get("resources", {}).get("requests") or not c["resources"].get("limits"):
                problems.append(f"{where}: no resource requests and limits")
    return problems


# NET: who gets in, what gets out ----------------------------------------------------------

SCRAPER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
}
DNS_PORT = 53
POSTGRES_PORT = 5432
BROKER_PORT = 6379
OTLP_PORTS = (4318, 4317)
ANYWHERE = {"0.0.0.0/0", "::/0"}


def policy_selects(policy: Doc, labels: dict[str, str]) -> bool:
    """Whether a NetworkPolicy's podSelector picks pods with ``labels``."""
    selector = policy["spec"].get("podSelector", {})
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        value, op = labels.get(expr["key"]), expr["operator"]
        if op == "In" and value not in expr.get("values", []):
            return False
        if op == "NotIn" and value in expr.get("values", []):
            return False
        if op == "Exists" and value is None:
            return False
        if op == "DoesNotExist" and value is not None:
            return False
    return True


def _egress_rules(docs: list[Doc], labels: dict[str, str]) -> list[Doc]:
    return [rule for pol in objects(docs, "NetworkPolicy")
            if "Egress" in pol["spec"].get("policyTypes", []) and policy_selects(pol, labels)
            for rule in pol["spec"].get("egress", [])]


def _opens(rules: list[Doc], port: int, protocol: str = "TCP") -> bool:
    return any(p.get("port") == port and p.get("protocol", "TCP") == protocol
               for rule in rules for p in rule.get("ports", []))


def check_network(docs: list[Doc]) -> list[str]:
    """Egress: deny by default; each rule names its ports; only the destinations the app
    uses (DNS, PostgreSQL, the broker, SMTP, the OTLP collector), each reachable by the pods
    that need it; only SMTP may go to any address. Ingress: the metrics ports only from
    the scraper."""
    problems: list[str] = []
    policies = objects(docs, "NetworkPolicy")
    smtp = int(config_data(docs).get("MISSIONLINK_SMTP_PORT", "587"))
    allowed = {DNS_PORT, POSTGRES_PORT, BROKER_PORT, smtp, *OTLP_PORTS}
    deny = [p for p in policies if p["spec"].get("podSelector") == {}
            and "Egress" in p["spec"].get("policyTypes", []) and not p["spec"].get("egress")]
    if not deny:
        problems.append("NET no default-deny egress policy (podSelector {}, Egress, no rules)")
    for pol in policies:
        for rule in pol["spec"].get("egress", []):
            where = f"NET {name_of(pol)}"
            ports = rule.get("ports", [])
            if not rule.get("to"):
                problems.append(f"{where}: an egress rule to every destination")
            if not ports:
                problems.append(f"{where}: an egress rule on every port")
            numbers = {p.get("port") for p in ports}
            for number in sorted(numbers - allowed, key=str):
                problems.append(f"{where}: egress to port {number}, which the app never uses")
            anywhere = [peer for peer in rule.get("to", [])
                        if peer.get("ipBlock", {}).get("cidr") in ANYWHERE]
            if anywhere and numbers != {smtp}:
                problems.append(
                    f"{where}: egress to any address on ports {sorted(numbers, key=str)}"
                    f" (only SMTP_PORT {smtp} may have no fixed destination)"
                )
            if DNS_PORT in numbers and any("ipBlock" in peer for peer in rule.get("to", [])):
                problems.append(f"{where}: DNS to an address block, not the cluster DNS pods")
    needs = {
        "api": [("UDP", DNS_PORT), ("TCP", DNS_PORT), ("TCP", POSTGRES_PORT),
                ("TCP", BROKER_PORT), ("TCP", smtp), ("TCP", OTLP_PORTS[0])],
        "worker": [("UDP", DNS_PORT), ("TCP", DNS_PORT), ("TCP", POSTGRES_PORT),
                   ("TCP", BROKER_PORT), ("TCP", smtp), ("TCP", OTLP_PORTS[0])],
        "migrate": [("UDP", DNS_PORT), ("TCP", DNS_PORT), ("TCP", POSTGRES_PORT)],
    }
    for doc in workloads(docs):
        labels = pod_labels(doc)
        rules = _egress_rules(docs, labels)
        for protocol, port in needs.get(labels.get("app.kubernetes.io/component", ""), []):
            if not _opens(rules, port, protocol):
                problems.append(f"NET {name_of(doc)}: no egress to {protocol} {port}")
    problems += _check_metrics_ingress(docs, policies)
    return problems


def _check_metrics_ingress(docs: list[Doc], policies: list[Doc]) -> list[str]:
    problems = []
    data = config_data(docs)
    metrics_ports = {int(data.get("MISSIONLINK_METRICS_PORT", metrics_default_port())),
                     int(data.get("MISSIONLINK_API_METRICS_PORT", api_metrics_default_port()))}
    for pol in policies:
        for rule in pol["spec"].get("ingress", []):
            numbers = {p.get("port") for p in rule.get("ports", [])}
            if (not numbers or numbers & metrics_ports) and rule.get("from", [{}]) != [SCRAPER]:
                problems.append(f"NET {name_of(pol)}: a metrics port is open to "
                                f"{rule.get('from', 'everyone')}, not only the scraper")
    for doc in objects(docs, "Deployment"):
        labels = pod_labels(doc)
        notes = doc["spec"]["template"]["metadata"].get("annotations", {})
        port = notes.get("prometheus.io/port")
        if not port:
            continue
        let_in = any(
            int(port) in {p.get("port") for p in rule.get("ports", [])}
            and SCRAPER in rule.get("from", [])
            for pol in policies if "Ingress" in pol["spec"].get("policyTypes", [])
            and policy_selects(pol, labels) for rule in pol["spec"].get("ingress", []))
        if not let_in:
            problems.append(f"NET {name_of(doc)}: the scraper may not reach metrics port {port}")
    return problems


GUARDS = {"P4": check_p4, "P14": check_p14, "P16": check_p16, "PSS": check_pod_security,
          "NET": check_network}
