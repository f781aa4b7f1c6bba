"""The real email adapters: SMTP against a local aiosmtpd server, and .eml files."""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from missionlink.adapters.email.senders import FileMailer, SmtpMailer


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def _message(n: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "MissionLink <no-reply@missionlink.example.com>"
    msg["To"] = f"fan{n}@example.com"
    msg["Subject"] = "미션 결과"
    msg["Message-ID"] = f"<mission-1.user-{n}@missionlink>"
    msg.set_content("후원한 금액: 1,000원.")
    return msg


async def test_smtp_mailer_delivers_over_one_reused_connection(
    smtp_server: tuple[Inbox, int],
) -> None:
    inbox, port = smtp_server
    mailer = SmtpMailer("127.0.0.1", port, tls="none")
    try:
        for n in range(3):
            await mailer.send(_message(n))
    finally:
        await mailer.close()
    assert [m["Message-ID"] for m in inbox.messages] == [
        f"<mission-1.user-{n}@missionlink>" for n in range(3)]
    body = inbox.messages[0].get_payload(decode=True)
    assert "1,000원" in body.decode("utf-8")


async def test_file_mailer_writes_one_file_per_message_id(tmp_path: Path) -> None:
    mailer = FileMailer(tmp_path / "mail")
    await mailer.send(_message(1))
    await mailer.send(_message(1))  # a re-send overwrites: still one file
    await mailer.send(_message(2))
    files = sorted((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 2
    parsed = email.message_from_bytes(files[0].read_bytes())
    assert parsed["Message-ID"].startswith("<mission-1.user-")
