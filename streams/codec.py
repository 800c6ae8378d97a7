"""Our own wire format for positions on Kafka: ``position-batch`` documents.

This module owns encoding positions into batch records and decoding them back with
the same gates the parsers apply (``streams.parsers.validate``), because the
positions topic may also be written by programs other than ``skyfence ingest``:
a bad item becomes a dead letter, the good items around it go on.

Three versions are read. ``position-batch.v3`` (what skyfence writes) is the line
``position-batch.v3``, a JSON header holding the string and flag columns, a newline, then the
eight numeric columns as raw little-endian float64 (NaN for null). The worker takes the
numbers with one ``np.frombuffer`` instead of parsing about eight JSON numbers a position into
Python floats, checking their types and converting them back to an array: a world feed's
records decode in 0.58-0.65 of v2's time (``bench/bench_parsers.py``, two runs).
``position-batch.v2`` holds one JSON array per field (a whole column validated with a few
numpy operations, no Python object per position); ``position-batch.v1`` (a list of
``position.v1`` objects; ~6 µs a position) stays accepted for other producers and older
recordings.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import orjson

from streams.columns import PositionColumns, objects
from streams.messages import DeadLetter, Position

POSITION_BATCH_V1 = "position-batch.v1"
POSITION_BATCH_V2 = "position-batch.v2"
# A v3 record's first line: bytes no JSON document starts with, so v1/v2 stay told apart.
POSITION_BATCH_MAGIC = b"position-batch.v3\n"
BATCH_FORMAT = "position-batch"


def right_sized(data: bytes) -> bytes:
    """A copy of ``data`` in an allocation of its own length.

    orjson (3.12 on) returns its output in a buffer rounded up to a power of two of at least
    4 KiB and never shrinks it: a 1.2 KB track record keeps 8 KiB alive. Anything held by the
    thousand, such as a burst's track records waiting for the producer, is copied first.
    """
    return bytes(memoryview(data))


def encode_position_batch(positions: Sequence[Position]) -> bytes:
    """A ``position-batch.v3`` record: header line (strings and flags), then the numbers raw."""
    head = {"n": len(positions), **_field_columns(positions, [f for f in _V2_FIELDS if f not in _NUMERIC])}
    # None -> NaN in the float64 conversion
    values = np.array([[getattr(p, name) for p in positions] for name in _NUMERIC], dtype=np.float64)
    return v3_record(head, values)


def v3_record(head: dict[str, Any], values: npt.NDArray[np.float64]) -> bytes:
    """The bytes of a v3 record from its header and its (8, n) numeric columns."""
    return b"".join((POSITION_BATCH_MAGIC, orjson.dumps(head), b"\n", values.astype("<f8", copy=False).tobytes()))


def encode_position_batch_v2(positions: Sequence[Position]) -> bytes:
    """The all-JSON ``position-batch.v2`` record (columns; a field that is the same for all is one value)."""
    return orjson.dumps({"schema": POSITION_BATCH_V2, **_field_columns(positions, _V2_FIELDS)})


def _field_columns(positions: Sequence[Position], names: Sequence[str]) -> dict[str, Any]:
    """Each named field as a list, or as one value when every position has the same (never
    for the per-position fields of ``_PER_ROW``)."""
    out: dict[str, Any] = {}
    for name in names:
        col = [getattr(p, name) for p in positions]
        first = col[0] if col else None
        out[name] = first if name not in _PER_ROW and col.count(first) == len(col) else col
    return out


def encode_position_batch_v1(positions: Sequence[Position]) -> bytes:
    """The row-oriented v1 record (other producers' format; kept for tests and tools)."""
    return orjson.dumps({"schema": POSITION_BATCH_V1, "positions": [p.to_dict() for p in positions]})


_ICAO = re.compile(r"~?[0-9a-f]{6}")
_CALLSIGN = re.compile(r"[A-Z0-9\-]([A-Z0-9 \-]{0,6}[A-Z0-9\-])?")
_SQUAWK = re.compile(r"[0-7]{4}")
_SOURCES = frozenset({"adsb", "mlat", "tisb", "other"})


def _num(v: Any, lo: float, hi: float) -> bool:
    """A finite int/float (not bool) within [lo, hi]; NaN and ±inf fail the comparison."""
    t = type(v)
    return (t is float or t is int) and lo <= v <= hi


def _opt(v: Any, lo: float, hi: float) -> bool:
    return v is None or _num(v, lo, hi)


def fast_position(item: Any, now: float) -> Position | None:
    """The canonical documents our own producers write, accepted without the general gates.

    Returns None for anything not in canonical form (then ``position_from_doc`` decides,
    with a precise reason). Every check here is at least as strict as the gate it skips,
    so the fast path never accepts what the gates would refuse: this path exists because
    the worker must validate 100k positions/s and the general gates cost ~8 µs each.
    """
    from streams.parsers.validate import (
        EARLIEST_EVENT_TIME,
        MAX_ABS_VRATE_FPM,
        MAX_ALT_FT,
        MAX_FUTURE_S,
        MAX_GROUND_SPEED_KT,
        MIN_ALT_FT,
    )

    if type(item) is not dict:
        return None
    g = item.get
    icao, t, lat, lon = g("icao24"), g("event_time"), g("lat"), g("lon")
    if not (type(icao) is str and _ICAO.fullmatch(icao) and icao[-6:] not in ("000000", "ffffff")):
        return None
    if not (_num(t, EARLIEST_EVENT_TIME, now + MAX_FUTURE_S) and _num(lat, -90.0, 90.0)
            and _num(lon, -180.0, 180.0)):
        return None
    ab, ag, gs, trk, vr = g("alt_baro_ft"), g("alt_geom_ft"), g("ground_speed_kt"), g("track_deg"), g(
        "vertical_rate_fpm")
    if not (_opt(ab, MIN_ALT_FT, MAX_ALT_FT) and _opt(ag, MIN_ALT_FT, MAX_ALT_FT)
            and _opt(gs, 0.0, MAX_GROUND_SPEED_KT) and _opt(vr, -MAX_ABS_VRATE_FPM, MAX_ABS_VRATE_FPM)
            and (trk is None or (_num(trk, 0.0, 360.0) and trk != 360))):
        return None
    cs, sq, og, src, rx, fmt = g("callsign"), g("squawk"), g("on_ground"), g("source"), g("receiver"), g(
        "input_format")
    if not ((cs is None or (type(cs) is str and _CALLSIGN.fullmatch(cs)))
            and (sq is None or (type(sq) is str and _SQUAWK.fullmatch(sq)))
            and (og is None or type(og) is bool) and type(src) is str and src in _SOURCES
            and (rx is None or type(rx) is str) and type(fmt) is str and fmt):
        return None
    return Position(icao, float(t), float(lat), float(lon), fmt,  # type: ignore[arg-type]  # checked by _num
                    None if ab is None else float(ab), None if ag is None else float(ag),
                    None if gs is None else float(gs), None if trk is None else float(trk),
                    None if vr is None else float(vr), cs, sq, og, src, rx)


def position_from_doc(item: Any, now: float) -> Position:
    """A position.v1 object through every gate; raises ``Invalid`` with a reason."""
    from streams.parsers.validate import Invalid, Reason, make_position, normalise_icao24

    if not isinstance(item, dict):
        raise Invalid(Reason.WRONG_TYPE, f"position is {type(item).__name__}, not an object")
    receiver = item.get("receiver")
    if receiver is not None and not isinstance(receiver, str):
        raise Invalid(Reason.WRONG_TYPE, f"receiver is {type(receiver).__name__}")
    try:
        return make_position(
            icao24=normalise_icao24(item.get("icao24")),
            event_time=cast(float, item.get("event_time")),  # make_position's gate checks the type
            lat=item.get("lat"),
            lon=item.get("lon"),
            input_format=str(item.get("input_format") or BATCH_FORMAT),
            now=now,
            alt_baro_ft=item.get("alt_baro_ft"),
            alt_geom_ft=item.get("alt_geom_ft"),
            ground_speed_kt=item.get("ground_speed_kt"),
            track_deg=item.get("track_deg"),
            vertical_rate_fpm=item.get("vertical_rate_fpm"),
            callsign=item.get("callsign"),
            squawk=item.get("squawk"),
            on_ground=item.get("on_ground"),
            source=str(item.get("source") or "other"),
            receiver=receiver,
        )
    except Invalid:
        raise
    except (TypeError, ValueError) as exc:
        raise Invalid(Reason.WRONG_TYPE, str(exc)[:200]) from None


def decode_position_batch(value: bytes, now: float, source: str = "") -> tuple[PositionColumns, list[DeadLetter]]:
    """Positions of one batch record (v3, v2 or v1); refused items and undecodable records become dead letters."""
    if value.startswith(POSITION_BATCH_MAGIC):
        try:
            return _decode_v3(value, now, source)
        except orjson.JSONDecodeError as exc:
            return PositionColumns.empty(), [DeadLetter("bad_json", BATCH_FORMAT, value[:65536], source,
                                                        f"position-batch.v3 header: {exc}")]
        except _BadRecord as exc:
            return PositionColumns.empty(), [DeadLetter("wrong_type", BATCH_FORMAT, value[:65536], source, str(exc))]
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return PositionColumns.empty(), [DeadLetter("bad_json", BATCH_FORMAT, value[:65536], source, str(exc))]
    schema = doc.get("schema") if isinstance(doc, dict) else None
    if schema == POSITION_BATCH_V2:
        try:
            return _decode_v2(doc, now, source)
        except _BadRecord as exc:
            return PositionColumns.empty(), [DeadLetter("wrong_type", BATCH_FORMAT, value[:65536], source, str(exc))]
    if not isinstance(doc, dict) or not isinstance(doc.get("positions"), list):
        return PositionColumns.empty(), [DeadLetter("wrong_type", BATCH_FORMAT, value[:65536], source,
                                                    "not a position-batch.v3, v2 or v1 record")]
    positions, dead = _decode_items(doc["positions"], now, source)
    return PositionColumns.from_positions(positions), dead


def _decode_items(items: Sequence[Any], now: float, source: str) -> tuple[list[Position], list[DeadLetter]]:
    """position.v1 objects: the canonical fast path, else every gate (a refusal is a dead letter)."""
    from streams.parsers.validate import Invalid

    positions: list[Position] = []
    dead: list[DeadLetter] = []
    for item in items:
        fast = fast_position(item, now)
        if fast is not None:
            positions.append(fast)
            continue
        try:
            positions.append(position_from_doc(item, now))
        except Invalid as exc:
            dead.append(DeadLetter(exc.reason.value, BATCH_FORMAT, orjson.dumps(item), source, exc.detail))
    return positions, dead


# --- position-batch.v2 -------------------------------------------------------------------

# Fields in the order a v2 document lists them. icao24, event_time, lat and lon are always
# arrays; any other field may be one value standing for every position, or absent (null,
# or the v1 defaults for source and input_format).
_V2_FIELDS = ("icao24", "event_time", "lat", "lon", "alt_baro_ft", "alt_geom_ft", "ground_speed_kt", "track_deg",
              "vertical_rate_fpm", "callsign", "squawk", "on_ground", "source", "receiver", "input_format")
_PER_ROW = frozenset({"icao24", "event_time", "lat", "lon"})
_DEFAULTS: dict[str, Any] = {"source": "other", "input_format": BATCH_FORMAT}
_NUMBER = frozenset({float, int})
_NUMBER_OR_NULL = frozenset({float, int, type(None)})


class _BadRecord(Exception):
    """The record's shape is wrong (not one bad item): the whole record is a dead letter."""


@functools.cache
def _bounds() -> dict[str, tuple[float, float, bool]]:
    """(low, high, nullable) of each numeric field: the same limits as the gates."""
    from streams.parsers import validate as v

    return {
        "lat": (-90.0, 90.0, False),
        "lon": (-180.0, 180.0, False),
        "alt_baro_ft": (v.MIN_ALT_FT, v.MAX_ALT_FT, True),
        "alt_geom_ft": (v.MIN_ALT_FT, v.MAX_ALT_FT, True),
        "ground_speed_kt": (0.0, v.MAX_GROUND_SPEED_KT, True),
        "track_deg": (0.0, 360.0, True),
        "vertical_rate_fpm": (-v.MAX_ABS_VRATE_FPM, v.MAX_ABS_VRATE_FPM, True),
    }


_NUMERIC = ("event_time", "lat", "lon", "alt_baro_ft", "alt_geom_ft", "ground_speed_kt", "track_deg",
            "vertical_rate_fpm")
_TRACK_ROW = _NUMERIC.index("track_deg")


def _numeric_bounds() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """(low, high, nullable) per row of ``_NUMERIC``, as fresh arrays; event time's high
    bound (now + the future tolerance) is the caller's to fill in."""
    from streams.parsers.validate import EARLIEST_EVENT_TIME

    b = _bounds()
    lo = np.array([EARLIEST_EVENT_TIME, *(b[n][0] for n in _NUMERIC[1:])])
    hi = np.array([np.inf, *(b[n][1] for n in _NUMERIC[1:])])
    return lo, hi, np.array([False, *(b[n][2] for n in _NUMERIC[1:])])


def _column(doc: dict[str, Any], name: str, n: int, version: str) -> Any:
    col = doc.get(name, _DEFAULTS.get(name))
    if isinstance(col, list):
        if len(col) != n:
            raise _BadRecord(f"{version}: {name} has {len(col)} values for {n} positions")
    elif name in _PER_ROW:
        raise _BadRecord(f"{version}: {name} is not an array")
    return col


def _numbers(col: Any, n: int, nullable: bool) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """(values with NaN for null, ok) of a numeric column; a wrong type is not ok."""
    allowed = _NUMBER_OR_NULL if nullable else _NUMBER
    if not isinstance(col, list):  # one value for every position
        ok = type(col) in allowed
        return np.full(n, float(col) if ok and col is not None else np.nan), np.full(n, ok)
    if set(map(type, col)) <= allowed:
        return np.array(col, dtype=np.float64), np.ones(n, dtype=np.bool_)
    good = [type(x) in allowed for x in col]
    return (np.array([x if g else None for x, g in zip(col, good, strict=True)], dtype=np.float64),
            np.array(good, dtype=np.bool_))


# Values each string column has already passed, so a check runs once per aircraft (or
# callsign, receiver, ...) rather than once per record: a live feed's records hold ~50
# aircraft each, and the regex checks were a third of decoding them. 200,000: several times
# the aircraft airborne worldwide; when full, a column starts over (it only costs re-checks).
_KNOWN_GOOD_MAX = 200_000
# Per column, each value that passed -> the one object that stands for it from then on. The
# columns hold these, not the record's own strings: a string a column kept would keep the
# 1 MiB pymalloc arena it was parsed into, with the record's dead floats, alive until the
# batch is done (memray at the world catch-up's peak: 52 MB of arenas for one 50-record batch).
_known_good: dict[str, dict[Any, Any]] = {}


def _strings(col: Any, n: int, name: str) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.bool_]]:
    """(values, ok) of a string column; its check runs once per value never seen passing."""
    check = _string_checks()[name]
    good = _known_good.setdefault(name, {})
    if not isinstance(col, list):  # one value standing for every position
        ok = _hashable(col) and bool(check(col))
        if ok:
            if len(good) >= _KNOWN_GOOD_MAX:
                good.clear()
            col = good.setdefault(col, col)
        arr = np.empty(n, dtype=object)
        arr[:] = [col] * n
        return arr, np.full(n, ok)
    try:
        # the usual case: every value known, swapped for its standing object in one pass
        return objects(list(map(good.__getitem__, col))), np.ones(n, dtype=np.bool_)
    except (KeyError, TypeError):
        pass
    try:
        # set.difference(dict) looks up the column's values; `set(col) - good.keys()` walked
        # every known value (up to 200,000) for each record holding one new aircraft.
        unknown = set(col).difference(good)
    except TypeError:  # an unhashable item (array or object): judged one by one
        each = [_hashable(x) and bool(check(x)) for x in col]
        return objects(col), np.array(each, dtype=np.bool_)
    bad = set()
    if len(good) + len(unknown) > _KNOWN_GOOD_MAX:
        good.clear()
    for x in unknown:
        if check(x):
            good[x] = x
        else:
            bad.add(x)
    if not bad:
        return objects([good[x] for x in col]), np.ones(n, dtype=np.bool_)
    return objects([good.get(x, x) for x in col]), np.fromiter((x not in bad for x in col), dtype=np.bool_, count=n)


