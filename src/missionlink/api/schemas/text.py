"""User-written text in request bodies and query strings, held to the domain's text policy.

Use as ``Annotated[StrictStr, AfterValidator(cleaner(RULE)), Field(json_schema_extra=
schema(RULE))]``: the validator normalizes and refuses (422 with the reason), the schema
tells clients the same rule. The length bound is counted after NFC normalization, so it is
stated in the document rather than enforced on the raw string.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic_core import PydanticCustomError

from missionlink.domain.errors import InvalidInput
from missionlink.domain.text import TextRefused, TextRule, clean, json_schema_pattern


def refused(code: str, message: str, params: dict[str, Any]) -> PydanticCustomError:
    """A validation error whose ``type`` is the field code (docs/errors.md#field-codes)."""
    # The message is a template for pydantic: braces in it would be read as placeholders.
    return PydanticCustomError(code, message.replace("{", "(").replace("}", ")"), params)


def cleaner(rule: TextRule) -> Callable[[str], str]:
    def run(value: str) -> str:
        try:
            return clean(value, rule)
        except TextRefused as exc:
            raise refused(exc.code, str(exc), exc.params) from exc

    return run


def optional_cleaner(rule: TextRule) -> Callable[[str | None], str | None]:
    def run(value: str | None) -> str | None:
        return None if value is None else cleaner(rule)(value)

    return run


def domain_check(check: Callable[[str], object]) -> Callable[[str], str]:
    """A domain rule (raising coded InvalidInput) as a field validator, so the field is
    reported with the request's other invalid fields; the value passes unchanged."""
    def run(value: str) -> str:
        try:
            check(value)
        except InvalidInput as exc:
            first = exc.errors[0] if exc.errors else None
            if first is None:
                raise refused("invalid", exc.detail, {}) from exc
            raise refused(first.code, first.message, dict(first.params)) from exc
        return value

    return run


def schema(rule: TextRule) -> dict[str, Any]:
    kind = "Multi-line (tab and newline allowed)" if rule.multiline else "Single-line"
    out: dict[str, Any] = {
        "maxLength": rule.max_chars,
        "pattern": json_schema_pattern(rule),
        "description": f"{kind} text of at most {rule.max_chars} characters after NFC "
                       "normalization; control characters are refused.",
    }
    if rule.required:
        out["minLength"] = 1
    return out
