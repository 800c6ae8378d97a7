"""Flight tables written by pandas ``to_json`` (the ``traffic`` library's samples).

This module owns the ``traffic-json`` format: a list of row objects
(``orient="records"``, as in traffic's ``samples/featured/*.json.gz``) or, as some
samples are stored, the default ``orient="columns"`` object of ``{column: {row: value}}``,
which is turned into rows first. Columns read (traffic's names): ``timestamp``
(epoch milliseconds as pandas writes them, or an ISO-8601 string), ``icao24``,
``latitude``, ``longitude``, ``altitude`` (barometric ft), ``geoaltitude`` (ft),
``groundspeed`` (kt), ``track``, ``vertical_rate`` (ft/min), ``callsign``, ``squawk``,
``onground``, ``position_source``/``source``. Other columns are ignored.

One document per ``flush``; each row is one message; rows without a position (traffic
tables hold velocity-only rows with null coordinates) are skipped (``no_position``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from streams.messages import ParseResult, Position
from streams.parsers.base import DocumentParser, dumps_entry
from streams.parsers.validate import Invalid, Reason, Skip, as_number, make_position, normalise_icao24

_SOURCES = {"adsb": "adsb", "mlat": "mlat", "tisb": "tisb"}


def _timestamp(v: Any) -> float:
    if isinstance(v, str):
        try:
            dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            raise Invalid(Reason.BAD_TIME, f"timestamp {v[:40]!r}") from None
        if dt.tzinfo is None:
            raise Invalid(Reason.BAD_TIME, f"timestamp {v[:40]!r} has no time zone")
        return dt.timestamp()
    ms = as_number(v, "timestamp")
    if ms is None:
        raise Invalid(Reason.MISSING_FIELD, "row without timestamp")
    return ms / 1000.0


def _columns_to_rows(obj: dict[str, Any]) -> list[Any]:
    cols = list(obj.values())
    if not all(isinstance(c, dict) for c in cols):
        raise Invalid(Reason.WRONG_TYPE, "object is neither rows nor {column: {row: value}}")
    keys: list[str] = []
    seen: set[str] = set()
    for c in cols:
        for k in c:
            if k not in seen:
                seen.add(k)
                keys.append(k)
    return [{name: col.get(k) for name, col in obj.items()} for k in keys]


def row_position(row: Any, *, input_format: str, clock: float, receiver: str | None) -> Position | Skip:
    if not isinstance(row, dict):
        raise Invalid(Reason.WRONG_TYPE, f"row is {type(row).__name__}")
    icao = normalise_icao24(row.get("icao24"))
    lat, lon = row.get("latitude"), row.get("longitude")
    if lat is None and lon is None:
        return Skip.NO_POSITION
    src = row.get("position_source", row.get("source"))
    return make_position(
        icao24=icao,
        event_time=_timestamp(row.get("timestamp")),
        lat=lat,
        lon=lon,
        input_format=input_format,
        now=clock,
        alt_baro_ft=row.get("altitude"),
        alt_geom_ft=row.get("geoaltitude"),
        ground_speed_kt=row.get("groundspeed"),
        track_deg=row.get("track"),
        vertical_rate_fpm=row.get("vertical_rate"),
        callsign=row.get("callsign"),
        squawk=_squawk(row.get("squawk")),
        on_ground=row.get("onground"),
        source=_SOURCES.get(src, "other") if isinstance(src, str) else "other",
        receiver=receiver,
    )


def _squawk(value: Any) -> Any:
    """traffic keeps squawk in an integer column when every value is numeric, and its JSON then
    writes 0255 as "255" (the vasaloppet sample: every row): 1-3 digits are that code with its
    leading zeros lost. Anything else goes to check_squawk as it is."""
    if isinstance(value, str) and 1 <= len(value) < 4 and value.isdigit():
        return value.zfill(4)
    return value


class TrafficJsonParser(DocumentParser):
    """pandas flight tables; one document per flush."""

    input_format = "traffic-json"

    def _parse_object(self, obj: object, raw: bytes, result: ParseResult) -> None:
        if isinstance(obj, dict):
            rows = _columns_to_rows(obj)
        elif isinstance(obj, list):
            rows = obj
        else:
            raise Invalid(Reason.WRONG_TYPE, f"document is a {type(obj).__name__}")
        if not rows:
            self._skip(result, Skip.EMPTY_DOCUMENT)
            return
        clock = self.now()
        for row in rows:
            try:
                out = row_position(row, input_format=self.input_format, clock=clock, receiver=self.receiver)
            except Invalid as exc:
                self._invalid(result, exc, dumps_entry(row))
                continue
            except Exception as exc:
                self._bug(result, exc, dumps_entry(row))
                continue
            if isinstance(out, Skip):
                self._skip(result, out)
            else:
                self._accept(result, out)
