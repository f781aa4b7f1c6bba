"""Pitfall guards for the container image (deploy/docker/Dockerfile) and the Compose stack
(compose.yaml with its files under deploy/compose/).

Each guard takes the parsed file and returns problems, each starting with the id of the
pitfall it prevents (P4, P14, P16 in the deployment pitfall list) or of the image rule it
keeps (BASE, USER, BUILD, RO, LABEL, ROLES). The product's own files are the reference:
health paths come from ``api/routers/health.py`` and ``workers/health.py``, the ``serve``
port from ``cli.py``, the metrics ports and the secret settings from ``config.py``; the
monitoring services' mounts from the files of ``deploy/monitoring/`` (MON).
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from product_facts import (
    ROOT,
    SRC,
    api_metrics_default_port,
    health_paths,
    metrics_default_port,
    secret_typed_settings,
    serve_default_port,
    worker_health_paths,
)

DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
COMPOSE_DIR = ROOT / "deploy" / "compose"

Instruction = tuple[str, str]  # (keyword, arguments), continuation lines joined
Compose = dict[str, Any]

SECRET_NAME = re.compile(r"PASSWORD|SECRET|PRIVATE_KEY|TOKEN|ACCESS_KEY|API_KEY")
URL_WITH_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@:]*:[^/@]+@", re.I)
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
PATCH_TAG = re.compile(r":v?\d+\.\d+\.\d+[0-9A-Za-z.-]*(@sha256:[0-9a-f]{64})?$")
# Third-party images: the release the project publishes (postgres 16.10, nginx 1.28.0).
VERSION_TAG = re.compile(r":v?\d+\.\d+(\.\d+)?[0-9A-Za-z.-]*(@sha256:[0-9a-f]{64})?$")
REQUIRED_VARIABLE = re.compile(r"^\$\{(\w+):\?[^}]+\}$")
URL = re.compile(r"https?://(?:127\.0\.0\.1|localhost):(\d+)(/[\w/-]*)")
OUR_IMAGE_VARIABLE = "MISSIONLINK_IMAGE"
# The only writable place of a container with a read-only root (a tmpfs).
TMP = "/tmp"  # noqa: S108
OCI_LABELS = ("title", "source", "revision", "version", "created")
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|make|build-essential|cargo|rustc|git)\b")


# the product's own facts ----------------------------------------------------------------


def is_secret(name: str) -> bool:
    """A credential: by its name, or a setting config.py types ``SecretStr``."""
    upper = name.upper()
    return bool(SECRET_NAME.search(upper)) or upper in secret_typed_settings()


def settings() -> set[str]:
    """MISSIONLINK_<NAME> of every setting in config.py."""
    text = (SRC / "config.py").read_text()
    return {f"MISSIONLINK_{n.upper()}" for n in re.findall(r"^    ([a-z_]+): ", text, re.M)}


# Dockerfile -----------------------------------------------------------------------------


def parse_dockerfile(text: str) -> list[Instruction]:
    out: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """Instructions per build stage; the instructions before the first FROM come first."""
    found: list[list[Instruction]] = [[]]
    for ins in instructions:
        if ins[0] == "FROM":
            found.append([])
        found[-1].append(ins)
    return found


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    return stages(instructions)[-1]


def _exec_form(args: str) -> list[str]:
    import json

    value = json.loads(args)
    assert isinstance(value, list)
    return [str(v) for v in value]


def check_base(instructions: list[Instruction]) -> list[str]:
    """The base is a build argument whose default is pinned by exact tag and digest."""
    problems: list[str] = []
    preamble = stages(instructions)[0]
    args = dict(a[1].partition("=")[::2] for a in preamble if a[0] == "ARG")
    default = args.get("BASE_IMAGE", "")
    if not default:
        problems.append("BASE: no ARG BASE_IMAGE with a default before the first FROM")
    else:
        if not PATCH_TAG.search(default):
            problems.append(f"BASE: default base {default!r} has no exact version tag")
        if not DIGEST.search(default):
            problems.append(f"BASE: default base {default!r} is not pinned by digest")
    names: set[str] = set()
    for keyword, rest in instructions:
        if keyword != "FROM":
            continue
        parts = rest.split()
        image = parts[0]
        if image not in ("${BASE_IMAGE}", "$BASE_IMAGE") and image not in names:
            problems.append(f"BASE: FROM {image} does not take the base from ARG BASE_IMAGE")
        if len(parts) >= 3 and parts[1].upper() == "AS":
            names.add(parts[2])
    return problems


def check_user(instructions: list[Instruction]) -> list[str]:
    users = [rest for keyword, rest in final_stage(instructions) if keyword == "USER"]
    if not users:
        return ["USER: the final stage sets no USER (it would run as root)"]
    user = users[-1].split(":")[0]
    if user in ("0", "root") or not user.isdigit():
        return [f"USER: the final stage runs as {users[-1]!r}; want a numeric non-root uid"]
    return []


def check_build(instructions: list[Instruction]) -> list[str]:
    """No build tools or package installs in the final stage; only the venv comes over."""
    problems: list[str] = []
    for keyword, rest in final_stage(instructions):
        if keyword == "RUN" and re.search(r"\b(pip|apt-get|apt|apk)\b.*\binstall\b", rest):
            problems.append(f"BUILD: the final stage installs packages: RUN {rest[:60]}")
        if keyword == "RUN" and BUILD_TOOLS.search(rest):
            problems.append(f"BUILD: the final stage runs build tools: RUN {rest[:60]}")
        if keyword == "COPY" and "--from=" in rest:
            source = next(p for p in rest.split() if not p.startswith("--"))
            if source != "/opt/venv":
                problems.append(f"BUILD: the final stage copies {source} from a build stage")
    return problems


def check_secrets(instructions: list[Instruction]) -> list[str]:
    """No secret in ENV, ARG (both stay in the image's history) or copied files."""
    problems: list[str] = []
    for keyword, rest in instructions:
        if keyword in ("ENV", "ARG"):
            for name in re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", rest) or [rest.split()[0]]:
                if is_secret(name):
                    problems.append(f"P16: {keyword} {name} puts a secret into the image")
        if keyword == "COPY" and re.search(r"secrets?/|\.pem\b|\.key\b|\.env\b", rest):
            problems.append(f"P16: COPY {rest} copies secrets into the image")
    return problems


def check_read_only(instructions: list[Instruction]) -> list[str]:
    """Everything the app writes goes to MISSIONLINK_DATA_DIR, which must be under /tmp."""
    env = " ".join(rest for keyword, rest in final_stage(instructions) if keyword == "ENV")
    match = re.search(r"MISSIONLINK_DATA_DIR=(\S+)", env)
    if not match:
        return ["RO: the image sets no MISSIONLINK_DATA_DIR (the default ./var is read-only)"]
    if not (match.group(1) + "/").startswith(TMP + "/"):
        return [f"RO: MISSIONLINK_DATA_DIR={match.group(1)} is not under /tmp, the only "
                "writable place with a read-only root"]
    if any(keyword == "VOLUME" for keyword, _ in final_stage(instructions)):
        return ["RO: the image declares a VOLUME; the writable place is a tmpfs on /tmp"]
    return []


def check_labels(instructions: list[Instruction]) -> list[str]:
    stage = final_stage(instructions)
    labels = " ".join(rest for keyword, rest in stage if keyword == "LABEL")
    args = {rest.partition("=")[0] for keyword, rest in stage if keyword == "ARG"}
    problems = []
    for name in OCI_LABELS:
        match = re.search(rf'org\.opencontainers\.image\.{name}="([^"]*)"', labels)
        if not match:
            problems.append(f"LABEL: no org.opencontainers.image.{name}")
        elif name != "title":
            variable = re.fullmatch(r"\$\{(\w+)\}", match.group(1))
            if not variable or variable.group(1) not in args:
                problems.append(f"LABEL: org.opencontainers.image.{name} is not a build ARG")
    return problems


def check_p4_image(instructions: list[Instruction]) -> list[str]:
    """HEALTHCHECK on the port `serve` listens on, EXPOSEd, and on the liveness path."""
    problems: list[str] = []
    stage = final_stage(instructions)
    port = serve_default_port()
    checks = [rest for keyword, rest in stage if keyword == "HEALTHCHECK"]
    if not checks or checks[-1].upper() == "NONE":
        return ["P4: the image has no HEALTHCHECK"]
    url = URL.search(checks[-1])
    if not url:
        return [f"P4: the HEALTHCHECK calls no local URL: {checks[-1][:80]}"]
    exposed = {int(p.split("/")[0]) for k, rest in stage if k == "EXPOSE" for p in rest.split()}
    cmd = [rest for keyword, rest in stage if keyword == "CMD"]
    served = port
    if cmd:
        argv = _exec_form(cmd[-1])
        if "--port" in argv:
            served = int(argv[argv.index("--port") + 1])
    if int(url.group(1)) != served:
        problems.append(f"P4: HEALTHCHECK port {url.group(1)} is not the port serve "
                        f"listens on ({served})")
    if int(url.group(1)) not in exposed:
        problems.append(f"P4: HEALTHCHECK port {url.group(1)} is not EXPOSEd ({sorted(exposed)})")
    if served != port:
        problems.append(f"P4: CMD serves on {served}, not cli.py's --port default {port}")
    if url.group(2) != health_paths()["liveness"]:
        problems.append(f"P4: HEALTHCHECK path {url.group(2)} is not the liveness route "
                        f"{health_paths()['liveness']}")
    return problems


DOCKERFILE_GUARDS = {
    "BASE": check_base,
    "USER": check_user,
    "BUILD": check_build,
    "P16": check_secrets,
    "RO": check_read_only,
    "LABEL": check_labels,
    "P4": check_p4_image,
}


# compose.yaml ---------------------------------------------------------------------------


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command") or []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def cli_commands() -> set[str]:
    text = (SRC / "cli.py").read_text()
    return set(re.findall(r'\bsub\.add_parser\(\s*"([\w-]+)"', text))


def ours(compose: Compose) -> dict[str, dict[str, Any]]:
    """The services that run our image: it is named so, or they run one of its commands."""
    subcommands = cli_commands()
    return {name: svc for name, svc in compose["services"].items()
            if OUR_IMAGE_VARIABLE in str(svc.get("image", "")) or "build" in svc
            or "missionlink" in str(svc.get("image", "")).lower()
            or (command(svc)[:1] and command(svc)[0] in subcommands)}


def by_command(compose: Compose, sub: str) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in ours(compose).items() if command(s)[:1] == [sub]}


