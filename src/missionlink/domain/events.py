"""The events a change records in the outbox, by topic name (stable: stored in rows)."""

MISSION_CREATED = "mission.created"
MISSION_ACCEPTED = "mission.accepted"
MISSION_ENDED = "mission.ended"
MISSION_SETTLED = "mission.settled"
PLEDGE_CREATED = "pledge.created"
BET_PLACED = "bet.placed"
