"""Mission use cases, one module per part of a mission's life:

- ``limits``: the configured limits (``MissionLimits``) and the pledge bounds;
- ``rows``: the mission row lock pledges and bets take, and the not-found refusal;
- ``proposals``: proposing (channel terms, cooldown, cancel limit, the first pledge);
- ``pledging``: a pledge and what it writes (wallet, journal, shard total, event);
- ``lifecycle``: accept, reject, cancel, the result, and expiry.

Callers import the use cases from here (``services.missions.pledge``).
"""

from missionlink.services.missions.lifecycle import expire_due, transition
from missionlink.services.missions.limits import MissionLimits, check_pledge_amount
from missionlink.services.missions.pledging import (
    PLEDGE_TRANSFER_PREFIX,
    hide_message,
    pledge,
    record_pledge,
)
from missionlink.services.missions.proposals import create_mission
from missionlink.services.missions.rows import lock_shared, mission_not_found

__all__ = [
    "PLEDGE_TRANSFER_PREFIX",
    "MissionLimits",
    "check_pledge_amount",
    "create_mission",
    "expire_due",
    "hide_message",
    "lock_shared",
    "mission_not_found",
    "pledge",
    "record_pledge",
    "transition",
]