def healthcheck_url(service: dict[str, Any]) -> tuple[int, str] | None:
    test = (service.get("healthcheck") or {}).get("test")
    found = URL.search(" ".join(test) if isinstance(test, list) else str(test or ""))
    return (int(found.group(1)), found.group(2)) if found else None


def check_p14(compose: Compose) -> list[str]:
    """Our image by a required variable; every other image by an exact version or digest."""
    problems: list[str] = []
    if not ours(compose):
        problems.append("P14: no service runs the MissionLink image (MISSIONLINK_IMAGE)")
    for name, svc in compose["services"].items():
        image = str(svc.get("image") or "")
        if name in ours(compose):
            if not REQUIRED_VARIABLE.match(image):
                problems.append(f"P14: {name} image {image!r} is not ${{{OUR_IMAGE_VARIABLE}:?...}}"
                                " (a required variable: never empty, never a default tag)")
            elif REQUIRED_VARIABLE.match(image).group(1) != OUR_IMAGE_VARIABLE:  # type: ignore[union-attr]
                problems.append(f"P14: {name} image variable is not {OUR_IMAGE_VARIABLE}")
            continue
        if not image:
            problems.append(f"P14: {name} has an empty image")
        elif image.endswith(":latest") or ":latest@" in image:
            problems.append(f"P14: {name} image {image} is the mutable latest tag")
        elif not (VERSION_TAG.search(image) or DIGEST.search(image)):
            problems.append(f"P14: {name} image {image!r} has no exact version tag or digest")
    return problems


