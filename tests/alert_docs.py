"""Alert documents for the sink tests: the fields the Redis sink and its agent read."""

from __future__ import annotations


def zone_alert(i: int, transition: str = "entered") -> dict[str, object]:
    """Zone alert number ``i`` (its own alert_id, aircraft and second of event time)."""
    return {
        "alert_id": f"a{i:04d}",
        "icao24": f"ae{i:04x}",
        "transition": transition,
        "zone": "sovereign",
        "severity": "high",
        "event_time": 1738700000.0 + i,
    }
