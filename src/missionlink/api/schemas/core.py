"""Request bodies: strict types (no "100" or true for amounts), unknown fields refused."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictStr

from missionlink.api.params import Amount, BodyId, Points, Seconds
from missionlink.api.schemas.text import cleaner, optional_cleaner, schema
from missionlink.domain.missions import REJECT_REASON
from missionlink.domain.pledge_messages import MESSAGE as PLEDGE_MESSAGE
from missionlink.domain.text import TextRule

MISSION_TITLE = TextRule(200)
MISSION_DESCRIPTION = TextRule(5000, multiline=True, required=False)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TopupIn(Strict):
    amount: Amount


class MissionIn(Strict):
    streamer_id: BodyId
    title: Annotated[StrictStr, AfterValidator(cleaner(MISSION_TITLE)),
                     Field(json_schema_extra=schema(MISSION_TITLE))]
    description: Annotated[StrictStr, AfterValidator(cleaner(MISSION_DESCRIPTION)),
                           Field(json_schema_extra=schema(MISSION_DESCRIPTION))] = ""
    amount: Amount
    duration_seconds: Seconds


class PledgeIn(Strict):
    amount: Amount
    #: Optional words shown with the pledge (blocked words are masked when stored).
    message: Annotated[StrictStr, AfterValidator(cleaner(PLEDGE_MESSAGE)),
                       Field(json_schema_extra=schema(PLEDGE_MESSAGE))] | None = None
    #: Shown without the backer's name or id wherever the public sees the pledge.
    anonymous: StrictBool = False


class RejectIn(Strict):
    reason: Annotated[StrictStr | None, AfterValidator(optional_cleaner(REJECT_REASON)),
                      Field(json_schema_extra=schema(REJECT_REASON))] = None


class ResultIn(Strict):
    outcome: Literal["success", "failure"]


class BetIn(Strict):
    side: Literal["success", "failure"]
    points: Points


class ChannelSettingsIn(Strict):
    missions_enabled: StrictBool | None = None
    min_mission_amount: Amount | None = None
    accept_timeout_seconds: Seconds | None = None