def _ports_of(text: str, host: str) -> set[int]:
    return {int(p) for p in re.findall(rf"\b{re.escape(host)}:(\d+)\b", text)}


def check_p4(compose: Compose, nginx_conf: str, prometheus: str) -> list[str]:
    """Health checks, the balancer and the scraper on the ports and paths the app serves."""
    problems: list[str] = []
    paths = health_paths()
    apis = by_command(compose, "serve")
    if len(apis) < 2:
        problems.append(f"P4: {len(apis)} API service(s); the stack runs two behind nginx")
    for name, svc in apis.items():
        argv = command(svc)
        port = int(argv[argv.index("--port") + 1]) if "--port" in argv else serve_default_port()
        check = healthcheck_url(svc)
        if check is None:
            problems.append(f"P4: {name} has no HTTP healthcheck")
        else:
            if check[0] != port:
                problems.append(f"P4: {name} healthcheck port {check[0]} is not the port it "
                                f"serves on ({port})")
            if check[1] not in paths.values():
                problems.append(f"P4: {name} healthcheck path {check[1]} is none of the "
                                f"app's health routes {sorted(paths.values())}")
        if _ports_of(nginx_conf, name) != {port}:
            problems.append(f"P4: nginx sends {name} traffic to "
                            f"{sorted(_ports_of(nginx_conf, name))}, not to {port}")
        internal = int(environment(svc).get("MISSIONLINK_API_METRICS_PORT")
                       or api_metrics_default_port())
        if not internal:
            problems.append(f"P4: {name} has API_METRICS_PORT 0: no internal /metrics to scrape")
        elif _ports_of(prometheus, name) != {internal}:
            problems.append(f"P4: Prometheus scrapes {name} on "
                            f"{sorted(_ports_of(prometheus, name))}, not its internal "
                            f"API_METRICS_PORT {internal}")
        elif str(internal) not in [str(e) for e in svc.get("expose") or []]:
            problems.append(f"P4: {name} does not expose API_METRICS_PORT {internal}")
    workers = by_command(compose, "worker")
    if not workers:
        problems.append("P4: no worker service")
    for name, svc in workers.items():
        metrics = int(environment(svc).get("MISSIONLINK_METRICS_PORT") or metrics_default_port())
        check = healthcheck_url(svc)
        live = worker_health_paths()["liveness"]
        if check != (metrics, live):
            problems.append(f"P4: {name} healthcheck {check} is not the worker's {live} on "
                            f"METRICS_PORT {metrics}")
        if _ports_of(prometheus, name) != {metrics}:
            problems.append(f"P4: Prometheus scrapes {name} on "
                            f"{sorted(_ports_of(prometheus, name))}, not METRICS_PORT {metrics}")
    upstreams = set(re.findall(r"server\s+([\w-]+):\d+", nginx_conf))
    for host in upstreams - set(apis):
        problems.append(f"P4: nginx sends traffic to {host}, which is not an API service")
    return problems


