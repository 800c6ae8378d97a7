"""OpenSky Network REST state vectors (``/api/states/all``) to positions.

This module owns the ``states`` array layout (OpenSky REST API documentation):
index 0 icao24, 1 callsign, 2 origin_country, 3 time_position, 4 last_contact,
5 longitude, 6 latitude, 7 baro_altitude (m), 8 on_ground, 9 velocity (m/s),
10 true_track, 11 vertical_rate (m/s), 12 sensors, 13 geo_altitude (m), 14 squawk,
15 spi, 16 position_source (0 ADS-B, 1 ASTERIX, 2 MLAT, 3 FLARM), 17 category.

One document per ``flush``; each state vector is one message. ``"states": null`` (no
aircraft in the box) is one skipped ``empty_document``. Vectors without a position are
skipped (``no_position``). Event time is ``time_position`` (falling back to
``last_contact``). Units are converted to the record's feet/knots/ft-per-minute.
A vector repeating the previous poll's fix (same ``time_position``) is a ``duplicate``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streams.messages import ParseResult, Position
from streams.parsers.base import DocumentParser, dumps_entry
from streams.parsers.validate import (
    Invalid,
    Reason,
    Skip,
    as_number,
    make_position,
    normalise_icao24,
)

FT_PER_M = 1.0 / 0.3048
KT_PER_MPS = 3600.0 / 1852.0
FPM_PER_MPS = 60.0 / 0.3048
_SOURCES = {0: "adsb", 1: "other", 2: "mlat", 3: "other"}
# Fewer fields than the documented 17 means the vector was cut or is another API.
MIN_STATE_FIELDS = 17
# Forget de-duplication state for aircraft gone for 10 minutes; bounds memory.
DEDUP_TTL_S = 600.0
# Prune only when the map is larger than a busy whole-world reply; pruning each poll
# would walk every aircraft every few seconds for nothing.
DEDUP_PRUNE_AT = 10_000


def _scaled(v: Any, name: str, factor: float) -> float | None:
    f = as_number(v, name)
    return None if f is None else f * factor


def state_position(sv: Any, *, input_format: str, clock: float, receiver: str | None) -> Position | Skip:
    """One state vector to a position, or a skip; raises Invalid on bad fields."""
    if not isinstance(sv, list):
        raise Invalid(Reason.WRONG_TYPE, f"state vector is {type(sv).__name__}")
    if len(sv) < MIN_STATE_FIELDS:
        raise Invalid(Reason.BAD_FIELD_COUNT, f"{len(sv)} fields, state vectors have {MIN_STATE_FIELDS}+")
    icao = normalise_icao24(sv[0])
    if sv[5] is None and sv[6] is None:
        return Skip.NO_POSITION
    t = sv[3] if sv[3] is not None else sv[4]
    on_ground = sv[8]
    src = sv[16]
    if isinstance(src, bool) or not (src is None or isinstance(src, int)):
        raise Invalid(Reason.WRONG_TYPE, f"position_source {src!r}")
    return make_position(
        icao24=icao,
        event_time=t,
        lat=sv[6],
        lon=sv[5],
        input_format=input_format,
        now=clock,
        alt_baro_ft=_scaled(sv[7], "baro_altitude", FT_PER_M),
        alt_geom_ft=_scaled(sv[13], "geo_altitude", FT_PER_M),
        ground_speed_kt=_scaled(sv[9], "velocity", KT_PER_MPS),
        track_deg=sv[10],
        vertical_rate_fpm=_scaled(sv[11], "vertical_rate", FPM_PER_MPS),
        callsign=sv[1],
        squawk=sv[14],
        on_ground=on_ground,
        source=_SOURCES.get(src, "other") if src is not None else "other",
        receiver=receiver,
    )


class OpenSkyParser(DocumentParser):
    """OpenSky ``{"time": ..., "states": [...]}`` documents; one per flush."""

    input_format = "opensky"

    def __init__(
        self,
        *,
        source: str = "",
        receiver: str | None = None,
        now: Callable[[], float] | None = None,
        max_message_bytes: int | None = None,
    ) -> None:
        super().__init__(source=source, receiver=receiver, now=now, max_message_bytes=max_message_bytes)
        self._last: dict[str, float] = {}

    def _parse_object(self, obj: object, raw: bytes, result: ParseResult) -> None:
        if not isinstance(obj, dict):
            raise Invalid(Reason.WRONG_TYPE, f"OpenSky reply is a {type(obj).__name__}, not an object")
        if "states" not in obj:
            raise Invalid(Reason.MISSING_FIELD, "no 'states'")
        states = obj["states"]
        if states is None or states == []:
            self._skip(result, Skip.EMPTY_DOCUMENT)
            return
        if not isinstance(states, list):
            raise Invalid(Reason.WRONG_TYPE, f"'states' is {type(states).__name__}")
        clock = self.now()
        for sv in states:
            try:
                out = state_position(sv, input_format=self.input_format, clock=clock, receiver=self.receiver)
            except Invalid as exc:
                self._invalid(result, exc, dumps_entry(sv))
                continue
            except Exception as exc:
                self._bug(result, exc, dumps_entry(sv))
                continue
            if isinstance(out, Skip):
                self._skip(result, out)
            elif self._last.get(out.icao24) == out.event_time:
                self._skip(result, Skip.DUPLICATE)
            else:
                self._last[out.icao24] = out.event_time
                self._accept(result, out)
        if len(self._last) > DEDUP_PRUNE_AT:
            cutoff = clock - DEDUP_TTL_S
            self._last = {k: v for k, v in self._last.items() if v >= cutoff}
