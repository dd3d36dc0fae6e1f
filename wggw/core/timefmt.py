"""Time as wggw shows it: ISO 8601 UTC strings in listings, JSON and reports (pure)."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(ts: float | None) -> str | None:
    """Unix time -> ISO 8601 UTC ('2025-01-31T12:00:00Z'); None stays None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_iso(text: str | None) -> float | None:
    """The inverse of `iso`: ISO 8601 UTC ('...Z') -> unix time; None stays None."""
    if text is None:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
