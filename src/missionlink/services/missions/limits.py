"""The configured limits the mission use cases read, and the pledge bounds they set."""

from __future__ import annotations

from typing import Protocol

from missionlink.domain.errors import InvalidInput


class MissionLimits(Protocol):
    """The configured limits the mission rules read (``config.Settings`` has them all)."""

    @property
    def min_pledge(self) -> int: ...
    @property
    def max_pledge(self) -> int: ...
    @property
    def min_mission_seconds(self) -> int: ...
    @property
    def max_mission_seconds(self) -> int: ...
    @property
    def proposal_cooldown_seconds(self) -> int: ...
    @property
    def cancel_limit_per_day(self) -> int: ...
    @property
    def result_grace_seconds(self) -> int: ...
    @property
    def platform_fee_bps(self) -> int: ...


def check_pledge_amount(settings: MissionLimits, amount: int) -> None:
    if not settings.min_pledge <= amount <= settings.max_pledge:
        raise InvalidInput(
            f"amount must be between {settings.min_pledge} and {settings.max_pledge} KRW"
        )
