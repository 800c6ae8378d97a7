"""Formatting shared by the subcommands and the demo: one human line per alert, times in and out.

Times on the command line are ISO 8601 or epoch seconds (:func:`parse_time`); times shown to a
person or written into a report are UTC to the second (:func:`iso`). Alert documents carry
their own millisecond ISO times (``streams.core.alerts.iso``), as their schema says.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from streams.settings import SettingsError


def format_alert(a: dict[str, Any]) -> str:
    """One human line per alert, for terminals and logs."""
    if a.get("schema") not in (None, "alert.v1"):  # pattern, gone-dark and activity alerts say it in words
        when = a.get("event_time_iso") or a.get("event_time")
        return (f"{when}  {str(a.get('severity', '?')).upper():<6} {a.get('transition', '?'):<15} "
                f"{a.get('headline', '')}  id={a.get('alert_id')}")
    dist = a.get("distance_to_boundary_m")
    dist_txt = f"{dist / 1000:+.1f} km" if isinstance(dist, int | float) else "?"
    who = a.get("callsign") or a.get("icao24")
    cls = (a.get("classification") or {}).get("category", "?")
    when = a.get("event_time_iso") or a.get("event_time")
    return (
        f"{when}  {str(a.get('severity', '?')).upper():<6} {a.get('transition', '?'):<11} {who!s:<9} "
        f"[{cls}] zone={a.get('zone')} dist={dist_txt}  {a.get('description', '')}  id={a.get('alert_id')}"
    )


def parse_time(text: str | None) -> float | None:
    """Epoch seconds from an ISO 8601 time (UTC unless it says otherwise) or a number."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SettingsError(
            f"{text!r} is not a time; use ISO 8601 like 2025-02-04T18:00:00Z or epoch seconds"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def iso(t: float | None, none: str = "-") -> str:
    """UTC to the second, e.g. 2025-02-04T18:00:00Z; ``none`` where there is no time."""
    return none if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_speed(text: str) -> float | None:
    """A replay speed factor (1, 10, ...), or None for ``max`` (as fast as it goes)."""
    if text == "max":
        return None
    try:
        v = float(text)
    except ValueError:
        raise SettingsError(f"--speed {text!r}: use a factor like 1 or 10, or max") from None
    if v <= 0:
        raise SettingsError("--speed must be positive (or max)")
    return v
