"""Per-aircraft memory that decoders keep between messages.

This module owns :class:`AircraftMemory`: the last callsign, squawk, altitude, velocity
(and, for Mode S, CPR frames and last position) seen for each address, each with the
event time it was seen at, so a later position of the same aircraft can be completed
with still-fresh values. Entries for aircraft not heard for a while are pruned so a
long-running worker keeps bounded memory. Plain data, no I/O.
"""

from __future__ import annotations

from typing import Any

# An aircraft not heard for 10 minutes has left coverage or landed; its callsign and
# CPR state are no longer evidence for anything it sends next.
AIRCRAFT_TTL_S = 600.0
# Pruning walks every aircraft; once a minute keeps that cost negligible per message.
PRUNE_EVERY_S = 60.0


class AircraftMemory:
    """``icao24 -> {field: (value, event_time)}`` with freshness-aware recall."""

    __slots__ = ("_aircraft", "_next_prune", "ttl_s")

    def __init__(self, ttl_s: float = AIRCRAFT_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._aircraft: dict[str, dict[str, tuple[Any, float]]] = {}
        self._next_prune = float("-inf")

    def __len__(self) -> int:
        return len(self._aircraft)

    def __contains__(self, icao24: object) -> bool:
        return icao24 in self._aircraft

    def fields(self, icao24: str, t: float) -> dict[str, tuple[Any, float]]:
        """The aircraft's field dict (created on first use); marks it seen at ``t``."""
        self._maybe_prune(t)
        d = self._aircraft.get(icao24)
        if d is None:
            d = self._aircraft[icao24] = {}
        d["_seen"] = (None, t)
        return d

    def peek(self, icao24: str) -> dict[str, tuple[Any, float]] | None:
        return self._aircraft.get(icao24)

    def remember(self, icao24: str, t: float, **values: Any) -> None:
        d = self.fields(icao24, t)
        for k, v in values.items():
            if v is not None:
                d[k] = (v, t)

    @staticmethod
    def recall(d: dict[str, tuple[Any, float]] | None, name: str, t: float, max_age_s: float) -> Any:
        """Value of ``name`` if seen within ``max_age_s`` of ``t`` (either side), else None."""
        if d is None:
            return None
        item = d.get(name)
        if item is None or abs(t - item[1]) > max_age_s:
            return None
        return item[0]

    def _maybe_prune(self, t: float) -> None:
        if t < self._next_prune:
            return
        self._next_prune = t + PRUNE_EVERY_S
        cutoff = t - self.ttl_s
        stale = [k for k, d in self._aircraft.items() if d.get("_seen", (None, t))[1] < cutoff]
        for k in stale:
            del self._aircraft[k]
