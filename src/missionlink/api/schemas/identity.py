"""Request and response bodies of the identity endpoints."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from missionlink.api.schemas.text import cleaner, domain_check, schema
from missionlink.domain.identity import (
    DISPLAY_NAME,
    EMAIL_MAX,
    PASSWORD_MAX,
    PASSWORD_MIN,
    normalize_email,
)


class StrictRequest(BaseModel):
    """Unknown fields are refused and nothing is coerced (a number is not an email)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class SignupIn(StrictRequest):
    email: Annotated[str, Field(max_length=EMAIL_MAX, examples=["viewer@example.com"]),
                     AfterValidator(domain_check(normalize_email))]
    password: Annotated[str, Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)]
    display_name: Annotated[str, AfterValidator(cleaner(DISPLAY_NAME)),
                            Field(json_schema_extra=schema(DISPLAY_NAME))]
    role: Literal["viewer", "streamer"]
    language: Literal["ko", "en"] = "ko"


class LoginIn(StrictRequest):
    email: Annotated[str, Field(min_length=1, max_length=320)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class RefreshIn(StrictRequest):
    """The token may come from the ``ml_refresh`` cookie instead (cookie mode)."""

    refresh_token: Annotated[str | None, Field(min_length=1, max_length=256)] = None


class UserOut(BaseModel):
    id: int
    email: str
    display_name: str
    role: Literal["viewer", "streamer", "admin"]
    language: Literal["ko", "en"]


class TokenPairOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - a scheme name, not a secret
    expires_in: int = Field(description="seconds until the access token expires")
