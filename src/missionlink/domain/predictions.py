"""Parimutuel payouts for points predictions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Payouts:
    payouts: dict[int, int]
    dust: int


def parimutuel(stakes: Mapping[int, tuple[str, int]], winning_side: str | None) -> Payouts:
    """Split the pool among winners: ``floor(stake * total / winning_pool)``, dust aside.

    ``stakes`` maps a bettor to (side, points). With no winning side (the mission did not
    run) or no winners, every stake is returned.
    """
    total = sum(points for _, points in stakes.values())
    winning_pool = sum(p for side, p in stakes.values() if side == winning_side)
    if winning_side is None or winning_pool == 0:
        return Payouts(payouts={user: points for user, (_, points) in stakes.items()}, dust=0)
    payouts = {
        user: points * total // winning_pool
        for user, (side, points) in stakes.items()
        if side == winning_side
    }
    return Payouts(payouts=payouts, dust=total - sum(payouts.values()))
