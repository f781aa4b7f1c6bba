"""The mission state machine and its time rules (pure: no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from missionlink.domain.errors import DeadlinePassed, Forbidden, InvalidState


class Status(StrEnum):
    pending = "pending"
    accepted = "accepted"
    rejected = "rejected"
    cancelled = "cancelled"
    succeeded = "succeeded"
    failed = "failed"
    expired = "expired"


OPEN = frozenset({Status.pending, Status.accepted})
TERMINAL = frozenset(set(Status) - OPEN)
#: Pledge points are earned only where the pledged cash was really spent; otherwise it comes
#: back, and a viewer and a streamer could farm points by pledging and then failing.
EARNS_PLEDGE_POINTS = frozenset({Status.succeeded})


class Action(StrEnum):
    accept = "accept"
    reject = "reject"
    cancel = "cancel"
    succeed = "succeed"
    fail = "fail"
    pledge = "pledge"
    bet = "bet"


_ALLOWED_FROM: dict[Action, frozenset[Status]] = {
    Action.accept: frozenset({Status.pending}),
    Action.reject: frozenset({Status.pending}),
    Action.cancel: frozenset({Status.pending}),
    Action.succeed: frozenset({Status.accepted}),
    Action.fail: frozenset({Status.accepted}),
    Action.pledge: OPEN,
    Action.bet: OPEN,
}

RESULT_STATUS = {Action.accept: Status.accepted, Action.reject: Status.rejected,
                 Action.cancel: Status.cancelled, Action.succeed: Status.succeeded,
                 Action.fail: Status.failed}


@dataclass(frozen=True)
class MissionView:
    """What the rules need to know about a mission."""

    id: int
    streamer_id: int
    creator_id: int
    status: Status
    accept_by: datetime
    deadline_at: datetime
    accepted_at: datetime | None


def effective_status(m: MissionView, now: datetime) -> Status:
    """The status a reader sees: an open mission past its deadline reads ``expired``."""
    if m.status in OPEN and is_overdue(m, now):
        return Status.expired
    return m.status


def is_overdue(m: MissionView, now: datetime) -> bool:
    if now >= m.deadline_at:
        return True
    return m.status == Status.pending and now >= m.accept_by


def check_action(
    m: MissionView, action: Action, actor_id: int, now: datetime, *, bet_window_seconds: int = 0
) -> None:
    """Raise unless ``actor_id`` may do ``action`` to ``m`` at ``now``."""
    if action in {Action.accept, Action.reject, Action.succeed, Action.fail}:
        if actor_id != m.streamer_id:
            raise Forbidden("only the mission's streamer can do this")
    elif action is Action.cancel:
        if actor_id != m.creator_id:
            raise Forbidden("only the mission's creator can cancel it")
    elif actor_id == m.streamer_id:
        raise Forbidden("a streamer cannot pledge to or bet on their own channel's missions")
    if m.status not in _ALLOWED_FROM[action]:
        raise InvalidState(f"cannot {action.value} a mission that is {m.status.value}")
    if m.status in OPEN and is_overdue(m, now):
        raise DeadlinePassed("the mission's deadline has passed; it has expired")
    if (
        action is Action.bet
        and m.status == Status.accepted
        and m.accepted_at is not None
        and (now - m.accepted_at).total_seconds() >= bet_window_seconds
    ):
        raise InvalidState("betting closed when the bet window after acceptance ended")
