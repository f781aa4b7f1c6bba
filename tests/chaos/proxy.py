"""A bounded asyncio TCP proxy on loopback for fault injection (F5): it forwards a port to
a server and, when told, delays what it forwards or cuts every open connection."""

from __future__ import annotations

import asyncio
import contextlib
import socket

#: Bytes read at once from either side.
CHUNK = 65536


class FaultProxy:
    """Forwards ``127.0.0.1:<port>`` to ``127.0.0.1:<target>``, in a loop of its own."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.delay = 0.0
        self.resets = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.reset_all()
        if self._server is not None:
            await self._server.wait_closed()

    def reset_all(self) -> None:
        """Cut every open connection (both sides see it closed)."""
        self.resets += 1
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                sock = writer.get_extra_info("socket")
                if sock is not None:  # RST rather than FIN: a connection reset
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    b"\x01\x00\x00\x00\x00\x00\x00\x00")
                writer.close()
        self._writers.clear()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter,
                     ) -> None:
        try:
            server_r, server_w = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.target), 5)
        except (OSError, TimeoutError):
            client_w.close()
            return
        self._writers |= {client_w, server_w}
        try:
            await asyncio.gather(self._pipe(client_r, server_w), self._pipe(server_r, client_w))
        finally:
            for w in (client_w, server_w):
                self._writers.discard(w)
                with contextlib.suppress(Exception):
                    w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError, asyncio.IncompleteReadError):
            while data := await reader.read(CHUNK):
                if self.delay:
                    await asyncio.sleep(self.delay)
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(Exception):
            writer.close()
