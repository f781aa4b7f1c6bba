"""Pure rules: the mission state machine, fees, parimutuel payouts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from missionlink.domain.errors import DeadlinePassed, Forbidden, InvalidState
from missionlink.domain.ledger import fee_for, points_for_pledged
from missionlink.domain.missions import (
    Action,
    MissionView,
    Status,
    check_action,
    effective_status,
)
from missionlink.domain.predictions import parimutuel

T0 = datetime(2026, 5, 1, tzinfo=UTC)
DEADLINE = T0 + timedelta(hours=2)
RESULT_BY = DEADLINE + timedelta(seconds=600)
MICROSECOND = timedelta(microseconds=1)


def mission(
    status: Status = Status.pending, accepted: bool = False, grace_seconds: int = 600
) -> MissionView:
    return MissionView(id=1, streamer_id=10, creator_id=20, status=status,
                       accept_by=T0 + timedelta(hours=1), deadline_at=DEADLINE,
                       accepted_at=T0 if accepted else None,
                       result_by=DEADLINE + timedelta(seconds=grace_seconds))


def test_only_the_target_streamer_accepts_and_only_the_creator_cancels() -> None:
    m = mission()
    check_action(m, Action.accept, 10, T0)
    with pytest.raises(Forbidden):
        check_action(m, Action.accept, 20, T0)
    check_action(m, Action.cancel, 20, T0)
    with pytest.raises(Forbidden):
        check_action(m, Action.cancel, 10, T0)
    with pytest.raises(Forbidden):
        check_action(m, Action.pledge, 10, T0)


@pytest.mark.parametrize("status", [s for s in Status if s not in (Status.pending,)])
def test_accept_reject_cancel_need_a_pending_mission(status: Status) -> None:
    for action, actor in ((Action.accept, 10), (Action.reject, 10), (Action.cancel, 20)):
        with pytest.raises(InvalidState):
            check_action(mission(status), action, actor, T0)


def test_result_needs_an_accepted_mission_before_result_by() -> None:
    with pytest.raises(InvalidState):
        check_action(mission(Status.pending), Action.succeed, 10, T0)
    m = mission(Status.accepted, accepted=True)
    check_action(m, Action.fail, 10, T0 + timedelta(minutes=119))
    check_action(m, Action.succeed, 10, DEADLINE)
    check_action(m, Action.succeed, 10, RESULT_BY - MICROSECOND)
    with pytest.raises(DeadlinePassed):
        check_action(m, Action.succeed, 10, RESULT_BY)


def test_open_missions_read_expired_once_overdue() -> None:
    assert effective_status(mission(), T0 + timedelta(hours=1)) is Status.expired
    accepted = mission(Status.accepted, accepted=True)
    assert effective_status(accepted, T0 + timedelta(hours=1)) is Status.accepted


@pytest.mark.parametrize(("at", "reads", "result_allowed", "pledge_allowed"), [
    (DEADLINE - MICROSECOND, Status.accepted, True, True),
    (DEADLINE, Status.accepted, True, False),
    (RESULT_BY - MICROSECOND, Status.accepted, True, False),
    (RESULT_BY, Status.expired, False, False),
])
def test_an_accepted_mission_awaits_its_result_until_result_by(
    at: datetime, reads: Status, result_allowed: bool, pledge_allowed: bool
) -> None:
    m = mission(Status.accepted, accepted=True)
    assert effective_status(m, at) is reads
    for action, actor, allowed in ((Action.succeed, 10, result_allowed),
                                   (Action.fail, 10, result_allowed),
                                   (Action.pledge, 30, pledge_allowed),
                                   (Action.bet, 30, pledge_allowed)):
        if allowed:
            check_action(m, action, actor, at, bet_window_seconds=10**9)
        else:
            with pytest.raises(DeadlinePassed):
                check_action(m, action, actor, at, bet_window_seconds=10**9)


def test_a_pending_mission_gets_no_grace_period() -> None:
    m = mission(Status.pending)
    assert effective_status(m, T0 + timedelta(hours=1) - MICROSECOND) is Status.pending
    assert effective_status(m, T0 + timedelta(hours=1)) is Status.expired
    for action, actor in ((Action.accept, 10), (Action.reject, 10), (Action.pledge, 30),
                          (Action.cancel, 20)):
        with pytest.raises(DeadlinePassed):
            check_action(m, action, actor, T0 + timedelta(hours=1))


def test_no_grace_period_when_it_is_turned_off() -> None:
    m = mission(Status.accepted, accepted=True, grace_seconds=0)
    check_action(m, Action.succeed, 10, DEADLINE - MICROSECOND)
    assert effective_status(m, DEADLINE) is Status.expired
    with pytest.raises(DeadlinePassed):
        check_action(m, Action.succeed, 10, DEADLINE)


def test_betting_locks_after_the_window_following_acceptance() -> None:
    m = mission(Status.accepted, accepted=True)
    check_action(m, Action.bet, 30, T0 + timedelta(seconds=119), bet_window_seconds=120)
    with pytest.raises(InvalidState):
        check_action(m, Action.bet, 30, T0 + timedelta(seconds=120), bet_window_seconds=120)


def test_fee_and_points_round_down() -> None:
    assert fee_for(15_000, 1000) == 1500
    assert fee_for(10_001, 1000) == 1000
    assert fee_for(999, 1) == 0
    assert points_for_pledged(1_999) == 19


stakes = st.dictionaries(
    st.integers(1, 10_000),
    st.tuples(st.sampled_from(["success", "failure"]), st.integers(1, 10**9)),
    max_size=50,
)


@given(stakes, st.sampled_from(["success", "failure", None]))
def test_parimutuel_pays_out_exactly_the_pool(stakes: dict, winning: str | None) -> None:
    result = parimutuel(stakes, winning)
    pool = sum(p for _, p in stakes.values())
    assert sum(result.payouts.values()) + result.dust == pool
    assert result.dust >= 0
    winners = {u for u, (side, _) in stakes.items() if side == winning}
    for user, (side, points) in stakes.items():
        if winners and winning is not None:
            if side == winning:
                assert result.payouts[user] >= points
            else:
                assert user not in result.payouts
        else:
            assert result.payouts[user] == points