def check_p16(compose: Compose, tracked: list[str]) -> list[str]:
    """No secret as a plain environment value; secrets are files nobody commits."""
    problems: list[str] = []
    for name, svc in compose["services"].items():
        for key, value in environment(svc).items():
            if is_secret(key) and not key.endswith("_FILE") and value:
                problems.append(f"P16: {name} sets {key} as a plain value")
            if URL_WITH_PASSWORD.match(value):
                problems.append(f"P16: {name} {key} carries a password in the URL")
        for secret in svc.get("secrets") or []:
            source = secret if isinstance(secret, str) else secret.get("source")
            if source not in (compose.get("secrets") or {}):
                problems.append(f"P16: {name} uses secret {source}, which is not declared")
    for secret, spec in (compose.get("secrets") or {}).items():
        if "file" not in spec and "environment" not in spec:
            problems.append(f"P16: secret {secret} comes from neither a file nor the environment")
            continue
        if "file" in spec:
            path = (ROOT / spec["file"]).resolve()
            relative = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else ""
            if not relative.startswith("deploy/compose/secrets/"):
                problems.append(f"P16: secret {secret} is read from {spec['file']}, outside "
                                "the ignored deploy/compose/secrets/")
            if relative in tracked:
                problems.append(f"P16: secret {secret} file {relative} is committed")
    committed = [t for t in tracked if t.startswith("deploy/compose/secrets/")
                 and t != "deploy/compose/secrets/.gitignore"]
    problems += [f"P16: {t} is a committed secret" for t in committed]
    for name, svc in ours(compose).items():
        missing = {"MISSIONLINK_DATABASE_PASSWORD", "MISSIONLINK_IDENTITY_DATABASE_PASSWORD",
                   "MISSIONLINK_JWT_PRIVATE_KEY"} - {
            s.get("target") for s in svc.get("secrets") or [] if isinstance(s, dict)}
        if missing:
            problems.append(f"P16: {name} gets no {sorted(missing)} from a secret")
    return problems


