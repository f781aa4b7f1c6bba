"""Responses of the admin operations endpoints (``services.operations``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

DEAD_LETTER_ID = r"^(event|email):[0-9]{1,18}$"


class RequestFigures(BaseModel):
    """This process's requests (the operations read itself left out)."""

    total: int = Field(ge=0, description="requests answered since this process started")
    client_errors: int = Field(ge=0, description="of them answered 4xx")
    server_errors: int = Field(ge=0, description="of them answered 5xx")
    mean_seconds: float | None = Field(description="mean latency; null before any request")
    window_seconds: float | None = Field(
        description="what the rates are measured over: about a minute between reads, or "
                    "the process's lifetime at the first read; null when unknown")
    per_second: float | None
    client_errors_per_second: float | None
    server_errors_per_second: float | None


class EmailOutcomes(BaseModel):
    """``missionlink_emails_total`` of this process."""

    sent: int = Field(ge=0)
    retried: int = Field(ge=0)
    dead: int = Field(ge=0)


class ReconcileFigures(BaseModel):
    """The last reconcile this process ran (the worker runs one every
    RECONCILE_INTERVAL_SECONDS); ``ran`` is false when it has run none, as in an API
    process whose worker runs elsewhere."""

    ran: bool
    ok: bool | None
    finished_at: str | None
    duration_seconds: float | None
    violations: int | None
    interval_seconds: int | None = Field(
        description="the in-process worker's schedule (0: never); null without one")


class ProcessFigures(BaseModel):
    """From this process's metrics: with several API processes, each answers its own."""

    requests: RequestFigures
    emails: EmailOutcomes
    reconcile: ReconcileFigures
    worker_in_process: bool


class OutboxFigures(BaseModel):
    backlog: int = Field(ge=0, description="events not processed yet")
    oldest_age_seconds: float = Field(ge=0, description="age of the oldest of them (0: none)")


class EmailJobs(BaseModel):
    """Result email jobs by status (the whole service)."""

    queued: int = Field(ge=0)
    sent: int = Field(ge=0)
    failed: int = Field(ge=0)


class MissionFigures(BaseModel):
    open: int = Field(ge=0, description="pending or accepted")
    awaiting_settlement: int = Field(ge=0, description="ended, not settled yet")
    by_status: dict[str, int]


class DeadLetter(BaseModel):
    """An event whose handlers kept failing, or a result email the mail server never took;
    an email names its user id, never the address."""

    id: str = Field(pattern=DEAD_LETTER_ID, description="`event:N` or `email:N`")
    kind: Literal["event", "email"]
    topic: str | None
    event_id: int | None
    mission_id: int | None
    user_id: int | None
    role: str | None
    attempts: int
    at: str | None = Field(description="when the event was dead-lettered; the email's job "
                                       "creation")
    error: str


class DeadLetters(BaseModel):
    events: int = Field(ge=0, description="dead events not replayed yet")
    emails: int = Field(ge=0, description="failed result emails")
    items: list[DeadLetter] = Field(description="the newest `limit` of each kind")
    limit: int


class Operations(BaseModel):
    """``process`` is this process's metrics; everything else is read from the core database
    and is the same whichever replica answers."""

    generated_at: str
    process: ProcessFigures
    outbox: OutboxFigures
    emails: EmailJobs
    missions: MissionFigures
    escrow_krw: int = Field(ge=0, description="KRW pledged to missions not settled yet")
    dead_letters: DeadLetters


class Replayed(BaseModel):
    id: str = Field(pattern=DEAD_LETTER_ID)
    kind: Literal["event", "email"]
    replayed: bool = Field(description="false when it had been replayed already (or its "
                                       "email is no longer failed): nothing changed")
    status: str = Field(description="`queued` after a replay; otherwise where it is now")
