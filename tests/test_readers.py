"""Readers on real sockets and files: TCP receivers that drop, HTTP polling with 429, gzip.

The servers are real asyncio/aiohttp servers on 127.0.0.1 started by the tests; only the
reader's ``sleep`` is replaced by a recorder so backoff and Retry-After are observed
without waiting.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from streams.parsers import parse_bytes
from streams.readers import backoff_delay, open_feed, parse_feed, retry_after_s
from tests.parsers._constructed import aircraft_json_polls, load_trace, opensky_states

pytestmark = pytest.mark.unit

NOW = 1_800_000_000.0

DATA = Path(__file__).resolve().parent / "data"


# The recordings the readers serve (the parser tests' fixtures, tests/parsers/conftest.py).
@pytest.fixture(scope="module")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="module")
def beast_bytes() -> bytes:
    return (DATA / "dump1090_sample.beast.bin").read_bytes()


@pytest.fixture(scope="module")
def sbs_bytes() -> bytes:
    return (DATA / "sbs1_msgs.txt").read_bytes()


@pytest.fixture(scope="module")
def trace_bytes() -> bytes:
    with gzip.open(DATA / "readsb_trace_full_ac671b.json.gz") as f:
        return f.read()


@pytest.fixture(scope="module")
def trace_doc() -> dict[str, Any]:
    return load_trace()


class SleepRecorder:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        await asyncio.sleep(0)


async def _collect(source, fmt, **kw):
    from streams.parsers import make_parser

    parser = make_parser(fmt, now=lambda: NOW, source=source, **kw.pop("parser_kw", {}))
    results = [r async for r in parse_feed(source, fmt=fmt, parser=parser, **kw)]
    return results, parser


async def test_plain_file_in_small_chunks_equals_whole_parse(data_dir, beast_bytes) -> None:
    results, _parser = await _collect(str(data_dir / "dump1090_sample.beast.bin"), "beast", chunk_size=97)
    whole = parse_bytes("beast", beast_bytes, now=lambda: NOW)
    assert sum(r.messages for r in results) == 239
    assert [p for r in results for p in r.positions] == whole.positions


async def test_gzip_trace_file_is_decompressed_by_magic(data_dir) -> None:
    results, _ = await _collect(str(data_dir / "readsb_trace_full_ac671b.json.gz"), "trace", chunk_size=4096)
    assert len(results) == 1  # a document format parses once, at the end of the file
    assert len(results[0].positions) == 2500


async def test_concatenated_gzip_members_and_stdin(tmp_path, sbs_bytes) -> None:
    half = len(sbs_bytes) // 2
    path = tmp_path / "sbs.gz"
    path.write_bytes(gzip.compress(sbs_bytes[:half]) + gzip.compress(sbs_bytes[half:]))
    whole = parse_bytes("sbs", sbs_bytes, now=lambda: NOW)
    with open(path, "rb") as f:
        results, _ = await _collect("-", "sbs", stdin=f, chunk_size=1000)
    assert [p for r in results for p in r.positions] == whole.positions
    assert sum(r.messages for r in results) == 4184


async def test_tcp_receiver_that_drops_is_reconnected(beast_bytes, caplog) -> None:
    """1st connection: half the sample, cut mid-frame. 2nd: the whole sample. Then the
    server is gone: the reader retries with growing backoff and stops after max_retries."""
    connections = 0
    cut = 2001

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.write(beast_bytes[:cut] if connections == 1 else beast_bytes)
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        if connections == 2:
            server.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sleep = SleepRecorder()
    caplog.set_level(logging.INFO, logger="skyfence.feeds")
    results, parser = await _collect(f"tcp://127.0.0.1:{port}", "beast", max_retries=3, sleep=sleep)
    assert connections == 2
    dead = [d for r in results for d in r.dead_letters]
    assert [d.reason for d in dead] == ["truncated"]  # the frame cut by the drop
    assert dead[0].source == f"tcp://127.0.0.1:{port}"
    first_half = parse_bytes("beast", beast_bytes[:cut], now=lambda: NOW).messages
    assert parser.stats.messages == first_half + 239
    # A delay after each drop (base 1 s: the connection had worked) and after each refusal
    # (base 2 s, then 4 s), each with +-50 % jitter; the 4th consecutive failure ends it.
    assert len(sleep.calls) == 4
    assert all(0.5 <= c <= 1.5 for c in sleep.calls[:2])
    assert 1.0 <= sleep.calls[2] <= 3.0 and 2.0 <= sleep.calls[3] <= 6.0
    assert "reconnecting" in caplog.text and "giving up" in caplog.text


async def test_http_polling_honours_429_and_sends_the_bbox(trace_doc) -> None:
    seen_queries: list[dict[str, str]] = []
    docs = [opensky_states(trace_doc, i, with_positionless=False) for i in (10, 20)]
    calls = 0

    async def states(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        seen_queries.append(dict(request.query))
        if calls == 1:
            return web.Response(status=429, headers={"Retry-After": "7"})
        if calls == 2:
            return web.Response(status=503)
        return web.Response(body=docs[calls - 3], content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/states/all", states)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    sleep = SleepRecorder()
    try:
        results, parser = await _collect(
            f"http://127.0.0.1:{port}/api/states/all",
            "opensky",
            bbox=(14.0, -118.5, 33.0, -86.0),
            poll_interval_s=5.0,
            max_polls=4,
            sleep=sleep,
        )
    finally:
        await runner.cleanup()
    assert seen_queries[0] == {"lamin": "14.0", "lomin": "-118.5", "lamax": "33.0", "lomax": "-86.0"}
    assert sleep.calls[0] == 7.0  # Retry-After honoured exactly
    assert sleep.calls[1] >= 2.5  # the 503 backs off at least half the poll interval
    assert [len(r.positions) for r in results] == [1, 1]
    assert parser.stats.positions == 2


async def test_aircraft_json_url_polling(trace_doc) -> None:
    polls = aircraft_json_polls(trace_doc, every_s=5.0, count=3)
    served = iter(polls)

    async def aircraft(request: web.Request) -> web.Response:
        return web.Response(body=next(served), content_type="application/json")

    app = web.Application()
    app.router.add_get("/data/aircraft.json", aircraft)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        chunks = [
            c
            async for c in open_feed(
                f"http://127.0.0.1:{port}/data/aircraft.json", fmt="readsb-json", max_polls=3, sleep=SleepRecorder()
            )
        ]
    finally:
        await runner.cleanup()
    # Each response is one document followed by the b"" end-of-document marker.
    assert chunks == [polls[0], b"", polls[1], b"", polls[2], b""]


def test_backoff_and_retry_after_helpers() -> None:
    assert backoff_delay(1, 1.0, 60.0, rng=lambda: 0.5) == 1.0
    assert backoff_delay(4, 1.0, 60.0, rng=lambda: 0.5) == 8.0
    assert backoff_delay(20, 1.0, 60.0, rng=lambda: 0.5) == 60.0
    assert 30.0 <= backoff_delay(20, 1.0, 60.0) <= 90.0
    assert retry_after_s({"Retry-After": "120"}, default=5.0) == 120.0
    assert retry_after_s({"X-Rate-Limit-Retry-After-Seconds": "3600"}, default=5.0) == 3600.0
    when = datetime.fromtimestamp(NOW + 90, tz=UTC)
    assert retry_after_s({"Retry-After": format_datetime(when, usegmt=True)}, default=5.0, now=NOW) == 90.0
    assert retry_after_s({"Retry-After": "soon"}, default=5.0) == 5.0
    assert retry_after_s({}, default=5.0) == 5.0


def test_bad_sources_are_refused_early() -> None:
    for source in ("tcp://nohost", "tcp://h:99999", "ftp://x/y"):
        with pytest.raises(ValueError):
            open_feed(source, fmt="sbs")
    with pytest.raises(ValueError):
        open_feed("http://x/api/states/all", fmt="readsb-json", bbox=(1.0, 2.0, 3.0, 4.0))


async def test_large_and_gzipped_http_bodies(data_dir, trace_bytes) -> None:
    gz = (data_dir / "readsb_trace_full_ac671b.json.gz").read_bytes()

    async def plain(request: web.Request) -> web.Response:
        return web.Response(body=trace_bytes, content_type="application/json")

    async def stored_gz(request: web.Request) -> web.Response:
        return web.Response(body=gz, content_type="application/octet-stream")

    app = web.Application()
    app.router.add_get("/trace.json", plain)
    app.router.add_get("/trace.json.gz", stored_gz)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        for path in ("/trace.json", "/trace.json.gz"):
            results, _ = await _collect(f"http://127.0.0.1:{port}{path}", "trace", max_polls=1, sleep=SleepRecorder())
            assert [len(r.positions) for r in results] == [2500]
        results, _ = await _collect(
            f"http://127.0.0.1:{port}/trace.json",
            "trace",
            max_polls=1,
            sleep=SleepRecorder(),
            max_body_bytes=100_000,
            parser_kw={"max_message_bytes": 100_000},
        )
    finally:
        await runner.cleanup()
    assert [d.reason for r in results for d in r.dead_letters] == ["oversize"]


async def test_corrupt_and_cut_gzip_files_reach_the_parser(tmp_path, sbs_bytes) -> None:
    gz = gzip.compress(sbs_bytes)
    cut = tmp_path / "cut.gz"
    cut.write_bytes(gz[: len(gz) // 2])
    _, parser = await _collect(str(cut), "sbs")
    assert parser.stats.positions > 0  # what was there is parsed
    assert parser.stats.messages < 4184
    corrupt = tmp_path / "corrupt.gz"
    corrupt.write_bytes(gz[:20] + bytes(200) + gz[220:])
    _, parser = await _collect(str(corrupt), "sbs")
    # The undecodable rest is refused by the parser, not dropped by the reader.
    assert sum(parser.stats.dead_letters.values()) > 0


def test_bbox_is_checked_early() -> None:
    with pytest.raises(ValueError):
        open_feed("http://x/api/states/all", fmt="opensky", bbox=(33.0, -118.5, 14.0, -86.0))
