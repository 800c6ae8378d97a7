"""Our own wire format for positions on Kafka: ``position-batch.v1`` documents.

This module owns encoding positions into batch records and decoding them back with
the same gates the parsers apply (``streams.sources.validate``), because the
positions topic may also be written by programs other than ``skyfence ingest``:
a bad item becomes a dead letter, the good items around it go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import orjson

from streams.records import DeadLetter, Position

POSITION_BATCH_SCHEMA = "position-batch.v1"
BATCH_FORMAT = "position-batch"


def encode_position_batch(positions: Sequence[Position]) -> bytes:
    return orjson.dumps({"schema": POSITION_BATCH_SCHEMA, "positions": [p.to_dict() for p in positions]})


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
