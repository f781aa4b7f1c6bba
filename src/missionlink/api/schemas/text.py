"""User-written text in request bodies and query strings, held to the domain's text policy.

Use as ``Annotated[StrictStr, AfterValidator(cleaner(RULE)), Field(json_schema_extra=
schema(RULE))]``: the validator normalizes and refuses (422 with the reason), the schema
tells clients the same rule. The length bound is counted after NFC normalization, so it is
stated in the document rather than enforced on the raw string.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from missionlink.domain.text import TextRule, clean, json_schema_pattern


def cleaner(rule: TextRule) -> Callable[[str], str]:
    def run(value: str) -> str:
        return clean(value, rule)

    return run


def optional_cleaner(rule: TextRule) -> Callable[[str | None], str | None]:
    def run(value: str | None) -> str | None:
        return None if value is None else clean(value, rule)

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