@functools.cache
def _string_checks() -> dict[str, Any]:
    return {
        "icao24": lambda x: type(x) is str and _ICAO.fullmatch(x) and x[-6:] not in ("000000", "ffffff"),
        "callsign": lambda x: x is None or (type(x) is str and _CALLSIGN.fullmatch(x)),
        "squawk": lambda x: x is None or (type(x) is str and _SQUAWK.fullmatch(x)),
        "source": lambda x: x in _SOURCES,
        "receiver": lambda x: x is None or type(x) is str,
        "input_format": lambda x: type(x) is str and bool(x),
    }


def _hashable(x: Any) -> bool:
    return isinstance(x, str | int | float | bool | type(None))


def _decode_v2(doc: dict[str, Any], now: float, source: str) -> tuple[PositionColumns, list[DeadLetter]]:
    icao = doc.get("icao24")
    if not isinstance(icao, list):
        raise _BadRecord("position-batch.v2: icao24 is not an array")
    n = len(icao)
    raw = {name: _column(doc, name, n, "position-batch.v2") for name in _V2_FIELDS}
    # The numeric columns as one (8, n) array, checked against their bounds at once: a live
    # feed's records hold ~50 positions, so per-column numpy calls were most of their cost.
    rows = [r for r, name in enumerate(_NUMERIC) if isinstance(raw[name], list)]
    lists = [raw[_NUMERIC[r]] for r in rows]
    scalars = [(r, raw[name]) for r, name in enumerate(_NUMERIC) if r not in rows]
    if set(map(type, itertools.chain.from_iterable(lists))) <= _NUMBER_OR_NULL and all(
            type(v) in _NUMBER_OR_NULL for _, v in scalars):
        values = np.empty((len(_NUMERIC), n))
        if rows:
            values[rows] = np.array(lists, dtype=np.float64)  # null -> NaN, refused below where not nullable
        for r, v in scalars:  # one value standing for every position
            values[r] = np.nan if v is None else float(v)
        typed = np.ones(n, dtype=np.bool_)
    else:  # a wrong type somewhere: column by column, to find which positions have it
        _, _, nullable = _numeric_bounds()
        pairs = [_numbers(raw[name], n, bool(nb)) for name, nb in zip(_NUMERIC, nullable.tolist(), strict=True)]
        values = np.stack([v for v, _ in pairs]) if n else np.empty((len(_NUMERIC), 0))
        typed = np.logical_and.reduce([g for _, g in pairs]) if n else np.ones(0, dtype=np.bool_)
    return _columns(raw, values, typed, now, source)


