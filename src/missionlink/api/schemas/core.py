"""Request bodies: strict types (no "100" or true for amounts), unknown fields refused."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from missionlink.api.params import Amount, BodyId, Points, Seconds


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TopupIn(Strict):
    amount: Amount


class MissionIn(Strict):
    streamer_id: BodyId
    title: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    description: Annotated[StrictStr, Field(max_length=5000)] = ""
    amount: Amount
    duration_seconds: Seconds


class PledgeIn(Strict):
    amount: Amount


class ResultIn(Strict):
    outcome: Literal["success", "failure"]


class BetIn(Strict):
    side: Literal["success", "failure"]
    points: Points


class ChannelSettingsIn(Strict):
    missions_enabled: StrictBool | None = None
    min_mission_amount: Amount | None = None
    accept_timeout_seconds: Seconds | None = None
