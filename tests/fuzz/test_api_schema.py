"""Schemathesis against the real server process: no input a client can send ends in a
500, and every response conforms to the OpenAPI document.

The server runs as ``missionlink serve`` on SQLite, and on PostgreSQL when
``MISSIONLINK_TEST_POSTGRES_URL`` is set (under ``CI=true`` a missing URL fails the run).
Data is seeded through the API first (a streamer and a viewer with real access tokens, a
topped-up wallet, missions in each state, a post, a comment and a bet) so that path ids
hit real objects as well as random ones.

``MISSIONLINK_FUZZ_SEED`` fixes the generator (a failure reproduces with the same seed);
``MISSIONLINK_FUZZ_EXAMPLES`` sets the examples per operation (``make fuzz`` runs many).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from missionlink.api.app import create_app
from missionlink.bootstrap import build
from missionlink.config import Settings
from tests.conftest import _admin, _db_url, pg_admin_url
from tests.helpers import start_serve, stop_process

SEED = int(os.environ.get("MISSIONLINK_FUZZ_SEED", "20250801"))
EXAMPLES = int(os.environ.get("MISSIONLINK_FUZZ_EXAMPLES", "8"))
STATEFUL_STEPS = int(os.environ.get("MISSIONLINK_FUZZ_STEPS", "6"))
PASSWORD = "fuzz-password-1"  # a throwaway account on a throwaway database

#: Every check schemathesis has runs; none is excluded. The list stays here so that an
#: exclusion is made, and explained, in one place.
EXCLUDED_CHECKS: tuple[str, ...] = ()
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_headers_conformance", "response_schema_conformance",
          "negative_data_rejection", "positive_data_acceptance", "missing_required_header",
          "unsupported_method", "allow_header_conformance", "use_after_free",
          "ensure_resource_availability", "ignored_auth", "object_level_authorization")

API = "/api/v1"
#: Operations where a request that the schema allows may still be refused with 422 by a
#: rule that JSON Schema cannot state, so ``positive_data_acceptance`` accepts 422 there:
#: - a cursor is opaque and strictly parsed: any string fits the schema, a forged one is 422;
#: - an Idempotency-Key reused with another request is 422 (idempotency-key-reused);
#: - amounts, durations and channel settings are checked against configured limits;
#: - a profile's channel link must name a SOOP, CHZZK or YouTube host (domain/profile.py);
#: - user-written text follows the text policy (no NUL or control characters, NFC);
#: - refresh and logout take the refresh token from the body or from the cookie.
#: Operations not listed (ids in the path, no body) must accept every schema-valid request.
BUSINESS_RULES_422 = {
    "get": [f"{API}/wallet/transactions", f"{API}/missions", f"{API}/missions/{{mission_id}}/pledges",
            f"{API}/streamers", f"{API}/channels/{{streamer_id}}/posts",
            f"{API}/posts/{{post_id}}/comments"],
    "post": [f"{API}/auth/signup", f"{API}/auth/refresh", f"{API}/auth/logout",
             f"{API}/wallet/topups", f"{API}/missions", f"{API}/missions/{{mission_id}}/pledges",
             f"{API}/missions/{{mission_id}}/accept", f"{API}/missions/{{mission_id}}/reject",
             f"{API}/missions/{{mission_id}}/cancel", f"{API}/missions/{{mission_id}}/result",
             f"{API}/missions/{{mission_id}}/bets", f"{API}/channels/{{streamer_id}}/posts",
             f"{API}/posts/{{post_id}}/comments"],
    "patch": [f"{API}/posts/{{post_id}}", f"{API}/comments/{{comment_id}}",
              f"{API}/streamers/me/settings", f"{API}/streamers/me/profile"],
}
ACCEPTED = ["2xx", "3xx", 401, 403, 404, 409, 429]

#: Live streams never end on their own: each example reads up to the snapshot (the first
#: event with data) and stops, instead of holding the stream until the request timeout.
STREAMING_PATHS = [f"{API}/overlay/{{token}}/events", f"{API}/missions/{{mission_id}}/events",
                   f"{API}/channels/{{streamer_id}}/events"]

#: Operations that act as the streamer; everything else runs as the viewer.
STREAMER_PATHS = r"^/api/v1/(missions/\{mission_id\}/(accept|reject|result)|streamers/me/.*)$"

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Seeded:
    streamer_id: int = 0
    viewer_id: int = 0
    streamer_token: str = ""
    viewer_token: str = ""
    mission_ids: list[int] = field(default_factory=list)
    post_ids: list[int] = field(default_factory=list)
    comment_ids: list[int] = field(default_factory=list)
    overlay_token: str = ""


@dataclass
class Target:
    backend: str
    base_url: str
    workdir: Path
    seeded: Seeded
    realistic_limits: bool


def _server_env(data_dir: Path, urls: dict[str, str], *, realistic_limits: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MISSIONLINK_")}
    env.update({
        "MISSIONLINK_DATA_DIR": str(data_dir),
        "MISSIONLINK_DATABASE_URL": urls.get("core", ""),
        "MISSIONLINK_IDENTITY_DATABASE_URL": urls.get("identity", ""),
        "MISSIONLINK_ARGON2_TIME_COST": "1",
        "MISSIONLINK_ARGON2_MEMORY_KIB": "8",
        # Seeding proposes several missions to one streamer in a row.
        "MISSIONLINK_PROPOSAL_COOLDOWN_SECONDS": "0",
        "MISSIONLINK_SERVE_WORKER": "1",
        "NO_COLOR": "1",
    })
    if not realistic_limits:
        # 0 turns a limit off: the fuzzer should reach the rules, not a wall of 429s.
        for name in ("SIGNUPS_PER_MINUTE", "PLEDGES_PER_MINUTE", "POSTS_PER_MINUTE",
                     "LOGIN_FAILURES"):
            env[f"MISSIONLINK_RATE_LIMIT_{name}"] = "0"
        env["MISSIONLINK_CANCEL_LIMIT_PER_DAY"] = "1000000"
    return env


def _ok(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    body: dict[str, Any] = r.json() if r.content else {}
    return body


def _account(api: httpx.Client, role: str) -> tuple[int, str]:
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    user = _ok(api.post("/api/v1/auth/signup", json={
        "email": email, "password": PASSWORD, "display_name": f"Fuzz {role}", "role": role}), 201)
    pair = _ok(api.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}), 200)
    return int(user["id"]), str(pair["access_token"])


def _seed(base_url: str) -> Seeded:
    s = Seeded()
    with httpx.Client(base_url=base_url, timeout=30) as api:
        s.streamer_id, s.streamer_token = _account(api, "streamer")
        s.viewer_id, s.viewer_token = _account(api, "viewer")
        streamer = {"Authorization": f"Bearer {s.streamer_token}"}
        viewer = {"Authorization": f"Bearer {s.viewer_token}"}
        _ok(api.post("/api/v1/wallet/topups", json={"amount": 2_000_000}, headers=viewer), 201)

        def propose(title: str) -> int:
            m = _ok(api.post("/api/v1/missions", headers=viewer, json={
                "streamer_id": s.streamer_id, "title": title, "description": "seeded",
                "amount": 10_000, "duration_seconds": 3600}), 201)
            s.mission_ids.append(int(m["id"]))
            return int(m["id"])

        pending = propose("pending")
        _ok(api.post(f"/api/v1/missions/{pending}/bets", headers=viewer,
                     json={"side": "success", "points": 100}), 201)
        accepted = propose("accepted")
        _ok(api.post(f"/api/v1/missions/{accepted}/accept", headers=streamer), 200)
        _ok(api.post(f"/api/v1/missions/{accepted}/pledges", headers=viewer,
                     json={"amount": 5_000}), 201)
        for outcome in ("success", "failure"):
            done = propose(f"declared {outcome}")
            _ok(api.post(f"/api/v1/missions/{done}/accept", headers=streamer), 200)
            _ok(api.post(f"/api/v1/missions/{done}/result", headers=streamer,
                         json={"outcome": outcome}), 200)
        _ok(api.post(f"/api/v1/missions/{propose('rejected')}/reject", headers=streamer), 200)
        _ok(api.post(f"/api/v1/missions/{propose('cancelled')}/cancel", headers=viewer), 200)

        post = _ok(api.post(f"/api/v1/channels/{s.streamer_id}/posts", headers=viewer,
                            json={"title": "seeded post", "body": "hello"}), 201)
        s.post_ids.append(int(post["id"]))
        comment = _ok(api.post(f"/api/v1/posts/{post['id']}/comments", headers=viewer,
                               json={"body": "first"}), 201)
        s.comment_ids.append(int(comment["id"]))
        overlay = _ok(api.get("/api/v1/streamers/me/overlay", headers=streamer), 200)
        s.overlay_token = str(overlay["url"]).rstrip("/").rsplit("/", 1)[-1].split("?")[0]
    return s


@pytest.fixture(scope="module", params=BACKENDS)
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[Target]:
    backend: str = request.param
    workdir = tmp_path_factory.mktemp(f"fuzz-{backend}")
    data_dir = workdir / "var"
    data_dir.mkdir()
    urls: dict[str, str] = {}
    admin = ""
    if backend == "postgres":
        admin = pg_admin_url()
        suffix = uuid.uuid4().hex[:10]
        names = {"core": f"ml_fuzz_core_{suffix}", "identity": f"ml_fuzz_identity_{suffix}"}
        for name in names.values():
            asyncio.run(_admin(admin, f'CREATE DATABASE "{name}"'))
        urls = {key: _db_url(admin, name) for key, name in names.items()}
    # SQLite runs with the shipped rate limits, so that 429s are fuzzed and must conform
    # too; PostgreSQL runs with them off, so that the fuzzer reaches the rules behind them.
    realistic = backend == "sqlite"
    env = _server_env(data_dir, urls, realistic_limits=realistic)
    proc: subprocess.Popen[bytes] | None = None
    try:
        if urls:
            subprocess.run([sys.executable, "-m", "missionlink.cli", "migrate"], env=env,
                           check=True, capture_output=True)
        port = _free_port()
        proc = start_serve(env, port, workdir / "server.log")
        base_url = f"http://127.0.0.1:{port}"
        yield Target(backend, base_url, workdir, _seed(base_url), realistic)
    finally:
        if proc is not None:
            stop_process(proc)
        if urls:
            for url in urls.values():
                name = url.rsplit("/", 1)[-1]
                asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _toml(value: object) -> str:
    return json.dumps(value)  # a JSON string, number or list of them is valid TOML too


def _config(t: Target) -> str:
    s = t.seeded
    ids = {
        "mission_ids": s.mission_ids, "streamer_ids": [s.streamer_id, s.viewer_id],
        "post_ids": s.post_ids, "comment_ids": s.comment_ids,
    }
    lines = [
        f"seed = {SEED}",
        f'base-url = "{t.base_url}"',
        "workers = 1",
        "request-timeout = 15.0",
        "max-stream-events = 3",
        # A failure on one operation must not hide the next one on the same operation.
        "continue-on-failure = true",
        "",
        "[generation]",
        f"max-examples = {EXAMPLES}",
        # The generator database would replay yesterday's examples and break the seed.
        'database = "none"',
        "",
        "[headers]",
        f'Authorization = "Bearer {s.viewer_token}"',
        "",
        "[checks]",
        *(f"{name}.enabled = {_toml(name not in EXCLUDED_CHECKS)}" for name in CHECKS),
        "",
        "[phases.stateful]",
        f"max-steps = {STATEFUL_STEPS}",
        "",
        "[phases.fuzzing]",
        'operation-ordering = "auto"',
        "extra-data-sources.responses = true",
        "",
    ]
    for name, values in ids.items():
        lines += [f"[dictionaries.{name}]", f"values = {_toml(values)}", ""]
    # Half the ids are seeded objects, half whatever the generator makes of the schema.
    lines += ["[parameters]"]
    for param, name in (("mission_id", "mission_ids"), ("streamer_id", "streamer_ids"),
                        ("post_id", "post_ids"), ("comment_id", "comment_ids")):
        lines.append(f'"path.{param}" = {{ dictionary = "{name}", probability = 0.5 }}')
    lines += [
        '"body.streamer_id" = { dictionary = "streamer_ids", probability = 0.5 }',
        "",
        "[[operations]]",
        f"include-path-regex = {_toml(STREAMER_PATHS)}",
        f'headers = {{ Authorization = "Bearer {s.streamer_token}" }}',
        "",
    ]
    lines += [
        "[[operations]]",
        f"include-path = {_toml(STREAMING_PATHS)}",
        "max-stream-events = 1",
        "",
    ]
    for method, paths in BUSINESS_RULES_422.items():
        lines += [
            "[[operations]]",
            f"include-method = {_toml(method.upper())}",
            f"include-path = {_toml(paths)}",
            f"checks.positive_data_acceptance.expected-statuses = {_toml([*ACCEPTED, 422])}",
            "",
        ]
    return "\n".join(lines)


def _run_schemathesis(t: Target) -> subprocess.CompletedProcess[str]:
    config = t.workdir / "schemathesis.toml"
    config.write_text(_config(t))
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run", f"{t.base_url}/openapi.json",
        "--phases", "examples,coverage,fuzzing,stateful",
        "--report", "junit", "--report-dir", str(t.workdir / "report"),
        "--no-color", "--output-truncate", "false",
    ]
    return subprocess.run(command, cwd=t.workdir, capture_output=True, text=True,
                          timeout=1800, check=False)


def test_no_input_breaks_the_api_or_its_contract(target: Target) -> None:
    result = _run_schemathesis(target)
    server_log = (target.workdir / "server.log").read_text(errors="replace")
    assert result.returncode == 0, (
        f"schemathesis found failures on {target.backend} (seed {SEED}, "
        f"{EXAMPLES} examples per operation; rerun with MISSIONLINK_FUZZ_SEED={SEED}):\n"
        f"{result.stdout[-60_000:]}\n{result.stderr[-5_000:]}\n"
        f"--- server log (tail) ---\n{server_log[-10_000:]}"
    )


def test_the_document_links_each_new_object_to_what_comes_next(tmp_path: Path) -> None:
    app = create_app(build(Settings(data_dir=tmp_path)))
    spec = app.openapi()
    by_id = {op["operationId"]: (method, path) for path, ops in spec["paths"].items()
             for method, op in ops.items()}
    created = spec["paths"]["/api/v1/missions"]["post"]["responses"]["201"]["links"]
    targets = {by_id[link["operationId"]] for link in created.values()}
    assert ("post", "/api/v1/missions/{mission_id}/pledges") in targets
    assert ("post", "/api/v1/missions/{mission_id}/bets") in targets
    assert ("post", "/api/v1/missions/{mission_id}/result") in targets
    comments = spec["paths"]["/api/v1/channels/{streamer_id}/posts"]["post"]["responses"][
        "201"]["links"]
    assert ("post", "/api/v1/posts/{post_id}/comments") in {
        by_id[link["operationId"]] for link in comments.values()}
    for ops in spec["paths"].values():
        for op in ops.values():
            for response in op["responses"].values():
                for link in response.get("links", {}).values():
                    assert link["operationId"] in by_id
