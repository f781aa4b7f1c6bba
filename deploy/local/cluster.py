"""``make cluster``: MissionLink as production runs it, on this machine.

Two API processes behind nginx, two outbox workers, the machine's PostgreSQL and Redis:

* two databases, each reachable only by its own role (``<name>_core`` cannot connect to
  the identity database and ``<name>_identity`` not to the core one), migrated by the
  product's own ``missionlink migrate`` as those roles;
* nginx as the load balancer: it forwards to the API processes that are in service and
  tries the other one when a connection fails (idempotent methods only, as nginx does by
  default, so a POST is never sent twice);
* an active health checker in front of nginx that does what a cloud load balancer's
  target group does: it asks every API process for ``/readyz`` each second, takes one
  out of nginx's upstream after ``UNHEALTHY_AFTER`` failed checks and puts it back after
  ``HEALTHY_AFTER`` good ones (fail open: with none healthy, all are tried);
* a supervisor that replaces a process that died, as a container orchestrator would.

It prints the URL and runs until Ctrl-C (or SIGTERM); then it stops every process it
started, API and workers with SIGTERM so they finish what they hold. The databases and
roles stay for the next run unless ``--drop`` is given. Logs, the nginx configuration and
emails (the file mailer, unless SMTP settings are passed in the environment) are under
``var/cluster/<name>/``.

The integration test ``tests/cluster/test_cluster.py`` drives the same ``Cluster`` class.
"""

from __future__ import annotations

import argparse
import asyncio
import grp
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
#: Failed or good ``/readyz`` answers in a row before a process leaves or rejoins nginx's
#: upstream (the AWS target group's unhealthy and healthy threshold counts, at 1 s).
UNHEALTHY_AFTER = 2
HEALTHY_AFTER = 2
CHECK_INTERVAL = 1.0
CHECK_TIMEOUT = 1.0
#: A replaced process waits this long first, so a crash loop does not spin.
RESTART_DELAY = 1.0
STOP_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _db_url(admin_url: str, database: str, *, user: str | None = None,
            password: str | None = None) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(admin_url).set(database=database)
    if user is not None:
        url = url.set(username=user, password=password)
    return url.render_as_string(hide_password=False)


