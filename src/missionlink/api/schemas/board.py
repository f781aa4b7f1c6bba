"""Fan board request bodies: plain text, strict strings, unknown fields refused."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictStr

from missionlink.api.schemas.core import Strict
from missionlink.domain.board import BODY_MAX, COMMENT_MAX, TITLE_MAX

Title = Annotated[StrictStr, Field(min_length=1, max_length=TITLE_MAX)]
Body = Annotated[StrictStr, Field(min_length=1, max_length=BODY_MAX)]


class PostIn(Strict):
    title: Title
    body: Body


class PostPatch(Strict):
    title: Title | None = None
    body: Body | None = None


class CommentIn(Strict):
    body: Annotated[StrictStr, Field(min_length=1, max_length=COMMENT_MAX)]
