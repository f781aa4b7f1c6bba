"""How the pages read: odds with two decimals at most, and status badges whose text keeps
WCAG AA contrast (4.5:1) against their background, computed from the stylesheet."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from missionlink.api.routers.pages import ratio_text

CSS = (Path(__file__).resolve().parents[2] / "src" / "missionlink" / "web" / "static"
       / "app.css").read_text("utf-8")


@pytest.mark.parametrize(("value", "text"), [(1.6667, "1.67"), (2.0, "2"), (1.5, "1.5"),
                                             (1.005, "1"), (12.3456, "12.35"),
                                             (1234.5, "1,234.5")])
def test_odds_read_with_two_decimals_at_most(value: float, text: str) -> None:
    assert ratio_text(value) == text


def _luminance(hex_colour: str) -> float:
    h = hex_colour.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    channels = [int(h[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_contrast_formula() -> None:
    assert contrast("#000", "#fff") == pytest.approx(21)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


def _colour(value: str, variables: dict[str, str]) -> str:
    value = value.strip()
    found = re.fullmatch(r"var\((--[\w-]+)\)", value)
    return variables[found.group(1)] if found else value


def badge_colours() -> dict[str, tuple[str, str]]:
    """``selector -> (text, background)`` of every status, settlement and live badge."""
    variables = dict(re.findall(r"(--[\w-]+):\s*(#[0-9a-fA-F]{3,6})\s*;", CSS))
    found: dict[str, tuple[str, str]] = {}
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", CSS):
        names = [s.strip() for s in selectors.split(",")]
        if not any(re.search(r"\.(status|settlement)-|\.badge\.live", n) for n in names):
            continue
        props = dict(re.findall(r"(background|color)\s*:\s*([^;]+);", body))
        if {"background", "color"} <= set(props):
            for name in names:
                found[name] = (_colour(props["color"], variables),
                               _colour(props["background"], variables))
    return found


def test_status_badges_reach_4_5_to_1() -> None:
    found = badge_colours()
    assert {".status-pending", ".status-accepted", ".status-succeeded", ".status-failed",
            ".status-expired", ".badge.live"} <= set(found), found
    low = {name: round(contrast(*pair), 2) for name, pair in found.items()
           if contrast(*pair) < 4.5}
    assert not low, low
