"""Gone dark near the line: coverage evidence and the ``dark.v1`` documents.

This module owns the coverage stage: which aircraft were heard where (a table of "heard"
records per coverage cell), the decision whether a silent aircraft of interest near Mexico
"went dark" (switched its transponder off, or was switched off) or merely flew out of
receiver coverage, and the ``went_dark`` / ``reappeared`` documents of ``schemas/dark.v1.json``.
It also owns the records the engine sends it and how they are keyed (:func:`cell_of`,
:func:`heard_cells`), and the engine-side sampler of heard records (:func:`heard_mask`).
Pure logic: no I/O, no clock; every decision is a function of the records and the watermark.

Why a keyed stage of its own: positions are partitioned by aircraft, so the aircraft heard
near a silent one are on other partitions and other workers. Every heard point is sent to
every cell within ``radius_m`` of it (fan-out), so the question "who was heard within
``radius_m`` of this point" needs the one cell the point is in. A candidate (and its
reappearance) is routed to the cell of its last position. Cells are independent, so two
workers owning half the cells each give the same alerts as one owning all.

The decision, for a candidate last seen at ``t_last`` and evaluated at
``t_eval = t_last + dark_after_s`` once the stage's watermark reaches ``t_eval``:
other aircraft (not the candidate) heard within ``radius_m`` of the last position with
``t_last < t <= t_eval``; at least ``min_neighbours`` of them -> ``went_dark`` (receivers
there were listening, yet the aircraft said nothing), else "out of coverage" (nothing
raised; the decision is kept so a re-delivered candidate is not decided again). The
watermark contract (no more records at or before it) makes the evidence complete at
``t_eval``, so the result does not depend on the order records arrived in.

Known limit: coverage is line of sight, so an airliner at FL350 can be heard where an
aircraft at 500 ft is not; the evidence says receivers heard *someone* nearby, not that
they would have heard this aircraft at its altitude. The alert carries the neighbours'
addresses so a reader can check.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from streams.core.alerts import iso, opt
from streams.core.places import EARTH_RADIUS_M, destination, haversine_m

DARK_SCHEMA = "dark.v1"
DARK_ZONE = "dark"
STATE_VERSION = 1

KT_MS = 1852.0 / 3600.0
# Default silence before an aircraft counts as dark: the 5 min, about 20 missed
# ADS-B position reports at the 0.5 s rate in ordinary coverage, far beyond a flicker.
DARK_AFTER_S = 300.0
# Neighbour search radius: the 50 km; about 6 min of flight at 450 kt, and well inside
# a ground receiver's ~300-400 km range at altitude, so "heard within 50 km" means the same
# receivers were in reach of the silent aircraft's last position.
RADIUS_M = 50_000.0
# One heard record per aircraft per minute: 5 per aircraft within the default 5-min window,
# enough to prove it was heard, about 1/100th of the position rate on the coverage topic.
HEARD_INTERVAL_S = 60.0
# Coverage cells are 1° x 1°: 111 km of latitude and 93-107 km of longitude over Mexico, so a
# 50 km disc touches 1-4 cells (6 at most north of 27°N), and the ~400 cells within 500 km of
# Mexico spread the keys over partitions while each cell's table stays a few thousand rows.
CELL_DEG = 1.0
# Fan-out slack: the distance to a cell is taken to its nearest lat/lon-clamped point, which
# on the sphere may exceed the true distance by metres; 1 % keeps the fan-out conservative.
_FANOUT_SLACK = 1.01
# Heard records are kept this long behind the watermark: the 5-min window plus 10 min for a
# candidate that reaches the stage after the watermark passed its evaluation time (the
# engine's release horizon and sweep cadence trail its stream time by far less than that).
KEEP_S = DARK_AFTER_S + 600.0
# Decided candidates (and reappearances without one) are forgotten this long after the last
# position: a P-8 or ISR sortie lasts up to ~12 h, after which a "reappearance" is another
# flight, and re-deliveries of a candidate come within minutes, not hours.
FORGET_AFTER_S = 12 * 3600.0

_ICAO_CHARS = frozenset("0123456789abcdef")

# Decisions of a candidate.
PENDING = "pending"
WENT_DARK = "went_dark"
OUT_OF_COVERAGE = "out_of_coverage"
NOT_SILENT = "not_silent"  # reappeared before t_eval: the silence was shorter than dark_after_s


# ---------------------------------------------------------------------------- validation helpers
def _icao(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"icao24 must be a string, got {type(v).__name__}")
    body = v[1:] if v.startswith("~") else v
    if len(body) != 6 or not set(body) <= _ICAO_CHARS:
        raise ValueError(f"icao24 {v[:20]!r} is not 6 lower-case hex digits")
    return v


def _num(d: dict[str, Any], k: str, lo: float = -math.inf, hi: float = math.inf) -> float:
    if k not in d:
        raise ValueError(f"missing {k}")
    v = d[k]
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"{k} must be a number, got {type(v).__name__}")
    x = float(v)
    if not (math.isfinite(x) and lo <= x <= hi):
        raise ValueError(f"{k} {x!r} out of range [{lo}, {hi}]")
    return x


def _opt_num(d: dict[str, Any], k: str, lo: float = -math.inf, hi: float = math.inf) -> float | None:
    return None if d.get(k) is None else _num(d, k, lo, hi)


def _check_lat_lon(lat: float, lon: float) -> None:
    if not (math.isfinite(lat) and math.isfinite(lon) and -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"position ({lat!r}, {lon!r}) is not a valid lat/lon")


# ---------------------------------------------------------------------------- records
@dataclass(frozen=True, slots=True)
class Heard:
    """An aircraft was heard at (lat, lon) at event time t (at most one per aircraft per minute)."""

    icao24: str
    t: float
    lat: float
    lon: float

    def __post_init__(self) -> None:
        _icao(self.icao24)
        if not math.isfinite(self.t):
            raise ValueError(f"t {self.t!r} is not finite")
        _check_lat_lon(self.lat, self.lon)

    def to_dict(self) -> dict[str, Any]:
        return {"icao24": self.icao24, "t": self.t, "lat": self.lat, "lon": self.lon}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Heard:
        if not isinstance(d, dict):
            raise ValueError("heard record must be an object")
        return cls(_icao(d.get("icao24")), _num(d, "t"), _num(d, "lat", -90, 90), _num(d, "lon", -180, 180))


@dataclass(frozen=True, slots=True)
class DarkCandidate:
    """An aircraft of interest near the line, silent for ``dark_after_s`` since ``t_last``.

    Identified by (icao24, t_last); position and motion are those of its last position.
    """

    icao24: str
    callsign: str | None
    t_last: float
    lat: float
    lon: float
    alt_ft: float | None
    gs_kt: float | None
    trk_deg: float | None
    distance_to_boundary_m: float | None
    predicted_entry_s: float | None
    classification: dict[str, Any] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        _icao(self.icao24)
        if self.callsign is not None and not isinstance(self.callsign, str):
            raise ValueError("callsign must be a string or null")
        if not math.isfinite(self.t_last):
            raise ValueError(f"t_last {self.t_last!r} is not finite")
        _check_lat_lon(self.lat, self.lon)
        for k in ("alt_ft", "gs_kt", "trk_deg", "distance_to_boundary_m", "predicted_entry_s"):
            v = getattr(self, k)
            if v is not None and not math.isfinite(v):
                raise ValueError(f"{k} {v!r} is not finite (use null)")
        if self.classification is not None and not isinstance(self.classification, dict):
            raise ValueError("classification must be an object or null")

    @property
    def key(self) -> tuple[str, float]:
        return self.icao24, self.t_last

    def to_dict(self) -> dict[str, Any]:
        return {
            "icao24": self.icao24, "callsign": self.callsign, "t_last": self.t_last, "lat": self.lat,
            "lon": self.lon, "alt_ft": self.alt_ft, "gs_kt": self.gs_kt, "trk_deg": self.trk_deg,
            "distance_to_boundary_m": self.distance_to_boundary_m, "predicted_entry_s": self.predicted_entry_s,
            "classification": self.classification,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DarkCandidate:
        if not isinstance(d, dict):
            raise ValueError("dark candidate must be an object")
        cs = d.get("callsign")
        if cs is not None and not isinstance(cs, str):
            raise ValueError("callsign must be a string or null")
        cls_d = d.get("classification")
        if cls_d is not None and not isinstance(cls_d, dict):
            raise ValueError("classification must be an object or null")
        return cls(
            icao24=_icao(d.get("icao24")), callsign=cs, t_last=_num(d, "t_last"),
            lat=_num(d, "lat", -90, 90), lon=_num(d, "lon", -180, 180),
            alt_ft=_opt_num(d, "alt_ft"), gs_kt=_opt_num(d, "gs_kt", 0.0), trk_deg=_opt_num(d, "trk_deg"),
            distance_to_boundary_m=_opt_num(d, "distance_to_boundary_m"),
            predicted_entry_s=_opt_num(d, "predicted_entry_s"), classification=cls_d,
        )


@dataclass(frozen=True, slots=True)
class Reappearance:
    """The first position (t, lat, lon) after the silence that began at ``t_last``."""

    icao24: str
    t_last: float
    t: float
    lat: float
    lon: float

    def __post_init__(self) -> None:
        _icao(self.icao24)
        if not (math.isfinite(self.t_last) and math.isfinite(self.t)):
            raise ValueError("t_last and t must be finite")
        if self.t < self.t_last:
            raise ValueError(f"reappearance at {self.t} before the last position at {self.t_last}")
        _check_lat_lon(self.lat, self.lon)

    @property
    def key(self) -> tuple[str, float]:
        return self.icao24, self.t_last

    def to_dict(self) -> dict[str, Any]:
        return {"icao24": self.icao24, "t_last": self.t_last, "t": self.t, "lat": self.lat, "lon": self.lon}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Reappearance:
        if not isinstance(d, dict):
            raise ValueError("reappearance must be an object")
        return cls(_icao(d.get("icao24")), _num(d, "t_last"), _num(d, "t"), _num(d, "lat", -90, 90),
                   _num(d, "lon", -180, 180))


# ---------------------------------------------------------------------------- keys and sampling
def _cell_key(iy: int, ix: int, cell_deg: float) -> str:
    # The grid size is part of the key so a change of grid never mixes old and new cells.
    return f"{cell_deg:g}d:{iy}:{ix}"


def cell_of(lat: float, lon: float, cell_deg: float = CELL_DEG) -> str:
    """Key of the coverage cell containing (lat, lon), e.g. ``"1d:32:-118"``."""
    _check_lat_lon(lat, lon)
    n_lon = round(360.0 / cell_deg)
    iy = min(math.floor(lat / cell_deg), round(90.0 / cell_deg) - 1)  # the pole belongs to the last row
    ix = math.floor((lon + 180.0) / cell_deg) % n_lon - round(180.0 / cell_deg)
    return _cell_key(iy, ix, cell_deg)


def _haversine_scalar_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """:func:`haversine_m` for one pair, in plain floats: heard_cells runs it for every cell
    near every aircraft heard (numpy's per-call overhead was most of the track stage's cost
    of coverage in a catch-up)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(max(a, 0.0), 1.0)))