def _decode_v3(value: bytes, now: float, source: str) -> tuple[PositionColumns, list[DeadLetter]]:
    start = len(POSITION_BATCH_MAGIC)
    end = value.find(b"\n", start)  # orjson escapes newlines inside strings: the first one ends the header
    if end < 0:
        raise _BadRecord("position-batch.v3: no newline after the header")
    head = orjson.loads(memoryview(value)[start:end])
    if not isinstance(head, dict):
        raise _BadRecord("position-batch.v3: the header is not a JSON object")
    n = head.get("n")
    if type(n) is not int or n < 0:
        raise _BadRecord(f"position-batch.v3: n is {n!r}, not a count")
    size = len(value) - end - 1
    if size != 8 * len(_NUMERIC) * n:
        raise _BadRecord(f"position-batch.v3: {size} bytes of numbers for {n} positions, "
                         f"not {8 * len(_NUMERIC) * n} ({len(_NUMERIC)} float64 columns)")
    raw: dict[str, Any] = {name: _column(head, name, n, "position-batch.v3")
                           for name in _V2_FIELDS if name not in _NUMERIC}
    # A copy in native order: the columns then own aligned memory, not a view pinning the record.
    values = np.frombuffer(value, dtype="<f8", offset=end + 1).reshape(len(_NUMERIC), n).astype(np.float64)
    for row, name in enumerate(_NUMERIC):
        raw[name] = values[row]
    return _columns(raw, values, np.ones(n, dtype=np.bool_), now, source)


