"""The floor under any Python pledge endpoint: HTTP in, one INSERT, HTTP out.

``bench/pledges.py`` runs this next to ``missionlink serve`` in the same run, driven by the
same client, so the figures show how close a Python HTTP service doing one database round
trip per request can come to pgbench on this machine at all. It is served the way
``missionlink serve`` is (uvicorn with httptools and uvloop, no access log) and does only:
parse ``POST /api/v1/missions/{id}/pledges``, read the JSON body's ``amount``, run one
autocommit ``INSERT ... RETURNING id`` through an asyncpg pool, answer 201 with a small JSON
body. No token check, no idempotency key, no wallet, no journal, no log line: it is a
ceiling to compare with, not a pledge.

    BARE_DSN=postgresql://... BARE_POOL=32 python -m uvicorn bare_pledge_app:app --app-dir bench
"""

from __future__ import annotations

import os
from typing import Any

import asyncpg
import orjson

PREFIX = "/api/v1/missions/"
SUFFIX = "/pledges"
INSERT = ("INSERT INTO bare_pledges (mission_id, amount, idempotency_key) "
          "VALUES ($1, $2, $3) RETURNING id")
SCHEMA = """CREATE TABLE IF NOT EXISTS bare_pledges (
    id bigserial PRIMARY KEY,
    mission_id bigint NOT NULL,
    amount bigint NOT NULL CHECK (amount > 0),
    idempotency_key text
)"""

_pool: asyncpg.Pool | None = None


async def _start() -> None:
    global _pool
    _pool = await asyncpg.create_pool(os.environ["BARE_DSN"],
                                      min_size=int(os.environ.get("BARE_POOL", "32")),
                                      max_size=int(os.environ.get("BARE_POOL", "32")))
    async with _pool.acquire() as conn:
        await conn.execute(SCHEMA)


async def _answer(send: Any, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await _start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if _pool is not None:
                    await _pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    path: str = scope["path"]
    if scope["method"] == "GET" and path == "/healthz":
        await _answer(send, 200, b'{"status":"ok"}')
        return
    if scope["method"] != "POST" or not path.startswith(PREFIX) or not path.endswith(SUFFIX):
        await _answer(send, 404, b'{"detail":"not found"}')
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    mission_id = int(path[len(PREFIX):-len(SUFFIX)])
    amount = orjson.loads(body)["amount"]
    key = next((v.decode() for k, v in scope["headers"] if k == b"idempotency-key"), None)
    assert _pool is not None
    async with _pool.acquire() as conn:
        pledge_id = await conn.fetchval(INSERT, mission_id, amount, key)
    await _answer(send, 201, orjson.dumps({"id": pledge_id, "mission_id": mission_id,
                                           "amount": amount}))
