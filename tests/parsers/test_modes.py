"""Mode S decoding: our CPR state on top of rs1090, checked against rs1090 and pyModeS."""

from __future__ import annotations

import math

import pytest
from pyModeS import decode as pms_decode
from pyModeS.position import airborne_position_pair, airborne_position_with_ref

from streams.messages import Position
from streams.parsers.modes import (
    MLAT_MAGIC_TICKS,
    TICKS_PER_S,
    Frame,
    ModeSDecoder,
    TickClock,
    crc_remainder,
)
from streams.parsers.validate import Invalid, Skip

pytestmark = pytest.mark.unit

NOW = 1_800_000_000.0
# Paris-CDG aerodrome reference point: the receiver of the rs1090 recording heard the
# aircraft taxi there, so a receiver reference near it resolves those surface positions.
CDG = (49.0097, 2.5479)


def _metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


def _decode_rows(rows, reference):
    dec = ModeSDecoder(input_format="avr", now=lambda: NOW, reference=reference)
    frames = [Frame(msg=bytes.fromhex(r["frame"]), t=r["timestamp"], raw=b"", from_ticks=True) for r in rows]
    out = []
    for i in range(0, len(frames), 700):  # chunked like a stream; state must carry over
        out += dec.decode_batch(frames[i : i + 700])
    return out


def test_positions_agree_with_rs1090_on_57793_real_frames(rs1090_rows) -> None:
    """Our positions from the raw frames vs rs1090's own decoded lat/lon.

    With a receiver reference at CDG (needed only for surface positions), all 8,324
    positions rs1090 found are reproduced within 10 m (in fact to the last bit: both
    sides run rs1090's CPR arithmetic), and we emit no position rs1090 did not.
    Share within 10 m: 8,324 / 8,324 = 100 %. There are no disagreements to explain.
    The 1,349 surface frames at Toulouse are resolved against the aircraft's own last
    airborne position (not a receiver reference), as rs1090 did.
    """
    assert len(rs1090_rows) == 57_793
    out = _decode_rows(rs1090_rows, CDG)
    expected = [(i, r) for i, r in enumerate(rs1090_rows) if "latitude" in r]
    assert len(expected) == 8_324
    within = 0
    for i, r in expected:
        p = out[i]
        assert isinstance(p, Position), (i, p)
        d = _metres(r["latitude"], r["longitude"], p.lat, p.lon)
        within += d <= 10.0
        assert p.icao24 == r["icao24"]
        assert p.on_ground is (r["bds"] == "06")
    assert within / len(expected) == 1.0
    extra = [i for i, o in enumerate(out) if isinstance(o, Position) and "latitude" not in rs1090_rows[i]]
    assert extra == []
    # Nothing in this clean recording is refused; everything else carries no position.
    assert all(isinstance(o, Position) or o is Skip.NO_POSITION for o in out)


def test_without_a_reference_only_the_explained_frames_differ(rs1090_rows) -> None:
    """Without a receiver reference the disagreements are exactly two explained kinds.

    1. Surface frames (BDS 0,6) while the aircraft taxis at CDG before its first
       airborne fix: a surface CPR frame has four solutions 90 degrees apart and nothing
       to choose between them -> skipped ``no_surface_reference``.
    2. The first airborne frames before an even/odd pair has arrived -> ``cpr_pending``
       (rs1090 placed them with its reference; we do not guess airborne positions).
    Every position we do emit still equals rs1090's.
    """
    out = _decode_rows(rs1090_rows, None)
    first_fix = next(i for i, o in enumerate(out) if isinstance(o, Position))
    kinds: dict[str, int] = {}
    for i, r in enumerate(rs1090_rows):
        if "latitude" not in r:
            continue
        o = out[i]
        if isinstance(o, Position):
            assert _metres(r["latitude"], r["longitude"], o.lat, o.lon) <= 10.0
            continue
        assert i < first_fix
        assert (o, r["bds"]) in ((Skip.NO_SURFACE_REFERENCE, "06"), (Skip.CPR_PENDING, "05"))
        kinds[o.value] = kinds.get(o.value, 0) + 1
    assert kinds["no_surface_reference"] > 1000
    assert 0 < kinds["cpr_pending"] <= 10