def heard_cells(lat: float, lon: float, radius_m: float = RADIUS_M, cell_deg: float = CELL_DEG) -> list[str]:
    """Keys of every cell with some point within ``radius_m`` of (lat, lon), its own first.

    A query about any point then needs only that point's own cell (:func:`cell_of`).
    """
    _check_lat_lon(lat, lon)
    own = cell_of(lat, lon, cell_deg)
    dlat = math.degrees(radius_m * _FANOUT_SLACK / EARTH_RADIUS_M)
    lat_lo, lat_hi = max(-90.0, lat - dlat), min(90.0, lat + dlat)
    coslat = min(math.cos(math.radians(lat_lo)), math.cos(math.radians(lat_hi)))
    dlon = 180.0 if coslat <= dlat / 90.0 else min(180.0, dlat / coslat)
    out = [own]
    seen = {own}
    n_rows = round(90.0 / cell_deg)
    n_lon = round(360.0 / cell_deg)
    for iy in range(math.floor(lat_lo / cell_deg), math.floor(lat_hi / cell_deg) + 1):
        if not -n_rows <= iy < n_rows:
            continue
        cy = min(max(lat, iy * cell_deg), (iy + 1) * cell_deg)
        for jx in range(math.floor((lon - dlon) / cell_deg), math.floor((lon + dlon) / cell_deg) + 1):
            cx = min(max(lon, jx * cell_deg), (jx + 1) * cell_deg)
            if _haversine_scalar_m(lat, lon, cy, cx) > radius_m * _FANOUT_SLACK:
                continue
            key = _cell_key(iy, (jx + n_lon // 2) % n_lon - n_lon // 2, cell_deg)
            if key not in seen:
                seen.add(key)
                out.append(key)
    return out


def heard_mask(
    slot: npt.NDArray[np.integer[Any]],
    t: npt.NDArray[np.float64],
    last_bucket: npt.NDArray[np.float64],
    interval_s: float = HEARD_INTERVAL_S,
) -> npt.NDArray[np.bool_]:
    """Which positions become heard records: the first of each ``interval_s`` bucket per aircraft.

    Positions must be sorted by (slot, t). ``last_bucket[slot]`` is the bucket (``floor(t /
    interval_s)``) of the slot's last heard record, NaN for none, and is updated in place, so
    the same positions cut into any batches give the same records.
    """
    n = slot.shape[0]
    take = np.zeros(n, dtype=np.bool_)
    if n == 0:
        return take
    b = np.floor(np.asarray(t, dtype=np.float64) / interval_s)
    first = np.ones(n, dtype=np.bool_)
    first[1:] = slot[1:] != slot[:-1]
    prev = np.empty(n)
    prev[1:] = b[:-1]
    prev[first] = last_bucket[slot[first]]
    take[:] = np.isnan(prev) | (b > prev)
    last = np.ones(n, dtype=np.bool_)
    last[:-1] = first[1:]
    ls = slot[last]
    last_bucket[ls] = np.fmax(last_bucket[ls], b[last])
    return take


# ---------------------------------------------------------------------------- the stage
@dataclass(frozen=True, slots=True)
class CoverageConfig:
    """Tuning of the coverage stage (defaults: see the module constants' reasons)."""

    dark_after_s: float = DARK_AFTER_S
    radius_m: float = RADIUS_M
    # One other aircraft heard near the last position proves a receiver was listening there
    # during the silence; asking for more would call real switch-offs over quiet sea "out of
    # coverage", where one overflight a few minutes apart is all the traffic there is.
    min_neighbours: int = 1
    heard_interval_s: float = HEARD_INTERVAL_S
    keep_s: float = KEEP_S
    forget_after_s: float = FORGET_AFTER_S
    cell_deg: float = CELL_DEG
    # The radius the engine fans heard records out over (``heard_cells(radius_m=...)``).
    fanout_m: float = RADIUS_M

    def __post_init__(self) -> None:
        if not (math.isfinite(self.dark_after_s) and self.dark_after_s > 0):
            raise ValueError(f"dark_after_s must be positive, got {self.dark_after_s}")
        if not (math.isfinite(self.radius_m) and 0 < self.radius_m):
            raise ValueError(f"radius_m must be positive, got {self.radius_m}")
        if self.radius_m > self.fanout_m:
            # Evidence can only come from heard records fanned out to the candidate's cell.
            raise ValueError(f"radius_m {self.radius_m} exceeds the fan-out radius {self.fanout_m}")
        if self.min_neighbours < 1:
            raise ValueError("min_neighbours must be >= 1 (0 would call every silence 'went dark')")
        if not (math.isfinite(self.heard_interval_s) and 0 < self.heard_interval_s <= self.dark_after_s):
            raise ValueError("heard_interval_s must be positive and at most dark_after_s")
        if not (self.keep_s >= self.dark_after_s):
            raise ValueError("keep_s must be >= dark_after_s (the evidence window must still be in the table)")
        if not (self.forget_after_s >= self.keep_s):
            raise ValueError("forget_after_s must be >= keep_s")
        if not (math.isfinite(self.cell_deg) and 0 < self.cell_deg <= 90 and (360.0 / self.cell_deg).is_integer()):
            raise ValueError(f"cell_deg must divide 360, got {self.cell_deg}")


@dataclass(slots=True)
class _Case:
    """A candidate and what became of it."""

    cand: DarkCandidate
    decision: str = PENDING
    went_dark: dict[str, Any] | None = None  # the went_dark document, kept for the reappeared one
    closed: bool = False  # reappeared document emitted (or nothing to emit)


@dataclass(slots=True)
class _Cell:
    heard: dict[tuple[str, float], tuple[float, float]] = field(default_factory=dict)
    cases: dict[tuple[str, float], _Case] = field(default_factory=dict)
    reapp: dict[tuple[str, float], Reappearance] = field(default_factory=dict)

    def empty(self) -> bool:
        return not (self.heard or self.cases or self.reapp)


def dark_alert_id(icao24: str, t_last: float) -> str:
    """Stable id of one silence: same candidate, same id, across replays, workers and restarts."""
    return hashlib.sha1(f"dark|{icao24}|{t_last:.3f}".encode(), usedforsecurity=False).hexdigest()[:20]


def evidence_text(n: int, radius_m: float, window_s: float) -> str:
    """ "3 other aircraft heard within 50 km in the last 5 min" """
    km = radius_m / 1000.0
    mins = window_s / 60.0
    km_s = f"{km:.0f}" if km >= 10 or km.is_integer() else f"{km:.1f}"
    min_s = f"{mins:.0f}" if mins.is_integer() else f"{mins:.1f}"
    return f"{n} other aircraft heard within {km_s} km in the last {min_s} min"


def _who(c: DarkCandidate) -> str:
    cls = c.classification or {}
    cat = cls.get("category")
    parts: list[str] = []
    if cls.get("type_description") and cat in ("military", "surveillance", "government"):
        parts.append(str(cls["type_description"]))
    elif cat in ("military", "surveillance"):
        parts.append(str(cat).capitalize() + " aircraft")
    parts.append(c.icao24.upper())
    if c.callsign:
        parts.append(f"({c.callsign})")
    return " ".join(parts)


def _minutes(s: float) -> str:
    m = s / 60.0
    return f"{m:.0f} min" if m >= 10 else f"{m:.1f} min".replace(".0 min", " min")


class CoverageStage:
    """The keyed coverage stage: heard table, candidates and reappearances per cell.

    ``score(lat, lon) -> (inside Mexico's sovereign airspace, signed distance to its boundary
    in m)`` rates the dead-reckoned position; ``describe(lat, lon)`` names a place ("83 km SW of
    Cabo San Lucas"). Without them those fields are null and severity is judged from the last
    position's distance.
    """

    def __init__(
        self,
        config: CoverageConfig | None = None,
        score: Callable[[float, float], tuple[bool, float]] | None = None,
        describe: Callable[[float, float], str | None] | None = None,
    ) -> None:
        self.config = config or CoverageConfig()
        self.score = score
        self.describe = describe
        self._cells: dict[str, _Cell] = {}
        self._touched: set[str] = set()
        self._pruned_at = -math.inf
        self.counters: Counter[str] = Counter()

    # ------------------------------------------------------------------ input
    def _cell(self, cell: str) -> _Cell:
        c = self._cells.get(cell)
        if c is None:
            c = self._cells[cell] = _Cell()
        return c

    def heard(self, cell: str, h: Heard) -> None:
        """Record that ``h.icao24`` was heard; a re-delivered record changes nothing."""
        key = (h.icao24, h.t)
        st = self._cell(cell)
        pos = (h.lat, h.lon)
        old = st.heard.get(key)
        # Two different records for the same (aircraft, time) cannot both be right; keeping the
        # smaller makes the table independent of their order.
        if old is None or pos < old:
            st.heard[key] = pos
            self._touched.add(cell)

    def heard_items(self, cell: str, items: list[Any]) -> None:
        """Many heard records of one cell, each ``[icao24, t, lat, lon]`` (or a Heard object as
        a dict). Every item is checked before any is applied: a bad one refuses the whole record
        (it goes to the dead letters with its reason), never half of it."""
        ok: list[tuple[str, float, float, float]] = []
        for item in items:
            if isinstance(item, list):
                if len(item) != 4:
                    raise ValueError(f"heard item must be [icao24, t, lat, lon], got {len(item)} fields")
                icao, t, lat, lon = item
                for v in (t, lat, lon):
                    if isinstance(v, bool) or not isinstance(v, int | float):
                        raise ValueError(f"heard item {item!r:.80}: t, lat, lon must be numbers")
                t, lat, lon = float(t), float(lat), float(lon)
                if not math.isfinite(t):
                    raise ValueError(f"heard item t {t!r} is not finite")
                _check_lat_lon(lat, lon)
                ok.append((_icao(icao), t, lat, lon))
            else:
                h = Heard.from_dict(item)
                ok.append((h.icao24, h.t, h.lat, h.lon))
        st = self._cell(cell)
        for icao, t, lat, lon in ok:
            key = (icao, t)
            pos = (lat, lon)
            old = st.heard.get(key)
            if old is None or pos < old:  # the same rule as heard()
                st.heard[key] = pos
                self._touched.add(cell)

    def candidate(self, cell: str, c: DarkCandidate) -> None:
        """A gone-dark candidate routed to ``cell`` (that of its last position); idempotent."""
        own = cell_of(c.lat, c.lon, self.config.cell_deg)
        if own != cell:
            raise ValueError(f"candidate {c.icao24}@{c.t_last} is in cell {own}, not {cell}")
        st = self._cell(cell)
        case = st.cases.get(c.key)
        if case is None:
            st.cases[c.key] = _Case(c)
            self._touched.add(cell)
        elif case.decision == PENDING and _canon(c) < _canon(case.cand):
            # Same silence reported twice with different details: keep one canonical copy.
            case.cand = c
            self._touched.add(cell)

    def reappeared(self, cell: str, r: Reappearance) -> None:
        """The end of a silence; kept until its candidate is decided (it may come first)."""
        st = self._cell(cell)
        old = st.reapp.get(r.key)
        if old is None or (r.t, r.lat, r.lon) < (old.t, old.lat, old.lon):
            st.reapp[r.key] = r
            self._touched.add(cell)

    # ------------------------------------------------------------------ decisions
    def advance(self, watermark: float) -> list[dict[str, Any]]:
        """Decide every candidate whose evaluation time the watermark reached; emit alerts.

        Returns ``dark.v1`` documents sorted by (event_time, alert_id, seq).
        """
        cfg = self.config
        out: list[dict[str, Any]] = []
        for name in sorted(self._cells):
            st = self._cells[name]
            for key in sorted(st.cases):
                case = st.cases[key]
                c = case.cand
                t_eval = c.t_last + cfg.dark_after_s
                r = st.reapp.get(key)
                if case.decision == PENDING and t_eval <= watermark:
                    self._decide(st, case, r, t_eval)
                    self._touched.add(name)
                    if case.went_dark is not None:
                        out.append(case.went_dark)
                if case.decision != PENDING and not case.closed and r is not None and r.t <= watermark:
                    case.closed = True
                    self._touched.add(name)
                    if case.went_dark is not None:
                        out.append(self._reappeared_doc(case, r))
                        self.counters["coverage.reappeared"] += 1
        self._prune(watermark)
        out.sort(key=lambda d: (d["event_time"], d["alert_id"], d["seq"]))
        return out

    def finish(self) -> list[dict[str, Any]]:
        """End of input: decide and close everything that can be."""
        return self.advance(math.inf)

    def decision(self, icao24: str, t_last: float) -> str | None:
        """What became of a candidate: pending, went_dark, out_of_coverage, not_silent; None if unknown."""
        for st in self._cells.values():
            case = st.cases.get((icao24, t_last))
            if case is not None:
                return case.decision
        return None

    def take_touched(self) -> list[str]:
        """Cells whose state changed (records, decisions, pruning) since the last call, sorted."""
        out = sorted(self._touched)
        self._touched.clear()
        return out

    def _neighbours(self, st: _Cell, c: DarkCandidate, t_eval: float) -> list[str]:
        keys = [k for k in st.heard if k[0] != c.icao24 and c.t_last < k[1] <= t_eval]
        if not keys:
            return []
        pos = np.array([st.heard[k] for k in keys], dtype=np.float64)
        d = haversine_m(c.lat, c.lon, pos[:, 0], pos[:, 1])
        return sorted({k[0] for k, di in zip(keys, d.tolist(), strict=True) if di <= self.config.radius_m})

    def _decide(self, st: _Cell, case: _Case, r: Reappearance | None, t_eval: float) -> None:
        cfg = self.config
        c = case.cand
        if r is not None and r.t < t_eval:
            case.decision = NOT_SILENT
            self.counters["coverage.not_silent"] += 1
            return
        icaos = self._neighbours(st, c, t_eval)
        if len(icaos) < cfg.min_neighbours:
            case.decision = OUT_OF_COVERAGE
            self.counters["coverage.out_of_coverage"] += 1
            return
        case.decision = WENT_DARK
        case.went_dark = self._went_dark_doc(c, t_eval, icaos)
        self.counters["coverage.went_dark"] += 1

    # ------------------------------------------------------------------ documents
    def _dead_reckoned(self, c: DarkCandidate, t: float) -> dict[str, Any]:
        if c.gs_kt is None or c.trk_deg is None:
            return {"lat": None, "lon": None, "inside": None, "distance_to_boundary_m": None}
        lat, lon = destination(c.lat, c.lon, c.trk_deg, c.gs_kt * KT_MS * (t - c.t_last))
        inside: bool | None = None
        dist: float | None = None
        if self.score is not None:
            ins, d = self.score(lat, lon)
            inside, dist = bool(ins), opt(float(d))
        return {"lat": lat, "lon": lon, "inside": inside, "distance_to_boundary_m": dist}

    def _severity(self, c: DarkCandidate, dr: dict[str, Any]) -> str:
        inside = dr["inside"]
        if inside is None:  # no motion or no geofence: judge from where it was last seen
            inside = c.distance_to_boundary_m is not None and c.distance_to_boundary_m < 0
        return "high" if inside else "medium"

    def _base(self, c: DarkCandidate, seq: int, transition: str, t: float) -> dict[str, Any]:
        aid = dark_alert_id(c.icao24, c.t_last)
        return {
            "schema": DARK_SCHEMA,
            "alert_id": aid,
            "event_id": f"{aid}:{seq}",
            "seq": seq,
            "icao24": c.icao24,
            "callsign": c.callsign,
            "transition": transition,
            "status": "open" if seq == 0 else "closed",
            "zone": DARK_ZONE,
            "event_time": t,
            "event_time_iso": iso(t),
            "classification": c.classification,
            "last_seen": {
                "event_time": c.t_last, "lat": c.lat, "lon": c.lon, "alt_ft": c.alt_ft,
                "ground_speed_kt": c.gs_kt, "track_deg": c.trk_deg,
                "distance_to_boundary_m": c.distance_to_boundary_m, "predicted_entry_s": c.predicted_entry_s,
            },
        }

    def _went_dark_doc(self, c: DarkCandidate, t_eval: float, icaos: list[str]) -> dict[str, Any]:
        cfg = self.config
        dr = self._dead_reckoned(c, t_eval)
        where = self.describe(c.lat, c.lon) if self.describe is not None else None
        ev = evidence_text(len(icaos), cfg.radius_m, cfg.dark_after_s)
        if c.distance_to_boundary_m is None:
            line = ""
        elif c.distance_to_boundary_m < 0:
            line = f", {abs(c.distance_to_boundary_m) / 1000:.0f} km inside Mexican airspace"
        else:
            line = f", {c.distance_to_boundary_m / 1000:.0f} km from Mexican airspace"
        now = ""
        if dr["inside"] is not None:
            now = "; holding course it would now be " + ("inside" if dr["inside"] else "outside")
        headline = (f"{_who(c)} went dark {where or f'at {c.lat:.3f}, {c.lon:.3f}'}{line}: silent "
                    f"{_minutes(cfg.dark_after_s)} while {ev}{now}")
        doc = self._base(c, 0, WENT_DARK, t_eval)
        doc.update({
            "silence_s": cfg.dark_after_s,
            "dead_reckoned": dr,
            "coverage": {"aircraft_heard": len(icaos), "radius_m": cfg.radius_m, "window_s": cfg.dark_after_s,
                         "icao24s": icaos},
            "evidence": ev,
            "reappeared": None,
            "severity": self._severity(c, dr),
            "description": where,
            "headline": headline,
        })
        return doc

    def _reappeared_doc(self, case: _Case, r: Reappearance) -> dict[str, Any]:
        c = case.cand
        dark = case.went_dark
        assert dark is not None
        gap = r.t - c.t_last
        moved = float(haversine_m(c.lat, c.lon, r.lat, r.lon))
        where = self.describe(r.lat, r.lon) if self.describe is not None else None
        headline = (f"{_who(c)} reappeared {where or f'at {r.lat:.3f}, {r.lon:.3f}'} after {_minutes(gap)} "
                    f"dark, {moved / 1000:.0f} km from where it went silent")
        doc = self._base(c, 1, "reappeared", r.t)
        doc.update({
            "silence_s": gap,
            "dead_reckoned": self._dead_reckoned(c, r.t),
            "coverage": dark["coverage"],
            "evidence": dark["evidence"],
            "reappeared": {"event_time": r.t, "lat": r.lat, "lon": r.lon, "gap_s": gap, "moved_m": moved},
            # The episode keeps the severity it opened with, so closing it never escalates it.
            "severity": dark["severity"],
            "description": where,
            "headline": headline,
        })
        return doc

    # ------------------------------------------------------------------ pruning and state
    def _prune(self, watermark: float) -> None:
        cfg = self.config
        # Pruning never changes a decision (keep_s covers the window), so doing it at most once
        # per heard interval of event time only bounds the work.
        # The end of input (an infinite watermark) keeps everything: decisions stay queryable and
        # a re-delivered record still finds its case.
        if not math.isfinite(watermark) or watermark < self._pruned_at + cfg.heard_interval_s:
            return
        self._pruned_at = watermark
        cut_heard = watermark - cfg.keep_s
        cut_case = watermark - cfg.forget_after_s
        for name in list(self._cells):
            st = self._cells[name]
            n0 = (len(st.heard), len(st.cases), len(st.reapp))
            # A pending candidate's window is kept whatever its age, so a late one is still
            # decided on the same evidence.
            pend = [k[1] for k, case in st.cases.items() if case.decision == PENDING]
            floor_t = min([cut_heard, *pend])
            st.heard = {k: v for k, v in st.heard.items() if k[1] >= floor_t}
            st.cases = {k: v for k, v in st.cases.items() if v.decision == PENDING or k[1] >= cut_case}
            st.reapp = {k: v for k, v in st.reapp.items() if k in st.cases or k[1] >= cut_case}
            if (len(st.heard), len(st.cases), len(st.reapp)) != n0:
                self._touched.add(name)
            if st.empty():
                del self._cells[name]

    def cells(self) -> list[str]:
        return sorted(self._cells)

    def export_state(self, cell: str) -> bytes | None:
        """The cell's state as bytes (None when it holds nothing: delete the table key)."""
        st = self._cells.get(cell)
        if st is None or st.empty():
            return None
        doc = {
            "v": STATE_VERSION,
            "heard": [[k[0], k[1], v[0], v[1]] for k, v in sorted(st.heard.items())],
            "cases": [{"cand": case.cand.to_dict(), "decision": case.decision, "went_dark": case.went_dark,
                       "closed": case.closed} for _k, case in sorted(st.cases.items())],
            "reapp": [r.to_dict() for _k, r in sorted(st.reapp.items())],
        }
        return orjson.dumps(doc)

    def import_state(self, cell: str, data: bytes | None) -> None:
        """Replace the cell's state with exported bytes (ValueError if they are not ours)."""
        if not data:
            self._cells.pop(cell, None)
            return
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"coverage state of {cell}: {exc}") from None
        if not isinstance(doc, dict) or doc.get("v") != STATE_VERSION:
            raise ValueError(f"coverage state of {cell}: not version {STATE_VERSION}")
        st = _Cell()
        try:
            for icao, t, lat, lon in doc["heard"]:
                h = Heard(_icao(icao), float(t), float(lat), float(lon))
                st.heard[(h.icao24, h.t)] = (h.lat, h.lon)
            for e in doc["cases"]:
                c = DarkCandidate.from_dict(e["cand"])
                decision = e["decision"]
                if decision not in (PENDING, WENT_DARK, OUT_OF_COVERAGE, NOT_SILENT):
                    raise ValueError(f"unknown decision {decision!r}")
                st.cases[c.key] = _Case(c, decision, e.get("went_dark"), bool(e.get("closed")))
            for e in doc["reapp"]:
                r = Reappearance.from_dict(e)
                st.reapp[r.key] = r
        except (KeyError, TypeError) as exc:
            raise ValueError(f"coverage state of {cell}: {exc!r}") from None
        if st.empty():
            self._cells.pop(cell, None)
        else:
            self._cells[cell] = st


def _canon(c: DarkCandidate) -> bytes:
    return orjson.dumps(c.to_dict(), option=orjson.OPT_SORT_KEYS)
