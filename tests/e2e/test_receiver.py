"""A real receiver in the loop: dump1090 fed real frames, skyfence reading what it serves.

dump1090 is Debian's ``dump1090-mutability`` in ``--net-only`` mode on free loopback ports
(:class:`streams.receiver.LocalReceiver`). The recording is pyModeS's 2,000 real ADS-B frames
of 406B90 over Germany (12 minutes, 933 airborne positions; tests/data/PROVENANCE.md). It goes
into dump1090's raw input port as AVR lines or into its Beast input port as Beast frames, and
skyfence's own readers and parsers read dump1090's four outputs: Beast, AVR, SBS and
``aircraft.json`` (dump1090 writes the file; the receiver manager serves its folder over HTTP).

What is compared: dump1090 forwards the frames, so the Beast and AVR positions must be exactly
skyfence's direct decoding of the same frames (address, latitude, longitude, altitude; dump1090
puts its own counter, or none, on the frames it forwards, so event times are compared only where
the counter is the recording's). SBS and ``aircraft.json`` carry dump1090's own decoding, at
the precision of those formats.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.messages import Position
from streams.parsers import parse_bytes
from streams.readers import parse_feed
from streams.receiver import LocalReceiver, RecordedFrame, avr_line, beast_frame, beast_ticks, load_recording, play
from streams.settings import Settings, child_env
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.integration

RECORDING = REPO_ROOT / "tests" / "data" / "pymodes_sample_data_adsb.csv"
# 100x plays the 730 s recording in ~7 s: dump1090 writes an aircraft.json snapshot every
# second, so several snapshots are taken while the aircraft moves.
SPEED = 100.0
# SBS prints 5 decimals (rounding up to 0.5e-5 degrees) of dump1090's own CPR arithmetic;
# 1e-5 degrees is about a metre.
SBS_TOL_DEG = 1e-5
# aircraft.json prints 6 decimals (rounding up to 0.5e-6 degrees).
JSON_TOL_DEG = 1e-6
# dump1090 writes aircraft.json once a second, so the 7 s of play give about 7 snapshots
# with a position. Not the last one: at 100x, the recording's final 10 s gap looks like a
# 2.5 km jump in 0.1 s to dump1090's speed check (wall clock), so it drops that position.
MIN_SNAPSHOTS = 4
# Waits on observable state end here: the whole recording goes through in seconds.
WAIT_S = 60.0

Key = tuple[str, float, float, float | None]


@pytest.fixture
def receiver(base_settings: Settings, tmp_path: Path) -> Iterator[LocalReceiver]:
    """A dump1090-mutability on free loopback ports, stopped after the test."""
    r = LocalReceiver(base_settings, run_dir=tmp_path / "receiver")
    r.start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="module")
def frames() -> list[RecordedFrame]:
    return load_recording(RECORDING)


def _key(p: Position) -> Key:
    return (p.icao24, p.lat, p.lon, p.alt_baro_ft)


def _beast_stream(frames: list[RecordedFrame], clock_zero: float) -> bytes:
    return b"".join(beast_frame(f.msg, beast_ticks(f.t, clock_zero)) for f in frames)


class Reader:
    """One skyfence reader + parser (``streams.readers.parse_feed``) running as a task."""

    def __init__(self, source: str, fmt: str, **feed_kwargs: Any) -> None:
        self.source = source
        self.positions: list[Position] = []
        self.messages = 0
        self.task = asyncio.ensure_future(self._run(source, fmt, feed_kwargs))

    async def _run(self, source: str, fmt: str, kwargs: dict[str, Any]) -> None:
        async for result in parse_feed(source, fmt=fmt, **kwargs):
            self.messages += result.messages
            self.positions.extend(result.positions)

    def check(self) -> None:
        if self.task.done():
            raise AssertionError(f"reader of {self.source} ended: {self.task.exception() or 'no error'}")

    async def stop(self) -> None:
        self.task.cancel()
        with suppress(asyncio.CancelledError):
            await self.task


async def until(cond: Callable[[], bool], what: str, readers: tuple[Reader, ...] = ()) -> None:
    deadline = time.monotonic() + WAIT_S
    while not cond():
        for r in readers:
            r.check()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _in_order_within(got: list[Position], expected: list[Position], tol: float) -> list[int]:
    """Index in ``expected`` of each of ``got``, matched in order (lat/lon within tol, same
    address and altitude); AssertionError naming the first one that has no match."""
    out: list[int] = []
    j = 0
    for p in got:
        while j < len(expected) and not (
            expected[j].icao24 == p.icao24
            and abs(expected[j].lat - p.lat) <= tol
            and abs(expected[j].lon - p.lon) <= tol
            and expected[j].alt_baro_ft == p.alt_baro_ft
        ):
            j += 1
        assert j < len(expected), f"no decoded position matches {p} after #{out[-1] if out else -1}"
        out.append(j)
        j += 1
    return out


async def test_beast_avr_sbs_and_aircraft_json_agree_with_direct_decoding(
    receiver: LocalReceiver, frames: list[RecordedFrame]
) -> None:
    expected = parse_bytes("avr", b"".join(avr_line(f.msg) for f in frames)).positions
    assert len(expected) == 933  # the recording's airborne positions (4 wait for their CPR pair)

    beast = Reader(receiver.beast_url, "beast")
    avr = Reader(receiver.avr_url, "avr")
    sbs = Reader(receiver.sbs_url, "sbs")
    # polled faster than dump1090 writes (1 s), so no snapshot is missed
    snapshots = Reader(receiver.json_url, "readsb-json", poll_interval_s=0.25)
    readers = (beast, avr, sbs, snapshots)
    try:
        for port in (receiver.ports.beast_out, receiver.ports.raw_out, receiver.ports.sbs_out):
            await receiver.wait_clients(port)
        assert await play(frames, receiver.ports.raw_in, fmt="avr", speed=SPEED) == len(frames)

        # every frame comes back out of each TCP output: one Beast frame, AVR line, SBS line each
        await until(lambda: min(beast.messages, avr.messages, sbs.messages) >= len(frames),
                    "every frame on the Beast, AVR and SBS outputs", readers)
        # one snapshot a second while the aircraft moves: ~7 in the 7 s of play
        await until(lambda: len(snapshots.positions) >= MIN_SNAPSHOTS, "aircraft.json snapshots", readers)
    finally:
        for r in readers:
            await r.stop()

    # Beast and AVR: dump1090 forwarded the frames, skyfence decoded them itself
    assert beast.messages == avr.messages == len(frames)
    assert [_key(p) for p in beast.positions] == [_key(p) for p in expected]
    assert [_key(p) for p in avr.positions] == [_key(p) for p in expected]
    assert {p.input_format for p in beast.positions} == {"beast"}
    assert {(p.source, p.callsign) for p in beast.positions[-10:]} == {("adsb", "EZY85MH")}

    # SBS: dump1090's own decoding of the same frames, in the same order, to 5 decimals
    assert sbs.messages == len(frames)
    matched = _in_order_within(sbs.positions, expected, SBS_TOL_DEG)
    assert len(matched) >= 0.9 * len(expected), f"dump1090 decoded only {len(matched)} of {len(expected)}"

    # aircraft.json: snapshots, each showing one of the decoded positions
    for p in snapshots.positions:
        near = [e for e in expected if abs(e.lat - p.lat) <= JSON_TOL_DEG and abs(e.lon - p.lon) <= JSON_TOL_DEG]
        assert near and p.icao24 == near[0].icao24 == "406b90", p
        # the snapshot's altitude is the aircraft's latest, which a later frame may have moved on
        assert any(abs(e.alt_baro_ft - p.alt_baro_ft) <= 100 for e in near if e.alt_baro_ft and p.alt_baro_ft), p


async def test_tcp_reader_reconnects_after_dump1090_restart_and_loses_nothing(
    receiver: LocalReceiver, frames: list[RecordedFrame], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="skyfence.feeds")
    zero = frames[0].t
    half = len(frames) // 2
    # the direct decoding of the Beast frames fed, with the recording's times as their counter
    expected = parse_bytes("beast", _beast_stream(frames, zero)).positions
    expected_first = parse_bytes("beast", _beast_stream(frames[:half], zero)).positions
    assert 0 < len(expected_first) < len(expected)

    # fast reconnects for the test: the first retry within 0.15 s, then at most 0.75 s apart
    beast = Reader(receiver.beast_url, "beast", backoff_initial_s=0.1, backoff_max_s=0.5)
    try:
        await receiver.wait_clients(receiver.ports.beast_out)
        await play(frames[:half], receiver.ports.beast_in, fmt="beast", clock_zero=zero)
        await until(lambda: len(beast.positions) >= len(expected_first), "the first half", (beast,))

        old_pid = receiver.pid
        receiver.restart()
        assert receiver.pid not in (None, old_pid)
        # the same reader task connects again and dump1090 serves it
        await receiver.wait_clients(receiver.ports.beast_out)
        connected = f"{receiver.beast_url}: connected"
        await until(lambda: [r.getMessage() for r in caplog.records].count(connected) == 2,
                    "the reader's second connection", (beast,))

        await play(frames[half:], receiver.ports.beast_in, fmt="beast", clock_zero=zero)
        await until(lambda: len(beast.positions) >= len(expected), "the second half", (beast,))
    finally:
        await beast.stop()

    assert [_key(p) for p in beast.positions] == [_key(p) for p in expected]
    # dump1090 passed the recording's counter on: the positions keep the recording's spacing
    got_dt = [p.event_time - beast.positions[0].event_time for p in beast.positions]
    want_dt = [p.event_time - expected[0].event_time for p in expected]
    assert got_dt == pytest.approx(want_dt, abs=1e-6)
    # ... the 12 minutes of the flight, although the frames were played in well under a second
    assert got_dt[-1] > 700


async def test_skyfence_ingest_reads_the_receiver_like_an_antenna(
    receiver: LocalReceiver, frames: list[RecordedFrame], base_settings: Settings, tmp_path: Path
) -> None:
    expected = parse_bytes("beast", _beast_stream(frames, frames[0].t)).positions
    env = child_env(base_settings)
    # positions are written as they come; a pipe would otherwise hold the last ones in its buffer
    env["PYTHONUNBUFFERED"] = "1"
    err = tmp_path / "ingest.stderr"
    with open(err, "wb") as errf:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "streams.cli", "ingest", receiver.beast_url, "--format", "beast", "--stdout",
            env=env, cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE, stderr=errf,
        )
    assert proc.stdout is not None
    lines: list[bytes] = []
    try:
        await receiver.wait_clients(receiver.ports.beast_out)
        await play(frames, receiver.ports.beast_in, fmt="beast", speed=None)
        while len(lines) < len(expected):
            line = await asyncio.wait_for(proc.stdout.readline(), WAIT_S)
            assert line, f"ingest ended early:\n{err.read_text(errors='replace')}"
            lines.append(line)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), WAIT_S)
    got = [Position.from_dict(orjson.loads(line)) for line in lines]
    assert [_key(p) for p in got] == [_key(p) for p in expected]
    assert {p.receiver for p in got} == {receiver.beast_url.removeprefix("tcp://")}


def test_demo_receiver_plays_a_recording_through_dump1090(settings: Settings) -> None:
    """`skyfence demo --receiver`: dump1090's real Beast capture (24 s, Toulouse), played in real
    time into a local dump1090, read by `skyfence ingest` and published to the real broker."""
    recording = REPO_ROOT / "tests" / "data" / "dump1090_sample.beast.bin"
    expected = parse_bytes("beast", recording.read_bytes()).positions
    assert len(expected) == 3
    proc = subprocess.run(
        [sys.executable, "-m", "streams.cli", "demo", "--no-stack", "--exit", "--receiver", str(recording)],
        env=child_env(settings), cwd=REPO_ROOT, capture_output=True, text=True, timeout=WAIT_S * 5,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "playing 239 Mode S frames into dump1090's Beast input in real time" in proc.stdout, proc.stdout
    assert f"{len(expected)} positions read from dump1090's Beast output and published" in proc.stdout, proc.stdout
    assert "live map: http://" in proc.stdout
