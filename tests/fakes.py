"""Fakes for outside services: tests pick them, the product never does."""

from __future__ import annotations

from email.message import EmailMessage


class MemoryMailer:
    """Keeps sent messages in a list; can be told to fail the next N sends."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        self.fail_next = 0

    async def send(self, message: EmailMessage) -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise ConnectionError("mail server unavailable (fake)")
        self.sent.append(message)

    async def close(self) -> None:
        return None

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.sent if str(m["To"]).endswith(f"<{address}>") or m["To"] == address]