@dataclass
class Process:
    """One supervised process: API (``serve``), worker or nginx."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    port: int | None = None
    #: Where it serves /metrics: an API process's internal port, a worker's METRICS_PORT.
    metrics_port: int | None = None
    popen: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    #: False while the test or the operator holds it down on purpose.
    wanted: bool = True
    exited_at: float | None = None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                cwd=ROOT, start_new_session=True)
        self.exited_at = None

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def send(self, sig: int) -> None:
        if self.alive:
            assert self.popen is not None
            self.popen.send_signal(sig)

    def stop(self, timeout: float = STOP_TIMEOUT, *, sig: int | None = signal.SIGTERM,
             ) -> int | None:
        """Send ``sig`` (None: it was sent already) and wait; SIGKILL after ``timeout``."""
        if self.popen is None:
            return None
        if self.alive and sig is not None:
            self.popen.send_signal(sig)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait(5)


@dataclass
class Target:
    """An API process as the health checker sees it."""

    process: Process
    healthy: bool = False
    good: int = 0
    bad: int = 0


@dataclass
class Cluster:
    admin_url: str
    broker_url: str
    name: str = "mlcluster"
    port: int = 8080
    apis: int = 2
    workers: int = 2
    state_dir: Path | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)
    #: Added to the workers' environment only (a fault harness skews their clock this way).
    worker_env: Mapping[str, str] = field(default_factory=dict)
    #: Where the processes reach PostgreSQL, when not at ``admin_url``'s address (a fault
    #: proxy in front of it, say); the roles and databases are made through ``admin_url``.
    service_url: str | None = None
    supervise: bool = True
    log: Callable[[str], None] = print

    def __post_init__(self) -> None:
        self.state = self.state_dir or ROOT / "var" / "cluster" / self.name
        self.processes: dict[str, Process] = {}
        self.targets: list[Target] = []
        self.events: list[tuple[float, str]] = []
        self.nginx: Process | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        secrets_file = self.state / "secrets.env"
        self.passwords = self._passwords(secrets_file)

    # -- databases -----------------------------------------------------------------------

    @property
    def roles(self) -> dict[str, str]:
        return {"core": f"{self.name}_core", "identity": f"{self.name}_identity"}

    def database_url(self, which: str) -> str:
        role = self.roles[which]
        return _db_url(self.service_url or self.admin_url, role, user=role,
                       password=self.passwords[which])

    def _passwords(self, path: Path) -> dict[str, str]:
        found: dict[str, str] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                key, _, value = line.partition("=")
                found[key] = value
        for key in ("core", "identity"):
            found.setdefault(key, secrets.token_urlsafe(24))
        if "jwt" not in found:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption())
            found["jwt"] = pem.decode().replace("\n", "\\n")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("".join(f"{k}={v}\n" for k, v in found.items()))
        return found

    async def _admin(self, statements: list[str], database: str | None = None) -> None:
        import asyncpg

        from missionlink.config import normalize_database_url

        url = _db_url(self.admin_url, database) if database else self.admin_url
        dsn = normalize_database_url(url).replace("postgresql+asyncpg://", "postgresql://")
        conn = await asyncpg.connect(dsn)
        try:
            for sql in statements:
                await conn.execute(sql)
        finally:
            await conn.close()

    async def _exists(self, kind: str, name: str) -> bool:
        import asyncpg

        from missionlink.config import normalize_database_url

        dsn = normalize_database_url(self.admin_url).replace("postgresql+asyncpg://",
                                                             "postgresql://")
        conn = await asyncpg.connect(dsn)
        try:
            sql = ("SELECT 1 FROM pg_roles WHERE rolname = $1" if kind == "role"
                   else "SELECT 1 FROM pg_database WHERE datname = $1")
            return bool(await conn.fetchval(sql, name))
        finally:
            await conn.close()

    async def create_databases(self) -> None:
        """Each database owned by, and open to, only its own role (idempotent)."""
        for which, role in self.roles.items():
            password = self.passwords[which].replace("'", "''")
            if not await self._exists("role", role):
                await self._admin([f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'"])
            else:
                await self._admin([f"ALTER ROLE \"{role}\" LOGIN PASSWORD '{password}'"])
            if not await self._exists("database", role):
                await self._admin([f'CREATE DATABASE "{role}" OWNER "{role}"'])
            await self._admin([
                f'REVOKE ALL ON DATABASE "{role}" FROM PUBLIC',
                f'GRANT CONNECT, TEMPORARY ON DATABASE "{role}" TO "{role}"',
            ])
        # The board's search index needs pg_trgm; a superuser creates it so the core
        # role needs no more than it owns.
        await self._admin(["CREATE EXTENSION IF NOT EXISTS pg_trgm"], self.roles["core"])

    async def drop_databases(self) -> None:
        for role in self.roles.values():
            await self._admin([f'DROP DATABASE IF EXISTS "{role}" WITH (FORCE)',
                               f'DROP ROLE IF EXISTS "{role}"'])

    # -- processes -----------------------------------------------------------------------

    def env(self, **more: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("MISSIONLINK_")}
        base.update({
            "MISSIONLINK_ENV": "staging",
            "MISSIONLINK_DATA_DIR": str(self.state / "data"),
            "MISSIONLINK_DATABASE_URL": self.database_url("core"),
            "MISSIONLINK_IDENTITY_DATABASE_URL": self.database_url("identity"),
            "MISSIONLINK_BROKER_URL": self.broker_url,
            "MISSIONLINK_JWT_PRIVATE_KEY": self.passwords["jwt"].replace("\\n", "\n"),
            "MISSIONLINK_PUBLIC_URL": self.url,
            # nginx is the one proxy in front: its X-Forwarded-For names the client.
            "MISSIONLINK_TRUSTED_PROXIES": "127.0.0.1",
            "MISSIONLINK_CLIENT_IP_HEADER": "X-Forwarded-For",
            "MISSIONLINK_SERVE_WORKER": "0",
        })
        base.update(self.extra_env)
        base.update(more)
        return base

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _cli(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "missionlink.cli", *args]

    def migrate(self) -> None:
        """``missionlink migrate`` as the two roles (no superuser)."""
        result = subprocess.run(self._cli("migrate"), env=self.env(), cwd=ROOT,
                                capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{result.stdout}{result.stderr}")

    def reconcile(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self._cli("reconcile"), env=self.env(), cwd=ROOT,
                              capture_output=True, text=True, timeout=300)

    def _define(self, api_ports: list[int] | None = None,
                metrics_ports: list[int] | None = None) -> None:
        logs = self.state / "logs"
        ports = iter(metrics_ports or [])
        for i in range(1, self.apis + 1):
            port = api_ports[i - 1] if api_ports else free_port()
            metrics_port = next(ports, None) or free_port()
            name = f"api-{i}"
            self.processes[name] = Process(
                name, self._cli("serve", "--host", "127.0.0.1", "--port", str(port)),
                self.env(MISSIONLINK_API_METRICS_PORT=str(metrics_port)),
                logs / f"{name}.log", port=port, metrics_port=metrics_port)
            self.targets.append(Target(self.processes[name]))
        for i in range(1, self.workers + 1):
            name = f"worker-{i}"
            metrics_port = next(ports, None) or free_port()
            self.processes[name] = Process(
                name, self._cli("worker"),
                self.env(MISSIONLINK_METRICS_PORT=str(metrics_port), **self.worker_env),
                logs / f"{name}.log", metrics_port=metrics_port)

    # -- nginx ---------------------------------------------------------------------------

    def _nginx_paths(self) -> dict[str, Path]:
        d = self.state / "nginx"
        return {"dir": d, "conf": d / "nginx.conf", "upstream": d / "upstream.conf",
                "pid": d / "nginx.pid"}

    def _write_upstream(self) -> None:
        targets = self.targets
        in_service = [t for t in targets if t.healthy] or targets  # fail open
        lines = ["upstream missionlink_api {"]
        for t in targets:
            down = "" if t in in_service else " down"
            lines.append(f"  server 127.0.0.1:{t.process.port} max_fails=1 fail_timeout=2s{down};")
        lines += ["  keepalive 32;",
                  # Shorter than uvicorn's 5 s keep-alive: nginx never reuses a connection
                  # the API process is closing, which would fail a POST it cannot retry.
                  "  keepalive_timeout 4s;", "}", ""]
        path = self._nginx_paths()["upstream"]
        tmp = path.with_suffix(".tmp")
        tmp.write_text("\n".join(lines))
        os.replace(tmp, path)

    def _write_nginx_conf(self) -> None:
        p = self._nginx_paths()
        temp = p["dir"] / "temp"
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (temp / sub).mkdir(parents=True, exist_ok=True)
        user = ""
        if os.geteuid() == 0:
            # nginx's workers drop root; their temporary files belong to that user.
            nobody = pwd.getpwnam("nobody")
            user = f"user nobody {grp.getgrgid(nobody.pw_gid).gr_name};\n"
            for folder in temp.iterdir():
                os.chown(folder, nobody.pw_uid, nobody.pw_gid)
        logs = self.state / "logs"
        conf = f"""# Written by deploy/local/cluster.py; its health checker rewrites the upstream.
{user}daemon off;
worker_processes 1;
pid {p['pid']};
error_log {logs / 'nginx-error.log'} warn;

