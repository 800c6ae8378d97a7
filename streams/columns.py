"""Positions as columns: the form a batch has between the wire and the track engine.

This module owns :class:`PositionColumns`, one numpy array per field of
:class:`~streams.messages.Position` (NaN for an unknown number, -1 for an unknown
``on_ground``, None for a missing string; a callsign is None or trimmed and non-empty, as
validation leaves it, so the engine tests it as a column), and its conversions to and from
lists of positions. The worker decodes ``position-batch.v2`` records straight into columns and the
engine runs on them, so no per-position Python object exists on the hot path; one is made
only for a position that is rejected or held in exported state. It does no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from streams.messages import Position

F64 = npt.NDArray[np.float64]
OBJ = npt.NDArray[np.object_]

# Numeric fields: NaN is "unknown" (the gates never admit NaN, so None <-> NaN is lossless).
FLOAT_FIELDS = ("event_time", "lat", "lon", "alt_baro_ft", "alt_geom_ft", "ground_speed_kt", "track_deg",
                "vertical_rate_fpm")
STRING_FIELDS = ("icao24", "callsign", "squawk", "source", "receiver", "input_format")
FIELDS = (*FLOAT_FIELDS, "on_ground", *STRING_FIELDS)


def objects(items: Sequence[Any]) -> OBJ:
    """An object array of exactly these items (np.array would unpack nested sequences)."""
    arr = np.empty(len(items), dtype=object)
    arr[:] = items
    return arr


def _callsign(c: str | None) -> str | None:
    """Blank is unknown: what ``check_callsign`` makes of it, for positions built by hand."""
    return (c.strip() or None) if isinstance(c, str) else None


def _opt(x: float) -> float | None:
    return None if math.isnan(x) else x


@dataclass(slots=True)
class PositionColumns:
    icao24: OBJ
    event_time: F64
    lat: F64
    lon: F64
    alt_baro_ft: F64
    alt_geom_ft: F64
    ground_speed_kt: F64
    track_deg: F64
    vertical_rate_fpm: F64
    on_ground: npt.NDArray[np.int8]  # -1 unknown, 0 airborne, 1 on the ground
    callsign: OBJ
    squawk: OBJ
    source: OBJ
    receiver: OBJ
    input_format: OBJ

    def __len__(self) -> int:
        return int(self.icao24.shape[0])

    @classmethod
    def empty(cls) -> PositionColumns:
        f = np.empty(0)
        o = np.empty(0, dtype=object)
        return cls(o, f, f, f, f, f, f, f, f, np.empty(0, dtype=np.int8), o, o, o, o, o)

    @classmethod
    def from_positions(cls, positions: Sequence[Position]) -> PositionColumns:
        n = len(positions)
        nan = math.nan

        def floats(name: str) -> F64:
            return np.fromiter(((nan if (v := getattr(p, name)) is None else v) for p in positions),
                               dtype=np.float64, count=n)

        return cls(
            icao24=objects([p.icao24 for p in positions]),
            event_time=np.fromiter((p.event_time for p in positions), dtype=np.float64, count=n),
            lat=np.fromiter((p.lat for p in positions), dtype=np.float64, count=n),
            lon=np.fromiter((p.lon for p in positions), dtype=np.float64, count=n),
            alt_baro_ft=floats("alt_baro_ft"),
            alt_geom_ft=floats("alt_geom_ft"),
            ground_speed_kt=floats("ground_speed_kt"),
            track_deg=floats("track_deg"),
            vertical_rate_fpm=floats("vertical_rate_fpm"),
            on_ground=np.fromiter((-1 if p.on_ground is None else int(p.on_ground) for p in positions),
                                  dtype=np.int8, count=n),
            callsign=objects([_callsign(p.callsign) for p in positions]),
            squawk=objects([p.squawk for p in positions]),
            source=objects([p.source for p in positions]),
            receiver=objects([p.receiver for p in positions]),
            input_format=objects([p.input_format for p in positions]),
        )

    def take(self, idx: npt.NDArray[Any]) -> PositionColumns:
        """Rows by index array or boolean mask."""
        return PositionColumns(*(getattr(self, f)[idx] for f in _ORDER))

    @classmethod
    def concat(cls, parts: Sequence[PositionColumns]) -> PositionColumns:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in _ORDER))

    def to_lists(self) -> dict[str, list[Any]]:
        """One JSON-able list per field (NaN as None), for :meth:`from_lists`."""
        out: dict[str, list[Any]] = {}
        for f in _ORDER:
            a = getattr(self, f)
            out[f] = [None if x != x else x for x in a.tolist()] if a.dtype == np.float64 else a.tolist()
        return out

    @classmethod
    def from_lists(cls, lists: dict[str, list[Any]]) -> PositionColumns:
        """Columns from :meth:`to_lists` output (a field missing is unknown)."""
        n = len(lists["icao24"])

        def col(f: str) -> Any:
            values = lists.get(f)
            if f in FLOAT_FIELDS:
                return np.full(n, math.nan) if values is None else np.array(values, dtype=np.float64)
            if f == "on_ground":
                return np.full(n, -1, dtype=np.int8) if values is None else np.array(values, dtype=np.int8)
            return objects([None] * n if values is None else values)

        return cls(*(col(f) for f in _ORDER))

    def head(self, n: int) -> PositionColumns:
        """The first ``n`` rows, as views (no copy)."""
        return PositionColumns(*(getattr(self, f)[:n] for f in _ORDER))

    def grown(self, cap: int) -> PositionColumns:
        """A copy with room for ``cap`` rows (rows beyond ``len`` are uninitialised)."""
        def grow(a: Any) -> Any:
            out = np.empty(cap, dtype=a.dtype)
            out[: a.shape[0]] = a
            return out

        return PositionColumns(*(grow(getattr(self, f)) for f in _ORDER))

    def put(self, at: int, rows: PositionColumns) -> None:
        """Write ``rows`` over rows ``at``... of these columns, in place."""
        k = len(rows)
        for f in _ORDER:
            getattr(self, f)[at : at + k] = getattr(rows, f)

    def position(self, i: int) -> Position:
        og = int(self.on_ground[i])
        return Position(
            icao24=str(self.icao24[i]),
            event_time=float(self.event_time[i]),
            lat=float(self.lat[i]),
            lon=float(self.lon[i]),
            input_format=str(self.input_format[i]),
            alt_baro_ft=_opt(float(self.alt_baro_ft[i])),
            alt_geom_ft=_opt(float(self.alt_geom_ft[i])),
            ground_speed_kt=_opt(float(self.ground_speed_kt[i])),
            track_deg=_opt(float(self.track_deg[i])),
            vertical_rate_fpm=_opt(float(self.vertical_rate_fpm[i])),
            callsign=self.callsign[i],
            squawk=self.squawk[i],
            on_ground=None if og < 0 else bool(og),
            source=str(self.source[i]),
            receiver=self.receiver[i],
        )

    def to_positions(self) -> list[Position]:
        return [self.position(i) for i in range(len(self))]

    def altitude(self) -> F64:
        """Barometric altitude where known, else geometric (what the geofence's bands use)."""
        return np.where(np.isnan(self.alt_baro_ft), self.alt_geom_ft, self.alt_baro_ft)


# The dataclass's field order, for positional rebuilding in take/concat.
_ORDER = tuple(PositionColumns.__dataclass_fields__)
