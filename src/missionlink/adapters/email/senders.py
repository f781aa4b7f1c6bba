"""Email senders: real SMTP when ``SMTP_HOST`` is set, ``.eml`` files otherwise."""

from __future__ import annotations

import asyncio
import hashlib
import os
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None: ...

    async def close(self) -> None: ...


class FileMailer:
    """The embedded default: each email is a file named after its Message-ID."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, message_id: str) -> Path:
        digest = hashlib.sha256(message_id.encode()).hexdigest()[:32]
        return self.directory / f"{digest}.eml"

    def _write(self, message: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.path_for(str(message["Message-ID"]))
        tmp = final.with_suffix(".tmp")
        tmp.write_bytes(message.as_bytes())
        os.replace(tmp, final)

    async def send(self, message: EmailMessage) -> None:
        await asyncio.to_thread(self._write, message)

    async def close(self) -> None:
        return None


class SmtpMailer:
    """SMTP through aiosmtplib, one connection reused while it stays healthy."""

    def __init__(
        self, host: str, port: int, *, user: str = "", password: str = "", starttls: bool = True
    ) -> None:
        self.host, self.port = host, port
        self.user, self.password, self.starttls = user, password, starttls
        self._client: object | None = None
        self._lock = asyncio.Lock()

    async def _connect(self) -> object:
        import aiosmtplib

        client = aiosmtplib.SMTP(
            hostname=self.host, port=self.port, start_tls=self.starttls and self.port != 25,
            timeout=30,
        )
        await client.connect()
        if self.user:
            await client.login(self.user, self.password)
        return client

    async def send(self, message: EmailMessage) -> None:
        import aiosmtplib

        async with self._lock:
            for attempt in (1, 2):
                if self._client is None:
                    self._client = await self._connect()
                client = self._client
                assert isinstance(client, aiosmtplib.SMTP)
                try:
                    await client.send_message(message)
                    return
                except aiosmtplib.SMTPServerDisconnected:
                    self._client = None
                    if attempt == 2:
                        raise

    async def close(self) -> None:
        import aiosmtplib

        client, self._client = self._client, None
        if isinstance(client, aiosmtplib.SMTP) and client.is_connected:
            try:
                await client.quit()
            except aiosmtplib.SMTPException:
                client.close()
