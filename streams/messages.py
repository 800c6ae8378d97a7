"""The message types that travel between skyfence's rooms and over its topics.

This module owns the in-memory shape of a normalised position and of a dead-letter
record, and their conversion to and from the JSON documents described by
``schemas/position.v1.json`` and ``schemas/deadletter.v1.json``. It does no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import dataclass, field
from typing import Any, Literal

PositionSource = Literal["adsb", "mlat", "tisb", "other"]
POSITION_SOURCES: frozenset[str] = frozenset({"adsb", "mlat", "tisb", "other"})

POSITION_SCHEMA = "position.v1"
DEADLETTER_SCHEMA = "deadletter.v1"


@dataclass(slots=True)
class Position:
    """One validated, normalised aircraft position.

    Units follow the aviation conventions of the feeds so nothing is converted twice:
    feet, knots, degrees true, feet per minute. ``event_time`` is UTC seconds since the
    epoch (float, sub-second precision kept).
    """

    icao24: str
    event_time: float
    lat: float
    lon: float
    input_format: str
    alt_baro_ft: float | None = None
    alt_geom_ft: float | None = None
    ground_speed_kt: float | None = None
    track_deg: float | None = None
    vertical_rate_fpm: float | None = None
    callsign: str | None = None
    squawk: str | None = None
    on_ground: bool | None = None
    source: str = "adsb"
    receiver: str | None = None

    def to_dict(self) -> dict[str, Any]:
        # spelled out: dataclasses.asdict deep-copies and costs 4x as much on the ingest hot path
        return {
            "icao24": self.icao24,
            "event_time": self.event_time,
            "lat": self.lat,
            "lon": self.lon,
            "input_format": self.input_format,
            "alt_baro_ft": self.alt_baro_ft,
            "alt_geom_ft": self.alt_geom_ft,
            "ground_speed_kt": self.ground_speed_kt,
            "track_deg": self.track_deg,
            "vertical_rate_fpm": self.vertical_rate_fpm,
            "callsign": self.callsign,
            "squawk": self.squawk,
            "on_ground": self.on_ground,
            "source": self.source,
            "receiver": self.receiver,
            "schema": POSITION_SCHEMA,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Position:
        """Rebuild from a schema document; raises ValueError/KeyError/TypeError on bad input."""
        return cls(
            icao24=str(d["icao24"]),
            event_time=float(d["event_time"]),
            lat=float(d["lat"]),
            lon=float(d["lon"]),
            input_format=str(d["input_format"]),
            alt_baro_ft=_opt_float(d.get("alt_baro_ft")),
            alt_geom_ft=_opt_float(d.get("alt_geom_ft")),
            ground_speed_kt=_opt_float(d.get("ground_speed_kt")),
            track_deg=_opt_float(d.get("track_deg")),
            vertical_rate_fpm=_opt_float(d.get("vertical_rate_fpm")),
            callsign=d.get("callsign"),
            squawk=d.get("squawk"),
            on_ground=d.get("on_ground"),
            source=str(d.get("source", "other")),
            receiver=d.get("receiver"),
        )


def _opt_float(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return f if math.isfinite(f) else None


@dataclass(slots=True)
class DeadLetter:
    """An input that could not become a position, kept with the reason it was refused.

    ``raw`` holds the offending bytes; they are serialised as text when they decode as
    UTF-8 and as base64 otherwise, so nothing about the input is lost.
    """

    reason: str
    input_format: str
    raw: bytes
    source: str = ""
    detail: str = ""
    event_time: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        h = hashlib.sha1(f"{self.reason}\0{self.input_format}\0{self.source}\0".encode())
        h.update(self.raw)
        return h.hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        try:
            text: str | None = self.raw.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        d: dict[str, Any] = {
            "schema": DEADLETTER_SCHEMA,
            "id": self.id,
            "reason": self.reason,
            "input_format": self.input_format,
            "source": self.source,
            "detail": self.detail,
            "event_time": self.event_time,
        }
        if text is not None and "\x00" not in text:
            d["raw_text"] = text
        else:
            d["raw_b64"] = base64.b64encode(self.raw).decode("ascii")
        if self.extra:
            d["extra"] = self.extra
        return d


@dataclass(slots=True)
class ParseResult:
    """What a parser returns for one chunk of input: good positions and refused inputs.

    ``messages`` counts inputs seen (lines, frames, documents), so that
    ``messages == accepted + len(dead_letters) + skipped`` can be checked; ``skipped``
    counts inputs that are valid but carry no position (e.g. an identification-only frame).
    """

    positions: list[Position] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    messages: int = 0
    skipped: int = 0

    def extend(self, other: ParseResult) -> None:
        self.positions.extend(other.positions)
        self.dead_letters.extend(other.dead_letters)
        self.messages += other.messages
        self.skipped += other.skipped
