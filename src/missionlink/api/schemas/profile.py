"""A streamer's public profile and a channel's top backers (requests and responses)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StrictStr

from missionlink.api.schemas.core import Strict
from missionlink.api.schemas.text import cleaner, schema
from missionlink.domain.profile import INTRO, LINK_MAX

Platform = Literal["soop", "chzzk", "youtube"]
LINK_RULE = (
    "An https address of the streamer's channel on SOOP (sooplive.co.kr, afreecatv.com), "
    "CHZZK (chzzk.naver.com) or YouTube (youtube.com, youtu.be): no user name, port or "
    "other host, only URL characters, a path beyond the home page. \"\" removes the link."
)


class ProfileIn(Strict):
    """A partial change: a field left out stays as it is."""

    intro: Annotated[StrictStr, AfterValidator(cleaner(INTRO)),
                     Field(json_schema_extra=schema(INTRO))] | None = None
    link: Annotated[StrictStr, Field(max_length=LINK_MAX, description=LINK_RULE)] | None = None


class ProfileOut(BaseModel):
    intro: str = Field(description="the streamer's intro; \"\" when none")
    link: str | None = Field(description="the channel link, null when none")
    link_platform: Platform | None = Field(description="whose channel the link is")


class TopBacker(BaseModel):
    rank: int = Field(ge=1)
    display_name: str
    total_pledged: int = Field(ge=1, description="Integer KRW counted for this backer")
    pledge_count: int = Field(ge=1)


class TopBackersOut(BaseModel):
    """At most ten backers, largest total first. Counted: pledges on missions that
    succeeded and on open missions not yet expired; refunded and anonymous ones never
    count."""

    items: list[TopBacker]
