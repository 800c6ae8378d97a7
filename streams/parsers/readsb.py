"""readsb / dump1090 JSON to positions: ``aircraft.json``, JSON position lines, traces.

This module owns three readsb formats (field meanings from readsb's README-json):

* ``readsb-json``: an ``aircraft.json`` snapshot (also dump1090-fa's and
  dump1090-mutability's, whose older names ``altitude``/``speed``/``vert_rate`` are
  read too). One document per ``flush``; each aircraft entry is one message. Position
  time = ``now - seen_pos``. Entries without ``lat``/``lon`` are skipped
  (``no_position``). Polling returns the same position again until the aircraft sends
  a new one, so a repeat (same lat/lon within :data:`DUPLICATE_WINDOW_S`) is skipped
  as ``duplicate``.
* ``readsb-jsonl``: readsb's ``--net-json-port`` output, one aircraft object per line
  with ``"now"`` added; same fields, no de-duplication (readsb emits only new positions).
* ``trace``: tar1090 ``trace_full_<hex>.json`` / globe_history traces. Point time =
  ``timestamp`` + the point's relative seconds. Flags: bit 1 (2) starts a new leg, so the
  callsign/squawk carried forward from the previous leg's detail objects are dropped;
  bit 3 (8) means the altitude is geometric (goes to ``alt_geom_ft``); bit 0 (stale)
  and bit 2 (geometric rate) do not change the position. ``"ground"`` altitudes set
  ``on_ground``. Each trace point is one message.

Source mapping from readsb's ``type``: ``adsb_*`` and ``adsr_*`` (UAT ADS-B relayed, a
self-reported position) -> ``adsb``; ``tisb_*`` -> ``tisb``; ``mlat`` -> ``mlat``;
``adsc``, ``other``, ``mode_s``, ``unknown`` -> ``other``. Without ``type`` (old
dump1090), ``"lat"`` listed in ``mlat``/``tisb`` decides. A ``~`` address is never
``adsb``: ``tisb`` if the type says so, else ``other``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from streams.messages import ParseResult, Position
from streams.parsers.base import DocumentParser, LineParser, dumps_entry, json_error_reason
from streams.parsers.validate import (
    Invalid,
    Reason,
    Skip,
    as_number,
    check_callsign,
    check_event_time,
    check_squawk,
    make_position,
    normalise_icao24,
)

# Polls 1-5 s apart return the same position with a "now - seen_pos" that moves by the
# rounding of seen_pos (0.1 s); a repeat within 2 s at identical lat/lon is the same fix.
DUPLICATE_WINDOW_S = 2.0
# Forget de-duplication state for aircraft gone for 10 minutes; bounds memory.
DEDUP_TTL_S = 600.0
# A receiver sees a few hundred aircraft at once; prune only beyond that.
DEDUP_PRUNE_AT = 1000


def source_of(type_: Any, icao24: str, mlat_fields: Any = None, tisb_fields: Any = None) -> str:
    """Position source from readsb's ``type`` (or the older mlat/tisb field lists)."""
    src = "other"
    if isinstance(type_, str):
        if type_.startswith(("adsb", "adsr")):
            src = "adsb"
        elif type_.startswith("tisb"):
            src = "tisb"
        elif type_ == "mlat":
            src = "mlat"
    else:
        if isinstance(mlat_fields, list) and "lat" in mlat_fields:
            src = "mlat"
        elif isinstance(tisb_fields, list) and "lat" in tisb_fields:
            src = "tisb"
        else:
            src = "adsb"
    if icao24.startswith("~") and src == "adsb":
        src = "other"
    return src


def _altitude(value: Any) -> tuple[Any, bool | None]:
    """readsb altitude: a number, ``"ground"``, or absent."""
    if value == "ground":
        return None, True
    if isinstance(value, str):
        raise Invalid(Reason.WRONG_TYPE, f"altitude {value[:16]!r}")
    return value, None


