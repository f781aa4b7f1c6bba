"""The container image (deploy/docker/Dockerfile) and the Compose stack (compose.yaml):
every guard in deploy/docker/guards.py passes, and each guard catches a broken variant
(the real file with one thing changed). The linters' own runs (hadolint, check-jsonschema
with the Compose specification, shellcheck) are here too, on the real files and on broken
ones; they need the tools of ``make image-check``, which sets MISSIONLINK_IMAGE_TOOLS to
its tool venv and fails when one is missing. Other runs of this file skip those tests."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra import load_guards

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"
COMPOSE_DIR = ROOT / "deploy" / "compose"


guards = load_guards(DOCKER / "guards.py", "missionlink_image_guards")
Compose = dict[str, Any]


def caught(rule: str, problems: list[str], needle: str = "") -> None:
    assert problems, f"{rule} guard missed the broken variant"
    assert all(p.startswith(rule) for p in problems), problems
    if needle:
        assert any(needle in p for p in problems), problems


def dockerfile_text() -> str:
    return (DOCKER / "Dockerfile").read_text()


def replaced(text: str, old: str, new: str) -> str:
    assert old in text, f"{old!r} not in the file"
    return text.replace(old, new)


@pytest.fixture(scope="module")
def compose_text() -> str:
    return (ROOT / "compose.yaml").read_text()


@pytest.fixture
def compose(compose_text: str) -> Compose:
    loaded: Compose = yaml.safe_load(compose_text)
    return copy.deepcopy(loaded)


@pytest.fixture(scope="module")
def nginx_conf() -> str:
    return (COMPOSE_DIR / "nginx.conf").read_text()


@pytest.fixture(scope="module")
def prometheus() -> str:
    return (COMPOSE_DIR / "prometheus.yml").read_text()


@pytest.fixture(scope="module")
def init_sql() -> str:
    return (COMPOSE_DIR / "postgres-init.sh").read_text()


@pytest.fixture(scope="module")
def tracked() -> list[str]:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        return []
    out = subprocess.run([git, "ls-files"], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=30).stdout
    return out.splitlines()


# the real files pass --------------------------------------------------------------------


@pytest.mark.parametrize("rule", list(guards.DOCKERFILE_GUARDS))
def test_the_dockerfile_passes(rule: str) -> None:
    problems = guards.DOCKERFILE_GUARDS[rule](guards.parse_dockerfile(dockerfile_text()))
    assert not problems, "\n".join(problems)


def test_the_compose_stack_passes(compose: Compose, nginx_conf: str, prometheus: str,
                                  init_sql: str, tracked: list[str]) -> None:
    problems = guards.check_p14(compose) + guards.check_p4(compose, nginx_conf, prometheus)
    problems += guards.check_p16(compose, tracked) + guards.check_read_only_services(compose)
    problems += guards.check_roles(compose, init_sql)
    problems += guards.check_monitoring(compose, prometheus)
    assert not problems, "\n".join(problems)


def test_the_stack_runs_what_the_cli_offers(compose: Compose) -> None:
    cli = (ROOT / "src" / "missionlink" / "cli.py").read_text()
    commands = {guards.command(svc)[0] for svc in guards.ours(compose).values()}
    assert commands == {"serve", "worker", "migrate"}
    for sub in commands:
        assert f'sub.add_parser("{sub}"' in cli
    migrate = guards.by_command(compose, "migrate")["migrate"]
    assert migrate["restart"] == "no"
    for name in ("api-1", "api-2", "worker"):
        needs = compose["services"][name]["depends_on"]["migrate"]
        assert needs == {"condition": "service_completed_successfully"}, name


def test_the_stack_has_its_services(compose: Compose) -> None:
    services = compose["services"]
    assert {"nginx", "postgres", "redis", "mailpit", "prometheus"} <= set(services)
    api = services["api-1"]["environment"]
    assert api["MISSIONLINK_BROKER_URL"].startswith("redis://redis:")
    assert api["MISSIONLINK_SMTP_HOST"] == "mailpit"
    assert services["nginx"]["networks"]["backend"]["ipv4_address"] == api[
        "MISSIONLINK_TRUSTED_PROXIES"]
    assert {"alertmanager", "grafana"} <= set(services)


# each guard catches its broken variant ---------------------------------------------------

DOCKERFILE_BREAKS: dict[str, tuple[str, str, str, str]] = {
    # case: (rule, old, new, needle)
    "base not from the ARG": ("BASE", "FROM ${BASE_IMAGE} AS runtime",
                              "FROM python:3.11-slim AS runtime", "python:3.11-slim"),
    "base by a moving tag": ("BASE", "python:3.11.14-slim-bookworm@", "python:3.11-slim@",
                             "exact version"),
    "base with no digest": ("BASE", "@sha256:65a93d69", "#", "digest"),
    "runs as root": ("USER", "USER 10001:10001", "USER root", "root"),
    "no USER": ("USER", "USER 10001:10001\n", "", "no USER"),
    "compiler in the final stage": (
        "BUILD", "WORKDIR /tmp\n", "WORKDIR /tmp\nRUN apt-get install -y gcc\n", "gcc"),
    "the source tree copied over": (
        "BUILD", "COPY --from=build /opt/venv /opt/venv",
        "COPY --from=build /src /src", "/src"),
    "a password in ENV": ("P16", "PYTHONUNBUFFERED=1 \\",
                          "PYTHONUNBUFFERED=1 MISSIONLINK_DATABASE_PASSWORD=x \\", "DATABASE_PASSWORD"),
    "a SecretStr setting in ENV": ("P16", "PYTHONUNBUFFERED=1 \\",
                                   "PYTHONUNBUFFERED=1 MISSIONLINK_PAYOUT_ACCOUNT_KEYS=k1:AAAA \\",
                                   "PAYOUT_ACCOUNT_KEYS"),
    "a secret build ARG": ("P16", "ARG VERSION=0.0.0", "ARG VERSION=0.0.0\nARG PYPI_TOKEN",
                           "PYPI_TOKEN"),
    "data outside /tmp": ("RO", "MISSIONLINK_DATA_DIR=/tmp/missionlink",
                          "MISSIONLINK_DATA_DIR=/app/var", "/app/var"),
    "a VOLUME": ("RO", "WORKDIR /tmp\n", "WORKDIR /tmp\nVOLUME /app/var\n", "VOLUME"),
    "revision label not a build ARG": (
        "LABEL", 'revision="${REVISION}"', 'revision="main"', "revision"),
    "no created label": ("LABEL", 'org.opencontainers.image.created="${CREATED}" \\\n', "",
                         "created"),
    "HEALTHCHECK on another port": ("P4", "127.0.0.1:8000/healthz", "127.0.0.1:8080/healthz",
                                    "8080"),
    "HEALTHCHECK on a path the app lacks": ("P4", "8000/healthz'", "8000/health'", "/health"),
    "HEALTHCHECK on readiness": ("P4", "8000/healthz'", "8000/readyz'", "liveness"),
    "serve on another port": ("P4", '"--port", "8000"]', '"--port", "9000"]', "9000"),
    "no HEALTHCHECK": ("P4", "HEALTHCHECK --interval", "# HEALTHCHECK --interval", "no HEALTHCHECK"),
}


@pytest.mark.parametrize("case", list(DOCKERFILE_BREAKS))
def test_dockerfile_guard_catches(case: str) -> None:
    rule, old, new, needle = DOCKERFILE_BREAKS[case]
    text = replaced(dockerfile_text(), old, new)
    if case == "no HEALTHCHECK":
        text = text.replace("\n  CMD [\"python\"", "\n# CMD [\"python\"")
    caught(rule, guards.DOCKERFILE_GUARDS[rule](guards.parse_dockerfile(text)), needle)


Mutation = Callable[[Compose], None]


def _svc(name: str) -> Callable[[Compose], dict[str, Any]]:
    return lambda c: c["services"][name]


def _set(name: str, key: str, value: Any) -> Mutation:
    return lambda c: c["services"][name].__setitem__(key, value)


def _env(name: str, key: str, value: str) -> Mutation:
    def mutate(c: Compose) -> None:
        c["services"][name]["environment"] = {**c["services"][name]["environment"], key: value}
    return mutate


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [(_set("api-1", "image", "missionlink:latest"), "required variable"),
     (_set("worker", "image", "${MISSIONLINK_IMAGE}"), "required variable"),
     (_set("migrate", "image", "${MISSIONLINK_IMAGE:-missionlink:dev}"), "required variable"),
     (_set("api-2", "image", "${OTHER_IMAGE:?set it}"), "MISSIONLINK_IMAGE"),
     (_set("redis", "image", "redis:latest"), "latest"),
     (_set("postgres", "image", "postgres"), "exact version"),
     (_set("nginx", "image", "nginx:stable"), "exact version"),
     (_set("mailpit", "image", ""), "empty")],
)
def test_p14_guard_catches(compose: Compose, mutate: Mutation, needle: str) -> None:
    mutate(compose)
    caught("P14", guards.check_p14(compose), needle)


def test_p14_guard_accepts_a_digest(compose: Compose) -> None:
    compose["services"]["redis"]["image"] = "redis@sha256:" + "a" * 64
    assert guards.check_p14(compose) == []


def _healthcheck(name: str, url: str) -> Mutation:
    def mutate(c: Compose) -> None:
        c["services"][name]["healthcheck"] = {
            "test": ["CMD", "python", "-c", f"import urllib.request as u; u.urlopen('{url}')"]}
    return mutate


P4_BREAKS: dict[str, tuple[Mutation, str, str]] = {
    # case: (mutation of compose.yaml, change to nginx.conf or prometheus.yml, needle)
    "api healthcheck on another port": (
        _healthcheck("api-1", "http://127.0.0.1:8080/readyz"), "", "8080"),
    "api healthcheck on a path the app lacks": (
        _healthcheck("api-2", "http://127.0.0.1:8000/health"), "", "/health"),
    "api with no healthcheck": (lambda c: c["services"]["api-1"].pop("healthcheck"), "",
                                "no HTTP healthcheck"),
    "api serving on another port": (
        _set("api-2", "command", ["serve", "--host", "0.0.0.0", "--port", "9000"]), "", "9000"),
    "nginx to the wrong port": (lambda c: None, "nginx:server api-2:8000|server api-2:8080",
                                "nginx sends api-2"),
    "nginx to a service that is not an API": (
        lambda c: None, "nginx:server api-2:8000|server worker:8000", "worker"),
    "one API only": (lambda c: c["services"].pop("api-2"), "", "two behind nginx"),
    "worker healthcheck on the API port": (
        _healthcheck("worker", "http://127.0.0.1:8000/healthz"), "", "METRICS_PORT"),
    "worker healthcheck on /metrics": (
        _healthcheck("worker", "http://127.0.0.1:9100/metrics"), "", "worker's /healthz"),
    "worker metrics moved, healthcheck not": (
        _env("worker", "MISSIONLINK_METRICS_PORT", "9200"), "", "9200"),
    "scraper on the API's public port": (
        lambda c: None, 'prometheus:"api-1:9101"|"api-1:8000"', "Prometheus scrapes api-1"),
    "API_METRICS_PORT moved, scraper not": (
        _env("api-2", "MISSIONLINK_API_METRICS_PORT", "9200"), "", "API_METRICS_PORT 9200"),
    "API metrics listener off": (
        _env("api-1", "MISSIONLINK_API_METRICS_PORT", "0"), "", "no internal /metrics"),
    "API metrics port not exposed": (_set("api-1", "expose", ["8000"]), "", "does not expose"),
}


@pytest.mark.parametrize("case", list(P4_BREAKS))
def test_p4_guard_catches(compose: Compose, nginx_conf: str, prometheus: str, case: str) -> None:
    mutate, edit, needle = P4_BREAKS[case]
    mutate(compose)
    if edit:
        target, _, change = edit.partition(":")
        old, _, new = change.partition("|")
        if target == "nginx":
            nginx_conf = replaced(nginx_conf, old, new)
        else:
            prometheus = replaced(prometheus, old, new)
    caught("P4", guards.check_p4(compose, nginx_conf, prometheus), needle)


P16_BREAKS: dict[str, tuple[Mutation, str]] = {
    "a password as a plain value": (
        _env("api-1", "MISSIONLINK_DATABASE_PASSWORD", "hunter2"), "plain value"),
    "a SecretStr setting as a plain value": (
        _env("worker", "MISSIONLINK_PAYOUT_ACCOUNT_KEYS", "k1:AAAA"), "PAYOUT_ACCOUNT_KEYS"),
    "a password in the URL": (
        _env("worker", "MISSIONLINK_DATABASE_URL", "postgresql://u:p@postgres:5432/core"),
        "password in the URL"),
    "the PostgreSQL password as a plain value": (
        _env("postgres", "POSTGRES_PASSWORD", "postgres"), "POSTGRES_PASSWORD"),
    "a signing key as a plain value": (
        _env("api-2", "MISSIONLINK_JWT_PRIVATE_KEY", "-----BEGIN PRIVATE KEY-----"), "plain"),
    "a secret read from a committed file": (
        lambda c: c["secrets"]["jwt_private_key"].__setitem__("file", "./deploy/compose/jwt.pem"),
        "outside"),
    "an undeclared secret": (
        lambda c: c["services"]["migrate"].__setitem__("secrets", [
            *c["services"]["migrate"]["secrets"], "smtp_password"]), "not declared"),
    "a password not from a secret": (
        lambda c: c["services"]["api-1"].__setitem__("secrets", c["services"]["api-1"]["secrets"][1:]),
        "MISSIONLINK_DATABASE_PASSWORD"),
}


@pytest.mark.parametrize("case", list(P16_BREAKS))
def test_p16_guard_catches(compose: Compose, tracked: list[str], case: str) -> None:
    mutate, needle = P16_BREAKS[case]
    # the anchors of compose.yaml share one mapping among services: break a copy
    for svc in compose["services"].values():
        for key in ("environment", "secrets"):
            if key in svc:
                svc[key] = copy.deepcopy(svc[key])
    mutate(compose)
    caught("P16", guards.check_p16(compose, tracked), needle)


def test_p16_guard_catches_a_committed_secret(compose: Compose, tracked: list[str]) -> None:
    problems = guards.check_p16(compose, [*tracked, "deploy/compose/secrets/jwt_private_key"])
    caught("P16", problems, "committed")


@pytest.mark.parametrize(
    ("mutate", "rule", "needle"),
    [(_set("api-1", "read_only", False), "RO", "read-only"),
     (_set("worker", "tmpfs", ["/var/tmp"]), "RO", "/tmp"),
     (_env("migrate", "MISSIONLINK_DATA_DIR", "/app/var"), "RO", "DATA_DIR"),
     (_env("api-2", "MISSIONLINK_DATABSE_URL", "x"), "RO", "DATABSE_URL"),
     (_set("api-1", "user", "0"), "USER", "runs as 0"),
     (lambda c: c["services"]["worker"].pop("user"), "USER", "default user")],
)
def test_read_only_guard_catches(compose: Compose, mutate: Mutation, rule: str,
                                 needle: str) -> None:
    for svc in compose["services"].values():
        if "environment" in svc:
            svc["environment"] = dict(svc["environment"])
    mutate(compose)
    problems = [p for p in guards.check_read_only_services(compose) if p.startswith(rule)]
    caught(rule, problems, needle)


@pytest.mark.parametrize(
    ("edit", "needle"),
    [(("GRANT CONNECT, TEMPORARY ON DATABASE missionlink_identity TO missionlink_identity",
       "GRANT CONNECT ON DATABASE missionlink_identity TO missionlink_identity, missionlink_core"),
      "missionlink_identity"),
     (("REVOKE ALL ON DATABASE missionlink_core FROM PUBLIC;\n", ""), "PUBLIC"),
     (("OWNER missionlink_identity;", "OWNER missionlink_core;"), "does not give"),
     (("LOGIN PASSWORD :'core_password'", "LOGIN SUPERUSER PASSWORD :'core_password'"),
      "extra powers")],
)
def test_roles_guard_catches(compose: Compose, init_sql: str, edit: tuple[str, str],
                             needle: str) -> None:
    caught("ROLES", guards.check_roles(compose, replaced(init_sql, *edit)), needle)


def test_roles_guard_catches_one_role_for_both(compose: Compose, init_sql: str) -> None:
    for svc in guards.ours(compose).values():
        env = svc["environment"] = dict(svc["environment"])
        env["MISSIONLINK_IDENTITY_DATABASE_URL"] = env["MISSIONLINK_IDENTITY_DATABASE_URL"].replace(
            "missionlink_identity@", "missionlink_core@")
    caught("ROLES", guards.check_roles(compose, init_sql), "one role")


# the entrypoint turns secret files into settings -----------------------------------------


def test_the_entrypoint_reads_secret_files(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "MISSIONLINK_DATABASE_PASSWORD").write_text("from-file\n")
    (secrets / "MISSIONLINK_JWT_PRIVATE_KEY").write_text("-----BEGIN\nline two\n-----END\n")
    (secrets / "MISSIONLINK_BROKER_URL").write_text("redis://from-file")
    (secrets / "OTHER").write_text("ignored")
    script = tmp_path / "entrypoint.sh"
    script.write_text(replaced((DOCKER / "entrypoint.sh").read_text(), "/run/secrets/",
                               f"{secrets}/"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "missionlink"
    fake.write_text('#!/bin/sh\necho "args=$*"\nfor v in MISSIONLINK_DATABASE_PASSWORD '
                    'MISSIONLINK_JWT_PRIVATE_KEY MISSIONLINK_BROKER_URL OTHER; do\n'
                    '  printenv "$v" >/dev/null && printf "%s=%s\\n" "$v" "$(printenv "$v")"\n'
                    'done\nexit 0\n')
    fake.chmod(0o755)
    result = subprocess.run(
        ["/bin/sh", str(script), "serve", "--port", "8000"],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "MISSIONLINK_BROKER_URL": "redis://from-env"},
        capture_output=True, text=True, timeout=10, check=True,
    )
    out = result.stdout
    assert "args=serve --port 8000" in out
    assert "MISSIONLINK_DATABASE_PASSWORD=from-file\n" in out
    assert "MISSIONLINK_JWT_PRIVATE_KEY=-----BEGIN\nline two\n-----END\n" in out
    assert "MISSIONLINK_BROKER_URL=redis://from-env" in out, "a variable already set wins"
    assert "OTHER" not in out


# the linters, on the real files and on broken ones ---------------------------------------


def tool(name: str) -> str:
    tools = os.environ.get("MISSIONLINK_IMAGE_TOOLS")
    if not tools:
        pytest.skip(f"{name} runs in make image-check (MISSIONLINK_IMAGE_TOOLS names its venv)")
    found = shutil.which(name, path=tools)
    if not found:
        pytest.fail(f"{name} is missing from {tools}: make image-check must run it")
    return found


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False,
                          cwd=ROOT)


def test_hadolint_passes_the_dockerfile() -> None:
    result = run([tool("hadolint"), str(DOCKER / "Dockerfile")])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("old", "new", "rule"),
    [("FROM ${BASE_IMAGE} AS build", "FROM python:latest AS build", "DL3007"),
     ("WORKDIR /tmp\n", "WORKDIR /tmp\nRUN apt-get update && apt-get install -y gcc\n", "DL3008"),
     ("RUN /opt/venv/bin/pip install --no-cache-dir .", "RUN cd /src && pip install requests",
      "DL3013")],
)
def test_hadolint_catches(tmp_path: Path, old: str, new: str, rule: str) -> None:
    broken = tmp_path / "Dockerfile"
    broken.write_text(replaced(dockerfile_text(), old, new))
    result = run([tool("hadolint"), str(broken)])
    assert result.returncode != 0 and rule in result.stdout, result.stdout


def test_the_compose_file_follows_the_compose_specification() -> None:
    result = run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                  "compose.yaml"])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("old", "new"),
    [("  api-2:\n    <<: *api\n", "  api-2:\n    <<: *api\n    replicas: 2\n"),
     ("    restart: \"no\"\n", "    restart: [\"no\"]\n"),
     ("  postgres-data: {}\n", "  postgres-data: 5\n")],
)
def test_check_jsonschema_catches(tmp_path: Path, compose_text: str, old: str, new: str) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text(replaced(compose_text, old, new))
    result = run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                  str(broken)])
    assert result.returncode != 0, result.stdout


SCRIPTS = [DOCKER / "entrypoint.sh", DOCKER / "check.sh", DOCKER / "build.sh",
           COMPOSE_DIR / "postgres-init.sh", COMPOSE_DIR / "make-secrets.sh"]


def test_shellcheck_passes_the_scripts() -> None:
    result = run([tool("shellcheck"), *map(str, SCRIPTS)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_catches(tmp_path: Path) -> None:
    broken = tmp_path / "entrypoint.sh"
    broken.write_text(replaced((DOCKER / "entrypoint.sh").read_text(), 'exec missionlink "$@"',
                               "exec missionlink $@"))
    result = run([tool("shellcheck"), str(broken)])
    assert result.returncode != 0 and "SC2068" in result.stdout, result.stdout


# the monitoring services ------------------------------------------------------------------


def _volumes(name: str, old: str, new: str) -> Mutation:
    def mutate(c: Compose) -> None:
        volumes = c["services"][name]["volumes"]
        assert any(old in v for v in volumes), volumes
        c["services"][name]["volumes"] = [v.replace(old, new) for v in volumes]
    return mutate


MON_BREAKS: dict[str, tuple[Mutation, str, str]] = {
    # case: (mutation of compose.yaml, change to prometheus.yml, needle)
    "rules from another file": (
        _volumes("prometheus", "deploy/monitoring/prometheus/alerts.yml",
                 "deploy/compose/alerts.yml"), "", "deploy/monitoring/prometheus/alerts.yml"),
    "no rules evaluated": (lambda c: None, "rule_files:\n  - alerts.yml\n|", "no alert rules"),
    "alerts sent nowhere": (lambda c: None, '"alertmanager:9093"|"localhost:9093"',
                            "not the alertmanager service"),
    "Alertmanager on its own config": (
        _volumes("alertmanager", "./deploy/monitoring/alertmanager", "./deploy/compose/am"), "",
        "Alertmanager's /etc/alertmanager/alertmanager.yml"),
    "a Slack webhook with no secret": (
        lambda c: c["services"]["alertmanager"]["secrets"].pop(), "",
        "slack-warnings-webhook-url"),
    "dashboards where Grafana does not look": (
        _volumes("grafana", "/var/lib/grafana/dashboards/missionlink", "/dashboards"), "",
        "/var/lib/grafana/dashboards/missionlink"),
    "no Grafana": (lambda c: c["services"].pop("grafana"), "", "grafana"),
}


@pytest.mark.parametrize("case", list(MON_BREAKS))
def test_monitoring_guard_catches(compose: Compose, prometheus: str, case: str) -> None:
    mutate, edit, needle = MON_BREAKS[case]
    mutate(compose)
    if edit:
        old, _, new = edit.partition("|")
        prometheus = replaced(prometheus, old, new)
    caught("MON", guards.check_monitoring(compose, prometheus), needle)


def test_the_compose_prometheus_config_and_rules_load(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if not promtool:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is not on PATH under CI=true")
        pytest.skip("checking Prometheus's config needs promtool (Debian package prometheus)")
    # As the container sees them: the rules beside the config.
    shutil.copy(COMPOSE_DIR / "prometheus.yml", tmp_path / "prometheus.yml")
    shutil.copy(ROOT / "deploy" / "monitoring" / "prometheus" / "alerts.yml",
                tmp_path / "alerts.yml")
    result = run([promtool, "check", "config", str(tmp_path / "prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr
