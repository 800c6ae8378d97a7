"""Raw Mode S frames to positions: checks, rs1090 field decoding, and our CPR state.

This module owns :class:`ModeSDecoder`, shared by the AVR and Beast parsers. For each
frame, in arrival order:

1. Framing checks (ours, cheap): length 7/14 bytes matching the downlink format (a
   short DF0/4/5/11 reply padded to 14 bytes is cut to its 7), a supported DF, and
   the CRC-24 parity for DF17/18 (must be zero) and DF11 (zero except the
   interrogator code). rs1090 checks DF17 itself but not DF18 or DF11, so the check
   is done here for all three. Failures are dead letters: ``bad_length``,
   ``unsupported_df``, ``bad_crc``. No bit-error correction is attempted.
2. Field decoding by rs1090 (MIT), one vectorised call per chunk, loaded with the
   plain-data unpickler of :mod:`streams.parsers._rs1090`.
3. Our per-aircraft state, because rs1090 keeps none between calls:

   * airborne positions (BDS 0,5): *global* decoding from the latest even/odd pair
     when both frames are within :data:`PAIR_WINDOW_S`, done by rs1090 on that pair,
     for the first fix, after a gap of :data:`LOCAL_FAST_MAX_AGE_S`, and every
     :data:`GLOBAL_REFRESH_S`; otherwise (and when the pair fails) *local* decoding
     against the aircraft's last decoded position when it is at most
     :data:`LOCAL_REF_MAX_AGE_S` old; else the frame waits (skipped, ``cpr_pending``).
     The receiver reference is NOT used for airborne positions: a wrong reference
     gives a wrong position, not an error, and a pair arrives within a second anyway.
   * surface positions (BDS 0,6) always need a reference (four solutions 90 degrees
     apart): the aircraft's last position if at most :data:`SURFACE_REF_MAX_AGE_S` old,
     else the receiver ``reference`` if one was given, else skipped
     (``no_surface_reference``).
   * identification, velocity, emergency/squawk (DF17/18 BDS 0,8 / 0,9 / 6,1), DF0/4/16/20
     altitudes, DF5/21 squawks and DF20/21 BDS 2,0 callsigns update the aircraft's
     memory and are counted as skipped (``no_position``); the next position of that
     aircraft carries them while fresh.
   * DF0/4/5/16/20/21 carry their address in the parity field, so any noise decodes to
     *some* address. They are only believed for addresses already confirmed by a
     CRC-checked DF11/17/18 (otherwise skipped, ``untrusted_address``).

Event times come from the caller (the framers): Beast/AVR-MLAT 12 MHz counters through
:class:`TickClock`, plain AVR lines from the parser clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from streams.messages import Position
from streams.parsers import _rs1090
from streams.parsers.state import AircraftMemory
from streams.parsers.validate import (
    Invalid,
    Reason,
    Skip,
    check_altitude,
    check_callsign,
    check_ground_speed,
    check_squawk,
    check_track,
    check_vertical_rate,
    make_position,
    normalise_icao24,
)

# DO-260B: an even/odd pair more than 10 s apart may straddle a zone; global decoding
# is only unambiguous within that window.
PAIR_WINDOW_S = 10.0
# Local decoding is right while the aircraft is within half a zone (~180 NM) of the
# reference; 2 minutes at the 2,000 kt speed gate is 67 NM, well inside that.
LOCAL_REF_MAX_AGE_S = 120.0
# A position at most 10 s old is within 6 NM (at the 2,000 kt gate) of the aircraft:
# local decoding against it cannot pick the wrong zone, so no pair is needed.
LOCAL_FAST_MAX_AGE_S = 10.0
# Even while following a track locally, re-derive it from an even/odd pair this often.
GLOBAL_REFRESH_S = 30.0
# Surface decoding needs the reference within 45 NM; 5 minutes at approach speed
# (~200 kt) is under 20 NM, so a just-landed aircraft's last airborne fix still works.
SURFACE_REF_MAX_AGE_S = 300.0
# ADS-B velocity is broadcast twice a second; after 15 s it no longer describes motion.
VELOCITY_MAX_AGE_S = 15.0
# Altitude replies older than 15 s could be thousands of feet off in a climb.
ALTITUDE_MAX_AGE_S = 15.0
# Callsign and squawk change rarely; keep them for as long as the aircraft is tracked.
IDENTITY_MAX_AGE_S = 600.0

_SHORT_DFS = frozenset({0, 4, 5, 11})
_LONG_DFS = frozenset({16, 17, 18, 20, 21})
_ALTITUDE_DFS = frozenset({0, 4, 16, 20})
_SQUAWK_DFS = frozenset({5, 21})

# Mode S CRC-24 generator polynomial (ICAO Annex 10 Vol. IV, 3.1.2.3.3).
_CRC_POLY = 0xFFF409


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i << 16
        for _ in range(8):
            c = ((c << 1) ^ _CRC_POLY) if c & 0x800000 else (c << 1)
        table.append(c & 0xFFFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc_remainder(msg: bytes) -> int:
    """CRC-24 of the frame's data bits XOR its parity field: 0 for a clean DF17/18."""
    crc = 0
    table = _CRC_TABLE
    for b in msg[:-3]:
        crc = ((crc << 8) & 0xFFFFFF) ^ table[((crc >> 16) ^ b) & 0xFF]
    return crc ^ int.from_bytes(msg[-3:], "big")


# DF18 control field -> position source. CF 0/1 are ADS-B from non-transponder devices,
# 2/3/5 TIS-B (radar-derived, rebroadcast by ground stations), 6 ADS-R (an aircraft's
# own UAT ADS-B relayed, so its position is self-reported: "adsb"), 4 and 7 carry no
# position or are reserved.
_DF18_SOURCE = {0: "adsb", 1: "adsb", 2: "tisb", 3: "tisb", 4: "tisb", 5: "tisb", 6: "adsb", 7: "other"}
# CF 1 and 5 use a non-ICAO (anonymous or track-file) address: mark it like readsb does.
# For CF 2/3/6 the address type sits in the IMF bit, which we do not read: kept as ICAO.
_DF18_NON_ICAO = frozenset({1, 5})


@dataclass(slots=True)
class Frame:
    """One framed Mode S message: its bytes, event time and raw input for dead letters."""

    msg: bytes
    t: float
    raw: bytes
    # True when ``t`` comes from a receiver's 12 MHz counter; such times are checked by
    # TickClock, not against the wall clock (a fast replay runs ahead of it).
    from_ticks: bool = False
    mlat: bool = False


Outcome = Position | Invalid | Skip

# Counter value that mlat-client puts in the timestamp of the frames it synthesises.
MLAT_MAGIC_TICKS = 0xFF004D4C4154
TICKS_PER_S = 12_000_000.0


class TickClock:
    """Maps a receiver's free-running 12 MHz counter to UTC event times.

    The counter has no epoch, so the first frame is anchored to the parser clock
    ``now()`` and later frames are placed by counter difference: a recording keeps its
    real spacing and order, and absolute time is as good as the clock at the anchor.
    The anchor is reset when the counter runs backwards by more than a second (receiver
    restart, merged feeds) or jumps ahead by more than :data:`MAX_GAP_S` (corruption),
    so a bad counter can never push times into the far future.
    """

    # Reception gaps in one recording are seconds to minutes; an hour is not a gap.
    MAX_GAP_S = 3600.0
    # Frames from one receiver can be reordered by a few ms in network buffers.
    MAX_BACKWARDS_S = 1.0

    __slots__ = ("_anchor_ticks", "_anchor_wall", "_last", "now")

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self._anchor_ticks = -1
        self._anchor_wall = 0.0
        self._last = -1

    def time_of(self, ticks: int) -> tuple[float, bool]:
        """Event time for a counter value, and whether it came from the counter."""
        if ticks == 0 or ticks == MLAT_MAGIC_TICKS:
            return self.now(), False
        last = self._last
        if last < 0 or ticks < last - self.MAX_BACKWARDS_S * TICKS_PER_S or ticks > last + self.MAX_GAP_S * TICKS_PER_S:
            self._anchor_ticks = ticks
            self._anchor_wall = self.now()
        if ticks > last:
            self._last = ticks
        return self._anchor_wall + (ticks - self._anchor_ticks) / TICKS_PER_S, True


class ModeSDecoder:
    """Stateful Mode S decoding; see the module docstring. No I/O, plain object."""

    def __init__(
        self,
        *,
        input_format: str,
        receiver: str | None = None,
        now: Callable[[], float],
        reference: tuple[float, float] | None = None,
        pair_window_s: float = PAIR_WINDOW_S,
    ) -> None:
        if reference is not None:
            lat, lon = reference
            if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
                raise ValueError(f"reference {reference} is not a lat/lon")
        self.input_format = input_format
        self.receiver = receiver
        self.now = now
        self.reference = reference
        self.pair_window_s = pair_window_s
        self.memory = AircraftMemory()

    # ------------------------------------------------------------------ batch entry
    def decode_batch(self, frames: Sequence[Frame]) -> list[Outcome]:
        """One outcome per frame, in order (state is updated in that order)."""
        outcomes: list[Outcome | None] = [None] * len(frames)
        todo: list[int] = []
        hexes: list[str] = []
        for i, fr in enumerate(frames):
            if len(fr.msg) == 14 and (fr.msg[0] >> 3) in _SHORT_DFS:
                # Some SDR front ends (the one that recorded rs1090's sample among them)
                # emit every reply as 112 bits; a short DF's reply is its first 56.
                fr.msg = fr.msg[:7]
            bad = self._check_frame(fr.msg)
            if bad is not None:
                outcomes[i] = bad
            else:
                todo.append(i)
                hexes.append(fr.msg.hex())
        decoded = _rs1090.decode_many(hexes)
        for i, h, d in zip(todo, hexes, decoded, strict=True):
            fr = frames[i]
            try:
                outcomes[i] = self._frame(fr, h, d)
            except Invalid as exc:
                outcomes[i] = exc
            except Exception as exc:  # a bug of ours must not take the chunk down with it
                outcomes[i] = Invalid(Reason.PARSER_ERROR, f"{type(exc).__name__}: {exc}"[:500])
        return [o if o is not None else Invalid(Reason.PARSER_ERROR, "no outcome") for o in outcomes]

    def decode(self, msg: bytes, t: float, *, mlat: bool = False) -> Outcome:
        """One frame at event time ``t`` (pure entry point for tools and tests)."""
        return self.decode_batch([Frame(msg=msg, t=t, raw=msg, from_ticks=True, mlat=mlat)])[0]

    # ------------------------------------------------------------------ checks
    @staticmethod
    def _check_frame(msg: bytes) -> Invalid | Skip | None:
        n = len(msg)
        if n == 2:
            return Skip.MODE_AC
        if n not in (7, 14):
            return Invalid(Reason.BAD_LENGTH, f"{n} bytes; Mode S frames are 7 or 14")
        df = msg[0] >> 3
        if df >= 24:
            df = 24  # DF24 (Comm-D) uses only the first two bits
        if df in _SHORT_DFS:
            if n != 7:
                return Invalid(Reason.BAD_LENGTH, f"DF{df} is 7 bytes, got {n}")
        elif df in _LONG_DFS:
            if n != 14:
                return Invalid(Reason.BAD_LENGTH, f"DF{df} is 14 bytes, got {n}")
        else:
            return Invalid(Reason.UNSUPPORTED_DF, f"DF{df}")
        if df in (17, 18):
            if crc_remainder(msg) != 0:
                return Invalid(Reason.BAD_CRC, f"DF{df} parity remainder nonzero")
        elif df == 11 and crc_remainder(msg) & ~0x7F:
            return Invalid(Reason.BAD_CRC, "DF11 parity remainder beyond the interrogator code")
        return None

    # ------------------------------------------------------------------ per frame
    def _frame(self, fr: Frame, hexmsg: str, d: dict[str, object] | None) -> Outcome:
        if d is None:
            return Invalid(Reason.DECODE_FAILED, "rs1090 could not decode the frame")
        icao = normalise_icao24(d.get("icao24"))
        df = fr.msg[0] >> 3
        t = fr.t
        mem = self.memory
        if df in (17, 18):
            source = "mlat" if fr.mlat else "adsb"
            if df == 18:
                cf = fr.msg[0] & 7
                source = _DF18_SOURCE[cf]
                if cf in _DF18_NON_ICAO:
                    icao = "~" + icao
                    # Same rule as readsb input: an anonymous address is never "adsb".
                    if source == "adsb":
                        source = "other"
            return self._extended_squitter(fr, hexmsg, d, icao, source)
        if df == 11:
            mem.remember(icao, t, trusted=True)
            return Skip.NO_POSITION
        state = mem.peek(icao)
        if state is None or "trusted" not in state:
            return Skip.UNTRUSTED_ADDRESS
        state = mem.fields(icao, t)
        if df in _ALTITUDE_DFS:
            alt = check_altitude(d.get("altitude"))
            if alt is not None:
                state["alt_baro"] = (alt, t)
        if df in _SQUAWK_DFS:
            sq = check_squawk(d.get("squawk"))
            if sq is not None:
                state["squawk"] = (sq, t)
        if df in (20, 21) and d.get("bds") == "20":
            cs = check_callsign(d.get("callsign"))
            if cs is not None:
                state["callsign"] = (cs, t)
        return Skip.NO_POSITION

    def _extended_squitter(self, fr: Frame, hexmsg: str, d: dict[str, object], icao: str, source: str) -> Outcome:
        t = fr.t
        state = self.memory.fields(icao, t)
        state["trusted"] = (True, t)
        bds = d.get("bds")
        if bds == "08":
            cs = check_callsign(d.get("callsign"))
            if cs is not None:
                state["callsign"] = (cs, t)
            return Skip.NO_POSITION
        if bds == "09":
            gs = check_ground_speed(d.get("groundspeed"))
            track = check_track(d.get("track")) if gs is not None else None
            vr = check_vertical_rate(d.get("vertical_rate"))
            state["velocity"] = ((gs, track, vr), t)
            gmb = d.get("geo_minus_baro")
            if isinstance(gmb, int | float) and not isinstance(gmb, bool):
                state["geo_minus_baro"] = (float(gmb), t)
            return Skip.NO_POSITION
        if bds == "61":
            sq = check_squawk(d.get("squawk"))
            if sq is not None:
                state["squawk"] = (sq, t)
            return Skip.NO_POSITION
        if bds == "05":
            return self._airborne(fr, hexmsg, d, icao, source, state)
        if bds == "06":
            return self._surface(fr, hexmsg, d, icao, source, state)
        return Skip.NO_POSITION

    def _airborne(
        self,
        fr: Frame,
        hexmsg: str,
        d: dict[str, object],
        icao: str,
        source: str,
        state: dict[str, tuple[object, float]],
    ) -> Outcome:
        t = fr.t
        parity = d.get("parity")
        if parity not in ("even", "odd"):
            return Invalid(Reason.DECODE_FAILED, f"CPR parity {parity!r}")
        other = state.get("cpr_odd" if parity == "even" else "cpr_even")
        state["cpr_" + str(parity)] = (hexmsg, t)
        last = state.get("pos")
        last_age = abs(t - last[1]) if last is not None else float("inf")
        last_global = state.get("global_t")
        global_age = abs(t - last_global[1]) if last_global is not None else float("inf")
        latlon = None
        tried_pair = False
        # Global decoding costs ~5x a local one in rs1090, so a steady track is followed
        # locally and re-anchored globally every GLOBAL_REFRESH_S (which also ends any
        # error a local chain could carry).
        if (
            other is not None
            and abs(t - other[1]) <= self.pair_window_s
            and (last_age > LOCAL_FAST_MAX_AGE_S or global_age > GLOBAL_REFRESH_S)
        ):
            tried_pair = True
            latlon = _rs1090.cpr_global(str(other[0]), other[1], hexmsg, t)
            if latlon is not None:
                state["global_t"] = (True, t)
        if latlon is None and last is not None and last_age <= LOCAL_REF_MAX_AGE_S:
            ref = last[0]
            assert isinstance(ref, tuple)
            latlon = _rs1090.cpr_local(hexmsg, ref[0], ref[1])
        if latlon is None:
            return Skip.CPR_AMBIGUOUS if tried_pair else Skip.CPR_PENDING
        alt = check_altitude(d.get("altitude"))
        recall = AircraftMemory.recall
        alt_baro: float | None
        alt_geom: float | None
        if d.get("source") == "GNSS":
            alt_baro, alt_geom = recall(state, "alt_baro", t, ALTITUDE_MAX_AGE_S), alt
        else:
            alt_baro = alt if alt is not None else recall(state, "alt_baro", t, ALTITUDE_MAX_AGE_S)
            gmb = recall(state, "geo_minus_baro", t, VELOCITY_MAX_AGE_S)
            alt_geom = alt_baro + gmb if alt_baro is not None and gmb is not None else None
        vel = recall(state, "velocity", t, VELOCITY_MAX_AGE_S) or (None, None, None)
        pos = self._position(fr, icao, latlon, source, state, alt_baro, alt_geom, vel, on_ground=False)
        if alt_baro is not None:
            state["alt_baro"] = (alt_baro, t)
        return pos

    def _surface(
        self,
        fr: Frame,
        hexmsg: str,
        d: dict[str, object],
        icao: str,
        source: str,
        state: dict[str, tuple[object, float]],
    ) -> Outcome:
        t = fr.t
        last = state.get("pos")
        ref: tuple[float, float] | None = None
        if last is not None and abs(t - last[1]) <= SURFACE_REF_MAX_AGE_S:
            r = last[0]
            assert isinstance(r, tuple)
            ref = (float(r[0]), float(r[1]))
        elif self.reference is not None:
            ref = self.reference
        if ref is None:
            return Skip.NO_SURFACE_REFERENCE
        latlon = _rs1090.cpr_local(hexmsg, ref[0], ref[1])
        if latlon is None:
            return Skip.CPR_AMBIGUOUS
        gs = check_ground_speed(d.get("groundspeed"))
        track = check_track(d.get("track"))
        return self._position(fr, icao, latlon, source, state, None, None, (gs, track, None), on_ground=True)

    def _position(
        self,
        fr: Frame,
        icao: str,
        latlon: tuple[float, float],
        source: str,
        state: dict[str, tuple[object, float]],
        alt_baro: float | None,
        alt_geom: float | None,
        vel: object,
        *,
        on_ground: bool,
    ) -> Position:
        t = fr.t
        now = self.now()
        recall = AircraftMemory.recall
        assert isinstance(vel, tuple)
        pos = make_position(
            icao24=icao,
            event_time=t,
            lat=latlon[0],
            lon=latlon[1],
            input_format=self.input_format,
            now=max(now, t) if fr.from_ticks else now,
            alt_baro_ft=alt_baro,
            alt_geom_ft=alt_geom,
            ground_speed_kt=vel[0],
            track_deg=vel[1],
            vertical_rate_fpm=vel[2],
            callsign=recall(state, "callsign", t, IDENTITY_MAX_AGE_S),
            squawk=recall(state, "squawk", t, IDENTITY_MAX_AGE_S),
            on_ground=on_ground,
            source=source,
            receiver=self.receiver,
        )
        state["pos"] = ((pos.lat, pos.lon), t)
        return pos
