"""Result emails reach the backer or an operator sees why not.

SMTP_TLS against real local servers (plain, offering STARTTLS, implicit TLS), then the
path of a send that keeps failing: retried, dead-lettered, listed, counted, replayed
under the same Message-ID.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from prometheus_client import REGISTRY
from sqlalchemy import select

from missionlink import cli
from missionlink.adapters.db.core_tables import email_jobs
from missionlink.adapters.email.senders import MailerUnavailable, SmtpMailer
from missionlink.bootstrap import Container, make_mailer
from missionlink.config import Settings
from missionlink.domain.clock import FrozenClock
from missionlink.workers import emails
from tests.helpers import make_user, propose, settle_all, top_up

MAX_ATTEMPTS = 3


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"worker_max_attempts": MAX_ATTEMPTS}


# --- local mail servers -------------------------------------------------------------

class Inbox:
    """An aiosmtpd handler that keeps each message and whether it came under TLS."""

    def __init__(self, refuse_recipients: bool = False) -> None:
        self.messages: list[email.message.Message] = []
        self.encrypted: list[bool] = []
        self.refuse_recipients = refuse_recipients

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if self.refuse_recipients:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        self.encrypted.append(session.ssl is not None)
        return "250 OK"


@dataclass
class Certs:
    ca_file: Path
    server_context: ssl.SSLContext


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """A private CA and a server certificate for 127.0.0.1 that it signed."""
    directory = tmp_path_factory.mktemp("certs")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "MissionLink test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    (directory / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "server.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "server.pem", directory / "server.key")
    return Certs(ca_file, context)


def _serve(inbox: Inbox, **kwargs: Any) -> Iterator[tuple[Inbox, int]]:
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def plain_server() -> Iterator[tuple[Inbox, int]]:
    """A catcher without TLS, as on a developer's machine."""
    yield from _serve(Inbox())


@pytest.fixture
def starttls_server(certs: Certs) -> Iterator[tuple[Inbox, int]]:
    """A relay that offers STARTTLS in its EHLO reply."""
    yield from _serve(Inbox(), tls_context=certs.server_context)


@pytest.fixture
def implicit_tls_server(certs: Certs) -> Iterator[tuple[Inbox, int]]:
    """A submission port that speaks TLS from the first byte (like 465)."""
    yield from _serve(Inbox(), ssl_context=certs.server_context)


@pytest.fixture
def refusing_server() -> Iterator[tuple[Inbox, int]]:
    yield from _serve(Inbox(refuse_recipients=True))


def _message(n: int = 1) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "MissionLink <no-reply@missionlink.example.com>"
    msg["To"] = f"fan{n}@example.com"
    msg["Subject"] = "미션 결과"
    msg["Message-ID"] = f"<mission-1.user-{n}@missionlink>"
    msg.set_content("후원한 금액: 1,000원.")
    return msg


async def _deliver(mailer: SmtpMailer) -> bool:
    """Send one message; returns whether the connection it went over was encrypted."""
    try:
        await mailer.send(_message())
        return mailer.encrypted
    finally:
        await mailer.close()


# --- SMTP_TLS modes -----------------------------------------------------------------

async def test_auto_delivers_in_plain_to_a_server_without_starttls(
    plain_server: tuple[Inbox, int],
) -> None:
    inbox, port = plain_server
    assert await _deliver(SmtpMailer("127.0.0.1", port, tls="auto")) is False
    assert [m["Message-ID"] for m in inbox.messages] == ["<mission-1.user-1@missionlink>"]


async def test_auto_is_the_default_setting() -> None:
    settings = Settings(smtp_host="127.0.0.1", smtp_port=2525)
    mailer = make_mailer(settings)
    assert isinstance(mailer, SmtpMailer) and mailer.tls == "auto"


async def test_starttls_required_refuses_a_server_that_does_not_offer_it(
    plain_server: tuple[Inbox, int],
) -> None:
    inbox, port = plain_server
    with pytest.raises(MailerUnavailable, match="STARTTLS"):
        await _deliver(SmtpMailer("127.0.0.1", port, tls="starttls"))
    assert inbox.messages == []


async def test_none_delivers_in_plain_even_when_starttls_is_offered(
    starttls_server: tuple[Inbox, int],
) -> None:
    inbox, port = starttls_server
    assert await _deliver(SmtpMailer("127.0.0.1", port, tls="none")) is False
    assert inbox.encrypted == [False]


async def test_auto_upgrades_with_starttls_when_offered(
    starttls_server: tuple[Inbox, int], certs: Certs,
) -> None:
    inbox, port = starttls_server
    mailer = SmtpMailer("127.0.0.1", port, tls="auto", ca_file=certs.ca_file)
    assert await _deliver(mailer) is True
    assert inbox.encrypted == [True]


