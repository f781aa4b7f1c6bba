"""Request bodies: strict types (no "100" or true for amounts), unknown fields refused."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


Amount = Annotated[StrictInt, Field(description="Integer KRW")]


class TopupIn(Strict):
    amount: Amount


class MissionIn(Strict):
    streamer_id: StrictInt
    title: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    description: Annotated[StrictStr, Field(max_length=5000)] = ""
    amount: Amount
    duration_seconds: StrictInt


class PledgeIn(Strict):
    amount: Amount


class ResultIn(Strict):
    outcome: Literal["success", "failure"]


class BetIn(Strict):
    side: Literal["success", "failure"]
    points: Annotated[StrictInt, Field(gt=0)]


class ChannelSettingsIn(Strict):
    missions_enabled: StrictBool | None = None
    min_mission_amount: StrictInt | None = None
    accept_timeout_seconds: StrictInt | None = None