def aircraft_entry_position(
    entry: Any, now_doc: float, *, input_format: str, clock: float, receiver: str | None
) -> Position | Skip:
    """One aircraft object (aircraft.json entry or JSON line) to a position, or a skip."""
    if not isinstance(entry, dict):
        raise Invalid(Reason.WRONG_TYPE, f"aircraft entry is {type(entry).__name__}")
    icao = normalise_icao24(entry.get("hex"))
    lat, lon = entry.get("lat"), entry.get("lon")
    if lat is None and lon is None:
        return Skip.NO_POSITION
    seen_pos = as_number(entry.get("seen_pos"), "seen_pos")
    if seen_pos is None:
        seen_pos = 0.0
    elif not 0.0 <= seen_pos <= 86_400.0:
        raise Invalid(Reason.TIME_OUT_OF_RANGE, f"seen_pos={seen_pos}")
    alt_raw = entry["alt_baro"] if "alt_baro" in entry else entry.get("altitude")
    alt, ground = _altitude(alt_raw)
    gs = entry["gs"] if "gs" in entry else entry.get("speed")
    vrate = entry.get("baro_rate")
    if vrate is None:
        vrate = entry.get("geom_rate", entry.get("vert_rate"))
    flight = entry.get("flight")
    return make_position(
        icao24=icao,
        event_time=now_doc - seen_pos,
        lat=lat,
        lon=lon,
        input_format=input_format,
        now=clock,
        alt_baro_ft=alt,
        alt_geom_ft=entry.get("alt_geom"),
        ground_speed_kt=gs,
        track_deg=entry.get("track"),
        vertical_rate_fpm=vrate,
        callsign=flight,
        squawk=entry.get("squawk"),
        on_ground=ground,
        source=source_of(entry.get("type"), icao, entry.get("mlat"), entry.get("tisb")),
        receiver=receiver,
    )


class ReadsbJsonParser(DocumentParser):
    """``aircraft.json`` snapshots; one document per flush (see DocumentParser)."""

    input_format = "readsb-json"

    def __init__(
        self,
        *,
        source: str = "",
        receiver: str | None = None,
        now: Callable[[], float] | None = None,
        max_message_bytes: int | None = None,
    ) -> None:
        super().__init__(source=source, receiver=receiver, now=now, max_message_bytes=max_message_bytes)
        self._last: dict[str, tuple[float, float, float]] = {}

    def _parse_object(self, obj: object, raw: bytes, result: ParseResult) -> None:
        if not isinstance(obj, dict):
            raise Invalid(Reason.WRONG_TYPE, f"aircraft.json is a {type(obj).__name__}, not an object")
        aircraft = obj.get("aircraft")
        if not isinstance(aircraft, list):
            raise Invalid(Reason.MISSING_FIELD, "no 'aircraft' list")
        clock = self.now()
        now_doc = as_number(obj.get("now"), "now")
        now_doc = clock if now_doc is None else check_event_time(now_doc, clock)
        if not aircraft:
            self._skip(result, Skip.EMPTY_DOCUMENT)
            return
        for entry in aircraft:
            try:
                out = aircraft_entry_position(
                    entry, now_doc, input_format=self.input_format, clock=clock, receiver=self.receiver
                )
            except Invalid as exc:
                self._invalid(result, exc, dumps_entry(entry))
                continue
            except Exception as exc:
                self._bug(result, exc, dumps_entry(entry))
                continue
            if isinstance(out, Skip):
                self._skip(result, out)
            elif self._is_repeat(out):
                self._skip(result, Skip.DUPLICATE)
            else:
                self._accept(result, out)
        self._prune(now_doc)

    def _is_repeat(self, p: Position) -> bool:
        prev = self._last.get(p.icao24)
        self._last[p.icao24] = (p.lat, p.lon, p.event_time)
        return (
            prev is not None
            and prev[0] == p.lat
            and prev[1] == p.lon
            and abs(p.event_time - prev[2]) <= DUPLICATE_WINDOW_S
        )

    def _prune(self, now_doc: float) -> None:
        if len(self._last) > DEDUP_PRUNE_AT:
            cutoff = now_doc - DEDUP_TTL_S
            self._last = {k: v for k, v in self._last.items() if v[2] >= cutoff}