def test_positions_agree_with_pymodes_cpr_on_its_own_sample(pymodes_rows) -> None:
    """pyModeS (GPL-3.0, test-only peer) recomputes each of our airborne positions.

    For every position we emit, pyModeS's even/odd pair decoding of the same two frames
    (when both are within 10 s, as our rule) or its local decoding against our previous
    position of the aircraft gives the same lat/lon within 10 m.
    """
    dec = ModeSDecoder(input_format="avr", now=lambda: NOW)
    out = dec.decode_batch([Frame(msg=bytes.fromhex(h), t=t, raw=b"", from_ticks=True) for t, h in pymodes_rows])
    last: dict[int, tuple[float, int, int]] = {}
    prev: tuple[float, float] | None = None
    checked = 0
    for (t, h), o in zip(pymodes_rows, out, strict=True):
        d = pms_decode(h)
        if d.get("bds") != "0,5":
            assert not isinstance(o, Position)
            continue
        f = d["cpr_format"]
        last[f] = (t, d["cpr_lat"], d["cpr_lon"])
        if not isinstance(o, Position):
            continue
        other = last.get(1 - f)
        if other is not None and abs(t - other[0]) <= 10:
            e, od = last[0], last[1]
            peer = airborne_position_pair(e[1], e[2], od[1], od[2], even_is_newer=f == 0)
        else:
            assert prev is not None
            peer = airborne_position_with_ref(f, d["cpr_lat"], d["cpr_lon"], *prev)
        assert peer is not None
        assert _metres(peer[0], peer[1], o.lat, o.lon) <= 10.0
        assert o.alt_baro_ft == d["altitude"]
        prev = (o.lat, o.lon)
        checked += 1
    assert checked > 900


def _df17(rs1090_rows, bds: str) -> bytes:
    return bytes.fromhex(next(r["frame"] for r in rs1090_rows if r.get("bds") == bds and r["df"] == "17"))


