"""Our own wire format for positions on Kafka: ``position-batch.v1`` documents.

This module owns encoding positions into batch records and decoding them back with
the same gates the parsers apply (``streams.sources.validate``), because the
positions topic may also be written by programs other than ``skyfence ingest``:
a bad item becomes a dead letter, the good items around it go on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, cast

import orjson

from streams.records import DeadLetter, Position

POSITION_BATCH_SCHEMA = "position-batch.v1"
BATCH_FORMAT = "position-batch"


def encode_position_batch(positions: Sequence[Position]) -> bytes:
    return orjson.dumps({"schema": POSITION_BATCH_SCHEMA, "positions": [p.to_dict() for p in positions]})


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
    from streams.sources.validate import (
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
            and (og is None or type(og) is bool) and src in _SOURCES
            and (rx is None or type(rx) is str) and type(fmt) is str and fmt):
        return None
    return Position(icao, float(t), float(lat), float(lon), fmt,  # type: ignore[arg-type]  # checked by _num
                    None if ab is None else float(ab), None if ag is None else float(ag),
                    None if gs is None else float(gs), None if trk is None else float(trk),
                    None if vr is None else float(vr), cs, sq, og, src, rx)


def position_from_doc(item: Any, now: float) -> Position:
    """A position.v1 object through every gate; raises ``Invalid`` with a reason."""
    from streams.sources.validate import Invalid, Reason, make_position, normalise_icao24

    if not isinstance(item, dict):
        raise Invalid(Reason.WRONG_TYPE, f"position is {type(item).__name__}, not an object")
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
            receiver=item.get("receiver"),
        )
    except Invalid:
        raise
    except (TypeError, ValueError) as exc:
        raise Invalid(Reason.WRONG_TYPE, str(exc)[:200]) from None


def decode_position_batch(value: bytes, now: float, source: str = "") -> tuple[list[Position], list[DeadLetter]]:
    """Positions of one batch record; refused items and undecodable records become dead letters."""
    from streams.sources.validate import Invalid

    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return [], [DeadLetter("bad_json", BATCH_FORMAT, value[:65536], source, str(exc))]
    if not isinstance(doc, dict) or not isinstance(doc.get("positions"), list):
        return [], [DeadLetter("wrong_type", BATCH_FORMAT, value[:65536], source, "not a position-batch.v1 document")]
    positions: list[Position] = []
    dead: list[DeadLetter] = []
    for item in doc["positions"]:
        fast = fast_position(item, now)
        if fast is not None:
            positions.append(fast)
            continue
        try:
            positions.append(position_from_doc(item, now))
        except Invalid as exc:
            dead.append(DeadLetter(exc.reason.value, BATCH_FORMAT, orjson.dumps(item), source, exc.detail))
    return positions, dead


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