def check_read_only_services(compose: Compose) -> list[str]:
    problems: list[str] = []
    for name, svc in ours(compose).items():
        if svc.get("read_only") is not True:
            problems.append(f"RO: {name} does not run with a read-only root filesystem")
        if not any(str(t).split(":")[0] == TMP for t in svc.get("tmpfs") or []):
            problems.append(f"RO: {name} has no tmpfs on /tmp")
        if not (environment(svc).get("MISSIONLINK_DATA_DIR", "") + "/").startswith(TMP + "/"):
            problems.append(f"RO: {name} MISSIONLINK_DATA_DIR is not under /tmp")
        user = str(svc.get("user", "")).split(":")[0]
        if user in ("", "0", "root"):
            problems.append(f"USER: {name} runs as {user or 'the default user'}, want 10001")
        unknown = sorted(k for k in environment(svc) if k.startswith("MISSIONLINK_")
                         and k not in settings())
        if unknown:
            problems.append(f"RO: {name} sets {unknown}, which config.py does not read")
    return problems


def check_roles(compose: Compose, init_sql: str) -> list[str]:
    """Each database has its own role; only that role may connect to it."""
    problems: list[str] = []
    users = {}
    for name, svc in ours(compose).items():
        env = environment(svc)
        for key in ("MISSIONLINK_DATABASE_URL", "MISSIONLINK_IDENTITY_DATABASE_URL"):
            match = re.match(r"postgresql://([^@:/]+)@[^/]+/(\w+)$", env.get(key, ""))
            if not match:
                problems.append(f"ROLES: {name} {key} is not postgresql://<role>@host/<db>")
                continue
            users[key] = match.groups()
    if len(set(users.values())) == 2 and len({u for u, _ in users.values()}) != 2:
        problems.append("ROLES: the core and identity databases are reached with one role")
    for role, database in set(users.values()):
        if not re.search(rf"CREATE DATABASE {database} OWNER {role};", init_sql):
            problems.append(f"ROLES: the init script does not give {database} to {role}")
        if not re.search(rf"REVOKE ALL ON DATABASE {database} FROM PUBLIC;", init_sql):
            problems.append(f"ROLES: the init script leaves {database} open to PUBLIC")
        grants = [g.strip() for found in re.findall(
            rf"GRANT [A-Z, ]*CONNECT[A-Z, ]* ON DATABASE {database} TO ([\w, ]+);", init_sql)
            for g in found.split(",")]
        if grants != [role]:
            problems.append(f"ROLES: CONNECT on {database} granted to {grants}, want [{role}]")
    if re.search(r"\b(SUPERUSER|CREATEROLE|CREATEDB|BYPASSRLS)\b", init_sql):
        problems.append("ROLES: the init script gives an application role extra powers")
    return problems


