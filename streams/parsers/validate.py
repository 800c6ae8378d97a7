"""Validation of everything a parser is about to turn into a position, in one place.

This module owns the list of dead-letter reasons and skip reasons (stable snake_case
codes that counters and the dead-letter topic are keyed by), the gates every field must
pass (address, coordinates, altitude, speed, track, vertical rate, time, callsign,
squawk), and :func:`make_position`, the only way a parser builds a
:class:`~streams.messages.Position`. A failing gate raises :class:`Invalid`; the parser
turns that into a :class:`~streams.messages.DeadLetter` carrying the raw input.

Policy (the same for every format):

* A message whose own fields fail a gate is a dead letter, reason = first failing gate.
  Nothing is silently clamped or dropped: the raw bytes stay in the dead letter.
* A message that is well formed but carries no position (identification, velocity,
  altitude-only replies, aircraft without a fix, repeated snapshots) is *skipped*: it is
  counted under a :class:`Skip` reason and may update the parser's per-aircraft memory.
* Non-ICAO addresses: readsb marks them with a leading ``~`` (TIS-B track files,
  anonymised ADS-B). They are kept as ``~`` + 6 lower-case hex digits so they never
  collide with a real ICAO address; their position source is ``tisb`` when the feed says
  so and ``other`` otherwise.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

from streams.messages import POSITION_SOURCES, Position


class Reason(StrEnum):
    """Why an input became a dead letter. Values are stable: dashboards key on them."""

    BAD_ICAO = "bad_icao"
    NAN_COORDINATE = "nan_coordinate"
    LAT_OUT_OF_RANGE = "lat_out_of_range"
    LON_OUT_OF_RANGE = "lon_out_of_range"
    NAN_VALUE = "nan_value"
    ALT_OUT_OF_RANGE = "alt_out_of_range"
    SPEED_OUT_OF_RANGE = "speed_out_of_range"
    TRACK_OUT_OF_RANGE = "track_out_of_range"
    VRATE_OUT_OF_RANGE = "vrate_out_of_range"
    TIME_OUT_OF_RANGE = "time_out_of_range"
    BAD_TIME = "bad_time"
    BAD_CALLSIGN = "bad_callsign"
    BAD_SQUAWK = "bad_squawk"
    WRONG_TYPE = "wrong_type"
    MISSING_FIELD = "missing_field"
    BAD_JSON = "bad_json"
    BAD_ENCODING = "bad_encoding"
    BAD_FORMAT = "bad_format"
    BAD_FIELD_COUNT = "bad_field_count"
    BAD_HEX = "bad_hex"
    BAD_LENGTH = "bad_length"
    BAD_CRC = "bad_crc"
    UNSUPPORTED_DF = "unsupported_df"
    DECODE_FAILED = "decode_failed"
    BAD_FRAME_TYPE = "bad_frame_type"
    RESYNC = "resync"
    TRUNCATED = "truncated"
    OVERSIZE = "oversize"
    # A bug in our own code met an input it did not expect. The input is kept so the bug
    # can be reproduced; the property tests assert this reason never occurs.
    PARSER_ERROR = "parser_error"


class Skip(StrEnum):
    """Why a valid input produced no position. Counted, never dead-lettered."""

    NO_POSITION = "no_position"
    MODE_AC = "mode_ac"
    UNTRUSTED_ADDRESS = "untrusted_address"
    CPR_PENDING = "cpr_pending"
    CPR_AMBIGUOUS = "cpr_ambiguous"
    NO_SURFACE_REFERENCE = "no_surface_reference"
    DUPLICATE = "duplicate"
    EMPTY_DOCUMENT = "empty_document"


REASONS: frozenset[str] = frozenset(r.value for r in Reason)
SKIP_REASONS: frozenset[str] = frozenset(s.value for s in Skip)


class Invalid(Exception):
    """Raised by a gate; the parser catches it and writes a dead letter with this reason."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(reason.value, detail)
        self.reason = reason
        self.detail = detail