async def test_starttls_required_delivers_under_tls(
    starttls_server: tuple[Inbox, int], certs: Certs,
) -> None:
    inbox, port = starttls_server
    mailer = SmtpMailer("127.0.0.1", port, tls="starttls", ca_file=certs.ca_file)
    assert await _deliver(mailer) is True
    assert inbox.encrypted == [True]


async def test_auto_never_falls_back_to_plain_on_an_untrusted_certificate(
    starttls_server: tuple[Inbox, int],
) -> None:
    inbox, port = starttls_server
    with pytest.raises(MailerUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        await _deliver(SmtpMailer("127.0.0.1", port, tls="auto"))
    assert inbox.messages == []


async def test_implicit_tls_delivers(
    implicit_tls_server: tuple[Inbox, int], certs: Certs,
) -> None:
    inbox, port = implicit_tls_server
    mailer = SmtpMailer("127.0.0.1", port, tls="tls", ca_file=certs.ca_file)
    assert await _deliver(mailer) is True
    assert [m["Message-ID"] for m in inbox.messages] == ["<mission-1.user-1@missionlink>"]


async def test_settings_reach_the_mailer(certs: Certs) -> None:
    settings = Settings(smtp_host="mail.example.com", smtp_tls="tls",  # type: ignore[arg-type]
                        smtp_ca_file=certs.ca_file)
    mailer = make_mailer(settings)
    assert isinstance(mailer, SmtpMailer)
    assert (mailer.tls, mailer.port, mailer.ca_file) == ("tls", 465, certs.ca_file)


# --- a send that keeps failing --------------------------------------------------------

def _count(outcome: str) -> float:
    return REGISTRY.get_sample_value("missionlink_emails_total", {"outcome": outcome}) or 0.0


async def _rejected_mission(client: httpx.AsyncClient, container: Container) -> str:
    """A mission with one backer, rejected and settled: two result emails queued."""
    streamer = await make_user(container, "streamer")
    fan = await make_user(container)
    await top_up(client, fan, 3_000)
    mission = await propose(client, fan, streamer, amount=1000, duration=600)
    r = await client.post(f"/api/v1/missions/{mission['id']}/reject", headers=streamer.headers)
    assert r.status_code == 200, r.text
    return fan.email


async def _jobs(container: Container) -> list[Any]:
    async with container.core_db.read() as conn:
        return list(await conn.execute(select(email_jobs).order_by(email_jobs.c.id)))


def _cli_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    monkeypatch.setenv("MISSIONLINK_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("MISSIONLINK_DATABASE_URL", settings.core_url)
    monkeypatch.setenv("MISSIONLINK_IDENTITY_DATABASE_URL", settings.identity_url)


async def test_failing_sends_are_retried_dead_lettered_listed_counted_and_replayed(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock,
    plain_server: tuple[Inbox, int], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    inbox, port = plain_server
    # The operator asked for STARTTLS and the relay does not offer it: nothing goes out.
    container.mailer = SmtpMailer("127.0.0.1", port, tls="starttls")
    logged = structlog.testing.CapturingLogger()
    monkeypatch.setattr(emails, "log", logged)
    address = await _rejected_mission(client, container)
    before = {o: _count(o) for o in ("sent", "retried", "dead")}

    await settle_all(container)  # settles, then the first attempt fails
    jobs = await _jobs(container)
    assert len(jobs) == 2
    # The relay refused the first; the second was never tried and keeps its attempts.
    assert [(j.status, j.attempts) for j in jobs] == [("queued", 1), ("queued", 0)]
    assert "STARTTLS" in jobs[0].last_error and jobs[1].last_error is None
    assert _count("retried") - before["retried"] == 1

    for _ in range(2 * MAX_ATTEMPTS - 1):  # each job is tried MAX_ATTEMPTS times in turn
        clock.advance(600)  # past the backoff
        await emails.send_batch(container)
    jobs = await _jobs(container)
    assert {(j.status, j.attempts) for j in jobs} == {("failed", MAX_ATTEMPTS)}
    assert _count("retried") - before["retried"] == 2 * (MAX_ATTEMPTS - 1)
    assert _count("dead") - before["dead"] == 2
    assert _count("sent") == before["sent"]
    assert inbox.messages == []

    errors = [c for c in logged.calls if c.method_name == "error"]
    assert len(errors) == 2 * MAX_ATTEMPTS
    assert {c.args[0] for c in errors} == {"email.send_failed", "email.dead_lettered"}
    assert {c.kwargs["message_id"] for c in errors} == {j.message_id for j in jobs}
    assert all(c.kwargs["job"] in {j.id for j in jobs} for c in errors)
    assert address not in repr(logged.calls)

    _cli_env(monkeypatch, container.settings)
    assert await asyncio.to_thread(cli.main, ["dead-letters", "list"]) == 0
    listing = capsys.readouterr().out
    for job in jobs:
        line = next(x for x in listing.splitlines() if x.startswith(f"email:{job.id}\t"))
        assert f"user={job.user_id}" in line and f"mission={job.mission_id}" in line
        assert f"message-id={job.message_id}" in line
        assert f"attempts={MAX_ATTEMPTS}" in line and "STARTTLS" in line
    assert address not in listing

    # The relay is fixed (here: the mode is corrected); the operator replays one email.
    container.mailer = SmtpMailer("127.0.0.1", port, tls="auto")
    replayed = jobs[0]
    assert await asyncio.to_thread(
        cli.main, ["dead-letters", "replay", f"email:{replayed.id}"]) == 0
    assert await asyncio.to_thread(
        cli.main, ["dead-letters", "replay", f"email:{replayed.id}"]) == 1
    assert await emails.send_batch(container) == 1
    await container.mailer.close()
    assert [m["Message-ID"] for m in inbox.messages] == [replayed.message_id]
    assert _count("sent") - before["sent"] == 1
    statuses = {j.id: j.status for j in await _jobs(container)}
    assert statuses == {replayed.id: "sent", jobs[1].id: "failed"}


class _DownMailer:
    """A relay that is unreachable for every message."""

    def __init__(self) -> None:
        self.tries = 0

    async def send(self, message: EmailMessage) -> None:
        self.tries += 1
        raise MailerUnavailable("connection refused")

    async def close(self) -> None:
        pass


async def test_an_outage_dead_letters_only_the_job_it_tried(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock,
) -> None:
    mailer = _DownMailer()
    container.mailer = mailer
    for _ in range(2):
        await _rejected_mission(client, container)
    before = {o: _count(o) for o in ("sent", "retried", "dead")}
    await settle_all(container)  # settles, then the first send meets the outage
    first, *untried = await _jobs(container)
    assert len(untried) == 3

    for _ in range(MAX_ATTEMPTS - 1):
        clock.advance(600)  # past the backoff
        await emails.send_batch(container)

    jobs = await _jobs(container)
    assert mailer.tries == MAX_ATTEMPTS
    assert (jobs[0].id, jobs[0].status, jobs[0].attempts) == (first.id, "failed", MAX_ATTEMPTS)
    assert [(j.status, j.attempts, j.last_error) for j in jobs[1:]] == [("queued", 0, None)] * 3
    # The untried jobs share the failed job's retry time and are neither retried nor dead.
    assert len({j.lease_until for j in jobs[1:]}) == 1
    assert _count("retried") - before["retried"] == MAX_ATTEMPTS - 1
    assert _count("dead") - before["dead"] == 1
    assert _count("sent") == before["sent"]

    clock.advance(600)  # the next job in line gets its first try
    await emails.send_batch(container)
    assert [(j.status, j.attempts) for j in (await _jobs(container))[1:]] == [
        ("queued", 1), ("queued", 0), ("queued", 0)]


async def test_a_refused_recipient_is_recorded_without_the_address(
    client: httpx.AsyncClient, container: Container, refusing_server: tuple[Inbox, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, port = refusing_server
    container.mailer = SmtpMailer("127.0.0.1", port, tls="none")
    logged = structlog.testing.CapturingLogger()
    monkeypatch.setattr(emails, "log", logged)
    address = await _rejected_mission(client, container)
    await settle_all(container)
    await container.mailer.close()
    jobs = await _jobs(container)
    assert all("mailbox unavailable" in j.last_error for j in jobs)
    assert not any(address.lower() in j.last_error.lower() for j in jobs)
    assert address not in repr(logged.calls)


def test_dead_letter_ids_say_which_kind() -> None:
    from missionlink.workers.dead_letters import DeadLetterId, parse_id

    assert parse_id("email:7") == DeadLetterId("email", 7)
    assert parse_id("event:7") == DeadLetterId("event", 7)
    assert parse_id("7") == DeadLetterId("event", 7)  # a bare number is an event
    for bad in ("mail:7", "email:", "email:-1", "email:²", "email:99999999999999999999"):
        with pytest.raises(ValueError, match="not a dead letter id"):
            parse_id(bad)


def test_replay_refuses_a_malformed_id(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["dead-letters", "replay", "email:x"]) == 2
    assert "email:N" in capsys.readouterr().err