# the monitoring services: deploy/monitoring's files, mounted where they are read ---------

MONITORING = ROOT / "deploy" / "monitoring"


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """container path -> host path (relative to the repository) of a service's binds."""
    found = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            parts = volume.split(":")
            source, target = parts[0], parts[1] if len(parts) > 1 else parts[0]
        else:
            source, target = str(volume.get("source", "")), str(volume.get("target", ""))
        if source.startswith("."):
            found[target] = (ROOT / source).resolve().relative_to(ROOT).as_posix()
    return found


def check_monitoring(compose: Compose, prometheus: str) -> list[str]:
    """Prometheus evaluates deploy/monitoring's rules and alerts the Alertmanager service;
    Alertmanager runs deploy/monitoring's config with the secrets it reads; Grafana gets the
    provisioning and the dashboards where the provisioning looks for them."""
    import yaml

    problems: list[str] = []
    services = compose["services"]
    missing = {"prometheus", "alertmanager", "grafana"} - set(services)
    if missing:
        return [f"MON: no {sorted(missing)} service"]
    config = yaml.safe_load(prometheus)
    mounts = _mounts(services["prometheus"])
    config_dir = "/etc/prometheus"
    for rules in config.get("rule_files") or []:
        where = rules if rules.startswith("/") else f"{config_dir}/{rules}"
        if mounts.get(where) != "deploy/monitoring/prometheus/alerts.yml":
            problems.append(f"MON: Prometheus reads rules {where}, which is not "
                            "deploy/monitoring/prometheus/alerts.yml")
    if not config.get("rule_files"):
        problems.append("MON: Prometheus evaluates no alert rules")
    targets = [t for am in (config.get("alerting") or {}).get("alertmanagers", [])
               for sc in am.get("static_configs", []) for t in sc.get("targets", [])]
    if not any(t.split(":")[0] == "alertmanager" for t in targets):
        problems.append(f"MON: Prometheus alerts {targets}, not the alertmanager service")
    am = services["alertmanager"]
    am_mounts = _mounts(am)
    am_config = next((c.split("=", 1)[1] for c in command(am)
                      if c.startswith("--config.file=")), "/etc/alertmanager/alertmanager.yml")
    folder = am_mounts.get(am_config.rsplit("/", 1)[0])
    if am_mounts.get(am_config) != "deploy/monitoring/alertmanager/alertmanager.yml" and (
            folder != "deploy/monitoring/alertmanager"):
        problems.append(f"MON: Alertmanager's {am_config} is not deploy/monitoring's")
    am_text = (MONITORING / "alertmanager" / "alertmanager.yml").read_text()
    wanted = set(re.findall(r"_file:\s*/run/secrets/([\w.-]+)", am_text))
    given = {s if isinstance(s, str) else s.get("target") or s.get("source")
             for s in am.get("secrets") or []}
    for name in sorted(wanted - given):
        problems.append(f"MON: Alertmanager reads /run/secrets/{name}, which no secret gives it")
    grafana = _mounts(services["grafana"])
    if grafana.get("/etc/grafana/provisioning") != "deploy/monitoring/grafana/provisioning":
        problems.append("MON: Grafana's /etc/grafana/provisioning is not deploy/monitoring's")
    provider = yaml.safe_load(
        (MONITORING / "grafana" / "provisioning" / "dashboards" / "provider.yml").read_text())
    for prov in provider.get("providers", []):
        path = prov.get("options", {}).get("path")
        if grafana.get(path) != "deploy/monitoring/grafana/dashboards":
            problems.append(f"MON: Grafana looks for dashboards in {path}, where "
                            "deploy/monitoring/grafana/dashboards is not mounted")
    datasources = yaml.safe_load(
        (MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    for source in datasources.get("datasources", []):
        host = re.match(r"https?://([\w-]+):", str(source.get("url", "")))
        if host and host.group(1) not in services:
            problems.append(f"MON: Grafana's data source {source['url']} is no service here")
    return problems