# 2000-01-01T00:00:00Z: no feed this project reads predates it, while a zero, a
# day-count or a two-digit-year timestamp lands before it and is caught.
EARLIEST_EVENT_TIME = 946_684_800.0
# Receivers without NTP drift by seconds, not minutes; five minutes of slack still
# catches milliseconds read as seconds and clocks set to the wrong day.
MAX_FUTURE_S = 300.0
# The Dead Sea shore is at -1,400 ft and pressure altitude reads a few hundred feet
# lower on high-pressure days; below -2,000 ft is a decoding or unit error.
MIN_ALT_FT = -2_000.0
# Mode S altitude codes top out at 126,750 ft, so nothing a transponder can send is
# refused (U-2s at 70,000 ft, stratospheric balloons); above this is corruption.
MAX_ALT_FT = 130_000.0
# The fastest aircraft ever in service (SR-71) flew about 1,900 kt; faster is a unit
# error (km/h or m/s read as knots) or corruption.
MAX_GROUND_SPEED_KT = 2_000.0
# Twice the fastest recorded climb (about 50,000 ft/min); beyond is a unit error.
MAX_ABS_VRATE_FPM = 100_000.0
# Mode S callsigns are 8 characters; longer is not a callsign.
MAX_CALLSIGN_LEN = 8

_HEX = frozenset("0123456789abcdef")
_CALLSIGN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -")
_OCTAL = frozenset("01234567")
# All-zero and all-one addresses are not assignable (ICAO Annex 10 Vol. III); they show
# up only from corrupted or address-less replies.
_RESERVED_ADDRESSES = frozenset({"000000", "ffffff"})


def normalise_icao24(value: Any) -> str:
    """Return the address as 6 lower-case hex digits, or ``~`` + 6 for non-ICAO ones."""
    if not isinstance(value, str):
        raise Invalid(Reason.WRONG_TYPE, f"icao24 is {type(value).__name__}")
    s = value.strip().lower()
    tilde = s.startswith("~")
    core = s[1:] if tilde else s
    if len(core) != 6 or not _HEX.issuperset(core):
        raise Invalid(Reason.BAD_ICAO, f"icao24 {value[:16]!r}")
    if core in _RESERVED_ADDRESSES:
        raise Invalid(Reason.BAD_ICAO, f"reserved address {core}")
    return "~" + core if tilde else core


def as_number(value: Any, name: str) -> float | None:
    """A JSON/CSV value as float (None stays None); bools and strings are wrong types."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(Reason.WRONG_TYPE, f"{name} is {type(value).__name__}")
    f = float(value)
    return f


def check_coordinates(lat: Any, lon: Any) -> tuple[float, float]:
    la = as_number(lat, "lat")
    lo = as_number(lon, "lon")
    if la is None or lo is None:
        raise Invalid(Reason.MISSING_FIELD, "lat/lon missing")
    if not (math.isfinite(la) and math.isfinite(lo)):
        raise Invalid(Reason.NAN_COORDINATE, f"lat={la} lon={lo}")
    if not -90.0 <= la <= 90.0:
        raise Invalid(Reason.LAT_OUT_OF_RANGE, f"lat={la}")
    if not -180.0 <= lo <= 180.0:
        raise Invalid(Reason.LON_OUT_OF_RANGE, f"lon={lo}")
    return la, lo


def _finite(value: float | None, name: str) -> float | None:
    if value is not None and not math.isfinite(value):
        raise Invalid(Reason.NAN_VALUE, f"{name}={value}")
    return value


def check_altitude(value: Any, name: str = "altitude") -> float | None:
    v = _finite(as_number(value, name), name)
    if v is not None and not MIN_ALT_FT <= v <= MAX_ALT_FT:
        raise Invalid(Reason.ALT_OUT_OF_RANGE, f"{name}={v} ft")
    return v


def check_ground_speed(value: Any) -> float | None:
    v = _finite(as_number(value, "ground_speed"), "ground_speed")
    if v is not None and not 0.0 <= v <= MAX_GROUND_SPEED_KT:
        raise Invalid(Reason.SPEED_OUT_OF_RANGE, f"ground_speed={v} kt")
    return v


def check_track(value: Any) -> float | None:
    v = _finite(as_number(value, "track"), "track")
    if v is None:
        return None
    if not 0.0 <= v <= 360.0:
        raise Invalid(Reason.TRACK_OUT_OF_RANGE, f"track={v}")
    return 0.0 if v == 360.0 else v


def check_vertical_rate(value: Any) -> float | None:
    v = _finite(as_number(value, "vertical_rate"), "vertical_rate")
    if v is not None and abs(v) > MAX_ABS_VRATE_FPM:
        raise Invalid(Reason.VRATE_OUT_OF_RANGE, f"vertical_rate={v} ft/min")
    return v


def check_callsign(value: Any) -> str | None:
    """Callsigns are trimmed and upper-cased; empty means unknown, not an error."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(Reason.WRONG_TYPE, f"callsign is {type(value).__name__}")
    s = value.strip().upper()
    if not s:
        return None
    if len(s) > MAX_CALLSIGN_LEN or not _CALLSIGN_CHARS.issuperset(s):
        raise Invalid(Reason.BAD_CALLSIGN, f"callsign {value[:16]!r}")
    return s


