"""Kill -9 a process of the chaos cluster at a named phase of its work.

``tests/chaos/test_faults.py`` puts this folder first on the ``PYTHONPATH`` of the
cluster's processes, so Python imports this module at start-up (``site`` imports
``sitecustomize``). It changes nothing unless ``MISSIONLINK_CHAOS_KILL_AT`` names
phases (comma-separated); then it wraps the product's own functions, as each module is
imported, so that a process reaching an *armed* phase dies there with SIGKILL:

=================  ===================================================================
phase              where the process dies
=================  ===================================================================
money-parsed       a pledge or bet parsed and authenticated on the money route, before
                   its function runs (no database work for it yet)
money-sent         the pledge batch's one autocommit statement written to PostgreSQL,
                   its result not read (the database may commit without the process
                   knowing)
money-committed    a new pledge or bet committed and its answer known, before the
                   response is started
money-answered     the whole 2xx response of a new pledge or bet handed to the socket
                   (the control: the client has its answer)
email-sent         the SMTP server accepted a result email (250 after DATA), before the
                   job is marked sent
event-published    an outbox event published on the broker to a channel's overlays,
                   before the event is marked processed
=================  ===================================================================

Arming: the test creates ``$MISSIONLINK_CHAOS_DIR/<phase>.armed``. The first process to
reach the phase claims that file by renaming it (one atomic rename: exactly one process
wins each arming), writes ``fired-<phase>-<pid>-<n>.json`` with what it was doing (the
request's Idempotency-Key, the email's Message-ID, the event), and kills itself. The
test re-arms as it pleases and reads the ``fired`` files afterwards.

Loud failures: an unknown phase name ends the process at start-up (exit 70), and a
wrapped function or class that is missing raises at import, so the process cannot start;
a phase that is never reached leaves no ``fired`` file, which the test fails on. A rename
in ``src`` therefore fails the scenario instead of turning it into a run without faults.
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib.abc
import importlib.machinery
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

PHASES = ("money-parsed", "money-sent", "money-committed", "money-answered",
          "email-sent", "event-published")
ACTIVE = frozenset(p for p in os.environ.get("MISSIONLINK_CHAOS_KILL_AT", "").split(",") if p)
FOLDER = os.environ.get("MISSIONLINK_CHAOS_DIR", "")
#: The Idempotency-Key of the money request this task is answering (None: not one).
_MONEY: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "missionlink_chaos_money", default=None)
_fired = 0


def hit(phase: str, what: dict[str, Any]) -> None:
    """Die here if ``phase`` is armed and this process wins the arming."""
    global _fired
    if phase not in ACTIVE:
        return
    armed = os.path.join(FOLDER, f"{phase}.armed")
    _fired += 1
    stem = f"fired-{phase}-{os.getpid()}-{_fired}"
    try:
        os.rename(armed, os.path.join(FOLDER, stem + ".claimed"))
    except FileNotFoundError:
        return  # not armed, or another process won it
    record = {"phase": phase, "pid": os.getpid(), "at": time.time(), **what}
    tmp = os.path.join(FOLDER, stem + ".tmp")
    with open(tmp, "w") as out:
        json.dump(record, out, default=str)
        out.flush()
        os.fsync(out.fileno())
    os.rename(tmp, os.path.join(FOLDER, stem + ".json"))
    os.kill(os.getpid(), signal.SIGKILL)


def _need(module: Any, *path: str) -> Any:
    found = module
    for name in path:
        if not hasattr(found, name):
            raise RuntimeError(f"chaos injection: {module.__name__}.{'.'.join(path)} is gone; "
                               "update tests/chaos/inject/sitecustomize.py")
        found = getattr(found, name)
    return found


# -- the wrappers, one per module, applied right after the module is executed ------------


def _fast_money(module: Any) -> None:
    import dataclasses

    routes = _need(module, "ROUTES")
    for suffix in ("/pledges", "/bets"):
        route = routes[suffix]

        async def wrapped(*, _endpoint: Callable[..., Any] = route.endpoint,
                          **kwargs: Any) -> Any:
            key = kwargs.get("key")
            hit("money-parsed", {"key": key, "mission_id": kwargs.get("mission_id")})
            token = _MONEY.set(key)
            try:
                return await _endpoint(**kwargs)
            finally:
                _MONEY.reset(token)

        routes[suffix] = dataclasses.replace(route, endpoint=wrapped)
    serve = _need(module, "FastMoney", "_serve")

    async def _serve(self: Any, scope: Any, receive: Any, send: Any, *args: Any) -> None:
        key = next((v.decode("latin-1") for n, v in scope["headers"]
                    if n == b"idempotency-key"), None)
        fresh = False

        async def sending(message: Any) -> None:
            nonlocal fresh
            if message["type"] == "http.response.start":
                fresh = message["status"] < 300 and not any(
                    n.lower() == b"idempotent-replayed" for n, _ in message.get("headers", ()))
            await send(message)
            if (message["type"] == "http.response.body" and not message.get("more_body")
                    and fresh):
                hit("money-answered", {"key": key})

        await serve(self, scope, receive, sending, *args)

    module.FastMoney._serve = _serve


def _effects(module: Any) -> None:
    respond = _need(module, "respond")

    async def wrapped(container: Any, stored: Any, **kwargs: Any) -> Any:
        key = _MONEY.get()
        if key is not None and stored.status_code < 300 and not stored.replayed:
            hit("money-committed", {"key": key, "status": stored.status_code})
        return await respond(container, stored, **kwargs)

    wrapped.chaos_wrapped = True  # type: ignore[attr-defined]
    module.respond = wrapped


def _missions_routes(module: Any) -> None:
    # It imported ``respond`` from ``effects`` after the wrapper above replaced it.
    if not getattr(_need(module, "respond"), "chaos_wrapped", False):
        raise RuntimeError("chaos injection: api.routers.missions does not answer through "
                           "api.effects.respond; update tests/chaos/inject/sitecustomize.py")


def _prepared_stmt(module: Any) -> None:
    fetch = _need(module, "PreparedStatement", "fetch")

    async def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
        if "money-sent" not in ACTIVE or "missionlink_place_pledges" not in self.get_query():
            return await fetch(self, *args, **kwargs)
        running = asyncio.ensure_future(fetch(self, *args, **kwargs))
        # Let it write Bind/Execute/Sync to the socket; it then waits for the answer.
        for _ in range(3):
            await asyncio.sleep(0)
        if not running.done():
            keys = args[4] if len(args) > 4 else None
            hit("money-sent", {"keys": keys})
        return await running

    module.PreparedStatement.fetch = wrapped


def _senders(module: Any) -> None:
    send = _need(module, "SmtpMailer", "send")

    async def wrapped(self: Any, message: Any) -> None:
        await send(self, message)
        hit("email-sent", {"message_id": str(message["Message-ID"])})

    module.SmtpMailer.send = wrapped


def _broker(module: Any) -> None:
    publish = _need(module, "RedisBroker", "publish")

    async def wrapped(self: Any, channel: str, message: dict[str, Any]) -> None:
        await publish(self, channel, message)
        if channel.startswith("channel:"):
            hit("event-published", {"channel": channel, "event": message})

    module.RedisBroker.publish = wrapped


#: module -> (its wrapper, the phases that need it)
PATCHES: dict[str, tuple[Callable[[Any], None], frozenset[str]]] = {
    "missionlink.api.fast_money": (_fast_money, frozenset(
        {"money-parsed", "money-committed", "money-answered"})),
    "missionlink.api.effects": (_effects, frozenset({"money-committed"})),
    "missionlink.api.routers.missions": (_missions_routes, frozenset({"money-committed"})),
    "asyncpg.prepared_stmt": (_prepared_stmt, frozenset({"money-sent"})),
    "missionlink.adapters.email.senders": (_senders, frozenset({"email-sent"})),
    "missionlink.adapters.broker.inprocess": (_broker, frozenset({"event-published"})),
}


class _Loader(importlib.abc.Loader):
    def __init__(self, real: Any, patch: Callable[[Any], None]) -> None:
        self.real, self.patch = real, patch

    def create_module(self, spec: Any) -> Any:
        return self.real.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.real.exec_module(module)
        self.patch(module)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        entry = PATCHES.get(name)
        if entry is None or not entry[1] & ACTIVE:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                spec.loader = _Loader(spec.loader, entry[0])
                return spec
        return None


if ACTIVE:
    unknown = ACTIVE - set(PHASES)
    if unknown or not FOLDER:
        sys.stderr.write(f"MISSIONLINK_CHAOS_KILL_AT: unknown phases {sorted(unknown)} or no "
                         f"MISSIONLINK_CHAOS_DIR; known: {', '.join(PHASES)}\n")
        sys.stderr.flush()
        os._exit(70)
    sys.meta_path.insert(0, _Finder())