def _columns(raw: dict[str, Any], values: npt.NDArray[np.float64], typed: npt.NDArray[np.bool_], now: float,
             source: str) -> tuple[PositionColumns, list[DeadLetter]]:
    """The checked columns of a v2 or v3 record: ``values`` holds the numeric fields as rows
    (NaN for null), ``typed`` says which positions had numbers of the right type."""
    from streams.parsers.validate import MAX_FUTURE_S

    n = values.shape[1]
    lo, hi, nullable = _numeric_bounds()
    hi[0] = now + MAX_FUTURE_S
    cols: dict[str, Any] = {}
    inside = (values >= lo[:, None]) & (values <= hi[:, None])
    # [0, 360): the gate folds 360 to 0; the fast path leaves that to it
    inside[_TRACK_ROW] &= values[_TRACK_ROW] != 360.0
    ok = typed & (inside | (np.isnan(values) & nullable[:, None])).all(axis=0)
    for row, name in enumerate(_NUMERIC):
        cols[name] = values[row]
    og = raw["on_ground"]
    if og is None or type(og) is bool:
        cols["on_ground"] = np.full(n, -1 if og is None else int(og), dtype=np.int8)
    else:
        og_list = og if isinstance(og, list) else [og] * n
        if set(map(type, og_list)) <= {bool, type(None)}:
            cols["on_ground"] = np.array([-1 if x is None else int(x) for x in og_list], dtype=np.int8)
        else:
            ok &= np.array([x is None or type(x) is bool for x in og_list], dtype=np.bool_)
            cols["on_ground"] = np.array([int(x) if type(x) is bool else -1 for x in og_list], dtype=np.int8)
    for name in _string_checks():
        cols[name], good = _strings(raw[name], n, name)
        ok &= good
    batch = PositionColumns(**cols)
    if ok.all():
        return batch, []
    # Anything the column checks doubt goes through every gate, item by item, as v1 does:
    # the gates give the precise reason, and accept what the fast checks were too strict for.
    rescued: list[Position] = []
    rescued_at: list[int] = []
    dead: list[DeadLetter] = []
    for i in np.flatnonzero(~ok).tolist():
        item = {name: _item_value(raw[name], i) for name in _V2_FIELDS}
        got, bad = _decode_items([item], now, source)
        rescued.extend(got)
        rescued_at.extend([i] * len(got))
        dead.extend(bad)
    kept = PositionColumns.concat([batch.take(ok), PositionColumns.from_positions(rescued)])
    # Back into record order: among equal event times the engine keeps the first-arrived.
    order = np.argsort(np.concatenate((np.flatnonzero(ok), np.array(rescued_at, dtype=np.int64))), kind="stable")
    return kept.take(order), dead


def _item_value(col: Any, i: int) -> Any:
    """Position i's value of a raw column, as a v1 item would hold it (a v3 NaN is a null)."""
    if isinstance(col, np.ndarray):
        x = float(col[i])
        return None if math.isnan(x) else x
    return col[i] if isinstance(col, list) else col


def raw_record(chunk: bytes, *, fmt: str, receiver: str, source: str, received_at: float) -> bytes:
    """A raw.v1 document: input bytes exactly as received, base64 so any byte survives JSON."""
    import base64

    return orjson.dumps(
        {
            "schema": "raw.v1",
            "format": fmt,
            "receiver": receiver,
            "source": source,
            "received_at": received_at,
            "data_b64": base64.b64encode(chunk).decode("ascii"),
        }
    )
