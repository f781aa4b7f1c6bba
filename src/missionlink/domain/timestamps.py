"""How every timestamp is written out (JSON bodies, pages, events): ISO 8601 in UTC."""

from __future__ import annotations

from datetime import datetime


def iso(value: datetime | None) -> str | None:
    """``2025-08-01T12:00:00Z`` for an aware UTC datetime; None stays None."""
    return value.isoformat().replace("+00:00", "Z") if value else None
