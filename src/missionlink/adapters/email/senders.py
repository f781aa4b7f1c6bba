"""Email senders: real SMTP when ``SMTP_HOST`` is set, ``.eml`` files otherwise."""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
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


class MailerUnavailable(Exception):
    """The mail server could not be reached or refused the connection's protection.

    Every message would fail the same way, so the caller stops its batch instead of
    waiting out a timeout per recipient.
    """


class SmtpMailer:
    """SMTP through aiosmtplib, one connection reused while it stays healthy.

    ``tls`` is ``SMTP_TLS``: ``auto`` upgrades with STARTTLS when the server offers it
    and stays plain otherwise, ``starttls`` refuses a server that does not offer it,
    ``tls`` speaks TLS from the first byte, ``none`` never encrypts. Certificates are
    always verified, against the system's authorities plus ``ca_file`` when given.
    """

    MODES = ("auto", "starttls", "tls", "none")

    def __init__(
        self,
        host: str,
        port: int,
        *,
        user: str = "",
        password: str = "",
        tls: str = "auto",
        ca_file: Path | None = None,
        timeout: float = 30,
    ) -> None:
        if tls not in self.MODES:
            raise ValueError(f"SMTP_TLS must be one of {', '.join(self.MODES)}")
        self.host, self.port = host, port
        self.user, self.password, self.tls = user, password, str(tls)
        self.ca_file, self.timeout = ca_file, timeout
        # Built once so that an unreadable SMTP_CA_FILE stops the start, not every send.
        self._context = self._tls_context()
        self._client: object | None = None
        self._lock = asyncio.Lock()

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.ca_file is not None:
            context.load_verify_locations(cafile=str(self.ca_file))
        return context

    async def _connect(self) -> object:
        import aiosmtplib

        # aiosmtplib: start_tls None upgrades only if EHLO offers STARTTLS, True insists.
        start_tls = {"auto": None, "starttls": True, "tls": False, "none": False}[self.tls]
        client = aiosmtplib.SMTP(
            hostname=self.host, port=self.port, use_tls=self.tls == "tls",
            start_tls=start_tls, tls_context=self._context, timeout=self.timeout,
        )
        try:
            await client.connect()
            if self.user:
                await client.login(self.user, self.password)
        except (aiosmtplib.SMTPException, OSError) as exc:
            client.close()
            raise MailerUnavailable(
                f"{self.host}:{self.port} (SMTP_TLS={self.tls}): {type(exc).__name__}: {exc}"
            ) from exc
        return client

    @property
    def encrypted(self) -> bool:
        """Whether the open connection is under TLS (False when none is open)."""
        import aiosmtplib

        client = self._client
        return (
            isinstance(client, aiosmtplib.SMTP)
            and client.is_connected
            and client.get_transport_info("sslcontext") is not None
        )

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
                    # An idle connection the server closed: reconnect once.
                    self._client = None
                    if attempt == 2:
                        raise
                except BaseException:
                    # The session may be mid-transaction; the next message starts afresh.
                    self._client = None
                    client.close()
                    raise

    async def close(self) -> None:
        import aiosmtplib

        client, self._client = self._client, None
        if isinstance(client, aiosmtplib.SMTP) and client.is_connected:
            try:
                await client.quit()
            except aiosmtplib.SMTPException:
                client.close()
