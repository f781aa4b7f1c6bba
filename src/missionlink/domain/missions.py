"""The mission state machine and its time rules (pure: no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from missionlink.domain.errors import DeadlinePassed, Forbidden, InvalidState
from missionlink.domain.text import TextRule


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
#: The streamer's optional reason with a reject: single-line, at most 200 characters;
#: blank means none. Backers see it on the mission page and in their refund email.
REJECT_REASON_MAX = 200
REJECT_REASON = TextRule(REJECT_REASON_MAX, required=False)
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
    #: Until when the result of an accepted mission may be declared: ``deadline_at`` plus
    #: the grace period (``RESULT_GRACE_SECONDS``) in force when the mission was created.
    result_by: datetime


def closes_at(m: MissionView) -> datetime:
    """When pledges, bets, accept and reject stop: the deadline, or the acceptance timeout
    while the mission is pending."""
    if m.status == Status.pending:
        return min(m.accept_by, m.deadline_at)
    return m.deadline_at


def expires_at(m: MissionView) -> datetime:
    """When an open mission reads ``expired``: an accepted one only once the time to declare
    its result (``result_by``) is over, a pending one when it closes."""
    if m.status == Status.accepted:
        return max(m.result_by, m.deadline_at)
    return closes_at(m)


def effective_status(m: MissionView, now: datetime) -> Status:
    """The status a reader sees: an open mission past its expiry reads ``expired``."""
    if m.status in OPEN and now >= expires_at(m):
        return Status.expired
    return m.status


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
    _check_time(m, action, now)
    if (
        action is Action.bet
        and m.status == Status.accepted
        and m.accepted_at is not None
        and (now - m.accepted_at).total_seconds() >= bet_window_seconds
    ):
        raise InvalidState("betting closed when the bet window after acceptance ended")


def _check_time(m: MissionView, action: Action, now: datetime) -> None:
    if m.status not in OPEN:
        return
    if action in {Action.succeed, Action.fail}:
        # The grace period: the result may still be declared until result_by.
        if now >= expires_at(m):
            raise DeadlinePassed("the time to declare the result has passed; it has expired")
        return
    # Only the deadline and the acceptance timeout decide these (never result_by), so the
    # PostgreSQL pledge function, which knows no result_by, refuses with the same words.
    if now >= closes_at(m):
        if m.status == Status.pending:
            raise DeadlinePassed("the mission's deadline has passed; it has expired")
        raise DeadlinePassed("the mission's deadline has passed: pledges and bets are closed")
