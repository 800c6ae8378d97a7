"""SBS-1 / BaseStation CSV (the port-30003 ``MSG,...`` lines) to positions.

This module owns the SBS line grammar and the per-aircraft merge: only MSG,2 (surface)
and MSG,3 (airborne) lines carry a position; MSG,1 (callsign), MSG,4 (speed, track,
vertical rate), MSG,5/6/7 (altitude, squawk) and MSG,8 are remembered per address and
completed into the next position of that aircraft while still fresh. SEL/ID/AIR/STA/CLK
lines are valid SBS without a position and are counted as skipped.

Field layout (1-based): 1 kind, 2 MSG type, 3 session, 4 aircraft id, 5 hex ident,
6 flight id, 7 date generated, 8 time generated, 9 date logged, 10 time logged,
11 callsign, 12 altitude, 13 ground speed, 14 track, 15 lat, 16 lon, 17 vertical rate,
18 squawk, 19 alert, 20 emergency, 21 SPI, 22 on-ground.

Event time is fields 7-8, else 9-10, taken as UTC (dump1090-fa, readsb and most
aggregators emit UTC; BaseStation itself writes local time, for which pass
``utc_offset_s``); when both are empty (as in the npm ``sbs1`` sample) the parser's
clock ``now()`` is used.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable

from streams.messages import DeadLetter, ParseResult, Position
from streams.parsers.base import LineParser
from streams.parsers.state import AircraftMemory
from streams.parsers.validate import (
    Invalid,
    Reason,
    Skip,
    check_altitude,
    check_callsign,
    check_event_time,
    check_ground_speed,
    check_squawk,
    check_track,
    check_vertical_rate,
    make_position,
    normalise_icao24,
)

SBS_FIELDS = 22
# A live feed uses one or two dates; a bound stops junk dates from growing the cache.
DATE_CACHE_MAX = 64
_OTHER_KINDS = frozenset({b"SEL", b"ID", b"AIR", b"STA", b"CLK"})
# Speed/track/vertical rate come in their own MSG,4 about twice a second; after 15 s
# without one they no longer describe the aircraft's motion.
VELOCITY_MAX_AGE_S = 15.0
# Altitude on a position line is normally present; a remembered one older than 15 s
# could be thousands of feet off in a climb.
ALTITUDE_MAX_AGE_S = 15.0
# Callsign and squawk change rarely; keep them for as long as the aircraft is tracked.
IDENTITY_MAX_AGE_S = 600.0


def _float_field(raw: bytes, name: str) -> float | None:
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise Invalid(Reason.WRONG_TYPE, f"{name} {raw[:20]!r} is not a number") from None


def _flag(raw: bytes, name: str) -> bool | None:
    # BaseStation writes -1 for true; dump1090 variants write 1.
    if not raw:
        return None
    if raw in (b"-1", b"1"):
        return True
    if raw == b"0":
        return False
    raise Invalid(Reason.WRONG_TYPE, f"{name} flag {raw[:8]!r}")


class _DateCache:
    """Midnight-UTC epoch per date string; SBS lines repeat the same date thousands of times."""

    def __init__(self) -> None:
        self._cache: dict[bytes, float] = {}

    def epoch(self, date: bytes, tod: bytes) -> float:
        midnight = self._cache.get(date)
        if midnight is None:
            midnight = self._parse_date(date)
            if len(self._cache) > DATE_CACHE_MAX:
                self._cache.clear()
            self._cache[date] = midnight
        parts = tod.split(b":")
        if len(parts) != 3:
            raise Invalid(Reason.BAD_TIME, f"time {tod[:16]!r}")
        try:
            h, m, s = int(parts[0]), int(parts[1]), float(parts[2])
        except ValueError:
            raise Invalid(Reason.BAD_TIME, f"time {tod[:16]!r}") from None
        if not (0 <= h < 24 and 0 <= m < 60 and 0.0 <= s < 61.0):
            raise Invalid(Reason.BAD_TIME, f"time {tod[:16]!r}")
        return midnight + h * 3600 + m * 60 + s

    @staticmethod
    def _parse_date(date: bytes) -> float:
        sep = b"/" if b"/" in date else b"-"
        parts = date.split(sep)
        if len(parts) != 3:
            raise Invalid(Reason.BAD_TIME, f"date {date[:16]!r}")
        try:
            y, mo, d = (int(p) for p in parts)
        except ValueError:
            raise Invalid(Reason.BAD_TIME, f"date {date[:16]!r}") from None
        if not (1970 <= y <= 9999 and 1 <= mo <= 12 and 1 <= d <= calendar.monthrange(y, mo)[1]):
            raise Invalid(Reason.BAD_TIME, f"date {date[:16]!r}")
        return float(calendar.timegm((y, mo, d, 0, 0, 0)))


class SbsParser(LineParser):
    """Streaming SBS parser; see the module docstring for what counts as what."""

    input_format = "sbs"
    # A full MSG line is under 200 bytes; 4 KiB allows for odd extensions.
    default_max_message_bytes = 4096

    def __init__(
        self,
        *,
        source: str = "",
        receiver: str | None = None,
        now: Callable[[], float] | None = None,
        max_message_bytes: int | None = None,
        utc_offset_s: float = 0.0,
    ) -> None:
        super().__init__(source=source, receiver=receiver, now=now, max_message_bytes=max_message_bytes)
        self.utc_offset_s = utc_offset_s
        self.memory = AircraftMemory()
        self._dates = _DateCache()

    def _parse_line(self, line: bytes, result: ParseResult) -> None:
        f = line.split(b",")
        kind = f[0].strip()
        if kind != b"MSG":
            if kind in _OTHER_KINDS:
                self._skip(result, Skip.NO_POSITION)
                return
            try:
                line.decode("ascii")
            except UnicodeDecodeError:
                raise Invalid(Reason.BAD_ENCODING, "SBS lines are ASCII") from None
            raise Invalid(Reason.BAD_FORMAT, f"not an SBS line (kind {kind[:8]!r})")
        if len(f) < SBS_FIELDS:
            raise Invalid(Reason.BAD_FIELD_COUNT, f"{len(f)} fields, MSG lines have {SBS_FIELDS}")
        try:
            mtype = int(f[1])
        except ValueError:
            raise Invalid(Reason.BAD_FORMAT, f"MSG type {f[1][:8]!r}") from None
        if not 1 <= mtype <= 8:
            raise Invalid(Reason.BAD_FORMAT, f"MSG type {mtype} not in 1..8")
        try:
            icao = normalise_icao24(f[4].decode("ascii"))
        except UnicodeDecodeError:
            raise Invalid(Reason.BAD_ICAO, "hex ident not ASCII") from None
        try:
            self._parse_msg(mtype, icao, f, result)
        except Invalid as exc:
            self._invalid(result, exc, line, icao)

    def _event_time(self, f: list[bytes]) -> float:
        now = self.now()
        for di, ti in ((6, 7), (8, 9)):
            if f[di] and f[ti]:
                t = self._dates.epoch(f[di].strip(), f[ti].strip()) - self.utc_offset_s
                return check_event_time(t, now)
        return check_event_time(now, now)

    def _parse_msg(self, mtype: int, icao: str, f: list[bytes], result: ParseResult) -> None:
        t = self._event_time(f)
        try:
            callsign = check_callsign(f[10].decode("ascii")) if f[10] else None
            squawk = check_squawk(f[17].decode("ascii")) if f[17] else None
        except UnicodeDecodeError:
            raise Invalid(Reason.BAD_ENCODING, "callsign/squawk not ASCII") from None
        alt = check_altitude(_float_field(f[11], "altitude"))
        gs = check_ground_speed(_float_field(f[12], "ground_speed"))
        track = check_track(_float_field(f[13], "track"))
        vrate = check_vertical_rate(_float_field(f[16], "vertical_rate"))
        lat = _float_field(f[14], "lat")
        lon = _float_field(f[15], "lon")
        on_ground = _flag(f[21], "on_ground")
        for i, name in ((18, "alert"), (19, "emergency"), (20, "spi")):
            _flag(f[i], name)

        mem = self.memory
        if lat is None or lon is None:
            if lat is not None or lon is not None:
                raise Invalid(Reason.MISSING_FIELD, "only one of lat/lon present")
            d = mem.fields(icao, t)
            for name, value in (("callsign", callsign), ("squawk", squawk), ("alt", alt), ("on_ground", on_ground)):
                if value is not None:
                    d[name] = (value, t)
            if gs is not None or track is not None or vrate is not None:
                d["velocity"] = ((gs, track, vrate), t)
            self._skip(result, Skip.NO_POSITION)
            return

        known = mem.peek(icao)
        recall = AircraftMemory.recall
        if gs is None and track is None and vrate is None:
            vel = recall(known, "velocity", t, VELOCITY_MAX_AGE_S) or (None, None, None)
        else:
            vel = (gs, track, vrate)
        pos = make_position(
            icao24=icao,
            event_time=t,
            lat=lat,
            lon=lon,
            input_format=self.input_format,
            now=self.now(),
            alt_baro_ft=alt if alt is not None else recall(known, "alt", t, ALTITUDE_MAX_AGE_S),
            ground_speed_kt=vel[0],
            track_deg=vel[1],
            vertical_rate_fpm=vel[2],
            callsign=callsign or recall(known, "callsign", t, IDENTITY_MAX_AGE_S),
            squawk=squawk or recall(known, "squawk", t, IDENTITY_MAX_AGE_S),
            on_ground=on_ground if on_ground is not None else (True if mtype == 2 else None),
            # SBS does not say where a position came from (dump1090 writes ADS-B and MLAT
            # alike); readsb files it as "other", and so do we.
            source="other",
            receiver=self.receiver,
        )
        d2 = mem.fields(icao, t)
        if pos.alt_baro_ft is not None:
            d2["alt"] = (pos.alt_baro_ft, t)
        if pos.callsign:
            d2["callsign"] = (pos.callsign, t)
        if pos.squawk:
            d2["squawk"] = (pos.squawk, t)
        self._accept(result, pos)


def parse_sbs_line(line: bytes, *, parser: SbsParser) -> Position | DeadLetter | None:
    """One SBS line through ``parser`` (whose memory it updates).

    Returns the position, or the dead letter, or None when the line was valid but
    carried no position (or was blank).
    """
    result = parser.feed(line.rstrip(b"\r\n") + b"\n")
    if result.positions:
        return result.positions[0]
    if result.dead_letters:
        return result.dead_letters[0]
    return None
