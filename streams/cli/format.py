"""Formatting shared by the subcommands and the demo: one human line per alert."""

from __future__ import annotations

from typing import Any


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