def test_crc(rs1090_rows) -> None:
    frames = [bytes.fromhex(r["frame"]) for r in rs1090_rows if r["df"] == "17"][:500]
    assert all(crc_remainder(f) == 0 for f in frames)
    f = bytearray(frames[0])
    for bit in range(0, 112, 7):
        g = bytearray(f)
        g[bit // 8] ^= 0x80 >> (bit % 8)
        assert crc_remainder(bytes(g)) != 0


def test_bad_crc_and_bad_frames_are_dead_letters(rs1090_rows) -> None:
    dec = ModeSDecoder(input_format="avr", now=lambda: NOW)
    good = _df17(rs1090_rows, "09")
    bad = bytearray(good)
    bad[5] ^= 0x10
    df24 = bytes([0xC0]) + good[1:]
    df19 = bytes([(19 << 3)]) + good[1:]
    out = dec.decode_batch([Frame(msg=m, t=NOW, raw=m) for m in (bytes(bad), df24, df19, good[:9], good[:7])])
    assert [o.reason.value for o in out if isinstance(o, Invalid)] == [
        "bad_crc",
        "unsupported_df",
        "unsupported_df",
        "bad_length",
        "bad_length",
    ]


def _with_parity(msg: bytes) -> bytes:
    body = msg[:-3] + b"\x00\x00\x00"
    return msg[:-3] + crc_remainder(body).to_bytes(3, "big")


def test_df18_is_crc_checked_and_mapped_to_its_source(rs1090_rows) -> None:
    dec = ModeSDecoder(input_format="avr", now=lambda: NOW, reference=CDG)
    surface = bytes.fromhex(rs1090_rows[0]["frame"])  # DF17 surface position at CDG
    as18 = bytes([(18 << 3) | 0]) + surface[1:]
    out = dec.decode_batch([Frame(msg=as18, t=NOW, raw=as18)])
    assert isinstance(out[0], Invalid) and out[0].reason.value == "bad_crc"  # rs1090 alone accepts it
    for cf, icao, source in ((0, "393322", "adsb"), (1, "~393322", "other"), (2, "393322", "tisb")):
        m = _with_parity(bytes([(18 << 3) | cf]) + surface[1:])
        (p,) = dec.decode_batch([Frame(msg=m, t=NOW, raw=m)])
        assert isinstance(p, Position), p
        assert (p.icao24, p.source) == (icao, source)
        assert abs(p.lat - rs1090_rows[0]["latitude"]) < 1e-9


def test_short_replies_need_a_confirmed_address(rs1090_rows) -> None:
    dec = ModeSDecoder(input_format="avr", now=lambda: NOW, reference=CDG)
    df4 = next(bytes.fromhex(r["frame"]) for r in rs1090_rows if r["df"] == "4")
    assert len(df4) == 14  # this receiver pads short replies to 112 bits
    (first,) = dec.decode_batch([Frame(msg=df4, t=NOW, raw=df4)])
    assert first is Skip.UNTRUSTED_ADDRESS
    surface = bytes.fromhex(rs1090_rows[0]["frame"])
    out = dec.decode_batch([Frame(msg=m, t=NOW, raw=m) for m in (surface, df4)])
    assert isinstance(out[0], Position)
    assert out[1] is Skip.NO_POSITION
    state = dec.memory.peek("393322")
    assert state is not None and state["alt_baro"][0] == 575.0


def test_surface_positions_need_a_reference(rs1090_rows) -> None:
    surface = bytes.fromhex(rs1090_rows[0]["frame"])
    no_ref = ModeSDecoder(input_format="avr", now=lambda: NOW)
    assert no_ref.decode(surface, NOW) is Skip.NO_SURFACE_REFERENCE
    with_ref = ModeSDecoder(input_format="avr", now=lambda: NOW, reference=CDG)
    p = with_ref.decode(surface, NOW)
    assert isinstance(p, Position) and p.on_ground is True
    assert _metres(p.lat, p.lon, rs1090_rows[0]["latitude"], rs1090_rows[0]["longitude"]) < 0.01
    with pytest.raises(ValueError):
        ModeSDecoder(input_format="avr", now=lambda: NOW, reference=(95.0, 0.0))


def test_identity_and_velocity_are_carried_into_positions(rs1090_rows) -> None:
    dec = ModeSDecoder(input_format="avr", now=lambda: NOW, reference=CDG)
    frames = [Frame(msg=bytes.fromhex(r["frame"]), t=r["timestamp"], raw=b"", from_ticks=True) for r in rs1090_rows]
    out = dec.decode_batch(frames)
    airborne = [o for o, r in zip(out, rs1090_rows, strict=True) if isinstance(o, Position) and not o.on_ground]
    assert {p.callsign for p in airborne} == {"AFR34ZG"}
    assert all(p.squawk is not None for p in airborne[100:])
    with_speed = [p for p in airborne if p.ground_speed_kt is not None]
    assert len(with_speed) > 0.95 * len(airborne)
    cruise = max(p.alt_baro_ft or 0 for p in airborne)
    assert 20_000 < cruise < 45_000
    assert all(p.source == "adsb" for p in airborne)


def test_tick_clock_anchors_and_resists_bad_counters() -> None:
    wall = [NOW]
    clock = TickClock(lambda: wall[0])
    t0, ok = clock.time_of(1_000 * int(TICKS_PER_S))
    assert (t0, ok) == (NOW, True)
    wall[0] = NOW + 500  # a fast replay: the wall clock does not drive frame times
    t1, _ = clock.time_of(1_002 * int(TICKS_PER_S))
    assert t1 == pytest.approx(NOW + 2.0)
    t2, _ = clock.time_of(1_001 * int(TICKS_PER_S) + 6_000_000)  # slightly out of order
    assert t2 == pytest.approx(NOW + 1.5)
    t3, _ = clock.time_of(10 * int(TICKS_PER_S))  # receiver restarted: re-anchor to now()
    assert t3 == NOW + 500
    wall[0] = NOW + 600
    t4, _ = clock.time_of(10 * int(TICKS_PER_S) + 10**15)  # corrupt jump of years
    assert t4 == NOW + 600
    assert clock.time_of(0) == (NOW + 600, False)
    assert clock.time_of(MLAT_MAGIC_TICKS) == (NOW + 600, False)


def test_local_decoding_wraps_at_the_antimeridian(rs1090_rows) -> None:
    """rs1090's local decoding can return longitudes beyond +-180 near the antimeridian;
    our layer wraps them instead of refusing a real position over the Pacific."""
    from rs1090 import _rust

    from streams.parsers._rs1090 import cpr_local, loads_plain

    frame = next(r["frame"] for r in rs1090_rows if r.get("bds") == "05")
    lat = next(r["latitude"] for r in rs1090_rows if r.get("bds") == "05")
    wrapped = 0
    for tenth in range(-30, 31):
        ref_lon = 180.0 + tenth / 10.0 if tenth <= 0 else -180.0 + tenth / 10.0
        raw = loads_plain(_rust.decode_1090_with_reference(frame, (lat, ref_lon)))["longitude"]
        latlon = cpr_local(frame, lat, ref_lon)
        assert latlon is not None and -180.0 <= latlon[1] <= 180.0
        assert abs((latlon[1] - raw + 180.0) % 360.0 - 180.0) < 1e-9  # same place on Earth
        wrapped += not -180.0 <= raw <= 180.0
    assert wrapped > 0
