"""Fan board request bodies: plain text, strict strings, unknown fields refused."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, StrictStr

from missionlink.api.schemas.core import Strict
from missionlink.api.schemas.text import cleaner, schema
from missionlink.domain.board import BODY, COMMENT, TITLE

Title = Annotated[StrictStr, AfterValidator(cleaner(TITLE)), Field(json_schema_extra=schema(TITLE))]
Body = Annotated[StrictStr, AfterValidator(cleaner(BODY)), Field(json_schema_extra=schema(BODY))]


class PostIn(Strict):
    title: Title
    body: Body


class PostPatch(Strict):
    title: Title | None = None
    body: Body | None = None


CommentBody = Annotated[StrictStr, AfterValidator(cleaner(COMMENT)),
                        Field(json_schema_extra=schema(COMMENT))]


class CommentIn(Strict):
    body: CommentBody


class CommentPatch(Strict):
    """A comment's new text: the same rules and limits as a new comment's."""

    body: CommentBody
