"""Slow clients against a real `missionlink serve`: headers and bodies that arrive too slowly
get 408 and a closed connection, silent connections are closed, and a client that stops
reading its responses is disconnected, while normal requests keep being served."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import start_serve, stop_process

READ_TIMEOUT = 2  # MISSIONLINK_REQUEST_READ_TIMEOUT_SECONDS for the server under test
WRITE_TIMEOUT = 1  # MISSIONLINK_RESPONSE_WRITE_TIMEOUT_SECONDS
#: Far beyond the deadlines: without them, the server keeps every connection below open.
BOUND = 20.0
DRIP = 0.25  # seconds between the bytes or lines a slow client sends


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    data_dir: Path = tmp_path_factory.mktemp("slow-clients")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MISSIONLINK_")}
    env.update({
        "MISSIONLINK_DATA_DIR": str(data_dir),
        "MISSIONLINK_REQUEST_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT),
        "MISSIONLINK_RESPONSE_WRITE_TIMEOUT_SECONDS": str(WRITE_TIMEOUT),
        "MISSIONLINK_SERVE_WORKER": "0",
    })
    proc = start_serve(env, port, data_dir / "serve.log")
    try:
        yield "127.0.0.1", port
    finally:
        stop_process(proc, grace=20)


def _connect(server: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(server, timeout=BOUND)
    sock.settimeout(DRIP)
    return sock


def _drip(sock: socket.socket, pieces: Iterator[bytes], server: tuple[str, int]) -> bytes:
    """Send ``pieces`` slowly until the server answers or closes; return all it sent.

    Halfway through, a normal client is served: the slow one holds nothing it shouldn't.
    """
    started = time.monotonic()
    received = b""
    checked = False
    for piece in pieces:
        assert time.monotonic() - started < BOUND, "the server kept a slow client forever"
        try:
            sock.sendall(piece)
        except OSError:
            break  # closed by the server while we were still sending
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            chunk = None
        except ConnectionResetError:
            break
        if chunk == b"":
            break
        if chunk:
            received += chunk
        if not checked and time.monotonic() - started > READ_TIMEOUT / 2:
            assert httpx.get(f"http://{server[0]}:{server[1]}/healthz").status_code == 200
            checked = True
    return received + _rest(sock)


def _rest(sock: socket.socket) -> bytes:
    """Everything the server still sends before it closes (fails if it never closes)."""
    sock.settimeout(BOUND)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def _forever(*pieces: bytes) -> Iterator[bytes]:
    yield from pieces
    n = 0
    while True:
        n += 1
        yield b"X-Slow-%d: a\r\n" % n if pieces[-1].endswith(b"\r\n") else b"a"


def _assert_timeout(response: bytes, what: str) -> None:
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), response
    assert b"content-type: application/problem+json" in head.lower()
    assert b"connection: close" in head.lower()
    problem = json.loads(body)
    assert problem["type"].endswith("/request-timeout")
    assert problem["status"] == 408 and what in problem["detail"]


def test_headers_sent_slowly_get_408_and_the_connection_is_closed(
    server: tuple[str, int],
) -> None:
    with _connect(server) as sock:
        response = _drip(sock, _forever(b"GET /healthz HTTP/1.1\r\n", b"Host: x\r\n"), server)
    _assert_timeout(response, "headers")


def test_a_request_line_sent_byte_by_byte_is_cut_off(server: tuple[str, int]) -> None:
    request_line = iter([bytes([b]) for b in b"GET /healthz?" + b"a" * 10_000])
    with _connect(server) as sock:
        response = _drip(sock, request_line, server)
    _assert_timeout(response, "headers")


def test_a_connection_that_sends_nothing_is_closed(server: tuple[str, int]) -> None:
    with socket.create_connection(server, timeout=BOUND) as sock:
        assert _rest(sock) == b""


def test_a_body_sent_slowly_gets_408_and_the_connection_is_closed(
    server: tuple[str, int],
) -> None:
    head = (b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
    with _connect(server) as sock:
        response = _drip(sock, _forever(head), server)
    _assert_timeout(response, "body")


def test_each_request_on_a_kept_alive_connection_has_its_own_deadline(
    server: tuple[str, int],
) -> None:
    with _connect(server) as sock:
        sock.settimeout(BOUND)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = b""
        while b"\r\n\r\n" not in first or not first.rstrip().endswith(b"}"):
            first += sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        sock.settimeout(DRIP)
        response = _drip(sock, _forever(b"GET /healthz HTTP/1.1\r\n", b"Host: x\r\n"), server)
    _assert_timeout(response, "headers")


def _dropped_writers(server: tuple[str, int]) -> float:
    text = httpx.get(f"http://{server[0]}:{server[1]}/metrics").text
    for line in text.splitlines():
        if line.startswith('missionlink_http_slow_clients_total{phase="write"}'):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("no metric for clients that stop reading")


def test_a_client_that_stops_reading_is_disconnected(server: tuple[str, int]) -> None:
    before = _dropped_writers(server)
    size = len(httpx.get(f"http://{server[0]}:{server[1]}/openapi.json").content)
    # Enough responses to fill the socket buffers and the server's write buffer.
    count = 4_000_000 // size + 1
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(server)
        sock.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n" * count)
        started = time.monotonic()
        while _dropped_writers(server) == before:
            assert time.monotonic() - started < BOUND, "a client that never reads was kept"
            time.sleep(0.2)
        received = _rest(sock)
    assert received.count(b"HTTP/1.1 200 ") < count
