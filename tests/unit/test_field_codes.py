"""Every refused field maps to a stable code with params (docs/errors.md#field-codes), and
the pages have a message for each code in both languages."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from missionlink.api.problems import FIELD_CODES, field_error
from missionlink.api.schemas.identity import SignupIn
from missionlink.domain import text
from missionlink.domain.errors import FieldError, InvalidInput, check_range, range_error
from missionlink.domain.identity import check_password, normalize_email

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "errors.md"
STRINGS = ROOT / "src" / "missionlink" / "web" / "templates" / "pages" / "strings.json"


class Sample(BaseModel):
    model_config = ConfigDict(extra="forbid")
    above: Annotated[StrictInt, Field(gt=4)] = 5
    below: Annotated[StrictInt, Field(lt=10)] = 1
    at_least: Annotated[StrictInt, Field(ge=1)] = 1
    at_most: Annotated[StrictInt, Field(le=9)] = 1
    name: Annotated[str, Field(min_length=2, max_length=3)] = "ab"
    side: Literal["success", "failure"] = "success"
    flag: bool = True


def mapped(**data: object) -> dict[str, dict[str, object]]:
    with pytest.raises(ValidationError) as caught:
        Sample.model_validate(data)
    return {e["field"]: e for e in map(field_error, caught.value.errors())}


def test_pydantic_errors_map_to_codes_with_their_bounds() -> None:
    found = mapped(above=4, below=10, at_least=0, at_most=10, name="a", side="x", extra=1)
    assert found["above"]["code"] == "too-small" and found["above"]["params"] == {"min": 5}
    assert found["below"]["code"] == "too-large" and found["below"]["params"] == {"max": 9}
    assert found["at_least"]["params"] == {"min": 1}
    assert found["at_most"]["params"] == {"max": 9}
    assert found["name"]["code"] == "too-short" and found["name"]["params"] == {"min": 2}
    assert found["side"] == found["side"] | {"code": "not-allowed",
                                             "params": {"allowed": ["success", "failure"]}}
    assert found["extra"]["code"] == "unknown-field"
    # The original pydantic fields stay.
    assert found["above"]["type"] == "greater_than" and found["above"]["loc"] == ["above"]
    found = mapped(name="abcd", above="5", flag="maybe")
    assert found["name"]["params"] == {"max": 3}
    assert found["above"]["code"] == "not-integer"
    assert found["flag"]["code"] == "not-boolean"


def test_request_parts_are_not_part_of_the_field_name() -> None:
    for loc, field in [(("body", "amount"), "amount"), (("query", "limit"), "limit"),
                       (("body",), None), (("body", "items", 0, "x"), "items.0.x")]:
        e = field_error({"loc": loc, "msg": "m", "type": "missing"})
        assert e["field"] == field and e["code"] == "required"


def test_unknown_error_types_are_invalid_and_params_stay_json() -> None:
    e = field_error({"loc": ("body", "x"), "msg": "m", "type": "value_error",
                     "ctx": {"error": ValueError("boom")}})
    assert e["code"] == "invalid" and e["params"] == {}


def test_the_signup_model_reports_the_email_with_the_other_fields() -> None:
    with pytest.raises(ValidationError) as caught:
        SignupIn.model_validate({"email": "nope", "password": "short", "display_name": "\x00",
                                 "role": "viewer"})
    codes = {e["field"]: e["code"] for e in map(field_error, caught.value.errors())}
    assert codes == {"email": "invalid-email", "password": "too-short",
                     "display_name": "bad-characters"}


def test_domain_rules_raise_coded_field_errors() -> None:
    for raw, code in [("nope", "invalid-email"), ("a@b.example", "reserved-email-domain")]:
        with pytest.raises(InvalidInput) as caught:
            normalize_email(raw)
        assert [e.code for e in caught.value.errors] == [code]
    with pytest.raises(InvalidInput) as caught:
        check_password("x" * 9)
    assert caught.value.errors == (FieldError("password", "too-short",
                                              "must be 10 to 128 characters",
                                              {"min": 10, "max": 128}),)
    with pytest.raises(InvalidInput) as caught:
        text.check("title", " ", text.TextRule(5))
    assert caught.value.errors[0].code == "blank"
    assert caught.value.detail == "title: must not be blank"


def test_ranges_keep_their_english_detail_and_report_every_field() -> None:
    assert range_error("amount", 5, 1, 9) is None
    with pytest.raises(InvalidInput) as caught:
        check_range("amount", 999, 1000, 2000, unit="KRW")
    assert caught.value.detail == "amount must be between 1000 and 2000 KRW"
    assert caught.value.errors[0].params == {"min": 1000, "max": 2000}
    with pytest.raises(InvalidInput) as caught:
        InvalidInput.raise_any([None, range_error("a", 0, 1, 2), range_error("b", 3, 1, 2)])
    assert [e.field for e in caught.value.errors] == ["a", "b"]
    InvalidInput.raise_any([None])


def documented_codes() -> set[str]:
    section = DOCS.read_text("utf-8").split("## Field codes", 1)[1]
    return set(re.findall(r"^\| `([a-z-]+)` \|", section, re.M))


def test_every_field_code_is_documented_and_translated() -> None:
    assert documented_codes() == set(FIELD_CODES)
    strings = json.loads(STRINGS.read_text("utf-8"))
    for code in FIELD_CODES:
        pair = strings[f"field_{code}"]
        assert pair["ko"] and pair["en"], code
        assert not re.search(r"[가-힣]", pair["en"]), code