class ReadsbJsonlParser(LineParser):
    """readsb ``--net-json-port`` lines: one aircraft object with ``now`` per line."""

    input_format = "readsb-jsonl"
    # readsb writes each object into a 8 KiB buffer; 64 KiB leaves room for extensions.
    default_max_message_bytes = 64 * 1024

    def _parse_line(self, line: bytes, result: ParseResult) -> None:
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise Invalid(json_error_reason(exc), str(exc)[:300]) from None
        if not isinstance(obj, dict):
            raise Invalid(Reason.WRONG_TYPE, f"line is a {type(obj).__name__}, not an object")
        clock = self.now()
        now_doc = as_number(obj.get("now"), "now")
        now_doc = clock if now_doc is None else check_event_time(now_doc, clock)
        out = aircraft_entry_position(obj, now_doc, input_format=self.input_format, clock=clock, receiver=self.receiver)
        if isinstance(out, Skip):
            self._skip(result, out)
        else:
            self._accept(result, out)


class TraceParser(DocumentParser):
    """tar1090 ``trace_full`` / globe_history traces; one document per flush."""

    input_format = "trace"

    def _parse_object(self, obj: object, raw: bytes, result: ParseResult) -> None:
        if not isinstance(obj, dict):
            raise Invalid(Reason.WRONG_TYPE, f"trace is a {type(obj).__name__}, not an object")
        icao = normalise_icao24(obj.get("icao"))
        base = as_number(obj.get("timestamp"), "timestamp")
        if base is None:
            raise Invalid(Reason.MISSING_FIELD, "no 'timestamp'")
        points = obj.get("trace")
        if not isinstance(points, list):
            raise Invalid(Reason.MISSING_FIELD, "no 'trace' list")
        if not points:
            self._skip(result, Skip.EMPTY_DOCUMENT)
            return
        clock = self.now()
        callsign: Any = None
        squawk: Any = None
        src_type: Any = None
        for point in points:
            try:
                if not isinstance(point, list):
                    raise Invalid(Reason.WRONG_TYPE, f"trace point is {type(point).__name__}")
                if len(point) < 3:
                    raise Invalid(Reason.MISSING_FIELD, f"trace point has {len(point)} fields, needs 3+")
                flags = point[6] if len(point) > 6 else 0
                if flags is None:
                    flags = 0
                if isinstance(flags, bool) or not isinstance(flags, int):
                    raise Invalid(Reason.WRONG_TYPE, f"flags {flags!r}")
                if flags & 2:
                    callsign = squawk = None
                details = point[8] if len(point) > 8 else None
                if details is not None and not isinstance(details, dict):
                    raise Invalid(Reason.WRONG_TYPE, "details is not an object")
                if details:
                    # Validated before they are carried forward, so one bad detail object
                    # refuses its own point only, not the rest of the leg.
                    if "flight" in details:
                        callsign = check_callsign(details["flight"])
                    if "squawk" in details:
                        squawk = check_squawk(details["squawk"])
                    src_type = details.get("type", src_type)
                if len(point) > 9 and point[9] is not None:
                    src_type = point[9]
                dt = as_number(point[0], "dt")
                if dt is None:
                    raise Invalid(Reason.MISSING_FIELD, "point without time")
                alt, ground = _altitude(point[3] if len(point) > 3 else None)
                alt_geom = point[10] if len(point) > 10 else None
                if alt is not None and flags & 8:
                    alt_geom, alt = alt, None
                if alt_geom is None and details:
                    alt_geom = details.get("alt_geom")
                pos = make_position(
                    icao24=icao,
                    event_time=base + dt,
                    lat=point[1],
                    lon=point[2],
                    input_format=self.input_format,
                    now=clock,
                    alt_baro_ft=alt,
                    alt_geom_ft=alt_geom,
                    ground_speed_kt=point[4] if len(point) > 4 else None,
                    # On the ground readsb stores true heading here, not track (README-json).
                    track_deg=point[5] if len(point) > 5 and not ground else None,
                    vertical_rate_fpm=point[7] if len(point) > 7 else None,
                    callsign=callsign,
                    squawk=squawk,
                    on_ground=ground,
                    source=source_of(src_type, icao),
                    receiver=self.receiver,
                )
            except Invalid as exc:
                self._invalid(result, exc, dumps_entry(point), icao)
                continue
            except Exception as exc:
                self._bug(result, exc, dumps_entry(point))
                continue
            self._accept(result, pos)