def check_squawk(value: Any) -> str | None:
    """Four octal digits; an int from a JSON table is accepted as its decimal spelling."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise Invalid(Reason.WRONG_TYPE, "squawk is bool")
    if isinstance(value, int):
        if not 0 <= value <= 7777:
            raise Invalid(Reason.BAD_SQUAWK, f"squawk {value}")
        value = f"{value:04d}"
    if not isinstance(value, str):
        raise Invalid(Reason.WRONG_TYPE, f"squawk is {type(value).__name__}")
    s = value.strip()
    if not s:
        return None
    if len(s) != 4 or not _OCTAL.issuperset(s):
        raise Invalid(Reason.BAD_SQUAWK, f"squawk {value[:16]!r}")
    return s


def check_event_time(t: Any, now: float) -> float:
    v = as_number(t, "event_time")
    if v is None:
        raise Invalid(Reason.MISSING_FIELD, "event time missing")
    if not math.isfinite(v) or v < EARLIEST_EVENT_TIME or v > now + MAX_FUTURE_S:
        raise Invalid(Reason.TIME_OUT_OF_RANGE, f"event_time={v} now={now:.3f}")
    return v


def make_position(
    *,
    icao24: str,
    event_time: float,
    lat: Any,
    lon: Any,
    input_format: str,
    now: float,
    alt_baro_ft: Any = None,
    alt_geom_ft: Any = None,
    ground_speed_kt: Any = None,
    track_deg: Any = None,
    vertical_rate_fpm: Any = None,
    callsign: Any = None,
    squawk: Any = None,
    on_ground: Any = None,
    source: str = "adsb",
    receiver: str | None = None,
) -> Position:
    """Build a Position after passing every gate; raises :class:`Invalid` otherwise.

    ``icao24`` must already be normalised (callers do it first so that dead letters for
    later gates can name the aircraft).
    """
    la, lo = check_coordinates(lat, lon)
    t = check_event_time(event_time, now)
    if on_ground is not None and not isinstance(on_ground, bool):
        raise Invalid(Reason.WRONG_TYPE, f"on_ground is {type(on_ground).__name__}")
    if source not in POSITION_SOURCES:
        source = "other"
    return Position(
        icao24=icao24,
        event_time=t,
        lat=la,
        lon=lo,
        input_format=input_format,
        alt_baro_ft=check_altitude(alt_baro_ft, "alt_baro"),
        alt_geom_ft=check_altitude(alt_geom_ft, "alt_geom"),
        ground_speed_kt=check_ground_speed(ground_speed_kt),
        track_deg=check_track(track_deg),
        vertical_rate_fpm=check_vertical_rate(vertical_rate_fpm),
        callsign=check_callsign(callsign),
        squawk=check_squawk(squawk),
        on_ground=on_ground,
        source=source,
        receiver=receiver,
    )
