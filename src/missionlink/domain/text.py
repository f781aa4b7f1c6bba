"""The text policy for everything users write: titles, descriptions, posts, comments, names.

One rule, applied at the edge by the request schemas and again by the use cases:

* Lone surrogates are refused: no database or encoder can store them (PostgreSQL would
  answer with an error, the client with a 500).
* Control characters are refused, NUL included. Multi-line text (descriptions, post bodies,
  comments) may carry tab, line feed and carriage return; single-line text carries none,
  nor the Unicode line and paragraph separators.
* Text is normalized to NFC *before* its length is counted, so ``"한"`` written as three
  jamo counts as one character, and what is stored is the normalized form.
* Single-line text loses its surrounding whitespace. Required text must show something:
  text made only of whitespace and invisible (default-ignorable) characters is blank.
* Display names also refuse bidirectional controls (overrides, embeddings, isolates and
  marks), which let one user's name reorder the text around it.

Pure: no I/O, no web framework.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from missionlink.domain.errors import InvalidInput


class TextRefused(ValueError):
    """Why a text is refused, in words a client can act on (the field name is added later),
    with a stable ``code`` and its ``params`` (docs/errors.md#field-codes)."""

    def __init__(self, message: str, code: str = "invalid", **params: Any) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


#: Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt): characters that render
#: as nothing, including the Hangul fillers that make "empty" Korean names.
DEFAULT_IGNORABLE: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
    (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
#: Not default-ignorable, but drawn as nothing all the same.
BLANK_LOOKING: tuple[tuple[int, int], ...] = ((0x2800, 0x2800),)
#: Unicode's Bidi_Control: marks, embeddings, overrides and isolates.
BIDI_CONTROLS: tuple[tuple[int, int], ...] = (
    (0x061C, 0x061C), (0x200E, 0x200F), (0x202A, 0x202E), (0x2066, 0x2069),
)
MULTILINE_CONTROLS = frozenset("\t\n\r")
LINE_SEPARATORS = frozenset("\u2028\u2029")
#: NFC joins at most four code points into one (U+1FA2 is omega and three marks): anything
#: longer than this many times the limit is refused before it is normalized.
_MAX_COMPOSITION = 4


def _in(ranges: tuple[tuple[int, int], ...], ch: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in ranges)


def is_invisible(ch: str) -> bool:
    """Whitespace, or a character that is drawn as nothing."""
    return ch.isspace() or _in(DEFAULT_IGNORABLE, ch) or _in(BLANK_LOOKING, ch)


def is_blank(text: str) -> bool:
    return all(is_invisible(ch) for ch in text)


@dataclass(frozen=True)
class TextRule:
    max_chars: int
    multiline: bool = False
    required: bool = True
    #: A name shown next to other people's words: no bidirectional controls.
    name: bool = False

    def forbidden(self, ch: str) -> bool:
        """Characters this kind of text may never contain (checked before normalizing)."""
        category = unicodedata.category(ch)
        if category == "Cs":
            return True
        if category == "Cc":
            return not (self.multiline and ch in MULTILINE_CONTROLS)
        if not self.multiline and ch in LINE_SEPARATORS:
            return True
        return self.name and _in(BIDI_CONTROLS, ch)


def clean(value: str, rule: TextRule) -> str:
    """``value`` as stored (NFC, single-line text stripped), or TextRefused with the reason."""
    if len(value) > _MAX_COMPOSITION * rule.max_chars:
        raise TextRefused(f"must be at most {rule.max_chars} characters", "too-long",
                          max=rule.max_chars)
    for ch in value:
        if rule.forbidden(ch):
            raise TextRefused(_reason(ch, rule), "bad-characters", char=f"U+{ord(ch):04X}")
    text = unicodedata.normalize("NFC", value)
    if not rule.multiline:
        text = text.strip()
    if rule.required and is_blank(text):
        raise TextRefused("must not be blank", "blank")
    if len(text) > rule.max_chars:
        raise TextRefused(f"must be at most {rule.max_chars} characters", "too-long",
                          max=rule.max_chars)
    return text


def _reason(ch: str, rule: TextRule) -> str:
    cp = f"U+{ord(ch):04X}"
    if unicodedata.category(ch) == "Cs":
        return f"must be valid Unicode text (lone surrogate {cp})"
    if rule.name and _in(BIDI_CONTROLS, ch):
        return f"must not contain bidirectional control characters ({cp})"
    if rule.multiline:
        return f"must not contain control characters other than tab and newline ({cp})"
    return f"must be a single line without control characters ({cp})"


def check(field: str, value: str, rule: TextRule) -> str:
    """``clean`` for use cases: the refusal is InvalidInput (422) naming the field."""
    try:
        return clean(value, rule)
    except TextRefused as exc:
        raise InvalidInput.of(field, exc.code, str(exc), **exc.params) from exc


def _class(ranges: list[tuple[int, int]]) -> str:
    parts = []
    for lo, hi in ranges:
        if lo > 0xFFFF:
            continue  # \uXXXX names the Basic Multilingual Plane only
        hi = min(hi, 0xFFFF)
        parts.append(f"\\u{lo:04x}" if lo == hi else f"\\u{lo:04x}-\\u{hi:04x}")
    return "".join(parts)


def _ranges(chars: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for cp in sorted(set(chars)):
        if out and out[-1][1] == cp - 1:
            out[-1] = (out[-1][0], cp)
        else:
            out.append((cp, cp))
    return out


def json_schema_pattern(rule: TextRule) -> str:
    """The rule as a JSON Schema ``pattern`` (ECMA-262 and Python alike), for the API document.

    It states the forbidden characters and, for required text, that one character must be
    visible. What a pattern cannot say: normalization, and invisible characters outside the
    Basic Multilingual Plane.
    """
    # The length limit is no part of the pattern: rules that differ only in it share one
    # scan of the Basic Multilingual Plane (each takes a noticeable fraction of a second).
    return _pattern(replace(rule, max_chars=1))


@cache
def _invisible_bmp() -> list[int]:
    return [cp for cp in range(0x10000) if not 0xD800 <= cp <= 0xDFFF and is_invisible(chr(cp))]


@cache
def _pattern(rule: TextRule) -> str:
    bmp = range(0x10000)
    forbidden = [cp for cp in bmp if not 0xD800 <= cp <= 0xDFFF and rule.forbidden(chr(cp))]
    allowed = f"[^{_class(_ranges(forbidden))}]"
    if not rule.required:
        return f"^{allowed}*$"
    invisible = _invisible_bmp()
    visible = f"[^{_class(_ranges(forbidden + invisible))}]"
    return f"^{allowed}*{visible}{allowed}*$"
