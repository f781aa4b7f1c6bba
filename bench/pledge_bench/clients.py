"""The load generators: httpx, and a lean HTTP/1.1 client on asyncio streams; and the
pledge requests they send (round-robin over fans and missions)."""

from __future__ import annotations

import asyncio
import itertools
import json
import re

import httpx

from pledge_bench.seeding import PLEDGE_AMOUNT, Seed

BODY = json.dumps({"amount": PLEDGE_AMOUNT}).encode()


class Requests:
    """Round-robin over fans (no two in-flight pledges share a wallet) and a mission list."""

    def __init__(self, seed: Seed, tag: str, keyed: bool, client_kind: str) -> None:
        self.seed = seed
        self.tag = tag
        self.keyed = keyed
        self.client_kind = client_kind
        self.counter = itertools.count()

    def next(self, mission_ids: list[int]) -> tuple[str, dict[str, str]]:
        i = next(self.counter)
        fan = self.seed.fans[i % len(self.seed.fans)]
        mission = mission_ids[i % len(mission_ids)]
        headers = {"authorization": f"Bearer {self.seed.tokens[fan]}",
                   "content-type": "application/json"}
        if self.keyed:
            headers["idempotency-key"] = f"{self.tag}-{i}"
        return f"/api/v1/missions/{mission}/pledges", headers


class HttpxClient:
    """httpx.AsyncClient with ``connections`` keep-alive connections."""

    def __init__(self, port: int, connections: int) -> None:
        self.client = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=httpx.Timeout(60.0),
            limits=httpx.Limits(max_connections=connections,
                                max_keepalive_connections=connections),
        )

    async def warm(self, n: int) -> None:
        await asyncio.gather(*(self.client.get("/healthz") for _ in range(n)))

    async def post(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        try:
            r = await self.client.post(path, content=body, headers=headers)
            return r.status_code, (r.text if r.status_code != 201 else "")
        except httpx.HTTPError as exc:
            return 0, f"{type(exc).__name__}: {exc}"

    async def aclose(self) -> None:
        await self.client.aclose()


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)


class RawClient:
    """A lean HTTP/1.1 keep-alive client on asyncio streams: what it costs per request is a
    small fraction of httpx's, so the server rather than the load generator is measured."""

    def __init__(self, port: int, connections: int) -> None:
        self.port = port
        self.limit = connections
        self.opened = 0
        self.idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue())
        self.all: list[asyncio.StreamWriter] = []

    async def _acquire(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.idle.empty() and self.opened < self.limit:
            self.opened += 1
            try:
                conn = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                self.opened -= 1
                raise
            self.all.append(conn[1])
            return conn
        return await self.idle.get()

    async def _request(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        reader, writer = await self._acquire()
        try:
            writer.write(head + body)
            header = await reader.readuntil(b"\r\n\r\n")
            status = int(header[9:12])
            m = _CONTENT_LENGTH.search(header)
            if m is not None:
                payload = await reader.readexactly(int(m.group(1)))
            else:  # no length: the body runs to the end of the connection
                payload = await reader.read()
                raise ConnectionResetError("response without content-length")
            if b"connection: close" in header.lower():
                raise ConnectionResetError("server closed the connection")
        except BaseException:
            writer.close()
            self.opened -= 1
            raise
        self.idle.put_nowait((reader, writer))
        return status, payload

    async def warm(self, n: int) -> None:
        head = f"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1:{self.port}\r\n\r\n".encode()
        await asyncio.gather(*(self._request(head, b"") for _ in range(min(n, self.limit))))

    async def post(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head = (f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{self.port}\r\n"
                f"content-length: {len(body)}\r\n{lines}\r\n").encode()
        try:
            status, payload = await asyncio.wait_for(self._request(head, body), 60)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                TimeoutError, ValueError) as exc:
            return 0, f"{type(exc).__name__}: {exc}"
        return status, (payload.decode(errors="replace") if status != 201 else "")

    async def aclose(self) -> None:
        for writer in self.all:
            writer.close()


Client = HttpxClient | RawClient


def make_client(kind: str, port: int, connections: int) -> Client:
    return RawClient(port, connections) if kind == "raw" else HttpxClient(port, connections)