events {{
  worker_connections 4096;
}}

http {{
  access_log {logs / 'nginx-access.log'};
  server_tokens off;
  client_max_body_size 1m;
  client_body_temp_path {temp / 'body'};
  proxy_temp_path {temp / 'proxy'};
  fastcgi_temp_path {temp / 'fastcgi'};
  uwsgi_temp_path {temp / 'uwsgi'};
  scgi_temp_path {temp / 'scgi'};

  include {p['upstream']};

  server {{
    listen 127.0.0.1:{self.port};

    location = /nginx-health {{
      access_log off;
      return 200 "ok\\n";
    }}

    # Scraped on each process directly, never through the public balancer.
    location = /metrics {{
      return 404;
    }}

    location / {{
      proxy_pass http://missionlink_api;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_connect_timeout 2s;
      # Only idempotent requests go to the other process (nginx's default for
      # non_idempotent); a POST whose process died is answered 502 and the client
      # retries it with its Idempotency-Key.
      proxy_next_upstream error timeout http_502 http_503;
      proxy_next_upstream_tries 2;
      proxy_buffering off;
      proxy_read_timeout 1h;
    }}
  }}
}}
"""
        p["conf"].write_text(conf)

    def _start_nginx(self) -> None:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(nginx).exists():
            raise RuntimeError("nginx is not installed (Debian: apt-get install nginx-light)")
        p = self._nginx_paths()
        self._write_nginx_conf()
        self._write_upstream()
        test = subprocess.run([nginx, "-t", "-q", "-e", "stderr", "-p", str(p["dir"]),
                               "-c", str(p["conf"])], capture_output=True, text=True)
        if test.returncode != 0:
            raise RuntimeError(f"nginx -t failed: {test.stderr}")
        self.nginx = Process("nginx", [nginx, "-e", "stderr", "-p", str(p["dir"]),
                                       "-c", str(p["conf"])],
                             dict(os.environ), self.state / "logs" / "nginx.log", port=self.port)
        self.nginx.start()

    def _reload_nginx(self) -> None:
        if self.nginx is not None:
            self.nginx.send(signal.SIGHUP)

    # -- health checks and supervision ----------------------------------------------------

    def _note(self, what: str) -> None:
        self.events.append((time.monotonic(), what))
        self.log(f"[cluster] {what}")

    def _check_once(self, client: httpx.Client) -> None:
        changed = False
        for t in self.targets:
            ok = False
            if t.process.alive:
                try:
                    r = client.get(f"http://127.0.0.1:{t.process.port}/readyz")
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
            if ok:
                t.good, t.bad = t.good + 1, 0
                if not t.healthy and t.good >= HEALTHY_AFTER:
                    t.healthy, changed = True, True
                    self._note(f"{t.process.name} healthy: in service")
            else:
                t.good, t.bad = 0, t.bad + 1
                if t.healthy and t.bad >= UNHEALTHY_AFTER:
                    t.healthy, changed = False, True
                    self._note(f"{t.process.name} unhealthy: out of service")
        if changed:
            self._write_upstream()
            self._reload_nginx()

    def _supervise_once(self) -> None:
        now = time.monotonic()
        for proc in [*self.processes.values(), *([self.nginx] if self.nginx else [])]:
            if proc.alive or not proc.wanted or proc.popen is None:
                continue
            if proc.exited_at is None:
                proc.exited_at = now
                self._note(f"{proc.name} exited with {proc.popen.returncode}")
            if now - proc.exited_at >= RESTART_DELAY:
                proc.restarts += 1
                proc.start()
                self._note(f"{proc.name} replaced (restart {proc.restarts})")

    def _loop(self) -> None:
        with httpx.Client(timeout=CHECK_TIMEOUT) as client:
            while not self._stop.is_set():
                with self._lock:
                    if self.supervise:
                        self._supervise_once()
                    self._check_once(client)
                self._stop.wait(CHECK_INTERVAL)

    # -- the whole -----------------------------------------------------------------------

    def start(self, *, api_ports: list[int] | None = None,
              metrics_ports: list[int] | None = None, timeout: float = 60.0) -> None:
        """Create and migrate the databases, start everything, wait until it serves.
        ``metrics_ports``: the API processes' internal metrics ports, then the workers'."""
        asyncio.run(self.create_databases())
        self.migrate()
        self._define(api_ports, metrics_ports)
        for proc in self.processes.values():
            proc.start()
        self._start_nginx()
        self._thread = threading.Thread(target=self._loop, name="cluster-health", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(t.healthy for t in self.targets) and self._serves():
                return
            for proc in self.processes.values():
                if proc.popen is not None and proc.popen.poll() is not None and proc.restarts:
                    raise RuntimeError(f"{proc.name} keeps exiting; see {proc.log}")
            time.sleep(0.2)
        raise RuntimeError(f"the cluster did not become healthy in {timeout:.0f} s; "
                           f"logs under {self.state / 'logs'}")

    def _serves(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to one process; the supervisor replaces it if it exits."""
        with self._lock:
            self._note(f"{name} sent {signal.Signals(sig).name}")
            self.processes[name].send(sig)

    def wait_healthy(self, name: str, timeout: float = 60.0, *, restarts: int = 0) -> None:
        """Wait until ``name`` has been replaced ``restarts`` times in all and, for an API
        process, is back in service."""
        deadline = time.monotonic() + timeout
        proc = self.processes[name]
        target = next((t for t in self.targets if t.process is proc), None)
        while time.monotonic() < deadline:
            if proc.restarts >= restarts and proc.alive and (target is None or target.healthy):
                return
            time.sleep(0.1)
        raise TimeoutError(f"{name} did not come back into service")

    def stop(self) -> dict[str, int | None]:
        """Stop the health checker, then every process (SIGTERM, then SIGKILL)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        codes: dict[str, int | None] = {}
        for proc in self.processes.values():
            proc.wanted = False
            proc.send(signal.SIGTERM)
        for name, proc in self.processes.items():
            codes[name] = proc.stop(sig=None)
        if self.nginx is not None:
            self.nginx.wanted = False
            codes["nginx"] = self.nginx.stop(sig=signal.SIGQUIT)  # nginx's graceful stop
        return codes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default=os.environ.get("CLUSTER_NAME", "mlcluster"),
                        help="prefix of the databases and roles, and the state folder")
    parser.add_argument("--port", type=int, default=int(os.environ.get("CLUSTER_PORT", "8080")),
                        help="nginx listens on 127.0.0.1:PORT")
    parser.add_argument("--admin-url", default=os.environ.get(
        "CLUSTER_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL superuser URL, to create the roles and databases")
    parser.add_argument("--broker-url", default=os.environ.get(
        "CLUSTER_BROKER_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--apis", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--drop", action="store_true",
                        help="drop the databases and roles when stopping")
    args = parser.parse_args(argv)

    cluster = Cluster(admin_url=args.admin_url, broker_url=args.broker_url, name=args.name,
                      port=args.port, apis=args.apis, workers=args.workers)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    try:
        print(f"[cluster] starting {args.apis} API processes, {args.workers} workers and "
              f"nginx; logs under {cluster.state / 'logs'}", flush=True)
        cluster.start()
        print(f"[cluster] MissionLink is at {cluster.url}  (Ctrl-C stops everything)",
              flush=True)
        for name, proc in cluster.processes.items():
            print(f"[cluster]   {name}: pid {proc.popen.pid if proc.popen else '-'}"
                  + (f", port {proc.port}" if proc.port else "")
                  + f", metrics on {proc.metrics_port}", flush=True)
        stopping.wait()
    finally:
        print("[cluster] stopping", flush=True)
        codes = cluster.stop()
        print("[cluster] stopped: " + ", ".join(f"{k} exit {v}" for k, v in codes.items()),
              flush=True)
        if args.drop:
            asyncio.run(cluster.drop_databases())
            print(f"[cluster] dropped the databases and roles {args.name}_*", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
